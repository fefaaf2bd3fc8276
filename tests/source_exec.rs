//! The `exec` source through the real binary: every line of a command arrives, restarts rerun
//! it, stderr is logged when asked.

mod common;

use std::path::Path;

use common::*;

fn config(out: &Path, source_extra: &str) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = exec\n\
         a1.sources.r1.channels = c1\n\
         a1.sources.r1.batchTimeout = 100\n\
         {source_extra}\n\
         a1.channels.c1.type = memory\n\
         a1.channels.c1.capacity = 10000\n\
         a1.channels.c1.transactionCapacity = 1000\n\
         a1.sinks.k1.type = file_roll\n\
         a1.sinks.k1.channel = c1\n\
         a1.sinks.k1.sink.directory = {}\n\
         a1.sinks.k1.sink.rollInterval = 0\n",
        out.display()
    )
}

#[test]
fn every_line_of_the_command_arrives_in_order() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.command = seq 1 1000\na1.sources.r1.batchSize = 64",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Command exited", "source=r1"]);
    wait_until("1000 lines", DEADLINE, || count_output_lines(&out) >= 1000);
    let expected: Vec<String> = (1..=1000).map(|i| i.to_string()).collect();
    assert_eq!(output_lines(&out), expected);
    assert!(agent.terminate().success());
}

#[test]
fn shell_runs_the_command_and_carriage_returns_end_lines() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.shell = /bin/sh -c\n\
         a1.sources.r1.command = printf 'a b\\r\\nc\\n' && echo \"$((2 + 3))\" && printf last",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("four lines", DEADLINE, || count_output_lines(&out) >= 4);
    assert_eq!(output_lines(&out), ["a b", "c", "5", "last"]);
    assert!(agent.terminate().success());
}

#[test]
fn restart_reruns_the_command_after_the_throttle() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.shell = /bin/sh -c\n\
         a1.sources.r1.command = echo run\n\
         a1.sources.r1.restart = true\n\
         a1.sources.r1.restartThrottle = 50",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("three runs", DEADLINE, || count_output_lines(&out) >= 3);
    assert!(agent.terminate().success());
    let lines = output_lines(&out);
    assert!(lines.len() >= 3);
    assert!(lines.iter().all(|l| l == "run"), "{lines:?}");
    assert!(agent.log().contains("Restarting the command"));
}

#[test]
fn without_restart_the_source_ends_after_one_run() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(&out, "a1.sources.r1.command = echo once");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Command exited", "source=r1"]);
    wait_until("one line", DEADLINE, || count_output_lines(&out) >= 1);
    assert!(!agent.log().contains("Restarting the command"));
    assert!(agent.terminate().success());
    assert_eq!(output_lines(&out), ["once"]);
}

#[test]
fn stderr_is_logged_only_with_log_std_err() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.shell = /bin/sh -c\n\
         a1.sources.r1.command = echo to-stdout; echo oops-on-stderr >&2\n\
         a1.sources.r1.logStdErr = true",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Command wrote to stderr", "line=oops-on-stderr"]);
    wait_until("the stdout line", DEADLINE, || {
        count_output_lines(&out) >= 1
    });
    assert!(agent.terminate().success());
    assert_eq!(output_lines(&out), ["to-stdout"]);

    let dir = test_dir();
    let out = dir.path().join("out");
    let cfg = config(
        &out,
        "a1.sources.r1.shell = /bin/sh -c\n\
         a1.sources.r1.command = echo quiet-on-stderr >&2; echo done",
    );
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Command exited", "source=r1"]);
    wait_until("the stdout line", DEADLINE, || {
        count_output_lines(&out) >= 1
    });
    assert!(agent.terminate().success());
    // The command line itself is in the start-up log; no stderr line may be.
    assert!(
        !agent.log().contains("line=quiet-on-stderr"),
        "{}",
        agent.log()
    );
}

#[test]
fn shutdown_kills_a_running_command_and_keeps_its_lines() {
    let dir = test_dir();
    let out = dir.path().join("out");
    let marker = dir.path().join("marker");
    let source = format!(
        "a1.sources.r1.shell = /bin/sh -c\n\
         a1.sources.r1.command = echo started; touch {}; exec sleep 600\n\
         a1.sources.r1.batchTimeout = 60000",
        marker.display()
    );
    let cfg = config(&out, &source);
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    wait_until("the command to have written its line", DEADLINE, || {
        marker.exists()
    });
    // The line is in the pipe or in an unfinished batch (long batchTimeout): shutdown kills
    // the command, reads what it wrote and puts it.
    let status = agent.terminate();
    assert!(status.success());
    assert_eq!(output_lines(&out), ["started"]);
}
