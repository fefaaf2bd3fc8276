//! `exec` source (`org.apache.flume.source.ExecSource`): the lines a command writes to stdout.
//!
//! The command runs with stdin closed. Without `shell` it is split on whitespace into a
//! program and its arguments (no quoting, as in Flume); with `shell` (e.g. `/bin/sh -c`) the
//! shell is split on whitespace and the whole command is passed to it as one last argument.
//! Each stdout line becomes one event: a line ends at `\n`, `\r\n` or a lone `\r` (Java's
//! `readLine`), the terminator is not kept, and a last line without terminator still counts.
//! Lines are batched up to `batchSize` events and put with backpressure when the batch is full
//! or `batchTimeout` ms have passed since the last put. stderr is read line by line so the
//! command never blocks on it, and logged at INFO when `logStdErr` is true.
//!
//! When stdout ends, the pending batch is put, the process is killed if still running (as
//! Flume destroys it) and reaped; with `restart` the command runs again after
//! `restartThrottle` ms (also when it could not be started), otherwise the source ends. On
//! shutdown the child is killed, what it wrote before dying is still read (for up to a second)
//! and put, then the source ends.
//!
//! Divergences from Flume: a full channel holds reading back (the command then blocks on a
//! full pipe) instead of failing the batch, killing the command and losing the batch; line
//! bytes are kept as written (Flume decodes with `charset` and re-encodes, replacing bad
//! bytes), so splitting assumes an ASCII-compatible charset (UTF-16/32 get a finding); a line
//! longer than [`MAX_LINE_BYTES`] is cut into events of that size (with a warning) rather than
//! held without bound; the kill is SIGKILL (Flume's `Process.destroy` sends SIGTERM).

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::{Source, SourceContext, SourceError};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;

/// Flume's default `restartThrottle` (ms).
pub const DEFAULT_RESTART_THROTTLE_MS: u64 = 10_000;
/// Flume's default `batchSize`.
pub const DEFAULT_BATCH_SIZE: usize = 20;
/// Flume's default `batchTimeout` (ms).
pub const DEFAULT_BATCH_TIMEOUT_MS: u64 = 3_000;
/// Flume's default `charset`.
pub const DEFAULT_CHARSET: &str = "UTF-8";
/// Longest line kept as one event; longer lines are cut.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Bytes asked of stdout per read.
const READ_SIZE: usize = 256 << 10;
/// How long stdout is still read after the child was killed at shutdown.
const STOP_READ_GRACE: Duration = Duration::from_secs(1);
/// Longest stderr line logged (the rest is cut off in the log).
const MAX_STDERR_LINE: usize = 8 << 10;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct ExecConfig {
    /// `command` (required).
    pub command: String,
    /// `shell`, e.g. `/bin/sh -c` (none by default).
    pub shell: Option<String>,
    /// `restart`: run the command again when it ends.
    pub restart: bool,
    /// `restartThrottle` (ms): pause before a restart.
    pub restart_throttle: Duration,
    /// `logStdErr`: log stderr lines at INFO.
    pub log_stderr: bool,
    /// `batchSize`: most events per put.
    pub batch_size: usize,
    /// `batchTimeout` (ms): longest wait for a batch to fill since the last put.
    pub batch_timeout: Duration,
    /// `charset` (bytes are kept; only recorded).
    pub charset: String,
}

impl ExecConfig {
    /// Reads Flume's exec keys; `None` when Flume would drop the source.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let command = r.required_string("command");
        let shell = r.opt_string("shell").filter(|s| !s.is_empty());
        let restart = r.bool("restart", false);
        let ms = Duration::from_millis(1);
        let restart_throttle = r.duration(
            "restartThrottle",
            Duration::from_millis(DEFAULT_RESTART_THROTTLE_MS),
            ms,
        );
        let log_stderr = r.bool("logStdErr", false);
        let batch_size = r.number("batchSize", DEFAULT_BATCH_SIZE, 1, 1 << 24);
        let batch_timeout = r.duration(
            "batchTimeout",
            Duration::from_millis(DEFAULT_BATCH_TIMEOUT_MS),
            ms,
        );
        let charset = r.string("charset", DEFAULT_CHARSET);
        let upper = charset.to_ascii_uppercase();
        if upper.contains("16") || upper.contains("32") {
            let finding = Finding::new(
                FindingKind::BadValue,
                r.raw("charset").map(|p| p.origin.clone()),
                r.full_key("charset"),
                format!("Charset `{charset}` is not ASCII-compatible; Flumen splits lines on bytes and keeps them as written, so lines will be split wrongly."),
            )
            .expected("an ASCII-compatible charset such as UTF-8");
            r.push(finding);
        }
        Some(ExecConfig {
            command: command?,
            shell,
            restart,
            restart_throttle: restart_throttle?,
            log_stderr,
            batch_size: batch_size?,
            batch_timeout: batch_timeout?,
            charset,
        })
    }

    /// The program and its arguments.
    fn argv(&self) -> Vec<String> {
        match &self.shell {
            Some(shell) => shell
                .split_whitespace()
                .map(String::from)
                .chain(std::iter::once(self.command.clone()))
                .collect(),
            None => self.command.split_whitespace().map(String::from).collect(),
        }
    }
}

/// The exec source.
pub struct ExecSource {
    config: ExecConfig,
}

impl ExecSource {
    /// A source with `config`.
    pub fn new(config: ExecConfig) -> Self {
        ExecSource { config }
    }
}

/// How one run of the command ended.
enum RunEnd {
    /// stdout ended (or the command could not start); restart applies.
    Exited,
    /// The source is stopping.
    Stopped,
}

#[async_trait]
impl Source for ExecSource {
    fn type_name(&self) -> &'static str {
        "exec"
    }

    fn describe(&self) -> String {
        let c = &self.config;
        format!(
            "command={:?} shell={:?} restart={} restartThrottle={} logStdErr={} batchSize={} batchTimeout={} charset={}",
            c.command,
            c.shell.as_deref().unwrap_or(""),
            c.restart,
            c.restart_throttle.as_millis(),
            c.log_stderr,
            c.batch_size,
            c.batch_timeout.as_millis(),
            c.charset
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let c = &self.config;
        loop {
            if let RunEnd::Stopped = run_once(c, &ctx).await {
                break;
            }
            if !c.restart || ctx.shutdown.is_cancelled() {
                break;
            }
            tracing::info!(source = %ctx.name, command = %c.command, restart_throttle_ms = c.restart_throttle.as_millis() as u64, "Restarting the command after the throttle.");
            tokio::select! {
                _ = tokio::time::sleep(c.restart_throttle) => {}
                _ = ctx.shutdown.cancelled() => break,
            }
        }
        Ok(())
    }
}

/// Runs the command once, putting its lines, until stdout ends or the source stops.
async fn run_once(c: &ExecConfig, ctx: &SourceContext) -> RunEnd {
    let argv = c.argv();
    let Some((program, args)) = argv.split_first() else {
        tracing::error!(source = %ctx.name, command = %c.command, "The command is empty.");
        return RunEnd::Exited;
    };
    let spawned = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            tracing::error!(source = %ctx.name, command = %c.command, %error, "Failed to run the command.");
            return RunEnd::Exited;
        }
    };
    tracing::info!(source = %ctx.name, command = %c.command, pid = child.id().unwrap_or(0), "Exec source started the command.");
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(drain_stderr(err, c.log_stderr, ctx.name.clone())));
    let end = match child.stdout.take() {
        Some(stdout) => read_stdout(stdout, &mut child, c, ctx).await,
        None => RunEnd::Exited,
    };
    let status = reap(&mut child).await;
    if let Some(task) = stderr {
        // Grandchildren may keep stderr open; do not wait for them for long.
        if tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .is_err()
        {
            tracing::debug!(source = %ctx.name, "stderr still open after the command ended; no longer reading it.");
        }
    }
    match (&end, status) {
        (RunEnd::Stopped, _) => {}
        (RunEnd::Exited, Some(status)) => {
            tracing::info!(source = %ctx.name, command = %c.command, %status, "Command exited.")
        }
        (RunEnd::Exited, None) => {
            tracing::warn!(source = %ctx.name, command = %c.command, "Command ended; its exit status is unknown.")
        }
    }
    end
}

/// Kills the child if it still runs, then reaps it.
async fn reap(child: &mut Child) -> Option<std::process::ExitStatus> {
    // Already exited (but not reaped): the kill is a no-op and its real status is kept.
    let _ = child.start_kill();
    child.wait().await.ok()
}

/// Reads stdout into batches until it ends or the source stops. On shutdown the child is
/// killed and what it wrote before dying is still read (for up to [`STOP_READ_GRACE`]).
async fn read_stdout(
    mut stdout: impl AsyncRead + Unpin,
    child: &mut Child,
    c: &ExecConfig,
    ctx: &SourceContext,
) -> RunEnd {
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut splitter = LineSplitter::default();
    let mut pending: Vec<Event> = Vec::with_capacity(c.batch_size);
    let mut last_put = Instant::now();
    let mut stop_by: Option<Instant> = None;
    loop {
        if buf.capacity() - buf.len() < READ_SIZE / 4 {
            buf.reserve(READ_SIZE);
        }
        let deadline = last_put + c.batch_timeout;
        let read = tokio::select! {
            _ = ctx.shutdown.cancelled(), if stop_by.is_none() => {
                let _ = child.start_kill();
                stop_by = Some(Instant::now() + STOP_READ_GRACE);
                continue;
            }
            _ = sleep_until_opt(stop_by) => {
                let _ = flush(&mut pending, ctx).await;
                return RunEnd::Stopped;
            }
            _ = tokio::time::sleep_until(deadline), if !pending.is_empty() => {
                if !flush(&mut pending, ctx).await {
                    return RunEnd::Stopped;
                }
                last_put = Instant::now();
                continue;
            }
            read = stdout.read_buf(&mut buf) => read,
        };
        let eof = match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => {
                tracing::warn!(source = %ctx.name, %error, "Reading the command's stdout failed.");
                true
            }
        };
        if splitter.split(&mut buf, &mut pending) {
            tracing::warn!(source = %ctx.name, max_line_bytes = MAX_LINE_BYTES, "A line longer than the limit was cut into several events.");
        }
        if eof && !buf.is_empty() {
            pending.push(Event::new(buf.split().freeze()));
        }
        while pending.len() >= c.batch_size {
            let mut batch: Vec<Event> = pending.drain(..c.batch_size).collect();
            if !flush(&mut batch, ctx).await {
                return RunEnd::Stopped;
            }
            last_put = Instant::now();
        }
        if !pending.is_empty() && (eof || Instant::now() >= last_put + c.batch_timeout) {
            if !flush(&mut pending, ctx).await {
                return RunEnd::Stopped;
            }
            last_put = Instant::now();
        }
        if eof {
            return match stop_by {
                Some(_) => RunEnd::Stopped,
                None => RunEnd::Exited,
            };
        }
    }
}

/// Sleeps until `at`, or forever when `None`.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Puts `events` (emptying it) with backpressure; false when the source stopped first.
async fn flush(events: &mut Vec<Event>, ctx: &SourceContext) -> bool {
    if events.is_empty() {
        return true;
    }
    let batch = std::mem::take(events);
    let n = batch.len() as u64;
    ctx.counters.event_received.add(n);
    ctx.counters.append_batch_received.inc();
    match ctx.processor.process_with_backpressure(batch, ctx).await {
        Ok(()) => {
            ctx.counters.event_accepted.add(n);
            ctx.counters.append_batch_accepted.inc();
            true
        }
        Err(error) => {
            tracing::warn!(source = %ctx.name, %error, events = n, "Stopping with command output read but not put.");
            false
        }
    }
}

/// Splits a byte stream into lines ending at `\n`, `\r\n` or `\r`, across reads.
#[derive(Default)]
struct LineSplitter {
    /// The last read ended with `\r`: a `\n` at the start of the next one belongs to it.
    skip_lf: bool,
}

impl LineSplitter {
    /// Moves every complete line of `buf` into `out` (each a slice of the read buffer), and
    /// cuts an over-long partial line; returns whether it cut one.
    fn split(&mut self, buf: &mut BytesMut, out: &mut Vec<Event>) -> bool {
        let mut cut = false;
        loop {
            if self.skip_lf && !buf.is_empty() {
                if buf[0] == b'\n' {
                    buf.advance(1);
                }
                self.skip_lf = false;
            }
            match memchr::memchr2(b'\n', b'\r', buf) {
                Some(i) => {
                    let line = buf.split_to(i).freeze();
                    let terminator = buf[0];
                    buf.advance(1);
                    self.skip_lf = terminator == b'\r';
                    out.push(Event::new(line));
                }
                None => {
                    if buf.len() >= MAX_LINE_BYTES {
                        out.push(Event::new(buf.split_to(MAX_LINE_BYTES).freeze()));
                        cut = true;
                        continue;
                    }
                    return cut;
                }
            }
        }
    }
}

/// Reads stderr to its end, logging lines when asked to, so the child never blocks on it.
async fn drain_stderr(mut stderr: impl AsyncRead + Unpin, log: bool, source: String) {
    let mut buf = vec![0u8; 64 << 10];
    let mut line: Vec<u8> = Vec::new();
    let mut number: u64 = 0;
    let mut emit = |line: &mut Vec<u8>| {
        number += 1;
        if log {
            let text = String::from_utf8_lossy(line);
            let text = text.trim_end_matches('\r');
            tracing::info!(source = %source, line_number = number, line = %text, "Command wrote to stderr.");
        }
        line.clear();
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !log {
            continue;
        }
        for part in buf[..n].split_inclusive(|&b| b == b'\n') {
            let (text, complete) = match part.split_last() {
                Some((b'\n', rest)) => (rest, true),
                _ => (part, false),
            };
            let room = MAX_STDERR_LINE.saturating_sub(line.len());
            line.extend_from_slice(&text[..text.len().min(room)]);
            if complete {
                emit(&mut line);
            }
        }
    }
    if !line.is_empty() {
        emit(&mut line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bodies(events: &[Event]) -> Vec<&[u8]> {
        events.iter().map(|e| &e.body[..]).collect()
    }

    #[test]
    fn lines_end_at_lf_crlf_and_cr_across_reads() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        let mut buf = BytesMut::from(&b"a\nb\r"[..]);
        s.split(&mut buf, &mut out);
        buf.extend_from_slice(b"\nc\rd\r\ne");
        s.split(&mut buf, &mut out);
        assert_eq!(bodies(&out), [&b"a"[..], b"b", b"c", b"d"]);
        assert_eq!(&buf[..], b"e");
    }

    #[test]
    fn shell_gets_the_command_as_one_argument() {
        let mut c = ExecConfig {
            command: "echo  a   b".into(),
            shell: None,
            restart: false,
            restart_throttle: Duration::ZERO,
            log_stderr: false,
            batch_size: 1,
            batch_timeout: Duration::ZERO,
            charset: DEFAULT_CHARSET.into(),
        };
        assert_eq!(c.argv(), ["echo", "a", "b"]);
        c.shell = Some("/bin/sh  -c".into());
        assert_eq!(c.argv(), ["/bin/sh", "-c", "echo  a   b"]);
    }
}
