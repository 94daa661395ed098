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
