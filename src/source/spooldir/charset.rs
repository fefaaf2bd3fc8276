//! Character sets of the LINE deserializer: `inputCharset` decodes a line, with Flume's
//! `decodeErrorPolicy` for malformed input, and `deserializer.outputCharset` encodes it into
//! the event body.
//!
//! Names are Java's (`UTF-8`, `ISO-8859-1`, `US-ASCII`, `windows-1252`, `Shift_JIS`, `GBK`,
//! ...). UTF-8, ISO-8859-1 and US-ASCII are handled here exactly as Java handles them; other
//! names go to `encoding_rs` (the WHATWG encodings). Only ASCII-compatible charsets are
//! accepted, because lines are split on the byte `0x0A`: UTF-16 and UTF-32 are refused at
//! configuration time (Flume reads them).

use encoding_rs::{DecoderResult, EncoderResult, Encoding};

/// A supported character set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8 (the default both ways).
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
    /// US-ASCII: bytes above 0x7F are malformed.
    Ascii,
    /// Another ASCII-compatible encoding from `encoding_rs`.
    Other(&'static Encoding),
}

/// Why a charset name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CharsetError {
    /// Not a known charset name.
    #[error("`{0}` is not a known character set")]
    Unknown(String),
    /// Known, but lines cannot be found by the byte 0x0A in it.
    #[error("`{0}` is not ASCII-compatible; Flumen splits lines on the byte 0x0A and supports only ASCII-compatible charsets")]
    NotAsciiCompatible(String),
}

/// What to do with input that is not valid in `inputCharset` (Flume's `DecodeErrorPolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeErrorPolicy {
    /// Stop reading the file at the malformed line.
    Fail,
    /// Replace each malformed sequence with U+FFFD.
    Replace,
    /// Drop malformed bytes.
    Ignore,
}

impl Charset {
    /// The charset Java calls `name` (case-insensitive, with Java's common aliases).
    pub fn for_name(name: &str) -> Result<Charset, CharsetError> {
        let lower = name.trim().to_ascii_lowercase();
        let simple: String = lower.chars().filter(|c| *c != '-' && *c != '_').collect();
        match simple.as_str() {
            "utf8" => return Ok(Charset::Utf8),
            "iso88591" | "latin1" | "l1" | "iso885911987" | "cp819" | "ibm819" => {
                return Ok(Charset::Latin1)
            }
            "usascii" | "ascii" | "iso646us" | "default" => return Ok(Charset::Ascii),
            _ => {}
        }
        if simple.starts_with("utf16")
            || simple.starts_with("utf32")
            || simple.starts_with("ucs2")
            || simple.starts_with("ucs4")
            || simple == "unicode"
        {
            return Err(CharsetError::NotAsciiCompatible(name.to_string()));
        }
        match Encoding::for_label(lower.as_bytes()) {
            Some(e) if e.is_ascii_compatible() && e.output_encoding() == e => Ok(Charset::Other(e)),
            Some(_) => Err(CharsetError::NotAsciiCompatible(name.to_string())),
            None => Err(CharsetError::Unknown(name.to_string())),
        }
    }

    /// The canonical name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Charset::Utf8 => "UTF-8",
            Charset::Latin1 => "ISO-8859-1",
            Charset::Ascii => "US-ASCII",
            Charset::Other(e) => e.name(),
        }
    }
}

/// Where malformed input was found: the byte offset inside the decoded slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed {
    /// Offset of the first malformed byte.
    pub at: usize,
}

/// Decodes `bytes` into `out` (appending). Under [`DecodeErrorPolicy::Fail`] the first
/// malformed byte returns an error and `out` holds what came before it.
pub fn decode(
    charset: Charset,
    bytes: &[u8],
    policy: DecodeErrorPolicy,
    out: &mut String,
) -> Result<(), Malformed> {
    match charset {
        Charset::Utf8 => decode_utf8(bytes, policy, out),
        Charset::Latin1 => {
            out.extend(bytes.iter().map(|&b| b as char));
            Ok(())
        }
        Charset::Ascii => {
            for (i, &b) in bytes.iter().enumerate() {
                if b < 0x80 {
                    out.push(b as char);
                } else {
                    match policy {
                        DecodeErrorPolicy::Fail => return Err(Malformed { at: i }),
                        DecodeErrorPolicy::Replace => out.push(char::REPLACEMENT_CHARACTER),
                        DecodeErrorPolicy::Ignore => {}
                    }
                }
            }
            Ok(())
        }
        Charset::Other(encoding) => decode_other(encoding, bytes, policy, out),
    }
}

fn decode_utf8(bytes: &[u8], policy: DecodeErrorPolicy, out: &mut String) -> Result<(), Malformed> {
    let mut rest = bytes;
    let mut base = 0;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return Ok(());
            }
            Err(e) => {
                let good = e.valid_up_to();
                // The prefix is valid UTF-8 by construction; no allocation, no panic.
                out.push_str(std::str::from_utf8(&rest[..good]).unwrap_or_default());
                if policy == DecodeErrorPolicy::Fail {
                    return Err(Malformed { at: base + good });
                }
                if policy == DecodeErrorPolicy::Replace {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
                // `None`: an incomplete sequence at the end of the slice.
                let bad = e.error_len().unwrap_or(rest.len() - good);
                base += good + bad;
                rest = &rest[good + bad..];
            }
        }
    }
}

fn decode_other(
    encoding: &'static Encoding,
    bytes: &[u8],
    policy: DecodeErrorPolicy,
    out: &mut String,
) -> Result<(), Malformed> {
    let mut decoder = encoding.new_decoder_without_bom_handling();
    let mut rest = bytes;
    let mut base = 0;
    loop {
        let needed = decoder
            .max_utf8_buffer_length_without_replacement(rest.len())
            .unwrap_or(rest.len() * 3 + 16);
        out.reserve(needed);
        let (result, read) = decoder.decode_to_string_without_replacement(rest, out, true);
        match result {
            DecoderResult::InputEmpty => return Ok(()),
            DecoderResult::OutputFull => {}
            DecoderResult::Malformed(bad, after) => {
                if policy == DecodeErrorPolicy::Fail {
                    return Err(Malformed {
                        at: (base + read).saturating_sub(bad as usize + after as usize),
                    });
                }
                if policy == DecodeErrorPolicy::Replace {
                    out.push(char::REPLACEMENT_CHARACTER);
                }
            }
        }
        base += read;
        rest = &rest[read..];
    }
}

/// Encodes `text` into `out` (appending); characters the charset cannot represent become
/// `?`, as Java's `String.getBytes(Charset)` does.
pub fn encode(charset: Charset, text: &str, out: &mut Vec<u8>) {
    match charset {
        Charset::Utf8 => out.extend_from_slice(text.as_bytes()),
        Charset::Latin1 => out.extend(text.chars().map(|c| u8::try_from(c).unwrap_or(b'?'))),
        Charset::Ascii => out.extend(
            text.chars()
                .map(|c| if c.is_ascii() { c as u8 } else { b'?' }),
        ),
        Charset::Other(encoding) => {
            let mut encoder = encoding.new_encoder();
            let mut rest = text;
            loop {
                let needed = encoder
                    .max_buffer_length_from_utf8_without_replacement(rest.len())
                    .unwrap_or(rest.len() * 4 + 16);
                out.reserve(needed);
                let (result, read) =
                    encoder.encode_from_utf8_to_vec_without_replacement(rest, out, true);
                rest = &rest[read..];
                match result {
                    EncoderResult::InputEmpty => return,
                    EncoderResult::OutputFull => {}
                    EncoderResult::Unmappable(_) => out.push(b'?'),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(cs: Charset, bytes: &[u8], policy: DecodeErrorPolicy) -> Result<String, Malformed> {
        let mut s = String::new();
        decode(cs, bytes, policy, &mut s).map(|()| s)
    }

    #[test]
    fn java_names_resolve_and_utf16_is_refused() {
        assert_eq!(Charset::for_name("UTF-8"), Ok(Charset::Utf8));
        assert_eq!(Charset::for_name("utf8"), Ok(Charset::Utf8));
        assert_eq!(Charset::for_name("ISO-8859-1"), Ok(Charset::Latin1));
        assert_eq!(Charset::for_name("US-ASCII"), Ok(Charset::Ascii));
        assert!(matches!(
            Charset::for_name("windows-1252"),
            Ok(Charset::Other(_))
        ));
        assert!(matches!(
            Charset::for_name("Shift_JIS"),
            Ok(Charset::Other(_))
        ));
        assert!(matches!(
            Charset::for_name("UTF-16"),
            Err(CharsetError::NotAsciiCompatible(_))
        ));
        assert!(matches!(
            Charset::for_name("no-such-charset"),
            Err(CharsetError::Unknown(_))
        ));
    }

    #[test]
    fn malformed_utf8_fails_replaces_or_is_dropped() {
        let bytes = b"ab\xffcd\xe2\x82";
        assert_eq!(
            dec(Charset::Utf8, bytes, DecodeErrorPolicy::Fail),
            Err(Malformed { at: 2 })
        );
        assert_eq!(
            dec(Charset::Utf8, bytes, DecodeErrorPolicy::Replace).as_deref(),
            Ok("ab\u{fffd}cd\u{fffd}")
        );
        assert_eq!(
            dec(Charset::Utf8, bytes, DecodeErrorPolicy::Ignore).as_deref(),
            Ok("abcd")
        );
    }

    #[test]
    fn ascii_and_other_encodings_follow_the_policy() {
        assert_eq!(
            dec(Charset::Ascii, b"a\xe9b", DecodeErrorPolicy::Replace).as_deref(),
            Ok("a\u{fffd}b")
        );
        assert_eq!(
            dec(Charset::Latin1, b"a\xe9b", DecodeErrorPolicy::Fail).as_deref(),
            Ok("a\u{e9}b")
        );
        let sjis = Charset::for_name("Shift_JIS").unwrap();
        // 0x82 0xA0 is HIRAGANA LETTER A; a lone 0x82 at the end is malformed.
        assert_eq!(
            dec(sjis, b"x\x82\xa0y\x82", DecodeErrorPolicy::Ignore).as_deref(),
            Ok("x\u{3042}y")
        );
        assert_eq!(
            dec(sjis, b"x\x82\xa0y\x82", DecodeErrorPolicy::Fail),
            Err(Malformed { at: 4 })
        );
    }

    #[test]
    fn unmappable_characters_encode_as_question_marks() {
        let mut out = Vec::new();
        encode(Charset::Latin1, "é€", &mut out);
        assert_eq!(out, b"\xe9?");
        out.clear();
        encode(
            Charset::for_name("windows-1252").unwrap(),
            "€\u{3042}",
            &mut out,
        );
        assert_eq!(out, b"\x80?");
    }
}
