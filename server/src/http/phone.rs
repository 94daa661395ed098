//! `/v1/phone/*`: enrollment, login context and decision, own grants.
//! Enrollment attempts are budgeted per client address, authenticated
//! calls per device (`rate_limited` beyond).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shomei_core::api::{DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse, GrantList, LoginContext, LoginContextRequest};

use super::{ApiJson, ApiResult, HttpState, bearer, no_store};
use crate::service::Error;
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

async fn enroll(
    State(s): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> ApiResult<Response> {
    s.app.limits.enrollment(peer.ip())?;
    let r: EnrollResponse = s.app.enroll(&req).await?;
    // Carries the device token.
    Ok(no_store((StatusCode::CREATED, Json(r)).into_response()))
}

async fn context(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, ApiJson(req): ApiJson<LoginContextRequest>) -> ApiResult<Json<LoginContext>> {
    let d = device(&s, &headers).await?;
    Ok(Json(s.app.login_context(&d, &login_id, &req.secret).await?))
}

async fn decision(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, ApiJson(req): ApiJson<DecisionRequest>) -> ApiResult<Json<DecisionResponse>> {
    let d = device(&s, &headers).await?;
    Ok(Json(s.app.decide(&d, &login_id, &req).await?))
}

async fn grants(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<GrantList>> {
    let d = device(&s, &headers).await?;
    Ok(Json(GrantList { grants: s.app.phone_grants(&d).await? }))
}

async fn end_one(State(s): State<HttpState>, headers: HeaderMap, Path(grant_id): Path<String>) -> ApiResult<StatusCode> {
    let d = device(&s, &headers).await?;
    s.app.phone_end_grant(&d, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn end_all(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<EndAllResponse>> {
    let d = device(&s, &headers).await?;
    Ok(Json(EndAllResponse { ended: s.app.phone_end_all(&d).await? }))
}
