//! The signed attributes of a CAdES-BES signer (ETSI EN 319 122-1 §5.2,
//! RFC 5652 §11, RFC 5035): content-type, message-digest, signing-time
//! and signing-certificate-v2. The signature covers the DER of this SET,
//! so it is built with `der` types and encoded once.

use der::asn1::{ObjectIdentifier, OctetString, SetOfVec, UtcTime};
use der::{Any, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::ext::pkix::name::{GeneralName, GeneralNames};
use x509_cert::serial_number::SerialNumber;

use super::oid;

/// RFC 5035 `IssuerSerial`: the issuer as GeneralNames plus the serial,
/// which pins the signing certificate beyond its hash. XAdES
/// `IssuerSerialV2` carries the same DER in base64.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

impl IssuerSerial {
    /// The issuer and serial of `cert`.
    pub fn of(cert: &Certificate) -> Self {
        let tbs = cert.tbs_certificate();
        IssuerSerial {
            issuer: vec![GeneralName::DirectoryName(tbs.issuer().clone())],
            serial_number: tbs.serial_number().clone(),
        }
    }
}

/// RFC 5035 `ESSCertIDv2`. `hashAlgorithm` DEFAULT id-sha256 is left out
/// (DER omits defaults), so the hash is always SHA-256.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// RFC 5035 `SigningCertificateV2` (no policies).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
}

/// What the signer attests besides the document digest.
pub struct SignedAttrsInput<'a> {
    /// SHA-256 of the document (the message-digest attribute).
    pub document_digest: &'a [u8],
    /// Signing time, Unix seconds.
    pub signing_time_s: u64,
    /// The signer's certificate.
    pub certificate: &'a Certificate,
    /// SHA-256 of the certificate's DER.
    pub certificate_sha256: &'a [u8],
}

fn attribute<T: der::Tagged + der::EncodeValue>(
    oid: ObjectIdentifier,
    value: &T,
) -> der::Result<Attribute> {
    let any = Any::encode_from(value)?;
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![any])?,
    })
}

/// The four signed attributes, DER-sorted as a SET OF.
pub fn signed_attributes(input: &SignedAttrsInput<'_>) -> der::Result<Attributes> {
    let signing_time =
        UtcTime::from_unix_duration(std::time::Duration::from_secs(input.signing_time_s))?;
    let signing_certificate = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(input.certificate_sha256)?,
            issuer_serial: Some(IssuerSerial::of(input.certificate)),
        }],
    };
    SetOfVec::try_from(vec![
        attribute(oid::CONTENT_TYPE, &oid::DATA)?,
        attribute(
            oid::MESSAGE_DIGEST,
            &OctetString::new(input.document_digest)?,
        )?,
        // signing-time is a CHOICE (Time); UTCTime until 2049 as RFC 5652 says.
        attribute(oid::SIGNING_TIME, &signing_time)?,
        attribute(oid::SIGNING_CERTIFICATE_V2, &signing_certificate)?,
    ])
}
