//! Every corpus config loads for each agent it defines, and the structure Flumen keeps matches
//! what Flume's rules give (worked out by hand from the files and Flume's source).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::time::Instant;

use flumen::config::{load_with_env, ConfigSource, FindingKind, LoadRequest, Loaded};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/flume-configs")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "properties"));
    files.sort();
    files
}

fn find(prefix: &str) -> PathBuf {
    corpus_files()
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .unwrap_or_else(|| panic!("corpus file {prefix}* is missing"))
}

fn load_agent(file: &Path, agent: &str, sys: &[(&str, &str)], env: &[(&str, &str)]) -> Loaded {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let request = LoadRequest {
        sources: vec![ConfigSource::File(file.to_path_buf())],
        agent: agent.to_string(),
        system_properties: sys
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        env_var_resolver: false,
    };
    let lookup = |k: &str| env.get(k).cloned();
    load_with_env(&request, &lookup).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The structure Flume keeps for one agent, in list order.
#[derive(Debug, PartialEq, Eq)]
struct Topology {
    sources: Vec<(String, Vec<String>)>,
    channels: Vec<String>,
    sinks: Vec<(String, String)>,
    groups: Vec<(String, Vec<String>)>,
}

fn topology(loaded: &Loaded) -> Option<Topology> {
    let a = loaded.agent.as_ref()?;
    Some(Topology {
        sources: a
            .sources
            .iter()
            .map(|s| (s.component.name.clone(), s.channels.clone()))
            .collect(),
        channels: a.channels.iter().map(|c| c.name.clone()).collect(),
        sinks: a
            .sinks
            .iter()
            .map(|s| (s.component.name.clone(), s.channel.clone()))
            .collect(),
        groups: a
            .sinkgroups
            .iter()
            .map(|g| (g.name.clone(), g.sinks.clone()))
            .collect(),
    })
}

fn s(v: &str) -> String {
    v.to_string()
}

fn list(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Builds the expected topology from compact literals.
fn topo(
    sources: &[(&str, &[&str])],
    channels: &[&str],
    sinks: &[(&str, &str)],
    groups: &[(&str, &[&str])],
) -> Option<Topology> {
    Some(Topology {
        sources: sources.iter().map(|(n, c)| (s(n), list(c))).collect(),
        channels: list(channels),
        sinks: sinks.iter().map(|(n, c)| (s(n), s(c))).collect(),
        groups: groups.iter().map(|(n, m)| (s(n), list(m))).collect(),
    })
}

fn has(loaded: &Loaded, kind: FindingKind, key: &str, line: Option<u32>) -> bool {
    loaded.findings.iter().any(|f| {
        f.kind == kind
            && f.key == key
            && (line.is_none() || f.origin.as_ref().map(|o| o.line) == line)
    })
}

fn assert_has(loaded: &Loaded, kind: FindingKind, key: &str, line: Option<u32>) {
    assert!(
        has(loaded, kind, key, line),
        "no {kind:?} finding for {key} at {line:?}; findings:\n{}",
        loaded
            .findings
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_corpus_file_loads_for_every_agent_it_defines() {
    let files = corpus_files();
    assert!(
        files.len() >= 40,
        "corpus not found at {}",
        corpus_dir().display()
    );
    for file in files {
        let probe = load_agent(&file, "no-such-agent", &[], &[]);
        assert!(probe.agent.is_none());
        assert!(probe
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::AgentNotFound));
        assert!(
            !probe.agent_names.is_empty(),
            "{}: no agent found",
            file.display()
        );
        for agent in &probe.agent_names {
            let started = Instant::now();
            let loaded = load_agent(&file, agent, &[], &[]);
            assert!(
                started.elapsed().as_secs() < 5,
                "{}: slow load",
                file.display()
            );
            for f in &loaded.findings {
                let placeless = matches!(
                    f.kind,
                    FindingKind::AgentNotFound | FindingKind::AgentNotStarted
                );
                assert!(
                    placeless || f.origin.is_some(),
                    "{} / {agent}: finding without a place: {f}",
                    file.display()
                );
                assert!(!f.message.is_empty() && f.message.ends_with('.'), "{f}");
            }
        }
    }
}

#[test]
fn corpus_002_five_agents_with_invalid_parts() {
    let file = find("002");
    // host1: a clean seq -> memory -> null pipeline.
    let host1 = load_agent(&file, "host1", &[], &[]);
    assert_eq!(
        topology(&host1),
        topo(
            &[("source1", &["channel1"])],
            &["channel1"],
            &[("sink1", "channel1")],
            &[]
        )
    );
    // host2: no `host2.channels` key; AgentConfiguration.isValid: no channels -> agent invalid.
    let host2 = load_agent(&file, "host2", &[], &[]);
    assert_eq!(topology(&host2), None);
    assert!(host2
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::AgentNotStarted));
    // host3: validateChannels: ch1 has no properties -> dropped; ch2 has no type
    // (ComponentConfiguration.configure throws) -> dropped; no valid channel -> agent invalid.
    let host3 = load_agent(&file, "host3", &[], &[]);
    assert_eq!(topology(&host3), None);
    assert_has(
        &host3,
        FindingKind::DroppedComponent,
        "host3.channels",
        None,
    );
    assert_has(
        &host3,
        FindingKind::DroppedComponent,
        "host3.channels.ch2",
        None,
    );
    // host3.channels.ch3 is configured but not listed: one finding for its keys.
    assert_has(&host3, FindingKind::IgnoredKey, "host3.channels.ch3", None);
    // host4: ch1 dropped (no properties), ch2 kept (type abc); validateSources: src2 has no
    // properties -> dropped; no sinks list -> no sinks; no source and no sink -> agent invalid.
    let host4 = load_agent(&file, "host4", &[], &[]);
    assert_eq!(topology(&host4), None);
    assert_has(&host4, FindingKind::DroppedComponent, "host4.sources", None);
    assert_has(&host4, FindingKind::IgnoredKey, "host4.sources.src1", None);
    // host5: validateSinks: sink3 has no properties -> dropped; validGroupSinks: sink3 is not
    // an active sink -> left out of sg1, which keeps sink1 and sink2.
    let host5 = load_agent(&file, "host5", &[], &[]);
    assert_eq!(
        topology(&host5),
        topo(
            &[("src1", &["ch1"])],
            &["ch1"],
            &[("sink1", "ch1"), ("sink2", "ch1")],
            &[("sg1", &["sink1", "sink2"])]
        )
    );
    assert_has(&host5, FindingKind::DroppedComponent, "host5.sinks", None);
    assert_has(
        &host5,
        FindingKind::BadValue,
        "host5.sinkgroups.sg1.sinks",
        None,
    );
}

#[test]
fn corpus_003_environment_substitution() {
    let file = find("003");
    // MapResolver with -DpropertiesImplementation=...EnvVarResolverProperties: a bare
    // ${NC_PORT} falls back to the environment.
    let request = LoadRequest {
        sources: vec![ConfigSource::File(file.clone())],
        agent: s("a1"),
        system_properties: BTreeMap::new(),
        env_var_resolver: true,
    };
    let env = |k: &str| (k == "NC_PORT").then(|| s("6667"));
    let loaded = load_with_env(&request, &env).expect("loads");
    let expected = topo(&[("r1", &["c1"])], &["c1"], &[("k1", "c1")], &[]);
    assert_eq!(topology(&loaded), expected);
    let port = loaded
        .agent
        .as_ref()
        .and_then(|a| a.sources[0].component.props.get("port"));
    assert_eq!(port.map(|p| p.value.as_str()), Some("6667"));
    // `a1.channels` is written twice (lines 25 and 32): the first is overridden.
    assert_has(&loaded, FindingKind::IgnoredKey, "a1.channels", Some(25));
    // Without the resolver mode, ${NC_PORT} names no property: left as is and reported.
    let plain = load_agent(&file, "a1", &[], &[("NC_PORT", "6667")]);
    let port = plain
        .agent
        .as_ref()
        .and_then(|a| a.sources[0].component.props.get("port"));
    assert_eq!(port.map(|p| p.value.as_str()), Some("${NC_PORT}"));
    assert_has(
        &plain,
        FindingKind::Substitution,
        "a1.sources.r1.port",
        Some(22),
    );
}

#[test]
fn corpus_005_recursive_lookup() {
    let file = find("005");
    // ${${sys:env}_BIND} -> ${DEV_BIND} -> the file's own DEV_BIND.
    let loaded = load_agent(&file, "a1", &[("env", "DEV")], &[]);
    assert_eq!(
        topology(&loaded),
        topo(&[("r1", &["c1"])], &["c1"], &[("k1", "c1")], &[])
    );
    let bind = loaded
        .agent
        .as_ref()
        .and_then(|a| a.sources[0].component.props.get("bind"));
    assert_eq!(bind.map(|p| p.value.as_str()), Some("192.168.11.101"));
    // DEV_BIND is used as a variable; PROD_BIND is a key of no agent that nothing uses.
    assert!(!has(&loaded, FindingKind::IgnoredKey, "DEV_BIND", None));
    assert_has(&loaded, FindingKind::IgnoredKey, "PROD_BIND", Some(19));
}

#[test]
fn corpus_009_space_separator_and_overridden_sink_channel() {
    let file = find("009");
    // morphSink.channel is set twice: memoryChannel (line 11) is overridden by tweetsChannel
    // (line 33), the last value, so validateSinks finds the channel active.
    let loaded = load_agent(&file, "tweetsAgent", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("sqsSource", &["tweetsChannel"])],
            &["tweetsChannel"],
            &[("morphSink", "tweetsChannel")],
            &[]
        )
    );
    assert_has(
        &loaded,
        FindingKind::IgnoredKey,
        "tweetsAgent.sinks.morphSink.channel",
        Some(11),
    );
    // `checkpointInterval 3000`: a blank separates key and value.
    let channel = &loaded
        .agent
        .as_ref()
        .map(|a| a.channels[0].props.clone())
        .unwrap_or_default();
    assert_eq!(
        channel.get("checkpointInterval").map(|p| p.value.as_str()),
        Some("3000")
    );
}

#[test]
fn corpus_012_crlf_line_ends() {
    let file = find("012");
    // CRLF ends lines; `PurePathChannel ` (trailing blank) is trimmed by addRawProperty.
    let loaded = load_agent(&file, "agent1", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("HTTPSource", &["PurePathChannel"])],
            &["PurePathChannel"],
            &[("ElasticSearchSink", "PurePathChannel")],
            &[]
        )
    );
    let sink = loaded
        .agent
        .as_ref()
        .map(|a| a.sinks[0].component.props.clone())
        .unwrap_or_default();
    assert_eq!(sink.get("batchSize").map(|p| p.value.as_str()), Some("10"));
    assert_eq!(sink.get("batchSize").map(|p| p.origin.line), Some(17));
}

#[test]
fn corpus_016_two_agents_with_mismatched_names() {
    let file = find("016");
    // a1 is complete; a1.sources.sk1.* configures a source that a1.sources does not list.
    let a1 = load_agent(&file, "a1", &[], &[]);
    assert_eq!(
        topology(&a1),
        topo(&[("sc1", &["ch1"])], &["ch1"], &[("sk1", "ch1")], &[])
    );
    assert_has(&a1, FindingKind::IgnoredKey, "a1.sources.sk1", Some(16));
    // a2 lists sc2/ch2/sk2 but configures sc1/ch1/sk1: validateChannels drops ch2 (no
    // properties), so there is no valid channel and the agent is invalid.
    let a2 = load_agent(&file, "a2", &[], &[]);
    assert_eq!(topology(&a2), None);
    assert!(a2
        .findings
        .iter()
        .any(|f| f.kind == FindingKind::AgentNotStarted));
    let dropped = a2
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::DroppedComponent && f.key == "a2.channels");
    assert_eq!(dropped.and_then(|f| f.suggestion.as_deref()), Some("ch1"));
    // -n a (misspelt agent): not found, with a suggestion.
    let a = load_agent(&file, "a", &[], &[]);
    let not_found = a
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::AgentNotFound);
    assert_eq!(not_found.and_then(|f| f.suggestion.as_deref()), Some("a1"));
}

#[test]
fn corpus_018_tab_separators() {
    let file = find("018");
    // `keep-alive<TAB>= 1`: the tab ends the key, then one `=` is skipped.
    let loaded = load_agent(&file, "agent", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("avroSource", &["memoryChannel"])],
            &["memoryChannel"],
            &[("hdfsSink", "memoryChannel")],
            &[]
        )
    );
    let channel = loaded
        .agent
        .as_ref()
        .map(|a| a.channels[0].props.clone())
        .unwrap_or_default();
    assert_eq!(
        channel.get("keep-alive").map(|p| p.value.as_str()),
        Some("1")
    );
}

#[test]
fn corpus_030_crlf_spooldir_file_roll() {
    let loaded = load_agent(&find("030"), "agent_1", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("log_dir_src", &["dest_1_ch"])],
            &["dest_1_ch"],
            &[("dest_1_sk", "dest_1_ch")],
            &[]
        )
    );
    let sink = loaded
        .agent
        .as_ref()
        .map(|a| a.sinks[0].component.props.clone())
        .unwrap_or_default();
    assert_eq!(
        sink.get("sink.directory").map(|p| p.value.as_str()),
        Some("data/ACCEPTED/dest_1")
    );
}

#[test]
fn corpus_034_load_balance_group_with_repeated_keys() {
    // r1.channels, k1.channel, k2.channel are repeated at the end with the same values; the
    // earlier ones are overridden. g1 keeps both sinks (validateGroups).
    let loaded = load_agent(&find("034"), "a1", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("r1", &["c1"])],
            &["c1"],
            &[("k1", "c1"), ("k2", "c1")],
            &[("g1", &["k1", "k2"])]
        )
    );
    assert_has(
        &loaded,
        FindingKind::IgnoredKey,
        "a1.sources.r1.channels",
        None,
    );
    assert_has(
        &loaded,
        FindingKind::IgnoredKey,
        "a1.sinks.k1.channel",
        None,
    );
}

#[test]
fn corpus_040_indented_keys() {
    // Leading blanks of a line are skipped by the properties reader.
    let loaded = load_agent(&find("040"), "a1", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("source1", &["channel1"])],
            &["channel1"],
            &[("sink1", "channel1")],
            &[]
        )
    );
}

#[test]
fn corpus_080_three_agents() {
    let file = find("080");
    let a1 = load_agent(&file, "a1", &[], &[]);
    assert_eq!(
        topology(&a1),
        topo(
            &[("s1", &["c1"])],
            &["c1"],
            &[("k1", "c1"), ("k2", "c1")],
            &[("g1", &["k1", "k2"])]
        )
    );
    let a2 = load_agent(&file, "a2", &[], &[]);
    assert_eq!(
        topology(&a2),
        topo(&[("s2", &["c2"])], &["c2"], &[("k2", "c2")], &[])
    );
    let a3 = load_agent(&file, "a3", &[], &[]);
    assert_eq!(
        topology(&a3),
        topo(&[("s3", &["c3"])], &["c3"], &[("k3", "c3")], &[])
    );
    assert_eq!(a1.agent_names, list(&["a1", "a2", "a3"]));
}

#[test]
fn corpus_082_failover_group() {
    let loaded = load_agent(&find("082"), "a1", &[], &[]);
    assert_eq!(
        topology(&loaded),
        topo(
            &[("s1", &["fc1"])],
            &["fc1"],
            &[("k1", "fc1"), ("k2", "fc1")],
            &[("g1", &["k1", "k2"])]
        )
    );
    let group = loaded
        .agent
        .as_ref()
        .map(|a| a.sinkgroups[0].props.clone())
        .unwrap_or_default();
    assert_eq!(
        group.get("processor.type").map(|p| p.value.as_str()),
        Some("failover")
    );
    // `sem\.log`: `\.` is an escape for `.`.
    let source = loaded
        .agent
        .as_ref()
        .map(|a| a.sources[0].component.props.clone())
        .unwrap_or_default();
    assert_eq!(
        source.get("ignorePattern").map(|p| p.value.as_str()),
        Some("sem.log")
    );
}

/// Prints the findings and topology of one corpus file: `F=002 A=host5 cargo test --test
/// config_corpus print_one -- --ignored --nocapture`.
#[test]
#[ignore]
fn print_one() {
    let file = find(&std::env::var("F").unwrap_or_else(|_| s("001")));
    let agent = std::env::var("A").unwrap_or_else(|_| s("agent"));
    let loaded = load_agent(&file, &agent, &[], &[]);
    for f in &loaded.findings {
        println!("{f}");
    }
    println!("{:#?}", topology(&loaded));
}
