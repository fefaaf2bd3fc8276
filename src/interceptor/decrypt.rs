//! `decrypt` interceptor (Flumen's own; Flume has no equivalent): opens what `encrypt` (or
//! any producer of the same format, see [`super::crypto`]) sealed, choosing the key by the
//! event's `flumen.key.id` header.
//!
//! Keys: one key as `keyFile` | `keyEnv` with `keyId` (default `default`), and/or several
//! named in `keys = id1 id2`, each as `keys.<id>.keyFile` | `keys.<id>.keyEnv` (for key
//! rotation: keep the old key listed until its events have drained). At least one key; each
//! id once. A missing file, an unset variable or a key that is not 32 bytes refuses the
//! interceptor with a finding on that key.
//!
//! Every event must be encrypted: an event without `flumen.crypto.nonce` or `flumen.key.id`,
//! with a nonce that is not base64 of 12 bytes, naming a key not configured, or failing
//! authentication (a changed body, nonce or key id, or the wrong key) is reported bad (the
//! dead-letter channel, or the batch fails), never passed on as plaintext that was not
//! authenticated, never dropped. On success the body is the plaintext and both headers are
//! removed.

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use base64::Engine;

use super::crypto::{
    key_from_props, key_id_from_props, valid_key_id, B64, KEY_ID_HEADER, NONCE_HEADER, NONCE_LEN,
};
use super::{InterceptCtx, Interceptor};
use crate::config::{Finding, FindingKind, PropReader};
use crate::event::Event;

/// The decrypt interceptor.
pub struct DecryptInterceptor {
    keys: Vec<(String, Aes256Gcm)>,
}

impl DecryptInterceptor {
    /// An interceptor holding `(key id, key)` pairs.
    pub fn new(keys: Vec<(String, Aes256Gcm)>) -> Self {
        DecryptInterceptor { keys }
    }

    /// Reads the keys (see the module doc); `None` (with findings) when invalid.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        let mut ok = true;
        match key_from_props(r, "") {
            Some(Some(cipher)) => match key_id_from_props(r, "keyId") {
                Some(id) => keys.push((id, cipher)),
                None => ok = false,
            },
            Some(None) => {}
            None => ok = false,
        }
        if let Some(list) = r.raw("keys") {
            for id in list.value.split_whitespace() {
                if !valid_key_id(id) || keys.iter().any(|(k, _)| k == id) {
                    r.drop_component(
                        Finding::new(
                            FindingKind::BadValue,
                            Some(list.origin.clone()),
                            list.full_key.clone(),
                            format!("Key id `{id}` is invalid or given twice; the interceptor is refused."),
                        )
                        .expected("distinct ids of 1 to 64 characters from A-Z a-z 0-9 . _ - :"),
                    );
                    ok = false;
                    continue;
                }
                match key_from_props(r, &format!("keys.{id}.")) {
                    Some(Some(cipher)) => keys.push((id.to_string(), cipher)),
                    Some(None) => {
                        let key = r.full_key(&format!("keys.{id}.keyFile"));
                        r.drop_component(Finding::new(
                            FindingKind::DroppedComponent,
                            Some(list.origin.clone()),
                            key,
                            format!("Key `{id}` is listed in `keys` but has no keyFile or keyEnv; the interceptor is refused."),
                        ));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
        }
        if ok && keys.is_empty() {
            let key = r.full_key("keyFile");
            r.drop_component(Finding::new(
                FindingKind::DroppedComponent,
                None,
                key,
                "decrypt needs a key: set `keyFile` or `keyEnv`, or list `keys`; the interceptor is refused.",
            ));
            ok = false;
        }
        ok.then(|| DecryptInterceptor::new(keys))
    }

    fn open(&self, event: &Event) -> Result<Vec<u8>, String> {
        let nonce_b64 = event
            .headers
            .get(NONCE_HEADER)
            .ok_or_else(|| format!("not encrypted: no {NONCE_HEADER} header"))?;
        let nonce = B64
            .decode(nonce_b64.trim())
            .ok()
            .filter(|n| n.len() == NONCE_LEN)
            .ok_or_else(|| format!("garbled {NONCE_HEADER} header: not base64 of 12 bytes"))?;
        let id = event
            .headers
            .get(KEY_ID_HEADER)
            .ok_or_else(|| format!("no {KEY_ID_HEADER} header"))?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or_else(|| format!("no key `{id}` is configured"))?;
        let payload = Payload {
            msg: &event.body,
            aad: id.as_bytes(),
        };
        cipher.decrypt(Nonce::from_slice(&nonce), payload).map_err(|_| {
            format!("authentication failed under key `{id}`: the body, nonce or key id was altered, or the key is wrong")
        })
    }
}

#[async_trait]
impl Interceptor for DecryptInterceptor {
    fn type_name(&self) -> &'static str {
        "decrypt"
    }

    fn describe(&self) -> String {
        let ids: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
        format!("cipher=AES-256-GCM keys={}", ids.join(","))
    }

    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event> {
        let mut out = Vec::with_capacity(events.len());
        for mut event in events {
            match self.open(&event) {
                Ok(plain) => {
                    event.body = plain.into();
                    event.headers.remove(NONCE_HEADER);
                    event.headers.remove(KEY_ID_HEADER);
                    out.push(event);
                }
                Err(reason) => ctx.bad(event, reason),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::KeyInit;

    use super::*;
    use crate::interceptor::encrypt::EncryptInterceptor;
    use crate::interceptor::test_support::{props, run, PREFIX};

    fn key(b: u8) -> Aes256Gcm {
        Aes256Gcm::new(&[b; 32].into())
    }

    async fn sealed(id: &str, k: u8, bodies: &[&[u8]]) -> Vec<Event> {
        let mut enc = EncryptInterceptor::new(id.into(), key(k));
        let events = bodies
            .iter()
            .map(|b| {
                let mut e = Event::new(b.to_vec());
                e.headers.insert("app".into(), "x".into());
                e
            })
            .collect();
        run(&mut enc, events).await.0
    }

    #[tokio::test]
    async fn round_trips_and_removes_the_crypto_headers() {
        let bodies: Vec<Vec<u8>> = (0..200).map(|n| vec![n as u8; n * 3]).collect();
        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
        let events = sealed("old", 1, &refs).await;
        let mut dec = DecryptInterceptor::new(vec![("new".into(), key(2)), ("old".into(), key(1))]);
        let (out, bad) = run(&mut dec, events).await;
        assert!(bad.is_empty());
        for (e, body) in out.iter().zip(&bodies) {
            assert_eq!(&e.body[..], &body[..]);
            assert_eq!(e.headers.len(), 1, "only `app` is left: {:?}", e.headers);
        }
    }

    #[tokio::test]
    async fn tampering_and_wrong_keys_are_bad_events() {
        let events = sealed(
            "k1",
            1,
            &[b"one", b"two", b"three", b"four", b"five", b"six"],
        )
        .await;
        let mut cases = events.clone();
        let mut flipped = cases[0].body.to_vec();
        flipped[1] ^= 1;
        cases[0].body = flipped.into();
        cases[1].headers.remove(NONCE_HEADER);
        cases[2]
            .headers
            .insert(NONCE_HEADER.into(), "@@not base64@@".into());
        cases[3].headers.insert(KEY_ID_HEADER.into(), "k9".into());
        // A nonce of another event: valid base64, wrong value.
        let other = events[5].headers[NONCE_HEADER].clone();
        cases[4].headers.insert(NONCE_HEADER.into(), other);
        let mut dec = DecryptInterceptor::new(vec![("k1".into(), key(1))]);
        let (out, bad) = run(&mut dec, cases.clone()).await;
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0].body[..], b"six");
        let reasons: Vec<&str> = bad.iter().map(|b| b.reason.as_str()).collect();
        assert!(
            reasons[0].starts_with("authentication failed"),
            "{reasons:?}"
        );
        assert!(reasons[1].starts_with("not encrypted"), "{reasons:?}");
        assert!(reasons[2].starts_with("garbled"), "{reasons:?}");
        assert!(reasons[3].contains("no key `k9`"), "{reasons:?}");
        assert!(
            reasons[4].starts_with("authentication failed"),
            "{reasons:?}"
        );
        for (b, original) in bad.iter().zip(&cases) {
            assert_eq!(&b.event, original, "bad events are reported as they came");
        }

        let mut wrong = DecryptInterceptor::new(vec![("k1".into(), key(2))]);
        let (out, bad) = run(&mut wrong, events).await;
        assert!(out.is_empty());
        assert_eq!(bad.len(), 6);
    }

    fn build(
        entries: &[(&str, &str)],
    ) -> (Option<DecryptInterceptor>, Vec<crate::config::Finding>) {
        let p = props(entries);
        let mut r = PropReader::new(&p, PREFIX);
        let i = DecryptInterceptor::from_props(&mut r);
        (i, r.finish())
    }

    #[test]
    fn several_keys_and_config_errors_naming_the_key() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a.key");
        std::fs::write(&a, "11".repeat(32)).expect("write");
        let a = a.to_str().expect("utf-8");
        let (i, f) = build(&[
            ("keyFile", a),
            ("keyId", "main"),
            ("keys", "old older"),
            ("keys.old.keyFile", a),
            ("keys.older.keyFile", a),
        ]);
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(
            i.expect("valid").describe(),
            "cipher=AES-256-GCM keys=main,old,older"
        );

        let (i, f) = build(&[
            ("keys", "old"),
            ("keys.old.keyEnv", "FLUMEN_TEST_SURELY_UNSET_KEY_VAR"),
        ]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keys.old.keyEnv"));

        let (i, f) = build(&[("keys", "old")]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keys.old.keyFile"));

        let (i, f) = build(&[
            ("keyFile", a),
            ("keys", "default"),
            ("keys.default.keyFile", a),
        ]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keys"));

        let (i, f) = build(&[]);
        assert!(i.is_none());
        assert_eq!(f[0].key, format!("{PREFIX}.keyFile"));
    }
}
