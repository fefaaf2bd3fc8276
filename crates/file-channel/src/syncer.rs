//! The commit syncer: the thread that makes the writer's appended groups durable, so that the
//! writer appends group k+1 while group k's `fdatasync` runs.
//!
//! With `fsyncPerTransaction` (the default) a commit costs a write and an fsync. Done in line
//! by one thread, every group waits for both, and the disk idles while the writer copies. Here
//! the writer appends a group and hands its commits over as a [`Job`]; the syncer takes every
//! job waiting, syncs each data file they wrote once, and only then applies them to the queue
//! and answers, in the order they were written. A job is handed over after its write returned,
//! so the fsync that covers it starts after its bytes reached the file.
//!
//! A failed fsync fails its jobs and every job after it without syncing them again (after a
//! failed fsync the kernel may have dropped the dirty pages; a later fsync that succeeds would
//! prove nothing). The syncer then wakes the writer with [`Request::SyncFailed`]; the writer
//! stops appending, collects the failed commits at a [`Syncer::barrier`], reopens the channel
//! from what is on disk and only then answers them. The group the writer was appending while
//! the fsync failed is refused too, but its bytes may reach the disk later: like a commit cut
//! by a crash, it is in doubt (a put may come back after the reopen; a take may stay done).

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::fs::FileHandle;
use super::writer::{apply, Pending, Request};
use super::Shared;

/// One appended group's commits, written to data file `file`.
pub(super) struct Job {
    /// The data file written to.
    pub file: u32,
    /// Its handle, to sync.
    pub handle: Arc<dyn FileHandle>,
    /// The commits to apply and answer once durable.
    pub pending: Vec<Pending>,
}

enum Msg {
    Sync(Job),
    Barrier(Sender<Failed>),
}

/// Commits whose fsync failed since the last barrier, with the error.
#[derive(Default)]
pub(super) struct Failed {
    /// The first failure's error.
    pub error: Option<String>,
    /// Their commits, in the order written.
    pub pending: Vec<Pending>,
}

/// The handle on the syncer thread; dropping it stops the thread once its jobs are done.
pub(super) struct Syncer {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    /// Set when an fsync fails, cleared at the barrier that collects the failure.
    failing: Arc<AtomicBool>,
}

impl Syncer {
    /// Starts the thread.
    pub fn spawn(shared: Arc<Shared>) -> io::Result<Syncer> {
        let (tx, rx) = mpsc::channel();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failing);
        let thread = std::thread::Builder::new()
            .name(format!("flumen-fc-sync-{}", shared.name))
            .spawn(move || run(&shared, rx, &flag))?;
        Ok(Syncer {
            tx: Some(tx),
            thread: Some(thread),
            failing,
        })
    }

    /// Whether an fsync failed since the last barrier: the writer then stops appending and
    /// settles first, so that at most the group it was writing meanwhile is in doubt.
    pub fn failing(&self) -> bool {
        self.failing.load(Ordering::Acquire)
    }

    /// Hands a job over; gives it back if the thread is gone (it took the jobs it held with
    /// it, so the caller fails them all and rebuilds the channel from disk).
    pub fn submit(&self, job: Job) -> Result<(), Job> {
        let Some(tx) = &self.tx else { return Err(job) };
        match tx.send(Msg::Sync(job)) {
            Err(mpsc::SendError(Msg::Sync(job))) => Err(job),
            _ => Ok(()),
        }
    }

    /// Waits until every job handed over is applied or failed; returns the failed ones (and
    /// clears the failure, so that jobs after a reopen are synced again). A thread that is
    /// gone (it panicked) took the jobs it held with it: that is reported as a failure, so that
    /// the writer rebuilds the channel from disk.
    pub fn barrier(&self) -> Failed {
        let (reply, answer) = mpsc::channel();
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Barrier(reply)).is_ok());
        let answer = if sent { answer.recv().ok() } else { None };
        answer.unwrap_or_else(|| Failed {
            error: Some("the file channel's sync thread exited".into()),
            pending: Vec::new(),
        })
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(shared: &Shared, rx: Receiver<Msg>, failing: &AtomicBool) {
    let mut failed = Failed::default();
    while let Ok(first) = rx.recv() {
        let mut jobs = Vec::new();
        let mut barrier = None;
        match first {
            Msg::Sync(job) => jobs.push(job),
            Msg::Barrier(reply) => barrier = Some(reply),
        }
        while barrier.is_none() {
            match rx.try_recv() {
                Ok(Msg::Sync(job)) => jobs.push(job),
                Ok(Msg::Barrier(reply)) => barrier = Some(reply),
                Err(_) => break,
            }
        }
        if !jobs.is_empty() {
            settle(shared, jobs, &mut failed, failing);
        }
        if let Some(reply) = barrier {
            failing.store(false, Ordering::Release);
            let _ = reply.send(std::mem::take(&mut failed));
        }
    }
}

/// Syncs the files `jobs` wrote, each once, then applies them; or fails them all.
fn settle(shared: &Shared, jobs: Vec<Job>, failed: &mut Failed, failing: &AtomicBool) {
    if failed.error.is_none() {
        if let Err(e) = sync_files(&jobs) {
            failed.error = Some(format!("fsync failed: {e}"));
            failing.store(true, Ordering::Release);
            // Wake the writer; it collects the failed commits at a barrier.
            shared.send(Request::SyncFailed);
        }
    }
    let pending = jobs.into_iter().flat_map(|j| j.pending);
    if failed.error.is_some() {
        failed.pending.extend(pending);
    } else {
        apply(shared, pending.collect());
    }
}

/// One `fdatasync` per data file, in the order the jobs wrote them.
fn sync_files(jobs: &[Job]) -> io::Result<()> {
    // Jobs of one file come together: the writer moves on to a new file, never back.
    let mut last = None;
    for job in jobs {
        if last != Some(job.file) {
            last = Some(job.file);
            job.handle.sync_data()?;
        }
    }
    Ok(())
}
