//! The `shomei-phone` command itself, as an EHR integrator runs it: enroll from the payload
//! URL, scan the terminal's QR PNG (or type its user code), approve, list and end grants; every
//! time printed in the practitioner's zone.

use std::process::Command;

use crate::world::{Clinic, sha256, sign_and_verify, prescriptions};

fn phone_run(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_shomei-phone"))
        .env_remove("SHOMEI_PHONE_TZ")
        .arg("--state")
        .arg(state)
        .args(["--keystore", "file"])
        .args(args)
        .output()
        .expect("run shomei-phone")
}

fn phone_cmd(state: &std::path::Path, args: &[&str]) -> String {
    let out = phone_run(state, args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "shomei-phone {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Every `hh:mm:ss±hh:mm` time printed in `out` (the date is the word before it).
fn printed_times(out: &str) -> Vec<String> {
    out.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.len() == 14 && w.as_bytes()[2] == b':' && w.as_bytes()[5] == b':' && matches!(w.as_bytes()[8], b'+' | b'-'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_command_enrolls_scans_approves_and_ends_the_grant() {
    let clinic = Clinic::open();
    let code = clinic.enrollment_code(&clinic.practitioner_id);
    let state = tempfile::tempdir().expect("state dir");

    let out = phone_cmd(state.path(), &["enroll", &code.payload_url, "--password", &code.activation_password, "--name", "integrator laptop"]);
    assert!(out.contains(&format!("enrolled with {}", clinic.server.url)), "{out}");

    let auth = clinic.terminal.start_login().await;
    let png = state.path().join("login.png");
    std::fs::write(&png, clinic.terminal.qr_png(&auth.login_id).await).expect("write QR PNG");
    let out = phone_cmd(state.path(), &["scan", &png.to_string_lossy()]);
    assert!(out.contains("Sakura Clinic") && out.contains("Reception PC 1"), "{out}");
    assert!(out.contains(&auth.match_number.to_string()), "the EHR's number is offered: {out}");

    phone_cmd(state.path(), &["approve", "--number", &auth.match_number.to_string()]);
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "approved");
    let token = clinic.terminal.token(&auth.device_code).await.expect("token");

    let out = phone_cmd(state.path(), &["grants"]);
    assert!(out.contains(&token.grant_id), "grant listed: {out}");
    let out = phone_cmd(state.path(), &["end-grant", "--all"]);
    assert!(out.contains("ended 1"), "{out}");

    let refused = clinic
        .terminal
        .sign_hash(&token.access_token, &clinic.credential_id, &[sha256(b"<Prescription/>")], crate::terminal::RSA_SHA256_OID)
        .await
        .expect_err("an ended grant signs nothing");
    assert_eq!((refused.status, refused.code()), (401, "grant_revoked"), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_types_the_user_code_approves_with_the_number_and_the_ehr_signs() {
    let clinic = Clinic::open();
    let code = clinic.enrollment_code(&clinic.practitioner_id);
    let state = tempfile::tempdir().expect("state dir");
    phone_cmd(state.path(), &["enroll", &code.payload_url, "--password", &code.activation_password]);

    // The EHR starts a login; the camera cannot read its QR, so the practitioner types the
    // user code of the device authorization response — in lower case, with a space.
    let auth = clinic.terminal.start_login().await;
    let typed = auth.user_code.to_lowercase().replace('-', " ");
    let out = phone_cmd(state.path(), &["code", &typed]);
    assert!(out.contains("facility:  Sakura Clinic") && out.contains("terminal:  Reception PC 1"), "{out}");
    let numbers = out.lines().find_map(|l| l.strip_prefix("numbers:")).expect("numbers line");
    let offered: Vec<u8> = numbers.split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(offered.len(), 3, "{out}");
    assert!(offered.contains(&auth.match_number), "the EHR's number is offered: {out}");
    // Requested and expiry times in Asia/Tokyo.
    let times = printed_times(&out);
    assert_eq!(times.len(), 2, "{out}");
    assert!(times.iter().all(|t| t.ends_with("+09:00")), "{out}");
    assert!(!out.contains("+00:00:00"), "{out}");

    // The same approval as after a scan: the number, then the EHR's token.
    let out = phone_cmd(state.path(), &["approve", "--number", &auth.match_number.to_string()]);
    assert!(out.contains("Approved") && printed_times(&out).iter().all(|t| t.ends_with("+09:00")), "{out}");
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "approved");
    let token = clinic.terminal.token(&auth.device_code).await.expect("token after a typed-code approval");
    sign_and_verify(&clinic, &clinic.terminal, &token.access_token, &prescriptions(2)).await;

    // The evidence says how the phone found the login.
    let dir = clinic.server.data_dir.join("evidence-typed");
    clinic.server.admin(&["evidence", "export", "--login", &auth.login_id, "--out", &dir.to_string_lossy()]);
    let decision: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("decision.json")).expect("decision.json")).unwrap();
    assert_eq!(decision["via"], "code", "{decision}");

    // Grants in Tokyo time by default, in UTC with --tz UTC.
    let out = phone_cmd(state.path(), &["grants"]);
    let times = printed_times(&out);
    assert_eq!(times.len(), 2, "since and until: {out}");
    assert!(times.iter().all(|t| t.ends_with("+09:00")), "{out}");
    let out = phone_cmd(state.path(), &["--tz", "UTC", "grants"]);
    assert!(printed_times(&out).iter().all(|t| t.ends_with("+00:00")), "{out}");

    // A code that cannot be one is refused locally, before anything is sent.
    let out = phone_run(state.path(), &["code", "BCDF-GHJ0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typed code") && err.contains("character 9"), "{err}");
    // A used code is refused by the server with the login's state.
    let out = phone_run(state.path(), &["code", &auth.user_code]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("login_already_decided"), "{err}");
}
