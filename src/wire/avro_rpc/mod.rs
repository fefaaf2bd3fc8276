//! Avro RPC as Flume speaks it between agents (the `avro` source and sink): Netty framing
//! ([`frame`]), an optional per-connection zlib stream ([`deflate`]), and Flume's protocol
//! with Avro's stateful handshake ([`protocol`]).
//!
//! Layering on a connection, outermost first: TCP, then the zlib stream when
//! `compression-type = deflate`, then frames, then Avro IPC messages.

pub mod deflate;
pub mod frame;
pub mod protocol;
