//! Starting the service: data directory, key-encryption key, operator
//! token, store, the public listener and the separate (loopback by
//! default) operator listener, demo seed, readiness files, graceful
//! shutdown.

use std::future::IntoFuture as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use shomei_core::Origin;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use zeroize::Zeroizing;

use crate::config::ServeConfig;
use crate::http::{HttpState, admin_router, router};
use crate::service::{App, random_bytes};
use crate::signing::{Kek, Pkcs11Backend, Pkcs11Token, SigningBackend, SoftwareBackend};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "data directory {path} is writable by group/other (mode {mode:o}); use a private directory (chmod 700) — it is not changed for you"
    )]
    UnsafeDataDir { path: PathBuf, mode: u32 },
    #[error("operator token file {path} is readable by group/other (mode {mode:o}); chmod 600 it")]
    InsecureTokenFile { path: PathBuf, mode: u32 },
    #[error(
        "operator token from {source_name} is too weak: it must carry at least 32 random bytes (base64url ≥ 43 characters or hex ≥ 64), e.g. `openssl rand -hex 32`"
    )]
    WeakOperatorToken { source_name: String },
    #[error("key-encryption key: {0}")]
    Kek(#[from] crate::signing::SigningError),
    #[error("PKCS#11 token ([pkcs11] in the config): {0}")]
    Pkcs11(crate::signing::SigningError),
    #[error("operator token file {path}: {source}")]
    Token { path: PathBuf, source: std::io::Error },
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("origin: {0}")]
    Origin(String),
    #[error("demo seed: {0}")]
    Demo(#[from] crate::service::Error),
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
    /// Where the operator API listens (never the public listener).
    pub admin_addr: SocketAddr,
    pub admin_base_url: String,
    pub app: Arc<App>,
    pub operator_token: String,
    /// Demo seed output (terminal credentials, enrollment), if seeded.
    pub demo: Option<crate::demo::DemoSeed>,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, finishes in-flight requests, returns.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.task.await.map_err(|e| ServeError::Serve(std::io::Error::other(e)))?.map_err(ServeError::Serve)
    }

    /// Waits until the server stops (after SIGTERM / ctrl-c).
    pub async fn wait(mut self) -> Result<(), ServeError> {
        let _keep = self.shutdown.take();
        (&mut self.task).await.map_err(|e| ServeError::Serve(std::io::Error::other(e)))?.map_err(ServeError::Serve)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn write_atomic(path: &Path, contents: &str) -> Result<(), ServeError> {
    let tmp = path.with_extension("tmp");
    let err = |source| ServeError::Write { path: path.to_owned(), source };
    std::fs::write(&tmp, contents).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// At least 32 bytes in base64url/base64 or hex: a token an operator made
/// up ("admin", a short password) is refused rather than guessed later.
fn token_is_strong(t: &str) -> bool {
    use base64::Engine as _;
    let bytes = if t.len() >= 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(t).map(|b| b.len()).unwrap_or(0)
    } else {
        shomei_core::api::b64u::decode(t)
            .map(|b| b.len())
            .or_else(|_| {
                base64::engine::general_purpose::STANDARD
                    .decode(t)
                    .map(|b| b.len())
            })
            .unwrap_or(0)
    };
    // Distinct symbols: 43 copies of one character decode fine but are not random.
    let distinct = t.bytes().collect::<std::collections::BTreeSet<_>>().len();
    bytes >= 32 && distinct >= 8
}

/// `operator.token` in the data dir (0600), created on first start, unless
/// `SHOMEI_OPERATOR_TOKEN` is set. Weak tokens and a token file readable by
/// group/other are refused (like the KEK).
fn operator_token(data_dir: &Path) -> Result<Zeroizing<String>, ServeError> {
    if let Ok(t) = std::env::var("SHOMEI_OPERATOR_TOKEN")
        && !t.trim().is_empty()
    {
        let t = Zeroizing::new(t.trim().to_owned());
        if !token_is_strong(&t) {
            return Err(ServeError::WeakOperatorToken {
                source_name: "SHOMEI_OPERATOR_TOKEN".into(),
            });
        }
        return Ok(t);
    }
    let path = data_dir.join("operator.token");
    let err = |source| ServeError::Token { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(t) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).map_err(err)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(ServeError::InsecureTokenFile { path, mode });
                }
            }
            let t = Zeroizing::new(t.trim().to_owned());
            if !token_is_strong(&t) {
                return Err(ServeError::WeakOperatorToken {
                    source_name: path.display().to_string(),
                });
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = shomei_core::api::b64u::encode(&random_bytes::<32>());
            write_private(&path, format!("{t}\n").as_bytes()).map_err(err)?;
            Ok(Zeroizing::new(t))
        }
        Err(e) => Err(err(e)),
    }
}

/// Creates the data directory (0700), or checks an existing one: a
/// directory group or other can write (e.g. /tmp) is refused, never
/// chmod'ed, because changing a shared directory would break its other
/// users and anyone who can write there could swap the KEK or the token.
fn open_data_dir(path: &Path) -> Result<(), ServeError> {
    let err = |source| ServeError::DataDir {
        path: path.to_owned(),
        source,
    };
    match std::fs::metadata(path) {
        Ok(m) if !m.is_dir() => Err(err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "exists and is not a directory",
        ))),
        Ok(_m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = _m.permissions().mode() & 0o7777;
                if mode & 0o022 != 0 {
                    return Err(ServeError::UnsafeDataDir {
                        path: path.to_owned(),
                        mode,
                    });
                }
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut b = std::fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt;
                b.mode(0o700);
            }
            b.create(path).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

async fn shutdown_signal(stop: oneshot::Receiver<()>, all: watch::Sender<bool>) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
        _ = stop => {},
    }
    tracing::info!("shutting down");
    let _ = all.send(true);
}

/// Runs [`App::sweep`] every [`SWEEP_EVERY`](crate::service::sweep::SWEEP_EVERY) until shutdown.
async fn sweep_periodically(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(crate::service::sweep::SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match app.sweep().await {
            Ok(r) if !r.logins.is_empty() || !r.enrollments.is_empty() => {
                tracing::info!(
                    logins = r.logins.len(),
                    enrollments = r.enrollments.len(),
                    "swept expired logins and enrollment codes"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sweep failed; retrying at the next tick"),
        }
    }
}

/// Wakes terminals waiting on logins decided elsewhere (another replica on
/// the same PostgreSQL database): one re-check of all waited logins every
/// `every`, instead of each waiter re-reading its own. Without a change
/// feed (SQLite) that is [`RECHECK`](crate::service::waiters::RECHECK);
/// with one (PostgreSQL, see [`crate::service::replicas`]) it is only the
/// backstop, and what it wakes is counted as missed notices.
async fn recheck_waiters_periodically(app: Arc<App>, every: std::time::Duration, backstop: bool, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match app.waiters.recheck(app.store.as_ref()).await {
            Ok(woken) if backstop && woken > 0 => {
                app.metrics.replica_backstop_wakes(woken as u64);
                tracing::warn!(woken, "the backstop re-read woke terminals no change notice had woken");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "re-checking waited logins failed; retrying at the next tick"),
        }
    }
}

fn no_delay(tcp: &mut tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set");
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Default name of the audit checkpoint file in the data directory.
pub const CHECKPOINT_FILE_NAME: &str = "audit-checkpoints.jsonl";

/// Signs an audit checkpoint every `every` while the log grows; ends when
/// the app is dropped.
fn spawn_checkpoints(app: &Arc<App>, every: std::time::Duration) {
    let app = Arc::downgrade(app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(app) = app.upgrade() else { break };
            if let Err(e) = app.audit_checkpoint_if_moved().await {
                tracing::error!(error = %e, "periodic audit checkpoint failed");
            }
        }
    });
}

/// Opens everything and starts serving in the background.
pub async fn start(cfg: ServeConfig) -> Result<Running, ServeError> {
    // Again here: embedders (and tests) may build a ServeConfig by hand.
    crate::config::validate_policy(&cfg.policy)?;
    // First: a bad certificate or key must leave nothing created or started.
    let tls = cfg.tls.as_ref().map(crate::tls::server_config).transpose()?;
    open_data_dir(&cfg.data_dir)?;
    let kek = match std::env::var("SHOMEI_KEK") {
        Ok(v) if !v.trim().is_empty() => Kek::from_base64(v.trim())?,
        _ => Kek::load_or_create(cfg.data_dir.join("kek"))?,
    };
    let kek = Arc::new(kek);
    // The token before anything listens: a wrong module, label or PIN
    // stops startup with its own message.
    let hsm = match cfg.pkcs11.clone() {
        Some(p) => {
            let token = tokio::task::spawn_blocking(move || Pkcs11Token::open(&p))
                .await
                .map_err(|e| ServeError::Pkcs11(crate::signing::SigningError::Token(e.to_string())))?
                .map_err(ServeError::Pkcs11)?;
            tracing::info!(token = token.label(), "PKCS#11 token open and logged in");
            Some(Arc::new(token))
        }
        None => None,
    };
    let token = operator_token(&cfg.data_dir)?;
    let db = match &cfg.database_url {
        Some(u) => u.clone(),
        None => cfg.data_dir.join("shomei.db").display().to_string(),
    };
    let store = crate::store::open(&db).await?;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let admin_listener = TcpListener::bind(cfg.admin_listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.admin_listen,
            source,
        })?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|source| ServeError::Bind {
            addr: cfg.admin_listen,
            source,
        })?;
    let admin_base_url = format!("http://{admin_addr}");
    // With --tls-cert the public listener speaks HTTPS; the operator
    // listener stays plain HTTP on loopback (docs/operations.md).
    let scheme = if tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{addr}");
    let origin = match &cfg.public_origin {
        Some(o) => o.clone(),
        None => {
            let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
            let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
            Origin::parse(&format!("{scheme}://{host}:{}", addr.port())).map_err(|e| ServeError::Origin(e.to_string()))?
        }
    };
    let software = SoftwareBackend::new(kek.clone());
    let backend: Arc<dyn SigningBackend> = match hsm {
        Some(token) => Arc::new(Pkcs11Backend::new(token, software)),
        None => Arc::new(software),
    };
    let app = App::new(store, cfg.policy.clone(), origin, kek, backend);
    app.checkpoints.set_file(cfg.audit.checkpoint_file.clone().unwrap_or_else(|| cfg.data_dir.join(CHECKPOINT_FILE_NAME)));
    if cfg.audit.checkpoint_interval_s > 0 {
        spawn_checkpoints(&app, std::time::Duration::from_secs(cfg.audit.checkpoint_interval_s));
    }
    let demo = if cfg.demo {
        crate::demo::seed(&app).await?
    } else {
        None
    };
    // With --demo the page is mounted even when the store has no demo
    // terminal (it then says so); it acts for the seeded terminal only.
    let demo_step = if cfg.demo { Some(Arc::new(crate::demo::Demo::new(&app).await?)) } else { None };
    let state = HttpState {
        app: app.clone(),
        operator_token: Arc::new(token.clone()),
        demo: demo_step,
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let (all_tx, all_rx) = watch::channel(false);
    tokio::spawn(shutdown_signal(stop_rx, all_tx));
    // (served by http::connection: waiting requests off hyper's buffers)
    let public = router(state.clone());
    let admin = admin_router(state).into_make_service_with_connect_info::<SocketAddr>();
    let admin_stop = all_rx.clone();
    tokio::spawn(sweep_periodically(app.clone(), all_rx.clone()));
    // Replicas on one PostgreSQL database hear of each other's changes at
    // once; the periodic re-read stays, slower, as the backstop.
    let (recheck_every, backstop) = match app.store.changes() {
        Some(feed) => {
            tokio::spawn(crate::service::replicas::follow_changes(app.clone(), feed, all_rx.clone()));
            (std::time::Duration::from_secs(cfg.replicas.recheck_interval_s), true)
        }
        None => (crate::service::waiters::RECHECK, false),
    };
    tokio::spawn(recheck_waiters_periodically(app.clone(), recheck_every, backstop, all_rx.clone()));
    let task = tokio::spawn(async move {
        // TCP_NODELAY: an SSE event is a small write after earlier small
        // writes; with Nagle's algorithm it waits for the peer's (delayed)
        // ACK of the previous one instead of leaving at once.
        let public: std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>> = match tls {
            Some(config) => {
                // (TCP_NODELAY is set before each handshake, in TlsListener)
                let tls_listener = crate::tls::TlsListener::new(listener, config)?;
                Box::pin(crate::http::connection::serve(tls_listener, public, stopped(all_rx)))
            }
            None => Box::pin(crate::http::connection::serve(listener.tap_io(no_delay), public, stopped(all_rx))),
        };
        let admin = axum::serve(admin_listener.tap_io(no_delay), admin).with_graceful_shutdown(stopped(admin_stop));
        let (a, b) = tokio::join!(public, admin.into_future());
        a.and(b)
    });
    let url = app.origin.as_str().to_owned();
    write_atomic(&cfg.data_dir.join("server.url"), &format!("{base_url}\n"))?;
    write_atomic(
        &cfg.data_dir.join("admin.url"),
        &format!("{admin_base_url}\n"),
    )?;
    if let Some(r) = &cfg.ready_file {
        write_atomic(r, &format!("{base_url}\n"))?;
    }
    tracing::info!(%addr, %admin_addr, origin = %url, backend = app.store.backend(), attestation = %app.policy.attestation.summary(), "listening");
    Ok(Running { addr, base_url, admin_addr, admin_base_url, app, operator_token: token.to_string(), demo, shutdown: Some(stop_tx), task })
}
