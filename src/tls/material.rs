//! Reading keystores and truststores: PKCS#12 (Java's default since 9, `keystore-type =
//! PKCS12`), PEM (a Flumen extension: `keystore-type = PEM`, a file holding the private key
//! and its certificate chain, or a truststore of certificates). A JKS or JCEKS file, which
//! Flumen cannot read, is recognised by its magic number and named with the `keytool`
//! command that converts it. The file's content decides, not `keystore-type`, as Java does.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What a keystore could not give, and whether Flume could have read it.
#[derive(Debug, PartialEq, Eq)]
pub enum MaterialError {
    /// A format Java reads and Flumen does not (JKS, JCEKS).
    Unreadable(String),
    /// A file Flume would fail on too (missing, wrong password, no key).
    Bad(String),
}

const JKS_MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
const JCEKS_MAGIC: [u8; 4] = [0xce, 0xce, 0xce, 0xce];

fn read(path: &Path) -> Result<Vec<u8>, MaterialError> {
    let bytes = std::fs::read(path)
        .map_err(|e| MaterialError::Bad(format!("cannot read {}: {e}", path.display())))?;
    let kind = match bytes.get(..4) {
        Some(m) if m == JKS_MAGIC => Some("JKS"),
        Some(m) if m == JCEKS_MAGIC => Some("JCEKS"),
        _ => None,
    };
    if let Some(kind) = kind {
        let p = path.display();
        return Err(MaterialError::Unreadable(format!(
            "{p} is a {kind} keystore, which Flumen cannot read; convert it once with `keytool -importkeystore -srckeystore {p} -srcstoretype {kind} -destkeystore {p}.p12 -deststoretype PKCS12` and point the config at the .p12 file (keystore-type = PKCS12)"
        )));
    }
    Ok(bytes)
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .is_some_and(|i| bytes[i..].starts_with(b"-----BEGIN"))
}

/// A server's certificate chain and private key.
pub fn load_key_and_chain(
    path: &Path,
    password: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), MaterialError> {
    let bytes = read(path)?;
    let shown = path.display();
    if is_pem(&bytes) {
        let chain = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MaterialError::Bad(format!("{shown}: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&bytes)
            .map_err(|e| MaterialError::Bad(format!("{shown}: no private key ({e})")))?;
        if chain.is_empty() {
            return Err(MaterialError::Bad(format!("{shown}: no certificate")));
        }
        return Ok((chain, key));
    }
    let store = p12_keystore::KeyStore::from_pkcs12(&bytes, password).map_err(|e| {
        MaterialError::Bad(format!(
            "{shown} is not a PKCS#12 keystore this password opens: {e}"
        ))
    })?;
    let Some((_, entry)) = store.private_key_chain() else {
        return Err(MaterialError::Bad(format!("{shown} holds no private key")));
    };
    let chain = entry
        .chain()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(entry.key().to_vec()));
    Ok((chain, key))
}

/// The certificates a client trusts.
pub fn load_trusted(
    path: &Path,
    password: &str,
) -> Result<Vec<CertificateDer<'static>>, MaterialError> {
    let bytes = read(path)?;
    let shown = path.display();
    let certs: Vec<CertificateDer<'static>> = if is_pem(&bytes) {
        CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MaterialError::Bad(format!("{shown}: {e}")))?
    } else {
        let store = p12_keystore::KeyStore::from_pkcs12(&bytes, password).map_err(|e| {
            MaterialError::Bad(format!(
                "{shown} is not a PKCS#12 truststore this password opens: {e}"
            ))
        })?;
        store
            .entries()
            .flat_map(|(_, entry)| match entry {
                p12_keystore::KeyStoreEntry::Certificate(c) => vec![c.as_der().to_vec()],
                p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => {
                    k.chain().iter().map(|c| c.as_der().to_vec()).collect()
                }
                _ => Vec::new(),
            })
            .map(CertificateDer::from)
            .collect()
    };
    if certs.is_empty() {
        return Err(MaterialError::Bad(format!("{shown} holds no certificate")));
    }
    Ok(certs)
}
