//! The file channel's in-memory state: a queue of pointers into the data files, never events.
//!
//! The queue is kept in sequence order (the order of the puts' commits). A rolled-back take
//! is merged back at its place, so the live order is always the order replay rebuilds after
//! a crash.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// Where one committed event lives: its sequence number and its position in a data file.
/// 16 bytes: a million queued events cost 16 MB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ptr {
    /// The event's sequence number (unique, increasing in commit order).
    pub seq: u64,
    /// Data file id.
    pub file: u32,
    /// Offset of the event's prefix in that file.
    pub offset: u32,
}

/// Queued and in-flight pointers, and how many live events each data file holds.
#[derive(Default)]
pub struct Queue {
    queue: VecDeque<Ptr>,
    in_flight: HashMap<u64, Vec<Ptr>>,
    in_flight_events: usize,
    /// Room held by puts being written.
    reserved: usize,
    /// Live (queued or in-flight) events per data file.
    live: BTreeMap<u32, u64>,
}

impl Queue {
    /// A queue holding `ptrs` (sorted by sequence).
    pub fn from_sorted(ptrs: VecDeque<Ptr>) -> Self {
        let mut q = Queue {
            queue: ptrs,
            ..Queue::default()
        };
        let mut live = BTreeMap::new();
        count_files(q.queue.iter(), &mut live, 1);
        q.live = live;
        q
    }

    /// Events queued and not taken.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no event is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Events taken by open transactions.
    pub fn in_flight(&self) -> usize {
        self.in_flight_events
    }

    /// Queued + in flight + reserved: what counts against capacity.
    pub fn held(&self) -> usize {
        self.queue.len() + self.in_flight_events + self.reserved
    }

    /// Holds room for a put being written.
    pub fn reserve(&mut self, n: usize) {
        self.reserved += n;
    }

    /// Gives back room held by a put that failed or was committed.
    pub fn release(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Appends a committed put (its sequence numbers are higher than any queued one).
    pub fn push_committed(&mut self, ptrs: &[Ptr]) {
        count_files(ptrs.iter(), &mut self.live, 1);
        self.queue.extend(ptrs.iter().copied());
    }

    /// Moves up to `max` pointers from the head into transaction `txn`.
    pub fn take(&mut self, txn: u64, max: usize) -> Vec<Ptr> {
        let n = max.min(self.queue.len());
        let ptrs: Vec<Ptr> = self.queue.drain(..n).collect();
        if n > 0 {
            self.in_flight_events += n;
            self.in_flight.insert(txn, ptrs.clone());
        }
        ptrs
    }

    /// The pointers of open transaction `txn`, if it is open.
    pub fn txn(&self, txn: u64) -> Option<&[Ptr]> {
        self.in_flight.get(&txn).map(Vec::as_slice)
    }

    /// Ends transaction `txn` for good; returns how many events it removed.
    pub fn commit(&mut self, txn: u64) -> Option<usize> {
        let ptrs = self.in_flight.remove(&txn)?;
        self.in_flight_events -= ptrs.len();
        count_files(ptrs.iter(), &mut self.live, -1);
        Some(ptrs.len())
    }

    /// Returns transaction `txn`'s pointers to the queue at their place in sequence order.
    pub fn rollback(&mut self, txn: u64) -> Option<usize> {
        let ptrs = self.in_flight.remove(&txn)?;
        self.in_flight_events -= ptrs.len();
        let n = ptrs.len();
        let fits_at_head = match (ptrs.last(), self.queue.front()) {
            (Some(last), Some(front)) => last.seq < front.seq,
            _ => true,
        };
        if fits_at_head {
            for p in ptrs.into_iter().rev() {
                self.queue.push_front(p);
            }
        } else {
            // Another taker's rollback came first: merge (rare, and bounded by the queue).
            for p in ptrs {
                let at = self.queue.partition_point(|q| q.seq < p.seq);
                self.queue.insert(at, p);
            }
        }
        Some(n)
    }

    /// Appends to `out` one chunk of the live pointers, for a checkpoint: the queued ones from
    /// sequence `from` on, at most `max` of them, and every in-flight one in the same range of
    /// sequence numbers. Returns where the next chunk starts, or `None` after the last.
    ///
    /// Chunks asked for in turn, each under its own lock, hold every live pointer exactly once
    /// as long as only takes and rollbacks run in between: those move pointers between the
    /// queue and the transactions without changing the live set, and each chunk sees its whole
    /// range at one instant. (Commits, which do change the set, are applied by the writer,
    /// which is the one writing the checkpoint.) The queue's sequence order makes a chunk's
    /// range a contiguous slice of it.
    pub fn live_chunk(&self, from: u64, max: usize, out: &mut Vec<Ptr>) -> Option<u64> {
        let start = self.queue.partition_point(|p| p.seq < from);
        let end = start.saturating_add(max.max(1)).min(self.queue.len());
        debug_assert!(
            self.queue
                .range(start..end)
                .zip(self.queue.range(start..end).skip(1))
                .all(|(a, b)| a.seq < b.seq),
            "the queue is in sequence order"
        );
        out.extend(self.queue.range(start..end));
        let next = self.queue.get(end).map(|p| p.seq);
        let in_range = |p: &&Ptr| p.seq >= from && next.is_none_or(|n| p.seq < n);
        for ptrs in self.in_flight.values() {
            out.extend(ptrs.iter().filter(in_range));
        }
        next
    }

    /// Live events in data file `file`.
    pub fn live_in(&self, file: u32) -> u64 {
        self.live.get(&file).copied().unwrap_or(0)
    }

    /// Forgets every open transaction (after a reopen replaced the queue).
    pub fn clear_in_flight(&mut self) {
        self.in_flight.clear();
        self.in_flight_events = 0;
    }

    /// Replaces the queued pointers and live counts with a replayed state, keeping reservations.
    pub fn replace(&mut self, replayed: Queue) {
        let reserved = self.reserved;
        *self = replayed;
        self.reserved = reserved;
    }
}

fn count_files<'a>(ptrs: impl Iterator<Item = &'a Ptr>, live: &mut BTreeMap<u32, u64>, sign: i64) {
    // Runs of one file are the common case: one map update per run, not per event.
    let mut run: Option<(u32, u64)> = None;
    let mut apply = |file: u32, n: u64| {
        let entry = live.entry(file).or_insert(0);
        if sign > 0 {
            *entry += n;
        } else {
            *entry = entry.saturating_sub(n);
            if *entry == 0 {
                live.remove(&file);
            }
        }
    };
    for p in ptrs {
        match &mut run {
            Some((file, n)) if *file == p.file => *n += 1,
            _ => {
                if let Some((file, n)) = run.take() {
                    apply(file, n);
                }
                run = Some((p.file, 1));
            }
        }
    }
    if let Some((file, n)) = run {
        apply(file, n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptrs(seqs: std::ops::Range<u64>, file: u32) -> Vec<Ptr> {
        seqs.map(|seq| Ptr {
            seq,
            file,
            offset: seq as u32 * 10,
        })
        .collect()
    }

    fn seqs(q: &Queue) -> Vec<u64> {
        let mut out = Vec::new();
        q.queue.iter().for_each(|p| out.push(p.seq));
        out
    }

    #[test]
    fn rollbacks_in_any_order_restore_sequence_order() {
        let mut q = Queue::default();
        q.push_committed(&ptrs(0..4, 1));
        q.push_committed(&ptrs(4..8, 2));
        assert_eq!(q.take(1, 2).len(), 2);
        assert_eq!(q.take(2, 3).len(), 3);
        assert_eq!(q.rollback(1), Some(2));
        assert_eq!(q.rollback(2), Some(3));
        assert_eq!(seqs(&q), (0..8).collect::<Vec<_>>());
        assert_eq!(q.held(), 8);
    }

    /// Every live sequence number, gathered chunk by chunk with takes and rollbacks between.
    fn checkpoint_seqs(q: &mut Queue, max: usize) -> Vec<u64> {
        let mut out = Vec::new();
        let mut from = Some(0);
        let mut round = 0u64;
        while let Some(seq) = from {
            from = q.live_chunk(seq, max, &mut out);
            round += 1;
            // Other takers move events between chunks, as takers do while the writer
            // checkpoints; rollbacks send some back, at the head or, when an older
            // transaction went back first, merged into the queue behind it.
            q.take(100 + round, 2);
            if round.is_multiple_of(3) {
                q.rollback(100 + round - 1);
            }
            if round.is_multiple_of(4) {
                q.take(1000 + round, 1);
                q.take(2000 + round, 2);
                q.rollback(1000 + round);
                q.rollback(2000 + round);
            }
        }
        let mut seqs: Vec<u64> = out.iter().map(|p| p.seq).collect();
        seqs.sort_unstable();
        seqs
    }

    #[test]
    fn checkpoint_chunks_hold_every_live_pointer_once_while_takes_run() {
        for max in [1, 2, 3, 5, 64] {
            let mut q = Queue::default();
            q.push_committed(&ptrs(0..10, 1));
            q.push_committed(&ptrs(10..25, 2));
            assert_eq!(q.take(1, 4).len(), 4);
            assert_eq!(q.take(2, 3).len(), 3);
            assert_eq!(q.commit(1), Some(4));
            let live: Vec<u64> = (4..25).collect();
            assert_eq!(checkpoint_seqs(&mut q, max), live, "{max} per chunk");
        }
        let mut empty = Queue::default();
        assert_eq!(checkpoint_seqs(&mut empty, 8), Vec::<u64>::new());
    }

    #[test]
    fn live_counts_follow_commits_per_file() {
        let mut q = Queue::default();
        q.push_committed(&ptrs(0..4, 1));
        q.push_committed(&ptrs(4..6, 2));
        q.take(9, 5);
        assert_eq!(q.live_in(1), 4);
        assert_eq!(q.commit(9), Some(5));
        assert_eq!(q.live_in(1), 0);
        assert_eq!(q.live_in(2), 1);
        assert_eq!(q.commit(9), None);
    }
}
