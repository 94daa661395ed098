//! Crash safety (a) of issue 12: two `shomei serve` replicas on one PostgreSQL database
//! behind a load balancer. The practitioner's phone reaches replica A through the
//! balancer; the EHR terminal talks to replica B directly — it waits there, gets its token
//! there and signs there. Mid-day A is killed with SIGKILL while B is signing; the balancer
//! sends the phone to B, and B carries on: it signs more, the phone ends the grant through
//! B and B refuses the next signature at once, and `shomei admin audit verify` accepts the
//! chain both replicas wrote.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};

use crate::postgres::{FreshDatabase, database_url};
use crate::server::{Server, Store};
use crate::terminal::Terminal;
use crate::world::{Clinic, prescriptions, scan_terminal_qr, sha256, sign_and_verify};

/// A TCP load balancer on loopback: every new connection goes to the current backend.
/// (What the phones see as the public origin; a dead backend's connections just end.)
struct Balancer {
    addr: std::net::SocketAddr,
    backend: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Balancer {
    async fn start() -> Balancer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the balancer");
        let addr = listener.local_addr().expect("balancer address");
        let backend = Arc::new(Mutex::new(String::new()));
        let to = backend.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = to.lock().expect("backend lock").clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Balancer {
            addr,
            backend,
            task,
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn route_to(&self, server: &Server) {
        *self.backend.lock().expect("backend lock") = server.addr.clone();
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One sample of a server's /metrics (operator listener), 0 when absent.
async fn metric(server: &Server, series: &str) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.admin_url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .map_or(0.0, |v| v.trim().parse().expect("a sample value"))
}

/// Until `server` listens for the other replicas' changes (bounded: 20 s).
async fn until_listening(server: &Server) {
    for _ in 0..200 {
        if metric(server, "shomei_replica_listener_connected").await == 1.0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "{} never listened for replica changes; log:\n{}",
        server.url,
        server.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgresql_b_carries_the_day_after_a_is_killed() {
    let Some(base) = database_url() else { return };
    let db = FreshDatabase::create(&base);
    let balancer = Balancer::start().await;
    let origin = vec!["--public-origin".to_string(), balancer.origin()];
    let a = Server::start_configured(Store::Postgres(db.url.clone()), origin.clone(), None);
    balancer.route_to(&a);
    // B's periodic re-read is a day apart: what B learns of A's decisions comes by notice.
    let b = Server::start_replica_of(&a, origin, Some("[replicas]\nrecheck_interval_s = 86400\n"));
    until_listening(&b).await;

    // The operator sets up through A; the phone enrolls through the balancer (A).
    let mut clinic = Clinic::open_with(a);
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let ehr = Terminal::new(
        &b.url,
        &clinic.terminal.client_id,
        &clinic.terminal.client_secret,
    );

    // Morning: the EHR starts the login on B and waits there (SSE); the phone scans the QR
    // B drew and approves through A.
    let auth = ehr.start_login().await;
    let sse = Terminal::new(&b.url, &ehr.client_id, &ehr.client_secret);
    let login_id = auth.login_id.clone();
    let events = tokio::spawn(async move { sse.events(&login_id).await });
    scan_terminal_qr(&ehr, &auth, &mut phone).await;
    let decision = phone
        .approve(auth.match_number)
        .await
        .expect("approval accepted by A");
    let grant = decision.grant.expect("an approval returns the grant");
    let statuses = events.await.expect("SSE task");
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("approved"),
        "B's SSE closes on approved: {statuses:?}"
    );
    assert!(
        metric(&b, r#"shomei_replica_notifications_total{kind="login"}"#).await >= 1.0,
        "B heard of A's decision"
    );
    assert_eq!(
        metric(&b, "shomei_replica_backstop_wakes_total").await,
        0.0,
        "not from the backstop re-read"
    );
    let token = ehr.token(&auth.device_code).await.expect("token from B");
    assert_eq!(token.grant_id.to_string(), grant.id.to_string());

    // All day on B; mid-day A dies (SIGKILL) while B signs, and the balancer moves to B.
    let docs = prescriptions(12);
    sign_and_verify(&clinic, &ehr, &token.access_token, &docs[..4]).await;
    let signing = {
        let (ehr, token, credential) = (
            Terminal::new(&b.url, &ehr.client_id, &ehr.client_secret),
            token.access_token.clone(),
            clinic.credential_id.clone(),
        );
        let docs = docs[4..10].to_vec();
        tokio::spawn(async move {
            let mut signed = 0;
            for d in &docs {
                let cert = ehr
                    .credential_certificate(&token, &credential)
                    .await
                    .expect("credentials/info on B");
                let algo = crate::world::sign_algo_for(&cert);
                let sigs = ehr
                    .sign_hash(&token, &credential, &[sha256(d)], algo)
                    .await
                    .expect("signHash on B while A dies");
                crate::world::verify_with_certificate(&cert, d, &sigs[0])
                    .expect("B's signature verifies");
                signed += 1;
            }
            signed
        })
    };
    clinic.server.crash();
    balancer.route_to(&b);
    assert_eq!(
        signing.await.expect("signing task"),
        6,
        "B signed through A's death"
    );
    sign_and_verify(&clinic, &ehr, &token.access_token, &docs[10..]).await;

    // The phone (through the balancer: now B) sees the day's count and ends the grant.
    let grants = phone
        .grants()
        .await
        .expect("the phone lists grants through B");
    let mine = grants
        .iter()
        .find(|g| g.id.to_string() == grant.id.to_string())
        .expect("the grant, listed by B");
    assert_eq!(mine.signatures_made as usize, docs.len());
    let cert = ehr
        .credential_certificate(&token.access_token, &clinic.credential_id)
        .await
        .expect("credentials/info on B");
    phone
        .end_grant(grant.id)
        .await
        .expect("the phone ends the grant through B");
    let refused = ehr
        .sign_hash(
            &token.access_token,
            &clinic.credential_id,
            &[sha256(b"after the end")],
            crate::world::sign_algo_for(&cert),
        )
        .await
        .expect_err("no signature after the phone ended the grant");
    assert_eq!(refused.code(), "grant_revoked");

    // Evening: B's operator verifies the chain both replicas wrote, and it records every
    // signature and the phone's revocation.
    b.admin(&["audit", "verify"]);
    let export = b.admin(&["audit", "export"]).to_string();
    for d in &docs {
        let hex: String = sha256(d).iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            export.contains(&hex),
            "the audit records the signature of {hex}"
        );
    }
    assert!(
        export.contains("ended from phone"),
        "the phone's revocation is audited"
    );
    drop(clinic);
    drop(b);
    drop(db);
}
