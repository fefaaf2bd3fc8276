//! Wire formats shared by sources and sinks, so that neither depends on the other: Flume's
//! `JSONHandler` event JSON (the http sink writes it, the http source reads it), and Avro RPC
//! (the avro sink and source).

#[cfg(feature = "avro-rpc")]
pub mod avro_rpc;
pub mod flume_json;
