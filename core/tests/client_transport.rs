//! Transport-level behaviour of `shomei_core::client` against a real axum
//! server on 127.0.0.1:0: problem documents, timeouts, garbage bodies, status
//! mapping, refusing other servers' codes before any request, and a full
//! enroll → context → decide round whose signatures the test server verifies
//! with the same core verification code the real server uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use shomei_core::api::{
    DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse, ErrorCode,
    GrantList, LoginContext, LoginContextRequest, NamedRef, Outcome, Platform, PractitionerInfo,
    Problem, Role,
};
use shomei_core::approval::{ApprovalMessage, EnrollmentMessage};
use shomei_core::attestation::{client_data_hash, enrollment_attestation_challenge};
use shomei_core::client::{Client, ClientError, Enrollment};
use shomei_core::{Attestation, AttestationRequest};
use shomei_core::{
    Decision, DevicePublicKey, EnrollmentId, EnrollmentPayload, KeyError, LoginId, LoginPayload,
    Origin, PlatformKey, QrSecret, SoftwareKey,
};
use tokio::sync::Mutex;

const TOKEN: &str = "dGVzdC1kZXZpY2UtdG9rZW4tMzItYnl0ZXMtbG9uZy4u";

#[derive(Default)]
struct Fake {
    origin: Option<Origin>,
    requests: AtomicUsize,
    device_key: Mutex<Option<DevicePublicKey>>,
    attestation: Mutex<Option<Attestation>>,
    challenge: [u8; 32],
}

type S = Arc<Fake>;

fn problem(code: ErrorCode, detail: &str) -> Response {
    let p = Problem::new(code, detail);
    let status = StatusCode::from_u16(p.status).unwrap();
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::to_string(&p).unwrap(),
    )
        .into_response()
}

fn login_payload(origin: &Origin) -> LoginPayload {
    LoginPayload {
        origin: origin.clone(),
        login_id: LoginId([5; 16]),
        secret: QrSecret::from_bytes([6; 16]),
        expires_at: u64::MAX,
    }
}

fn enrollment_payload(origin: &Origin) -> EnrollmentPayload {
    EnrollmentPayload {
        origin: origin.clone(),
        enrollment_id: EnrollmentId([7; 16]),
        secret: QrSecret::from_bytes([8; 16]),
        expires_at: u64::MAX,
    }
}

fn device_id() -> uuid::Uuid {
    uuid::Uuid::from_bytes([9; 16])
}

fn named(name: &str) -> NamedRef {
    NamedRef {
        id: uuid::Uuid::from_bytes([1; 16]),
        name: name.into(),
    }
}

async fn enroll(State(s): State<S>, Json(r): Json<EnrollRequest>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    let origin = s.origin.clone().unwrap();
    let expected = enrollment_payload(&origin);
    if r.enrollment_id != expected.enrollment_id || !r.secret.ct_eq(&expected.secret) {
        return problem(ErrorCode::EnrollmentInvalid, "unknown enrollment");
    }
    if r.activation_password != "pw" {
        return problem(
            ErrorCode::ActivationPasswordWrong,
            "wrong activation password",
        );
    }
    let Ok(pk) = DevicePublicKey::from_sec1(&r.public_key) else {
        return problem(ErrorCode::BadRequest, "bad public key");
    };
    let msg = EnrollmentMessage {
        origin: &origin,
        enrollment_id: &r.enrollment_id,
        secret: &r.secret,
        public_key: &pk,
        device_name: &r.device_name,
    }
    .to_bytes();
    if pk.verify(&msg, &r.proof).is_err() {
        return problem(ErrorCode::ProofInvalid, "proof does not verify");
    }
    *s.device_key.lock().await = Some(pk);
    *s.attestation.lock().await = r.attestation.clone();
    let resp = EnrollResponse {
        device_id: device_id(),
        device_token: TOKEN.into(),
        practitioner: PractitionerInfo {
            id: uuid::Uuid::nil(),
            display_name: "佐藤 花子".into(),
            role: Role::Doctor,
        },
        server_origin: origin,
    };
    (StatusCode::CREATED, Json(resp)).into_response()
}

fn authorized(h: &HeaderMap) -> bool {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn context(
    State(s): State<S>,
    Path(id): Path<String>,
    h: HeaderMap,
    Json(r): Json<LoginContextRequest>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if !authorized(&h) {
        return problem(ErrorCode::DeviceUnknown, "unknown device token");
    }
    let p = login_payload(s.origin.as_ref().unwrap());
    if id != p.login_id.to_b64u() {
        return problem(ErrorCode::LoginUnknown, "no such login");
    }
    if !r.secret.ct_eq(&p.secret) {
        return problem(ErrorCode::LoginSecretWrong, "wrong secret");
    }
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    Json(LoginContext {
        login_id: p.login_id,
        facility: named("さくら内科"),
        terminal: named("診察室1"),
        requested_at: now,
        expires_at: now + time::Duration::minutes(2),
        number_choices: [17, 42, 86],
        challenge: s.challenge,
    })
    .into_response()
}

async fn decision(
    State(s): State<S>,
    Path(id): Path<String>,
    h: HeaderMap,
    Json(r): Json<DecisionRequest>,
) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    if !authorized(&h) {
        return problem(ErrorCode::DeviceUnknown, "unknown device token");
    }
    let origin = s.origin.clone().unwrap();
    let p = login_payload(&origin);
    assert_eq!(id, p.login_id.to_b64u());
    let msg = ApprovalMessage {
        origin: &origin,
        login_id: &p.login_id,
        secret: &p.secret,
        device_id: *r.device_id.as_bytes(),
        decision: r.decision,
        number: r.number,
        challenge: s.challenge,
    }
    .to_bytes();
    let key = s.device_key.lock().await.clone().expect("enrolled first");
    if key.verify(&msg, &r.signature).is_err() {
        return problem(ErrorCode::SignatureInvalid, "signature does not verify");
    }
    if r.decision == Decision::Approve && r.number != 42 {
        return problem(ErrorCode::NumberMismatch, "wrong number");
    }
    let outcome = if r.decision == Decision::Approve {
        Outcome::Approved
    } else {
        Outcome::Denied
    };
    Json(DecisionResponse {
        outcome,
        grant: None,
        confirmation_code: None,
    })
    .into_response()
}

async fn grants_list(State(s): State<S>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    Json(GrantList { grants: vec![] }).into_response()
}

async fn end_all(State(s): State<S>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    Json(EndAllResponse { ended: 3 }).into_response()
}

async fn end_one(State(s): State<S>, Path(_id): Path<String>) -> Response {
    s.requests.fetch_add(1, Ordering::SeqCst);
    StatusCode::NO_CONTENT.into_response()
}

/// Starts `router` on 127.0.0.1:0 and returns its origin.
async fn serve(router: Router) -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Origin::parse(&format!("http://{addr}")).unwrap()
}

/// A phone-API fake that verifies real signatures.
async fn fake_server() -> (Origin, S) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = Origin::parse(&format!("http://{addr}")).unwrap();
    let state = Arc::new(Fake {
        origin: Some(origin.clone()),
        challenge: [0x33; 32],
        ..Default::default()
    });
    let router = Router::new()
        .route("/v1/phone/enroll", post(enroll))
        .route("/v1/phone/logins/{id}/context", post(context))
        .route("/v1/phone/logins/{id}/decision", post(decision))
        .route("/v1/phone/grants", get(grants_list).delete(end_all))
        .route("/v1/phone/grants/{id}", delete(end_one))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (origin, state)
}

async fn enrolled(origin: &Origin, key: &SoftwareKey) -> (Client, Enrollment) {
    let client = Client::new(origin.clone()).unwrap();
    let e = client
        .enroll(
            &enrollment_payload(origin),
            "pw",
            key,
            "test phone",
            Platform::Desktop,
        )
        .await
        .unwrap();
    (client, e)
}

#[tokio::test]
async fn full_round_signs_what_the_server_verifies() {
    let (origin, _s) = fake_server().await;
    let key = SoftwareKey::generate();
    let (client, e) = enrolled(&origin, &key).await;
    assert_eq!(e.device_id, device_id());
    assert_eq!(e.origin, origin);
    let p = login_payload(&origin);
    let ctx = client.login_context(&e, &p).await.unwrap();
    assert_eq!(ctx.number_choices, [17, 42, 86]);
    let d = client
        .decide(&e, &p, &ctx, Decision::Approve, 42, &key)
        .await
        .unwrap();
    assert_eq!(d.outcome, Outcome::Approved);
    let d = client
        .decide(&e, &p, &ctx, Decision::Deny, 0, &key)
        .await
        .unwrap();
    assert_eq!(d.outcome, Outcome::Denied);
    assert!(client.grants(&e).await.unwrap().is_empty());
    assert_eq!(client.end_all_grants(&e).await.unwrap(), 3);
    client.end_grant(&e, uuid::Uuid::nil()).await.unwrap();
}

#[tokio::test]
async fn problem_document_maps_to_rejected_with_code_and_detail() {
    let (origin, _s) = fake_server().await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .enroll(
            &enrollment_payload(&origin),
            "wrong",
            &SoftwareKey::generate(),
            "phone",
            Platform::Android,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            status: 401,
            code: ErrorCode::ActivationPasswordWrong,
            detail: "wrong activation password".into()
        }
    );
}

#[tokio::test]
async fn wrong_number_is_rejected_by_the_server_after_a_valid_signature() {
    let (origin, _s) = fake_server().await;
    let key = SoftwareKey::generate();
    let (client, e) = enrolled(&origin, &key).await;
    let p = login_payload(&origin);
    let ctx = client.login_context(&e, &p).await.unwrap();
    let err = client
        .decide(&e, &p, &ctx, Decision::Approve, 17, &key)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                status: 403,
                code: ErrorCode::NumberMismatch,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn signature_by_another_key_is_rejected_by_the_server() {
    let (origin, _s) = fake_server().await;
    let (client, e) = enrolled(&origin, &SoftwareKey::generate()).await;
    let p = login_payload(&origin);
    let ctx = client.login_context(&e, &p).await.unwrap();
    let err = client
        .decide(
            &e,
            &p,
            &ctx,
            Decision::Approve,
            42,
            &SoftwareKey::generate(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                code: ErrorCode::SignatureInvalid,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn login_code_of_another_server_is_refused_before_any_request() {
    let (origin, s) = fake_server().await;
    let key = SoftwareKey::generate();
    let (client, e) = enrolled(&origin, &key).await;
    let before = s.requests.load(Ordering::SeqCst);
    let foreign = login_payload(&Origin::parse("https://evil.example").unwrap());
    assert_eq!(
        client.login_context(&e, &foreign).await.unwrap_err(),
        ClientError::WrongServer
    );
    let ctx = client
        .login_context(&e, &login_payload(&origin))
        .await
        .unwrap();
    let before_decide = s.requests.load(Ordering::SeqCst);
    assert_eq!(before_decide, before + 1);
    assert_eq!(
        client
            .decide(&e, &foreign, &ctx, Decision::Approve, 42, &key)
            .await
            .unwrap_err(),
        ClientError::WrongServer
    );
    assert_eq!(s.requests.load(Ordering::SeqCst), before_decide);
}

#[tokio::test]
async fn enrollment_code_of_another_server_is_refused_before_any_request() {
    let (origin, s) = fake_server().await;
    let client = Client::new(origin).unwrap();
    let foreign = enrollment_payload(&Origin::parse("https://evil.example").unwrap());
    let err = client
        .enroll(
            &foreign,
            "pw",
            &SoftwareKey::generate(),
            "phone",
            Platform::Ios,
        )
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::WrongServer);
    assert_eq!(s.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn number_not_offered_is_refused_locally() {
    let (origin, s) = fake_server().await;
    let key = SoftwareKey::generate();
    let (client, e) = enrolled(&origin, &key).await;
    let p = login_payload(&origin);
    let ctx = client.login_context(&e, &p).await.unwrap();
    let before = s.requests.load(Ordering::SeqCst);
    let err = client
        .decide(&e, &p, &ctx, Decision::Approve, 0, &key)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::InvalidInput(_)));
    assert_eq!(s.requests.load(Ordering::SeqCst), before);
}

struct CancellingKey(SoftwareKey);

impl PlatformKey for CancellingKey {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        self.0.public_key()
    }
    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Err(KeyError::UserCancelled)
    }
}

#[tokio::test]
async fn key_failure_is_reported_as_key_error_without_a_request() {
    let (origin, s) = fake_server().await;
    let client = Client::new(origin.clone()).unwrap();
    let key = CancellingKey(SoftwareKey::generate());
    let err = client
        .enroll(
            &enrollment_payload(&origin),
            "pw",
            &key,
            "phone",
            Platform::Android,
        )
        .await
        .unwrap_err();
    assert_eq!(err, ClientError::Key(KeyError::UserCancelled));
    assert_eq!(s.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn slow_server_times_out() {
    let origin = serve(Router::new().route(
        "/v1/phone/grants",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "never"
        }),
    ))
    .await;
    let client = Client::with_timeout(origin.clone(), Duration::from_millis(200)).unwrap();
    let e = fake_enrollment(&origin);
    assert_eq!(client.grants(&e).await.unwrap_err(), ClientError::Timeout);
}

fn fake_enrollment(origin: &Origin) -> Enrollment {
    Enrollment {
        origin: origin.clone(),
        device_id: device_id(),
        device_token: TOKEN.into(),
        practitioner: PractitionerInfo {
            id: uuid::Uuid::nil(),
            display_name: "x".into(),
            role: Role::Pharmacist,
        },
    }
}

#[tokio::test]
async fn garbage_success_body_is_a_protocol_error() {
    let origin =
        serve(Router::new().route("/v1/phone/grants", get(|| async { "<html>hello</html>" })))
            .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client.grants(&fake_enrollment(&origin)).await.unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn plain_413_maps_to_body_too_large() {
    let origin = serve(Router::new().route(
        "/v1/phone/grants",
        get(|| async { (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded") }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client.grants(&fake_enrollment(&origin)).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                status: 413,
                code: ErrorCode::BodyTooLarge,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_request_rejected_by_body_limit_maps_to_413() {
    // axum's own body limit (what a real server uses) answers 413 in plain text.
    let origin = serve(
        Router::new()
            .route(
                "/v1/phone/enroll",
                post(|_b: axum::body::Bytes| async { StatusCode::CREATED }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64)),
    )
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .enroll(
            &enrollment_payload(&origin),
            "pw",
            &SoftwareKey::generate(),
            "phone",
            Platform::Desktop,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                status: 413,
                code: ErrorCode::BodyTooLarge,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unknown_problem_code_maps_to_other() {
    let origin = serve(Router::new().route(
        "/v1/phone/grants",
        get(|| async {
            (
                StatusCode::IM_A_TEAPOT,
                [(header::CONTENT_TYPE, "application/problem+json")],
                r#"{"type":"urn:x","title":"t","status":418,"code":"brand_new_code","detail":"later"}"#,
            )
        }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client.grants(&fake_enrollment(&origin)).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Rejected {
            status: 418,
            code: ErrorCode::Other,
            detail: "later".into()
        }
    );
}

#[tokio::test]
async fn closed_port_is_a_network_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let origin = Origin::parse(&format!("http://{addr}")).unwrap();
    let client = Client::new(origin.clone()).unwrap();
    let err = client.grants(&fake_enrollment(&origin)).await.unwrap_err();
    assert!(matches!(err, ClientError::Network(_)), "{err:?}");
}

#[tokio::test]
async fn context_for_another_login_is_a_protocol_error() {
    let origin = serve(Router::new().route(
        "/v1/phone/logins/{id}/context",
        post(|| async {
            Json(LoginContext {
                login_id: LoginId([0xEE; 16]),
                facility: named("f"),
                terminal: named("t"),
                requested_at: time::OffsetDateTime::UNIX_EPOCH,
                expires_at: time::OffsetDateTime::UNIX_EPOCH,
                number_choices: [10, 11, 12],
                challenge: [0; 32],
            })
        }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .login_context(&fake_enrollment(&origin), &login_payload(&origin))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn indistinct_number_choices_are_a_protocol_error() {
    let origin = serve(Router::new().route(
        "/v1/phone/logins/{id}/context",
        post(|| async {
            Json(LoginContext {
                login_id: LoginId([5; 16]),
                facility: named("f"),
                terminal: named("t"),
                requested_at: time::OffsetDateTime::UNIX_EPOCH,
                expires_at: time::OffsetDateTime::UNIX_EPOCH,
                number_choices: [42, 42, 7],
                challenge: [0; 32],
            })
        }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .login_context(&fake_enrollment(&origin), &login_payload(&origin))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

/// A key with platform attestation that remembers what core asked it for.
struct AttestingKey {
    inner: SoftwareKey,
    asked: std::sync::Mutex<Vec<AttestationRequest>>,
    refuse: bool,
}

impl PlatformKey for AttestingKey {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        self.inner.public_key()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.inner.sign(message)
    }
    fn attestation(&self, request: &AttestationRequest) -> Result<Option<Attestation>, KeyError> {
        self.asked.lock().unwrap().push(*request);
        if self.refuse {
            return Err(KeyError::NotAvailable("App Attest is not supported".into()));
        }
        Ok(Some(Attestation::AppleAppAttest {
            key_id: request.challenge.to_vec(),
            attestation_object: request.client_data_hash.to_vec(),
        }))
    }
}

#[tokio::test]
async fn enroll_sends_the_keys_attestation_over_the_enrollment_challenge_and_key() {
    let (origin, s) = fake_server().await;
    let key = AttestingKey {
        inner: SoftwareKey::generate(),
        asked: Default::default(),
        refuse: false,
    };
    let payload = enrollment_payload(&origin);
    Client::new(origin.clone())
        .unwrap()
        .enroll(&payload, "pw", &key, "phone", Platform::Ios)
        .await
        .unwrap();
    let asked = key.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "attestation is asked for exactly once");
    let challenge = enrollment_attestation_challenge(&payload);
    let public = DevicePublicKey::from_sec1(&key.inner.public_key_sec1()).unwrap();
    assert_eq!(asked[0].challenge, challenge);
    assert_eq!(
        asked[0].client_data_hash,
        client_data_hash(&challenge, &public)
    );
    // The server received exactly what the key returned.
    assert_eq!(
        *s.attestation.lock().await,
        Some(Attestation::AppleAppAttest {
            key_id: challenge.to_vec(),
            attestation_object: asked[0].client_data_hash.to_vec()
        })
    );
}

#[tokio::test]
async fn a_failing_attestation_stops_enrollment_before_any_request() {
    let (origin, s) = fake_server().await;
    let key = AttestingKey {
        inner: SoftwareKey::generate(),
        asked: Default::default(),
        refuse: true,
    };
    let err = Client::new(origin.clone())
        .unwrap()
        .enroll(
            &enrollment_payload(&origin),
            "pw",
            &key,
            "phone",
            Platform::Ios,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Key(KeyError::NotAvailable("App Attest is not supported".into()))
    );
    assert_eq!(s.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_software_key_enrolls_without_attestation() {
    let (origin, s) = fake_server().await;
    enrolled(&origin, &SoftwareKey::generate()).await;
    assert_eq!(*s.attestation.lock().await, None);
}

/// A signing-log answer with entries of these `seq`s (of grant [1; 16]).
fn signature_list(seqs: &[u64], watermark: u64) -> serde_json::Value {
    let entries: Vec<serde_json::Value> = seqs
        .iter()
        .map(|s| {
            serde_json::json!({
                "seq": s, "signed_at": "2026-12-01T03:15:42Z", "grant_id": uuid::Uuid::from_bytes([1; 16]),
                "facility": { "id": uuid::Uuid::from_bytes([2; 16]), "name": "Yamada Clinic" },
                "terminal": { "id": uuid::Uuid::from_bytes([3; 16]), "name": "Exam room 2" },
                "credential_id": "cred-7f3a", "algorithm": "rsa-pkcs1-sha256", "format": "hash",
                "digest": "mnkWBSPE7wBQBkroMwQsVeDhwjUN2bvOYvma2IJMD/4=", "label": "処方箋 No.0002"
            })
        })
        .collect();
    serde_json::json!({ "signatures": entries, "watermark": watermark, "more": false })
}

#[tokio::test]
async fn a_signing_log_page_is_read_with_its_query_and_device_token() {
    let origin = serve(Router::new().route(
        "/v1/phone/signatures",
        get(
            |h: HeaderMap, q: axum::extract::Query<Vec<(String, String)>>| async move {
                let grant = uuid::Uuid::from_bytes([1; 16]).to_string();
                let want = vec![
                    ("limit".to_owned(), "2".to_owned()),
                    ("grant".to_owned(), grant),
                    ("cursor".to_owned(), "AAAA".to_owned()),
                ];
                if !authorized(&h) || q.0 != want {
                    return problem(ErrorCode::BadRequest, &format!("{:?}", q.0));
                }
                Json(signature_list(&[9, 7], 9)).into_response()
            },
        ),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let page = client
        .signatures(
            &fake_enrollment(&origin),
            Some(uuid::Uuid::from_bytes([1; 16])),
            Some("AAAA"),
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        page.signatures.iter().map(|s| s.seq).collect::<Vec<_>>(),
        [9, 7]
    );
    assert_eq!(page.signatures[0].label.as_deref(), Some("処方箋 No.0002"));
    assert_eq!(page.signatures[0].digest.len(), 32);
}

#[tokio::test]
async fn a_signing_log_out_of_order_is_a_protocol_error() {
    let origin = serve(Router::new().route(
        "/v1/phone/signatures",
        get(|| async { Json(signature_list(&[7, 9], 9)) }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .signatures(&fake_enrollment(&origin), None, None, 50)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    // The same entries are a valid `since` batch (oldest first), but not after 8.
    let err = client
        .signatures_since(&fake_enrollment(&origin), None, 8, 50)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
    let batch = client
        .signatures_since(&fake_enrollment(&origin), None, 6, 50)
        .await
        .unwrap();
    assert_eq!(batch.watermark, 9);
}

#[tokio::test]
async fn a_foreign_grant_is_rejected_with_grant_unknown() {
    let origin = serve(Router::new().route(
        "/v1/phone/signatures",
        get(|| async { problem(ErrorCode::GrantUnknown, "no grant of yours has that id") }),
    ))
    .await;
    let client = Client::new(origin.clone()).unwrap();
    let err = client
        .signatures(
            &fake_enrollment(&origin),
            Some(uuid::Uuid::from_bytes([4; 16])),
            None,
            50,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Rejected {
                status: 404,
                code: ErrorCode::GrantUnknown,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_page_size_out_of_range_is_refused_before_any_request() {
    let (origin, state) = fake_server().await;
    let client = Client::new(origin.clone()).unwrap();
    let e = fake_enrollment(&origin);
    for limit in [0, 201] {
        let err = client.signatures(&e, None, None, limit).await.unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidInput(_)),
            "{limit}: {err:?}"
        );
        let err = client
            .signatures_since(&e, None, 0, limit)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::InvalidInput(_)),
            "{limit}: {err:?}"
        );
    }
    assert_eq!(state.requests.load(Ordering::SeqCst), 0);
}
