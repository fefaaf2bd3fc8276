//! The spooling directory source (`spooldir`, Flume's `SpoolDirectorySource`): reads files
//! dropped into a directory, one at a time, and marks each finished once all its events are
//! committed.
//!
//! # Behaviour (Flume's)
//! - Files must be complete and never change once in the directory: write them elsewhere and
//!   rename them in. Candidates and their order: see [`scan`]; one file is read at a time, in
//!   batches of `batchSize` events, each put with backpressure (a full channel holds the
//!   source back; nothing is dropped).
//! - A file is finished only after **all** its events are committed: then it is renamed to
//!   `<name><fileSuffix>` (`trackingPolicy = rename`), deleted (`deletePolicy = immediate`),
//!   or left in place and recorded as an empty `<trackerDir>/<relative path><fileSuffix>`
//!   (`trackingPolicy = tracker_dir`).
//! - `fileHeader` puts the file's absolute path in `fileHeaderKey`; `basenameHeader` its name
//!   in `basenameHeaderKey`. A file that yields no event at all gives one event with an empty
//!   body (so that it is delivered and finished like any other), as in Flume.
//! - Deserializers: LINE ([`line`]), AVRO ([`avro`]), BLOB ([`deserializer`]).
//! - When the directory has no candidate, it is scanned again after `pollDelay`.
//!
//! # Crash safety
//! After every committed batch the position of the next event is written to
//! `<trackerDir>/.flumen-position.json` (see [`tracker`]: temporary file, fsync, rename).
//! After a crash or kill -9 the source resumes that file at that position: the events of at
//! most **one batch** (`batchSize`) — those committed after the last position write — are
//! delivered again. A file whose identity (device, inode, size, modification time) differs
//! from the recorded one has been changed, which is an error (below). Directory entries are
//! not fsynced per batch, so after a power loss the previous position may come back: more
//! duplicates, never a loss. The rename, unlink or marker that finishes a file is fsynced
//! before the position is cleared.
//!
//! # Errors: one file stops, the source goes on (Flume stops the whole source)
//! Each of these is logged at ERROR naming the file, counted, and the file is left as it is
//! (not renamed, deleted or tracked) so that an operator can see it and nothing is lost; the
//! source goes on with the other files and does not pick that one again until it restarts:
//! - the file changes (size, modification time or inode) or disappears after it was picked
//!   up (checked before each batch is put and before it is finished): the changed batch is
//!   not put; events committed before stay delivered;
//! - malformed input under `decodeErrorPolicy = FAIL`, an invalid Avro container, a read
//!   error: the events before the bad point are delivered (EventReadFail);
//! - its `<name><fileSuffix>` (or tracker marker) already exists: the file is not renamed
//!   over it (GenericProcessingFail).
//!
//! Flume throws in all these cases and the source stays dead until Flume is restarted or
//! reconfigured. After a restart Flumen reads a file left behind from its recorded position,
//! or from its start when another file was read since (its events are delivered again).
//!
//! A spooling directory that is missing or not writable (canary check, `rename` policy) is
//! logged at ERROR and tried again every 3 s, as Flume's supervisor restarts a source whose
//! start failed.
//!
//! # Other differences from Flume
//! - Charsets: only ASCII-compatible ones (UTF-16 and UTF-32 are refused at configuration).
//! - `maxBackoff` bounds the pause between retries of a batch that a channel refused for a
//!   reason other than being full; a full channel is retried by the common backpressure loop
//!   (10 ms doubling to 500 ms) as in every Flumen source.
//! - Flume's canary file in the spooling directory is a hidden `.flumen-perm-check.canary`
//!   here, so that another agent cannot read it as input.
//! - Flume's `.flumespool-main.meta` is neither read nor written: a position left by Flume is
//!   not resumed (the file is read from its start).

mod avro;
mod charset;
pub mod config;
mod deserializer;
mod line;
mod read;
mod scan;
mod tracker;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

pub use config::SpoolDirConfig;
use config::{DeserializerConfig, SchemaType};
use read::{Batch, Deserializer, ReadError};
use scan::{Candidate, Filter};
use tracker::{FileId, Position, PositionRecord, PositionStore, Retired, Retirer, TrackerError};

use super::{Source, SourceContext, SourceError};
use crate::event::{Event, HeaderString};
use crate::rate_limit::RateLimit;

/// The first pause before retrying a batch a channel refused (Flume's 250 ms).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Pause between attempts to start on an unusable spooling directory (Flume's supervisor
/// checks every 3 s).
const START_RETRY: Duration = Duration::from_secs(3);

/// The spooling directory source.
pub struct SpoolDirSource {
    config: SpoolDirConfig,
}

impl SpoolDirSource {
    /// A source with `config`.
    pub fn new(config: SpoolDirConfig) -> Self {
        SpoolDirSource { config }
    }
}

#[async_trait]
impl Source for SpoolDirSource {
    fn type_name(&self) -> &'static str {
        "spooldir"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "spoolDir={} fileSuffix={} deletePolicy={:?} trackingPolicy={:?} trackerDir={} consumeOrder={:?} recursiveDirectorySearch={} pollDelay={} batchSize={} deserializer={:?}",
            c.spool_dir.display(),
            c.file_suffix,
            c.delete_policy,
            c.tracking_policy,
            c.tracker_dir.display(),
            c.consume_order,
            c.recursive,
            c.poll_delay.as_millis(),
            c.batch_size,
            c.deserializer
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let Some(prepared) = prepare_retrying(self.config, &ctx).await else {
            return Ok(());
        };
        if let DeserializerConfig::Avro {
            schema_type: SchemaType::Literal,
        } = prepared.config.deserializer
        {
            tracing::warn!(source = %ctx.name, "deserializer.schemaType = LITERAL puts the whole Avro schema in a header of every event; HASH is much smaller.");
        }
        tracing::info!(source = %ctx.name, spool_dir = %prepared.config.spool_dir.display(), "Spooling directory source started.");
        let mut spooler = Spooler {
            c: Arc::new(prepared.config),
            filter: prepared.filter,
            store: Arc::new(prepared.store),
            resume: prepared.resume,
            failed: HashSet::new(),
            random: Vec::new(),
            cut_warnings: RateLimit::new(Duration::from_secs(10)),
        };
        spooler.run(&ctx).await;
        Ok(())
    }
}

/// Prepares the directories, retrying every [`START_RETRY`] while they are unusable (as
/// Flume's supervisor restarts a source whose start failed); `None` once the source stops.
async fn prepare_retrying(config: SpoolDirConfig, ctx: &SourceContext) -> Option<Prepared> {
    let warnings = RateLimit::new(Duration::from_secs(60));
    loop {
        let c = config.clone();
        match blocking(move || prepare(c)).await? {
            Ok(p) => return Some(p),
            Err(error) => {
                if let Some(suppressed) = warnings.check() {
                    tracing::error!(source = %ctx.name, %error, suppressed, retry_ms = START_RETRY.as_millis() as u64, "Cannot start the spooling directory source; retrying.");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(START_RETRY) => {}
            _ = ctx.shutdown.cancelled() => return None,
        }
    }
}

/// The checked, absolute configuration and what was found on disk.
struct Prepared {
    config: SpoolDirConfig,
    filter: Filter,
    store: PositionStore,
    resume: Option<PositionRecord>,
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> SourceError {
    move |source| SourceError::Io { context, source }
}

/// Checks the directories (Flume refuses to start without them) and loads the position.
fn prepare(mut config: SpoolDirConfig) -> Result<Prepared, SourceError> {
    let spool = std::path::absolute(&config.spool_dir).map_err(io_error(format!(
        "resolving {}",
        config.spool_dir.display()
    )))?;
    let meta = std::fs::metadata(&spool).map_err(io_error(format!(
        "the spooling directory {}",
        spool.display()
    )))?;
    if !meta.is_dir() {
        return Err(SourceError::Io {
            context: format!("the spooling directory {}", spool.display()),
            source: std::io::Error::other("not a directory"),
        });
    }
    let tracker_dir = std::path::absolute(&config.tracker_dir).map_err(io_error(format!(
        "resolving {}",
        config.tracker_dir.display()
    )))?;
    std::fs::create_dir_all(&tracker_dir).map_err(io_error(format!(
        "creating the tracker directory {}",
        tracker_dir.display()
    )))?;
    if config.tracking_policy == config::TrackingPolicy::Rename {
        // Flume's canary: the directory must let us create, read and remove files.
        let canary = spool.join(".flumen-perm-check.canary");
        let check = std::fs::write(&canary, b"testing flumen file permissions\n")
            .and_then(|()| std::fs::read(&canary))
            .and_then(|_| std::fs::remove_file(&canary));
        check.map_err(io_error(format!(
            "reading and modifying files in the spooling directory {}",
            spool.display()
        )))?;
    }
    config.spool_dir = spool;
    config.tracker_dir = tracker_dir;
    let retirer = Retirer {
        spool_dir: config.spool_dir.clone(),
        tracker_dir: config.tracker_dir.clone(),
        suffix: config.file_suffix.clone(),
        delete: config.delete_policy,
        tracking: config.tracking_policy,
    };
    let filter = Filter {
        include: config.include.clone(),
        ignore: config.ignore.clone(),
        recursive: config.recursive,
        retirer,
    };
    let store = PositionStore::new(&config.tracker_dir);
    let resume = match store.load() {
        Ok(r) => r,
        Err(error) => {
            tracing::warn!(%error, "Ignoring the position file; the file it named will be read from its start.");
            None
        }
    };
    Ok(Prepared {
        config,
        filter,
        store,
        resume,
    })
}

/// What the source does after a file.
enum Flow {
    /// Go on with the next file.
    Next,
    /// The source is stopping.
    Stop,
}

/// Why a file was given up.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("the file was {how} after it was picked up (size {was_size} -> {now_size} bytes)")]
    Changed {
        how: &'static str,
        was_size: u64,
        now_size: u64,
    },
    #[error("the file disappeared after it was picked up")]
    Gone,
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error("{0}")]
    Io(std::io::Error),
}

/// The open file: its deserializer and identity.
struct Opened {
    reader: Box<dyn Deserializer>,
    id: FileId,
}

/// The state of a running source.
struct Spooler {
    c: Arc<SpoolDirConfig>,
    filter: Filter,
    store: Arc<PositionStore>,
    /// The position file's record, until its file is resumed or found gone.
    resume: Option<PositionRecord>,
    /// Files given up since the start; not picked again.
    failed: HashSet<PathBuf>,
    /// `consumeOrder = random`: the shuffled listing still to go.
    random: Vec<Candidate>,
    cut_warnings: RateLimit,
}

impl Spooler {
    async fn run(&mut self, ctx: &SourceContext) {
        while !ctx.shutdown.is_cancelled() {
            match self.next_file(ctx).await {
                Some((path, start)) => {
                    if let Flow::Stop = self.read_file(&path, start, ctx).await {
                        return;
                    }
                }
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.c.poll_delay) => {}
                        _ = ctx.shutdown.cancelled() => return,
                    }
                }
            }
        }
    }

    /// The next file and the record to resume it from.
    async fn next_file(
        &mut self,
        ctx: &SourceContext,
    ) -> Option<(PathBuf, Option<PositionRecord>)> {
        if let Some(record) = self.resume.take() {
            let path = PathBuf::from(&record.file);
            let filter = self.filter.clone();
            let p = path.clone();
            let was = record.id;
            let (candidate, same) = blocking(move || {
                let same = std::fs::metadata(&p).is_ok_and(|m| FileId::of(&m).same_inode(&was));
                (filter.is_candidate(&p), same)
            })
            .await
            .unwrap_or((false, false));
            if candidate && !self.failed.contains(&path) {
                // Another file under that name is new: read it from its start.
                return Some((path, same.then_some(record)));
            }
            let store = self.store.clone();
            let _ = blocking(move || store.clear()).await;
        }
        loop {
            if self.c.consume_order == config::ConsumeOrder::Random {
                while let Some(c) = self.random.pop() {
                    let filter = self.filter.clone();
                    let p = c.path.clone();
                    if !self.failed.contains(&c.path)
                        && blocking(move || filter.is_candidate(&p))
                            .await
                            .unwrap_or(false)
                    {
                        return Some((c.path, None));
                    }
                }
            }
            let filter = self.filter.clone();
            let listing = blocking(move || filter.list()).await?;
            for (dir, error) in &listing.errors {
                ctx.counters.generic_processing_fail.inc();
                tracing::error!(source = %ctx.name, dir = %dir.display(), %error, "Cannot list a directory of the spooling directory; its files are not read.");
            }
            let mut files: Vec<Candidate> = listing
                .files
                .into_iter()
                .filter(|c| !self.failed.contains(&c.path))
                .collect();
            if self.c.consume_order == config::ConsumeOrder::Random {
                if files.is_empty() {
                    return None;
                }
                scan::shuffle(&mut files);
                self.random = files;
                continue;
            }
            return scan::pick(&files, self.c.consume_order).map(|c| (c.path.clone(), None));
        }
    }

    /// Reads one file to its end and finishes it, or gives it up.
    async fn read_file(
        &mut self,
        path: &Path,
        resume: Option<PositionRecord>,
        ctx: &SourceContext,
    ) -> Flow {
        let (mut committed, mut events_done, mut expected) = match &resume {
            Some(r) => (r.position, r.events, Some(r.id)),
            None => (Position::default(), 0, None),
        };
        let mut backoff = FIRST_BACKOFF;
        let mut first_open = true;
        'reopen: loop {
            let opened = {
                let c = self.c.clone();
                let p = path.to_path_buf();
                blocking(move || open_file(&c, &p, committed, expected)).await
            };
            let mut opened = match opened {
                Some(Ok(o)) => o,
                Some(Err(FileError::Io(error))) if error.kind() == std::io::ErrorKind::NotFound => {
                    tracing::warn!(source = %ctx.name, file = %path.display(), "The file disappeared before it could be read.");
                    return Flow::Next;
                }
                Some(Err(error)) => return self.give_up(path, error, ctx),
                None => return Flow::Stop,
            };
            expected = Some(opened.id);
            if first_open {
                tracing::info!(source = %ctx.name, file = %path.display(), size = opened.id.size, offset = committed.offset, "Reading file.");
                first_open = false;
            }
            loop {
                if ctx.shutdown.is_cancelled() {
                    return Flow::Stop;
                }
                let max = self.c.batch_size;
                let p = path.to_path_buf();
                let read = blocking(move || {
                    let batch = opened.reader.read_batch(max);
                    let now = std::fs::metadata(&p).map(|m| FileId::of(&m));
                    (opened, batch, now)
                })
                .await;
                let Some((o, batch, now)) = read else {
                    return Flow::Stop;
                };
                opened = o;
                if let Err(error) = unchanged(&opened.id, now) {
                    return self.give_up(path, error, ctx);
                }
                let Batch {
                    mut events,
                    end,
                    eof,
                    error,
                    cut,
                } = batch;
                if cut > 0 {
                    if let Some(suppressed) = self.cut_warnings.check() {
                        tracing::warn!(source = %ctx.name, file = %path.display(), cut, suppressed, "Lines or blobs longer than the deserializer's maximum were cut into several events.");
                    }
                }
                if events.is_empty() && eof && error.is_none() && events_done == 0 {
                    events.push(Event::new(Bytes::new()));
                }
                if !events.is_empty() {
                    let n = events.len() as u64;
                    self.annotate(&mut events, path);
                    ctx.counters.event_received.add(n);
                    ctx.counters.append_batch_received.inc();
                    if let Err(error) = ctx.processor.process_with_backpressure(events, ctx).await {
                        if ctx.shutdown.is_cancelled() {
                            return Flow::Stop;
                        }
                        ctx.counters.generic_processing_fail.inc();
                        tracing::warn!(source = %ctx.name, file = %path.display(), %error, backoff_ms = backoff.as_millis() as u64, "The channel refused a batch; reading it again after a pause.");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = ctx.shutdown.cancelled() => return Flow::Stop,
                        }
                        backoff = (backoff * 2).min(self.c.max_backoff.max(FIRST_BACKOFF));
                        continue 'reopen;
                    }
                    backoff = FIRST_BACKOFF;
                    ctx.counters.event_accepted.add(n);
                    ctx.counters.append_batch_accepted.inc();
                    events_done += n;
                    committed = end;
                    let record = PositionRecord::new(path, opened.id, committed, events_done);
                    let store = self.store.clone();
                    if let Some(Err(error)) = blocking(move || store.save(&record)).await {
                        ctx.counters.generic_processing_fail.inc();
                        tracing::error!(source = %ctx.name, file = %path.display(), %error, "Cannot record the read position; a crash now would deliver this file's events again.");
                    }
                }
                if let Some(error) = error {
                    ctx.counters.event_read_fail.inc();
                    return self.give_up(path, FileError::Read(error), ctx);
                }
                if eof {
                    return self.finish(path, opened.id, events_done, ctx).await;
                }
            }
        }
    }

    /// Checks the file once more and marks it finished.
    async fn finish(&mut self, path: &Path, id: FileId, events: u64, ctx: &SourceContext) -> Flow {
        let filter = self.filter.clone();
        let store = self.store.clone();
        let p = path.to_path_buf();
        let done = blocking(move || -> Result<Retired, FileError> {
            unchanged(&id, std::fs::metadata(&p).map(|m| FileId::of(&m)))?;
            let retired = filter.retirer.retire(&p)?;
            store.clear()?;
            Ok(retired)
        })
        .await;
        match done {
            None => Flow::Stop,
            Some(Ok(retired)) => {
                let (action, to) = match &retired {
                    Retired::Renamed(to) => ("renamed", Some(to)),
                    Retired::Deleted => ("deleted", None),
                    Retired::Tracked(marker) => ("tracked", Some(marker)),
                };
                tracing::info!(source = %ctx.name, file = %path.display(), events, action, to = %to.map(|t| t.display().to_string()).unwrap_or_default(), "Finished file.");
                Flow::Next
            }
            Some(Err(error)) => self.give_up(path, error, ctx),
        }
    }

    /// Logs a file the source stops reading, and never picks it again.
    fn give_up(&mut self, path: &Path, error: FileError, ctx: &SourceContext) -> Flow {
        if !matches!(error, FileError::Read(_)) {
            ctx.counters.generic_processing_fail.inc();
        }
        tracing::error!(source = %ctx.name, file = %path.display(), %error, "Stopped reading a file: it is left as it is (not renamed, deleted or tracked) and not read again until the agent restarts; the other files go on.");
        self.failed.insert(path.to_path_buf());
        Flow::Next
    }

    /// Adds the file and basename headers.
    fn annotate(&self, events: &mut [Event], path: &Path) {
        if let Some(key) = &self.c.file_header {
            let key = HeaderString::from(key.as_str());
            let value = HeaderString::from(path.to_string_lossy());
            for e in events.iter_mut() {
                e.headers.insert(key.clone(), value.clone());
            }
        }
        if let Some(key) = &self.c.basename_header {
            let key = HeaderString::from(key.as_str());
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            let value = HeaderString::from(name);
            for e in events.iter_mut() {
                e.headers.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Runs blocking file-system work off the runtime; `None` if it panicked.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => Some(v),
        Err(error) => {
            tracing::error!(%error, "A spooling directory task failed.");
            None
        }
    }
}

/// Opens `path` at `start`; `expected` is the identity recorded before a restart.
fn open_file(
    c: &SpoolDirConfig,
    path: &Path,
    start: Position,
    expected: Option<FileId>,
) -> Result<Opened, FileError> {
    let file = std::fs::File::open(path).map_err(FileError::Io)?;
    let id = FileId::of(&file.metadata().map_err(FileError::Io)?);
    if let Some(was) = expected {
        unchanged(&was, Ok(id))?;
    }
    let reader = deserializer::open(&c.deserializer, file, id.size, start)?;
    Ok(Opened { reader, id })
}

/// Whether the file is still the one picked up.
fn unchanged(was: &FileId, now: std::io::Result<FileId>) -> Result<(), FileError> {
    match now {
        Ok(now) if now == *was => Ok(()),
        Ok(now) => Err(FileError::Changed {
            how: if now.same_inode(was) {
                "changed"
            } else {
                "replaced by another file"
            },
            was_size: was.size,
            now_size: now.size,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(FileError::Gone),
        Err(e) => Err(FileError::Io(e)),
    }
}
