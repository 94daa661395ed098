//! The EHR terminal side: RFC 8628 device authorization + token endpoint
//! (RFC 6749 error JSON), the QR as PNG/SVG, and two ways to learn the
//! outcome the moment it lands: Server-Sent Events and a long-poll.
//!
//! Waiters register per login ([`crate::service::waiters`]) and are woken
//! by the decision on this replica, by another replica's decision through
//! the store's change feed ([`crate::service::replicas`]), or by the
//! periodic re-check `serve` keeps as a backstop.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures::Stream;
use serde::Deserialize;

use super::openapi::{EventStream, LoginStatus, OAuthError, PngImage, SvgImage};
use super::{ApiResult, HttpState, basic, form_rejection};
use shomei_core::api::Problem;
use shomei_core::ids::LoginId;
use crate::service::login::{DeviceAuthorization, TokenResponse};
use crate::service::login::{TokenError, wire_status};
use crate::service::waiters::LoginWatch;
use crate::service::{App, Error};
use crate::store::{Login, Terminal};

/// Longest long-poll.
pub const MAX_WAIT_S: u64 = 60;
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/oauth/device_authorization", post(device_authorization))
        .route("/oauth/token", post(token))
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/v1/terminal/logins/{login_id}/qr.png", get(qr_png))
        .route("/v1/terminal/logins/{login_id}/qr.svg", get(qr_svg))
}

pub(super) fn waiting_routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/terminal/logins/{login_id}/events", get(events))
        .route("/v1/terminal/logins/{login_id}/wait", get(wait))
}

/// RFC 8414 authorization server metadata: lets an off-the-shelf OAuth
/// client (and a CSC client following `info.oauth2Issuer`) find the device
/// grant's endpoints instead of hard-coding Shomei's paths.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuthorizationServerMetadata {
    /// The server's public origin; this document is at
    /// `{issuer}/.well-known/oauth-authorization-server`.
    pub issuer: String,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    /// Only `urn:ietf:params:oauth:grant-type:device_code`.
    #[schema(value_type = Vec<String>)]
    pub grant_types_supported: &'static [&'static str],
    /// Empty: there is no authorization endpoint (the phone approves).
    #[schema(value_type = Vec<String>)]
    pub response_types_supported: &'static [&'static str],
    /// The terminal's client secret in HTTP Basic or in the form.
    #[schema(value_type = Vec<String>)]
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
}

#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "terminal",
    responses((status = 200, description = "RFC 8414 authorization server metadata (no authentication)", body = AuthorizationServerMetadata))
)]
pub(super) async fn metadata(State(s): State<HttpState>) -> Json<AuthorizationServerMetadata> {
    // Origin is the normalized ASCII serialization: never a trailing '/'.
    let issuer = s.app.origin.as_str().to_owned();
    Json(AuthorizationServerMetadata {
        device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
        token_endpoint: format!("{issuer}/oauth/token"),
        issuer,
        grant_types_supported: &[DEVICE_CODE_GRANT],
        response_types_supported: &[],
        token_endpoint_auth_methods_supported: &["client_secret_basic", "client_secret_post"],
    })
}

fn oauth_error(e: TokenError) -> Response {
    let status = match e {
        TokenError::InvalidClient => StatusCode::UNAUTHORIZED,
        TokenError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = super::no_store(
        (
            status,
            Json(OAuthError { error: e.to_string(), error_description: e.description().to_owned() }),
        )
            .into_response(),
    );
    if e == TokenError::InvalidClient {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shomei\""));
    }
    r
}

/// The form of both `/oauth/*` endpoints (client credentials here or in HTTP Basic).
#[derive(Deserialize, utoipa::ToSchema)]
pub(super) struct OAuthForm {
    client_id: Option<String>,
    client_secret: Option<String>,
    grant_type: Option<String>,
    device_code: Option<String>,
    /// The code the phone showed (the `code` confirmation policy).
    confirmation_code: Option<String>,
    #[allow(dead_code)]
    scope: Option<String>,
}

async fn oauth_client(s: &HttpState, headers: &HeaderMap, f: &OAuthForm) -> Result<Terminal, TokenError> {
    let (id, secret) = match basic(headers, "authorization") {
        Some(c) => c,
        None => match (&f.client_id, &f.client_secret) {
            (Some(i), Some(sec)) => (i.clone(), sec.clone()),
            _ => return Err(TokenError::InvalidClient),
        },
    };
    s.app.authenticate_terminal(&id, &secret).await.map_err(|_| TokenError::InvalidClient)
}

#[utoipa::path(
    post,
    path = "/oauth/device_authorization",
    tag = "terminal",
    request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    security(("terminal" = []), ()),
    responses(
        (status = 200, description = "RFC 8628 §3.2 device authorization (with Shomei extensions); `Cache-Control: no-store`", body = DeviceAuthorization),
        (status = 401, description = "RFC 6749 `invalid_client` (`WWW-Authenticate: Basic`)", body = OAuthError),
        (status = 429, description = "`rate_limited` (logins started per terminal; `Retry-After`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn device_authorization(State(s): State<HttpState>, headers: HeaderMap, form: Result<Form<OAuthForm>, axum::extract::rejection::FormRejection>) -> Response {
    let Form(f) = match form {
        Ok(f) => f,
        Err(r) => return super::ApiError(form_rejection(r)).into_response(),
    };
    let t = match oauth_client(&s, &headers, &f).await {
        Ok(t) => t,
        Err(e) => return oauth_error(e),
    };
    match s.app.start_login(&t).await {
        // Carries the device code and the QR secret (in verification_uri_complete).
        Ok(d) => super::no_store(Json(d).into_response()),
        Err(e) => super::ApiError(e).into_response(),
    }
}

#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "terminal",
    request_body(content = OAuthForm, content_type = "application/x-www-form-urlencoded"),
    security(("terminal" = []), ()),
    responses(
        (status = 200, description = "The grant's access token; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "RFC 8628 §3.5 / RFC 6749 §5.2 error (`authorization_pending`, `slow_down`, `access_denied`, `expired_token`, `invalid_grant`, `invalid_request`, `unsupported_grant_type`), or a `bad_request` problem for a form that does not parse", content(
            (OAuthError = "application/json"),
            (Problem = "application/problem+json"),
        )),
        (status = 401, description = "RFC 6749 `invalid_client` (`WWW-Authenticate: Basic`)", body = OAuthError),
        (status = 500, description = "RFC 6749 `server_error`, or an `internal` problem", content(
            (OAuthError = "application/json"),
            (Problem = "application/problem+json"),
        )),
    )
)]
pub(super) async fn token(State(s): State<HttpState>, headers: HeaderMap, form: Result<Form<OAuthForm>, axum::extract::rejection::FormRejection>) -> Response {
    let Form(f) = match form {
        Ok(f) => f,
        Err(r) => return super::ApiError(form_rejection(r)).into_response(),
    };
    let t = match oauth_client(&s, &headers, &f).await {
        Ok(t) => t,
        Err(e) => return oauth_error(e),
    };
    if f.grant_type.as_deref() != Some(DEVICE_CODE_GRANT) {
        return oauth_error(if f.grant_type.is_none() { TokenError::InvalidRequest } else { TokenError::UnsupportedGrantType });
    }
    let Some(code) = f.device_code.as_deref() else { return oauth_error(TokenError::InvalidRequest) };
    match s.app.poll_token(&t, code, f.confirmation_code.as_deref()).await {
        // Carries the access token (RFC 6749 §5.1: no-store + Pragma: no-cache).
        Ok(tok) => super::no_store(Json(tok).into_response()),
        Err(e) => oauth_error(e),
    }
}

async fn payload_url(s: &HttpState, headers: &HeaderMap, login_id: &str) -> ApiResult<String> {
    let t = s.terminal_from(headers, "authorization").await?;
    let l = s.app.terminal_login(&t, login_id).await?;
    Ok(s.app.login_payload_url(&l)?)
}

#[utoipa::path(
    get,
    path = "/v1/terminal/logins/{login_id}/qr.png",
    tag = "terminal",
    params(("login_id" = LoginId, Path, description = "The login (from the device authorization response)")),
    security(("terminal" = [])),
    responses(
        (status = 200, description = "The login QR (the payload URL) as PNG", body = PngImage, content_type = "image/png"),
        (status = 404, description = "`login_unknown` (also a login of another terminal)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn qr_png(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Response> {
    let url = payload_url(&s, &headers, &login_id).await?;
    let png = crate::qr::png(&url, 8).map_err(Error::Internal)?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], png).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/terminal/logins/{login_id}/qr.svg",
    tag = "terminal",
    params(("login_id" = LoginId, Path, description = "The login (from the device authorization response)")),
    security(("terminal" = [])),
    responses(
        (status = 200, description = "The login QR (the payload URL) as SVG", body = SvgImage, content_type = "image/svg+xml"),
        (status = 404, description = "`login_unknown` (also a login of another terminal)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn qr_svg(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Response> {
    let url = payload_url(&s, &headers, &login_id).await?;
    let svg = crate::qr::svg(&url).map_err(Error::Internal)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

/// The login's status if it is final, else (still pending) its expiry:
/// all a waiter keeps of the row while it waits (10,000 waiting terminals
/// should not hold 10,000 login rows).
fn final_or_expiry(l: &Login, now_ms: i64) -> Result<&'static str, i64> {
    match wire_status(l, now_ms) {
        "pending" => Err(l.expires_ms),
        st => Ok(st),
    }
}

/// Waits until the pending login of `watch`, expiring at `expires_ms`,
/// leaves `pending` (or `deadline` passes: then "pending"). `watch` was
/// registered before the login was read, so a decision committed after
/// that read wakes it. At the login's expiry the store is read again (a
/// decision may have landed on another replica just before the periodic
/// re-check would have seen it).
async fn next_final(app: &App, mut expires_ms: i64, watch: &mut LoginWatch, deadline: tokio::time::Instant) -> Result<&'static str, Error> {
    loop {
        let now = app.clock.now_ms();
        let expiry = tokio::time::Instant::now() + Duration::from_millis((expires_ms - now).max(0) as u64);
        tokio::select! {
            st = watch.decided() => return Ok(st),
            _ = tokio::time::sleep_until(expiry.min(deadline)) => {}
        }
        if expiry > deadline {
            return Ok("pending");
        }
        let l = app.store.get_login(watch.login_id()).await?.ok_or(Error::LoginUnknown)?;
        match final_or_expiry(&l, app.clock.now_ms()) {
            Ok(st) => return Ok(st),
            Err(e) => expires_ms = e,
        }
    }
}

/// The terminal of `headers` and its login `login_id`, read after the
/// waiter is registered (so no decision slips between). The request's
/// headers go with this call: nothing of them is kept while waiting.
async fn watched_login(s: &HttpState, headers: HeaderMap, login_id: &str) -> ApiResult<(Login, LoginWatch)> {
    let t = s.terminal_from(&headers, "authorization").await?;
    drop(headers);
    // Register before reading the status so no decision slips between.
    let watch = s.app.waiters.watch(login_id);
    let l = s.app.terminal_login(&t, login_id).await?;
    Ok((l, watch))
}

#[utoipa::path(
    get,
    path = "/v1/terminal/logins/{login_id}/events",
    tag = "terminal",
    params(("login_id" = LoginId, Path, description = "The login (from the device authorization response)")),
    security(("terminal" = [])),
    responses(
        (status = 200, description = "Server-Sent Events: one `event: status` per change, data `LoginStatus`; closes after a final status", body = EventStream, content_type = "text/event-stream"),
        (status = 404, description = "`login_unknown` (also a login of another terminal)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn events(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (l, watch) = watched_login(&s, headers, &login_id).await?;
    Ok(status_events(s.app.clone(), l, watch))
}

/// The `events` stream of login `l` (read after `watch` was registered):
/// the status now, then, if that is pending, the final one; then it ends.
/// Also the demo page's stream (`--demo`).
pub(super) fn status_events(app: std::sync::Arc<App>, l: Login, watch: LoginWatch) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // The first event is the status now; if that is pending, the second is
    // the final one, and the stream ends. While pending, the stream keeps
    // the login's expiry and the registration, not the row.
    let (first, waiting) = match final_or_expiry(&l, app.clock.now_ms()) {
        Ok(st) => (st, None),
        Err(expires_ms) => ("pending", Some((expires_ms, watch))),
    };
    drop(l);
    let stream = futures::stream::unfold((Some(first), waiting), move |(first, waiting)| {
        let app = app.clone();
        async move {
            let (status, waiting) = match first {
                Some(st) => (st, waiting),
                None => {
                    let (expires_ms, mut watch) = waiting?;
                    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
                    let st = next_final(&app, expires_ms, &mut watch, far).await.unwrap_or("expired");
                    (st, Some((expires_ms, watch)))
                }
            };
            let next = if status == "pending" { waiting } else { None };
            let ev = Event::default().event("status").data(serde_json::to_string(&LoginStatus { status }).unwrap_or_default());
            Some((Ok(ev), (None, next)))
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[derive(Deserialize)]
pub(super) struct WaitQuery {
    timeout: Option<u64>,
}

#[utoipa::path(
    get,
    path = "/v1/terminal/logins/{login_id}/wait",
    tag = "terminal",
    params(
        ("login_id" = LoginId, Path, description = "The login (from the device authorization response)"),
        ("timeout" = Option<u64>, Query, description = "Seconds to wait for a final status (default 30, at most 60)"),
    ),
    security(("terminal" = [])),
    responses(
        (status = 200, description = "The status: at once when final, else `pending` at the timeout", body = LoginStatus),
        (status = 404, description = "`login_unknown` (also a login of another terminal)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(super) async fn wait(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, Query(q): Query<WaitQuery>) -> ApiResult<Json<LoginStatus>> {
    let (l, mut watch) = watched_login(&s, headers, &login_id).await?;
    drop(login_id);
    let secs = q.timeout.unwrap_or(30).min(MAX_WAIT_S);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let expires_ms = match final_or_expiry(&l, s.app.clock.now_ms()) {
        Ok(status) => return Ok(Json(LoginStatus { status })),
        Err(expires_ms) => expires_ms,
    };
    drop(l);
    let status = next_final(&s.app, expires_ms, &mut watch, deadline).await?;
    Ok(Json(LoginStatus { status }))
}
