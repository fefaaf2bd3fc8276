//! `search_replace` interceptor (`org.apache.flume.interceptor.SearchAndReplaceInterceptor`):
//! replaces every match of a regex in the body.
//!
//! Keys: `searchPattern` (required, non-empty regex), `replaceString` (optional: absent or
//! empty means matches are deleted, as in Flume; Java syntax: `$1` and `${name}` insert a group,
//! `\$` is a literal `$`), `charset` ("UTF-8"). Values are taken as written (not trimmed), since
//! spaces are significant in patterns and replacements.
//!
//! Divergences: only UTF-8 (and its aliases `UTF8`, `utf-8`) is supported as `charset`; another
//! charset is a finding naming the key, and the owner is dropped. The body is matched as bytes,
//! so invalid UTF-8 outside the matches is kept as is (Flume turns it into U+FFFD). A
//! replacement that references a group the regex does not have is refused at configuration
//! (Flume fails each batch that has a match). Bodies without a match are not copied.

use async_trait::async_trait;
use bytes::Bytes;
use regex::bytes::{Captures, Regex, Replacer};
use std::borrow::Cow;

use super::java_regex::{self, Replacement};
use super::{InterceptCtx, Interceptor};
use crate::config::PropReader;
use crate::event::Event;

/// The search_replace interceptor.
pub struct SearchReplaceInterceptor {
    search: Regex,
    replacement: Replacement,
}

impl SearchReplaceInterceptor {
    /// Reads `searchPattern` (required), `replaceString` (""), `charset` ("UTF-8").
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let pattern = r
            .required_string("searchPattern")
            .and_then(|_| r.raw("searchPattern"));
        let replace = r
            .raw("replaceString")
            .map(|p| p.value.clone())
            .unwrap_or_default();
        let charset = r.string("charset", "UTF-8");
        if !["utf-8", "utf8"].contains(&charset.to_ascii_lowercase().as_str()) {
            java_regex::drop_for_bad_value(
                r,
                "charset",
                format!("Charset `{charset}` is not supported by Flumen; the interceptor's owner is dropped."),
                "UTF-8",
            );
        }
        let search = java_regex::compile(r, "searchPattern", &pattern?.value)?;
        let replacement = match Replacement::parse(&replace, &search) {
            Ok(rep) => rep,
            Err(why) => {
                java_regex::drop_for_bad_value(
                    r,
                    "replaceString",
                    format!("Replacement `{replace}` is not valid for `{}`: {why}.", search.as_str()),
                    "text with `$n` or `${name}` naming a group of searchPattern, `\\$` for a literal `$`",
                );
                return None;
            }
        };
        if r.is_fatal() {
            return None;
        }
        Some(SearchReplaceInterceptor {
            search,
            replacement,
        })
    }
}

struct Expand<'a>(&'a Replacement);

impl Replacer for Expand<'_> {
    fn replace_append(&mut self, caps: &Captures<'_>, dst: &mut Vec<u8>) {
        self.0.expand(caps, dst);
    }

    fn no_expansion(&mut self) -> Option<Cow<'_, [u8]>> {
        self.0.literal().map(Cow::Borrowed)
    }
}

#[async_trait]
impl Interceptor for SearchReplaceInterceptor {
    fn type_name(&self) -> &'static str {
        "search_replace"
    }

    fn describe(&self) -> String {
        format!("searchPattern={} charset=UTF-8", self.search.as_str())
    }

    async fn intercept(&mut self, mut events: Vec<Event>, _ctx: &mut InterceptCtx) -> Vec<Event> {
        for e in &mut events {
            if let Cow::Owned(new) = self.search.replace_all(&e.body, Expand(&self.replacement)) {
                e.body = Bytes::from(new);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    async fn apply(entries: &[(&str, &str)], bodies: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut i = build_ok("search_replace", entries);
        let events = bodies.iter().map(|b| Event::new(b.to_vec())).collect();
        let (out, _) = run(&mut i, events).await;
        out.into_iter().map(|e| e.body.to_vec()).collect()
    }

    #[tokio::test]
    async fn replaces_every_match_with_java_group_syntax() {
        let out = apply(
            &[
                ("searchPattern", "(\\d+)-(\\d+)"),
                ("replaceString", "$2/$1 costs \\$5"),
            ],
            &[b"1-2 and 30-40", b"none"],
        )
        .await;
        assert_eq!(
            out,
            vec![
                b"2/1 costs $5 and 40/30 costs $5".to_vec(),
                b"none".to_vec()
            ]
        );
    }

    #[tokio::test]
    async fn missing_or_empty_replacement_deletes_and_keeps_invalid_utf8() {
        let out = apply(&[("searchPattern", "^\\w+ ")], &[b"secret rest", b"x \xff"]).await;
        assert_eq!(out, vec![b"rest".to_vec(), b"\xff".to_vec()]);
        let out = apply(
            &[
                ("searchPattern", "a"),
                ("replaceString", ""),
                ("charset", "utf8"),
            ],
            &[b"banana"],
        )
        .await;
        assert_eq!(out, vec![b"bnn".to_vec()]);
    }

    #[test]
    fn bad_config_names_the_key() {
        build_err("search_replace", &[], "searchPattern");
        build_err("search_replace", &[("searchPattern", "")], "searchPattern");
        build_err(
            "search_replace",
            &[("searchPattern", "(?<=x)y")],
            "searchPattern",
        );
        build_err(
            "search_replace",
            &[("searchPattern", "(a)"), ("replaceString", "$2")],
            "replaceString",
        );
        build_err(
            "org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder",
            &[("searchPattern", "a"), ("charset", "ISO-8859-1")],
            "charset",
        );
    }
}
