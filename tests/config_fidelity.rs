//! Issue 12 through the real binary: a config that needs components Flumen lacks never runs
//! half-way by default, Flume's own rules around such components are matched (unknown types
//! stop the agent, the batch-size table, configure-time failures), and every finding names a
//! file and a line a Flume user can act on.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// Joins config lines; line `n` of the file is `lines[n - 1]`.
fn conf(lines: &[&str]) -> String {
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// The one finding of `kind` on `key`, checked to be at `line` of the checked file.
fn at<'a>(json: &'a Value, kind: &str, key: &str, line: u64) -> &'a Value {
    let hits: Vec<_> = findings_of(json, kind)
        .into_iter()
        .filter(|f| f["key"] == key)
        .collect();
    assert_eq!(hits.len(), 1, "want one {kind} on {key}: {json:#}");
    assert_eq!(hits[0]["line"], line, "{:#}", hits[0]);
    hits[0]
}

fn message(f: &Value) -> &str {
    f["message"].as_str().unwrap_or_default()
}

/// `(kind, key, line)` of every finding, in order.
fn all(json: &Value) -> Vec<(String, String, u64)> {
    json["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["kind"].as_str().unwrap_or_default().to_string(),
                        f["key"].as_str().unwrap_or_default().to_string(),
                        f["line"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn owned(v: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
        .collect()
}

/// TAILDIR over `dir/logs/*.log` into channel c1 of `channel_lines`, drained by an `hdfs` sink.
fn taildir_to_hdfs(dir: &Path, channel_lines: &[&str]) -> String {
    let group = format!(
        "a1.sources.r1.filegroups.f1 = {}/logs/.*\\.log",
        dir.display()
    );
    let pos = format!("a1.sources.r1.positionFile = {}/pos.json", dir.display());
    let mut lines = vec![
        "a1.sources = r1",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = TAILDIR",
        "a1.sources.r1.channels = c1",
        "a1.sources.r1.filegroups = f1",
        &group,
        &pos,
        "a1.sources.r1.writePosInterval = 0",
        "a1.sinks.k1.type = hdfs",
        "a1.sinks.k1.channel = c1",
        "a1.sinks.k1.hdfs.path = hdfs://namenode:8020/flume/%Y",
    ];
    lines.extend_from_slice(channel_lines);
    conf(&lines)
}

fn write_log(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("logs")).expect("creating logs/");
    let body: String = (0..n).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.join("logs/app.log"), body).expect("writing the log");
}

/// Checks the TAILDIR → memory → hdfs config with `args`: exactly `expected` findings, and
/// an agent that exits 2 without ever reading its source. Returns the check's JSON.
fn refused_without_reading(args: &[&str], expected: &[(&str, &str, u64)]) -> Value {
    let dir = test_dir();
    let d = dir.path();
    write_log(d, 20);
    let cfg = taildir_to_hdfs(d, &["a1.channels.c1.type = memory"]);
    let (code, json, _) = check_json(&cfg, args);
    assert_eq!(code, 1);
    assert_eq!(all(&json), owned(expected));
    assert!(json["topology"].is_null());
    let mut agent = Agent::start(d, "a1", &cfg, args);
    assert_eq!(agent.wait().code(), Some(2), "{}", agent.log());
    assert!(agent.log().contains("ERROR"), "{}", agent.log());
    // The source never ran: no position was recorded past lines nobody could deliver.
    assert!(!d.join("pos.json").exists(), "{}", agent.log());
    json
}

#[test]
fn a_config_whose_sink_flumen_lacks_does_not_start_and_reads_nothing() {
    let json = refused_without_reading(
        &[],
        &[
            ("partial-topology", "a1", 10),
            ("unsupported-type", "a1.sinks.k1.hdfs.path", 12),
        ],
    );
    let refusal = message(at(&json, "partial-topology", "a1", 10));
    assert!(
        refusal.contains(
            "sink `k1` needs HDFS's native client (for `hdfs://namenode:8020/flume/%Y`) and would drain c1"
        ),
        "{refusal}"
    );
    assert!(refusal.contains("--allow-partial"), "{refusal}");
}

#[test]
fn allow_partial_refuses_a_memory_channel_left_without_a_consumer() {
    let json = refused_without_reading(
        &["--allow-partial"],
        &[
            ("unsupported-type", "a1.sinks.k1.hdfs.path", 12),
            ("no-consumer", "a1.channels.c1", 13),
        ],
    );
    let f = message(at(&json, "no-consumer", "a1.channels.c1", 13));
    assert!(
        f.contains("fed by source `r1`") && f.contains("`k1` could not be started"),
        "{f}"
    );
}

#[test]
fn allow_partial_runs_the_rest_into_a_durable_channel_that_keeps_the_events() {
    let dir = test_dir();
    let d = dir.path();
    write_log(d, 20);
    let checkpoint = format!("a1.channels.c1.checkpointDir = {}/cp", d.display());
    let data = format!("a1.channels.c1.dataDirs = {}/data", d.display());
    let file_channel = [
        "a1.channels.c1.type = file",
        checkpoint.as_str(),
        data.as_str(),
        "a1.channels.c1.minimumRequiredSpace = 1048576",
    ];
    let cfg = taildir_to_hdfs(d, &file_channel);
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    let f = message(at(&json, "no-consumer", "a1.channels.c1", 13));
    assert!(f.contains("stay on disk"), "{f}");
    assert_eq!(json["topology"]["sources"][0][0], "r1", "{json:#}");

    let mut agent = Agent::start(
        d,
        "a1",
        &cfg,
        &["--allow-partial", "--metrics-addr", "127.0.0.1:0"],
    );
    let mport = agent.monitoring_port();
    wait_until("20 lines in c1", DEADLINE, || {
        let (status, body) = http_request(mport, "GET", "/metrics", &[], b"");
        status == 200
            && serde_json::from_str::<Value>(&body)
                .is_ok_and(|m| m["CHANNEL.c1"]["ChannelSize"] == "20")
    });
    assert!(agent.terminate().success(), "{}", agent.log());

    // Once a sink exists, the events kept on disk come out.
    let out = d.join("out");
    let directory = format!("a1.sinks.k1.sink.directory = {}", out.display());
    let with_sink = cfg
        .replace("a1.sinks.k1.type = hdfs", "a1.sinks.k1.type = file_roll")
        .replace(
            "a1.sinks.k1.hdfs.path = hdfs://namenode:8020/flume/%Y",
            &directory,
        );
    let mut agent = Agent::start(d, "a1", &with_sink, &[]);
    wait_until("20 lines delivered", DEADLINE, || {
        output_lines(&out).len() == 20
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// netcat r1 → memory c1 → file_roll k1, plus `extra` lines.
fn netcat_to_file(out: &Path, extra: &[&str]) -> String {
    let directory = format!("a1.sinks.k1.sink.directory = {}", out.display());
    let mut lines = vec![
        "a1.sources = r1",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = netcat",
        "a1.sources.r1.bind = 127.0.0.1",
        "a1.sources.r1.port = 0",
        "a1.sources.r1.channels = c1",
        "a1.channels.c1.type = memory",
        "a1.sinks.k1.type = file_roll",
        "a1.sinks.k1.channel = c1",
        &directory,
        "a1.sinks.k1.sink.rollInterval = 0",
    ];
    lines.extend_from_slice(extra);
    conf(&lines)
}

fn replace_config(dir: &Path, text: &str) {
    let tmp = dir.join(".agent.properties.tmp");
    std::fs::write(&tmp, text).expect("writing the new config");
    std::fs::rename(&tmp, dir.join("agent.properties")).expect("renaming the new config");
}

#[test]
fn hot_reload_refuses_a_partial_config_unless_allowed() {
    let dir = test_dir();
    let d = dir.path();
    let out = d.join("out");
    let base = netcat_to_file(&out, &[]);
    let checkpoint = format!("a1.channels.c2.checkpointDir = {}/cp", d.display());
    let data = format!("a1.channels.c2.dataDirs = {}/data", d.display());
    // r1 also feeds c2, drained by a thrift sink Flumen lacks.
    let partial = |c2: &[&str]| {
        let mut extra = vec![
            "a1.channels = c1 c2",
            "a1.sinks = k1 k2",
            "a1.sources.r1.channels = c1 c2",
            "a1.sinks.k2.type = thrift",
            "a1.sinks.k2.hostname = 127.0.0.1",
            "a1.sinks.k2.port = 9",
            "a1.sinks.k2.channel = c2",
        ];
        extra.extend_from_slice(c2);
        netcat_to_file(&out, &extra)
            .replace("a1.channels = c1\n", "")
            .replace("a1.sinks = k1\n", "")
            .replace("a1.sources.r1.channels = c1\n", "")
    };
    let args = ["--poll-interval", "3600"];

    let mut agent = Agent::start(d, "a1", &base, &args);
    let port = agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    replace_config(d, &partial(&["a1.channels.c2.type = memory"]));
    agent.wait_for_log(&["Config change refused"]);
    assert!(
        agent.log().contains("[partial-topology]"),
        "{}",
        agent.log()
    );
    assert_eq!(tcp_send(port, b"still here\n"), b"OK\n");
    wait_until("the old pipeline delivers", DEADLINE, || {
        output_lines(&out) == ["still here"]
    });
    assert!(agent.terminate().success(), "{}", agent.log());

    // With --allow-partial the same rule as at start: a memory c2 is refused, a file c2 runs.
    let dir = test_dir();
    let d = dir.path();
    let mut allowed = args.to_vec();
    allowed.push("--allow-partial");
    let mut agent = Agent::start(d, "a1", &base, &allowed);
    agent.wait_for_port("r1");
    agent.wait_for_log(&["Watching the config"]);
    replace_config(d, &partial(&["a1.channels.c2.type = memory"]));
    agent.wait_for_log(&["Config change refused"]);
    assert!(agent.log().contains("[no-consumer]"), "{}", agent.log());
    replace_config(
        d,
        &partial(&[
            "a1.channels.c2.type = file",
            &checkpoint,
            &data,
            "a1.channels.c2.minimumRequiredSpace = 1048576",
        ]),
    );
    agent.wait_for_log(&["Config change applied"]);
    // The restarted r1 (its channels changed) delivers through c1 and keeps c2's share.
    let port = latest_port(&agent, "r1");
    assert_eq!(tcp_send(port, b"after the change\n"), b"OK\n");
    wait_until("the new pipeline delivers", DEADLINE, || {
        output_lines(&out).iter().any(|l| l == "after the change")
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

/// The port in the last "listening" line of `source` (a restarted source binds anew).
fn latest_port(agent: &Agent, source: &str) -> u16 {
    let needle = format!("source={source}");
    let log = agent.log();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("listening") && l.contains(&needle))
        .unwrap_or_else(|| panic!("{source} never listened: {log}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("address="))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line}"))
}

#[test]
fn file_channel_encryption_is_refused_rather_than_written_in_plaintext() {
    let dir = test_dir();
    let d = dir.path();
    std::fs::write(d.join("keys.jceks"), b"store").expect("writing the key store");
    std::fs::write(d.join("password"), b"secret").expect("writing the password");
    let store = format!(
        "a1.channels.c1.encryption.keyProvider.keyStoreFile = {}/keys.jceks",
        d.display()
    );
    let password = format!(
        "a1.channels.c1.encryption.keyProvider.keyStorePasswordFile = {}/password",
        d.display()
    );
    let encrypted = |keys: &[&str]| {
        let mut extra = vec![
            "a1.channels.c1.encryption.activeKey = key-0",
            "a1.channels.c1.encryption.cipherProvider = AESCTRNOPADDING",
            "a1.channels.c1.encryption.keyProvider = JCEKSFILE",
        ];
        extra.extend_from_slice(keys);
        netcat_to_file(&d.join("out"), &extra)
            .replace("a1.channels.c1.type = memory", "a1.channels.c1.type = file")
    };
    let cfg = encrypted(&[
        &store,
        &password,
        "a1.channels.c1.encryption.keyProvider.keys = key-0",
    ]);
    let (code, json, _) = check_json(&cfg, &[]);
    assert_eq!(code, 1);
    // r1 and k1 are fine; they go with the channel Flumen refuses.
    assert_eq!(
        all(&json),
        owned(&[
            ("partial-drop", "a1.sources.r1", 7),
            ("partial-topology", "a1", 8),
            ("partial-drop", "a1.sinks.k1.channel", 10),
            (
                "unsupported-type",
                "a1.channels.c1.encryption.keyProvider",
                15
            ),
        ])
    );
    let f = message(at(
        &json,
        "unsupported-type",
        "a1.channels.c1.encryption.keyProvider",
        15,
    ));
    assert!(f.contains("plaintext"), "{f}");
    let refusal = message(at(&json, "partial-topology", "a1", 8));
    assert!(
        refusal.contains("channel `c1` needs encryption"),
        "{refusal}"
    );
    let mut agent = Agent::start(d, "a1", &cfg, &[]);
    assert_eq!(agent.wait().code(), Some(2), "{}", agent.log());
    assert!(!d.join("out").exists());

    // Without its password file and keys, Flume's key provider fails: Flume's own drop.
    let (_, json, _) = check_json(&encrypted(&[&store]), &[]);
    let key = "a1.channels.c1.encryption.keyProvider.keyStorePasswordFile";
    assert!(message(at(&json, "dropped-component", key, 8)).contains("Flume fails to configure"));
    assert!(
        findings_of(&json, "partial-topology").is_empty(),
        "{json:#}"
    );
}

#[test]
fn an_unknown_type_stops_the_whole_agent_even_on_an_unused_channel() {
    let out = Path::new("/tmp/unused-out");
    let cfg = netcat_to_file(
        out,
        &["a1.channels = c1 c2", "a1.channels.c2.type = memroy"],
    );
    let (code, json, _) = check_json(&cfg, &[]);
    assert_eq!(code, 1);
    let f = at(&json, "unknown-type", "a1.channels.c2.type", 14);
    assert_eq!(f["suggestion"], "memory");
    let f = message(at(&json, "agent-not-started", "a1", 14));
    assert!(f.contains("stops the whole agent"), "{f}");
    assert!(json["topology"].is_null());
    let dir = test_dir();
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &["--allow-partial"]);
    assert_eq!(agent.wait().code(), Some(2), "{}", agent.log());
    // Java's class loader is case-sensitive: a built-in class in other letter case does not load.
    let cfg = netcat_to_file(out, &[]).replace(
        "a1.sinks.k1.type = file_roll",
        "a1.sinks.k1.type = org.apache.flume.sink.RollingFilesink",
    );
    let (_, json, _) = check_json(&cfg, &[]);
    let f = at(&json, "unknown-type", "a1.sinks.k1.type", 9);
    assert_eq!(f["suggestion"], "org.apache.flume.sink.RollingFileSink");
    at(&json, "agent-not-started", "a1", 9);
}

/// seq r1 → memory c1 (transactionCapacity 10) → `sink` lines.
fn seq_into(sink: &[&str]) -> String {
    let mut lines = vec![
        "a1.sources = r1",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = seq",
        "a1.sources.r1.totalEvents = 5",
        "a1.sources.r1.channels = c1",
        "a1.channels.c1.type = memory",
        "a1.channels.c1.transactionCapacity = 10",
        "a1.sinks.k1.channel = c1",
    ];
    lines.extend_from_slice(sink);
    conf(&lines)
}

/// [`seq_into`] a logger, with the source's type replaced by `type_` and its
/// `totalEvents` line (line 5) by `keys` (two lines).
fn source_into_logger(type_: &str, keys: &str) -> String {
    seq_into(&["a1.sinks.k1.type = logger"])
        .replace(
            "a1.sources.r1.type = seq",
            &format!("a1.sources.r1.type = {type_}"),
        )
        .replace("a1.sources.r1.totalEvents = 5", keys)
}

#[test]
fn flumes_batch_rule_uses_each_builtins_batch_key_and_default() {
    // hdfs.batchSize defaults to 100 > 10: Flume drops the sink, so it is not something
    // Flumen lacks (no partial-topology), and c1 is left without a consumer.
    let (_, json, _) = check_json(
        &seq_into(&["a1.sinks.k1.type = hdfs", "a1.sinks.k1.hdfs.path = /x"]),
        &[],
    );
    assert_eq!(
        all(&json),
        owned(&[
            ("no-consumer", "a1.channels.c1", 7),
            ("dropped-component", "a1.sinks.k1.hdfs.batchSize", 10),
        ])
    );
    let f = message(at(
        &json,
        "dropped-component",
        "a1.sinks.k1.hdfs.batchSize",
        10,
    ));
    assert!(f.contains("Batch size 100 (Flume's default)"), "{f}");
    // The Kafka sink reads flumeBatchSize, and its deprecated batchSize only without it.
    let kafka = |keys: &[&str]| {
        let mut sink = vec![
            "a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink",
            "a1.sinks.k1.kafka.bootstrap.servers = 127.0.0.1:9092",
        ];
        sink.extend_from_slice(keys);
        check_json(&seq_into(&sink), &[]).1
    };
    let json = kafka(&["a1.sinks.k1.flumeBatchSize = 5"]);
    assert!(
        findings_of(&json, "dropped-component").is_empty(),
        "{json:#}"
    );
    assert!(findings_of(&json, "partial-topology").is_empty());
    let json = kafka(&["a1.sinks.k1.batchSize = 50"]);
    at(&json, "dropped-component", "a1.sinks.k1.batchSize", 12);
    // Twitter's maxBatchSize (1000) and the Kafka source's batchSize (1000) on a source.
    for (class, key) in [
        (
            "org.apache.flume.source.twitter.TwitterSource",
            "maxBatchSize",
        ),
        ("org.apache.flume.source.kafka.KafkaSource", "batchSize"),
    ] {
        let cfg = source_into_logger(
            class,
            "a1.sources.r1.kafka.topics = t\na1.sources.r1.kafka.bootstrap.servers = b:9092",
        );
        let (_, json, _) = check_json(&cfg, &[]);
        let f = findings_of(&json, "dropped-component");
        assert!(
            f.iter().any(|f| f["key"] == format!("a1.sources.r1.{key}")
                && message(f).contains("1000 (Flume's default)")),
            "{json:#}"
        );
        assert!(
            findings_of(&json, "partial-topology").is_empty(),
            "{json:#}"
        );
    }
}

#[test]
fn the_logger_sink_is_never_dropped_for_its_batch() {
    let cfg = seq_into(&["a1.sinks.k1.type = logger"]);
    let (code, json, _) = check_json(&cfg, &[]);
    assert_eq!((code, all(&json)), (0, vec![]), "{json:#}");
    let dir = test_dir();
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    agent.wait_for_log(&["Sequence source finished."]);
    wait_until("five events logged", DEADLINE, || {
        agent.log().matches("Event: { headers:").count() == 5
    });
    assert!(agent.terminate().success(), "{}", agent.log());
}

#[test]
fn a_broken_builtin_flumen_lacks_counts_as_flumes_own_drop() {
    // A thrift sink without hostname: Flume's configure throws, so in a sink group the whole
    // agent is abandoned, as Flume does, whatever --allow-partial says.
    let cfg = seq_into(&[
        "a1.sinks.k1.type = logger",
        "a1.sinks = k1 k2",
        "a1.sinks.k2.type = thrift",
        "a1.sinks.k2.port = 4141",
        "a1.sinks.k2.channel = c1",
        "a1.sinkgroups = g1",
        "a1.sinkgroups.g1.sinks = k1 k2",
        "a1.sinkgroups.g1.processor.type = failover",
    ]);
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    let f = message(at(&json, "dropped-component", "a1.sinks.k2.hostname", 12));
    assert!(f.contains("Required property `hostname` of thrift"), "{f}");
    at(&json, "agent-not-started", "a1.sinkgroups.g1.sinks", 16);
    assert!(
        findings_of(&json, "unsupported-type").is_empty(),
        "{json:#}"
    );
    // A Kafka source without topics, and a thrift source without port: Flume drops them.
    for (source, key) in [
        ("org.apache.flume.source.kafka.KafkaSource", "kafka.topics"),
        ("thrift", "port"),
    ] {
        let cfg = source_into_logger(
            source,
            "a1.sources.r1.bind = 0.0.0.0\na1.sources.r1.kafka.bootstrap.servers = b:9092",
        );
        let (_, json, _) = check_json(&cfg, &[]);
        let f = message(at(
            &json,
            "dropped-component",
            &format!("a1.sources.r1.{key}"),
            4,
        ));
        assert!(f.contains("Flume fails to configure"), "{f}");
        assert!(
            findings_of(&json, "partial-topology").is_empty(),
            "{json:#}"
        );
    }
}

#[test]
fn a_bad_dead_letter_channel_leaves_flumes_keys_read() {
    let cfg = netcat_to_file(
        Path::new("/tmp/unused-out"),
        &[
            "a1.sources.r1.selector.type = replicating",
            "a1.sources.r1.selector.optional = c1",
            "a1.sources.r1.interceptors = i1",
            "a1.sources.r1.interceptors.i1.type = host",
            "a1.sources.r1.errorChannel = nope",
        ],
    );
    let (_, json, _) = check_json(&cfg, &[]);
    assert!(findings_of(&json, "ignored-key").is_empty(), "{json:#}");
    at(&json, "dropped-component", "a1.sources.r1.errorChannel", 17);
}

#[test]
fn a_sink_that_loses_its_channel_is_named_at_its_channel_line() {
    let cfg = conf(&[
        "a1.sources = r1",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = seq",
        "a1.sources.r1.channels = c1",
        "a1.channels.c1.type = memory",
        "a1.channels.c1.capacity = 10",
        "a1.channels.c1.transactionCapacity = 20",
        "a1.sinks.k1.type = logger",
        "a1.sinks.k1.channel = c1",
    ]);
    let (_, json, _) = check_json(&cfg, &[]);
    at(&json, "dropped-component", "a1.sinks.k1.channel", 10);
    at(&json, "dropped-component", "a1.sources.r1.channels", 5);
}

#[test]
fn keys_flume_hands_to_plugins_are_not_called_ignored() {
    let cfg = conf(&[
        "a1.sources = r1 r2",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = netcat",
        "a1.sources.r1.bind = 127.0.0.1",
        "a1.sources.r1.port = 0",
        "a1.sources.r1.channels = c1",
        "a1.sources.r1.interceptors = i1",
        "a1.sources.r1.interceptors.i1.type = com.example.JsonInterceptor$Builder",
        "a1.sources.r1.interceptors.i1.field = ts",
        "a1.sources.r1.selector.type = multiplexing",
        "a1.sources.r1.selector.header = kind",
        "a1.sources.r1.selector.default = c1",
        "a1.sources.r2.type = http",
        "a1.sources.r2.port = 0",
        "a1.sources.r2.channels = c1",
        "a1.sources.r2.handler = com.example.XmlHandler",
        "a1.sources.r2.handler.rootElement = events",
        "a1.channels.c1.type = memory",
        "a1.sinks.k1.type = logger",
        "a1.sinks.k1.channel = c1",
    ]);
    let (_, json, _) = check_json(&cfg, &[]);
    assert_eq!(
        all(&json),
        owned(&[
            ("partial-drop", "a1.sources.r1.type", 4),
            ("partial-topology", "a1", 4),
            ("unsupported-type", "a1.sources.r1.interceptors.i1.type", 9),
            ("partial-drop", "a1.sources.r2.type", 14),
            ("unsupported-type", "a1.sources.r2.handler", 17),
        ])
    );
    // The source dropped for its interceptor has a finding of its own.
    let f = message(at(&json, "partial-drop", "a1.sources.r1.type", 4));
    assert!(
        f.contains("interceptor `i1` of class `com.example.JsonInterceptor$Builder`")
            && f.contains("would feed c1"),
        "{f}"
    );
}

#[test]
fn every_finding_points_at_a_line_the_user_can_act_on() {
    // Missing required keys point at the component's type line.
    for (lines, key, line) in [
        (
            vec!["a1.sources.r1.type = netcat", "a1.sources.r1.port = 1"],
            "a1.sources.r1.bind",
            4,
        ),
        (
            vec!["a1.sources.r1.type = spooldir"],
            "a1.sources.r1.spoolDir",
            4,
        ),
        (
            vec!["a1.sources.r1.type = exec"],
            "a1.sources.r1.command",
            4,
        ),
    ] {
        let mut all_lines = vec!["a1.sources = r1", "a1.channels = c1", "a1.sinks = k1"];
        all_lines.extend(lines);
        all_lines.extend([
            "a1.sources.r1.channels = c1",
            "a1.channels.c1.type = file",
            "a1.sinks.k1.type = logger",
            "a1.sinks.k1.channel = c1",
        ]);
        let (_, json, _) = check_json(&conf(&all_lines), &[]);
        at(&json, "dropped-component", key, line);
    }
    let cfg = netcat_to_file(Path::new("/tmp/x"), &[])
        .replace(&format!("a1.sinks.k1.sink.directory = {}\n", "/tmp/x"), "");
    let (_, json, _) = check_json(&cfg, &[]);
    at(&json, "dropped-component", "a1.sinks.k1.sink.directory", 9);
    // A lost channel is reported at the source's `channels` line; an empty list as empty.
    let cfg = conf(&[
        "a1.sources = r1",
        "a1.channels = c1 c2",
        "a1.sinks =",
        "a1.sources.r1.type = netcat",
        "a1.sources.r1.bind = 127.0.0.1",
        "a1.sources.r1.port = 0",
        "a1.sources.r1.channels = c1 c2",
        "a1.channels.c1.type = file",
        "a1.channels.c2.type = memory",
        "a1.channels.c2.capacity = 10",
        "a1.channels.c2.transactionCapacity = 20",
        "a1.sinks.k1.type = logger",
        "a1.sinks.k1.channel = c1",
        "a1.sinks.k1.maxBytesToLog = 10",
    ]);
    let (_, json, _) = check_json(&cfg, &[]);
    let f = message(at(&json, "dropped-component", "a1.sources.r1.channels", 7));
    assert!(f.contains("loses channel `c2`"), "{f}");
    let f = message(at(&json, "ignored-key", "a1.sinks", 3));
    assert!(f.contains("list `a1.sinks` is empty"), "{f}");
    // One finding for the whole unlisted sink, not one per key.
    let f = message(at(&json, "ignored-key", "a1.sinks.k1", 12));
    assert!(
        f.contains("`a1.sinks` is empty (line 3)") && f.contains("its 3 keys"),
        "{f}"
    );
    assert!(json["findings"]
        .as_array()
        .is_some_and(|a| a.iter().all(|f| f["line"].as_u64().is_some_and(|l| l > 0))));
}

#[test]
fn flumen_only_drops_are_not_blamed_on_flume() {
    // c2's only source and only sink are types Flumen lacks.
    let cfg = netcat_to_file(
        Path::new("/tmp/unused-out"),
        &[
            "a1.sources = r1 r2",
            "a1.channels = c1 c2",
            "a1.sinks = k1 k2",
            "a1.sources.r2.type = syslogudp",
            "a1.sources.r2.port = 5140",
            "a1.sources.r2.channels = c2",
            "a1.channels.c2.type = memory",
            "a1.sinks.k2.type = hbase2",
            "a1.sinks.k2.table = t",
            "a1.sinks.k2.columnFamily = f",
            "a1.sinks.k2.channel = c2",
        ],
    );
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    let f = message(at(&json, "partial-drop", "a1.channels.c2", 19));
    assert!(
        f.contains("Flumen could not run source `r2`, sink `k2`"),
        "{f}"
    );
    assert_flume_not_blamed(&json);
    assert_eq!(json["topology"]["channels"][0][0], "c1", "{json:#}");
}

/// No finding says Flume drops what only Flumen dropped.
fn assert_flume_not_blamed(json: &Value) {
    for f in json["findings"].as_array().into_iter().flatten() {
        let m = message(f);
        let blamed = ["Flume removes", "as Flume does", "Flume drops the source"];
        assert!(!blamed.iter().any(|b| m.contains(b)), "{f}");
    }
}

/// netcat r1 → `c1` (memory) and `c2`, with sinks k1 (logger on c1) and k2 on c2; `extra`
/// lines from line 16 on.
fn two_lanes(c2_type: &str, k2_type: &str, extra: &[&str]) -> String {
    let c2 = format!("a1.channels.c2.type = {c2_type}");
    let k2 = format!("a1.sinks.k2.type = {k2_type}");
    let mut lines = vec![
        "a1.sources = r1",
        "a1.channels = c1 c2",
        "a1.sinks = k1 k2",
        "a1.sources.r1.type = netcat",
        "a1.sources.r1.bind = 127.0.0.1",
        "a1.sources.r1.port = 0",
        "a1.sources.r1.channels = c1 c2",
        "a1.channels.c1.type = memory",
        &c2,
        "a1.channels.c2.kafka.bootstrap.servers = k:9092",
        "a1.sinks.k1.type = logger",
        "a1.sinks.k1.channel = c1",
        &k2,
        "a1.sinks.k2.hdfs.path = hdfs://namenode:8020/x",
        "a1.sinks.k2.channel = c2",
    ];
    lines.extend_from_slice(extra);
    conf(&lines)
}

#[test]
fn what_flumen_lacks_is_named_through_selectors_groups_and_channels() {
    // A selector routing to a channel Flumen lacks: the source is Flumen's drop.
    const JDBC: &str = "jdbc";
    let cfg = two_lanes(
        JDBC,
        "logger",
        &[
            "a1.sources.r1.selector.type = multiplexing",
            "a1.sources.r1.selector.header = h",
            "a1.sources.r1.selector.mapping.a = c2",
            "a1.sources.r1.selector.default = c1",
        ],
    );
    let (_, json, _) = check_json(&cfg, &[]);
    let refusal = message(at(&json, "partial-topology", "a1", 9));
    assert!(
        refusal.contains("source `r1` needs channel(s) c2 for its selector and would feed c1, c2"),
        "{refusal}"
    );
    assert_flume_not_blamed(&json);
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    assert!(
        json["topology"]["sources"]
            .as_array()
            .is_some_and(|s| s.is_empty()),
        "{json:#}"
    );
    assert_flume_not_blamed(&json);

    // A sink Flumen lacks on a channel Flumen lacks: both are named.
    let (_, json, _) = check_json(&two_lanes(JDBC, "hdfs", &[]), &[]);
    let refusal = message(at(&json, "partial-topology", "a1", 9));
    assert!(
        refusal.contains("channel `c2` needs the Flume type `jdbc`")
            && refusal.contains(
                "sink `k2` needs HDFS's native client (for `hdfs://namenode:8020/x`) and would drain c2"
            ),
        "{refusal}"
    );
    at(&json, "unsupported-type", "a1.sinks.k2.hdfs.path", 14);

    // A sink group whose processor is a plugin: its sinks are Flumen's drop, not Flume's.
    let cfg = two_lanes(
        "file",
        "logger",
        &[
            "a1.sinkgroups = g1",
            "a1.sinkgroups.g1.sinks = k2",
            "a1.sinkgroups.g1.processor.type = com.example.MyProcessor",
        ],
    );
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    at(
        &json,
        "unsupported-type",
        "a1.sinkgroups.g1.processor.type",
        18,
    );
    let f = message(at(&json, "no-consumer", "a1.channels.c2", 9));
    assert!(
        f.contains("its sink(s) `k2` could not be started by Flumen"),
        "{f}"
    );
    assert_flume_not_blamed(&json);
}

#[test]
fn did_you_mean_never_repeats_the_key_and_finds_prefixed_keys() {
    let cfg = conf(&[
        "a1.sources = r1",
        "a1.channels = c1",
        "a1.sinks = k1",
        "a1.sources.r1.type = spooldir",
        "a1.sources.r1.spoolDir = /tmp/spool",
        "a1.sources.r1.channels = c1",
        "a1.sources.r1.deserializer.decodeErrorPolicy = IGNORE",
        "a1.channels.c1.type = file",
        "a1.sinks.k1.type = logger",
        "a1.sinks.k1.channel = c1",
    ]);
    let (_, json, _) = check_json(&cfg, &[]);
    let f = at(
        &json,
        "ignored-key",
        "a1.sources.r1.deserializer.decodeErrorPolicy",
        7,
    );
    assert_eq!(f["suggestion"], "decodeErrorPolicy");
    // An ignored key's suggestion is relative to its component (`a1.sources.r1.`).
    for f in json["findings"].as_array().into_iter().flatten() {
        let key = f["key"].as_str().unwrap_or_default();
        let relative = key.splitn(4, '.').nth(3).unwrap_or(key);
        assert_ne!(f["suggestion"].as_str(), Some(relative), "{f}");
        assert_ne!(f["suggestion"], f["key"], "{f}");
    }
    // Types Flume 1.11 no longer ships say so.
    for (type_, words) in [
        ("elasticsearch", "FLUME-3414"),
        ("org.apache.flume.sink.kite.DatasetSink", "FLUME-3401"),
    ] {
        let cfg = cfg.replace(
            "a1.sinks.k1.type = logger",
            &format!("a1.sinks.k1.type = {type_}"),
        );
        let (_, json, _) = check_json(&cfg, &[]);
        let f = message(at(&json, "unsupported-type", "a1.sinks.k1.type", 9));
        assert!(f.contains(words) && f.contains("Flume 1.11"), "{f}");
    }
}
