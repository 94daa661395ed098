//! Two replicas on one PostgreSQL database (issue 12): what one commits
//! reaches the other through LISTEN/NOTIFY — a decision wakes the
//! terminals waiting on the other replica, an ended grant drops the other
//! replica's held key — and a listener that lost its connection re-reads
//! after reconnecting, so a decision committed while it was away still
//! wakes its waiter. And each kind of change is published once it is
//! committed (decisions, grant revoked / used up / ended from the phone,
//! credential, terminal, device revoked or retired).
//!
//! Replica B runs with its backstop re-read a day apart
//! (`[replicas] recheck_interval_s = 86400`), so every wake B shows here
//! came from a notice or from the re-read after a reconnect, never from
//! the periodic re-check; B's own /metrics say which.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use shomei_core::Decision;
use shomei_server::config::ServeConfig;
use shomei_server::store::change::{Change, ChangeEvent};

use crate::common::*;
use crate::storage::PgDb;
use crate::waiting::{events, until_waiting, wait};

/// A configuration whose periodic re-read never comes during a test.
fn no_backstop(c: &mut ServeConfig) {
    c.replicas.recheck_interval_s = 86_400;
}

/// Replicas A and B on `db`, sharing the KEK and the public origin (as
/// behind one load balancer); `fb` configures B.
async fn replicas(db: &PgDb, fb: impl FnOnce(&mut ServeConfig)) -> (Env, Env) {
    replicas_via(db, db.url(), fb).await
}

/// [`replicas`] with B reaching the database at `b_url`.
async fn replicas_via(db: &PgDb, b_url: String, fb: impl FnOnce(&mut ServeConfig)) -> (Env, Env) {
    let origin = "http://127.0.0.1:9".to_owned();
    let (url, o) = (db.url(), origin.clone());
    let a = Env::with_config(move |c| {
        c.database_url = Some(url);
        c.public_origin = Some(shomei_core::Origin::parse(&o).unwrap());
    })
    .await;
    let kek = std::fs::read(a._dir.path().join("kek")).unwrap();
    let url = b_url;
    let b = Env::with_config(move |c| {
        use std::os::unix::fs::PermissionsExt as _;
        let path = c.data_dir.join("kek");
        std::fs::write(&path, &kek).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        c.database_url = Some(url);
        c.public_origin = Some(shomei_core::Origin::parse(&origin).unwrap());
        fb(c);
    })
    .await;
    (a, b)
}

/// One sample of `env`'s /metrics (Prometheus text), `0` when absent.
async fn metric(env: &Env, series: &str) -> f64 {
    let text = env
        .http
        .get(format!("{}/metrics", env.admin_base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Until `env`'s `series` satisfies `ok` (bounded: 10 s).
async fn until_metric(env: &Env, series: &str, ok: impl Fn(f64) -> bool) {
    for _ in 0..1000 {
        if ok(metric(env, series).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{series} stayed at {}", metric(env, series).await);
}

const CONNECTED: &str = "shomei_replica_listener_connected";
const LOGIN_NOTICES: &str = r#"shomei_replica_notifications_total{kind="login"}"#;
const GRANT_NOTICES: &str = r#"shomei_replica_notifications_total{kind="grant"}"#;
const RECONNECTS: &str = "shomei_replica_listener_reconnects_total";
const BACKSTOP_WAKES: &str = "shomei_replica_backstop_wakes_total";
const LAG_COUNT: &str = "shomei_replica_notification_lag_seconds_count";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_terminal_waiting_on_b_hears_of_an_approval_on_a_from_its_notice() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let (a, b) = replicas(&db, no_backstop).await;
    // B listens before anything happens: its first re-read is behind it.
    until_metric(&b, CONNECTED, |v| v == 1.0).await;
    let w = a.world().await;
    let phone = a.enroll(&w.practitioner).await;
    let l = a.start_login(&w.terminal).await;
    let on_a = async {
        until_waiting(&b, l.id(), 2).await;
        a.decide(&phone, &l, Decision::Approve, l.number()).await
    };
    // an SSE stream and a long-poll on B
    let (sse, polled, d) = tokio::join!(
        events(&b, &w.terminal, l.id()),
        wait(&b, &w.terminal, l.id(), 60),
        on_a
    );
    assert_eq!(d.0, StatusCode::OK, "{}", d.1);
    assert_eq!(
        sse.last().map(String::as_str),
        Some(r#"{"status":"approved"}"#),
        "{sse:?}"
    );
    assert_eq!(polled["status"], "approved");
    // The notice woke them: no reconnect (so no re-read) and no backstop wake on B.
    assert!(metric(&b, LOGIN_NOTICES).await >= 1.0);
    assert!(
        metric(&b, LAG_COUNT).await >= 1.0,
        "the notice's lag was measured"
    );
    assert_eq!(metric(&b, RECONNECTS).await, 0.0);
    assert_eq!(metric(&b, BACKSTOP_WAKES).await, 0.0);
    assert_eq!(b.app().waiters.waited(), 0, "answered waiters unregister");
    drop((a, b));
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_grant_revoked_on_a_is_refused_on_b_and_b_drops_its_held_key() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let (a, b) = replicas(&db, no_backstop).await;
    until_metric(&b, CONNECTED, |v| v == 1.0).await;
    let w = a.world().await;
    let phone = a.enroll(&w.practitioner).await;
    // approved on A, the token collected and used on B
    let l = a.start_login(&w.terminal).await;
    let d = a.decide(&phone, &l, Decision::Approve, l.number()).await;
    assert_eq!(d.0, StatusCode::OK, "{}", d.1);
    let (s, t) = b.token(&w.terminal, l.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (token, grant_id) = (
        t["access_token"].as_str().unwrap().to_owned(),
        t["grant_id"].as_str().unwrap().to_owned(),
    );
    let r = b
        .sign_one(&token, &w.terminal, &w.credential, &[1; 32])
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(
        b.app().backend.held_keys(),
        1,
        "B holds the grant's key after signing"
    );
    assert_eq!(a.app().backend.held_keys(), 0);

    a.admin(&format!("/admin/v1/grants/{grant_id}/revoke"), json!({}))
        .await;

    // B drops the key on the notice alone (B is asked nothing meanwhile).
    for _ in 0..500 {
        if b.app().backend.held_keys() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        b.app().backend.held_keys(),
        0,
        "B still holds the revoked grant's key"
    );
    assert!(metric(&b, GRANT_NOTICES).await >= 1.0);
    assert_eq!(
        metric(&b, RECONNECTS).await,
        0.0,
        "not dropped by a re-read"
    );
    assert_problem(
        &b.sign_one(&token, &w.terminal, &w.credential, &[2; 32])
            .await,
        401,
        "grant_revoked",
    );
    drop((a, b));
    db.drop_db().await;
}

/// A TCP forwarder in front of the database for one replica: while its
/// gate is shut, new connections are refused and open ones keep working —
/// a replica whose listener dies then cannot listen again, while its pool
/// (and the other replica, which connects directly) go on.
struct Gate {
    addr: std::net::SocketAddr,
    open: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    async fn to(upstream: std::net::SocketAddr) -> Gate {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let gate = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Gate { addr, open, task }
    }

    /// `url` with its host and port replaced by the gate's.
    fn url(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some(&self.addr.ip().to_string())).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The database server's address in `url`.
fn server_addr(url: &str) -> std::net::SocketAddr {
    let u = url::Url::parse(url).unwrap();
    let host = u.host_str().unwrap();
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    format!("{host}:{}", u.port().unwrap_or(5432))
        .parse()
        .unwrap()
}

/// The listening sessions of `db` (both replicas'), ended by the server.
async fn terminate_listeners(admin: &sqlx::PgPool, db: &str) -> u64 {
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2")
        .bind(db)
        .bind(shomei_server::store::postgres::LISTENER_APPLICATION_NAME)
        .execute(admin)
        .await
        .unwrap()
        .rows_affected()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_after_its_listener_is_killed_b_re_reads_and_wakes_a_waiter_decided_meanwhile() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    // B reaches the database through a gate the test can shut.
    let gate = Gate::to(server_addr(&db.url())).await;
    let (a, b) = replicas_via(&db, gate.url(&db.url()), no_backstop).await;
    until_metric(&b, CONNECTED, |v| v == 1.0).await;
    let w = a.world().await;
    let phone = a.enroll(&w.practitioner).await;
    let l = a.start_login(&w.terminal).await;
    let admin = sqlx::PgPool::connect(db.admin_url()).await.unwrap();
    let name = db.name().to_owned();
    let script = async {
        until_waiting(&b, l.id(), 1).await;
        // B can open no new session; then the database ends the listening
        // sessions (`pg_terminate_backend`): B cannot listen again until
        // the gate opens. (A reconnects directly at once.)
        gate.set_open(false);
        assert!(
            terminate_listeners(&admin, &name).await >= 2,
            "both replicas' listeners"
        );
        until_metric(&b, CONNECTED, |v| v == 0.0).await;
        // decided on A while B does not listen: B's notice is lost
        let d = a.decide(&phone, &l, Decision::Approve, l.number()).await;
        assert_eq!(d.0, StatusCode::OK, "{}", d.1);
        assert_eq!(
            b.app().waiters.waiting_on(l.id()),
            1,
            "B's waiter is not woken while B cannot listen"
        );
        assert_eq!(metric(&b, CONNECTED).await, 0.0);
        gate.set_open(true);
    };
    let (v, ()) = tokio::join!(wait(&b, &w.terminal, l.id(), 60), script);
    assert_eq!(v["status"], "approved");
    // woken by the re-read after the reconnect (the backstop is a day away)
    assert!(metric(&b, RECONNECTS).await >= 1.0);
    assert_eq!(metric(&b, CONNECTED).await, 1.0);
    assert_eq!(metric(&b, BACKSTOP_WAKES).await, 0.0);
    admin.close().await;
    drop((a, b));
    db.drop_db().await;
}

/// The next committed change on `feed` (bounded: 10 s).
async fn next_change(feed: &mut shomei_server::store::change::ChangeFeed) -> Change {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
            Ok(Some(ChangeEvent::Committed(n))) => return n.change,
            Ok(Some(ChangeEvent::Listening { .. })) => continue,
            other => panic!("expected a committed change, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_state_change_another_replica_holds_is_published_once_committed() {
    let Some(db) = PgDb::create().await else {
        return;
    };
    let env = Env::with_config({
        let url = db.url();
        move |c| {
            c.database_url = Some(url);
            c.policy.signature_cap = Some(1);
        }
    })
    .await;
    // A listener of our own on the same database, as another replica's.
    let store = shomei_server::store::open(&db.url()).await.unwrap();
    let mut feed = store.changes().expect("PostgreSQL has a change feed");
    match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
        Ok(Some(ChangeEvent::Listening {
            reconnect: false, ..
        })) => {}
        other => panic!("expected the first Listening, got {other:?}"),
    }
    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let device = phone.device_id.to_string();
    let login = |id: &str, status: &str| Change::Login {
        id: id.to_owned(),
        status: status.to_owned(),
    };

    // approve, deny, number mismatch (a deny)
    let l1 = env.start_login(&w.terminal).await;
    assert_eq!(
        env.decide(&phone, &l1, Decision::Approve, l1.number())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(next_change(&mut feed).await, login(l1.id(), "approved"));
    let l2 = env.start_login(&w.terminal).await;
    assert_eq!(
        env.decide(&phone, &l2, Decision::Deny, 0).await.0,
        StatusCode::OK
    );
    assert_eq!(next_change(&mut feed).await, login(l2.id(), "denied"));
    let l3 = env.start_login(&w.terminal).await;
    let wrong = if l3.number() == 10 {
        11
    } else {
        l3.number() - 1
    };
    assert_problem(
        &env.decide(&phone, &l3, Decision::Approve, wrong).await,
        403,
        "number_mismatch",
    );
    assert_eq!(next_change(&mut feed).await, login(l3.id(), "denied"));

    // the operator revokes the grant
    let (s, t) = env.token(&w.terminal, l1.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let grant = t["grant_id"].as_str().unwrap().to_owned();
    env.admin(&format!("/admin/v1/grants/{grant}/revoke"), json!({}))
        .await;
    assert_eq!(next_change(&mut feed).await, Change::Grant { id: grant });

    // a grant used up by its (one) signature
    let l4 = env.start_login(&w.terminal).await;
    assert_eq!(
        env.decide(&phone, &l4, Decision::Approve, l4.number())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(next_change(&mut feed).await, login(l4.id(), "approved"));
    let (s, t) = env.token(&w.terminal, l4.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let r = env
        .sign_one(
            t["access_token"].as_str().unwrap(),
            &w.terminal,
            &w.credential,
            &[4; 32],
        )
        .await;
    assert_eq!(r.0, StatusCode::OK, "{}", r.1);
    assert_eq!(
        next_change(&mut feed).await,
        Change::Grant {
            id: t["grant_id"].as_str().unwrap().to_owned()
        }
    );

    // the phone ends all its practitioner's grants
    let l5 = env.start_login(&w.terminal).await;
    assert_eq!(
        env.decide(&phone, &l5, Decision::Approve, l5.number())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(next_change(&mut feed).await, login(l5.id(), "approved"));
    let r = env
        .http
        .delete(format!("{}/v1/phone/grants", env.base))
        .bearer_auth(&phone.token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        next_change(&mut feed).await,
        Change::Practitioner {
            id: w.practitioner.clone()
        }
    );

    // the operator revokes the credential and the terminal
    env.admin(
        &format!("/admin/v1/credentials/{}/revoke", w.credential),
        json!({}),
    )
    .await;
    assert_eq!(
        next_change(&mut feed).await,
        Change::Credential {
            id: w.credential.clone()
        }
    );
    env.admin(
        &format!("/admin/v1/terminals/{}/revoke", w.terminal.0),
        json!({}),
    )
    .await;
    assert_eq!(
        next_change(&mut feed).await,
        Change::Terminal {
            id: w.terminal.0.clone()
        }
    );

    // a new phone retires the old one; the operator revokes the new one
    let second = env.enroll(&w.practitioner).await;
    assert_eq!(next_change(&mut feed).await, Change::Device { id: device });
    let device = second.device_id.to_string();
    env.admin(&format!("/admin/v1/devices/{device}/revoke"), json!({}))
        .await;
    assert_eq!(next_change(&mut feed).await, Change::Device { id: device });
    drop(feed);
    drop(env);
    db.drop_db().await;
}

/// A transaction that published a change and then rolled back delivers no
/// notice: the same `pg_notify` the store's write transactions send, once
/// rolled back, once committed, on a connection of its own; the feed passes
/// on the committed one only (notices arrive in commit order, so the first
/// one seen would be the rolled-back one if it had been sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_change_published_by_a_transaction_that_rolled_back_is_never_delivered() {
    use shomei_server::store::change::{CHANNEL, ChangeNotice, wall_ms};
    let Some(db) = PgDb::create().await else {
        return;
    };
    let store = shomei_server::store::open(&db.url()).await.unwrap();
    let mut feed = store.changes().expect("PostgreSQL has a change feed");
    match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
        Ok(Some(ChangeEvent::Listening { reconnect: false, .. })) => {}
        other => panic!("expected the first Listening, got {other:?}"),
    }
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let publish = |id: &str| ChangeNotice { change: Change::Credential { id: id.to_owned() }, at_ms: wall_ms() }.to_payload();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(publish("rolled-back")).execute(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    // Dropped without a commit (a `?` between publish and commit): rolled back too.
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(publish("dropped")).execute(&mut *tx).await.unwrap();
    drop(tx);
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(publish("committed")).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(next_change(&mut feed).await, Change::Credential { id: "committed".into() });
    match tokio::time::timeout(Duration::from_millis(500), feed.recv()).await {
        Err(_) => {}
        Ok(other) => panic!("nothing else may arrive, got {other:?}"),
    }
    pool.close().await;
    drop((feed, store));
    db.drop_db().await;
}

/// A TCP forwarder whose connections can go *silent*: the bytes of every
/// connection opened before [`SilentGate::silence_existing`] are swallowed
/// in both directions, and nothing is closed — a network path that died
/// without a FIN or RST (a NAT entry dropped, a cable pulled beyond a
/// switch). Connections opened afterwards are forwarded normally.
struct SilentGate {
    addr: std::net::SocketAddr,
    opened: Arc<std::sync::atomic::AtomicU64>,
    cutoff: Arc<std::sync::atomic::AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentGate {
    async fn to(upstream: std::net::SocketAddr) -> SilentGate {
        use std::sync::atomic::AtomicU64;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opened = Arc::new(AtomicU64::new(0));
        let cutoff = Arc::new(AtomicU64::new(0));
        let (opened2, cutoff2) = (opened.clone(), cutoff.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let n = opened2.fetch_add(1, Ordering::SeqCst);
                let cutoff = cutoff2.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else { return };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let pump = |mut r: tokio::net::tcp::OwnedReadHalf, mut w: tokio::net::tcp::OwnedWriteHalf, cutoff: Arc<AtomicU64>| async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let k = match r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(k) => k,
                            };
                            if n < cutoff.load(Ordering::SeqCst) {
                                continue; // silent: swallowed, nothing closed
                            }
                            if w.write_all(&buf[..k]).await.is_err() {
                                break;
                            }
                        }
                        // Keep the write half (no FIN) while the path is silent.
                        if n < cutoff.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        drop(w);
                    };
                    let up = tokio::spawn(pump(cr, sw, cutoff.clone()));
                    let down = tokio::spawn(pump(sr, cw, cutoff));
                    let _ = tokio::join!(up, down);
                });
            }
        });
        SilentGate { addr, opened, cutoff, task }
    }

    fn url(&self, url: &str) -> String {
        let mut u = url::Url::parse(url).unwrap();
        u.set_host(Some(&self.addr.ip().to_string())).unwrap();
        u.set_port(Some(self.addr.port())).unwrap();
        u.to_string()
    }

    /// Every connection open now goes silent; new ones still pass.
    fn silence_existing(&self) {
        self.cutoff.store(self.opened.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

impl Drop for SilentGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The listener's heartbeat (10 s, 5 s to answer) finds a network path that
/// went silent without closing: the feed reports the loss, listens again on
/// a new connection (a new session), and delivers what is committed next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_listener_whose_path_goes_silent_notices_by_its_heartbeat_and_listens_again() {
    use shomei_server::store::change::{CHANNEL, ChangeNotice, wall_ms};
    let Some(db) = PgDb::create().await else {
        return;
    };
    let gate = SilentGate::to(server_addr(&db.url())).await;
    let store = shomei_server::store::open(&gate.url(&db.url())).await.unwrap();
    let mut feed = store.changes().expect("PostgreSQL has a change feed");
    let first = match tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
        Ok(Some(ChangeEvent::Listening { reconnect: false, session })) => session,
        other => panic!("expected the first Listening, got {other:?}"),
    };
    gate.silence_existing();
    let silenced = std::time::Instant::now();
    // Lost within HEARTBEAT + HEARTBEAT_TIMEOUT (15 s), with margin for a loaded machine.
    match tokio::time::timeout(Duration::from_secs(40), feed.recv()).await {
        Ok(Some(ChangeEvent::Lost)) => {}
        other => panic!("the silent path was not noticed: {other:?}"),
    }
    let noticed = silenced.elapsed();
    let again = match tokio::time::timeout(Duration::from_secs(40), feed.recv()).await {
        Ok(Some(ChangeEvent::Listening { reconnect: true, session })) => session,
        other => panic!("expected Listening again, got {other:?}"),
    };
    assert_ne!(again, first, "a new connection listens (the silent one is abandoned)");
    eprintln!("silent path noticed after {noticed:?}");
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let payload = ChangeNotice { change: Change::Credential { id: "after".into() }, at_ms: wall_ms() }.to_payload();
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(payload).execute(&pool).await.unwrap();
    assert_eq!(next_change(&mut feed).await, Change::Credential { id: "after".into() });
    pool.close().await;
    drop((feed, store, gate));
    db.drop_db().await;
}
