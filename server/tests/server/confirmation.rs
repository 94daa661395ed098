//! The `confirmation = "code"` policy at the token endpoint (relay-phishing
//! defence, docs/protocol.md §8): the code is needed, bounded in attempts
//! and in time.

use reqwest::StatusCode;
use shomei_core::Decision;
use shomei_server::service::Confirmation;

use crate::common::*;

async fn token_with(
    env: &Env,
    terminal: &(String, String),
    device_code: &str,
    code: &str,
) -> (StatusCode, serde_json::Value) {
    let r = env
        .http
        .post(format!("{}/oauth/token", env.base))
        .header("authorization", basic(&terminal.0, &terminal.1))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("confirmation_code", code),
        ])
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn the_confirmation_code_expires_five_minutes_after_the_approval() {
    let env = Env::with_policy(|p| p.confirmation = Confirmation::Code).await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    assert_eq!(login.v["confirmation"], "code");
    let (s, v) = env
        .decide(&phone, &login, Decision::Approve, login.number())
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let code = v["confirmation_code"]
        .as_str()
        .expect("the decision response carries the code")
        .to_owned();
    env.app().clock.advance_ms(301_000);
    let (s, v) = token_with(&env, &w.terminal, login.device_code(), &code).await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("expired_token")),
        "{v}"
    );
}

#[tokio::test]
async fn a_deny_under_the_code_policy_carries_no_code() {
    let env = Env::with_policy(|p| p.confirmation = Confirmation::Code).await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    let (s, v) = env.decide(&phone, &login, Decision::Deny, 0).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v.get("confirmation_code").is_none(), "{v}");
    let (s, v) = token_with(&env, &w.terminal, login.device_code(), "123456").await;
    assert_eq!(
        (s, v["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("access_denied")),
        "{v}"
    );
}
