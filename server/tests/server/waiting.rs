//! Terminals waiting on a login (`wait` long-poll, `events` SSE): each is
//! woken by ITS login's decision or by the login's expiry — on SQLite and
//! on PostgreSQL. Decisions taken by another replica are in `replicas`;
//! the store-level re-check is in the storage suite.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use shomei_core::Decision;
use shomei_server::config::ServeConfig;

use crate::common::*;
use crate::storage::PgDb;

/// The answer of `GET …/wait?timeout=…` for `login_id`.
pub(crate) async fn wait(env: &Env, terminal: &(String, String), login_id: &str, timeout_s: u64) -> Value {
    let url = format!(
        "{}/v1/terminal/logins/{login_id}/wait?timeout={timeout_s}",
        env.base
    );
    let r = env
        .http
        .get(&url)
        .header("authorization", basic(&terminal.0, &terminal.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// The `data:` lines of a whole `events` stream.
pub(crate) async fn events(env: &Env, terminal: &(String, String), login_id: &str) -> Vec<String> {
    let url = format!("{}/v1/terminal/logins/{login_id}/events", env.base);
    let r = env
        .http
        .get(&url)
        .header("authorization", basic(&terminal.0, &terminal.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Until `env` has `n` waiters registered on `login_id` (bounded).
pub(crate) async fn until_waiting(env: &Env, login_id: &str, n: usize) {
    for _ in 0..1000 {
        if env.app().waiters.waiting_on(login_id) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} waiters on {login_id}, expected {n}",
        env.app().waiters.waiting_on(login_id)
    );
}

async fn pg_env(db: &PgDb, f: impl FnOnce(&mut ServeConfig)) -> Env {
    let url = db.url();
    Env::with_config(move |c| {
        c.database_url = Some(url);
        f(c)
    })
    .await
}

// ---------------------------------------------------------------- the rules, per store

/// A waiter on login B is not answered by login A's decision; A's is.
async fn a_waiter_is_woken_by_its_own_logins_decision_only(env: &Env) {
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let a = env.start_login(&w.terminal).await;
    let b = env.start_login(&w.terminal).await;
    let script = async {
        until_waiting(env, a.id(), 1).await;
        until_waiting(env, b.id(), 1).await;
        let d = env.decide(&phone, &a, Decision::Approve, a.number()).await;
        assert_eq!(d.0, StatusCode::OK, "{}", d.1);
        // A's waiter was answered and left; B's still waits
        until_waiting(env, a.id(), 0).await;
        assert_eq!(
            env.app().waiters.waiting_on(b.id()),
            1,
            "B's waiter was answered by A's decision"
        );
        let d = env.decide(&phone, &b, Decision::Deny, 0).await;
        assert_eq!(d.0, StatusCode::OK, "{}", d.1);
    };
    let (va, vb, ()) = tokio::join!(
        wait(env, &w.terminal, a.id(), 60),
        wait(env, &w.terminal, b.id(), 60),
        script
    );
    assert_eq!(va["status"], "approved");
    assert_eq!(vb["status"], "denied");
    assert_eq!(env.app().waiters.waited(), 0, "answered waiters unregister");
}

/// Several terminals waiting on one login (SSE and long-poll) all get it.
async fn every_waiter_of_a_login_gets_its_decision(env: &Env) {
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let l = env.start_login(&w.terminal).await;
    let decide = async {
        // two long-polls and an SSE stream on one registration entry
        until_waiting(env, l.id(), 3).await;
        env.decide(&phone, &l, Decision::Approve, l.number()).await
    };
    let (v1, v2, sse, d) = tokio::join!(
        wait(env, &w.terminal, l.id(), 60),
        wait(env, &w.terminal, l.id(), 60),
        events(env, &w.terminal, l.id()),
        decide
    );
    assert_eq!(d.0, StatusCode::OK, "{}", d.1);
    assert_eq!(v1["status"], "approved");
    assert_eq!(v2["status"], "approved");
    // (pending first unless the decision landed between its registration and its read)
    assert_eq!(
        sse.last().map(String::as_str),
        Some(r#"{"status":"approved"}"#),
        "{sse:?}"
    );
    assert!(
        sse[..sse.len() - 1]
            .iter()
            .all(|e| e == r#"{"status":"pending"}"#),
        "{sse:?}"
    );
}

/// A login decided before the terminal starts waiting is answered at once.
async fn a_decision_before_the_wait_is_answered_at_once(env: &Env) {
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let l = env.start_login(&w.terminal).await;
    let d = env.decide(&phone, &l, Decision::Approve, l.number()).await;
    assert_eq!(d.0, StatusCode::OK, "{}", d.1);
    // a 60 s long-poll that returned is the proof it did not wait for a wake
    assert_eq!(
        wait(env, &w.terminal, l.id(), 60).await["status"],
        "approved"
    );
    assert_eq!(
        events(env, &w.terminal, l.id()).await,
        [r#"{"status":"approved"}"#]
    );
}

/// Nobody decides: waiters get `expired` when the login expires (a 3 s
/// login), well before their own deadline.
async fn waiters_get_expired_at_the_logins_expiry(env: &Env) {
    let w = env.world().await;
    let l = env.start_login(&w.terminal).await;
    let (v, sse) = tokio::join!(
        wait(env, &w.terminal, l.id(), 60),
        events(env, &w.terminal, l.id())
    );
    assert_eq!(v["status"], "expired");
    assert_eq!(sse, [r#"{"status":"pending"}"#, r#"{"status":"expired"}"#]);
}

fn short_logins(c: &mut ServeConfig) {
    c.policy.login_ttl_s = 3;
}

#[tokio::test]
async fn sqlite_a_waiter_is_woken_by_its_own_logins_decision_only() {
    a_waiter_is_woken_by_its_own_logins_decision_only(&Env::new().await).await;
}

#[tokio::test]
async fn sqlite_every_waiter_of_a_login_gets_its_decision() {
    every_waiter_of_a_login_gets_its_decision(&Env::new().await).await;
}

#[tokio::test]
async fn sqlite_a_decision_before_the_wait_is_answered_at_once() {
    a_decision_before_the_wait_is_answered_at_once(&Env::new().await).await;
}

#[tokio::test]
async fn sqlite_waiters_get_expired_at_the_logins_expiry() {
    waiters_get_expired_at_the_logins_expiry(&Env::with_config(short_logins).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_waiting_rules() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    a_waiter_is_woken_by_its_own_logins_decision_only(&pg_env(&db, |_| {}).await).await;
    db.reset().await;
    every_waiter_of_a_login_gets_its_decision(&pg_env(&db, |_| {}).await).await;
    db.reset().await;
    a_decision_before_the_wait_is_answered_at_once(&pg_env(&db, |_| {}).await).await;
    db.reset().await;
    waiters_get_expired_at_the_logins_expiry(&pg_env(&db, short_logins).await).await;
    db.drop_db().await;
}
