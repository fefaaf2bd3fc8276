//! Event serializers for file-like sinks (Flume's `EventSerializer`): `TEXT` and
//! `HEADER_AND_TEXT`. A serializer appends to a caller's buffer so a whole batch becomes one
//! write.

pub mod avro_event;

use crate::config::PropReader;
use crate::event::{headers_to_java_string, Event};

/// How events become bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serializer {
    /// `TEXT` (`BodyTextEventSerializer`): the body, then `\n` when `appendNewline`.
    Text {
        /// `appendNewline` (default true).
        append_newline: bool,
    },
    /// `HEADER_AND_TEXT` (`HeaderAndBodyTextEventSerializer`): `{k=v, ...} body`, then `\n`
    /// when `appendNewline`.
    HeaderAndText {
        /// `appendNewline` (default true).
        append_newline: bool,
    },
}

/// Flume's serializer names and class names, matched case-insensitively.
const TEXT_NAMES: &[&str] = &[
    "text",
    "org.apache.flume.serialization.BodyTextEventSerializer$Builder",
];
const HEADER_AND_TEXT_NAMES: &[&str] = &[
    "header_and_text",
    "org.apache.flume.serialization.HeaderAndBodyTextEventSerializer$Builder",
];

impl Serializer {
    /// Reads the serializer named by `key` (e.g. `sink.serializer`) and its properties under
    /// `key.` (e.g. `sink.serializer.appendNewline`). `None` for an unsupported serializer.
    pub fn from_props(r: &mut PropReader<'_>, key: &str) -> Option<Self> {
        let name = r.string(key, "TEXT");
        let append_newline = r.bool(&format!("{key}.appendNewline"), true);
        let is = |names: &[&str]| names.iter().any(|n| n.eq_ignore_ascii_case(&name));
        if is(TEXT_NAMES) {
            Some(Serializer::Text { append_newline })
        } else if is(HEADER_AND_TEXT_NAMES) {
            Some(Serializer::HeaderAndText { append_newline })
        } else {
            let prop = r.raw(key)?;
            let suggestion =
                crate::config::did_you_mean(&name, ["TEXT", "HEADER_AND_TEXT", "avro_event"]);
            // Flume's avro_event and plugin classes exist in Flume; anything else does not.
            let flume_has = name.eq_ignore_ascii_case("avro_event") || name.contains('.');
            let finding = |kind, message: String| {
                crate::config::Finding::new(
                    kind,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    message,
                )
                .expected("TEXT or HEADER_AND_TEXT")
            };
            if flume_has {
                let f = finding(
                    crate::config::FindingKind::UnsupportedType,
                    format!("Serializer `{name}` is not implemented by Flumen; Flume would write with it."),
                );
                r.unsupported(format!("serializer `{name}`"), f);
            } else {
                let f = finding(
                    crate::config::FindingKind::UnknownType,
                    format!("Serializer `{name}` is not one Flume knows; Flume cannot load it and the sink does not run."),
                )
                .suggest(suggestion);
                r.drop_component(f);
            }
            None
        }
    }

    /// The name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Serializer::Text { .. } => "TEXT",
            Serializer::HeaderAndText { .. } => "HEADER_AND_TEXT",
        }
    }

    /// Whether every serialized event ends with a newline (so a file ending otherwise holds
    /// an incomplete event).
    pub fn ends_with_newline(&self) -> bool {
        matches!(
            self,
            Serializer::Text {
                append_newline: true
            } | Serializer::HeaderAndText {
                append_newline: true
            }
        )
    }

    /// Appends every event to `out`.
    pub fn write_batch(&self, events: &[Event], out: &mut Vec<u8>) {
        match *self {
            Serializer::Text { append_newline } => {
                let extra = usize::from(append_newline);
                out.reserve(events.iter().map(|e| e.body.len() + extra).sum());
                for e in events {
                    out.extend_from_slice(&e.body);
                    if append_newline {
                        out.push(b'\n');
                    }
                }
            }
            Serializer::HeaderAndText { append_newline } => {
                for e in events {
                    headers_to_java_string(&e.headers, out);
                    out.push(b' ');
                    out.extend_from_slice(&e.body);
                    if append_newline {
                        out.push(b'\n');
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Headers;

    #[test]
    fn text_and_header_and_text_match_flume() {
        let mut h = Headers::new();
        h.insert("host".into(), "a".into());
        let events = [Event::with_headers(h, "body"), Event::new("x")];
        let mut out = Vec::new();
        Serializer::Text {
            append_newline: true,
        }
        .write_batch(&events, &mut out);
        assert_eq!(out, b"body\nx\n");
        out.clear();
        Serializer::HeaderAndText {
            append_newline: true,
        }
        .write_batch(&events, &mut out);
        assert_eq!(out, b"{host=a} body\n{} x\n");
    }
}
