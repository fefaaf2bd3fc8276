//! Unit tests of the aggregate interceptor, driven by a fake clock (no sleeping).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::*;
use crate::config::{Finding, FindingKind, Props};

struct FakeClock(AtomicI64);

impl Clock for FakeClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// An interceptor over a fake clock, and the clock.
struct Rig {
    agg: AggregateInterceptor,
    clock: Arc<FakeClock>,
}

impl Rig {
    fn new(keys: &[(&str, &str)], start_ms: i64) -> Rig {
        let p = props(keys);
        let mut r = PropReader::new(&p, "a1.sources.r1.interceptors.agg");
        let cfg = AggregateConfig::from_props(&mut r).expect("valid config");
        assert!(!r.is_fatal());
        let clock = Arc::new(FakeClock(AtomicI64::new(start_ms)));
        let agg = AggregateInterceptor::new(cfg, clock.clone());
        Rig { agg, clock }
    }

    fn at(&self, now: i64) -> &Self {
        self.clock.0.store(now, Ordering::SeqCst);
        self
    }

    async fn send(&mut self, now: i64, events: Vec<Event>) -> (Vec<Event>, InterceptCtx) {
        self.at(now);
        let mut ctx = InterceptCtx::default();
        let out = self.agg.intercept(events, &mut ctx).await;
        (out, ctx)
    }

    async fn flush(&mut self, now: i64, last: bool) -> Vec<Summary> {
        self.at(now);
        let mut ctx = InterceptCtx::default();
        let out = self.agg.flush(last, &mut ctx).await;
        assert!(ctx.bad_events().is_empty() && ctx.filtered_count() == 0);
        out.iter().map(Summary::of).collect()
    }
}

/// The parts of a summary event the tests compare.
#[derive(Debug, PartialEq)]
struct Summary {
    group: String,
    start: i64,
    end: i64,
    count: u64,
    value: String,
    partial: bool,
}

impl Summary {
    fn of(e: &Event) -> Summary {
        let h = |k: &str| e.headers.get(k).map(|v| v.to_string()).unwrap_or_default();
        let value = h(VALUE_HEADER);
        assert_eq!(e.body, value.as_bytes(), "the body is the value");
        Summary {
            group: h("host"),
            start: h(WINDOW_START_HEADER).parse().unwrap(),
            end: h(WINDOW_END_HEADER).parse().unwrap(),
            count: h(COUNT_HEADER).parse().unwrap(),
            value,
            partial: h(PARTIAL_HEADER) == "true",
        }
    }
}

fn s(group: &str, start: i64, count: u64, value: &str, partial: bool) -> Summary {
    Summary {
        group: group.into(),
        start,
        end: start + 1000,
        count,
        value: value.into(),
        partial,
    }
}

fn props(entries: &[(&str, &str)]) -> Props {
    Props::from_pairs("test.properties", "a1.sources.r1.interceptors.agg", entries)
}

/// An event with `host`, value header `v` and (when given) a timestamp.
fn ev(host: &str, v: &str, ts: Option<i64>) -> Event {
    let mut h = Headers::new();
    if !host.is_empty() {
        h.insert("host".into(), host.into());
    }
    h.insert("v".into(), v.into());
    if let Some(ts) = ts {
        h.insert("timestamp".into(), ts.to_string().into());
    }
    Event::with_headers(h, format!("body-{v}"))
}

fn keys<'a>(function: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut k = vec![
        ("function", function),
        ("valueHeader", "v"),
        ("groupBy", "host"),
        ("windowMs", "1000"),
    ];
    k.extend_from_slice(extra);
    k
}

/// One stream in processing time: window [0,1000) gets a:1,3,2 and b:10; [1000,2000) gets a:5.
async fn processing_stream(function: &str) -> (Vec<Summary>, Vec<Summary>, Vec<Summary>) {
    let mut rig = Rig::new(&keys(function, &[]), 0);
    let (out, ctx) = rig
        .send(
            100,
            vec![ev("a", "1", None), ev("b", "10", None), ev("a", "3", None)],
        )
        .await;
    assert_eq!(out.len(), 3, "originals go on");
    assert!(ctx.bad_events().is_empty() && ctx.filtered_count() == 0);
    rig.send(900, vec![ev("a", "2", None)]).await;
    let before_end = rig.flush(999, false).await;
    rig.send(1200, vec![ev("a", "5", None)]).await;
    let closed = rig.flush(1200, false).await;
    let last = rig.flush(1500, true).await;
    (before_end, closed, last)
}

#[tokio::test]
async fn each_function_summarises_each_group_and_window_in_processing_time() {
    for (function, a, b, a2) in [
        ("count", "3", "1", "1"),
        ("sum", "6", "10", "5"),
        ("avg", "2", "10", "5"),
        ("min", "1", "10", "5"),
        ("max", "3", "10", "5"),
    ] {
        let (before_end, closed, last) = processing_stream(function).await;
        assert_eq!(before_end, vec![], "{function}: window still open");
        assert_eq!(
            closed,
            vec![s("a", 0, 3, a, false), s("b", 0, 1, b, false)],
            "{function}"
        );
        assert_eq!(last, vec![s("a", 1000, 1, a2, true)], "{function}");
    }
}

#[tokio::test]
async fn a_summary_carries_exactly_the_documented_headers() {
    let mut rig = Rig::new(&keys("avg", &[("groupBy", "host, dc")]), 0);
    let mut e = ev("a", "2", None);
    e.headers.insert("dc".into(), "eu".into());
    rig.send(10, vec![e, ev("a", "3", None)]).await;
    rig.at(1000);
    let mut ctx = InterceptCtx::default();
    let out = rig.agg.flush(false, &mut ctx).await;
    let h = |k: &str, v: &str| (k.into(), v.into());
    let want_eu: Headers = [
        h("timestamp", "0"),
        h("host", "a"),
        h("dc", "eu"),
        h(FUNCTION_HEADER, "avg"),
        h(WINDOW_START_HEADER, "0"),
        h(WINDOW_END_HEADER, "1000"),
        h(COUNT_HEADER, "1"),
        h(VALUE_HEADER, "2"),
    ]
    .into_iter()
    .collect();
    let mut want_none = want_eu.clone();
    want_none.insert("dc".into(), "".into());
    want_none.insert(VALUE_HEADER.into(), "3".into());
    // Sorted by group values: ("a", "") before ("a", "eu").
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].headers, want_none);
    assert_eq!(&out[0].body[..], b"3");
    assert_eq!(out[1].headers, want_eu);
}

#[tokio::test]
async fn starting_mid_window_marks_the_first_window_partial() {
    let mut rig = Rig::new(&keys("count", &[]), 400);
    rig.send(500, vec![ev("a", "x", None)]).await;
    rig.send(1500, vec![ev("a", "x", None)]).await;
    assert_eq!(
        rig.flush(2000, false).await,
        vec![s("a", 0, 1, "1", true), s("a", 1000, 1, "1", false)]
    );
}

#[tokio::test]
async fn a_clock_stepping_back_does_not_reopen_a_flushed_window() {
    let mut rig = Rig::new(&keys("count", &[]), 0);
    rig.send(1500, vec![ev("a", "x", None)]).await;
    assert_eq!(
        rig.flush(2000, false).await,
        vec![s("a", 1000, 1, "1", false)]
    );
    // The system clock steps back into [1000, 2000): the event goes to the current window.
    rig.send(1200, vec![ev("a", "x", None)]).await;
    assert_eq!(
        rig.flush(1300, true).await,
        vec![s("a", 2000, 1, "1", true)]
    );
}

/// An out-of-order event-time stream, within 500 ms of lateness.
fn event_stream() -> Vec<Event> {
    vec![
        ev("a", "4", Some(10_100)),
        ev("b", "1", Some(10_200)),
        ev("a", "6", Some(11_300)),
        ev("a", "2", Some(10_900)), // 400 ms behind: on time with 500 ms lateness
        ev("b", "7", Some(11_999)),
        ev("a", "8", Some(12_600)), // watermark 12_100: [10_000, 12_000) closed
        ev("a", "100", Some(10_500)), // late
        ev("b", "3", Some(11_700)), // late: [11_000, 12_000) ends before 12_100
    ]
}

#[tokio::test]
async fn event_time_windows_do_not_depend_on_batching() {
    let lateness = [("time", "event"), ("allowedLatenessMs", "500")];
    let mut whole = Rig::new(&keys("sum", &lateness), 0);
    let (out, ctx) = whole.send(0, event_stream()).await;
    assert!(ctx.bad_events().is_empty());
    let late: Vec<&str> = out
        .iter()
        .filter(|e| e.headers.contains_key(LATE_HEADER))
        .map(|e| e.headers["v"].as_str())
        .collect();
    assert_eq!(late, ["100", "3"], "late events pass, marked");
    assert_eq!(out.len(), 8, "every original goes on");
    assert_eq!(whole.agg.late_events(), 2);
    let closed = whole.flush(0, false).await;
    assert_eq!(
        closed,
        vec![
            s("a", 10_000, 2, "6", false),
            s("b", 10_000, 1, "1", false),
            s("a", 11_000, 1, "6", false),
            s("b", 11_000, 1, "7", false)
        ]
    );
    let rest = whole.flush(0, true).await;
    assert_eq!(rest, vec![s("a", 12_000, 1, "8", true)]);

    let mut single = Rig::new(&keys("sum", &lateness), 0);
    for e in event_stream() {
        single.send(0, vec![e]).await;
    }
    assert_eq!(single.flush(0, false).await, closed);
    assert_eq!(single.flush(0, true).await, rest);
}

#[tokio::test]
async fn allowed_lateness_decides_which_events_are_late_at_the_exact_boundary() {
    for (lateness, first_ts, late) in [
        ("500", 1_500, true),  // watermark 1000 = end of [0, 1000): closed
        ("500", 1_499, false), // watermark 999
        ("0", 999, false),
        ("0", 1_000, true),
        ("1500", 2_400, false), // watermark 900
    ] {
        let mut rig = Rig::new(
            &keys(
                "count",
                &[("time", "event"), ("allowedLatenessMs", lateness)],
            ),
            0,
        );
        rig.send(
            0,
            vec![ev("a", "x", Some(first_ts)), ev("a", "x", Some(999))],
        )
        .await;
        assert_eq!(
            rig.agg.late_events(),
            u64::from(late),
            "{lateness} {first_ts}"
        );
        let summaries = rig.flush(0, true).await;
        let first_window: u64 = summaries
            .iter()
            .filter(|s| s.start == 0)
            .map(|s| s.count)
            .sum();
        let first_in_it = u64::from(first_ts < 1_000);
        assert_eq!(
            first_window,
            first_in_it + u64::from(!late),
            "{lateness} {first_ts}"
        );
    }
}

#[tokio::test]
async fn late_events_go_to_the_dead_letter_channel_with_deadletter() {
    let mut rig = Rig::new(
        &keys("max", &[("time", "event"), ("late", "deadletter")]),
        0,
    );
    let (out, ctx) = rig
        .send(
            0,
            vec![ev("a", "1", Some(5_000)), ev("a", "9", Some(3_000))],
        )
        .await;
    assert_eq!(out.len(), 1);
    assert_eq!(ctx.bad_events().len(), 1);
    assert_eq!(ctx.bad_events()[0].event.headers["v"], "9");
    assert_eq!(
        ctx.bad_events()[0].reason,
        "late event: window [3000, 4000) closed at watermark 5000"
    );
    assert!(!ctx.bad_events()[0].event.headers.contains_key(LATE_HEADER));
    assert_eq!(rig.agg.late_events(), 1);
    assert_eq!(rig.flush(0, true).await, vec![s("a", 5_000, 1, "1", true)]);
}

#[tokio::test]
async fn an_idle_stream_closes_its_windows_by_the_processing_clock() {
    let mut rig = Rig::new(
        &keys("count", &[("time", "event"), ("allowedLatenessMs", "200")]),
        50_000,
    );
    // Old data: timestamps far behind the processing clock.
    rig.send(50_000, vec![ev("a", "x", Some(5_100))]).await;
    rig.send(50_300, vec![ev("a", "x", Some(6_100))]).await;
    assert_eq!(rig.flush(51_199, false).await, vec![], "open for 1199 ms");
    assert_eq!(
        rig.flush(51_200, false).await,
        vec![s("a", 5_000, 1, "1", false)],
        "open for windowMs + allowedLatenessMs"
    );
    // Its window is closed now: the watermark moved to 6000.
    rig.send(51_200, vec![ev("a", "x", Some(5_999))]).await;
    assert_eq!(rig.agg.late_events(), 1);
    assert_eq!(rig.flush(51_499, false).await, vec![]);
    assert_eq!(
        rig.flush(51_500, false).await,
        vec![s("a", 6_000, 1, "1", false)]
    );
}

#[tokio::test]
async fn drop_originals_consumes_folded_events_as_filtered_but_never_bad_or_late_ones() {
    let mut rig = Rig::new(
        &keys("sum", &[("time", "event"), ("dropOriginals", "true")]),
        0,
    );
    let (out, ctx) = rig
        .send(
            0,
            vec![
                ev("a", "1", Some(100)),
                ev("a", "2", Some(200)),
                ev("b", "x", Some(300)),   // bad value
                ev("a", "3", Some(1_100)), // closes [0, 1000)
                ev("a", "4", Some(500)),   // late: passes
            ],
        )
        .await;
    assert_eq!(ctx.filtered_count(), 3);
    assert_eq!(ctx.bad_events().len(), 1);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].headers["v"], "4");
    assert_eq!(out[0].headers[LATE_HEADER], "true");
    assert_eq!(
        rig.flush(0, true).await,
        vec![s("a", 0, 2, "3", false), s("a", 1_000, 1, "3", true)]
    );
}

#[tokio::test]
async fn bad_values_are_reported_and_never_folded() {
    let mut rig = Rig::new(&keys("sum", &[]), 0);
    let mut no_value = ev("a", "1", None);
    no_value.headers.remove("v");
    let (out, ctx) = rig
        .send(
            10,
            vec![
                ev("a", "1", None),
                ev("a", "abc", None),
                ev("a", "NaN", None),
                ev("a", "inf", None),
                no_value,
                ev("a", " 2 ", None),
            ],
        )
        .await;
    assert_eq!(out.len(), 2);
    let reasons: Vec<&str> = ctx.bad_events().iter().map(|b| b.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "no value to aggregate: header `v` `abc` is not a number",
            "no value to aggregate: header `v` `NaN` is not a number",
            "no value to aggregate: header `v` `inf` is not a number",
            "no value to aggregate: header `v` is missing",
        ]
    );
    assert_eq!(
        rig.flush(1_000, false).await,
        vec![s("a", 0, 2, "3", false)]
    );
}

#[tokio::test]
async fn count_reads_no_value_but_event_time_needs_a_timestamp() {
    let mut rig = Rig::new(&keys("count", &[("time", "event")]), 0);
    let mut no_ts = ev("a", "x", None);
    no_ts.headers.insert("timestamp".into(), "12:00".into());
    let (out, ctx) = rig
        .send(
            0,
            vec![ev("a", "not a number", Some(10)), ev("a", "x", None), no_ts],
        )
        .await;
    assert_eq!(out.len(), 1);
    let reasons: Vec<&str> = ctx.bad_events().iter().map(|b| b.reason.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "no event time: header `timestamp` is missing",
            "no event time: header `timestamp` `12:00` is not epoch milliseconds",
        ]
    );
    assert_eq!(rig.flush(0, true).await, vec![s("a", 0, 1, "1", true)]);
}

#[tokio::test]
async fn values_come_from_the_body_or_a_json_field() {
    let mut body = Rig::new(&[("function", "sum"), ("valueFrom", "body")], 0);
    let (_, ctx) = body
        .send(
            0,
            vec![Event::new("2.5\n"), Event::new("4"), Event::new("four")],
        )
        .await;
    assert_eq!(ctx.bad_events().len(), 1);
    assert_eq!(
        ctx.bad_events()[0].reason,
        "no value to aggregate: body `four` is not a number"
    );
    let got = body.flush(60_000, false).await;
    assert_eq!((got[0].count, got[0].value.as_str()), (2, "6.5"));

    let mut field = Rig::new(&[("function", "min"), ("valueField", "ms")], 0);
    let (_, ctx) = field
        .send(
            0,
            vec![
                Event::new(r#"{"ms": 30, "path": "/a"}"#),
                Event::new(r#"{"ms": "12"}"#),
                Event::new(r#"{"path": "/b"}"#),
                Event::new("plain text"),
            ],
        )
        .await;
    let reasons: Vec<&str> = ctx.bad_events().iter().map(|b| b.reason.as_str()).collect();
    assert_eq!(reasons.len(), 2);
    assert_eq!(
        reasons[0],
        "no value to aggregate: JSON field `ms` is missing"
    );
    assert!(reasons[1].starts_with("no value to aggregate: body is not a JSON object"));
    let got = field.flush(60_000, false).await;
    assert_eq!((got[0].count, got[0].value.as_str()), (2, "12"));
}

#[tokio::test]
async fn a_group_without_its_header_is_the_empty_group() {
    let mut rig = Rig::new(&keys("count", &[]), 0);
    let mut empty = ev("", "x", None);
    empty.headers.insert("host".into(), "".into());
    rig.send(0, vec![ev("", "x", None), empty, ev("a", "x", None)])
        .await;
    assert_eq!(
        rig.flush(1_000, false).await,
        vec![s("", 0, 2, "2", false), s("a", 0, 1, "1", false)]
    );
}

#[test]
fn flush_interval_is_a_quarter_window_between_10_ms_and_1_s() {
    for (window, ms) in [("1", 10), ("1000", 250), ("60000", 1000)] {
        let rig = Rig::new(&[("function", "count"), ("windowMs", window)], 0);
        assert_eq!(rig.agg.flush_interval(), Some(Duration::from_millis(ms)));
    }
}

fn findings(keys: &[(&str, &str)]) -> (bool, Vec<Finding>) {
    let p = props(keys);
    let mut r = PropReader::new(&p, "a1.sources.r1.interceptors.agg");
    r.mark_used("type");
    let built = AggregateInterceptor::from_props(&mut r).is_some() && !r.is_fatal();
    (built, r.finish())
}

#[test]
fn configuration_errors_are_named_and_drop_the_interceptor() {
    let (built, f) = findings(&[("function", "summ"), ("valueHeader", "v")]);
    assert!(!built);
    assert_eq!(f[0].suggestion.as_deref(), Some("sum"));
    assert_eq!(f[0].key, "a1.sources.r1.interceptors.agg.function");

    let (built, f) = findings(&[("valueHeader", "v")]);
    assert!(!built, "function is required: {f:?}");

    let (built, f) = findings(&[("function", "avg")]);
    assert!(!built);
    assert!(f[0].message.contains("needs a value"), "{f:?}");

    let (built, f) = findings(&[
        ("function", "avg"),
        ("valueHeader", "v"),
        ("valueFrom", "body"),
    ]);
    assert!(!built);
    assert!(f[0].message.contains("valueHeader and valueFrom"), "{f:?}");

    let (built, _) = findings(&[("function", "avg"), ("valueFrom", "header")]);
    assert!(!built);

    let (built, f) = findings(&[("function", "count"), ("windowMs", "0")]);
    assert!(!built);
    assert_eq!(f[0].key, "a1.sources.r1.interceptors.agg.windowMs");
}

#[test]
fn keys_that_do_not_apply_are_reported_as_ignored() {
    let (built, f) = findings(&[
        ("function", "COUNT"),
        ("valueHeader", "v"),
        ("allowedLatenessMs", "5"),
        ("late", "deadletter"),
        ("windowSize", "5"),
    ]);
    assert!(built);
    let ignored: Vec<&str> = f
        .iter()
        .filter(|f| f.kind == FindingKind::IgnoredKey)
        .map(|f| f.key.rsplit('.').next().unwrap_or(""))
        .collect();
    assert_eq!(
        ignored,
        ["valueHeader", "allowedLatenessMs", "late", "windowSize"]
    );
}

#[test]
fn the_registry_builds_it_by_alias() {
    let p = props(&[
        ("type", "aggregate"),
        ("function", "max"),
        ("valueField", "v"),
        ("groupBy", "a,b c"),
    ]);
    let mut r = PropReader::new(&p, "a1.sources.r1.interceptors.agg");
    r.mark_used("type");
    let i = match crate::interceptor::registry::build(&p.get("type").unwrap().clone(), &mut r) {
        Ok(i) => i,
        Err(e) => panic!("{}", e.finding),
    };
    assert!(r.finish().is_empty());
    assert_eq!(i.type_name(), "aggregate");
    assert_eq!(
        i.describe(),
        "function=max valueField=v groupBy=[a b c] windowMs=60000 time=processing dropOriginals=false maxGroups=100000"
    );
}

#[tokio::test]
async fn beyond_max_groups_an_event_goes_on_unfolded_and_marked_never_lost() {
    let mut rig = Rig::new(
        &keys("sum", &[("maxGroups", "2"), ("dropOriginals", "true")]),
        0,
    );
    let (out, ctx) = rig
        .send(
            100,
            vec![
                ev("a", "1", None),
                ev("b", "2", None),
                ev("c", "4", None),
                ev("a", "8", None),
            ],
        )
        .await;
    // a and b are folded (and dropped as originals); c would be a third group: it goes on.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].headers[OVERFLOW_HEADER], "true");
    assert_eq!(out[0].headers["host"], "c");
    assert_eq!(ctx.filtered_count(), 3);
    assert_eq!(rig.agg.overflow_events(), 1);
    assert_eq!(
        rig.flush(1_000, false).await,
        vec![s("a", 0, 2, "9", false), s("b", 0, 1, "2", false)]
    );
    // Closed windows free their groups: c has room now.
    let (out, _) = rig.send(1_100, vec![ev("c", "4", None)]).await;
    assert!(out.is_empty());
    assert_eq!(
        rig.flush(2_000, false).await,
        vec![s("c", 1_000, 1, "4", false)]
    );
}

#[tokio::test]
async fn an_event_time_far_ahead_of_the_clock_is_bad_and_moves_no_watermark() {
    let extra = [("time", "event"), ("maxFutureSkewMs", "60000")];
    let mut rig = Rig::new(&keys("sum", &extra), 0);
    let (out, ctx) = rig
        .send(
            10_000,
            vec![
                ev("a", "1", Some(9_500)),
                ev("a", "5", Some(10_000 + 3_600_000)),
                ev("a", "2", Some(9_700)),
            ],
        )
        .await;
    assert_eq!(out.len(), 2);
    assert_eq!(ctx.bad_events().len(), 1);
    assert!(
        ctx.bad_events()[0].reason.contains("maxFutureSkewMs"),
        "{:?}",
        ctx.bad_events()[0].reason
    );
    // 9_700 was not late: the far-future timestamp did not close window 9_000.
    assert_eq!(rig.agg.late_events(), 0);
    assert_eq!(
        rig.flush(12_000, true).await,
        vec![s("a", 9_000, 2, "3", false)]
    );
}
