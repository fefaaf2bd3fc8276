//! `hdfs` sink (`org.apache.flume.sink.hdfs.HDFSEventSink`): writes events into files bucketed
//! by `hdfs.path` and `hdfs.filePrefix` (escapes: [`escape`]), rolled by count, size, time and
//! idleness, in Flume's file types and formats ([`format`]), on local files, S3-compatible
//! buckets or WebHDFS ([`target`]).
//!
//! # Where the bytes live
//! Each bucket has one open file, named as Flume names it: `<prefix>.<counter>` then
//! `hdfs.fileSuffix`, or else the codec's extension. The counter starts at the clock's
//! milliseconds and never repeats, across restarts too ([`staging`]).
//! - **Local store** (`file://`): the file is written in place under its in-use name
//!   (`hdfs.inUsePrefix` + name + `hdfs.inUseSuffix`, `.tmp` by default). Every batch is
//!   written before its take commits (Flume's `hflush`: in the page cache, safe from a kill -9).
//!   On close the file is fsynced and given its final name (never replacing a file there).
//! - **Remote store** (S3, WebHDFS): object stores cannot make bytes durable before close, so
//!   the open file is staged in `hdfs.stagingDir` and every batch is fsynced there before its
//!   take commits. On close the staged file is uploaded under its final name (multipart above
//!   8 MiB; WebHDFS writes under `.flumen-uploads/` and renames), then deleted ([`finisher`]).
//!   No in-use object is ever visible in the store.
//! - In both cases `hdfs.stagingDir` (locked: one sink each) holds a record per file of its
//!   committed length and destination ([`open_file`]). At start, files a crash left open are
//!   cut back to their committed length and finished: renamed, or uploaded. A file that fails
//!   a write is cut back and finished the same way at once, and its batch goes to a new file.
//!   So after a crash every committed event is in a final file once the agent has started
//!   again and the store is reachable, and no in-use file stays behind.
//! - While uploads cannot keep up (the store is down), at most `hdfs.maxUnfinishedFiles`
//!   closed files wait; past that, batches are refused and the channel holds the events, as
//!   Flume's does while HDFS is down.
//!
//! # Bad events
//! An event whose path needs a timestamp it lacks (no `timestamp` header and no
//! `hdfs.useLocalTimeStamp`; Flume retries that batch for ever), whose `timestamp` a
//! SequenceFile key cannot parse, or whose header values would lead the path out of its root
//! (`..`, NUL, an absolute value), is rejected through [`Sink::screen`]: it goes to the
//! dead-letter channel with the reason.
//!
//! # Divergences from Flume
//! - Rolls on time and idleness are checked before each batch and by the sink's periodic work
//!   (at least once a second), not by timer threads.
//! - One counter per sink, not per bucket (names stay unique and Flume-shaped).
//! - `hdfs.threadsPoolSize` is how many closed files are uploaded (or renamed) at once;
//!   `hdfs.callTimeout` bounds each call to a remote store, not local file I/O (a blocking
//!   system call cannot be cancelled).
//! - `hdfs.minBlockReplicas` and `hdfs.rollTimerPoolSize` have no effect (no DataNodes; no
//!   timer pool).
//! - `hdfs://` needs HDFS's native client, which this build lacks: such a sink is refused by
//!   name.

pub mod codec;
pub mod config;
pub mod escape;
pub mod finisher;
pub mod format;
#[cfg(test)]
mod hadoop_test_support;
pub mod open_file;
pub mod sequence_file;
pub mod staging;
pub mod target;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio_util::task::AbortOnDropHandle;

use self::config::HdfsConfig;
use self::escape::{HostNames, RenderContext, RenderError};
use self::finisher::{Finisher, Queue};
use self::format::FileType;
use self::open_file::{Destination, OpenFile};
use self::staging::Staging;
use super::{Rejected, Sink, SinkError};
use crate::event::Event;
use crate::metrics::SinkCounters;

/// The hdfs sink.
pub struct HdfsSink {
    config: HdfsConfig,
    files: HashMap<String, OpenFile>,
    finisher: Finisher,
    /// Set up by the first batch: the locked staging directory, the finisher's queue and task.
    staging: Option<Staging>,
    queue: Option<Queue>,
    task: Option<AbortOnDropHandle<()>>,
    /// Rendering settings; `now_millis` is set before each batch.
    ctx: RenderContext,
    counters: SinkCounters,
    /// The bucket key being rendered (`<dir>/<prefix>`), reused across events.
    key: String,
}

impl HdfsSink {
    /// A sink with `config`; fails when the remote store's client cannot be built.
    pub fn new(config: HdfsConfig) -> Result<Self, String> {
        let op = finisher::operator(
            &config.location.store,
            &config.location.path,
            config.call_timeout,
        )?;
        let finisher = Finisher::new(op, config.close_tries, config.retry_interval);
        let ctx = RenderContext {
            time_zone: config.time_zone,
            round: config.round,
            use_local_timestamp: config.use_local_timestamp,
            now_millis: 0,
            host: host_names(),
        };
        Ok(HdfsSink {
            config,
            files: HashMap::new(),
            finisher,
            staging: None,
            queue: None,
            task: None,
            ctx,
            counters: SinkCounters::default(),
            key: String::new(),
        })
    }

    /// Once, before the first batch: locks the staging directory, starts the finisher and
    /// hands it the files an earlier run left open. Fails (and the runner retries) while
    /// another sink holds the directory.
    fn start(&mut self) -> Result<(), SinkError> {
        if self.queue.is_some() {
            return Ok(());
        }
        let dir = self.config.staging_dir.clone();
        let io = |source| SinkError::Io {
            context: format!("hdfs.stagingDir {}", dir.display()),
            source,
        };
        let mut staging = Staging::open(&dir, now_millis().max(0) as u64).map_err(io)?;
        let (queue, task) = self.finisher.clone().spawn(self.config.threads);
        for closed in finisher::recover(staging.dir()) {
            // New files must not reuse a counter (and so a final name) of one still to finish.
            staging.skip_past(closed.dest.counter);
            queue.send(closed);
        }
        self.staging = Some(staging);
        self.queue = Some(queue);
        self.task = Some(task);
        Ok(())
    }

    /// Renders `<dir>/<prefix>` of `event` into `key`; returns the length of `<dir>`.
    fn render_key(
        config: &HdfsConfig,
        ctx: &RenderContext,
        event: &Event,
        key: &mut String,
    ) -> Result<usize, RenderError> {
        key.clear();
        let header = |name: &str| event.headers.get(name).map(|v| v.as_str());
        config.path.render(header, ctx, key)?;
        // As Hadoop's `Path` normalises it: an empty header value leaves no empty directory.
        if key.contains("//") {
            collapse_slashes(key);
        }
        while key.len() > 1 && key.ends_with('/') {
            key.pop();
        }
        let dir_len = key.len();
        key.push('/');
        config.file_prefix.render(header, ctx, key)?;
        Ok(dir_len)
    }

    /// Where a new file of bucket `key` goes, with counter `counter`.
    fn destination(&self, key: &str, dir_len: usize, counter: u64) -> Destination {
        let c = &self.config;
        let dir = &key[..dir_len];
        let prefix = &key[dir_len + 1..];
        let ext = if c.file_suffix.is_empty() {
            c.format.extension()
        } else {
            c.file_suffix.as_str()
        };
        let name = format!("{prefix}.{counter}{ext}");
        let final_path = format!("{dir}/{name}");
        if c.location.store.is_remote() {
            Destination {
                final_path,
                data: c.staging_dir.join(format!("{counter}.data")),
                remote: true,
                counter,
            }
        } else {
            let in_use = format!("{dir}/{}{name}{}", c.in_use_prefix, c.in_use_suffix);
            Destination {
                final_path,
                data: PathBuf::from(in_use),
                remote: false,
                counter,
            }
        }
    }

    fn open(&mut self, key: &str, dir_len: usize) -> Result<OpenFile, SinkError> {
        if self.files.len() >= self.config.max_open_files {
            self.close_least_recent();
        }
        let now = now_millis().max(0) as u64;
        let counter = match self.staging.as_mut() {
            Some(staging) => staging.next_counter(now),
            None => Err(std::io::Error::other("the sink has not started")),
        }
        .map_err(|source| SinkError::Io {
            context: "reserving file counters".into(),
            source,
        })?;
        let dest = self.destination(key, dir_len, counter);
        let meta = self.config.staging_dir.join(format!("{counter}.meta"));
        let data = dest.data.clone();
        let created = self
            .config
            .format
            .encoder()
            .and_then(|encoder| OpenFile::create(dest, &meta, encoder));
        match created {
            Ok(f) => {
                self.counters.connection_created.inc();
                tracing::info!(path = %data.display(), "Creating file.");
                Ok(f)
            }
            Err(source) => {
                self.counters.connection_failed.inc();
                Err(SinkError::Io {
                    context: format!("creating {}", data.display()),
                    source,
                })
            }
        }
    }

    /// `hdfs.maxOpenFiles`: closes the file appended to least recently, as Flume's
    /// access-ordered map evicts its eldest writer (a failure is logged, as in Flume).
    fn close_least_recent(&mut self) {
        let eldest = self
            .files
            .iter()
            .min_by_key(|(_, f)| f.last_append)
            .map(|(k, _)| k.clone());
        if let Some(key) = eldest {
            if let Err(error) = self.close_key(&key) {
                tracing::warn!(%key, %error, "Closing the least recently used file failed.");
            }
        }
    }

    fn close_key(&mut self, key: &str) -> Result<(), SinkError> {
        match self.files.remove(key) {
            Some(file) => self.close(file),
            None => Ok(()),
        }
    }

    /// Closes a file and finishes it: a local one is renamed at once (retried by the
    /// finisher when that fails), a staged one is queued for upload. A file that cannot be
    /// closed is abandoned: cut back to its committed bytes and finished as it is.
    fn close(&mut self, file: OpenFile) -> Result<(), SinkError> {
        let (closed, failure) = match file.close() {
            Ok(closed) => (Some(closed), None),
            Err(failed) => {
                let (source, file) = *failed;
                let context = format!("closing {}", file.dest.data.display());
                (file.abandon(), Some(SinkError::Io { context, source }))
            }
        };
        self.counters.connection_closed.inc();
        if let Some(closed) = closed {
            self.finish(closed);
        }
        failure.map_or(Ok(()), Err)
    }

    /// Renames a closed local file at once; queues anything else for the finisher.
    fn finish(&mut self, closed: open_file::Closed) {
        if !closed.dest.remote && closed.length > 0 {
            match open_file::finish_local(&closed) {
                Ok(target) => {
                    tracing::info!(path = %target.display(), "Closed file renamed to its final name.");
                    return;
                }
                Err(error) => {
                    tracing::warn!(path = %closed.dest.final_path, %error, "Renaming a closed file failed; retrying.");
                }
            }
        }
        if let Some(queue) = &self.queue {
            queue.send(closed);
        }
    }

    /// Whether `file` must roll before another event (Flume checks before each append).
    /// Closes files due on time or idleness.
    fn roll_due(&mut self) -> Result<(), SinkError> {
        let c = &self.config;
        let due: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| {
                (!c.roll_interval.is_zero() && f.opened.elapsed() >= c.roll_interval)
                    || (!c.idle_timeout.is_zero() && f.last_append.elapsed() >= c.idle_timeout)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.close_key(&key)?;
        }
        Ok(())
    }

    /// Writes a batch: each event into its bucket's file, rolling as Flume does, then every
    /// file written to is flushed (and fsynced when staged).
    fn write_batch(&mut self, events: &[Event]) -> Result<(), SinkError> {
        let now = now_millis();
        let mut key = std::mem::take(&mut self.key);
        let result = self.write_events(events, now, &mut key);
        self.key = key;
        if let Err(error) = result {
            // Part of the batch is encoded into open files but not written: those files are
            // cut back to what was committed and finished, so the batch, delivered again,
            // lands once in new files.
            self.abandon_dirty();
            return Err(error);
        }
        let mut failed = None;
        for (k, file) in self.files.iter_mut() {
            if let Err(source) = file.flush() {
                failed = Some((k.clone(), source));
                break;
            }
        }
        if let Some((k, source)) = failed {
            // The file is cut back to what was committed and finished as it is; the batch is
            // delivered again, to a new file.
            if let Some(f) = self.files.remove(&k) {
                tracing::warn!(path = %f.dest.data.display(), error = %source, "Abandoning a file after a write failure.");
                if let Some(closed) = f.abandon() {
                    self.finish(closed);
                }
            }
            return Err(SinkError::Io {
                context: format!("writing bucket {k}"),
                source,
            });
        }
        Ok(())
    }

    fn write_events(
        &mut self,
        events: &[Event],
        now: i64,
        key: &mut String,
    ) -> Result<(), SinkError> {
        self.ctx.now_millis = now;
        // One clock read per batch: rolls on time are judged at the batch's start.
        let at = Instant::now();
        for event in events {
            let dir_len = Self::render_key(&self.config, &self.ctx, event, key).map_err(|e| {
                SinkError::Io {
                    context: format!("building the path of an event: {e}"),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
            // The common case costs one map lookup: the bucket's file is open and not due.
            if let Some(file) = self.files.get_mut(key.as_str()) {
                if !must_roll(&self.config, file, at) {
                    Self::append(file, event, now, at)?;
                    continue;
                }
                self.close_key(key)?;
            }
            let file = self.open(key, dir_len)?;
            let file = self.files.entry(key.clone()).insert_entry(file).into_mut();
            Self::append(file, event, now, at)?;
        }
        Ok(())
    }

    fn append(file: &mut OpenFile, event: &Event, now: i64, at: Instant) -> Result<(), SinkError> {
        file.append(event, now, at).map_err(|source| SinkError::Io {
            context: format!("encoding into {}", file.dest.data.display()),
            source,
        })
    }

    /// Abandons every file with events not yet written (see [`OpenFile::abandon`]).
    fn abandon_dirty(&mut self) {
        let dirty: Vec<String> = self
            .files
            .iter()
            .filter(|(_, f)| f.dirty)
            .map(|(k, _)| k.clone())
            .collect();
        for key in dirty {
            if let Some(closed) = self.files.remove(&key).and_then(OpenFile::abandon) {
                self.finish(closed);
            }
        }
    }

    /// Closes every open file and waits up to `hdfs.callTimeout` for the finisher.
    async fn close_all(&mut self) -> Result<(), SinkError> {
        let keys: Vec<String> = self.files.keys().cloned().collect();
        let mut first = Ok(());
        for key in keys {
            if let Err(e) = blocking(|| self.close_key(&key)) {
                tracing::error!(%key, error = %e, "Closing a file failed; it is finished at the next start.");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }
}

/// Why a SequenceFile cannot key `event`: a `timestamp` header that is not a number (Flume's
/// `Long.valueOf` fails the batch for ever).
fn bad_sequence_key(event: &Event) -> Option<String> {
    let stamp = event.headers.get("timestamp")?;
    sequence_file::flume_key(Some(stamp.as_str()), 0)
        .err()
        .map(|_| format!("the timestamp header `{stamp}` is not a number, and a SequenceFile record needs it as its key"))
}

/// `%[localhost]`, `%[IP]`, `%[FQDN]`: resolved once, as the host interceptor resolves them
/// (the FQDN is the host name as the system reports it: no reverse lookup).
fn host_names() -> HostNames {
    let name = crate::interceptor::host::host_name().unwrap_or_else(|| "localhost".into());
    let ip = crate::interceptor::host::local_host(true).unwrap_or_else(|| "127.0.0.1".into());
    HostNames {
        host_name: name.clone(),
        ip,
        canonical_name: name,
    }
}

/// Runs file I/O without stalling the runtime: on a multi-thread runtime the worker hands its
/// other tasks off meanwhile (tests on a current-thread runtime run it in line).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Whether `file` must roll before another event (Flume checks before each append), judged
/// at `now`.
fn must_roll(c: &HdfsConfig, file: &OpenFile, now: Instant) -> bool {
    (c.roll_count > 0 && file.events >= c.roll_count)
        || (c.roll_size > 0 && file.body_bytes >= c.roll_size)
        || (!c.roll_interval.is_zero()
            && now.saturating_duration_since(file.opened) >= c.roll_interval)
}

/// Replaces runs of `/` with one.
fn collapse_slashes(path: &mut String) {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    *path = out;
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[async_trait]
impl Sink for HdfsSink {
    fn type_name(&self) -> &'static str {
        "hdfs"
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "hdfs.path={} ({}) hdfs.fileType={:?} hdfs.codeC={} serializer={} hdfs.rollInterval={} hdfs.rollSize={} hdfs.rollCount={} hdfs.batchSize={} hdfs.stagingDir={}",
            c.location.path,
            c.location.store.describe(),
            c.format.file_type,
            c.format.codec.map_or("none", |x| x.extension()),
            c.format.serializer.name(),
            c.roll_interval.as_secs(),
            c.roll_size,
            c.roll_count,
            c.batch_size,
            c.staging_dir.display(),
        )
    }

    fn use_counters(&mut self, counters: &SinkCounters) {
        self.counters = counters.clone();
    }

    fn screen(&mut self, events: &[Event]) -> Vec<Rejected> {
        let c = &self.config;
        let keyed = c.format.file_type == FileType::SequenceFile;
        if c.path.is_constant() && c.file_prefix.is_constant() && !keyed {
            return Vec::new();
        }
        self.ctx.now_millis = now_millis();
        let mut key = String::new();
        let mut rejected = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let reason = match Self::render_key(c, &self.ctx, event, &mut key) {
                Err(e) => Some(format!("hdfs.path cannot be built for this event: {e}")),
                Ok(_) if keyed => bad_sequence_key(event),
                Ok(_) => None,
            };
            if let Some(reason) = reason {
                rejected.push(Rejected { index, reason });
            }
        }
        rejected
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        blocking(|| self.start())?;
        let waiting = self.queue.as_ref().map_or(0, Queue::waiting);
        if waiting >= self.config.max_unfinished_files {
            // The store is down or slow: keep the events in the channel rather than staging
            // without bound.
            return Err(SinkError::Io {
                context: format!("{} {}", self.config.location.store.describe(), self.config.location.path),
                source: std::io::Error::other(format!(
                    "{waiting} closed files wait to be finished (hdfs.maxUnfinishedFiles); holding events in the channel"
                )),
            });
        }
        blocking(|| {
            self.roll_due()?;
            self.write_batch(events)
        })
    }

    async fn maintain(&mut self) -> Result<(), SinkError> {
        blocking(|| {
            self.start()?;
            self.roll_due()
        })
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        if self.queue.is_none() {
            return Ok(());
        }
        let closed = self.close_all().await;
        self.queue = None;
        if let Some(mut task) = self.task.take() {
            let wait = self.config.call_timeout.max(Duration::from_secs(1));
            if tokio::time::timeout(wait, &mut task).await.is_err() {
                drop(task);
                tracing::warn!(staging = %self.config.staging_dir.display(), "Closed files are still being finished at stop; they stay staged and are finished at the next start.");
            }
        }
        closed
    }
}

/// Builds the sink from its properties; `None` when it cannot run (findings say why).
pub fn build(
    ctx: &crate::registry::BuildContext<'_>,
    r: &mut crate::config::PropReader<'_>,
) -> Option<Box<dyn Sink>> {
    let config = HdfsConfig::from_props(ctx, r)?;
    match HdfsSink::new(config) {
        Ok(sink) => Some(Box::new(sink)),
        Err(why) => {
            config::refuse(
                r,
                "hdfs.path",
                &format!("hdfs.path: the store's client cannot be built: {why}."),
            );
            None
        }
    }
}

/// The path of a sink's meta records (for tests and tools).
pub fn meta_records(staging: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(staging)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "meta"))
                .collect()
        })
        .unwrap_or_default()
}
