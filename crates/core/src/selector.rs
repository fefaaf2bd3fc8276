//! Channel selectors: which channels of a source receive each event.
//!
//! - `replicating` (default): every event to every channel; channels named in
//!   `selector.optional` are optional (their failures are ignored), the rest required.
//! - `multiplexing`: by the value of header `selector.header` (default
//!   `flume.selector.header`): `selector.mapping.<value>` names the required channels,
//!   `selector.optional.<value>` optional ones (a channel both required and optional is
//!   required), `selector.default` the required channels for unmapped or missing values.
//! - `load_balancing` (Flume 1.10): each event to one channel, `selector.policy` =
//!   `round_robin` (default) or `random`.
//!
//! As in Flume, a selector naming a channel the source does not write to, or a mapping with no
//! channel, is a configuration error that drops the source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::config::{did_you_mean, Finding, FindingKind, PropReader};
use crate::event::Event;

/// Flume's default multiplexing header.
pub const DEFAULT_HEADER: &str = "flume.selector.header";

/// Events grouped by channel index: what must be put where.
#[derive(Debug, Default)]
pub struct Routes {
    /// Required channels and their events (a failure fails the batch).
    pub required: Vec<(usize, Vec<Event>)>,
    /// Optional channels and their events (failures are counted and ignored).
    pub optional: Vec<(usize, Vec<Event>)>,
}

/// A configured selector over the source's channels (by index).
#[derive(Debug)]
pub enum Selector {
    /// Every event to every channel.
    Replicating {
        /// Required channel indices.
        required: Vec<usize>,
        /// Optional channel indices.
        optional: Vec<usize>,
    },
    /// By header value.
    Multiplexing {
        /// The header whose value routes.
        header: String,
        /// Required channels per value.
        mapping: HashMap<String, Vec<usize>>,
        /// Optional channels per value (required ones removed).
        optional: HashMap<String, Vec<usize>>,
        /// Required channels for unmapped values.
        default: Vec<usize>,
    },
    /// One channel per event.
    LoadBalancing {
        /// `random` instead of `round_robin`.
        random: bool,
        /// Next channel for round robin; a cheap counter for random.
        next: AtomicUsize,
        /// Number of channels.
        count: usize,
    },
}

impl Selector {
    /// Reads `selector.*` for a source writing to `channels`. `None` when Flume would drop the
    /// source (findings in `r`).
    pub fn from_props(r: &mut PropReader<'_>, channels: &[String]) -> Option<Selector> {
        let kind = r.string("selector.type", "replicating");
        r.mark_prefix_used("selector");
        let resolve = |r: &mut PropReader<'_>, key: &str| -> Option<Vec<usize>> {
            let Some(list) = r.opt_string(key) else {
                return Some(Vec::new());
            };
            let mut out = Vec::new();
            for name in list.split_whitespace() {
                match channels.iter().position(|c| c == name) {
                    Some(i) => out.push(i),
                    None => {
                        let origin = r.raw(key).map(|p| p.origin.clone());
                        let full = r.full_key(key);
                        r.drop_component(
                            Finding::new(
                                FindingKind::DroppedComponent,
                                origin,
                                full,
                                format!("Selector channel `{name}` is not one of this source's channels; Flume drops the source."),
                            )
                            .expected(format!("one of {}", channels.join(", ")))
                            .suggest(did_you_mean(name, channels.iter().map(String::as_str))),
                        );
                        return None;
                    }
                }
            }
            Some(out)
        };
        match kind.to_ascii_lowercase().as_str() {
            "replicating" | "org.apache.flume.channel.replicatingchannelselector" => {
                let optional = resolve(r, "selector.optional")?;
                let required = (0..channels.len())
                    .filter(|i| !optional.contains(i))
                    .collect();
                Some(Selector::Replicating { required, optional })
            }
            "multiplexing" | "org.apache.flume.channel.multiplexingchannelselector" => {
                let header = r.string("selector.header", DEFAULT_HEADER);
                let default = resolve(r, "selector.default")?;
                let mut mapping = HashMap::new();
                let mut optional = HashMap::new();
                for (key, _) in r.sub_entries("selector.mapping") {
                    let chans = resolve(r, &format!("selector.mapping.{key}"))?;
                    if chans.is_empty() {
                        let full = r.full_key(&format!("selector.mapping.{key}"));
                        let origin = r
                            .raw(&format!("selector.mapping.{key}"))
                            .map(|p| p.origin.clone());
                        r.drop_component(Finding::new(
                            FindingKind::DroppedComponent,
                            origin,
                            full,
                            format!("No channel is mapped for header value `{key}`; Flume drops the source."),
                        ));
                        return None;
                    }
                    mapping.insert(key, chans);
                }
                for (key, _) in r.sub_entries("selector.optional") {
                    let mut chans = resolve(r, &format!("selector.optional.{key}"))?;
                    let required = mapping
                        .get(&key)
                        .filter(|m| !m.is_empty())
                        .unwrap_or(&default);
                    chans.retain(|c| !required.contains(c));
                    optional.insert(key, chans);
                }
                Some(Selector::Multiplexing {
                    header,
                    mapping,
                    optional,
                    default,
                })
            }
            "load_balancing" | "org.apache.flume.channel.loadbalancingchannelselector" => {
                let policy = r.choice("selector.policy", "round_robin", &["round_robin", "random"]);
                Some(Selector::LoadBalancing {
                    random: policy == "random",
                    next: AtomicUsize::new(0),
                    count: channels.len(),
                })
            }
            other => {
                let origin = r.raw("selector.type").map(|p| p.origin.clone());
                let full = r.full_key("selector.type");
                if other.contains('.') {
                    let finding = Finding::new(
                        FindingKind::UnsupportedType,
                        origin,
                        full,
                        format!("Channel selector class `{kind}` is not implemented by Flumen (it cannot run Java plugins); Flume would route the source's events with it."),
                    )
                    .expected("replicating, multiplexing or load_balancing");
                    r.unsupported(format!("channel selector `{kind}`"), finding);
                } else {
                    r.drop_component(
                        Finding::new(
                            FindingKind::UnknownType,
                            origin,
                            full,
                            format!("Channel selector `{other}` is not a selector Flume knows; Flume cannot load it and drops the source."),
                        )
                        .expected("replicating, multiplexing or load_balancing")
                        .suggest(did_you_mean(
                            other,
                            ["replicating", "multiplexing", "load_balancing"],
                        )),
                    );
                }
                None
            }
        }
    }

    /// The name for logs.
    pub fn describe(&self) -> String {
        match self {
            Selector::Replicating { optional, .. } if optional.is_empty() => "replicating".into(),
            Selector::Replicating { optional, .. } => {
                format!("replicating (optional {optional:?})")
            }
            Selector::Multiplexing { header, .. } => format!("multiplexing on `{header}`"),
            Selector::LoadBalancing { random, .. } => {
                format!(
                    "load_balancing ({})",
                    if *random { "random" } else { "round_robin" }
                )
            }
        }
    }

    /// Groups a batch by channel. Replicating to one channel moves the batch without a copy.
    pub fn route(&self, events: Vec<Event>) -> Routes {
        match self {
            Selector::Replicating { required, optional } => {
                let mut routes = Routes::default();
                let total = required.len() + optional.len();
                let mut events = Some(events);
                let mut k = 0;
                for (list, optional_list) in [(required, false), (optional, true)] {
                    for &ch in list {
                        k += 1;
                        let batch = if k == total {
                            events.take().unwrap_or_default()
                        } else {
                            events.clone().unwrap_or_default()
                        };
                        if optional_list {
                            routes.optional.push((ch, batch));
                        } else {
                            routes.required.push((ch, batch));
                        }
                    }
                }
                routes
            }
            Selector::Multiplexing {
                header,
                mapping,
                optional,
                default,
            } => {
                let mut required_map: Vec<(usize, Vec<Event>)> = Vec::new();
                let mut optional_map: Vec<(usize, Vec<Event>)> = Vec::new();
                for event in events {
                    let value = event.headers.get(header.as_str()).map(|v| v.as_str());
                    let req = value.and_then(|v| mapping.get(v)).unwrap_or(default);
                    let opt = value.and_then(|v| optional.get(v));
                    for &ch in opt.into_iter().flatten() {
                        bucket(&mut optional_map, ch).push(event.clone());
                    }
                    if let Some((&last, rest)) = req.split_last() {
                        for &ch in rest {
                            bucket(&mut required_map, ch).push(event.clone());
                        }
                        bucket(&mut required_map, last).push(event);
                    }
                }
                Routes {
                    required: required_map,
                    optional: optional_map,
                }
            }
            Selector::LoadBalancing {
                random,
                next,
                count,
            } => {
                let mut routes = Routes::default();
                let n = (*count).max(1);
                for event in events {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let ch = if *random { scramble(i) % n } else { i % n };
                    bucket(&mut routes.required, ch).push(event);
                }
                routes
            }
        }
    }
}

fn bucket(buckets: &mut Vec<(usize, Vec<Event>)>, ch: usize) -> &mut Vec<Event> {
    let pos = match buckets.iter().position(|(c, _)| *c == ch) {
        Some(p) => p,
        None => {
            buckets.push((ch, Vec::new()));
            buckets.len() - 1
        }
    };
    &mut buckets[pos].1
}

/// A cheap, well-spread pseudo-random index (SplitMix64 of a counter).
fn scramble(i: usize) -> usize {
    let mut z = (i as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    fn props(entries: &[(&str, &str)]) -> Props {
        Props::from_pairs("test.properties", "a1.sources.r1", entries)
    }

    fn ev(h: Option<&str>) -> Event {
        let mut e = Event::new("x");
        if let Some(v) = h {
            e.headers.insert("state".into(), v.into());
        }
        e
    }

    fn chans() -> Vec<String> {
        vec!["c1".into(), "c2".into(), "c3".into()]
    }

    type Sizes = Vec<(usize, usize)>;

    fn summary(r: &Routes) -> (Sizes, Sizes) {
        let f = |v: &Vec<(usize, Vec<Event>)>| {
            let mut s: Vec<_> = v.iter().map(|(c, e)| (*c, e.len())).collect();
            s.sort();
            s
        };
        (f(&r.required), f(&r.optional))
    }

    #[test]
    fn multiplexing_routes_by_header_with_default_and_optionals() {
        let p = props(&[
            ("selector.type", "multiplexing"),
            ("selector.header", "state"),
            ("selector.mapping.CA", "c1"),
            ("selector.mapping.NY", "c2 c3"),
            ("selector.optional.CA", "c3 c1"),
            ("selector.default", "c3"),
        ]);
        let mut r = PropReader::new(&p, "a1.sources.r1");
        let s = Selector::from_props(&mut r, &chans()).unwrap();
        assert!(r.finish().is_empty());
        let routes = s.route(vec![
            ev(Some("CA")),
            ev(Some("NY")),
            ev(Some("TX")),
            ev(None),
        ]);
        // CA → c1 required, c3 optional (c1 listed as both stays required only);
        // NY → c2, c3; TX and missing → default c3.
        assert_eq!(
            summary(&routes),
            (vec![(0, 1), (1, 1), (2, 3)], vec![(2, 1)])
        );
    }

    #[test]
    fn replicating_marks_optional_channels() {
        let p = props(&[("selector.optional", "c2")]);
        let mut r = PropReader::new(&p, "a1.sources.r1");
        let s = Selector::from_props(&mut r, &chans()).unwrap();
        let routes = s.route(vec![ev(None), ev(None)]);
        assert_eq!(summary(&routes), (vec![(0, 2), (2, 2)], vec![(1, 2)]));
    }

    #[test]
    fn load_balancing_spreads_events_evenly() {
        let p = props(&[("selector.type", "load_balancing")]);
        let mut r = PropReader::new(&p, "a1.sources.r1");
        let s = Selector::from_props(&mut r, &chans()).unwrap();
        let routes = s.route((0..9).map(|_| ev(None)).collect());
        assert_eq!(summary(&routes).0, vec![(0, 3), (1, 3), (2, 3)]);
    }

    #[test]
    fn an_unknown_selector_channel_drops_the_source_naming_the_key() {
        let p = props(&[
            ("selector.type", "multiplexing"),
            ("selector.mapping.CA", "c9"),
        ]);
        let mut r = PropReader::new(&p, "a1.sources.r1");
        assert!(Selector::from_props(&mut r, &chans()).is_none());
        let f = r.finish();
        assert_eq!(f[0].key, "a1.sources.r1.selector.mapping.CA");
        assert_eq!(f[0].expected.as_deref(), Some("one of c1, c2, c3"));
    }
}
