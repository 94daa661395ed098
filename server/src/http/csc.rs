//! `/csc/v2/*`: Cloud Signature Consortium API v2 shaped signing, with the
//! grant as Bearer token and the terminal's own credentials beside it.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, header};
use axum::routing::post;
use axum::{Json, Router};

use super::{ApiJson, ApiResult, HttpState, SIGN_HASH_BODY_LIMIT, basic, bearer};
use crate::service::Error;
use shomei_core::api::Problem;
use crate::service::signature::{CredentialInfo, CredentialInfoRequest, CredentialList, SignHashRequest, SignHashResponse, SigningCall};
use crate::service::signed_document::{SignDocRequest, SignDocResponse};
use crate::store::{Grant, Terminal};

/// Header carrying the terminal's Basic credentials next to the grant.
pub const TERMINAL_AUTH_HEADER: &str = "shomei-terminal-authorization";

/// CSC `info` response (CSC API v2.0.0.2 §11.1): what this server really
/// does, so a generic CSC client configures itself from it.
/// `server/tests/server/csc_info.rs` calls every method, algorithm and
/// format listed here and fails if the server refuses one.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CscInfo {
    /// `2.0.0.2`.
    #[schema(value_type = String)]
    pub specs: &'static str,
    #[schema(value_type = String)]
    pub name: &'static str,
    /// A `data:` URI (SVG): the logo needs no extra request and no route.
    pub logo: String,
    /// ISO 3166-1 alpha-2.
    #[schema(value_type = String)]
    pub region: &'static str,
    /// BCP 47 language of `description`.
    #[schema(value_type = String)]
    pub lang: &'static str,
    #[schema(value_type = String)]
    pub description: &'static str,
    /// `["external"]`: the service is authorized by an OAuth 2.0 access
    /// token the terminal obtains with the RFC 8628 device grant (approved on
    /// the practitioner's phone), a flow CSC's `oauth2code`/`oauth2client`
    /// do not describe; `oauth2Issuer` names the authorization server.
    #[schema(value_type = Vec<String>)]
    pub auth_type: &'static [&'static str],
    /// The RFC 8414 issuer; its metadata is at
    /// `/.well-known/oauth-authorization-server`.
    pub oauth2_issuer: String,
    /// `false`: every method answers synchronously.
    pub asynchronous_operation_mode: bool,
    /// The CSC methods this server implements, under `/csc/v2/`.
    #[schema(value_type = Vec<String>)]
    pub methods: &'static [&'static str],
    /// `false`: signDoc returns no `validationInfo`.
    pub validation_info: bool,
    pub sign_algorithms: SignAlgorithms,
    /// signDoc formats; `envelope_properties[i]` belongs to `formats[i]`.
    #[serde(rename = "signature_formats")]
    pub signature_formats: SignatureFormats,
    /// signDoc `conformance_level`s (no time-stamping authority: B-B only).
    #[serde(rename = "conformance_levels")]
    #[schema(value_type = Vec<String>)]
    pub conformance_levels: &'static [&'static str],
}

/// CSC `info.signAlgorithms`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SignAlgorithms {
    /// `signAlgo` OIDs accepted by signHash and signDoc (each also needs a
    /// credential whose key it fits; `credentials/info` lists a key's own).
    #[schema(value_type = Vec<String>)]
    pub algos: &'static [&'static str],
}

/// CSC `info.signature_formats`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SignatureFormats {
    /// `C` (CAdES/CMS detached) and `X` (XAdES, e-prescription profile).
    #[schema(value_type = Vec<String>)]
    pub formats: &'static [&'static str],
    #[schema(value_type = Vec<Vec<String>>)]
    pub envelope_properties: &'static [&'static [&'static str]],
}

/// The implemented CSC methods; kept beside [`routes`] so the two change together.
pub const METHODS: &[&str] = &[
    "info",
    "credentials/list",
    "credentials/info",
    "signatures/signHash",
    "signatures/signDoc",
];

/// Shomei's mark: 証 (proof) on the service's blue.
const LOGO_SVG: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 64 64'><rect width='64' height='64' rx='12' fill='#1f4e79'/><text x='32' y='44' font-size='34' text-anchor='middle' fill='#fff' font-family='sans-serif'>\u{8a3c}</text></svg>";

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

/// [`auth`] for a signing call, with the credential it names read in the
/// same store statement (signHash and signDoc pay this on every call).
async fn signing_auth(s: &HttpState, headers: &HeaderMap, credential_id: &str) -> ApiResult<SigningCall> {
    let (id, secret) = basic(headers, TERMINAL_AUTH_HEADER).ok_or(Error::TerminalUnauthenticated)?;
    let Some(token) = bearer(headers, header::AUTHORIZATION) else {
        // Without a token, the terminal's credentials are still checked first.
        s.terminal_from(headers, TERMINAL_AUTH_HEADER).await?;
        return Err(Error::GrantInvalid.into());
    };
    Ok(s.app.authorize_signing(&id, &secret, &token, credential_id).await?)
}

#[utoipa::path(
    post,
    path = "/csc/v2/info",
    tag = "csc",
    responses((status = 200, description = "CSC service information (no authentication; any body is ignored)", body = CscInfo))
)]
pub(super) async fn info(State(s): State<HttpState>) -> Json<CscInfo> {
    use crate::signing::oid;
    use base64::Engine as _;
    Json(CscInfo {
        specs: "2.0.0.2",
        name: "Shomei",
        logo: format!(
            "data:image/svg+xml;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(LOGO_SVG)
        ),
        region: "JP",
        lang: "ja-JP",
        description: "Remote signing unlocked daily by smartphone biometrics",
        auth_type: &["external"],
        oauth2_issuer: s.app.origin.as_str().to_owned(),
        asynchronous_operation_mode: false,
        methods: METHODS,
        validation_info: false,
        sign_algorithms: SignAlgorithms {
            algos: &[oid::SHA256_WITH_RSA, oid::RSA_ENCRYPTION, oid::ECDSA_WITH_SHA256],
        },
        signature_formats: SignatureFormats {
            formats: &["C", "X"],
            envelope_properties: &[&["Detached"], &["Detached"]],
        },
        conformance_levels: &["Ades-B-B"],
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
    let call = signing_auth(&s, &headers, &req.credential_id).await?;
    Ok(Json(s.app.csc_sign_hash(call, req).await?))
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
    let call = signing_auth(&s, &headers, &req.credential_id).await?;
    Ok(Json(s.app.csc_sign_doc(call, req).await?))
}
