//! Crash safety under signing load (issue 12 (b)): terminals sign as fast as they can, the
//! server is killed with SIGKILL in the middle, and started again on the same data.
//!
//! The promise being checked: a signature leaves the server only after its audit record (and
//! signing-log row) is committed, so *every signature a client received* is in the audit log
//! after the crash; the hash chain verifies; the grant's counter agrees with the log; and the
//! grant goes on signing after the restart. A crash may lose the answers of the calls in flight
//! (committed, never received) — at most one call per client — but never a record of an answer
//! that was given.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::server::Store;
use crate::terminal::{SHA256_OID, Terminal};
use crate::world::{Clinic, sha256, sign_algo_for, sign_and_verify, verify_with_certificate, prescriptions};

/// Concurrent signing clients (each one call in flight at a time).
const CLIENTS: usize = 8;
/// Hashes per signHash call.
const HASHES_PER_CALL: usize = 2;
/// Signatures received before the kill.
const RECEIVED_BEFORE_KILL: usize = 80;
/// Upper bound on calls per client, so the load ends even if the kill never came.
const MAX_CALLS_PER_CLIENT: usize = 500;

/// What one client saw: the digests whose signatures it received, and whether it was stopped by
/// the server dying (a transport failure instead of an answer) rather than by its call bound.
struct ClientRun {
    received: Vec<Vec<u8>>,
    lost_in_flight: bool,
}

/// One signHash call that tolerates the server dying: `Ok(signatures)`, a refusal (a test
/// failure here), or `Err` for a transport failure.
async fn sign_once(http: &reqwest::Client, terminal: &Terminal, grant: &str, credential: &str, algo: &str, digests: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    let basic = STANDARD.encode(format!("{}:{}", terminal.client_id, terminal.client_secret));
    let body = json!({
        "credentialID": credential,
        "hashes": digests.iter().map(|d| STANDARD.encode(d)).collect::<Vec<_>>(),
        "hashAlgorithmOID": SHA256_OID,
        "signAlgo": algo,
    });
    let resp = http
        .post(format!("{}/csc/v2/signatures/signHash", terminal.base))
        .header("Authorization", format!("Bearer {grant}"))
        .header("Shomei-Terminal-Authorization", format!("Basic {basic}"))
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.map_err(|e| format!("body: {e}"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| format!("a {status} answer that is not JSON ({e}): the body was cut"))?;
    assert_eq!(status, 200, "no refusal is expected while signing under load: {v}");
    Ok(v["signatures"].as_array().expect("signatures").iter().map(|s| STANDARD.decode(s.as_str().unwrap()).expect("base64")).collect())
}

/// A client signing distinct prescriptions until the server stops answering.
async fn client(id: usize, terminal: Arc<Terminal>, grant: String, credential: String, algo: &'static str, cert: Arc<Vec<u8>>, count: Arc<Mutex<usize>>) -> ClientRun {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("http client");
    let mut run = ClientRun { received: Vec::new(), lost_in_flight: false };
    for call in 0..MAX_CALLS_PER_CLIENT {
        let docs: Vec<Vec<u8>> = (0..HASHES_PER_CALL).map(|h| format!("<Prescription client=\"{id}\" call=\"{call}\" item=\"{h}\"/>").into_bytes()).collect();
        let digests: Vec<Vec<u8>> = docs.iter().map(|d| sha256(d)).collect();
        match sign_once(&http, &terminal, &grant, &credential, algo, &digests).await {
            Ok(signatures) => {
                assert_eq!(signatures.len(), docs.len());
                for (doc, sig) in docs.iter().zip(&signatures) {
                    verify_with_certificate(&cert, doc, sig).expect("a received signature verifies");
                }
                run.received.extend(digests);
                *count.lock().unwrap() += HASHES_PER_CALL;
            }
            Err(_) => {
                run.lost_in_flight = true;
                break;
            }
        }
    }
    run
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `signature.create` audit records of one grant: the signed hashes (hex), in log order.
fn audited_hashes(export: &Value, grant: &str) -> Vec<String> {
    let entries = match export {
        Value::Array(a) => a.clone(),
        Value::Object(o) => o.get("entries").and_then(Value::as_array).cloned().unwrap_or_else(|| panic!("audit export shape: {export}")),
        other => panic!("audit export shape: {other}"),
    };
    entries
        .iter()
        .filter(|e| e["action"] == "signature.create")
        .filter_map(|e| {
            let details = match &e["details"] {
                Value::String(s) => serde_json::from_str(s).expect("details are JSON"),
                v => v.clone(),
            };
            (details["grant"] == grant).then(|| details["hash"].as_str().expect("hash").to_string())
        })
        .collect()
}

async fn sigkill_under_signing_load_loses_no_received_signature(store: Store) {
    let mut clinic = Clinic::open_on(store);
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let cert = clinic.terminal.credential_certificate(&token.access_token, &clinic.credential_id).await.expect("credentials/info");
    let algo = sign_algo_for(&cert);
    let cert = Arc::new(cert);

    // The load: CLIENTS terminals-worth of calls on the one grant.
    let count = Arc::new(Mutex::new(0usize));
    let terminal = Arc::new(Terminal::new(&clinic.server.url, &clinic.terminal.client_id, &clinic.terminal.client_secret));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            tokio::spawn(client(id, terminal.clone(), token.access_token.clone(), clinic.credential_id.clone(), algo, cert.clone(), count.clone()))
        })
        .collect();
    let started = Instant::now();
    while *count.lock().unwrap() < RECEIVED_BEFORE_KILL {
        assert!(started.elapsed() < Duration::from_secs(180), "the load did not reach {RECEIVED_BEFORE_KILL} signatures in 180 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    clinic.server.crash();
    let mut received: Vec<Vec<u8>> = Vec::new();
    let mut in_flight = 0;
    for c in clients {
        let run = c.await.expect("client task");
        received.extend(run.received);
        in_flight += usize::from(run.lost_in_flight);
    }
    // Every client was still signing when the server died (none ran out of calls first), so
    // the kill landed under load; a client's last call may or may not have been committed.
    assert_eq!(in_flight, CLIENTS, "every client was stopped by the crash, not by its call bound");

    // Restart on the same data: the chain verifies and holds every received signature.
    clinic.server.restart();
    clinic.server.admin(&["audit", "verify"]);
    let audited = audited_hashes(&clinic.server.admin(&["audit", "export"]), &token.grant_id);
    let audited_set: HashSet<&str> = audited.iter().map(String::as_str).collect();
    assert_eq!(audited_set.len(), audited.len(), "no signature is recorded twice");
    for d in &received {
        assert!(audited_set.contains(hex(d).as_str()), "a received signature has no audit record after the crash");
    }
    // Committed but never answered: at most the calls that were in flight.
    let unanswered = audited.len() - received.len();
    assert!(unanswered <= in_flight * HASHES_PER_CALL, "{unanswered} audited signatures were never answered, with {in_flight} calls in flight");
    eprintln!(
        "crash under load: {} signatures received, {} audited, {} calls in flight at the SIGKILL",
        received.len(),
        audited.len(),
        in_flight
    );

    // No grant lost: the phone still sees it, its counter matches the log, and so does its
    // signing log; the EHR keeps signing with the same token.
    let grants = phone.grants().await.expect("phone lists grants after the restart");
    let grant = grants.iter().find(|g| g.id.to_string() == token.grant_id).expect("the grant survived the crash");
    assert_eq!(grant.signatures_made as usize, audited.len(), "the grant's counter agrees with the audit log");
    let (log, _) = phone.signatures(Some(grant.id), 50).await.expect("signing log after the restart");
    let logged: HashSet<String> = log.iter().map(|e| hex(&e.digest)).collect();
    assert_eq!(logged.len(), audited.len(), "the signing log holds exactly the audited signatures");
    assert!(audited.iter().all(|h| logged.contains(h)), "the signing log and the audit log agree");
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &prescriptions(3)).await;
    clinic.server.admin(&["audit", "verify"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_signing_load_on_sqlite_loses_no_received_signature() {
    sigkill_under_signing_load_loses_no_received_signature(Store::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_signing_load_on_postgresql_loses_no_received_signature() {
    let Some(base) = crate::postgres::database_url() else { return };
    let db = crate::postgres::FreshDatabase::create(&base);
    sigkill_under_signing_load_loses_no_received_signature(Store::Postgres(db.url.clone())).await;
}
