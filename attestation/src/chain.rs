//! Certificate chain trust, shared by both formats: every link signed by the
//! next, the chain ending in (or issued by) a trusted root, every certificate
//! valid at the verification instant, and no serial on the revocation status
//! list.
//!
//! Trust is decided by the root's *public key* (SubjectPublicKeyInfo), as
//! Google recommends for key attestation: Google re-issued its RSA root
//! several times with the same key, and devices carry any of those
//! certificates. Apple's x5c omits the root, so a chain whose last
//! certificate is *signed by* a trusted root is accepted too.
//!
//! Signatures are verified by x509-parser's `verify` feature (ring):
//! ECDSA P-256/P-384 with SHA-256/SHA-384 (including the P-256 key signing
//! with SHA-384 that some intermediates use) and RSA PKCS#1 v1.5.

use std::collections::HashMap;

use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer as _;

use super::error::AttestationError;

/// Longest chain accepted (real Android chains have 3–5 certificates).
pub const MAX_CHAIN_LEN: usize = 10;

/// A trusted root certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchor {
    /// Subject, for messages and facts.
    pub subject: String,
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Its SubjectPublicKeyInfo, DER.
    spki: Vec<u8>,
}

/// The roots one attestation format trusts (Google's, or Apple's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustAnchors {
    /// What these roots are, for messages ("Google hardware attestation").
    pub name: String,
    roots: Vec<TrustAnchor>,
}

impl TrustAnchors {
    /// Parses one or more PEM certificates.
    pub fn from_pem(name: &str, pem: &str) -> Result<TrustAnchors, String> {
        let mut ders = Vec::new();
        for p in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
            let p = p.map_err(|e| format!("{name} roots: bad PEM: {e}"))?;
            if p.label != "CERTIFICATE" {
                return Err(format!("{name} roots: unexpected PEM block {:?}", p.label));
            }
            ders.push(p.contents);
        }
        TrustAnchors::from_der(name, ders)
    }

    /// From DER certificates.
    pub fn from_der(name: &str, ders: Vec<Vec<u8>>) -> Result<TrustAnchors, String> {
        if ders.is_empty() {
            return Err(format!("{name} roots: no certificate"));
        }
        let mut roots = Vec::new();
        for der in ders {
            let (rest, cert) = X509Certificate::from_der(&der)
                .map_err(|e| format!("{name} roots: bad certificate: {e}"))?;
            if !rest.is_empty() {
                return Err(format!("{name} roots: trailing bytes after a certificate"));
            }
            let subject = cert.subject().to_string();
            let spki = cert.public_key().raw.to_vec();
            roots.push(TrustAnchor {
                subject,
                spki,
                der: der.clone(),
            });
        }
        Ok(TrustAnchors {
            name: name.to_owned(),
            roots,
        })
    }

    /// The roots.
    pub fn roots(&self) -> &[TrustAnchor] {
        &self.roots
    }
}

/// When certificates must be valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityCheck {
    /// At this instant (Unix seconds): now at enrollment, `--at` in the operator tool.
    At(i64),
    /// Not at all. Only for captured test vectors whose links have long expired
    /// (see the tests); never used by the server.
    SkipForCapturedVectors,
}

/// One entry of Google's attestation status list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct StatusEntry {
    /// `REVOKED` or `SUSPENDED`.
    pub status: String,
    /// e.g. `KEY_COMPROMISE`, `CA_COMPROMISE`, `SUPERSEDED`, `SOFTWARE_FLAW`.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub expires: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

/// Google's attestation certificate status list
/// (<https://android.googleapis.com/attestation/status>):
/// `{"entries": {"<serial, lower-case hex>": {"status": "REVOKED", "reason": "KEY_COMPROMISE"}, …}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusList {
    entries: HashMap<String, StatusEntry>,
}

#[derive(serde::Deserialize)]
struct StatusFile {
    entries: HashMap<String, StatusEntry>,
}

impl StatusList {
    /// Parses the JSON document. Serials are normalised (lower case, no leading zeros).
    pub fn from_json(text: &str) -> Result<StatusList, String> {
        let f: StatusFile =
            serde_json::from_str(text).map_err(|e| format!("not a status list: {e}"))?;
        let mut entries = HashMap::new();
        for (serial, entry) in f.entries {
            if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!("serial {serial:?} is not hexadecimal"));
            }
            entries.insert(normalise_serial(&serial), entry);
        }
        Ok(StatusList { entries })
    }

    /// Reads and parses a status list file.
    pub fn load(path: &std::path::Path) -> Result<StatusList, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        StatusList::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The entry for a certificate serial (raw big-endian bytes), if listed.
    pub fn lookup(&self, serial: &[u8]) -> Option<&StatusEntry> {
        self.entries.get(&normalise_serial(&hex::encode(serial)))
    }

    /// Number of listed serials.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn normalise_serial(hex: &str) -> String {
    let s = hex.trim_start_matches('0').to_ascii_lowercase();
    if s.is_empty() { "0".to_owned() } else { s }
}

/// What a verified chain tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// Subject of the trusted root it ends in.
    pub root: String,
    /// Number of certificates presented.
    pub len: usize,
    /// Whether a status list was consulted.
    pub revocation_checked: bool,
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Parses one DER certificate strictly (no trailing bytes).
pub fn parse_certificate(
    index: usize,
    der: &[u8],
) -> Result<X509Certificate<'_>, AttestationError> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| AttestationError::MalformedCertificate {
            index,
            reason: e.to_string(),
        })?;
    if !rest.is_empty() {
        return Err(AttestationError::MalformedCertificate {
            index,
            reason: "trailing bytes".into(),
        });
    }
    Ok(cert)
}

/// Verifies `certificates` (leaf first) against `anchors`:
///
/// 1. 1..=[`MAX_CHAIN_LEN`] certificates, each well-formed DER.
/// 2. Each certificate's signature verifies with the next one's public key,
///    and its issuer is the next one's subject.
/// 3. The last certificate's public key is a trusted root's, or the last
///    certificate is signed by a trusted root (chains that omit the root).
/// 4. Every certificate is valid at the instant (unless skipped for captured vectors).
/// 5. No serial is on the status list, when one is given.
pub fn verify_chain(
    certificates: &[Vec<u8>],
    anchors: &TrustAnchors,
    validity: ValidityCheck,
    status: Option<&StatusList>,
) -> Result<VerifiedChain, AttestationError> {
    // 1.
    if certificates.is_empty() {
        return Err(AttestationError::EmptyChain);
    }
    if certificates.len() > MAX_CHAIN_LEN {
        return Err(AttestationError::ChainTooLong {
            len: certificates.len(),
            max: MAX_CHAIN_LEN,
        });
    }
    let parsed = certificates
        .iter()
        .enumerate()
        .map(|(i, der)| parse_certificate(i, der))
        .collect::<Result<Vec<_>, _>>()?;

    // 2.
    for (i, pair) in parsed.windows(2).enumerate() {
        let (cert, issuer) = (&pair[0], &pair[1]);
        if cert.issuer().as_raw() != issuer.subject().as_raw() {
            return Err(AttestationError::BadChainSignature { index: i });
        }
        cert.verify_signature(Some(issuer.public_key()))
            .map_err(|_| AttestationError::BadChainSignature { index: i })?;
    }

    // 3.
    let last = parsed.last().expect("non-empty");
    let last_spki = last.public_key().raw;
    let root = match anchors.roots.iter().find(|r| r.spki == last_spki) {
        Some(r) => r.subject.clone(),
        None => {
            let issued_by_root = anchors.roots.iter().find(|r| {
                let Ok((_, root)) = X509Certificate::from_der(&r.der) else {
                    return false;
                };
                last.issuer().as_raw() == root.subject().as_raw()
                    && last.verify_signature(Some(root.public_key())).is_ok()
            });
            match issued_by_root {
                Some(r) => r.subject.clone(),
                None => {
                    return Err(AttestationError::UntrustedRoot {
                        anchors: anchors.name.clone(),
                    });
                }
            }
        }
    };

    // 4.
    if let ValidityCheck::At(now) = validity {
        for (i, c) in parsed.iter().enumerate() {
            let v = c.validity();
            if now < v.not_before.timestamp() {
                return Err(AttestationError::NotYetValid {
                    index: i,
                    not_before: rfc3339(v.not_before.timestamp()),
                });
            }
            if now > v.not_after.timestamp() {
                return Err(AttestationError::Expired {
                    index: i,
                    not_after: rfc3339(v.not_after.timestamp()),
                });
            }
        }
    }

    // 5.
    if let Some(list) = status {
        for (i, c) in parsed.iter().enumerate() {
            let serial = c.tbs_certificate.raw_serial();
            if let Some(entry) = list.lookup(serial) {
                let reason = match &entry.reason {
                    Some(r) => format!("{} ({r})", entry.status),
                    None => entry.status.clone(),
                };
                return Err(AttestationError::Revoked {
                    index: i,
                    serial: normalise_serial(&hex::encode(serial)),
                    reason,
                });
            }
        }
    }

    Ok(VerifiedChain {
        root,
        len: parsed.len(),
        revocation_checked: status.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_compared_without_leading_zeros_and_case() {
        let list = StatusList::from_json(
            r#"{"entries": {"00AbC1": {"status": "REVOKED", "reason": "KEY_COMPROMISE"}}}"#,
        )
        .unwrap();
        assert!(list.lookup(&[0x00, 0xab, 0xc1]).is_some());
        assert!(list.lookup(&[0xab, 0xc1]).is_some());
        assert!(list.lookup(&[0xab, 0xc2]).is_none());
    }

    #[test]
    fn a_status_list_with_a_non_hex_serial_is_refused() {
        assert!(StatusList::from_json(r#"{"entries": {"xyz": {"status": "REVOKED"}}}"#).is_err());
        assert!(StatusList::from_json(r#"{"nope": 1}"#).is_err());
    }

    #[test]
    fn an_empty_chain_is_refused() {
        let anchors = TrustAnchors {
            name: "test".into(),
            roots: vec![],
        };
        assert_eq!(
            verify_chain(&[], &anchors, ValidityCheck::SkipForCapturedVectors, None),
            Err(AttestationError::EmptyChain)
        );
        let long = vec![vec![0x30]; MAX_CHAIN_LEN + 1];
        assert!(matches!(
            verify_chain(&long, &anchors, ValidityCheck::SkipForCapturedVectors, None),
            Err(AttestationError::ChainTooLong { .. })
        ));
    }
}
