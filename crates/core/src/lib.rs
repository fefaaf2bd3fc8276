//! Flumen's core: the event, Flume's configuration format and rules, the channel, source, sink
//! and interceptor interfaces with the pipeline that drives them (channel processor, sink
//! runner and processors), the memory channel and the counters with Flume's names.
//!
//! Components (sources, sinks, the file channel, interceptors) and the agent that builds and
//! runs them live in other crates of the workspace; this one has no connector dependency.

pub mod channel;
pub mod config;
pub mod event;
pub mod interceptor;
pub mod memory_limit;
pub mod metrics;
pub mod rate_limit;
pub mod selector;
pub mod sink;
pub mod source;
