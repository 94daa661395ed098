//! CMS / CAdES-BES detached signatures (signDoc `signature_format` "C").
//!
//! Why: an EHR signs referral letters, discharge summaries and PDFs that
//! are not e-prescriptions; what any verifier (OpenSSL, Adobe, an AdES
//! validator) accepts for those is a detached CMS SignedData. The EHR
//! sends only the document's SHA-256, so the server builds the signer's
//! signed attributes around that digest, signs their DER, and returns
//! the whole `ContentInfo`. Every structure is a RustCrypto `cms` /
//! `x509-cert` / `der` type; nothing here writes DER by hand.
//!
//! Two steps, so that the key is opened once for a batch: [`prepare`]
//! gives the digest the key must sign, [`Prepared::assemble`] wraps the
//! signature value.

mod signed_attrs;

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attributes;

pub use signed_attrs::{
    EssCertIdV2, IssuerSerial, SignedAttrsInput, SigningCertificateV2, signed_attributes,
};

use crate::signing::SignatureAlgorithm;

/// Object identifiers of the structures built here.
pub mod oid {
    use der::asn1::ObjectIdentifier;
    /// id-data.
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// id-signedData.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// id-contentType.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// id-messageDigest.
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// id-signingTime.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// id-aa-signingCertificateV2 (RFC 5035).
    pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// id-sha256.
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
}

/// Why a CMS signature could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    /// The stored certificate does not parse with `x509-cert`.
    #[error("certificate: {0}")]
    Certificate(der::Error),
    /// Encoding failed (a value out of range, e.g. a signing time past 2049).
    #[error("encoding: {0}")]
    Encoding(der::Error),
}

/// A signer ready to sign: the digest its key must sign, and what is
/// needed to wrap the signature afterwards.
pub struct Prepared {
    /// SHA-256 of the DER of the signed attributes (what the key signs).
    pub to_sign: Vec<u8>,
    signed_attrs: Attributes,
    chain: Vec<Certificate>,
    alg: SignatureAlgorithm,
}

fn sha256(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

/// Builds the signed attributes for `document_digest` signed by the leaf
/// of `chain_der` (leaf first) at `signing_time_s` (Unix seconds).
pub fn prepare(
    chain_der: &[Vec<u8>],
    alg: SignatureAlgorithm,
    document_digest: &[u8],
    signing_time_s: u64,
) -> Result<Prepared, CmsError> {
    let chain: Vec<Certificate> = chain_der
        .iter()
        .map(|d| Certificate::from_der(d))
        .collect::<Result<_, _>>()
        .map_err(CmsError::Certificate)?;
    let leaf = chain
        .first()
        .ok_or(CmsError::Certificate(der::ErrorKind::Failed.into()))?;
    let cert_hash = sha256(&chain_der[0]);
    let signed_attrs = signed_attributes(&SignedAttrsInput {
        document_digest,
        signing_time_s,
        certificate: leaf,
        certificate_sha256: &cert_hash,
    })
    .map_err(CmsError::Encoding)?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF (tag 0x31).
    let to_sign = sha256(&signed_attrs.to_der().map_err(CmsError::Encoding)?);
    Ok(Prepared {
        to_sign,
        signed_attrs,
        chain,
        alg,
    })
}

fn algorithm(oid: der::asn1::ObjectIdentifier, null_params: bool) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: null_params.then(Any::null),
    }
}

impl Prepared {
    /// The DER `ContentInfo` (SignedData, detached, certificates included)
    /// around `signature` (PKCS#1 v1.5 bytes, or DER ECDSA) over
    /// [`Prepared::to_sign`].
    pub fn assemble(self, signature: &[u8]) -> Result<Vec<u8>, CmsError> {
        let enc = CmsError::Encoding;
        let leaf = &self.chain[0];
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: leaf.tbs_certificate().issuer().clone(),
            serial_number: leaf.tbs_certificate().serial_number().clone(),
        });
        let signature_algorithm = match self.alg {
            // RFC 4055: sha256WithRSAEncryption takes NULL parameters.
            SignatureAlgorithm::RsaPkcs1Sha256 => algorithm(oid::SHA256_WITH_RSA, true),
            // RFC 5758: ecdsa-with-SHA256 takes no parameters.
            SignatureAlgorithm::EcdsaP256Sha256 => algorithm(oid::ECDSA_WITH_SHA256, false),
        };
        let signer = SignerInfo {
            version: CmsVersion::V1,
            sid,
            digest_alg: algorithm(oid::SHA256, false),
            signed_attrs: Some(self.signed_attrs),
            signature_algorithm,
            signature: OctetString::new(signature).map_err(enc)?,
            unsigned_attrs: None,
        };
        let certificates: Vec<CertificateChoices> = self
            .chain
            .into_iter()
            .map(CertificateChoices::Certificate)
            .collect();
        let signed_data = SignedData {
            version: CmsVersion::V1,
            digest_algorithms: SetOfVec::try_from(vec![algorithm(oid::SHA256, false)])
                .map_err(enc)?,
            // Detached: no eContent; the verifier brings the document.
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: oid::DATA,
                econtent: None,
            },
            certificates: Some(CertificateSet(
                SetOfVec::try_from(certificates).map_err(enc)?,
            )),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer]).map_err(enc)?),
        };
        let info = ContentInfo {
            content_type: oid::SIGNED_DATA,
            content: Any::encode_from(&signed_data).map_err(enc)?,
        };
        info.to_der().map_err(enc)
    }
}
