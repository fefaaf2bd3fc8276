//! Cutting a take into requests bounded by events and bytes.

use crate::event::Event;

/// The most one request may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most events per request (at least 1).
    pub max_events: usize,
    /// Most bytes per request, as the caller's size function counts them; 0 = no byte limit.
    /// An event larger than this alone goes in a request of its own.
    pub max_bytes: usize,
}

impl BatchLimits {
    /// Limits of `max_events` events and `max_bytes` bytes (0: unbounded).
    pub fn new(max_events: usize, max_bytes: usize) -> Self {
        BatchLimits {
            max_events: max_events.max(1),
            max_bytes,
        }
    }

    /// Consecutive slices of `events` within the limits, in order, each event once. `size`
    /// is what one event costs in a request (its encoded size, or an estimate).
    pub fn split<'a, F>(&self, events: &'a [Event], size: F) -> Split<'a, F>
    where
        F: Fn(&Event) -> usize,
    {
        Split {
            rest: events,
            limits: *self,
            size,
        }
    }
}

/// The iterator of [`BatchLimits::split`].
pub struct Split<'a, F> {
    rest: &'a [Event],
    limits: BatchLimits,
    size: F,
}

impl<'a, F> Iterator for Split<'a, F>
where
    F: Fn(&Event) -> usize,
{
    type Item = &'a [Event];

    fn next(&mut self) -> Option<&'a [Event]> {
        if self.rest.is_empty() {
            return None;
        }
        let most = self.limits.max_events.min(self.rest.len());
        let mut end = most;
        if self.limits.max_bytes > 0 {
            let mut bytes = 0usize;
            for (i, event) in self.rest[..most].iter().enumerate() {
                bytes = bytes.saturating_add((self.size)(event));
                if bytes > self.limits.max_bytes && i > 0 {
                    end = i;
                    break;
                }
            }
        }
        let (chunk, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(sizes: &[usize]) -> Vec<Event> {
        sizes.iter().map(|&n| Event::new(vec![b'x'; n])).collect()
    }

    fn lens(limits: BatchLimits, events: &[Event]) -> Vec<Vec<usize>> {
        limits
            .split(events, Event::body_len)
            .map(|c| c.iter().map(Event::body_len).collect())
            .collect()
    }

    #[test]
    fn splits_by_count_and_by_bytes_in_order() {
        let e = events(&[1, 2, 3, 4, 5]);
        assert_eq!(
            lens(BatchLimits::new(2, 0), &e),
            vec![vec![1, 2], vec![3, 4], vec![5]]
        );
        assert_eq!(
            lens(BatchLimits::new(10, 6), &e),
            vec![vec![1, 2, 3], vec![4], vec![5]]
        );
    }

    #[test]
    fn an_event_over_the_byte_limit_goes_alone_and_nothing_is_dropped() {
        let e = events(&[1, 100, 1, 1]);
        assert_eq!(
            lens(BatchLimits::new(10, 10), &e),
            vec![vec![1], vec![100], vec![1, 1]]
        );
        let e = events(&[]);
        assert!(lens(BatchLimits::new(10, 10), &e).is_empty());
        assert_eq!(BatchLimits::new(0, 0).max_events, 1, "at least one event");
    }
}
