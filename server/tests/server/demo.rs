//! The `--demo` EHR page's server-side step over real HTTP: the browser
//! holds only a demo-session cookie; the server runs the login as the
//! seeded demo terminal (audited as that terminal), streams its status,
//! collects the grant, signs a sample prescription as XAdES and verifies
//! it. One test per rule, refusals as hard as the happy path.

use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_core::{Decision, LoginPayload, Payload, SoftwareKey};

use crate::common::{Env, Phone, config_in};

const START: &str = "/demo/api/session";

/// A demo server on an empty store (so it seeds).
async fn demo_env() -> Env {
    Env::with_config(|c| c.demo = true).await
}

/// Starts a demo session: (status, body, the cookie pair `shomei_demo=…`, the Set-Cookie line).
async fn start(
    env: &Env,
    cookie: Option<&str>,
) -> (StatusCode, Value, Option<String>, Option<String>) {
    let mut rb = env
        .http
        .post(format!("{}{START}", env.base))
        .json(&json!({}));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = rb.send().await.unwrap();
    let status = r.status();
    let set = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let pair = set
        .as_deref()
        .map(|s| s.split(';').next().unwrap().to_owned());
    (status, r.json().await.unwrap_or(Value::Null), pair, set)
}

async fn post(env: &Env, path: &str, cookie: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut rb = env.http.post(format!("{}{path}", env.base)).json(&body);
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(env: &Env, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut rb = env.http.get(format!("{}{path}", env.base));
    if let Some(c) = cookie {
        rb = rb.header("cookie", c);
    }
    rb.send().await.unwrap()
}

/// The login QR the page shows, decoded from its pixels.
async fn scan_qr(env: &Env, cookie: &str) -> LoginPayload {
    let r = get(env, "/demo/api/session/qr.png", Some(cookie)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&r.bytes().await.unwrap())
        .unwrap()
        .to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    let (_, text) = grids[0].decode().unwrap();
    let Payload::Login(p) = Payload::parse_ignoring_expiry(&text).unwrap() else {
        panic!("not a login QR: {text}")
    };
    p
}

/// The seeded practitioner's phone, enrolled with the seed's enrollment code.
async fn demo_phone(env: &Env) -> Phone {
    let seed = env.running.demo.clone().expect("seeded");
    let Payload::Enrollment(p) =
        Payload::parse_ignoring_expiry(&seed.enrollment.payload_url).unwrap()
    else {
        panic!()
    };
    let key = SoftwareKey::generate();
    let body = env.enroll_body(&p, &seed.enrollment.activation_password, &key, "demo phone");
    let (s, v) = env.post_json("/v1/phone/enroll", None, &body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    Phone {
        key,
        device_id: v["device_id"].as_str().unwrap().parse().unwrap(),
        token: v["device_token"].as_str().unwrap().to_owned(),
    }
}

/// The phone answers the demo login scanned from the page.
async fn answer(
    env: &Env,
    phone: &Phone,
    payload: LoginPayload,
    decision: Decision,
    number: u8,
) -> (StatusCode, Value) {
    let v = json!({ "login_id": payload.login_id.to_b64u() });
    let login = crate::common::Login { v, payload };
    env.decide(phone, &login, decision, number).await
}

/// start → scan → approve → collect: the cookie of a session holding a grant.
async fn approved_session(env: &Env) -> (String, Phone, Value) {
    let phone = demo_phone(env).await;
    let (s, started, cookie, _) = start(env, None).await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    let cookie = cookie.unwrap();
    let payload = scan_qr(env, &cookie).await;
    let (s, v) = answer(
        env,
        &phone,
        payload,
        Decision::Approve,
        started["match_number"].as_u64().unwrap() as u8,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, holding) = post(env, "/demo/api/session/token", Some(&cookie), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{holding}");
    (cookie, phone, holding)
}

async fn audit(env: &Env) -> Vec<Value> {
    env.audit_export().await
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn demo_routes_are_not_mounted_without_demo() {
    let env = Env::new().await;
    for path in [
        "/demo",
        "/demo/demo.js",
        "/demo/api/session/qr.png",
        "/demo/api/session/events",
    ] {
        let r = get(&env, path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let (s, v, _, _) = start(&env, None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn the_browser_gets_a_session_cookie_and_no_terminal_credential() {
    let env = demo_env().await;
    let seed = env.running.demo.clone().unwrap();
    let page = get(&env, "/demo", None).await;
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    let html = page.text().await.unwrap();
    let (s, v, pair, set) = start(&env, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let set = set.unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/demo", "Max-Age=600"] {
        assert!(set.contains(attr), "Set-Cookie lacks {attr}: {set}");
    }
    let handle = pair
        .unwrap()
        .strip_prefix("shomei_demo=")
        .unwrap()
        .to_owned();
    assert_eq!(handle.len(), 43, "a 256-bit handle, base64url");
    let text = v.to_string();
    for secret in [seed.client_secret.as_str(), seed.client_id.as_str()] {
        assert!(
            !text.contains(secret) && !html.contains(secret),
            "a terminal credential reached the browser"
        );
    }
    for field in [
        "device_code",
        "login_id",
        "verification_uri_complete",
        "access_token",
    ] {
        assert!(v.get(field).is_none(), "{field} reached the browser: {v}");
    }
    assert!(
        v["match_number"].as_u64().is_some() && v["confirmation"] == "number",
        "{v}"
    );
}

#[tokio::test]
async fn every_session_call_without_a_live_cookie_is_demo_session_unknown() {
    let env = demo_env().await;
    let forged = "shomei_demo=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for cookie in [None, Some(forged), Some("other=1")] {
        for path in ["/demo/api/session/token", "/demo/api/session/sign"] {
            let (s, v) = post(&env, path, cookie, json!({})).await;
            assert_eq!(
                (s, code(&v)),
                (StatusCode::UNAUTHORIZED, "demo_session_unknown"),
                "{path} {cookie:?}"
            );
        }
        for path in ["/demo/api/session/qr.png", "/demo/api/session/events"] {
            let r = get(&env, path, cookie).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(r.headers().contains_key("www-authenticate"));
            let v: Value = r.json().await.unwrap();
            assert_eq!(code(&v), "demo_session_unknown");
        }
    }
}

#[tokio::test]
async fn a_demo_session_expires_after_ten_minutes() {
    let env = demo_env().await;
    let (_, _, cookie, _) = start(&env, None).await;
    let cookie = cookie.unwrap();
    assert_eq!(
        get(&env, "/demo/api/session/qr.png", Some(&cookie))
            .await
            .status(),
        StatusCode::OK
    );
    env.app().clock.advance_ms(600_001);
    let (s, v) = post(&env, "/demo/api/session/token", Some(&cookie), json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNAUTHORIZED, "demo_session_unknown")
    );
}

#[tokio::test]
async fn starting_again_replaces_the_browsers_previous_session() {
    let env = demo_env().await;
    let (_, _, first, _) = start(&env, None).await;
    let first = first.unwrap();
    let (s, _, second, _) = start(&env, Some(&first)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_ne!(first, second.clone().unwrap());
    assert_eq!(
        get(&env, "/demo/api/session/qr.png", Some(&first))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&env, "/demo/api/session/qr.png", Some(&second.unwrap()))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_session_table_is_bounded_and_a_full_table_starts_no_login() {
    let env = demo_env().await;
    for i in 0..shomei_server::demo::session::MAX_SESSIONS {
        let (s, v, _, _) = start(&env, None).await;
        assert_eq!(s, StatusCode::CREATED, "session {i}: {v}");
    }
    let logins = audit(&env)
        .await
        .iter()
        .filter(|e| e["action"] == "login.start")
        .count();
    let r = env
        .http
        .post(format!("{}{START}", env.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(code(&v), "rate_limited");
    assert!(
        v["detail"].as_str().unwrap().contains("demo sessions"),
        "{v}"
    );
    assert_eq!(
        audit(&env)
            .await
            .iter()
            .filter(|e| e["action"] == "login.start")
            .count(),
        logins,
        "a refused start began a login"
    );
    // Expired sessions make room again.
    env.app().clock.advance_ms(600_001);
    assert_eq!(start(&env, None).await.0, StatusCode::CREATED);
}

#[tokio::test]
async fn start_needs_a_json_body_so_a_cross_site_form_cannot_start_logins() {
    let env = demo_env().await;
    let r = env
        .http
        .post(format!("{}{START}", env.base))
        .form(&[("a", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_status_stream_reports_the_phones_decision_live() {
    let env = demo_env().await;
    let phone = demo_phone(&env).await;
    let (_, started, cookie, _) = start(&env, None).await;
    let cookie = cookie.unwrap();
    let payload = scan_qr(&env, &cookie).await;
    let stream = get(&env, "/demo/api/session/events", Some(&cookie)).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let body = tokio::spawn(async move { stream.text().await.unwrap() });
    // The stream's first event is sent before the decision.
    while env.app().waiters.waited() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (s, _) = answer(
        &env,
        &phone,
        payload,
        Decision::Approve,
        started["match_number"].as_u64().unwrap() as u8,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let text = tokio::time::timeout(std::time::Duration::from_secs(10), body)
        .await
        .expect("the stream ends after the final status")
        .unwrap();
    let statuses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(
        statuses,
        [r#"{"status":"pending"}"#, r#"{"status":"approved"}"#],
        "{text}"
    );
}

#[tokio::test]
async fn approve_then_sign_gives_a_verified_xades_prescription_audited_as_the_demo_terminal() {
    let env = demo_env().await;
    let seed = env.running.demo.clone().unwrap();
    let (cookie, _, holding) = approved_session(&env).await;
    // Defence 1 (protocol.md §8): whose signing day the page now holds.
    assert_eq!(
        holding["practitioner"]["display_name"],
        "山田 花子 (Hanako Yamada)"
    );
    assert_eq!(holding["practitioner"]["role"], "doctor");
    assert_eq!(
        holding["signing_as"],
        "signing as 山田 花子 (Hanako Yamada) (doctor)"
    );
    assert!(holding.get("access_token").is_none(), "{holding}");
    let (s, signed) = post(
        &env,
        "/demo/api/session/sign",
        Some(&cookie),
        json!({ "medication": "ロキソプロフェン錠60mg 1錠 頓用" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{signed}");
    assert_eq!(signed["verified"], true, "{signed}");
    let checks: Vec<&str> = signed["verification"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "document_digest",
            "key_info_digest",
            "signed_properties_digest",
            "signature_value",
            "signing_certificate",
            "certificate_chain"
        ]
    );
    let document = signed["document"].as_str().unwrap();
    assert!(
        document.contains("ロキソプロフェン錠60mg 1錠 頓用")
            && document.contains("<ds:SignatureValue")
    );
    assert!(
        signed["verification"]["issuer"]
            .as_str()
            .unwrap()
            .contains("Shomei Development CA"),
        "{signed}"
    );
    // The verifier is not a rubber stamp: the same document, changed, fails.
    let anchor = env.app().dev_ca_certificate().await.unwrap().unwrap();
    let tampered = document.replace("頓用", "毎食後");
    assert!(matches!(
        shomei_server::xades::verify::verify(&tampered, &anchor),
        Err(shomei_server::xades::verify::VerifyError::DigestMismatch(_))
    ));
    // Every state change is audited as the demo terminal, as for a real one.
    let actor = format!("terminal:{}", seed.client_id);
    let events = audit(&env).await;
    for action in ["login.start", "grant.token_issue"] {
        assert!(
            events
                .iter()
                .any(|e| e["action"] == action && e["actor"] == actor),
            "{action} by {actor} not audited"
        );
    }
    assert!(
        events.iter().any(|e| e["action"] == "signature.create"),
        "signature not audited"
    );
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
}

#[tokio::test]
async fn a_denied_login_is_login_denied() {
    let env = demo_env().await;
    let phone = demo_phone(&env).await;
    let (_, started, cookie, _) = start(&env, None).await;
    let cookie = cookie.unwrap();
    let payload = scan_qr(&env, &cookie).await;
    let (s, _) = answer(
        &env,
        &phone,
        payload,
        Decision::Deny,
        started["match_number"].as_u64().unwrap() as u8,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = post(&env, "/demo/api/session/token", Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "login_denied"));
    let (s, v) = post(&env, "/demo/api/session/sign", Some(&cookie), json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "nothing to sign with: {v}"
    );
}

#[tokio::test]
async fn an_unanswered_login_expires_as_login_expired() {
    let env = demo_env().await;
    let (_, _, cookie, _) = start(&env, None).await;
    let cookie = cookie.unwrap();
    let (s, v) = post(&env, "/demo/api/session/token", Some(&cookie), json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::CONFLICT, "conflict"),
        "pending: {v}"
    );
    env.app().clock.advance_ms(121_000);
    let (s, v) = post(&env, "/demo/api/session/token", Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::GONE, "login_expired"));
}

#[tokio::test]
async fn signing_after_the_practitioner_ended_the_grant_is_grant_revoked() {
    let env = demo_env().await;
    let (cookie, phone, _) = approved_session(&env).await;
    let r = env
        .http
        .delete(format!("{}/v1/phone/grants", env.base))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (s, v) = post(&env, "/demo/api/session/sign", Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::UNAUTHORIZED, "grant_revoked"));
}

#[tokio::test]
async fn a_medication_line_that_is_too_long_signs_nothing() {
    let env = demo_env().await;
    let (cookie, _, _) = approved_session(&env).await;
    let (s, v) = post(
        &env,
        "/demo/api/session/sign",
        Some(&cookie),
        json!({ "medication": "錠".repeat(121) }),
    )
    .await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_request"));
    assert!(
        !audit(&env)
            .await
            .iter()
            .any(|e| e["action"] == "signature.create")
    );
}

#[tokio::test]
async fn the_demo_works_after_a_restart_on_the_same_data_dir_without_the_secret() {
    let first = demo_env().await;
    let seed = first.running.demo.clone().unwrap();
    let Env {
        running, _dir: dir, ..
    } = first;
    running.shutdown().await.unwrap();
    let mut cfg = config_in(dir.path());
    cfg.demo = true;
    let running = shomei_server::run::start(cfg).await.unwrap();
    assert!(running.demo.is_none(), "a second run seeds nothing");
    let env = Env {
        base: running.base_url.clone(),
        admin_base: running.admin_base_url.clone(),
        token: running.operator_token.clone(),
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    };
    let (s, v, cookie, _) = start(&env, None).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    scan_qr(&env, &cookie.unwrap()).await;
    let actor = format!("terminal:{}", seed.client_id);
    assert_eq!(
        audit(&env)
            .await
            .iter()
            .filter(|e| e["action"] == "login.start" && e["actor"] == actor)
            .count(),
        1
    );
}

#[tokio::test]
async fn the_demo_never_acts_for_a_terminal_the_operator_registered() {
    // A store with data the demo did not seed (an operator's own terminal).
    let env = Env::new().await;
    env.world().await;
    let Env {
        running, _dir: dir, ..
    } = env;
    running.shutdown().await.unwrap();
    let mut cfg = config_in(dir.path());
    cfg.demo = true;
    let running = shomei_server::run::start(cfg).await.unwrap();
    let env = Env {
        base: running.base_url.clone(),
        admin_base: running.admin_base_url.clone(),
        token: running.operator_token.clone(),
        running,
        http: reqwest::Client::new(),
        _dir: dir,
    };
    let page = get(&env, "/demo", None).await.text().await.unwrap();
    assert!(page.contains("no demo terminal"), "{page}");
    let (s, v, _, _) = start(&env, None).await;
    assert_eq!((s, code(&v)), (StatusCode::NOT_FOUND, "not_found"), "{v}");
    assert!(
        !audit(&env)
            .await
            .iter()
            .any(|e| e["action"] == "login.start")
    );
}

/// A demo server under the `code` confirmation policy, its login approved
/// on the phone: (env, the page's cookie, the code the phone shows).
async fn approved_under_the_code_policy() -> (Env, String, String) {
    let env = Env::with_config(|c| {
        c.demo = true;
        c.policy.confirmation = shomei_server::service::Confirmation::Code;
    })
    .await;
    let phone = demo_phone(&env).await;
    let (s, started, cookie, _) = start(&env, None).await;
    assert_eq!(s, StatusCode::CREATED, "{started}");
    assert_eq!(started["confirmation"], "code", "the page is told to ask for the code");
    let cookie = cookie.unwrap();
    let payload = scan_qr(&env, &cookie).await;
    let number = started["match_number"].as_u64().unwrap() as u8;
    let (s, v) = answer(&env, &phone, payload, Decision::Approve, number).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let shown = v["confirmation_code"]
        .as_str()
        .expect("the phone's decision response carries the code")
        .to_owned();
    (env, cookie, shown)
}

/// A code the phone did not show (same length, every digit changed).
fn other_code(shown: &str) -> String {
    shown
        .chars()
        .map(|c| c.to_digit(10).map_or(c, |d| char::from_digit((d + 1) % 10, 10).unwrap()))
        .collect()
}

#[tokio::test]
async fn under_the_code_policy_the_page_holds_the_grant_only_with_the_phones_code() {
    let (env, cookie, shown) = approved_under_the_code_policy().await;
    let token = "/demo/api/session/token";
    let (s, v) = post(&env, token, Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_request"), "no code typed: {v}");
    let (s, v) = post(&env, token, Some(&cookie), json!({ "confirmation_code": other_code(&shown) })).await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_request"), "a wrong code: {v}");
    let (s, v) = post(&env, "/demo/api/session/sign", Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"), "no grant held yet: {v}");

    let (s, holding) = post(&env, token, Some(&cookie), json!({ "confirmation_code": shown })).await;
    assert_eq!(s, StatusCode::OK, "{holding}");
    assert!(holding["signing_as"].as_str().unwrap().contains("(doctor)"), "{holding}");
    let (s, signed) = post(&env, "/demo/api/session/sign", Some(&cookie), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{signed}");
    assert_eq!(signed["verified"], true, "{signed}");
    let wrong: Vec<_> = audit(&env)
        .await
        .into_iter()
        .filter(|e| e["action"] == "login.confirmation_wrong")
        .collect();
    assert_eq!(wrong.len(), 1, "the one wrong code is audited");
    assert!(wrong[0]["actor"].as_str().unwrap().starts_with("terminal:"), "{}", wrong[0]);
}

#[tokio::test]
async fn three_wrong_codes_on_the_page_end_the_login_as_login_denied() {
    let (env, cookie, shown) = approved_under_the_code_policy().await;
    let token = "/demo/api/session/token";
    let wrong = other_code(&shown);
    for attempt in 1..=2 {
        let (s, v) = post(&env, token, Some(&cookie), json!({ "confirmation_code": wrong })).await;
        assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "bad_request"), "attempt {attempt}: {v}");
    }
    let (s, v) = post(&env, token, Some(&cookie), json!({ "confirmation_code": wrong })).await;
    assert_eq!((s, code(&v)), (StatusCode::FORBIDDEN, "login_denied"), "the third: {v}");
    let (s, v) = post(&env, token, Some(&cookie), json!({ "confirmation_code": shown })).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::FORBIDDEN, "login_denied"),
        "the right code after the grant ended holds nothing: {v}"
    );
    let (s, v) = post(&env, "/demo/api/session/sign", Some(&cookie), json!({})).await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "conflict"), "{v}");
}
