//! Test fixtures: a real server on loopback, an operator, a phone.

use std::sync::Arc;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_core::approval::{ApprovalMessage, EnrollmentMessage};
use shomei_core::{Decision, DevicePublicKey, EnrollmentPayload, LoginPayload, Payload, PlatformKey, SoftwareKey};
use shomei_server::config::{Overrides, ServeConfig};
use shomei_server::run::Running;
use shomei_server::service::{App, Policy};
use uuid::Uuid;

pub struct Env {
    pub running: Running,
    pub http: reqwest::Client,
    pub base: String,
    /// The operator API's own listener.
    pub admin_base: String,
    pub token: String,
    pub _dir: tempfile::TempDir,
}

pub struct World {
    pub facility: String,
    pub terminal: (String, String),
    pub practitioner: String,
    pub credential: String,
}

pub struct Phone {
    pub key: SoftwareKey,
    pub device_id: Uuid,
    pub token: String,
}

pub struct Login {
    pub v: Value,
    pub payload: LoginPayload,
}

impl Login {
    pub fn id(&self) -> &str {
        self.v["login_id"].as_str().unwrap()
    }
    pub fn device_code(&self) -> &str {
        self.v["device_code"].as_str().unwrap()
    }
    pub fn number(&self) -> u8 {
        self.v["match_number"].as_u64().unwrap() as u8
    }
}

/// The test configuration for data directory `dir` (both listeners on port 0).
pub fn config_in(dir: &std::path::Path) -> ServeConfig {
    ServeConfig::resolve(Overrides {
        data_dir: Some(dir.to_owned()),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .unwrap()
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

impl Env {
    pub async fn new() -> Env {
        Env::with_policy(|_| {}).await
    }

    pub async fn with_policy(f: impl FnOnce(&mut Policy)) -> Env {
        Env::with_config(|cfg| f(&mut cfg.policy)).await
    }

    /// A server whose resolved configuration `f` may change first (e.g. `demo`).
    pub async fn with_config(f: impl FnOnce(&mut ServeConfig)) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config_in(dir.path());
        f(&mut cfg);
        let running = shomei_server::run::start(cfg).await.unwrap();
        let base = running.base_url.clone();
        let token = running.operator_token.clone();
        let admin_base = running.admin_base_url.clone();
        Env {
            running,
            http: reqwest::Client::new(),
            base,
            admin_base,
            token,
            _dir: dir,
        }
    }

    pub fn app(&self) -> &Arc<App> {
        &self.running.app
    }

    pub async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.admin_base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {v}");
        v
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.admin_get_ok(path).await.json().await.unwrap()
    }

    /// The whole audit log, one JSON object per entry (`GET /admin/v1/audit/export`).
    pub async fn audit_export(&self) -> Vec<Value> {
        let r = self.admin_get_ok("/admin/v1/audit/export").await;
        r.text().await.unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// `GET path` on the admin API with the operator token, asserted 2xx.
    async fn admin_get_ok(&self, path: &str) -> reqwest::Response {
        let r = self.http.get(format!("{}{path}", self.admin_base)).bearer_auth(&self.token).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r
    }

    /// Facility + terminal + practitioner (allowed there) + dev-CA credential.
    pub async fn world(&self) -> World {
        let f = self.admin("/admin/v1/facilities", json!({ "name": "Clinic A" })).await;
        let facility = f["id"].as_str().unwrap().to_owned();
        let t = self.admin("/admin/v1/terminals", json!({ "facility_id": facility, "name": "EHR 1" })).await;
        let p = self.admin("/admin/v1/practitioners", json!({ "display_name": "Dr A", "role": "doctor", "facility_ids": [facility] })).await;
        let practitioner = p["id"].as_str().unwrap().to_owned();
        let c = self.admin("/admin/v1/credentials", json!({ "practitioner_id": practitioner })).await;
        World {
            facility,
            terminal: (t["client_id"].as_str().unwrap().to_owned(), t["client_secret"].as_str().unwrap().to_owned()),
            practitioner,
            credential: c["id"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn terminal_in(&self, facility: &str, name: &str) -> (String, String) {
        let t = self.admin("/admin/v1/terminals", json!({ "facility_id": facility, "name": name })).await;
        (t["client_id"].as_str().unwrap().to_owned(), t["client_secret"].as_str().unwrap().to_owned())
    }

    pub async fn enrollment(&self, practitioner: &str) -> (EnrollmentPayload, String) {
        let v = self.admin("/admin/v1/enrollments", json!({ "practitioner_id": practitioner })).await;
        let Payload::Enrollment(p) = Payload::parse_ignoring_expiry(v["payload_url"].as_str().unwrap()).unwrap() else {
            panic!("not an enrollment payload")
        };
        (p, v["activation_password"].as_str().unwrap().to_owned())
    }

    pub fn enroll_body(&self, p: &EnrollmentPayload, password: &str, key: &SoftwareKey, name: &str) -> Value {
        let pk = key.public_key_sec1();
        let dpk = DevicePublicKey::from_sec1(&pk).unwrap();
        let msg = EnrollmentMessage { origin: &p.origin, enrollment_id: &p.enrollment_id, secret: &p.secret, public_key: &dpk, device_name: name }.to_bytes();
        let proof = key.sign(&msg).unwrap();
        json!({
            "enrollment_id": p.enrollment_id.to_b64u(), "secret": p.secret.to_b64u(), "activation_password": password,
            "public_key": b64u(&pk), "proof": b64u(&proof), "device_name": name, "platform": "desktop",
        })
    }

    /// POST JSON; `/admin/…` paths go to the operator listener.
    pub async fn post_json(&self, path: &str, auth: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let base = if path.starts_with("/admin/") { &self.admin_base } else { &self.base };
        let mut rb = self.http.post(format!("{base}{path}")).json(body);
        if let Some(a) = auth {
            rb = rb.header("authorization", a);
        }
        let r = rb.send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn enroll(&self, practitioner: &str) -> Phone {
        let (p, pw) = self.enrollment(practitioner).await;
        let key = SoftwareKey::generate();
        let body = self.enroll_body(&p, &pw, &key, "Test phone");
        let (s, v) = self.post_json("/v1/phone/enroll", None, &body).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        Phone { key, device_id: v["device_id"].as_str().unwrap().parse().unwrap(), token: v["device_token"].as_str().unwrap().to_owned() }
    }

    pub async fn start_login(&self, terminal: &(String, String)) -> Login {
        let r = self
            .http
            .post(format!("{}/oauth/device_authorization", self.base))
            .header("authorization", basic(&terminal.0, &terminal.1))
            .form(&[("scope", "sign")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let v: Value = r.json().await.unwrap();
        let Payload::Login(payload) = Payload::parse_ignoring_expiry(v["verification_uri_complete"].as_str().unwrap()).unwrap() else {
            panic!("not a login payload")
        };
        Login { v, payload }
    }

    pub async fn context(&self, phone: &Phone, login: &Login) -> (StatusCode, Value) {
        self.post_json(
            &format!("/v1/phone/logins/{}/context", login.id()),
            Some(&format!("Bearer {}", phone.token)),
            &json!({ "secret": login.payload.secret.to_b64u() }),
        )
        .await
    }

    pub fn decision_body(&self, phone: &Phone, login: &Login, challenge: [u8; 32], decision: Decision, number: u8) -> Value {
        let msg = ApprovalMessage {
            origin: &login.payload.origin,
            login_id: &login.payload.login_id,
            secret: &login.payload.secret,
            device_id: *phone.device_id.as_bytes(),
            decision,
            number,
            challenge,
        }
        .to_bytes();
        let sig = phone.key.sign(&msg).unwrap();
        json!({ "device_id": phone.device_id, "decision": decision, "number": number, "signature": b64u(&sig) })
    }

    pub async fn decide(&self, phone: &Phone, login: &Login, decision: Decision, number: u8) -> (StatusCode, Value) {
        let (s, ctx) = self.context(phone, login).await;
        assert_eq!(s, StatusCode::OK, "context: {ctx}");
        let challenge = challenge_of(&ctx);
        let body = self.decision_body(phone, login, challenge, decision, number);
        self.post_json(&format!("/v1/phone/logins/{}/decision", login.id()), Some(&format!("Bearer {}", phone.token)), &body).await
    }

    pub async fn token(&self, terminal: &(String, String), device_code: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/oauth/token", self.base))
            .header("authorization", basic(&terminal.0, &terminal.1))
            .form(&[("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)])
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap())
    }

    /// Full login: start, approve, collect the access token.
    pub async fn grant(&self, terminal: &(String, String), phone: &Phone) -> String {
        let login = self.start_login(terminal).await;
        let (s, v) = self.decide(phone, &login, Decision::Approve, login.number()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, t) = self.token(terminal, login.device_code()).await;
        assert_eq!(s, StatusCode::OK, "{t}");
        t["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn csc(&self, path: &str, access_token: &str, terminal: &(String, String), body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/csc/v2/{path}", self.base))
            .bearer_auth(access_token)
            .header("shomei-terminal-authorization", basic(&terminal.0, &terminal.1))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sign_one(&self, access_token: &str, terminal: &(String, String), credential: &str, hash: &[u8; 32]) -> (StatusCode, Value) {
        self.csc(
            "signatures/signHash",
            access_token,
            terminal,
            json!({ "credentialID": credential, "hashes": [std64(hash)], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11" }),
        )
        .await
    }
}

pub fn challenge_of(ctx: &Value) -> [u8; 32] {
    shomei_core::api::b64u::decode(ctx["challenge"].as_str().unwrap()).unwrap().try_into().unwrap()
}

pub fn b64u(b: &[u8]) -> String {
    shomei_core::api::b64u::encode(b)
}

pub fn std64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Asserts a problem document with `code`.
pub fn assert_problem(res: &(StatusCode, Value), status: u16, code: &str) {
    assert_eq!(res.0.as_u16(), status, "body: {}", res.1);
    assert_eq!(res.1["code"], code, "body: {}", res.1);
}
