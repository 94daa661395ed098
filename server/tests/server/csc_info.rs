//! CSC `info` says what the server really does: every method it lists
//! answers, every algorithm and format it lists signs, and the OAuth issuer
//! it names leads a client to the working device-grant endpoints. Each test
//! reads the live `info` document, so a list that grows without the server
//! (or the server without the list) fails here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Env, World, basic, std64};

const SHA256_OID: &str = "2.16.840.1.101.3.4.2.1";

async fn info(env: &Env) -> Value {
    let r = env
        .http
        .post(format!("{}/csc/v2/info", env.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// A world with a live grant and one credential per key type the server issues.
struct Signing {
    w: World,
    token: String,
    rsa: String,
    ecdsa: String,
}

async fn signing(env: &Env) -> Signing {
    let w = env.world().await;
    let c = env
        .admin(
            "/admin/v1/credentials",
            json!({ "practitioner_id": w.practitioner, "algorithm": "ecdsa-p256" }),
        )
        .await;
    let ecdsa = c["id"].as_str().unwrap().to_owned();
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let rsa = w.credential.clone();
    Signing {
        w,
        token,
        rsa,
        ecdsa,
    }
}

/// The key's own `signAlgo` list from `credentials/info`.
async fn key_algos(env: &Env, s: &Signing, credential: &str) -> Vec<String> {
    let (st, v) = env
        .csc(
            "credentials/info",
            &s.token,
            &s.w.terminal,
            json!({ "credentialID": credential }),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    strings(&v["key"]["algo"])
}

#[tokio::test]
async fn info_lists_exactly_the_csc_methods_the_server_routes() {
    let env = Env::new().await;
    let methods = strings(&info(&env).await["methods"]);
    let doc: Value = env
        .http
        .get(format!("{}/openapi.json", env.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routed: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|p| p.strip_prefix("/csc/v2/").map(str::to_owned))
        .collect();
    routed.sort();
    let mut listed = methods.clone();
    listed.sort();
    assert_eq!(
        listed, routed,
        "info.methods and the routed /csc/v2/ operations differ"
    );
}

#[tokio::test]
async fn every_listed_method_answers_a_well_formed_call() {
    let env = Env::new().await;
    let s = signing(&env).await;
    let hash = std64(&[7u8; 32]);
    for method in strings(&info(&env).await["methods"]) {
        let body = match method.as_str() {
            "info" | "credentials/list" => json!({}),
            "credentials/info" => json!({ "credentialID": s.rsa }),
            "signatures/signHash" => {
                json!({ "credentialID": s.rsa, "hashes": [hash], "hashAlgorithmOID": SHA256_OID,
                                              "signAlgo": "1.2.840.113549.1.1.11" })
            }
            "signatures/signDoc" => json!({ "credentialID": s.rsa, "documentDigests": [
                { "hashes": [hash], "hashAlgorithmOID": SHA256_OID, "signature_format": "C",
                  "conformance_level": "Ades-B-B", "signAlgo": "1.2.840.113549.1.1.11", "signed_envelope_property": "Detached" }] }),
            other => {
                panic!("info lists {other:?}, which this test does not know how to call: add it")
            }
        };
        let (st, v) = env.csc(&method, &s.token, &s.w.terminal, body).await;
        assert_eq!(st, StatusCode::OK, "{method}: {v}");
    }
}

#[tokio::test]
async fn every_listed_sign_algorithm_signs_with_a_credential_it_fits() {
    let env = Env::new().await;
    let s = signing(&env).await;
    let algos = strings(&info(&env).await["signAlgorithms"]["algos"]);
    assert!(!algos.is_empty());
    let rsa_algos = key_algos(&env, &s, &s.rsa).await;
    let ecdsa_algos = key_algos(&env, &s, &s.ecdsa).await;
    for algo in &algos {
        let credential = if rsa_algos.contains(algo) {
            &s.rsa
        } else if ecdsa_algos.contains(algo) {
            &s.ecdsa
        } else {
            panic!(
                "info lists signAlgo {algo} but no credential type accepts it (rsa: {rsa_algos:?}, ecdsa: {ecdsa_algos:?})"
            );
        };
        let (st, v) = env
            .csc(
                "signatures/signHash",
                &s.token,
                &s.w.terminal,
                json!({ "credentialID": credential, "hashes": [std64(&[1u8; 32])], "hashAlgorithmOID": SHA256_OID, "signAlgo": algo }),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "signAlgo {algo}: {v}");
        let sig = STANDARD
            .decode(v["signatures"][0].as_str().unwrap())
            .unwrap();
        if credential == &s.rsa {
            assert_eq!(sig.len(), 256, "RSA-2048 signature for {algo}");
        } else {
            assert_eq!(sig[0], 0x30, "DER ECDSA signature for {algo}");
        }
    }
    // And the converse: each key's own list is covered by info.
    for a in rsa_algos.iter().chain(&ecdsa_algos) {
        assert!(
            algos.contains(a),
            "credentials/info offers {a}, info.signAlgorithms does not"
        );
    }
}

#[tokio::test]
async fn every_listed_format_envelope_and_level_signs_a_document() {
    let env = Env::new().await;
    let s = signing(&env).await;
    let info = info(&env).await;
    let formats = strings(&info["signature_formats"]["formats"]);
    let envelopes = info["signature_formats"]["envelope_properties"]
        .as_array()
        .unwrap();
    assert_eq!(
        formats.len(),
        envelopes.len(),
        "one envelope list per format"
    );
    let levels = strings(&info["conformance_levels"]);
    assert!(!levels.is_empty());
    for (format, envelope) in formats.iter().zip(envelopes) {
        for envelope in strings(envelope) {
            for level in &levels {
                let mut entry = json!({ "hashes": [std64(&[3u8; 32])], "hashAlgorithmOID": SHA256_OID, "signature_format": format,
                                        "conformance_level": level, "signAlgo": "1.2.840.113549.1.1.11",
                                        "signed_envelope_property": envelope });
                if format == "X" {
                    entry["reference_ids"] = json!(["Prescription"]);
                }
                let (st, v) = env
                    .csc(
                        "signatures/signDoc",
                        &s.token,
                        &s.w.terminal,
                        json!({ "credentialID": s.rsa, "documentDigests": [entry] }),
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{format}/{envelope}/{level}: {v}");
                assert_eq!(v["SignatureObject"].as_array().unwrap().len(), 1);
            }
        }
    }
}

#[tokio::test]
async fn the_oauth_issuer_leads_to_the_working_device_grant_endpoints() {
    let env = Env::new().await;
    let w = env.world().await;
    let info = info(&env).await;
    assert_eq!(strings(&info["authType"]), ["external"]);
    let issuer = info["oauth2Issuer"].as_str().unwrap();
    let r = env
        .http
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let meta: Value = r.json().await.unwrap();
    assert_eq!(
        meta["issuer"], issuer,
        "RFC 8414 §3.3: the issuer must match"
    );
    assert_eq!(
        strings(&meta["grant_types_supported"]),
        ["urn:ietf:params:oauth:grant-type:device_code"]
    );
    // Both endpoints it names answer as the device grant does.
    let r = env
        .http
        .post(meta["device_authorization_endpoint"].as_str().unwrap())
        .header("authorization", basic(&w.terminal.0, &w.terminal.1))
        .form(&[("scope", "sign")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let auth: Value = r.json().await.unwrap();
    let r = env
        .http
        .post(meta["token_endpoint"].as_str().unwrap())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", auth["device_code"].as_str().unwrap()),
            ("client_id", &w.terminal.0),
            ("client_secret", &w.terminal.1),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let t: Value = r.json().await.unwrap();
    assert_eq!(
        t["error"], "authorization_pending",
        "client_secret_post, as advertised, is accepted"
    );
}

#[tokio::test]
async fn the_logo_is_an_inline_svg_image() {
    let env = Env::new().await;
    let logo = info(&env).await["logo"].as_str().unwrap().to_owned();
    let b64 = logo
        .strip_prefix("data:image/svg+xml;base64,")
        .expect("a data: URI of an SVG");
    let svg = String::from_utf8(STANDARD.decode(b64).unwrap()).unwrap();
    assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
}
