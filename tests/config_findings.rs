//! Each class of config finding through the real binary: the documented message with file,
//! line and key, `flumen check` exiting non-zero, and `--strict` refusing to start.

mod common;

use std::process::Command;

use common::*;
use serde_json::Value;

const BASE: &str = "a1.sources = r1\n\
a1.channels = c1\n\
a1.sinks = k1\n\
a1.sources.r1.type = seq\n\
a1.sources.r1.totalEvents = 10\n\
a1.sources.r1.channels = c1\n\
a1.channels.c1.type = memory\n\
a1.sinks.k1.type = null\n\
a1.sinks.k1.channel = c1\n";

/// Runs `flumen check --json` on `config`; returns (exit code, parsed output, file path).
fn check(config: &str) -> (i32, Value, String) {
    check_json(config, &[])
}

/// The findings of one kind.
fn findings<'a>(json: &'a Value, kind: &str) -> Vec<&'a Value> {
    findings_of(json, kind)
}

/// Asserts exactly one finding of `kind` on `key` at `line`, and returns it.
fn one<'a>(json: &'a Value, kind: &str, key: &str, line: u64, file: &str) -> &'a Value {
    let all = findings(json, kind);
    let hits: Vec<_> = all.iter().filter(|f| f["key"] == key).collect();
    assert_eq!(
        hits.len(),
        1,
        "want one {kind} on {key}; all findings: {json:#}"
    );
    let f = hits[0];
    assert_eq!(f["line"], line, "{f:#}");
    assert_eq!(f["file"], file, "{f:#}");
    f
}

fn topology(json: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let t = &json["topology"];
    let names = |k: &str| -> Vec<String> {
        t[k].as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e[0].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    (names("sources"), names("channels"), names("sinks"))
}

/// `--strict` refuses to start an agent on the same config, exit status 2.
fn strict_refuses(config: &str) {
    let dir = test_dir();
    let mut agent = Agent::start(dir.path(), "a1", config, &["--strict"]);
    let status = agent.wait();
    assert_eq!(status.code(), Some(2), "log:\n{}", agent.log());
    assert!(agent.log().contains("Refusing to start"), "{}", agent.log());
}

#[test]
fn a_clean_config_has_no_findings() {
    let (code, json, _) = check(BASE);
    assert_eq!(json["findings"].as_array().unwrap().len(), 0, "{json:#}");
    assert_eq!(code, 0);
    assert_eq!(
        topology(&json),
        (vec!["r1".into()], vec!["c1".into()], vec!["k1".into()])
    );
}

#[test]
fn a_misspelt_type_is_unknown_with_a_suggestion_and_drops_the_component() {
    let cfg = BASE.replace(
        "a1.channels.c1.type = memory",
        "a1.channels.c1.type = memroy",
    );
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = one(&json, "unknown-type", "a1.channels.c1.type", 7, &file);
    assert_eq!(f["suggestion"], "memory");
    // Without its channel nothing can run.
    assert!(json["topology"].is_null(), "{json:#}");
    assert_eq!(findings(&json, "agent-not-started").len(), 1);
    strict_refuses(&cfg);
}

#[test]
fn a_flume_type_flumen_lacks_is_reported_unsupported_by_name() {
    let cfg = format!(
        "{BASE}a1.sinks = k1 k2\n\
         a1.sinks.k2.type = org.apache.flume.sink.hbase.AsyncHBaseSink\n\
         a1.sinks.k2.table = t\n\
         a1.sinks.k2.columnFamily = f\n\
         a1.sinks.k2.channel = c1\n"
    );
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = one(&json, "unsupported-type", "a1.sinks.k2.type", 11, &file);
    assert!(
        f["message"].as_str().unwrap().contains("AsyncHBaseSink"),
        "{f}"
    );
    // Flume would run k2: the rest does not start without --allow-partial.
    assert!(json["topology"].is_null(), "{json:#}");
    one(&json, "partial-topology", "a1", 11, &file);
    let (_, json, _) = check_json(&cfg, &["--allow-partial"]);
    assert_eq!(topology(&json).2, ["k1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_misspelt_property_is_ignored_with_a_suggestion() {
    let cfg = format!("{BASE}a1.channels.c1.capacty = 500\n");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = one(&json, "ignored-key", "a1.channels.c1.capacty", 10, &file);
    assert_eq!(f["suggestion"], "capacity");
    assert_eq!(topology(&json).1, ["c1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_bad_number_drops_the_component_as_flume_does() {
    let cfg = format!("{BASE}a1.sinks.k1.batchSize = many\n");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = one(&json, "bad-value", "a1.sinks.k1.batchSize", 10, &file);
    assert!(
        f["expected"].as_str().unwrap().contains("whole number"),
        "{f}"
    );
    assert!(topology(&json).2.is_empty());
    strict_refuses(&cfg);
}

#[test]
fn a_batch_larger_than_the_transaction_capacity_drops_the_sink() {
    let cfg = format!("{BASE}a1.sinks.k1.batchSize = 500\n");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = one(
        &json,
        "dropped-component",
        "a1.sinks.k1.batchSize",
        10,
        &file,
    );
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("transactionCapacity 100"),
        "{f}"
    );
    // Without its sink, r1 would fill memory channel c1 with no way out: refused.
    let f = one(&json, "no-consumer", "a1.channels.c1", 7, &file);
    assert!(
        f["message"].as_str().unwrap().contains("source `r1`"),
        "{f}"
    );
    assert!(json["topology"].is_null(), "{json:#}");
    strict_refuses(&cfg);
}

#[test]
fn a_sink_whose_channel_does_not_exist_is_dropped_with_a_suggestion() {
    let cfg = BASE.replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channel = c2");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = findings(&json, "dropped-component")
        .into_iter()
        .find(|f| f["key"].as_str().unwrap().starts_with("a1.sinks.k1"))
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(f["file"], file.as_str());
    assert_eq!(f["line"], 9);
    assert_eq!(f["suggestion"], "c1");
    assert!(topology(&json).2.is_empty());
    strict_refuses(&cfg);
}

#[test]
fn a_component_listed_but_never_configured_is_dropped() {
    let cfg = BASE.replace("a1.sinks = k1", "a1.sinks = k1 k9");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = findings(&json, "dropped-component")
        .into_iter()
        .find(|f| f["message"].as_str().unwrap().contains("k9"))
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(f["file"], file.as_str());
    assert_eq!(f["line"], 3);
    assert_eq!(topology(&json).2, ["k1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_component_configured_but_not_listed_is_ignored() {
    let cfg = format!("{BASE}a1.sinks.k5.type = logger\na1.sinks.k5.channel = c1\n");
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let hits: Vec<_> = findings(&json, "ignored-key")
        .into_iter()
        .filter(|f| f["key"].as_str().unwrap().starts_with("a1.sinks.k5"))
        .collect();
    assert!(!hits.is_empty(), "{json:#}");
    assert!(hits
        .iter()
        .all(|f| f["file"] == file.as_str() && f["line"].as_u64().unwrap() >= 10));
    assert_eq!(topology(&json).2, ["k1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_channel_nothing_is_connected_to_is_dropped() {
    let cfg = format!(
        "{}a1.channels.c2.type = memory\n",
        BASE.replace("a1.channels = c1", "a1.channels = c1 c2")
    );
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let f = findings(&json, "dropped-component")
        .into_iter()
        .find(|f| f["message"].as_str().unwrap().contains("c2"))
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(f["file"], file.as_str());
    assert_eq!(topology(&json).1, ["c1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_source_left_without_a_valid_channel_is_dropped() {
    let cfg = BASE.replace("a1.sources.r1.channels = c1", "a1.sources.r1.channels = cx");
    let (code, json, _) = check(&cfg);
    assert_eq!(code, 1);
    assert!(
        findings(&json, "dropped-component")
            .iter()
            .any(|f| f["message"].as_str().unwrap().contains("r1")),
        "{json:#}"
    );
    assert!(topology(&json).0.is_empty());
    assert_eq!(topology(&json).2, ["k1"]);
    strict_refuses(&cfg);
}

#[test]
fn a_sink_in_two_sink_groups_is_reported() {
    let cfg = format!(
        "{}a1.sinks.k2.type = null\na1.sinks.k2.channel = c1\n\
         a1.sinkgroups = g1 g2\n\
         a1.sinkgroups.g1.sinks = k1 k2\n\
         a1.sinkgroups.g1.processor.type = default\n\
         a1.sinkgroups.g2.sinks = k1\n\
         a1.sinkgroups.g2.processor.type = default\n",
        BASE.replace("a1.sinks = k1", "a1.sinks = k1 k2")
    );
    let (code, json, file) = check(&cfg);
    assert_eq!(code, 1);
    let all = json["findings"].as_array().unwrap();
    let f = all
        .iter()
        .find(|f| f["key"].as_str().unwrap().contains("sinkgroups.g2"))
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(f["file"], file.as_str());
    strict_refuses(&cfg);
}

#[test]
fn an_unknown_agent_name_gets_a_suggestion() {
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(&file, BASE).unwrap();
    let out = Command::new(flumen_bin())
        .args(["check", "-n", "a2", "--json", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = findings(&json, "agent-not-found");
    assert_eq!(f.len(), 1, "{json:#}");
    assert_eq!(f[0]["suggestion"], "a1");
}

#[test]
fn check_prints_findings_with_file_and_line_in_text_mode() {
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(&file, format!("{BASE}a1.channels.c1.capacty = 500\n")).unwrap();
    let out = Command::new(flumen_bin())
        .args(["check", "-n", "a1", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{}:10: [ignored-key] a1.channels.c1.capacty",
            file.display()
        )),
        "{text}"
    );
    assert!(text.contains("Did you mean `capacity`?"), "{text}");
    assert!(text.contains("source  r1 (seq) -> c1"), "{text}");
}

#[test]
fn the_agent_warns_about_findings_and_runs_the_rest() {
    let dir = test_dir();
    let cfg = format!("{BASE}a1.channels.c1.capacty = 500\n");
    let mut agent = Agent::start(dir.path(), "a1", &cfg, &[]);
    let line = agent.wait_for_log(&["WARN", "capacty"]);
    assert!(line.contains("agent.properties:10"), "{line}");
    agent.wait_for_log(&["Sequence source finished."]);
    assert!(agent.terminate().success());
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(&file, BASE).unwrap();
    let run = |fmt: &str| {
        let out = Command::new(flumen_bin())
            .args(["graph", "-n", "a1", "--format", fmt, "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mermaid = run("mermaid");
    assert!(mermaid.starts_with("flowchart LR"), "{mermaid}");
    assert!(mermaid.contains("src_r1 --> ch_c1") && mermaid.contains("ch_c1 --> sink_k1"));
    let dot = run("dot");
    assert!(dot.contains("\"source:r1\" -> \"channel:c1\";"), "{dot}");
    assert!(dot.contains("\"channel:c1\" -> \"sink:k1\";"), "{dot}");
}

#[test]
fn a_broken_sink_of_a_sink_group_stops_the_whole_agent_as_in_flume() {
    let group = "a1.sinkgroups = g1\n\
                 a1.sinkgroups.g1.sinks = k1 k2\n\
                 a1.sinkgroups.g1.processor.type = failover\n\
                 a1.sinks.k2.channel = c1\n";
    let base = BASE.replace("a1.sinks = k1", "a1.sinks = k1 k2");
    // A config error Flume also has: the whole agent is abandoned.
    let broken = format!("{base}{group}a1.sinks.k2.type = null\na1.sinks.k2.batchSize = 5000\n");
    let (code, json, _) = check(&broken);
    assert_eq!(code, 1);
    assert!(json["topology"].is_null(), "{json:#}");
    let f = findings(&json, "agent-not-started");
    assert_eq!(f.len(), 1, "{json:#}");
    assert!(
        f[0]["message"].as_str().unwrap().contains("`k2`"),
        "{json:#}"
    );
    // A type only Flumen lacks: Flume would build it, so the config does not start without
    // --allow-partial, and with it only the group loses that sink.
    let unsupported = format!(
        "{base}{group}a1.sinks.k2.type = thrift\na1.sinks.k2.hostname = h\na1.sinks.k2.port = 4141\n"
    );
    let (_, json, _) = check(&unsupported);
    assert_eq!(findings(&json, "partial-topology").len(), 1, "{json:#}");
    let (_, json, _) = check_json(&unsupported, &["--allow-partial"]);
    assert_eq!(topology(&json).2, ["k1"], "{json:#}");
    assert!(findings(&json, "agent-not-started").is_empty());
}

#[test]
fn system_properties_from_the_command_line_reach_substitution_and_logging() {
    let dir = test_dir();
    let cfg = BASE.replace("totalEvents = 10", "totalEvents = ${sys:events}");
    let mut agent = Agent::start(
        dir.path(),
        "a1",
        &cfg,
        &["-Devents=7", "-Dflume.root.logger=DEBUG,console"],
    );
    let done = agent.wait_for_log(&["Sequence source finished."]);
    assert!(done.contains("events=7"), "{done}");
    assert!(
        agent.log().contains(" DEBUG "),
        "no DEBUG line at DEBUG level"
    );
    assert!(agent.terminate().success());
}

#[test]
fn bare_names_read_the_environment_only_with_flumes_resolver_switch() {
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(
        &file,
        BASE.replace("totalEvents = 10", "totalEvents = ${FLUMEN_TEST_EVENTS}"),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(flumen_bin())
            .args(["check", "-n", "a1", "--json", "-f"])
            .arg(&file)
            .args(extra)
            .env("FLUMEN_TEST_EVENTS", "12")
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let with = run(&["-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties"]);
    assert_eq!(with["findings"].as_array().unwrap().len(), 0, "{with:#}");
    let without = run(&[]);
    assert!(
        !findings(&without, "substitution").is_empty(),
        "{without:#}"
    );
}

#[test]
fn dash_n_picks_one_agent_of_several() {
    let two = format!(
        "{BASE}{}",
        BASE.replace("a1.", "b2.")
            .replace("type = null", "type = logger")
    );
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(&file, two).unwrap();
    for (agent, sink_type) in [("a1", "null"), ("b2", "logger")] {
        let out = Command::new(flumen_bin())
            .args(["check", "-n", agent, "--json", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["topology"]["sinks"][0][1], sink_type, "{json:#}");
    }
}
