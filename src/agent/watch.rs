//! Watching the config for changes: file events, polling, `SIGHUP`, and config URLs.
//!
//! Flume polls config files every 30 s and config URLs every 300 s (`-i/--poll-interval`
//! changes both). Flumen polls the same way, and also reacts within a second to file events
//! in the directory of each config file: an in-place write, an editor's atomic rename, and a
//! symlink swap such as a Kubernetes ConfigMap's `..data` (the directory of a symlink's target
//! is watched too, and re-resolved after every check). Each trigger re-reads every source and
//! compares the bytes with the last ones read: a reload happens only when they differ, or on
//! `SIGHUP`, which always re-applies the config. A config that cannot be read is reported once
//! per distinct error; the agent keeps running what it runs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::reload::Candidate;
use crate::config::{self, ConfigSource, LoadRequest};

/// Flume's poll interval for config files.
pub const FILE_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// Flume's poll interval for config URLs.
pub const URL_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// Quiet time after a file event before reading (editors write in several steps).
const SETTLE: Duration = Duration::from_millis(200);
/// How long a config URL may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one part of the config comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file (`-f`, or a `file:` URI).
    File(PathBuf),
    /// An `http(s)://` URL (`--conf-uri`).
    Url(String),
}

impl Origin {
    /// `--conf-uri` value: `file:` URIs are files, anything else is fetched over HTTP.
    pub fn from_uri(uri: &str) -> Origin {
        match uri
            .strip_prefix("file://")
            .or_else(|| uri.strip_prefix("file:"))
        {
            Some(path) => Origin::File(PathBuf::from(path)),
            None => Origin::Url(uri.to_string()),
        }
    }
}

/// Reads every part of the config.
#[derive(Clone, Debug)]
pub struct Feed {
    /// The parts, merged in order.
    pub origins: Vec<Origin>,
    /// `--conf-user` / `--conf-password`: HTTP basic authentication for URLs.
    pub credentials: Option<(String, String)>,
}

impl Feed {
    /// Whether any part is fetched over HTTP.
    pub fn has_urls(&self) -> bool {
        self.origins.iter().any(|o| matches!(o, Origin::Url(_)))
    }

    /// Flume's default poll interval for these origins.
    pub fn default_poll_interval(&self) -> Duration {
        if self.has_urls() {
            URL_POLL_INTERVAL
        } else {
            FILE_POLL_INTERVAL
        }
    }

    /// Reads every part, as bytes named by their file or URL.
    pub async fn read(&self) -> Result<Vec<ConfigSource>, String> {
        let mut out = Vec::with_capacity(self.origins.len());
        for origin in &self.origins {
            let (name, bytes) = match origin {
                Origin::File(path) => {
                    let bytes = tokio::fs::read(path)
                        .await
                        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
                    (path.clone(), bytes)
                }
                Origin::Url(url) => (PathBuf::from(url), self.fetch(url).await?),
            };
            out.push(ConfigSource::Read { name, bytes });
        }
        Ok(out)
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        let mut request = client.get(url);
        if let Some((user, password)) = &self.credentials {
            request = request.basic_auth(user, Some(password));
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("cannot fetch {url}: HTTP {status}"));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("cannot fetch {url}: {e}"))?;
        Ok(body.to_vec())
    }

    /// The directories whose events may mean a config file changed: each file's own directory
    /// and, for a symlink, its target's.
    fn watched_dirs(&self) -> BTreeSet<PathBuf> {
        let mut dirs = BTreeSet::new();
        for origin in &self.origins {
            let Origin::File(path) = origin else { continue };
            dirs.insert(parent(path));
            if let Ok(target) = std::fs::canonicalize(path) {
                dirs.insert(parent(&target));
            }
        }
        dirs
    }

    /// Whether an event on `path` may concern a config file.
    fn concerns(&self, path: &Path) -> bool {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        // A Kubernetes ConfigMap swaps its `..data` symlink.
        if name.starts_with("..") {
            return true;
        }
        self.origins.iter().any(|o| match o {
            Origin::File(file) => {
                file.file_name().is_some_and(|n| n == name)
                    || std::fs::canonicalize(file)
                        .ok()
                        .is_some_and(|t| t.file_name().is_some_and(|n| n == name))
            }
            Origin::Url(_) => false,
        })
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// How a read config is turned into a candidate (the `-n` agent, `-D` properties).
#[derive(Clone, Debug)]
pub struct LoadTemplate {
    /// The agent name.
    pub agent: String,
    /// `-D` pairs.
    pub system_properties: std::collections::BTreeMap<String, String>,
    /// Flume's `EnvVarResolverProperties` switch.
    pub env_var_resolver: bool,
}

impl LoadTemplate {
    /// Loads `sources` for the agent.
    pub fn load(&self, sources: Vec<ConfigSource>) -> Result<config::Loaded, String> {
        config::load(&LoadRequest {
            sources,
            agent: self.agent.clone(),
            system_properties: self.system_properties.clone(),
            env_var_resolver: self.env_var_resolver,
        })
        .map_err(|e| e.to_string())
    }
}

/// The watcher: what to read, how often, and the bytes it last read.
pub struct Watcher {
    /// What to read.
    pub feed: Feed,
    /// How to load it.
    pub template: LoadTemplate,
    /// How often to poll.
    pub poll_interval: Duration,
    /// What the agent runs now (the bytes read at start).
    pub baseline: Vec<ConfigSource>,
    /// `SIGHUP`s, forwarded by the binary.
    pub hangups: mpsc::Receiver<()>,
}

impl Watcher {
    /// Runs until `stop`, sending a candidate for each change (and each `SIGHUP`).
    pub async fn run(mut self, candidates: mpsc::Sender<Candidate>, stop: CancellationToken) {
        let (events_tx, mut events) = mpsc::channel::<()>(1);
        let feed = self.feed.clone();
        let mut fs = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event {
                if event.paths.iter().any(|p| feed.concerns(p)) {
                    let _ = events_tx.try_send(());
                }
            }
        })
        .map_err(|error| tracing::warn!(%error, "Config file events unavailable; polling only."))
        .ok();
        let mut watched = BTreeSet::new();
        self.watch_dirs(fs.as_mut(), &mut watched);
        tracing::info!(dirs = ?watched, poll_secs = self.poll_interval.as_secs_f64(), "Watching the config for changes (file events, polling, SIGHUP).");

        let mut tick = tokio::time::interval(self.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last_error: Option<String> = None;
        loop {
            let (reason, forced) = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => ("poll", false),
                Some(()) = events.recv() => {
                    tokio::time::sleep(SETTLE).await;
                    while events.try_recv().is_ok() {}
                    ("file changed", false)
                }
                Some(()) = self.hangups.recv() => ("SIGHUP", true),
            };
            let read = match self.feed.read().await {
                Ok(read) => read,
                Err(error) => {
                    if forced || last_error.as_ref() != Some(&error) {
                        last_error = Some(error.clone());
                        let _ = candidates
                            .send(Candidate {
                                loaded: Err(error),
                                reason: reason.into(),
                            })
                            .await;
                    }
                    continue;
                }
            };
            last_error = None;
            self.watch_dirs(fs.as_mut(), &mut watched);
            if !forced && read == self.baseline {
                continue;
            }
            self.baseline = read.clone();
            tracing::info!(%reason, "Config changed; validating it.");
            let loaded = self.template.load(read);
            if candidates
                .send(Candidate {
                    loaded,
                    reason: reason.into(),
                })
                .await
                .is_err()
            {
                return;
            }
        }
    }

    fn watch_dirs(
        &self,
        fs: Option<&mut notify::RecommendedWatcher>,
        watched: &mut BTreeSet<PathBuf>,
    ) {
        use notify::Watcher as _;
        let Some(fs) = fs else { return };
        for dir in self.feed.watched_dirs() {
            if watched.contains(&dir) {
                continue;
            }
            match fs.watch(&dir, notify::RecursiveMode::NonRecursive) {
                Ok(()) => {
                    tracing::debug!(dir = %dir.display(), "Watching for config changes.");
                    watched.insert(dir);
                }
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "Cannot watch the config directory; polling it.")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_are_files_and_the_rest_are_fetched() {
        assert_eq!(
            Origin::from_uri("file:///etc/flume/a.properties"),
            Origin::File("/etc/flume/a.properties".into())
        );
        assert_eq!(
            Origin::from_uri("http://cfg:8080/a"),
            Origin::Url("http://cfg:8080/a".into())
        );
    }

    #[test]
    fn events_on_the_file_its_target_or_a_configmap_swap_concern_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.properties");
        std::fs::write(&target, "a=1\n").unwrap();
        let link = dir.path().join("agent.properties");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let feed = Feed {
            origins: vec![Origin::File(link.clone())],
            credentials: None,
        };
        assert!(feed.concerns(&link));
        assert!(feed.concerns(&target));
        assert!(feed.concerns(&dir.path().join("..data")));
        assert!(!feed.concerns(&dir.path().join("other.log")));
        assert_eq!(feed.default_poll_interval(), FILE_POLL_INTERVAL);
    }
}
