//! What the `http` sink does with each answer: Flume's per-status `backoff`, `rollback` and
//! `incrementMetrics` policies.
//!
//! Each policy has a default (`defaultBackoff`, `defaultRollback`, `defaultIncrementMetrics`)
//! and overrides keyed by an exact status (`rollback.503`) or a class (`rollback.5XX`). As in
//! Flume, the exact status wins over its class, and the class over the default. Flume compares
//! the key text with the status text, so only upper-case `XX` classes ever match: a `5xx` key
//! is reported and ignored, as is any key that names no status.

use std::collections::BTreeMap;

use crate::config::{Finding, FindingKind, PropReader};

/// One policy: a default plus overrides per status and per class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The Flume key prefix (`rollback`), for messages.
    name: &'static str,
    /// The key of the default (`defaultRollback`).
    default_key: &'static str,
    default: bool,
    exact: BTreeMap<u16, bool>,
    /// Indexed by the first digit of the status.
    class: [Option<bool>; 10],
}

impl Policy {
    /// A policy with only a default.
    pub fn new(name: &'static str, default_key: &'static str, default: bool) -> Self {
        Policy {
            name,
            default_key,
            default,
            exact: BTreeMap::new(),
            class: [None; 10],
        }
    }

    /// Overrides one exact status.
    pub fn set_exact(&mut self, status: u16, value: bool) {
        self.exact.insert(status, value);
    }

    /// Overrides a class by its first digit (`5` for `5XX`).
    pub fn set_class(&mut self, digit: u8, value: bool) {
        if let Some(slot) = self.class.get_mut(usize::from(digit)) {
            *slot = Some(value);
        }
    }

    /// The value for `status`: exact override, else class override, else the default.
    pub fn resolve(&self, status: u16) -> bool {
        self.decide(status).0
    }

    /// The value for `status` with the key that decided it (`rollback.503`, `rollback.5XX`,
    /// `defaultRollback`), for messages.
    pub fn decide(&self, status: u16) -> (bool, String) {
        if let Some(&v) = self.exact.get(&status) {
            return (v, format!("{}.{status}", self.name));
        }
        let digit = status / 100;
        if let Some(v) = self.class.get(usize::from(digit)).copied().flatten() {
            return (v, format!("{}.{digit}XX", self.name));
        }
        (self.default, self.default_key.to_string())
    }

    /// Reads `<default_key>` and every `<name>.<status>` key.
    fn from_props(
        r: &mut PropReader<'_>,
        name: &'static str,
        default_key: &'static str,
        default: bool,
    ) -> Self {
        let mut policy = Policy::new(name, default_key, r.bool(default_key, default));
        for (rest, prop) in r.sub_entries(name) {
            let key = format!("{name}.{rest}");
            match parse_status_key(&rest) {
                StatusKey::Exact(status) => {
                    let value = r.bool(&key, false);
                    policy.set_exact(status, value);
                }
                StatusKey::Class(digit) => {
                    let value = r.bool(&key, false);
                    policy.set_class(digit, value);
                }
                StatusKey::LowerCaseClass(digit) => {
                    r.mark_used(&key);
                    r.push(
                        Finding::new(
                            FindingKind::IgnoredKey,
                            Some(prop.origin.clone()),
                            prop.full_key.clone(),
                            format!(
                                "`{key}` never applies: Flume matches status classes written in upper case only; it is ignored."
                            ),
                        )
                        .suggest(Some(format!("{name}.{digit}XX"))),
                    );
                }
                StatusKey::Invalid => {
                    r.mark_used(&key);
                    r.push(
                        Finding::new(
                            FindingKind::IgnoredKey,
                            Some(prop.origin.clone()),
                            prop.full_key.clone(),
                            format!(
                                "`{key}` names no HTTP status, so it never applies; it is ignored."
                            ),
                        )
                        .expected(format!(
                            "`{name}.<status>` with a status such as 503 or a class such as 5XX"
                        )),
                    );
                }
            }
        }
        policy
    }
}

/// What a key under `backoff.` / `rollback.` / `incrementMetrics.` names.
#[derive(Debug, PartialEq, Eq)]
enum StatusKey {
    /// `503`.
    Exact(u16),
    /// `5XX`, by its first digit.
    Class(u8),
    /// `5xx`: Flume never matches it.
    LowerCaseClass(u8),
    /// Anything else.
    Invalid,
}

fn parse_status_key(rest: &str) -> StatusKey {
    let b = rest.as_bytes();
    if b.len() != 3 || !(b'1'..=b'9').contains(&b[0]) {
        return StatusKey::Invalid;
    }
    let digit = b[0] - b'0';
    if b[1].is_ascii_digit() && b[2].is_ascii_digit() {
        return rest.parse().map_or(StatusKey::Invalid, StatusKey::Exact);
    }
    match &b[1..] {
        b"XX" => StatusKey::Class(digit),
        [x, y] if x.eq_ignore_ascii_case(&b'x') && y.eq_ignore_ascii_case(&b'x') => {
            StatusKey::LowerCaseClass(digit)
        }
        _ => StatusKey::Invalid,
    }
}

/// What to do with one answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Roll the take back (else commit).
    pub rollback: bool,
    /// Back off before the next take.
    pub backoff: bool,
    /// Count the events as drained successfully.
    pub count: bool,
}

/// The three policies of one sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusPolicies {
    /// `defaultBackoff` (true) and `backoff.<status>`.
    pub backoff: Policy,
    /// `defaultRollback` (true) and `rollback.<status>`.
    pub rollback: Policy,
    /// `defaultIncrementMetrics` (false) and `incrementMetrics.<status>`.
    pub increment_metrics: Policy,
}

/// Flume's `defaultBackoff`.
pub const DEFAULT_BACKOFF: bool = true;
/// Flume's `defaultRollback`.
pub const DEFAULT_ROLLBACK: bool = true;
/// Flume's `defaultIncrementMetrics`.
pub const DEFAULT_INCREMENT_METRICS: bool = false;

impl Default for StatusPolicies {
    fn default() -> Self {
        StatusPolicies {
            backoff: Policy::new("backoff", "defaultBackoff", DEFAULT_BACKOFF),
            rollback: Policy::new("rollback", "defaultRollback", DEFAULT_ROLLBACK),
            increment_metrics: Policy::new(
                "incrementMetrics",
                "defaultIncrementMetrics",
                DEFAULT_INCREMENT_METRICS,
            ),
        }
    }
}

impl StatusPolicies {
    /// Reads the defaults and overrides. With Flume's defaults a `200` answer is rolled back
    /// and retried forever; that (and a backoff after every `200`) is reported as a finding,
    /// naming the keys to set, but kept, since Flume behaves so.
    pub fn from_props(r: &mut PropReader<'_>) -> Self {
        let policies = StatusPolicies {
            backoff: Policy::from_props(r, "backoff", "defaultBackoff", DEFAULT_BACKOFF),
            rollback: Policy::from_props(r, "rollback", "defaultRollback", DEFAULT_ROLLBACK),
            increment_metrics: Policy::from_props(
                r,
                "incrementMetrics",
                "defaultIncrementMetrics",
                DEFAULT_INCREMENT_METRICS,
            ),
        };
        if r.is_fatal() {
            // The sink is dropped anyway; its policies do not matter.
            return policies;
        }
        // An absent deciding key is reported at the sink's `endpoint` line.
        let place = |r: &mut PropReader<'_>, key: &str| {
            r.raw(key)
                .or_else(|| r.raw("endpoint"))
                .map(|p| p.origin.clone())
        };
        let (rollback, key) = policies.rollback.decide(200);
        if rollback {
            let origin = place(r, &key);
            let full_key = r.full_key(&key);
            r.push(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    full_key,
                    format!(
                        "A 200 answer rolls the event back (`{key}`), so every delivered event is posted again, forever; Flume does the same."
                    ),
                )
                .expected("`rollback.2XX = false` (or `rollback.200 = false`)".to_string()),
            );
        }
        let (backoff, key) = policies.backoff.decide(200);
        if backoff {
            let origin = place(r, &key);
            let full_key = r.full_key(&key);
            r.push(
                Finding::new(
                    FindingKind::BadValue,
                    origin,
                    full_key,
                    format!(
                        "A 200 answer makes the sink back off (`{key}`), up to 5 s after every batch, as in Flume."
                    ),
                )
                .expected("`backoff.2XX = false` (or `backoff.200 = false`)".to_string()),
            );
        }
        policies
    }

    /// What to do with an answer of `status`.
    pub fn verdict(&self, status: u16) -> Verdict {
        Verdict {
            rollback: self.rollback.resolve(status),
            backoff: self.backoff.resolve(status),
            count: self.increment_metrics.resolve(status),
        }
    }

    /// A short summary for the start-up log, e.g. `rollback=true[2XX=false]`.
    pub fn describe(&self) -> String {
        [&self.backoff, &self.rollback, &self.increment_metrics]
            .iter()
            .map(|p| {
                let mut s = format!("{}={}", p.name, p.default);
                let overrides: Vec<String> = p
                    .class
                    .iter()
                    .enumerate()
                    .filter_map(|(d, v)| v.map(|v| format!("{d}XX={v}")))
                    .chain(p.exact.iter().map(|(c, v)| format!("{c}={v}")))
                    .collect();
                if !overrides.is_empty() {
                    s.push_str(&format!("[{}]", overrides.join(",")));
                }
                s
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn props(entries: &[(&str, &str)]) -> Props {
        Props::from_pairs("test.properties", "a1.sinks.k1", entries)
    }

    fn read(entries: &[(&str, &str)]) -> (StatusPolicies, Vec<Finding>) {
        let p = props(entries);
        let mut r = PropReader::new(&p, "a1.sinks.k1");
        let policies = StatusPolicies::from_props(&mut r);
        (policies, r.finish())
    }

    #[test]
    fn flume_defaults_roll_back_and_back_off_every_status_and_count_none() {
        let (p, findings) = read(&[]);
        for status in [200, 204, 301, 400, 404, 500, 503] {
            assert_eq!(
                p.verdict(status),
                Verdict {
                    rollback: true,
                    backoff: true,
                    count: false
                },
                "status {status}"
            );
        }
        // Both surprises of Flume's defaults are reported, naming the deciding key.
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert_eq!(findings[0].key, "a1.sinks.k1.defaultRollback");
        assert_eq!(findings[1].key, "a1.sinks.k1.defaultBackoff");
    }

    #[test]
    fn an_exact_status_wins_over_its_class_and_the_class_over_the_default() {
        let (p, findings) = read(&[
            ("rollback.2XX", "false"),
            ("rollback.200", "true"),
            ("backoff.2XX", "false"),
            ("incrementMetrics.2XX", "true"),
            ("incrementMetrics.200", "false"),
            ("rollback.503", "true"),
            ("rollback.5XX", "false"),
        ]);
        assert!(p.rollback.resolve(200));
        assert!(!p.rollback.resolve(204));
        assert!(!p.increment_metrics.resolve(200));
        assert!(p.increment_metrics.resolve(201));
        assert!(p.rollback.resolve(503));
        assert!(!p.rollback.resolve(500));
        assert!(p.rollback.resolve(404), "4XX falls back to defaultRollback");
        assert_eq!(p.rollback.decide(200).1, "rollback.200");
        assert_eq!(p.rollback.decide(201).1, "rollback.2XX");
        assert_eq!(p.rollback.decide(404).1, "defaultRollback");
        // rollback.200 = true is still the Flume trap, reported on its own line.
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].key, "a1.sinks.k1.rollback.200");
        assert_eq!(findings[0].origin.as_ref().map(|o| o.line), Some(2));
    }

    #[test]
    fn defaults_can_be_turned_around() {
        let (p, findings) = read(&[
            ("defaultRollback", "false"),
            ("defaultBackoff", "FALSE"),
            ("defaultIncrementMetrics", "True"),
            ("rollback.5XX", "true"),
            ("backoff.503", "true"),
        ]);
        assert!(findings.is_empty(), "{findings:?}");
        assert_eq!(
            p.verdict(200),
            Verdict {
                rollback: false,
                backoff: false,
                count: true
            }
        );
        assert_eq!(
            p.verdict(503),
            Verdict {
                rollback: true,
                backoff: true,
                count: true
            }
        );
        assert_eq!(
            p.verdict(500),
            Verdict {
                rollback: true,
                backoff: false,
                count: true
            }
        );
    }

    #[test]
    fn keys_naming_no_status_are_reported_and_ignored() {
        let (p, findings) = read(&[
            ("rollback.2XX", "false"),
            ("backoff.2XX", "false"),
            ("rollback.4xx", "false"),
            ("rollback.abc", "false"),
            ("backoff.2000", "false"),
            ("backoff.0XX", "false"),
            ("rollback.400", "maybe"),
        ]);
        assert!(p.rollback.resolve(404), "a lower-case class never matches");
        assert!(
            !p.rollback.resolve(400),
            "Boolean.valueOf: not `true` is false"
        );
        let keys: Vec<(&str, FindingKind)> =
            findings.iter().map(|f| (f.key.as_str(), f.kind)).collect();
        assert!(keys.contains(&("a1.sinks.k1.rollback.4xx", FindingKind::IgnoredKey)));
        assert!(keys.contains(&("a1.sinks.k1.rollback.abc", FindingKind::IgnoredKey)));
        assert!(keys.contains(&("a1.sinks.k1.backoff.2000", FindingKind::IgnoredKey)));
        assert!(keys.contains(&("a1.sinks.k1.backoff.0XX", FindingKind::IgnoredKey)));
        assert!(keys.contains(&("a1.sinks.k1.rollback.400", FindingKind::BadValue)));
        assert_eq!(findings.len(), 5, "{findings:?}");
        let lower = findings
            .iter()
            .find(|f| f.key.ends_with("rollback.4xx"))
            .and_then(|f| f.suggestion.as_deref());
        assert_eq!(lower, Some("rollback.4XX"));
    }

    #[test]
    fn status_keys_parse() {
        assert_eq!(parse_status_key("503"), StatusKey::Exact(503));
        assert_eq!(parse_status_key("5XX"), StatusKey::Class(5));
        assert_eq!(parse_status_key("5xX"), StatusKey::LowerCaseClass(5));
        assert_eq!(parse_status_key("099"), StatusKey::Invalid);
        assert_eq!(parse_status_key("5X"), StatusKey::Invalid);
        assert_eq!(parse_status_key("5X0"), StatusKey::Invalid);
        assert_eq!(parse_status_key("+50"), StatusKey::Invalid);
    }

    #[test]
    fn describe_lists_overrides() {
        let (p, _) = read(&[("rollback.2XX", "false"), ("rollback.503", "true")]);
        assert_eq!(
            p.describe(),
            "backoff=true rollback=true[2XX=false,503=true] incrementMetrics=false"
        );
    }
}
