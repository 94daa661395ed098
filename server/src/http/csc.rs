//! `/csc/v2/*`: Cloud Signature Consortium API v2 shaped signing, with the
//! grant as Bearer token and the terminal's own credentials beside it.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};

use super::{ApiJson, ApiResult, HttpState, SIGN_HASH_BODY_LIMIT, bearer};
use crate::service::Error;
use shomei_core::api::Problem;
use crate::service::signature::{CredentialInfo, CredentialInfoRequest, CredentialList, SignHashRequest, SignHashResponse};
use crate::service::signed_document::{SignDocRequest, SignDocResponse};
use crate::store::{Grant, Terminal};

/// Header carrying the terminal's Basic credentials next to the grant.
pub const TERMINAL_AUTH_HEADER: &str = "shomei-terminal-authorization";

/// CSC `info` response.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CscInfo {
    #[schema(value_type = String)]
    pub specs: &'static str,
    #[schema(value_type = String)]
    pub name: &'static str,
    #[schema(value_type = String)]
    pub logo: &'static str,
    #[schema(value_type = String)]
    pub region: &'static str,
    #[schema(value_type = String)]
    pub lang: &'static str,
    #[schema(value_type = String)]
    pub description: &'static str,
    /// `["oauth2code"]`: an OAuth 2.0 access token (from the RFC 8628 device grant) authorizes the service.
    #[schema(value_type = Vec<String>)]
    pub auth_type: &'static [&'static str],
    #[schema(value_type = Vec<String>)]
    pub methods: &'static [&'static str],
}

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

#[utoipa::path(
    post,
    path = "/csc/v2/info",
    tag = "csc",
    responses((status = 200, description = "CSC service information (no authentication; any body is ignored)", body = CscInfo))
)]
pub(super) async fn info() -> Json<CscInfo> {
    Json(CscInfo {
        specs: "2.0.0.2",
        name: "Shomei",
        logo: "",
        region: "JP",
        lang: "ja-JP",
        description: "Remote signing unlocked daily by smartphone biometrics",
        auth_type: &["oauth2code"],
        methods: &["credentials/list", "credentials/info", "signatures/signHash", "signatures/signDoc"],
    })
}

#[utoipa::path(
    post,
    path = "/csc/v2/credentials/list",
    tag = "csc",
    security(("grant" = [], "terminal_header" = [])),
    responses(
        (status = 200, description = "The grant's practitioner's credentials (the body, `{}` in CSC, is ignored)", body = CredentialList),
        (status = 403, description = "`grant_terminal_mismatch`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Json<CredentialList>> {
    let (g, _) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_credentials(&g).await?))
}

#[utoipa::path(
    post,
    path = "/csc/v2/credentials/info",
    tag = "csc",
    request_body = CredentialInfoRequest,
    security(("grant" = [], "terminal_header" = [])),
    responses(
        (status = 200, description = "Key and certificate of one credential", body = CredentialInfo),
        (status = 403, description = "`grant_terminal_mismatch`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`credential_unknown` (also another practitioner's credential)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn cred_info(State(s): State<HttpState>, headers: HeaderMap, ApiJson(req): ApiJson<CredentialInfoRequest>) -> ApiResult<Json<CredentialInfo>> {
    let (g, _) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_credential_info(&g, &req).await?))
}

#[utoipa::path(
    post,
    path = "/csc/v2/signatures/signHash",
    tag = "csc",
    request_body = SignHashRequest,
    security(("grant" = [], "terminal_header" = [])),
    responses(
        (status = 200, description = "One signature per hash, in request order (standard base64)", body = SignHashResponse),
        (status = 400, description = "`hash_invalid`, `algorithm_unsupported` or `bad_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`grant_terminal_mismatch`, `grant_exhausted`, `credential_revoked`, `certificate_expired` or `certificate_not_yet_valid`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`credential_unknown`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn sign_hash(
    State(s): State<HttpState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SignHashRequest, SIGN_HASH_BODY_LIMIT>,
) -> ApiResult<Json<SignHashResponse>> {
    let (g, t) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_sign_hash(&g, &t, req).await?))
}

#[utoipa::path(
    post,
    path = "/csc/v2/signatures/signDoc",
    tag = "csc",
    request_body = SignDocRequest,
    security(("grant" = [], "terminal_header" = [])),
    responses(
        (status = 200, description = "One XAdES (X) or CMS (C) signature object per hash, in request order", body = SignDocResponse),
        (status = 400, description = "`format_unsupported`, `hash_invalid`, `algorithm_unsupported` or `bad_request`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`grant_terminal_mismatch`, `grant_exhausted`, `credential_revoked`, `certificate_expired` or `certificate_not_yet_valid`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`credential_unknown`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn sign_doc(State(s): State<HttpState>, headers: HeaderMap, ApiJson(req): ApiJson<SignDocRequest>) -> ApiResult<Json<SignDocResponse>> {
    let (g, t) = auth(&s, &headers).await?;
    Ok(Json(s.app.csc_sign_doc(&g, &t, req).await?))
}
