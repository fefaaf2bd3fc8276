//! TLS of network components, with Flume's keys. The avro source and sink speak TLS (rustls,
//! TLS 1.2 and 1.3); other components that turn it on are refused as a partial topology
//! ([`refuse_if_on`]), never run in clear text.
//!
//! Settings come from the component's keys, then the `-D` system properties
//! (`javax.net.ssl.keyStore`, …), then Flume's environment variables (`FLUME_SSL_KEYSTORE_PATH`,
//! …), as Flume's `SSLUtil` orders them. `include-protocols`/`exclude-protocols` and
//! `include-cipher-suites`/`exclude-cipher-suites` filter what rustls offers (names as Java
//! writes them, space- or comma-separated); a filter that leaves nothing drops the component,
//! as Flume fails to start it.

#[cfg(feature = "avro-rpc")]
mod config;
#[cfg(feature = "avro-rpc")]
pub mod material;

#[cfg(feature = "avro-rpc")]
pub use config::{client_config, server_config};

use crate::config::{Finding, FindingKind, PropReader};

/// Refuses the component when any of `switches` (`ssl`, `enableSSL`) is true; `what` names it
/// in the finding (`http source`), `settings` are the keys Flume reads when TLS is on.
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
