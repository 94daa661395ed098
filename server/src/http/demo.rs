//! `/demo` (only with `--demo`): a small EHR page and its server-side step.
//!
//! The page never holds a terminal credential, a device code or a grant
//! token: it starts a *demo session* (`POST /demo/api/session`), and the
//! server runs the login as the seeded demo terminal in-process
//! ([`crate::demo`]). The browser gets only the session's random handle, in
//! an `HttpOnly; SameSite=Strict` cookie scoped to `/demo`; every other
//! demo call names the session by that cookie alone. The QR is an image
//! the page loads, the status arrives over Server-Sent Events (the same
//! waiters as a terminal's `events`), then the page collects the grant
//! (showing whose signing day it holds, protocol.md §8 defence 1) and
//! signs a sample prescription as XAdES, with the server's verification.
//!
//! Plain HTML, CSS and JS embedded in the binary; the page's Content
//! Security Policy allows only this origin's own script, style and images.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiJson, ApiResult, HttpState};
use crate::demo::Demo;
use crate::service::Error;

/// The cookie holding the demo session's handle.
pub const COOKIE: &str = "shomei_demo";

pub(super) fn routes() -> Router<HttpState> {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/demo.js", get(script))
        .route("/demo/demo.css", get(style))
        .route("/demo/api/session", post(start).delete(end))
        .route("/demo/api/session/qr.png", get(qr_png))
        .route("/demo/api/session/token", post(token))
        .route("/demo/api/session/sign", post(sign))
}

/// The status stream is long by design (bounded by the login's expiry).
pub(super) fn waiting_routes() -> Router<HttpState> {
    Router::new().route("/demo/api/session/events", get(events))
}

fn demo(s: &HttpState) -> ApiResult<&Demo> {
    // (routes are mounted only with --demo, so this is always set there)
    Ok(s.demo
        .as_deref()
        .ok_or_else(|| Error::NotFound("no such endpoint".into()))?)
}

/// The session handle from the `Cookie` header(s).
fn handle(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim().to_owned())
}

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '&' => "&amp;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn with_headers(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn page(State(s): State<HttpState>) -> Response {
    let d = demo(&s).ok();
    let note = if d.is_some_and(Demo::has_terminal) {
        String::new()
    } else {
        "<p class=\"error\">This data directory was not seeded by <code>shomei serve --demo</code> on an empty store: there is no demo terminal to act for.</p>".to_owned()
    };
    let html = PAGE
        .replace(
            "{{ATTESTATION}}",
            &escape(&crate::demo::attestation_note(&s.app.policy.attestation)),
        )
        .replace("{{NOTE}}", &note);
    let mut r = with_headers(Html(html).into_response(), "text/html; charset=utf-8");
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

async fn script() -> Response {
    with_headers(SCRIPT.into_response(), "text/javascript; charset=utf-8")
}

async fn style() -> Response {
    with_headers(STYLE.into_response(), "text/css; charset=utf-8")
}

/// `POST /demo/api/session` body: nothing yet (JSON, so that a cross-site
/// form cannot start sessions without a CORS preflight).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {}

async fn start(
    State(s): State<HttpState>,
    headers: HeaderMap,
    ApiJson(_): ApiJson<StartBody>,
) -> ApiResult<Response> {
    let d = demo(&s)?;
    let (h, started) = d.start(&s.app, handle(&headers).as_deref()).await?;
    let secure = if s.app.origin.as_str().starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{COOKIE}={h}; Path=/demo; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        crate::demo::session::SESSION_TTL_S
    );
    let mut r = super::no_store((StatusCode::CREATED, Json(started)).into_response());
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(r)
}

async fn end(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Response> {
    demo(&s)?.end(handle(&headers).as_deref())?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    let clear = format!("{COOKIE}=; Path=/demo; Max-Age=0; HttpOnly; SameSite=Strict");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| Error::Internal(e.to_string()))?,
    );
    Ok(r)
}

async fn qr_png(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Response> {
    let l = demo(&s)?.login(&s.app, handle(&headers).as_deref()).await?;
    let url = s.app.login_payload_url(&l)?;
    let png = crate::qr::png(&url, 8).map_err(Error::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        png,
    )
        .into_response())
}

async fn events(State(s): State<HttpState>, headers: HeaderMap) -> ApiResult<Response> {
    let d = demo(&s)?;
    let h = handle(&headers);
    // Register before reading the status so no decision slips between.
    let watch = s.app.waiters.watch(&d.login_id(&s.app, h.as_deref())?);
    let l = d.login(&s.app, h.as_deref()).await?;
    Ok(super::terminal::status_events(s.app.clone(), l, watch).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    /// The code the phone shows (only under the `code` confirmation policy).
    #[serde(default)]
    confirmation_code: Option<String>,
}

async fn token(
    State(s): State<HttpState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Response> {
    let holding = demo(&s)?
        .collect(
            &s.app,
            handle(&headers).as_deref(),
            b.confirmation_code.as_deref(),
        )
        .await?;
    Ok(super::no_store(Json(holding).into_response()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    /// The medication line of the sample prescription (default: a sample).
    #[serde(default)]
    medication: Option<String>,
}

async fn sign(
    State(s): State<HttpState>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<SignBody>,
) -> ApiResult<Response> {
    let signed = demo(&s)?
        .sign(&s.app, handle(&headers).as_deref(), b.medication.as_deref())
        .await?;
    Ok(super::no_store(Json(signed).into_response()))
}

const PAGE: &str = r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>Shomei EHR demo</title>
<link rel="stylesheet" href="/demo/demo.css"></head>
<body><h1>署名 Shomei — EHR demo</h1>
<p>This page plays an EHR screen. The server runs the login as its demo terminal; this browser
holds only a demo session cookie (no terminal secret, no device code, no token).</p>
{{NOTE}}
<p id="attestation"><small>{{ATTESTATION}}</small></p>
<p><button id="start">Start login</button></p>
<section id="login" hidden>
<div class="qr"><img id="qr" alt="login QR code" width="300" height="300"></div>
<p>Scan with the Shomei app, then choose this number: <span id="num">--</span></p>
<p id="where"></p>
</section>
<p>Status: <b id="status">idle</b></p>
<p id="confirm" hidden><label>Confirmation code shown on the phone <input id="code" inputmode="numeric" autocomplete="off" size="8"></label>
<button id="send-code">Confirm</button></p>
<p id="holder" class="holder"></p>
<section id="signing" hidden>
<p><label>Rp 1 <input id="rx" size="60" maxlength="120" value="アムロジピン錠5mg 1錠 1日1回 朝食後 14日分"></label></p>
<p><button id="sign">Sign prescription (XAdES)</button></p>
</section>
<p id="result"></p>
<ul id="checks"></ul>
<pre id="out"></pre>
<script src="/demo/demo.js"></script>
</body></html>"#;

const STYLE: &str = "body{font-family:sans-serif;max-width:48em;margin:2em auto;padding:0 1em}\
#num{font-size:3em;font-weight:bold;vertical-align:middle}.qr img{width:300px;height:300px;image-rendering:pixelated}\
.holder{font-size:1.3em;font-weight:bold}.error{color:#b00020}.ok{color:#006400}\
pre{background:#eee;padding:.5em;white-space:pre-wrap;word-break:break-all;font-size:.8em}";

const SCRIPT: &str = r#""use strict";
const $ = id => document.getElementById(id);
let events = null;
function problem(j, status) {
  return j && j.code ? (j.code + ': ' + (j.detail || j.title)) : ('HTTP ' + status);
}
async function call(method, path, body) {
  const r = await fetch(path, {method, credentials: 'same-origin',
    headers: {'Content-Type': 'application/json'}, body: body === undefined ? undefined : JSON.stringify(body)});
  let j = null;
  try { j = await r.json(); } catch (e) { j = null; }
  if (!r.ok) { const err = new Error(problem(j, r.status)); err.code = j && j.code; throw err; }
  return j;
}
function fail(e) { $('status').textContent = 'error'; $('result').className = 'error'; $('result').textContent = e.message; }
async function start() {
  if (events) { events.close(); events = null; }
  $('result').textContent = ''; $('checks').textContent = ''; $('out').textContent = '';
  $('holder').textContent = ''; $('signing').hidden = true; $('confirm').hidden = true;
  $('status').textContent = 'starting';
  let s;
  try { s = await call('POST', '/demo/api/session', {}); } catch (e) { return fail(e); }
  $('num').textContent = s.match_number;
  $('where').textContent = 'The phone will name: ' + s.terminal;
  $('qr').src = '/demo/api/session/qr.png?t=' + Date.now();
  $('login').hidden = false;
  $('status').textContent = 'waiting for the phone';
  events = new EventSource('/demo/api/session/events');
  events.addEventListener('status', ev => {
    const st = JSON.parse(ev.data).status;
    if (st === 'pending') return;
    events.close(); events = null;
    $('login').hidden = true;
    if (st === 'approved') {
      if (s.confirmation === 'code') { $('status').textContent = 'approved on the phone: type its code'; $('confirm').hidden = false; }
      else collect(undefined);
    } else {
      $('status').textContent = st;
      $('result').className = 'error';
      $('result').textContent = st === 'denied' ? 'login_denied: the practitioner denied the login' : 'login_expired: start a new login';
    }
  });
  events.onerror = () => {
    // The stream ends after the final status; an error before it means the
    // connection dropped: ask once for the current state instead of retrying blindly.
    if (!events) return;
    events.close(); events = null;
    collect(undefined, true);
  };
}
async function collect(code, fallback) {
  try {
    const h = await call('POST', '/demo/api/session/token', code === undefined ? {} : {confirmation_code: code});
    $('status').textContent = 'approved';
    $('confirm').hidden = true;
    $('holder').textContent = h.signing_as + ' — grant until ' + h.grant_expires_at + ' (end it from the phone)';
    $('signing').hidden = false;
  } catch (e) {
    // Fallback only (the event stream dropped): ask again every 2 s while the login is pending.
    if (e.code === 'conflict' && fallback) { $('status').textContent = 'waiting for the phone'; setTimeout(() => collect(code, true), 2000); return; }
    fail(e);
  }
}
async function sign() {
  $('result').textContent = 'signing…'; $('result').className = ''; $('checks').textContent = ''; $('out').textContent = '';
  let r;
  try { r = await call('POST', '/demo/api/session/sign', {medication: $('rx').value}); } catch (e) { return fail(e); }
  if (r.verified) {
    const v = r.verification;
    $('result').className = 'ok';
    $('result').textContent = 'verified: ' + r.prescription_id + ' signed by ' + v.signer + ' (issuer ' + v.issuer + ') at ' + v.signing_time;
    for (const c of v.checks) {
      const li = document.createElement('li');
      li.textContent = '✔ ' + c.check + ': ' + c.detail;
      $('checks').appendChild(li);
    }
  } else {
    $('result').className = 'error';
    $('result').textContent = 'NOT verified: ' + r.failure;
  }
  $('out').textContent = r.document;
}
$('start').addEventListener('click', start);
$('sign').addEventListener('click', sign);
$('send-code').addEventListener('click', () => collect($('code').value));
"#;
