//! Checks the test vectors in docs/protocol.md against this code, so the
//! normative document cannot drift from the implementation.
//!
//! The document holds fenced blocks whose info string is `vector:<name>`.
//! `vector:inputs` lists `name = value` lines; every other block is an output
//! computed here from those inputs and compared byte for byte. Run
//! `cargo test -p shomei-core print_vectors -- --ignored --nocapture` to print
//! freshly computed blocks after an intentional protocol change.

use std::collections::BTreeMap;

use crate::api::{
    DecisionRequest, EnrollRequest, LoginByCode, LoginByCodeRequest, LoginContext,
    LoginContextRequest, NamedRef, Platform,
};
use crate::approval::{ApprovalMessage, Decision, DevicePublicKey, EnrollmentMessage};
use crate::attestation;
use crate::ids::{EnrollmentId, LoginId, QrSecret};
use crate::key::{PlatformKey, SoftwareKey};
use crate::origin::Origin;
use crate::payload::{EnrollmentPayload, LoginPayload, Payload};
use crate::user_code::UserCode;

const DOC: &str = include_str!("../../docs/protocol.md");

/// All `vector:<name>` fenced blocks of the document.
fn blocks(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.trim().strip_prefix("```") else {
            continue;
        };
        let Some(name) = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("vector:"))
        else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(
            out.insert(name.to_string(), body).is_none(),
            "vector {name} appears twice"
        );
    }
    out
}

fn inputs(doc: &str) -> BTreeMap<String, String> {
    let b = blocks(doc);
    let text = b
        .get("inputs")
        .expect("docs/protocol.md has a vector:inputs block");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').expect("inputs lines are name = value");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn hex16(s: &str) -> [u8; 16] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Hex, wrapped at 64 characters so the document stays readable.
fn wrapped_hex(b: &[u8]) -> String {
    let h = hex::encode(b);
    h.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Computes every output vector from the inputs.
fn compute(i: &BTreeMap<String, String>) -> BTreeMap<&'static str, String> {
    let get = |k: &str| {
        i.get(k)
            .unwrap_or_else(|| panic!("input {k} missing"))
            .as_str()
    };
    let key =
        SoftwareKey::from_scalar_bytes(&hex::decode(get("device_private_key")).unwrap()).unwrap();
    let public = DevicePublicKey::from_sec1(&key.public_key().unwrap()).unwrap();
    let origin = Origin::parse(get("origin")).unwrap();
    let login = LoginPayload {
        origin: origin.clone(),
        login_id: LoginId(hex16(get("login_id"))),
        secret: QrSecret::from_bytes(hex16(get("login_secret"))),
        expires_at: get("login_expires_at").parse().unwrap(),
    };
    let enrollment = EnrollmentPayload {
        origin: origin.clone(),
        enrollment_id: EnrollmentId(hex16(get("enrollment_id"))),
        secret: QrSecret::from_bytes(hex16(get("enrollment_secret"))),
        expires_at: get("enrollment_expires_at").parse().unwrap(),
    };
    let device_id = uuid::Uuid::parse_str(get("device_id")).unwrap();
    let device_name = get("device_name");
    let number: u8 = get("number").parse().unwrap();
    let challenge = hex32(get("challenge"));

    let approve = ApprovalMessage {
        origin: &origin,
        login_id: &login.login_id,
        secret: &login.secret,
        device_id: *device_id.as_bytes(),
        decision: Decision::Approve,
        number,
        challenge,
    }
    .to_bytes();
    let deny = ApprovalMessage {
        decision: Decision::Deny,
        number: 0,
        ..ApprovalMessage {
            origin: &origin,
            login_id: &login.login_id,
            secret: &login.secret,
            device_id: *device_id.as_bytes(),
            decision: Decision::Approve,
            number,
            challenge,
        }
    }
    .to_bytes();
    let enroll_msg = EnrollmentMessage {
        origin: &origin,
        enrollment_id: &enrollment.enrollment_id,
        secret: &enrollment.secret,
        public_key: &public,
        device_name,
    }
    .to_bytes();
    let approve_sig = key.sign(&approve).unwrap();
    let enroll_sig = key.sign(&enroll_msg).unwrap();
    // Every signature in the document must verify (with ring), not only match.
    public.verify(&approve, &approve_sig).unwrap();
    public.verify(&enroll_msg, &enroll_sig).unwrap();

    let enroll_req = EnrollRequest {
        enrollment_id: enrollment.enrollment_id,
        secret: enrollment.secret.clone(),
        activation_password: get("activation_password").to_string(),
        public_key: public.as_bytes().to_vec(),
        proof: enroll_sig.clone(),
        device_name: device_name.to_string(),
        platform: Platform::Ios,
        attestation: None,
    };
    let context_req = LoginContextRequest {
        secret: login.secret.clone(),
    };
    let decision_req = DecisionRequest {
        device_id,
        decision: Decision::Approve,
        number,
        signature: approve_sig.clone(),
    };

    let secret_sha256 = enrollment.secret.sha256();
    let challenge_preimage = attestation::attestation_challenge_preimage(
        &origin,
        &enrollment.enrollment_id,
        &secret_sha256,
    );
    let attestation_challenge = attestation::enrollment_attestation_challenge(&enrollment);
    let client_data_preimage = attestation::client_data_preimage(&attestation_challenge, &public);
    let client_data_hash = attestation::client_data_hash(&attestation_challenge, &public);

    let by_code_req = LoginByCodeRequest {
        user_code: UserCode::parse(get("user_code_typed")).unwrap().canonical(),
    };
    let at = |unix: &str| time::OffsetDateTime::from_unix_timestamp(unix.parse().unwrap()).unwrap();
    let choices: Vec<u8> = get("number_choices")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let by_code_resp = LoginByCode {
        payload: login.to_url(),
        context: LoginContext {
            login_id: login.login_id,
            facility: NamedRef {
                id: uuid::Uuid::parse_str(get("facility_id")).unwrap(),
                name: get("facility_name").to_string(),
            },
            terminal: NamedRef {
                id: uuid::Uuid::parse_str(get("terminal_id")).unwrap(),
                name: get("terminal_name").to_string(),
            },
            requested_at: at(get("login_requested_at")),
            expires_at: at(get("login_expires_at")),
            number_choices: choices.try_into().unwrap(),
            challenge,
        },
    };
    assert!(by_code_resp.context.number_choices.contains(&number));

    let mut out = BTreeMap::new();
    out.insert(
        "by-code-request",
        serde_json::to_string_pretty(&by_code_req).unwrap(),
    );
    out.insert(
        "by-code-response",
        serde_json::to_string_pretty(&by_code_resp).unwrap(),
    );
    out.insert(
        "attestation-challenge-preimage",
        wrapped_hex(&challenge_preimage),
    );
    out.insert("attestation-challenge", wrapped_hex(&attestation_challenge));
    out.insert("client-data-preimage", wrapped_hex(&client_data_preimage));
    out.insert("client-data-hash", wrapped_hex(&client_data_hash));
    out.insert("device-public-key", wrapped_hex(public.as_bytes()));
    out.insert("login-url", login.to_url());
    out.insert("enrollment-url", enrollment.to_url());
    out.insert("login-secret-sha256", wrapped_hex(&login.secret.sha256()));
    out.insert("approval-message", wrapped_hex(&approve));
    out.insert("approval-signature", wrapped_hex(&approve_sig));
    out.insert("deny-message", wrapped_hex(&deny));
    out.insert("enrollment-message", wrapped_hex(&enroll_msg));
    out.insert("enrollment-signature", wrapped_hex(&enroll_sig));
    out.insert(
        "enroll-request",
        serde_json::to_string_pretty(&enroll_req).unwrap(),
    );
    out.insert(
        "context-request",
        serde_json::to_string_pretty(&context_req).unwrap(),
    );
    out.insert(
        "decision-request",
        serde_json::to_string_pretty(&decision_req).unwrap(),
    );
    out
}

#[test]
#[ignore = "prints vectors for pasting into docs/protocol.md"]
fn print_vectors() {
    for (name, value) in compute(&inputs(DOC)) {
        println!("```text vector:{name}\n{value}\n```\n");
    }
}

#[test]
fn protocol_md_vectors_match_the_code() {
    let doc_blocks = blocks(DOC);
    let computed = compute(&inputs(DOC));
    for (name, value) in &computed {
        let in_doc = doc_blocks
            .get(*name)
            .unwrap_or_else(|| panic!("docs/protocol.md lacks vector:{name}"));
        if name.ends_with("-request") || name.ends_with("-response") {
            let a: serde_json::Value = serde_json::from_str(in_doc).unwrap();
            let b: serde_json::Value = serde_json::from_str(value).unwrap();
            assert_eq!(a, b, "vector:{name} differs from the code");
        } else {
            let norm = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(
                norm(in_doc),
                norm(value),
                "vector:{name} differs from the code"
            );
        }
    }
    // No stale blocks either.
    for name in doc_blocks.keys() {
        assert!(
            name == "inputs" || computed.contains_key(name.as_str()),
            "unknown vector:{name} in docs/protocol.md"
        );
    }
}

#[test]
fn protocol_md_signatures_verify_as_written() {
    // Independent of our signer: the DER bytes printed in the document verify
    // against the printed public key over the printed message.
    let b = blocks(DOC);
    let h = |n: &str| hex::decode(b[n].split_whitespace().collect::<String>()).unwrap();
    let pk = DevicePublicKey::from_sec1(&h("device-public-key")).unwrap();
    pk.verify(&h("approval-message"), &h("approval-signature"))
        .unwrap();
    pk.verify(&h("enrollment-message"), &h("enrollment-signature"))
        .unwrap();
    assert!(
        pk.verify(&h("deny-message"), &h("approval-signature"))
            .is_err()
    );
}

#[test]
fn protocol_md_urls_parse() {
    let b = blocks(DOC);
    let i = inputs(DOC);
    let login = Payload::parse_ignoring_expiry(b["login-url"].trim()).unwrap();
    let enrollment = Payload::parse_ignoring_expiry(b["enrollment-url"].trim()).unwrap();
    assert_eq!(login.origin().as_str(), i["origin"]);
    assert_eq!(enrollment.kind(), crate::payload::PayloadKind::Enrollment);
}

#[test]
fn protocol_md_error_table_uses_known_codes() {
    let section = DOC
        .split("### 4.5 Errors")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("docs/protocol.md has section 4.5");
    let mut seen = 0;
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let code = line.split('`').nth(1).unwrap();
        let parsed: crate::api::ErrorCode =
            serde_json::from_value(serde_json::json!(code)).unwrap();
        assert_ne!(
            parsed,
            crate::api::ErrorCode::Other,
            "{code} is not an ErrorCode"
        );
        seen += 1;
    }
    assert!(seen >= 15, "error table too short: {seen}");
}
