//! The storage suite: the same rules checked on SQLite and on PostgreSQL.
//! PostgreSQL comes from SHOMEI_TEST_DATABASE_URL; each run creates a fresh
//! database and drops it afterwards. Without the variable the PostgreSQL
//! half is skipped loudly — or fails when CI is set.

use std::sync::Arc;

use serde_json::json;
use shomei_server::audit::chain::verify;
use shomei_server::store::*;

fn ev(action: &str, subject: &str) -> AuditEvent {
    AuditEvent::new("test", action, subject, json!({}))
}

async fn seed(s: &dyn Store) -> (Terminal, Practitioner) {
    let f = Facility { id: "f1".into(), name: "Clinic".into(), created_ms: 1 };
    s.create_facility(&f, &ev("facility.create", "f1")).await.unwrap();
    let t = Terminal { id: "t1".into(), facility_id: "f1".into(), name: "EHR".into(), secret_hash: vec![1; 32], created_ms: 2, revoked_ms: None };
    s.create_terminal(&t, &ev("terminal.create", "t1")).await.unwrap();
    let p = Practitioner { id: "p1".into(), display_name: "Dr".into(), role: "doctor".into(), facility_ids: vec!["f1".into()], created_ms: 3 };
    s.create_practitioner(&p, &ev("practitioner.create", "p1")).await.unwrap();
    (t, p)
}

fn device(id: &str, token: u8) -> Device {
    Device {
        id: id.into(), practitioner_id: "p1".into(), name: "phone".into(), platform: "desktop".into(), public_key: vec![4; 65],
        token_hash: vec![token; 32], attestation: None, attestation_facts: None, created_ms: 10, revoked_ms: None,
    }
}

fn enrollment(id: &str) -> Enrollment {
    Enrollment {
        id: id.into(), practitioner_id: "p1".into(), secret_hash: vec![2; 32], password_hash: vec![3; 32], password_salt: vec![4; 16],
        failed_attempts: 0, status: EnrollmentStatus::Pending, created_ms: 5, expires_ms: 1_000_000, device_id: None,
    }
}

fn login(id: &str, code: u8) -> Login {
    Login {
        id: id.into(), terminal_id: "t1".into(), device_code_hash: vec![code; 32], user_code_hash: Some(vec![code ^ 0xff; 32]), code_device_id: None, secret_hash: vec![5; 32],
        secret_sealed: vec![6; 40], challenge: vec![7; 32], number_choices: [12, 34, 56], match_number: 34, status: LoginStatus::Pending,
        created_ms: 100, expires_ms: 120_100, last_poll_ms: None, poll_interval_s: 5, decided_ms: None, device_id: None, grant_id: None,
        confirmation_hash: None, confirmation_failures: 0,
    }
}

fn grant(id: &str, login_id: &str, device_id: &str, cap: Option<i64>) -> Grant {
    Grant {
        id: id.into(), practitioner_id: "p1".into(), terminal_id: "t1".into(), device_id: device_id.into(), login_id: login_id.into(),
        token_hash: None, created_ms: 200, expires_ms: 1_000_000, last_used_ms: 200, idle_timeout_s: None, signature_cap: cap,
        signatures_made: 0, revoked_ms: None, revoked_reason: None,
    }
}

async fn approve(s: &dyn Store, login_id: &str, device_id: &str, g: Grant) -> DecideOutcome {
    s.decide_login(&LoginDecision {
        login_id: login_id.into(), device_id: device_id.into(), status: LoginStatus::Approved, now_ms: 300, grant: Some(g), evidence: None, confirmation_hash: None, audit: ev("login.approve", login_id),
    })
    .await
    .unwrap()
}

async fn audit_all(s: &dyn Store) -> Vec<AuditEntry> {
    s.audit_entries(0, 100_000).await.unwrap()
}

async fn registry_round_trips(s: Arc<dyn Store>) {
    let (t, p) = seed(&*s).await;
    assert_eq!(s.get_terminal("t1").await.unwrap(), Some(t));
    assert_eq!(s.get_practitioner("p1").await.unwrap(), Some(p));
    assert_eq!(s.list_facilities().await.unwrap().len(), 1);
    let dup = s.create_facility(&Facility { id: "f1".into(), name: "x".into(), created_ms: 9 }, &ev("facility.create", "f1")).await;
    assert!(matches!(dup, Err(StoreError::Duplicate(_))), "{dup:?}");
    // The failed insert left no audit entry behind.
    assert_eq!(audit_all(&*s).await.len(), 3);
}

async fn enrollment_is_single_use(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    assert!(s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap());
    assert!(!s.complete_enrollment("e1", &device("d2", 2), true, 50, &ev("device.enroll", "d2")).await.unwrap());
    assert_eq!(s.get_device("d2").await.unwrap(), None);
    assert_eq!(s.get_enrollment("e1").await.unwrap().unwrap().status, EnrollmentStatus::Used);
}

async fn expired_enrollment_is_not_completed(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    assert!(!s.complete_enrollment("e1", &device("d1", 1), true, 1_000_000, &ev("device.enroll", "d1")).await.unwrap());
}

async fn enrollment_locks_after_max_failures(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    for i in 1..=4 {
        assert_eq!(
            s.reserve_enrollment_attempt("e1", 5, 50).await.unwrap(),
            Some(i)
        );
        let e = s
            .record_enrollment_failure("e1", 5, &ev("enrollment.password_wrong", "e1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.failed_attempts, e.status),
            (i, EnrollmentStatus::Pending)
        );
    }
    assert_eq!(
        s.reserve_enrollment_attempt("e1", 5, 50).await.unwrap(),
        Some(5)
    );
    let e = s
        .record_enrollment_failure("e1", 5, &ev("enrollment.password_wrong", "e1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.status, EnrollmentStatus::Locked);
    assert_eq!(
        s.reserve_enrollment_attempt("e1", 5, 50).await.unwrap(),
        None,
        "no attempt after the lock"
    );
    assert!(
        !s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1"))
            .await
            .unwrap()
    );
}

/// Many concurrent reservations on one code: exactly `max` succeed, so no
/// flood of parallel guesses can check more than `max` passwords.
async fn concurrent_attempt_reservations_never_exceed_the_maximum(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1"))
        .await
        .unwrap();
    let tries = (0..20).map(|_| {
        let s = s.clone();
        tokio::spawn(async move { s.reserve_enrollment_attempt("e1", 5, 50).await.unwrap() })
    });
    let mut got: Vec<i64> = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap())
        .collect();
    got.sort();
    assert_eq!(got, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        s.get_enrollment("e1")
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        5
    );
}

async fn expired_enrollment_reserves_no_attempt(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1"))
        .await
        .unwrap();
    assert_eq!(
        s.reserve_enrollment_attempt("e1", 5, 1_000_000)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.get_enrollment("e1")
            .await
            .unwrap()
            .unwrap()
            .failed_attempts,
        0
    );
}

async fn new_device_retires_old_device_and_its_grants(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await;
    s.create_enrollment(&enrollment("e2"), &ev("enrollment.create", "e2")).await.unwrap();
    s.complete_enrollment("e2", &device("d2", 2), true, 400, &ev("device.enroll", "d2")).await.unwrap();
    assert!(s.get_device("d1").await.unwrap().unwrap().revoked_ms.is_some());
    assert!(s.get_device("d2").await.unwrap().unwrap().revoked_ms.is_none());
    assert_eq!(s.get_grant("g1").await.unwrap().unwrap().revoked_reason.as_deref(), Some("device retired"));
}

async fn concurrent_decisions_exactly_one_wins(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { approve(&*s, "l1", "d1", grant(&format!("g{i}"), "l1", "d1", None)).await }));
    }
    let mut done = 0;
    for t in tasks {
        if t.await.unwrap() == DecideOutcome::Done {
            done += 1;
        }
    }
    assert_eq!(done, 1);
    assert_eq!(s.list_grants(None, None).await.unwrap().len(), 1);
    assert_eq!(s.get_login("l1").await.unwrap().unwrap().status, LoginStatus::Approved);
}

async fn expired_login_cannot_be_decided(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    let late = LoginDecision { login_id: "l1".into(), device_id: "d1".into(), status: LoginStatus::Approved, now_ms: 120_100, grant: Some(grant("g1", "l1", "d1", None)), evidence: None, confirmation_hash: None, audit: ev("login.approve", "l1") };
    assert_eq!(s.decide_login(&late).await.unwrap(), DecideOutcome::NotPending);
    assert_eq!(s.get_grant("g1").await.unwrap(), None);
}

async fn grant_token_is_issued_once(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await;
    assert!(s.issue_grant_token("g1", &[8; 32], &ev("grant.token_issue", "g1")).await.unwrap());
    assert!(!s.issue_grant_token("g1", &[9; 32], &ev("grant.token_issue", "g1")).await.unwrap());
    assert_eq!(s.get_grant_by_token_hash(&[8; 32]).await.unwrap().unwrap().id, "g1");
}

/// The one-statement read behind every signHash/signDoc returns exactly
/// what the three single lookups return, each part independently absent.
async fn signing_context_is_the_three_lookups_in_one(s: Arc<dyn Store>) {
    let (t, _) = seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", Some(7))).await;
    assert!(s.issue_grant_token("g1", &[8; 32], &ev("grant.token_issue", "g1")).await.unwrap());
    let c = Credential {
        id: "c1".into(), practitioner_id: "p1".into(), algorithm: "rsa2048".into(), sealed_key: vec![5; 40].into(),
        certificate_chain: vec![vec![6; 10], vec![7; 12]], created_ms: 60, revoked_ms: None, revoked_reason: None,
    };
    s.create_credential(&c, &ev("credential.create", "c1")).await.unwrap();
    let t2 = Terminal { id: "t2".into(), facility_id: "f1".into(), name: "Front desk".into(), secret_hash: vec![2; 32], created_ms: 4, revoked_ms: Some(5) };
    s.create_terminal(&t2, &ev("terminal.create", "t2")).await.unwrap();

    let all = s.get_signing_context("t1", &[8; 32], "c1").await.unwrap().expect("terminal t1");
    assert_eq!(all.terminal, t);
    assert_eq!(all.grant, s.get_grant_by_token_hash(&[8; 32]).await.unwrap());
    assert_eq!(all.grant.as_ref().map(|g| (g.id.as_str(), g.signature_cap)), Some(("g1", Some(7))));
    assert_eq!(all.credential, Some(c.clone()));

    // The grant of the token is returned whichever terminal asks (the
    // service answers grant_terminal_mismatch), and a revoked terminal too.
    let other = s.get_signing_context("t2", &[8; 32], "c1").await.unwrap().expect("terminal t2");
    assert_eq!((other.terminal, other.grant.map(|g| g.id)), (t2, Some("g1".to_owned())));
    // Each part on its own can be missing.
    let none = s.get_signing_context("t1", &[9; 32], "c2").await.unwrap().expect("terminal t1");
    assert_eq!((none.grant, none.credential), (None, None));
    let no_token = s.get_signing_context("t1", &[], "c1").await.unwrap().expect("terminal t1");
    assert_eq!((no_token.grant, no_token.credential), (None, Some(c)));
    assert_eq!(s.get_signing_context("t9", &[8; 32], "c1").await.unwrap(), None, "unknown terminal");
}

async fn signature_records_respect_cap_and_revocation(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", Some(3))).await;
    let rec = |n: usize| SignatureRecord { grant_id: "g1".into(), credential_id: "c1".into(), terminal_id: "t1".into(), hashes: vec![vec![1; 32]; n], sign_algo: "rsa".into(), now_ms: 500, signature_formats: Vec::new(), label: None };
    // One batch (group commit): 2 fit, the next 2 would pass the cap, then 1 fits.
    let out = s.record_signatures(vec![rec(2), rec(2), rec(1)]).await.unwrap();
    assert_eq!(out, vec![RecordOutcome::Recorded(2), RecordOutcome::GrantUnusable, RecordOutcome::Recorded(3)]);
    assert!(s.revoke_device("d1", 600, &ev("device.revoke", "d1")).await.unwrap());
    let mut late = rec(1);
    late.now_ms = 700;
    assert_eq!(s.record_signatures(vec![late]).await.unwrap(), vec![RecordOutcome::GrantUnusable]);
    let sigs = audit_all(&*s).await.iter().filter(|e| e.action == "signature.create").count();
    assert_eq!(sigs, 3);
}

async fn revoked_credential_records_no_signature(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await;
    let c = Credential {
        id: "c1".into(), practitioner_id: "p1".into(), algorithm: "rsa2048".into(), sealed_key: vec![5; 40].into(),
        certificate_chain: vec![vec![6; 10]], created_ms: 60, revoked_ms: None, revoked_reason: None,
    };
    s.create_credential(&c, &ev("credential.create", "c1")).await.unwrap();
    let rec = SignatureRecord {
        grant_id: "g1".into(), credential_id: "c1".into(), terminal_id: "t1".into(), hashes: vec![vec![1; 32], vec![2; 32]],
        sign_algo: "rsa".into(), now_ms: 500, signature_formats: vec!["X".into(), "C".into()], label: None,
    };
    assert_eq!(s.record_signatures(vec![rec.clone()]).await.unwrap(), vec![RecordOutcome::Recorded(2)]);
    let details: Vec<serde_json::Value> = audit_all(&*s).await.iter().filter(|e| e.action == "signature.create").map(|e| serde_json::from_str(&e.details).unwrap()).collect();
    assert_eq!(details[0]["format"], "X");
    assert_eq!(details[1]["format"], "C");
    assert_eq!(details[1]["signing_time"], "1970-01-01T00:00:00.5Z");
    assert!(s.revoke_credential("c1", "card lost", 600, &ev("credential.revoke", "c1")).await.unwrap());
    assert!(!s.revoke_credential("c1", "again", 610, &ev("credential.revoke", "c1")).await.unwrap(), "revoked once");
    let stored = s.get_credential("c1").await.unwrap().unwrap();
    assert_eq!((stored.revoked_ms, stored.revoked_reason.as_deref()), (Some(600), Some("card lost")));
    // A signature made before the revocation but recorded after it is refused.
    assert_eq!(s.record_signatures(vec![rec]).await.unwrap(), vec![RecordOutcome::CredentialRevoked]);
    assert_eq!(s.get_grant("g1").await.unwrap().unwrap().signatures_made, 2, "the grant's count did not move");
    let entries = audit_all(&*s).await;
    assert_eq!(entries.iter().filter(|e| e.action == "signature.create").count(), 2);
    verify(entries.iter()).unwrap();
}

/// A group commit of many records (more audit rows than one INSERT
/// carries, a refused record in the middle) appends one entry per hash, in
/// order, on one unbroken chain after what was there.
async fn group_commit_chains_every_signature_of_a_batch(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", Some(1000))).await;
    let before = audit_all(&*s).await.len();
    let rec = |first: u8, n: usize| SignatureRecord {
        grant_id: "g1".into(), credential_id: "c1".into(), terminal_id: "t1".into(),
        hashes: (0..n).map(|i| vec![first.wrapping_add(i as u8); 32]).collect(), sign_algo: "rsa".into(), now_ms: 500, signature_formats: Vec::new(), label: None,
    };
    let mut wrong_terminal = rec(9, 1);
    wrong_terminal.terminal_id = "t2".into();
    let out = s.record_signatures(vec![rec(0, 300), wrong_terminal, rec(100, 400), rec(200, 301)]).await.unwrap();
    assert_eq!(out, vec![RecordOutcome::Recorded(300), RecordOutcome::GrantUnusable, RecordOutcome::Recorded(700), RecordOutcome::GrantUnusable]);
    let entries = audit_all(&*s).await;
    assert_eq!(entries.len(), before + 700);
    verify(entries.iter()).unwrap();
    let hashes: Vec<String> = entries[before..].iter().map(|e| serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["hash"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (0..300u32).map(|i| hex::encode([i as u8; 32])).chain((0..400u32).map(|i| hex::encode([(100 + i) as u8; 32]))).collect();
    assert_eq!(hashes, expected, "one entry per hash, in order");
    assert_eq!(s.get_grant("g1").await.unwrap().unwrap().signatures_made, 700);
}

/// A batch over more grants and credentials than one statement of the
/// group commit reads or writes back: every grant ends with the counters
/// of its own records applied in order (cap, idle clock, time of the last
/// recorded one), and a grant no record counted against is left as it was.
async fn group_commit_writes_back_each_grants_own_counters(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    for i in 0..200u8 {
        let (l, g) = (format!("l{i}"), format!("g{i}"));
        s.create_login(&login(&l, i), &ev("login.start", &l)).await.unwrap();
        let mut gr = grant(&g, &l, "d1", if i % 2 == 0 { Some(3) } else { None });
        gr.idle_timeout_s = Some(60);
        approve(&*s, &l, "d1", gr).await;
    }
    let rec = |g: u8, n: usize, now_ms: i64| SignatureRecord {
        grant_id: format!("g{g}"), credential_id: format!("c{g}"), terminal_id: "t1".into(), hashes: vec![vec![g; 32]; n],
        sign_algo: "rsa".into(), now_ms, signature_formats: Vec::new(), label: None,
    };
    // Grants 0..150: 2 then 2 signatures (the second passes the cap of the
    // even ones); grant 150 idles out (last used at 200, idle 60 s); 151..200 untouched.
    let mut batch: Vec<SignatureRecord> = (0..150).map(|g| rec(g, 2, 1_000 + g as i64)).collect();
    batch.extend((0..150).map(|g| rec(g, 2, 5_000 + g as i64)));
    batch.push(rec(150, 1, 200 + 60_000));
    let out = s.record_signatures(batch).await.unwrap();
    for g in 0..150usize {
        assert_eq!(out[g], RecordOutcome::Recorded(2), "grant {g}");
        let second = if g % 2 == 0 { RecordOutcome::GrantUnusable } else { RecordOutcome::Recorded(4) };
        assert_eq!(out[150 + g], second, "grant {g}");
        let stored = s.get_grant(&format!("g{g}")).await.unwrap().unwrap();
        let (made, used) = if g % 2 == 0 { (2, 1_000 + g as i64) } else { (4, 5_000 + g as i64) };
        assert_eq!((stored.signatures_made, stored.last_used_ms), (made, used), "grant {g}");
    }
    assert_eq!(out[300], RecordOutcome::GrantUnusable, "idled out");
    for g in 150..200u8 {
        let stored = s.get_grant(&format!("g{g}")).await.unwrap().unwrap();
        assert_eq!((stored.signatures_made, stored.last_used_ms), (0, 200), "grant {g}");
    }
    let entries = audit_all(&*s).await;
    assert_eq!(entries.iter().filter(|e| e.action == "signature.create").count(), 150 * 2 + 75 * 2);
    verify(entries.iter()).unwrap();
}

/// The waiters' periodic re-check reads which waited logins the store has
/// decided (here: without this process telling them, as on another replica)
/// and wakes exactly their waiters.
async fn recheck_wakes_the_waiters_of_logins_decided_in_the_store(s: Arc<dyn Store>) {
    use shomei_server::service::waiters::Waiters;
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    s.create_login(&login("l2", 2), &ev("login.start", "l2")).await.unwrap();
    let waiters = Arc::new(Waiters::default());
    let mut w1 = waiters.watch("l1");
    let w2 = waiters.watch("l2");
    assert_eq!(waiters.recheck(&*s).await.unwrap(), 0, "nothing decided yet");
    assert_eq!(approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await, DecideOutcome::Done);
    assert_eq!(s.decided_logins(&["l1".into(), "l2".into(), "nope".into()]).await.unwrap(), vec![("l1".to_owned(), LoginStatus::Approved)]);
    assert_eq!(waiters.recheck(&*s).await.unwrap(), 1);
    assert_eq!(w1.decided().await, "approved");
    assert_eq!(waiters.waiting_on("l2"), 1);
    assert_eq!(waiters.recheck(&*s).await.unwrap(), 0, "a woken login is not read again");
    drop((w1, w2));
    assert_eq!(waiters.waited(), 0);
}

async fn audit_chain_verifies_after_every_operation(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await;
    s.revoke_practitioner_grants("p1", "ended", 900, &ev("grant.revoke_all", "p1")).await.unwrap();
    let entries = audit_all(&*s).await;
    let summary = verify(entries.iter()).unwrap();
    assert_eq!(summary.count as usize, entries.len());
    assert!(entries.len() >= 8);
}

async fn concurrent_audit_appends_keep_one_chain(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move { s.append_audit(i, &ev("test.append", &i.to_string())).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = audit_all(&*s).await;
    assert_eq!(entries.len(), 20);
    verify(entries.iter()).unwrap();
}

async fn decision_evidence_is_stored_with_its_decision_only(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    let evidence = |outcome, reason: &str| DecisionEvidence {
        login_id: "l1".into(), device_id: "d1".into(), outcome, reason: reason.into(), message: vec![1, 2, 3], signature: vec![0x30, 4, 5],
        public_key: vec![4; 65], attestation: Some("[\"att\"]".into()), decided_ms: 300,
    };
    let decide = |status, e: DecisionEvidence| LoginDecision {
        login_id: "l1".into(), device_id: "d1".into(), status, now_ms: 300, grant: None, evidence: Some(e), confirmation_hash: None, audit: ev("login.deny", "l1"),
    };
    assert!(s.get_decision_evidence("l1").await.unwrap().is_none());
    let first = evidence(LoginStatus::Denied, "user denied");
    assert_eq!(s.decide_login(&decide(LoginStatus::Denied, first.clone())).await.unwrap(), DecideOutcome::Done);
    assert_eq!(s.get_decision_evidence("l1").await.unwrap(), Some(first.clone()));
    // A later decision loses the race and leaves the first one's evidence as it was.
    let late = evidence(LoginStatus::Approved, "user approved");
    assert_eq!(s.decide_login(&decide(LoginStatus::Approved, late)).await.unwrap(), DecideOutcome::NotPending);
    assert_eq!(s.get_decision_evidence("l1").await.unwrap(), Some(first));
}

async fn wrong_confirmation_codes_end_the_grant_at_the_limit(s: Arc<dyn Store>) {
    seed(&*s).await;
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    s.create_login(&login("l1", 1), &ev("login.start", "l1")).await.unwrap();
    approve(&*s, "l1", "d1", grant("g1", "l1", "d1", None)).await;
    for expected in 1..=2 {
        assert_eq!(s.record_confirmation_failure("l1", "g1", 3, 400, &ev("login.confirmation_wrong", "l1")).await.unwrap(), expected);
        assert!(s.get_grant("g1").await.unwrap().unwrap().revoked_ms.is_none(), "the grant survives wrong code {expected}");
    }
    assert_eq!(s.record_confirmation_failure("l1", "g1", 3, 400, &ev("login.confirmation_wrong", "l1")).await.unwrap(), 3);
    let g = s.get_grant("g1").await.unwrap().unwrap();
    assert_eq!((g.revoked_ms, g.revoked_reason.as_deref()), (Some(400), Some("confirmation failed")));
    assert_eq!(s.get_login("l1").await.unwrap().unwrap().confirmation_failures, 3);
    verify(audit_all(&*s).await.iter()).unwrap();
}

/// p1 with grants g1 (terminal t1) and g2 (terminal t2, facility f2); p2 with g3 on t1.
async fn signing_log_fixture(s: &dyn Store) {
    seed(s).await;
    let f2 = Facility { id: "f2".into(), name: "Pharmacy".into(), created_ms: 4 };
    s.create_facility(&f2, &ev("facility.create", "f2")).await.unwrap();
    let t2 = Terminal { id: "t2".into(), facility_id: "f2".into(), name: "Counter".into(), secret_hash: vec![2; 32], created_ms: 5, revoked_ms: None };
    s.create_terminal(&t2, &ev("terminal.create", "t2")).await.unwrap();
    let p2 = Practitioner { id: "p2".into(), display_name: "Dr Two".into(), role: "doctor".into(), facility_ids: vec!["f1".into()], created_ms: 6 };
    s.create_practitioner(&p2, &ev("practitioner.create", "p2")).await.unwrap();
    s.create_enrollment(&enrollment("e1"), &ev("enrollment.create", "e1")).await.unwrap();
    s.complete_enrollment("e1", &device("d1", 1), true, 50, &ev("device.enroll", "d1")).await.unwrap();
    let mut e2 = enrollment("e2");
    e2.practitioner_id = "p2".into();
    s.create_enrollment(&e2, &ev("enrollment.create", "e2")).await.unwrap();
    let mut d2 = device("d2", 2);
    d2.practitioner_id = "p2".into();
    s.complete_enrollment("e2", &d2, true, 50, &ev("device.enroll", "d2")).await.unwrap();
    for (l, code, g, dev, term, pid) in [("l1", 1, "g1", "d1", "t1", "p1"), ("l2", 2, "g2", "d1", "t2", "p1"), ("l3", 3, "g3", "d2", "t1", "p2")] {
        let mut lg = login(l, code);
        lg.terminal_id = term.into();
        s.create_login(&lg, &ev("login.start", l)).await.unwrap();
        let mut gr = grant(g, l, dev, None);
        gr.terminal_id = term.into();
        gr.practitioner_id = pid.into();
        approve(s, l, dev, gr).await;
    }
}

fn signed(grant: &str, terminal: &str, at: i64, digests: &[u8], formats: &[&str], label: Option<&str>) -> SignatureRecord {
    SignatureRecord {
        grant_id: grant.into(), credential_id: format!("c-{grant}"), terminal_id: terminal.into(),
        hashes: digests.iter().map(|d| vec![*d; 32]).collect(), sign_algo: "rsa-pkcs1-sha256".into(), now_ms: at,
        signature_formats: formats.iter().map(|f| f.to_string()).collect(), label: label.map(str::to_owned),
    }
}

async fn walk(s: &dyn Store, grant: Option<&str>, from_ms: i64, watermark: i64, limit: i64) -> Vec<SignatureEntry> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let page = SignaturePage { watermark, before_seq: before, limit };
        let rows = match grant {
            Some(g) => s.grant_signatures(g, page).await.unwrap(),
            None => s.practitioner_signatures("p1", from_ms, page).await.unwrap(),
        };
        assert!(rows.len() as i64 <= limit);
        let Some(last) = rows.last() else { return out };
        before = Some(last.seq);
        out.extend(rows);
    }
}

async fn signing_log_rows_share_their_audit_entry_and_keep_label_and_format(s: Arc<dyn Store>) {
    signing_log_fixture(&*s).await;
    let out = s.record_signatures(vec![
        signed("g1", "t1", 1_000, &[1], &[], Some("処方箋 #1")),
        signed("g2", "t2", 1_001, &[2, 3], &["X", "C"], None),
        signed("g3", "t1", 1_002, &[4], &[], Some("other")),
    ]).await.unwrap();
    assert!(out.iter().all(|o| matches!(o, RecordOutcome::Recorded(_))), "{out:?}");
    let audit: Vec<AuditEntry> = audit_all(&*s).await.into_iter().filter(|e| e.action == "signature.create").collect();
    let mine = s.signatures_since("p1", None, 0, 100).await.unwrap();
    assert_eq!(mine.len(), 3, "p2's signature is not p1's");
    for (row, entry) in mine.iter().zip(&audit) {
        assert_eq!(row.seq, entry.seq, "the row carries its audit entry's seq");
        let d: serde_json::Value = serde_json::from_str(&entry.details).unwrap();
        assert_eq!(d["hash"], hex::encode(&row.digest));
        assert_eq!(d.get("label").and_then(|l| l.as_str()), row.label.as_deref());
    }
    assert_eq!(mine[0].label.as_deref(), Some("処方箋 #1"));
    assert_eq!((mine[0].format.as_str(), mine[0].terminal_name.as_str(), mine[0].facility_name.as_str()), ("hash", "EHR", "Clinic"));
    assert_eq!((mine[1].format.as_str(), mine[2].format.as_str()), ("xades", "cms"));
    assert_eq!((mine[1].terminal_id.as_str(), mine[1].facility_name.as_str()), ("t2", "Pharmacy"));
    assert_eq!(mine[1].digest, vec![2; 32]);
    let theirs = s.signatures_since("p2", None, 0, 100).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].label.as_deref(), Some("other"));
    // A refused record leaves no row (and no audit entry).
    s.revoke_grant("g1", "ended", 1_100, &ev("grant.revoke", "g1")).await.unwrap();
    assert_eq!(s.record_signatures(vec![signed("g1", "t1", 1_200, &[9], &[], None)]).await.unwrap(), vec![RecordOutcome::GrantUnusable]);
    assert_eq!(s.signatures_since("p1", None, 0, 100).await.unwrap().len(), 3);
    // The ended grant's signatures stay listed.
    assert_eq!(walk(&*s, Some("g1"), 0, s.signature_watermark("p1").await.unwrap(), 10).await.len(), 1);
    verify(audit_all(&*s).await.iter()).unwrap();
}

async fn signing_log_walk_is_stable_under_inserts_and_following_sees_the_rest(s: Arc<dyn Store>) {
    signing_log_fixture(&*s).await;
    // One from long before "today", then 23 on g1 and 10 on g2, several per
    // batch, some sharing a millisecond.
    s.record_signatures(vec![signed("g1", "t1", 1_000, &[250], &[], None)]).await.unwrap();
    for i in 0..10u8 {
        let at = 100_000 + (i as i64 / 2);
        let recs = vec![signed("g1", "t1", at, &[i * 3, i * 3 + 1], &[], None), signed("g2", "t2", at, &[200 + i], &[], None)];
        s.record_signatures(recs).await.unwrap();
    }
    s.record_signatures(vec![signed("g1", "t1", 100_010, &[100, 101, 102], &[], None)]).await.unwrap();
    let w = s.signature_watermark("p1").await.unwrap();
    assert_eq!(s.signature_watermark("nobody").await.unwrap(), 0);
    // Page 1 of g1, then signatures arrive, then the rest of the walk.
    let first = s.grant_signatures("g1", SignaturePage { watermark: w, before_seq: None, limit: 4 }).await.unwrap();
    assert_eq!(first.len(), 4);
    s.record_signatures(vec![signed("g1", "t1", 100_011, &[150, 151], &[], None), signed("g2", "t2", 99_000, &[152], &[], None)]).await.unwrap();
    let last = first.last().unwrap();
    let mut all = first.clone();
    let mut before = Some(last.seq);
    loop {
        let rows = s.grant_signatures("g1", SignaturePage { watermark: w, before_seq: before, limit: 4 }).await.unwrap();
        let Some(l) = rows.last() else { break };
        before = Some(l.seq);
        all.extend(rows);
    }
    assert_eq!(all.len(), 24, "the walk shows exactly what existed at its watermark");
    let keys: Vec<i64> = all.iter().map(|r| r.seq).collect();
    assert!(keys.windows(2).all(|k| k[0] > k[1]), "strictly newest first, no repeats: {keys:?}");
    assert!(all.iter().all(|r| r.grant_id == "g1" && r.seq <= w));
    // Following from the watermark returns exactly the rest, in recording order —
    // including the late one stamped before everything else.
    let rest = s.signatures_since("p1", None, w, 100).await.unwrap();
    assert_eq!(rest.iter().map(|r| r.digest[0]).collect::<Vec<_>>(), vec![150, 151, 152]);
    let rest_g2 = s.signatures_since("p1", Some("g2"), w, 100).await.unwrap();
    assert_eq!(rest_g2.len(), 1);
    assert_eq!(s.signatures_since("p1", None, w, 2).await.unwrap().len(), 2, "limit holds");
    // The day view across grants: everything of p1 from 100_003 on, newest first.
    let w2 = s.signature_watermark("p1").await.unwrap();
    let day = walk(&*s, None, 100_003, w2, 5).await;
    let direct: usize = s.signatures_since("p1", None, 0, 1000).await.unwrap().iter().filter(|r| r.at_ms >= 100_003).count();
    assert_eq!(day.len(), direct);
    assert!(day.iter().all(|r| r.at_ms >= 100_003 && r.practitioner_id == "p1"));
    assert!(day.iter().any(|r| r.grant_id == "g2") && day.iter().any(|r| r.grant_id == "g1"));
    assert!(!day.iter().any(|r| r.digest[0] == 250 || r.digest[0] == 152), "older than from: not today");
    assert_eq!(walk(&*s, None, 0, w2, 7).await.len(), 24 + 10 + 3, "from the epoch: everything of p1");
}

async fn user_code_lookup_finds_the_newest_login_and_marks_only_an_open_one(s: Arc<dyn Store>) {
    seed(&*s).await;
    let old = Login { created_ms: 50, status: LoginStatus::Pending, ..login("l0", 1) };
    let new = Login { user_code_hash: old.user_code_hash.clone(), ..login("l1", 2) };
    s.create_login(&old, &ev("login.start", "l0")).await.unwrap();
    s.create_login(&new, &ev("login.start", "l1")).await.unwrap();
    let hash = old.user_code_hash.clone().unwrap();
    assert_eq!(s.get_login_by_user_code_hash(&hash).await.unwrap().unwrap().id, "l1");
    assert_eq!(s.get_login_by_user_code_hash(&[9; 32]).await.unwrap(), None);
    let before = audit_all(&*s).await.len();
    // Expired at 120_100: not marked, nothing audited.
    assert!(!s.mark_login_code_resolved("l1", "d1", 120_100, &ev("login.code_resolve", "l1")).await.unwrap());
    assert_eq!(audit_all(&*s).await.len(), before);
    assert!(s.mark_login_code_resolved("l1", "d1", 300, &ev("login.code_resolve", "l1")).await.unwrap());
    assert_eq!(s.get_login("l1").await.unwrap().unwrap().code_device_id.as_deref(), Some("d1"));
    assert_eq!(s.get_login("l0").await.unwrap().unwrap().code_device_id, None);
    assert_eq!(audit_all(&*s).await.len(), before + 1);
}

async fn settings_keep_the_first_value(s: Arc<dyn Store>) {
    assert_eq!(s.put_setting_if_absent("k", b"one").await.unwrap(), b"one");
    assert_eq!(s.put_setting_if_absent("k", b"two").await.unwrap(), b"one");
    assert_eq!(s.get_setting("k").await.unwrap().unwrap(), b"one");
}

type Case = fn(Arc<dyn Store>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

macro_rules! cases {
    ($($f:ident),* $(,)?) => { &[$((stringify!($f), (|s| Box::pin($f(s))) as Case)),*] };
}

const CASES: &[(&str, Case)] = cases![
    registry_round_trips,
    enrollment_is_single_use,
    expired_enrollment_is_not_completed,
    enrollment_locks_after_max_failures,
    concurrent_attempt_reservations_never_exceed_the_maximum,
    expired_enrollment_reserves_no_attempt,
    new_device_retires_old_device_and_its_grants,
    concurrent_decisions_exactly_one_wins,
    expired_login_cannot_be_decided,
    grant_token_is_issued_once,
    signing_context_is_the_three_lookups_in_one,
    signature_records_respect_cap_and_revocation,
    revoked_credential_records_no_signature,
    audit_chain_verifies_after_every_operation,
    concurrent_audit_appends_keep_one_chain,
    settings_keep_the_first_value,
    user_code_lookup_finds_the_newest_login_and_marks_only_an_open_one,
    group_commit_chains_every_signature_of_a_batch,
    group_commit_writes_back_each_grants_own_counters,
    recheck_wakes_the_waiters_of_logins_decided_in_the_store,
    decision_evidence_is_stored_with_its_decision_only,
    wrong_confirmation_codes_end_the_grant_at_the_limit,
    signing_log_rows_share_their_audit_entry_and_keep_label_and_format,
    signing_log_walk_is_stable_under_inserts_and_following_sees_the_rest,
];

/// Every pooled SQLite connection runs with the small page cache, not
/// SQLite's 2 MB default (memory with many terminals waiting).
#[tokio::test]
async fn sqlite_connections_use_the_small_page_cache() {
    let dir = tempfile::tempdir().unwrap();
    let store = shomei_server::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = store.pool().acquire().await.unwrap();
        let size: i64 = sqlx::query_scalar("PRAGMA cache_size").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(size, -i64::from(shomei_server::store::sqlite::PAGE_CACHE_KIB));
        held.push(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_on_sqlite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let store = shomei_server::store::open(&dir.path().join("t.db").display().to_string()).await.unwrap();
        eprintln!("sqlite: {name}");
        case(store).await;
    }
}

/// A fresh PostgreSQL database for this run, dropped on success.
pub(crate) struct PgDb {
    admin_url: String,
    name: String,
}

impl PgDb {
    pub(crate) async fn create() -> Option<PgDb> {
        let Ok(admin_url) = std::env::var("SHOMEI_TEST_DATABASE_URL") else {
            if std::env::var_os("CI").is_some() {
                panic!("SHOMEI_TEST_DATABASE_URL is not set but CI is: the PostgreSQL storage suite must run in CI");
            }
            eprintln!("\n*** SKIPPING the PostgreSQL storage suite: SHOMEI_TEST_DATABASE_URL is not set ***\n");
            return None;
        };
        let name = format!("shomei_test_{}", hex::encode(rand_bytes()));
        let pool = sqlx::PgPool::connect(&admin_url).await.expect("connect to SHOMEI_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.unwrap();
        pool.close().await;
        Some(PgDb { admin_url, name })
    }

    /// The server URL the databases are created from (for ALTER/DROP DATABASE).
    pub(crate) fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// This test's database name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn url(&self) -> String {
        let mut u = url::Url::parse(&self.admin_url).unwrap();
        u.set_path(&self.name);
        u.to_string()
    }

    /// Each case gets a clean schema: drop and recreate the database.
    pub(crate) async fn reset(&self) {
        let pool = sqlx::PgPool::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&pool).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {}", self.name)).execute(&pool).await.unwrap();
        pool.close().await;
    }

    pub(crate) async fn drop_db(self) {
        let pool = sqlx::PgPool::connect(&self.admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

fn rand_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).unwrap();
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_suite_on_postgres() {
    let Some(db) = PgDb::create().await else { return };
    for (name, case) in CASES {
        db.reset().await;
        let store = shomei_server::store::open(&db.url()).await.unwrap();
        eprintln!("postgres: {name}");
        case(store).await;
    }
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_tampering_on_postgres_is_detected_at_the_edited_seq() {
    let Some(db) = PgDb::create().await else { return };
    let store = shomei_server::store::postgres::PgStore::connect(&db.url()).await.unwrap();
    seed(&store).await;
    sqlx::query("UPDATE audit SET actor = 'mallory' WHERE seq = 2").execute(store.pool()).await.unwrap();
    let entries = audit_all(&store).await;
    assert_eq!(verify(entries.iter()).unwrap_err().seq(), 2);
    store.pool().close().await;
    db.drop_db().await;
}

/// The backfill half of migration 0005 (the statement after its "copy them"
/// comment): signatures recorded only in the audit log come back as rows.
fn backfill_sql(migration: &str) -> &str {
    migration.split("-- Signatures made before this migration are in the audit log only: copy them.").nth(1).expect("backfill statement")
}

async fn backfilled_rows_match_recorded_ones(s: &dyn Store, run: impl std::future::Future<Output = ()>) {
    run.await;
    let backfilled = s.signatures_since("p1", None, 0, 100).await.unwrap();
    assert_eq!(backfilled.len(), 3);
    assert_eq!(backfilled.iter().map(|r| (r.format.as_str(), r.digest[0], r.terminal_id.as_str())).collect::<Vec<_>>(), vec![("hash", 1, "t1"), ("xades", 2, "t2"), ("cms", 3, "t2")]);
    assert!(backfilled.iter().all(|r| r.label.is_none() && r.sign_algo == "rsa-pkcs1-sha256" && r.at_ms >= 1_000));
}

async fn record_then_forget_rows(s: &dyn Store) {
    signing_log_fixture(s).await;
    s.record_signatures(vec![signed("g1", "t1", 1_000, &[1], &[], Some("dropped by the backfill")), signed("g2", "t2", 1_001, &[2, 3], &["X", "C"], None)]).await.unwrap();
}

#[tokio::test]
async fn migration_0005_backfills_signatures_from_the_audit_log_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = shomei_server::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    record_then_forget_rows(&store).await;
    let sql = backfill_sql(include_str!("../../migrations/sqlite/0005_signature_log.sql"));
    backfilled_rows_match_recorded_ones(&store, async {
        sqlx::query("DELETE FROM signatures").execute(store.pool()).await.unwrap();
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn migration_0005_backfills_signatures_from_the_audit_log_on_postgres() {
    let Some(db) = PgDb::create().await else { return };
    let store = shomei_server::store::postgres::PgStore::connect(&db.url()).await.unwrap();
    record_then_forget_rows(&store).await;
    let sql = backfill_sql(include_str!("../../migrations/postgres/0005_signature_log.sql"));
    backfilled_rows_match_recorded_ones(&store, async {
        sqlx::query("DELETE FROM signatures").execute(store.pool()).await.unwrap();
        sqlx::query(sql).execute(store.pool()).await.unwrap();
    })
    .await;
    store.pool().close().await;
    db.drop_db().await;
}

/// A signing-log row inserted by hand: grant g1 is p1's at terminal t1
/// (signing_log_fixture); `practitioner` and `terminal` are what the row
/// claims.
const HAND_ROW: &str = "INSERT INTO signatures (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label) \
    VALUES ($1, 'g1', $2, $3, 'c-g1', 1000, 'rsa-pkcs1-sha256', 'hash', $4, NULL)";

/// What a hand-made row claiming (`practitioner`, `terminal`) for g1 did:
/// `Ok` when stored, else the database's refusal.
macro_rules! insert_hand_row {
    ($pool:expr, $seq:expr, $practitioner:expr, $terminal:expr) => {
        sqlx::query(HAND_ROW).bind($seq).bind($practitioner).bind($terminal).bind(vec![1u8; 32]).execute($pool).await.map(|_| ())
    };
}

/// signing_log_fixture, then hand-made rows for g1 through `insert`: a
/// row naming g1 with another practitioner or terminal is refused as a
/// foreign-key violation and leaves nothing (p2 and t2 exist, but g1 is
/// neither p2's nor t2's: the three single keys of 0005 took both); g1's
/// own pair is stored.
async fn only_the_grants_own_pair_is_stored<F, Fut>(s: &dyn Store, insert: F)
where
    F: Fn(&'static str, &'static str) -> Fut,
    Fut: std::future::Future<Output = Result<(), sqlx::Error>>,
{
    signing_log_fixture(s).await;
    for (practitioner, terminal) in [("p2", "t1"), ("p1", "t2"), ("p1", "nobody")] {
        let e = insert(practitioner, terminal).await.unwrap_err();
        assert!(e.to_string().to_lowercase().contains("foreign key"), "{practitioner}/{terminal}: {e}");
    }
    assert!(s_rows(s).await.is_empty(), "no refused row stayed");
    insert("p1", "t1").await.unwrap();
    assert_eq!(s_rows(s).await.len(), 1);
}

#[tokio::test]
async fn a_signing_log_row_must_name_its_grants_own_practitioner_and_terminal_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = shomei_server::store::sqlite::SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    let pool = store.pool().clone();
    only_the_grants_own_pair_is_stored(&store, |p, t| {
        let pool = pool.clone();
        async move { insert_hand_row!(&pool, 900, p, t) }
    })
    .await;
}

#[tokio::test]
async fn a_signing_log_row_must_name_its_grants_own_practitioner_and_terminal_on_postgres() {
    let Some(db) = PgDb::create().await else { return };
    let store = shomei_server::store::postgres::PgStore::connect(&db.url()).await.unwrap();
    let pool = store.pool().clone();
    only_the_grants_own_pair_is_stored(&store, |p, t| {
        let pool = pool.clone();
        async move { insert_hand_row!(&pool, 900_i64, p, t) }
    })
    .await;
    store.pool().close().await;
    db.drop_db().await;
}

/// p1's signing-log rows, through the store.
async fn s_rows(s: &dyn Store) -> Vec<SignatureEntry> {
    s.signatures_since("p1", None, 0, 100).await.unwrap()
}

/// The migrations before `version`, as a migrator of their own.
fn migrations_before(all: sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    let mut m = all;
    m.migrations = std::borrow::Cow::Owned(m.migrations.iter().filter(|m| m.version < version).cloned().collect());
    assert_eq!(m.migrations.len() as i64, version - 1);
    m
}

/// A new SQLite file at `path` with the migrations before `version` applied.
async fn sqlite_before(path: &std::path::Path, version: i64) -> sqlx::SqlitePool {
    let opts = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(true).foreign_keys(true);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    migrations_before(sqlx::migrate!("migrations/sqlite"), version).run(&pool).await.unwrap();
    pool
}

/// A database at migration 0006 holding a signing log, then opened by this
/// binary (which applies 0007): the same rows come back.
async fn rows_survive_0007(s: &dyn Store) {
    let rows = s_rows(s).await;
    assert_eq!(rows.iter().map(|r| (r.digest[0], r.format.as_str(), r.terminal_id.as_str(), r.label.as_deref())).collect::<Vec<_>>(),
        vec![(1, "hash", "t1", Some("first")), (2, "xades", "t2", None), (3, "cms", "t2", None)]);
    assert_eq!(s.grant_signatures("g2", SignaturePage { watermark: i64::MAX, before_seq: None, limit: 10 }).await.unwrap().len(), 2);
}

/// The 0006 schema's rows, inserted by hand: p1 with grants g1 (at t1) and
/// g2 (at t2), and three signing-log rows.
const ROWS_AT_0006: &[&str] = &[
    "INSERT INTO facilities VALUES ('f1', 'Clinic', 1)",
    "INSERT INTO terminals VALUES ('t1', 'f1', 'EHR', x'01', 2, NULL)",
    "INSERT INTO terminals VALUES ('t2', 'f1', 'Counter', x'02', 2, NULL)",
    "INSERT INTO practitioners VALUES ('p1', 'Dr', 'doctor', 3)",
    "INSERT INTO practitioner_facilities VALUES ('p1', 'f1')",
    "INSERT INTO devices (id, practitioner_id, name, platform, public_key, token_hash, created_ms) VALUES ('d1', 'p1', 'phone', 'desktop', x'04', x'05', 4)",
    "INSERT INTO grants (id, practitioner_id, terminal_id, device_id, login_id, created_ms, expires_ms, last_used_ms) VALUES ('g1', 'p1', 't1', 'd1', 'l1', 5, 9000000000000, 5)",
    "INSERT INTO grants (id, practitioner_id, terminal_id, device_id, login_id, created_ms, expires_ms, last_used_ms) VALUES ('g2', 'p1', 't2', 'd1', 'l2', 5, 9000000000000, 5)",
    "INSERT INTO signatures VALUES (1, 'g1', 'p1', 't1', 'c1', 1000, 'rsa-pkcs1-sha256', 'hash', x'0101010101010101010101010101010101010101010101010101010101010101', 'first')",
    "INSERT INTO signatures VALUES (2, 'g2', 'p1', 't2', 'c1', 1001, 'rsa-pkcs1-sha256', 'xades', x'0202020202020202020202020202020202020202020202020202020202020202', NULL)",
    "INSERT INTO signatures VALUES (3, 'g2', 'p1', 't2', 'c1', 1002, 'rsa-pkcs1-sha256', 'cms', x'0303030303030303030303030303030303030303030303030303030303030303', NULL)",
];

#[tokio::test]
async fn migration_0007_keeps_the_signing_log_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let pool = sqlite_before(&path, 7).await;
        for row in ROWS_AT_0006 {
            sqlx::query(row).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = shomei_server::store::sqlite::SqliteStore::open(&path).await.unwrap();
    rows_survive_0007(&store).await;
}

#[tokio::test]
async fn migration_0007_keeps_the_signing_log_on_postgres() {
    let Some(db) = PgDb::create().await else { return };
    {
        let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
        migrations_before(sqlx::migrate!("migrations/postgres"), 7).run(&pool).await.unwrap();
        for row in ROWS_AT_0006 {
            sqlx::query(&row.replace("x'", "'\\x")).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = shomei_server::store::postgres::PgStore::connect(&db.url()).await.unwrap();
    rows_survive_0007(&store).await;
    store.pool().close().await;
    db.drop_db().await;
}

/// A SQLite database at migration 0007 holding an audit chain, then opened
/// by this binary (0008 makes `audit.seq` the rowid): the same chain
/// verifies, its seq is the rowid, seq stays unique, and the next append
/// chains after the migrated head.
#[tokio::test]
async fn migration_0008_keeps_the_audit_chain_with_seq_as_the_rowid() {
    use shomei_server::audit::chain::{GENESIS, entry_hash};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    {
        let pool = sqlite_before(&path, 8).await;
        let mut prev = GENESIS;
        for seq in 1..=5i64 {
            let details = format!("{{\"n\":{seq}}}");
            let hash = entry_hash(&prev, seq, 1_000 + seq, "test", "test.append", "s", &details);
            sqlx::query("INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash) VALUES (?1, ?2, 'test', 'test.append', 's', ?3, ?4, ?5)")
                .bind(seq).bind(1_000 + seq).bind(&details).bind(&prev[..]).bind(&hash[..])
                .execute(&pool).await.unwrap();
            prev = hash;
        }
        pool.close().await;
    }
    let store = shomei_server::store::sqlite::SqliteStore::open(&path).await.unwrap();
    let entries = audit_all(&store).await;
    assert_eq!(verify(entries.iter()).unwrap().count, 5);
    let pool = store.pool();
    let as_rowid: i64 = sqlx::query_scalar("SELECT count(*) FROM audit WHERE rowid = seq").fetch_one(pool).await.unwrap();
    assert_eq!(as_rowid, 5);
    let indexes: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'").fetch_one(pool).await.unwrap();
    assert_eq!(indexes, 0, "no index beside the rowid");
    let duplicate = sqlx::query("INSERT INTO audit SELECT * FROM audit WHERE seq = 3").execute(pool).await;
    assert!(duplicate.is_err(), "seq stays unique");
    store.append_audit(2_000, &ev("test.append", "after")).await.unwrap();
    let entries = audit_all(&store).await;
    assert_eq!(verify(entries.iter()).unwrap().count, 6);
    assert_eq!(entries.last().map(|e| (e.seq, e.subject.as_str())), Some((6, "after")));
}

/// A shared server's log: p1's grants g1 and g2 hold 300 and 200
/// signatures among 6,000 of another practitioner's (g3, p2), recorded
/// interleaved — enough rows that a planner with statistics would rather
/// scan than seek if no index served the query.
async fn signing_log_for_plans(s: &dyn Store) {
    signing_log_fixture(s).await;
    let batch = |n: usize| -> Vec<u8> { (0..=255).cycle().take(n).collect() };
    for i in 0..10 {
        s.record_signatures(vec![signed("g3", "t1", 1_000 + i, &batch(600), &[], Some("Rx"))]).await.unwrap();
        s.record_signatures(vec![signed("g1", "t1", 1_000 + i, &batch(30), &[], Some("Rx"))]).await.unwrap();
        s.record_signatures(vec![signed("g2", "t2", 1_000 + i, &batch(20), &[], None)]).await.unwrap();
    }
}

/// Each signing-log read as the database plans it: (what, plan text).
macro_rules! signing_log_plans {
    ($pool:expr, $dialect:expr, $explain:literal, $detail:expr) => {{
        let mut plans = Vec::new();
        let sql = format!("{} {}", $explain, signing_log_sql::grant_page($dialect));
        let rows = sqlx::query(&sql)
            .bind("g1")
            .bind(i64::MAX)
            .bind(i64::MAX)
            .bind(51i64)
            .fetch_all($pool)
            .await
            .unwrap();
        plans.push((
            "grant page",
            rows.iter().map($detail).collect::<Vec<String>>().join("\n"),
        ));
        // The day view bounded on both sides of `seq` (a first seq of the
        // day and a cursor), the shape SQLite used to answer with a rowid
        // range over every practitioner's day.
        let sql = format!(
            "{} {}",
            $explain,
            signing_log_sql::practitioner_page($dialect)
        );
        let rows = sqlx::query(&sql)
            .bind("p1")
            .bind(i64::MAX)
            .bind(5_000i64)
            .bind(51i64)
            .bind(2_000i64)
            .bind(0i64)
            .fetch_all($pool)
            .await
            .unwrap();
        plans.push((
            "day page",
            rows.iter().map($detail).collect::<Vec<String>>().join("\n"),
        ));
        let sql = format!("{} {}", $explain, signing_log_sql::grant_since($dialect));
        let rows = sqlx::query(&sql)
            .bind("g1")
            .bind("p1")
            .bind(4_000i64)
            .bind(51i64)
            .fetch_all($pool)
            .await
            .unwrap();
        plans.push((
            "grant since",
            rows.iter().map($detail).collect::<Vec<String>>().join("\n"),
        ));
        let sql = format!(
            "{} {}",
            $explain,
            signing_log_sql::practitioner_since($dialect)
        );
        let rows = sqlx::query(&sql)
            .bind("p1")
            .bind(4_000i64)
            .bind(51i64)
            .fetch_all($pool)
            .await
            .unwrap();
        plans.push((
            "day since",
            rows.iter().map($detail).collect::<Vec<String>>().join("\n"),
        ));
        plans
    }};
}

/// Every signing-log read — pages and following, of a grant and of the
/// day — is a range of the index it was written for, read in order, on
/// both databases (docs/performance.md, row 5).
const PLAN_INDEXES: [&str; 4] = [
    "signatures_grant_seq",
    "signatures_practitioner_seq",
    "signatures_grant_seq",
    "signatures_practitioner_seq",
];

#[tokio::test]
async fn signing_log_pages_are_index_ranges_on_sqlite() {
    use sqlx::Row as _;
    let dir = tempfile::tempdir().unwrap();
    let store = shomei_server::store::sqlite::SqliteStore::open(&dir.path().join("t.db"))
        .await
        .unwrap();
    signing_log_for_plans(&store).await;
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    let plans = signing_log_plans!(
        store.pool(),
        signing_log_sql::Dialect::Sqlite,
        "EXPLAIN QUERY PLAN",
        |r: &sqlx::sqlite::SqliteRow| r.get::<String, _>("detail")
    );
    assert_eq!(plans.len(), PLAN_INDEXES.len());
    for (what, plan) in &plans {
        eprintln!("sqlite {what}:\n{plan}");
    }
    for ((what, plan), index) in plans.iter().zip(PLAN_INDEXES) {
        // The bound on seq is part of the index range, not a filter after it.
        assert!(
            plan.lines().any(|l| l.starts_with("SEARCH s USING")
                && l.contains(&format!("INDEX {index} ("))
                && l.contains("seq")),
            "{what}: {plan}"
        );
        assert!(
            !plan.lines().any(|l| l.starts_with("SCAN s")),
            "{what} scans the signatures: {plan}"
        );
        assert!(
            !plan.contains("TEMP B-TREE"),
            "{what} sorts instead of reading the index in order: {plan}"
        );
    }
}

#[tokio::test]
async fn signing_log_pages_are_index_ranges_on_postgres() {
    use sqlx::Row as _;
    let Some(db) = PgDb::create().await else {
        return;
    };
    let store = shomei_server::store::postgres::PgStore::connect(&db.url())
        .await
        .unwrap();
    signing_log_for_plans(&store).await;
    sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    let plans = signing_log_plans!(
        store.pool(),
        signing_log_sql::Dialect::Postgres,
        "EXPLAIN",
        |r: &sqlx::postgres::PgRow| r.get::<String, _>(0)
    );
    assert_eq!(plans.len(), PLAN_INDEXES.len());
    for (what, plan) in &plans {
        eprintln!("postgres {what}:\n{plan}");
    }
    for ((what, plan), index) in plans.iter().zip(PLAN_INDEXES) {
        let others = [
            "signatures_pkey",
            "signatures_grant_seq",
            "signatures_practitioner_seq",
            "signatures_practitioner_time",
        ];
        for other in others.iter().filter(|o| **o != index) {
            assert!(
                !plan.contains(other),
                "{what} reads {other} besides {index}: {plan}"
            );
        }
        assert!(
            !plan.contains("Seq Scan on signatures"),
            "{what} scans the signatures: {plan}"
        );
        if what.ends_with("page") {
            // A page is read in order from the index and stops at the limit.
            assert!(
                plan.contains(&format!("Index Scan Backward using {index} on signatures")),
                "{what}: {plan}"
            );
            assert!(
                !plan.contains("Sort"),
                "{what} sorts instead of reading the index in order: {plan}"
            );
        } else {
            // Following reads what is new since the last poll: the index
            // range, either in order or as a bitmap of those rows sorted
            // (the planner's choice by how many are new).
            assert!(
                plan.contains(&format!("Index Scan using {index} on signatures"))
                    || plan.contains(&format!("Bitmap Index Scan on {index}")),
                "{what}: {plan}"
            );
        }
    }
    store.pool().close().await;
    db.drop_db().await;
}
