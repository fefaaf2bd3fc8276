//! How long to wait before retrying: a backoff that grows with consecutive failures, up to a
//! cap, with jitter so that a fleet of agents does not retry a recovered downstream in step.

use std::time::Duration;

/// A backoff policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first wait (and, when linear, the step).
    pub base: Duration,
    /// The longest wait before jitter.
    pub max: Duration,
    /// Whether waits double (exponential) or add `base` (linear, as Flume's sink runner).
    pub exponential: bool,
    /// Up to this fraction of the wait is added at random (0 = none).
    pub jitter: f64,
}

impl Backoff {
    /// Waits of `step`, `2 × step`, … up to `max` (Flume's `SinkRunner`: 1 s steps to 5 s).
    pub const fn linear(step: Duration, max: Duration) -> Self {
        Backoff {
            base: step,
            max,
            exponential: false,
            jitter: 0.0,
        }
    }

    /// Waits of `base`, `2 × base`, `4 × base`, … up to `max`.
    pub const fn exponential(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            exponential: true,
            jitter: 0.0,
        }
    }

    /// The same policy, adding up to `fraction` of each wait at random.
    pub const fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// The wait without jitter after `failures` consecutive failures (≥ 1).
    pub fn nominal(&self, failures: u32) -> Duration {
        let n = failures.max(1);
        let wait = if self.exponential {
            let doublings = (n - 1).min(30);
            self.base.saturating_mul(1u32 << doublings)
        } else {
            self.base.saturating_mul(n)
        };
        wait.min(self.max)
    }

    /// The wait after `failures` consecutive failures: the nominal wait plus its jitter.
    pub fn delay(&self, failures: u32) -> Duration {
        let nominal = self.nominal(failures);
        if self.jitter <= 0.0 {
            return nominal;
        }
        nominal + nominal.mul_f64(self.jitter * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn linear_and_exponential_grow_to_their_cap() {
        let linear = Backoff::linear(S, 5 * S);
        let waits: Vec<_> = (1..=7).map(|n| linear.nominal(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 3, 4, 5, 5, 5]);
        let exp = Backoff::exponential(S, 10 * S);
        let waits: Vec<_> = (1..=6).map(|n| exp.nominal(n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(exp.nominal(u32::MAX), 10 * S, "no overflow");
        assert_eq!(exp.nominal(0), S, "0 counts as the first failure");
    }

    #[test]
    fn jitter_stays_within_its_fraction_and_varies() {
        let b = Backoff::linear(S, 5 * S).with_jitter(0.25);
        let waits: Vec<Duration> = (0..200).map(|_| b.delay(2)).collect();
        assert!(waits.iter().all(|w| *w >= 2 * S && *w <= 2 * S + S / 2));
        let first = waits[0];
        assert!(waits.iter().any(|w| *w != first), "not all equal");
        assert_eq!(Backoff::linear(S, 5 * S).delay(3), 3 * S, "no jitter asked");
    }
}
