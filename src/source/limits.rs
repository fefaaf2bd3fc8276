//! Limits that keep a network source's memory bounded whatever its clients do: how many
//! connections it serves at once (`maxConnections`) and how many bytes its clients' input may
//! hold in memory before it reaches a channel (`maxInFlightBytes`).
//!
//! Both are Flumen keys (Flume has neither: its netcat source spawns a thread per connection,
//! its HTTP source relies on Jetty's thread pool). A connection over the limit is accepted and
//! closed at once, so that the kernel's accept queue never fills and later clients are not
//! stalled; it is counted (`OpenConnectionCount` never exceeds the limit) and logged at WARN,
//! rate-limited.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::PropReader;
use crate::rate_limit::RateLimit;

/// Default `maxConnections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default `maxInFlightBytes`: input held in memory by all connections together.
pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 256 << 20;
/// Budget units: permits count KiB (a semaphore holds at most `u32::MAX >> 3` permits).
const UNIT: usize = 1024;

/// The two limits of a network source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetLimits {
    /// `maxConnections`.
    pub max_connections: usize,
    /// `maxInFlightBytes`.
    pub max_in_flight_bytes: usize,
}

impl NetLimits {
    /// Reads `maxConnections` and `maxInFlightBytes`; `None` on a bad number.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let max_connections = r.number("maxConnections", DEFAULT_MAX_CONNECTIONS, 1, 1 << 20);
        let max_in_flight_bytes = r.number(
            "maxInFlightBytes",
            DEFAULT_MAX_IN_FLIGHT_BYTES,
            UNIT,
            (u32::MAX as usize >> 4) * UNIT,
        );
        Some(NetLimits {
            max_connections: max_connections?,
            max_in_flight_bytes: max_in_flight_bytes?,
        })
    }
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_in_flight_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
        }
    }
}

/// Admission of connections.
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    refused: RateLimit,
}

impl Connections {
    /// At most `max` connections at once.
    pub fn new(max: usize) -> Self {
        Connections {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: RateLimit::new(Duration::from_secs(10)),
        }
    }

    /// A slot for one more connection (held until the connection ends), or `None` at the
    /// limit: the caller closes the connection. Logs the refusal, rate-limited.
    pub fn admit(&self, source: &str, peer: std::net::SocketAddr) -> Option<OwnedSemaphorePermit> {
        let slot = self.slots.clone().try_acquire_owned().ok();
        if slot.is_none() {
            if let Some(suppressed) = self.refused.check() {
                tracing::warn!(source, %peer, max_connections = self.max, suppressed, "Connection refused: the source serves maxConnections connections already.");
            }
        }
        slot
    }
}

/// A shared budget of bytes held in memory by a source's clients.
#[derive(Clone)]
pub struct InFlight {
    units: Arc<Semaphore>,
}

/// Bytes taken from an [`InFlight`] budget; given back when dropped.
#[derive(Default)]
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    /// Bytes held (rounded up to whole KiB).
    pub fn bytes(&self) -> usize {
        self.permit.as_ref().map_or(0, |p| p.num_permits() * UNIT)
    }
}

impl InFlight {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        InFlight {
            units: Arc::new(Semaphore::new((bytes / UNIT).max(1))),
        }
    }

    /// Takes `bytes` more into `held` if the budget has them; `false` (nothing taken) when
    /// it does not.
    pub fn try_hold(&self, held: &mut Held, bytes: usize) -> bool {
        let units = bytes.div_ceil(UNIT).max(1);
        let Ok(units) = u32::try_from(units) else {
            return false;
        };
        match self.units.clone().try_acquire_many_owned(units) {
            Ok(permit) => {
                match held.permit.as_mut() {
                    Some(p) => p.merge(permit),
                    None => held.permit = Some(permit),
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Bytes free in the budget now (for tests and logs).
    pub fn available(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_beyond_the_limit_are_refused_until_one_ends() {
        let c = Connections::new(2);
        let peer: std::net::SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let a = c.admit("r1", peer);
        let b = c.admit("r1", peer);
        assert!(a.is_some() && b.is_some());
        assert!(c.admit("r1", peer).is_none());
        drop(a);
        assert!(c.admit("r1", peer).is_some());
    }

    #[test]
    fn the_budget_is_shared_and_given_back_on_drop() {
        let budget = InFlight::new(10 * UNIT);
        let mut a = Held::default();
        assert!(budget.try_hold(&mut a, 6 * UNIT));
        assert!(budget.try_hold(&mut a, 1));
        assert_eq!(a.bytes(), 7 * UNIT);
        let mut b = Held::default();
        assert!(!budget.try_hold(&mut b, 4 * UNIT), "only 3 KiB are left");
        assert_eq!(b.bytes(), 0);
        drop(a);
        assert!(budget.try_hold(&mut b, 4 * UNIT));
        assert_eq!(budget.available(), 6 * UNIT);
    }
}
