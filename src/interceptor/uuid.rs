//! `uuid` interceptor (Flume's `org.apache.flume.sink.solr.morphline.UUIDInterceptor`, which
//! has no alias in Flume; Flumen also accepts `uuid`): sets a header to a random (version 4)
//! UUID, for deduplication downstream.
//!
//! Keys: `headerName` ("id"), `preserveExisting` (true: an event that already has the header
//! keeps it), `prefix` ("": prepended to the UUID).

use async_trait::async_trait;

use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The UUID interceptor.
pub struct UuidInterceptor {
    header: String,
    preserve_existing: bool,
    prefix: String,
}

impl UuidInterceptor {
    /// Reads `headerName` ("id"), `preserveExisting` (true), `prefix` ("").
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(UuidInterceptor {
            header: r.string("headerName", "id"),
            preserve_existing: r.bool("preserveExisting", true),
            prefix: r.raw("prefix").map(|p| p.value.clone()).unwrap_or_default(),
        })
    }
}

#[async_trait]
impl Interceptor for UuidInterceptor {
    fn type_name(&self) -> &'static str {
        "uuid"
    }

    fn describe(&self) -> String {
        format!(
            "headerName={} preserveExisting={} prefix={}",
            self.header, self.preserve_existing, self.prefix
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        let mut buf = ::uuid::Uuid::encode_buffer();
        for e in &mut events {
            if self.preserve_existing && e.headers.contains_key(self.header.as_str()) {
                continue;
            }
            let id = ::uuid::Uuid::new_v4();
            let mut value = String::with_capacity(self.prefix.len() + 36);
            value.push_str(&self.prefix);
            value.push_str(id.hyphenated().encode_lower(&mut buf));
            e.headers.insert(self.header.as_str().into(), value.into());
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[tokio::test]
    async fn defaults_set_distinct_v4_ids_and_preserve_existing() {
        let mut i = build_ok("uuid", &[]);
        let (out, _) = run(
            &mut i,
            vec![
                event("a", &[("id", "mine")]),
                event("b", &[]),
                event("c", &[]),
            ],
        )
        .await;
        assert_eq!(out[0].headers.get("id").map(|v| v.as_str()), Some("mine"));
        let ids: Vec<::uuid::Uuid> = out[1..]
            .iter()
            .map(|e| {
                e.headers
                    .get("id")
                    .and_then(|v| v.parse().ok())
                    .expect("a uuid")
            })
            .collect();
        assert_ne!(ids[0], ids[1]);
        assert!(ids.iter().all(|u| u.get_version_num() == 4));
    }

    #[tokio::test]
    async fn flume_class_with_header_prefix_and_overwrite() {
        let mut i = build_ok(
            "org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder",
            &[
                ("headerName", "eventId"),
                ("prefix", "host1-"),
                ("preserveExisting", "false"),
            ],
        );
        let (out, _) = run(&mut i, vec![event("a", &[("eventId", "old")])]).await;
        let v = out[0].headers.get("eventId").expect("header");
        let rest = v.strip_prefix("host1-").expect("prefixed");
        assert!(rest.parse::<::uuid::Uuid>().is_ok(), "{v}");
    }

    #[test]
    fn bad_boolean_names_the_key() {
        let (_, findings) = build("UUID", &[("preserveExisting", "sometimes")]);
        assert!(findings
            .iter()
            .any(|f| f.key == format!("{PREFIX}.preserveExisting")));
    }
}
