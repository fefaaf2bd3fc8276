//! `flumen top`: a terminal dashboard for a running agent, read from its monitoring endpoint.
//!
//! # What it shows
//! - A header: the agent's URL, its name (from `/topology`), the wall-clock time of the last
//!   good refresh, and a status line (`ok`, `connecting...`, or the last error, in red).
//! - A table, one row per source, channel and sink (config order when the agent serves its
//!   graph, else by kind and name): kind, name, type, events/s in and out, a channel's fill as
//!   a bar with `percent size/capacity`, and errors.
//!   - in/out per second are the change of two counters between consecutive samples divided
//!     by the time between the responses: sources `EventReceivedCount` / `EventAcceptedCount`,
//!     channels `EventPutSuccessCount` / `EventTakeSuccessCount`, sinks
//!     `EventDrainAttemptCount` / `EventDrainSuccessCount`. `-` until there are two samples,
//!     and after a counter went backwards (the agent restarted).
//!   - fill is `ChannelSize / ChannelCapacity` (green below 50 %, yellow below 80 %, red).
//!   - errors is the sum, since the agent started, of the failure counters of the kind:
//!     sources `EventReadFail + ChannelWriteFail + GenericProcessingFail`; channels
//!     `EventPutErrorCount + EventTakeErrorCount + CheckpointWriteErrorCount +
//!     CheckpointBackupWriteErrorCount` (durable channels report them); sinks
//!     `ConnectionFailedCount + EventWriteFail + ChannelReadFail`. Red while it grows.
//! - The topology: one line per path, `r1 (netcat) → c1 (memory) → k1 (file_roll)`, sink
//!   groups named after the sink, dead-letter channels as `r1 (netcat) ⇢ dlq (memory) [errors]`.
//!
//! # Where it reads
//! `GET <url>/metrics` (Flume's JSON) and `GET <url>/topology` every `--interval` seconds
//! (default 1), each request with a 2 s timeout. The address is `URL` or `HOST:PORT` (default
//! `http://127.0.0.1:41414`, Flume's monitoring port). Apache Flume's own `HTTPMetricsServer`
//! works too: it has no `/topology` (404), so types and paths are not shown, the table is.
//! An unreachable or failing agent does not end the dashboard: the error shows in the status
//! line, the last table stays, and the next interval tries again.
//!
//! # Terminal
//! Full screen (raw mode, alternate screen) on any terminal crossterm drives, tmux included;
//! `q`, `Esc` or Ctrl-C quits, as do SIGTERM, SIGINT and SIGHUP, and losing the terminal
//! (stdin no longer a terminal at a refresh). The terminal is restored on every way out: normal
//! exit, error, panic (ratatui's hook), signal; when a hung-up terminal keeps the key loop from
//! answering a signal within a second, the request thread restores and exits itself. Requests run on their
//! own thread, so a slow agent never delays a key. `--once` draws nothing: it takes two
//! samples `--interval` apart (so the rates are real), prints the frame as plain text to
//! stdout and exits (non-zero, with the error, if the agent cannot be read).
//!
//! Nothing here runs inside the agent: `top` is a client of the endpoint the agent serves.

mod dashboard;
mod fetch;
pub mod model;
mod ui;

use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use tokio::sync::oneshot;

pub use dashboard::{Dashboard, Status};
pub use fetch::{base_url, FetchError, Fetcher, Sample, REQUEST_TIMEOUT};

/// The endpoint read when none is given (Flume's default monitoring port).
pub const DEFAULT_ADDRESS: &str = "http://127.0.0.1:41414";

/// The shortest refresh interval accepted.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How long the key loop has to quit after a signal before the process exits without it.
const QUIT_GRACE: Duration = Duration::from_secs(1);

/// What `flumen top` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// `URL` or `HOST:PORT` of the agent's monitoring endpoint.
    pub address: String,
    /// Seconds between samples.
    pub interval_secs: f64,
    /// Print one plain-text frame and exit.
    pub once: bool,
}

/// Why `flumen top` stopped.
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// `--interval` is not a usable number of seconds.
    #[error("--interval {0} is not a number of seconds from 0.1 to 86400")]
    BadInterval(f64),
    /// The agent could not be read (only `--once` and a bad address end on this).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Standard output is not a terminal (and `--once` was not given).
    #[error("the dashboard needs a terminal; use --once for a plain-text frame")]
    NotATerminal,
    /// Drawing or reading keys failed.
    #[error("terminal: {0}")]
    Terminal(std::io::Error),
    /// The async runtime for the requests could not start.
    #[error("starting the request runtime: {0}")]
    Runtime(std::io::Error),
    /// Printing the `--once` frame failed.
    #[error("writing the frame: {0}")]
    Write(std::io::Error),
}

/// What the request thread tells the key loop.
pub(crate) enum Message {
    /// One sample's outcome.
    Sample(Result<Sample, FetchError>),
    /// A signal asked to quit.
    Quit,
}

/// Runs `flumen top` as `options` say: the full-screen dashboard until the user quits, or
/// with `once`, one frame printed to stdout.
pub fn run(options: &Options) -> Result<(), TopError> {
    let interval = interval(options.interval_secs)?;
    let fetcher = Fetcher::new(base_url(&options.address)?)?;
    if options.once {
        let frame = once(fetcher, interval)?;
        let mut out = std::io::stdout().lock();
        out.write_all(frame.as_bytes())
            .and_then(|()| out.flush())
            .map_err(TopError::Write)?;
        return Ok(());
    }
    if !std::io::stdout().is_terminal() {
        return Err(TopError::NotATerminal);
    }
    let mut dashboard = Dashboard::new(fetcher.base());
    let (messages, inbox) = mpsc::channel();
    let (stop, stopped) = oneshot::channel();
    let runtime = runtime()?;
    let poller = std::thread::Builder::new()
        .name("flumen-top-fetch".into())
        .spawn(move || runtime.block_on(poll(fetcher, interval, messages, stopped)))
        .map_err(TopError::Runtime)?;
    let result = ui::run(&mut dashboard, &inbox, interval);
    // Stops the requests; a request in flight is dropped, so this returns at once.
    let _ = stop.send(());
    let _ = poller.join();
    result
}

/// Two samples `interval` apart, as plain text.
fn once(fetcher: Fetcher, interval: Duration) -> Result<String, TopError> {
    runtime()?.block_on(async move {
        let mut dashboard = Dashboard::new(fetcher.base());
        dashboard.update(Ok(fetcher.sample().await?), &clock());
        tokio::time::sleep(interval).await;
        dashboard.update(Ok(fetcher.sample().await?), &clock());
        Ok(dashboard.to_text())
    })
}

/// Samples every `interval` (a slow answer delays the next tick rather than piling requests
/// up) and sends each outcome, until `stop` fires, the receiver is gone, or a signal comes.
async fn poll(
    fetcher: Fetcher,
    interval: Duration,
    messages: Sender<Message>,
    mut stop: oneshot::Receiver<()>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let mut int = signal(SignalKind::interrupt()).ok();
    let mut hup = signal(SignalKind::hangup()).ok();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            () = received(&mut term) => return quit(&messages, stop).await,
            () = received(&mut int) => return quit(&messages, stop).await,
            () = received(&mut hup) => return quit(&messages, stop).await,
            _ = ticks.tick() => {
                if !std::io::stdin().is_terminal() {
                    // The terminal went away and no SIGHUP came (it is ignored, `nohup`).
                    return quit(&messages, stop).await;
                }
                let outcome = tokio::select! {
                    outcome = fetcher.sample() => outcome,
                    _ = &mut stop => return,
                };
                if messages.send(Message::Sample(outcome)).is_err() {
                    return;
                }
            }
        }
    }
}

/// Resolves when `signal` is received (never when it could not be registered).
///
/// # Cancel safety
/// Cancel safe, as `Signal::recv` is.
async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Asks the key loop to quit, and makes sure the process ends: when the terminal has hung up,
/// crossterm's reader spins on end-of-file inside `event::poll` and never returns to look at
/// its messages, so after [`QUIT_GRACE`] this restores the terminal (best effort) and exits.
async fn quit(messages: &Sender<Message>, stop: oneshot::Receiver<()>) {
    let _ = messages.send(Message::Quit);
    if tokio::time::timeout(QUIT_GRACE, stop).await.is_err() {
        ratatui::restore();
        std::process::exit(0);
    }
}

fn interval(secs: f64) -> Result<Duration, TopError> {
    if !secs.is_finite() || secs < MIN_INTERVAL.as_secs_f64() || secs > 86_400.0 {
        return Err(TopError::BadInterval(secs));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn runtime() -> Result<tokio::runtime::Runtime, TopError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(TopError::Runtime)
}

/// The local time, `HH:MM:SS`.
fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_checked() {
        assert_eq!(interval(1.0).unwrap(), Duration::from_secs(1));
        assert_eq!(interval(0.25).unwrap(), Duration::from_millis(250));
        for bad in [0.0, -1.0, 0.05, f64::NAN, f64::INFINITY, 1e9] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }
}
