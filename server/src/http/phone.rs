//! `/v1/phone/*`: enrollment, login context and decision, own grants.
//! Enrollment attempts are budgeted per client address, authenticated
//! calls per device (`rate_limited` beyond).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shomei_core::api::{Problem, DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse, GrantList, LoginContext, LoginContextRequest};

use super::{ApiJson, ApiResult, HttpState, bearer, no_store};
use crate::service::Error;
use shomei_core::ids::LoginId;
use crate::store::Device;

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/phone/enroll", post(enroll))
        .route("/v1/phone/logins/{login_id}/context", post(context))
        .route("/v1/phone/logins/{login_id}/decision", post(decision))
        .route("/v1/phone/grants", get(grants).delete(end_all))
        .route("/v1/phone/grants/{grant_id}", delete(end_one))
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
