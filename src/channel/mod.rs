//! Channels: the transactional API and the memory channel are in [`flumen_core::channel`];
//! the durable file channel and the spillable memory channel are here.

pub use flumen_core::channel::*;

pub mod file;
pub mod spillable;

#[cfg(test)]
mod contract_tests;
