//! `xades:SignedProperties` (ETSI EN 319 132-1 §5.2): the signing time and
//! the signing certificate (SigningCertificateV2: SHA-256 of the
//! certificate and its RFC 5035 IssuerSerial), written in canonical form.
//! Signing them (the third Reference) is what turns an XML-DSig into a
//! XAdES-BES/B-B signature: nobody can swap the certificate or the time
//! without breaking the signature.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use der::{Decode, Encode};
use x509_cert::Certificate;

use super::canonical::{Element, leaf};
use super::{DS_NS, SHA256_URI, XADES_NS, XadesError};
use crate::cms::IssuerSerial;

/// The facts the signed properties carry.
pub struct SigningCertificate {
    /// base64 SHA-256 of the certificate DER (`CertDigest/DigestValue`).
    pub digest_b64: String,
    /// base64 DER `IssuerSerial` (`IssuerSerialV2`).
    pub issuer_serial_b64: String,
}

impl SigningCertificate {
    /// Reads the signing certificate's digest and issuer/serial.
    pub fn of(cert_der: &[u8]) -> Result<Self, XadesError> {
        let cert =
            Certificate::from_der(cert_der).map_err(|e| XadesError::Certificate(e.to_string()))?;
        let issuer_serial = IssuerSerial::of(&cert)
            .to_der()
            .map_err(|e| XadesError::Certificate(e.to_string()))?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cert_der);
        Ok(SigningCertificate {
            digest_b64: STANDARD.encode(digest.as_ref()),
            issuer_serial_b64: STANDARD.encode(issuer_serial),
        })
    }
}

/// The canonical `xades:SignedProperties` element with `Id=id`.
/// `signing_time` is an xsd:dateTime in UTC (`2026-12-01T09:30:00Z`).
pub fn signed_properties(id: &str, signing_time: &str, cert: &SigningCertificate) -> String {
    let mut s = String::with_capacity(1024);
    let ds = Some(("ds", DS_NS));
    let props = Element::open(
        &mut s,
        "xades:SignedProperties",
        Some(("xades", XADES_NS)),
        &[("Id", id)],
    );
    let ssp = Element::open(&mut s, "xades:SignedSignatureProperties", None, &[]);
    leaf(&mut s, "xades:SigningTime", None, &[], signing_time);
    let sc = Element::open(&mut s, "xades:SigningCertificateV2", None, &[]);
    let c = Element::open(&mut s, "xades:Cert", None, &[]);
    let cd = Element::open(&mut s, "xades:CertDigest", None, &[]);
    // Each ds: child of a xades: parent declares ds itself (exc-c14n renders
    // a prefix where it is visibly used and not declared by an output ancestor).
    leaf(
        &mut s,
        "ds:DigestMethod",
        ds,
        &[("Algorithm", SHA256_URI)],
        "",
    );
    leaf(&mut s, "ds:DigestValue", ds, &[], &cert.digest_b64);
    cd.close(&mut s);
    leaf(
        &mut s,
        "xades:IssuerSerialV2",
        None,
        &[],
        &cert.issuer_serial_b64,
    );
    c.close(&mut s);
    sc.close(&mut s);
    ssp.close(&mut s);
    props.close(&mut s);
    s
}
