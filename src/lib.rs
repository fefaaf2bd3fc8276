//! Flumen: Apache Flume's model and configuration format, rebuilt in Rust.
//!
//! Sources read events, channels buffer them transactionally, sinks deliver them; an event
//! leaves a channel only when its sink has delivered it (at-least-once). See `docs/` and the
//! README for the architecture and the Flume compatibility rules.

pub mod agent;
pub mod channel;
pub mod cli;
pub mod config;
pub mod event;
pub mod interceptor;
pub mod metrics;
pub mod monitor;
pub mod rate_limit;
pub mod registry;
pub mod selector;
pub mod serializer;
pub mod sink;
pub mod source;
