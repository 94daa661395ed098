//! `GET /openapi.json`: OpenAPI 3.1 documents generated (utoipa) from the
//! very types the handlers parse and return, so the document cannot drift
//! from the code: a renamed field, a new response type or a new route
//! without an operation fails `cargo test` (`server/tests/server/openapi.rs`
//! compares every routed path with the document) and the schemathesis run
//! of `scripts/test` (every live response checked against its schema).
//!
//! Two documents, one per listener, each served at that listener's own
//! `GET /openapi.json`: [`PublicApi`] (phones, terminals, CSC signing) and
//! [`AdminApi`] (the operator API). A client of one listener never sees
//! operations it cannot reach.
//!
//! What every operation may also answer is added here once, in
//! [`CommonProblems`], mirroring the one place errors are rendered
//! ([`super::problems_for_rejections`], [`super::ApiError`]): 400/413/415
//! for a body or parameters, 401 for an authenticated call (with its
//! `WWW-Authenticate`), 500 and 503. (A wrong method is 405 on any path;
//! that is not an answer of an operation, so docs/api.md says it once.) Operation-specific refusals are
//! listed on the handlers.

use std::borrow::Cow;

use axum::Json;
use serde::Serialize;
use shomei_core::api::{PROBLEM_CONTENT_TYPE, Problem};
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

/// `GET /healthz` body (liveness: the process answers).
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: String,
}

/// `GET /readyz` body (readiness: the store answers, the schema is current).
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// Always `ready` (not ready is a 503 `unavailable` problem).
    #[schema(pattern = "^ready$")]
    pub status: String,
    /// The store backend: `sqlite` or `postgres`.
    #[schema(pattern = "^(sqlite|postgres)$")]
    pub store: String,
    /// With a `[pkcs11]` token: its label (it answered and a logged-in
    /// session was had). Absent without one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pkcs11_token: Option<String>,
}

/// The outcome of a login as the terminal sees it (`wait`, and the data of
/// each `events` message).
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginStatus {
    /// `pending` until the phone decides or the login expires.
    #[schema(value_type = String, pattern = "^(pending|approved|denied|expired)$")]
    pub status: &'static str,
}

/// RFC 6749 §5.2 error body of the `/oauth/*` endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthError {
    /// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`,
    /// `invalid_grant`, `invalid_client`, `invalid_request`,
    /// `unsupported_grant_type` or `server_error`.
    #[schema(
        pattern = "^(authorization_pending|slow_down|access_denied|expired_token|invalid_grant|invalid_client|invalid_request|unsupported_grant_type|server_error)$"
    )]
    pub error: String,
    /// Human text.
    pub error_description: String,
}

macro_rules! string_body {
    ($(#[$doc:meta])* $name:ident, $format:expr) => {
        $(#[$doc])*
        pub struct $name;
        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                let mut o = ObjectBuilder::new().schema_type(SchemaType::new(Type::String));
                if let Some(f) = $format {
                    o = o.format(Some(utoipa::openapi::SchemaFormat::Custom(String::from(f))));
                }
                o.into()
            }
        }
        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

string_body!(
    /// A PNG image (the login QR).
    PngImage,
    Some("binary")
);
string_body!(
    /// An SVG document (the login QR).
    SvgImage,
    None::<&str>
);
string_body!(
    /// An HTML page.
    HtmlPage,
    None::<&str>
);
/// `text/event-stream`: the schema of each event, `event: status` with a
/// [`LoginStatus`] as JSON data (schemathesis checks every event of the stream).
pub struct EventStream;
impl PartialSchema for EventStream {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .pattern(Some("^status$")),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .content_media_type("application/json")
                    .pattern(Some(
                        r#"^\{"status":"(pending|approved|denied|expired)"\}$"#,
                    )),
            )
            .required("event")
            .required("data")
            .into()
    }
}
impl ToSchema for EventStream {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventStream")
    }
}
/// `text/event-stream` of `GET /v1/phone/signatures/events`: the schema of
/// each event (OpenAPI 3.1 reads an event stream's `schema` per event, as
/// schemathesis checks it): `ready` / `signature` / `end` / `error`, its `id`
/// (the seq) and `retry`, JSON data (docs/api.md has each event's data).
pub struct SignatureEventStream;
impl PartialSchema for SignatureEventStream {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "event",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .pattern(Some("^(ready|signature|end|error)$")),
            )
            .property(
                "id",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .pattern(Some("^[0-9]+$")),
            )
            .property(
                "retry",
                ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::String))
                    .content_media_type("application/json"),
            )
            .required("event")
            .required("data")
            .into()
    }
}
impl ToSchema for SignatureEventStream {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SignatureEventStream")
    }
}
string_body!(
    /// Prometheus text exposition format (or OpenMetrics text).
    MetricsText,
    None::<&str>
);
string_body!(
    /// `application/x-ndjson`: one audit entry per line.
    AuditLines,
    None::<&str>
);

/// The public listener's document (`GET /openapi.json` there).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shomei",
        description = "Shomei public API: phone, EHR terminal (RFC 8628), CSC v2 signing. \
The operator API is a separate document on the operator listener. Prose, \
limits and the byte-level protocol: docs/api.md, docs/protocol.md."
    ),
    paths(
        super::healthz,
        super::readyz,
        openapi_public,
        super::verification::page,
        super::phone::enroll,
        super::phone::by_code,
        super::phone::context,
        super::phone::decision,
        super::phone::grants,
        super::phone::end_all,
        super::phone::end_one,
        super::phone::signatures,
        super::phone::signature_events,
        super::terminal::device_authorization,
        super::terminal::token,
        super::terminal::metadata,
        super::terminal::qr_png,
        super::terminal::qr_svg,
        super::terminal::events,
        super::terminal::wait,
        super::csc::info,
        super::csc::list,
        super::csc::cred_info,
        super::csc::sign_hash,
        super::csc::sign_doc,
    ),
    components(schemas(Problem, OAuthError)),
    modifiers(&Security, &CommonProblems),
    tags(
        (name = "phone", description = "The enrolled phone (device token; decisions signed by the device key)"),
        (name = "terminal", description = "EHR terminals: RFC 8628 device grant, QR, waiting"),
        (name = "csc", description = "Cloud Signature Consortium API v2 shaped signing (grant + terminal)"),
        (name = "service", description = "Health, readiness and this document"),
    )
)]
pub struct PublicApi;

/// The operator listener's document (`GET /openapi.json` there).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Shomei operator API",
        description = "Served only on the operator listener (--admin-listen, loopback by default). \
Mirrors the `shomei admin` CLI one to one. docs/api.md has the prose."
    ),
    paths(
        super::healthz,
        super::readyz,
        super::metrics_text,
        openapi_admin,
        super::admin::list_facilities,
        super::admin::create_facility,
        super::admin::list_terminals,
        super::admin::create_terminal,
        super::admin::revoke_terminal,
        super::admin::list_practitioners,
        super::admin::create_practitioner,
        super::admin::list_credentials,
        super::admin::generate_credential,
        super::admin::import_credential,
        super::admin::revoke_credential,
        super::admin::create_enrollment,
        super::admin::list_devices,
        super::admin::revoke_device,
        super::admin::list_grants,
        super::admin::revoke_grant,
        super::admin::audit_verify,
        super::admin::audit_verify_checkpoints,
        super::admin::audit_checkpoint,
        super::admin::audit_key,
        super::admin::audit_export,
        super::admin::evidence,
    ),
    components(schemas(Problem)),
    modifiers(&Security, &CommonProblems),
    tags(
        (name = "admin", description = "Operator API (Bearer operator token)"),
        (name = "service", description = "Health, readiness, metrics and this document"),
    )
)]
pub struct AdminApi;

/// `GET /openapi.json` on the public listener.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value))
)]
pub(super) async fn openapi_public() -> Json<utoipa::openapi::OpenApi> {
    Json(PublicApi::openapi())
}

/// `GET /openapi.json` on the operator listener.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = serde_json::Value))
)]
pub(super) async fn openapi_admin() -> Json<utoipa::openapi::OpenApi> {
    Json(AdminApi::openapi())
}

/// Security scheme names used in `security(...)` of the operations.
pub(super) mod scheme {
    /// Terminal client credentials, HTTP Basic in `Authorization`.
    pub const TERMINAL: &str = "terminal";
    /// Terminal client credentials in `Shomei-Terminal-Authorization` (CSC calls).
    pub const TERMINAL_HEADER: &str = "terminal_header";
    /// Device token, Bearer.
    pub const DEVICE: &str = "device_token";
    /// Grant (access token), Bearer.
    pub const GRANT: &str = "grant";
    /// Operator token, Bearer.
    pub const OPERATOR: &str = "operator";
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        let bearer = |d: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(d))
                    .build(),
            )
        };
        c.add_security_scheme(
            scheme::TERMINAL,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("Terminal client_id:client_secret"))
                    .build(),
            ),
        );
        c.add_security_scheme(
            scheme::TERMINAL_HEADER,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Shomei-Terminal-Authorization",
                "`Basic base64(client_id:client_secret)` of the terminal holding the grant",
            ))),
        );
        c.add_security_scheme(scheme::DEVICE, bearer("Device token from enrollment"));
        c.add_security_scheme(scheme::GRANT, bearer("Access token from /oauth/token"));
        c.add_security_scheme(
            scheme::OPERATOR,
            bearer("Operator token (<data-dir>/operator.token)"),
        );
    }
}

/// Adds the answers every operation of a kind may give (see the module docs).
struct CommonProblems;

fn problem(description: &str, www_authenticate: bool) -> utoipa::openapi::Response {
    let mut r = ResponseBuilder::new().description(description).content(
        PROBLEM_CONTENT_TYPE,
        ContentBuilder::new()
            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                "Problem",
            ))))
            .build(),
    );
    if www_authenticate {
        r = r.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some("The challenge of the credentials this call needs"))
                .build(),
        );
    }
    r.build()
}

fn add(op: &mut Operation, status: &str, description: &str, www_authenticate: bool) {
    if !op.responses.responses.contains_key(status) {
        op.responses.responses.insert(
            status.to_owned(),
            RefOr::T(problem(description, www_authenticate)),
        );
    }
}

impl Modify for CommonProblems {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for item in doc.paths.paths.values_mut() {
            for op in [
                item.get.as_mut(),
                item.post.as_mut(),
                item.delete.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
            ]
            .into_iter()
            .flatten()
            {
                let has_body = op.request_body.is_some();
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
                if has_body || has_params {
                    add(
                        op,
                        "400",
                        "`bad_request`: the body, a path segment or the query string does not parse",
                        false,
                    );
                }
                if has_body {
                    add(
                        op,
                        "413",
                        "`body_too_large`: the body is over the route's limit",
                        false,
                    );
                    add(
                        op,
                        "415",
                        "`unsupported_media_type`: missing or wrong Content-Type",
                        false,
                    );
                }
                if authenticated {
                    add(
                        op,
                        "401",
                        "Missing or wrong credentials (the code names which)",
                        true,
                    );
                }
                add(
                    op,
                    "500",
                    "`internal`: server failure (details only in the server log)",
                    false,
                );
                add(
                    op,
                    "503",
                    "`unavailable`: the store is down or the request timed out",
                    false,
                );
            }
        }
    }
}
