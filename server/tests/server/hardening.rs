//! The outside review's findings (issue 10), one rule per test, each
//! against the real server on loopback: what is mounted where, which
//! responses may be cached, how every refusal looks on the wire, rate
//! limits, the attempt counter, policy bounds, unsafe files and
//! directories, and the clean-up sweep.

use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use shomei_core::Decision;
use shomei_server::run::ServeError;

use crate::common::*;

async fn problem_of(r: reqwest::Response) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let s = r.status();
    let h = r.headers().clone();
    let ct = h
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(
        ct, "application/problem+json",
        "status {s}: every error is a problem document"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"].as_u64(), Some(s.as_u16() as u64), "{v}");
    (s, h, v)
}

fn no_store(h: &reqwest::header::HeaderMap) -> bool {
    h.get(CACHE_CONTROL).and_then(|v| v.to_str().ok()) == Some("no-store")
}

async fn audit_actions(env: &Env) -> Vec<Value> {
    env.audit_export().await
}

#[cfg(unix)]
fn chmod(p: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

// ---- /demo ----

#[tokio::test]
async fn demo_page_is_not_mounted_without_demo() {
    let env = Env::new().await;
    let r = env
        .http
        .get(format!("{}/demo", env.base))
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn demo_page_never_embeds_a_terminal_credential() {
    let env = Env::with_config(|c| c.demo = true).await;
    let seed = env
        .running
        .demo
        .clone()
        .expect("demo seeded on an empty store");
    let r = env
        .http
        .get(format!("{}/demo", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        !html.contains(&seed.client_id),
        "the page acts through a demo session, not as a named terminal"
    );
    assert!(
        !html.contains(&seed.client_secret),
        "the page must not serve the terminal's client secret"
    );
}

// ---- the operator API ----

#[tokio::test]
async fn admin_api_is_not_served_on_the_public_listener() {
    let env = Env::new().await;
    assert!(env.running.admin_addr.ip().is_loopback());
    assert_ne!(env.running.admin_addr, env.running.addr);
    let r = env
        .http
        .get(format!("{}/admin/v1/facilities", env.base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // … and the admin listener serves it.
    let r = env
        .http
        .get(format!("{}/admin/v1/facilities", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn default_admin_listener_is_loopback_and_not_the_public_port() {
    let cfg = shomei_server::config::ServeConfig::resolve(shomei_server::config::Overrides {
        listen: Some("0.0.0.0:8700".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(cfg.admin_listen.ip().is_loopback(), "{}", cfg.admin_listen);
    assert_ne!(cfg.admin_listen.port(), 8700);
    let same = shomei_server::config::ServeConfig::resolve(shomei_server::config::Overrides {
        listen: Some("0.0.0.0:8700".into()),
        admin_listen: Some("127.0.0.1:8700".into()),
        ..Default::default()
    });
    assert!(same.is_err(), "admin and public API cannot share a port");
}

#[tokio::test]
async fn a_short_operator_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("operator.token"), "admin123\n").unwrap();
    #[cfg(unix)]
    chmod(&dir.path().join("operator.token"), 0o600);
    let e = shomei_server::run::start(config_in(dir.path()))
        .await
        .err()
        .expect("weak token refused");
    assert!(matches!(e, ServeError::WeakOperatorToken { .. }), "{e}");
    assert!(e.to_string().contains("32 random bytes"), "{e}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_operator_token_file_readable_by_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("operator.token");
    std::fs::write(
        &path,
        format!("{}\n", b64u(&[7u8; 16]) + &b64u(&[9u8; 16]) + "AbCdEfGh"),
    )
    .unwrap();
    chmod(&path, 0o644);
    let e = shomei_server::run::start(config_in(dir.path()))
        .await
        .err()
        .expect("readable token refused");
    assert!(
        matches!(e, ServeError::InsecureTokenFile { mode: 0o644, .. }),
        "{e}"
    );
    assert_eq!(
        mode_of(&path),
        0o644,
        "the file is not changed for the operator"
    );
}

#[tokio::test]
async fn failed_operator_authentication_is_audited_then_rate_limited() {
    let env = Env::new().await;
    let url = format!("{}/admin/v1/facilities", env.admin_base);
    let budget = shomei_server::service::limits::OPERATOR_FAILURES_PER_ADDRESS.burst;
    for i in 0..budget {
        let rb = env.http.get(&url);
        let rb = if i % 2 == 0 {
            rb.bearer_auth("not-the-token")
        } else {
            rb
        };
        let (s, h, v) = problem_of(rb.send().await.unwrap()).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("operator_unauthenticated"))
        );
        assert!(h.contains_key(WWW_AUTHENTICATE));
    }
    let (s, h, v) = problem_of(
        env.http
            .get(&url)
            .bearer_auth("still-wrong")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    let retry: u64 = h[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // The right token still works, and every failure before the limit is in the audit log.
    let log = audit_actions(&env).await;
    let failed: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "operator.auth_failed")
        .collect();
    assert_eq!(failed.len(), budget as usize);
    assert_eq!(failed[0]["subject"], "127.0.0.1");
    assert!(
        failed[0]["details"]
            .as_str()
            .unwrap()
            .contains("wrong token")
    );
    assert!(failed[1]["details"].as_str().unwrap().contains("no token"));
}

// ---- data directory ----

#[cfg(unix)]
#[tokio::test]
async fn an_existing_data_directory_others_can_write_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o777);
    let e = shomei_server::run::start(config_in(dir.path()))
        .await
        .err()
        .expect("unsafe directory refused");
    assert!(matches!(e, ServeError::UnsafeDataDir { .. }), "{e}");
    assert!(e.to_string().contains("chmod 700"), "{e}");
    assert_eq!(
        mode_of(dir.path()),
        0o777,
        "the directory must not be chmod'ed"
    );
    assert!(
        !dir.path().join("kek").exists(),
        "nothing is written into a refused directory"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_new_data_directory_is_created_private() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("fresh");
    let env_running = shomei_server::run::start(config_in(&dir)).await.unwrap();
    assert_eq!(mode_of(&dir), 0o700);
    env_running.shutdown().await.unwrap();
}

// ---- responses carrying secrets are not cached ----

#[tokio::test]
async fn every_response_carrying_a_secret_says_no_store() {
    let env = Env::new().await;
    let w = env.world().await;
    // client secret
    let r = env
        .http
        .post(format!("{}/admin/v1/terminals", env.admin_base))
        .bearer_auth(&env.token)
        .json(&json!({ "facility_id": w.facility, "name": "EHR 2" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(no_store(r.headers()), "terminal create (client secret)");
    // activation password
    let r = env
        .http
        .post(format!("{}/admin/v1/enrollments", env.admin_base))
        .bearer_auth(&env.token)
        .json(&json!({ "practitioner_id": w.practitioner }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        no_store(r.headers()),
        "enrollment create (activation password)"
    );
    // device token
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let key = shomei_core::SoftwareKey::generate();
    let r = env
        .http
        .post(format!("{}/v1/phone/enroll", env.base))
        .json(&env.enroll_body(&p, &pw, &key, "Phone"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(no_store(r.headers()), "enroll (device token)");
    let v: Value = r.json().await.unwrap();
    let phone = Phone {
        key,
        device_id: v["device_id"].as_str().unwrap().parse().unwrap(),
        token: v["device_token"].as_str().unwrap().to_owned(),
    };
    // access token: RFC 6749 §5.1 also wants Pragma: no-cache
    let login = env.start_login(&w.terminal).await;
    env.decide(&phone, &login, Decision::Approve, login.number())
        .await;
    let r = env
        .http
        .post(format!("{}/oauth/token", env.base))
        .header("authorization", basic(&w.terminal.0, &w.terminal.1))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", login.device_code()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(no_store(r.headers()), "token (access token)");
    assert_eq!(
        r.headers().get(PRAGMA).and_then(|v| v.to_str().ok()),
        Some("no-cache")
    );
}

// ---- HTTP conformance ----

#[tokio::test]
async fn every_401_names_its_challenge() {
    let env = Env::new().await;
    let w = env.world().await;
    // phone without a token: the documented `unauthorized` (protocol.md §4.5)
    let r = env
        .http
        .get(format!("{}/v1/phone/grants", env.base))
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    assert!(h[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Bearer"));
    // phone with an unknown token
    let r = env
        .http
        .get(format!("{}/v1/phone/grants", env.base))
        .bearer_auth(b64u(&[1; 32]))
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("device_unknown"))
    );
    assert!(h.contains_key(WWW_AUTHENTICATE));
    // terminal without credentials
    let login = env.start_login(&w.terminal).await;
    let r = env
        .http
        .get(format!(
            "{}/v1/terminal/logins/{}/qr.png",
            env.base,
            login.id()
        ))
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("terminal_unauthenticated"))
    );
    assert!(h[WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic"));
    // grant missing
    let r = env
        .http
        .post(format!("{}/csc/v2/credentials/list", env.base))
        .header(
            "shomei-terminal-authorization",
            basic(&w.terminal.0, &w.terminal.1),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("grant_invalid"))
    );
    assert!(h.contains_key(WWW_AUTHENTICATE));
    // wrong activation password
    let (p, _) = env.enrollment(&w.practitioner).await;
    let r = env
        .http
        .post(format!("{}/v1/phone/enroll", env.base))
        .json(&env.enroll_body(&p, "WRONG-PASS", &shomei_core::SoftwareKey::generate(), "P"))
        .send()
        .await
        .unwrap();
    let (s, h, _) = problem_of(r).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(h.contains_key(WWW_AUTHENTICATE));
}

#[tokio::test]
async fn a_bad_query_string_is_a_problem_document() {
    let env = Env::new().await;
    let w = env.world().await;
    let login = env.start_login(&w.terminal).await;
    let r = env
        .http
        .get(format!(
            "{}/v1/terminal/logins/{}/wait?timeout=soon",
            env.base,
            login.id()
        ))
        .header("authorization", basic(&w.terminal.0, &w.terminal.1))
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    let r = env
        .http
        .get(format!("{}/admin/v1/grants?active=maybe", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
}

#[tokio::test]
async fn a_wrong_method_is_405_problem_with_allow() {
    let env = Env::new().await;
    let r = env
        .http
        .get(format!("{}/v1/phone/enroll", env.base))
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    assert!(h["allow"].to_str().unwrap().contains("POST"));
    let r = env
        .http
        .put(format!("{}/admin/v1/facilities", env.admin_base))
        .bearer_auth(&env.token)
        .send()
        .await
        .unwrap();
    let (s, _, _) = problem_of(r).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn an_unknown_path_is_404_problem_on_both_listeners() {
    let env = Env::new().await;
    for base in [&env.base, &env.admin_base] {
        let (s, _, v) =
            problem_of(env.http.get(format!("{base}/nope")).send().await.unwrap()).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
}

#[tokio::test]
async fn a_missing_or_wrong_content_type_is_415() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let body = env
        .enroll_body(&p, &pw, &shomei_core::SoftwareKey::generate(), "P")
        .to_string();
    // JSON endpoint: no Content-Type, then text/plain
    let r = env
        .http
        .post(format!("{}/v1/phone/enroll", env.base))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    let r = env
        .http
        .post(format!("{}/v1/phone/enroll", env.base))
        .header(CONTENT_TYPE, "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(problem_of(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // form endpoint given JSON
    let r = env
        .http
        .post(format!("{}/oauth/device_authorization", env.base))
        .header("authorization", basic(&w.terminal.0, &w.terminal.1))
        .json(&json!({ "scope": "sign" }))
        .send()
        .await
        .unwrap();
    let (s, _, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
}

#[tokio::test]
async fn sign_hash_413_names_its_own_limit() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let big = "A".repeat(shomei_server::http::SIGN_HASH_BODY_LIMIT + 10);
    let (s, v) = env
        .csc(
            "signatures/signHash",
            &token,
            &w.terminal,
            json!({ "padding": big }),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let detail = v["detail"].as_str().unwrap();
    assert!(
        detail.contains(&shomei_server::http::SIGN_HASH_BODY_LIMIT.to_string()),
        "{detail}"
    );
    // Between the two limits signHash is not refused for size.
    let mid = "A".repeat(shomei_server::http::BODY_LIMIT * 2);
    let (s, v) = env
        .csc(
            "signatures/signHash",
            &token,
            &w.terminal,
            json!({ "credentialID": w.credential, "hashes": [], "padding": mid }),
        )
        .await;
    assert_ne!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
}

#[tokio::test]
async fn the_verification_uri_resolves_to_a_page() {
    let env = Env::new().await;
    let w = env.world().await;
    let login = env.start_login(&w.terminal).await;
    let uri = login.v["verification_uri"].as_str().unwrap();
    let r = env.http.get(uri).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{uri}");
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert!(r.text().await.unwrap().contains("Shomei"));
}

// ---- enrollment attempts ----

#[tokio::test]
async fn attempts_in_flight_count_before_the_password_is_checked() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    // Five guesses are being checked right now (reserved, not yet answered):
    let store = &env.app().store;
    let now = env.app().clock.now_ms();
    for _ in 0..5 {
        assert!(
            store
                .reserve_enrollment_attempt(&p.enrollment_id.to_b64u(), 5, now)
                .await
                .unwrap()
                .is_some()
        );
    }
    // … so even the right password gets no sixth check.
    let body = env.enroll_body(&p, &pw, &shomei_core::SoftwareKey::generate(), "P");
    let res = env.post_json("/v1/phone/enroll", None, &body).await;
    assert_problem(&res, 423, "enrollment_locked");
}

#[tokio::test]
async fn the_right_password_on_the_last_attempt_still_enrolls() {
    let env = Env::new().await;
    let w = env.world().await;
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let key = shomei_core::SoftwareKey::generate();
    for left in (1..=4).rev() {
        let res = env
            .post_json(
                "/v1/phone/enroll",
                None,
                &env.enroll_body(&p, "WRONG-WRONG", &key, "P"),
            )
            .await;
        assert_problem(&res, 401, "activation_password_wrong");
        assert!(
            res.1["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("{left} attempts left")),
            "{}",
            res.1
        );
    }
    let res = env
        .post_json(
            "/v1/phone/enroll",
            None,
            &env.enroll_body(&p, &pw, &key, "P"),
        )
        .await;
    assert_eq!(res.0, StatusCode::CREATED, "{}", res.1);
}

// ---- policy bounds ----

#[tokio::test]
async fn out_of_range_policy_values_are_refused_at_start() {
    for (key, value) in [
        ("idle_timeout_s", i64::MAX.to_string()),
        ("signature_cap", "0".to_owned()),
        ("signature_cap", i64::MAX.to_string()),
        ("enrollment_max_attempts", "1000".to_owned()),
        ("grant_ttl_s", i64::MAX.to_string()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("shomei.toml"),
            format!("[policy]\n{key} = {value}\n"),
        )
        .unwrap();
        let e = shomei_server::config::ServeConfig::resolve(shomei_server::config::Overrides {
            data_dir: Some(dir.path().to_owned()),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        })
        .err()
        .unwrap_or_else(|| panic!("{key} = {value} accepted"));
        assert!(e.to_string().contains(key), "{e}");
    }
    // A hand-built configuration is checked by start too.
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_in(dir.path());
    cfg.policy.idle_timeout_s = Some(i64::MAX);
    let e = shomei_server::run::start(cfg).await.err().expect("refused");
    assert!(e.to_string().contains("idle_timeout_s"), "{e}");
}

// ---- rate limits ----

#[tokio::test]
async fn login_creation_is_rate_limited_per_terminal() {
    let env = Env::new().await;
    let w = env.world().await;
    let other = env.terminal_in(&w.facility, "EHR 2").await;
    let budget = shomei_server::service::limits::LOGINS_PER_TERMINAL.burst;
    for _ in 0..budget {
        env.start_login(&w.terminal).await;
    }
    let r = env
        .http
        .post(format!("{}/oauth/device_authorization", env.base))
        .header("authorization", basic(&w.terminal.0, &w.terminal.1))
        .form(&[("scope", "sign")])
        .send()
        .await
        .unwrap();
    let (s, h, v) = problem_of(r).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(h[RETRY_AFTER].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    // Another terminal has its own budget.
    env.start_login(&other).await;
}

#[tokio::test]
async fn enrollment_attempts_are_rate_limited_per_client_address() {
    let env = Env::new().await;
    let w = env.world().await;
    let budget = shomei_server::service::limits::ENROLLMENTS_PER_ADDRESS.burst;
    let body = json!({ "enrollment_id": b64u(&[0; 16]), "secret": b64u(&[0; 16]), "activation_password": "x",
        "public_key": b64u(&[4; 65]), "proof": b64u(&[0; 8]), "device_name": "P", "platform": "desktop" });
    for _ in 0..budget {
        let (s, v) = env.post_json("/v1/phone/enroll", None, &body).await;
        assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    }
    let (p, pw) = env.enrollment(&w.practitioner).await;
    let res = env
        .post_json(
            "/v1/phone/enroll",
            None,
            &env.enroll_body(&p, &pw, &shomei_core::SoftwareKey::generate(), "P"),
        )
        .await;
    assert_problem(&res, 429, "rate_limited");
}

#[tokio::test]
async fn phone_calls_are_rate_limited_per_device() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let budget = shomei_server::service::limits::PHONE_CALLS_PER_DEVICE.burst;
    let call = || {
        env.http
            .get(format!("{}/v1/phone/grants", env.base))
            .bearer_auth(&phone.token)
            .send()
    };
    for _ in 0..budget {
        assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    }
    let (s, h, v) = problem_of(call().await.unwrap()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
    );
    assert!(h.contains_key(RETRY_AFTER));
}

// ---- clean-up ----

#[tokio::test]
async fn the_sweep_removes_expired_undecided_logins_and_unused_codes_and_audits_it() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let decided = env.start_login(&w.terminal).await;
    env.decide(&phone, &decided, Decision::Deny, 0).await;
    let abandoned = env.start_login(&w.terminal).await;
    let (unused, _) = env.enrollment(&w.practitioner).await;
    // Nothing is removed while fresh.
    let r = env.app().sweep().await.unwrap();
    assert!(r.logins.is_empty() && r.enrollments.is_empty(), "{r:?}");
    env.app().clock.advance_ms(3 * 3600 * 1000);
    let r = env.app().sweep().await.unwrap();
    assert_eq!(r.logins, vec![abandoned.id().to_owned()]);
    assert_eq!(r.enrollments, vec![unused.enrollment_id.to_b64u()]);
    let store = &env.app().store;
    assert!(store.get_login(abandoned.id()).await.unwrap().is_none());
    assert!(
        store.get_login(decided.id()).await.unwrap().is_some(),
        "a decided login is the record and stays"
    );
    let log = audit_actions(&env).await;
    let sweep = log
        .iter()
        .find(|e| e["action"] == "sweep.expired")
        .expect("the sweep is audited");
    assert!(sweep["details"].as_str().unwrap().contains(abandoned.id()));
    let report = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
}
