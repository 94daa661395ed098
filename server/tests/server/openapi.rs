//! The OpenAPI documents against the router and against docs/api.md:
//! every route the source registers is an operation of its listener's
//! document, every documented operation answers on the live listener
//! (not the 404 fallback, not 405), every body schema resolves, and every
//! operation is listed in docs/api.md. (That live responses match their
//! schemas is schemathesis' job in scripts/test.)

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use shomei_server::http::openapi::{AdminApi, PublicApi};
use utoipa::OpenApi;

use crate::common::Env;

const HTTP_SOURCES: &[(&str, &str)] = &[
    ("mod.rs", include_str!("../../src/http/mod.rs")),
    ("phone.rs", include_str!("../../src/http/phone.rs")),
    ("terminal.rs", include_str!("../../src/http/terminal.rs")),
    ("csc.rs", include_str!("../../src/http/csc.rs")),
    (
        "verification.rs",
        include_str!("../../src/http/verification.rs"),
    ),
    ("demo.rs", include_str!("../../src/http/demo.rs")),
    ("admin.rs", include_str!("../../src/http/admin.rs")),
];

/// Routes that are on purpose in no document: the EHR demo page and its
/// session calls exist only with `--demo` (docs/api.md lists them as
/// demo-only); they are a page for people, not an API to integrate.
const UNDOCUMENTED: &[(&str, &str)] = &[
    ("get", "/demo"),
    ("get", "/demo/demo.js"),
    ("get", "/demo/demo.css"),
    ("post", "/demo/api/session"),
    ("delete", "/demo/api/session"),
    ("get", "/demo/api/session/qr.png"),
    ("get", "/demo/api/session/events"),
    ("post", "/demo/api/session/token"),
    ("post", "/demo/api/session/sign"),
];

/// Which listener a source file's routes are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Listener {
    Public,
    Admin,
    Both,
}

/// Every `.route(PATH, method(h).method(h)…)` call in the HTTP sources, as
/// (listener, method, path). The path is a string literal or a constant
/// resolved here; an unresolvable one fails the test (so a new form of
/// registration cannot slip past it).
fn routed() -> BTreeSet<(Listener, String, String)> {
    let mut out = BTreeSet::new();
    for (file, src) in HTTP_SOURCES {
        let mut rest = *src;
        while let Some(i) = rest.find(".route(") {
            let call = &rest[i + ".route(".len()..];
            // The call's argument list, up to the matching parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (j, c) in call.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &call[..end];
            rest = &call[end..];
            let (first, methods) = args.split_once(',').expect("route(path, handler)");
            let first = first.trim();
            let path = if let Some(lit) = first.strip_prefix('"') {
                lit.trim_end_matches('"').to_owned()
            } else if first == "shomei_core::payload::PAYLOAD_PATH" {
                shomei_core::payload::PAYLOAD_PATH.to_owned()
            } else {
                panic!("{file}: route path {first} is neither a literal nor a known constant");
            };
            let listener = match (*file, path.as_str()) {
                ("admin.rs", _) => Listener::Admin,
                ("mod.rs", "/healthz" | "/readyz" | "/openapi.json") => Listener::Both,
                // Operator listener only (mod.rs's admin_router).
                ("mod.rs", "/metrics") => Listener::Admin,
                _ => Listener::Public,
            };
            // Method routers: `get(h)`, `post(h).layer(…)`, `get(a).post(b)`:
            // a method name not preceded by an identifier character, then `(`.
            let mut found = 0;
            for m in ["get", "post", "delete", "put", "patch"] {
                let pat = format!("{m}(");
                for (k, _) in methods.match_indices(&pat) {
                    let before = methods[..k].chars().last();
                    if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        out.insert((listener, m.to_owned(), path.clone()));
                        found += 1;
                    }
                }
            }
            assert!(found > 0, "{file}: no method router for {path}: {methods}");
        }
    }
    out
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, _) in item.as_object().unwrap() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                out.insert((method.clone(), path.clone()));
            }
        }
    }
    out
}

fn public_doc() -> Value {
    serde_json::to_value(PublicApi::openapi()).unwrap()
}

fn admin_doc() -> Value {
    serde_json::to_value(AdminApi::openapi()).unwrap()
}

#[test]
fn route_walk_finds_every_listener_and_method_form() {
    let r = routed();
    // Guards the walker itself: each way routes are registered is seen.
    assert!(r.contains(&(Listener::Public, "post".into(), "/v1/phone/enroll".into())));
    assert!(
        r.contains(&(Listener::Public, "delete".into(), "/v1/phone/grants".into())),
        "chained .delete()"
    );
    assert!(
        r.contains(&(
            Listener::Public,
            "post".into(),
            "/csc/v2/signatures/signHash".into()
        )),
        "with .layer()"
    );
    assert!(
        r.contains(&(Listener::Public, "get".into(), "/shomei".into())),
        "constant path"
    );
    assert!(r.contains(&(
        Listener::Admin,
        "post".into(),
        "/admin/v1/audit/verify".into()
    )));
    assert!(r.contains(&(Listener::Both, "get".into(), "/healthz".into())));
    assert!(r.contains(&(Listener::Admin, "get".into(), "/metrics".into())));
    assert!(r.len() > 40, "only {} routes found", r.len());
}

#[test]
fn every_routed_operation_is_in_its_listeners_openapi_document() {
    let public = operations(&public_doc());
    let admin = operations(&admin_doc());
    let mut missing = Vec::new();
    for (listener, method, path) in routed() {
        if UNDOCUMENTED.contains(&(method.as_str(), path.as_str())) {
            continue;
        }
        let key = (method.clone(), path.clone());
        let in_public = public.contains(&key);
        let in_admin = admin.contains(&key);
        let ok = match listener {
            Listener::Public => in_public && !in_admin,
            Listener::Admin => in_admin && !in_public,
            Listener::Both => in_public && in_admin,
        };
        if !ok {
            missing.push(format!(
                "{listener:?} {method} {path} (public doc: {in_public}, admin doc: {in_admin})"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "routes not in (only) their listener's document:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_documented_operation_is_routed() {
    let routed: BTreeSet<(String, String)> = routed().into_iter().map(|(_, m, p)| (m, p)).collect();
    for doc in [public_doc(), admin_doc()] {
        for op in operations(&doc) {
            assert!(routed.contains(&op), "documented but not routed: {op:?}");
        }
    }
}

/// Walks a `$ref`-bearing JSON value and returns every `#/components/schemas/X`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[test]
fn every_response_and_body_of_both_documents_has_a_resolvable_schema() {
    for doc in [public_doc(), admin_doc()] {
        let mut all = BTreeSet::new();
        refs(&doc, &mut all);
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("foreign $ref {r}"));
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][&method];
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
            for (status, resp) in responses {
                if status == "204" {
                    assert!(
                        resp.get("content").is_none(),
                        "{method} {path}: 204 with a body"
                    );
                    continue;
                }
                let content = resp["content"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{method} {path} {status}: no body described"));
                for (ct, media) in content {
                    assert!(
                        media["schema"].is_object(),
                        "{method} {path} {status} {ct}: no schema"
                    );
                    if !status.starts_with('2') {
                        let schema = media["schema"]["$ref"].as_str().unwrap_or_default();
                        match ct.as_str() {
                            "application/problem+json" => assert_eq!(
                                schema, "#/components/schemas/Problem",
                                "{method} {path} {status}"
                            ),
                            "application/json" => {
                                assert!(
                                    path.starts_with("/oauth/"),
                                    "{method} {path} {status}: only /oauth/* errors are plain JSON"
                                );
                                assert_eq!(schema, "#/components/schemas/OAuthError");
                            }
                            other => panic!("{method} {path} {status}: error body as {other}"),
                        }
                    }
                }
            }
            if ["post", "put", "patch"].contains(&method.as_str())
                && op.get("requestBody").is_some()
            {
                assert!(
                    responses.contains_key("415"),
                    "{method} {path}: a body but no 415"
                );
                assert!(
                    responses.contains_key("413"),
                    "{method} {path}: a body but no 413"
                );
            }
            if op.get("security").is_some() {
                assert!(
                    responses.contains_key("401"),
                    "{method} {path}: authenticated but no 401"
                );
            }
        }
    }
}

/// OpenAPI 3.1 (no `itemSchema`) reads the `schema` of a `text/event-stream`
/// response as the schema of each event, an object with `event`, `data`,
/// `id`, `retry` — as schemathesis checks live streams. A stream documented
/// as `String` fails every event it sends (found by scripts/api-fuzz once it
/// reached `GET /v1/phone/signatures/events` with a real device token).
#[test]
fn every_event_stream_documents_each_event_as_an_object_with_event_and_data() {
    let mut streams = 0;
    for doc in [public_doc(), admin_doc()] {
        for (method, path) in operations(&doc) {
            let responses = doc["paths"][&path][&method]["responses"]
                .as_object()
                .unwrap();
            for (status, resp) in responses {
                let Some(media) = resp["content"].get("text/event-stream") else {
                    continue;
                };
                streams += 1;
                let mut schema = &media["schema"];
                if let Some(r) = schema["$ref"].as_str() {
                    let name = r.strip_prefix("#/components/schemas/").unwrap();
                    schema = &doc["components"]["schemas"][name];
                }
                let at = format!("{method} {path} {status}");
                assert_eq!(schema["type"], "object", "{at}: an event is an object");
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: no required fields"))
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert!(
                    required.contains(&"event") && required.contains(&"data"),
                    "{at}: event and data required, got {required:?}"
                );
                assert_eq!(schema["properties"]["data"]["type"], "string", "{at}");
                assert_eq!(schema["properties"]["event"]["type"], "string", "{at}");
                for optional in ["id", "retry"] {
                    if let Some(p) = schema["properties"].get(optional) {
                        assert!(p["type"].is_string(), "{at}: {optional} has no type");
                    }
                }
            }
        }
    }
    // the login status stream (terminal) and the signing log stream (phone)
    assert_eq!(streams, 2, "event-stream responses in the documents");
}

/// The names the signing log stream sends (server/src/http/phone.rs) are the
/// ones its documented event schema allows.
#[test]
fn signing_log_stream_schema_names_every_event_the_handler_sends() {
    let doc = public_doc();
    let pattern =
        doc["components"]["schemas"]["SignatureEventStream"]["properties"]["event"]["pattern"]
            .as_str()
            .expect("SignatureEventStream.event has a pattern");
    let names: BTreeSet<&str> = pattern
        .trim_start_matches("^(")
        .trim_end_matches(")$")
        .split('|')
        .collect();
    let source = include_str!("../../src/http/phone.rs");
    let mut sent = BTreeSet::new();
    for piece in source.split(".event(\"").skip(1) {
        sent.insert(piece.split('"').next().unwrap());
    }
    assert!(!sent.is_empty(), "no .event(\"…\") in phone.rs");
    assert_eq!(sent, names, "events sent vs events documented");
}

#[test]
fn problem_schema_names_every_stable_error_code() {
    let doc = public_doc();
    let code = &doc["components"]["schemas"]["ErrorCode"];
    let listed: Vec<&str> = code["enum"]
        .as_array()
        .expect("ErrorCode is an enum")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let known: Vec<&str> = shomei_core::api::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(listed, known);
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "code"] {
        assert!(
            problem["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == field),
            "Problem.{field} not required"
        );
    }
}

#[test]
fn every_documented_operation_is_listed_in_docs_api_md() {
    let md = include_str!("../../../docs/api.md");
    for doc in [public_doc(), admin_doc()] {
        for (method, path) in operations(&doc) {
            let head = format!("`{} {path}", method.to_uppercase());
            let listed = md
                .match_indices(&head)
                .any(|(i, _)| matches!(md[i + head.len()..].chars().next(), Some('`' | '?')));
            assert!(
                listed,
                "{} {path} is not in docs/api.md",
                method.to_uppercase()
            );
        }
    }
}

/// Fills `{param}` segments with a syntactically valid value.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "AAAAAAAAAAAAAAAAAAAAAA"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn each_listener_serves_its_own_document_and_every_operation_in_it_answers() {
    let env = Env::new().await;
    for (base, want) in [(&env.base, public_doc()), (&env.admin_base, admin_doc())] {
        let served: Value = env
            .http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            served, want,
            "{base}/openapi.json differs from the generated document"
        );
        for (method, path) in operations(&want) {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let r = env
                .http
                .request(m, format!("{base}{}", concrete(&path)))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let fallback = status == StatusCode::NOT_FOUND && body["detail"] == "no such endpoint";
            assert!(
                !fallback && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} on {base}: {status} {body}"
            );
        }
    }
    // Neither document names the other listener's operations.
    assert!(
        operations(&public_doc())
            .iter()
            .all(|(_, p)| !p.starts_with("/admin/"))
    );
    assert!(
        operations(&admin_doc())
            .iter()
            .all(|(_, p)| p.starts_with("/admin/v1/") || ["/healthz", "/readyz", "/metrics", "/openapi.json"].contains(&p.as_str()))
    );
}
