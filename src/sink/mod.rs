//! Sinks: the interface, the runner and the sink processors are in [`flumen_core::sink`]; the
//! sinks are here, one file (or folder) each.

pub use flumen_core::sink::*;

#[cfg(feature = "avro-rpc")]
pub mod avro;
pub mod file_roll;
#[cfg(feature = "hdfs")]
pub mod hdfs;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod logger;
pub mod null;
#[cfg(test)]
mod slot_tests;
