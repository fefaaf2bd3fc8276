//! The properties of one component and a typed reader over them.
//!
//! Each component's config is read through a [`PropReader`]: every getter names its Flume key
//! and default in one place, records the key as used, and turns a bad value into a
//! [`Finding`] (the default is then kept, as Flume does for most keys, but never silently).
//! Keys nobody read are reported by [`PropReader::finish`] with a "did you mean".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use super::finding::{did_you_mean, Finding, FindingKind, Origin};

/// One configured value with the place it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prop {
    /// The value after escapes and substitution.
    pub value: String,
    /// The full key as written, e.g. `a1.sources.r1.port`.
    pub full_key: String,
    /// Where it was written.
    pub origin: Origin,
}

/// The properties of one component, keyed relative to the component
/// (`a1.sources.r1.port` is stored as `port`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Props {
    map: BTreeMap<String, Prop>,
}

impl Props {
    /// An empty set.
    pub fn new() -> Self {
        Props::default()
    }

    /// Adds or replaces one relative key.
    pub fn insert(&mut self, key: impl Into<String>, prop: Prop) {
        self.map.insert(key.into(), prop);
    }

    /// The value of a relative key.
    pub fn get(&self, key: &str) -> Option<&Prop> {
        self.map.get(key)
    }

    /// Removes and returns a relative key.
    pub fn remove(&mut self, key: &str) -> Option<Prop> {
        self.map.remove(key)
    }

    /// All entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Prop)> {
        self.map.iter()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Props from `(key, value)` pairs as if written one per line of `file`, with full keys
    /// `prefix.key` (tests and generated configs).
    pub fn from_pairs(file: &str, prefix: &str, entries: &[(&str, &str)]) -> Props {
        let file: Arc<Path> = Arc::from(Path::new(file));
        let mut p = Props::new();
        for (i, (k, v)) in entries.iter().enumerate() {
            p.insert(
                *k,
                Prop {
                    value: v.to_string(),
                    full_key: format!("{prefix}.{k}"),
                    origin: Origin {
                        file: file.clone(),
                        line: i as u32 + 1,
                    },
                },
            );
        }
        p
    }

    /// The entries under `prefix.` with the prefix removed (Flume's `getSubProperties`).
    pub fn sub(&self, prefix: &str) -> Props {
        let dotted = format!("{prefix}.");
        let map = self
            .map
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&dotted)
                    .map(|rest| (rest.to_string(), v.clone()))
            })
            .collect();
        Props { map }
    }
}

/// Reads typed values from [`Props`], collecting findings and the keys it consumed.
pub struct PropReader<'a> {
    props: &'a Props,
    component: &'a str,
    used: BTreeSet<String>,
    used_prefixes: Vec<String>,
    findings: Vec<Finding>,
    fatal: bool,
    unsupported: Option<String>,
    anchor: Option<Origin>,
}

impl<'a> PropReader<'a> {
    /// A reader for the component named `component` (used in messages).
    pub fn new(props: &'a Props, component: &'a str) -> Self {
        PropReader {
            props,
            component,
            used: BTreeSet::new(),
            used_prefixes: Vec::new(),
            findings: Vec::new(),
            fatal: false,
            unsupported: None,
            anchor: None,
        }
    }

    /// Places findings about keys that are not written (a missing required key) at `origin`,
    /// the component's `type` line: every finding names a line.
    pub fn anchored(mut self, origin: Origin) -> Self {
        self.anchor = Some(origin);
        self
    }

    /// Where a finding about an absent key of this component points: its `type` line, when
    /// known.
    pub fn anchor(&self) -> Option<Origin> {
        self.anchor.clone()
    }

    /// Marks a key as known without reading it (e.g. handled elsewhere).
    pub fn mark_used(&mut self, key: &str) {
        self.used.insert(key.to_string());
    }

    /// Marks every key under `prefix.` as known (pass-through groups such as `kafka.producer`).
    pub fn mark_prefix_used(&mut self, prefix: &str) {
        self.used_prefixes.push(format!("{prefix}."));
    }

    /// The entries under `prefix.`, as (rest of the key, entry), without marking them used.
    pub fn sub_entries(&self, prefix: &str) -> Vec<(String, Prop)> {
        self.props
            .sub(prefix)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The raw entry for a key, marking it used.
    pub fn raw(&mut self, key: &str) -> Option<&'a Prop> {
        self.used.insert(key.to_string());
        self.props.get(key)
    }

    /// A string value, or `None` when absent.
    pub fn opt_string(&mut self, key: &str) -> Option<String> {
        self.raw(key).map(|p| p.value.trim().to_string())
    }

    /// A string value with a default.
    pub fn string(&mut self, key: &str, default: &str) -> String {
        self.opt_string(key).unwrap_or_else(|| default.to_string())
    }

    /// A required string: absent or empty records a finding and returns `None`.
    pub fn required_string(&mut self, key: &str) -> Option<String> {
        match self.opt_string(key) {
            Some(v) if !v.is_empty() => Some(v),
            _ => {
                let origin = self.props.get(key).map(|p| p.origin.clone());
                let full_key = self.full_key(key);
                self.drop_component(Finding::new(
                    FindingKind::DroppedComponent,
                    origin,
                    full_key,
                    format!(
                        "Required property `{key}` of `{}` is missing or empty; Flume fails to configure it and drops it.",
                        self.component
                    ),
                ));
                None
            }
        }
    }

    /// A boolean as Flume reads it (`Boolean.parseBoolean`: "true" in any case is true,
    /// anything else false). A value that is neither true nor false is reported.
    pub fn bool(&mut self, key: &str, default: bool) -> bool {
        let Some(prop) = self.raw(key) else {
            return default;
        };
        let v = prop.value.trim();
        if v.eq_ignore_ascii_case("true") {
            true
        } else {
            if !v.eq_ignore_ascii_case("false") {
                self.bad_value(prop, "`true` or `false`", "false");
            }
            false
        }
    }

    /// A number in `[min, max]`. A value that is not a number, or out of range, is reported and
    /// returns `None`: Flume's `configure` throws on it and the component is dropped.
    pub fn number<T>(&mut self, key: &str, default: T, min: T, max: T) -> Option<T>
    where
        T: FromStr + PartialOrd + Copy + std::fmt::Display,
    {
        let Some(prop) = self.raw(key) else {
            return Some(default);
        };
        match prop.value.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => Some(v),
            _ => {
                let expected = format!("a whole number from {min} to {max}");
                self.drop_component(
                    Finding::new(
                        FindingKind::BadValue,
                        Some(prop.origin.clone()),
                        prop.full_key.clone(),
                        format!(
                            "Value `{}` is not valid; Flume drops `{}` when configuring it.",
                            prop.value.trim(),
                            self.component
                        ),
                    )
                    .expected(expected),
                );
                None
            }
        }
    }

    /// A number of `unit`s (Flume writes seconds or milliseconds as bare numbers).
    pub fn duration(&mut self, key: &str, default: Duration, unit: Duration) -> Option<Duration> {
        let unit_ms = unit.as_millis().max(1) as u64;
        let default_units = default.as_millis() as u64 / unit_ms;
        let units = self.number(key, default_units, 0, u64::MAX / 1_000_000 / unit_ms.max(1))?;
        Some(Duration::from_millis(units.saturating_mul(unit_ms)))
    }

    /// The component's full key (`a1.sources.r1`), for messages.
    pub fn component(&self) -> &str {
        self.component
    }

    /// The properties being read (without marking any used).
    pub fn props(&self) -> &'a Props {
        self.props
    }

    /// The full key (`a1.sources.r1.port`) for a relative key, for messages.
    pub fn full_key(&self, key: &str) -> String {
        match self.props.get(key) {
            Some(p) => p.full_key.clone(),
            None => format!("{}.{key}", self.component),
        }
    }

    /// Records a finding that makes Flume drop this component.
    pub fn drop_component(&mut self, finding: Finding) {
        self.fatal = true;
        self.findings.push(finding);
    }

    /// Whether a finding so far makes Flume drop this component.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// Records that the component needs `what` (an interceptor class, TLS, encryption...),
    /// which Flume has and Flumen does not implement: Flume would run the component, Flumen
    /// cannot. The first such need is kept for messages.
    pub fn unsupported(&mut self, what: impl Into<String>, finding: Finding) {
        self.unsupported.get_or_insert_with(|| what.into());
        self.findings.push(finding);
    }

    /// What Flumen lacks to run this component, if anything.
    pub fn lacking(&self) -> Option<&str> {
        self.unsupported.as_deref()
    }

    /// Ends reading a component whose keys Flumen cannot judge (its type is a plugin Flumen
    /// lacks): returns the findings without reporting unread keys.
    pub fn finish_unjudged(self) -> Vec<Finding> {
        let mut findings = self.findings;
        for f in findings.iter_mut().filter(|f| f.origin.is_none()) {
            f.origin = self.anchor.clone();
        }
        findings
    }

    /// One of a fixed set of words (case-insensitive); the canonical spelling is returned.
    pub fn choice(
        &mut self,
        key: &str,
        default: &'static str,
        allowed: &[&'static str],
    ) -> &'static str {
        let Some(prop) = self.raw(key) else {
            return default;
        };
        let v = prop.value.trim();
        if let Some(found) = allowed.iter().find(|a| a.eq_ignore_ascii_case(v)) {
            return found;
        }
        let expected = format!("one of {}", allowed.join(", "));
        let suggestion = did_you_mean(v, allowed.iter().copied());
        self.findings.push(
            Finding::new(
                FindingKind::BadValue,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                format!("Value `{v}` is not valid; using `{default}`."),
            )
            .expected(expected)
            .suggest(suggestion),
        );
        default
    }

    /// Records a bad value for `prop`; `fallback` says what is used instead.
    pub fn bad_value(&mut self, prop: &Prop, expected: &str, fallback: &str) {
        self.findings.push(
            Finding::new(
                FindingKind::BadValue,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                format!(
                    "Value `{}` is not valid; using `{fallback}`.",
                    prop.value.trim()
                ),
            )
            .expected(expected.to_string()),
        );
    }

    /// Records a finding about this component.
    pub fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    /// Ends reading: reports every key that no getter asked for, and returns all findings.
    pub fn finish(self) -> Vec<Finding> {
        let PropReader {
            props,
            used,
            used_prefixes,
            mut findings,
            component,
            anchor,
            ..
        } = self;
        for f in findings.iter_mut().filter(|f| f.origin.is_none()) {
            f.origin = anchor.clone();
        }
        let known: Vec<&str> = used.iter().map(String::as_str).collect();
        for (key, prop) in props.iter() {
            if used.contains(key) || used_prefixes.iter().any(|p| key.starts_with(p.as_str())) {
                continue;
            }
            let suggestion =
                known_tail(key, &known).or_else(|| did_you_mean(key, known.iter().copied()));
            findings.push(
                Finding::new(
                    FindingKind::IgnoredKey,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    format!("`{key}` is not a property of `{component}`; it is ignored."),
                )
                .suggest(suggestion),
            );
        }
        findings
    }
}

/// A known key that `key` ends with after a dot: `deserializer.decodeErrorPolicy` written for
/// the source's own `decodeErrorPolicy`.
fn known_tail(key: &str, known: &[&str]) -> Option<String> {
    key.match_indices('.')
        .map(|(i, _)| &key[i + 1..])
        .find(|tail| known.contains(tail))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(entries: &[(&str, &str)]) -> Props {
        Props::from_pairs("test.properties", "a1.channels.c1", entries)
    }

    #[test]
    fn bad_number_is_reported_and_default_kept() {
        let p = props(&[("capacity", "lots"), ("transactionCapcity", "10")]);
        let mut r = PropReader::new(&p, "c1");
        assert_eq!(r.number("capacity", 100u64, 1, u64::MAX), None);
        assert!(r.is_fatal());
        assert_eq!(
            r.number("transactionCapacity", 100u64, 1, u64::MAX),
            Some(100)
        );
        let findings = r.finish();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0].kind, FindingKind::BadValue);
        assert_eq!(findings[0].origin.as_ref().map(|o| o.line), Some(1));
        assert_eq!(findings[1].kind, FindingKind::IgnoredKey);
        assert_eq!(
            findings[1].suggestion.as_deref(),
            Some("transactionCapacity")
        );
    }

    #[test]
    fn a_prefixed_known_key_suggests_the_known_key_never_itself() {
        let p = props(&[("deserializer.decodeErrorPolicy", "IGNORE")]);
        let mut r = PropReader::new(&p, "r1");
        r.opt_string("decodeErrorPolicy");
        r.opt_string("deserializer.maxLineLength");
        let f = r.finish();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].suggestion.as_deref(), Some("decodeErrorPolicy"));
    }

    #[test]
    fn a_missing_required_key_points_at_the_anchor() {
        let p = props(&[("x", "1")]);
        let anchor = Origin {
            file: Arc::from(Path::new("test.properties")),
            line: 7,
        };
        let mut r = PropReader::new(&p, "a1.sources.r1").anchored(anchor);
        r.mark_used("x");
        assert_eq!(r.required_string("bind"), None);
        let f = r.finish();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].origin.as_ref().map(|o| o.line), Some(7));
        assert_eq!(f[0].key, "a1.sources.r1.bind");
    }

    #[test]
    fn choice_is_case_insensitive_and_suggests() {
        let p = props(&[("a", "ROUND_ROBIN"), ("b", "rnadom")]);
        let mut r = PropReader::new(&p, "g1");
        assert_eq!(
            r.choice("a", "random", &["round_robin", "random"]),
            "round_robin"
        );
        assert_eq!(
            r.choice("b", "round_robin", &["round_robin", "random"]),
            "round_robin"
        );
        let f = r.finish();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].suggestion.as_deref(), Some("random"));
    }
}
