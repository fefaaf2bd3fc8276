//! Flumen: Apache Flume's model and configuration format, rebuilt in Rust.
//!
//! Sources read events, channels buffer them transactionally, sinks deliver them; an event
//! leaves a channel only when its sink has delivered it (at-least-once). See `docs/` and the
//! README for the architecture and the Flume compatibility rules.

pub mod agent;
pub mod allocator;
#[cfg(feature = "avro-rpc")]
pub mod avro_client;
pub mod channel;
pub mod cli;
pub mod failpoint;
pub mod interceptor;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod monitor;
pub mod registry;
pub mod serializer;
pub mod shape;
pub mod sink;
pub mod source;
pub mod tls;
pub mod wire;

pub use flumen_core::{config, event, metrics, rate_limit, selector};
