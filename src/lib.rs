//! Flumen: Apache Flume's model and configuration format, rebuilt in Rust.
//!
//! Sources read events, channels buffer them transactionally, sinks deliver them; an event
//! leaves a channel only when its sink has delivered it (at-least-once). See `docs/` and the
//! README for the architecture and the Flume compatibility rules.

pub mod config;
