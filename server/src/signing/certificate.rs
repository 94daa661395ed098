//! Reading X.509 certificates: the facts CSC `credentials/info` reports,
//! and the public key that must match a credential's private key.

use time::format_description::well_known::Rfc3339;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use super::hc_role::{SUBJECT_DIRECTORY_ATTRIBUTES_DOTTED, hc_actor_codes};
use super::{KeyAlgorithm, SigningError, oid};

/// What CSC `credentials/info` needs from a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN in RFC 4514-like text (`C=JP, O=…, CN=…`).
    pub subject_dn: String,
    /// Issuer DN, same form.
    pub issuer_dn: String,
    /// Serial number as lowercase hex of its DER integer bytes (CSC `serialNumber`).
    pub serial_hex: String,
    /// Start of validity, RFC 3339 UTC (CSC `validFrom`).
    pub not_before: String,
    /// End of validity, RFC 3339 UTC (CSC `validTo`).
    pub not_after: String,
    /// Public key size in bits (CSC `key.len`).
    pub key_len_bits: u32,
    /// The key algorithm when it is one this server signs with.
    pub key_algorithm: Option<KeyAlgorithm>,
    /// The HPKI hcRole code (e.g. "Medical Doctor") when present.
    pub hc_role_code: Option<String>,
}

pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, SigningError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err(SigningError::BadCertificate(
            "trailing bytes after the certificate".into(),
        )),
        Err(e) => Err(SigningError::BadCertificate(format!(
            "not a DER X.509 certificate: {e}"
        ))),
    }
}

fn rfc3339(t: x509_parser::time::ASN1Time) -> Result<String, SigningError> {
    t.to_datetime()
        .format(&Rfc3339)
        .map_err(|e| SigningError::BadCertificate(format!("validity time: {e}")))
}

/// Parse a DER certificate into the facts CSC reports.
pub fn certificate_info(der: &[u8]) -> Result<CertificateInfo, SigningError> {
    let cert = parse(der)?;
    let (key_len_bits, key_algorithm) = key_facts(&cert)?;
    Ok(CertificateInfo {
        subject_dn: cert.subject().to_string(),
        issuer_dn: cert.issuer().to_string(),
        serial_hex: hex::encode(cert.raw_serial()),
        not_before: rfc3339(cert.validity().not_before)?,
        not_after: rfc3339(cert.validity().not_after)?,
        key_len_bits,
        key_algorithm,
        hc_role_code: hc_role_code_of(&cert)?,
    })
}

fn key_facts(cert: &X509Certificate<'_>) -> Result<(u32, Option<KeyAlgorithm>), SigningError> {
    let spki = cert.public_key();
    let parsed = spki
        .parsed()
        .map_err(|e| SigningError::BadCertificate(format!("subject public key: {e}")))?;
    Ok(match parsed {
        PublicKey::RSA(rsa) => {
            let bits = rsa.key_size() as u32;
            (bits, (bits == 2048).then_some(KeyAlgorithm::Rsa2048))
        }
        PublicKey::EC(point) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            let is_p256 = curve.as_deref() == Some(oid::P256);
            let bits = if is_p256 {
                256
            } else {
                point.key_size() as u32
            };
            (bits, is_p256.then_some(KeyAlgorithm::EcdsaP256))
        }
        other => (other.key_size() as u32, None),
    })
}

/// The key algorithm and raw public key (RSAPublicKey DER, or the
/// uncompressed EC point) of a certificate, for matching against a private key.
pub(crate) fn public_key_of(cert_der: &[u8]) -> Result<(KeyAlgorithm, Vec<u8>), SigningError> {
    let cert = parse(cert_der)?;
    let (_, alg) = key_facts(&cert)?;
    let alg = alg.ok_or_else(|| {
        SigningError::UnsupportedAlgorithm(format!(
            "certificate key {} is neither RSA-2048 nor ECDSA P-256",
            cert.public_key().algorithm.algorithm.to_id_string()
        ))
    })?;
    Ok((alg, cert.public_key().subject_public_key.data.to_vec()))
}

fn hc_role_code_of(cert: &X509Certificate<'_>) -> Result<Option<String>, SigningError> {
    for ext in cert.extensions() {
        if ext.oid.to_id_string() == SUBJECT_DIRECTORY_ATTRIBUTES_DOTTED {
            return Ok(hc_actor_codes(ext.value)?.into_iter().next());
        }
    }
    Ok(None)
}

/// The first HPKI hcRole code of a certificate, if any.
pub(crate) fn hc_role_code(cert_der: &[u8]) -> Result<Option<String>, SigningError> {
    hc_role_code_of(&parse(cert_der)?)
}

/// A certificate's validity period, Unix milliseconds (inclusive bounds,
/// as RFC 5280 §4.1.2.5 defines them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// notBefore.
    pub not_before_ms: i64,
    /// notAfter.
    pub not_after_ms: i64,
}

/// The validity period of a DER certificate.
pub fn certificate_validity(der: &[u8]) -> Result<Validity, SigningError> {
    let cert = parse(der)?;
    let v = cert.validity();
    Ok(Validity { not_before_ms: v.not_before.timestamp() * 1000, not_after_ms: v.not_after.timestamp() * 1000 })
}

/// Whether a credential's certificate may sign now (CSC `cert/status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateStatus {
    /// Inside notBefore..=notAfter and not revoked.
    Valid,
    /// Before notBefore.
    NotYetValid,
    /// After notAfter.
    Expired,
    /// The operator revoked the credential.
    Revoked,
}

impl CertificateStatus {
    /// Revocation first, then the validity period at `now_ms`.
    pub fn at(validity: Validity, revoked: bool, now_ms: i64) -> Self {
        if revoked {
            CertificateStatus::Revoked
        } else if now_ms < validity.not_before_ms {
            CertificateStatus::NotYetValid
        } else if now_ms > validity.not_after_ms {
            CertificateStatus::Expired
        } else {
            CertificateStatus::Valid
        }
    }

    /// Wire text: `valid`, `not_yet_valid`, `expired`, `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            CertificateStatus::Valid => "valid",
            CertificateStatus::NotYetValid => "not_yet_valid",
            CertificateStatus::Expired => "expired",
            CertificateStatus::Revoked => "revoked",
        }
    }
}
