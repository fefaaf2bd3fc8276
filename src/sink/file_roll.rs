//! `file_roll` sink (`org.apache.flume.sink.RollingFileSink`): writes events to files in a
//! directory, starting a new file every `sink.rollInterval` seconds.
//!
//! Files are named as Flume's default path manager names them:
//! `<prefix><start-millis>-<index>[.<extension>]`. Each batch is serialized into one buffer
//! (4 MiB at most: a batch of large events is cut) and written with one `write_all` on a
//! blocking thread before the take commits, so a
//! committed event is in the file (in the page cache; the sink does not fsync, like Flume).
//!
//! Divergences from Flume, on purpose: the directory is created when missing, and a new
//! file is opened when the first event after a roll arrives, so idle periods leave no empty
//! files. A kill -9 can cut the last write short (Linux stops a write at a page boundary on a
//! fatal signal); that batch was not committed and is delivered again, so on its first open
//! the sink cuts the newest earlier file of its own naming back to its last complete line
//! (when the serializer ends events with a newline), instead of leaving a damaged line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::util::batch::BatchLimits;
use super::{Sink, SinkError};
use crate::config::PropReader;
use crate::event::Event;
use crate::serializer::Serializer;

/// Flume's default `sink.rollInterval`, in seconds.
pub const DEFAULT_ROLL_INTERVAL_SECS: u64 = 30;
/// Flume's default `sink.batchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 100;
/// Most bytes serialized before they are written (a take of large events is cut).
const WRITE_CHUNK_BYTES: usize = 4 << 20;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct FileRollConfig {
    /// `sink.directory` (required).
    pub directory: PathBuf,
    /// `sink.rollInterval` in seconds; 0 never rolls.
    pub roll_interval: Duration,
    /// `sink.pathManager.prefix`.
    pub prefix: String,
    /// `sink.pathManager.extension`.
    pub extension: String,
    /// `sink.serializer` and `sink.serializer.*`.
    pub serializer: Serializer,
    /// `sink.batchSize`.
    pub batch_size: usize,
}

impl FileRollConfig {
    /// Reads Flume's file_roll keys.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let directory = r.required_string("sink.directory");
        let roll = r.number(
            "sink.rollInterval",
            DEFAULT_ROLL_INTERVAL_SECS,
            0,
            86_400 * 365,
        );
        r.choice("sink.pathManager", "DEFAULT", &["DEFAULT"]);
        let prefix = r.string("sink.pathManager.prefix", "");
        let extension = r.string("sink.pathManager.extension", "");
        let serializer = Serializer::from_props(r, "sink.serializer");
        let batch_size = r.number("sink.batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24);
        Some(FileRollConfig {
            directory: PathBuf::from(directory?),
            roll_interval: Duration::from_secs(roll?),
            prefix,
            extension,
            serializer: serializer?,
            batch_size: batch_size?,
        })
    }
}

/// The rolling file sink.
pub struct FileRollSink {
    config: FileRollConfig,
    series: u128,
    index: u64,
    file: Option<File>,
    opened_at: Instant,
    buffer: Vec<u8>,
}

impl FileRollSink {
    /// A sink with `config`.
    pub fn new(config: FileRollConfig) -> Self {
        let series = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        FileRollSink {
            config,
            series,
            index: 0,
            file: None,
            opened_at: Instant::now(),
            buffer: Vec::new(),
        }
    }

    fn roll_due(&self) -> bool {
        let interval = self.config.roll_interval;
        self.file.is_some() && !interval.is_zero() && self.opened_at.elapsed() >= interval
    }

    fn next_path(&mut self) -> PathBuf {
        self.index += 1;
        let mut name = format!("{}{}-{}", self.config.prefix, self.series, self.index);
        if !self.config.extension.is_empty() {
            name.push('.');
            name.push_str(&self.config.extension);
        }
        self.config.directory.join(name)
    }

    fn open(&mut self) -> Result<File, SinkError> {
        let dir = &self.config.directory;
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            context: format!("creating directory {}", dir.display()),
            source,
        })?;
        if self.index == 0 && self.config.serializer.ends_with_newline() {
            self.cut_torn_tail();
        }
        let path = self.next_path();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| SinkError::Io {
                context: format!("opening {}", path.display()),
                source,
            })?;
        tracing::debug!(path = %path.display(), "Opened output file.");
        self.opened_at = Instant::now();
        Ok(file)
    }
}

impl FileRollSink {
    /// Appends `buffer` to `file` on a blocking thread; gives both back when it is written.
    async fn write(&self, file: File, buffer: Vec<u8>) -> Result<(File, Vec<u8>), SinkError> {
        let dir = &self.config.directory;
        let written = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let result = file.write_all(&buffer);
            result.map(|()| (file, buffer))
        })
        .await;
        let context = || format!("writing to {}", dir.display());
        match written {
            Ok(Ok(back)) => Ok(back),
            Ok(Err(source)) => Err(SinkError::Io {
                context: context(),
                source,
            }),
            Err(join) => Err(SinkError::Io {
                context: context(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    /// Whether `name` is one of this sink's file names (`<prefix><millis>-<index>[.<ext>]`);
    /// returns its `(series, index)`.
    fn parse_name(&self, name: &str) -> Option<(u128, u64)> {
        let rest = name.strip_prefix(self.config.prefix.as_str())?;
        let rest = if self.config.extension.is_empty() {
            rest
        } else {
            rest.strip_suffix(self.config.extension.as_str())?
                .strip_suffix('.')?
        };
        let (series, index) = rest.split_once('-')?;
        Some((series.parse().ok()?, index.parse().ok()?))
    }

    /// Cuts an incomplete last line left in the newest earlier output file by a crash.
    fn cut_torn_tail(&self) {
        let Ok(entries) = std::fs::read_dir(&self.config.directory) else {
            return;
        };
        let newest = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                self.parse_name(&name).map(|key| (key, e.path()))
            })
            .filter(|(key, _)| key.0 < self.series)
            .max_by_key(|(key, _)| *key);
        let Some((_, path)) = newest else {
            return;
        };
        let (len, keep) = match complete_length(&path) {
            Ok(Some(found)) => found,
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Cannot read the end of the newest earlier output file.");
                return;
            }
        };
        let cut = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(keep));
        match cut {
            Ok(()) => {
                tracing::warn!(path = %path.display(), bytes = len - keep, "Cut an incomplete last line left by a crash; its events are delivered again.")
            }
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Cannot cut an incomplete last line left by a crash.")
            }
        }
    }
}

/// Tail step when looking for a file's last newline.
const TAIL_STEP: usize = 64 << 10;

/// `(length, length up to its last newline)` of a file whose last byte is not a newline, or
/// `None` when it ends with one (or is empty). Reads backwards from the end in 64 KiB steps:
/// a large file costs its tail, not its size.
fn complete_length(path: &std::path::Path) -> std::io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::FileExt;
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut last = [0u8; 1];
    if len == 0 || (file.read_exact_at(&mut last, len - 1).is_ok() && last[0] == b'\n') {
        return Ok(None);
    }
    let mut buf = vec![0u8; TAIL_STEP];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(TAIL_STEP as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(Some((len, start + i as u64 + 1)));
        }
        end = start;
    }
    Ok(Some((len, 0)))
}

#[async_trait]
impl Sink for FileRollSink {
    fn type_name(&self) -> &'static str {
        "file_roll"
    }

    fn batch_size(&self) -> usize {
        self.config.batch_size
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "sink.directory={} sink.rollInterval={} sink.serializer={} sink.batchSize={}",
            c.directory.display(),
            c.roll_interval.as_secs(),
            c.serializer.name(),
            c.batch_size
        )
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        if self.roll_due() {
            self.file = None;
        }
        let mut file = match self.file.take() {
            Some(f) => f,
            None => self.open()?,
        };
        // A take of large events is written a few MiB at a time, so the buffer stays bounded.
        let limits = BatchLimits::new(events.len(), WRITE_CHUNK_BYTES);
        for chunk in limits.split(events, |e| e.body_len() + 64) {
            let mut buffer = std::mem::take(&mut self.buffer);
            buffer.clear();
            self.config.serializer.write_batch(chunk, &mut buffer);
            // The file is dropped on failure: the next attempt starts a new one, so a partly
            // written batch is never followed by its own retry in the same file.
            let (back, buffer) = self.write(file, buffer).await?;
            file = back;
            if buffer.capacity() <= WRITE_CHUNK_BYTES * 2 {
                self.buffer = buffer;
            }
        }
        self.file = Some(file);
        Ok(())
    }

    async fn maintain(&mut self) -> Result<(), SinkError> {
        if self.roll_due() {
            self.file = None;
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<(), SinkError> {
        self.file = None;
        Ok(())
    }
}

#[cfg(test)]
mod torn_tail_tests {
    use super::*;
    use crate::config::Props;

    fn sink(dir: &std::path::Path) -> FileRollSink {
        let props = Props::from_pairs(
            "a.conf",
            "a1.sinks.k1",
            &[("sink.directory", dir.to_str().unwrap())],
        );
        let mut r = PropReader::new(&props, "k1");
        FileRollSink::new(FileRollConfig::from_props(&mut r).unwrap())
    }

    #[tokio::test]
    async fn a_torn_last_line_of_the_previous_run_is_cut_and_others_are_left() {
        let dir = tempfile::tempdir().unwrap();
        let older = dir.path().join("1000-1");
        let newest = dir.path().join("2000-1");
        let foreign = dir.path().join("notes.txt");
        std::fs::write(&older, "a\nb").unwrap();
        std::fs::write(&newest, "c\nd\npart").unwrap();
        std::fs::write(&foreign, "x\ny").unwrap();
        let mut s = sink(dir.path());
        s.deliver(&[Event::new("e")]).await.unwrap();
        assert_eq!(std::fs::read_to_string(&newest).unwrap(), "c\nd\n");
        assert_eq!(
            std::fs::read_to_string(&older).unwrap(),
            "a\nb",
            "only the newest file"
        );
        assert_eq!(
            std::fs::read_to_string(&foreign).unwrap(),
            "x\ny",
            "not ours"
        );
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;
    use crate::config::Props;

    #[tokio::test]
    async fn a_take_larger_than_a_write_chunk_is_written_whole_and_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let props = Props::from_pairs(
            "a.conf",
            "a1.sinks.k1",
            &[("sink.directory", dir.path().to_str().expect("utf-8 path"))],
        );
        let mut r = PropReader::new(&props, "k1");
        let mut sink = FileRollSink::new(FileRollConfig::from_props(&mut r).expect("config"));
        // Three events of 3 MiB: three chunks of 4 MiB at most.
        let bodies: Vec<String> = (b'a'..=b'c')
            .map(|c| String::from(c as char).repeat(3 << 20))
            .collect();
        let events: Vec<Event> = bodies.iter().map(|b| Event::new(b.clone())).collect();
        sink.deliver(&events).await.expect("written");
        sink.stop().await.expect("closed");
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("listing")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(files.len(), 1, "one file: {files:?}");
        let text = std::fs::read_to_string(&files[0]).expect("reading");
        assert_eq!(text, format!("{}\n", bodies.join("\n")));
        assert!(
            sink.buffer.capacity() <= WRITE_CHUNK_BYTES * 2,
            "the buffer stays bounded"
        );
    }
}

#[cfg(test)]
mod tail_tests {
    use super::*;

    #[test]
    fn the_last_newline_is_found_from_the_tail_across_steps() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("1000-1");
        // 200 KiB of complete lines, then a 100 KiB line with no end: two steps back.
        let mut body = b"0123456789abcde\n".repeat(200 * 64);
        let complete = body.len() as u64;
        body.extend(std::iter::repeat_n(b'x', 100 << 10));
        std::fs::write(&path, &body).expect("writing");
        assert_eq!(
            complete_length(&path).expect("reading"),
            Some((body.len() as u64, complete))
        );
        std::fs::write(&path, b"a\nb\n").expect("writing");
        assert_eq!(complete_length(&path).expect("reading"), None);
        std::fs::write(&path, b"no newline at all").expect("writing");
        assert_eq!(complete_length(&path).expect("reading"), Some((17, 0)));
    }
}
