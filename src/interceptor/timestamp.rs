//! `timestamp` interceptor (`org.apache.flume.interceptor.TimestampInterceptor`): sets a header
//! to the current time in milliseconds since the epoch.
//!
//! Keys: `headerName` ("timestamp"), `preserveExisting` (false: an existing header is
//! overwritten). Divergence: the clock is read once per batch, so every event of a batch gets
//! the same value (Flume reads it per event; a batch is processed within microseconds).

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The timestamp interceptor.
pub struct TimestampInterceptor {
    header: String,
    preserve_existing: bool,
}

impl TimestampInterceptor {
    /// Reads `headerName` ("timestamp") and `preserveExisting` (false).
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(TimestampInterceptor {
            header: r.string("headerName", "timestamp"),
            preserve_existing: r.bool("preserveExisting", false),
        })
    }
}

/// Milliseconds since the epoch now (0 if the clock is before 1970).
pub(crate) fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

#[async_trait]
impl Interceptor for TimestampInterceptor {
    fn type_name(&self) -> &'static str {
        "timestamp"
    }

    fn describe(&self) -> String {
        format!(
            "headerName={} preserveExisting={}",
            self.header, self.preserve_existing
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        let now = now_millis().to_string();
        for e in &mut events {
            if self.preserve_existing && e.headers.contains_key(self.header.as_str()) {
                continue;
            }
            e.headers
                .insert(self.header.as_str().into(), now.as_str().into());
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn stamp(e: &Event, key: &str) -> u128 {
        e.headers
            .get(key)
            .and_then(|v| v.parse().ok())
            .expect("a numeric timestamp header")
    }

    #[tokio::test]
    async fn defaults_stamp_every_event_with_now_and_overwrite() {
        let mut i = build_ok("timestamp", &[]);
        let before = now_millis();
        let (out, _) = run(
            &mut i,
            vec![event("a", &[("timestamp", "1")]), event("b", &[])],
        )
        .await;
        let after = now_millis();
        for e in &out {
            let t = stamp(e, "timestamp");
            assert!(before <= t && t <= after, "{t} not in [{before}, {after}]");
        }
        assert_eq!(stamp(&out[0], "timestamp"), stamp(&out[1], "timestamp"));
    }

    #[tokio::test]
    async fn header_name_and_preserve_existing_are_honoured() {
        let mut i = build_ok(
            "org.apache.flume.interceptor.TimestampInterceptor$Builder",
            &[("headerName", "ts"), ("preserveExisting", "true")],
        );
        let (out, _) = run(&mut i, vec![event("a", &[("ts", "7")]), event("b", &[])]).await;
        assert_eq!(out[0].headers.get("ts").map(|v| v.as_str()), Some("7"));
        assert!(stamp(&out[1], "ts") > 1_600_000_000_000);
        assert!(!out[1].headers.contains_key("timestamp"));
    }

    #[test]
    fn alias_is_case_insensitive_and_bad_boolean_names_the_key() {
        let (i, findings) = build("TIMESTAMP", &[("preserveExisting", "yes")]);
        assert!(i.is_some());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].key, format!("{PREFIX}.preserveExisting"));
    }
}
