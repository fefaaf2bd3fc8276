//! `static` interceptor (`org.apache.flume.interceptor.StaticInterceptor`): sets one fixed
//! header on every event.

use async_trait::async_trait;

use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The static interceptor.
pub struct StaticInterceptor {
    key: String,
    value: String,
    preserve_existing: bool,
}

impl StaticInterceptor {
    /// Reads `key` ("key"), `value` ("value"), `preserveExisting` (true), Flume's defaults.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(StaticInterceptor {
            key: r.string("key", "key"),
            value: r.string("value", "value"),
            preserve_existing: r.bool("preserveExisting", true),
        })
    }
}

#[async_trait]
impl Interceptor for StaticInterceptor {
    fn type_name(&self) -> &'static str {
        "static"
    }

    fn describe(&self) -> String {
        format!(
            "key={} value={} preserveExisting={}",
            self.key, self.value, self.preserve_existing
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        for e in &mut events {
            if self.preserve_existing && e.headers.contains_key(self.key.as_str()) {
                continue;
            }
            e.headers
                .insert(self.key.as_str().into(), self.value.as_str().into());
        }
        events
    }
}
