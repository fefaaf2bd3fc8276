//! Building rustls configurations from Flume's TLS keys (see the module above).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};
use rustls::{RootCertStore, SupportedProtocolVersion};

use super::material::{self, MaterialError};
use super::SERVER_SETTINGS;
use crate::config::{Finding, FindingKind, PropReader};

/// A setting from the component's `key`, else the system property, else the environment.
fn setting(
    r: &mut PropReader<'_>,
    key: &str,
    system: &BTreeMap<String, String>,
    property: &str,
    env: &str,
) -> Option<String> {
    r.opt_string(key)
        .or_else(|| system.get(property).cloned())
        .or_else(|| std::env::var(env).ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Reports `problem` at `key`: Flumen lacks what it needs (`unreadable`), or Flume would
/// fail on it too (the component is dropped).
fn report(r: &mut PropReader<'_>, key: &str, what: &str, problem: MaterialError) {
    let origin = r
        .raw(key)
        .or_else(|| r.raw("ssl"))
        .map(|p| p.origin.clone());
    let full = r.full_key(key);
    match problem {
        MaterialError::Unreadable(message) => {
            let finding = Finding::new(FindingKind::UnsupportedType, origin, full, message);
            r.unsupported(format!("a JKS keystore for the {what}"), finding);
        }
        MaterialError::Bad(message) => r.drop_component(Finding::new(
            FindingKind::BadValue,
            origin,
            full,
            format!("{message}; Flume fails to start the {what}."),
        )),
    }
}

/// The server side (`ssl`, `keystore`, `keystore-password`, `keystore-type` and the
/// filters): `Some(None)` when TLS is off; `None` when the component cannot run (findings say
/// why).
pub fn server_config(
    r: &mut PropReader<'_>,
    system: &BTreeMap<String, String>,
    what: &str,
) -> Option<Option<Arc<ServerConfig>>> {
    if !r.bool("ssl", false) {
        for k in SERVER_SETTINGS {
            r.mark_used(k);
        }
        return Some(None);
    }
    let path = setting(
        r,
        "keystore",
        system,
        "javax.net.ssl.keyStore",
        "FLUME_SSL_KEYSTORE_PATH",
    );
    let password = setting(
        r,
        "keystore-password",
        system,
        "javax.net.ssl.keyStorePassword",
        "FLUME_SSL_KEYSTORE_PASSWORD",
    )
    .unwrap_or_default();
    // The content decides the format (as Java's keystore loading does); the type is read.
    let _ = setting(
        r,
        "keystore-type",
        system,
        "javax.net.ssl.keyStoreType",
        "FLUME_SSL_KEYSTORE_TYPE",
    );
    let Some(path) = path else {
        report(
            r,
            "keystore",
            what,
            MaterialError::Bad("`ssl = true` needs a keystore".into()),
        );
        return None;
    };
    let (chain, key) = match material::load_key_and_chain(&PathBuf::from(&path), &password) {
        Ok(found) => found,
        Err(problem) => {
            report(r, "keystore", what, problem);
            return None;
        }
    };
    let (provider, versions) = filters(r, what)?;
    let built = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key));
    match built {
        Ok(config) => Some(Some(Arc::new(config))),
        Err(error) => {
            report(
                r,
                "keystore",
                what,
                MaterialError::Bad(format!("{path}: {error}")),
            );
            None
        }
    }
}

/// The client side (`ssl`, `trust-all-certs`, `truststore`, `truststore-password`,
/// `truststore-type` and the filters): `Some(None)` when TLS is off. Without a truststore the
/// client trusts Mozilla's roots (Java trusts its `cacerts`); server names are verified.
pub fn client_config(
    r: &mut PropReader<'_>,
    system: &BTreeMap<String, String>,
    what: &str,
) -> Option<Option<Arc<ClientConfig>>> {
    let settings = [
        "trust-all-certs",
        "truststore",
        "truststore-password",
        "truststore-type",
        "exclude-protocols",
        "include-protocols",
        "exclude-cipher-suites",
        "include-cipher-suites",
    ];
    if !r.bool("ssl", false) {
        for k in settings {
            r.mark_used(k);
        }
        return Some(None);
    }
    let trust_all = r.bool("trust-all-certs", false);
    let path = setting(
        r,
        "truststore",
        system,
        "javax.net.ssl.trustStore",
        "FLUME_SSL_TRUSTSTORE_PATH",
    );
    let password = setting(
        r,
        "truststore-password",
        system,
        "javax.net.ssl.trustStorePassword",
        "FLUME_SSL_TRUSTSTORE_PASSWORD",
    )
    .unwrap_or_default();
    let _ = setting(
        r,
        "truststore-type",
        system,
        "javax.net.ssl.trustStoreType",
        "FLUME_SSL_TRUSTSTORE_TYPE",
    );
    let (provider, versions) = filters(r, what)?;
    let builder = match ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
    {
        Ok(builder) => builder,
        Err(error) => {
            report(
                r,
                "include-cipher-suites",
                what,
                MaterialError::Bad(error.to_string()),
            );
            return None;
        }
    };
    let config = if trust_all {
        tracing::warn!(component = what, "trust-all-certs = true: the server's certificate is not checked (the connection is encrypted, not authenticated).");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(TrustAll(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match path {
            Some(path) => match material::load_trusted(&PathBuf::from(&path), &password) {
                Ok(certs) => {
                    let (_, ignored) = roots.add_parsable_certificates(certs);
                    if roots.is_empty() {
                        let problem =
                            format!("{path}: none of its {ignored} certificates is usable");
                        report(r, "truststore", what, MaterialError::Bad(problem));
                        return None;
                    }
                }
                Err(problem) => {
                    report(r, "truststore", what, problem);
                    return None;
                }
            },
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Some(Some(Arc::new(config)))
}

/// Java's names for the protocol versions rustls speaks.
const VERSIONS: &[(&str, &SupportedProtocolVersion)] = &[
    ("TLSv1.3", &rustls::version::TLS13),
    ("TLSv1.2", &rustls::version::TLS12),
];

/// Names from a filter key: space- or comma-separated.
fn names(r: &mut PropReader<'_>, key: &str) -> Option<Vec<String>> {
    r.opt_string(key).map(|v| {
        v.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
}

/// A cipher suite's name as Java writes it (`TLS_AES_128_GCM_SHA256`).
fn java_name(suite: &rustls::SupportedCipherSuite) -> String {
    format!("{:?}", suite.suite()).replacen("TLS13_", "TLS_", 1)
}

/// The crypto provider with the cipher suites the filters leave, and the protocol versions.
fn filters(
    r: &mut PropReader<'_>,
    what: &str,
) -> Option<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>)> {
    let include = names(r, "include-protocols");
    let mut exclude = names(r, "exclude-protocols").unwrap_or_default();
    exclude.extend(names(r, "excludeProtocols").unwrap_or_default());
    let versions: Vec<&'static SupportedProtocolVersion> = VERSIONS
        .iter()
        .filter(|(n, _)| include.as_ref().is_none_or(|i| i.iter().any(|x| x == n)))
        .filter(|(n, _)| !exclude.iter().any(|x| x == n))
        .map(|(_, v)| *v)
        .collect();
    if versions.is_empty() {
        let problem =
            "the protocol filters leave none of TLSv1.2 and TLSv1.3, the versions Flumen speaks";
        report(
            r,
            "include-protocols",
            what,
            MaterialError::Bad(problem.into()),
        );
        return None;
    }
    let include = names(r, "include-cipher-suites");
    let exclude = names(r, "exclude-cipher-suites").unwrap_or_default();
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|s| {
        let name = java_name(s);
        include.as_ref().is_none_or(|i| i.contains(&name)) && !exclude.contains(&name)
    });
    if provider.cipher_suites.is_empty() {
        let problem = "the cipher-suite filters leave none of the suites Flumen offers";
        report(
            r,
            "include-cipher-suites",
            what,
            MaterialError::Bad(problem.into()),
        );
        return None;
    }
    Some((Arc::new(provider), versions))
}

/// `trust-all-certs`: any certificate is accepted, but the handshake's signatures are still
/// checked, so the peer holds the key of the certificate it sent.
#[derive(Debug)]
struct TrustAll(Arc<CryptoProvider>);

impl ServerCertVerifier for TrustAll {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
