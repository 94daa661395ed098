//! Signing calls admitted from held rows (service/held_authorization.rs):
//! the same refusals, in the same order, as the store's path; and a grant,
//! terminal or credential ended where this server did not see it (another
//! replica whose notice has not arrived) signs nothing — the group commit
//! refuses the record and the call is answered as a new call would be.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_server::store::AuditEvent;

use crate::common::*;

/// enroll → login → approve → one signature: the grant's token is now held.
async fn signing_world(env: &Env) -> (World, String, String) {
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(env.app().held_authorizations(), 1, "the admitted token is held");
    let grant_id = env.admin_get("/admin/v1/grants").await[0]["id"].as_str().unwrap().to_owned();
    (w, token, grant_id)
}

async fn grant_row(env: &Env, id: &str) -> Value {
    let grants = env.admin_get("/admin/v1/grants").await;
    grants.as_array().unwrap().iter().find(|g| g["id"] == id).cloned().unwrap()
}

/// What the store's path refuses for a held token it still refuses, in its
/// order, and the held entry still admits the right call afterwards.
#[tokio::test]
async fn a_held_token_is_refused_as_the_store_refuses_it() {
    let env = Env::new().await;
    let (w, token, grant_id) = signing_world(&env).await;
    let wrong_secret = (w.terminal.0.clone(), b64u(&[9; 32]));
    let p2 = env.admin("/admin/v1/practitioners", json!({ "display_name": "Dr B", "role": "doctor", "facility_ids": [w.facility] })).await;
    let c2 = env.admin("/admin/v1/credentials", json!({ "practitioner_id": p2["id"] })).await;
    let other = env.terminal_in(&w.facility, "EHR 2").await;

    assert_problem(&env.sign_one(&token, &wrong_secret, &w.credential, &[2; 32]).await, 401, "terminal_unauthenticated");
    assert_problem(&env.sign_one(&token, &other, &w.credential, &[2; 32]).await, 403, "grant_terminal_mismatch");
    assert_problem(&env.sign_one(&token, &w.terminal, c2["id"].as_str().unwrap(), &[2; 32]).await, 404, "credential_unknown");
    assert_problem(&env.sign_one(&token, &w.terminal, &uuid::Uuid::new_v4().to_string(), &[2; 32]).await, 404, "credential_unknown");
    // A wrong secret, with the bad credential too: the terminal first.
    assert_problem(&env.sign_one(&token, &wrong_secret, c2["id"].as_str().unwrap(), &[2; 32]).await, 401, "terminal_unauthenticated");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 1, "no refused call was recorded");

    let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &[3; 32]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 2);
    assert_eq!(env.app().held_authorizations(), 1);
}

/// Another replica revoked the grant and this one has not heard: the held
/// rows admit the call, the commit refuses it, nothing is returned or recorded.
#[tokio::test]
async fn a_grant_revoked_unseen_by_this_server_signs_nothing() {
    let env = Env::new().await;
    let (w, token, grant_id) = signing_world(&env).await;
    let store = &env.app().store;
    let now = env.app().clock.now_ms();
    assert!(store.revoke_grant(&grant_id, "revoked elsewhere", now, &AuditEvent::new("operator", "grant.revoke", grant_id.clone(), json!({}))).await.unwrap());
    assert_eq!(env.app().held_authorizations(), 1, "this server was not told");

    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 401, "grant_revoked");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 1);
    assert_eq!(env.app().held_authorizations(), 0, "a refused record drops the held rows");
    // And from then on the store's path answers the same.
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 401, "grant_revoked");
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
}

/// A terminal revoked unseen: its grants went with it in the same
/// transaction, and the call is answered as the store answers it now.
#[tokio::test]
async fn a_terminal_revoked_unseen_by_this_server_signs_nothing() {
    let env = Env::new().await;
    let (w, token, grant_id) = signing_world(&env).await;
    let now = env.app().clock.now_ms();
    let audit = AuditEvent::new("operator", "terminal.revoke", w.terminal.0.clone(), json!({}));
    assert!(env.app().store.revoke_terminal(&w.terminal.0, now, &audit).await.unwrap());

    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 401, "terminal_unauthenticated");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 1);
    assert_eq!(env.app().held_authorizations(), 0);
}

/// A credential revoked unseen: the commit reads revoked credentials.
#[tokio::test]
async fn a_credential_revoked_unseen_by_this_server_signs_nothing() {
    let env = Env::new().await;
    let (w, token, grant_id) = signing_world(&env).await;
    let now = env.app().clock.now_ms();
    let audit = AuditEvent::new("operator", "credential.revoke", w.credential.clone(), json!({}));
    assert!(env.app().store.revoke_credential(&w.credential, "key compromise", now, &audit).await.unwrap());

    // signDoc from the held rows first (the commit refuses), then signHash
    // on the store's path: the same answer.
    let doc = crate::signdoc::sign_doc(&env, &token, &w, json!([crate::signdoc::xades_entry(&[4; 32], "rx", "1.2.840.113549.1.1.11")])).await;
    assert_problem(&doc, 403, "credential_revoked");
    assert_eq!(env.app().held_authorizations(), 0);
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 403, "credential_revoked");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 1);
}

/// Signatures recorded elsewhere used the grant's cap up: the held count
/// is behind, the commit is not, and the answer is `grant_exhausted`.
#[tokio::test]
async fn a_cap_used_up_unseen_by_this_server_signs_nothing() {
    let env = Env::with_policy(|p| p.signature_cap = Some(3)).await;
    let (w, token, grant_id) = signing_world(&env).await;
    // Another replica's two signatures on the same grant.
    let other = shomei_server::store::SignatureRecord {
        grant_id: grant_id.clone(),
        credential_id: w.credential.clone(),
        terminal_id: w.terminal.0.clone(),
        hashes: vec![vec![5; 32], vec![6; 32]],
        sign_algo: "1.2.840.113549.1.1.11".into(),
        now_ms: env.app().clock.now_ms(),
        signature_formats: Vec::new(),
        label: None,
    };
    let outcomes = env.app().store.record_signatures(vec![other]).await.unwrap();
    assert_eq!(outcomes, vec![shomei_server::store::RecordOutcome::Recorded(3)]);

    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 403, "grant_exhausted");
    assert_eq!(grant_row(&env, &grant_id).await["signatures_made"], 3);
}

/// Ending a grant, revoking a terminal, device or credential through this
/// server drops the held rows at once (not only at the next refused commit).
#[tokio::test]
async fn revocations_through_this_server_drop_held_rows() {
    let env = Env::new().await;
    let (w, token, grant_id) = signing_world(&env).await;
    env.admin(&format!("/admin/v1/grants/{grant_id}/revoke"), json!({})).await;
    assert_eq!(env.app().held_authorizations(), 0);
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await, 401, "grant_revoked");

    // A new day's grant: held again, then the credential revoked.
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    assert_eq!(env.sign_one(&token, &w.terminal, &w.credential, &[3; 32]).await.0, StatusCode::OK);
    assert_eq!(env.app().held_authorizations(), 1);
    env.admin(&format!("/admin/v1/credentials/{}/revoke", w.credential), json!({})).await;
    assert_eq!(env.app().held_authorizations(), 0);
}

/// The held idle clock moves with each signature this server records, so
/// a grant used within its idle timeout keeps signing from held rows, and
/// one left idle past it is refused (`grant_expired`).
#[tokio::test]
async fn the_held_idle_clock_follows_each_signature() {
    let env = Env::with_policy(|p| p.idle_timeout_s = Some(60)).await;
    let (w, token, _) = signing_world(&env).await;
    for i in 0..3u8 {
        env.app().clock.advance_ms(45_000);
        let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &[10 + i; 32]).await;
        assert_eq!(s, StatusCode::OK, "signature {i} 45 s after the last: {v}");
    }
    env.app().clock.advance_ms(61_000);
    assert_problem(&env.sign_one(&token, &w.terminal, &w.credential, &[20; 32]).await, 401, "grant_expired");
}
