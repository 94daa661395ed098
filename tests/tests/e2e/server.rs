//! The real `shomei` binary as a child process: built once per test run, started on an
//! ephemeral loopback port with its own data directory, driven by `shomei admin --json`.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use serde_json::Value;

/// Path of the `shomei` binary, building it first (once per test process).
///
/// `SHOMEI_BIN` overrides; otherwise the binary is built with the same cargo into the target
/// directory this test binary lives in (so CARGO_TARGET_DIR and the workspace target both work),
/// which also rebuilds a stale binary after a server change.
pub fn shomei_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("SHOMEI_BIN") {
            return PathBuf::from(bin);
        }
        // <target>/<profile>/deps/e2e-<hash>
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile> dir").to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let profile = profile_dir.file_name().and_then(|n| n.to_str()).unwrap_or("debug").to_string();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "shomei-server", "--bin", "shomei", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build for the shomei binary");
        assert!(status.success(), "building the shomei binary failed");
        let bin = profile_dir.join(format!("shomei{}", std::env::consts::EXE_SUFFIX));
        assert!(bin.is_file(), "shomei binary not found at {}", bin.display());
        bin
    })
}

/// Which store a test server runs on.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite,
    Postgres(String),
}

/// A running `shomei serve`. Killed when dropped; its output is printed if the test failed.
pub struct Server {
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub store: Store,
    serve_args: Vec<String>,
    pub url: String,
    pub addr: String,
    /// The operator API (its own loopback listener).
    pub admin_url: String,
    pub operator_token: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
    /// `SHOMEI_LOG` filter of the child (default `info`).
    log_filter: String,
}

impl Server {
    pub fn start_with(store: Store) -> Server {
        Self::start_configured(store, Vec::new(), None)
    }

    /// Starts a server with extra `serve` arguments and an optional `shomei.toml` (policy).
    pub fn start_configured(
        store: Store,
        serve_args: Vec<String>,
        config_toml: Option<&str>,
    ) -> Server {
        Self::start_logging(store, serve_args, config_toml, "info")
    }

    /// Like [`Server::start_configured`] with the server's log filter (`SHOMEI_LOG`), e.g. `debug`.
    pub fn start_logging(
        store: Store,
        serve_args: Vec<String>,
        config_toml: Option<&str>,
        log_filter: &str,
    ) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("shomei-e2e-")
            .tempdir()
            .expect("temp dir");
        Self::start_in(tmp, store, serve_args, config_toml, log_filter)
    }

    /// Another replica of `first` (issue 12): same store, and `first`'s key-encryption key
    /// copied into its own data directory before it starts (replicas must share the KEK that
    /// seals the signing keys). Its own operator token and listeners.
    pub fn start_replica_of(first: &Server, serve_args: Vec<String>, config_toml: Option<&str>) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("shomei-e2e-replica-")
            .tempdir()
            .expect("temp dir");
        let kek = tmp.path().join("kek");
        std::fs::copy(first.data_dir.join("kek"), &kek).expect("copy the KEK");
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).expect("chmod 600 kek");
        }
        Self::start_in(tmp, first.store.clone(), serve_args, config_toml, "info")
    }

    fn start_in(
        tmp: tempfile::TempDir,
        store: Store,
        serve_args: Vec<String>,
        config_toml: Option<&str>,
        log_filter: &str,
    ) -> Server {
        let data_dir = tmp.path().to_path_buf();
        if let Some(toml) = config_toml {
            std::fs::write(data_dir.join("shomei.toml"), toml).expect("write shomei.toml");
        }
        let mut server = Server {
            data_dir,
            _tmp: Some(tmp),
            store,
            serve_args,
            url: String::new(),
            addr: String::new(),
            admin_url: String::new(),
            operator_token: String::new(),
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            log_filter: log_filter.to_string(),
        };
        server.spawn("127.0.0.1:0");
        server
    }

    fn store_args(&self) -> Vec<String> {
        match &self.store {
            Store::Sqlite => vec![],
            Store::Postgres(url) => vec!["--database-url".into(), url.clone()],
        }
    }

    fn spawn(&mut self, listen: &str) {
        let mut cmd = Command::new(shomei_binary());
        // The operator API has its own loopback listener; port 0 so parallel servers never collide.
        cmd.arg("serve")
            .args([
                "--listen",
                listen,
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&self.data_dir)
            .args(self.store_args())
            .args(&self.serve_args);
        cmd.env("RUST_LOG", &self.log_filter)
            .env("SHOMEI_LOG", &self.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn shomei serve");
        let (tx, rx) = mpsc::channel::<String>();
        drain(child.stdout.take().expect("stdout"), self.log.clone(), Some(tx.clone()));
        drain(child.stderr.take().expect("stderr"), self.log.clone(), None);
        drop(tx);
        // The server says where it listens (public, then admin) once it accepts connections.
        let mut url = None;
        let admin_url = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    let line = line.trim();
                    if let Some(rest) = line.strip_prefix("listening on ") {
                        url = Some(rest.trim().to_string());
                    } else if let Some(rest) = line.strip_prefix("admin API listening on ")
                        && url.is_some()
                    {
                        break rest.trim().to_string();
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    panic!(
                        "shomei serve did not report 'listening on' and 'admin API listening on' (exit: {status:?}); log:\n{}",
                        self.log_text()
                    );
                }
            }
        };
        let url = url.expect("public URL before the admin URL");
        self.admin_url = admin_url.trim_end_matches('/').to_string();
        self.url = url.trim_end_matches('/').to_string();
        self.addr = self.url.trim_start_matches("http://").to_string();
        self.child = Some(child);
        self.operator_token = std::fs::read_to_string(self.data_dir.join("operator.token"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
    }

    /// Kills the process (as a crash would) and starts it again on the same address and data.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.addr.clone();
        self.spawn(&addr);
    }

    /// SIGKILL, as a crash: no graceful shutdown, in-flight requests and transactions are cut.
    pub fn crash(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        // `Child::kill` is SIGKILL on Unix.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log_text(&self) -> String {
        self.log.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Runs `shomei admin --data-dir D --json <args>` (the CLI talks to this server's admin API,
    /// found through D/admin.url and D/operator.token) and parses its output.
    pub fn admin(&self, args: &[&str]) -> Value {
        match self.try_admin(args) {
            Ok(v) => v,
            Err(e) => panic!("shomei admin {args:?} failed: {e}"),
        }
    }

    /// Like [`Server::admin`] but returns the failure (non-zero exit: stderr) to assert on.
    pub fn try_admin(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(shomei_binary())
            .arg("admin")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--json")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run shomei admin");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if !out.status.success() {
            return Err(format!("exit {:?}\nstdout: {stdout}\nstderr: {stderr}", out.status.code()));
        }
        if stdout.trim().is_empty() {
            return Ok(Value::Null);
        }
        if let Ok(v) = serde_json::from_str(stdout.trim()) {
            return Ok(v);
        }
        // JSON lines (audit export): one value per line.
        stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<Vec<Value>, _>>()
            .map(Value::Array)
            .map_err(|e| format!("not JSON ({e}): {stdout}\nstderr: {stderr}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("---- shomei serve log ({}) ----\n{}\n---- end of log ----", self.url, self.log_text());
        }
    }
}

fn drain(stream: impl Read + Send + 'static, log: Arc<Mutex<Vec<String>>>, tx: Option<mpsc::Sender<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &tx {
                let _ = tx.send(line.clone());
            }
            if let Ok(mut l) = log.lock() {
                l.push(line);
            }
        }
    });
}

/// Reads a string field, trying a few names (the CLI's JSON may nest under the noun).
pub fn field(v: &Value, names: &[&str]) -> String {
    for name in names {
        if let Some(s) = find(v, name) {
            return s;
        }
    }
    panic!("none of {names:?} in {v}");
}

fn find(v: &Value, name: &str) -> Option<String> {
    match v {
        Value::Object(map) => {
            if let Some(x) = map.get(name) {
                match x {
                    Value::String(s) => return Some(s.clone()),
                    Value::Number(n) => return Some(n.to_string()),
                    _ => {}
                }
            }
            map.values().find_map(|x| find(x, name))
        }
        Value::Array(items) => items.iter().find_map(|x| find(x, name)),
        _ => None,
    }
}
