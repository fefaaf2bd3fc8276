//! seq → memory → null: a million events through the real binary.

mod common;

use common::*;

#[test]
fn a_million_sequence_events_reach_the_null_sink() {
    let dir = test_dir();
    let cfg = "a1.sources = r1\n\
               a1.channels = c1\n\
               a1.sinks = k1\n\
               a1.sources.r1.type = seq\n\
               a1.sources.r1.totalEvents = 1000000\n\
               a1.sources.r1.batchSize = 1000\n\
               a1.sources.r1.channels = c1\n\
               a1.channels.c1.type = memory\n\
               a1.channels.c1.capacity = 10000\n\
               a1.channels.c1.transactionCapacity = 1000\n\
               a1.sinks.k1.type = null\n\
               a1.sinks.k1.batchSize = 1000\n\
               a1.sinks.k1.channel = c1\n";
    let mut agent = Agent::start(dir.path(), "a1", cfg, &[]);
    let done = agent.wait_for_log(&["Sequence source finished.", "source=r1"]);
    assert!(done.contains("events=1000000"), "{done}");
    let status = agent.terminate();
    assert!(status.success(), "log:\n{}", agent.log());
    let report = agent.wait_for_log(&["Channel drained.", "channel=c1"]);
    assert!(report.contains("put=1000000"), "{report}");
    assert!(report.contains("taken=1000000"), "{report}");
}

#[test]
fn the_sequence_bodies_count_from_zero() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = seq\n\
         a1.sources.r1.totalEvents = 2500\n\
         a1.sources.r1.batchSize = 100\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = memory\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.channel = c1\n",
        out.display()
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("2500 lines", DEADLINE, || count_output_lines(&out) >= 2500);
    assert!(agent.terminate().success());
    let got = output_lines(&out);
    let want: Vec<String> = (0..2500).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}
