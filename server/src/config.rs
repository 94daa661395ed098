//! Effective configuration of `shomei serve`: flags > environment
//! (`SHOMEI_*`, handled by clap) > TOML file > defaults. Bad values stop
//! the server with a typed error before anything is opened.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::service::Policy;
use crate::signing::Pkcs11Config;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";
/// Default address of the operator (admin) API: loopback only, never the
/// public listener. When the public port is 0 (tests) the default admin
/// port is 0 too, so parallel servers never collide.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8701";
/// Name of the optional config file inside the data directory.
pub const CONFIG_FILE_NAME: &str = "shomei.toml";

/// What can be wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is invalid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("listen address {0:?} is not host:port")]
    Listen(String),
    #[error("admin listen address {0:?} is not host:port")]
    AdminListen(String),
    #[error("admin API and public API cannot share {0}")]
    AdminSharesPublic(SocketAddr),
    #[error("public origin {value:?} is invalid: {message}")]
    Origin { value: String, message: String },
    #[error("policy: {0}")]
    Policy(String),
    #[error("audit: {0}")]
    Audit(String),
    #[error("replicas: {0}")]
    Replicas(String),
    #[error("pkcs11: {0}")]
    Pkcs11(String),
    #[error("TLS needs both a certificate and a key: {0} is given without {1}")]
    TlsPair(&'static str, &'static str),
}

/// How `serve` writes its log lines (stderr).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (tracing's default formatter).
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON formatter), for log shippers.
    Json,
}

/// `--tls-cert` / `--tls-key`: PEM files the listeners serve HTTPS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM: PKCS#8, PKCS#1 or SEC1); must not be
    /// readable by group or other.
    pub key: PathBuf,
}

/// The TOML file (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub database_url: Option<String>,
    pub public_origin: Option<String>,
    pub demo: Option<bool>,
    #[serde(default)]
    pub policy: Option<Policy>,
    #[serde(default)]
    pub audit: Option<AuditConfig>,
    /// `[replicas]`: several replicas on one PostgreSQL database.
    #[serde(default)]
    pub replicas: Option<ReplicasConfig>,
    /// `text` (default) or `json`.
    pub log_format: Option<LogFormat>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `[pkcs11]`: new practitioner keys are generated inside this token.
    #[serde(default)]
    pub pkcs11: Option<Pkcs11Config>,
}

/// `[audit]`: signed checkpoints of the audit chain, kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// File the checkpoints are appended to, one JSON line each (default
    /// `<data-dir>/audit-checkpoints.jsonl`; point it at storage the database
    /// writer cannot change, e.g. another host's mount or a WORM bucket sync).
    pub checkpoint_file: Option<PathBuf>,
    /// Seconds between periodic checkpoints (written only when the log
    /// grew); 0 turns them off. Default 3600.
    pub checkpoint_interval_s: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { checkpoint_file: None, checkpoint_interval_s: 3600 }
    }
}

/// `[replicas]`: several `serve` processes on one PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicasConfig {
    /// Seconds between the backstop re-reads of every waited login on
    /// PostgreSQL, where LISTEN/NOTIFY wakes terminals at once and a re-read
    /// follows every listener reconnect (1..=86400, default 30). SQLite,
    /// with no other writer, keeps its 2 s re-check.
    pub recheck_interval_s: u64,
}

impl Default for ReplicasConfig {
    fn default() -> Self {
        ReplicasConfig { recheck_interval_s: 30 }
    }
}

impl FileConfig {
    /// Reads `path`; a missing default file is not an error, an explicit one is.
    pub fn load(path: &Path, required: bool) -> Result<FileConfig, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(FileConfig::default()),
            Err(source) => Err(ConfigError::Read { path: path.to_owned(), source }),
        }
    }
}

/// Values given on the command line or in the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub database_url: Option<String>,
    pub public_origin: Option<String>,
    pub demo: bool,
    pub config: Option<PathBuf>,
    pub ready_file: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The operator API's own listener (default loopback).
    pub admin_listen: SocketAddr,
    /// `None`: SQLite file `shomei.db` in the data directory.
    pub database_url: Option<String>,
    pub public_origin: Option<shomei_core::Origin>,
    pub demo: bool,
    pub ready_file: Option<PathBuf>,
    pub policy: Policy,
    pub audit: AuditConfig,
    pub replicas: ReplicasConfig,
    pub log_format: LogFormat,
    /// HTTPS on both listeners when set; plain HTTP otherwise.
    pub tls: Option<TlsFiles>,
    /// The PKCS#11 token practitioner keys are generated and used in
    /// (docs/operations.md, "Keys in an HSM"); `None`: software keys only.
    pub pkcs11: Option<Pkcs11Config>,
}

impl ServeConfig {
    /// Merges overrides, the config file and defaults, and validates.
    pub fn resolve(o: Overrides) -> Result<ServeConfig, ConfigError> {
        let data_dir = o.data_dir.clone().unwrap_or_else(|| PathBuf::from("shomei-data"));
        let file = match &o.config {
            Some(p) => FileConfig::load(p, true)?,
            None => FileConfig::load(&data_dir.join(CONFIG_FILE_NAME), false)?,
        };
        let listen_text = o
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .map_err(|_| ConfigError::Listen(listen_text.clone()))?;
        let admin_text = o.admin_listen.or(file.admin_listen).unwrap_or_else(|| {
            if listen.port() == 0 {
                "127.0.0.1:0".to_owned()
            } else {
                DEFAULT_ADMIN_LISTEN.to_owned()
            }
        });
        let admin_listen: SocketAddr = admin_text
            .parse()
            .map_err(|_| ConfigError::AdminListen(admin_text.clone()))?;
        if admin_listen.port() != 0
            && admin_listen.port() == listen.port()
            && (admin_listen.ip() == listen.ip()
                || admin_listen.ip().is_unspecified()
                || listen.ip().is_unspecified())
        {
            return Err(ConfigError::AdminSharesPublic(admin_listen));
        }
        let public_origin = match o.public_origin.or(file.public_origin) {
            Some(v) => Some(shomei_core::Origin::parse(&v).map_err(|e| ConfigError::Origin { value: v.clone(), message: e.to_string() })?),
            None => None,
        };
        let mut policy = file.policy.unwrap_or_default();
        validate_policy(&policy)?;
        policy.attestation.load().map_err(ConfigError::Policy)?;
        let audit = file.audit.unwrap_or_default();
        if audit.checkpoint_interval_s > 7 * 24 * 3600 {
            return Err(ConfigError::Audit("checkpoint_interval_s must be 0 (off) ..= 604800".into()));
        }
        let replicas = file.replicas.unwrap_or_default();
        if !(1..=86_400).contains(&replicas.recheck_interval_s) {
            return Err(ConfigError::Replicas("recheck_interval_s must be 1..=86400".into()));
        }
        let tls = match (o.tls_cert.or(file.tls_cert), o.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::TlsPair("tls_cert", "tls_key")),
            (None, Some(_)) => return Err(ConfigError::TlsPair("tls_key", "tls_cert")),
        };
        if let Some(p) = &file.pkcs11 {
            p.validate().map_err(ConfigError::Pkcs11)?;
        }
        Ok(ServeConfig {
            pkcs11: file.pkcs11,
            log_format: o.log_format.or(file.log_format).unwrap_or_default(),
            tls,
            data_dir,
            listen,
            admin_listen,
            database_url: o
                .database_url
                .or(file.database_url)
                .filter(|s| !s.is_empty()),
            public_origin,
            demo: o.demo || file.demo.unwrap_or(false),
            ready_file: o.ready_file,
            policy,
            audit,
            replicas,
        })
    }
}

/// Largest signature cap accepted (a day of signing is far below it).
pub const MAX_SIGNATURE_CAP: i64 = 1_000_000;
/// Most wrong activation passwords a policy may allow.
pub const MAX_ENROLLMENT_ATTEMPTS: i64 = 20;

/// Rejects policies outside the limits the protocol promises, so no value
/// can overflow the millisecond arithmetic later (each bound is stated in
/// the error and in docs/operations.md).
pub fn validate_policy(p: &Policy) -> Result<(), ConfigError> {
    let bad = |m: &str| Err(ConfigError::Policy(m.to_owned()));
    if p.grant_ttl_s <= 0 || p.grant_ttl_s > 24 * 3600 {
        return bad("grant_ttl_s must be 1..=86400");
    }
    if p.cutoff_hour_jst.is_some_and(|h| h > 23) {
        return bad("cutoff_hour_jst must be 0..=23");
    }
    if p.idle_timeout_s.is_some_and(|s| s <= 0 || s > 24 * 3600) {
        return bad("idle_timeout_s must be 1..=86400");
    }
    if p.signature_cap
        .is_some_and(|c| c <= 0 || c > MAX_SIGNATURE_CAP)
    {
        return bad("signature_cap must be 1..=1000000");
    }
    if p.login_ttl_s <= 0 || p.login_ttl_s > 120 {
        return bad("login_ttl_s must be 1..=120");
    }
    if p.poll_interval_s <= 0 || p.poll_interval_s > 60 {
        return bad("poll_interval_s must be 1..=60");
    }
    if p.enrollment_max_ttl_s <= 0 || p.enrollment_max_ttl_s > 600 {
        return bad("enrollment_max_ttl_s must be 1..=600");
    }
    if p.enrollment_max_attempts <= 0 || p.enrollment_max_attempts > MAX_ENROLLMENT_ATTEMPTS {
        return bad("enrollment_max_attempts must be 1..=20");
    }
    Ok(())
}
