//! `GET /shomei`: the RFC 8628 `verification_uri`. The QR payload URL is
//! this path plus a fragment holding the login's secret; browsers never
//! send a fragment, so this page learns nothing secret. It tells a person
//! who opened the link (instead of scanning it with the Shomei app) what
//! to do, so the URI the token endpoint names resolves as RFC 8628 §3.2
//! expects.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::HttpState;

pub(super) fn routes() -> Router<HttpState> {
    Router::new().route(shomei_core::payload::PAYLOAD_PATH, get(page))
}

#[utoipa::path(
    get,
    path = "/shomei",
    tag = "service",
    responses((status = 200, description = "RFC 8628 `verification_uri`: a page telling a person to scan the code with the Shomei app", body = super::openapi::HtmlPage, content_type = "text/html"))
)]
pub(super) async fn page() -> Response {
    let mut r = Html(PAGE).into_response();
    let h = r.headers_mut();
    // The page runs no script and must never pass the URL on.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    r
}

const PAGE: &str = r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>Shomei</title></head>
<body><h1>署名 Shomei</h1>
<p>このコードは Shomei アプリでスキャンしてください。ブラウザでは承認できません。</p>
<p>Scan this code with the Shomei app on your enrolled phone. It cannot be approved in a browser.</p>
</body></html>"#;
