//! The day going wrong: every way a login or a grant must be refused, over real HTTP.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use shomei_core::approval::{ApprovalMessage, Decision};
use shomei_core::key::PlatformKey;
use shomei_tests::Phone;

use crate::server::Store;
use crate::world::{Clinic, prescriptions, register_practitioner, scan_terminal_qr, sha256, sign_and_verify};

/// A decision as the phone would post it, built by hand so a test can replay or tamper with it.
struct RawDecision {
    url: String,
    device_token: String,
    body: Value,
}

impl RawDecision {
    /// Signs the approval message for the phone's pending login with `signer`'s key, claiming
    /// to come from `claimed` (normally the same phone).
    fn build(claimed: &Phone, signer: &Phone, decision: Decision, number: u8) -> RawDecision {
        let (login, context) = claimed.pending().expect("a scanned login");
        let enrollment = claimed.enrollment().expect("enrolled");
        let device_id = enrollment.device_id;
        let challenge = context.challenge;
        let message = ApprovalMessage {
            origin: &login.origin,
            login_id: &login.login_id,
            secret: &login.secret,
            device_id: *device_id.as_bytes(),
            decision,
            number,
            challenge,
        };
        let signature = signer.key().expect("key").sign(&message.to_bytes()).expect("sign");
        RawDecision {
            url: format!("{}/v1/phone/logins/{}/decision", login.origin.as_str(), login.login_id.to_b64u()),
            device_token: enrollment.device_token.clone(),
            body: json!({
                "device_id": device_id.to_string(),
                "decision": match decision { Decision::Approve => "approve", Decision::Deny => "deny" },
                "number": number,
                "signature": URL_SAFE_NO_PAD.encode(signature),
            }),
        }
    }

    async fn post(&self) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .post(&self.url)
            .bearer_auth(&self.device_token)
            .json(&self.body)
            .send()
            .await
            .expect("POST decision");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_login_tells_the_terminal_and_issues_no_token() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let auth = clinic.terminal.start_login().await;
    scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;

    let response = phone.deny().await.expect("deny accepted");
    assert_eq!(format!("{:?}", response.outcome).to_lowercase(), "denied");
    assert!(response.grant.is_none(), "a deny carries no grant");
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "denied");
    let refused = clinic.terminal.token(&auth.device_code).await.expect_err("no token after deny");
    assert_eq!(refused.code(), "access_denied");
    assert!(phone.grants().await.expect("grants").is_empty(), "no grant exists");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choosing_a_number_the_ehr_does_not_show_is_refused() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let auth = clinic.terminal.start_login().await;
    let context = scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    let wrong = *context.number_choices.iter().find(|n| **n != auth.match_number).expect("a decoy number");

    let err = phone.approve(wrong).await.expect_err("wrong number refused");
    assert!(format!("{err}").contains("number_mismatch") || format!("{err:?}").contains("NumberMismatch"), "{err:?}");
    let refused = clinic.terminal.token(&auth.device_code).await.expect_err("no token after a wrong number");
    assert_ne!(refused.code(), "", "token refused: {refused:?}");
    assert!(phone.grants().await.expect("grants").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_nobody_answers_expires_while_the_terminal_waits() {
    let mut clinic = Clinic::open_with_login_ttl(Store::Sqlite, 3);
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let auth = clinic.terminal.start_login().await;
    assert!(auth.expires_in <= 3, "test server issues short logins: {}", auth.expires_in);

    // The terminal waits; nobody scans. The wait ends with "expired", not at its timeout.
    let mut status = clinic.terminal.wait(&auth.login_id, 30).await;
    for _ in 0..3 {
        if status != "pending" {
            break;
        }
        status = clinic.terminal.wait(&auth.login_id, 30).await;
    }
    assert_eq!(status, "expired");
    let refused = clinic.terminal.token(&auth.device_code).await.expect_err("no token for an expired login");
    assert_eq!(refused.code(), "expired_token");

    // A phone scanning the stale QR afterwards is refused too.
    let png = clinic.terminal.qr_png(&auth.login_id).await;
    let frame = image::load_from_memory(&png).expect("png").to_luma8();
    let err = phone.scan_image(&frame).await.expect_err("stale QR refused");
    assert!(matches!(err, shomei_tests::PhoneError::Expired), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_approval_is_refused() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let auth = clinic.terminal.start_login().await;
    scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    let approval = RawDecision::build(&phone, &phone, Decision::Approve, auth.match_number);

    let (status, first) = approval.post().await;
    assert_eq!(status, 200, "the genuine approval is accepted: {first}");
    assert_eq!(first["outcome"], "approved");

    // The same bytes again, on the same login: single use.
    let (status, again) = approval.post().await;
    assert_eq!((status, code(&again)), (409, "login_already_decided"), "{again}");

    // The same signature carried into a new login of the same terminal: bound to the login.
    let next = clinic.terminal.start_login().await;
    let (status, moved) = RawDecision {
        url: approval.url.replace(&auth.login_id, &next.login_id),
        ..approval
    }
    .post()
    .await;
    assert!((400..500).contains(&status), "replay into another login refused: {status} {moved}");
    assert_eq!(clinic.terminal.wait(&next.login_id, 1).await, "pending", "the other login stays undecided");
    let refused = clinic.terminal.token(&next.device_code).await.expect_err("no token for the replay target");
    assert_eq!(refused.code(), "authorization_pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_signed_by_another_device_is_refused() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    // A second enrolled phone (a colleague's) signs, claiming to be Dr. Sato's phone.
    let colleague = register_practitioner(&clinic.server, &clinic.facility_id, "Dr. Ken Ito");
    let other = clinic.enrolled_phone(&colleague).await;
    let auth = clinic.terminal.start_login().await;
    scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;

    let forged = RawDecision::build(&phone, &other, Decision::Approve, auth.match_number);
    let (status, body) = forged.post().await;
    assert_eq!((status, code(&body)), (400, "signature_invalid"), "{body}");
    assert_eq!(clinic.terminal.wait(&auth.login_id, 1).await, "pending", "a forged approval decides nothing");
    let refused = clinic.terminal.token(&auth.device_code).await.expect_err("no token");
    assert_eq!(refused.code(), "authorization_pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_terminal_cannot_use_the_first_terminals_grant() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let intruder = clinic.another_terminal("Back office PC");

    let digests = vec![sha256(b"<Prescription id=\"stolen\"/>")];
    let refused = intruder
        .sign_hash(&token.access_token, &clinic.credential_id, &digests, crate::terminal::RSA_SHA256_OID)
        .await
        .expect_err("another terminal's grant is refused");
    assert_eq!((refused.status, refused.code()), (403, "grant_terminal_mismatch"), "{refused:?}");
    let listed = intruder.credentials_list(&token.access_token).await.expect_err("list refused too");
    assert_eq!(listed.code(), "grant_terminal_mismatch");
    // The rightful terminal still signs.
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &prescriptions(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_device_mid_day_refuses_the_next_sign_hash_at_once() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &prescriptions(2)).await;

    // The phone is reported lost; the operator revokes it.
    let device_id = Clinic::device_id(&phone);
    clinic.server.admin(&["device", "revoke", &device_id]);

    let digests = vec![sha256(b"<Prescription id=\"after-revoke\"/>")];
    let refused = clinic
        .terminal
        .sign_hash(&token.access_token, &clinic.credential_id, &digests, crate::terminal::RSA_SHA256_OID)
        .await
        .expect_err("signHash refused right after revocation");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(matches!(refused.code(), "grant_revoked" | "device_revoked"), "{refused:?}");
    // The revoked phone cannot start anything new either.
    let auth = clinic.terminal.start_login().await;
    let png = clinic.terminal.qr_png(&auth.login_id).await;
    let frame = image::load_from_memory(&png).expect("png").to_luma8();
    let err = phone.scan_image(&frame).await.expect_err("revoked device refused");
    assert!(format!("{err:?}").to_lowercase().contains("revoked"), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_day_keeps_the_grant() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let docs = prescriptions(6);
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &docs[..3]).await;

    clinic.server.restart();

    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &docs[3..]).await;
    let grants = phone.grants().await.expect("the phone still reaches the server");
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].signatures_made, 6, "no signature count lost across the restart");
    clinic.audit_verified_export();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_the_credential_mid_day_refuses_sign_doc_and_sign_hash_at_once() {
    let mut clinic = Clinic::open();
    let pid = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&pid).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    crate::documents::sign_documents_and_verify(&clinic, &clinic.terminal, &token.access_token, &[b"referral letter".to_vec()]).await;

    // The HPKI card behind the credential is reported lost; the operator revokes the credential.
    let v = clinic.server.admin(&["credential", "revoke", &clinic.credential_id, "--reason", "HPKI card reported lost"]);
    assert_eq!(v["status"], "revoked", "{v}");

    let digests = vec![sha256(b"<PrescriptionDocument Id=\"after-revoke\"></PrescriptionDocument>")];
    let entry = crate::documents::xades_entry(&digests, &["after-revoke"], crate::terminal::RSA_SHA256_OID);
    let refused = clinic.terminal.sign_doc(&token.access_token, &clinic.credential_id, json!([entry])).await.expect_err("signDoc refused");
    assert_eq!((refused.status, refused.code()), (403, "credential_revoked"), "{refused:?}");
    let refused = clinic
        .terminal
        .sign_hash(&token.access_token, &clinic.credential_id, &digests, crate::terminal::RSA_SHA256_OID)
        .await
        .expect_err("signHash refused");
    assert_eq!((refused.status, refused.code()), (403, "credential_revoked"), "{refused:?}");
    let export = clinic.audit_verified_export();
    assert!(export.contains("credential.revoke"), "the revocation is audited");
}
