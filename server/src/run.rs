//! Starting the service: data directory, key-encryption key, operator
//! token, store, listener, demo seed, readiness files, graceful shutdown.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use shomei_core::Origin;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::config::ServeConfig;
use crate::http::{DemoTerminal, HttpState, router};
use crate::service::{App, random_bytes};
use crate::signing::{Kek, SoftwareBackend};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("key-encryption key: {0}")]
    Kek(#[from] crate::signing::SigningError),
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
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub base_url: String,
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

/// `operator.token` in the data dir (0600), created on first start, unless
/// `SHOMEI_OPERATOR_TOKEN` is set.
fn operator_token(data_dir: &Path) -> Result<Zeroizing<String>, ServeError> {
    if let Ok(t) = std::env::var("SHOMEI_OPERATOR_TOKEN") {
        if !t.trim().is_empty() {
            return Ok(Zeroizing::new(t.trim().to_owned()));
        }
    }
    let path = data_dir.join("operator.token");
    let err = |source| ServeError::Token { path: path.clone(), source };
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Zeroizing::new(t.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let t = shomei_core::api::b64u::encode(&random_bytes::<32>());
            write_private(&path, format!("{t}\n").as_bytes()).map_err(err)?;
            Ok(Zeroizing::new(t))
        }
        Err(e) => Err(err(e)),
    }
}

fn create_dir(path: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(path).map_err(|source| ServeError::DataDir { path: path.to_owned(), source })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(|source| ServeError::DataDir { path: path.to_owned(), source })?;
    }
    Ok(())
}

async fn shutdown_signal(stop: oneshot::Receiver<()>) {
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
    create_dir(&cfg.data_dir)?;
    let kek = match std::env::var("SHOMEI_KEK") {
        Ok(v) if !v.trim().is_empty() => Kek::from_base64(v.trim())?,
        _ => Kek::load_or_create(cfg.data_dir.join("kek"))?,
    };
    let kek = Arc::new(kek);
    let token = operator_token(&cfg.data_dir)?;
    let db = match &cfg.database_url {
        Some(u) => u.clone(),
        None => cfg.data_dir.join("shomei.db").display().to_string(),
    };
    let store = crate::store::open(&db).await?;
    let listener = TcpListener::bind(cfg.listen).await.map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind { addr: cfg.listen, source })?;
    let base_url = format!("http://{addr}");
    let origin = match &cfg.public_origin {
        Some(o) => o.clone(),
        None => {
            let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
            let host = if addr.is_ipv6() && !addr.ip().is_unspecified() { format!("[{host}]") } else { host };
            Origin::parse(&format!("http://{host}:{}", addr.port())).map_err(|e| ServeError::Origin(e.to_string()))?
        }
    };
    let backend = Arc::new(SoftwareBackend::new(kek.clone()));
    let app = App::new(store, cfg.policy.clone(), origin, kek, backend);
    app.checkpoints.set_file(cfg.audit.checkpoint_file.clone().unwrap_or_else(|| cfg.data_dir.join(CHECKPOINT_FILE_NAME)));
    if cfg.audit.checkpoint_interval_s > 0 {
        spawn_checkpoints(&app, std::time::Duration::from_secs(cfg.audit.checkpoint_interval_s));
    }
    let demo = if cfg.demo { crate::demo::seed(&app).await? } else { None };
    let demo_terminal = if cfg.demo {
        crate::demo::demo_terminal(&app, demo.as_ref()).await?
    } else {
        None
    };
    let state = HttpState { app: app.clone(), operator_token: Arc::new(token.clone()), demo: demo_terminal.map(|(id, secret)| DemoTerminal { client_id: id, client_secret: secret }) };
    let (stop_tx, stop_rx) = oneshot::channel();
    let svc = router(state);
    let task = tokio::spawn(async move { axum::serve(listener, svc).with_graceful_shutdown(shutdown_signal(stop_rx)).await });
    let url = app.origin.as_str().to_owned();
    write_atomic(&cfg.data_dir.join("server.url"), &format!("{base_url}\n"))?;
    if let Some(r) = &cfg.ready_file {
        write_atomic(r, &format!("{base_url}\n"))?;
    }
    tracing::info!(%addr, origin = %url, backend = app.store.backend(), attestation = %app.policy.attestation.summary(), "listening");
    Ok(Running { addr, base_url, app, operator_token: token.to_string(), demo, shutdown: Some(stop_tx), task })
}
