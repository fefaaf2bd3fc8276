//! Flume's structural rules (`FlumeConfiguration` and the wiring checks of
//! `AbstractConfigurationProvider`), applied to one agent, with a finding for every key Flume
//! ignores and every component it drops.
//!
//! Phases, as in Flume:
//! 1. Each property is filed under its agent (the text before the first `.`): a key with no agent,
//!    an empty agent or key, or an empty value is ignored. Under the agent, `sources`,
//!    `channels`, `sinks`, `sinkgroups` and `configfilters` are lists; `<kind>.<name>.<key>`
//!    belongs to a component; anything else is ignored ([`group`]).
//! 2. Config filters are set up and applied to every component value ([`filters`]).
//! 3. Channels, then sources, sinks and sink groups are validated ([`validate`]).
//!
//! Where Flume's result depends on `HashSet`/`HashMap` iteration order (which of two sink groups
//! gets a shared sink, which of two keys that trim to the same name wins), Flumen decides by the
//! order written and says so in the finding.

mod filters;
mod group;
mod validate;

use super::finding::{did_you_mean, Finding, FindingKind};
use super::props::Prop;
use super::spec::AgentSpec;

pub(crate) use group::agent_names;

/// Structural result for one agent.
pub(crate) struct Structured {
    /// The agent as Flume keeps it, or `None` (not found, or it would not start).
    pub agent: Option<AgentSpec>,
    /// Findings, in the order they were found.
    pub findings: Vec<Finding>,
}

/// What the structural phase needs besides the properties.
pub(crate) struct Inputs<'a> {
    /// Every property (trimmed key, substituted value, origin), in file order, keys unique.
    pub props: &'a [Prop],
    /// The agent to build.
    pub agent: &'a str,
    /// The environment, for the `env` config filter.
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// Names used as `${NAME}` by some value (not reported as keys of no agent).
    pub used_as_variables: &'a std::collections::BTreeSet<String>,
}

/// Applies Flume's rules to the chosen agent.
pub(crate) fn structure(inputs: &Inputs<'_>) -> Structured {
    let mut findings = Vec::new();
    let names = agent_names(inputs.props);
    let conf = group::group(inputs, &mut findings);
    let Some(mut conf) = conf else {
        let suggestion = near_name(inputs.agent, names.iter().map(String::as_str));
        let defined = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        findings.push(
            Finding::new(
                FindingKind::AgentNotFound,
                None,
                inputs.agent,
                format!(
                    "No key starts with `{}.`; the configuration defines no agent of that name, \
                     so Flume starts nothing.",
                    inputs.agent
                ),
            )
            .expected(format!("one of the agents defined: {defined}"))
            .suggest(suggestion),
        );
        return Structured {
            agent: None,
            findings,
        };
    };
    filters::apply(&mut conf, inputs.env, &mut findings);
    let agent = validate::validate(conf, &mut findings);
    Structured { agent, findings }
}

/// A close match for a component or agent name: [`did_you_mean`], or else the first candidate
/// one edit away (short names such as `ch1`/`ch2` are too short for a similarity score).
pub(crate) fn near_name<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    if let Some(found) = did_you_mean(word, candidates.clone()) {
        return Some(found);
    }
    candidates
        .into_iter()
        .find(|c| *c != word && strsim::levenshtein(word, c) <= 1)
        .map(str::to_string)
}

/// Characters Java's regex `\s` matches.
pub(crate) fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Java's `String.trim()`: strips every char up to U+0020 from both ends.
pub(crate) fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// `value.split("\\s+")` of a trimmed value, without duplicates (Flume puts the names in a set),
/// in the order written.
pub(crate) fn split_names(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in value.split(is_java_space).filter(|s| !s.is_empty()) {
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests;
