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
use std::sync::Arc;
use std::time::Duration;

use opendal::Operator;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::open_file::{finish_local, read_meta, remove_meta, Closed};
use super::target::Store;

/// Part size of multipart uploads.
const UPLOAD_CHUNK: usize = 8 << 20;

/// Builds the OpenDAL operator of a remote store.
pub fn operator(store: &Store, call_timeout: Duration) -> Result<Option<Operator>, String> {
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
            let b = opendal::services::Webhdfs::default()
                .endpoint(endpoint)
                .root("/");
            Operator::new(b).map_err(|e| e.to_string())?.finish()
        }
    };
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
}

impl Finisher {
    /// A finisher for `op` (`None`: local files).
    pub fn new(op: Option<Operator>, tries: u32, retry_interval: Duration) -> Self {
        Finisher {
            op,
            tries,
            retry_interval,
        }
    }

    /// Starts the task that finishes what is sent to the returned queue, `threads` at a time.
    pub fn spawn(
        self,
        threads: usize,
    ) -> (mpsc::UnboundedSender<Closed>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<Closed>();
        let me = Arc::new(self);
        let task = tokio::spawn(async move {
            let mut running = JoinSet::new();
            while let Some(closed) = rx.recv().await {
                while running.len() >= threads.max(1) {
                    running.join_next().await;
                }
                let me = me.clone();
                running.spawn(async move { me.finish_with_retries(closed).await });
            }
            while running.join_next().await.is_some() {}
        });
        (tx, task)
    }

    async fn finish_with_retries(&self, closed: Closed) {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.finish(&closed).await {
                Ok(()) => {
                    tracing::info!(path = %closed.dest.final_path, bytes = closed.length, "Closed file finished.");
                    return;
                }
                Err(error) if self.tries > 0 && attempt >= self.tries => {
                    tracing::error!(path = %closed.dest.final_path, %error, attempts = attempt, "Giving up finishing a closed file (hdfs.closeTries); its bytes stay in staging and it is finished at the next start.");
                    return;
                }
                Err(error) => {
                    tracing::warn!(path = %closed.dest.final_path, %error, attempt, "Finishing a closed file failed; retrying after hdfs.retryInterval.");
                    tokio::time::sleep(self.retry_interval.max(Duration::from_millis(10))).await;
                }
            }
        }
    }

    /// Renames or uploads one closed file, then removes its staged bytes and record.
    pub async fn finish(&self, closed: &Closed) -> Result<(), String> {
        match (&self.op, closed.dest.remote) {
            (Some(op), true) => {
                upload(op, closed).await?;
                remove_meta(&closed.dest.data).map_err(|e| e.to_string())?;
                remove_meta(&closed.meta).map_err(|e| e.to_string())
            }
            _ => {
                let c = closed.clone();
                tokio::task::spawn_blocking(move || {
                    if let Some(dir) = Path::new(&c.dest.final_path).parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    finish_local(&c)
                })
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// Streams a staged file's committed bytes to its final key.
async fn upload(op: &Operator, closed: &Closed) -> Result<(), String> {
    let key = closed.dest.final_path.trim_start_matches('/');
    let mut file = tokio::fs::File::open(&closed.dest.data)
        .await
        .map_err(|e| format!("opening {}: {e}", closed.dest.data.display()))?;
    let mut writer = op
        .writer_with(key)
        .chunk(UPLOAD_CHUNK)
        .await
        .map_err(|e| format!("starting the upload of {key}: {e}"))?;
    let mut left = closed.length;
    while left > 0 {
        let want = left.min(UPLOAD_CHUNK as u64) as usize;
        let mut buf = vec![0u8; want];
        file.read_exact(&mut buf)
            .await
            .map_err(|e| format!("reading {}: {e}", closed.dest.data.display()))?;
        left -= want as u64;
        if let Err(e) = writer.write(buf).await {
            let _ = writer.abort().await;
            return Err(format!("uploading {key}: {e}"));
        }
    }
    writer
        .close()
        .await
        .map_err(|e| format!("completing the upload of {key}: {e}"))?;
    Ok(())
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
            remove_meta(meta)?;
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
