//! AES-256-GCM pieces shared by the `encrypt` and `decrypt` interceptors: the header names,
//! key loading, nonces and the associated data.
//!
//! **Format.** The body becomes `ciphertext ‖ 16-byte tag` (what RustCrypto's `aes-gcm`,
//! Python's `cryptography` `AESGCM` and Go's `crypto/cipher` produce and expect). Headers:
//! `flumen.crypto.nonce` = the 96-bit nonce in standard, padded base64 (16 characters);
//! `flumen.key.id` = the key's name. The associated data (authenticated, not encrypted) is the
//! key id's UTF-8 bytes, so a key id swapped in transit fails authentication. Other headers
//! (including `flumen.codec`) are not authenticated: a tampered codec header makes a later
//! `decompress` fail or pass the body on still compressed, never decrypts it wrongly.
//!
//! **Nonces.** Each nonce is 96 bits from the operating system's random source (one
//! `getrandom` call per batch), never a counter, so nothing needs to persist across restarts
//! and several agents can share a key. Random nonces collide with probability about
//! n²/2⁹⁷ after n messages; NIST SP 800-38D (§8.3) caps random-nonce use at 2³² messages per
//! key (collision chance ≈ 2⁻³³). `encrypt` counts what it encrypted since start and logs an
//! error once past 2³²: rotate keys well before (the count is per process, so the operator
//! owns the total across restarts and agents).
//!
//! **Keys.** A key is 32 bytes. A key file holds either exactly 32 raw bytes, or text (ASCII
//! whitespace around it ignored): 64 hex digits or base64 (standard alphabet, padding
//! optional) of 32 bytes. A 32-byte file made only of hex or base64 characters is read as
//! text, so a text key of the wrong size is refused rather than taken as raw bytes. An
//! environment variable (`keyEnv`) holds hex or base64 text. Key material never appears in
//! logs or findings. Key ids are 1..=64 characters from `A-Z a-z 0-9 . _ - :`.

use aes_gcm::aead::KeyInit;
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use thiserror::Error;

use crate::config::{Finding, FindingKind, PropReader};

/// Header holding the base64 nonce.
pub const NONCE_HEADER: &str = "flumen.crypto.nonce";
/// Header naming the key (also the associated data).
pub const KEY_ID_HEADER: &str = "flumen.key.id";
/// Default of `keyId`.
pub const DEFAULT_KEY_ID: &str = "default";
/// Nonce length in bytes (96 bits).
pub const NONCE_LEN: usize = 12;
/// NIST's limit of random-nonce messages per key.
pub const MESSAGES_PER_KEY_LIMIT: u64 = 1 << 32;

/// Base64 as written in headers: standard alphabet, padded on encode, padding optional on
/// decode.
pub const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why bytes are not an AES-256 key. Never carries the key material.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// Decoded, but not to 32 bytes.
    #[error("it decodes to {0} bytes; AES-256 needs 32")]
    Length(usize),
    /// Neither raw, hex nor base64.
    #[error("it is neither 32 raw bytes, 64 hex digits nor base64 text")]
    Encoding,
}

fn is_text_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// The 32-byte key in `bytes`: raw, hex or base64 (see the module doc). `allow_raw` is false
/// for environment variables.
pub fn parse_key(bytes: &[u8], allow_raw: bool) -> Result<[u8; 32], KeyError> {
    if allow_raw && bytes.len() == 32 && !bytes.iter().all(|&b| is_text_key_byte(b)) {
        let mut key = [0u8; 32];
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| KeyError::Encoding)?
        .trim_matches(|c: char| c.is_ascii_whitespace());
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| KeyError::Encoding)?
    } else {
        B64.decode(text).map_err(|_| KeyError::Encoding)?
    };
    <[u8; 32]>::try_from(decoded.as_slice()).map_err(|_| KeyError::Length(decoded.len()))
}

/// Whether `id` is a valid key id.
pub fn valid_key_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Reads a key id at `key` (default [`DEFAULT_KEY_ID`]); `None` with a finding when invalid.
pub fn key_id_from_props(r: &mut PropReader<'_>, key: &str) -> Option<String> {
    let Some(prop) = r.raw(key) else {
        return Some(DEFAULT_KEY_ID.to_string());
    };
    let id = prop.value.trim();
    if valid_key_id(id) {
        return Some(id.to_string());
    }
    r.drop_component(
        Finding::new(
            FindingKind::BadValue,
            Some(prop.origin.clone()),
            prop.full_key.clone(),
            format!("`{id}` is not a valid key id; the interceptor is refused."),
        )
        .expected("1 to 64 characters from A-Z a-z 0-9 . _ - :"),
    );
    None
}

/// Loads the key named by `<prefix>keyFile` or `<prefix>keyEnv` (prefix `""` or
/// `keys.<id>.`). `Some(None)` when neither is given; `None` (with a finding on the full key)
/// when both are, or the key cannot be read or is not a 32-byte key.
pub fn key_from_props(r: &mut PropReader<'_>, prefix: &str) -> Option<Option<Aes256Gcm>> {
    let file_key = format!("{prefix}keyFile");
    let env_key = format!("{prefix}keyEnv");
    let file = r.raw(&file_key);
    let env = r.raw(&env_key);
    let expected = "32 raw bytes, 64 hex digits, or base64 of 32 bytes";
    let (prop, result) = match (file, env) {
        (None, None) => return Some(None),
        (Some(_), Some(env)) => {
            r.drop_component(Finding::new(
                FindingKind::BadValue,
                Some(env.origin.clone()),
                env.full_key.clone(),
                format!(
                    "Give exactly one of `{file_key}` and `{env_key}`; the interceptor is refused."
                ),
            ));
            return None;
        }
        (Some(file), None) => {
            let path = file.value.trim();
            let result = match std::fs::read(path) {
                Ok(bytes) => parse_key(&bytes, true)
                    .map_err(|e| format!("Key file `{path}` holds no AES-256 key: {e}.")),
                Err(error) => Err(format!("Key file `{path}` cannot be read: {error}.")),
            };
            (file, result)
        }
        (None, Some(env)) => {
            let name = env.value.trim();
            let result = match std::env::var(name) {
                Ok(text) => parse_key(text.as_bytes(), false).map_err(|e| {
                    format!("Environment variable `{name}` holds no AES-256 key: {e}.")
                }),
                Err(std::env::VarError::NotPresent) => {
                    Err(format!("Environment variable `{name}` is not set."))
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(format!(
                    "Environment variable `{name}` holds no AES-256 key: it is not text."
                )),
            };
            (env, result)
        }
    };
    match result {
        Ok(key) => Some(Some(Aes256Gcm::new(&key.into()))),
        Err(message) => {
            r.drop_component(
                Finding::new(
                    FindingKind::BadValue,
                    Some(prop.origin.clone()),
                    prop.full_key.clone(),
                    format!("{message} The interceptor is refused."),
                )
                .expected(expected),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_raw_hex_and_base64() {
        let raw: Vec<u8> = (200..232).collect();
        let want: [u8; 32] = raw.clone().try_into().expect("32");
        assert_eq!(parse_key(&raw, true), Ok(want));
        assert_eq!(parse_key(&raw, false), Err(KeyError::Encoding));
        let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(parse_key(format!("{hex}\n").as_bytes(), true), Ok(want));
        let b64 = B64.encode(&raw);
        assert_eq!(
            parse_key(format!("  {b64}\r\n").as_bytes(), false),
            Ok(want)
        );
        assert_eq!(
            parse_key(b64.trim_end_matches('=').as_bytes(), false),
            Ok(want)
        );
    }

    #[test]
    fn wrong_sizes_and_text_that_looks_raw_are_refused() {
        // 32 base64 characters (a 24-byte key) are text, not a raw key.
        let text24 = B64.encode([7u8; 24]);
        assert_eq!(text24.len(), 32);
        assert_eq!(
            parse_key(text24.as_bytes(), true),
            Err(KeyError::Length(24))
        );
        assert_eq!(parse_key(&[1u8; 31], true), Err(KeyError::Encoding));
        assert_eq!(parse_key(b"not a key!", true), Err(KeyError::Encoding));
        assert_eq!(parse_key(b"", false), Err(KeyError::Length(0)));
    }

    #[test]
    fn key_ids_are_header_safe() {
        assert!(valid_key_id("k-2024.01:a_b"));
        assert!(!valid_key_id(""));
        assert!(!valid_key_id("a b"));
        assert!(!valid_key_id("a=b"));
        assert!(!valid_key_id(&"x".repeat(65)));
    }
}
