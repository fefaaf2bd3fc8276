//! Helpers for interceptor unit tests.

use std::path::Path;
use std::sync::Arc;

use super::{BadEvent, InterceptCtx, Interceptor};
use crate::config::{Origin, Prop, Props};
use crate::event::Event;

/// The component prefix `props` gives every key.
pub const PREFIX: &str = "a1.sources.r1.interceptors.z";

/// Props whose full keys are `PREFIX.<key>`, one line each in `test.properties`.
pub fn props(entries: &[(&str, &str)]) -> Props {
    let file: Arc<Path> = Arc::from(Path::new("test.properties"));
    let mut p = Props::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        p.insert(
            *k,
            Prop {
                value: v.to_string(),
                full_key: format!("{PREFIX}.{k}"),
                origin: Origin {
                    file: file.clone(),
                    line: i as u32 + 1,
                },
            },
        );
    }
    p
}

/// Runs one batch through `i`; returns what went on and what was reported bad.
pub async fn run(i: &mut dyn Interceptor, events: Vec<Event>) -> (Vec<Event>, Vec<BadEvent>) {
    let mut ctx = InterceptCtx {
        stage: "z".to_string(),
        ..InterceptCtx::default()
    };
    let out = i.intercept(events, &mut ctx).await;
    (out, ctx.bad)
}
