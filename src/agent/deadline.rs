//! How long a stop may wait: until an instant, or less when the agent is told to stop
//! meanwhile. A reload drains what it removes within `--shutdown-timeout`; a SIGTERM during
//! that wait must not sit it out, so the reload's waits end early and the agent's own stop
//! (sources first, then draining, under its own deadline) takes over.

use std::future::Future;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The end of a wait.
#[derive(Clone, Debug)]
pub struct Deadline {
    at: Instant,
    interrupt: Option<CancellationToken>,
}

impl Deadline {
    /// Waits end at `at`.
    pub fn at(at: Instant) -> Self {
        Deadline {
            at,
            interrupt: None,
        }
    }

    /// Waits end at `at`, or as soon as `interrupt` is cancelled.
    pub fn interruptible(at: Instant, interrupt: CancellationToken) -> Self {
        Deadline {
            at,
            interrupt: Some(interrupt),
        }
    }

    /// Whether the deadline has come (or the wait was interrupted).
    pub fn passed(&self) -> bool {
        Instant::now() >= self.at || self.interrupt.as_ref().is_some_and(|i| i.is_cancelled())
    }

    /// Runs `f` until the deadline: `None` when it did not finish in time.
    ///
    /// # Cancel safety
    /// As cancel safe as `f`.
    pub async fn wait<F: Future>(&self, f: F) -> Option<F::Output> {
        let timed = tokio::time::timeout_at(self.at, f);
        match &self.interrupt {
            None => timed.await.ok(),
            Some(interrupt) => tokio::select! {
                done = timed => done.ok(),
                _ = interrupt.cancelled() => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn an_interrupt_ends_the_wait_before_the_instant() {
        let stop = CancellationToken::new();
        let d = Deadline::interruptible(Instant::now() + Duration::from_secs(3600), stop.clone());
        assert!(!d.passed());
        stop.cancel();
        assert!(d.passed());
        assert_eq!(d.wait(std::future::pending::<()>()).await, None);
        let d = Deadline::at(Instant::now() + Duration::from_secs(3600));
        assert_eq!(d.wait(async { 7 }).await, Some(7));
    }
}
