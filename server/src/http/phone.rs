//! `/v1/phone/*`: enrollment, login context and decision, own grants,
//! the signing log (paged, polled with `since`, or followed over SSE).
//! Enrollment attempts are budgeted per client address, authenticated
//! calls per device (`rate_limited` beyond).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shomei_core::api::{DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse, GrantList, LoginByCode, LoginByCodeRequest, LoginContext, LoginContextRequest, Problem, SignatureList};

use super::openapi::SignatureEventStream;
use super::{ApiJson, ApiResult, HttpState, bearer, no_store};
use crate::service::Error;
use crate::service::signing_log::SignatureQuery;
use shomei_core::ids::LoginId;
use crate::store::Device;

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/phone/enroll", post(enroll))
        .route("/v1/phone/logins/by-code", post(by_code))
        .route("/v1/phone/logins/{login_id}/context", post(context))
        .route("/v1/phone/logins/{login_id}/decision", post(decision))
        .route("/v1/phone/grants", get(grants).delete(end_all))
        .route("/v1/phone/grants/{grant_id}", delete(end_one))
        .route("/v1/phone/signatures", get(signatures))
}

/// How long one signing-log SSE stream lasts before the server ends it
/// (`event: end`); the phone reconnects with `Last-Event-ID`. Bounds what
/// a forgotten connection holds, and re-authenticates the phone regularly.
pub const FOLLOW_STREAM_MAX: Duration = Duration::from_secs(600);
/// SSE keep-alive comment interval (below common proxy idle timeouts).
pub const FOLLOW_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The long-lived phone routes (outside the request timeout).
pub(super) fn waiting_routes() -> Router<HttpState> {
    Router::new().route("/v1/phone/signatures/events", get(signature_events))
}

/// The calling phone: no `Authorization: Bearer` at all is `unauthorized`
/// (protocol.md §4.5), a token that names no device `device_unknown`.
async fn device(s: &HttpState, headers: &HeaderMap) -> ApiResult<Device> {
    let token = bearer(headers, header::AUTHORIZATION).ok_or(Error::Unauthorized)?;
    let d = s.app.device_by_token(&token).await?;
    s.app.limits.phone(&d.id)?;
    Ok(d)
}

#[utoipa::path(
    post,
    path = "/v1/phone/enroll",
    tag = "phone",
    request_body = EnrollRequest,
    responses(
        (status = 201, description = "Enrolled; carries the device token (`Cache-Control: no-store`)", body = EnrollResponse),
        (status = 400, description = "`enrollment_invalid`, `proof_invalid` or `bad_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`activation_password_wrong`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`attestation_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`enrollment_used`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`enrollment_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 423, description = "`enrollment_locked` (the 5th wrong password already locks)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (enrollment attempts per client address; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn enroll(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<Response> {
    s.app.limits.enrollment(peer.ip())?;
    let r: EnrollResponse = s.app.enroll(&req).await?;
    // Carries the device token.
    Ok(no_store((StatusCode::CREATED, Json(r)).into_response()))
}

#[utoipa::path(
    post,
    path = "/v1/phone/logins/{login_id}/context",
    tag = "phone",
    params(("login_id" = LoginId, Path, description = "From the login QR")),
    request_body = LoginContextRequest,
    security(("device_token" = [])),
    responses(
        (status = 200, description = "What the phone shows before the biometric prompt", body = LoginContext),
        (status = 403, description = "`device_revoked` or `login_secret_wrong`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`login_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`login_already_decided`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`login_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn context(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, ApiJson(req): ApiJson<LoginContextRequest>) -> ApiResult<Json<LoginContext>> {
    let d = device(&s, &headers).await?;
    Ok(Json(s.app.login_context(&d, &login_id, &req.secret).await?))
}

#[utoipa::path(
    post,
    path = "/v1/phone/logins/by-code",
    tag = "phone",
    request_body = LoginByCodeRequest,
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The login the typed code names: its QR payload and context (`Cache-Control: no-store`; docs/protocol.md §4.6)", body = LoginByCode),
        (status = 400, description = "`user_code_invalid` (not eight letters of the code alphabet; nothing looked up) or `bad_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`device_revoked` or `practitioner_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`login_unknown`: no login has this code", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`login_already_decided`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`login_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (failed code lookups per device, per practitioner or on the server, or calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn by_code(State(s): State<HttpState>, headers: HeaderMap, ApiJson(req): ApiJson<LoginByCodeRequest>) -> ApiResult<Response> {
    let d = device(&s, &headers).await?;
    let found = s.app.login_by_code(&d, &req.user_code).await?;
    // Carries the login's one-time secret (inside the payload URL).
    Ok(no_store(Json(found).into_response()))
}

#[utoipa::path(
    post,
    path = "/v1/phone/logins/{login_id}/decision",
    tag = "phone",
    params(("login_id" = LoginId, Path, description = "From the login QR")),
    request_body = DecisionRequest,
    security(("device_token" = [])),
    responses(
        (status = 200, description = "Approved (with the grant) or denied; a wrong number ends the login as denied", body = DecisionResponse),
        (status = 400, description = "`signature_invalid` or `bad_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`device_revoked`, `number_mismatch` or `practitioner_not_allowed`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`login_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`login_already_decided`", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`login_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn decision(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, ApiJson(req): ApiJson<DecisionRequest>) -> ApiResult<Json<DecisionResponse>> {
    let d = device(&s, &headers).await?;
    Ok(Json(s.app.decide(&d, &login_id, &req).await?))
}

#[utoipa::path(
    get,
    path = "/v1/phone/grants",
    tag = "phone",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "Active grants of the device's practitioner", body = GrantList),
        (status = 403, description = "`device_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn grants(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<GrantList>> {
    let d = device(&s, &headers).await?;
    Ok(Json(GrantList { grants: s.app.phone_grants(&d).await? }))
}

#[utoipa::path(
    delete,
    path = "/v1/phone/grants/{grant_id}",
    tag = "phone",
    params(("grant_id" = String, Path, description = "Grant id (UUID)")),
    security(("device_token" = [])),
    responses(
        (status = 204, description = "The grant ended"),
        (status = 403, description = "`device_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such active grant of this practitioner", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn end_one(State(s): State<HttpState>, headers: HeaderMap, Path(grant_id): Path<String>) -> ApiResult<StatusCode> {
    let d = device(&s, &headers).await?;
    s.app.phone_end_grant(&d, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/v1/phone/grants",
    tag = "phone",
    security(("device_token" = [])),
    responses(
        (status = 200, description = "How many grants ended", body = EndAllResponse),
        (status = 403, description = "`device_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn end_all(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<EndAllResponse>> {
    let d = device(&s, &headers).await?;
    Ok(Json(EndAllResponse { ended: s.app.phone_end_all(&d).await? }))
}

#[utoipa::path(
    get,
    path = "/v1/phone/signatures",
    tag = "phone",
    params(SignatureQuery),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "The practitioner's signing log: a page newest first, or with `since` the signatures recorded after it, oldest first (`Cache-Control: no-store`; docs/protocol.md §9)", body = SignatureList),
        (status = 400, description = "`cursor_invalid` (cursor or since malformed, foreign or beyond the log; both given) or `bad_request` (limit, from)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`device_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`grant_unknown`: no grant of this practitioner has that id", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn signatures(State(s): State<HttpState>, headers: HeaderMap, Query(q): Query<SignatureQuery>) -> ApiResult<Response> {
    let d = device(&s, &headers).await?;
    let list: SignatureList = s.app.phone_signatures(&d, &q).await?;
    // What was signed in the practitioner's name: no cache keeps it.
    Ok(no_store(Json(list).into_response()))
}

/// One SSE step: the events to send.
type Step = Vec<Result<Event, Infallible>>;

#[utoipa::path(
    get,
    path = "/v1/phone/signatures/events",
    tag = "phone",
    params(
        ("grant" = Option<String>, Query, description = "Only this grant's signatures"),
        ("since" = Option<String>, Query, description = "Start after this seq (default: now); `Last-Event-ID` wins"),
        ("Last-Event-ID" = Option<String>, Header, description = "The last `seq` received, on reconnect"),
    ),
    security(("device_token" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: `ready` (id = starting seq), `signature` (id = seq, data = SignatureEntry), `end` (after 10 minutes: reconnect with Last-Event-ID), `error` (data = problem; the stream ends)", body = SignatureEventStream, content_type = "text/event-stream"),
        (status = 400, description = "`cursor_invalid` (since / Last-Event-ID)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`device_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`grant_unknown`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` (calls per device; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn signature_events(State(s): State<HttpState>, headers: HeaderMap, Query(q): Query<SignatureQuery>) -> ApiResult<Response> {
    let d = device(&s, &headers).await?;
    // Subscribe before the first read so that no commit slips between.
    let wake = s.app.signatures_recorded();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (grant, since) = s.app.follow_start(&d, &q, last.as_deref()).await?;
    let deadline = tokio::time::Instant::now() + FOLLOW_STREAM_MAX;
    let ready = Event::default()
        .event("ready")
        .id(since.to_string())
        .retry(Duration::from_secs(3))
        .data(serde_json::json!({ "watermark": since }).to_string());
    let app = s.app.clone();
    let state = (Some(ready), since, wake, false);
    let stream = futures::stream::unfold(state, move |(first, after, mut wake, done)| {
        let app = app.clone();
        let (device_id, practitioner_id, grant) = (d.id.clone(), d.practitioner_id.clone(), grant.clone());
        async move {
            if done {
                return None;
            }
            if let Some(ready) = first {
                let step: Step = vec![Ok(ready)];
                return Some((step, (None, after, wake, false)));
            }
            let next = app.next_signatures(&device_id, &practitioner_id, grant.as_deref(), after, &mut wake, deadline).await;
            let step: Step = match next {
                Ok(entries) if entries.is_empty() => {
                    let end = Event::default().event("end").data(r#"{"reason":"reconnect"}"#);
                    vec![Ok(end)]
                }
                Ok(entries) => {
                    let top = entries.last().map_or(after, |e| e.seq as i64);
                    let events = entries
                        .iter()
                        .map(|e| {
                            let data = serde_json::to_string(e).unwrap_or_default();
                            Ok(Event::default().event("signature").id(e.seq.to_string()).data(data))
                        })
                        .collect();
                    return Some((events, (None, top, wake, false)));
                }
                Err(e) => {
                    let p = Problem::new(e.code(), e.public_detail());
                    let ev = Event::default().event("error").data(serde_json::to_string(&p).unwrap_or_default());
                    vec![Ok(ev)]
                }
            };
            Some((step, (None, after, wake, true)))
        }
    });
    let stream = futures::StreamExt::flat_map(stream, futures::stream::iter);
    let sse = Sse::new(stream).keep_alive(KeepAlive::new().interval(FOLLOW_KEEP_ALIVE));
    Ok(no_store(sse.into_response()))
}
