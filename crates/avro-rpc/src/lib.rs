//! Flume's Avro RPC, as Flume's agents and `RpcClient`s speak it: Netty framing ([`frame`]),
//! an optional per-connection zlib stream ([`deflate`]), Flume's protocol with Avro's
//! stateful handshake ([`protocol`]), one client connection ([`connection`]) and the clients
//! Flume's SDK offers ([`client`]: default, failover, load balancing).
//!
//! Layering on a connection, outermost first: TCP, then the zlib stream when
//! `compression-type = deflate`, then TLS when `ssl = true`, then frames, then Avro IPC
//! messages — Flume 1.11's order (its Netty pipelines put the zlib codec before TLS).
//!
//! ```no_run
//! use flumen_avro_rpc::client::{ClientConfig, RpcClient};
//! use flumen_core::event::Event;
//!
//! # async fn send() -> Result<(), flumen_avro_rpc::RpcError> {
//! let mut client = RpcClient::new(ClientConfig::single("collector.example.com:4141"));
//! client.append(Event::new("one event")).await?;
//! client
//!     .append_batch(&[Event::new("a"), Event::new("b")])
//!     .await?;
//! # Ok(())
//! # }
//! ```

pub mod client;
pub mod connection;
pub mod deflate;
pub mod events;
pub mod frame;
pub mod protocol;
pub mod zlib_stream;

pub use connection::RpcError;
