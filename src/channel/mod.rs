//! Channels: the transactional API and the memory channel are in [`flumen_core::channel`];
//! the durable file channel is the `flumen-file-channel` crate (re-exported as [`file`]); its
//! config reader and the spillable memory channel are here.

pub use flumen_core::channel::*;

pub use flumen_file_channel as file;
pub mod file_config;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod spillable;

#[cfg(test)]
mod contract_tests;
