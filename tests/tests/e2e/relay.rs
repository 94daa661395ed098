//! Relay phishing (a login QR shown to the wrong person, docs/protocol.md §8): the token
//! response names who approved, so the EHR shows whose signing day it opened; with the
//! `confirmation = "code"` policy the phone shows a code after approval and the terminal gets
//! its token only by sending that code — a relaying attacker's terminal never sees it.

use std::process::Command;

use crate::server::Store;
use crate::world::{Clinic, scan_terminal_qr};

const CODE_POLICY: &str = "[policy]\nconfirmation = \"code\"\n";

fn phone_cmd(state: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_shomei-phone"))
        .arg("--state")
        .arg(state)
        .args(["--keystore", "file"])
        .args(args)
        .output()
        .expect("run shomei-phone");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "shomei-phone {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_names_the_practitioner_who_approved() {
    let mut clinic = Clinic::open();
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    let auth = clinic.terminal.start_login().await;
    assert_eq!(
        auth.confirmation, "number",
        "number matching is the default"
    );
    scan_terminal_qr(&clinic.terminal, &auth, &mut phone).await;
    let decision = phone.approve(auth.match_number).await.expect("approve");
    assert_eq!(
        decision.confirmation_code, None,
        "no code under number matching"
    );

    let token = clinic
        .terminal
        .token(&auth.device_code)
        .await
        .expect("token without a code under number matching");
    assert_eq!(token.practitioner.id, practitioner_id);
    assert_eq!(token.practitioner.display_name, "Dr. Hanako Sato");
    assert_eq!(token.practitioner.role, "doctor");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_code_policy_the_desktop_phone_prints_the_code_and_the_ehr_must_send_it() {
    let clinic = Clinic::open_with_config(Store::Sqlite, CODE_POLICY);
    let code = clinic.enrollment_code(&clinic.practitioner_id);
    let state = tempfile::tempdir().expect("state dir");
    phone_cmd(
        state.path(),
        &[
            "enroll",
            &code.payload_url,
            "--password",
            &code.activation_password,
        ],
    );

    let auth = clinic.terminal.start_login().await;
    assert_eq!(
        auth.confirmation, "code",
        "the EHR learns up front that it will ask for a code"
    );
    let png = state.path().join("login.png");
    std::fs::write(&png, clinic.terminal.qr_png(&auth.login_id).await).expect("write QR PNG");
    phone_cmd(state.path(), &["scan", &png.to_string_lossy()]);
    let out = phone_cmd(
        state.path(),
        &["approve", "--number", &auth.match_number.to_string()],
    );
    let shown = out
        .lines()
        .find_map(|l| l.strip_prefix("confirmation code: "))
        .unwrap_or_else(|| panic!("the phone prints the confirmation code: {out}"))
        .trim()
        .to_string();
    assert!(
        shown.len() == 6 && shown.chars().all(|c| c.is_ascii_digit()),
        "six digits: {shown:?}"
    );
    assert_eq!(clinic.terminal.wait(&auth.login_id, 30).await, "approved");

    // Approved, but no token until the practitioner types the code into this EHR.
    let missing = clinic
        .terminal
        .token(&auth.device_code)
        .await
        .expect_err("no token without the code");
    assert_eq!(
        (missing.status, missing.code()),
        (400, "confirmation_required"),
        "{missing:?}"
    );
    let wrong = if shown == "000000" {
        "000001"
    } else {
        "000000"
    };
    let refused = clinic
        .terminal
        .token_with(&auth.device_code, Some(wrong))
        .await
        .expect_err("a wrong code");
    assert_eq!(
        (refused.status, refused.code()),
        (400, "confirmation_wrong"),
        "{refused:?}"
    );

    // Typed with a space, as people do.
    let typed = format!("{} {}", &shown[..3], &shown[3..]);
    let token = clinic
        .terminal
        .token_with(&auth.device_code, Some(&typed))
        .await
        .expect("the right code gives the token");
    assert_eq!(token.practitioner.display_name, "Dr. Hanako Sato");
    crate::world::sign_and_verify(
        &clinic,
        &clinic.terminal,
        &token.access_token,
        &crate::world::prescriptions(1),
    )
    .await;

    // The audit log records the wrong code but never the code itself.
    let export = clinic.audit_verified_export();
    assert!(
        export.contains("login.confirmation_wrong"),
        "wrong codes are audited"
    );
    assert!(
        !export.contains(&shown),
        "the confirmation code is not in the audit log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_qr_approved_by_the_victim_gives_the_attackers_terminal_nothing() {
    // The attacker runs a registered terminal (a stolen client secret) and relays its QR and
    // number to the victim ("please re-verify"); the victim approves on their phone.
    let mut clinic = Clinic::open_with_config(Store::Sqlite, CODE_POLICY);
    let attacker = clinic.another_terminal("Attacker's PC");
    let practitioner_id = clinic.practitioner_id.clone();
    let mut victim = clinic.enrolled_phone(&practitioner_id).await;
    let auth = attacker.start_login().await;
    scan_terminal_qr(&attacker, &auth, &mut victim).await;
    let decision = victim
        .approve(auth.match_number)
        .await
        .expect("the victim approves");
    let shown = decision.confirmation_code.expect("the phone shows a code");

    // The code is on the victim's phone, not on the attacker's screen: three guesses and out.
    let n: u32 = shown.parse().expect("digits");
    let mut codes = Vec::new();
    for k in 1..=3 {
        let guess = format!("{:06}", (n + k) % 1_000_000);
        codes.push(
            attacker
                .token_with(&auth.device_code, Some(&guess))
                .await
                .expect_err("a guess")
                .code()
                .to_string(),
        );
    }
    assert_eq!(
        codes,
        ["confirmation_wrong", "confirmation_wrong", "access_denied"],
        "the third wrong code fails the login"
    );
    // Even the right code is too late now, and the grant has ended.
    let late = attacker
        .token_with(&auth.device_code, Some(&shown))
        .await
        .expect_err("login failed");
    assert_eq!(late.code(), "access_denied");
    let grants = clinic
        .server
        .admin(&["grant", "list", "--practitioner", &practitioner_id]);
    assert_eq!(
        grants[0]["revoked_reason"], "confirmation failed",
        "{grants}"
    );
}
