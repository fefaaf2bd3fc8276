//! A FIFO of events kept as the batches they were put in.
//!
//! Sources put batches and sinks take batches, usually of the same size. Queuing each event on
//! its own meant copying every event into the queue on put and out of it on take, under the
//! channel's lock, and a ring buffer that grows by doubling to the channel's capacity (at
//! 100,000 events of 184 bytes, 24 MB allocated and, while it grew, the old 12 MB too). Here a put moves
//! its `Vec` in whole, and a take of a whole batch moves it out whole: no event is copied on
//! the common path, and the queue itself holds one entry per batch.

use std::collections::VecDeque;

use crate::event::Event;

/// Events in order, in the batches they came in. Not thread-safe: the channel locks it.
#[derive(Default)]
pub struct BatchQueue {
    batches: VecDeque<VecDeque<Event>>,
    len: usize,
}

impl BatchQueue {
    /// An empty queue (no allocation).
    pub fn new() -> Self {
        BatchQueue::default()
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a batch at the tail.
    pub fn push_back(&mut self, events: Vec<Event>) {
        if let Some(batch) = Self::batch(events) {
            self.len += batch.len();
            self.batches.push_back(batch);
        }
    }

    /// Puts a batch back at the head (a rolled-back take), ahead of everything queued.
    pub fn push_front(&mut self, events: Vec<Event>) {
        if let Some(batch) = Self::batch(events) {
            self.len += batch.len();
            self.batches.push_front(batch);
        }
    }

    /// Removes and returns up to `max` events from the head, in order.
    pub fn take(&mut self, max: usize) -> Vec<Event> {
        let mut out: Vec<Event> = Vec::new();
        while out.len() < max {
            let want = max - out.len();
            let Some(front) = self.batches.front_mut() else {
                break;
            };
            if front.len() <= want {
                let Some(batch) = self.batches.pop_front() else {
                    break;
                };
                if out.is_empty() {
                    // The common case: the whole batch leaves as it came, without a copy.
                    out = Vec::from(batch);
                } else {
                    out.extend(batch);
                }
            } else {
                out.reserve_exact(want);
                out.extend(front.drain(..want));
            }
        }
        self.len -= out.len();
        out
    }

    /// The batch to queue, or `None` for an empty one. A `Vec` with far more room than events
    /// (a source that reserved its whole batch size and got a few lines before a timeout) is
    /// shrunk first, so that what the channel holds stays in proportion to its events.
    fn batch(mut events: Vec<Event>) -> Option<VecDeque<Event>> {
        if events.is_empty() {
            return None;
        }
        if events.capacity() > 2 * events.len() + 16 {
            events.shrink_to_fit();
        }
        Some(VecDeque::from(events))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(range: std::ops::Range<u32>) -> Vec<Event> {
        range.map(|i| Event::new(i.to_string())).collect()
    }

    fn bodies(events: &[Event]) -> Vec<u32> {
        events
            .iter()
            .map(|e| std::str::from_utf8(&e.body).unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn takes_whole_batches_in_order() {
        let mut q = BatchQueue::new();
        q.push_back(batch(0..3));
        q.push_back(batch(3..6));
        assert_eq!(q.len(), 6);
        assert_eq!(bodies(&q.take(3)), [0, 1, 2]);
        assert_eq!(bodies(&q.take(3)), [3, 4, 5]);
        assert!(q.is_empty());
        assert!(q.take(3).is_empty());
    }

    #[test]
    fn splits_and_joins_batches_to_fit_the_take() {
        let mut q = BatchQueue::new();
        q.push_back(batch(0..4));
        q.push_back(batch(4..6));
        q.push_back(batch(6..10));
        assert_eq!(bodies(&q.take(3)), [0, 1, 2]);
        assert_eq!(bodies(&q.take(5)), [3, 4, 5, 6, 7]);
        assert_eq!(q.len(), 2);
        assert_eq!(bodies(&q.take(100)), [8, 9]);
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn a_rolled_back_take_comes_first_again() {
        let mut q = BatchQueue::new();
        q.push_back(batch(0..5));
        let taken = q.take(3);
        q.push_back(batch(5..7));
        q.push_front(taken);
        assert_eq!(q.len(), 7);
        assert_eq!(bodies(&q.take(7)), [0, 1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn empty_batches_are_not_queued() {
        let mut q = BatchQueue::new();
        q.push_back(Vec::new());
        q.push_front(Vec::new());
        assert!(q.is_empty());
        assert_eq!(q.batches.len(), 0);
    }

    #[test]
    fn a_mostly_empty_vec_is_shrunk_before_it_is_held() {
        let mut events = Vec::with_capacity(10_000);
        events.extend(batch(0..3));
        let mut q = BatchQueue::new();
        q.push_back(events);
        let held = q.batches.front().map_or(0, VecDeque::capacity);
        assert!(held < 100, "the queue holds room for {held} events for 3");
        assert_eq!(bodies(&q.take(10)), [0, 1, 2]);
    }
}
