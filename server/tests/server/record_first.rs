//! A small signHash call with a software key hands its audit record to the
//! group commit *before* it signs, and signs while the record commits
//! (service/signature.rs). What may refuse the call still refuses it before
//! anything is recorded, and a record the commit refuses still returns no
//! signature (held_authorization.rs checks those refusals one by one).

use reqwest::StatusCode;
use serde_json::Value;
use shomei_server::signing::{KeyHold, SealedKey, SignatureAlgorithm, SigningBackend, SigningError, SoftwareBackend};

use crate::common::*;

async fn sqlite(env: &Env) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", env._dir.path().join("shomei.db").display())).await.unwrap()
}

/// The audit log's `signature.create` entries, from the export.
async fn signature_entries(env: &Env) -> Vec<Value> {
    env.audit_export().await.into_iter().filter(|e| e["action"] == "signature.create").collect()
}

async fn signatures_made(env: &Env) -> i64 {
    env.admin_get("/admin/v1/grants").await[0]["signatures_made"].as_i64().unwrap()
}

/// enroll → login → approve, and the stored key flipped in one byte
/// before the grant's first call (so no opened key is held for it): the
/// call fails, and no record, counter or signing-log row says it signed.
/// With the key restored, the same grant signs and records one signature.
#[tokio::test]
async fn a_key_that_does_not_open_fails_before_anything_is_recorded() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let db = sqlite(&env).await;
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT sealed_key FROM credentials WHERE id = ?1").bind(&w.credential).fetch_one(&db).await.unwrap();
    let mut flipped = sealed.clone();
    *flipped.last_mut().unwrap() ^= 1;
    sqlx::query("UPDATE credentials SET sealed_key = ?1 WHERE id = ?2").bind(&flipped).bind(&w.credential).execute(&db).await.unwrap();

    let refused = env.sign_one(&token, &w.terminal, &w.credential, &[1; 32]).await;
    assert_problem(&refused, 500, "internal");
    assert!(refused.1.get("signatures").is_none(), "no signature in a refusal: {}", refused.1);
    assert_eq!(signatures_made(&env).await, 0, "the grant's counter did not move");
    assert!(signature_entries(&env).await.is_empty(), "no signature.create entry");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signatures").fetch_one(&db).await.unwrap();
    assert_eq!(rows, 0, "no signing-log row");

    sqlx::query("UPDATE credentials SET sealed_key = ?1 WHERE id = ?2").bind(&sealed).bind(&w.credential).execute(&db).await.unwrap();
    let (s, v) = env.sign_one(&token, &w.terminal, &w.credential, &[2; 32]).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(signatures_made(&env).await, 1);
    let entries = signature_entries(&env).await;
    assert_eq!(entries.len(), 1);
    let details: Value = serde_json::from_str(entries[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(details["hash"], hex::encode([2u8; 32]), "the recorded hash is the signed one");
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
}

/// Calls signing at once on one grant: every answer carries a signature
/// that verifies under the credential's certificate over its own hash
/// (no answer got another call's signature while records and signatures
/// were made side by side), and each is recorded once with its hash.
#[tokio::test]
async fn concurrent_calls_each_get_their_own_signature_and_record() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let documents: Vec<Vec<u8>> = (0..24).map(|i| format!("<Prescription>{i}</Prescription>").into_bytes()).collect();
    let hashes: Vec<[u8; 32]> = documents.iter().map(|d| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, d).as_ref().try_into().unwrap()).collect();
    let calls = hashes.iter().map(|h| env.sign_one(&token, &w.terminal, &w.credential, h));
    let answers = futures::future::join_all(calls).await;

    let cert = env.app().store.get_credential(&w.credential).await.unwrap().unwrap().certificate_chain[0].clone();
    let (_, cert) = x509_parser::parse_x509_certificate(&cert).unwrap();
    let key = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        cert.public_key().subject_public_key.data.to_vec(),
    );
    for (i, (s, v)) in answers.iter().enumerate() {
        assert_eq!(*s, StatusCode::OK, "{v}");
        let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, v["signatures"][0].as_str().unwrap()).unwrap();
        assert!(key.verify(&documents[i], &sig).is_ok(), "call {i}: the signature is over its own document");
        if i > 0 {
            assert!(key.verify(&documents[i - 1], &sig).is_err(), "and not over another call's");
        }
    }
    assert_eq!(signatures_made(&env).await, 24);
    let mut recorded: Vec<String> = signature_entries(&env)
        .await
        .iter()
        .map(|e| serde_json::from_str::<Value>(e["details"].as_str().unwrap()).unwrap()["hash"].as_str().unwrap().to_owned())
        .collect();
    recorded.sort();
    let mut expected: Vec<String> = hashes.iter().map(hex::encode).collect();
    expected.sort();
    assert_eq!(recorded, expected, "one record per call, with its hash");
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
}

/// Signs nothing: it checks and opens keys as the software backend does
/// (`prepare_held`), then fails every signature — a fault inside the
/// signing itself, after the call's record was handed to the commit.
struct FailsToSign(SoftwareBackend);

impl SigningBackend for FailsToSign {
    fn sign_digest(&self, _: &SealedKey, _: SignatureAlgorithm, _: &[u8]) -> Result<Vec<u8>, SigningError> {
        Err(SigningError::Crypto("injected fault"))
    }

    fn prepare_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<(), SigningError> {
        self.0.prepare_held(hold, key, alg, digests)
    }
}

/// A signature that fails after its record committed: the call answers an
/// internal error with no signature, and the audit log says so next to the
/// record — a `signature.failed` entry with the same grant and hash — and
/// still verifies. (A second App on the running server's store, with the
/// faulty backend; the grant comes from the real HTTP flow.)
#[tokio::test]
async fn a_signature_failing_after_its_record_committed_is_logged_as_failed() {
    let env = Env::new().await;
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    let running = env.app();
    let faulty = shomei_server::service::App::new(
        running.store.clone(),
        running.policy.clone(),
        running.origin.clone(),
        running.kek.clone(),
        std::sync::Arc::new(FailsToSign(SoftwareBackend::new(running.kek.clone()))),
    );
    let call = faulty.authorize_signing(&w.terminal.0, &w.terminal.1, &token, &w.credential).await.unwrap();
    let request: shomei_server::service::signature::SignHashRequest = serde_json::from_value(serde_json::json!({
        "credentialID": w.credential, "hashes": [std64(&[9; 32])], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11"
    }))
    .unwrap();
    let err = faulty.csc_sign_hash(call, request).await.expect_err("no signature comes back");
    assert!(err.to_string().contains("injected fault"), "{err}");

    let entries = env.audit_export().await;
    let created: Vec<&Value> = entries.iter().filter(|e| e["action"] == "signature.create").collect();
    let failed: Vec<&Value> = entries.iter().filter(|e| e["action"] == "signature.failed").collect();
    assert_eq!((created.len(), failed.len()), (1, 1), "the committed record and its failure");
    assert!(failed[0]["seq"].as_i64() > created[0]["seq"].as_i64(), "the failure follows the record");
    assert_eq!(failed[0]["subject"], w.credential);
    let created_details: Value = serde_json::from_str(created[0]["details"].as_str().unwrap()).unwrap();
    let failed_details: Value = serde_json::from_str(failed[0]["details"].as_str().unwrap()).unwrap();
    assert_eq!(failed_details["grant"], created_details["grant"]);
    assert_eq!(failed_details["hashes"], serde_json::json!([hex::encode([9u8; 32])]));
    assert_eq!(signatures_made(&env).await, 1, "the record counts against the grant, as committed");
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
}
