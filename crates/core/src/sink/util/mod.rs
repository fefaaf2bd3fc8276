//! What sinks share (Vector's `sinks/util` is the model): [`batch`] cuts a take into requests
//! bounded by count and bytes, [`retry`] spaces retries with a jittered backoff, and
//! [`partition`] groups a batch by a key (a path template's rendering) without reordering
//! the events of one key.
//!
//! Concurrency is not here but in the slot: a sink that acknowledges later
//! ([`super::Delivery::Later`]) gets up to [`super::Sink::acks_in_flight`] takes in flight.
//! Retries, too, go through the transaction: a failed delivery or ack rolls the take back and
//! the runner retries after [`retry::Backoff`], so a retried batch waits in the channel (which
//! is bounded, and durable when the channel is) instead of in a sink's memory.

pub mod batch;
pub mod partition;
pub mod retry;
