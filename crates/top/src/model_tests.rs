use super::*;
use std::time::Duration;

/// A `/metrics` body in Flumen's (and Flume's) shape, every value a string.
fn body(received: u64, put: u64, taken: u64, size: u64, drained: u64, write_fail: u64) -> String {
    format!(
        r#"{{
  "SOURCE.r1": {{"Type": "SOURCE", "EventReceivedCount": "{received}", "EventAcceptedCount": "{put}",
                 "EventReadFail": "0", "ChannelWriteFail": "{}", "GenericProcessingFail": "0",
                 "StartTime": "1700000000000", "StopTime": "0"}},
  "CHANNEL.c1": {{"Type": "CHANNEL", "ChannelSize": "{size}", "ChannelCapacity": "1000",
                  "ChannelFillPercentage": "0.0", "EventPutSuccessCount": "{put}",
                  "EventTakeSuccessCount": "{taken}"}},
  "SINK.k1": {{"Type": "SINK", "EventDrainAttemptCount": "{taken}",
               "EventDrainSuccessCount": "{drained}", "ConnectionFailedCount": "1",
               "EventWriteFail": "{write_fail}", "ChannelReadFail": "0"}},
  "CHANNEL_PROCESSOR.x": {{"Type": "CHANNEL_PROCESSOR"}}
}}"#,
        received - put
    )
}

fn reading(at: Instant, body: &str) -> Reading {
    Reading {
        at,
        components: parse_metrics(body).expect("valid metrics"),
    }
}

fn graph() -> Graph {
    Graph::parse(
        r#"{"agent":"a1","sources":[["r1","netcat",["c1"]]],"channels":[["c1","memory"]],
            "sinks":[["k1","file_roll","c1"]],"sinkgroups":[],"error_channels":[]}"#,
    )
    .expect("valid topology")
}

#[test]
fn metrics_parse_into_sources_channels_and_sinks_in_that_order() {
    let c = parse_metrics(&body(10, 8, 5, 3, 4, 0)).unwrap();
    let names: Vec<(Kind, &str)> = c.iter().map(|c| (c.kind, c.name.as_str())).collect();
    assert_eq!(
        names,
        [
            (Kind::Source, "r1"),
            (Kind::Channel, "c1"),
            (Kind::Sink, "k1")
        ]
    );
    assert_eq!(c[0].get("EventReceivedCount"), Some(10.0));
    assert_eq!(c[1].get("ChannelFillPercentage"), Some(0.0));
    // "SOURCE" is not a number: left out, not an error.
    assert_eq!(c[0].get("Type"), None);
}

#[test]
fn plain_json_numbers_and_dotted_names_are_read_too() {
    let c = parse_metrics(r#"{"SINK.hdfs.k1": {"EventDrainSuccessCount": 7}}"#).unwrap();
    assert_eq!(c[0].name, "hdfs.k1");
    assert_eq!(c[0].get("EventDrainSuccessCount"), Some(7.0));
}

#[test]
fn a_document_of_the_wrong_shape_is_an_error_naming_what_it_got() {
    assert!(matches!(parse_metrics("<html>"), Err(ParseError::Json(_))));
    assert_eq!(
        parse_metrics("[1]"),
        Err(ParseError::Shape("an array".into()))
    );
    assert!(parse_metrics(r#"{"SOURCE.r1": 5}"#)
        .unwrap_err()
        .to_string()
        .contains("a number for SOURCE.r1"));
}

#[test]
fn rates_are_counter_deltas_over_the_time_between_readings() {
    let t0 = Instant::now();
    let before = reading(t0, &body(100, 100, 50, 50, 50, 0));
    let now = reading(
        t0 + Duration::from_secs(2),
        &body(300, 260, 150, 160, 140, 0),
    );
    let rows = rows(Some(&before), &now, Some(&graph()));
    let by_name = |n: &str| rows.iter().find(|r| r.name == n).unwrap();
    let r1 = by_name("r1");
    assert_eq!((r1.rate_in, r1.rate_out), (Some(100.0), Some(80.0)));
    assert_eq!(r1.type_name.as_deref(), Some("netcat"));
    let c1 = by_name("c1");
    assert_eq!((c1.rate_in, c1.rate_out), (Some(80.0), Some(50.0)));
    assert_eq!(
        c1.fill,
        Some(Fill {
            size: 160,
            capacity: 1000
        })
    );
    assert_eq!(c1.fill.unwrap().percent(), 16);
    let k1 = by_name("k1");
    assert_eq!((k1.rate_in, k1.rate_out), (Some(50.0), Some(45.0)));
    assert_eq!(r1.fill, None);
    assert_eq!(k1.fill, None);
}

#[test]
fn the_first_reading_and_a_restarted_agent_have_no_rates() {
    let t0 = Instant::now();
    let first = reading(t0, &body(100, 100, 50, 50, 50, 0));
    assert!(rows(None, &first, None)
        .iter()
        .all(|r| r.rate_in.is_none() && r.rate_out.is_none()));
    // Counters that went backwards: the agent restarted between the readings.
    let restarted = reading(t0 + Duration::from_secs(1), &body(3, 3, 1, 2, 1, 0));
    let rows = rows(Some(&first), &restarted, None);
    assert!(rows.iter().all(|r| r.rate_in.is_none()), "{rows:?}");
    assert!(rows.iter().all(|r| r.type_name.is_none()));
}

#[test]
fn errors_sum_the_failure_counters_of_each_kind_and_flag_growth() {
    let t0 = Instant::now();
    let before = reading(t0, &body(10, 8, 8, 0, 8, 2));
    let now = reading(t0 + Duration::from_secs(1), &body(10, 8, 8, 0, 8, 5));
    let rows = rows(Some(&before), &now, None);
    let by_name = |n: &str| rows.iter().find(|r| r.name == n).unwrap();
    // ChannelWriteFail = received - accepted.
    assert_eq!(
        (by_name("r1").errors, by_name("r1").errors_rising),
        (2, false)
    );
    assert_eq!(
        (by_name("c1").errors, by_name("c1").errors_rising),
        (0, false)
    );
    // ConnectionFailedCount 1 + EventWriteFail 5.
    assert_eq!(
        (by_name("k1").errors, by_name("k1").errors_rising),
        (6, true)
    );
}

#[test]
fn a_channel_without_a_capacity_has_no_fill() {
    let c =
        parse_metrics(r#"{"CHANNEL.k": {"ChannelSize": "5", "ChannelCapacity": "0"}}"#).unwrap();
    let now = Reading {
        at: Instant::now(),
        components: c,
    };
    assert_eq!(rows(None, &now, None)[0].fill, None);
}

#[test]
fn with_a_graph_the_table_follows_config_order() {
    let g = Graph::parse(
        r#"{"agent":"a1","sources":[["zz","seq",["c1"]],["aa","seq",["c1"]]],
            "channels":[["c1","memory"]],"sinks":[]}"#,
    )
    .unwrap();
    let now = reading(
        Instant::now(),
        r#"{"SOURCE.aa": {}, "SOURCE.zz": {}, "SOURCE.new": {}, "CHANNEL.c1": {}}"#,
    );
    let names: Vec<String> = rows(None, &now, Some(&g))
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["zz", "aa", "new", "c1"]);
}

#[test]
fn one_path_line_per_source_channel_sink_chain() {
    assert_eq!(
        graph().paths(),
        ["r1 (netcat) → c1 (memory) → k1 (file_roll)"]
    );
}

#[test]
fn paths_fan_out_name_sink_groups_and_mark_loose_ends() {
    let g = Graph::parse(
        r#"{"agent":"a1",
            "sources":[["r1","http",["c1","c2"]],["r2","seq",["c3"]]],
            "channels":[["c1","memory"],["c2","file"],["c3","memory"],["c4","memory"],["dlq","memory"]],
            "sinks":[["k1","avro","c1"],["k2","avro","c1"],["k3","logger","c2"],["k4","null","c4"],["k5","logger","dlq"]],
            "sinkgroups":[["g1","failover",["k1","k2"]]],
            "error_channels":[["r1","dlq"]]}"#,
    )
    .unwrap();
    assert_eq!(
        g.paths(),
        [
            "r1 (http) → c1 (memory) → k1 (avro) [group g1 (failover)]",
            "r1 (http) → c1 (memory) → k2 (avro) [group g1 (failover)]",
            "r1 (http) → c2 (file) → k3 (logger)",
            "r2 (seq) → c3 (memory) → (no sink)",
            "(no source) → c4 (memory) → k4 (null)",
            "r1 (http) ⇢ dlq (memory) [errors] → k5 (logger)",
        ]
    );
}

#[test]
fn a_topology_with_missing_fields_still_parses() {
    let g = Graph::parse(r#"{"agent":"a9"}"#).unwrap();
    assert_eq!(g.agent, "a9");
    assert!(g.paths().is_empty());
    assert!(Graph::parse("not json").is_err());
}

#[test]
fn rates_print_in_five_characters_or_fewer() {
    assert_eq!(format_rate(None), "-");
    assert_eq!(format_rate(Some(0.0)), "0");
    assert_eq!(format_rate(Some(12.54)), "12.5");
    assert_eq!(format_rate(Some(999.0)), "999");
    assert_eq!(format_rate(Some(1_234.0)), "1.23k");
    assert_eq!(format_rate(Some(12_345.0)), "12.3k");
    assert_eq!(format_rate(Some(123_456.0)), "123k");
    assert_eq!(format_rate(Some(4_560_000.0)), "4.56M");
    assert_eq!(format_rate(Some(999.6)), "1.00k");
    for r in [
        0.0, 0.07, 99.9, 99.96, 999.4, 9_994.0, 9_996.0, 99_949.0, 99_951.0, 999_499.0, 999_501.0,
        9e8, 9.999e11, 5e12,
    ] {
        assert!(
            format_rate(Some(r)).len() <= 5,
            "{r}: {}",
            format_rate(Some(r))
        );
    }
}
