//! The operator anchors the audit log outside the database with the `shomei` CLI: a signed
//! checkpoint, the audit key as PEM, `audit verify --checkpoint` (exit 0 / exit 1), and the
//! checkpoint checked with OpenSSL alone as docs/operations.md shows.

use std::process::Command;

use base64::Engine;

use crate::world::Clinic;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_verifies_the_log_against_a_signed_checkpoint_and_a_forged_one_fails() {
    let mut clinic = Clinic::open();
    let practitioner_id = clinic.practitioner_id.clone();
    let mut phone = clinic.enrolled_phone(&practitioner_id).await;
    clinic.morning_login(&mut phone).await;

    let dir = clinic.server.data_dir.join("anchor");
    std::fs::create_dir_all(&dir).unwrap();
    let (cp_file, key_file) = (dir.join("checkpoint.json"), dir.join("audit-key.pem"));
    let cp = clinic
        .server
        .admin(&["audit", "checkpoint", "--out", &cp_file.to_string_lossy()]);
    clinic
        .server
        .admin(&["audit", "key", "--out", &key_file.to_string_lossy()]);
    let report = clinic.server.admin(&[
        "audit",
        "verify",
        "--checkpoint",
        &cp_file.to_string_lossy(),
        "--key",
        &key_file.to_string_lossy(),
    ]);
    assert_eq!(
        (
            report["ok"].as_bool(),
            report["checkpoints"][0]["ok"].as_bool()
        ),
        (Some(true), Some(true)),
        "{report}"
    );

    // The server appended the same checkpoint to its checkpoint file, outside the database.
    let kept = std::fs::read_to_string(clinic.server.data_dir.join("audit-checkpoints.jsonl"))
        .expect("checkpoint file");
    assert!(
        kept.contains(cp["signature"].as_str().unwrap()),
        "on-demand checkpoint appended: {kept}"
    );

    // OpenSSL alone: the signed text and the DER signature against the exported PEM.
    std::fs::write(dir.join("cp.txt"), cp["signed"].as_str().unwrap()).unwrap();
    std::fs::write(
        dir.join("cp.sig"),
        base64::engine::general_purpose::STANDARD
            .decode(cp["signature"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let out = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            "audit-key.pem",
            "-signature",
            "cp.sig",
            "cp.txt",
        ])
        .current_dir(&dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK"),
        "{out:?}"
    );

    // A checkpoint edited to cover less (as someone hiding a cut-off tail would) fails the CLI.
    let mut forged = cp.clone();
    let seq = cp["seq"].as_i64().unwrap();
    forged["seq"] = (seq - 1).into();
    forged["signed"] = cp["signed"]
        .as_str()
        .unwrap()
        .replace(&format!("seq={seq}\n"), &format!("seq={}\n", seq - 1))
        .into();
    std::fs::write(&cp_file, forged.to_string()).unwrap();
    let err = clinic
        .server
        .try_admin(&[
            "audit",
            "verify",
            "--checkpoint",
            &cp_file.to_string_lossy(),
        ])
        .expect_err("a forged checkpoint fails verify");
    assert!(err.contains("signature does not verify"), "{err}");
}
