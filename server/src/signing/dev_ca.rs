//! The built-in development CA. A fresh install has no HPKI card or
//! HPKI-issued key, yet the whole flow (signHash, CMS, XAdES, verification)
//! must be exercisable; this CA issues HPKI-shaped practitioner
//! certificates for that. Its name says loudly that it is not for
//! production, so nobody mistakes a dev signature for a real one.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair as RcgenKeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::credential::ParsedKey;
use super::hc_role::{SUBJECT_DIRECTORY_ATTRIBUTES, hc_role_extension_value};
use super::{HcRole, KeyAlgorithm, NewCredential, SigningError};

/// Common name of every development CA; verifiers and humans see it.
pub const DEV_CA_COMMON_NAME: &str = "Shomei Development CA — NOT FOR PRODUCTION";
const DEV_CA_ORGANIZATION: &str = "Shomei development (not an HPKI CA)";
/// The CA lives long enough for any dev install.
const CA_VALIDITY_DAYS: i64 = 365 * 10;
/// HPKI signature certificates are issued for five years.
const LEAF_VALIDITY_DAYS: i64 = 365 * 5;
/// Back-dating absorbs clock skew between the server and verifiers.
const BACKDATE: Duration = Duration::minutes(5);

/// Who a practitioner certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The practitioner's name as it should appear in CN.
    pub common_name: String,
    /// The qualification written into the hcRole attribute.
    pub role: HcRole,
    /// Facility / organization (O), if any.
    pub organization: Option<String>,
}

/// A development CA: an RSA-2048 key and its self-signed certificate.
pub struct DevCa {
    pkcs8: Zeroizing<Vec<u8>>,
    cert_der: Vec<u8>,
    // rcgen keeps its own, non-zeroized copy of the key bytes for as long as
    // the DevCa lives. Accepted: this key only signs development certificates.
    issuer: Issuer<'static, RcgenKeyPair>,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Create a new CA: RSA-2048 key, sha256WithRSAEncryption self-signed
    /// certificate named [`DEV_CA_COMMON_NAME`], valid ten years.
    pub fn generate() -> Result<Self, SigningError> {
        let key = ParsedKey::from_rsa(
            &RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(|_| SigningError::Crypto("RSA key generation"))?,
        )?;
        let rc_key = rcgen_key(&key.pkcs8)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        dn.push(DnType::OrganizationName, DEV_CA_ORGANIZATION);
        dn.push(DnType::CommonName, DEV_CA_COMMON_NAME);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
        let cert = params.self_signed(&rc_key).map_err(gen_err)?;
        let cert_der = cert.der().to_vec();
        Ok(DevCa {
            pkcs8: key.pkcs8,
            cert_der,
            issuer: Issuer::new(params, rc_key),
        })
    }

    /// The CA's key (PKCS#8 DER, seal it under the KEK) and certificate DER,
    /// for persisting it.
    pub fn to_parts(&self) -> (Zeroizing<Vec<u8>>, Vec<u8>) {
        (self.pkcs8.clone(), self.cert_der.clone())
    }

    /// Restore a CA persisted with [`DevCa::to_parts`]. The certificate must
    /// be a CA certificate for this key.
    pub fn from_parts(pkcs8: &[u8], cert_der: &[u8]) -> Result<Self, SigningError> {
        let credential = NewCredential::new(pkcs8, vec![cert_der.to_vec()])?;
        let rc_key = rcgen_key(&credential.pkcs8)?;
        let issuer = Issuer::from_ca_cert_der(&cert_der.into(), rc_key)
            .map_err(|e| SigningError::BadCertificate(format!("CA certificate: {e}")))?;
        let cert = super::certificate::parse(cert_der)?;
        let is_ca = cert
            .basic_constraints()
            .ok()
            .flatten()
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(SigningError::BadCertificate(
                "not a CA certificate (basicConstraints cA is not set)".into(),
            ));
        }
        Ok(DevCa {
            pkcs8: credential.pkcs8,
            cert_der: cert_der.to_vec(),
            issuer,
        })
    }

    /// The CA certificate (DER); the trust anchor for dev-issued credentials.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Generate a key of `alg` and issue it an HPKI-shaped signature
    /// certificate: C=JP, O=organization, CN=name; keyUsage nonRepudiation
    /// (critical), as HPKI signature certificates have; subjectDirectoryAttributes
    /// with the hcRole; valid five years. The chain is `[leaf, CA]`.
    pub fn issue(
        &self,
        subject: &Subject,
        alg: KeyAlgorithm,
    ) -> Result<NewCredential, SigningError> {
        if subject.common_name.trim().is_empty() {
            return Err(SigningError::CertificateGeneration(
                "subject common name is empty".into(),
            ));
        }
        let key = match alg {
            KeyAlgorithm::Rsa2048 => ParsedKey::from_rsa(
                &RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| SigningError::Crypto("RSA key generation"))?,
            )?,
            KeyAlgorithm::EcdsaP256 => ParsedKey::from_ec(
                &EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
                    .map_err(|_| SigningError::Crypto("EC key generation"))?,
            )?,
        };
        let rc_key = rcgen_key(&key.pkcs8)?;
        let cert = self.certify(subject, &rc_key)?;
        Ok(NewCredential {
            algorithm: key.algorithm,
            pkcs8: key.pkcs8,
            certificate_chain: vec![cert, self.cert_der.clone()],
        })
    }

    /// Issue the same HPKI-shaped certificate as [`DevCa::issue`] for a key
    /// the CA never sees: one generated inside a PKCS#11 token, given as
    /// its public key (`RSAPublicKey` DER, or the uncompressed P-256 point).
    /// The chain is `[leaf, CA]`.
    pub fn issue_for_public_key(
        &self,
        subject: &Subject,
        alg: KeyAlgorithm,
        public_key: &[u8],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        let key = ForeignPublicKey {
            raw: public_key.to_vec(),
            alg: match alg {
                KeyAlgorithm::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
                KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            },
        };
        let cert = self.certify(subject, &key)?;
        Ok(vec![cert, self.cert_der.clone()])
    }

    fn certify(
        &self,
        subject: &Subject,
        key: &impl rcgen::PublicKeyData,
    ) -> Result<Vec<u8>, SigningError> {
        if subject.common_name.trim().is_empty() {
            return Err(SigningError::CertificateGeneration(
                "subject common name is empty".into(),
            ));
        }
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CountryName, "JP");
        if let Some(org) = subject
            .organization
            .as_deref()
            .filter(|o| !o.trim().is_empty())
        {
            dn.push(DnType::OrganizationName, org);
        }
        dn.push(DnType::CommonName, subject.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::ContentCommitment];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                SUBJECT_DIRECTORY_ATTRIBUTES,
                hc_role_extension_value(subject.role),
            ));
        let cert = params.signed_by(key, &self.issuer).map_err(gen_err)?;
        Ok(cert.der().to_vec())
    }
}

/// A public key rcgen certifies without holding its private half.
struct ForeignPublicKey {
    /// The subjectPublicKey bits: `RSAPublicKey` DER or the EC point.
    raw: Vec<u8>,
    alg: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for ForeignPublicKey {
    fn der_bytes(&self) -> &[u8] {
        &self.raw
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.alg
    }
}

fn rcgen_key(pkcs8: &[u8]) -> Result<RcgenKeyPair, SigningError> {
    RcgenKeyPair::try_from(pkcs8).map_err(|e| SigningError::BadKey(format!("rcgen: {e}")))
}

fn gen_err(e: rcgen::Error) -> SigningError {
    SigningError::CertificateGeneration(e.to_string())
}

/// 16 random bytes, positive and without a leading zero byte, so the DER
/// INTEGER is always exactly 16 bytes (RFC 5280 allows up to 20).
fn random_serial() -> Result<SerialNumber, SigningError> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SigningError::Crypto("random"))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}
