//! Evidence a third party can check without Shomei: enroll → login → decide → `shomei admin
//! evidence export` → the README's own `openssl dgst -verify` command says "Verified OK", and
//! one changed byte makes it fail.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::world::{Clinic, scan_terminal_qr};

/// Exports the evidence of `login_id` into a fresh directory inside the server's data dir.
fn export(clinic: &Clinic, login_id: &str) -> std::path::PathBuf {
    let dir = clinic
        .server
        .data_dir
        .join(format!("evidence-{}", uuid::Uuid::new_v4()));
    let out = clinic.server.admin(&[
        "evidence",
        "export",
        "--login",
        login_id,
        "--out",
        &dir.to_string_lossy(),
    ]);
    let files: Vec<&str> = out["files"]
        .as_array()
        .expect("files listed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in [
        "message.bin",
        "signature.der",
        "device-public-key.pem",
        "decision.json",
        "README.txt",
    ] {
        assert!(
            files.contains(&f) && dir.join(f).is_file(),
            "{f} exported: {out}"
        );
    }
    dir
}

/// Runs every `openssl …` command line the bundle's README gives, in the bundle directory, with
/// a plain shell: exactly what an auditor would type. Returns (all succeeded, combined output).
fn run_readme_openssl(dir: &Path) -> (bool, String) {
    let readme = std::fs::read_to_string(dir.join("README.txt")).expect("README.txt");
    let commands: Vec<&str> = readme
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("openssl dgst"))
        .collect();
    assert_eq!(
        commands.len(),
        1,
        "the README gives the verify command once:\n{readme}"
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(commands[0])
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn decision_json(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("decision.json")).expect("decision.json"))
        .expect("decision.json is JSON")
}

fn flip_one_byte(path: &Path, at: usize) -> Vec<u8> {
    let original = std::fs::read(path).expect("read");
    let mut bytes = original.clone();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).expect("write");
    original
}

/// The message field `name` of decision.json, checked against the exported bytes.
fn signed_field(dir: &Path, d: &Value, name: &str) -> String {
    let message = std::fs::read(dir.join("message.bin")).expect("message.bin");
    let f = d["message_fields"]
        .as_array()
        .expect("message_fields")
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("field {name}"));
    let (offset, length) = (
        f["offset"].as_u64().unwrap() as usize,
        f["length"].as_u64().unwrap() as usize,
    );
    let at = offset + 4;
    let hex: String = message[at..at + length]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        hex,
        f["hex"].as_str().unwrap(),
        "decision.json's {name} is what message.bin holds at offset {offset}"
    );
    hex
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_exports_evidence_that_openssl_verifies_and_one_changed_byte_breaks() {
    let mut clinic = Clinic::open();
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let (auth, _token) = clinic.morning_login(&mut phone).await;

    let dir = export(&clinic, &auth.login_id);
    let (ok, out) = run_readme_openssl(&dir);
    assert!(
        ok && out.contains("Verified OK"),
        "openssl verifies the approval: {out}"
    );

    let d = decision_json(&dir);
    assert_eq!(d["login"], auth.login_id.as_str());
    assert_eq!(d["decision"], "approve");
    assert_eq!(d["outcome"], "approved");
    assert_eq!(d["number"], auth.match_number);
    assert_eq!(d["practitioner"]["id"], practitioner_id.as_str());
    assert_eq!(d["practitioner"]["display_name"], "Dr. Hanako Sato");
    assert_eq!(d["terminal"]["id"], clinic.terminal.client_id.as_str());
    assert_eq!(d["terminal"]["name"], "Reception PC 1");
    assert_eq!(d["facility"]["name"], "Sakura Clinic");
    assert_eq!(d["device"]["id"], Clinic::device_id(&phone).as_str());
    assert!(
        d["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "RFC 3339 UTC time: {d}"
    );
    assert_eq!(signed_field(&dir, &d, "decision"), "01");
    assert_eq!(
        signed_field(&dir, &d, "number"),
        format!("{:02x}", auth.match_number)
    );
    let device_uuid = uuid::Uuid::parse_str(&Clinic::device_id(&phone)).unwrap();
    assert_eq!(
        signed_field(&dir, &d, "device_id"),
        device_uuid.simple().to_string()
    );

    // One changed byte anywhere in the signed message (here: the number) and OpenSSL refuses.
    let number_at = d["message_fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "number")
        .unwrap()["offset"]
        .as_u64()
        .unwrap() as usize
        + 4;
    let original = flip_one_byte(&dir.join("message.bin"), number_at);
    let (ok, out) = run_readme_openssl(&dir);
    assert!(
        !ok && out.contains("Verification failure"),
        "a tampered message must not verify: {out}"
    );
    std::fs::write(dir.join("message.bin"), original).unwrap();

    // The same for the last byte of the signature.
    let sig_len = std::fs::metadata(dir.join("signature.der")).unwrap().len() as usize;
    flip_one_byte(&dir.join("signature.der"), sig_len - 1);
    let (ok, out) = run_readme_openssl(&dir);
    assert!(!ok, "a tampered signature must not verify: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deny_is_kept_as_evidence_too() {
    let mut clinic = Clinic::open();
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let auth = clinic.terminal.start_login().await;
    scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    phone.deny().await.expect("deny accepted");
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "denied");

    let dir = export(&clinic, &auth.login_id);
    let (ok, out) = run_readme_openssl(&dir);
    assert!(
        ok && out.contains("Verified OK"),
        "openssl verifies the deny: {out}"
    );
    let d = decision_json(&dir);
    assert_eq!(
        (
            d["decision"].as_str(),
            d["outcome"].as_str(),
            d["number"].as_u64()
        ),
        (Some("deny"), Some("denied"), Some(0))
    );
    assert_eq!(signed_field(&dir, &d, "decision"), "02");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_number_is_refused_and_its_signed_approval_kept_as_evidence() {
    let mut clinic = Clinic::open();
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let auth = clinic.terminal.start_login().await;
    let context = scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    let wrong = *context
        .number_choices
        .iter()
        .find(|n| **n != auth.match_number)
        .expect("another choice");
    phone
        .approve(wrong)
        .await
        .expect_err("a wrong number is refused");

    let dir = export(&clinic, &auth.login_id);
    let (ok, out) = run_readme_openssl(&dir);
    assert!(ok, "the phone did sign this approval: {out}");
    let d = decision_json(&dir);
    assert_eq!(
        (
            d["decision"].as_str(),
            d["outcome"].as_str(),
            d["reason"].as_str()
        ),
        (Some("approve"), Some("denied"), Some("number mismatch"))
    );
    assert_eq!(d["number"], wrong);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecided_login_has_no_evidence_to_export() {
    let clinic = Clinic::open();
    let auth = clinic.terminal.start_login().await;
    let dir = clinic.server.data_dir.join("evidence-none");
    let err = clinic
        .server
        .try_admin(&[
            "evidence",
            "export",
            "--login",
            &auth.login_id,
            "--out",
            &dir.to_string_lossy(),
        ])
        .expect_err("nothing decided yet");
    assert!(err.contains("not_found"), "{err}");
    assert!(!dir.exists(), "nothing is written for a refused export");
}
