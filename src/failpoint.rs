//! Failpoints for crash tests: `FLUMEN_FAILPOINTS=name[,name…]` makes the agent abort when
//! it reaches a named point, as a kill -9 would at that exact instant (no cleanup, no
//! flush). The variable is read once; unset, a failpoint costs a look at an empty list.
//!
//! Points: `avro-source-after-commit` (the avro source has committed a batch to its channel
//! and not yet answered OK), `kafka-source-after-poll` (the kafka source has read a batch and
//! put none of it), `kafka-source-after-put` (the kafka source has committed a batch
//! to its channels and not yet committed its offsets), `kafka-channel-after-take` (a take
//! from the kafka channel holds records whose offsets are not committed).

use std::sync::LazyLock;

static ACTIVE: LazyLock<Vec<String>> = LazyLock::new(|| {
    std::env::var("FLUMEN_FAILPOINTS")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
});

/// Aborts the process if the failpoint `name` is active.
pub fn crash_at(name: &str) {
    if ACTIVE.iter().any(|n| n == name) {
        tracing::error!(
            failpoint = name,
            "Failpoint reached; aborting as a crash would."
        );
        std::process::abort();
    }
}
