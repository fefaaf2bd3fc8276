//! How much memory this process may use: the smaller of physical memory and the limit of the
//! cgroup it runs in.
//!
//! A container's memory limit is a cgroup's, not the machine's: sizing a buffer from
//! `/proc/meminfo` alone inside a 512 MiB container would let it grow until the kernel kills
//! the agent. The limit read is the smallest along the process's cgroup and its ancestors:
//! - cgroup v2: `memory.max` (`max` means none), under `/sys/fs/cgroup` or, on hybrid
//!   systems, `/sys/fs/cgroup/unified`;
//! - cgroup v1: `memory.limit_in_bytes` under `/sys/fs/cgroup/memory` (values of 2^62 and
//!   more mean none).
//!
//! The process's cgroup path comes from `/proc/self/cgroup`. Inside a container without a
//! cgroup namespace that path may not exist in the container's view; the walk then starts at
//! the deepest part that does (the container's own cgroup is mounted as the root).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A v1 limit at or above this is the kernel's "no limit" (it rounds `i64::MAX` to a page).
const V1_UNLIMITED: u64 = 1 << 62;

/// Physical memory and the cgroup limit, as read once for this process.
pub fn process_memory_limit() -> Option<u64> {
    static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
    *LIMIT.get_or_init(|| memory_limit(Path::new("/")))
}

/// The smaller of `MemTotal` and the cgroup limit, with `root` as `/` (tests pass a
/// directory that mimics `/proc` and `/sys/fs/cgroup`). `None` when neither can be read.
pub fn memory_limit(root: &Path) -> Option<u64> {
    let physical = mem_total(root);
    let cgroup = cgroup_limit(root);
    match (physical, cgroup) {
        (Some(p), Some(c)) => Some(p.min(c)),
        (p, c) => p.or(c),
    }
}

fn mem_total(root: &Path) -> Option<u64> {
    let meminfo = std::fs::read_to_string(root.join("proc/meminfo")).ok()?;
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb.saturating_mul(1024))
}

/// The smallest cgroup memory limit that applies to this process, if any.
fn cgroup_limit(root: &Path) -> Option<u64> {
    let membership = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    let mut limits = Vec::new();
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            for mount in ["sys/fs/cgroup", "sys/fs/cgroup/unified"] {
                limits.extend(smallest_along(&root.join(mount), path, "memory.max", None));
            }
        } else if controllers.split(',').any(|c| c == "memory") {
            let mount = root.join("sys/fs/cgroup/memory");
            let limit = smallest_along(&mount, path, "memory.limit_in_bytes", Some(V1_UNLIMITED));
            limits.extend(limit);
        }
    }
    limits.into_iter().min()
}

/// The smallest value of `file` in the cgroup at `path` under `mount` and its ancestors.
/// `unlimited_from`: values at or above it mean no limit (v1); `max` always does (v2).
fn smallest_along(
    mount: &Path,
    path: &str,
    file: &str,
    unlimited_from: Option<u64>,
) -> Option<u64> {
    let mut dir: PathBuf = mount.join(path.trim_start_matches('/'));
    // Inside a container the host's path may not exist: start where it does.
    while !dir.is_dir() && dir.starts_with(mount) && dir != mount {
        dir.pop();
    }
    let mut smallest: Option<u64> = None;
    loop {
        let value = std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&v| unlimited_from.is_none_or(|u| v < u));
        if let Some(v) = value {
            smallest = Some(smallest.map_or(v, |s| s.min(v)));
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            return smallest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake root with `files` written under it.
    fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        dir
    }

    const MEMINFO: &str = "MemTotal:       24000000 kB\nMemFree: 1 kB\n";

    #[test]
    fn without_a_cgroup_limit_it_is_physical_memory() {
        let r = root(&[("proc/meminfo", MEMINFO), ("proc/self/cgroup", "0::/\n")]);
        assert_eq!(memory_limit(r.path()), Some(24_000_000 * 1024));
    }

    #[test]
    fn a_v2_memory_max_caps_it_and_the_smallest_ancestor_wins() {
        let r = root(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "0::/kubepods/pod1/agent\n"),
            ("sys/fs/cgroup/memory.max", "max\n"),
            ("sys/fs/cgroup/kubepods/pod1/memory.max", "536870912\n"),
            ("sys/fs/cgroup/kubepods/pod1/agent/memory.max", "max\n"),
        ]);
        assert_eq!(memory_limit(r.path()), Some(512 << 20));
    }

    #[test]
    fn a_v1_limit_caps_it_and_the_unlimited_value_does_not() {
        let r = root(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "4:memory:/docker/abc\n0::/\n"),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
            (
                "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
                "268435456\n",
            ),
        ]);
        assert_eq!(memory_limit(r.path()), Some(256 << 20));
        let r = root(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "4:memory:/\n"),
            (
                "sys/fs/cgroup/memory/memory.limit_in_bytes",
                "9223372036854771712\n",
            ),
        ]);
        assert_eq!(memory_limit(r.path()), Some(24_000_000 * 1024));
    }

    #[test]
    fn a_path_missing_from_the_containers_view_falls_back_to_its_root() {
        let r = root(&[
            ("proc/meminfo", MEMINFO),
            ("proc/self/cgroup", "0::/system.slice/docker-1.scope\n"),
            ("sys/fs/cgroup/memory.max", "1073741824\n"),
        ]);
        assert_eq!(memory_limit(r.path()), Some(1 << 30));
    }
}
