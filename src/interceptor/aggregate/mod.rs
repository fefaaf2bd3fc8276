//! `aggregate` interceptor (Flumen's own; Flume has no equivalent): tumbling-window count,
//! sum, average, minimum or maximum per group, emitted as one summary event per group and
//! window.
//!
//! # Keys (relative to `<component>.interceptors.<name>.`)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `function` | required | `count`, `sum`, `avg`, `min` or `max` (case-insensitive) |
//! | `valueHeader` | none | the header holding each event's number |
//! | `valueField` | none | a top-level field of a JSON-object body holding the number (a JSON number or a string holding one) |
//! | `valueFrom` | none | `body`: the whole body is the number, as text |
//! | `groupBy` | empty | header names separated by spaces or commas; one summary per distinct combination of their values |
//! | `windowMs` | `60000` | tumbling window length in milliseconds (≥ 1); windows are aligned to the Unix epoch: `[k·windowMs, (k+1)·windowMs)` |
//! | `time` | `processing` | `processing`: an event belongs to the window of the moment it is intercepted; `event`: to the window of its timestamp header |
//! | `timestampHeader` | `timestamp` | event time only: the header holding epoch milliseconds, as Flume's `timestamp` interceptor writes it |
//! | `allowedLatenessMs` | `0` | event time only: how far behind the largest timestamp seen an event may be and still count |
//! | `late` | `pass` | event time only: what happens to a late event: `pass` (it goes on, marked `flumen.agg.late = true`) or `deadletter` (reported bad: dead-letter channel) |
//! | `dropOriginals` | `false` | `true`: events folded into a window leave the batch (counted as *filtered*); only summaries go on |
//! | `maxGroups` | `100000` | most groups held across all open windows (memory bound, below) |
//! | `maxFutureSkewMs` | `3600000` | event time only: a timestamp further than this ahead of the processing clock is bad input (it would close every open window) |
//!
//! `count` reads no value; every other function needs exactly one of `valueHeader`,
//! `valueField`, `valueFrom = body` (none, or more than one, drops the owning component, as a
//! broken interceptor does in Flume). A value key set with `count`, and `allowedLatenessMs`,
//! `late` or `timestampHeader` set with processing time, are reported as ignored.
//!
//! # Events
//!
//! - A *bad* event is reported through [`InterceptCtx::bad`] (dead-letter channel, or a failed
//!   batch without one) and is not folded: a missing or non-numeric value (`NaN` and infinities
//!   included) unless `function = count`; in event time, a missing or non-integer timestamp,
//!   whatever the function. Bad input never vanishes and never skews a summary.
//! - A missing `groupBy` header counts as the empty value: events without it and events with an
//!   empty one share a group, whose summary carries the header with an empty value.
//! - Every other event is folded into its window and group and, unless `dropOriginals = true`,
//!   goes on unchanged in its batch. Numbers (the `value` submodule): integer sums are exact
//!   (`i128`), a window holding any non-integer sums in `f64`; `avg` is always an `f64`
//!   (`2.5`, `3`, `0.3333333333333333`); min/max print the value as parsed.
//! - Memory: one accumulator (about 100 bytes plus the group values) per group per open window,
//!   at most `maxGroups` of them. An event that would open a group beyond the cap is not folded:
//!   it goes on (even with `dropOriginals = true`) marked `flumen.agg.overflow = true`, and the
//!   overflow is counted and logged at WARN (rate-limited). A `groupBy` header with unbounded
//!   distinct values therefore costs bounded memory, never an original event.
//!
//! # Event time, watermark and lateness
//!
//! The watermark is the largest timestamp seen so far minus `allowedLatenessMs`; it is updated
//! after each event, in batch order, so results do not depend on how events are batched. An
//! event whose window ends at or before the watermark (`end ≤ watermark`) is *late*: its window
//! is closed, it is never folded, it is counted (logged at WARN with the running total,
//! rate-limited), and it passes or is dead-lettered per `late`; with `pass` it goes on even
//! when `dropOriginals = true`, since no summary holds it.
//!
//! So that a stream that slows down or stops does not hold its last windows forever, the
//! processing clock also moves the watermark: a window that has been open for
//! `windowMs + allowedLatenessMs` of processing time (from its first event) closes at the next
//! flush, and the watermark moves to its end (so windows before it close too and events for
//! them become late). A stream replayed faster than real time closes windows by its timestamps.
//! A timestamp more than `maxFutureSkewMs` ahead of the processing clock is bad input (it
//! would move the watermark past every open window, which cannot go back): it is reported like
//! a missing timestamp, never folded.
//!
//! In processing time nothing is late: the clock (kept monotonic if the system clock steps
//! back) assigns every event to the current window, which closes when the clock passes its end.
//!
//! # Summaries
//!
//! Closed windows are emitted by [`Interceptor::flush`], which the runtime calls every
//! [`Interceptor::flush_interval`] (`windowMs / 4`, between 10 ms and 1 s): one event per group
//! that received at least one event, in window order then group order, with headers
//! `flumen.agg.function`, `flumen.agg.window.start` and `flumen.agg.window.end` (epoch ms, end
//! exclusive), `flumen.agg.count`, `flumen.agg.value`, `timestamp` = window start (so a sink's
//! time escapes, or a second coarser `aggregate`, see the window's time), every `groupBy`
//! header with its group's value (a `groupBy` named `timestamp` overrides the window start),
//! and `flumen.agg.partial = true` on a partial summary. The body is the value as text.
//!
//! A summary is partial when its window did not see all its events: the final flush at
//! shutdown emits every open window as partial, and in processing time the window in which the
//! interceptor started is partial (events before the start went elsewhere).
//!
//! # Redelivery
//!
//! A summary counts every event the interceptor sees, and Flume's pipeline is at-least-once:
//! an event seen twice is counted twice. On the source side that happens when the put fails
//! after the chain ran (full channel: HTTP 503, and the client resends); on the sink side when
//! a delivery fails and the take is rolled back and taken again.
//!
//! # What a crash loses
//!
//! Open windows live only in memory. On a clean stop the final flush emits them as partial
//! summaries, so nothing is lost. On kill -9 (or a power loss):
//! - with `dropOriginals = false`, every original event has already gone on with its batch
//!   (committed by the source's put, or delivered by the sink); only the summaries of the open
//!   windows (and of windows closed since the last flush) are lost. After a restart those
//!   windows start empty: in processing time the first window is marked partial; in event
//!   time, events for a window that was open at the crash produce a second summary of that
//!   window covering only the events after the restart, not marked partial (the restarted
//!   interceptor cannot know).
//! - with `dropOriginals = true`, the folded originals were removed from their batch, and that
//!   batch was committed (source side: acknowledged to the client; sink side: taken from the
//!   channel for good) before their summary existed: the data of every open window is lost,
//!   originals and summaries alike. This is the one place a Flumen pipeline is not
//!   at-least-once; choose `dropOriginals = false` where that matters.

mod config;
mod value;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::{Event, Headers};
use crate::rate_limit::RateLimit;
pub use config::{AggregateConfig, Function, ValueSource, DEFAULT_WINDOW_MS};
use value::{excerpt, json_field, Acc, Num, ValueError};

/// Header: the function (`sum`).
pub const FUNCTION_HEADER: &str = "flumen.agg.function";
/// Header: the window start, epoch milliseconds.
pub const WINDOW_START_HEADER: &str = "flumen.agg.window.start";
/// Header: the window end (exclusive), epoch milliseconds.
pub const WINDOW_END_HEADER: &str = "flumen.agg.window.end";
/// Header: how many events the summary folds.
pub const COUNT_HEADER: &str = "flumen.agg.count";
/// Header: the function's result (also the body).
pub const VALUE_HEADER: &str = "flumen.agg.value";
/// Header: `true` on a summary of a window that did not see all its events.
pub const PARTIAL_HEADER: &str = "flumen.agg.partial";
/// Header: `true` on a late event passed on with `late = pass`.
pub const LATE_HEADER: &str = "flumen.agg.late";
/// Header set on an event not folded because `maxGroups` groups are open.
pub const OVERFLOW_HEADER: &str = "flumen.agg.overflow";

/// A source of epoch milliseconds, so tests can drive time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// One open window.
struct Window {
    /// Processing time of its first event.
    opened_at: i64,
    /// Groups by key (see [`AggregateInterceptor::group_key`]).
    groups: HashMap<String, Group>,
}

struct Group {
    values: Vec<String>,
    acc: Acc,
}

/// The aggregate interceptor.
pub struct AggregateInterceptor {
    cfg: AggregateConfig,
    clock: Arc<dyn Clock>,
    started_at: i64,
    /// The processing clock, never going back.
    last_now: i64,
    /// Open windows by start.
    windows: BTreeMap<i64, Window>,
    /// Event time: windows ending at or before it are closed.
    watermark: i64,
    late_total: u64,
    late_log: RateLimit,
    /// Groups held across all open windows (at most `maxGroups`).
    groups: usize,
    overflow_total: u64,
    overflow_log: RateLimit,
    /// Reused group-key buffer.
    key: String,
}

impl AggregateInterceptor {
    /// Reads the configuration (see the module doc) and uses the system clock.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(Self::new(
            AggregateConfig::from_props(r)?,
            Arc::new(SystemClock),
        ))
    }

    /// An interceptor over `clock`.
    pub fn new(cfg: AggregateConfig, clock: Arc<dyn Clock>) -> Self {
        let now = clock.now_ms();
        AggregateInterceptor {
            cfg,
            clock,
            started_at: now,
            last_now: now,
            windows: BTreeMap::new(),
            watermark: i64::MIN,
            late_total: 0,
            late_log: RateLimit::new(Duration::from_secs(10)),
            groups: 0,
            overflow_total: 0,
            overflow_log: RateLimit::new(Duration::from_secs(10)),
            key: String::new(),
        }
    }

    /// Late events seen since the start.
    pub fn late_events(&self) -> u64 {
        self.late_total
    }

    /// Events not folded because `maxGroups` groups were open, since the start.
    pub fn overflow_events(&self) -> u64 {
        self.overflow_total
    }

    fn now(&mut self) -> i64 {
        self.last_now = self.last_now.max(self.clock.now_ms());
        self.last_now
    }

    fn value_of(&self, e: &Event) -> Result<Option<Num>, ValueError> {
        let not_a_number = |place: String, text: &str| ValueError::NotANumber {
            place,
            text: excerpt(text),
        };
        match &self.cfg.value {
            ValueSource::None => Ok(None),
            ValueSource::Header(h) => {
                let text = e
                    .headers
                    .get(h.as_str())
                    .ok_or_else(|| ValueError::MissingHeader(h.clone()))?;
                Num::parse(text)
                    .map(Some)
                    .ok_or_else(|| not_a_number(format!("header `{h}`"), text))
            }
            ValueSource::Body => {
                let text = String::from_utf8_lossy(&e.body);
                Num::parse(&text)
                    .map(Some)
                    .ok_or_else(|| not_a_number("body".into(), &text))
            }
            ValueSource::Field(f) => json_field(&e.body, f).map(Some),
        }
    }

    /// Writes the group key of `e` into `key`: each value length-prefixed, so distinct value
    /// lists never share a key.
    fn group_key(group_by: &[String], e: &Event, key: &mut String) {
        key.clear();
        for h in group_by {
            let v = e.headers.get(h.as_str()).map_or("", |v| v.as_str());
            let _ = write!(key, "{}:", v.len());
            key.push_str(v);
        }
    }

    /// Folds `e` into its window and group; `false` when that would open a group beyond
    /// `maxGroups` (nothing is folded then).
    fn fold(&mut self, start: i64, now: i64, e: &Event, value: Option<Num>) -> bool {
        let AggregateInterceptor {
            cfg,
            windows,
            key,
            groups,
            ..
        } = self;
        Self::group_key(&cfg.group_by, e, key);
        if let Some(g) = windows
            .get_mut(&start)
            .and_then(|w| w.groups.get_mut(key.as_str()))
        {
            g.acc.add(value);
            return true;
        }
        if *groups >= cfg.max_groups {
            return false;
        }
        let window = windows.entry(start).or_insert_with(|| Window {
            opened_at: now,
            groups: HashMap::new(),
        });
        let values = cfg
            .group_by
            .iter()
            .map(|h| {
                e.headers
                    .get(h.as_str())
                    .map(|v| v.to_string())
                    .unwrap_or_default()
            })
            .collect();
        let mut acc = Acc::default();
        acc.add(value);
        window.groups.insert(key.clone(), Group { values, acc });
        *groups += 1;
        true
    }

    /// An event that would have opened a group beyond `maxGroups`: it goes on, marked.
    fn overflow(&mut self, mut e: Event, out: &mut Vec<Event>) {
        self.overflow_total += 1;
        if let Some(suppressed) = self.overflow_log.check() {
            tracing::warn!(
                max_groups = self.cfg.max_groups,
                overflow_total = self.overflow_total,
                suppressed,
                "Aggregate group limit reached: the event goes on unfolded (flumen.agg.overflow = true)."
            );
        }
        e.headers.insert(OVERFLOW_HEADER.into(), "true".into());
        out.push(e);
    }

    fn late(&mut self, mut e: Event, start: i64, ctx: &mut InterceptCtx, out: &mut Vec<Event>) {
        self.late_total += 1;
        if let Some(suppressed) = self.late_log.check() {
            tracing::warn!(
                window_start = start,
                watermark = self.watermark,
                late_total = self.late_total,
                suppressed,
                "Late event: its window is already closed; it is not folded."
            );
        }
        if self.cfg.late_deadletter {
            let end = start.saturating_add(self.cfg.window_ms);
            ctx.bad(
                e,
                format!(
                    "late event: window [{start}, {end}) closed at watermark {}",
                    self.watermark
                ),
            );
        } else {
            e.headers.insert(LATE_HEADER.into(), "true".into());
            out.push(e);
        }
    }

    /// Removes the windows to emit and builds their summaries.
    fn close(&mut self, upto_end: i64, partial_all: bool, out: &mut Vec<Event>) {
        let w = self.cfg.window_ms;
        let keep = if partial_all {
            BTreeMap::new()
        } else {
            // Windows whose end is after `upto_end` stay open.
            let first_open = upto_end.saturating_sub(w).saturating_add(1);
            self.windows.split_off(&first_open)
        };
        let closed = std::mem::replace(&mut self.windows, keep);
        for (start, window) in closed {
            self.groups = self.groups.saturating_sub(window.groups.len());
            let end = start.saturating_add(w);
            let open = if self.cfg.event_time {
                end > self.watermark
            } else {
                end > self.last_now
            };
            let partial =
                (partial_all && open) || (!self.cfg.event_time && start < self.started_at);
            let mut groups: Vec<Group> = window.groups.into_values().collect();
            groups.sort_unstable_by(|a, b| a.values.cmp(&b.values));
            for g in groups {
                out.push(self.summary(start, end, g, partial));
            }
        }
    }

    fn summary(&self, start: i64, end: i64, g: Group, partial: bool) -> Event {
        let value = g.acc.result(self.cfg.function);
        let mut h = Headers::new();
        h.insert("timestamp".into(), start.to_string().into());
        for (name, v) in self.cfg.group_by.iter().zip(g.values) {
            h.insert(name.as_str().into(), v.into());
        }
        h.insert(FUNCTION_HEADER.into(), self.cfg.function.name().into());
        h.insert(WINDOW_START_HEADER.into(), start.to_string().into());
        h.insert(WINDOW_END_HEADER.into(), end.to_string().into());
        h.insert(COUNT_HEADER.into(), g.acc.count().to_string().into());
        h.insert(VALUE_HEADER.into(), value.as_str().into());
        if partial {
            h.insert(PARTIAL_HEADER.into(), "true".into());
        }
        Event::with_headers(h, value)
    }
}

#[async_trait]
impl Interceptor for AggregateInterceptor {
    fn type_name(&self) -> &'static str {
        "aggregate"
    }

    fn describe(&self) -> String {
        let c = &self.cfg;
        let value = match &c.value {
            ValueSource::None => String::new(),
            ValueSource::Header(h) => format!(" valueHeader={h}"),
            ValueSource::Field(f) => format!(" valueField={f}"),
            ValueSource::Body => " valueFrom=body".into(),
        };
        let time = if c.event_time {
            format!(
                "event timestampHeader={} allowedLatenessMs={} maxFutureSkewMs={} late={}",
                c.timestamp_header,
                c.allowed_lateness_ms,
                c.max_future_skew_ms,
                if c.late_deadletter {
                    "deadletter"
                } else {
                    "pass"
                }
            )
        } else {
            "processing".into()
        };
        format!(
            "function={}{value} groupBy=[{}] windowMs={} time={time} dropOriginals={} maxGroups={}",
            c.function.name(),
            c.group_by.join(" "),
            c.window_ms,
            c.drop_originals,
            c.max_groups
        )
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let now = self.now();
        let w = self.cfg.window_ms;
        let mut out = Vec::with_capacity(if self.cfg.drop_originals {
            0
        } else {
            events.len()
        });
        let mut folded = 0u64;
        for e in events {
            let t = if self.cfg.event_time {
                let ts = e.headers.get(self.cfg.timestamp_header.as_str());
                match ts.and_then(|t| t.trim().parse::<i64>().ok()) {
                    Some(t) => t,
                    None => {
                        let reason = match ts {
                            None => format!("header `{}` is missing", self.cfg.timestamp_header),
                            Some(t) => format!(
                                "header `{}` `{}` is not epoch milliseconds",
                                self.cfg.timestamp_header,
                                excerpt(t)
                            ),
                        };
                        ctx.bad(e, format!("no event time: {reason}"));
                        continue;
                    }
                }
            } else {
                now
            };
            let value = match self.value_of(&e) {
                Ok(v) => v,
                Err(error) => {
                    ctx.bad(e, format!("no value to aggregate: {error}"));
                    continue;
                }
            };
            let Some(start) = t.div_euclid(w).checked_mul(w) else {
                ctx.bad(e, format!("event time {t} is out of range"));
                continue;
            };
            if self.cfg.event_time {
                if t.saturating_sub(now) > self.cfg.max_future_skew_ms {
                    let skew = self.cfg.max_future_skew_ms;
                    ctx.bad(
                        e,
                        format!("event time {t} is more than maxFutureSkewMs ({skew}) ahead of the clock ({now})"),
                    );
                    continue;
                }
                if start.saturating_add(w) <= self.watermark {
                    self.late(e, start, ctx, &mut out);
                    continue;
                }
                if !self.fold(start, now, &e, value) {
                    self.overflow(e, &mut out);
                    continue;
                }
                let mark = t.saturating_sub(self.cfg.allowed_lateness_ms);
                self.watermark = self.watermark.max(mark);
            } else if !self.fold(start, now, &e, value) {
                self.overflow(e, &mut out);
                continue;
            }
            if self.cfg.drop_originals {
                folded += 1;
            } else {
                out.push(e);
            }
        }
        if folded > 0 {
            ctx.filtered(folded);
        }
        out
    }

    fn flush_interval(&self) -> Option<Duration> {
        let quarter = u64::try_from(self.cfg.window_ms / 4).unwrap_or(0);
        Some(Duration::from_millis(quarter.clamp(10, 1000)))
    }

    async fn flush(&mut self, last: bool, _ctx: &mut InterceptCtx) -> Vec<Event> {
        let now = self.now();
        let mut out = Vec::new();
        if self.cfg.event_time {
            let span = self
                .cfg
                .window_ms
                .saturating_add(self.cfg.allowed_lateness_ms);
            // The processing-clock bound: the latest window open for `span` closes, with all
            // windows before it.
            let expired = self
                .windows
                .iter()
                .filter(|(_, win)| now.saturating_sub(win.opened_at) >= span)
                .map(|(start, _)| start.saturating_add(self.cfg.window_ms))
                .max();
            if let Some(end) = expired {
                self.watermark = self.watermark.max(end);
            }
            self.close(self.watermark, last, &mut out);
        } else {
            self.close(now, last, &mut out);
        }
        out
    }
}
