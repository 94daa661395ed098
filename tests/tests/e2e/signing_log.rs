//! Issue 14 across the real binaries: a day of prescriptions signed (signHash and signDoc, some
//! with the EHR's document label), and the practitioner's desktop phone listing exactly what
//! was signed in their name — by grant and for the day, through the library and the
//! `shomei-phone signatures` command, and live with `--follow` — while another practitioner's
//! phone sees none of it, the list outlives the grant, and bad labels sign nothing.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use shomei_core::api::{ErrorCode, Problem, SignatureEntry};
use shomei_core::client::ClientError;
use shomei_tests::{Phone, PhoneError};

use crate::terminal::{SHA256_OID, Token};
use crate::world::{Clinic, register_practitioner, sha256, sign_algo_for};

fn phone_cmd(state: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shomei-phone"))
        .arg("--state")
        .arg(state)
        .args(["--keystore", "file"])
        .args(args)
        .env_remove("SHOMEI_PHONE_TZ")
        .output()
        .expect("run shomei-phone");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "shomei-phone {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// POSTs a CSC call as the clinic's terminal, body as raw bytes (a label may be non-UTF-8).
async fn csc_raw(clinic: &Clinic, path: &str, grant: &str, body: Vec<u8>) -> (u16, Value) {
    let t = &clinic.terminal;
    let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", t.client_id, t.client_secret)));
    let r = reqwest::Client::new()
        .post(format!("{}{path}", t.base))
        .header("Authorization", format!("Bearer {grant}"))
        .header("Shomei-Terminal-Authorization", basic)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST csc");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn csc(clinic: &Clinic, path: &str, grant: &str, body: Value) -> (u16, Value) {
    csc_raw(clinic, path, grant, body.to_string().into_bytes()).await
}

/// The signing credential's CSC signAlgo OID and the log's name for it.
async fn algorithm(clinic: &Clinic, token: &Token) -> (&'static str, &'static str) {
    let cert = clinic.terminal.credential_certificate(&token.access_token, &clinic.credential_id).await.expect("credential certificate");
    let oid = sign_algo_for(&cert);
    let name = if oid == crate::terminal::RSA_SHA256_OID { "rsa-pkcs1-sha256" } else { "ecdsa-p256-sha256" };
    (oid, name)
}

async fn sign_hashes(clinic: &Clinic, token: &Token, sign_algo: &str, digests: &[Vec<u8>], label: Option<&str>) {
    let hashes: Vec<String> = digests.iter().map(|d| STANDARD.encode(d)).collect();
    let mut body = json!({ "credentialID": clinic.credential_id, "hashes": hashes, "hashAlgorithmOID": SHA256_OID, "signAlgo": sign_algo });
    if let Some(l) = label {
        body["label"] = json!(l);
    }
    let (s, v) = csc(clinic, "/csc/v2/signatures/signHash", &token.access_token, body).await;
    assert_eq!(s, 200, "{v}");
}

/// The phone's whole view of one grant (every page of `page` entries) or of the day.
async fn listed(phone: &Phone, grant: Option<uuid::Uuid>, page: u32) -> (Vec<SignatureEntry>, u64) {
    phone.signatures(grant, page).await.expect("signing log")
}

fn grant_unknown(e: &PhoneError) -> bool {
    matches!(e, PhoneError::Client(ClientError::Rejected { status: 404, code: ErrorCode::GrantUnknown, .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_lists_exactly_the_days_signatures_and_only_to_their_practitioner() {
    let mut clinic = Clinic::open();
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let grant: uuid::Uuid = token.grant_id.parse().expect("grant id");
    let (sign_algo, algorithm_name) = algorithm(&clinic, &token).await;

    // 12 prescriptions, every digest distinct: 4 signHash calls of 2 (three labelled "Rx n-m",
    // the last one without a label), then 4 signDoc CMS calls of one, labelled in Japanese.
    let digests: Vec<Vec<u8>> = (0..12).map(|i| sha256(format!("<Prescription no=\"{i}\">アムロジピン 5mg</Prescription>").as_bytes())).collect();
    let mut labels: Vec<Option<String>> = Vec::new();
    for pair in 0..4 {
        let label = (pair < 3).then(|| format!("Rx {}-{}", 2 * pair, 2 * pair + 1));
        sign_hashes(&clinic, &token, sign_algo, &digests[2 * pair..2 * pair + 2], label.as_deref()).await;
        labels.extend([label.clone(), label]);
    }
    for (i, digest) in digests.iter().enumerate().skip(8) {
        let label = format!("処方箋 No.{i:04} サトウ");
        let entry = json!({ "hashes": [STANDARD.encode(digest)], "hashAlgorithmOID": SHA256_OID, "signature_format": "C", "signAlgo": sign_algo });
        let body = json!({ "credentialID": clinic.credential_id, "documentDigests": [entry], "label": label });
        let (s, v) = csc(&clinic, "/csc/v2/signatures/signDoc", &token.access_token, body).await;
        assert_eq!(s, 200, "{v}");
        labels.push(Some(label));
    }

    // The phone lists exactly those 12, walking pages of 5: newest first, each digest with
    // its own label, the right terminal, facility, credential and algorithm.
    let (entries, watermark) = listed(&phone, Some(grant), 5).await;
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first: {seqs:?}");
    assert_eq!(watermark, seqs[0]);
    let oldest_first: Vec<(Vec<u8>, Option<String>)> = entries.iter().rev().map(|e| (e.digest.clone(), e.label.clone())).collect();
    let signed: Vec<(Vec<u8>, Option<String>)> = digests.iter().cloned().zip(labels.iter().cloned()).collect();
    assert_eq!(oldest_first, signed, "exactly the 12 digests, in signing order, each with its label");
    for e in &entries {
        assert_eq!((e.terminal.name.as_str(), e.terminal.id.to_string()), ("Reception PC 1", clinic.terminal.client_id.clone()));
        assert_eq!((e.facility.name.as_str(), e.facility.id.to_string()), ("Sakura Clinic", clinic.facility_id.clone()));
        assert_eq!(e.credential_id, clinic.credential_id);
        assert_eq!(e.grant_id, grant);
        assert_eq!(e.algorithm, algorithm_name);
    }
    let formats: Vec<&str> = entries.iter().map(|e| e.format.as_str()).collect();
    assert_eq!(formats, [vec!["cms"; 4], vec!["hash"; 8]].concat(), "newest first: the CMS calls came last");
    let (day, _) = listed(&phone, None, 50).await;
    assert_eq!(day, entries, "the day view holds the same 12");

    // The `shomei-phone signatures` command on the same phone state: JSON lines, then text
    // with times in the practitioner's zone (Asia/Tokyo, +09:00) unless told otherwise.
    let state = phone.state_dir().to_path_buf();
    let out = phone_cmd(&state, &["signatures", "--grant", &grant.to_string(), "--json", "--page", "4"]);
    let cli: Vec<SignatureEntry> = out.lines().map(|l| serde_json::from_str(l).expect("one SignatureEntry per line")).collect();
    assert_eq!(cli, entries);
    let text = phone_cmd(&state, &["signatures"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12, "{text}");
    let tokyo = entries[0].signed_at.to_offset(time::macros::offset!(+9));
    let newest = format!(
        "{}  {}  Sakura Clinic / Reception PC 1  cms  {algorithm_name}  {}  \"処方箋 No.0011 サトウ\"",
        entries[0].seq,
        tokyo.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]+09:00")).unwrap(),
        STANDARD.encode(&digests[11]),
    );
    assert_eq!(lines[0], newest);
    assert!(lines[11].ends_with(&format!("hash  {algorithm_name}  {}  \"Rx 0-1\"", STANDARD.encode(&digests[0]))), "{}", lines[11]);
    assert!(lines[5].ends_with(&STANDARD.encode(&digests[6])), "an unlabelled line ends with its digest: {}", lines[5]);
    let utc = phone_cmd(&state, &["signatures", "--tz", "UTC"]);
    assert!(utc.lines().all(|l| l.contains("+00:00")), "{utc}");

    // Another practitioner of the same clinic: their phone sees none of it, and naming this
    // grant is refused as unknown (the same answer as for a grant that does not exist).
    let other_id = register_practitioner(&clinic.server, &clinic.facility_id, "Dr. Kenji Ito");
    let other = clinic.enrolled_phone(&other_id).await;
    let (theirs, their_watermark) = listed(&other, None, 50).await;
    assert!(theirs.is_empty() && their_watermark == 0, "{theirs:?}");
    let refused = other.signatures(Some(grant), 50).await.expect_err("not their grant");
    assert!(grant_unknown(&refused), "{refused:?}");
    let refused = other.signatures_since(Some(grant), 0).await.expect_err("not their grant to follow either");
    assert!(grant_unknown(&refused), "{refused:?}");
    let refused = phone.signatures(Some(uuid::Uuid::new_v4()), 50).await.expect_err("no such grant");
    assert!(grant_unknown(&refused), "{refused:?}");

    // Following: one more signature arrives after the walk's watermark, and only it.
    let late = sha256(b"<Prescription no=\"12\"/>");
    sign_hashes(&clinic, &token, sign_algo, std::slice::from_ref(&late), None).await;
    let (new, at) = phone.signatures_since(Some(grant), watermark).await.expect("since");
    assert_eq!(new.iter().map(|e| e.digest.clone()).collect::<Vec<_>>(), vec![late.clone()]);
    assert_eq!((new[0].label.as_deref(), at), (None, new[0].seq));

    // Evening: the practitioner ends the grant; the day's list stays, the grant's too.
    phone.end_grant(grant).await.expect("end grant");
    let (after, _) = listed(&phone, Some(grant), 50).await;
    assert_eq!(after.len(), 13);
    assert_eq!(&after[1..], &entries[..]);
    let (day_after, _) = listed(&phone, None, 50).await;
    assert_eq!(day_after, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_label_is_refused_as_label_invalid_and_signs_nothing() {
    let mut clinic = Clinic::open();
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let grant: uuid::Uuid = token.grant_id.parse().expect("grant id");
    let (sign_algo, _) = algorithm(&clinic, &token).await;
    let digest = STANDARD.encode(sha256(b"<Prescription/>"));
    let body = |label: Value| json!({ "credentialID": clinic.credential_id, "hashes": [digest], "hashAlgorithmOID": SHA256_OID, "signAlgo": sign_algo, "label": label }).to_string().into_bytes();

    let mut refusals: Vec<(&str, Vec<u8>)> = vec![
        ("81 characters", body(json!("あ".repeat(81)))),
        ("a newline", body(json!("Rx 1\nRx 2"))),
        ("a tab", body(json!("Rx\t1"))),
        ("a right-to-left override", body(json!("rx\u{202E}fdp.exe"))),
        ("empty", body(json!(""))),
        ("an unpaired surrogate escape", String::from_utf8(body(json!("PLACEHOLDER"))).unwrap().replace("PLACEHOLDER", "x\\ud800y").into_bytes()),
    ];
    // Raw bytes that are not UTF-8 inside the JSON string.
    let mut raw = String::from_utf8(body(json!("PLACEHOLDER"))).unwrap().into_bytes();
    let at = raw.windows(11).position(|w| w == b"PLACEHOLDER").unwrap();
    raw.splice(at..at + 11, [b'a', 0xff, b'b']);
    refusals.push(("non-UTF-8 bytes", raw));
    for (what, bytes) in refusals {
        let (status, v) = csc_raw(&clinic, "/csc/v2/signatures/signHash", &token.access_token, bytes).await;
        let problem: Problem = serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{what}: not a problem document ({e}): {v}"));
        assert_eq!((status, problem.code), (400, ErrorCode::LabelInvalid), "{what}: {v}");
    }
    // 80 characters is the most a label may have, and it signs.
    let (status, v) = csc_raw(&clinic, "/csc/v2/signatures/signHash", &token.access_token, body(json!("あ".repeat(80)))).await;
    assert_eq!(status, 200, "{v}");

    let (entries, _) = listed(&phone, Some(grant), 50).await;
    assert_eq!(entries.len(), 1, "refused calls recorded nothing: {entries:?}");
    assert_eq!(entries[0].label.as_deref(), Some("あ".repeat(80).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shomei_phone_follow_shows_a_new_signature_as_it_is_made() {
    let mut clinic = Clinic::open();
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let (sign_algo, _) = algorithm(&clinic, &token).await;
    let first = sha256(b"<Prescription no=\"1\"/>");
    sign_hashes(&clinic, &token, sign_algo, std::slice::from_ref(&first), Some("Rx 1")).await;

    let mut child = Command::new(env!("CARGO_BIN_EXE_shomei-phone"))
        .arg("--state")
        .arg(phone.state_dir())
        .args(["--keystore", "file", "signatures", "--grant", &token.grant_id, "--follow", "--interval", "1"])
        .env("SHOMEI_PHONE_TZ", "+09:00")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shomei-phone signatures --follow");
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = |what: &str| rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|e| panic!("no line for {what} within 30 s: {e}"));

    // The walk first: the one signature so far.
    let line = next_line("the existing signature");
    assert!(line.ends_with(&format!("{}  \"Rx 1\"", STANDARD.encode(&first))) && line.contains("+09:00"), "{line}");

    // Then a burst while following: each new signature appears, oldest first, exactly once.
    let burst: Vec<Vec<u8>> = (2..5).map(|i| sha256(format!("<Prescription no=\"{i}\"/>").as_bytes())).collect();
    sign_hashes(&clinic, &token, sign_algo, &burst, Some("burst")).await;
    for d in &burst {
        let line = next_line("a signature of the burst");
        assert!(line.contains(&STANDARD.encode(d)) && line.ends_with("\"burst\""), "{line}");
    }
    let unexpected = rx.recv_timeout(Duration::from_millis(2500));
    assert!(unexpected.is_err(), "nothing else was signed: {unexpected:?}");

    child.kill().expect("stop the follower");
    child.wait().expect("reap the follower");
}
