//! `/csc/v2/*`: Cloud Signature Consortium API v2 shaped signing, with the
//! grant as Bearer token and the terminal's own credentials beside it.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};

use super::{ApiJson, ApiResult, HttpState, SIGN_HASH_BODY_LIMIT, bearer};
use crate::service::Error;
use crate::service::signature::{CredentialInfoRequest, CredentialList, SignHashRequest, SignHashResponse};
use crate::service::signed_document::{SignDocRequest, SignDocResponse};
use crate::store::{Grant, Terminal};

/// Header carrying the terminal's Basic credentials next to the grant.
pub const TERMINAL_AUTH_HEADER: &str = "shomei-terminal-authorization";

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/csc/v2/info", post(info))
        .route("/csc/v2/credentials/list", post(list))
        .route("/csc/v2/credentials/info", post(cred_info))
        .route("/csc/v2/signatures/signHash", post(sign_hash).layer(DefaultBodyLimit::max(SIGN_HASH_BODY_LIMIT)))
        .route("/csc/v2/signatures/signDoc", post(sign_doc))
}

async fn auth(s: &HttpState, headers: &HeaderMap) -> ApiResult<(Grant, Terminal)> {
    let terminal = s.terminal_from(headers, TERMINAL_AUTH_HEADER).await?;
    let token = bearer(headers, header::AUTHORIZATION).ok_or(Error::GrantInvalid)?;
    let grant = s.app.authorize_grant(&token, &terminal).await?;
    Ok((grant, terminal))
}

async fn info() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "specs": "2.0.0.2",
        "name": "Shomei",
        "logo": "",
        "region": "JP",
        "lang": "ja-JP",
        "description": "Remote signing unlocked daily by smartphone biometrics",
        "authType": ["oauth2code"],
        "methods": ["credentials/list", "credentials/info", "signatures/signHash", "signatures/signDoc"],
    }))
}

async fn list(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<CredentialList>> {
    let (g, _) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_credentials(&g).await?))
}

async fn cred_info(State(s): State<HttpState>, headers: HeaderMap, ApiJson(req): ApiJson<CredentialInfoRequest>) -> ApiResult<Json<serde_json::Value>> {
    let (g, _) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_credential_info(&g, &req).await?))
}

async fn sign_hash(
    State(s): State<HttpState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SignHashRequest, SIGN_HASH_BODY_LIMIT>,
) -> ApiResult<Json<SignHashResponse>> {
    let (g, t) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_sign_hash(&g, &t, req).await?))
}

async fn sign_doc(State(s): State<HttpState>, headers: HeaderMap, ApiJson(req): ApiJson<SignDocRequest>) -> ApiResult<Json<SignDocResponse>> {
    let (g, t) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_sign_doc(&g, &t, req).await?))
}
