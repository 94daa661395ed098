//! The HTTP face of the services (axum): exactly the routes of
//! docs/api.md, problem+json errors from one error type, body limits and
//! timeouts. Handlers parse, authenticate and call a service; no SQL here.

mod admin;
mod csc;
mod demo;
mod openapi;
mod phone;
mod terminal;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use shomei_core::api::{PROBLEM_CONTENT_TYPE, Problem};
use zeroize::Zeroizing;

use crate::service::{App, Error};
use crate::store::Terminal;

/// Default request body limit.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Body limit of signHash (batches of hashes).
pub const SIGN_HASH_BODY_LIMIT: usize = 1024 * 1024;
/// Requests other than the waiting ones must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the demo page may use (only with `--demo`).
#[derive(Clone, Default)]
pub struct DemoTerminal {
    pub client_id: String,
    pub client_secret: Option<String>,
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<App>,
    pub operator_token: Arc<Zeroizing<String>>,
    pub demo: Option<DemoTerminal>,
}

/// The error every handler returns: renders RFC 9457 problem+json.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.0.code();
        if code == shomei_core::api::ErrorCode::Internal {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(code = %code, "request refused");
        }
        problem_response(Problem::new(code, self.0.public_detail()))
    }
}

pub(crate) fn problem_response(p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = (status, Json(p)).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    r
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// `Json` whose rejections are problem documents (413 for oversized bodies).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(ApiError(json_rejection(r))),
        }
    }
}

fn json_rejection(r: JsonRejection) -> Error {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::BodyTooLarge { limit: BODY_LIMIT }
    } else {
        Error::BadRequest(r.body_text())
    }
}

pub(crate) fn form_rejection(r: FormRejection) -> Error {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::BodyTooLarge { limit: BODY_LIMIT }
    } else {
        Error::BadRequest(r.body_text())
    }
}

pub(crate) fn bearer(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim().to_owned())
}

pub(crate) fn basic(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    let v = headers.get(name)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

impl HttpState {
    /// Terminal from `header` (`Authorization` or `Shomei-Terminal-Authorization`).
    pub(crate) async fn terminal_from(&self, headers: &HeaderMap, header: &str) -> ApiResult<Terminal> {
        let (id, secret) = basic(headers, header).ok_or(Error::TerminalUnauthenticated)?;
        Ok(self.app.authenticate_terminal(&id, &secret).await?)
    }
}

async fn healthz(axum::extract::State(s): axum::extract::State<HttpState>) -> ApiResult<Json<serde_json::Value>> {
    s.app.store.ping().await.map_err(|_| Error::Internal("store unavailable".into()))?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such endpoint".into()))
}

/// The whole HTTP service.
pub fn router(state: HttpState) -> Router {
    let bounded = Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi::openapi))
        .merge(phone::routes())
        .merge(terminal::routes())
        .merge(csc::routes())
        .merge(admin::routes())
        .merge(demo::routes())
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, REQUEST_TIMEOUT));
    Router::new()
        // The waiting endpoints are long by design and have their own bounds.
        .merge(terminal::waiting_routes())
        .merge(bounded)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
