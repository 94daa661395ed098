//! The audit chain anchored by signed checkpoints kept outside the
//! database: what the hash chain alone cannot see (a cut-off tail, an
//! edited entry with every later hash recomputed) a checkpoint does; a
//! forged checkpoint is refused; every grant's signature counter is
//! reconciled with its signature records. Tampering is done the way an
//! attacker with database access would: SQL on the real SQLite file.

use std::process::Command;

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_server::audit::chain::{GENESIS, entry_hash};
use shomei_server::audit::checkpoint::{AuditKey, Checkpoint, signed_text};
use shomei_server::config::{Overrides, ServeConfig};
use sqlx::Row as _;

use crate::common::*;

/// A day's activity: a grant that signed `n` hashes.
async fn activity(env: &Env, n: u8) -> String {
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    for i in 0..n {
        let (s, v) = env
            .sign_one(&token, &w.terminal, &w.credential, &[i; 32])
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let grants = env.admin_get("/admin/v1/grants").await;
    grants[0]["id"].as_str().unwrap().to_owned()
}

async fn db(env: &Env) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        env._dir.path().join("shomei.db").display()
    ))
    .await
    .unwrap()
}

async fn checkpoint(env: &Env) -> Checkpoint {
    let r = env
        .http
        .post(format!("{}/admin/v1/audit/checkpoints", env.admin_base))
        .bearer_auth(&env.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

async fn verify_with(env: &Env, checkpoints: &[Checkpoint]) -> Value {
    let r = env
        .http
        .post(format!("{}/admin/v1/audit/verify", env.admin_base))
        .bearer_auth(&env.token)
        .json(&json!({ "checkpoints": checkpoints }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn last_seq(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query("SELECT MAX(seq) AS m FROM audit")
        .fetch_one(pool)
        .await
        .unwrap()
        .get::<i64, _>("m")
}

#[tokio::test]
async fn a_checkpoint_detects_the_tail_cut_off_the_log() {
    let env = Env::new().await;
    activity(&env, 3).await;
    let cp = checkpoint(&env).await;
    let pool = db(&env).await;
    assert_eq!(
        cp.seq,
        last_seq(&pool).await,
        "the checkpoint covers the whole log"
    );

    // The attacker removes the last three entries (the signatures).
    sqlx::query("DELETE FROM audit WHERE seq > $1")
        .bind(cp.seq - 3)
        .execute(&pool)
        .await
        .unwrap();
    let plain = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(
        plain["broken_at_seq"],
        Value::Null,
        "the chain alone cannot see a cut-off tail: {plain}"
    );

    let report = verify_with(&env, std::slice::from_ref(&cp)).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["checkpoints"][0]["failure"], "truncated", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains(&format!("seq {}", cp.seq)),
        "{report}"
    );
}

#[tokio::test]
async fn a_checkpoint_detects_an_entry_rewritten_with_every_later_hash_recomputed() {
    let env = Env::new().await;
    activity(&env, 2).await;
    let cp = checkpoint(&env).await;
    let pool = db(&env).await;

    // The attacker edits entry 2 and recomputes every hash after it: the chain verifies again.
    sqlx::query("UPDATE audit SET details = '{\"name\":\"forged\"}' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT * FROM audit ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    let mut prev = GENESIS;
    for r in &rows {
        let seq: i64 = r.get("seq");
        let (actor, action, subject, details): (String, String, String, String) = (
            r.get("actor"),
            r.get("action"),
            r.get("subject"),
            r.get("details"),
        );
        let hash = entry_hash(
            &prev,
            seq,
            r.get("at_ms"),
            &actor,
            &action,
            &subject,
            &details,
        );
        sqlx::query("UPDATE audit SET prev_hash = $1, hash = $2 WHERE seq = $3")
            .bind(&prev[..])
            .bind(&hash[..])
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        prev = hash;
    }
    let plain = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(
        plain["broken_at_seq"],
        Value::Null,
        "a rehashed chain verifies on its own: {plain}"
    );

    let report = verify_with(&env, std::slice::from_ref(&cp)).await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["checkpoints"][0]["failure"], "rewritten", "{report}");
    assert_eq!(report["checkpoints"][0]["seq"], cp.seq);
}

#[tokio::test]
async fn an_intact_log_verifies_against_every_checkpoint_taken_along_the_way() {
    let env = Env::new().await;
    activity(&env, 1).await;
    let first = checkpoint(&env).await;
    activity(&env, 2).await;
    let second = checkpoint(&env).await;
    assert!(second.seq > first.seq);
    let report = verify_with(&env, &[first, second]).await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["checkpoints"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_forged_checkpoint_is_refused() {
    let env = Env::new().await;
    activity(&env, 2).await;
    let real = checkpoint(&env).await;

    // Moved back to cover less (to hide a truncation), text and fields edited together.
    let mut moved = real.clone();
    moved.seq -= 2;
    moved.signed = signed_text(moved.seq, &moved.head, moved.at_ms, &moved.key_id);
    // Signed by a key of the attacker's own, under its own key id …
    let (mallory, _) = AuditKey::generate().unwrap();
    let own = mallory.sign(real.seq, &[7; 32], real.at_ms);
    // … or claiming the server's key id.
    let mut claimed = real.clone();
    claimed.head = hex::encode([7u8; 32]);
    claimed.signed = signed_text(claimed.seq, &claimed.head, claimed.at_ms, &claimed.key_id);
    let sig = mallory.sign(0, &[0; 32], 0); // any signature by the wrong key
    claimed.signature = sig.signature;
    // A JSON field that disagrees with the signed text.
    let mut field_only = real.clone();
    field_only.head = hex::encode([7u8; 32]);

    let report = verify_with(&env, &[moved, own, claimed, field_only, real]).await;
    let failures: Vec<&str> = report["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["failure"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(
        failures,
        [
            "signature_invalid",
            "unknown_key",
            "signature_invalid",
            "signature_invalid",
            "none"
        ],
        "{report}"
    );
    assert_eq!(report["ok"], false);
}

#[tokio::test]
async fn a_signature_counter_that_disagrees_with_its_records_is_reported() {
    let env = Env::new().await;
    let grant = activity(&env, 3).await;
    assert_eq!(env.admin_get("/admin/v1/audit/verify").await["ok"], true);
    let pool = db(&env).await;
    // The counter is lowered to hide two signatures (the audit entries stay).
    sqlx::query("UPDATE grants SET signatures_made = 1 WHERE id = $1")
        .bind(&grant)
        .execute(&pool)
        .await
        .unwrap();
    let report = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(
        report["signature_mismatches"],
        json!([{ "grant": grant, "signatures_made": 1, "signature_records": 3 }]),
        "{report}"
    );
}

#[tokio::test]
async fn a_checkpoint_verifies_with_openssl_and_the_exported_audit_key() {
    let env = Env::new().await;
    activity(&env, 1).await;
    let cp = checkpoint(&env).await;
    let key = env.admin_get("/admin/v1/audit/key").await;
    assert_eq!(key["key_id"], cp.key_id.as_str());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("audit-key.pem"),
        key["public_key_pem"].as_str().unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("checkpoint.txt"), &cp.signed).unwrap();
    std::fs::write(
        dir.path().join("checkpoint.sig"),
        base64::engine::general_purpose::STANDARD
            .decode(&cp.signature)
            .unwrap(),
    )
    .unwrap();
    let openssl = || {
        Command::new("openssl")
            .args([
                "dgst",
                "-sha256",
                "-verify",
                "audit-key.pem",
                "-signature",
                "checkpoint.sig",
                "checkpoint.txt",
            ])
            .current_dir(dir.path())
            .output()
            .expect("run openssl")
    };
    let out = openssl();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "{out:?}"
    );
    // The signed text names the seq and head; one changed digit and OpenSSL refuses.
    assert!(
        cp.signed
            .contains(&format!("\nseq={}\nhead={}\n", cp.seq, cp.head))
    );
    std::fs::write(
        dir.path().join("checkpoint.txt"),
        cp.signed
            .replace(&format!("seq={}", cp.seq), &format!("seq={}", cp.seq - 1)),
    )
    .unwrap();
    assert!(
        !openssl().status.success(),
        "an edited checkpoint must not verify"
    );
}

#[tokio::test]
async fn checkpoints_are_appended_to_the_file_outside_the_database() {
    let env = Env::new().await;
    activity(&env, 1).await;
    let a = checkpoint(&env).await;
    let b = checkpoint(&env).await;
    let file = env._dir.path().join("audit-checkpoints.jsonl");
    let kept =
        Checkpoint::parse_file(&std::fs::read_to_string(&file).expect("checkpoint file written"))
            .unwrap();
    assert!(
        kept.ends_with(&[a, b]),
        "on-demand checkpoints are appended: {kept:?}"
    );
}

#[tokio::test]
async fn periodic_checkpoints_follow_the_growing_log() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elsewhere/checkpoints.jsonl");
    let mut cfg = ServeConfig::resolve(Overrides {
        data_dir: Some(dir.path().join("data")),
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    })
    .unwrap();
    cfg.audit.checkpoint_file = Some(file.clone());
    cfg.audit.checkpoint_interval_s = 1;
    let running = shomei_server::run::start(cfg).await.unwrap();
    running.app.create_facility("Clinic P").await.unwrap();
    let head = running.app.store.audit_head().await.unwrap().unwrap();
    // Wait (bounded) for the periodic writer to cover the head; no timing is asserted.
    let mut covered = false;
    for _ in 0..100 {
        if let Ok(text) = std::fs::read_to_string(&file)
            && Checkpoint::parse_file(&text)
                .map(|c| {
                    c.iter()
                        .any(|c| c.seq == head.seq && c.head == hex::encode(head.hash))
                })
                .unwrap_or(false)
            {
                covered = true;
                break;
            }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(
        covered,
        "a periodic checkpoint of seq {} appears in {}",
        head.seq,
        file.display()
    );
    running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_trusted_key_is_a_bad_request() {
    let env = Env::new().await;
    let cp = checkpoint(&env).await;
    let res = env
        .post_json(
            "/admin/v1/audit/verify",
            Some(&format!("Bearer {}", env.token)),
            &json!({ "checkpoints": [cp], "public_key_pem": "not a key" }),
        )
        .await;
    assert_problem(&res, 400, "bad_request");
}
