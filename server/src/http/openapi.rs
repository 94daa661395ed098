//! `GET /openapi.json`: a hand-written OpenAPI 3.1 document listing every
//! route (no generator: nothing may download at build time, and the wire
//! types live in shomei-core).

use axum::Json;

pub(super) const ROUTES: &[(&str, &str, &str)] = &[
    ("post", "/v1/phone/enroll", "Enroll a phone (enrollment secret + activation password + proof)"),
    ("post", "/v1/phone/logins/{login_id}/context", "Login context for a scanned QR (device token)"),
    ("post", "/v1/phone/logins/{login_id}/decision", "Approve or deny a login (signed)"),
    ("get", "/v1/phone/grants", "List own active grants (device token)"),
    ("delete", "/v1/phone/grants", "End all own grants (device token)"),
    ("delete", "/v1/phone/grants/{grant_id}", "End one own grant (device token)"),
    ("post", "/oauth/device_authorization", "RFC 8628 device authorization (terminal)"),
    ("post", "/oauth/token", "RFC 8628 token endpoint (terminal)"),
    ("get", "/v1/terminal/logins/{login_id}/qr.png", "Login QR as PNG (terminal)"),
    ("get", "/v1/terminal/logins/{login_id}/qr.svg", "Login QR as SVG (terminal)"),
    ("get", "/v1/terminal/logins/{login_id}/events", "Login status as Server-Sent Events (terminal)"),
    ("get", "/v1/terminal/logins/{login_id}/wait", "Long-poll for the login outcome (terminal)"),
    ("post", "/csc/v2/info", "CSC service info"),
    ("post", "/csc/v2/credentials/list", "CSC credentials/list (grant + terminal)"),
    ("post", "/csc/v2/credentials/info", "CSC credentials/info (grant + terminal)"),
    ("post", "/csc/v2/signatures/signHash", "CSC signatures/signHash (grant + terminal)"),
    ("post", "/csc/v2/signatures/signDoc", "CSC signatures/signDoc: XAdES (X) or CMS (C) around document digests (grant + terminal)"),
    ("get", "/admin/v1/facilities", "List facilities (operator)"),
    ("post", "/admin/v1/facilities", "Create a facility (operator)"),
    ("get", "/admin/v1/terminals", "List terminals (operator)"),
    ("post", "/admin/v1/terminals", "Create a terminal; secret shown once (operator)"),
    ("post", "/admin/v1/terminals/{id}/revoke", "Revoke a terminal (operator)"),
    ("get", "/admin/v1/practitioners", "List practitioners (operator)"),
    ("post", "/admin/v1/practitioners", "Create a practitioner (operator)"),
    ("get", "/admin/v1/credentials", "List signing credentials (operator)"),
    ("post", "/admin/v1/credentials", "Generate a credential from the dev CA (operator)"),
    ("post", "/admin/v1/credentials/import", "Import PEM or PKCS#12 (operator)"),
    ("post", "/admin/v1/credentials/{id}/revoke", "Revoke a signing credential (operator)"),
    ("post", "/admin/v1/enrollments", "Issue a one-time enrollment code (operator)"),
    ("get", "/admin/v1/devices", "List devices (operator)"),
    ("post", "/admin/v1/devices/{id}/revoke", "Revoke a device and its grants (operator)"),
    ("get", "/admin/v1/grants", "List grants (operator)"),
    ("post", "/admin/v1/grants/{id}/revoke", "Revoke a grant (operator)"),
    ("get", "/admin/v1/audit/verify", "Verify the audit hash chain (operator)"),
    ("get", "/admin/v1/audit/export", "Export the audit log as JSON lines (operator)"),
    ("post", "/admin/v1/audit/verify", "Verify the audit chain against signed checkpoints (operator)"),
    ("post", "/admin/v1/audit/checkpoints", "Sign an audit checkpoint of the current head (operator)"),
    ("get", "/admin/v1/audit/key", "The audit public key checkpoints verify against (operator)"),
    ("get", "/admin/v1/evidence/{login_id}", "Evidence bundle of a login decision, checkable with OpenSSL (operator)"),
    ("get", "/healthz", "Health check"),
    ("get", "/openapi.json", "This document"),
    ("get", "/demo", "EHR demo page (only with --demo)"),
    (
        "get",
        "/shomei",
        "RFC 8628 verification_uri: tells a browser to scan with the Shomei app",
    ),
];

pub(super) async fn openapi() -> Json<serde_json::Value> {
    let mut paths = serde_json::Map::new();
    for (method, path, summary) in ROUTES {
        let entry = paths.entry(path.to_string()).or_insert_with(|| serde_json::json!({}));
        let params: Vec<serde_json::Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| serde_json::json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        entry[*method] = serde_json::json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "default": { "description": "success, or an RFC 9457 problem (application/problem+json); /oauth/* use RFC 6749 errors" }
            }
        });
    }
    Json(serde_json::json!({
        "openapi": "3.1.0",
        "info": { "title": "Shomei", "version": env!("CARGO_PKG_VERSION"), "description": "See docs/api.md for bodies and error codes. /admin/v1/* is served only on the operator listener (--admin-listen)." },
        "paths": paths,
    }))
}
