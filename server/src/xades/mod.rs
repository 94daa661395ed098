//! XAdES signatures for the e-prescription (signDoc `signature_format` "X").
//!
//! Why: Japan's e-prescription service receives the prescription XML with
//! an XAdES signature beside the `PrescriptionDocument` element. As with
//! the HPKI second-certificate service, the EHR sends only the SHA-256 of
//! that element after exclusive canonicalisation (plus its `Id`), and the
//! server returns the finished signature element; the prescription never
//! leaves the clinic. docs/signing.md is the normative profile with a
//! worked example.
//!
//! The server needs no XML parser: every part it signs (SignedInfo,
//! KeyInfo, SignedProperties) is *written* in exc-c14n form
//! ([`canonical`]), so the bytes hashed here are the bytes a verifier's
//! canonicaliser produces from the returned element. xmlsec1 checks this
//! in the tests.
//!
//! Two steps, so that the key is opened once for a batch: [`prepare`]
//! gives the digest of the canonical SignedInfo, [`Prepared::assemble`]
//! inserts the signature value.

pub mod canonical;
mod signed_properties;
pub mod verify;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use canonical::{Element, leaf};
pub use signed_properties::{SigningCertificate, signed_properties};

use crate::signing::SignatureAlgorithm;

/// XML-DSig namespace.
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XAdES namespace (v1.3.2, which EN 319 132-1 keeps for SigningCertificateV2).
pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// Exclusive XML Canonicalization 1.0, without comments.
pub const EXC_C14N_URI: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// SHA-256 digest method.
pub const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// RSA PKCS#1 v1.5 with SHA-256.
pub const RSA_SHA256_URI: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// ECDSA with SHA-256 (value is r || s, 64 bytes for P-256).
pub const ECDSA_SHA256_URI: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// Reference Type of the signed properties.
pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";
/// The element the signature comes wrapped in (the EHR inserts it as the
/// next sibling of the prescription element).
pub const WRAPPER: &str = "PrescriptionSign";

/// Why a XAdES signature could not be built.
#[derive(Debug, thiserror::Error)]
pub enum XadesError {
    /// The reference id is not an XML NCName.
    #[error(
        "reference id {0:?} is not an XML Id (ASCII letter or _ first, then letters, digits, . - _; at most 128)"
    )]
    BadReferenceId(String),
    /// The signing certificate does not parse.
    #[error("certificate: {0}")]
    Certificate(String),
    /// The key produced a signature value of an unexpected shape.
    #[error("signature value: {0}")]
    SignatureValue(String),
}

/// What one XAdES signature is made of.
pub struct XadesInput<'a> {
    /// `Id` of the signed element (the prescription), referenced as `#id`.
    pub reference_id: &'a str,
    /// SHA-256 of the exc-c14n form of that element, computed by the EHR.
    pub element_digest: &'a [u8],
    /// The signing certificate (DER).
    pub certificate_der: &'a [u8],
    /// The key's signature algorithm.
    pub alg: SignatureAlgorithm,
    /// xsd:dateTime UTC, e.g. `2026-12-01T09:30:00Z`.
    pub signing_time: &'a str,
    /// `Id` of the `ds:Signature`; the other Ids derive from it.
    pub signature_id: &'a str,
}

/// A signature ready to be signed: the digest the key must sign and the
/// canonical parts around it.
pub struct Prepared {
    /// SHA-256 of the canonical SignedInfo (what the key signs).
    pub to_sign: Vec<u8>,
    signature_id: String,
    signed_info: String,
    key_info: String,
    signed_properties: String,
    alg: SignatureAlgorithm,
}

fn sha256_b64(data: &[u8]) -> String {
    STANDARD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

fn reference(out: &mut String, uri: &str, kind: Option<&str>, digest_b64: &str) {
    let attrs: Vec<(&str, &str)> = match kind {
        // "Type" < "URI": canonical attribute order.
        Some(t) => vec![("Type", t), ("URI", uri)],
        None => vec![("URI", uri)],
    };
    let r = Element::open(out, "ds:Reference", None, &attrs);
    let ts = Element::open(out, "ds:Transforms", None, &[]);
    leaf(
        out,
        "ds:Transform",
        None,
        &[("Algorithm", EXC_C14N_URI)],
        "",
    );
    ts.close(out);
    leaf(
        out,
        "ds:DigestMethod",
        None,
        &[("Algorithm", SHA256_URI)],
        "",
    );
    leaf(out, "ds:DigestValue", None, &[], digest_b64);
    r.close(out);
}

/// Builds the canonical KeyInfo, SignedProperties and SignedInfo.
pub fn prepare(input: &XadesInput<'_>) -> Result<Prepared, XadesError> {
    for id in [input.reference_id, input.signature_id] {
        if !canonical::is_ncname(id) {
            return Err(XadesError::BadReferenceId(id.to_owned()));
        }
    }
    let sid = input.signature_id;
    let key_info_id = format!("{sid}-KeyInfo");
    let props_id = format!("{sid}-SignedProperties");

    let mut key_info = String::with_capacity(2048);
    let ki = Element::open(
        &mut key_info,
        "ds:KeyInfo",
        Some(("ds", DS_NS)),
        &[("Id", key_info_id.as_str())],
    );
    let x = Element::open(&mut key_info, "ds:X509Data", None, &[]);
    leaf(
        &mut key_info,
        "ds:X509Certificate",
        None,
        &[],
        &STANDARD.encode(input.certificate_der),
    );
    x.close(&mut key_info);
    ki.close(&mut key_info);

    let cert = SigningCertificate::of(input.certificate_der)?;
    let signed_properties = signed_properties(&props_id, input.signing_time, &cert);

    let method = match input.alg {
        SignatureAlgorithm::RsaPkcs1Sha256 => RSA_SHA256_URI,
        SignatureAlgorithm::EcdsaP256Sha256 => ECDSA_SHA256_URI,
    };
    let mut signed_info = String::with_capacity(1536);
    let si = Element::open(&mut signed_info, "ds:SignedInfo", Some(("ds", DS_NS)), &[]);
    leaf(
        &mut signed_info,
        "ds:CanonicalizationMethod",
        None,
        &[("Algorithm", EXC_C14N_URI)],
        "",
    );
    leaf(
        &mut signed_info,
        "ds:SignatureMethod",
        None,
        &[("Algorithm", method)],
        "",
    );
    reference(
        &mut signed_info,
        &format!("#{}", input.reference_id),
        None,
        &STANDARD.encode(input.element_digest),
    );
    reference(
        &mut signed_info,
        &format!("#{key_info_id}"),
        None,
        &sha256_b64(key_info.as_bytes()),
    );
    reference(
        &mut signed_info,
        &format!("#{props_id}"),
        Some(SIGNED_PROPERTIES_TYPE),
        &sha256_b64(signed_properties.as_bytes()),
    );
    si.close(&mut signed_info);

    let to_sign = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signed_info.as_bytes())
        .as_ref()
        .to_vec();
    Ok(Prepared {
        to_sign,
        signature_id: sid.to_owned(),
        signed_info,
        key_info,
        signed_properties,
        alg: input.alg,
    })
}

impl Prepared {
    /// The canonical SignedInfo (for tests and docs).
    pub fn signed_info(&self) -> &str {
        &self.signed_info
    }

    /// The returned element: `<PrescriptionSign><ds:Signature …>…</ds:Signature></PrescriptionSign>`,
    /// around `signature` over [`Prepared::to_sign`] (PKCS#1 v1.5 bytes, or
    /// DER ECDSA, which XML-DSig wants as r || s).
    pub fn assemble(self, signature: &[u8]) -> Result<String, XadesError> {
        let value = match self.alg {
            SignatureAlgorithm::RsaPkcs1Sha256 => signature.to_vec(),
            SignatureAlgorithm::EcdsaP256Sha256 => {
                // RFC 4051 §3.4.1 / XML-DSig 1.1: ECDSA values are r || s, not DER.
                let sig = p256::ecdsa::Signature::from_der(signature)
                    .map_err(|e| XadesError::SignatureValue(e.to_string()))?;
                sig.to_bytes().to_vec()
            }
        };
        let sid = self.signature_id.as_str();
        let mut out = String::with_capacity(
            self.signed_info.len() + self.key_info.len() + self.signed_properties.len() + 1024,
        );
        let wrapper = Element::open(&mut out, WRAPPER, None, &[]);
        let sig = Element::open(
            &mut out,
            "ds:Signature",
            Some(("ds", DS_NS)),
            &[("Id", sid)],
        );
        out.push_str(&self.signed_info);
        leaf(
            &mut out,
            "ds:SignatureValue",
            None,
            &[("Id", format!("{sid}-SignatureValue").as_str())],
            &STANDARD.encode(value),
        );
        out.push_str(&self.key_info);
        let obj = Element::open(&mut out, "ds:Object", None, &[]);
        let qp = Element::open(
            &mut out,
            "xades:QualifyingProperties",
            Some(("xades", XADES_NS)),
            &[("Target", format!("#{sid}").as_str())],
        );
        out.push_str(&self.signed_properties);
        qp.close(&mut out);
        obj.close(&mut out);
        sig.close(&mut out);
        wrapper.close(&mut out);
        Ok(out)
    }
}
