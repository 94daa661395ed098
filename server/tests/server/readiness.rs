//! `/healthz` (live: the process answers) and `/readyz` (the store answers
//! and has every migration of this binary), on both listeners; readiness
//! lost for real: a migration record removed from the SQLite file, the
//! PostgreSQL database dropped under a running server.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;
use crate::storage::PgDb;

async fn get(env: &Env, base: &str, path: &str) -> (StatusCode, Value, String) {
    let r = env.http.get(format!("{base}{path}")).send().await.unwrap();
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, r.json().await.unwrap_or(Value::Null), ct)
}

#[tokio::test]
async fn a_current_store_is_ready_on_both_listeners() {
    let env = Env::new().await;
    for base in [&env.base, &env.admin_base] {
        let (s, v, _) = get(&env, base, "/readyz").await;
        assert_eq!(s, StatusCode::OK, "{base}: {v}");
        assert_eq!(
            v,
            serde_json::json!({ "status": "ready", "store": "sqlite" })
        );
        let (s, v, _) = get(&env, base, "/healthz").await;
        assert_eq!(
            (s, v),
            (StatusCode::OK, serde_json::json!({ "status": "ok" }))
        );
    }
}

#[tokio::test]
async fn a_missing_migration_makes_the_server_unready_but_still_live() {
    let env = Env::new().await;
    // Another process (an operator's restore of an old backup, say) leaves
    // the schema record without the newest migration.
    let db = env._dir.path().join("shomei.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = $1")
        .bind(newest)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let (s, v, ct) = get(&env, &env.base, "/readyz").await;
    assert_problem(&(s, v.clone()), 503, "unavailable");
    assert_eq!(ct, "application/problem+json");
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("migrations not applied: [{newest}]")),
        "{v}"
    );
    let (s, _, _) = get(&env, &env.base, "/healthz").await;
    assert_eq!(s, StatusCode::OK, "liveness does not depend on the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_postgres_database_makes_the_server_unready_but_still_live() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let url = db.url();
    let env = Env::with_config(move |c| c.database_url = Some(url)).await;
    let (s, v, _) = get(&env, &env.admin_base, "/readyz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["store"], "postgres");

    db.drop_db().await; // DROP DATABASE … WITH (FORCE): the server's connections are cut
    let (s, v, _) = get(&env, &env.admin_base, "/readyz").await;
    assert_problem(&(s, v.clone()), 503, "unavailable");
    let detail = v["detail"].as_str().unwrap();
    assert!(detail.contains("store"), "{detail}");
    assert!(
        !detail.contains("shomei:shomei"),
        "the database URL (with its password) leaked: {detail}"
    );
    let (s, _, _) = get(&env, &env.base, "/healthz").await;
    assert_eq!(s, StatusCode::OK, "liveness does not depend on the store");
}
