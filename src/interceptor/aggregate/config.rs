//! Configuration of the `aggregate` interceptor: the keys and defaults listed in the module
//! doc of [`super`], read through a [`PropReader`].

use crate::config::{did_you_mean, Finding, FindingKind, PropReader};

/// The aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    /// Number of events.
    Count,
    /// Sum of the values.
    Sum,
    /// Mean of the values.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
}

const FUNCTIONS: [(&str, Function); 5] = [
    ("count", Function::Count),
    ("sum", Function::Sum),
    ("avg", Function::Avg),
    ("min", Function::Min),
    ("max", Function::Max),
];

impl Function {
    /// The configured spelling (`sum`).
    pub fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("count", |(n, _)| n)
    }
}

/// Where an event's number comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueSource {
    /// No value (`count`).
    None,
    /// A header.
    Header(String),
    /// A top-level field of a JSON-object body.
    Field(String),
    /// The whole body as text.
    Body,
}

/// The resolved configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateConfig {
    /// `function`.
    pub function: Function,
    /// `valueHeader` / `valueField` / `valueFrom`.
    pub value: ValueSource,
    /// `groupBy`.
    pub group_by: Vec<String>,
    /// `windowMs`.
    pub window_ms: i64,
    /// `time = event`.
    pub event_time: bool,
    /// `timestampHeader`.
    pub timestamp_header: String,
    /// `allowedLatenessMs`.
    pub allowed_lateness_ms: i64,
    /// `late = deadletter`.
    pub late_deadletter: bool,
    /// `dropOriginals`.
    pub drop_originals: bool,
    /// `maxGroups`: most groups held across all open windows.
    pub max_groups: usize,
    /// `maxFutureSkewMs`: event time only, how far ahead of the processing clock a timestamp
    /// may be.
    pub max_future_skew_ms: i64,
}

/// Default of `windowMs`.
pub const DEFAULT_WINDOW_MS: i64 = 60_000;
/// Default of `maxGroups`: about 10 MB of accumulators.
pub const DEFAULT_MAX_GROUPS: usize = 100_000;
/// Default of `maxFutureSkewMs`: one hour.
pub const DEFAULT_MAX_FUTURE_SKEW_MS: i64 = 3_600_000;
/// Largest `windowMs` / `allowedLatenessMs` accepted (about 290 years).
const MAX_MS: i64 = 1 << 53;

impl AggregateConfig {
    /// Reads the keys listed in the module doc; `None` (with a finding) when the interceptor
    /// cannot work.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let function = read_function(r);
        let value = read_value_source(r, function);
        let group_by = r
            .string("groupBy", "")
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let window_ms = r.number("windowMs", DEFAULT_WINDOW_MS, 1, MAX_MS);
        let event_time = r.choice("time", "processing", &["processing", "event"]) == "event";
        let timestamp_header = r.string("timestampHeader", "timestamp");
        if !event_time {
            for key in [
                "allowedLatenessMs",
                "late",
                "timestampHeader",
                "maxFutureSkewMs",
            ] {
                if let Some(p) = r.raw(key) {
                    r.push(Finding::new(
                        FindingKind::IgnoredKey,
                        Some(p.origin.clone()),
                        p.full_key.clone(),
                        format!("`{key}` applies to `time = event` only; it is ignored."),
                    ));
                }
            }
        }
        let allowed_lateness_ms = r.number("allowedLatenessMs", 0, 0, MAX_MS);
        let late_deadletter = r.choice("late", "pass", &["pass", "deadletter"]) == "deadletter";
        let drop_originals = r.bool("dropOriginals", false);
        let max_groups = r.number("maxGroups", DEFAULT_MAX_GROUPS, 1, 1 << 32);
        let max_future_skew_ms = if event_time {
            r.number("maxFutureSkewMs", DEFAULT_MAX_FUTURE_SKEW_MS, 0, MAX_MS)
        } else {
            r.mark_used("maxFutureSkewMs");
            Some(DEFAULT_MAX_FUTURE_SKEW_MS)
        };
        Some(AggregateConfig {
            function: function?,
            value: value?,
            group_by,
            window_ms: window_ms?,
            event_time,
            timestamp_header,
            allowed_lateness_ms: allowed_lateness_ms?,
            late_deadletter,
            drop_originals,
            max_groups: max_groups?,
            max_future_skew_ms: max_future_skew_ms?,
        })
    }
}

fn read_function(r: &mut PropReader<'_>) -> Option<Function> {
    let name = r.required_string("function")?;
    if let Some((_, f)) = FUNCTIONS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&name))
    {
        return Some(*f);
    }
    let origin = r.raw("function").map(|p| p.origin.clone());
    let names = FUNCTIONS.map(|(n, _)| n);
    let finding = Finding::new(
        FindingKind::BadValue,
        origin,
        r.full_key("function"),
        format!("Value `{name}` is not an aggregate function; the interceptor cannot be built."),
    )
    .expected(format!("one of {}", names.join(", ")))
    .suggest(did_you_mean(&name, names.iter().copied()));
    r.drop_component(finding);
    None
}

fn read_value_source(r: &mut PropReader<'_>, function: Option<Function>) -> Option<ValueSource> {
    let mut set = Vec::new();
    if let Some(h) = r.opt_string("valueHeader") {
        set.push(("valueHeader", ValueSource::Header(h)));
    }
    if let Some(f) = r.opt_string("valueField") {
        set.push(("valueField", ValueSource::Field(f)));
    }
    if let Some(v) = r.opt_string("valueFrom") {
        if v.eq_ignore_ascii_case("body") {
            set.push(("valueFrom", ValueSource::Body));
        } else {
            let origin = r.raw("valueFrom").map(|p| p.origin.clone());
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    r.full_key("valueFrom"),
                    format!("Value `{v}` is not valid; the interceptor cannot be built."),
                )
                .expected("`body` (use valueHeader or valueField for the other sources)"),
            );
            return None;
        }
    }
    if function == Some(Function::Count) {
        for (key, _) in &set {
            let origin = r.raw(key).map(|p| p.origin.clone());
            r.push(Finding::new(
                FindingKind::IgnoredKey,
                origin,
                r.full_key(key),
                format!("`{key}` is ignored: `count` reads no value."),
            ));
        }
        return Some(ValueSource::None);
    }
    match set.len() {
        1 => set.pop().map(|(_, v)| v),
        n => {
            let origin = r.raw("function").map(|p| p.origin.clone());
            let message = if n == 0 {
                "The function needs a value; the interceptor cannot be built.".to_string()
            } else {
                let keys: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
                format!(
                    "Only one value source may be set, not {}; the interceptor cannot be built.",
                    keys.join(" and ")
                )
            };
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    r.full_key("function"),
                    message,
                )
                .expected("exactly one of valueHeader, valueField, valueFrom = body"),
            );
            None
        }
    }
}
