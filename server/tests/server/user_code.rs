//! The typed-code fallback over HTTP (docs/protocol.md §4.6): a phone types
//! the EHR's user code, gets the login's payload and context, and approves
//! with the same signed message as after a scan. One test per refusal, each
//! checking that the login is left as it was.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_core::{Decision, Payload};
use shomei_server::store::{Login as StoredLogin, LoginStatus};

use super::common::*;

const BY_CODE: &str = "/v1/phone/logins/by-code";

async fn by_code(env: &Env, phone: &Phone, typed: &str) -> (StatusCode, Value) {
    env.post_json(
        BY_CODE,
        Some(&format!("Bearer {}", phone.token)),
        &json!({ "user_code": typed }),
    )
    .await
}

fn user_code(login: &Login) -> String {
    login.v["user_code"].as_str().unwrap().to_owned()
}

async fn stored(env: &Env, login: &Login) -> StoredLogin {
    env.app()
        .store
        .get_login(login.id())
        .await
        .unwrap()
        .unwrap()
}

/// The login is still pending and no device is recorded as having typed its code.
async fn assert_untouched(env: &Env, login: &Login) {
    let l = stored(env, login).await;
    assert_eq!(l.status, LoginStatus::Pending);
    assert_eq!(l.code_device_id, None);
    assert_eq!(l.grant_id, None);
}

async fn audit_actions(env: &Env) -> Vec<(String, String, Value)> {
    let entries = env.app().store.audit_entries(0, 10_000).await.unwrap();
    entries
        .into_iter()
        .map(|e| {
            (
                e.action.clone(),
                e.subject.clone(),
                serde_json::from_str(&e.details).unwrap(),
            )
        })
        .collect()
}

/// A code of 8 alphabet letters no login holds (differs from `code` in every letter).
fn other_code(code: &str) -> String {
    code.chars()
        .map(|c| {
            if c == '-' {
                '-'
            } else if c == 'Z' {
                'B'
            } else {
                'Z'
            }
        })
        .collect()
}

#[tokio::test]
async fn typed_code_resolves_to_the_qr_login_and_approves_it_with_number_matching() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let code = user_code(&login);
    // Typed in lower case with a space instead of the hyphen.
    let typed = code.to_lowercase().replace('-', " ");
    let (s, v) = by_code(&env, &phone, &typed).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Exactly what the QR shows, and the context of that login.
    assert_eq!(v["payload"], login.v["verification_uri_complete"]);
    assert_eq!(v["context"]["login_id"], login.id());
    assert_eq!(v["context"]["facility"]["id"], w.facility.as_str());
    let choices: Vec<u64> = v["context"]["number_choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert!(choices.contains(&(login.number() as u64)), "{choices:?}");
    let Payload::Login(payload) =
        Payload::parse_ignoring_expiry(v["payload"].as_str().unwrap()).unwrap()
    else {
        panic!("login payload")
    };
    let resolved = Login {
        v: login.v.clone(),
        payload,
    };
    assert_eq!(
        stored(&env, &login).await.code_device_id,
        Some(phone.device_id.to_string())
    );

    // The decision is the unchanged §4.3 request over the §3.1 message.
    let body = env.decision_body(
        &phone,
        &resolved,
        challenge_of(&v["context"]),
        Decision::Approve,
        login.number(),
    );
    let res = env
        .post_json(
            &format!("/v1/phone/logins/{}/decision", login.id()),
            Some(&format!("Bearer {}", phone.token)),
            &body,
        )
        .await;
    assert_eq!(res.0, StatusCode::OK, "{}", res.1);
    assert_eq!(res.1["outcome"], "approved");
    let (s, t) = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, sig) = env
        .sign_one(
            t["access_token"].as_str().unwrap(),
            &w.terminal,
            &w.credential,
            &[7; 32],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{sig}");

    // Marked as typed: audit and evidence.
    let audit = audit_actions(&env).await;
    let resolve = audit
        .iter()
        .find(|(a, _, _)| a == "login.code_resolve")
        .expect("login.code_resolve audited");
    assert_eq!(resolve.1, login.id());
    let approve = audit.iter().find(|(a, _, _)| a == "login.approve").unwrap();
    assert_eq!(approve.2["via"], "code");
    let bundle = env
        .admin_get(&format!("/admin/v1/evidence/{}", login.id()))
        .await;
    assert_eq!(bundle["decision"]["via"], "code");
    assert!(bundle["readme"].as_str().unwrap().contains("typed"));
}

#[tokio::test]
async fn a_scanned_login_is_marked_via_qr() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (s, v) = env
        .decide(&phone, &login, Decision::Approve, login.number())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bundle = env
        .admin_get(&format!("/admin/v1/evidence/{}", login.id()))
        .await;
    assert_eq!(bundle["decision"]["via"], "qr");
    let audit = audit_actions(&env).await;
    assert_eq!(
        audit
            .iter()
            .find(|(a, _, _)| a == "login.approve")
            .unwrap()
            .2["via"],
        "qr"
    );
}

#[tokio::test]
async fn the_store_and_the_audit_never_hold_the_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let code = user_code(&login);
    assert_eq!(by_code(&env, &phone, &code).await.0, StatusCode::OK);
    assert_eq!(
        by_code(&env, &phone, &other_code(&code)).await.0,
        StatusCode::NOT_FOUND
    );
    let l = stored(&env, &login).await;
    assert_eq!(l.user_code_hash.as_ref().map(Vec::len), Some(32));
    let letters = code.replace('-', "");
    let export = serde_json::to_string(&audit_actions(&env).await).unwrap();
    assert!(
        !export.contains(&letters) && !export.contains(&code),
        "the audit holds the code"
    );
    // Neither spelling anywhere in the database files (main file and WAL).
    for entry in std::fs::read_dir(env._dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            for needle in [letters.as_bytes(), code.as_bytes()] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle),
                    "{} holds the code",
                    path.display()
                );
            }
        }
    }
}

#[tokio::test]
async fn malformed_codes_are_refused_before_any_lookup_and_spend_no_budget() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let before = audit_actions(&env).await.len();
    // More malformed inputs than the device's failure budget (5).
    for typed in [
        "",
        "BCDF-GHJ",
        "BCDF-GHJKL",
        "BCDF-GHJ0",
        "OCDF-GHJK",
        "BCDF-GH1K",
        "BCDY-GHJK",
        "BCDF_GHJK",
        "ÄCDF-GHJK",
        &"B".repeat(33),
    ] {
        let res = by_code(&env, &phone, typed).await;
        assert_problem(&res, 400, "user_code_invalid");
    }
    assert_eq!(
        audit_actions(&env).await.len(),
        before,
        "malformed codes are not lookups"
    );
    assert_untouched(&env, &login).await;
    // Not a JSON string: bad_request.
    let res = env
        .post_json(
            BY_CODE,
            Some(&format!("Bearer {}", phone.token)),
            &json!({ "user_code": 12345678 }),
        )
        .await;
    assert_problem(&res, 400, "bad_request");
    // The budget is whole: the right code still resolves.
    assert_eq!(
        by_code(&env, &phone, &user_code(&login)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_code_is_login_unknown_and_audited_without_the_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let wrong = other_code(&user_code(&login));
    let res = by_code(&env, &phone, &wrong).await;
    assert_problem(&res, 404, "login_unknown");
    let audit = audit_actions(&env).await;
    let refused = audit
        .iter()
        .find(|(a, _, _)| a == "login.code_refused")
        .expect("refusal audited");
    assert_eq!(refused.1, phone.device_id.to_string());
    assert_eq!(refused.2["reason"], "login_unknown");
    assert_untouched(&env, &login).await;
}

#[tokio::test]
async fn an_expired_login_is_refused_by_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    env.app().clock.advance_ms(121_000);
    let res = by_code(&env, &phone, &user_code(&login)).await;
    assert_problem(&res, 410, "login_expired");
    assert_untouched(&env, &login).await;
    let audit = audit_actions(&env).await;
    let refused = audit
        .iter()
        .find(|(a, _, _)| a == "login.code_refused")
        .unwrap();
    assert_eq!(
        (refused.1.as_str(), &refused.2["reason"]),
        (login.id(), &json!("login_expired"))
    );
}

#[tokio::test]
async fn a_decided_login_is_refused_by_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (s, v) = env.decide(&phone, &login, Decision::Deny, 0).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let res = by_code(&env, &phone, &user_code(&login)).await;
    assert_problem(&res, 409, "login_already_decided");
    let l = stored(&env, &login).await;
    assert_eq!((l.status, l.code_device_id), (LoginStatus::Denied, None));
}

#[tokio::test]
async fn another_facilitys_practitioner_gets_practitioner_not_allowed_and_the_login_stays_open() {
    let env = Env::new().await;
    let w = env.world().await;
    let f2 = env
        .admin("/admin/v1/facilities", json!({ "name": "Clinic B" }))
        .await;
    let p2 = env
        .admin(
            "/admin/v1/practitioners",
            json!({ "display_name": "Dr B", "role": "doctor", "facility_ids": [f2["id"]] }),
        )
        .await;
    let stranger = env.enroll(p2["id"].as_str().unwrap()).await;
    let login = env.start_login(&w.terminal).await;
    let res = by_code(&env, &stranger, &user_code(&login)).await;
    assert_problem(&res, 403, "practitioner_not_allowed");
    assert_untouched(&env, &login).await;
    // The practitioner of this facility still resolves and approves it.
    let phone = env.enroll(&w.practitioner).await;
    assert_eq!(
        by_code(&env, &phone, &user_code(&login)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_lookups_beyond_the_device_budget_are_rate_limited_even_for_the_right_code() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let wrong = other_code(&user_code(&login));
    let budget = shomei_server::service::limits::CODE_FAILURES_PER_DEVICE.burst;
    for _ in 0..budget {
        assert_problem(&by_code(&env, &phone, &wrong).await, 404, "login_unknown");
    }
    let r = env
        .http
        .post(format!("{}{BY_CODE}", env.base))
        .bearer_auth(&phone.token)
        .json(&json!({ "user_code": user_code(&login) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "rate_limited");
    assert_untouched(&env, &login).await;
    // Only the guesses were audited, not the refused-by-budget call.
    let refused = audit_actions(&env)
        .await
        .iter()
        .filter(|(a, _, _)| a == "login.code_refused")
        .count();
    assert_eq!(refused, budget as usize);
    // The QR path is not affected by the code budget.
    let (s, v) = env
        .decide(&phone, &login, Decision::Approve, login.number())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn a_revoked_device_or_no_token_is_refused_before_the_code_is_read() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let res = env
        .post_json(BY_CODE, None, &json!({ "user_code": user_code(&login) }))
        .await;
    assert_problem(&res, 401, "unauthorized");
    let res = env
        .post_json(
            BY_CODE,
            Some("Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            &json!({ "user_code": user_code(&login) }),
        )
        .await;
    assert_problem(&res, 401, "device_unknown");
    env.admin(
        &format!("/admin/v1/devices/{}/revoke", phone.device_id),
        json!({}),
    )
    .await;
    let res = by_code(&env, &phone, &user_code(&login)).await;
    assert_problem(&res, 403, "device_revoked");
    assert_untouched(&env, &login).await;
    assert!(
        !audit_actions(&env)
            .await
            .iter()
            .any(|(a, _, _)| a.starts_with("login.code_"))
    );
}

#[tokio::test]
async fn the_by_code_answer_is_not_cached() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let r = env
        .http
        .post(format!("{}{BY_CODE}", env.base))
        .bearer_auth(&phone.token)
        .json(&json!({ "user_code": user_code(&login) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
}
