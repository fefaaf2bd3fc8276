//! Each structural rule gives the topology Flume keeps and a finding at the right line.

use std::collections::BTreeMap;

use crate::config::{load_with_env, ConfigSource, Finding, FindingKind, LoadRequest, Loaded};

fn load_env(text: &str, agent: &str, env: &[(&str, &str)]) -> Loaded {
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let request = LoadRequest {
        sources: vec![ConfigSource::Embedded {
            name: "t.properties".into(),
            text: text.into(),
        }],
        agent: agent.into(),
        ..LoadRequest::default()
    };
    let lookup = |k: &str| env.get(k).cloned();
    match load_with_env(&request, &lookup) {
        Ok(loaded) => loaded,
        Err(e) => panic!("embedded config cannot fail to read: {e}"),
    }
}

fn load(text: &str) -> Loaded {
    load_env(text, "a1", &[])
}

fn finding<'a>(loaded: &'a Loaded, kind: FindingKind, key: &str) -> &'a Finding {
    match loaded
        .findings
        .iter()
        .find(|f| f.kind == kind && f.key == key)
    {
        Some(f) => f,
        None => panic!("no {kind:?} for {key} in {:#?}", loaded.findings),
    }
}

fn line(f: &Finding) -> u32 {
    f.origin.as_ref().map_or(0, |o| o.line)
}

const BASE: &str = "\
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.sinks.k1.type = logger
a1.sinks.k1.channel = c1
";

fn names(loaded: &Loaded) -> (Vec<String>, Vec<String>, Vec<String>) {
    let Some(a) = &loaded.agent else {
        return Default::default();
    };
    (
        a.sources.iter().map(|s| s.component.name.clone()).collect(),
        a.channels.iter().map(|c| c.name.clone()).collect(),
        a.sinks.iter().map(|s| s.component.name.clone()).collect(),
    )
}

#[test]
fn a_clean_config_has_no_findings_and_keeps_props_relative() {
    let loaded = load(&format!("{BASE}a1.sources.r1.port = 44444\n"));
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
    let Some(agent) = &loaded.agent else {
        panic!("agent missing")
    };
    let port = agent.sources[0].component.props.get("port");
    assert_eq!(
        port.map(|p| (p.value.as_str(), p.origin.line)),
        Some(("44444", 9))
    );
    assert!(agent.sources[0].component.props.get("channels").is_none());
    assert_eq!(agent.sources[0].component.type_.value, "netcat");
}

#[test]
fn a_misspelt_kind_key_is_ignored_with_a_suggestion() {
    let loaded = load(&format!("{BASE}a1.chanels.c1.capacity = 10\n"));
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.chanels.c1.capacity");
    assert_eq!(line(f), 9);
    assert_eq!(f.suggestion.as_deref(), Some("a1.channels.c1.capacity"));
}

#[test]
fn keys_of_no_agent_and_empty_values_are_ignored() {
    let loaded = load(&format!("{BASE}orphan = 1\na1.sinks.k1.batchSize =\n"));
    assert_eq!(line(finding(&loaded, FindingKind::IgnoredKey, "orphan")), 9);
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::IgnoredKey,
            "a1.sinks.k1.batchSize"
        )),
        10
    );
}

#[test]
fn a_listed_component_without_properties_is_dropped() {
    let text = BASE.replace("a1.sinks = k1", "a1.sinks = k1 k2");
    let loaded = load(&text);
    let f = finding(&loaded, FindingKind::DroppedComponent, "a1.sinks");
    assert_eq!(line(f), 3);
    assert_eq!(names(&loaded).2, ["k1"]);
}

#[test]
fn a_component_without_type_is_dropped() {
    let text =
        format!("{BASE}a1.sinks.k1.typ = logger\n").replace("a1.sinks.k1.type = logger\n", "");
    let loaded = load(&text);
    let f = finding(&loaded, FindingKind::DroppedComponent, "a1.sinks.k1");
    assert_eq!(line(f), 7);
    assert_eq!(f.suggestion.as_deref(), Some("a1.sinks.k1.type"));
    assert_eq!(names(&loaded).2, Vec::<String>::new());
    assert!(loaded.agent.is_some(), "the source still runs");
}

#[test]
fn a_sink_on_a_missing_channel_is_dropped_with_a_suggestion() {
    let loaded = load(&BASE.replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channel = c"));
    let f = finding(
        &loaded,
        FindingKind::DroppedComponent,
        "a1.sinks.k1.channel",
    );
    assert_eq!(line(f), 8);
    assert_eq!(f.suggestion.as_deref(), Some("c1"));
    assert!(names(&loaded).2.is_empty());
}

#[test]
fn a_sink_without_channel_is_dropped_and_channels_is_suggested() {
    let loaded = load(&BASE.replace("a1.sinks.k1.channel = c1", "a1.sinks.k1.channels = c1"));
    let f = finding(&loaded, FindingKind::DroppedComponent, "a1.sinks.k1");
    assert_eq!(f.suggestion.as_deref(), Some("a1.sinks.k1.channel"));
}

#[test]
fn unknown_source_channels_are_removed_and_a_source_with_none_is_dropped() {
    let loaded = load(&BASE.replace("r1.channels = c1", "r1.channels = c1 c9"));
    let f = finding(&loaded, FindingKind::BadValue, "a1.sources.r1.channels");
    assert_eq!(line(f), 5);
    assert_eq!(
        loaded.agent.as_ref().map(|a| a.sources[0].channels.clone()),
        Some(vec!["c1".to_string()])
    );
    let loaded = load(&BASE.replace("r1.channels = c1", "r1.channels = c9"));
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::DroppedComponent,
            "a1.sources.r1"
        )),
        5
    );
    assert!(names(&loaded).0.is_empty());
}

#[test]
fn no_channels_or_no_sources_and_sinks_means_no_agent() {
    let loaded = load(&BASE.replace("a1.channels = c1\n", ""));
    assert!(loaded.agent.is_none());
    finding(&loaded, FindingKind::AgentNotStarted, "a1");
    let loaded = load("a1.channels = c1\na1.channels.c1.type = memory\n");
    assert!(loaded.agent.is_none());
    finding(&loaded, FindingKind::AgentNotStarted, "a1");
}

#[test]
fn a_configured_but_unlisted_component_is_one_finding_at_its_first_key() {
    let loaded = load(&format!(
        "{BASE}a1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n"
    ));
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.sinks.k2");
    assert_eq!(line(f), 9);
    assert!(f.message.contains("its 2 keys"), "{f}");
    let about_k2 = loaded
        .findings
        .iter()
        .filter(|f| f.key.starts_with("a1.sinks.k2"))
        .count();
    assert_eq!(about_k2, 1, "{:#?}", loaded.findings);
    assert_eq!(names(&loaded).2, ["k1"]);
}

#[test]
fn an_empty_list_is_named_as_empty_at_its_line() {
    let loaded = load(&BASE.replace("a1.sinks = k1", "a1.sinks ="));
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.sinks");
    assert_eq!(line(f), 3);
    assert!(f.message.contains("is empty"), "{f}");
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.sinks.k1");
    assert!(f.message.contains("`a1.sinks` is empty (line 3)"), "{f}");
}

#[test]
fn an_unused_channel_is_removed() {
    let text =
        BASE.replace("a1.channels = c1", "a1.channels = c1 c2") + "a1.channels.c2.type = memory\n";
    let loaded = load(&text);
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::DroppedComponent,
            "a1.channels.c2"
        )),
        9
    );
    assert_eq!(names(&loaded).1, ["c1"]);
}

#[test]
fn sink_groups_keep_only_free_active_sinks() {
    let text = BASE.replace("a1.sinks = k1", "a1.sinks = k1 k2")
        + "a1.sinks.k2.type = logger\na1.sinks.k2.channel = c1\n\
           a1.sinkgroups = g1 g2 g3\n\
           a1.sinkgroups.g1.sinks = k1 k2\n\
           a1.sinkgroups.g1.processor.type = failover\n\
           a1.sinkgroups.g2.sinks = k2 k9\n";
    let loaded = load(&text);
    let groups: Vec<(String, Vec<String>)> = loaded
        .agent
        .as_ref()
        .map(|a| {
            a.sinkgroups
                .iter()
                .map(|g| (g.name.clone(), g.sinks.clone()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        groups,
        [("g1".to_string(), vec!["k1".to_string(), "k2".to_string()])]
    );
    let g2: Vec<&Finding> = loaded
        .findings
        .iter()
        .filter(|f| f.key == "a1.sinkgroups.g2.sinks" && f.kind == FindingKind::BadValue)
        .collect();
    assert_eq!(g2.len(), 2, "k2 is taken, k9 does not exist");
    assert_eq!(line(g2[0]), 14);
    finding(&loaded, FindingKind::DroppedComponent, "a1.sinkgroups.g2");
    finding(&loaded, FindingKind::DroppedComponent, "a1.sinkgroups");
}

#[test]
fn an_unknown_agent_is_reported_with_a_suggestion() {
    let loaded = load_env(BASE, "a", &[]);
    assert!(loaded.agent.is_none());
    let f = finding(&loaded, FindingKind::AgentNotFound, "a");
    assert_eq!(f.suggestion.as_deref(), Some("a1"));
    assert_eq!(loaded.agent_names, ["a1"]);
}

#[test]
fn other_agents_keys_are_not_reported() {
    let loaded = load(&format!("{BASE}a2.sinks.k1.chanel = c\n"));
    assert!(loaded.findings.is_empty(), "{:#?}", loaded.findings);
}

#[test]
fn env_config_filter_rewrites_component_values() {
    let text = format!(
        "{BASE}a1.configfilters = f1 f2\na1.configfilters.f1.type = env\n\
         a1.configfilters.f2.type = hadoop\n\
         a1.sources.r1.port = ${{f1['PORT']}}\na1.sources.r1.bind = ${{f1[\"HOST\"]}}\n\
         a1.sources.r1.x = ${{f1[NOPE]}}\na1.sources.r1.y = ${{f2['K']}}\n"
    );
    let loaded = load_env(&text, "a1", &[("PORT", "4444"), ("HOST", "h")]);
    let props = loaded
        .agent
        .as_ref()
        .map(|a| a.sources[0].component.props.clone())
        .unwrap_or_default();
    let v = |k: &str| props.get(k).map(|p| p.value.clone());
    assert_eq!(v("port").as_deref(), Some("4444"));
    assert_eq!(v("bind").as_deref(), Some("h"));
    assert_eq!(v("x").as_deref(), Some("${f1[NOPE]}"));
    assert_eq!(v("y").as_deref(), Some("${f2['K']}"));
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::Substitution,
            "a1.sources.r1.x"
        )),
        14
    );
    finding(
        &loaded,
        FindingKind::UnsupportedType,
        "a1.configfilters.f2.type",
    );
}

#[test]
fn substitution_problems_and_overridden_duplicates_have_lines() {
    let text = format!("{BASE}a1.sources.r1.port = ${{env:NOPE}}\na1.sources.r1.port = 1\n");
    let loaded = load(&text);
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::IgnoredKey,
            "a1.sources.r1.port"
        )),
        9
    );
    let text = format!("{BASE}a1.sources.r1.port = ${{env:NOPE}}\n");
    let loaded = load(&text);
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::Substitution,
            "a1.sources.r1.port"
        )),
        9
    );
}

#[test]
fn a_bad_unicode_escape_is_a_syntax_finding() {
    let loaded = load(&format!("{BASE}a1.sources.r1.port = \\u12\n"));
    let f = loaded
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Syntax);
    assert_eq!(f.map(line), Some(9));
}

#[test]
fn a_component_with_an_unknown_type_and_a_bad_config_key_is_dropped() {
    let text = BASE.replace("a1.sinks.k1.type = logger", "a1.sinks.k1.type = com.x.Sink")
        + "a1.sinks.k1.config = nonsense\n";
    let loaded = load(&text);
    assert_eq!(
        line(finding(
            &loaded,
            FindingKind::DroppedComponent,
            "a1.sinks.k1.config"
        )),
        9
    );
}

#[test]
fn keys_of_a_component_under_the_wrong_kind_suggest_the_right_one() {
    let loaded = load(&format!("{BASE}a1.sources.k1.batchSize = 10\n"));
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.sources.k1");
    assert_eq!(f.suggestion.as_deref(), Some("a1.sinks.k1"));
}

#[test]
fn a_typo_in_a_list_is_reported_on_the_list_not_on_the_keys() {
    let loaded = load(&BASE.replace("a1.sinks = k1", "a1.sinks = k1,"));
    let f = finding(&loaded, FindingKind::DroppedComponent, "a1.sinks");
    assert_eq!(f.suggestion.as_deref(), Some("k1"));
    let f = finding(&loaded, FindingKind::IgnoredKey, "a1.sinks.k1");
    assert_eq!(f.suggestion, None);
}

#[test]
fn a_byte_order_mark_is_reported_and_kept_in_the_first_key_as_java_does() {
    let loaded = load(&format!("\u{feff}{BASE}"));
    let f = loaded
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Syntax);
    assert_eq!(f.map(line), Some(1));
    // `\u{feff}a1.sources` belongs to another agent: a1 has no source list, so only the sink.
    assert!(names(&loaded).0.is_empty());
    assert_eq!(names(&loaded).2, ["k1"]);
}

#[test]
fn later_files_override_earlier_ones_and_bad_utf8_is_read_as_latin1() {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => panic!("temp dir: {e}"),
    };
    let first = dir.path().join("a.properties");
    let second = dir.path().join("b.properties");
    let written = std::fs::write(&first, BASE.as_bytes()).and_then(|()| {
        std::fs::write(
            &second,
            b"a1.sinks.k1.type = logger\na1.sinks.k1.x = caf\xe9\n",
        )
    });
    assert!(written.is_ok());
    let request = LoadRequest {
        sources: vec![ConfigSource::File(first), ConfigSource::File(second)],
        agent: "a1".into(),
        ..LoadRequest::default()
    };
    let loaded = match load_with_env(&request, &|_| None) {
        Ok(l) => l,
        Err(e) => panic!("{e}"),
    };
    let overridden = finding(&loaded, FindingKind::IgnoredKey, "a1.sinks.k1.type");
    assert_eq!(line(overridden), 7);
    assert!(
        overridden.message.contains("b.properties:1"),
        "{overridden}"
    );
    let latin1 = loaded
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Syntax);
    assert_eq!(latin1.map(line), Some(2));
    let x = loaded
        .agent
        .as_ref()
        .and_then(|a| a.sinks[0].component.props.get("x").map(|p| p.value.clone()));
    assert_eq!(x.as_deref(), Some("café"));
}
