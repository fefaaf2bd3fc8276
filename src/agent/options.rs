//! How the agent runs: shared by the start-up path and hot reload.

use std::time::Duration;

/// How the agent runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// How long sinks get to drain the channels after the sources stop.
    pub shutdown_timeout: Duration,
    /// How configs are built (at start and on reload).
    pub build: super::BuildOptions,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shutdown_timeout: Duration::from_secs(5),
            build: super::BuildOptions::default(),
        }
    }
}
