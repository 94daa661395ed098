//! `/v1/phone/*`: enrollment, login context and decision, own grants.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use shomei_core::api::{DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse, GrantList, LoginContext, LoginContextRequest};

use super::{ApiJson, ApiResult, HttpState, bearer};
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

async fn device(s: &HttpState, headers: &HeaderMap) -> ApiResult<Device> {
    let token = bearer(headers, header::AUTHORIZATION).ok_or(Error::DeviceUnknown)?;
    Ok(s.app.device_by_token(&token).await?)
}

async fn enroll(State(s): State<HttpState>, ApiJson(req): ApiJson<EnrollRequest>) -> ApiResult<(StatusCode, Json<EnrollResponse>)> {
    Ok((StatusCode::CREATED, Json(s.app.enroll(&req).await?)))
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
