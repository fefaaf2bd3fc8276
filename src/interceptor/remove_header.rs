//! `remove_header` interceptor (`org.apache.flume.interceptor.RemoveHeaderInterceptor`):
//! removes headers by name, by list, or by regex.
//!
//! Keys (all optional; with none set the interceptor does nothing):
//! - `withName`: one header name to remove;
//! - `fromList`: names to remove, split by `fromListSeparator` (a regex, default `\s*,\s*`;
//!   empty trailing names are dropped, as Java's `String.split` does);
//! - `matching`: a regex; headers whose whole name matches it are removed.
//!
//! An invalid `fromListSeparator` or `matching` regex is a finding naming the key, and the
//! owning component is dropped (Flume's `Pattern.compile` throws in `configure`).

use std::collections::HashSet;

use async_trait::async_trait;
use regex::Regex;

use super::{java_regex, InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The remove_header interceptor.
pub struct RemoveHeaderInterceptor {
    with_name: Option<String>,
    from_list: Option<HashSet<String>>,
    matching: Option<Regex>,
}

/// Flume's default `fromListSeparator`.
pub const DEFAULT_SEPARATOR: &str = r"\s*,\s*";

impl RemoveHeaderInterceptor {
    /// Reads `withName`, `fromList`, `fromListSeparator` (`\s*,\s*`) and `matching`.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let with_name = r.raw("withName").map(|p| p.value.clone());
        let list = r.raw("fromList").map(|p| p.value.clone());
        let separator = r.string("fromListSeparator", DEFAULT_SEPARATOR);
        let matching = r.raw("matching").map(|p| p.value.clone());
        let separator = java_regex::compile_str(r, "fromListSeparator", &separator);
        let matching = match matching {
            Some(m) => Some(java_regex::compile_str(r, "matching", &m)?),
            None => None,
        };
        let separator = separator?;
        let from_list = list.map(|l| {
            let mut names: Vec<&str> = separator.split(&l).collect();
            while names.last() == Some(&"") {
                names.pop();
            }
            names.into_iter().map(str::to_string).collect()
        });
        Some(RemoveHeaderInterceptor {
            with_name,
            from_list,
            matching: matching.map(|m| anchored(&m)),
        })
    }
}

/// `m` anchored at both ends, for Java's `Matcher.matches()` (the whole name must match).
fn anchored(m: &Regex) -> Regex {
    Regex::new(&format!(r"\A(?:{})\z", m.as_str())).unwrap_or_else(|_| m.clone())
}

#[async_trait]
impl Interceptor for RemoveHeaderInterceptor {
    fn type_name(&self) -> &'static str {
        "remove_header"
    }

    fn describe(&self) -> String {
        let mut list: Vec<&String> = self.from_list.iter().flatten().collect();
        list.sort();
        format!(
            "withName={} fromList={:?} matching={}",
            self.with_name.as_deref().unwrap_or("-"),
            list,
            self.matching.as_ref().map_or("-", |m| m.as_str())
        )
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        for e in &mut events {
            if e.headers.is_empty() {
                continue;
            }
            if let Some(name) = &self.with_name {
                e.headers.remove(name.as_str());
            }
            if self.from_list.is_some() || self.matching.is_some() {
                e.headers.retain(|k, _| {
                    let listed = self
                        .from_list
                        .as_ref()
                        .is_some_and(|l| l.iter().any(|n| n == k));
                    let matched = self.matching.as_ref().is_some_and(|m| m.is_match(k));
                    !(listed || matched)
                });
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn keys(e: &Event) -> Vec<&str> {
        e.headers.keys().map(|k| k.as_str()).collect()
    }

    #[tokio::test]
    async fn with_name_from_list_and_matching_remove_headers() {
        let mut i = build_ok(
            "remove_header",
            &[
                ("withName", "a"),
                ("fromList", "b ,c,  d"),
                ("matching", "tmp\\..*"),
            ],
        );
        let h = [
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
            ("d", "4"),
            ("tmp.x", "5"),
            ("keep", "6"),
            ("keep.tmp.x", "7"),
        ];
        let (out, _) = run(&mut i, vec![event("x", &h)]).await;
        assert_eq!(keys(&out[0]), vec!["keep", "keep.tmp.x"]);
    }

    #[tokio::test]
    async fn custom_separator_and_no_keys_do_nothing_else() {
        let mut i = build_ok(
            "org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder",
            &[("fromList", "x|y|"), ("fromListSeparator", "\\|")],
        );
        let (out, _) = run(&mut i, vec![event("b", &[("x", ""), ("y", ""), ("z", "")])]).await;
        assert_eq!(keys(&out[0]), vec!["z"]);
        let mut none = build_ok("REMOVE_HEADER", &[]);
        let (out, _) = run(&mut none, vec![event("b", &[("x", "1")])]).await;
        assert_eq!(keys(&out[0]), vec!["x"]);
    }

    #[test]
    fn invalid_regexes_name_their_keys() {
        build_err("remove_header", &[("matching", "(")], "matching");
        build_err(
            "remove_header",
            &[("fromList", "a"), ("fromListSeparator", "[")],
            "fromListSeparator",
        );
    }
}
