//! Configuration findings: every problem Flumen sees in a config, with its place.
//!
//! Flume keeps going when part of a config is wrong and says little about it. Flumen builds the
//! same topology but reports each dropped component and each ignored key as a [`Finding`] that
//! names the file, line and key, what was expected, and a suggestion for a misspelt name.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Where a key was written: file and 1-based line of the logical line that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The config file (or `<embedded>` for the built-in default config).
    pub file: Arc<Path>,
    /// 1-based number of the first physical line of the entry.
    pub line: u32,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The class of a finding; [`FindingKind::code`] is stable and used in JSON output and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FindingKind {
    /// A line the properties reader could not make sense of (e.g. a bad `\u` escape).
    Syntax,
    /// A `${...}` that could not be resolved, or a filter that failed.
    Substitution,
    /// A key that Flume ignores (unknown property, a key of no agent, a component not listed).
    IgnoredKey,
    /// A component Flume drops (no type, missing channel, listed but never configured, ...).
    DroppedComponent,
    /// A component type that Flume knows (or a custom Java class) but Flumen does not implement.
    UnsupportedType,
    /// A type name that is neither a Flume alias nor a known class name.
    UnknownType,
    /// A known key whose value is not valid (bad number, out of range, unknown enum value).
    BadValue,
    /// A whole agent that does not start (no channel, or neither sources nor sinks).
    AgentNotStarted,
    /// The agent named with `-n` is not in the file.
    AgentNotFound,
    /// A component Flume would run that Flumen drops only because something it needs (its
    /// channel, a source or sink of its channel) is a type Flumen does not implement.
    PartialDrop,
    /// The agent does not start because the config needs components Flumen does not
    /// implement (`--allow-partial` starts the rest).
    PartialTopology,
    /// A channel that sources feed but no sink drains.
    NoConsumer,
    /// A deprecated key Flume still reads (and warns about): its value is used as Flume maps
    /// it (the Kafka components' `brokerList`, `topic`, `groupId`, ...).
    Deprecated,
}

impl FindingKind {
    /// A short stable identifier for this kind of finding.
    pub fn code(self) -> &'static str {
        match self {
            FindingKind::Syntax => "syntax",
            FindingKind::Substitution => "substitution",
            FindingKind::IgnoredKey => "ignored-key",
            FindingKind::DroppedComponent => "dropped-component",
            FindingKind::UnsupportedType => "unsupported-type",
            FindingKind::UnknownType => "unknown-type",
            FindingKind::BadValue => "bad-value",
            FindingKind::AgentNotStarted => "agent-not-started",
            FindingKind::AgentNotFound => "agent-not-found",
            FindingKind::PartialDrop => "partial-drop",
            FindingKind::PartialTopology => "partial-topology",
            FindingKind::NoConsumer => "no-consumer",
            FindingKind::Deprecated => "deprecated-key",
        }
    }
}

/// One problem in a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem this is.
    pub kind: FindingKind,
    /// Where the offending key was written, when there is such a place.
    pub origin: Option<Origin>,
    /// The full key as written (e.g. `a1.sinks.k1.channel`), or the component/agent name.
    pub key: String,
    /// What is wrong and what Flume (and so Flumen) does about it, as a sentence.
    pub message: String,
    /// What would have been valid, when that can be said briefly.
    pub expected: Option<String>,
    /// A close match for a misspelt key, type, component or agent name.
    pub suggestion: Option<String>,
}

impl Finding {
    /// A finding with no expectation and no suggestion.
    pub fn new(
        kind: FindingKind,
        origin: Option<Origin>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Finding {
            kind,
            origin,
            key: key.into(),
            message: message.into(),
            expected: None,
            suggestion: None,
        }
    }

    /// Adds what was expected.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Adds a "did you mean" suggestion, unless it is the key as written: suggesting what
    /// the user already wrote helps nobody.
    pub fn suggest(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion.filter(|s| !s.is_empty() && *s != self.key);
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: ")?,
            None => write!(f, "<no line>: ")?,
        }
        write!(f, "[{}] {}: {}", self.kind.code(), self.key, self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, " Expected {expected}.")?;
        }
        if let Some(suggestion) = &self.suggestion {
            write!(f, " Did you mean `{suggestion}`?")?;
        }
        Ok(())
    }
}

/// The closest candidate to `word` when it is close enough to be a likely typo.
///
/// Case-insensitive Jaro-Winkler plus a Levenshtein bound, so `chanels` finds `channels` and
/// `capacity` does not suggest `type`.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(f64, &str)> = None;
    // The word itself is never a suggestion, even when it is a candidate.
    for candidate in candidates.into_iter().filter(|c| *c != word) {
        let c = candidate.to_ascii_lowercase();
        if c == lower {
            return Some(candidate.to_string());
        }
        let score = strsim::jaro_winkler(&lower, &c);
        let distance = strsim::levenshtein(&lower, &c);
        let close = distance <= 2.max(lower.len() / 4);
        if score >= 0.85 && close && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("chanels", ["channels", "type", "sinks"]),
            Some("channels".into())
        );
        assert_eq!(did_you_mean("capacity", ["type", "channels"]), None);
        assert_eq!(
            did_you_mean("transactionCapcity", ["capacity", "transactionCapacity"]),
            Some("transactionCapacity".into())
        );
        assert_eq!(
            did_you_mean("MEMORY", ["memory", "file"]),
            Some("memory".into())
        );
    }
}
