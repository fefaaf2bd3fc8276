//! Helpers for interceptor unit tests.

use super::{BadEvent, InterceptCtx, Interceptor};
use crate::config::Props;
use crate::event::Event;

/// The component prefix `props` gives every key.
pub const PREFIX: &str = "a1.sources.r1.interceptors.z";

/// Props whose full keys are `PREFIX.<key>`, one line each in `test.properties`.
pub fn props(entries: &[(&str, &str)]) -> Props {
    Props::from_pairs("test.properties", PREFIX, entries)
}

/// Runs one batch through `i`; returns what went on and what was reported bad.
pub async fn run(i: &mut dyn Interceptor, events: Vec<Event>) -> (Vec<Event>, Vec<BadEvent>) {
    let mut ctx = InterceptCtx::for_stage("z");
    let out = i.intercept(events, &mut ctx).await;
    (out, ctx.into_bad())
}
