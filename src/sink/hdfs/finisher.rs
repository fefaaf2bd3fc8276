//! Finishing closed files, and the ones a crash left: renaming local in-use files to their
//! final names, and uploading staged files to a remote store through OpenDAL.
//!
//! Closed files go to one task that finishes them, `hdfs.threadsPoolSize` at a time. A file
//! that fails is tried again after `hdfs.retryInterval`, up to `hdfs.closeTries` times (0:
//! until it succeeds). A file given up on, or still waiting when the sink stops, keeps its
//! staged bytes and meta record and is finished at the next start: its events were committed
//! from the channel when they were durable in staging, so they are never dropped.
//!
//! An upload streams the staged file to its final key with OpenDAL's writer (multipart above
//! 8 MiB), so no `.tmp` object ever exists in the bucket; the final key appears whole when the
//! upload completes. Only then are the staged file and its record removed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opendal::Operator;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use super::open_file::{finish_local, read_meta, remove_if_exists, Closed};
use super::target::Store;

/// Part size of multipart uploads.
const UPLOAD_CHUNK: usize = 8 << 20;

/// Where WebHDFS uploads are written before their rename: `.flumen-uploads/` under the part
/// of `hdfs.path` before its first escape.
fn upload_dir(path: &str) -> String {
    let literal = &path[..path.find('%').unwrap_or(path.len())];
    let root = &literal[..literal.rfind('/').map_or(0, |i| i + 1)];
    let root = if root.is_empty() { "/" } else { root };
    format!("{}/.flumen-uploads/", root.trim_end_matches('/'))
}

/// Builds the OpenDAL operator of a remote store whose files go under `path`; a zero
/// `call_timeout` sets no timeout (Flume's `hdfs.callTimeout = 0`).
pub fn operator(
    store: &Store,
    path: &str,
    call_timeout: Duration,
) -> Result<Option<Operator>, String> {
    let op = match store {
        Store::Local => return Ok(None),
        Store::S3(s) => {
            let mut b = opendal::services::S3::default()
                .bucket(&s.bucket)
                .root("/")
                .region(s.region.as_deref().unwrap_or("us-east-1"));
            if let Some(e) = &s.endpoint {
                b = b.endpoint(e);
            }
            if let Some(k) = &s.access_key {
                b = b.access_key_id(k);
            }
            if let Some(k) = &s.secret_key {
                b = b.secret_access_key(k);
            }
            if !s.path_style {
                b = b.enable_virtual_host_style();
            }
            Operator::new(b).map_err(|e| e.to_string())?.finish()
        }
        Store::WebHdfs { endpoint } => {
            // Without an atomic-write directory OpenDAL's WebHDFS writer takes one write per
            // file (nothing over 8 MiB) and writes the final path in place; with it, a file is
            // written under `<root>/.flumen-uploads/` and renamed, so readers never see a
            // partial file (as Flume's in-use files; `.`-names are skipped by Hive and Spark).
            let b = opendal::services::Webhdfs::default()
                .endpoint(endpoint)
                .root("/")
                .atomic_write_dir(&upload_dir(path));
            Operator::new(b).map_err(|e| e.to_string())?.finish()
        }
    };
    if call_timeout.is_zero() {
        return Ok(Some(op));
    }
    let timeout = opendal::layers::TimeoutLayer::new()
        .with_timeout(call_timeout)
        .with_io_timeout(call_timeout);
    Ok(Some(op.layer(timeout)))
}

/// How closed files are finished.
#[derive(Clone)]
pub struct Finisher {
    op: Option<Operator>,
    tries: u32,
    retry_interval: Duration,
    /// Closed files handed over and not yet finished (or given up on).
    waiting: Arc<AtomicUsize>,
}

/// Why a file was not finished.
struct FinishError {
    message: String,
    /// Whether trying again may help (a store down); false leaves it for an operator.
    retry: bool,
}

impl FinishError {
    fn retry(message: String) -> Self {
        FinishError {
            message,
            retry: true,
        }
    }
}

/// The queue of closed files to finish; dropping it lets the task finish what it has.
pub struct Queue {
    tx: mpsc::UnboundedSender<Closed>,
    waiting: Arc<AtomicUsize>,
}

impl Queue {
    /// Hands a closed file over.
    pub fn send(&self, closed: Closed) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(closed).is_err() {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Closed files not yet finished.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

impl Finisher {
    /// A finisher for `op` (`None`: local files).
    pub fn new(op: Option<Operator>, tries: u32, retry_interval: Duration) -> Self {
        Finisher {
            op,
            tries,
            retry_interval,
            waiting: Arc::default(),
        }
    }

    /// Starts the task that finishes what is sent to the returned queue, `threads` at a time.
    /// Dropping the handle stops it; what it has not finished stays staged for the next start.
    pub fn spawn(self, threads: usize) -> (Queue, AbortOnDropHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Closed>();
        let queue = Queue {
            tx,
            waiting: self.waiting.clone(),
        };
        let me = Arc::new(self);
        let task = tokio::spawn(async move {
            let mut running = JoinSet::new();
            while let Some(closed) = rx.recv().await {
                while running.len() >= threads.max(1) {
                    joined(running.join_next().await);
                }
                let me = me.clone();
                running.spawn(async move {
                    me.finish_with_retries(closed).await;
                    me.waiting.fetch_sub(1, Ordering::AcqRel);
                });
            }
            while let Some(done) = running.join_next().await {
                joined(Some(done));
            }
        });
        (queue, AbortOnDropHandle::new(task))
    }

    async fn finish_with_retries(&self, closed: Closed) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.finish(&closed).await {
                Ok(target) => {
                    tracing::info!(path = %target, bytes = closed.length, "Closed file finished.");
                    return;
                }
                Err(e) if !e.retry => {
                    tracing::error!(path = %closed.dest.final_path, error = %e.message, "Cannot finish a closed file; it is left in staging for an operator.");
                    return;
                }
                Err(e) if self.tries > 0 && attempt >= self.tries => {
                    tracing::error!(path = %closed.dest.final_path, error = %e.message, attempts = attempt, "Giving up finishing a closed file (hdfs.closeTries); its bytes stay in staging and it is finished at the next start.");
                    return;
                }
                Err(e) => {
                    tracing::warn!(path = %closed.dest.final_path, error = %e.message, attempt, "Finishing a closed file failed; retrying after hdfs.retryInterval.");
                    tokio::time::sleep(self.retry_interval.max(Duration::from_millis(100))).await;
                }
            }
        }
    }

    /// Renames or uploads one closed file, then removes its staged bytes and record; returns
    /// where it went.
    async fn finish(&self, closed: &Closed) -> Result<String, FinishError> {
        if closed.length == 0 {
            // Nothing was committed to it (a crash before its first batch end).
            let c = closed.clone();
            blocking_io(move || {
                remove_if_exists(&c.dest.data)?;
                remove_if_exists(&c.meta)
            })
            .await?;
            return Ok(format!("{} (empty, deleted)", closed.dest.data.display()));
        }
        match (&self.op, closed.dest.remote) {
            (Some(op), true) => {
                let key = upload(op, closed).await?;
                let c = closed.clone();
                blocking_io(move || {
                    remove_if_exists(&c.dest.data)?;
                    remove_if_exists(&c.meta)
                })
                .await?;
                Ok(key)
            }
            (None, true) => Err(FinishError {
                message: "staged for a remote store, but the sink now writes to local files".into(),
                retry: false,
            }),
            (_, false) => {
                let c = closed.clone();
                let target = blocking_io(move || {
                    if !c.dest.data.exists() && Path::new(&c.dest.final_path).exists() {
                        // Finished before a crash kept its record.
                        remove_if_exists(&c.meta)?;
                        return Ok(PathBuf::from(&c.dest.final_path));
                    }
                    if let Some(dir) = Path::new(&c.dest.final_path).parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    finish_local(&c)
                })
                .await?;
                Ok(target.display().to_string())
            }
        }
    }
}

/// Logs a finishing task that panicked (its file stays staged for the next start).
fn joined(done: Option<Result<(), tokio::task::JoinError>>) {
    if let Some(Err(error)) = done {
        tracing::error!(%error, "A task finishing a closed file failed; the file is finished at the next start.");
    }
}

async fn blocking_io<R: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<R> + Send + 'static,
) -> Result<R, FinishError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FinishError::retry(e.to_string()))?
        .map_err(|e| FinishError::retry(e.to_string()))
}

/// Bytes read from a staged file per write to the uploader.
const READ_CHUNK: usize = 1 << 20;

/// Uploads a staged file's committed bytes under its final key, or under the next free
/// counter when another object has that key; returns the key. An object of the same length
/// there already is this file, uploaded before a crash kept its record.
async fn upload(op: &Operator, closed: &Closed) -> Result<String, FinishError> {
    let mut key = closed.dest.final_path.trim_start_matches('/').to_string();
    let mut step = 0;
    loop {
        match op.stat(&key).await {
            Ok(meta) if meta.content_length() == closed.length => return Ok(key),
            Ok(_) => {
                step += 1;
                tracing::warn!(taken = %key, "A final name is taken by another object; moving the counter on.");
                key = closed.dest.bumped(step).trim_start_matches('/').to_string();
            }
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => break,
            Err(e) => return Err(FinishError::retry(format!("checking {key}: {e}"))),
        }
    }
    let data = &closed.dest.data;
    let mut file = match tokio::fs::File::open(data).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FinishError {
                message: format!("the staged file {} is gone", data.display()),
                retry: false,
            })
        }
        Err(e) => {
            return Err(FinishError::retry(format!(
                "opening {}: {e}",
                data.display()
            )))
        }
    };
    let mut writer = op
        .writer_with(&key)
        .chunk(UPLOAD_CHUNK)
        .await
        .map_err(|e| FinishError::retry(format!("starting the upload of {key}: {e}")))?;
    let mut left = closed.length;
    while left > 0 {
        let want = left.min(READ_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        let read = file.read_exact(&mut buf).await;
        let written = match read {
            Ok(_) => writer.write(buf).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("reading {}: {e}", data.display())),
        };
        if let Err(e) = written {
            let _ = writer.abort().await;
            return Err(FinishError::retry(format!("uploading {key}: {e}")));
        }
        left -= want as u64;
    }
    if let Err(e) = writer.close().await {
        let _ = writer.abort().await;
        return Err(FinishError::retry(format!(
            "completing the upload of {key}: {e}"
        )));
    }
    Ok(key)
}

/// Files a crash left open or unfinished, from the meta records in `staging`: each data file
/// is cut back to its committed length and returned to be finished. Unreadable records are
/// logged and left in place for an operator.
pub fn recover(staging: &Path) -> Vec<Closed> {
    let Ok(entries) = std::fs::read_dir(staging) else {
        return Vec::new();
    };
    let mut metas: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "meta"))
        .collect();
    metas.sort();
    let mut found = Vec::new();
    for meta in metas {
        match recover_one(&meta) {
            Ok(Some(closed)) => found.push(closed),
            Ok(None) => {}
            Err(error) => {
                tracing::error!(meta = %meta.display(), %error, "Cannot recover a file left open by an earlier run; leaving it for an operator.");
            }
        }
    }
    found
}

fn recover_one(meta: &Path) -> std::io::Result<Option<Closed>> {
    let (length, dest) = read_meta(meta)?;
    let Some(length) = length else {
        return Err(std::io::Error::other(
            "its committed length fails its checksum",
        ));
    };
    let actual = match std::fs::metadata(&dest.data) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Finished before the crash removed the record (renamed or uploaded).
            remove_if_exists(meta)?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    if actual > length {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&dest.data)?
            .set_len(length)?;
        tracing::warn!(path = %dest.data.display(), cut = actual - length, "Cut an uncommitted tail left by a crash; those events are delivered again.");
    }
    tracing::info!(path = %dest.final_path, bytes = length.min(actual), "Finishing a file left open by an earlier run.");
    Ok(Some(Closed {
        dest,
        meta: meta.to_path_buf(),
        length: length.min(actual),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhdfs_uploads_go_under_the_literal_root_of_the_path() {
        assert_eq!(
            upload_dir("/flume/events/%Y/%m"),
            "/flume/events/.flumen-uploads/"
        );
        assert_eq!(upload_dir("/flume/events"), "/flume/.flumen-uploads/");
        assert_eq!(upload_dir("/%{dir}"), "/.flumen-uploads/");
    }
}
