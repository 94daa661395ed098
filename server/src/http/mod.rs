//! The HTTP face of the services (axum): exactly the routes of
//! docs/api.md, problem+json errors from one error type, body limits and
//! timeouts. Handlers parse, authenticate and call a service; no SQL here.
//!
//! Two routers: the public one (phone, terminal, CSC, `/demo` only with
//! `--demo`) and the operator one (`/admin/v1/*`) which `run` binds to its
//! own loopback listener. Every error either side sends — a service error
//! or a framework rejection (bad query string, wrong method, wrong
//! `Content-Type`, timeout) — leaves as one RFC 9457 problem document:
//! service errors through [`ApiError`], framework rejections through the
//! one [`problems_for_rejections`] layer. A 401 always names its challenge
//! (`WWW-Authenticate`), a 429 its `Retry-After`.

mod admin;
pub mod connection;
mod csc;
mod demo;
pub mod openapi;
mod phone;
mod terminal;
mod verification;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use shomei_core::api::{ErrorCode, PROBLEM_CONTENT_TYPE, Problem};
use zeroize::Zeroizing;

use crate::service::{App, Error};
use crate::store::Terminal;

/// Default request body limit.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Body limit of signHash (batches of hashes).
pub const SIGN_HASH_BODY_LIMIT: usize = 1024 * 1024;
/// Requests other than the waiting ones must finish within this.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared state of every handler.
#[derive(Clone)]
pub struct HttpState {
    pub app: Arc<App>,
    pub operator_token: Arc<Zeroizing<String>>,
    /// The demo page's server-side step (only with `--demo`).
    pub demo: Option<Arc<crate::demo::Demo>>,
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
        if code == ErrorCode::Internal {
            tracing::error!(error = %self.0, "request failed");
        } else {
            tracing::debug!(code = %code, "request refused");
        }
        let mut r = problem_response(Problem::new(code, self.0.public_detail()));
        if let Error::RateLimited { retry_after_s, .. } = &self.0 {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
        }
        r
    }
}

/// The `WWW-Authenticate` challenge of a 401 code (RFC 9110 §11.6.1: a 401
/// must carry one). Terminals use Basic; phones, grants and the operator
/// use Bearer tokens (RFC 6750 `error="invalid_token"` when one was sent).
fn challenge(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::TerminalUnauthenticated => "Basic realm=\"shomei\", charset=\"UTF-8\"",
        ErrorCode::GrantInvalid
        | ErrorCode::GrantExpired
        | ErrorCode::GrantRevoked
        | ErrorCode::DeviceUnknown => "Bearer realm=\"shomei\", error=\"invalid_token\"",
        ErrorCode::OperatorUnauthenticated => "Bearer realm=\"shomei-admin\"",
        ErrorCode::ActivationPasswordWrong => "Shomei-Activation realm=\"shomei\"",
        // `--demo` only: the demo page's session travels in an HttpOnly cookie.
        ErrorCode::DemoSessionUnknown => "Shomei-Demo-Session realm=\"shomei-demo\"",
        _ => "Bearer realm=\"shomei\"",
    }
}

pub(crate) fn problem_response(p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let code = p.code;
    let mut r = (status, Json(p)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge(code)),
        );
    }
    r
}

/// Marks responses that carry a secret (client secret, activation password,
/// device token, access token): no cache may keep them (RFC 9111 `no-store`;
/// `Pragma: no-cache` for HTTP/1.0 caches as RFC 6749 §5.1 asks).
pub(crate) fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The stable code of a bare framework rejection, by its status.
fn rejection_code(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE
        | StatusCode::REQUEST_TIMEOUT
        | StatusCode::GATEWAY_TIMEOUT => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    }
}

/// The one place framework rejections become problem documents: any error
/// response that is not already JSON (axum's text/plain `Query`/`Path`
/// rejections, the empty 405, the timeout's empty 503) is rewritten to
/// problem+json with the stable code of its status, keeping `Allow`.
pub(crate) async fn problems_for_rejections(r: Response) -> Response {
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with(PROBLEM_CONTENT_TYPE)
        });
    if is_json {
        return r;
    }
    let (parts, body) = r.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_owned(),
        Err(_) => String::new(),
    };
    let code = rejection_code(parts.status);
    let detail = match code {
        ErrorCode::MethodNotAllowed => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("method not allowed here (allowed: {allow})")
        }
        ErrorCode::Internal => "internal error (see server log)".to_owned(),
        _ if text.is_empty() => code.title().to_owned(),
        _ => text,
    };
    let mut out = problem_response(Problem::new(code, detail));
    if let Some(allow) = parts.headers.get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if let Some(ra) = parts.headers.get(header::RETRY_AFTER) {
        out.headers_mut().insert(header::RETRY_AFTER, ra.clone());
    }
    out
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// `Json` whose rejections are problem documents: 415 for a missing or
/// non-JSON `Content-Type`, 413 naming `LIMIT` (the body limit of the route
/// it is used on), else 400.
pub struct ApiJson<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned, const LIMIT: usize> FromRequest<S>
    for ApiJson<T, LIMIT>
{
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(r) => Err(ApiError(json_rejection(r, LIMIT))),
        }
    }
}

fn json_rejection(r: JsonRejection, limit: usize) -> Error {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge { limit },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::UnsupportedMediaType("expected Content-Type: application/json".into())
        }
        _ => Error::BadRequest(r.body_text()),
    }
}

pub(crate) fn form_rejection(r: FormRejection) -> Error {
    match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::BodyTooLarge { limit: BODY_LIMIT },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType(
            "expected Content-Type: application/x-www-form-urlencoded".into(),
        ),
        _ => Error::BadRequest(r.body_text()),
    }
}

pub(crate) fn bearer(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
}

pub(crate) fn basic(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    let v = headers.get(name)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (id, secret) = s.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

impl HttpState {
    /// Terminal from `header` (`Authorization` or `Shomei-Terminal-Authorization`).
    pub(crate) async fn terminal_from(
        &self,
        headers: &HeaderMap,
        header: &str,
    ) -> ApiResult<Terminal> {
        let (id, secret) = basic(headers, header).ok_or(Error::TerminalUnauthenticated)?;
        Ok(self.app.authenticate_terminal(&id, &secret).await?)
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "Live: the process answers HTTP (the store is not asked; that is /readyz)", body = openapi::Health))
)]
async fn healthz() -> Json<openapi::Health> {
    Json(openapi::Health {
        status: "ok".to_owned(),
    })
}

/// How long `/readyz` waits for the store before answering 503.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "Ready: the store answered and has every migration of this binary applied", body = openapi::Ready),
        (status = 503, description = "`unavailable`: the store does not answer (within 2 s) or migrations are missing, or the configured PKCS#11 token does not answer or refuses its PIN", body = Problem, content_type = "application/problem+json"),
    )
)]
async fn readyz(
    axum::extract::State(s): axum::extract::State<HttpState>,
) -> ApiResult<Json<openapi::Ready>> {
    let store = s.app.store.as_ref();
    match tokio::time::timeout(READY_TIMEOUT, store.pending_migrations()).await {
        Ok(Ok(pending)) if pending.is_empty() => Ok(Json(openapi::Ready {
            status: "ready".to_owned(),
            store: store.backend().to_owned(),
            pkcs11_token: token_ready(&s).await?,
        })),
        Ok(Ok(pending)) => Err(Error::NotReady(format!("migrations not applied: {pending:?}")).into()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the store failed");
            Err(Error::NotReady("the store does not answer (see server log)".into()).into())
        }
        Err(_) => Err(Error::NotReady(format!("the store did not answer within {} s", READY_TIMEOUT.as_secs())).into()),
    }
}

/// The PKCS#11 token, if configured, answers within [`READY_TIMEOUT`] and
/// gives a logged-in session.
async fn token_ready(s: &HttpState) -> Result<Option<String>, ApiError> {
    let Some(token) = s.app.backend.token().cloned() else { return Ok(None) };
    match tokio::time::timeout(READY_TIMEOUT, tokio::task::spawn_blocking(move || token.status())).await {
        Ok(Ok(Ok(st))) => Ok(Some(st.label)),
        Ok(Ok(Err(e))) => Err(Error::NotReady(format!("PKCS#11 token: {e}")).into()),
        Ok(Err(e)) => Err(Error::Internal(e.to_string()).into()),
        Err(_) => Err(Error::NotReady(format!("the PKCS#11 token did not answer within {} s", READY_TIMEOUT.as_secs())).into()),
    }
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    responses((
        status = 200,
        description = "Prometheus text format 0.0.4 (OpenMetrics 1.0 text when `Accept` names application/openmetrics-text); docs/operations.md lists the series",
        body = openapi::MetricsText,
        content_type = "text/plain"
    ))
)]
async fn metrics_text(
    axum::extract::State(s): axum::extract::State<HttpState>,
    headers: HeaderMap,
) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let body = s.app.metrics.encode(s.app.waiters.waiting(), s.app.waiters.waited(), openmetrics);
    let ct = if openmetrics { crate::metrics::OPENMETRICS_TEXT } else { crate::metrics::PROMETHEUS_TEXT };
    ([(header::CONTENT_TYPE, HeaderValue::from_static(ct))], body).into_response()
}

/// Counts each answered request in the listener's metrics, by route
/// template (axum's `MatchedPath`, never the raw path) and final status.
async fn count_request(
    axum::extract::State((metrics, listener)): axum::extract::State<(Arc<crate::metrics::Metrics>, crate::metrics::Listener)>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let method = req.method().clone();
    let route = req.extensions().get::<axum::extract::MatchedPath>().map(|p| crate::metrics::route_label(p.as_str()));
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    metrics.request(listener, &method, route, r.status().as_u16(), started.elapsed());
    r
}

async fn not_found() -> ApiError {
    ApiError(Error::NotFound("no such endpoint".into()))
}

/// The public HTTP service (phones, terminals, CSC signing; `/demo` only
/// when `state.demo` is set, i.e. with `--demo`).
pub fn router(state: HttpState) -> Router {
    let metrics = state.app.metrics.clone();
    let mut bounded = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::openapi_public))
        .merge(verification::routes())
        .merge(phone::routes())
        .merge(terminal::routes())
        .merge(csc::routes());
    if state.demo.is_some() {
        bounded = bounded.merge(demo::routes());
    }
    let bounded = bounded.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::SERVICE_UNAVAILABLE,
        REQUEST_TIMEOUT,
    ));
    let mut waiting = Router::new()
        // The waiting endpoints are long by design and have their own bounds.
        .merge(terminal::waiting_routes())
        .merge(phone::waiting_routes());
    if state.demo.is_some() {
        waiting = waiting.merge(demo::waiting_routes());
    }
    waiting
        .merge(bounded)
        .fallback(not_found)
        .layer(axum::middleware::map_response(problems_for_rejections))
        .layer(axum::middleware::from_fn_with_state((metrics, crate::metrics::Listener::Public), count_request))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The operator API (`/admin/v1/*`), served only on the admin listener.
pub fn admin_router(state: HttpState) -> Router {
    let metrics = state.app.metrics.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // Operator listener only: the series name routes, volumes and
        // outcomes an outsider has no business reading (docs/operations.md).
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi::openapi_admin))
        .merge(admin::routes(state.clone()))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .fallback(not_found)
        .layer(axum::middleware::map_response(problems_for_rejections))
        .layer(axum::middleware::from_fn_with_state((metrics, crate::metrics::Listener::Admin), count_request))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}
