//! TLS settings of network components. Flumen does not implement TLS yet: a component whose
//! config turns it on is refused as a partial topology (it needs something Flumen lacks),
//! never run in clear text, and the settings Flume would read with it are taken as read.

use crate::config::{Finding, FindingKind, PropReader};

/// Refuses the component when any of `switches` (`ssl`, `enableSSL`) is true; `what` names it
/// in the finding (`avro source`), `settings` are the keys Flume reads when TLS is on.
pub fn refuse_if_on(r: &mut PropReader<'_>, switches: &[&str], what: &str, settings: &[&str]) {
    for &key in switches {
        if !r.bool(key, false) {
            continue;
        }
        let finding = Finding::new(
            FindingKind::UnsupportedType,
            r.raw(key).map(|p| p.origin.clone()),
            r.full_key(key),
            format!(
                "TLS is not implemented yet by Flumen's {what}; it is refused rather than run in clear text."
            ),
        );
        r.unsupported("TLS (`ssl`)", finding);
        for k in settings {
            r.mark_used(k);
        }
    }
}

/// What Flume's TLS servers read (a keystore and the protocol and suite filters).
pub const SERVER_SETTINGS: &[&str] = &[
    "keystore",
    "keystore-password",
    "keystore-type",
    "keystorePassword",
    "excludeProtocols",
    "exclude-protocols",
    "include-protocols",
    "exclude-cipher-suites",
    "include-cipher-suites",
];

/// What Flume's TLS clients read (a truststore and the filters).
pub const CLIENT_SETTINGS: &[&str] = &[
    "trust-all-certs",
    "truststore",
    "truststore-password",
    "truststore-type",
    "exclude-protocols",
    "include-protocols",
    "exclude-cipher-suites",
    "include-cipher-suites",
];
