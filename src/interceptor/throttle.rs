//! `throttle` interceptor (Flumen's own; no Flume class): lets at most `maxEvents` events
//! through per `period`.
//!
//! Keys: `maxEvents` (required, ≥ 1), `period` (milliseconds, default 1000, ≥ 1), `policy`:
//! - `block` (default): backpressure. The call waits until the current window has room, so a
//!   batch larger than the room is spread over as many windows as it needs; nothing is lost,
//!   and the source slows down (its channel puts wait, so its clients wait).
//! - `drop`: events over the limit of the current window are removed, counted as filtered, and
//!   logged at WARN (at most once every 10 s, with the number dropped since the last line and
//!   in total).
//!
//! Windows are fixed: one opens with the first event after the previous one has ended and
//! lasts `period`. With `block`, N events take at least ⌈N / maxEvents⌉ − 1 periods.
//!
//! # Cancel safety
//! With `block`, `intercept` may wait; dropping that future drops the batch it holds (the
//! caller has committed nothing for it yet), and the window keeps the events already counted.

use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::{java_regex, InterceptCtx, Interceptor};
use crate::config::{did_you_mean, PropReader};
use crate::event::Event;
use crate::rate_limit::RateLimit;

/// Default `period`, in milliseconds.
pub const DEFAULT_PERIOD_MS: u64 = 1000;
/// How often the drop warning may be logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What happens to events over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Wait for the next window.
    Block,
    /// Remove them.
    Drop,
}

/// The throttle interceptor.
pub struct ThrottleInterceptor {
    max_events: u64,
    period: Duration,
    policy: Policy,
    window_start: Option<Instant>,
    in_window: u64,
    dropped_unlogged: u64,
    dropped_total: u64,
    warn: RateLimit,
}

impl ThrottleInterceptor {
    /// Reads `maxEvents` (required), `period` (1000 ms) and `policy` (`block`).
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let max_events = r
            .required_string("maxEvents")
            .and_then(|_| r.number("maxEvents", 1u64, 1, u64::MAX));
        let period = r.number("period", DEFAULT_PERIOD_MS, 1, u64::MAX / 1_000_000);
        let policy = match r.raw("policy").map(|p| p.value.trim().to_string()) {
            None => Some(Policy::Block),
            Some(v) if v.eq_ignore_ascii_case("block") => Some(Policy::Block),
            Some(v) if v.eq_ignore_ascii_case("drop") => Some(Policy::Drop),
            Some(v) => {
                let suggestion = did_you_mean(&v.to_ascii_lowercase(), ["block", "drop"]);
                let hint = suggestion
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                java_regex::drop_for_bad_value(
                    r,
                    "policy",
                    format!("Throttle policy `{v}` is not valid{hint}; the interceptor's owner is dropped."),
                    "block or drop",
                );
                None
            }
        };
        Some(ThrottleInterceptor {
            max_events: max_events?,
            period: Duration::from_millis(period?),
            policy: policy?,
            window_start: None,
            in_window: 0,
            dropped_unlogged: 0,
            dropped_total: 0,
            warn: RateLimit::new(WARN_EVERY),
        })
    }

    /// Opens a new window if the current one has ended; returns the room left in it.
    fn room(&mut self, now: Instant) -> u64 {
        let ended = self.window_start.is_none_or(|s| now >= s + self.period);
        if ended {
            self.window_start = Some(now);
            self.in_window = 0;
        }
        self.max_events - self.in_window
    }

    async fn block(&mut self, events: &[Event]) {
        let mut remaining = events.len() as u64;
        while remaining > 0 {
            let take = self.room(Instant::now()).min(remaining);
            self.in_window += take;
            remaining -= take;
            if remaining > 0 {
                if let Some(start) = self.window_start {
                    tokio::time::sleep_until(start + self.period).await;
                }
            }
        }
    }

    fn drop_over(&mut self, events: &mut Vec<Event>, ctx: &mut InterceptCtx) {
        let room = self.room(Instant::now());
        let keep = (events.len() as u64).min(room);
        self.in_window += keep;
        let dropped = events.len() as u64 - keep;
        if dropped == 0 {
            return;
        }
        events.truncate(keep as usize);
        ctx.filtered(dropped);
        self.dropped_unlogged += dropped;
        self.dropped_total += dropped;
        if self.warn.check().is_some() {
            tracing::warn!(
                dropped = self.dropped_unlogged,
                dropped_total = self.dropped_total,
                max_events = self.max_events,
                period_ms = self.period.as_millis() as u64,
                "Throttle dropped events over its limit."
            );
            self.dropped_unlogged = 0;
        }
    }
}

#[async_trait]
impl Interceptor for ThrottleInterceptor {
    fn type_name(&self) -> &'static str {
        "throttle"
    }

    fn describe(&self) -> String {
        format!(
            "maxEvents={} period={}ms policy={}",
            self.max_events,
            self.period.as_millis(),
            match self.policy {
                Policy::Block => "block",
                Policy::Drop => "drop",
            }
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        match self.policy {
            Policy::Block => self.block(&events).await,
            Policy::Drop => self.drop_over(&mut events, ctx),
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn batch(n: usize) -> Vec<Event> {
        (0..n).map(|i| event(&i.to_string(), &[])).collect()
    }

    #[tokio::test]
    async fn block_delays_a_batch_over_windows_and_loses_nothing() {
        let mut i = build_ok("throttle", &[("maxEvents", "10"), ("period", "50")]);
        let start = std::time::Instant::now();
        let (out, ctx) = run(&mut i, batch(35)).await;
        assert_eq!(out.len(), 35);
        assert_eq!(filtered(&ctx), 0);
        // 35 events at 10 per window need 4 windows: at least 3 full periods.
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
        // The next event falls into the fourth window, which has 5 left, so no wait here.
        let (out, _) = run(&mut i, batch(5)).await;
        assert_eq!(out.len(), 5);
    }

    #[tokio::test]
    async fn drop_keeps_the_first_events_of_each_window_and_counts_the_rest() {
        let mut i = build_ok(
            "Throttle",
            &[
                ("maxEvents", "3"),
                ("period", "3600000"),
                ("policy", "DROP"),
            ],
        );
        let (out, ctx) = run(&mut i, batch(5)).await;
        let bodies: Vec<&[u8]> = out.iter().map(|e| e.body.as_ref()).collect();
        assert_eq!(bodies, vec![&b"0"[..], b"1", b"2"]);
        assert_eq!(filtered(&ctx), 2);
        let (out, ctx) = run(&mut i, batch(4)).await;
        assert!(out.is_empty());
        assert_eq!(filtered(&ctx), 4);
    }

    #[tokio::test]
    async fn drop_allows_again_in_the_next_window() {
        let mut i = build_ok(
            "throttle",
            &[("maxEvents", "2"), ("period", "20"), ("policy", "drop")],
        );
        let (out, _) = run(&mut i, batch(3)).await;
        assert_eq!(out.len(), 2);
        tokio::time::sleep(Duration::from_millis(25)).await;
        let (out, ctx) = run(&mut i, batch(2)).await;
        assert_eq!(out.len(), 2);
        assert_eq!(filtered(&ctx), 0);
    }

    #[test]
    fn bad_config_names_the_key() {
        build_err("throttle", &[], "maxEvents");
        build_err("throttle", &[("maxEvents", "0")], "maxEvents");
        build_err("throttle", &[("maxEvents", "ten")], "maxEvents");
        build_err("throttle", &[("maxEvents", "1"), ("period", "0")], "period");
        let f = build_err(
            "throttle",
            &[("maxEvents", "1"), ("policy", "dorp")],
            "policy",
        );
        assert!(f.message.contains("drop"), "{}", f.message);
    }
}
