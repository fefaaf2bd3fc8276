//! How the process allocates: one glibc malloc arena for the agent.
//!
//! glibc gives a thread that meets a locked arena an arena of its own (up to eight per core),
//! and memory freed into one arena is reused only by allocations from that arena. Tokio moves
//! tasks between its workers, so a source's batches are allocated in each worker's arena in
//! turn, and every arena grows to hold what a full channel holds. Measured on the shared W1
//! workload (BENCHMARKS.md, issue 17): a peak of 82–93 MiB with glibc's default and with two
//! arenas, 58–60 MiB with one, at the same speed. Events without headers are allocated per
//! batch; an event with headers allocates one block for them, and on the interceptor chain
//! benchmark one arena and sixteen gave the same times (BENCHMARKS.md). (mimalloc was measured
//! too: 95–107 MiB peak and 19.5 MiB idle, so it was not taken.)

/// Limits glibc malloc to one arena, unless the user set `MALLOC_ARENA_MAX` or
/// `GLIBC_TUNABLES` themselves (theirs wins). Returns whether the limit was set. Call it before
/// the runtime starts its threads. A no-op on other C libraries.
pub fn limit_malloc_arenas() -> bool {
    let user_set = ["MALLOC_ARENA_MAX", "GLIBC_TUNABLES"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    !user_set && set_arena_max(1)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_arena_max(arenas: i32) -> bool {
    // SAFETY: `mallopt` only records a malloc parameter, under glibc's own lock; it reads and
    // writes no memory of ours, and any value is valid for `M_ARENA_MAX`. It returns 1 when it
    // took the value.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_the_arena_limit_and_still_allocates_across_threads() {
        assert!(set_arena_max(1));
        // Threads allocating and freeing each other's memory after the change still work.
        let handles: Vec<_> = (0..4)
            .map(|i| std::thread::spawn(move || vec![i as u8; 1 << 20]))
            .collect();
        let total: usize = handles
            .into_iter()
            .map(|h| h.join().map(|v| v.len()).unwrap_or(0))
            .sum();
        assert_eq!(total, 4 << 20);
    }
}
