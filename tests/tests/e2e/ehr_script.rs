//! The toy EHR (`scripts/ehr`) that integrators copy from, driven against the real server:
//! it signs and verifies with openssl, and once the grant has ended it prints the server's
//! refusal as one line with the problem's code, not a Python traceback.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::Store;
use crate::world::Clinic;

/// The toy EHR's state directory: `demo.env` as `scripts/demo` writes it, for this clinic.
fn demo_dir(clinic: &Clinic, access_token: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("demo dir");
    let env = format!(
        "SHOMEI_URL={}\nTERMINAL_CLIENT_ID={}\nTERMINAL_CLIENT_SECRET={}\nCREDENTIAL_ID={}\n",
        clinic.server.url, clinic.terminal.client_id, clinic.terminal.client_secret, clinic.credential_id
    );
    std::fs::write(dir.path().join("demo.env"), env).expect("demo.env");
    std::fs::write(dir.path().join("ehr.access_token"), access_token).expect("access token");
    dir
}

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn ehr(demo_dir: &Path, args: &[&str]) -> Run {
    let script: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/ehr");
    let out = Command::new("bash").arg(script).args(args).env("DEMO_DIR", demo_dir).output().expect("run scripts/ehr");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn prescription(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("<Prescription id=\"{name}\"/>")).expect("prescription");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn ehr_script_signs_then_reports_an_ended_grant_in_one_line() {
    let mut clinic = Clinic::open_on(Store::Sqlite);
    let mut phone = clinic.enrolled_phone(&clinic.practitioner_id.clone()).await;
    let (_, token) = clinic.morning_login(&mut phone).await;
    let dir = demo_dir(&clinic, &token.access_token);
    let first = prescription(dir.path(), "rx-1.xml");

    let run = ehr(dir.path(), &["sign", &first]);
    assert!(run.ok, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.contains("rx-1.xml: Verified OK"), "openssl verified the signature: {}", run.stdout);

    // The practitioner ends the day from the phone; the terminal still holds the token.
    assert_eq!(phone.end_all_grants().await.expect("end grants"), 1);
    let second = prescription(dir.path(), "rx-2.xml");
    let run = ehr(dir.path(), &["sign", &second]);
    assert!(!run.ok, "an ended grant signs nothing: {}", run.stdout);
    assert!(!run.stderr.contains("Traceback"), "no Python traceback: {}", run.stderr);
    assert!(run.stderr.contains("refused: grant_revoked: "), "one line with the problem code: {}", run.stderr);
}
