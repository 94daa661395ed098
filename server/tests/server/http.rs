//! Every rule of the HTTP API, one test each, over real loopback HTTP.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_core::Decision;

use crate::common::*;

// ---- enrollment ----

#[tokio::test]
async fn enrollment_succeeds_with_code_password_and_proof() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let devices = env.admin_get(&format!("/admin/v1/devices?practitioner_id={}", w.practitioner)).await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["id"], phone.device_id.to_string());
}

#[tokio::test]
async fn enrollment_code_with_wrong_secret_is_invalid() {
    let env = Env::new().await;
    let w = env.world().await;
    let (mut p, pw) = env.enrollment(&w.practitioner).await;
    p.secret = shomei_core::QrSecret::random();
    let key = shomei_core::SoftwareKey::generate();
    let res = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key, "x")).await;
    assert_problem(&res, 400, "enrollment_invalid");
}

#[tokio::test]
async fn unknown_enrollment_code_is_invalid() {
    let env = Env::new().await;
    let w = env.world().await;
    let (mut p, pw) = env.enrollment(&w.practitioner).await;
    p.enrollment_id = shomei_core::EnrollmentId::random();
    let key = shomei_core::SoftwareKey::generate();
    let res = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key, "x")).await;
    assert_problem(&res, 400, "enrollment_invalid");
}

#[tokio::test]
async fn enrollment_code_is_single_use() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let key = shomei_core::SoftwareKey::generate();
    let first = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key, "a")).await;
    assert_eq!(first.0, StatusCode::CREATED);
    let key2 = shomei_core::SoftwareKey::generate();
    let second = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key2, "b")).await;
    assert_problem(&second, 409, "enrollment_used");
}

#[tokio::test]
async fn expired_enrollment_code_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    env.app().clock.advance_ms(601_000);
    let key = shomei_core::SoftwareKey::generate();
    let res = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key, "a")).await;
    assert_problem(&res, 410, "enrollment_expired");
}

#[tokio::test]
async fn five_wrong_activation_passwords_lock_the_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let key = shomei_core::SoftwareKey::generate();
    for i in 0..4 {
        let res = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, "WRONG-PASS", &key, "a")).await;
        assert_problem(&res, 401, "activation_password_wrong");
        assert!(res.1["detail"].as_str().unwrap().contains(&format!("{} attempts", 4 - i)), "{}", res.1);
    }
    let fifth = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, "WRONG-PASS", &key, "a")).await;
    assert_problem(&fifth, 423, "enrollment_locked");
    // Even the right password no longer works.
    let right = env.post_json("/v1/phone/enroll", None, &env.enroll_body(&p, &pw, &key, "a")).await;
    assert_problem(&right, 423, "enrollment_locked");
}

#[tokio::test]
async fn enrollment_proof_by_another_key_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let key = shomei_core::SoftwareKey::generate();
    let mut body = env.enroll_body(&p, &pw, &key, "a");
    body["public_key"] = json!(b64u(&shomei_core::SoftwareKey::generate().public_key_sec1()));
    let res = env.post_json("/v1/phone/enroll", None, &body).await;
    assert_problem(&res, 400, "proof_invalid");
}

#[tokio::test]
async fn enrolling_a_new_phone_retires_the_old_one() {
    let env = Env::new().await;
    let w = env.world().await;
    let old = env.enroll(&w.practitioner).await;
    let _new = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let res = env.context(&old, &login).await;
    assert_problem(&res, 403, "device_revoked");
}

// ---- login ----

#[tokio::test]
async fn approved_login_gives_the_terminal_a_grant() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    assert!(login.v["expires_in"].as_i64().unwrap() <= 120);
    let (s, ctx) = env.context(&phone, &login).await;
    assert_eq!(s, StatusCode::OK);
    let choices: Vec<u8> = serde_json::from_value(ctx["number_choices"].clone()).unwrap();
    assert_eq!(choices.len(), 3);
    assert!(choices.contains(&login.number()));
    assert!(choices.iter().all(|n| (10..=99).contains(n)));
    assert_eq!(ctx["terminal"]["name"], "EHR 1");
    let (s, v) = env.decide(&phone, &login, Decision::Approve, login.number()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["outcome"], "approved");
    let (s, t) = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert!(t["expires_in"].as_i64().unwrap() > 17 * 3600);
}

#[tokio::test]
async fn token_is_pending_then_slow_down_when_polled_too_fast() {
    let env = Env::new().await;
    let w = env.world().await;
    let login = env.start_login(&w.terminal).await;
    let first = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(first.1["error"], "authorization_pending");
    let second = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(second.0, StatusCode::BAD_REQUEST);
    assert_eq!(second.1["error"], "slow_down");
}

#[tokio::test]
async fn denied_login_gives_access_denied() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (s, v) = env.decide(&phone, &login, Decision::Deny, 0).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["outcome"], "denied");
    let t = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(t.1["error"], "access_denied");
}

#[tokio::test]
async fn expired_login_cannot_be_approved() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (_, ctx) = env.context(&phone, &login).await;
    env.app().clock.advance_ms(121_000);
    let body = env.decision_body(&phone, &login, challenge_of(&ctx), Decision::Approve, login.number());
    let res = env.post_json(&format!("/v1/phone/logins/{}/decision", login.id()), Some(&format!("Bearer {}", phone.token)), &body).await;
    assert_problem(&res, 410, "login_expired");
    let t = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(t.1["error"], "expired_token");
}

#[tokio::test]
async fn wrong_number_is_refused_and_consumes_the_login() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let wrong = if login.number() == 99 { 98 } else { login.number() + 1 };
    let res = env.decide(&phone, &login, Decision::Approve, wrong).await;
    assert_problem(&res, 403, "number_mismatch");
    let again = env.context(&phone, &login).await;
    assert_problem(&again, 409, "login_already_decided");
}

#[tokio::test]
async fn approval_signed_by_another_key_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let mut phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (_, ctx) = env.context(&phone, &login).await;
    phone.key = shomei_core::SoftwareKey::generate();
    let body = env.decision_body(&phone, &login, challenge_of(&ctx), Decision::Approve, login.number());
    let res = env.post_json(&format!("/v1/phone/logins/{}/decision", login.id()), Some(&format!("Bearer {}", phone.token)), &body).await;
    assert_problem(&res, 400, "signature_invalid");
}

#[tokio::test]
async fn approval_signed_over_another_decision_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (_, ctx) = env.context(&phone, &login).await;
    // Signed a deny, sent as approve.
    let mut body = env.decision_body(&phone, &login, challenge_of(&ctx), Decision::Deny, login.number());
    body["decision"] = json!("approve");
    let res = env.post_json(&format!("/v1/phone/logins/{}/decision", login.id()), Some(&format!("Bearer {}", phone.token)), &body).await;
    assert_problem(&res, 400, "signature_invalid");
}

#[tokio::test]
async fn revoked_device_cannot_approve() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (_, ctx) = env.context(&phone, &login).await;
    env.admin(&format!("/admin/v1/devices/{}/revoke", phone.device_id), json!({})).await;
    let body = env.decision_body(&phone, &login, challenge_of(&ctx), Decision::Approve, login.number());
    let res = env.post_json(&format!("/v1/phone/logins/{}/decision", login.id()), Some(&format!("Bearer {}", phone.token)), &body).await;
    assert_problem(&res, 403, "device_revoked");
}

#[tokio::test]
async fn practitioner_not_allowed_at_facility_cannot_approve() {
    let env = Env::new().await;
    let w = env.world().await;
    let other = env.admin("/admin/v1/facilities", json!({ "name": "Clinic B" })).await;
    let foreign_terminal = env.terminal_in(other["id"].as_str().unwrap(), "EHR B").await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&foreign_terminal).await;
    let res = env.context(&phone, &login).await;
    assert_problem(&res, 403, "practitioner_not_allowed");
}

#[tokio::test]
async fn wrong_qr_secret_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let mut login = env.start_login(&w.terminal).await;
    login.payload.secret = shomei_core::QrSecret::random();
    let res = env.context(&phone, &login).await;
    assert_problem(&res, 403, "login_secret_wrong");
}

#[tokio::test]
async fn of_two_concurrent_approvals_exactly_one_wins() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (_, ctx) = env.context(&phone, &login).await;
    let body = env.decision_body(&phone, &login, challenge_of(&ctx), Decision::Approve, login.number());
    let path = format!("/v1/phone/logins/{}/decision", login.id());
    let auth = format!("Bearer {}", phone.token);
    let (a, b) = tokio::join!(env.post_json(&path, Some(&auth), &body), env.post_json(&path, Some(&auth), &body));
    let ok = [&a, &b].iter().filter(|r| r.0 == StatusCode::OK).count();
    let lost: Vec<&(StatusCode, Value)> = [&a, &b].into_iter().filter(|r| r.0 != StatusCode::OK).collect();
    assert_eq!(ok, 1, "a={a:?} b={b:?}");
    assert_problem(lost[0], 409, "login_already_decided");
    let grants = env.admin_get("/admin/v1/grants").await;
    assert_eq!(grants.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn access_token_is_issued_only_once() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    env.decide(&phone, &login, Decision::Approve, login.number()).await;
    let first = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(first.0, StatusCode::OK);
    let second = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(second.1["error"], "invalid_grant");
}

#[tokio::test]
async fn wait_endpoint_returns_the_decision() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let url = format!("{}/v1/terminal/logins/{}/wait?timeout=30", env.base, login.id());
    let waiter = env.http.get(&url).header("authorization", basic(&w.terminal.0, &w.terminal.1)).send();
    let decide = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        env.decide(&phone, &login, Decision::Approve, login.number()).await
    };
    let (r, d) = tokio::join!(waiter, decide);
    assert_eq!(d.0, StatusCode::OK);
    let v: Value = r.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "approved");
}

#[tokio::test]
async fn events_stream_reports_pending_then_denied() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let url = format!("{}/v1/terminal/logins/{}/events", env.base, login.id());
    let r = env.http.get(&url).header("authorization", basic(&w.terminal.0, &w.terminal.1)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let decide = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        env.decide(&phone, &login, Decision::Deny, 0).await
    };
    let (body, _) = tokio::join!(r.text(), decide);
    let body = body.unwrap();
    let statuses: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(statuses, [r#"{"status":"pending"}"#, r#"{"status":"denied"}"#], "{body}");
}

#[tokio::test]
async fn qr_png_decodes_to_the_login_payload() {
    let env = Env::new().await;
    let w = env.world().await;
    let login = env.start_login(&w.terminal).await;
    let url = format!("{}/v1/terminal/logins/{}/qr.png", env.base, login.id());
    let r = env.http.get(&url).header("authorization", basic(&w.terminal.0, &w.terminal.1)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(text, login.v["verification_uri_complete"].as_str().unwrap());
}

#[tokio::test]
async fn another_terminal_cannot_see_the_login_qr() {
    let env = Env::new().await;
    let w = env.world().await;
    let other = env.terminal_in(&w.facility, "EHR 2").await;
    let login = env.start_login(&w.terminal).await;
    let url = format!("{}/v1/terminal/logins/{}/qr.svg", env.base, login.id());
    let r = env.http.get(&url).header("authorization", basic(&other.0, &other.1)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_start_needs_terminal_credentials() {
    let env = Env::new().await;
    let w = env.world().await;
    let r = env
        .http
        .post(format!("{}/oauth/device_authorization", env.base))
        .header("authorization", basic(&w.terminal.0, "not-the-secret"))
        .form(&[("scope", "sign")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_client");
}

// ---- signing ----

#[tokio::test]
async fn sign_hash_signature_verifies_against_the_certificate() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let (s, list) = env.csc("credentials/list", &token, &w.terminal, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["credentialIDs"], json!([w.credential]));
    let (s, info) = env.csc("credentials/info", &token, &w.terminal, json!({ "credentialID": w.credential, "certificates": "chain" })).await;
    assert_eq!(s, StatusCode::OK, "{info}");
    let message = b"prescription <Rp/>";
    let digest: [u8; 32] = ring::digest::digest(&ring::digest::SHA256, message).as_ref().try_into().unwrap();
    let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &digest).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v["signatures"][0].as_str().unwrap()).unwrap();
    let cert = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, info["cert"]["certificates"][0].as_str().unwrap()).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let spki = x509.public_key().subject_public_key.data.to_vec();
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, spki).verify(message, &sig).expect("signature verifies with ring");
}

#[tokio::test]
async fn sign_without_grant_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let res = env.sign_one("bm90LWEtZ3JhbnQ", &w.terminal, &w.credential, &[7; 32]).await;
    assert_problem(&res, 401, "grant_invalid");
}

#[tokio::test]
async fn sign_with_another_terminals_grant_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let other = env.terminal_in(&w.facility, "EHR 2").await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let res = env.sign_one(&token, &other, &w.credential, &[7; 32]).await;
    assert_problem(&res, 403, "grant_terminal_mismatch");
}

/// signHash and signDoc read terminal, grant and credential in one store
/// statement; what they refuse, and in which order, is what the three
/// lookups one by one refuse: the terminal's credentials first, then the
/// grant, then the credential; and a refused call signs and records nothing.
#[tokio::test]
async fn signing_checks_terminal_then_grant_then_credential() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let wrong_secret = (w.terminal.0.clone(), b64u(&[9; 32]));
    let unknown_terminal = (uuid::Uuid::new_v4().to_string(), w.terminal.1.clone());
    let p2 = env.admin("/admin/v1/practitioners", json!({ "display_name": "Dr B", "role": "doctor", "facility_ids": [w.facility] })).await;
    let c2 = env.admin("/admin/v1/credentials", json!({ "practitioner_id": p2["id"] })).await;
    let c2 = c2["id"].as_str().unwrap();
    let other = env.terminal_in(&w.facility, "EHR 2").await;
    let audit_before = env.admin_get("/admin/v1/audit/verify").await;

    // A bad terminal secret outranks every grant problem, the token's form included.
    for t in ["bm90LWEtZ3JhbnQ", "*not base64url*", token.as_str()] {
        assert_problem(&env.sign_one(t, &wrong_secret, &w.credential, &[7; 32]).await, 401, "terminal_unauthenticated");
        assert_problem(&env.sign_one(t, &unknown_terminal, &w.credential, &[7; 32]).await, 401, "terminal_unauthenticated");
    }
    // Without any bearer token: the terminal first, then grant_invalid.
    let no_bearer = |terminal: &(String, String)| {
        env.http
            .post(format!("{}/csc/v2/signatures/signHash", env.base))
            .header("shomei-terminal-authorization", basic(&terminal.0, &terminal.1))
            .json(&json!({ "credentialID": w.credential, "hashes": [std64(&[7; 32])], "signAlgo": "1.2.840.113549.1.1.11" }))
            .send()
    };
    let r = no_bearer(&wrong_secret).await.unwrap();
    assert_problem(&(r.status(), r.json().await.unwrap()), 401, "terminal_unauthenticated");
    let r = no_bearer(&w.terminal).await.unwrap();
    assert_problem(&(r.status(), r.json().await.unwrap()), 401, "grant_invalid");
    // A token that is not base64url names no grant.
    assert_problem(&env.sign_one("*not base64url*", &w.terminal, &w.credential, &[7; 32]).await, 401, "grant_invalid");

    // Then the credential: unknown, or another practitioner's.
    assert_problem(&env.sign_one(&token, &w.terminal, &uuid::Uuid::new_v4().to_string(), &[7; 32]).await, 404, "credential_unknown");
    assert_problem(&env.sign_one(&token, &w.terminal, c2, &[7; 32]).await, 404, "credential_unknown");
    let doc = env.csc("signatures/signDoc", &token, &w.terminal, json!({ "credentialID": c2, "documentDigests": [] })).await;
    assert_problem(&doc, 404, "credential_unknown");
    // Another terminal presenting this grant: the mismatch, before the credential.
    assert_problem(&env.sign_one(&token, &other, c2, &[7; 32]).await, 403, "grant_terminal_mismatch");

    // Nothing of that was signed or recorded; the right call still signs.
    let audit_after = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(audit_after["count"], audit_before["count"], "{audit_before} → {audit_after}");
    let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &[7; 32]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["count"].as_u64(), audit_before["count"].as_u64().map(|n| n + 1));
}

#[tokio::test]
async fn grant_revoked_by_operator_stops_signing() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    let grants = env.admin_get("/admin/v1/grants").await;
    env.admin(&format!("/admin/v1/grants/{}/revoke", grants[0]["id"].as_str().unwrap()), json!({})).await;
    let res = env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await;
    assert_problem(&res, 401, "grant_revoked");
}

#[tokio::test]
async fn the_key_is_held_for_a_signing_grant_and_dropped_when_the_operator_revokes_it() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.app().backend.held_keys(), 0, "nothing is held before the first signature");
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().backend.held_keys(), 1);
    let grants = env.admin_get("/admin/v1/grants").await;
    env.admin(&format!("/admin/v1/grants/{}/revoke", grants[0]["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(env.app().backend.held_keys(), 0);
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[3; 32]).await, 401, "grant_revoked");
}

#[tokio::test]
async fn ending_a_grant_from_the_phone_drops_its_held_key() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().backend.held_keys(), 1);
    let grants = env.admin_get("/admin/v1/grants").await;
    let r = env.http.delete(format!("{}/v1/phone/grants/{}", env.base, grants[0]["id"].as_str().unwrap())).bearer_auth(&phone.token).send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(env.app().backend.held_keys(), 0);
}

#[tokio::test]
async fn revoking_the_device_drops_the_held_keys_of_its_grants() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    env.admin(&format!("/admin/v1/devices/{}/revoke", phone.device_id), json!({})).await;
    assert_eq!(env.app().backend.held_keys(), 0);
}

#[tokio::test]
async fn an_expired_grant_keeps_no_key_in_memory() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().backend.held_keys(), 1);
    env.app().clock.advance_ms(18 * 3600 * 1000 + 1000);
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 401, "grant_expired");
    assert_eq!(env.app().backend.held_keys(), 0);
}

#[tokio::test]
async fn the_signature_that_uses_up_a_grant_drops_its_held_key() {
    let env = Env::with_policy(|p| p.signature_cap = Some(2)).await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().backend.held_keys(), 1);
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().backend.held_keys(), 0);
}

#[tokio::test]
async fn revoking_the_device_ends_its_grants() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    env.admin(&format!("/admin/v1/devices/{}/revoke", phone.device_id), json!({})).await;
    let res = env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await;
    assert_problem(&res, 401, "grant_revoked");
}

#[tokio::test]
async fn phone_ending_all_grants_stops_signing() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let r = env.http.get(format!("{}/v1/phone/grants", env.base)).bearer_auth(&phone.token).send().await.unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["grants"].as_array().unwrap().len(), 1);
    let r = env.http.delete(format!("{}/v1/phone/grants", env.base)).bearer_auth(&phone.token).send().await.unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ended"], 1);
    let res = env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await;
    assert_problem(&res, 401, "grant_revoked");
}

#[tokio::test]
async fn grant_expires_after_eighteen_hours() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    env.app().clock.advance_ms(18 * 3600 * 1000 + 1000);
    let res = env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await;
    assert_problem(&res, 401, "grant_expired");
}

#[tokio::test]
async fn signature_cap_exhausts_the_grant() {
    let env = Env::with_policy(|p| p.signature_cap = Some(2)).await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await.0, StatusCode::OK);
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await.0, StatusCode::OK);
    let res = env.sign_one(&token, &w.terminal, &w.credential, &[3; 32]).await;
    assert_problem(&res, 403, "grant_exhausted");
}

#[tokio::test]
async fn hash_of_wrong_length_is_refused() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let res = env
        .csc("signatures/signHash", &token, &w.terminal, json!({ "credentialID": w.credential, "hashes": [std64(&[1; 20])], "signAlgo": "1.2.840.113549.1.1.11" }))
        .await;
    assert_problem(&res, 400, "hash_invalid");
}

#[tokio::test]
async fn oversized_body_is_413_problem() {
    let env = Env::new().await;
    let big = "x".repeat(100 * 1024);
    let res = env.post_json("/v1/phone/enroll", None, &json!({ "padding": big })).await;
    assert_problem(&res, 413, "body_too_large");
}

// ---- audit / operator ----

#[tokio::test]
async fn signatures_are_in_the_audit_log_and_chain_verifies() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    env.sign_one(&token, &w.terminal, &w.credential, &[9; 32])
        .await;
    let r = env
        .http
        .get(format!("{}/admin/v1/audit/export", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let sig_line = text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).find(|v| v["action"] == "signature.create").expect("signature audited");
    assert!(sig_line["details"].as_str().unwrap().contains(&hex::encode([9u8; 32])));
    let report = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn audit_tampering_is_detected_at_the_edited_seq() {
    let env = Env::new().await;
    env.world().await;
    let dir = env._dir.path().join("shomei.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.display())).await.unwrap();
    sqlx::query("UPDATE audit SET details = '{\"name\":\"forged\"}' WHERE seq = 2").execute(&pool).await.unwrap();
    let report = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(report["ok"], false);
    assert_eq!(report["broken_at_seq"], 2);
}

#[tokio::test]
async fn admin_api_requires_the_operator_token() {
    let env = Env::new().await;
    let r = env
        .http
        .get(format!("{}/admin/v1/facilities", env.admin_base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "operator_unauthenticated");
}

#[tokio::test]
async fn healthz_and_openapi_are_served() {
    let env = Env::new().await;
    let v: Value = env.http.get(format!("{}/healthz", env.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let o: Value = env.http.get(format!("{}/openapi.json", env.base)).send().await.unwrap().json().await.unwrap();
    assert!(o["paths"]["/csc/v2/signatures/signHash"]["post"].is_object());
}
