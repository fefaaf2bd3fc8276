//! The memory channel's default `byteCapacity` is a fifth of what the agent may use: under a
//! cgroup memory limit, a fifth of that limit, not of the machine's memory.
//!
//! The agent runs in a real cgroup the test creates (v2 if this machine delegates one, else
//! v1's memory controller); the parsing of every layout is unit-tested against simulated
//! trees in `flumen_core::memory_limit`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const LIMIT: u64 = 256 << 20;

/// A fresh cgroup with a memory limit of [`LIMIT`], as a directory whose `cgroup.procs` takes
/// a process; `None` (with the reason) where this machine lets no cgroup be made.
fn make_cgroup(name: &str) -> Result<PathBuf, String> {
    let membership = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| e.to_string())?;
    let path_of = |pred: &dyn Fn(&str, &str) -> bool| {
        membership.lines().find_map(|l| {
            let mut p = l.splitn(3, ':');
            let (id, ctl, path) = (p.next()?, p.next()?, p.next()?);
            pred(id, ctl).then(|| path.trim_start_matches('/').to_string())
        })
    };
    let v1 = path_of(&|_, ctl| ctl.split(',').any(|c| c == "memory")).map(|p| {
        (
            Path::new("/sys/fs/cgroup/memory").join(p),
            "memory.limit_in_bytes",
        )
    });
    let v2 = path_of(&|id, ctl| id == "0" && ctl.is_empty())
        .map(|p| (Path::new("/sys/fs/cgroup").join(p), "memory.max"));
    let mut why = String::from("no memory cgroup hierarchy");
    for (parent, file) in [v1, v2].into_iter().flatten() {
        let dir = parent.join(name);
        match std::fs::create_dir(&dir)
            .and_then(|_| std::fs::write(dir.join(file), LIMIT.to_string()))
        {
            Ok(()) => return Ok(dir),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                why = format!("{}: {e}", dir.display());
            }
        }
    }
    Err(why)
}

#[test]
fn the_default_byte_capacity_follows_the_cgroup_memory_limit() {
    let name = format!("flumen-test-{}", std::process::id());
    let cgroup = match make_cgroup(&name) {
        Ok(dir) => dir,
        Err(why) => {
            assert!(
                std::env::var_os("FLUMEN_REQUIRE_CGROUP").is_none(),
                "cannot create a cgroup: {why}"
            );
            eprintln!("skipped: cannot create a cgroup here ({why})");
            return;
        }
    };
    let dir = test_dir();
    let config = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
                  a1.sources.r1.type = seq\na1.sources.r1.totalEvents = 1\n\
                  a1.sources.r1.channels = c1\na1.channels.c1.type = memory\n\
                  a1.sinks.k1.type = null\na1.sinks.k1.channel = c1\n";
    let file = dir.path().join("agent.properties");
    std::fs::write(&file, config).expect("writing the config");
    // Join the cgroup, then become the agent: the limit applies from its first instruction.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
        .arg("sh")
        .arg(&cgroup)
        .arg(flumen_bin())
        .args(["agent", "-n", "a1", "-f"])
        .arg(&file);
    let mut agent = Agent::spawn(cmd, dir.path());
    let line = agent.wait_for_log(&["Channel started.", "channel=c1"]);
    let status = agent.terminate();
    let _ = std::fs::remove_dir(&cgroup);
    assert!(
        line.contains(&format!("byteCapacity={} ", LIMIT / 5)),
        "want a fifth of the {LIMIT}-byte limit: {line}"
    );
    assert!(status.success(), "{}", agent.log());
}
