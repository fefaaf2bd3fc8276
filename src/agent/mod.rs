//! The agent: builds the topology from an [`AgentSpec`](crate::config::AgentSpec), starts it,
//! and stops it without losing what it acknowledged.
//!
//! Building follows Flume's `AbstractConfigurationProvider`: channels first, then sources and
//! sinks wired to the channels that were built; a component whose type or config fails is
//! dropped (a finding), a channel left with nothing connected is dropped, and an agent with no
//! channel, or with neither sources nor sinks, does not start.

mod build;
mod deadline;
mod monitoring;
mod options;
mod pipeline;
mod reload;
mod run;
pub mod topology;
pub mod watch;

pub use build::{build, build_with, BuildOptions};
pub use options::RunOptions;
pub use reload::Candidate;
pub use run::{run, run_with, ReloadInputs, RunOutcome};
pub use topology::Topology;
