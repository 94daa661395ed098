//! CSC signDoc over real HTTP: XAdES (the e-prescription profile) checked
//! by xmlsec1 and by an independent reading of the signed properties, CMS
//! checked by `openssl cms -verify`, and one test per refusal rule
//! (certificate validity, revocation, digest, format, level, grant).

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Env, World, assert_problem, std64};

pub(crate) const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";
pub(crate) const RSA_SHA256_OID: &str = "1.2.840.113549.1.1.11";
pub(crate) const ECDSA_SHA256_OID: &str = "1.2.840.10045.4.3.2";

/// A prescription element as the EHR holds it, written in exc-c14n form
/// (so its SHA-256 is the digest to send; xmlsec1 recomputes it).
pub(crate) fn prescription_element(id: &str, days: u32) -> String {
    format!(
        "<PrescriptionDocument Id=\"{id}\"><Patient><Name>山田 太郎</Name><BirthDate>1960-04-01</BirthDate></Patient>\
         <Medication><Drug code=\"620004448\">アムロジピン錠5mg</Drug><Dose>1錠 1日1回 朝食後</Dose><Days>{days}</Days></Medication></PrescriptionDocument>"
    )
}

/// The assembled prescription document: the EHR inserts the returned
/// `PrescriptionSign` right after the prescription element.
pub(crate) fn assembled(element: &str, signature_xml: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document><Prescription>{element}{signature_xml}</Prescription></Document>\n"
    )
}

pub(crate) fn sha256(b: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The external tool, or None after a loud skip line (never under CI).
pub(crate) fn tool(name: &str, probe: &[&str]) -> Option<&'static str> {
    let ok = Command::new(name)
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        return Some(Box::leak(name.to_owned().into_boxed_str()));
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") {
        panic!("`{name}` is required under CI (scripts/test installs it)");
    }
    eprintln!("*** SKIPPED: `{name}` not found; the external verification did not run ***");
    None
}

/// `xmlsec1 --verify` of the document, trusting only `ca_der` (the system
/// CA store is pointed at nothing). Ok(stdout+stderr) or Err(the same).
pub(crate) fn xmlsec1_verify(xmlsec1: &str, dir: &Path, doc: &str, ca_der: &[u8]) -> Result<String, String> {
    std::fs::write(dir.join("ca.pem"), pem("CERTIFICATE", ca_der)).unwrap();
    std::fs::write(dir.join("doc.xml"), doc).unwrap();
    let out = Command::new(xmlsec1)
        .env("SSL_CERT_FILE", dir.join("none.pem"))
        .env("SSL_CERT_DIR", dir.join("none"))
        .args([
            "--verify",
            "--enabled-key-data",
            "x509",
            "--id-attr:Id",
            "PrescriptionDocument",
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--trusted-pem",
        ])
        .arg(dir.join("ca.pem"))
        .arg(dir.join("doc.xml"))
        .output()
        .expect("run xmlsec1");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// `openssl cms -verify` of a detached signature over `content`, trusting only `ca_der`.
pub(crate) fn openssl_cms_verify(
    openssl: &str,
    dir: &Path,
    cms_der: &[u8],
    content: &[u8],
    ca_der: &[u8],
) -> Result<String, String> {
    std::fs::write(dir.join("ca.pem"), pem("CERTIFICATE", ca_der)).unwrap();
    std::fs::write(dir.join("sig.p7s"), cms_der).unwrap();
    std::fs::write(dir.join("doc.bin"), content).unwrap();
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let out = Command::new(openssl)
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            &p("sig.p7s"),
            "-content",
            &p("doc.bin"),
            "-CAfile",
            &p("ca.pem"),
            "-no-CApath",
            "-no-CAstore",
            "-out",
            &p("out.bin"),
        ])
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The signed properties, read independently of the server (roxmltree +
/// x509-parser): SigningCertificateV2's digest is the SHA-256 of the
/// KeyInfo certificate, its IssuerSerialV2 names that certificate's
/// issuer and serial, and SigningTime is present and within `window`.
pub(crate) fn check_xades_properties(xml: &str, window: (i64, i64)) {
    const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
    const XADES: &str = "http://uri.etsi.org/01903/v1.3.2#";
    let doc = roxmltree::Document::parse(xml).expect("returned XAdES is well-formed XML");
    let find = |ns: &str, name: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name((ns, name)))
            .collect::<Vec<_>>()
    };
    let refs = find(DS, "Reference");
    assert_eq!(
        refs.len(),
        3,
        "three References: prescription, KeyInfo, SignedProperties"
    );
    assert_eq!(
        refs[2].attribute("Type"),
        Some("http://uri.etsi.org/01903#SignedProperties")
    );
    let props = find(XADES, "SignedProperties");
    assert_eq!(props.len(), 1);
    assert_eq!(
        refs[2].attribute("URI").map(|u| u.trim_start_matches('#')),
        props[0].attribute("Id"),
        "third Reference points at the SignedProperties"
    );
    let key_info = find(DS, "KeyInfo");
    assert_eq!(
        refs[1].attribute("URI").map(|u| u.trim_start_matches('#')),
        key_info[0].attribute("Id"),
        "second Reference points at the KeyInfo"
    );

    let cert_b64 = find(DS, "X509Certificate")[0].text().unwrap();
    let cert_der = STANDARD.decode(cert_b64).unwrap();
    let cert_digest = props[0]
        .descendants()
        .find(|n| n.has_tag_name((XADES, "CertDigest")))
        .expect("CertDigest");
    let method = cert_digest
        .children()
        .find(|n| n.has_tag_name((DS, "DigestMethod")))
        .unwrap();
    assert_eq!(
        method.attribute("Algorithm"),
        Some("http://www.w3.org/2001/04/xmlenc#sha256")
    );
    let value = cert_digest
        .children()
        .find(|n| n.has_tag_name((DS, "DigestValue")))
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(
        STANDARD.decode(value).unwrap(),
        sha256(&cert_der),
        "SigningCertificateV2 digest is the SHA-256 of the signing certificate"
    );

    let issuer_serial = props[0]
        .descendants()
        .find(|n| n.has_tag_name((XADES, "IssuerSerialV2")))
        .expect("IssuerSerialV2")
        .text()
        .unwrap();
    let issuer_serial = STANDARD.decode(issuer_serial).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    // IssuerSerial ::= SEQUENCE { issuer GeneralNames (SEQUENCE OF [4] Name), serialNumber INTEGER }
    let (rest, outer) = x509_parser::der_parser::parse_der(&issuer_serial).unwrap();
    assert!(rest.is_empty());
    let items = outer.as_sequence().unwrap();
    let names = items[0].as_sequence().unwrap();
    assert_eq!(names.len(), 1);
    assert_eq!(
        names[0].header.raw_tag(),
        Some(&[0xa4][..]),
        "directoryName [4]"
    );
    let name_der = match &names[0].content {
        x509_parser::der_parser::ber::BerObjectContent::Unknown(any) => any.data,
        other => panic!("directoryName content {other:?}"),
    };
    assert_eq!(
        name_der,
        x509.issuer().as_raw(),
        "IssuerSerialV2 names the certificate's issuer"
    );
    assert_eq!(
        items[1].as_bigint().unwrap().to_bytes_be().1,
        x509.tbs_certificate.serial.to_bytes_be(),
        "IssuerSerialV2 carries the certificate's serial"
    );

    let time = find(XADES, "SigningTime")[0].text().unwrap();
    let t = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .expect("SigningTime is xsd:dateTime");
    assert!(time.ends_with('Z'), "SigningTime in UTC: {time}");
    let s = t.unix_timestamp();
    assert!(
        s >= window.0 && s <= window.1,
        "SigningTime {time} within the call"
    );
}

pub(crate) async fn sign_doc(env: &Env, token: &str, w: &World, entries: Value) -> (StatusCode, Value) {
    env.csc(
        "signatures/signDoc",
        token,
        &w.terminal,
        json!({ "credentialID": w.credential, "documentDigests": entries }),
    )
    .await
}

pub(crate) fn xades_entry(digest: &[u8], id: &str, sign_algo: &str) -> Value {
    json!({ "hashes": [std64(digest)], "hashAlgorithmOID": SHA256_OID, "signature_format": "X", "conformance_level": "Ades-B-B",
            "signAlgo": sign_algo, "signed_envelope_property": "Detached", "reference_ids": [id] })
}

pub(crate) fn cms_entry(digests: &[Vec<u8>], sign_algo: &str) -> Value {
    json!({ "hashes": digests.iter().map(|d| std64(d)).collect::<Vec<_>>(), "hashAlgorithmOID": SHA256_OID, "signature_format": "C",
            "conformance_level": "Ades-B-B", "signAlgo": sign_algo, "signed_envelope_property": "Detached" })
}

/// A world with a grant, using a dev-CA credential of `algorithm`.
async fn signing_world(env: &Env, algorithm: &str) -> (World, String, Vec<Vec<u8>>) {
    let mut w = env.world().await;
    if algorithm != "rsa2048" {
        let c = env
            .admin(
                "/admin/v1/credentials",
                json!({ "practitioner_id": w.practitioner, "algorithm": algorithm }),
            )
            .await;
        w.credential = c["id"].as_str().unwrap().to_owned();
    }
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let (s, info) = env
        .csc(
            "credentials/info",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential, "certificates": "chain" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{info}");
    assert_eq!(info["cert"]["status"], "valid");
    let chain = info["cert"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| STANDARD.decode(c.as_str().unwrap()).unwrap())
        .collect();
    (w, token, chain)
}

pub(crate) fn now_s() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn xades_verifies_with_xmlsec1(algorithm: &str, sign_algo: &str) {
    let env = Env::new().await;
    let (w, token, chain) = signing_world(&env, algorithm).await;
    let element = prescription_element("PrescriptionDocument", 14);
    let before = now_s();
    let (s, v) = sign_doc(
        &env,
        &token,
        &w,
        json!([xades_entry(
            &sha256(element.as_bytes()),
            "PrescriptionDocument",
            sign_algo
        )]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["DocumentWithSignature"], json!([]));
    let xml = String::from_utf8(
        STANDARD
            .decode(v["SignatureObject"][0].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(xml.starts_with("<PrescriptionSign><ds:Signature "), "{xml}");
    check_xades_properties(&xml, (before, now_s()));

    let Some(xmlsec1) = tool("xmlsec1", &["--version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca = chain.last().unwrap();
    let doc = assembled(&element, &xml);
    xmlsec1_verify(xmlsec1, dir.path(), &doc, ca)
        .unwrap_or_else(|e| panic!("xmlsec1 rejects the assembled prescription:\n{e}\n{doc}"));
    // One character of the prescription changed (14 → 15 days): the Reference digest fails.
    let tampered = assembled(&prescription_element("PrescriptionDocument", 15), &xml);
    assert!(
        xmlsec1_verify(xmlsec1, dir.path(), &tampered, ca).is_err(),
        "xmlsec1 accepts a changed prescription"
    );
    // Another trust anchor (a fresh dev CA of another server): the chain fails.
    let other = Env::new().await;
    let (_, _, other_chain) = signing_world(&other, "rsa2048").await;
    assert!(
        xmlsec1_verify(xmlsec1, dir.path(), &doc, other_chain.last().unwrap()).is_err(),
        "xmlsec1 trusts a CA it was not given"
    );
}

#[tokio::test]
async fn xades_rsa_signature_on_a_prescription_verifies_with_xmlsec1() {
    xades_verifies_with_xmlsec1("rsa2048", RSA_SHA256_OID).await;
}

#[tokio::test]
async fn xades_ecdsa_signature_on_a_prescription_verifies_with_xmlsec1() {
    xades_verifies_with_xmlsec1("ecdsa-p256", ECDSA_SHA256_OID).await;
}

async fn cms_verifies_with_openssl(algorithm: &str, sign_algo: &str) {
    let env = Env::new().await;
    let (w, token, chain) = signing_world(&env, algorithm).await;
    let docs: Vec<Vec<u8>> = vec![
        b"%PDF-1.7 referral letter to Dr. Suzuki".to_vec(),
        "退院時サマリー: 経過良好".as_bytes().to_vec(),
    ];
    let digests: Vec<Vec<u8>> = docs.iter().map(|d| sha256(d)).collect();
    let (s, v) = sign_doc(&env, &token, &w, json!([cms_entry(&digests, sign_algo)])).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let objects = v["SignatureObject"].as_array().unwrap();
    assert_eq!(objects.len(), 2, "one CMS per digest");
    let Some(openssl) = tool("openssl", &["version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (doc, obj) in docs.iter().zip(objects) {
        let der = STANDARD.decode(obj.as_str().unwrap()).unwrap();
        openssl_cms_verify(openssl, dir.path(), &der, doc, chain.last().unwrap())
            .unwrap_or_else(|e| panic!("openssl cms -verify rejects: {e}"));
        let mut changed = doc.clone();
        changed[0] ^= 1;
        assert!(
            openssl_cms_verify(openssl, dir.path(), &der, &changed, chain.last().unwrap()).is_err(),
            "a changed document verifies"
        );
        // The signed attributes are the CAdES-BES set.
        let out = Command::new(openssl)
            .args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"])
            .arg(dir.path().join("sig.p7s"))
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        for attr in [
            "contentType",
            "messageDigest",
            "signingTime",
            "id-smime-aa-signingCertificateV2",
        ] {
            assert!(
                printed.contains(attr),
                "signed attribute {attr} missing:\n{printed}"
            );
        }
    }
}

#[tokio::test]
async fn cms_rsa_signatures_verify_with_openssl() {
    cms_verifies_with_openssl("rsa2048", RSA_SHA256_OID).await;
}

#[tokio::test]
async fn cms_ecdsa_signatures_verify_with_openssl() {
    cms_verifies_with_openssl("ecdsa-p256", ECDSA_SHA256_OID).await;
}

#[tokio::test]
async fn every_document_signature_is_audited_with_digest_format_and_signing_time() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let element = prescription_element("rx-1", 7);
    let xd = sha256(element.as_bytes());
    let cd = sha256(b"referral letter");
    let (s, v) = sign_doc(
        &env,
        &token,
        &w,
        json!([
            xades_entry(&xd, "rx-1", RSA_SHA256_OID),
            cms_entry(std::slice::from_ref(&cd), RSA_SHA256_OID)
        ]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let xml = String::from_utf8(
        STANDARD
            .decode(v["SignatureObject"][0].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let time_in_xml = xml
        .split("<xades:SigningTime>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let export = env
        .http
        .get(format!("{}/admin/v1/audit/export", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let entries: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let signed: Vec<Value> = entries
        .iter()
        .filter(|e| e["action"] == "signature.create")
        .map(|e| {
            serde_json::from_str::<Value>(e["details"].as_str().unwrap_or("{}"))
                .unwrap_or_else(|_| e["details"].clone())
        })
        .collect();
    assert_eq!(signed.len(), 2, "{export}");
    assert_eq!(signed[0]["hash"], hex::encode(&xd));
    assert_eq!(signed[0]["format"], "X");
    assert_eq!(
        signed[0]["signing_time"], time_in_xml,
        "the audit records the time written into the XAdES"
    );
    assert_eq!(signed[1]["hash"], hex::encode(&cd));
    assert_eq!(signed[1]["format"], "C");
    let verify = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

// ---- refusals: each rule once, each with its code, nothing recorded ----

async fn refused(env: &Env, token: &str, w: &World, entries: Value, status: u16, code: &str) {
    let res = sign_doc(env, token, w, entries).await;
    assert_problem(&res, status, code);
}

async fn signatures_recorded(env: &Env) -> usize {
    let export = env
        .http
        .get(format!("{}/admin/v1/audit/export", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    export
        .lines()
        .filter(|l| l.contains("signature.create"))
        .count()
}

#[tokio::test]
async fn sign_doc_refuses_a_digest_of_the_wrong_length() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    refused(
        &env,
        &token,
        &w,
        json!([cms_entry(&[vec![1; 20]], RSA_SHA256_OID)]),
        400,
        "hash_invalid",
    )
    .await;
    refused(
        &env,
        &token,
        &w,
        json!([xades_entry(&[1; 33], "rx", RSA_SHA256_OID)]),
        400,
        "hash_invalid",
    )
    .await;
    assert_eq!(signatures_recorded(&env).await, 0);
}

#[tokio::test]
async fn sign_doc_refuses_an_unknown_signature_format() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let mut e = cms_entry(&[vec![1; 32]], RSA_SHA256_OID);
    e["signature_format"] = json!("P");
    refused(&env, &token, &w, json!([e]), 400, "format_unsupported").await;
    assert_eq!(signatures_recorded(&env).await, 0);
}

#[tokio::test]
async fn sign_doc_refuses_a_conformance_level_needing_a_timestamp() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    for level in ["Ades-B-T", "Ades-B-LTA", "nonsense"] {
        let mut e = xades_entry(&[1; 32], "rx", RSA_SHA256_OID);
        e["conformance_level"] = json!(level);
        refused(&env, &token, &w, json!([e]), 400, "format_unsupported").await;
    }
    let mut e = cms_entry(&[vec![1; 32]], RSA_SHA256_OID);
    e["signed_envelope_property"] = json!("Enveloping");
    refused(&env, &token, &w, json!([e]), 400, "format_unsupported").await;
    assert_eq!(signatures_recorded(&env).await, 0);
}

#[tokio::test]
async fn sign_doc_refuses_a_xades_request_without_a_valid_reference_id() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let mut e = xades_entry(&[1; 32], "rx", RSA_SHA256_OID);
    e.as_object_mut().unwrap().remove("reference_ids");
    refused(&env, &token, &w, json!([e]), 400, "bad_request").await;
    refused(
        &env,
        &token,
        &w,
        json!([xades_entry(&[1; 32], "1\"><evil/>", RSA_SHA256_OID)]),
        400,
        "bad_request",
    )
    .await;
    assert_eq!(signatures_recorded(&env).await, 0);
}

#[tokio::test]
async fn sign_doc_refuses_a_hash_algorithm_other_than_sha256() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let mut e = cms_entry(&[vec![1; 32]], RSA_SHA256_OID);
    e["hashAlgorithmOID"] = json!("1.3.14.3.2.26");
    refused(&env, &token, &w, json!([e]), 400, "algorithm_unsupported").await;
    refused(
        &env,
        &token,
        &w,
        json!([cms_entry(&[vec![1; 32]], ECDSA_SHA256_OID)]),
        400,
        "algorithm_unsupported",
    )
    .await;
}

#[tokio::test]
async fn sign_doc_stops_when_the_grant_ends() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let grants = env.admin_get("/admin/v1/grants").await;
    env.admin(
        &format!(
            "/admin/v1/grants/{}/revoke",
            grants[0]["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .await;
    refused(
        &env,
        &token,
        &w,
        json!([cms_entry(&[vec![1; 32]], RSA_SHA256_OID)]),
        401,
        "grant_revoked",
    )
    .await;
    assert_eq!(signatures_recorded(&env).await, 0);
}

#[tokio::test]
async fn revoked_credential_signs_nothing_and_reports_revoked() {
    let env = Env::new().await;
    let (w, token, _) = signing_world(&env, "rsa2048").await;
    let v = env
        .admin(
            &format!("/admin/v1/credentials/{}/revoke", w.credential),
            json!({ "reason": "card lost" }),
        )
        .await;
    assert_eq!(v["status"], "revoked");
    refused(
        &env,
        &token,
        &w,
        json!([cms_entry(&[vec![1; 32]], RSA_SHA256_OID)]),
        403,
        "credential_revoked",
    )
    .await;
    assert_problem(
        &env.sign_one(&token, &w.terminal, &w.credential, &[1; 32])
            .await,
        403,
        "credential_revoked",
    );
    let (_, info) = env
        .csc(
            "credentials/info",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential }),
        )
        .await;
    assert_eq!(info["cert"]["status"], "revoked");
    assert_eq!(info["key"]["status"], "disabled");
    assert_eq!(signatures_recorded(&env).await, 0);
    // Revoking again is not found (nothing active to revoke); the audit has the revocation.
    let r = env
        .http
        .post(format!(
            "{}/admin/v1/credentials/{}/revoke",
            env.admin_base, w.credential
        ))
        .bearer_auth(&env.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let export = env
        .http
        .get(format!("{}/admin/v1/audit/export", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        export.lines().any(|l| l.contains("credential.revoke")
            && l.contains(&w.credential)
            && l.contains("card lost")),
        "{export}"
    );
}

/// A self-signed P-256 credential valid from `from` to `to` (Unix seconds), as PEM.
fn self_signed(from: i64, to: i64) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Dr. Test Validity");
    params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
    params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (key.serialize_pem(), cert.pem())
}

/// signHash with ECDSA (the self-signed credentials are P-256).
async fn ecdsa_sign_hash(env: &Env, token: &str, w: &World) -> (StatusCode, Value) {
    env.csc("signatures/signHash", token, &w.terminal, json!({ "credentialID": w.credential, "hashes": [std64(&[1; 32])], "hashAlgorithmOID": SHA256_OID, "signAlgo": ECDSA_SHA256_OID }))
        .await
}

async fn import(
    env: &Env,
    practitioner: &str,
    key_pem: &str,
    cert_pem: &str,
) -> (StatusCode, Value) {
    env.post_json(
        "/admin/v1/credentials/import",
        Some(&format!("Bearer {}", env.token)),
        &json!({ "practitioner_id": practitioner, "key_pem": key_pem, "cert_pem": cert_pem }),
    )
    .await
}

#[tokio::test]
async fn import_refuses_an_expired_certificate() {
    let env = Env::new().await;
    let w = env.world().await;
    let (key, cert) = self_signed(now_s() - 86_400 * 30, now_s() - 86_400);
    assert_problem(
        &import(&env, &w.practitioner, &key, &cert).await,
        403,
        "certificate_expired",
    );
    // …and a certificate of another key, as before.
    let (_, other_cert) = self_signed(now_s() - 60, now_s() + 86_400);
    assert_problem(
        &import(&env, &w.practitioner, &key, &other_cert).await,
        400,
        "bad_request",
    );
    let listed = env
        .admin_get(&format!(
            "/admin/v1/credentials?practitioner_id={}",
            w.practitioner
        ))
        .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        1,
        "only the dev-CA credential: {listed}"
    );
}

#[tokio::test]
async fn no_signature_after_the_certificate_expires() {
    let env = Env::new().await;
    let mut w = env.world().await;
    let (key, cert) = self_signed(now_s() - 60, now_s() + 3600);
    let (s, c) = import(&env, &w.practitioner, &key, &cert).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    w.credential = c["id"].as_str().unwrap().to_owned();
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let entry = cms_entry(&[vec![1; 32]], ECDSA_SHA256_OID);
    assert_eq!(
        sign_doc(&env, &token, &w, json!([entry.clone()])).await.0,
        StatusCode::OK
    );
    // Two hours later the grant still runs, the certificate does not.
    env.app().clock.advance_ms(2 * 3600 * 1000);
    refused(&env, &token, &w, json!([entry]), 403, "certificate_expired").await;
    assert_problem(
        &ecdsa_sign_hash(&env, &token, &w).await,
        403,
        "certificate_expired",
    );
    let (_, info) = env
        .csc(
            "credentials/info",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential }),
        )
        .await;
    assert_eq!(info["cert"]["status"], "expired");
    assert_eq!(signatures_recorded(&env).await, 1);
}

#[tokio::test]
async fn no_signature_before_the_certificate_is_valid() {
    let env = Env::new().await;
    let mut w = env.world().await;
    let (key, cert) = self_signed(now_s() + 3600, now_s() + 86_400);
    let (s, c) = import(&env, &w.practitioner, &key, &cert).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    w.credential = c["id"].as_str().unwrap().to_owned();
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let entry = xades_entry(&[1; 32], "rx", ECDSA_SHA256_OID);
    refused(
        &env,
        &token,
        &w,
        json!([entry.clone()]),
        403,
        "certificate_not_yet_valid",
    )
    .await;
    assert_problem(
        &ecdsa_sign_hash(&env, &token, &w).await,
        403,
        "certificate_not_yet_valid",
    );
    let (_, info) = env
        .csc(
            "credentials/info",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential }),
        )
        .await;
    assert_eq!(info["cert"]["status"], "not_yet_valid");
    // Once notBefore has passed, it signs.
    env.app().clock.advance_ms(2 * 3600 * 1000);
    assert_eq!(
        sign_doc(&env, &token, &w, json!([entry])).await.0,
        StatusCode::OK
    );
}

// ---- the worked example of docs/signing.md stays exact ----

fn docs_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/signing")
}

/// The returned element inside the committed signed example.
fn example_signature(signed: &str) -> &str {
    let start = signed
        .find("<PrescriptionSign>")
        .expect("PrescriptionSign in the example");
    let end = signed
        .find("</PrescriptionSign>")
        .expect("end of PrescriptionSign")
        + "</PrescriptionSign>".len();
    &signed[start..end]
}

#[tokio::test]
async fn the_worked_example_in_docs_verifies_with_xmlsec1() {
    let signed = std::fs::read_to_string(docs_dir().join("prescription.signed.xml"))
        .expect("docs/signing/prescription.signed.xml");
    let ca_pem = std::fs::read_to_string(docs_dir().join("dev-ca.pem")).unwrap();
    let ca = STANDARD
        .decode(
            ca_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap();
    let doc_md = std::fs::read_to_string(docs_dir().join("../signing.md")).unwrap();
    let sig = example_signature(&signed);
    // The digest the docs say the EHR sends is the one the signature references.
    let first_digest = sig
        .split("<ds:DigestValue>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    assert!(
        doc_md.contains(first_digest),
        "docs/signing.md states the prescription digest {first_digest}"
    );
    assert!(
        doc_md.contains(sig),
        "docs/signing.md shows the returned element byte for byte"
    );
    check_xades_properties(sig, (0, i64::MAX));
    let Some(xmlsec1) = tool("xmlsec1", &["--version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    xmlsec1_verify(xmlsec1, dir.path(), &signed, &ca)
        .unwrap_or_else(|e| panic!("xmlsec1 rejects docs/signing/prescription.signed.xml: {e}"));
    let tampered = signed.replacen("<Days>14</Days>", "<Days>15</Days>", 1);
    assert!(xmlsec1_verify(xmlsec1, dir.path(), &tampered, &ca).is_err());
}

/// Regenerates docs/signing/{prescription.signed.xml, dev-ca.pem} from
/// docs/signing/prescription.xml (needs python3 with lxml for exc-c14n):
/// `cargo test -p shomei-server --test server write_signing_example -- --ignored`
#[tokio::test]
#[ignore]
async fn write_signing_example() {
    let dir = docs_dir();
    let py = "import sys,hashlib,base64\nfrom lxml import etree\nel=etree.parse(sys.argv[1]).xpath('//*[@Id=\"PrescriptionDocument\"]')[0]\nprint(base64.b64encode(hashlib.sha256(etree.tostring(el,method='c14n',exclusive=True,with_comments=False)).digest()).decode())";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", py])
        .arg(dir.join("prescription.xml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = STANDARD
        .decode(String::from_utf8(out.stdout).unwrap().trim())
        .unwrap();
    let env = Env::new().await;
    let (w, token, chain) = signing_world(&env, "rsa2048").await;
    let (s, v) = sign_doc(
        &env,
        &token,
        &w,
        json!([xades_entry(&digest, "PrescriptionDocument", RSA_SHA256_OID)]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let xml = String::from_utf8(
        STANDARD
            .decode(v["SignatureObject"][0].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let doc = std::fs::read_to_string(dir.join("prescription.xml")).unwrap();
    let signed = doc.replacen(
        "</PrescriptionDocument>",
        &format!("</PrescriptionDocument>{xml}"),
        1,
    );
    std::fs::write(dir.join("prescription.signed.xml"), &signed).unwrap();
    std::fs::write(
        dir.join("dev-ca.pem"),
        pem("CERTIFICATE", chain.last().unwrap()),
    )
    .unwrap();
    println!("digest {}\n{xml}", STANDARD.encode(&digest));
}
