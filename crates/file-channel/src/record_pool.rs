//! Reused buffers for the channel's two big per-batch allocations: encoded put records (handed
//! back by the writer once written) and the blocks takes read events into (handed back when
//! the last event body sliced from the block is dropped).
//!
//! A put of 1,000 events of 256 bytes is a 270 KB record, and its take reads a block as big.
//! Allocated fresh each time, such a buffer is above glibc's mmap threshold or at the top of
//! the heap, so every batch paid a page fault per 4 KiB and the free gave the pages back
//! (`madvise`/`munmap`): 10–12% of the file channel benchmark's CPU (BENCHMARKS.md, issue 17
//! part 3).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Buffers kept at most: one per putter in flight on a busy agent, and a few more.
const MAX_POOLED: usize = 8;
/// A buffer bigger than this (a batch of big events) is freed rather than kept, so that one
/// burst does not pin its memory for the life of the channel.
const MAX_POOLED_CAPACITY: usize = 4 << 20;

/// A bounded stack of empty buffers.
#[derive(Default)]
pub(crate) struct RecordPool {
    bufs: Mutex<Vec<Vec<u8>>>,
}

impl RecordPool {
    /// A buffer, reused when one is pooled. Its length and contents are what its last user
    /// left: callers overwrite or clear it (a read block is resized, and only what it grows
    /// by is zeroed).
    pub(crate) fn get(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `buf` for a later put, unless the pool is full or `buf` is too big to keep.
    pub(crate) fn give_back(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > MAX_POOLED_CAPACITY {
            return;
        }
        let mut bufs = self.lock();
        if bufs.len() < MAX_POOLED {
            bufs.push(buf);
        }
    }

    /// `buf` as [`Bytes`] whose memory comes back to `pool` when the last slice of it is dropped.
    pub(crate) fn share(pool: &Arc<RecordPool>, buf: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buf,
            pool: Arc::clone(pool),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A push or pop cannot leave the vector half-changed, so a poisoned lock is still sound.
        self.bufs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A buffer lent out as [`Bytes`]; returns to its pool on drop.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<RecordPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_returned_buffer_is_reused_with_its_capacity() {
        let pool = RecordPool::default();
        let mut buf = pool.get();
        assert_eq!(buf.capacity(), 0);
        buf.extend_from_slice(&[7u8; 1000]);
        let ptr = buf.as_ptr();
        pool.give_back(buf);
        let again = pool.get();
        assert!(again.capacity() >= 1000);
        assert_eq!(again.as_ptr(), ptr);
    }

    #[test]
    fn shared_bytes_come_back_when_the_last_slice_is_dropped() {
        let pool = Arc::new(RecordPool::default());
        let bytes = RecordPool::share(&pool, b"hello world".to_vec());
        let word = bytes.slice(6..);
        drop(bytes);
        assert_eq!(pool.get().capacity(), 0, "a slice still holds the buffer");
        assert_eq!(&word[..], b"world");
        drop(word);
        assert!(pool.get().capacity() >= 11);
    }

    #[test]
    fn the_pool_keeps_a_bounded_number_of_buffers_of_bounded_size() {
        let pool = RecordPool::default();
        pool.give_back(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        assert_eq!(pool.get().capacity(), 0, "an oversized buffer is freed");
        for _ in 0..MAX_POOLED + 3 {
            pool.give_back(Vec::with_capacity(64));
        }
        let kept = std::iter::from_fn(|| Some(pool.get()))
            .take_while(|b| b.capacity() > 0)
            .count();
        assert_eq!(kept, MAX_POOLED);
    }
}
