//! Shared helpers for integration tests: each test gets a directory, runs the real `flumen`
//! binary on a real config, and waits for conditions (never fixed sleeps).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A generous deadline for conditions that normally hold within milliseconds.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The binary under test (release when run via `cargo test --release`).
pub fn flumen_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flumen"))
}

/// `../shared` beside the project (the shared oracle, corpus and bench).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

/// The delivery oracle script.
pub fn oracle() -> PathBuf {
    shared_dir().join("oracle/delivery_oracle.py")
}

/// A fresh temporary directory for one test.
pub fn test_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("flumen-test-")
        .tempdir()
        .expect("creating a temp dir for the test")
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes; panics with `what` then.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `config` to a fresh `flume.properties` and runs
/// `flumen check --json -n a1 -f FILE ARGS`: the exit code, the parsed output and the file's
/// path (as findings name it).
pub fn check_json(config: &str, args: &[&str]) -> (i32, serde_json::Value, String) {
    let dir = test_dir();
    let file = dir.path().join("flume.properties");
    std::fs::write(&file, config).expect("writing the config");
    let out = Command::new(flumen_bin())
        .args(["check", "-n", "a1", "--json", "-f"])
        .arg(&file)
        .args(args)
        .output()
        .expect("running flumen check");
    let text = String::from_utf8_lossy(&out.stdout);
    let json: serde_json::Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "bad JSON ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        out.status.code().unwrap_or(-1),
        json,
        file.display().to_string(),
    )
}

/// The findings of one kind (`unsupported-type`, ...) in `flumen check --json` output.
pub fn findings_of<'a>(json: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    json["findings"]
        .as_array()
        .map(|all| all.iter().filter(|f| f["kind"] == kind).collect())
        .unwrap_or_default()
}

/// A running agent process with its log captured.
pub struct Agent {
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// The directory holding the config file.
    pub dir: PathBuf,
}

impl Agent {
    /// Writes `config` to `dir/agent.properties` and runs `flumen agent -n NAME -f FILE ARGS`.
    pub fn start(dir: &Path, name: &str, config: &str, args: &[&str]) -> Agent {
        let file = dir.join("agent.properties");
        std::fs::write(&file, config).expect("writing the config");
        let mut cmd = Command::new(flumen_bin());
        cmd.arg("agent")
            .arg("-n")
            .arg(name)
            .arg("-f")
            .arg(&file)
            .args(args);
        Agent::spawn(cmd, dir)
    }

    /// Runs an arbitrary `flumen` command line with the log captured.
    pub fn spawn(mut cmd: Command, dir: &Path) -> Agent {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env_remove("RUST_LOG");
        let mut child = cmd.spawn().expect("starting flumen");
        let log = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("FLUMEN_TEST_ECHO").is_some() {
                        eprintln!("[agent] {line}");
                    }
                    let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Agent {
            child: Some(child),
            log,
            dir: dir.to_path_buf(),
        }
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits for a log line containing every needle; returns it.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let mut found = String::new();
        wait_until(&format!("a log line with {needles:?}"), DEADLINE, || {
            if let Some(line) = self
                .log()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                found = line.to_string();
                true
            } else {
                false
            }
        });
        found
    }

    /// The port a source logged as `address=HOST:PORT` in its "listening" line.
    pub fn port_of(&self, source: &str) -> u16 {
        let needle = format!("source={source}");
        let line = self.wait_for_log(&["listening", &needle]);
        let addr = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("address="))
            .unwrap_or_else(|| panic!("no address= in {line}"));
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("bad address in {line}"))
    }

    /// The monitoring port (`--metrics-addr 127.0.0.1:0`), from the start-up log line.
    pub fn monitoring_port(&self) -> u16 {
        let line = self.wait_for_log(&["Monitoring listening"]);
        line.split("address=")
            .nth(1)
            .and_then(|a| a.split_whitespace().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in: {line}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal by name (`TERM`, `KILL`, `INT`).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit (within `DEADLINE`).
    pub fn wait(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("agent already waited for");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("waiting for flumen") {
                // Give the log readers a moment to catch the last lines.
                std::thread::sleep(Duration::from_millis(50));
                self.child = None;
                return status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!(
                    "flumen did not exit within {DEADLINE:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then wait.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait()
    }

    /// Like [`Agent::port_of`], but fails at once, with the log, if the agent exits first
    /// (a refused start, a failed replay) instead of waiting out the deadline.
    pub fn wait_for_port(&mut self, source: &str) -> u16 {
        let needle = format!("source={source}");
        wait_until(&format!("{source} listening"), DEADLINE, || {
            let listening = self
                .log()
                .lines()
                .any(|l| l.contains("listening") && l.contains(&needle));
            assert!(
                listening || self.is_running(),
                "the agent exited before {source} listened; log:\n{}",
                self.log()
            );
            listening
        });
        self.port_of(source)
    }

    /// Whether the process is still running (false once it exited or was waited for).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Resident memory of `pid`, in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A port nobody listens on (for the moment): a dead downstream for sinks.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding port 0");
    listener.local_addr().expect("local address").port()
}

/// Every regular file under `dir`, recursively (what a file sink wrote).
pub fn output_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// All lines of all regular files under `dir`, recursively.
pub fn output_lines(dir: &Path) -> Vec<String> {
    output_files(dir)
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| text.lines().map(String::from).collect::<Vec<_>>())
        .collect()
}

/// Number of lines under `dir` (cheap enough to poll).
pub fn count_output_lines(dir: &Path) -> usize {
    output_files(dir)
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .map(|bytes| memchr_count(&bytes))
        .sum()
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Runs `python3 delivery_oracle.py ARGS` and returns (success, stdout).
pub fn run_oracle(args: &[&str]) -> (bool, String) {
    let out = Command::new("python3")
        .arg(oracle())
        .args(args)
        .output()
        .expect("running the delivery oracle (python3)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// Sends raw bytes over TCP and closes the write side; returns what the peer answered.
pub fn tcp_send(port: u16, data: &[u8]) -> Vec<u8> {
    try_tcp_send(port, data).expect("sending over TCP")
}

/// [`tcp_send`] for a peer that may refuse the connection (a source at its connection limit
/// closes new ones at once, so even the half-close can fail): the error instead of a panic.
pub fn try_tcp_send(port: u16, data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.write_all(data)?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    Ok(answer)
}

/// A minimal HTTP/1.1 request: returns (status, body).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connecting");
    s.set_read_timeout(Some(DEADLINE)).ok();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .expect("sending the request head");
    s.write_all(body).expect("sending the request body");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Whether a test that needs `what` (a tool, root) must fail instead of skipping: under CI
/// (`CI=true`) or when the variable `require_var` is set to `1`.
pub fn required(require_var: &str) -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var(require_var).is_ok_and(|v| v == "1")
}

/// Runs the oracle's netcat sender against `port` from event `start` for `seconds`, in the
/// background; joins to `(success, summary)`.
pub fn spawn_oracle_netcat(
    port: u16,
    acked: &Path,
    start: u64,
    seconds: u64,
) -> std::thread::JoinHandle<(bool, String)> {
    let (port, acked) = (port.to_string(), acked.to_string_lossy().into_owned());
    let (start, seconds) = (start.to_string(), seconds.to_string());
    std::thread::spawn(move || {
        run_oracle(&[
            "netcat",
            "127.0.0.1",
            &port,
            "--acked",
            &acked,
            "--start",
            &start,
            "--seconds",
            &seconds,
        ])
    })
}

/// The oracle's verdict on `out` against the events listed in `acked`, allowing
/// `max_duplicates` duplicate lines: `(passed, the oracle's JSON line)`.
pub fn oracle_verify(out: &Path, acked: &Path, max_duplicates: u64) -> (bool, String) {
    run_oracle(&[
        "verify",
        &out.to_string_lossy(),
        "--acked",
        &acked.to_string_lossy(),
        "--max-duplicates",
        &max_duplicates.to_string(),
    ])
}

/// The `"next"` number of a delivery-oracle sender summary (`{"acked": n, "next": m}`).
pub fn oracle_next(summary: &str) -> u64 {
    summary
        .split("\"next\":")
        .nth(1)
        .and_then(|rest| {
            let digits: String = rest
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no \"next\" in the sender summary: {summary}"))
}

/// How many events listed in the oracle's `acked` file are not yet under `out` (cheap
/// enough to poll while waiting for a drain; the oracle's `verify` gives the verdict).
pub fn acked_missing(out: &Path, acked: &Path) -> usize {
    let acked: std::collections::HashSet<u64> = std::fs::read_to_string(acked)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for file in output_files(out) {
        let Ok(bytes) = std::fs::read(&file) else {
            continue;
        };
        for line in bytes.split(|&b| b == b'\n') {
            let Some(at) = line.windows(3).position(|w| w == b"ev-") else {
                continue;
            };
            let digits = line.get(at + 3..at + 13).unwrap_or_default();
            if let Some(n) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse::<u64>().ok())
            {
                seen.insert(n);
            }
        }
    }
    acked.difference(&seen).count()
}

/// A small deterministic random number generator (xorshift64*) for seeded test schedules.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// netcat (acks every event) → file channel (`checkpoint`, `data`, `capacity`,
/// `transaction`) → `sink` (its `a1.sinks.k1.*` lines; the channel link is added here).
/// `extra` holds more `a1.*` lines (channel or source keys), each ending in `\n`.
pub fn netcat_file_channel_config(
    checkpoint: &Path,
    data: &Path,
    capacity: usize,
    transaction: usize,
    extra: &str,
    sink: &str,
) -> String {
    format!(
        "a1.sources = r1\n\
         a1.channels = c1\n\
         a1.sinks = k1\n\
         a1.sources.r1.type = netcat\n\
         a1.sources.r1.bind = 127.0.0.1\n\
         a1.sources.r1.port = 0\n\
         a1.sources.r1.ack-every-event = true\n\
         a1.sources.r1.channels = c1\n\
         a1.channels.c1.type = file\n\
         a1.channels.c1.checkpointDir = {}\n\
         a1.channels.c1.dataDirs = {}\n\
         a1.channels.c1.capacity = {capacity}\n\
         a1.channels.c1.transactionCapacity = {transaction}\n\
         {extra}\
         a1.sinks.k1.channel = c1\n\
         {sink}",
        checkpoint.display(),
        data.display()
    )
}
