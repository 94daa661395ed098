//! `/admin/v1/*`: the operator API behind the `shomei admin` CLI, served
//! only on the admin listener; Bearer operator token compared in constant
//! time. A layer checks the token before any handler runs, audits each
//! failure and rate-limits failures per client address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;

use super::openapi::AuditLines;
use super::{ApiError, ApiJson, ApiResult, HttpState, bearer, no_store};
use shomei_core::api::Problem;
use crate::service::Error;
use crate::service::admin::{CredentialSource, CredentialView, TerminalCreated, DeviceView, FacilityView, GrantView, PractitionerView, TerminalView};
use crate::audit::checkpoint::Checkpoint;
use crate::service::audit::{AuditKeyView, AuditReport};
use crate::service::enrollment::EnrollmentCode;
use crate::service::evidence::EvidenceBundle;
use crate::signing::{KeyAlgorithm, certificates_from_pem, import_pem, import_pkcs12};

pub(super) fn routes(state: HttpState) -> Router<HttpState> {
    Router::new()
        .route("/admin/v1/facilities", get(list_facilities).post(create_facility))
        .route("/admin/v1/terminals", get(list_terminals).post(create_terminal))
        .route("/admin/v1/terminals/{id}/revoke", post(revoke_terminal))
        .route("/admin/v1/practitioners", get(list_practitioners).post(create_practitioner))
        .route("/admin/v1/credentials", get(list_credentials).post(generate_credential))
        .route("/admin/v1/credentials/import", post(import_credential))
        .route("/admin/v1/credentials/{id}/revoke", post(revoke_credential))
        .route("/admin/v1/enrollments", post(create_enrollment))
        .route("/admin/v1/devices", get(list_devices))
        .route("/admin/v1/devices/{id}/revoke", post(revoke_device))
        .route("/admin/v1/grants", get(list_grants))
        .route("/admin/v1/grants/{id}/revoke", post(revoke_grant))
        .route("/admin/v1/audit/verify", get(audit_verify).post(audit_verify_checkpoints))
        .route("/admin/v1/audit/checkpoints", post(audit_checkpoint))
        .route("/admin/v1/audit/key", get(audit_key))
        .route("/admin/v1/audit/export", get(audit_export))
        .route("/admin/v1/evidence/{login_id}", get(evidence))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            require_operator,
        ))
}

/// Runs before every admin handler: a missing or wrong token is audited and
/// counted per client address (see [`crate::service::App::operator_auth_failed`]).
async fn require_operator(State(s): State<HttpState>, req: Request, next: Next) -> Response {
    if operator(&s, req.headers()).is_ok() {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let sent = req.headers().contains_key(header::AUTHORIZATION);
    match s
        .app
        .operator_auth_failed(peer, sent, req.uri().path())
        .await
    {
        Ok(()) => ApiError(Error::OperatorUnauthenticated).into_response(),
        Err(e) => ApiError(e).into_response(),
    }
}

/// Checks the operator token; every handler calls this first.
fn operator(s: &HttpState, headers: &HeaderMap) -> ApiResult<()> {
    let token = bearer(headers, header::AUTHORIZATION).ok_or(Error::OperatorUnauthenticated)?;
    let want = ring::digest::digest(&ring::digest::SHA256, s.operator_token.as_bytes());
    let got = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    // Hashing first makes the comparison length-independent.
    if crate::service::ct_eq(want.as_ref(), got.as_ref()) {
        Ok(())
    } else {
        Err(Error::OperatorUnauthenticated.into())
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct NameBody {
    /// 1..=200 printable characters (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/facilities",
    tag = "admin",
    request_body = NameBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "The new facility", body = FacilityView),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn create_facility(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<NameBody>) -> ApiResult<(StatusCode, Json<FacilityView>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.create_facility(&b.name).await?)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/facilities",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Every facility", body = Vec<FacilityView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_facilities(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<FacilityView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_facilities().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct TerminalBody {
    facility_id: String,
    /// 1..=200 printable characters (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

#[utoipa::path(
    post,
    path = "/admin/v1/terminals",
    tag = "admin",
    request_body = TerminalBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "The new terminal; `client_secret` is shown only here (`Cache-Control: no-store`)", body = TerminalCreated),
        (status = 404, description = "`not_found`: unknown facility", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn create_terminal(
    State(s): State<HttpState>,
    h: HeaderMap,
    ApiJson(b): ApiJson<TerminalBody>,
) -> ApiResult<Response> {
    operator(&s, &h)?;
    // Carries the client secret.
    Ok(no_store(
        (
            StatusCode::CREATED,
            Json(s.app.create_terminal(&b.facility_id, &b.name).await?),
        )
            .into_response(),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/v1/terminals",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Every terminal", body = Vec<TerminalView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_terminals(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<TerminalView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_terminals().await?))
}

#[utoipa::path(
    post,
    path = "/admin/v1/terminals/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "Terminal client id")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "The revoked terminal; its grants end", body = TerminalView),
        (status = 404, description = "`not_found`: unknown id, or already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn revoke_terminal(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<TerminalView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_terminal(&id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct PractitionerBody {
    /// 1..=200 printable characters (trimmed).
    #[schema(min_length = 1, max_length = 200)]
    display_name: String,
    #[schema(pattern = "^(doctor|dentist|pharmacist)$")]
    role: String,
    facility_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/practitioners",
    tag = "admin",
    request_body = PractitionerBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "The new practitioner", body = PractitionerView),
        (status = 404, description = "`not_found`: unknown facility", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn create_practitioner(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<PractitionerBody>) -> ApiResult<(StatusCode, Json<PractitionerView>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.create_practitioner(&b.display_name, &b.role, &b.facility_ids).await?)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/practitioners",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 200, description = "Every practitioner", body = Vec<PractitionerView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_practitioners(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<PractitionerView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_practitioners().await?))
}

#[derive(Deserialize)]
pub(super) struct PractitionerFilter {
    practitioner_id: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct GenerateBody {
    practitioner_id: String,
    /// Default `rsa2048`.
    #[schema(pattern = "^(rsa2048|ecdsa-p256)$")]
    #[serde(default)]
    algorithm: Option<String>,
    /// Where the key pair is generated: `pkcs11` (inside the configured
    /// HSM token, never exported) or `software` (sealed under the KEK).
    /// Default: `pkcs11` when the server has a `[pkcs11]` token, else `software`.
    #[schema(pattern = "^(software|pkcs11)$")]
    #[serde(default)]
    key_store: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/credentials",
    tag = "admin",
    request_body = GenerateBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "A credential whose certificate the development CA issued", body = CredentialView),
        (status = 404, description = "`not_found`: unknown practitioner", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn generate_credential(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<GenerateBody>) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    operator(&s, &h)?;
    let alg = KeyAlgorithm::parse(b.algorithm.as_deref().unwrap_or("rsa2048")).map_err(|e| Error::BadRequest(e.to_string()))?;
    let in_token = match b.key_store.as_deref() {
        None => s.app.backend.token().is_some(),
        Some("pkcs11") => true,
        Some("software") => false,
        Some(other) => return Err(Error::BadRequest(format!("key_store must be software or pkcs11, not {other:?}")).into()),
    };
    let source = if in_token { CredentialSource::GenerateInToken(alg) } else { CredentialSource::Generate(alg) };
    Ok((StatusCode::CREATED, Json(s.app.create_credential(&b.practitioner_id, source).await?)))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct ImportBody {
    practitioner_id: String,
    key_pem: Option<String>,
    cert_pem: Option<String>,
    /// Standard base64 of the PKCS#12 file.
    pkcs12: Option<String>,
    password: Option<String>,
    /// With `cert_pem` (no `key_pem`): the hex `CKA_ID` of a key pair already
    /// on the server's PKCS#11 token; the certificate must carry its public key.
    pkcs11_key_id: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/credentials/import",
    tag = "admin",
    request_body = ImportBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "The imported credential", body = CredentialView),
        (status = 403, description = "`certificate_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: unknown practitioner", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn import_credential(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<ImportBody>) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    operator(&s, &h)?;
    if let Some(id) = b.pkcs11_key_id {
        let (Some(cert_pem), None, None) = (b.cert_pem, b.key_pem, b.pkcs12) else {
            return Err(Error::BadRequest("pkcs11_key_id goes with cert_pem alone (the key stays on the token)".into()).into());
        };
        let key_id = hex::decode(id.trim()).ok().filter(|k| !k.is_empty()).ok_or_else(|| Error::BadRequest("pkcs11_key_id must be hex".into()))?;
        let certificate_chain = certificates_from_pem(&cert_pem)?;
        let source = CredentialSource::ImportForTokenKey { key_id, certificate_chain };
        return Ok((StatusCode::CREATED, Json(s.app.create_credential(&b.practitioner_id, source).await?)));
    }
    let new = match (b.key_pem, b.cert_pem, b.pkcs12) {
        (Some(k), Some(c), None) => import_pem(&k, &c)?,
        (None, None, Some(p)) => {
            let der = base64::engine::general_purpose::STANDARD.decode(p.trim()).map_err(|_| Error::BadRequest("pkcs12 must be standard base64".into()))?;
            import_pkcs12(&der, b.password.as_deref().unwrap_or(""))?
        }
        _ => return Err(Error::BadRequest("give key_pem + cert_pem, or pkcs12 (+ password)".into()).into()),
    };
    Ok((StatusCode::CREATED, Json(s.app.create_credential(&b.practitioner_id, CredentialSource::Import(new)).await?)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/credentials",
    tag = "admin",
    params(("practitioner_id" = Option<String>, Query, description = "Only this practitioner's")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "Credentials (status computed now)", body = Vec<CredentialView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_credentials(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<CredentialView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_credentials(q.practitioner_id.as_deref()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct RevokeBody {
    /// 1..=200 printable characters when given.
    #[schema(min_length = 1, max_length = 200)]
    #[serde(default)]
    reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/credentials/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "Credential id")),
    request_body = RevokeBody,
    security(("operator" = [])),
    responses(
        (status = 200, description = "The revoked credential (`status: revoked`)", body = CredentialView),
        (status = 404, description = "`not_found`: unknown id, or already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn revoke_credential(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>, ApiJson(b): ApiJson<RevokeBody>) -> ApiResult<Json<CredentialView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_credential(&id, b.reason.as_deref()).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct EnrollmentBody {
    practitioner_id: String,
    /// Seconds the code stays valid (default and upper bound: the policy's
    /// `enrollment_max_ttl_s`, at most 600).
    #[schema(minimum = 1, maximum = 600)]
    ttl: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/enrollments",
    tag = "admin",
    request_body = EnrollmentBody,
    security(("operator" = [])),
    responses(
        (status = 201, description = "A one-time enrollment code; the activation password is shown only here (`Cache-Control: no-store`)", body = EnrollmentCode),
        (status = 404, description = "`not_found`: unknown practitioner", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn create_enrollment(
    State(s): State<HttpState>,
    h: HeaderMap,
    ApiJson(b): ApiJson<EnrollmentBody>,
) -> ApiResult<Response> {
    operator(&s, &h)?;
    // Carries the activation password and the QR secret.
    let code: EnrollmentCode = s.app.create_enrollment(&b.practitioner_id, b.ttl).await?;
    Ok(no_store((StatusCode::CREATED, Json(code)).into_response()))
}

#[utoipa::path(
    get,
    path = "/admin/v1/devices",
    tag = "admin",
    params(("practitioner_id" = Option<String>, Query, description = "Only this practitioner's")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "Devices with what was verified at enrollment", body = Vec<DeviceView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_devices(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<DeviceView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_devices(q.practitioner_id.as_deref()).await?))
}

#[utoipa::path(
    post,
    path = "/admin/v1/devices/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "Device id")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "The revoked device; every grant it approved ends", body = DeviceView),
        (status = 404, description = "`not_found`: unknown id, or already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn revoke_device(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<DeviceView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_device(&id).await?))
}

#[utoipa::path(
    get,
    path = "/admin/v1/grants",
    tag = "admin",
    params(("practitioner_id" = Option<String>, Query, description = "Only this practitioner's"), ("active" = Option<bool>, Query, description = "Only grants usable now")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "Grants", body = Vec<GrantView>),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn list_grants(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<GrantView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_grants(q.practitioner_id.as_deref(), q.active.unwrap_or(false)).await?))
}

#[utoipa::path(
    post,
    path = "/admin/v1/grants/{id}/revoke",
    tag = "admin",
    params(("id" = String, Path, description = "Grant id")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "The revoked grant", body = GrantView),
        (status = 404, description = "`not_found`: unknown id, or already revoked", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn revoke_grant(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<GrantView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_grant(&id).await?))
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit/verify",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 200, description = "The chain and the signature-counter reconciliation", body = AuditReport),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit_verify(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<AuditReport>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_verify().await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct VerifyBody {
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
    /// Trust this audit key (SubjectPublicKeyInfo PEM) instead of the server's own.
    public_key_pem: Option<String>,
}

#[utoipa::path(
    post,
    path = "/admin/v1/audit/verify",
    tag = "admin",
    request_body = VerifyBody,
    security(("operator" = [])),
    responses(
        (status = 200, description = "As GET, plus one result per checkpoint", body = AuditReport),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit_verify_checkpoints(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<VerifyBody>) -> ApiResult<Json<AuditReport>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_verify_with(&b.checkpoints, b.public_key_pem.as_deref()).await?))
}

#[utoipa::path(
    post,
    path = "/admin/v1/audit/checkpoints",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 201, description = "A signed checkpoint of the current head, also appended to the checkpoint file", body = Checkpoint),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit_checkpoint(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<(StatusCode, Json<Checkpoint>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.audit_checkpoint().await?)))
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit/key",
    tag = "admin",
    security(("operator" = [])),
    responses(
        (status = 200, description = "The audit public key checkpoints verify against", body = AuditKeyView),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit_key(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<AuditKeyView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_key_view().await?))
}

#[derive(Deserialize)]
pub(super) struct ExportQuery {
    after_seq: Option<i64>,
}

#[utoipa::path(
    get,
    path = "/admin/v1/audit/export",
    tag = "admin",
    params(("after_seq" = Option<i64>, Query, description = "Only entries after this sequence number")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "One audit entry (JSON) per line", body = AuditLines, content_type = "application/x-ndjson"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn audit_export(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<ExportQuery>) -> ApiResult<Response> {
    operator(&s, &h)?;
    let body = s.app.audit_export(q.after_seq.unwrap_or(0)).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[utoipa::path(
    get,
    path = "/admin/v1/evidence/{login_id}",
    tag = "admin",
    params(("login_id" = String, Path, description = "Login id (b64u)")),
    security(("operator" = [])),
    responses(
        (status = 200, description = "Every file of the evidence bundle of a decided login", body = EvidenceBundle),
        (status = 404, description = "`not_found`: unknown or undecided login", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many failed operator authentications from this address (`Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn evidence(State(s): State<HttpState>, h: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Json<EvidenceBundle>> {
    operator(&s, &h)?;
    Ok(Json(s.app.evidence_bundle(&login_id).await?))
}
