//! `regex_filter` interceptor (`org.apache.flume.interceptor.RegexFilteringInterceptor`):
//! keeps (or, with `excludeEvents`, removes) the events whose body contains a match.
//!
//! Keys: `regex` (".*": everything passes), `excludeEvents` (false). A match is anywhere in the
//! body (Java's `Matcher.find()`). Removed events are counted as filtered, never as lost. The
//! body is matched as bytes with no copy or allocation per event (see `java_regex` for how
//! that differs from Java on invalid UTF-8). With `.*` (the default) or an empty pattern every
//! body matches, so the batch is passed on without looking at it.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::{java_regex, InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// Flume's default `regex`.
pub const DEFAULT_REGEX: &str = ".*";

/// The regex_filter interceptor.
pub struct RegexFilterInterceptor {
    regex: Regex,
    exclude: bool,
    matches_all: bool,
}

impl RegexFilterInterceptor {
    /// Reads `regex` (".*") and `excludeEvents` (false).
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let pattern = r
            .raw("regex")
            .map(|p| p.value.clone())
            .unwrap_or_else(|| DEFAULT_REGEX.to_string());
        let exclude = r.bool("excludeEvents", false);
        let regex = java_regex::compile(r, "regex", &pattern)?;
        // Flume's default (and the empty pattern) match every body at position 0.
        let matches_all = pattern.is_empty() || pattern == DEFAULT_REGEX;
        Some(RegexFilterInterceptor {
            regex,
            exclude,
            matches_all,
        })
    }
}

#[async_trait]
impl Interceptor for RegexFilterInterceptor {
    fn type_name(&self) -> &'static str {
        "regex_filter"
    }

    fn describe(&self) -> String {
        format!(
            "regex={} excludeEvents={}",
            self.regex.as_str(),
            self.exclude
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        if self.matches_all {
            if self.exclude {
                ctx.filtered(events.len() as u64);
                events.clear();
            }
            return events;
        }
        let before = events.len();
        let (regex, exclude) = (&self.regex, self.exclude);
        events.retain(|e| regex.is_match(&e.body) != exclude);
        ctx.filtered((before - events.len()) as u64);
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn bodies(events: &[Event]) -> Vec<&[u8]> {
        events.iter().map(|e| e.body.as_ref()).collect()
    }

    fn batch() -> Vec<Event> {
        ["INFO start", "ERROR disk", "debug ERROR later", "x"]
            .iter()
            .map(|b| event(b, &[]))
            .collect()
    }

    #[tokio::test]
    async fn includes_events_with_a_match_anywhere_and_counts_the_rest() {
        let mut i = build_ok("regex_filter", &[("regex", "ERROR")]);
        let (out, ctx) = run(&mut i, batch()).await;
        assert_eq!(bodies(&out), vec![&b"ERROR disk"[..], b"debug ERROR later"]);
        assert_eq!(filtered(&ctx), 2);
    }

    #[tokio::test]
    async fn exclude_events_removes_matches() {
        let mut i = build_ok(
            "org.apache.flume.interceptor.RegexFilteringInterceptor$Builder",
            &[("regex", "^ERROR"), ("excludeEvents", "true")],
        );
        let (out, ctx) = run(&mut i, batch()).await;
        assert_eq!(
            bodies(&out),
            vec![&b"INFO start"[..], b"debug ERROR later", b"x"]
        );
        assert_eq!(filtered(&ctx), 1);
    }

    #[tokio::test]
    async fn default_passes_everything_and_excluding_it_removes_everything() {
        let mut i = build_ok("REGEX_FILTER", &[]);
        let (out, ctx) = run(&mut i, batch()).await;
        assert_eq!(out.len(), 4);
        assert_eq!(filtered(&ctx), 0);
        let mut i = build_ok("regex_filter", &[("excludeEvents", "true")]);
        let (out, ctx) = run(&mut i, batch()).await;
        assert!(out.is_empty());
        assert_eq!(filtered(&ctx), 4);
    }

    #[tokio::test]
    async fn patterns_matching_empty_but_anchored_at_the_end_are_really_matched() {
        let mut i = build_ok("regex_filter", &[("regex", "^$")]);
        let (out, ctx) = run(&mut i, vec![event("", &[]), event("a", &[])]).await;
        assert_eq!(bodies(&out), vec![&b""[..]]);
        assert_eq!(filtered(&ctx), 1);
        let mut i = build_ok("regex_filter", &[("regex", "a*")]);
        let (out, _) = run(&mut i, vec![event("", &[]), event("b", &[])]).await;
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn invalid_regex_names_the_key() {
        let f = build_err("regex_filter", &[("regex", "([a-z]")], "regex");
        assert_eq!(f.kind, crate::config::FindingKind::BadValue);
        assert_eq!(f.origin.map(|o| o.line), Some(2));
    }
}
