//! Sources: the interface and the channel processor are in [`flumen_core::source`]; the
//! sources are here, one file (or folder) each.

pub use flumen_core::source::*;

#[cfg(feature = "avro-rpc")]
pub mod avro;
pub mod exec;
pub mod http;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod limits;
pub mod netcat;
pub mod netcat_udp;
pub mod seq;
pub mod spooldir;
pub mod taildir;
