//! `flumen top` through the real binary: the dashboard drawn in a real terminal (tmux) against
//! a running agent, quit with `q`, the terminal given back; an agent that appears later; a
//! terminal that goes away; and the `--once` plain-text frame with real rates.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// seq → memory → null, the sink held at 500 events/s: the numbers move without eating a core,
/// and the channel stays full (the source waits on it).
const CONFIG: &str = "a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = seq
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 1000
a1.channels.c1.transactionCapacity = 100
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 100
a1.sinks.k1.maxEventsPerSecond = 500
a1.sinks.k1.channel = c1
";

const PATH_LINE: &str = "r1 (seq) → c1 (memory) → k1 (null)";

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether tmux is here; when it is not, fails under CI or `FLUMEN_REQUIRE_TMUX=1`, else says
/// the test is skipped.
fn have_tmux() -> bool {
    if tmux_available() {
        return true;
    }
    assert!(
        !required("FLUMEN_REQUIRE_TMUX"),
        "tmux is required here (CI or FLUMEN_REQUIRE_TMUX=1) but is not installed"
    );
    eprintln!("skipping: tmux is not installed (apt-get install tmux)");
    false
}

/// A detached tmux session on a private server (its own socket in the test's directory, no
/// user config), running one command; the server is killed on drop.
struct Tmux {
    socket: PathBuf,
    session: String,
    /// Where the shell writes flumen top's exit status.
    status_file: PathBuf,
}

impl Tmux {
    /// Runs `flumen top ARGS` in a 160×40 pane. The pane stays after the command ends, so the
    /// test can look at the terminal it left.
    fn start(dir: &Path, args: &str) -> Tmux {
        let config = dir.join("tmux.conf");
        std::fs::write(&config, "set -g remain-on-exit on\n").expect("writing tmux.conf");
        let tmux = Tmux {
            socket: dir.join("tmux.sock"),
            session: format!("flumen-top-{}", std::process::id()),
            status_file: dir.join("top.status"),
        };
        let command = format!(
            "'{}' top {args}; echo $? > '{}'",
            flumen_bin().display(),
            tmux.status_file.display()
        );
        let status = Command::new("tmux")
            // UTF-8 whatever the test's locale: the topology is drawn with arrows.
            .arg("-u")
            .arg("-S")
            .arg(&tmux.socket)
            .arg("-f")
            .arg(&config)
            .args([
                "new-session",
                "-d",
                "-s",
                &tmux.session,
                "-x",
                "160",
                "-y",
                "40",
            ])
            .arg(&command)
            .env_remove("TMUX")
            .status()
            .expect("running tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("running tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the pane shows now.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    /// A pane format variable (`#{pane_dead}`).
    fn var(&self, name: &str) -> String {
        self.run(&[
            "display-message",
            "-p",
            "-t",
            &self.session,
            &format!("#{{{name}}}"),
        ])
        .trim()
        .to_string()
    }

    fn keys(&self, keys: &str) {
        self.run(&["send-keys", "-t", &self.session, keys]);
    }

    /// Waits for the pane to show every needle; returns the screen.
    fn wait_for(&self, needles: &[&str]) -> String {
        let mut screen = String::new();
        let what = format!("the pane to show {needles:?}");
        wait_until(&what, DEADLINE * 2, || {
            screen = self.screen();
            assert!(
                !self.status_file.exists(),
                "flumen top exited before {what}; screen:\n{screen}"
            );
            needles.iter().all(|n| screen.contains(n))
        });
        screen
    }

    /// Sends `q`, waits for `flumen top` to end; returns its exit status and whether the pane
    /// is still on the alternate screen (`1`: the terminal was not given back).
    fn quit(&self) -> (String, String) {
        self.keys("q");
        // The shell writes the status once flumen top has exited (tmux's own pane_dead_status
        // is sometimes never filled in).
        let mut status = String::new();
        wait_until("flumen top to exit after q", DEADLINE, || {
            status = std::fs::read_to_string(&self.status_file).unwrap_or_default();
            status.ends_with('\n')
        });
        (status.trim().to_string(), self.var("alternate_on"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .arg("kill-server")
            .output();
    }
}

/// The words of the table row for `kind` on a dashboard screen (borders dropped).
fn row(screen: &str, kind: &str) -> Option<Vec<String>> {
    screen.lines().find_map(|l| {
        let words: Vec<String> = l
            .replace('│', " ")
            .split_whitespace()
            .map(String::from)
            .collect();
        (words.len() >= 5 && words[0] == kind).then_some(words)
    })
}

#[test]
fn top_draws_the_agents_components_in_a_terminal_and_quits_on_q() {
    if !have_tmux() {
        return;
    }
    let tmp = test_dir();
    let dir = tmp.path();
    let mut agent = Agent::start(
        dir,
        "a1",
        CONFIG,
        &["--metrics-addr", "127.0.0.1:0", "--shutdown-timeout", "30"],
    );
    let port = agent.monitoring_port();
    let tmux = Tmux::start(dir, &format!("http://127.0.0.1:{port}"));
    tmux.wait_for(&[
        &format!("http://127.0.0.1:{port}"),
        "agent a1",
        "status: ok",
        PATH_LINE,
        "/1000",
    ]);
    // The second sample brings the rates: every component shows, events flowing through.
    let mut screen = String::new();
    wait_until("rows with rates for r1, c1 and k1", DEADLINE, || {
        screen = tmux.screen();
        [
            ("source", "r1", "seq"),
            ("channel", "c1", "memory"),
            ("sink", "k1", "null"),
        ]
        .iter()
        .all(|(kind, name, t)| {
            row(&screen, kind).is_some_and(|w| {
                w[1..3] == [*name, *t] && w[3] != "-" && w[3] != "0" && w[4] != "-"
            })
        })
    });
    let (status, alternate) = tmux.quit();
    assert_eq!(status, "0", "exit status; screen:\n{}", tmux.screen());
    assert_eq!(
        alternate, "0",
        "the terminal was left on the alternate screen"
    );
    assert!(agent.terminate().success());
}

#[test]
fn top_shows_an_unreachable_agent_as_an_error_and_picks_it_up_when_it_starts() {
    if !have_tmux() {
        return;
    }
    let tmp = test_dir();
    let dir = tmp.path();
    let port = unused_port();
    let tmux = Tmux::start(dir, &format!("127.0.0.1:{port} --interval 0.2"));
    tmux.wait_for(&[
        "status: error:",
        &format!("http://127.0.0.1:{port}/metrics"),
    ]);
    let addr = format!("127.0.0.1:{port}");
    let mut agent = Agent::start(
        dir,
        "a1",
        CONFIG,
        &["--metrics-addr", &addr, "--shutdown-timeout", "30"],
    );
    agent.monitoring_port();
    let screen = tmux.wait_for(&["status: ok", "agent a1", PATH_LINE]);
    assert!(!screen.contains("error:"), "{screen}");
    let (status, alternate) = tmux.quit();
    assert_eq!(
        (status.as_str(), alternate.as_str()),
        ("0", "0"),
        "exit status and alternate screen; screen:\n{}",
        tmux.screen()
    );
    assert!(agent.terminate().success());
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped).
fn ended(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // `pid (comm) STATE ...`: the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

#[test]
fn top_ends_when_its_terminal_goes_away() {
    if !have_tmux() {
        return;
    }
    let tmp = test_dir();
    let dir = tmp.path();
    let tmux = Tmux::start(dir, &format!("127.0.0.1:{} --interval 0.2", unused_port()));
    tmux.wait_for(&["status: error:"]);
    // The pane runs `sh -c 'flumen top ...; echo ...'`: flumen top is the shell's child.
    let shell = tmux.var("pane_pid");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
        .expect("reading the shell's children");
    let top = children
        .split_whitespace()
        .next()
        .unwrap_or_else(|| panic!("the pane's shell {shell} has no child"))
        .to_string();
    drop(tmux);
    // A hung-up terminal makes crossterm's reader spin on end-of-file; top must still end.
    let start = std::time::Instant::now();
    while !ended(&top) {
        if start.elapsed() > DEADLINE {
            let _ = Command::new("kill").args(["-KILL", &top]).status();
            panic!("flumen top (pid {top}) still ran {DEADLINE:?} after its terminal closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn top_once_prints_every_component_with_a_real_rate() {
    let tmp = test_dir();
    let dir = tmp.path();
    let mut agent = Agent::start(
        dir,
        "a1",
        CONFIG,
        &["--metrics-addr", "127.0.0.1:0", "--shutdown-timeout", "30"],
    );
    let port = agent.monitoring_port();
    let out = Command::new(flumen_bin())
        .args([
            "top",
            &format!("127.0.0.1:{port}"),
            "--once",
            "--interval",
            "1",
        ])
        .output()
        .expect("running flumen top --once");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}; stdout:\n{text}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("agent a1") && text.contains("status: ok"),
        "{text}"
    );
    let row = |kind: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(kind))
            .unwrap_or_else(|| panic!("no {kind} row in:\n{text}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let source = row("source");
    assert_eq!(source[..3], ["source", "r1", "seq"], "{text}");
    // Two samples a second apart while the sink drains 500 events/s: events flow in and out.
    for rate in &source[3..5] {
        assert!(rate != "0" && rate != "-", "source rate {rate} in:\n{text}");
    }
    let channel = row("channel");
    assert_eq!(channel[..3], ["channel", "c1", "memory"], "{text}");
    assert!(channel.iter().any(|w| w.ends_with("/1000")), "{text}");
    let sink = row("sink");
    assert_eq!(sink[..3], ["sink", "k1", "null"], "{text}");
    assert!(
        sink[4] != "0" && sink[4] != "-",
        "sink out rate in:\n{text}"
    );
    assert!(text.contains(&format!("  {PATH_LINE}\n")), "{text}");
    assert!(agent.terminate().success());
}

#[test]
fn top_once_fails_with_the_url_when_nothing_answers() {
    let port = unused_port();
    let out = Command::new(flumen_bin())
        .args([
            "top",
            &format!("127.0.0.1:{port}"),
            "--once",
            "--interval",
            "0.1",
        ])
        .output()
        .expect("running flumen top --once");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("GET http://127.0.0.1:{port}/metrics")),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
