//! Wire formats shared by sources and sinks, so that neither depends on the other: Flume's
//! `JSONHandler` event JSON (the http sink writes it, the http source reads it). Avro RPC has
//! its own crate, `flumen-avro-rpc`, shared with applications.

pub mod flume_json;
