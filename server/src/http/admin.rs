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

use super::{ApiError, ApiJson, ApiResult, HttpState, bearer, no_store};
use crate::service::Error;
use crate::service::admin::{CredentialSource, CredentialView, DeviceView, FacilityView, GrantView, PractitionerView, TerminalView};
use crate::audit::checkpoint::Checkpoint;
use crate::service::audit::{AuditKeyView, AuditReport};
use crate::service::enrollment::EnrollmentCode;
use crate::service::evidence::EvidenceBundle;
use crate::signing::{KeyAlgorithm, import_pem, import_pkcs12};

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

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

async fn create_facility(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<NameBody>) -> ApiResult<(StatusCode, Json<FacilityView>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.create_facility(&b.name).await?)))
}

async fn list_facilities(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<FacilityView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_facilities().await?))
}

#[derive(Deserialize)]
struct TerminalBody {
    facility_id: String,
    name: String,
}

async fn create_terminal(
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

async fn list_terminals(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<TerminalView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_terminals().await?))
}

async fn revoke_terminal(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<TerminalView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_terminal(&id).await?))
}

#[derive(Deserialize)]
struct PractitionerBody {
    display_name: String,
    role: String,
    facility_ids: Vec<String>,
}

async fn create_practitioner(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<PractitionerBody>) -> ApiResult<(StatusCode, Json<PractitionerView>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.create_practitioner(&b.display_name, &b.role, &b.facility_ids).await?)))
}

async fn list_practitioners(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<Vec<PractitionerView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_practitioners().await?))
}

#[derive(Deserialize)]
struct PractitionerFilter {
    practitioner_id: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
struct GenerateBody {
    practitioner_id: String,
    #[serde(default)]
    algorithm: Option<String>,
}

async fn generate_credential(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<GenerateBody>) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    operator(&s, &h)?;
    let alg = KeyAlgorithm::parse(b.algorithm.as_deref().unwrap_or("rsa2048")).map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(s.app.create_credential(&b.practitioner_id, CredentialSource::Generate(alg)).await?)))
}

#[derive(Deserialize)]
struct ImportBody {
    practitioner_id: String,
    key_pem: Option<String>,
    cert_pem: Option<String>,
    /// Standard base64 of the PKCS#12 file.
    pkcs12: Option<String>,
    password: Option<String>,
}

async fn import_credential(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<ImportBody>) -> ApiResult<(StatusCode, Json<CredentialView>)> {
    operator(&s, &h)?;
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

async fn list_credentials(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<CredentialView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_credentials(q.practitioner_id.as_deref()).await?))
}

#[derive(Deserialize)]
struct RevokeBody {
    #[serde(default)]
    reason: Option<String>,
}

async fn revoke_credential(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>, ApiJson(b): ApiJson<RevokeBody>) -> ApiResult<Json<CredentialView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_credential(&id, b.reason.as_deref()).await?))
}

#[derive(Deserialize)]
struct EnrollmentBody {
    practitioner_id: String,
    ttl: Option<i64>,
}

async fn create_enrollment(
    State(s): State<HttpState>,
    h: HeaderMap,
    ApiJson(b): ApiJson<EnrollmentBody>,
) -> ApiResult<Response> {
    operator(&s, &h)?;
    // Carries the activation password and the QR secret.
    let code: EnrollmentCode = s.app.create_enrollment(&b.practitioner_id, b.ttl).await?;
    Ok(no_store((StatusCode::CREATED, Json(code)).into_response()))
}

async fn list_devices(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<DeviceView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_devices(q.practitioner_id.as_deref()).await?))
}

async fn revoke_device(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<DeviceView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_device(&id).await?))
}

async fn list_grants(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<PractitionerFilter>) -> ApiResult<Json<Vec<GrantView>>> {
    operator(&s, &h)?;
    Ok(Json(s.app.list_grants(q.practitioner_id.as_deref(), q.active.unwrap_or(false)).await?))
}

async fn revoke_grant(State(s): State<HttpState>, h: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<GrantView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.revoke_grant(&id).await?))
}

async fn audit_verify(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<AuditReport>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_verify().await?))
}

#[derive(Deserialize)]
struct VerifyBody {
    #[serde(default)]
    checkpoints: Vec<Checkpoint>,
    /// Trust this audit key (SubjectPublicKeyInfo PEM) instead of the server's own.
    public_key_pem: Option<String>,
}

async fn audit_verify_checkpoints(State(s): State<HttpState>, h: HeaderMap, ApiJson(b): ApiJson<VerifyBody>) -> ApiResult<Json<AuditReport>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_verify_with(&b.checkpoints, b.public_key_pem.as_deref()).await?))
}

async fn audit_checkpoint(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<(StatusCode, Json<Checkpoint>)> {
    operator(&s, &h)?;
    Ok((StatusCode::CREATED, Json(s.app.audit_checkpoint().await?)))
}

async fn audit_key(State(s): State<HttpState>, h: HeaderMap) -> ApiResult<Json<AuditKeyView>> {
    operator(&s, &h)?;
    Ok(Json(s.app.audit_key_view().await?))
}

#[derive(Deserialize)]
struct ExportQuery {
    after_seq: Option<i64>,
}

async fn audit_export(State(s): State<HttpState>, h: HeaderMap, Query(q): Query<ExportQuery>) -> ApiResult<Response> {
    operator(&s, &h)?;
    let body = s.app.audit_export(q.after_seq.unwrap_or(0)).await?;
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

async fn evidence(State(s): State<HttpState>, h: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Json<EvidenceBundle>> {
    operator(&s, &h)?;
    Ok(Json(s.app.evidence_bundle(&login_id).await?))
}
