//! The `shomei-phone` command itself, as an EHR integrator runs it: enroll from the payload
//! URL, scan the terminal's QR PNG, approve, list and end grants.

use std::process::Command;

use crate::world::{Clinic, sha256};

fn phone_cmd(state: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shomei-phone"))
        .arg("--state")
        .arg(state)
        .args(["--keystore", "file"])
        .args(args)
        .output()
        .expect("run shomei-phone");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "shomei-phone {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
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
