//! Flume's file channel `encryption.*` keys (`FileChannel.configure`,
//! `EncryptionConfiguration`, `KeyProviderFactory`, `JCEFileKeyProvider.Builder` at tag
//! `release-1.11.0-rc2`).
//!
//! Flumen has no encrypted log. A channel Flume would encrypt is refused (it counts as
//! something Flumen lacks) rather than written in plaintext. A configuration Flume itself
//! rejects — `keyProvider` without `activeKey` or `cipherProvider` (or the reverse), an unknown
//! provider name, a `JCEKSFILE` provider without its key store, password file or keys, or
//! with files that do not exist — is Flume's own failure: it drops the channel. Whether the
//! key store really opens is not checked. Key provider settings without
//! `encryption.keyProvider` are ignored by Flume too.

use std::path::Path;

use crate::config::{Finding, FindingKind, PropReader};

/// Flume's built-in key provider (`KeyProviderType.JCEKSFILE`, matched case-insensitively).
const JCEKS_FILE: &str = "JCEKSFILE";

/// Reads the `encryption.*` keys: records what Flumen lacks, or Flume's own failure.
pub(super) fn refuse_encryption(r: &mut PropReader<'_>) {
    let mut set = |key: &str| r.opt_string(key).filter(|v| !v.is_empty());
    let provider = set("encryption.keyProvider");
    let active = set("encryption.activeKey");
    let cipher = set("encryption.cipherProvider");
    // The key provider's own settings (`encryption.keyProvider.keyStoreFile`, ...).
    let provider_keys = r.sub_entries("encryption.keyProvider");
    r.mark_prefix_used("encryption.keyProvider");
    match (&provider, &active, &cipher) {
        (Some(provider), Some(_), Some(_)) => match key_provider_failure(r, provider) {
            Some((key, why)) => flume_refuses(r, key, why),
            None => {
                let origin = r.raw("encryption.keyProvider").map(|p| p.origin.clone());
                let key = r.full_key("encryption.keyProvider");
                r.unsupported(
                    "encryption (`encryption.*`)",
                    Finding::new(
                        FindingKind::UnsupportedType,
                        origin,
                        key,
                        "File channel encryption is not implemented by Flumen; the channel is refused rather than writing its events to disk in plaintext.",
                    ),
                );
            }
        },
        (Some(_), _, _) => {
            let missing = if active.is_none() {
                "encryption.activeKey"
            } else {
                "encryption.cipherProvider"
            };
            flume_refuses(
                r,
                missing,
                "`encryption.keyProvider` is set but this key is missing".into(),
            );
        }
        (None, Some(_), _) | (None, _, Some(_)) => {
            let present = if active.is_some() {
                "encryption.activeKey"
            } else {
                "encryption.cipherProvider"
            };
            flume_refuses(
                r,
                present,
                "this key is set but `encryption.keyProvider` is not".into(),
            );
        }
        (None, None, None) => {
            if let Some((_, p)) = provider_keys.first() {
                r.push(Finding::new(
                    FindingKind::IgnoredKey,
                    Some(p.origin.clone()),
                    p.full_key.clone(),
                    "Key provider settings without `encryption.keyProvider` are ignored, by Flume too: the channel is not encrypted.",
                ));
            }
        }
    }
}

/// Why Flume's key provider would fail to build, as `(key, why)`.
fn key_provider_failure(r: &mut PropReader<'_>, provider: &str) -> Option<(&'static str, String)> {
    if !provider.eq_ignore_ascii_case(JCEKS_FILE) {
        // Any other value is loaded as a class: a plugin Flume may have, or nothing at all.
        return (!provider.contains('.')).then(|| {
            (
                "encryption.keyProvider",
                format!("`{provider}` is neither {JCEKS_FILE} nor a key provider class"),
            )
        });
    }
    for key in [
        "encryption.keyProvider.keyStoreFile",
        "encryption.keyProvider.keyStorePasswordFile",
        "encryption.keyProvider.keys",
    ] {
        let Some(value) = r.opt_string(key).filter(|v| !v.is_empty()) else {
            return Some((key, format!("{JCEKS_FILE} needs this key")));
        };
        let is_file = key != "encryption.keyProvider.keys";
        if is_file && !Path::new(&value).is_file() {
            return Some((key, format!("`{value}` is not a file")));
        }
    }
    None
}

fn flume_refuses(r: &mut PropReader<'_>, key: &'static str, why: String) {
    let origin = r.raw(key).map(|p| p.origin.clone());
    let full = r.full_key(key);
    r.drop_component(Finding::new(
        FindingKind::DroppedComponent,
        origin,
        full,
        format!("Encryption: {why}; Flume fails to configure the channel and drops it."),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::file::FileChannelConfig;
    use crate::channel::file_config::from_props;
    use crate::config::Props;

    fn read(pairs: &[(&str, &str)]) -> (Option<FileChannelConfig>, Option<String>, Vec<Finding>) {
        let props = Props::from_pairs("a.conf", "a1.channels.c1", pairs);
        let mut r = PropReader::new(&props, "c1");
        let c = from_props("c1", &mut r);
        let lacking = r.lacking().map(str::to_string);
        (c, lacking, r.finish())
    }

    #[test]
    fn encryption_flume_would_run_is_refused_never_silently_plaintext() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("keys.jceks");
        let password = dir.path().join("password");
        std::fs::write(&store, b"store").expect("writing");
        std::fs::write(&password, b"secret").expect("writing");
        let (store, password) = (store.display().to_string(), password.display().to_string());
        let (c, lacking, findings) = read(&[
            ("encryption.keyProvider", "jceksfile"),
            ("encryption.activeKey", "key-0"),
            ("encryption.cipherProvider", "AESCTRNOPADDING"),
            ("encryption.keyProvider.keyStoreFile", &store),
            ("encryption.keyProvider.keyStorePasswordFile", &password),
            ("encryption.keyProvider.keys", "key-0"),
        ]);
        assert!(c.is_some());
        assert_eq!(lacking.as_deref(), Some("encryption (`encryption.*`)"));
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].kind, FindingKind::UnsupportedType);
        assert!(findings[0].message.contains("plaintext"));
    }

    #[test]
    fn encryption_flume_rejects_is_flumes_own_drop() {
        let base = [
            ("encryption.keyProvider", "JCEKSFILE"),
            ("encryption.activeKey", "key-0"),
            ("encryption.cipherProvider", "AESCTRNOPADDING"),
        ];
        // No key store: JCEFileKeyProvider.Builder's checkState fails.
        let (c, lacking, findings) = read(&base);
        assert!(c.is_none() && lacking.is_none());
        assert_eq!(findings[0].kind, FindingKind::DroppedComponent);
        assert!(findings[0]
            .key
            .ends_with("encryption.keyProvider.keyStoreFile"));
        // A key store file that does not exist.
        let mut missing = base.to_vec();
        missing.push((
            "encryption.keyProvider.keyStoreFile",
            "/nonexistent/keys.jceks",
        ));
        let (c, _, findings) = read(&missing);
        assert!(c.is_none());
        assert!(
            findings[0].message.contains("is not a file"),
            "{findings:?}"
        );
        // Half a configuration, and an unknown provider name.
        let (c, _, findings) = read(&[("encryption.keyProvider", "JCEKSFILE")]);
        assert!(c.is_none());
        assert!(findings[0].key.ends_with("encryption.activeKey"));
        let mut unknown = base.to_vec();
        unknown[0] = ("encryption.keyProvider", "jcekfile");
        let (c, lacking, _) = read(&unknown);
        assert!(c.is_none() && lacking.is_none());
    }
}
