//! The writer's housekeeping: checkpoints, deleting spent data files, free-space checks and
//! closing. It extends [`Writer`]; the writer itself does not depend on it.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use super::checkpoint::{self, Header, Position};
use super::dirs;
use super::queue::Ptr;
use super::writer::{Writer, ROLL_EMPTY_AT};
use super::Shared;

/// Pointers copied per lock while a checkpoint is written (1 MiB of them): the lock is held
/// for one chunk at a time, and the checkpoint never holds a copy of the whole queue.
const CHECKPOINT_CHUNK: usize = 64 * 1024;

impl Writer {
    /// Writes a checkpoint of the live pointers at the current log position, then deletes the
    /// data files no live event and no durable checkpoint needs any more.
    pub(super) fn checkpoint(&mut self) -> io::Result<()> {
        // The queue must hold every group written before the position the checkpoint records.
        let settled = self.settle();
        if self.broken {
            // Still reopening: the state here is not what is on disk.
            return Err(io::Error::other(
                "the channel is reopening after an I/O error",
            ));
        }
        if !settled {
            // An fsync failed, and the reopen from disk has just written a checkpoint.
            return Ok(());
        }
        if self.dirty {
            // The checkpoint must not point at records that are not durable yet.
            self.active.handle.sync_data()?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        let spent_active = self.active.len > ROLL_EMPTY_AT
            && self.shared.lock().queue.live_in(self.active.id) == 0;
        if spent_active {
            self.roll()?;
        }
        let started = Instant::now();
        let header = {
            let s = self.shared.lock();
            Header {
                position: Position {
                    file: self.active.id,
                    offset: self.active.len,
                },
                next_seq: self.next_seq,
                count: s.queue.len() + s.queue.in_flight(),
            }
        };
        let position = header.position;
        let fs = self.shared.fs.as_ref();
        let dir = &self.shared.layout.checkpoint_dir;
        checkpoint::write(fs, dir, &header, live_chunks(&self.shared))?;
        if let Some(backup) = &self.shared.layout.backup_dir {
            // Nothing was committed since the first copy (the writer commits, and it is here),
            // so a second pass over the queue writes the same set of events.
            match checkpoint::write(fs, backup, &header, live_chunks(&self.shared)) {
                Ok(()) => self.backup_position = position,
                Err(error) => {
                    self.shared.counters.checkpoint_backup_write_error.inc();
                    tracing::warn!(channel = %self.shared.name, dir = %backup.display(), %error, "Backup checkpoint failed; keeping the data files it needs.");
                }
            }
        } else {
            self.backup_position = position;
        }
        let events = header.count;
        self.last_checkpoint = Instant::now();
        tracing::debug!(channel = %self.shared.name, events, file = position.file, offset = position.offset, elapsed_ms = started.elapsed().as_millis() as u64, "Checkpoint written.");
        self.delete_spent(position.file.min(self.backup_position.file));
        Ok(())
    }

    /// Deletes data files older than `floor` that hold no live event.
    fn delete_spent(&mut self, floor: u32) {
        let spent: Vec<(u32, PathBuf)> = {
            let s = self.shared.lock();
            self.paths
                .range(..floor)
                .filter(|(id, _)| **id != self.active.id && s.queue.live_in(**id) == 0)
                .map(|(id, p)| (*id, p.clone()))
                .collect()
        };
        if spent.is_empty() {
            return;
        }
        let fs = self.shared.fs.as_ref();
        for (id, path) in spent {
            self.shared.lock().files.remove(&id);
            match fs.remove_file(&path) {
                Ok(()) => {
                    self.paths.remove(&id);
                    tracing::debug!(channel = %self.shared.name, file = %path.display(), "Deleted a data file whose events were all taken.");
                }
                Err(error) => {
                    tracing::warn!(channel = %self.shared.name, file = %path.display(), %error, "Cannot delete a spent data file.");
                }
            }
        }
    }

    /// Whether the data and checkpoint directories keep `minimumRequiredSpace` free after
    /// writing `incoming` more bytes; records (and logs) the change of state.
    pub(super) fn space_ok(&mut self, incoming: u64) -> bool {
        let cfg = &self.shared.config;
        let dirs = [
            dirs::data_dir_for(&self.shared.layout, self.active.id),
            self.shared.layout.checkpoint_dir.as_path(),
        ];
        let mut short = None;
        for dir in dirs {
            match self.shared.fs.available_space(dir) {
                Ok(free) if free < cfg.minimum_required_space.saturating_add(incoming) => {
                    short = Some(format!(
                        "free space in {} is {free} bytes, below minimumRequiredSpace {} (+{incoming} to write); refusing puts until space is freed",
                        dir.display(),
                        cfg.minimum_required_space
                    ));
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(channel = %self.shared.name, dir = %dir.display(), %error, "Cannot read free space.");
                }
            }
        }
        let mut s = self.shared.lock();
        match (&s.low_space, short) {
            (None, Some(reason)) => {
                tracing::warn!(channel = %self.shared.name, %reason, "Disk space low: the channel refuses puts (sources are held back).");
                s.low_space = Some(reason);
                false
            }
            (Some(_), Some(reason)) => {
                s.low_space = Some(reason);
                false
            }
            (Some(_), None) => {
                tracing::info!(channel = %self.shared.name, "Disk space available again: the channel accepts puts.");
                s.low_space = None;
                true
            }
            (None, None) => true,
        }
    }

    /// Final checkpoint (when `checkpointOnClose`) and sync before the writer exits.
    pub(super) fn close(&mut self) {
        self.settle();
        let result = if self.shared.config.checkpoint_on_close {
            self.checkpoint()
        } else if self.dirty {
            self.active.handle.sync_data()
        } else {
            Ok(())
        };
        if let Err(error) = result {
            tracing::error!(channel = %self.shared.name, %error, "Final checkpoint failed; the next start replays the log instead.");
        }
    }
}

/// The live pointers of `shared`'s queue, one chunk per call, for [`checkpoint::write`].
fn live_chunks(shared: &Shared) -> impl FnMut(&mut Vec<Ptr>) -> bool + '_ {
    let mut from = Some(0);
    move |out| {
        let Some(seq) = from else { return false };
        from = shared.lock().queue.live_chunk(seq, CHECKPOINT_CHUNK, out);
        from.is_some()
    }
}
