//! The writer's housekeeping: checkpoints, deleting spent data files, free-space checks,
//! creating data files, and closing.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::checkpoint::{self, Position};
use super::dirs::{self, DirError};
use super::format::{self, FILE_HEADER_LEN};
use super::replay::ReplayReport;
use super::writer::{Active, Request, Writer, ROLL_EMPTY_AT};
use super::Shared;

impl Writer {
    /// Writes a checkpoint of the live pointers at the current log position, then deletes the
    /// data files no live event and no durable checkpoint needs any more.
    pub(super) fn checkpoint(&mut self) -> io::Result<()> {
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
        let (bytes, position, events) = {
            let s = self.shared.lock();
            let position = Position {
                file: self.active.id,
                offset: self.active.len,
            };
            let count = s.queue.len() + s.queue.in_flight();
            let mut out = checkpoint::begin(position, self.next_seq, count);
            s.queue
                .for_each_live(|p| checkpoint::push_entry(&mut out, p));
            (checkpoint::finish(out), position, count)
        };
        let fs = self.shared.fs.as_ref();
        checkpoint::write(fs, &self.shared.layout.checkpoint_dir, &bytes)?;
        if let Some(backup) = &self.shared.layout.backup_dir {
            match checkpoint::write(fs, backup, &bytes) {
                Ok(()) => self.backup_position = position,
                Err(error) => {
                    self.shared.counters.checkpoint_backup_write_error.inc();
                    tracing::warn!(channel = %self.shared.name, dir = %backup.display(), %error, "Backup checkpoint failed; keeping the data files it needs.");
                }
            }
        } else {
            self.backup_position = position;
        }
        drop(bytes);
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

/// Creates data file `id` with its header, durably.
pub(super) fn create_file(shared: &Shared, id: u32) -> Result<(Active, PathBuf), DirError> {
    let fs = shared.fs.as_ref();
    let dir = dirs::data_dir_for(&shared.layout, id);
    let path = dir.join(dirs::log_name(id));
    let handle = fs
        .create_new(&path)
        .map_err(dirs::io_err("cannot create", &path))?;
    handle
        .write_all_at(&format::encode_file_header(id), 0)
        .and_then(|_| handle.sync_data())
        .and_then(|_| fs.sync_dir(dir))
        .map_err(dirs::io_err("cannot initialise", &path))?;
    Ok((
        Active {
            id,
            handle: Arc::clone(&handle),
            len: FILE_HEADER_LEN as u64,
        },
        path,
    ))
}

/// Logs what a replay found.
pub(super) fn log_replay(channel: &str, r: &ReplayReport) {
    for damage in &r.damage {
        tracing::error!(%channel, %damage, "File channel damage found during replay.");
    }
    if let Some((file, offset, bytes)) = &r.truncated {
        tracing::warn!(%channel, %file, offset, bytes, "Cut a torn write at the end of the newest data file (a commit that never completed).");
    }
    tracing::info!(
        %channel,
        events = r.events,
        records = r.records,
        checkpoint = r.checkpoint.as_deref().unwrap_or("none"),
        elapsed_ms = r.elapsed.as_millis() as u64,
        "File channel replayed."
    );
}

/// Bytes a request adds to the log.
pub(super) fn request_bytes(r: &Request) -> usize {
    match r {
        Request::Put { record, .. } => record.len(),
        Request::Take { .. } => 64,
        Request::Stop { .. } => 0,
    }
}

/// Removes a stop request from a group, keeping the rest in order.
pub(super) fn take_stop(group: &mut Vec<Request>) -> Option<tokio::sync::oneshot::Sender<()>> {
    let at = group
        .iter()
        .position(|r| matches!(r, Request::Stop { .. }))?;
    match group.remove(at) {
        Request::Stop { reply } => Some(reply),
        _ => None,
    }
}
