//! A reader for Java `.properties` text that agrees with `java.util.Properties.load(Reader)`.
//!
//! The rules, as the JDK (17) applies them:
//!
//! - A *natural* line ends at LF, CR or CRLF. Leading blanks (space, tab, form feed) of every
//!   natural line are skipped; a line that is then empty is skipped.
//! - A logical line whose first character (after the blanks) is `#` or `!` is a comment. This is
//!   only checked while the logical line is still empty, so a `#` at the start of a continuation
//!   line is text, except after a line that held nothing but the continuing backslash.
//! - A line ending in an odd number of backslashes continues on the next natural line; that
//!   backslash and the next line's leading blanks are dropped. An empty (or blank) next line ends
//!   the logical line. A backslash left at the very end of the input is dropped.
//! - The key ends at the first unescaped `=`, `:` or blank. Blanks after the key are skipped, then
//!   one `=` or `:` (if the key was not already ended by one), then blanks again; the rest is the
//!   value, trailing blanks included.
//! - Escapes in keys and values: `\t \n \r \f`, `\uXXXX` (UTF-16 code units; surrogate pairs are
//!   joined), and `\x` is `x` for any other character.
//! - The last occurrence of a key wins.
//!
//! Divergences, on purpose:
//! - A malformed `\uXXXX` makes Java throw `IllegalArgumentException` and the whole load fails
//!   (Flume 1.11 does not catch it, so the agent does not start). Flumen reports a
//!   [`SyntaxError`] with the line and skips only that entry.
//! - A lone UTF-16 surrogate from `\uD800`..`\uDFFF` cannot be held in a Rust string; it becomes
//!   U+FFFD and is reported.
//! - Flume 1.11 hands the file's bytes to `Properties.load(InputStream)`, which decodes them as
//!   ISO-8859-1. Flumen decodes UTF-8 (what authors mean), and falls back to ISO-8859-1 (Flume's
//!   exact reading) when the bytes are not valid UTF-8 ([`decode`] says so). A byte order mark
//!   is kept as part of the first key, as Java's readers do.

use std::collections::BTreeMap;

/// One `key = value` entry of a properties text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key after escapes.
    pub key: String,
    /// The value after escapes (not trimmed at the end, as Java keeps trailing blanks).
    pub value: String,
    /// 1-based number of the first physical line of the logical line.
    pub line: u32,
}

/// A logical line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based first physical line of the logical line.
    pub line: u32,
    /// What is wrong and what Flumen did, as a sentence.
    pub message: String,
}

/// Everything read from one text: entries in file order (duplicates kept) and syntax errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Every entry, in the order written; a later duplicate key overrides an earlier one.
    pub entries: Vec<Entry>,
    /// Lines that were skipped or altered.
    pub errors: Vec<SyntaxError>,
}

/// Decodes a config file's bytes: UTF-8 when valid, else ISO-8859-1 (Flume's own reading) with
/// a message saying so.
pub fn decode(bytes: &[u8]) -> (String, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(e) => {
            let text: String = bytes.iter().map(|&b| char::from(b)).collect();
            let message = format!(
                "The file is not valid UTF-8 (first bad byte at offset {}); it is read as \
                 ISO-8859-1, as Flume reads every config file.",
                e.valid_up_to()
            );
            (text, Some(message))
        }
    }
}

/// Parses properties text into ordered entries, as `Properties.load(Reader)` reads it.
pub fn parse(text: &str) -> Parsed {
    let chars: Vec<char> = text.chars().collect();
    let mut reader = LineReader {
        chars: &chars,
        pos: 0,
        line: 1,
        skip_lf: false,
    };
    let mut parsed = Parsed::default();
    while let Some((logical, line)) = reader.read_line() {
        let (key_chars, value_chars) = split_key_value(&logical);
        let key = unescape(key_chars);
        let value = unescape(value_chars);
        match (key, value) {
            (Ok((key, k_lossy)), Ok((value, v_lossy))) => {
                if k_lossy || v_lossy {
                    parsed.errors.push(SyntaxError {
                        line,
                        message: "A `\\u` escape gives a lone UTF-16 surrogate, which Flumen \
                                  replaces with U+FFFD."
                            .to_string(),
                    });
                }
                parsed.entries.push(Entry { key, value, line });
            }
            (Err(()), _) | (_, Err(())) => parsed.errors.push(SyntaxError {
                line,
                message: "Malformed `\\uXXXX` escape (four hex digits are required); Java \
                          rejects the whole file here, Flumen skips this entry."
                    .to_string(),
            }),
        }
    }
    parsed
}

/// The key/value map Java's `Properties` would hold after loading `text` (last key wins;
/// entries with a malformed escape are left out).
pub fn parse_map(text: &str) -> BTreeMap<String, String> {
    parse(text)
        .entries
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect()
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\u{c}'
}

/// Splits one logical line into its raw (still escaped) key and value parts.
fn split_key_value(line: &[char]) -> (&[char], &[char]) {
    let limit = line.len();
    let mut key_len = 0;
    let mut value_start = limit;
    let mut has_sep = false;
    let mut preceding_backslash = false;
    while key_len < limit {
        let c = line[key_len];
        if (c == '=' || c == ':') && !preceding_backslash {
            value_start = key_len + 1;
            has_sep = true;
            break;
        } else if is_blank(c) && !preceding_backslash {
            value_start = key_len + 1;
            break;
        }
        preceding_backslash = c == '\\' && !preceding_backslash;
        key_len += 1;
    }
    while value_start < limit {
        let c = line[value_start];
        if !is_blank(c) {
            if !has_sep && (c == '=' || c == ':') {
                has_sep = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (&line[..key_len], &line[value_start..])
}

/// Resolves escapes. `Err` for a malformed `\uXXXX`; the flag says a lone surrogate was replaced.
fn unescape(raw: &[char]) -> Result<(String, bool), ()> {
    if !raw.contains(&'\\') {
        return Ok((raw.iter().collect(), false));
    }
    let mut units: Vec<u16> = Vec::with_capacity(raw.len());
    let push = |units: &mut Vec<u16>, c: char| {
        let mut buf = [0u16; 2];
        units.extend_from_slice(c.encode_utf16(&mut buf));
    };
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        i += 1;
        if c != '\\' {
            push(&mut units, c);
            continue;
        }
        // The reader never leaves an unescaped backslash at the end; keep one if it happens.
        let Some(&next) = raw.get(i) else {
            push(&mut units, '\\');
            break;
        };
        i += 1;
        match next {
            'u' => {
                let hex = raw.get(i..i + 4).ok_or(())?;
                let mut value: u16 = 0;
                for &h in hex {
                    let digit = h.to_digit(16).ok_or(())?;
                    value = (value << 4) | digit as u16;
                }
                i += 4;
                units.push(value);
            }
            't' => push(&mut units, '\t'),
            'r' => push(&mut units, '\r'),
            'n' => push(&mut units, '\n'),
            'f' => push(&mut units, '\u{c}'),
            other => push(&mut units, other),
        }
    }
    let mut lossy = false;
    let text = char::decode_utf16(units.iter().copied())
        .map(|r| {
            r.unwrap_or_else(|_| {
                lossy = true;
                char::REPLACEMENT_CHARACTER
            })
        })
        .collect();
    Ok((text, lossy))
}

/// Splits text into logical lines the way the JDK's `Properties.LineReader` does.
struct LineReader<'a> {
    chars: &'a [char],
    pos: usize,
    /// Physical line of `chars[pos]`.
    line: u32,
    skip_lf: bool,
}

impl LineReader<'_> {
    fn next_char(&mut self) -> Option<char> {
        let c = *self.chars.get(self.pos)?;
        self.pos += 1;
        // A CR followed by LF is one line end: count the line at the LF.
        let crlf = c == '\r' && self.chars.get(self.pos) == Some(&'\n');
        if c == '\n' || (c == '\r' && !crlf) {
            self.line += 1;
        }
        Some(c)
    }

    /// The next logical line (escapes unresolved) and the physical line it starts on.
    fn read_line(&mut self) -> Option<(Vec<char>, u32)> {
        let mut buf: Vec<char> = Vec::new();
        let mut skip_white = true;
        let mut appended_line_begin = false;
        let mut preceding_backslash = false;
        let mut start_line = self.line;
        let mut started = false;
        loop {
            let line_here = self.line;
            let Some(c) = self.next_char() else {
                if buf.is_empty() {
                    return None;
                }
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            };
            if self.skip_lf {
                self.skip_lf = false;
                if c == '\n' {
                    continue;
                }
            }
            if skip_white {
                if is_blank(c) {
                    continue;
                }
                if !appended_line_begin && (c == '\r' || c == '\n') {
                    continue;
                }
                skip_white = false;
                appended_line_begin = false;
            }
            if !started {
                started = true;
                start_line = line_here;
            }
            if buf.is_empty() && (c == '#' || c == '!') {
                // A comment: consume through the line end (a following LF of a CR is skipped
                // as a blank-line character by the next round).
                while let Some(c) = self.next_char() {
                    if c == '\r' || c == '\n' {
                        break;
                    }
                }
                skip_white = true;
                started = false;
                continue;
            }
            if c != '\n' && c != '\r' {
                buf.push(c);
                preceding_backslash = c == '\\' && !preceding_backslash;
                continue;
            }
            if buf.is_empty() {
                skip_white = true;
                started = false;
                continue;
            }
            if self.pos >= self.chars.len() {
                if preceding_backslash {
                    buf.pop();
                }
                return Some((buf, start_line));
            }
            if preceding_backslash {
                buf.pop();
                skip_white = true;
                appended_line_begin = true;
                preceding_backslash = false;
                if c == '\r' {
                    self.skip_lf = true;
                }
            } else {
                return Some((buf, start_line));
            }
        }
    }
}

#[cfg(test)]
mod tests;
