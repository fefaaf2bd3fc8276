//! Sink processors: which sink of a group delivers the next batch (Flume's
//! `DefaultSinkProcessor`, `FailoverSinkProcessor`, `LoadBalancingSinkProcessor`).
//!
//! - `default`: one sink.
//! - `failover`: the live sink with the highest `processor.priority.<sink>` delivers; a sink
//!   whose delivery fails is set aside for `min(maxpenalty, 2^failures × 1 s)` and the next one
//!   takes over in the same round; once its penalty is over a failed sink is tried again, and
//!   when it delivers it is live again — the preferred sink takes back over when it recovers.
//! - `load_balance`: each batch goes to the next sink in `round_robin` order (or `random`); a
//!   failed delivery moves on to the next sink at once; with `backoff` a failing sink is left
//!   out for `min(selector.maxTimeOut, 2^failures × 1 s)`.
//!
//! Divergence, on purpose: Flume's processors switch only when a sink throws, and some sinks
//! (its http sink) swallow delivery failures, so failover over them never fails over. Every
//! Flumen sink reports a failed delivery to its processor, so both processors work with every
//! sink.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::config::{did_you_mean, Finding, FindingKind, PropReader};

/// Flume's `maxpenalty` default (ms).
pub const DEFAULT_MAX_PENALTY_MS: u64 = 30_000;
/// Flume's `selector.maxTimeOut` default (ms).
pub const DEFAULT_MAX_TIMEOUT_MS: u64 = 30_000;
/// Flume's base penalty per failure.
const PENALTY_STEP: Duration = Duration::from_millis(1000);
/// Flume caps the sequential-failure count of the load-balancing backoff.
const MAX_SEQUENTIAL_FAILS: u32 = 16;

/// What one attempt of a sink came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A batch was delivered and committed.
    Delivered,
    /// The channel had nothing to take.
    Empty,
    /// Delivery failed; the batch was rolled back.
    Failed,
}

/// The resolved processor of a group (or of a lone sink).
#[derive(Debug)]
pub enum SinkProcessor {
    /// One sink.
    Default,
    /// Failover by priority.
    Failover(Failover),
    /// Load balancing.
    LoadBalance(LoadBalance),
}

/// Failover state.
#[derive(Debug)]
pub struct Failover {
    max_penalty: Duration,
    /// Live sinks by priority (highest last).
    live: BTreeMap<i64, usize>,
    failed: Vec<FailedSink>,
}

#[derive(Debug)]
struct FailedSink {
    slot: usize,
    priority: i64,
    failures: u32,
    refresh: Instant,
}

/// Load-balancing state.
#[derive(Debug)]
pub struct LoadBalance {
    random: bool,
    backoff: bool,
    max_timeout: Duration,
    next: usize,
    /// Per sink: sequential failures and the time it may be used again.
    state: Vec<(u32, Option<Instant>)>,
    rng: u64,
}

impl SinkProcessor {
    /// Reads a group's `processor.*` keys for `sinks` (slot order). `None` when Flume would
    /// remove the group (its sinks then do not run at all, as in Flume).
    pub fn from_props(r: &mut PropReader<'_>, sinks: &[String]) -> Option<SinkProcessor> {
        let kind = r.string("processor.type", "default");
        r.mark_prefix_used("processor");
        match kind.to_ascii_lowercase().as_str() {
            "default" | "org.apache.flume.sink.defaultsinkprocessor" => {
                if sinks.len() != 1 {
                    let origin = r.raw("processor.type").map(|p| p.origin.clone());
                    let key = r.full_key("sinks");
                    r.drop_component(Finding::new(
                        FindingKind::DroppedComponent,
                        origin,
                        key,
                        format!("The default sink processor takes exactly one sink, not {}; Flume removes the group and its sinks do not run.", sinks.len()),
                    ).expected("one sink, or processor.type = failover or load_balance"));
                    return None;
                }
                Some(SinkProcessor::Default)
            }
            "failover" | "org.apache.flume.sink.failoversinkprocessor" => {
                Some(SinkProcessor::Failover(Failover::from_props(r, sinks)?))
            }
            "load_balance" | "org.apache.flume.sink.loadbalancingsinkprocessor" => Some(
                SinkProcessor::LoadBalance(LoadBalance::from_props(r, sinks)?),
            ),
            other => {
                let origin = r.raw("processor.type").map(|p| p.origin.clone());
                let key = r.full_key("processor.type");
                let written = r.string("processor.type", "default");
                if other.contains('.') {
                    let finding = Finding::new(
                        FindingKind::UnsupportedType,
                        origin,
                        key,
                        format!("Sink processor class `{written}` is not implemented by Flumen (it cannot run Java plugins); Flume would run the group with it."),
                    )
                    .expected("default, failover or load_balance");
                    r.unsupported(format!("sink processor `{written}`"), finding);
                } else {
                    r.drop_component(
                        Finding::new(FindingKind::UnknownType, origin, key, format!("Sink processor `{other}` is not a processor Flume knows; Flume removes the group and its sinks do not run."))
                            .expected("default, failover or load_balance")
                            .suggest(did_you_mean(other, ["default", "failover", "load_balance"])),
                    );
                }
                None
            }
        }
    }

    /// The name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            SinkProcessor::Default => "default",
            SinkProcessor::Failover(_) => "failover",
            SinkProcessor::LoadBalance(_) => "load_balance",
        }
    }

    /// The slots to try this round, in order; the round stops at the first that does not fail.
    pub fn order(&mut self, now: Instant) -> Vec<usize> {
        match self {
            SinkProcessor::Default => vec![0],
            SinkProcessor::Failover(f) => f.order(now),
            SinkProcessor::LoadBalance(lb) => lb.order(now),
        }
    }

    /// Records how an attempt of `slot` went.
    pub fn report(&mut self, slot: usize, outcome: Outcome, now: Instant) {
        match self {
            SinkProcessor::Default => {}
            SinkProcessor::Failover(f) => f.report(slot, outcome, now),
            SinkProcessor::LoadBalance(lb) => lb.report(slot, outcome, now),
        }
    }
}

/// Reads a duration in ms the Flume way for processors: a bad number is reported and the
/// default kept (Flume logs a warning and goes on).
fn lenient_ms(r: &mut PropReader<'_>, key: &str, default: u64) -> Duration {
    let Some(prop) = r.raw(key) else {
        return Duration::from_millis(default);
    };
    match prop.value.trim().parse::<u64>() {
        Ok(v) => Duration::from_millis(v),
        Err(_) => {
            r.bad_value(prop, "a whole number of milliseconds", &default.to_string());
            Duration::from_millis(default)
        }
    }
}

impl Failover {
    fn from_props(r: &mut PropReader<'_>, sinks: &[String]) -> Option<Failover> {
        let max_penalty = lenient_ms(r, "processor.maxpenalty", DEFAULT_MAX_PENALTY_MS);
        let mut live = BTreeMap::new();
        let mut next_default = 0i64;
        for (slot, sink) in sinks.iter().enumerate() {
            let key = format!("processor.priority.{sink}");
            let priority = match r.raw(&key).map(|p| (p.value.trim().parse::<i64>(), p)) {
                Some((Ok(p), _)) => p,
                Some((Err(_), prop)) => {
                    next_default -= 1;
                    r.bad_value(prop, "a whole number", &next_default.to_string());
                    next_default
                }
                None => {
                    next_default -= 1;
                    next_default
                }
            };
            if let Some(&other) = live.get(&priority) {
                let origin = r.raw(&key).map(|p| p.origin.clone());
                let full = r.full_key(&key);
                r.push(Finding::new(
                    FindingKind::DroppedComponent,
                    origin,
                    full,
                    format!("Sink `{sink}` has the same priority ({priority}) as sink `{}`; Flume's failover processor never uses it.", sinks[other]),
                ).expected("a distinct priority per sink"));
                continue;
            }
            live.insert(priority, slot);
        }
        Some(Failover {
            max_penalty,
            live,
            failed: Vec::new(),
        })
    }

    fn order(&mut self, now: Instant) -> Vec<usize> {
        // A failed sink whose penalty is over gets one attempt this round, alone (Flume).
        if let Some(f) = self
            .failed
            .iter()
            .filter(|f| f.refresh <= now)
            .min_by_key(|f| f.refresh)
        {
            return vec![f.slot];
        }
        self.live.values().rev().copied().collect()
    }

    fn report(&mut self, slot: usize, outcome: Outcome, now: Instant) {
        if let Some(pos) = self.failed.iter().position(|f| f.slot == slot) {
            match outcome {
                Outcome::Delivered => {
                    let f = self.failed.swap_remove(pos);
                    tracing::info!(slot = f.slot, "Failed sink recovered; back in service.");
                    self.live.insert(f.priority, f.slot);
                }
                Outcome::Empty => {}
                Outcome::Failed => {
                    let penalty = self.penalty(self.failed[pos].failures + 1);
                    let f = &mut self.failed[pos];
                    f.failures += 1;
                    f.refresh = now + penalty;
                }
            }
            return;
        }
        if outcome == Outcome::Failed {
            if let Some((&priority, _)) = self.live.iter().find(|(_, &s)| s == slot) {
                self.live.remove(&priority);
                self.failed.push(FailedSink {
                    slot,
                    priority,
                    failures: 1,
                    refresh: now + self.penalty(1),
                });
            }
        }
    }

    fn penalty(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(30)).unwrap_or(u32::MAX);
        (PENALTY_STEP * factor).min(self.max_penalty)
    }
}

impl LoadBalance {
    fn from_props(r: &mut PropReader<'_>, sinks: &[String]) -> Option<LoadBalance> {
        let selector = r.string("processor.selector", "round_robin");
        let random = match selector.to_ascii_lowercase().as_str() {
            "round_robin" => false,
            "random" => true,
            other => {
                let origin = r.raw("processor.selector").map(|p| p.origin.clone());
                let key = r.full_key("processor.selector");
                if other.contains('.') {
                    let finding = Finding::new(
                        FindingKind::UnsupportedType,
                        origin,
                        key,
                        format!("Sink selector class `{selector}` is not implemented by Flumen (it cannot run Java plugins); Flume would balance the group with it."),
                    )
                    .expected("round_robin or random");
                    r.unsupported(format!("sink selector `{selector}`"), finding);
                } else {
                    r.drop_component(
                        Finding::new(
                            FindingKind::BadValue,
                            origin,
                            key,
                            format!("Sink selector `{other}` is not available; Flume removes the group."),
                        )
                        .expected("round_robin or random")
                        .suggest(did_you_mean(other, ["round_robin", "random"])),
                    );
                }
                return None;
            }
        };
        let backoff = r.bool("processor.backoff", false);
        let max_timeout = lenient_ms(r, "processor.selector.maxTimeOut", DEFAULT_MAX_TIMEOUT_MS);
        Some(LoadBalance {
            random,
            backoff,
            max_timeout,
            next: 0,
            state: vec![(0, None); sinks.len()],
            rng: 0x2545_F491_4F6C_DD1D,
        })
    }

    fn order(&mut self, now: Instant) -> Vec<usize> {
        let n = self.state.len();
        let available: Vec<usize> = (0..n)
            .filter(|&i| !self.backoff || self.state[i].1.is_none_or(|t| t <= now))
            .collect();
        if available.is_empty() {
            return available;
        }
        let mut order = available;
        if self.random {
            // Fisher–Yates with xorshift: cheap and good enough to spread load.
            for i in (1..order.len()).rev() {
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                order.swap(i, (self.rng % (i as u64 + 1)) as usize);
            }
        } else {
            let start = self.next % order.len();
            order.rotate_left(start);
            self.next = self.next.wrapping_add(1);
        }
        order
    }

    fn report(&mut self, slot: usize, outcome: Outcome, now: Instant) {
        let Some(state) = self.state.get_mut(slot) else {
            return;
        };
        match outcome {
            Outcome::Failed if self.backoff => {
                state.0 = (state.0 + 1).min(MAX_SEQUENTIAL_FAILS);
                let timeout = (PENALTY_STEP * (1u32 << state.0)).min(self.max_timeout);
                state.1 = Some(now + timeout);
            }
            Outcome::Delivered => *state = (0, None),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(max_penalty_ms: u64, priorities: &[(usize, i64)]) -> Failover {
        Failover {
            max_penalty: Duration::from_millis(max_penalty_ms),
            live: priorities.iter().map(|&(s, p)| (p, s)).collect(),
            failed: Vec::new(),
        }
    }

    #[test]
    fn failover_prefers_the_highest_priority_and_returns_to_it_after_recovery() {
        let mut f = failover(5000, &[(0, 10), (1, 5)]);
        let t0 = Instant::now();
        assert_eq!(f.order(t0), vec![0, 1]);
        f.report(0, Outcome::Failed, t0);
        assert_eq!(f.order(t0), vec![1]);
        f.report(1, Outcome::Delivered, t0);
        // Penalty after one failure: 2 s.
        assert_eq!(f.order(t0 + Duration::from_millis(1999)), vec![1]);
        let t1 = t0 + Duration::from_millis(2000);
        assert_eq!(f.order(t1), vec![0]);
        f.report(0, Outcome::Failed, t1);
        // Second failure: 4 s.
        assert_eq!(f.order(t1 + Duration::from_millis(3999)), vec![1]);
        let t2 = t1 + Duration::from_millis(4000);
        assert_eq!(f.order(t2), vec![0]);
        f.report(0, Outcome::Delivered, t2);
        assert_eq!(f.order(t2), vec![0, 1]);
    }

    #[test]
    fn failover_penalty_is_capped_by_maxpenalty() {
        let f = failover(3000, &[]);
        assert_eq!(f.penalty(1), Duration::from_secs(2));
        assert_eq!(f.penalty(2), Duration::from_secs(3));
        assert_eq!(f.penalty(40), Duration::from_secs(3));
    }

    #[test]
    fn round_robin_rotates_and_backoff_skips_a_failing_sink() {
        let mut lb = LoadBalance {
            random: false,
            backoff: true,
            max_timeout: Duration::from_secs(30),
            next: 0,
            state: vec![(0, None); 3],
            rng: 1,
        };
        let t = Instant::now();
        assert_eq!(lb.order(t), vec![0, 1, 2]);
        assert_eq!(lb.order(t), vec![1, 2, 0]);
        assert_eq!(lb.order(t), vec![2, 0, 1]);
        lb.report(1, Outcome::Failed, t);
        let sorted = |mut v: Vec<usize>| {
            v.sort();
            v
        };
        assert_eq!(sorted(lb.order(t)), vec![0, 2]);
        assert_eq!(
            sorted(lb.order(t + Duration::from_millis(1999))),
            vec![0, 2]
        );
        assert_eq!(sorted(lb.order(t + Duration::from_secs(2))), vec![0, 1, 2]);
    }
}
