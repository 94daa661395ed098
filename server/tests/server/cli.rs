//! The `shomei` binary as operators and the e2e harness use it: `serve` on
//! port 0 announces itself, `admin --data-dir D --json` finds it, bad
//! configuration exits non-zero with a clear message.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

struct Serve {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .env_remove("SHOMEI_OPERATOR_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Kept open: a closed pipe would make later prints fail.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line: {first:?}")).to_owned();
    Serve { child, dir, url, _stdout: stdout }
}

fn admin(s: &Serve, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .arg("admin")
        .arg("--data-dir")
        .arg(s.dir.path())
        .arg("--json")
        .args(args)
        .env_remove("SHOMEI_OPERATOR_TOKEN")
        .env_remove("SHOMEI_SERVER")
        .output()
        .unwrap();
    assert!(out.status.success(), "admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("admin {args:?} printed non-JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn serve_on_port_zero_writes_url_and_private_files() {
    let s = serve(&[]);
    assert!(s.url.starts_with("http://127.0.0.1:"));
    assert!(!s.url.ends_with(":0"));
    let written = std::fs::read_to_string(s.dir.path().join("server.url")).unwrap();
    assert_eq!(written.trim(), s.url);
    #[cfg(unix)]
    for f in ["kek", "operator.token"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dir.path().join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
}

#[test]
fn admin_json_prints_the_created_and_listed_objects() {
    let s = serve(&[]);
    let f = admin(&s, &["facility", "create", "--name", "Clinic CLI"]);
    let id = f["id"].as_str().unwrap();
    let t = admin(&s, &["terminal", "create", "--facility", id, "--name", "EHR"]);
    assert!(t["client_secret"].as_str().unwrap().len() >= 43);
    let p = admin(&s, &["practitioner", "create", "--name", "Dr CLI", "--role", "pharmacist", "--facility", id]);
    let pid = p["id"].as_str().unwrap();
    let png = s.dir.path().join("e.png");
    let e = admin(&s, &["enrollment", "create", "--practitioner", pid, "--png", png.to_str().unwrap()]);
    assert!(e["payload_url"].as_str().unwrap().starts_with(&s.url));
    assert!(std::fs::metadata(&png).unwrap().len() > 100);
    let list = admin(&s, &["facility", "list"]);
    assert_eq!(list[0]["id"], id);
    let report = admin(&s, &["audit", "verify"]);
    assert_eq!(report["ok"], true);
}

#[test]
fn bad_config_file_exits_non_zero_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shomei.toml"), "[policy]\nlogin_ttl_s = 600\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("login_ttl_s"));
}

// ---- `shomei attestation verify` (offline, on the real captured data) ----

const ATTESTATION_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/attestation");

fn verify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shomei")).args(["attestation", "verify"]).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// caiman TEE EC (remotely provisioned, locked and verified boot; no user-auth tags).
fn caiman() -> (String, String) {
    let chain = format!("{ATTESTATION_DATA}/android/testdata/caiman/sdk36/TEE_EC_RKP.pem");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(chain.replace(".pem", ".json")).unwrap()).unwrap();
    (chain, json["attestationChallenge"].as_str().unwrap().to_owned())
}

/// A policy that does not insist on user authentication (the captured key has none).
fn no_user_auth_config(dir: &tempfile::TempDir) -> String {
    let p = dir.path().join("shomei.toml");
    std::fs::write(&p, "[policy.attestation.android]\nrequire_user_auth = false\n").unwrap();
    p.display().to_string()
}

#[test]
fn attestation_verify_prints_the_facts_of_a_valid_android_chain() {
    let (chain, challenge) = caiman();
    let dir = tempfile::tempdir().unwrap();
    let config = no_user_auth_config(&dir);
    let (code, out, err) = verify(&["--android", &chain, "--challenge-b64", &challenge, "--at", "2025-09-28T00:00:00Z", "--config", &config]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("VERIFIED android-key"), "{out}");
    for fact in ["TrustedEnvironment", "EC P-256", "Verified device_locked=true", "com.google.android.attestation", "os=202511"] {
        assert!(out.contains(fact), "{fact} missing in:\n{out}");
    }
    let (code, out, _) = verify(&["--android", &chain, "--challenge-b64", &challenge, "--at", "2025-09-28T00:00:00Z", "--config", &config, "--json"]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["facts"]["security_level"], "trusted_environment");
}

#[test]
fn attestation_verify_exits_1_with_the_reason_on_refusal() {
    let (chain, challenge) = caiman();
    // Default policy: user authentication is required, and this key has none.
    let (code, out, _) = verify(&["--android", &chain, "--challenge-b64", &challenge, "--at", "2025-09-28T00:00:00Z"]);
    assert_eq!((code, out.trim()), (1, "REFUSED: user authentication not required by the key"));
    let (code, out, _) = verify(&["--android", &chain, "--challenge-b64", "AAAA", "--at", "2025-09-28T00:00:00Z"]);
    assert_eq!((code, out.trim()), (1, "REFUSED: challenge mismatch"));
    // Without --at the chain is checked now, long after its attestation key expired.
    let (code, out, _) = verify(&["--android", &chain, "--challenge-b64", &challenge]);
    assert_eq!(code, 1);
    assert!(out.starts_with("REFUSED: certificate 1 expired at 2025-10-03"), "{out}");
}

#[test]
fn attestation_verify_checks_an_app_attest_object() {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(format!("{ATTESTATION_DATA}/apple/app_attest_vectors.json")).unwrap()).unwrap();
    let prod = &v["vectors"][0];
    let dir = tempfile::tempdir().unwrap();
    let object = dir.path().join("object.b64");
    std::fs::write(&object, prod["attestation_object_b64"].as_str().unwrap()).unwrap();
    // Apple's sample was made with the raw bytes "test_server_challenge" as clientDataHash.
    let cdh = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b"test_server_challenge");
    let object = object.display().to_string();
    let key_id = prod["key_id_b64"].as_str().unwrap();
    let args = |app: &'static str| {
        vec!["--apple".to_owned(), object.clone(), "--key-id".into(), key_id.into(), "--app-id".into(), app.into(), "--challenge-b64".into(), cdh.clone(), "--at".into(), "2024-04-18T00:00:00Z".into()]
    };
    let run = |a: Vec<String>| verify(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let (code, out, err) = run(args("0352187391.com.apple.example_app_attest"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("VERIFIED apple-appattest"), "{out}");
    assert!(out.contains("Production"), "{out}");
    let (code, out, _) = run(args("0352187391.jp.shomei.app"));
    assert_eq!((code, out.trim()), (1, "REFUSED: wrong rpIdHash: app not allowed"));
}

#[test]
fn attestation_verify_exits_2_on_unusable_arguments() {
    let (chain, _) = caiman();
    let (code, _, err) = verify(&["--android", &chain, "--challenge-b64", "not base64!"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--challenge-b64 is not base64"), "{err}");
    let (code, _, err) = verify(&["--android", "/nonexistent.pem", "--challenge-b64", "AAAA"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = verify(&["--challenge-b64", "AAAA"]);
    assert_eq!(code, 2, "clap: --android or --apple is required");
}

/// The first line `serve` writes on stderr with `extra` flags (or config).
fn first_log_line(dir: &std::path::Path, extra: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .env_remove("SHOMEI_OPERATOR_TOKEN")
        .env_remove("SHOMEI_LOG_FORMAT")
        .env("SHOMEI_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    line
}

#[test]
fn log_format_json_writes_each_log_event_as_one_json_object() {
    let dir = tempfile::tempdir().unwrap();
    let line = first_log_line(dir.path(), &["--log-format", "json"]);
    let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
    assert_eq!(v["level"], "INFO", "{line}");
    assert_eq!(v["fields"]["message"], "listening", "{line}");
    assert_eq!(v["fields"]["backend"], "sqlite", "{line}");
}

#[test]
fn log_format_comes_from_the_config_file_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shomei.toml"), "log_format = \"json\"\n").unwrap();
    let line = first_log_line(dir.path(), &[]);
    assert!(serde_json::from_str::<Value>(&line).is_ok(), "not JSON: {line:?}");
    // …and the flag wins over the file.
    let line = first_log_line(dir.path(), &["--log-format", "text"]);
    assert!(serde_json::from_str::<Value>(&line).is_err(), "still JSON: {line:?}");
    assert!(line.contains("listening"), "{line:?}");
}

#[test]
fn an_unknown_log_format_is_refused_before_starting() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "xml", "--data-dir"])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("xml"));
    assert!(!dir.path().join("data").exists());
}
