//! `encrypt` interceptor (Flumen's own; Flume has no equivalent): encrypts each event body
//! with AES-256-GCM under one key. See [`super::crypto`] for the format, nonces, the
//! authenticated data and key files.
//!
//! Keys: exactly one of `keyFile` (path to the key) and `keyEnv` (name of an environment
//! variable holding it), required; `keyId` (default `default`): the name written in
//! `flumen.key.id`, which a `decrypt` uses to pick its key. A missing file, an unset variable
//! or a key that is not 32 bytes refuses the interceptor with a finding on that key.
//!
//! An event already carrying `flumen.crypto.nonce` is left as it is (it is already
//! encrypted; encrypting it again would overwrite the nonce it needs). Headers are not
//! encrypted. If the operating system's random source fails, the batch's events are reported
//! bad: never sent on in clear, never encrypted with a made-up nonce.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;

use super::crypto::{
    key_from_props, key_id_from_props, B64, KEY_ID_HEADER, MESSAGES_PER_KEY_LIMIT, NONCE_HEADER,
    NONCE_LEN,
};
use super::{InterceptCtx, Interceptor};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;

/// The encrypt interceptor.
pub struct EncryptInterceptor {
    key_id: String,
    cipher: Aes256Gcm,
    nonces: Vec<u8>,
    encrypted: u64,
    warned: bool,
}

impl EncryptInterceptor {
    /// An interceptor encrypting under `cipher`, naming it `key_id`.
    pub fn new(key_id: String, cipher: Aes256Gcm) -> Self {
        EncryptInterceptor {
            key_id,
            cipher,
            nonces: Vec::new(),
            encrypted: 0,
            warned: false,
        }
    }

    /// Reads `keyFile` | `keyEnv` and `keyId`; `None` (with findings) when invalid.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let key_id = key_id_from_props(r, "keyId");
        let cipher = key_from_props(r, "")?;
        let Some(cipher) = cipher else {
            let key = r.full_key("keyFile");
            r.drop_component(Finding::new(
                FindingKind::DroppedComponent,
                None,
                key,
                "encrypt needs its key: set `keyFile` or `keyEnv`; the interceptor is refused.",
            ));
            return None;
        };
        Some(EncryptInterceptor::new(key_id?, cipher))
    }
}

#[async_trait]
impl Interceptor for EncryptInterceptor {
    fn type_name(&self) -> &'static str {
        "encrypt"
    }

    fn describe(&self) -> String {
        format!("cipher=AES-256-GCM keyId={}", self.key_id)
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let fresh = events
            .iter()
            .filter(|e| !e.headers.contains_key(NONCE_HEADER))
            .count();
        self.nonces.resize(fresh * NONCE_LEN, 0);
        if let Err(error) = getrandom::getrandom(&mut self.nonces) {
            tracing::error!(%error, "The operating system's random source failed; events cannot be encrypted.");
            let mut out = Vec::new();
            for e in events {
                if e.headers.contains_key(NONCE_HEADER) {
                    out.push(e);
                } else {
                    ctx.bad(e, format!("no nonce: the OS random source failed: {error}"));
                }
            }
            return out;
        }
        let mut out = Vec::with_capacity(events.len());
        let mut nonces = self.nonces.chunks_exact(NONCE_LEN);
        for mut event in events {
            if event.headers.contains_key(NONCE_HEADER) {
                out.push(event);
                continue;
            }
            let Some(nonce) = nonces.next() else {
                ctx.bad(event, "no nonce left for this event");
                continue;
            };
            let payload = Payload {
                msg: &event.body,
                aad: self.key_id.as_bytes(),
            };
            match self.cipher.encrypt(Nonce::from_slice(nonce), payload) {
                Ok(sealed) => {
                    event.body = sealed.into();
                    event
                        .headers
                        .insert(NONCE_HEADER.into(), B64.encode(nonce).into());
                    event
                        .headers
                        .insert(KEY_ID_HEADER.into(), self.key_id.as_str().into());
                    out.push(event);
                }
                // Only a body past GCM's 64 GiB limit can fail.
                Err(_) => ctx.bad(event, "AES-256-GCM refused the body (too large)"),
            }
        }
        self.encrypted += fresh as u64;
        if self.encrypted >= MESSAGES_PER_KEY_LIMIT && !self.warned {
            self.warned = true;
            tracing::error!(
                key_id = %self.key_id,
                events = self.encrypted,
                "More than 2^32 events were encrypted under this key with random nonces (the NIST limit); rotate the key."
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use aes_gcm::aead::KeyInit;

    use super::*;
    use crate::interceptor::test_support::{props, run, PREFIX};

    fn cipher() -> Aes256Gcm {
        Aes256Gcm::new(&[9u8; 32].into())
    }

    #[tokio::test]
    async fn nonces_are_unique_over_many_events_and_batches() {
        let mut i = EncryptInterceptor::new("k1".into(), cipher());
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let events = (0..4000).map(|_| Event::new(&b"same body"[..])).collect();
            let (out, bad) = run(&mut i, events).await;
            assert!(bad.is_empty());
            for e in out {
                assert_eq!(e.headers[KEY_ID_HEADER], "k1");
                let nonce = B64.decode(&e.headers[NONCE_HEADER]).expect("base64");
                assert_eq!(nonce.len(), NONCE_LEN);
                assert!(seen.insert(nonce), "a nonce repeated");
            }
        }
        assert_eq!(seen.len(), 200_000);
    }

    #[tokio::test]
    async fn the_body_is_sealed_with_the_key_id_as_associated_data() {
        let mut i = EncryptInterceptor::new("k1".into(), cipher());
        let (out, _) = run(&mut i, vec![Event::new(&b"secret"[..])]).await;
        let e = &out[0];
        assert_eq!(e.body.len(), 6 + 16);
        assert!(!e.body.windows(6).any(|w| w == b"secret"));
        let nonce = B64.decode(&e.headers[NONCE_HEADER]).expect("nonce");
        let open =
            |aad: &[u8]| cipher().decrypt(Nonce::from_slice(&nonce), Payload { msg: &e.body, aad });
        assert_eq!(open(b"k1").expect("opens"), b"secret");
        assert!(open(b"k2").is_err());
    }

    #[tokio::test]
    async fn an_already_encrypted_event_is_left_alone() {
        let mut i = EncryptInterceptor::new("k1".into(), cipher());
        let mut e = Event::new(&b"sealed elsewhere"[..]);
        e.headers
            .insert(NONCE_HEADER.into(), "AAAAAAAAAAAAAAAA".into());
        let (out, _) = run(&mut i, vec![e.clone()]).await;
        assert_eq!(out, vec![e]);
    }

    fn build(entries: &[(&str, &str)]) -> (Option<EncryptInterceptor>, Vec<Finding>) {
        let p = props(entries);
        let mut r = PropReader::new(&p, PREFIX);
        let i = EncryptInterceptor::from_props(&mut r);
        (i, r.finish())
    }

    #[test]
    fn config_errors_name_the_key() {
        let dir = tempfile::tempdir().expect("dir");
        let missing = dir.path().join("missing.key");
        let (i, f) = build(&[("keyFile", missing.to_str().expect("utf-8"))]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyFile"));
        assert!(f[0].message.contains("cannot be read"), "{}", f[0].message);

        let short = dir.path().join("short.key");
        std::fs::write(&short, B64.encode([1u8; 16])).expect("write");
        let (i, f) = build(&[("keyFile", short.to_str().expect("utf-8"))]);
        assert!(i.is_none());
        assert!(
            f[0].message.contains("decodes to 16 bytes"),
            "{}",
            f[0].message
        );

        let (i, f) = build(&[("keyEnv", "FLUMEN_TEST_SURELY_UNSET_KEY_VAR")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyEnv"));
        assert!(f[0].message.contains("is not set"));

        let (i, f) = build(&[]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyFile"));

        let good = dir.path().join("good.key");
        std::fs::write(&good, [0xabu8; 32]).expect("write");
        let path = good.to_str().expect("utf-8");
        let (i, f) = build(&[("keyFile", path), ("keyEnv", "X")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyEnv"));
        let (i, f) = build(&[("keyFile", path), ("keyId", "bad id")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyId"));
        let (i, f) = build(&[("keyFile", path), ("keyId", "k-7")]);
        assert_eq!(i.expect("valid").describe(), "cipher=AES-256-GCM keyId=k-7");
        assert!(f.is_empty());
    }
}
