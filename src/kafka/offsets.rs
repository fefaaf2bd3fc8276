//! Which offsets a consumer may commit when records are delivered out of order.
//!
//! The Kafka channel hands records to several takes at once (sinks, and takes kept open while
//! they commit); a take may commit before an older one, or roll back and come again. Kafka
//! keeps one position per partition: committing it past a record says that record is done.
//! So the position to commit is the lowest offset still outstanding (read and not yet
//! committed by its take), or, with none, one past the highest offset read.

use std::collections::{BTreeSet, HashMap};

/// A record's place: topic, partition, offset.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
}

#[derive(Debug, Default)]
struct Partition {
    outstanding: BTreeSet<i64>,
    /// One past the highest offset read.
    next: i64,
    /// The position last handed out for a commit.
    committed: i64,
}

impl Partition {
    fn safe(&self) -> i64 {
        self.outstanding.first().copied().unwrap_or(self.next)
    }
}

/// Outstanding offsets per partition.
#[derive(Debug, Default)]
pub struct OffsetTracker {
    partitions: HashMap<(String, i32), Partition>,
}

impl OffsetTracker {
    /// A record was read and is now outstanding until [`OffsetTracker::done`].
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) {
        let p = self
            .partitions
            .entry((topic.to_string(), partition))
            .or_insert_with(|| Partition {
                next: offset,
                committed: offset,
                ..Partition::default()
            });
        p.outstanding.insert(offset);
        p.next = p.next.max(offset + 1);
    }

    /// A record's take committed.
    pub fn done(&mut self, position: &Position) {
        if let Some(p) = self
            .partitions
            .get_mut(&(position.topic.clone(), position.partition))
        {
            p.outstanding.remove(&position.offset);
        }
    }

    /// The partitions whose safe position moved since the last call, with that position:
    /// what to commit now.
    pub fn to_commit(&mut self) -> Vec<(String, i32, i64)> {
        let mut out = Vec::new();
        for ((topic, partition), p) in self.partitions.iter_mut() {
            let safe = p.safe();
            if safe > p.committed {
                p.committed = safe;
                out.push((topic.clone(), *partition, safe));
            }
        }
        out
    }

    /// Forgets a partition this consumer no longer owns (after a rebalance its records are
    /// read again by the new owner from the last committed position).
    pub fn forget(&mut self, topic: &str, partition: i32) {
        self.partitions.remove(&(topic.to_string(), partition));
    }

    /// Records read and not yet committed, over all partitions.
    pub fn outstanding(&self) -> usize {
        self.partitions.values().map(|p| p.outstanding.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(offset: i64) -> Position {
        Position {
            topic: "t".into(),
            partition: 0,
            offset,
        }
    }

    #[test]
    fn commits_stop_at_the_oldest_outstanding_record() {
        let mut t = OffsetTracker::default();
        for o in 10..20 {
            t.read("t", 0, o);
        }
        // A younger take commits first: nothing may be committed yet.
        for o in 15..20 {
            t.done(&pos(o));
        }
        assert!(t.to_commit().is_empty());
        for o in 10..13 {
            t.done(&pos(o));
        }
        assert_eq!(t.to_commit(), vec![("t".into(), 0, 13)]);
        assert!(t.to_commit().is_empty(), "only moves are reported");
        for o in 13..15 {
            t.done(&pos(o));
        }
        assert_eq!(t.to_commit(), vec![("t".into(), 0, 20)]);
        assert_eq!(t.outstanding(), 0);
    }

    #[test]
    fn a_forgotten_partition_commits_nothing() {
        let mut t = OffsetTracker::default();
        t.read("t", 1, 5);
        t.forget("t", 1);
        t.done(&Position {
            topic: "t".into(),
            partition: 1,
            offset: 5,
        });
        assert!(t.to_commit().is_empty());
    }
}
