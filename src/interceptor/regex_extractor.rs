//! `regex_extractor` interceptor (`org.apache.flume.interceptor.RegexExtractorInterceptor`):
//! copies the groups of the first regex match in the body into headers.
//!
//! Keys: `regex` (required), `serializers` (required: space-separated serializer names),
//! `serializers.<s>.name` (required: the header), `serializers.<s>.type` (`DEFAULT`, any case,
//! or `org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer`: the group
//! text; `org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer`: the group
//! parsed with the Joda-Time pattern `serializers.<s>.pattern`, written as epoch milliseconds; see
//! `joda` for the supported pattern letters).
//!
//! As in Flume: the first match anywhere in the body (`find()`) is used; group *k* goes to the
//! *k*-th serializer; groups without a serializer and serializers without a group are ignored;
//! an event with no match is unchanged.
//!
//! Divergences: a group that did not take part in the match sets no header (Flume stores a
//! null value, which later breaks serialization). A value the millis serializer cannot parse
//! makes the event *bad* (dead-lettered, or the batch fails when there is no `errorChannel`);
//! Flume throws and fails the whole batch. Flume compares `type` with `DEFAULT` case-sensitively
//! (and drops the source on `default`); Flumen accepts any case. Custom serializer classes are
//! not supported: a finding names the key and the owner is dropped.

use async_trait::async_trait;
use regex::bytes::{CaptureLocations, Regex};

use super::joda::JodaPattern;
use super::{java_regex, InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// Flume's pass-through serializer class.
pub const PASS_THROUGH_CLASS: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorPassThroughSerializer";
/// Flume's millis serializer class.
pub const MILLIS_CLASS: &str =
    "org.apache.flume.interceptor.RegexExtractorInterceptorMillisSerializer";

enum Serializer {
    PassThrough,
    Millis(JodaPattern, String),
}

struct Named {
    header: String,
    serializer: Serializer,
}

/// The regex_extractor interceptor.
pub struct RegexExtractorInterceptor {
    regex: Regex,
    serializers: Vec<Named>,
    locations: CaptureLocations,
    values: Vec<(usize, String)>,
}

impl RegexExtractorInterceptor {
    /// Reads `regex`, `serializers` and `serializers.<s>.{name,type,pattern}`.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let pattern = r.required_string("regex").and_then(|_| r.raw("regex"));
        let regex = pattern.and_then(|p| java_regex::compile(r, "regex", &p.value));
        let names = r.required_string("serializers").unwrap_or_default();
        let mut serializers = Vec::new();
        for s in names.split_whitespace() {
            let base = format!("serializers.{s}");
            let header = r.required_string(&format!("{base}.name"));
            let type_key = format!("{base}.type");
            let type_ = r.string(&type_key, "DEFAULT");
            let serializer = if type_.eq_ignore_ascii_case("default") || type_ == PASS_THROUGH_CLASS
            {
                Some(Serializer::PassThrough)
            } else if type_ == MILLIS_CLASS {
                let key = format!("{base}.pattern");
                r.required_string(&key)
                    .and_then(|p| match JodaPattern::new(&p) {
                        Ok(joda) => Some(Serializer::Millis(joda, p)),
                        Err(why) => {
                            java_regex::drop_for_bad_value(
                                r,
                                &key,
                                format!("Date pattern `{p}` is not supported: {why}."),
                                "a Joda-Time pattern (y M d H k h K a m s S E Z, quoted text)",
                            );
                            None
                        }
                    })
            } else {
                java_regex::drop_for_bad_value(
                    r,
                    &type_key,
                    format!("Serializer type `{type_}` is not implemented by Flumen; the interceptor's owner is dropped."),
                    &format!("DEFAULT, {PASS_THROUGH_CLASS} or {MILLIS_CLASS}"),
                );
                None
            };
            if let (Some(header), Some(serializer)) = (header, serializer) {
                serializers.push(Named { header, serializer });
            }
        }
        let regex = regex?;
        if r.is_fatal() || serializers.is_empty() {
            return None;
        }
        Some(RegexExtractorInterceptor {
            locations: regex.capture_locations(),
            regex,
            serializers,
            values: Vec::new(),
        })
    }

    /// Fills `self.values` for `body`; `Err` says why a value could not be serialized.
    fn extract(&mut self, body: &[u8]) -> Result<(), String> {
        self.values.clear();
        if self
            .regex
            .captures_read(&mut self.locations, body)
            .is_none()
        {
            return Ok(());
        }
        let groups = self.locations.len() - 1;
        for (k, named) in self.serializers.iter().enumerate().take(groups) {
            let Some((start, end)) = self.locations.get(k + 1) else {
                continue;
            };
            let text = String::from_utf8_lossy(&body[start..end]);
            let value = match &named.serializer {
                Serializer::PassThrough => text.into_owned(),
                Serializer::Millis(joda, pattern) => joda
                    .parse_millis(&text)
                    .map_err(|why| {
                        format!(
                            "regex_extractor: `{text}` does not match date pattern `{pattern}` for header `{}`: {why}",
                            named.header
                        )
                    })?
                    .to_string(),
            };
            self.values.push((k, value));
        }
        Ok(())
    }
}

#[async_trait]
impl Interceptor for RegexExtractorInterceptor {
    fn type_name(&self) -> &'static str {
        "regex_extractor"
    }

    fn describe(&self) -> String {
        let headers: Vec<&str> = self.serializers.iter().map(|s| s.header.as_str()).collect();
        format!(
            "regex={} headers={}",
            self.regex.as_str(),
            headers.join(",")
        )
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        for mut e in events {
            match self.extract(&e.body) {
                Ok(()) => {
                    for (k, value) in self.values.drain(..) {
                        e.headers
                            .insert(self.serializers[k].header.as_str().into(), value.into());
                    }
                    out.push(e);
                }
                Err(reason) => ctx.bad(e, reason),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn header<'a>(e: &'a Event, k: &str) -> Option<&'a str> {
        e.headers.get(k).map(|v| v.as_str())
    }

    #[tokio::test]
    async fn groups_go_to_serializers_in_order_and_extras_are_ignored() {
        let mut i = build_ok(
            "regex_extractor",
            &[
                ("regex", "(\\w+)=(\\d+) (\\w+)"),
                ("serializers", "s1 s2"),
                ("serializers.s1.name", "key"),
                ("serializers.s2.name", "value"),
                ("serializers.s2.type", PASS_THROUGH_CLASS),
            ],
        );
        let (out, _) = run(
            &mut i,
            vec![
                event("x cpu=42 high", &[("key", "old")]),
                event("no match", &[("key", "kept")]),
            ],
        )
        .await;
        assert_eq!(header(&out[0], "key"), Some("cpu"));
        assert_eq!(header(&out[0], "value"), Some("42"));
        assert_eq!(out[0].headers.len(), 2);
        assert_eq!(header(&out[1], "key"), Some("kept"));
        assert_eq!(out[1].headers.len(), 1);
    }

    #[tokio::test]
    async fn serializers_beyond_the_groups_and_absent_groups_set_nothing() {
        let mut i = build_ok(
            "org.apache.flume.interceptor.RegexExtractorInterceptor$Builder",
            &[
                ("regex", "a(b)?"),
                ("serializers", "one two"),
                ("serializers.one.name", "b"),
                ("serializers.one.type", "default"),
                ("serializers.two.name", "never"),
            ],
        );
        let (out, _) = run(&mut i, vec![event("ab", &[]), event("a", &[])]).await;
        assert_eq!(header(&out[0], "b"), Some("b"));
        assert!(out[1].headers.is_empty());
        assert!(out.iter().all(|e| !e.headers.contains_key("never")));
    }

    #[tokio::test]
    async fn millis_serializer_parses_joda_patterns_and_bad_dates_are_bad_events() {
        let mut i = build_ok(
            "regex_extractor",
            &[
                ("regex", "^(\\S+ \\S+ \\S+)"),
                ("serializers", "ts"),
                ("serializers.ts.name", "timestamp"),
                ("serializers.ts.type", MILLIS_CLASS),
                ("serializers.ts.pattern", "yyyy-MM-dd HH:mm:ss Z"),
            ],
        );
        let (out, ctx) = run(
            &mut i,
            vec![
                event("2012-10-17 14:34:44 +0000 msg", &[]),
                event("yesterday at noon", &[]),
            ],
        )
        .await;
        assert_eq!(out.len(), 1);
        assert_eq!(header(&out[0], "timestamp"), Some("1350484484000"));
        let reasons = bad_reasons(&ctx);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("yesterday at noon"), "{reasons:?}");
    }

    #[test]
    fn bad_config_names_the_key() {
        build_err(
            "regex_extractor",
            &[("serializers", "s1"), ("serializers.s1.name", "h")],
            "regex",
        );
        build_err(
            "regex_extractor",
            &[
                ("regex", "("),
                ("serializers", "s1"),
                ("serializers.s1.name", "h"),
            ],
            "regex",
        );
        build_err("regex_extractor", &[("regex", "(a)")], "serializers");
        build_err(
            "regex_extractor",
            &[("regex", "(a)"), ("serializers", "s1")],
            "serializers.s1.name",
        );
        build_err(
            "regex_extractor",
            &[
                ("regex", "(a)"),
                ("serializers", "s1"),
                ("serializers.s1.name", "h"),
                ("serializers.s1.type", "com.example.Custom"),
            ],
            "serializers.s1.type",
        );
        build_err(
            "regex_extractor",
            &[
                ("regex", "(a)"),
                ("serializers", "s1"),
                ("serializers.s1.name", "h"),
                ("serializers.s1.type", MILLIS_CLASS),
            ],
            "serializers.s1.pattern",
        );
        build_err(
            "regex_extractor",
            &[
                ("regex", "(a)"),
                ("serializers", "s1"),
                ("serializers.s1.name", "h"),
                ("serializers.s1.type", MILLIS_CLASS),
                ("serializers.s1.pattern", "yyyy-DDD"),
            ],
            "serializers.s1.pattern",
        );
    }

    #[test]
    fn keys_of_unlisted_serializers_are_reported_as_ignored() {
        let (i, findings) = build(
            "regex_extractor",
            &[
                ("regex", "(a)"),
                ("serializers", "s1"),
                ("serializers.s1.name", "h"),
                ("serializers.s2.name", "g"),
            ],
        );
        assert!(i.is_some());
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].key, format!("{PREFIX}.serializers.s2.name"));
    }
}
