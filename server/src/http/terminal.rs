//! The EHR terminal side: RFC 8628 device authorization + token endpoint
//! (RFC 6749 error JSON), the QR as PNG/SVG, and two ways to learn the
//! outcome the moment it lands: Server-Sent Events and a long-poll.
//!
//! Waiters are woken by the in-process broadcast the services send on
//! every decision. With several replicas on one PostgreSQL database a
//! decision may land on another replica; waiters therefore also re-read
//! the login every [`RECHECK`], which bounds the cross-replica delay.

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
use tokio::sync::broadcast;

use super::{ApiResult, HttpState, basic, form_rejection};
use crate::service::login::{TokenError, wire_status};
use crate::service::{App, Error, LoginEvent};
use crate::store::Terminal;

/// How often waiters re-read the login besides being woken.
pub const RECHECK: Duration = Duration::from_secs(2);
/// Longest long-poll.
pub const MAX_WAIT_S: u64 = 60;
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/oauth/device_authorization", post(device_authorization))
        .route("/oauth/token", post(token))
        .route("/v1/terminal/logins/{login_id}/qr.png", get(qr_png))
        .route("/v1/terminal/logins/{login_id}/qr.svg", get(qr_svg))
}

pub(super) fn waiting_routes() -> Router<HttpState> {
    Router::new()
        .route("/v1/terminal/logins/{login_id}/events", get(events))
        .route("/v1/terminal/logins/{login_id}/wait", get(wait))
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
            Json(
                serde_json::json!({ "error": e.to_string(), "error_description": e.description() }),
            ),
        )
            .into_response(),
    );
    if e == TokenError::InvalidClient {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"shomei\""));
    }
    r
}

#[derive(Deserialize)]
struct OAuthForm {
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

async fn device_authorization(State(s): State<HttpState>, headers: HeaderMap, form: Result<Form<OAuthForm>, axum::extract::rejection::FormRejection>) -> Response {
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

async fn token(State(s): State<HttpState>, headers: HeaderMap, form: Result<Form<OAuthForm>, axum::extract::rejection::FormRejection>) -> Response {
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

async fn qr_png(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Response> {
    let url = payload_url(&s, &headers, &login_id).await?;
    let png = crate::qr::png(&url, 8).map_err(Error::Internal)?;
    Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], png).into_response())
}

async fn qr_svg(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Response> {
    let url = payload_url(&s, &headers, &login_id).await?;
    let svg = crate::qr::svg(&url).map_err(Error::Internal)?;
    Ok(([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "no-store")], svg).into_response())
}

/// Waits until the login leaves `pending` (or `deadline` passes: then "pending").
async fn next_final(app: &App, login_id: &str, rx: &mut broadcast::Receiver<LoginEvent>, deadline: tokio::time::Instant) -> Result<&'static str, Error> {
    loop {
        let l = app.store.get_login(login_id).await?.ok_or(Error::LoginUnknown)?;
        let now = app.clock.now_ms();
        let st = wire_status(&l, now);
        if st != "pending" {
            return Ok(st);
        }
        let until_expiry = Duration::from_millis((l.expires_ms - now).max(0) as u64);
        let wake = (tokio::time::Instant::now() + until_expiry.min(RECHECK)).min(deadline);
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(e) if e.login_id == login_id => return Ok(e.status),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => tokio::time::sleep_until(wake).await,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok("pending");
        }
    }
}

async fn events(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let t = s.terminal_from(&headers, "authorization").await?;
    // Subscribe before reading the status so no decision slips between.
    let rx = s.app.events.subscribe();
    let l = s.app.terminal_login(&t, &login_id).await?;
    let first = wire_status(&l, s.app.clock.now_ms());
    let app = s.app.clone();
    let stream = futures::stream::unfold((Some(first), rx, false), move |(pending_first, mut rx, done)| {
        let app = app.clone();
        let login_id = login_id.clone();
        async move {
            if done {
                return None;
            }
            let status = match pending_first {
                Some(st) => st,
                None => {
                    let far = tokio::time::Instant::now() + Duration::from_secs(3600);
                    next_final(&app, &login_id, &mut rx, far).await.unwrap_or("expired")
                }
            };
            let ev = Event::default().event("status").data(serde_json::json!({ "status": status }).to_string());
            Some((Ok(ev), (None, rx, status != "pending")))
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize)]
struct WaitQuery {
    timeout: Option<u64>,
}

async fn wait(State(s): State<HttpState>, headers: HeaderMap, Path(login_id): Path<String>, Query(q): Query<WaitQuery>) -> ApiResult<Json<serde_json::Value>> {
    let t = s.terminal_from(&headers, "authorization").await?;
    let mut rx = s.app.events.subscribe();
    s.app.terminal_login(&t, &login_id).await?;
    let secs = q.timeout.unwrap_or(30).min(MAX_WAIT_S);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let status = next_final(&s.app, &login_id, &mut rx, deadline).await?;
    Ok(Json(serde_json::json!({ "status": status })))
}
