//! Java regular expressions in interceptor configs: compiling them with a finding that names
//! the key, and Java's replacement syntax (`Matcher.replaceAll`).
//!
//! Patterns are compiled with the `regex` crate, which accepts most Java patterns. Known
//! differences: look-around, back-references and possessive quantifiers are not supported
//! (the config is refused, naming the key); `\d`, `\w`, `\s` and `(?i)` are Unicode-aware where
//! Java's are ASCII-only by default; `.` excludes only `\n` where Java also excludes `\r` and
//! other line terminators. Bodies are matched as bytes: where Java decodes invalid UTF-8 to
//! U+FFFD first, here `.` does not match an invalid byte, and the body is never re-encoded.

use regex::bytes::{Captures, Regex};

use crate::config::{Finding, FindingKind, PropReader};

/// Records a bad value for `key` that makes Flume drop the owning component.
pub(crate) fn drop_for_bad_value(
    r: &mut PropReader<'_>,
    key: &str,
    message: String,
    expected: &str,
) {
    let origin = r.raw(key).map(|p| p.origin.clone());
    let full_key = r.full_key(key);
    r.drop_component(
        Finding::new(FindingKind::BadValue, origin, full_key, message)
            .expected(expected.to_string()),
    );
}

/// Compiles the regex configured under `key` for matching bytes; an invalid one is a finding
/// naming the key, and `None` (Flume's `Pattern.compile` throws and the component is dropped).
pub(crate) fn compile(r: &mut PropReader<'_>, key: &str, pattern: &str) -> Option<Regex> {
    Regex::new(pattern)
        .map_err(|e| report(r, key, pattern, &e))
        .ok()
}

/// As [`compile`], for matching strings (header names).
pub(crate) fn compile_str(
    r: &mut PropReader<'_>,
    key: &str,
    pattern: &str,
) -> Option<regex::Regex> {
    regex::Regex::new(pattern)
        .map_err(|e| report(r, key, pattern, &e))
        .ok()
}

fn report(r: &mut PropReader<'_>, key: &str, pattern: &str, error: &regex::Error) {
    let detail = error.to_string();
    let last = detail.lines().last().unwrap_or("").trim().to_string();
    drop_for_bad_value(
        r,
        key,
        format!("`{pattern}` is not a valid regular expression ({last}); Flume drops the interceptor's owner."),
        "a regular expression (no look-around or back-references)",
    );
}

/// One piece of a parsed replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

/// A replacement string in Java's syntax: `$n` and `${name}` insert a group, `\x` is a
/// literal `x`, everything else is literal.
#[derive(Debug, Clone)]
pub(crate) struct Replacement {
    pieces: Vec<Piece>,
}

impl Replacement {
    /// Parses `text` for `re` as `Matcher.appendReplacement` reads it. Java reports a reference
    /// to a missing group only when a match happens; here it is refused up front.
    pub(crate) fn parse(text: &str, re: &Regex) -> Result<Self, String> {
        let groups = re.captures_len() - 1;
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => {
                    let c = text[i + 1..]
                        .chars()
                        .next()
                        .ok_or("a `\\` at the end escapes nothing")?;
                    let mut buf = [0u8; 4];
                    lit.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 1 + c.len_utf8();
                }
                b'$' => {
                    i += 1;
                    let group = if bytes.get(i) == Some(&b'{') {
                        let end = text[i..]
                            .find('}')
                            .map(|e| i + e)
                            .ok_or("`${` has no closing `}`")?;
                        let name = &text[i + 1..end];
                        i = end + 1;
                        re.capture_names()
                            .position(|n| n == Some(name))
                            .ok_or_else(|| format!("no group named `{name}`"))?
                    } else {
                        let first = match bytes.get(i) {
                            Some(d) if d.is_ascii_digit() => usize::from(d - b'0'),
                            _ => {
                                return Err(
                                    "`$` is not followed by a group number or `{name}`".into()
                                )
                            }
                        };
                        if first > groups {
                            return Err(format!("no group {first} (the regex has {groups})"));
                        }
                        i += 1;
                        let mut n = first;
                        while let Some(d) = bytes.get(i).filter(|d| d.is_ascii_digit()) {
                            let next = n * 10 + usize::from(d - b'0');
                            if next > groups {
                                break;
                            }
                            n = next;
                            i += 1;
                        }
                        n
                    };
                    if !lit.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut lit)));
                    }
                    pieces.push(Piece::Group(group));
                }
                b => {
                    lit.push(b);
                    i += 1;
                }
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Ok(Replacement { pieces })
    }

    /// The replacement as literal bytes when it references no group.
    pub(crate) fn literal(&self) -> Option<&[u8]> {
        match self.pieces.as_slice() {
            [] => Some(&[]),
            [Piece::Literal(l)] => Some(l),
            _ => None,
        }
    }

    /// Appends the replacement for one match (a group that did not take part adds nothing).
    pub(crate) fn expand(&self, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.pieces {
            match p {
                Piece::Literal(l) => out.extend_from_slice(l),
                Piece::Group(g) => {
                    if let Some(m) = caps.get(*g) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(re: &str, rep: &str, input: &str) -> Result<String, String> {
        let re = Regex::new(re).map_err(|e| e.to_string())?;
        let rep = Replacement::parse(rep, &re)?;
        let mut out = Vec::new();
        let mut last = 0;
        for caps in re.captures_iter(input.as_bytes()) {
            let m = caps.get(0).ok_or("no group 0")?;
            out.extend_from_slice(&input.as_bytes()[last..m.start()]);
            rep.expand(&caps, &mut out);
            last = m.end();
        }
        out.extend_from_slice(&input.as_bytes()[last..]);
        String::from_utf8(out).map_err(|e| e.to_string())
    }

    #[test]
    fn java_group_references_expand() {
        assert_eq!(
            apply("(\\w+)@(\\w+)", "$2 at $1", "me@host").as_deref(),
            Ok("host at me")
        );
        assert_eq!(
            apply("(?<user>\\w+)@", "${user}:", "me@x").as_deref(),
            Ok("me:x")
        );
        assert_eq!(apply("a(b)?", "[$1]", "a ab").as_deref(), Ok("[] [b]"));
        // `$12` with one group is group 1 then a literal 2, as in Java.
        assert_eq!(apply("(a)", "$12", "a").as_deref(), Ok("a2"));
        assert_eq!(apply("(a)", "\\$1 \\\\", "a").as_deref(), Ok("$1 \\"));
    }

    #[test]
    fn bad_references_are_refused() {
        let re = Regex::new("(a)").expect("regex");
        assert!(Replacement::parse("$2", &re).is_err());
        assert!(Replacement::parse("$", &re).is_err());
        assert!(Replacement::parse("$x", &re).is_err());
        assert!(Replacement::parse("${nope}", &re).is_err());
        assert!(Replacement::parse("\\", &re).is_err());
        assert_eq!(
            Replacement::parse("", &re)
                .ok()
                .and_then(|r| r.literal().map(<[u8]>::to_vec)),
            Some(vec![])
        );
    }
}
