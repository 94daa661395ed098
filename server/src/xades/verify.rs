//! The server's own XAdES verifier: reads a document holding one signature
//! as the EHR assembled it (the prescription element and the returned
//! `PrescriptionSign` beside it) and checks, independently of how
//! [`super::prepare`] wrote it:
//!
//! 1. every `ds:Reference` (the document element, KeyInfo, SignedProperties):
//!    the referenced element is found by its `Id` (exactly one), put in
//!    exc-c14n form by [`c14n`] (from the parsed tree, not from the bytes
//!    the writer produced) and its SHA-256 equals the signed `DigestValue`;
//! 2. the `SignatureValue` verifies over the exc-c14n `SignedInfo` with the
//!    public key of the certificate in `KeyInfo`;
//! 3. the signed `SigningCertificateV2` digest is that certificate's SHA-256;
//! 4. the certificate chains to the given trust anchor (issuer name, the
//!    anchor's signature on it) and both were valid at the signed `SigningTime`.
//!
//! What it does not do: revocation (no CRL/OCSP for the dev CA), time
//! stamps (the profile is B-B), other transforms or algorithms than the
//! profile's (they are refused, not skipped). xmlsec1 remains the external
//! check of the writer in the tests; this verifier lets the server (the
//! `--demo` page) say what it verified without shelling out.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use roxmltree::{Document, Node, NodeType};

use super::canonical::{attr, text};
use super::{
    DS_NS, ECDSA_SHA256_URI, EXC_C14N_URI, RSA_SHA256_URI, SHA256_URI, SIGNED_PROPERTIES_TYPE,
    XADES_NS,
};

/// Why a signed document does not verify: one variant per failed check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("the document is not well-formed XML (or has a DTD): {0}")]
    NotXml(String),
    #[error("expected exactly one ds:Signature, found {0}")]
    SignatureCount(usize),
    #[error("ds:Signature has no {0}")]
    Missing(&'static str),
    #[error("unsupported {what}: {value:?}")]
    Unsupported { what: &'static str, value: String },
    #[error("reference {0:?} is not a same-document reference (#Id)")]
    ReferenceUri(String),
    #[error("reference #{id} resolves to {count} elements (exactly one is required)")]
    ReferenceTarget { id: String, count: usize },
    #[error("the digest of #{0} differs from the signed DigestValue: the element was changed")]
    DigestMismatch(String),
    #[error(
        "no reference covers the signed document (only KeyInfo / SignedProperties are referenced)"
    )]
    NoDocumentReference,
    #[error("the SignedProperties are not referenced with Type {SIGNED_PROPERTIES_TYPE}")]
    NoSignedPropertiesReference,
    #[error("base64 of {0} does not decode")]
    Base64(&'static str),
    #[error("the KeyInfo certificate does not parse: {0}")]
    Certificate(String),
    #[error("the SignatureValue does not verify over SignedInfo with the certificate's key")]
    SignatureValue,
    #[error("SigningCertificateV2 names another certificate than KeyInfo carries")]
    SigningCertificate,
    #[error("SigningTime {0:?} is not an xsd:dateTime")]
    SigningTime(String),
    #[error("the certificate is not issued by the trusted CA ({0})")]
    Chain(String),
    #[error("{0} was not valid at the signing time")]
    Validity(&'static str),
}

/// One check that passed, as the demo page shows it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Check {
    /// `document_digest`, `key_info_digest`, `signed_properties_digest`,
    /// `signature_value`, `signing_certificate`, `certificate_chain`.
    pub check: &'static str,
    /// What exactly was compared.
    pub detail: String,
}

/// What a verified signature says.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Verified {
    /// Every check, in the order made (all passed).
    pub checks: Vec<Check>,
    /// The signed element: its name and `Id`.
    pub signed_element: String,
    /// Subject of the signing certificate (RFC 4514).
    pub signer: String,
    /// Issuer of the signing certificate (RFC 4514).
    pub issuer: String,
    /// `SigningTime` of the signed properties.
    pub signing_time: String,
    /// `rsa-sha256` or `ecdsa-sha256` (the SignatureMethod).
    pub algorithm: &'static str,
}

/// The qualified name of an element or attribute as written in the source.
fn qname(src: &str, start: usize) -> &str {
    let rest = &src[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/' || c == '=')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn prefix_of(q: &str) -> &str {
    q.split_once(':').map_or("", |(p, _)| p)
}

/// Exclusive XML Canonicalization 1.0 (without comments, no
/// InclusiveNamespaces) of the subtree rooted at `node` (W3C xml-exc-c14n §3):
/// an element declares exactly the namespaces it visibly uses (its own
/// prefix and its attributes' prefixes) that no output ancestor declared with
/// the same value; declarations sorted by prefix, attributes by (namespace
/// URI, local name); text and attribute values escaped as C14N does.
pub fn c14n(node: Node<'_, '_>, src: &str) -> String {
    let mut out = String::new();
    let mut rendered: Vec<HashMap<String, String>> = vec![HashMap::new()];
    element(node, src, &mut out, &mut rendered);
    out
}

fn element(
    n: Node<'_, '_>,
    src: &str,
    out: &mut String,
    rendered: &mut Vec<HashMap<String, String>>,
) {
    let name = qname(src, n.range().start + 1);
    let mut used: Vec<&str> = vec![prefix_of(name)];
    for a in n.attributes() {
        let q = qname(src, a.range_qname().start);
        let p = prefix_of(q);
        if !p.is_empty() && !used.contains(&p) {
            used.push(p);
        }
    }
    let mut decls: Vec<(String, String)> = Vec::new();
    for p in used {
        if p == "xml" {
            continue;
        }
        let uri = n
            .lookup_namespace_uri(if p.is_empty() { None } else { Some(p) })
            .unwrap_or("");
        let in_output = rendered
            .iter()
            .rev()
            .find_map(|m| m.get(p))
            .map(String::as_str);
        let needed = match (p.is_empty(), in_output) {
            // the default namespace: xmlns="" only to undo a rendered non-empty one
            (true, None) => !uri.is_empty(),
            (_, Some(v)) => v != uri,
            (false, None) => true,
        };
        if needed {
            decls.push((p.to_owned(), uri.to_owned()));
        }
    }
    decls.sort();
    let mut attrs: Vec<(&str, &str, String, &str)> = n
        .attributes()
        .map(|a| {
            (
                a.namespace().unwrap_or(""),
                a.name(),
                qname(src, a.range_qname().start).to_owned(),
                a.value(),
            )
        })
        .collect();
    attrs.sort_by(|x, y| (x.0, x.1).cmp(&(y.0, y.1)));
    out.push('<');
    out.push_str(name);
    for (p, uri) in &decls {
        if p.is_empty() {
            out.push_str(&format!(" xmlns=\"{}\"", attr(uri)));
        } else {
            out.push_str(&format!(" xmlns:{p}=\"{}\"", attr(uri)));
        }
    }
    for (_, _, q, v) in &attrs {
        out.push_str(&format!(" {q}=\"{}\"", attr(v)));
    }
    out.push('>');
    rendered.push(decls.into_iter().collect());
    for c in n.children() {
        match c.node_type() {
            NodeType::Element => element(c, src, out, rendered),
            NodeType::Text => out.push_str(&text(c.text().unwrap_or(""))),
            NodeType::PI => {
                if let Some(pi) = c.pi() {
                    out.push_str("<?");
                    out.push_str(pi.target);
                    if let Some(v) = pi.value {
                        out.push(' ');
                        out.push_str(v);
                    }
                    out.push_str("?>");
                }
            }
            NodeType::Comment | NodeType::Root => {}
        }
    }
    rendered.pop();
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn is(n: &Node<'_, '_>, ns: &str, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == local
}

fn child<'a, 'i>(
    n: Node<'a, 'i>,
    ns: &str,
    local: &'static str,
) -> Result<Node<'a, 'i>, VerifyError> {
    n.children()
        .find(|c| is(c, ns, local))
        .ok_or(VerifyError::Missing(local))
}

fn algorithm<'a>(n: Node<'a, '_>) -> &'a str {
    n.attribute("Algorithm").unwrap_or("")
}

fn b64(n: Node<'_, '_>, what: &'static str) -> Result<Vec<u8>, VerifyError> {
    let t: String = n
        .text()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(t).map_err(|_| VerifyError::Base64(what))
}

fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

/// The one element whose `Id` is `id`.
fn by_id<'a, 'i>(doc: &'a Document<'i>, id: &str) -> Result<Node<'a, 'i>, VerifyError> {
    let found: Vec<Node<'a, 'i>> = doc
        .descendants()
        .filter(|n| n.is_element() && n.attribute("Id") == Some(id))
        .collect();
    match found.as_slice() {
        [one] => Ok(*one),
        _ => Err(VerifyError::ReferenceTarget {
            id: id.to_owned(),
            count: found.len(),
        }),
    }
}

/// Verifies the one XAdES signature in `document`, trusting only
/// `anchor_der` (a CA certificate) for the signing certificate.
pub fn verify(document: &str, anchor_der: &[u8]) -> Result<Verified, VerifyError> {
    let doc = Document::parse(document).map_err(|e| VerifyError::NotXml(e.to_string()))?;
    let signatures: Vec<Node> = doc
        .descendants()
        .filter(|n| is(n, DS_NS, "Signature"))
        .collect();
    let [sig] = signatures.as_slice() else {
        return Err(VerifyError::SignatureCount(signatures.len()));
    };
    let sig = *sig;
    let signed_info = child(sig, DS_NS, "SignedInfo")?;
    let c14n_method = algorithm(child(signed_info, DS_NS, "CanonicalizationMethod")?);
    if c14n_method != EXC_C14N_URI {
        return Err(VerifyError::Unsupported {
            what: "CanonicalizationMethod",
            value: c14n_method.to_owned(),
        });
    }
    let method = algorithm(child(signed_info, DS_NS, "SignatureMethod")?);
    let alg = match method {
        RSA_SHA256_URI => "rsa-sha256",
        ECDSA_SHA256_URI => "ecdsa-sha256",
        other => {
            return Err(VerifyError::Unsupported {
                what: "SignatureMethod",
                value: other.to_owned(),
            });
        }
    };
    let key_info = child(sig, DS_NS, "KeyInfo")?;
    let cert_node = child(
        child(key_info, DS_NS, "X509Data")?,
        DS_NS,
        "X509Certificate",
    )?;
    let cert_der = b64(cert_node, "X509Certificate")?;

    let mut checks = Vec::new();
    let mut document_ref = None;
    let mut props = None;
    // 1. every reference's digest over the exc-c14n form of its target
    for r in signed_info.children().filter(|c| is(c, DS_NS, "Reference")) {
        let uri = r.attribute("URI").unwrap_or("");
        let id = uri
            .strip_prefix('#')
            .filter(|s| !s.is_empty())
            .ok_or_else(|| VerifyError::ReferenceUri(uri.to_owned()))?;
        let transforms: Vec<&str> = match r.children().find(|c| is(c, DS_NS, "Transforms")) {
            Some(t) => t
                .children()
                .filter(|c| is(c, DS_NS, "Transform"))
                .map(algorithm)
                .collect(),
            None => Vec::new(),
        };
        if transforms != [EXC_C14N_URI] {
            return Err(VerifyError::Unsupported {
                what: "Transforms",
                value: transforms.join(" "),
            });
        }
        let dm = algorithm(child(r, DS_NS, "DigestMethod")?);
        if dm != SHA256_URI {
            return Err(VerifyError::Unsupported {
                what: "DigestMethod",
                value: dm.to_owned(),
            });
        }
        let want = b64(child(r, DS_NS, "DigestValue")?, "DigestValue")?;
        let target = by_id(&doc, id)?;
        if sha256(c14n(target, document).as_bytes()) != want {
            return Err(VerifyError::DigestMismatch(id.to_owned()));
        }
        let (check, what) = if r.attribute("Type") == Some(SIGNED_PROPERTIES_TYPE)
            && is(&target, XADES_NS, "SignedProperties")
        {
            props = Some(target);
            (
                "signed_properties_digest",
                "the signed properties (signing time, signing certificate)",
            )
        } else if target == key_info {
            ("key_info_digest", "the KeyInfo holding the certificate")
        } else if target.ancestors().any(|a| a == sig) {
            return Err(VerifyError::NoDocumentReference);
        } else {
            document_ref = Some(format!("{} Id=\"{id}\"", target.tag_name().name()));
            ("document_digest", "the signed document element")
        };
        checks.push(Check {
            check,
            detail: format!(
                "SHA-256 of the exc-c14n form of #{id} ({what}) equals the signed DigestValue"
            ),
        });
    }
    let signed_element = document_ref.ok_or(VerifyError::NoDocumentReference)?;
    let props = props.ok_or(VerifyError::NoSignedPropertiesReference)?;

    // 2. the signature value over the canonical SignedInfo
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der)
        .map_err(|e| VerifyError::Certificate(e.to_string()))?;
    let value = b64(child(sig, DS_NS, "SignatureValue")?, "SignatureValue")?;
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.as_ref();
    let ring_alg: &dyn ring::signature::VerificationAlgorithm = match alg {
        "rsa-sha256" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        // XML-DSig ECDSA values are r || s (RFC 4051 §3.4.1)
        _ => &ring::signature::ECDSA_P256_SHA256_FIXED,
    };
    ring::signature::UnparsedPublicKey::new(ring_alg, key)
        .verify(c14n(signed_info, document).as_bytes(), &value)
        .map_err(|_| VerifyError::SignatureValue)?;
    checks.push(Check {
        check: "signature_value",
        detail: format!("the SignatureValue ({alg}) verifies over the exc-c14n SignedInfo with the public key of the KeyInfo certificate"),
    });

    // 3. the signed properties name this certificate
    let ssp = child(props, XADES_NS, "SignedSignatureProperties")?;
    let time_text = child(ssp, XADES_NS, "SigningTime")?
        .text()
        .unwrap_or("")
        .trim()
        .to_owned();
    let signing_time =
        time::OffsetDateTime::parse(&time_text, &time::format_description::well_known::Rfc3339)
            .map_err(|_| VerifyError::SigningTime(time_text.clone()))?;
    let cert_digest = child(
        child(
            child(ssp, XADES_NS, "SigningCertificateV2")?,
            XADES_NS,
            "Cert",
        )?,
        XADES_NS,
        "CertDigest",
    )?;
    let dm = algorithm(child(cert_digest, DS_NS, "DigestMethod")?);
    if dm != SHA256_URI {
        return Err(VerifyError::Unsupported {
            what: "CertDigest DigestMethod",
            value: dm.to_owned(),
        });
    }
    if b64(child(cert_digest, DS_NS, "DigestValue")?, "CertDigest")? != sha256(&cert_der) {
        return Err(VerifyError::SigningCertificate);
    }
    checks.push(Check {
        check: "signing_certificate",
        detail: "the signed SigningCertificateV2 digest is the SHA-256 of the KeyInfo certificate"
            .to_owned(),
    });

    // 4. the chain to the trust anchor, valid at the signing time
    let (_, ca) = x509_parser::parse_x509_certificate(anchor_der)
        .map_err(|e| VerifyError::Chain(format!("anchor: {e}")))?;
    if cert.issuer() != ca.subject() {
        return Err(VerifyError::Chain(format!(
            "issuer {} is not {}",
            cert.issuer(),
            ca.subject()
        )));
    }
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| VerifyError::Chain(format!("the CA's signature on the certificate: {e}")))?;
    let at = x509_parser::time::ASN1Time::from_timestamp(signing_time.unix_timestamp())
        .map_err(|e| VerifyError::SigningTime(e.to_string()))?;
    if !cert.validity().is_valid_at(at) {
        return Err(VerifyError::Validity("the signing certificate"));
    }
    if !ca.validity().is_valid_at(at) {
        return Err(VerifyError::Validity("the CA certificate"));
    }
    checks.push(Check {
        check: "certificate_chain",
        detail: format!("the certificate is issued and signed by the trusted CA \"{}\"; both were valid at the signing time {time_text}", ca.subject()),
    });
    Ok(Verified {
        checks,
        signed_element,
        signer: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        signing_time: time_text,
        algorithm: alg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> (String, Vec<u8>) {
        let signed = include_str!("../../../docs/signing/prescription.signed.xml").to_owned();
        let pem = include_str!("../../../docs/signing/dev-ca.pem");
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        (signed, STANDARD.decode(b64).unwrap())
    }

    #[test]
    fn the_worked_example_of_docs_signing_verifies() {
        let (signed, ca) = example();
        let v = verify(&signed, &ca)
            .expect("docs/signing/prescription.signed.xml verifies (xmlsec1 accepts it too)");
        let names: Vec<&str> = v.checks.iter().map(|c| c.check).collect();
        for want in [
            "document_digest",
            "key_info_digest",
            "signed_properties_digest",
            "signature_value",
            "signing_certificate",
            "certificate_chain",
        ] {
            assert!(names.contains(&want), "{want} not checked: {names:?}");
        }
        assert!(
            v.signed_element.starts_with("PrescriptionDocument"),
            "{}",
            v.signed_element
        );
    }

    #[test]
    fn a_changed_prescription_fails_its_document_digest() {
        let (signed, ca) = example();
        let tampered = signed.replacen("<Days>14</Days>", "<Days>90</Days>", 1);
        assert_ne!(tampered, signed);
        assert!(matches!(
            verify(&tampered, &ca),
            Err(VerifyError::DigestMismatch(_))
        ));
    }

    #[test]
    fn a_changed_signing_time_fails_the_signed_properties_digest() {
        let (signed, ca) = example();
        let doc = Document::parse(&signed).unwrap();
        let t = doc
            .descendants()
            .find(|n| is(n, XADES_NS, "SigningTime"))
            .unwrap()
            .text()
            .unwrap()
            .to_owned();
        let tampered = signed.replacen(&t, "2020-01-01T00:00:00Z", 1);
        assert!(
            matches!(verify(&tampered, &ca), Err(VerifyError::DigestMismatch(id)) if id.ends_with("SignedProperties"))
        );
    }

    #[test]
    fn a_duplicated_id_is_refused_not_resolved() {
        let (signed, ca) = example();
        let tampered = signed.replacen("</Prescription>", "<PrescriptionDocument Id=\"PrescriptionDocument\"></PrescriptionDocument></Prescription>", 1);
        assert!(matches!(
            verify(&tampered, &ca),
            Err(VerifyError::ReferenceTarget { count: 2, .. })
        ));
    }

    #[test]
    fn another_ca_is_not_trusted() {
        let (signed, _) = example();
        let other = crate::signing::DevCa::generate().unwrap();
        assert!(matches!(
            verify(&signed, other.certificate_der()),
            Err(VerifyError::Chain(_))
        ));
    }

    #[test]
    fn c14n_declares_used_namespaces_at_the_apex_and_sorts_attributes() {
        let src = r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b"><a:x z="1" b:y="2" a="3">t &amp; &lt;</a:x></a:r>"#;
        let doc = Document::parse(src).unwrap();
        let x = doc.root_element().first_child().unwrap();
        assert_eq!(
            c14n(x, src),
            r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" a="3" z="1" b:y="2">t &amp; &lt;</a:x>"#
        );
    }
}
