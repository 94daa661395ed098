//! One benchmark for the whole server: in ONE run it measures a limit the
//! hardware or the database sets, then what the real `shomei serve` process
//! achieves over HTTP against it, and prints the ratios.
//!
//! 1. Raw aws-lc-rs RSA-2048 signing on all cores (threads, parsed key)
//!    vs `POST /csc/v2/signatures/signHash` (one hash per call, a live grant,
//!    audit row committed before the response) per second — SQLite, and
//!    PostgreSQL when `SHOMEI_TEST_DATABASE_URL` is set. The raw figure each
//!    ratio uses is measured right before and right after that store's
//!    phase (the machine's speed drifts within a run). Also the server's own
//!    CPU per signature (from /proc), which the load generator cannot blur,
//!    and where both cores went during the phase (from /proc: RSA at its
//!    raw cost, the server beyond it, the load generator, PostgreSQL's
//!    processes, idle, time stolen by the hypervisor, the rest), so that a
//!    ratio below 100 % says what took the difference. And the ceiling:
//!    the same requests against a bare signer (`BareSigner`: the same HTTP
//!    stack, JSON and aws-lc-rs, nothing of Shomei's), so that signHash ÷
//!    bare says what Shomei's own work costs.
//! 2. Raw store commits/s (one audit append transaction, through the same
//!    `Store`) vs complete logins/s over HTTP (device authorization →
//!    context → ECDSA-signed decision → token).
//! 3. Delay from a decision to the waiting terminal's SSE event and
//!    long-poll answer (p50/p99).
//! 4. Server RSS with 10,000 terminals waiting at once (half SSE, half
//!    long-poll), and its CPU while they wait.
//! 5. The signing log (issue 14): listing the newest page of a grant that
//!    holds 10,000 signatures vs one signHash, as a ratio — an index range,
//!    not a scan, stays in the same order of time as one signature.
//! 6. Cross-replica wake (issue 12, PostgreSQL only): two `shomei serve`
//!    replicas on one database; a terminal waits (SSE) on replica B while
//!    the phone approves on replica A (B hears of it by LISTEN/NOTIFY) vs
//!    the same with terminal and phone on A, alternating, p50/p99.
//!
//! Everything runs on loopback (127.0.0.1) against the `shomei` binary built
//! with this benchmark, started as a child process with its own data
//! directory. The load generator is reqwest on a Tokio runtime in this
//! process, with bounded loops (a fixed number of workers, a fixed time);
//! it shares the cores with the server, as the issue's `wrk` did.
//!
//! Run: `cargo bench -p shomei-server --bench server` (release); add
//! `-- signing-log` for row 5 alone, `-- cross-replica` for row 6 alone,
//! `-- sign` for row 1 alone, `-- waiting` for row 4 alone. Knobs:
//! `SHOMEI_BENCH_SECS` (per throughput phase, default 5), `SHOMEI_BENCH_WAITERS`
//! (default 10000), `SHOMEI_BENCH_CONCURRENCY` (signHash workers, default 32),
//! `SHOMEI_BENCH_SERVER_BIN` (another `shomei` binary to start, e.g. an
//! earlier build), `SHOMEI_BENCH_PERF` (a directory: `perf record -a`
//! during each signHash phase, the bare signer's slices included), `SHOMEI_BENCH_HOLD_WAITING` (seconds
//! to keep the waiting terminals connected after the RSS reading).
//! Results and the machine: docs/performance.md.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures::StreamExt;
use serde_json::{Value, json};
use shomei_core::approval::{ApprovalMessage, EnrollmentMessage};
use shomei_core::{
    Decision, DevicePublicKey, EnrollmentPayload, LoginPayload, Payload, PlatformKey, SoftwareKey,
};
use sqlx::Connection;

// ---------------------------------------------------------------- settings

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    secs: Duration,
    waiters: usize,
    concurrency: usize,
    /// `-- sign` / `-- waiting`: only row 1 / row 4 (for profiling and
    /// for comparing allocators or builds quickly); `None`: every row.
    only: Option<&'static str>,
    /// `SHOMEI_BENCH_PERF=<dir>`: `perf record -a` during each store's
    /// signHash phase (its slices and the bare signer's) into
    /// `<dir>/signhash-<store>.data` (profiling runs only: perf takes CPU
    /// from the same cores).
    perf_dir: Option<std::path::PathBuf>,
    /// `SHOMEI_BENCH_HOLD_WAITING=<s>`: keep the waiting terminals connected
    /// this long after the RSS reading (to inspect the server: smaps, gdb).
    hold_waiting: Duration,
}

impl Settings {
    /// Whether per-store phase `row` (`sign`, `waiting`, or another) runs.
    fn runs(&self, row: &str) -> bool {
        self.only.is_none_or(|o| o == row)
    }
}

/// The `shomei` binary the benchmark starts: the one built with it, or
/// `SHOMEI_BENCH_SERVER_BIN` (e.g. a copy of an earlier build, to compare
/// two builds of the server with the same load generator in one run).
fn server_bin() -> String {
    std::env::var("SHOMEI_BENCH_SERVER_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_shomei").to_owned())
}

// ---------------------------------------------------------------- the server process

/// A running `shomei serve` (killed on drop).
struct ServerProc {
    child: Child,
    base: String,
    /// The operator listener (`--admin-listen`): /admin/v1/* is served only there.
    admin_base: String,
    operator_token: String,
    _dir: tempfile::TempDir,
}

impl ServerProc {
    fn start(database_url: Option<&str>) -> ServerProc {
        Self::start_configured(database_url, &[], |_| {})
    }

    /// With extra `serve` arguments, after `prepare` has seen the data
    /// directory (a replica's KEK and `shomei.toml`).
    fn start_configured(database_url: Option<&str>, args: &[&str], prepare: impl FnOnce(&std::path::Path)) -> ServerProc {
        let dir = tempfile::Builder::new()
            .prefix("shomei-bench-")
            .tempdir()
            .expect("temp dir");
        prepare(dir.path());
        let mut cmd = Command::new(server_bin());
        cmd.arg("serve")
            .args([
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(dir.path());
        if let Some(url) = database_url {
            cmd.args(["--database-url", url]);
        }
        cmd.args(args);
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn shomei serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        // The server says where it listens: public, then the operator API.
        let mut base = None;
        let admin_base = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    let line = line.trim();
                    if let Some(url) = line.strip_prefix("listening on ") {
                        base = Some(url.trim().trim_end_matches('/').to_owned());
                    } else if let Some(url) = line.strip_prefix("admin API listening on ") {
                        break url.trim().trim_end_matches('/').to_owned();
                    }
                }
                _ => panic!("shomei serve exited before listening"),
            }
        };
        let base = base.expect("public URL before the admin URL");
        // keep draining stdout so the child never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        let operator_token = std::fs::read_to_string(dir.path().join("operator.token"))
            .expect("operator.token")
            .trim()
            .to_owned();
        ServerProc {
            child,
            base,
            admin_base,
            operator_token,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User+system CPU seconds the server has used so far.
    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&self.pid().to_string())
    }

    /// (VmRSS, VmHWM) in MiB.
    fn rss_mib(&self) -> (f64, f64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let kb = |key: &str| -> f64 {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User+system CPU seconds process `pid` (or `self`) has used so far.
fn cpu_secs_of(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // fields after the ")" of the command name; utime and stime are fields 14 and 15
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    ticks / clock_ticks()
}

/// The machine's CPU time so far (all cores, seconds): in all, idle
/// (idle + iowait) and stolen by the hypervisor, from `/proc/stat`.
#[derive(Clone, Copy, Default)]
struct MachineCpu {
    total: f64,
    idle: f64,
    steal: f64,
}

impl MachineCpu {
    fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let line = stat.lines().find(|l| l.starts_with("cpu ")).unwrap_or("");
        // user nice system idle iowait irq softirq steal (guest time is inside user)
        let f: Vec<f64> = line.split_whitespace().skip(1).take(8).map(|v| v.parse().unwrap_or(0.0)).collect();
        let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
        let hz = clock_ticks();
        MachineCpu { total: f.iter().sum::<f64>() / hz, idle: (at(3) + at(4)) / hz, steal: at(7) / hz }
    }

    fn since(self, before: MachineCpu) -> MachineCpu {
        MachineCpu { total: self.total - before.total, idle: self.idle - before.idle, steal: self.steal - before.steal }
    }
}

/// User+system CPU seconds of every process named `postgres` on this
/// machine (the database server the bench shares its cores with; 0 when
/// it runs elsewhere or not at all).
fn postgres_cpu_secs() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else { return 0.0 };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())).map(str::to_owned))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "postgres"))
        .map(|pid| cpu_secs_of(&pid))
        .sum()
}

/// Clock ticks per second, asked of `getconf` once: the phase's CPU
/// readings call this once per process, and each spawn inside the
/// measured window would count as the machine's work.
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

// ---------------------------------------------------------------- an HTTP world

fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn b64u(b: &[u8]) -> String {
    shomei_core::api::b64u::encode(b)
}

#[derive(Clone)]
struct Terminal {
    id: String,
    secret: String,
}

impl Terminal {
    fn auth(&self) -> String {
        basic(&self.id, &self.secret)
    }
}

struct Phone {
    key: SoftwareKey,
    device_id: uuid::Uuid,
    token: String,
}

/// Every login-path budget of the server is per terminal (30 logins a
/// minute), per phone (60 calls a minute, two per login) or per client
/// address (20 enrollments): the benchmark spreads its logins over this
/// many terminal + phone pairs so that it measures the server, not its
/// rate limits (each pair can do 30 logins at once).
const PAIRS: usize = 192;
/// Logins each waiting-terminal starts (under its burst of 30).
const LOGINS_PER_WAITING_TERMINAL: usize = 25;

struct World {
    http: reqwest::Client,
    base: String,
    admin_base: String,
    operator: String,
    facility: String,
    /// `terminals[i]` and `phones[i]` are used together; pair 0 also holds
    /// the signing credential.
    terminals: Vec<Terminal>,
    phones: Vec<Phone>,
    next_pair: AtomicU64,
    credential: String,
}

async fn admin(http: &reqwest::Client, base: &str, token: &str, path: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("admin request");
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {v}");
    v
}

impl World {
    /// Facility, `pairs` terminals and practitioners with an enrolled
    /// phone each, a dev-CA RSA credential for the first.
    async fn build(server: &ServerProc, pairs: usize) -> World {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("client");
        let (base, op) = (server.base.clone(), server.operator_token.clone());
        let admin_base = server.admin_base.clone();
        let f = admin(
            &http,
            &admin_base,
            &op,
            "/admin/v1/facilities",
            json!({ "name": "Bench clinic" }),
        )
        .await;
        let facility = f["id"].as_str().expect("facility id").to_owned();
        let mut world = World {
            http: http.clone(),
            base: base.clone(),
            admin_base: admin_base.clone(),
            operator: op.clone(),
            facility: facility.clone(),
            terminals: Vec::new(),
            phones: Vec::new(),
            next_pair: AtomicU64::new(0),
            credential: String::new(),
        };
        for i in 0..pairs {
            world
                .terminals
                .push(world.extra_terminal(&format!("EHR bench {i}")).await);
        }
        // Enrollment attempts are limited per client address: phones enroll
        // from 127.0.0.2, .3, … (all loopback), 16 per address.
        let mut from: Option<(usize, reqwest::Client)> = None;
        for i in 0..pairs {
            let p = admin(
                &http,
                &admin_base,
                &op,
                "/admin/v1/practitioners",
                json!({ "display_name": format!("Dr Bench {i}"), "role": "doctor", "facility_ids": [facility] }),
            )
            .await;
            let practitioner = p["id"].as_str().expect("practitioner id").to_owned();
            if i == 0 {
                let c = admin(
                    &http,
                    &admin_base,
                    &op,
                    "/admin/v1/credentials",
                    json!({ "practitioner_id": practitioner, "algorithm": "rsa2048" }),
                )
                .await;
                world.credential = c["id"].as_str().expect("credential id").to_owned();
            }
            let e = admin(
                &http,
                &admin_base,
                &op,
                "/admin/v1/enrollments",
                json!({ "practitioner_id": practitioner }),
            )
            .await;
            let Payload::Enrollment(ep) =
                Payload::parse_ignoring_expiry(e["payload_url"].as_str().expect("payload"))
                    .expect("payload parses")
            else {
                panic!("not an enrollment payload")
            };
            let address = 2 + i / 16;
            if from.as_ref().map(|(a, _)| *a) != Some(address) {
                let ip = std::net::IpAddr::from([127, 0, 0, address as u8]);
                let client = reqwest::Client::builder()
                    .local_address(ip)
                    .build()
                    .expect("client");
                from = Some((address, client));
            }
            let (_, client) = from.as_ref().expect("client");
            let phone = enroll(
                client,
                &base,
                &ep,
                e["activation_password"].as_str().expect("password"),
            )
            .await;
            world.phones.push(phone);
        }
        world
    }

    /// The next terminal + phone pair, round robin.
    fn pair(&self) -> (&Terminal, &Phone) {
        let i = self.next_pair.fetch_add(1, Ordering::Relaxed) as usize % self.terminals.len();
        (&self.terminals[i], &self.phones[i])
    }

    async fn extra_terminal(&self, name: &str) -> Terminal {
        let t = admin(
            &self.http,
            &self.admin_base,
            &self.operator,
            "/admin/v1/terminals",
            json!({ "facility_id": self.facility, "name": name }),
        )
        .await;
        Terminal {
            id: t["client_id"].as_str().expect("id").to_owned(),
            secret: t["client_secret"].as_str().expect("secret").to_owned(),
        }
    }
}

async fn enroll(
    http: &reqwest::Client,
    base: &str,
    p: &EnrollmentPayload,
    password: &str,
) -> Phone {
    let key = SoftwareKey::generate();
    let pk = key.public_key_sec1();
    let dpk = DevicePublicKey::from_sec1(&pk).expect("sec1");
    let name = "Bench phone";
    let msg = EnrollmentMessage {
        origin: &p.origin,
        enrollment_id: &p.enrollment_id,
        secret: &p.secret,
        public_key: &dpk,
        device_name: name,
    }
    .to_bytes();
    let proof = key.sign(&msg).expect("sign");
    let body = json!({
        "enrollment_id": p.enrollment_id.to_b64u(), "secret": p.secret.to_b64u(), "activation_password": password,
        "public_key": b64u(&pk), "proof": b64u(&proof), "device_name": name, "platform": "desktop",
    });
    let r = http
        .post(format!("{base}/v1/phone/enroll"))
        .json(&body)
        .send()
        .await
        .expect("enroll");
    assert_eq!(r.status().as_u16(), 201, "enroll");
    let v: Value = r.json().await.expect("json");
    Phone {
        key,
        device_id: v["device_id"]
            .as_str()
            .expect("device")
            .parse()
            .expect("uuid"),
        token: v["device_token"].as_str().expect("token").to_owned(),
    }
}

struct Login {
    id: String,
    device_code: String,
    number: u8,
    payload: LoginPayload,
}

async fn start_login(http: &reqwest::Client, base: &str, t: &Terminal) -> Result<Login, String> {
    let r = http
        .post(format!("{base}/oauth/device_authorization"))
        .header("authorization", t.auth())
        .form(&[("scope", "sign")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("device_authorization: {}", r.status()));
    }
    let v: Value = r.json().await.map_err(|e| e.to_string())?;
    let Ok(Payload::Login(payload)) =
        Payload::parse_ignoring_expiry(v["verification_uri_complete"].as_str().unwrap_or(""))
    else {
        return Err("not a login payload".into());
    };
    Ok(Login {
        id: v["login_id"].as_str().unwrap_or("").to_owned(),
        device_code: v["device_code"].as_str().unwrap_or("").to_owned(),
        number: v["match_number"].as_u64().unwrap_or(0) as u8,
        payload,
    })
}

/// The phone's part: context, then a signed approval.
async fn approve(
    http: &reqwest::Client,
    base: &str,
    phone: &Phone,
    login: &Login,
) -> Result<(), String> {
    let r = http
        .post(format!("{base}/v1/phone/logins/{}/context", login.id))
        .bearer_auth(&phone.token)
        .json(&json!({ "secret": login.payload.secret.to_b64u() }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("context: {}", r.status()));
    }
    let ctx: Value = r.json().await.map_err(|e| e.to_string())?;
    let challenge: [u8; 32] =
        shomei_core::api::b64u::decode(ctx["challenge"].as_str().unwrap_or(""))
            .ok()
            .and_then(|c| c.try_into().ok())
            .ok_or("challenge")?;
    let msg = ApprovalMessage {
        origin: &login.payload.origin,
        login_id: &login.payload.login_id,
        secret: &login.payload.secret,
        device_id: *phone.device_id.as_bytes(),
        decision: Decision::Approve,
        number: login.number,
        challenge,
    }
    .to_bytes();
    let sig = phone.key.sign(&msg).map_err(|e| e.to_string())?;
    let body = json!({ "device_id": phone.device_id, "decision": "approve", "number": login.number, "signature": b64u(&sig) });
    let r = http
        .post(format!("{base}/v1/phone/logins/{}/decision", login.id))
        .bearer_auth(&phone.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("decision: {}", r.status()));
    }
    Ok(())
}

async fn token(
    http: &reqwest::Client,
    base: &str,
    t: &Terminal,
    device_code: &str,
) -> Result<String, String> {
    let v = token_body(http, base, t, device_code).await?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| "no access_token".into())
}

/// The token response (`access_token`, `grant_id`, ...).
async fn token_body(
    http: &reqwest::Client,
    base: &str,
    t: &Terminal,
    device_code: &str,
) -> Result<Value, String> {
    let r = http
        .post(format!("{base}/oauth/token"))
        .header("authorization", t.auth())
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !r.status().is_success() {
        return Err(format!("token: {}", r.status()));
    }
    r.json().await.map_err(|e| e.to_string())
}

async fn full_login(
    http: &reqwest::Client,
    base: &str,
    t: &Terminal,
    phone: &Phone,
) -> Result<String, String> {
    let login = start_login(http, base, t).await?;
    approve(http, base, phone, &login).await?;
    token(http, base, t, &login.device_code).await
}

// ---------------------------------------------------------------- measuring helpers

/// Runs `workers` copies of `op` for `secs` (after a warm-up of a fifth of
/// it) and returns (successes per second, failures, first error).
async fn throughput<F, Fut>(workers: usize, secs: Duration, op: F) -> (f64, u64, Option<String>)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let op = Arc::new(op);
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (op, ok, failed, counting, stop, first_error) = (
            op.clone(),
            ok.clone(),
            failed.clone(),
            counting.clone(),
            stop.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = op(w).await;
                if counting.load(Ordering::Relaxed) {
                    match r {
                        Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            first_error.lock().expect("lock").get_or_insert(e);
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }
        }));
    }
    tokio::time::sleep(secs / 5).await;
    counting.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(secs).await;
    counting.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let e = first_error.lock().expect("lock").take();
    (
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        failed.load(Ordering::Relaxed),
        e,
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A keep-alive HTTP/1.1 client connection that sends prepared request
/// bytes and reads one response (status line, `content-length` body; no
/// chunked encoding, which the server does not use for JSON answers).
struct RawConnection {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConnection {
    async fn connect(addr: std::net::SocketAddr) -> Result<RawConnection, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(RawConnection { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends `request`, returns (status, body).
    async fn round_trip(&mut self, request: &[u8]) -> Result<(u16, Vec<u8>), String> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        self.stream.write_all(request).await.map_err(|e| e.to_string())?;
        self.buf.clear();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = std::str::from_utf8(&self.buf[..end]).map_err(|e| e.to_string())?;
                let mut lines = head.split("\r\n");
                let status: u16 = lines
                    .next()
                    .and_then(|l| l.strip_prefix("HTTP/1.1 "))
                    .and_then(|l| l.get(..3))
                    .and_then(|c| c.parse().ok())
                    .ok_or_else(|| format!("bad status line in {head:?}"))?;
                let length: usize = lines
                    .filter_map(|l| l.split_once(':'))
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.trim().parse().ok())
                    .ok_or_else(|| format!("no content-length in {head:?}"))?;
                let body_start = end + 4;
                while self.buf.len() < body_start + length {
                    let n = self.stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("connection closed mid-body".into());
                    }
                    self.buf.extend_from_slice(&chunk[..n]);
                }
                if self.buf.len() != body_start + length {
                    return Err("more bytes than one response".into());
                }
                return Ok((status, self.buf[body_start..].to_vec()));
            }
            let n = self.stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed before the response".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Row 1's load generator: `concurrency` keep-alive connections, each
/// sending the same prepared signHash request bytes and reading the answer
/// with a minimal HTTP/1.1 reader (RawConnection), so that the client takes
/// as little as possible of the cores the server signs on. Every answer is
/// still checked: status 200 and one 256-byte signature. Returns
/// (calls/s, failed, first error).
async fn sign_load(addr: std::net::SocketAddr, request: Vec<u8>, concurrency: usize, secs: Duration) -> (f64, u64, Option<String>) {
    let request = Arc::new(request);
    let connections: Arc<Vec<tokio::sync::Mutex<Option<RawConnection>>>> =
        Arc::new((0..concurrency).map(|_| tokio::sync::Mutex::new(None)).collect());
    throughput(concurrency, secs, move |w| {
        let (connections, request) = (connections.clone(), request.clone());
        async move {
            let mut slot = connections[w].lock().await;
            if slot.is_none() {
                *slot = Some(RawConnection::connect(addr).await?);
            }
            let conn = slot.as_mut().expect("connected");
            let r = conn.round_trip(&request).await;
            if r.is_err() {
                *slot = None;
            }
            let (status, body) = r?;
            if status != 200 {
                return Err(format!("signHash: {status} {}", String::from_utf8_lossy(&body)));
            }
            let v: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            match v["signatures"][0].as_str().map(|s| s.len()) {
                Some(344) => Ok(()), // base64 of 256 bytes
                _ => Err(format!("signHash body: {v}")),
            }
        }
    })
    .await
}

// ---------------------------------------------------------------- 1. raw RSA

/// How long each raw RSA measurement next to a signHash phase runs.
const RAW_ADJACENT: Duration = Duration::from_secs(3);

/// RSA-2048 PKCS#1 v1.5 signatures per second with aws-lc-rs on `threads`
/// threads sharing one parsed key (as the server's workers share a held
/// key), for `secs`.
fn raw_rsa(threads: usize, secs: Duration) -> f64 {
    use aws_lc_rs::digest::{Digest, SHA256};
    let key = Arc::new(
        aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keygen"),
    );
    let digest = aws_lc_rs::digest::digest(&SHA256, b"<Prescription>bench</Prescription>")
        .as_ref()
        .to_vec();
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (key, digest, stop) = (key.clone(), digest.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut sig = vec![0u8; key.public_modulus_len()];
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let d = Digest::import_less_safe(&digest, &SHA256).expect("digest");
                    key.sign_digest(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &d, &mut sig)
                        .expect("sign");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(secs);
    stop.store(true, Ordering::Relaxed);
    let total: u64 = handles.into_iter().map(|h| h.join().expect("thread")).sum();
    total as f64 / t0.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------- 1. the ceiling: HTTP and RSA alone

/// In the environment of the child this binary starts as its bare signer.
const BARE_SIGNER_ENV: &str = "SHOMEI_BENCH_BARE_SIGNER";

/// What any server answering signHash over HTTP on these cores, with this
/// load generator, could reach: the same HTTP/1 stack as `shomei serve`
/// (hyper's HTTP/1 connection with its timer, an axum router, Tokio with
/// the same settings) in a process of its own, parsing the same request's
/// JSON, decoding the hash and signing it with aws-lc-rs. It checks no
/// token, reads and writes no store and keeps no log: signHash's ratio to
/// raw can only be lower, and the difference is what Shomei's own work
/// costs.
struct BareSigner {
    child: Child,
    addr: std::net::SocketAddr,
}

impl BareSigner {
    fn start() -> BareSigner {
        let mut child = Command::new(std::env::current_exe().expect("this benchmark's path"))
            .env(BARE_SIGNER_ENV, "1")
            // The child exits when this end closes, even if this process dies first.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the bare signer");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the bare signer's address");
        let addr = line.trim().parse().expect("the bare signer prints its address");
        BareSigner { child, addr }
    }

    fn cpu_secs(&self) -> f64 {
        cpu_secs_of(&self.child.id().to_string())
    }
}

impl Drop for BareSigner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bare signer's process (see `BareSigner`).
fn bare_signer_main() {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.event_interval(1); // as `shomei serve` (server/src/main.rs)
    let rt = b.enable_all().build().expect("runtime");
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    rt.block_on(async {
        let key = Arc::new(aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keygen"));
        let router = axum::Router::new()
            .route("/csc/v2/signatures/signHash", axum::routing::post(bare_sign_hash))
            .with_state(key);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("{}", listener.local_addr().expect("address"));
        use std::io::Write as _;
        std::io::stdout().flush().expect("stdout");
        loop {
            let Ok((io, _)) = listener.accept().await else { continue };
            let _ = io.set_nodelay(true); // as `shomei serve` (server/src/run.rs)
            let router = router.clone();
            tokio::spawn(async move {
                use tower::ServiceExt as _;
                let service = router.map_request(|r: axum::http::Request<hyper::body::Incoming>| r.map(axum::body::Body::new));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(io),
                        hyper_util::service::TowerToHyperService::new(service),
                    )
                    .await;
            });
        }
    });
}

/// The fields of a CSC signHash request the bare signer reads.
#[derive(serde::Deserialize)]
struct BareSignHashRequest {
    hashes: Vec<String>,
}

async fn bare_sign_hash(
    axum::extract::State(key): axum::extract::State<Arc<aws_lc_rs::rsa::KeyPair>>,
    axum::Json(req): axum::Json<BareSignHashRequest>,
) -> Result<axum::Json<Value>, axum::http::StatusCode> {
    use aws_lc_rs::digest::{Digest, SHA256};
    let bad = axum::http::StatusCode::BAD_REQUEST;
    let mut signatures = Vec::with_capacity(req.hashes.len());
    for h in &req.hashes {
        let d = base64::engine::general_purpose::STANDARD.decode(h).map_err(|_| bad)?;
        let d = Digest::import_less_safe(&d, &SHA256).map_err(|_| bad)?;
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign_digest(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &d, &mut sig)
            .map_err(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR)?;
        signatures.push(base64::engine::general_purpose::STANDARD.encode(sig));
    }
    Ok(axum::Json(json!({ "signatures": signatures })))
}

// ---------------------------------------------------------------- per-store run

#[derive(Default)]
struct StoreRun {
    name: &'static str,
    /// /proc/loadavg (1, 5, 15 min) right after the signHash phase.
    load_after_sign: String,
    /// Raw RSA on every core right before and right after this store's
    /// signHash phase, and on one thread right before it (signatures/s).
    raw_adjacent: (f64, f64),
    raw_one_adjacent: f64,
    /// CPU the server, the bare signer and PostgreSQL used while those raw figures were
    /// taken (seconds): what could have slowed them.
    raw_adjacent_disturbance_secs: f64,
    /// signHash's load, and the bare signer's (HTTP and RSA alone) under
    /// the same load generator, in slices alternating with it (`SLICES`):
    /// calls/s, and the CPU of the server, the load generator, PostgreSQL
    /// and the machine around them.
    signing: Slices,
    bare: Slices,
    /// The audit writer during the phase: records per group commit, mean commit time (ms).
    records_per_commit: f64,
    commit_ms: f64,
    commits_per_s: f64,
    logins_per_s: f64,
    login_failed: u64,
    login_error: Option<String>,
    sse_ms: Vec<f64>,
    sse_ms_from_send: Vec<f64>,
    poll_ms: Vec<f64>,
    rss_idle_mib: f64,
    rss_waiting_mib: f64,
    hwm_mib: f64,
    waiting: usize,
    waiter_cpu_pct: f64,
}

impl StoreRun {
    fn raw_adjacent_mean(&self) -> f64 {
        (self.raw_adjacent.0 + self.raw_adjacent.1) / 2.0
    }
}

async fn run_store(name: &'static str, database_url: Option<String>, s: &Settings) -> StoreRun {
    let server = ServerProc::start(database_url.as_deref());
    let world = Arc::new(World::build(&server, PAIRS).await);
    let mut run = StoreRun { name, ..StoreRun::default() };
    if s.runs("sign") {
        sign_phase(&server, &world, s, &mut run).await;
    }
    if s.runs("logins") {
        // -- raw store commits: one audit append per transaction, same kind of store
        run.commits_per_s = {
            let dir = tempfile::tempdir().expect("dir");
            let url = match &database_url {
                Some(u) => fresh_pg_database(u, "commit").await,
                None => dir.path().join("commit.db").display().to_string(),
            };
            let store = shomei_server::store::open(&url).await.expect("store");
            let (r, _, e) = throughput(s.concurrency.min(16), s.secs, move |w| {
                let store = store.clone();
                async move {
                    let audit = shomei_server::store::AuditEvent::new(
                        "bench",
                        "bench.commit",
                        format!("w{w}"),
                        json!({}),
                    );
                    store
                        .append_audit(0, &audit)
                        .await
                        .map_err(|e| e.to_string())
                }
            })
            .await;
            if let Some(e) = e {
                eprintln!("store commit errors: {e}");
            }
            r
        };

        // -- complete logins over HTTP
        (run.logins_per_s, run.login_failed, run.login_error) = {
            let w = world.clone();
            throughput(16, s.secs, move |_| {
                let w = w.clone();
                async move {
                    let (t, p) = w.pair();
                    full_login(&w.http, &w.base, t, p).await.map(|_| ())
                }
            })
            .await
        };
    }
    if s.runs("delays") {
        // -- decision → SSE event and long-poll answer
        (run.sse_ms, run.sse_ms_from_send, run.poll_ms) = delays(&world, 200).await;
    }
    if s.runs("waiting") {
        // -- RSS with many terminals waiting
        (run.rss_idle_mib, _) = server.rss_mib();
        (run.waiting, run.waiter_cpu_pct, run.rss_waiting_mib, run.hwm_mib) =
            many_waiting(&server, &world, s.waiters, s.hold_waiting).await;
    }
    run
}

/// Profiling runs (`SHOMEI_BENCH_PERF`): `perf record` of the whole machine
/// (`-a`: on the Firecracker VMs this runs on, `-p <pid>` records no
/// samples) for `secs`, over the load phase about to start (warm-ups
/// included), into `<dir>/<name>.data`. Tell the processes apart by pid or comm in
/// `perf report`/`perf script`: the server, the bare signer, this load
/// generator, PostgreSQL.
fn perf_record(s: &Settings, name: &str, secs: Duration) -> Option<Child> {
    let out = s.perf_dir.as_ref()?.join(format!("{name}.data"));
    eprintln!("perf record -a into {}", out.display());
    let child = Command::new("perf")
        .args(["record", "-a", "-F", "499", "--call-graph", "dwarf,8192", "-o"])
        .arg(&out)
        .args(["--", "sleep"])
        .arg(format!("{}", secs.as_secs_f64()))
        .stdout(Stdio::null())
        .spawn()
        .expect("perf (Debian linux-perf)");
    Some(child)
}

/// A signHash request for `host`: `auth` holds the authorization header
/// lines (each ending in CRLF), `body` the JSON.
fn sign_request(host: std::net::SocketAddr, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /csc/v2/signatures/signHash HTTP/1.1\r\nhost: {host}\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Row 1 alternates signHash's load and the bare signer's in this many
/// slices each (bare, signHash, signHash, bare, …), so that both see the
/// same machine: its speed drifts from one phase to the next
/// (docs/performance.md), and a ceiling measured seconds away from the
/// phase it bounds compared it with another machine.
const SLICES: u32 = 4;

/// One process's load in row 1, summed over its slices.
#[derive(Default)]
struct Slices {
    /// Calls answered in the counted windows, and those windows' length.
    calls: f64,
    counted_secs: f64,
    /// Calls over the slices' whole length (warm-up included): what the
    /// CPU read around them paid for.
    all_calls: f64,
    /// CPU seconds of the process under load, of this one, of PostgreSQL,
    /// and of the machine.
    process_cpu: f64,
    client_cpu: f64,
    postgres_cpu: f64,
    machine: MachineCpu,
    failed: u64,
    error: Option<String>,
}

impl Slices {
    /// One slice of `secs`: the load, and the CPU read around it.
    async fn run(&mut self, addr: std::net::SocketAddr, request: &[u8], concurrency: usize, secs: Duration, process_cpu: impl Fn() -> f64) {
        let (cpu0, client0, postgres0, machine0) = (process_cpu(), cpu_secs_of("self"), postgres_cpu_secs(), MachineCpu::now());
        let t0 = Instant::now();
        let (per_s, failed, error) = sign_load(addr, request.to_vec(), concurrency, secs).await;
        self.all_calls += per_s * t0.elapsed().as_secs_f64();
        self.calls += per_s * secs.as_secs_f64();
        self.counted_secs += secs.as_secs_f64();
        self.process_cpu += process_cpu() - cpu0;
        self.client_cpu += cpu_secs_of("self") - client0;
        self.postgres_cpu += postgres_cpu_secs() - postgres0;
        let m = MachineCpu::now().since(machine0);
        self.machine = MachineCpu { total: self.machine.total + m.total, idle: self.machine.idle + m.idle, steal: self.machine.steal + m.steal };
        self.failed += failed;
        self.error = self.error.take().or(error);
    }

    fn per_s(&self) -> f64 {
        self.calls / self.counted_secs.max(f64::MIN_POSITIVE)
    }

    /// `secs` of CPU per call, in ms.
    fn per_call_ms(&self, secs: f64) -> f64 {
        secs * 1000.0 / self.all_calls.max(1.0)
    }
}

/// Row 1's HTTP side: signHash, one hash per call, a live grant, for the
/// practitioner with the credential (pair 0).
async fn sign_phase(server: &ServerProc, world: &World, s: &Settings, run: &mut StoreRun) {
    let (terminal, phone) = (&world.terminals[0], &world.phones[0]);
    let access = full_login(&world.http, &world.base, terminal, phone)
        .await
        .expect("grant");
    let sign_body = {
        let h = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        json!({ "credentialID": world.credential, "hashes": [h], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11" })
            .to_string()
    };
    let term_auth = terminal.auth();
    let addr: std::net::SocketAddr = world
        .base
        .strip_prefix("http://")
        .expect("plain HTTP")
        .parse()
        .expect("address");
    // The same header lines as a real EHR's call: the bare signer is sent them too.
    let auth = format!("authorization: Bearer {access}\r\nshomei-terminal-authorization: {term_auth}\r\n");
    let request = sign_request(addr, &auth, &sign_body);
    let commits = |http: reqwest::Client| async move {
        let mut v = [0.0; 3];
        for (i, series) in ["shomei_audit_batch_records_sum", "shomei_audit_batch_records_count", "shomei_audit_commit_duration_seconds_sum"].iter().enumerate() {
            v[i] = scrape(&http, server, series).await;
        }
        v
    };
    // Raw RSA next to the phase: the machine's speed drifts over a run
    // (docs/performance.md), and a baseline taken minutes away from the
    // phase measures another machine. The server and PostgreSQL are idle
    // by now; what CPU they still use meanwhile is reported with it.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let bare = BareSigner::start();
    let bare_request = sign_request(bare.addr, &auth, &sign_body);
    let disturbance = || server.cpu_secs() + postgres_cpu_secs() + bare.cpu_secs();
    let quiet0 = disturbance();
    run.raw_one_adjacent = tokio::task::block_in_place(|| raw_rsa(1, RAW_ADJACENT));
    run.raw_adjacent.0 = tokio::task::block_in_place(|| raw_rsa(cores, RAW_ADJACENT));
    run.raw_adjacent_disturbance_secs = disturbance() - quiet0;
    let commits0 = commits(world.http.clone()).await;
    let perf = perf_record(s, &format!("signhash-{}", run.name.to_lowercase()), s.secs * 12 / 5);
    let (mut signing, mut ceiling) = (Slices::default(), Slices::default());
    let slice = s.secs / SLICES;
    for i in 0..SLICES * 2 {
        // bare, signHash, signHash, bare, bare, …
        if (i % 4 == 0) || (i % 4 == 3) {
            ceiling.run(bare.addr, &bare_request, s.concurrency, slice, || bare.cpu_secs()).await;
        } else {
            signing.run(addr, &request, s.concurrency, slice, || server.cpu_secs()).await;
        }
    }
    run.load_after_sign = load_average();
    let commits1 = commits(world.http.clone()).await;
    let batches = commits1[1] - commits0[1];
    run.records_per_commit = (commits1[0] - commits0[0]) / batches;
    run.commit_ms = (commits1[2] - commits0[2]) * 1000.0 / batches;
    if let Some(mut p) = perf {
        let _ = p.wait();
    }
    let quiet1 = disturbance();
    run.raw_adjacent.1 = tokio::task::block_in_place(|| raw_rsa(cores, RAW_ADJACENT));
    run.raw_adjacent_disturbance_secs += disturbance() - quiet1;
    drop(bare);
    (run.signing, run.bare) = (signing, ceiling);
}

/// For `n` logins in turn: the terminal listens (SSE and a long-poll), the
/// phone approves; returns the SSE delay after the decision's response, the
/// SSE delay after the decision was sent (an upper bound on commit → event),
/// and the long-poll delay after the decision's response, in ms.
async fn delays(world: &World, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let listen = reqwest::Client::new();
    let (mut sse, mut sse_send, mut poll) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let (terminal, phone) = world.pair();
        let Ok(login) = start_login(&world.http, &world.base, terminal).await else {
            continue;
        };
        let auth = terminal.auth();
        // SSE: wait for the first (pending) event so the stream is live.
        let r = listen
            .get(format!(
                "{}/v1/terminal/logins/{}/events",
                world.base, login.id
            ))
            .header("authorization", &auth)
            .send()
            .await;
        let Ok(mut stream) = r else { continue };
        let mut buf = String::new();
        while !buf.contains("pending") {
            match stream.chunk().await {
                Ok(Some(b)) => buf.push_str(&String::from_utf8_lossy(&b)),
                _ => break,
            }
        }
        let sse_task = tokio::spawn(async move {
            let mut buf = String::new();
            while let Ok(Some(b)) = stream.chunk().await {
                buf.push_str(&String::from_utf8_lossy(&b));
                if buf.contains("approved") {
                    return Some(Instant::now());
                }
            }
            None
        });
        let poll_req = listen
            .get(format!(
                "{}/v1/terminal/logins/{}/wait?timeout=30",
                world.base, login.id
            ))
            .header("authorization", &auth);
        let poll_task = tokio::spawn(async move {
            let r = poll_req.send().await.ok()?;
            let v: Value = r.json().await.ok()?;
            (v["status"] == "approved").then(Instant::now)
        });
        // let the long-poll reach the server and subscribe
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        if approve(&world.http, &world.base, phone, &login)
            .await
            .is_err()
        {
            continue;
        }
        let answered = Instant::now();
        let ms = |t: Instant, from: Instant| -> f64 {
            if t >= from {
                t.duration_since(from).as_secs_f64() * 1000.0
            } else {
                -(from.duration_since(t).as_secs_f64() * 1000.0)
            }
        };
        if let Ok(Some(t)) = sse_task.await {
            sse.push(ms(t, answered));
            sse_send.push(ms(t, sent));
        }
        if let Ok(Some(t)) = poll_task.await {
            poll.push(ms(t, answered));
        }
    }
    for v in [&mut sse, &mut sse_send, &mut poll] {
        v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    }
    (sse, sse_send, poll)
}

/// Opens `n` waiting terminals (logins spread over terminals of their own,
/// [`LOGINS_PER_WAITING_TERMINAL`] each; even ones on SSE, odd ones on a
/// 60 s long-poll), then reads the server's RSS and its CPU over 4 s of
/// waiting. Returns (waiting, CPU %, RSS, HWM).
async fn many_waiting(server: &ServerProc, world: &World, n: usize, hold: Duration) -> (usize, f64, f64, f64) {
    let mut terminals = Vec::new();
    for i in 0..n.div_ceil(LOGINS_PER_WAITING_TERMINAL) {
        terminals.push(world.extra_terminal(&format!("EHR wait {i}")).await);
    }
    // create the logins, 32 at a time
    let logins: Vec<(Terminal, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let t = terminals[i / LOGINS_PER_WAITING_TERMINAL].clone();
            let (http, base) = (world.http.clone(), world.base.clone());
            async move { start_login(&http, &base, &t).await.ok().map(|l| (t, l.id)) }
        })
        .buffer_unordered(32)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    // every waiter gets its own connection
    let listen = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let live = Arc::new(AtomicU64::new(0));
    let release = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    for (i, (t, id)) in logins.into_iter().enumerate() {
        let (listen, base, live, release, sem) = (
            listen.clone(),
            world.base.clone(),
            live.clone(),
            release.clone(),
            sem.clone(),
        );
        let released = release.notified_owned();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await.ok()?;
            if i % 2 == 0 {
                let mut stream = listen
                    .get(format!("{base}/v1/terminal/logins/{id}/events"))
                    .header("authorization", t.auth())
                    .send()
                    .await
                    .ok()?;
                let mut buf = String::new();
                while !buf.contains("pending") {
                    buf.push_str(&String::from_utf8_lossy(&stream.chunk().await.ok()??));
                }
                drop(permit);
                live.fetch_add(1, Ordering::Relaxed);
                released.await;
                drop(stream);
            } else {
                let req = listen
                    .get(format!("{base}/v1/terminal/logins/{id}/wait?timeout=60"))
                    .header("authorization", t.auth())
                    .send();
                tokio::pin!(req);
                // the long-poll answers only at its timeout; count it once sent
                tokio::select! {
                    _ = &mut req => return None,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                drop(permit);
                live.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    _ = req => {}
                    _ = released => {}
                }
            }
            Some(())
        }));
    }
    // wait until they are all connected (bounded)
    let deadline = Instant::now() + Duration::from_secs(120);
    while (live.load(Ordering::Relaxed) as usize) < tasks.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = live.load(Ordering::Relaxed) as usize;
    let cpu0 = server.cpu_secs();
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let cpu_pct = (server.cpu_secs() - cpu0) * 100.0 / t0.elapsed().as_secs_f64();
    let (rss, hwm) = server.rss_mib();
    if !hold.is_zero() {
        eprintln!(
            "{waiting} terminals waiting on server pid {} (RSS {rss:.1} MiB); holding them {} s",
            server.pid(),
            hold.as_secs()
        );
        tokio::time::sleep(hold).await;
    }
    release.notify_waiters();
    for t in tasks {
        let _ = t.await;
    }
    (waiting, cpu_pct, rss, hwm)
}

/// A fresh database on the PostgreSQL server of `base_url`; returns its URL.
async fn fresh_pg_database(base_url: &str, tag: &str) -> String {
    let name = format!(
        "shomei_bench_{tag}_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let mut c = sqlx::PgConnection::connect(base_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .expect("create database");
    let (head, _) = base_url.rsplit_once('/').expect("database URL with a path");
    format!("{head}/{name}")
}

/// Drops the benchmark's databases (best effort).
async fn drop_pg_databases(base_url: &str) {
    let Ok(mut c) = sqlx::PgConnection::connect(base_url).await else {
        return;
    };
    let prefix = format!("shomei_bench_%_{}_%", std::process::id());
    let names: Vec<(String,)> =
        sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1")
            .bind(prefix)
            .fetch_all(&mut c)
            .await
            .unwrap_or_default();
    for (n,) in names {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {n} WITH (FORCE)"))
            .execute(&mut c)
            .await;
    }
}

// ---------------------------------------------------------------- 6. cross-replica wake

/// Timed logins per side (same replica, cross replica), alternating; 10
/// terminal + phone pairs keep every budget (30 logins/min per terminal, 60
/// phone calls/min per device) out of the way.
const CROSS_REPLICA_SAMPLES: usize = 100;
const CROSS_REPLICA_PAIRS: usize = 10;

struct CrossReplicaRun {
    /// SSE event after the decision response (ms), terminal on A / on B.
    same: Vec<f64>,
    cross: Vec<f64>,
    /// SSE event after the decision request was sent (ms): an upper bound
    /// on commit → event.
    same_from_send: Vec<f64>,
    cross_from_send: Vec<f64>,
    /// B's own `shomei_replica_notification_lag_seconds` (sum, count) and
    /// `shomei_replica_backstop_wakes_total` at the end.
    lag_sum_s: f64,
    lag_count: f64,
    /// Upper bounds (s) of the histogram buckets holding B's p50 and p99 lag.
    lag_p50_le: f64,
    lag_p99_le: f64,
    backstop_wakes: f64,
    failed: usize,
}

/// One sample of a series in a server's /metrics.
async fn scrape(http: &reqwest::Client, server: &ServerProc, series: &str) -> f64 {
    let Ok(r) = http.get(format!("{}/metrics", server.admin_base)).send().await else {
        return f64::NAN;
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// SSE on `wait_base`, approval on the world's own server (A): (event
/// after the decision response, event after the decision was sent), ms.
async fn one_wake(world: &World, listen: &reqwest::Client, wait_base: &str) -> Option<(f64, f64)> {
    let (terminal, phone) = world.pair();
    let login = start_login(&world.http, wait_base, terminal).await.ok()?;
    let mut stream = listen
        .get(format!("{wait_base}/v1/terminal/logins/{}/events", login.id))
        .header("authorization", terminal.auth())
        .send()
        .await
        .ok()?;
    // the first (pending) event: the stream is live and registered
    let mut buf = String::new();
    while !buf.contains("pending") {
        buf.push_str(&String::from_utf8_lossy(&stream.chunk().await.ok()??));
    }
    let event = tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(b)) = stream.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&b));
            if buf.contains("approved") {
                return Some(Instant::now());
            }
        }
        None
    });
    let sent = Instant::now();
    approve(&world.http, &world.base, phone, &login).await.ok()?;
    let answered = Instant::now();
    let t = tokio::time::timeout(Duration::from_secs(10), event).await.ok()?.ok()??;
    let ms = |from: Instant| -> f64 {
        if t >= from {
            t.duration_since(from).as_secs_f64() * 1000.0
        } else {
            -(from.duration_since(t).as_secs_f64() * 1000.0)
        }
    };
    Some((ms(answered), ms(sent)))
}

/// Replicas A and B on `url` (same KEK, same public origin; B's backstop
/// re-read a day apart, so B's terminals are woken by notices only), the
/// world built on A; `n` samples per side, alternating.
async fn cross_replica(url: &str, n: usize) -> CrossReplicaRun {
    let a = ServerProc::start(Some(url));
    let kek = std::fs::read(a._dir.path().join("kek")).expect("A's kek");
    let b = ServerProc::start_configured(Some(url), &["--public-origin", &a.base], |dir| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(dir.join("kek"), &kek).expect("B's kek");
        std::fs::set_permissions(dir.join("kek"), std::fs::Permissions::from_mode(0o600)).expect("chmod kek");
        std::fs::write(dir.join("shomei.toml"), "[replicas]\nrecheck_interval_s = 86400\n").expect("B's shomei.toml");
    });
    let world = World::build(&a, CROSS_REPLICA_PAIRS).await;
    let listen = reqwest::Client::new();
    // B listens before the first sample.
    for _ in 0..200 {
        if scrape(&listen, &b, "shomei_replica_listener_connected").await == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut run = CrossReplicaRun {
        same: Vec::new(),
        cross: Vec::new(),
        same_from_send: Vec::new(),
        cross_from_send: Vec::new(),
        lag_sum_s: 0.0,
        lag_count: 0.0,
        lag_p50_le: f64::NAN,
        lag_p99_le: f64::NAN,
        backstop_wakes: 0.0,
        failed: 0,
    };
    // 3 warm-up pairs, then alternate same / cross.
    for i in 0..n + 3 {
        let same = one_wake(&world, &listen, &a.base).await;
        let cross = one_wake(&world, &listen, &b.base).await;
        if i < 3 {
            continue;
        }
        match same {
            Some((r, s)) => {
                run.same.push(r);
                run.same_from_send.push(s);
            }
            None => run.failed += 1,
        }
        match cross {
            Some((r, s)) => {
                run.cross.push(r);
                run.cross_from_send.push(s);
            }
            None => run.failed += 1,
        }
    }
    for v in [&mut run.same, &mut run.cross, &mut run.same_from_send, &mut run.cross_from_send] {
        v.sort_by(|x, y| x.partial_cmp(y).expect("no NaN"));
    }
    run.lag_sum_s = scrape(&listen, &b, "shomei_replica_notification_lag_seconds_sum").await;
    run.lag_count = scrape(&listen, &b, "shomei_replica_notification_lag_seconds_count").await;
    run.backstop_wakes = scrape(&listen, &b, "shomei_replica_backstop_wakes_total").await;
    let buckets = lag_buckets(&listen, &b).await;
    run.lag_p50_le = bucket_quantile(&buckets, 0.5);
    run.lag_p99_le = bucket_quantile(&buckets, 0.99);
    run
}

/// B's lag histogram: (upper bound in s, cumulative count), ascending.
async fn lag_buckets(http: &reqwest::Client, server: &ServerProc) -> Vec<(f64, f64)> {
    let Ok(r) = http.get(format!("{}/metrics", server.admin_base)).send().await else {
        return Vec::new();
    };
    let text = r.text().await.unwrap_or_default();
    let mut out: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("shomei_replica_notification_lag_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    out.sort_by(|x, y| x.0.partial_cmp(&y.0).expect("no NaN"));
    out
}

/// The upper bound of the first bucket holding quantile `q`.
fn bucket_quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets.iter().find(|b| b.1 >= q * total).map_or(f64::NAN, |b| b.0)
}

fn print_cross_replica(run: Option<&CrossReplicaRun>) {
    let Some(r) = run else { return };
    println!("## Cross-replica wake (PostgreSQL, LISTEN/NOTIFY): terminal waits (SSE) on B, phone approves on A");
    println!();
    println!("ms after the phone's decision response (negative = the event came first); same replica = terminal and phone both on A");
    println!();
    println!("| terminal on | samples | SSE p50 | SSE p99 | SSE p99 after the decision was sent |");
    println!("|---|---|---|---|---|");
    for (name, v, from_send) in [("A (same replica)", &r.same, &r.same_from_send), ("B (other replica)", &r.cross, &r.cross_from_send)] {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.2} |",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.99),
            percentile(from_send, 0.99)
        );
    }
    println!();
    println!(
        "cross/same p99 (after the decision was sent): {:.2}; B's notification lag (publish just before A's COMMIT → receipt on B, B's /metrics histogram) mean {:.2} ms, p50 ≤ {:.1} ms, p99 ≤ {:.1} ms (bucket bounds) over {} notices; B's backstop wakes {}; failed samples {}",
        percentile(&r.cross_from_send, 0.99) / percentile(&r.same_from_send, 0.99),
        r.lag_sum_s / r.lag_count * 1000.0,
        r.lag_p50_le * 1000.0,
        r.lag_p99_le * 1000.0,
        r.lag_count,
        r.backstop_wakes,
        r.failed
    );
    println!();
}

// ---------------------------------------------------------------- 5. the signing log

/// Signatures the benchmark's grant holds when its log is listed.
const SIGNING_LOG_SIZE: usize = 10_000;
/// Timed requests of each kind (list, signHash), alternating. The phone API
/// allows a device 60 calls at once (then one a second): the login's 2 +
/// warm-up + these stay under it, so no sample is a `rate_limited`.
const SIGNING_LOG_SAMPLES: usize = 50;
const SIGNING_LOG_WARMUP: usize = 5;

struct SigningLogRun {
    name: &'static str,
    held: usize,
    page: usize,
    /// ms, sorted.
    list_ms: Vec<f64>,
    sign_ms: Vec<f64>,
}

/// Listing the newest page (50) of a grant holding [`SIGNING_LOG_SIZE`]
/// signatures (`GET /v1/phone/signatures?grant=`) vs one signHash (one
/// hash) with the same grant, one request at a time, alternating, on a
/// fresh `shomei serve`. The signatures are seeded through the same
/// `Store` the server uses (its SQLite file, or its PostgreSQL database):
/// `record_signatures`, i.e. the rows, indexes and audit entries a
/// signHash writes, without 10,000 RSA signatures.
async fn signing_log(name: &'static str, database_url: Option<String>) -> SigningLogRun {
    let server = ServerProc::start(database_url.as_deref());
    let world = World::build(&server, 1).await;
    let (terminal, phone) = (&world.terminals[0], &world.phones[0]);
    let login = start_login(&world.http, &world.base, terminal)
        .await
        .expect("login");
    approve(&world.http, &world.base, phone, &login)
        .await
        .expect("approve");
    let t = token_body(&world.http, &world.base, terminal, &login.device_code)
        .await
        .expect("token");
    let access = t["access_token"].as_str().expect("access token").to_owned();
    let grant = t["grant_id"].as_str().expect("grant id").to_owned();

    let url = match &database_url {
        Some(u) => u.clone(),
        None => server._dir.path().join("shomei.db").display().to_string(),
    };
    let store = shomei_server::store::open(&url)
        .await
        .expect("the server's store");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let mut n = 0usize;
    while n < SIGNING_LOG_SIZE {
        let batch = (SIGNING_LOG_SIZE - n).min(1000);
        let hashes: Vec<Vec<u8>> = (n..n + batch)
            .map(|i| {
                aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &i.to_be_bytes())
                    .as_ref()
                    .to_vec()
            })
            .collect();
        let rec = shomei_server::store::SignatureRecord {
            grant_id: grant.clone(),
            credential_id: world.credential.clone(),
            terminal_id: terminal.id.clone(),
            hashes,
            sign_algo: "rsa-pkcs1-sha256".into(),
            now_ms,
            signature_formats: Vec::new(),
            label: Some(format!("Rx {n}")),
        };
        let out = store
            .record_signatures(vec![rec])
            .await
            .expect("seed signatures");
        assert!(
            matches!(out[..], [shomei_server::store::RecordOutcome::Recorded(_)]),
            "seeding refused"
        );
        n += batch;
    }

    let list_url = format!("{}/v1/phone/signatures?grant={grant}&limit=50", world.base);
    let sign_url = format!("{}/csc/v2/signatures/signHash", world.base);
    let sign_body = json!({ "credentialID": world.credential, "hashes": [base64::engine::general_purpose::STANDARD.encode([9u8; 32])], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signAlgo": "1.2.840.113549.1.1.11" }).to_string();
    let (mut list_ms, mut sign_ms) = (Vec::new(), Vec::new());
    let mut page = 0;
    for i in 0..SIGNING_LOG_WARMUP + SIGNING_LOG_SAMPLES {
        let t0 = Instant::now();
        let r = world
            .http
            .get(&list_url)
            .bearer_auth(&phone.token)
            .send()
            .await
            .expect("list");
        assert!(r.status().is_success(), "list: {}", r.status());
        let v: Value = r.json().await.expect("list json");
        let list = t0.elapsed().as_secs_f64() * 1000.0;
        page = v["signatures"].as_array().map_or(0, Vec::len);
        assert_eq!(page, 50, "a full page of the newest");
        let t0 = Instant::now();
        let r = world
            .http
            .post(&sign_url)
            .bearer_auth(&access)
            .header("shomei-terminal-authorization", terminal.auth())
            .header("content-type", "application/json")
            .body(sign_body.clone())
            .send()
            .await
            .expect("signHash");
        assert!(r.status().is_success(), "signHash: {}", r.status());
        let _: Value = r.json().await.expect("signHash json");
        let sign = t0.elapsed().as_secs_f64() * 1000.0;
        if i >= SIGNING_LOG_WARMUP {
            list_ms.push(list);
            sign_ms.push(sign);
        }
    }
    list_ms.sort_by(f64::total_cmp);
    sign_ms.sort_by(f64::total_cmp);
    SigningLogRun {
        name,
        held: SIGNING_LOG_SIZE,
        page,
        list_ms,
        sign_ms,
    }
}

fn print_signing_log(runs: &[SigningLogRun]) {
    println!(
        "## Signing log: the newest page of a grant holding {SIGNING_LOG_SIZE} signatures vs one signHash ({SIGNING_LOG_SAMPLES} of each, one at a time, alternating)"
    );
    println!();
    println!(
        "| store | signatures held | page | list p50 | list p99 | signHash p50 | signHash p99 | list / signHash (p50) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in runs {
        let (l, s) = (percentile(&r.list_ms, 0.5), percentile(&r.sign_ms, 0.5));
        println!(
            "| {} | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} |",
            r.name,
            r.held,
            r.page,
            l,
            percentile(&r.list_ms, 0.99),
            s,
            percentile(&r.sign_ms, 0.99),
            l / s
        );
    }
    println!();
}

// ---------------------------------------------------------------- report

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let total = mem
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
        / 1024.0;
    format!(
        "{cores} cores ({model}), {total:.0} GiB RAM, load average at start {}",
        load_average()
    )
}

/// The 1, 5 and 15 minute load averages.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn pct(a: f64, b: f64) -> String {
    format!("{:.0} %", 100.0 * a / b)
}

fn main() {
    if std::env::var_os(BARE_SIGNER_ENV).is_some() {
        return bare_signer_main();
    }
    let s = Settings {
        secs: Duration::from_secs(env_u64("SHOMEI_BENCH_SECS", 5)),
        waiters: env_u64("SHOMEI_BENCH_WAITERS", 10_000) as usize,
        concurrency: env_u64("SHOMEI_BENCH_CONCURRENCY", 32) as usize,
        only: std::env::args()
            .skip(1)
            .find_map(|a| ["sign", "waiting"].into_iter().find(|r| *r == a)),
        perf_dir: std::env::var_os("SHOMEI_BENCH_PERF").map(std::path::PathBuf::from),
        hold_waiting: Duration::from_secs(env_u64("SHOMEI_BENCH_HOLD_WAITING", 0)),
    };
    // `cargo bench -p shomei-server --bench server -- signing-log`: only that row.
    let only_signing_log = std::env::args().skip(1).any(|a| a == "signing-log");
    println!("# Shomei server benchmark");
    println!();
    println!("machine: {}", machine());
    println!(
        "server: {} (child process, loopback); load generator: this process on the same cores (signHash: a thin keep-alive HTTP/1.1 client; the other rows: reqwest)",
        server_bin()
    );
    println!();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pg = std::env::var("SHOMEI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("runtime");
    let log_runs = || {
        rt.block_on(async {
            let mut runs = vec![signing_log("SQLite", None).await];
            if let Some(base) = &pg {
                let url = fresh_pg_database(base, "log").await;
                runs.push(signing_log("PostgreSQL", Some(url)).await);
                drop_pg_databases(base).await;
            }
            runs
        })
    };
    if only_signing_log {
        print_signing_log(&log_runs());
        println!("load average at the end: {}", load_average());
        return;
    }
    let cross_replica_run = || match &pg {
        Some(base) => rt.block_on(async {
            let url = fresh_pg_database(base, "replicas").await;
            let run = cross_replica(&url, CROSS_REPLICA_SAMPLES).await;
            drop_pg_databases(base).await;
            Some(run)
        }),
        None => {
            eprintln!("SHOMEI_TEST_DATABASE_URL not set: the cross-replica row is skipped");
            None
        }
    };
    if std::env::args().skip(1).any(|a| a == "cross-replica") {
        print_cross_replica(cross_replica_run().as_ref());
        println!("load average at the end: {}", load_average());
        return;
    }
    let signs = s.runs("sign");
    let (raw_all, raw_one) = if signs {
        (raw_rsa(cores, s.secs), raw_rsa(1, s.secs.min(Duration::from_secs(3))))
    } else {
        (f64::NAN, f64::NAN)
    };
    let runs: Vec<StoreRun> = rt.block_on(async {
        let mut runs = vec![run_store("SQLite", None, &s).await];
        match &pg {
            Some(base) => {
                let url = fresh_pg_database(base, "server").await;
                runs.push(run_store("PostgreSQL", Some(url), &s).await);
                drop_pg_databases(base).await;
            }
            None => eprintln!("SHOMEI_TEST_DATABASE_URL not set: PostgreSQL rows skipped"),
        }
        runs
    });
    // Raw RSA again after the HTTP phases: the machine's load may have changed meanwhile.
    let raw_all_after = if signs { raw_rsa(cores, s.secs) } else { f64::NAN };
    let raw = (raw_all + raw_all_after) / 2.0;
    print_store_runs(&s, &runs, cores, (raw_all, raw_all_after, raw, raw_one));
    if s.only.is_some() {
        println!("load average at the end: {}", load_average());
        return;
    }
    print_signing_log(&log_runs());
    print_cross_replica(cross_replica_run().as_ref());
    println!("load average at the end: {}", load_average());
}

/// Rows 1–4 (those that ran).
fn print_store_runs(s: &Settings, runs: &[StoreRun], cores: usize, (raw_all, raw_all_after, raw, raw_one): (f64, f64, f64, f64)) {
    if s.runs("sign") {
        print_signing(s, runs, cores, (raw_all, raw_all_after, raw, raw_one));
    }
    if s.runs("logins") {
        print_logins(runs);
    }
    if s.runs("delays") {
        print_delays(runs);
    }
    if s.runs("waiting") {
        print_waiting(s, runs);
    }
}

fn print_signing(s: &Settings, runs: &[StoreRun], cores: usize, (raw_all, raw_all_after, raw, raw_one): (f64, f64, f64, f64)) {
    println!(
        "## Signing: raw aws-lc-rs RSA-2048 vs signHash over HTTP (one hash per call, {} workers)",
        s.concurrency
    );
    println!();
    println!(
        "raw aws-lc-rs, {cores} threads: {raw_all:.0}/s before, {raw_all_after:.0}/s after (mean {raw:.0}/s); 1 thread: {raw_one:.0}/s ({:.3} ms CPU per signature)",
        1000.0 / raw_one
    );
    println!();
    println!(
        "| store | signHash/s | of raw (all cores, next to the phase) | of raw (whole run's mean) | server CPU per signHash | raw CPU per signature / server CPU per signHash | load generator CPU per signHash | records per group commit | commit time | failed | load average after |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let (sig, per_s) = (&r.signing, r.signing.per_s());
        let server_cpu = sig.per_call_ms(sig.process_cpu);
        println!(
            "| {} | {:.0} | {} | {} | {:.3} ms | {} | {:.3} ms | {:.1} | {:.2} ms | {}{} | {} |",
            r.name,
            per_s,
            pct(per_s, r.raw_adjacent_mean()),
            pct(per_s, raw),
            server_cpu,
            pct(1000.0 / r.raw_one_adjacent, server_cpu),
            sig.per_call_ms(sig.client_cpu),
            r.records_per_commit,
            r.commit_ms,
            sig.failed,
            sig.error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            r.load_after_sign
        );
    }
    println!();
    // The ceiling: HTTP, JSON and RSA with nothing of Shomei's, under the
    // same load. Its distance from raw is what serving over loopback on
    // the signing cores costs; signHash's distance from it is Shomei's own
    // work (authentication, grant checks, the committed record).
    println!("The ceiling: a bare signer (the same HTTP/1 stack, JSON and aws-lc-rs, no authentication, no store) under the same load, in {SLICES} slices alternating with signHash's ({:.2}s each, a fifth of it warm-up):", (s.secs / SLICES).as_secs_f64());
    println!();
    println!("| store phase | bare calls/s | of raw (next to the phase) | signHash ÷ bare | bare server CPU per call | of it beyond RSA | load generator CPU per call | idle per call | failed |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let b = &r.bare;
        let bare_cpu = b.per_call_ms(b.process_cpu);
        println!(
            "| {} | {:.0} | {} | {} | {:.3} ms | {:.3} ms | {:.3} ms | {:.3} ms | {}{} |",
            r.name,
            b.per_s(),
            pct(b.per_s(), r.raw_adjacent_mean()),
            pct(r.signing.per_s(), b.per_s()),
            bare_cpu,
            bare_cpu - 1000.0 / r.raw_one_adjacent,
            b.per_call_ms(b.client_cpu),
            b.per_call_ms(b.machine.idle),
            b.failed,
            b.error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
        );
    }
    println!();
    println!("Raw RSA next to each phase ({}s each; the server, the bare signer and PostgreSQL idle meanwhile):", RAW_ADJACENT.as_secs());
    println!();
    println!("| store | {cores} threads before | {cores} threads after | mean | 1 thread before | server + bare signer + PostgreSQL CPU meanwhile |");
    println!("|---|---|---|---|---|---|");
    for r in runs {
        let (b, a) = r.raw_adjacent;
        println!(
            "| {} | {b:.0}/s | {a:.0}/s | {:.0}/s | {:.0}/s ({:.3} ms per signature) | {:.0} ms over {}s |",
            r.name,
            r.raw_adjacent_mean(),
            r.raw_one_adjacent,
            1000.0 / r.raw_one_adjacent,
            r.raw_adjacent_disturbance_secs * 1000.0,
            RAW_ADJACENT.as_secs() * 3
        );
    }
    println!();
    // The ratio above, taken apart: raw signing is nothing but RSA on
    // every core, so whatever else the cores did during the phase is
    // what signHash lacks of it. Measured from /proc, not sampled.
    println!("Where the {cores} cores went during signHash (ms of core time per signHash, share of all; RSA at the one-thread cost measured next to the phase):");
    println!();
    println!(
        "| store | all | RSA (one thread's raw cost) | server, beyond RSA | load generator | PostgreSQL | idle | stolen by the hypervisor | other (kernel threads, I/O) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let raw_ms = 1000.0 / r.raw_one_adjacent;
        let sig = &r.signing;
        let ms = |secs: f64| sig.per_call_ms(secs);
        let all = ms(sig.machine.total);
        let part = |ms: f64| format!("{ms:.3} ({})", pct(ms, all));
        let (server, client, postgres, idle, steal) =
            (ms(sig.process_cpu), ms(sig.client_cpu), ms(sig.postgres_cpu), ms(sig.machine.idle), ms(sig.machine.steal));
        println!(
            "| {} | {all:.3} | {} | {} | {} | {} | {} | {} | {} |",
            r.name,
            part(raw_ms),
            part(server - raw_ms),
            part(client),
            part(postgres),
            part(idle),
            part(steal),
            part(all - server - client - postgres - idle - steal)
        );
    }
    println!();
}

fn print_logins(runs: &[StoreRun]) {
    println!("## Logins: raw store commits vs complete logins over HTTP (16 workers)");
    println!();
    println!(
        "| store | raw commits/s (audit append, own transaction) | complete logins/s | logins per raw commit | failed |"
    );
    println!("|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {}{} |",
            r.name,
            r.commits_per_s,
            r.logins_per_s,
            r.logins_per_s / r.commits_per_s,
            r.login_failed,
            r.login_error
                .as_ref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
    }
    println!();
}

fn print_delays(runs: &[StoreRun]) {
    println!(
        "## Decision → waiting terminal (ms; after the phone's decision response, negative = the event came first)"
    );
    println!();
    println!(
        "| store | samples | SSE p50 | SSE p99 | long-poll p50 | long-poll p99 | SSE p99 after the decision was sent |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.name,
            r.sse_ms.len().min(r.poll_ms.len()),
            percentile(&r.sse_ms, 0.5),
            percentile(&r.sse_ms, 0.99),
            percentile(&r.poll_ms, 0.5),
            percentile(&r.poll_ms, 0.99),
            percentile(&r.sse_ms_from_send, 0.99),
        );
    }
    println!();
}

fn print_waiting(s: &Settings, runs: &[StoreRun]) {
    println!("## Many terminals waiting (half SSE, half long-poll)");
    println!();
    println!(
        "| store | waiting | server RSS idle | RSS while waiting | peak RSS (HWM) | server CPU while they wait |"
    );
    println!("|---|---|---|---|---|---|");
    for r in runs {
        println!(
            "| {} | {}/{} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.0} % of one core |",
            r.name,
            r.waiting,
            s.waiters,
            r.rss_idle_mib,
            r.rss_waiting_mib,
            r.hwm_mib,
            r.waiter_cpu_pct
        );
    }
    println!();
}
