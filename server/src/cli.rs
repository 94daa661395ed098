//! The `shomei` command line: `serve`, and `admin …` which talks to a
//! running server over `/admin/v1/*` on its separate (loopback) operator
//! listener (so the CLI works the same against a
//! local SQLite server and a PostgreSQL cluster).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::config::{Overrides, ServeConfig};

#[derive(Debug, Parser)]
#[command(
    name = "shomei",
    version,
    about = "Shomei remote-signing server and operator CLI"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Operate a running server (over its admin API).
    Admin(AdminArgs),
    /// Platform attestation tools (offline; no server needed).
    #[command(subcommand)]
    Attestation(AttestationCmd),
}

#[derive(Debug, Subcommand)]
pub enum AttestationCmd {
    /// Verify a phone's attestation and print the verified facts or the refusal
    /// reason (exit status 1 on refusal, 2 on bad arguments).
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("format").required(true).args(["android", "apple"])))]
pub struct VerifyArgs {
    /// Android: PEM file with the KeyStore certificate chain, leaf first.
    #[arg(long, value_name = "CHAIN.pem")]
    pub android: Option<PathBuf>,
    /// iOS: file with the App Attest attestation object, base64.
    #[arg(long, value_name = "OBJECT.b64", requires_all = ["key_id", "app_id"])]
    pub apple: Option<PathBuf>,
    /// iOS: the App Attest key id, base64.
    #[arg(long, value_name = "B64")]
    pub key_id: Option<String>,
    /// iOS: the app id "TEAMID.bundle.id" the object must be for.
    #[arg(long, value_name = "ID")]
    pub app_id: Option<String>,
    /// Android: the attestation challenge. iOS: the clientDataHash given to attestKey,
    /// or, with --device-key, the enrollment's attestation challenge (docs/protocol.md §3.3).
    #[arg(long, value_name = "B64")]
    pub challenge_b64: String,
    /// The enrolled device key (SEC1 uncompressed, base64). Android: must be the attested
    /// key. iOS: clientDataHash is derived from the challenge and this key.
    #[arg(long, value_name = "B64")]
    pub device_key: Option<String>,
    /// Check certificate validity at this instant instead of now.
    #[arg(long, value_name = "RFC3339-TIME")]
    pub at: Option<String>,
    /// shomei.toml whose [policy.attestation] applies (default: the built-in defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// iOS: accept the development App Attest environment.
    #[arg(long)]
    pub allow_development: bool,
    /// Print the facts (or the refusal) as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Why `shomei attestation verify` did not print verified facts.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The attestation was refused (exit status 1).
    #[error("REFUSED: {0}")]
    Refused(crate::attestation::AttestationError),
    /// The arguments or files are unusable (exit status 2).
    #[error("{0}")]
    Usage(String),
}

/// Accepts standard or URL-safe base64, padded or not (Apple hands out standard base64).
fn lenient_b64(what: &str, s: &str) -> Result<Vec<u8>, VerifyError> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(&s).ok())
        .ok_or_else(|| VerifyError::Usage(format!("{what} is not base64")))
}

/// Runs `shomei attestation verify`; returns what to print on success.
pub fn attestation_verify(a: &VerifyArgs) -> Result<String, VerifyError> {
    use crate::attestation::{android_key, app_attest, chain};
    let usage = VerifyError::Usage;
    let mut policy = match &a.config {
        Some(p) => {
            crate::config::FileConfig::load(p, true)
                .map_err(|e| usage(e.to_string()))?
                .policy
                .unwrap_or_default()
                .attestation
        }
        None => crate::attestation::AttestationPolicy::default(),
    };
    // Only the roots and status list: an allow-list is not needed to inspect an attestation.
    policy.load_trust().map_err(usage)?;
    let now = match &a.at {
        Some(t) => time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
            .map_err(|e| usage(format!("--at {t:?} is not RFC 3339: {e}")))?
            .unix_timestamp(),
        None => time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let challenge = lenient_b64("--challenge-b64", &a.challenge_b64)?;
    let device_key = match &a.device_key {
        Some(k) => Some(
            shomei_core::DevicePublicKey::from_sec1(&lenient_b64("--device-key", k)?)
                .map_err(|e| usage(format!("--device-key: {e}")))?,
        ),
        None => None,
    };
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| usage(format!("{}: {e}", p.display())))
    };
    let (value, human) = if let Some(path) = &a.android {
        let mut certs = Vec::new();
        for p in x509_parser::pem::Pem::iter_from_buffer(read(path)?.as_bytes()) {
            certs.push(
                p.map_err(|e| usage(format!("{}: bad PEM: {e}", path.display())))?
                    .contents,
            );
        }
        let status = match &policy.android.status_file {
            Some(p) => Some(chain::StatusList::load(p).map_err(usage)?),
            None => None,
        };
        let facts = android_key::verify_android_key(
            &certs,
            &challenge,
            &policy.trust.android,
            chain::ValidityCheck::At(now),
            status.as_ref(),
        )
        .map_err(VerifyError::Refused)?;
        android_key::check_android_policy(&facts, device_key.as_ref(), &policy.android)
            .map_err(VerifyError::Refused)?;
        let rot = facts.root_of_trust.as_ref();
        let app = facts.app.as_ref();
        let opt = |v: Option<i64>| v.map(|x| x.to_string()).unwrap_or_else(|| "-".into());
        let human = [
            "VERIFIED android-key".to_owned(),
            format!(
                "  security level:   {} (KeyMint {})",
                facts.security_level.name(),
                facts.keymint_security_level.name()
            ),
            format!(
                "  key:              {} {}",
                facts.key_algorithm,
                facts.public_key.clone().unwrap_or_default()
            ),
            format!("  purposes:         {:?}", facts.purposes),
            format!(
                "  user auth:        required={} type={} timeout={}",
                facts.user_auth_required,
                opt(facts.user_auth_type),
                facts
                    .auth_timeout_s
                    .map(|s| format!("{s} s"))
                    .unwrap_or_else(|| "none (per use)".into())
            ),
            format!(
                "  boot:             {}",
                rot.map(|r| format!(
                    "{} device_locked={}",
                    r.verified_boot_state.name(),
                    r.device_locked
                ))
                .unwrap_or_else(|| "-".into())
            ),
            format!(
                "  app:              {}",
                app.map(|x| x
                    .packages
                    .iter()
                    .map(|p| format!("{} (v{})", p.name, p.version))
                    .collect::<Vec<_>>()
                    .join(", "))
                    .unwrap_or_else(|| "-".into())
            ),
            format!(
                "  app signers:      {}",
                app.map(|x| x.signing_cert_sha256.join(", "))
                    .unwrap_or_else(|| "-".into())
            ),
            format!(
                "  patch levels:     os={} vendor={} boot={} (os version {})",
                opt(facts.os_patch_level),
                opt(facts.vendor_patch_level),
                opt(facts.boot_patch_level),
                opt(facts.os_version)
            ),
            format!(
                "  chain:            {} certificates to {}; revocation {}",
                facts.chain_len,
                facts.root,
                if facts.revocation_checked {
                    "checked"
                } else {
                    "not checked (no status_file)"
                }
            ),
        ]
        .join("\n");
        (
            serde_json::to_value(&facts).expect("facts serialize"),
            human,
        )
    } else {
        let path = a
            .apple
            .as_ref()
            .expect("clap requires --android or --apple");
        let object = lenient_b64("the attestation object", &read(path)?)?;
        let key_id = lenient_b64("--key-id", a.key_id.as_deref().unwrap_or_default())?;
        let app_id = a.app_id.clone().unwrap_or_default();
        let cdh: Vec<u8> = match &device_key {
            Some(k) => {
                let c: [u8; 32] = challenge
                    .as_slice()
                    .try_into()
                    .map_err(|_| usage("--challenge-b64 must be 32 bytes".into()))?;
                shomei_core::attestation::client_data_hash(&c, k).to_vec()
            }
            None => challenge.clone(),
        };
        let apps = app_attest::AllowedApps::from_app_ids(&[app_id]);
        let facts = app_attest::verify_app_attest(
            &object,
            &key_id,
            &cdh,
            &apps,
            a.allow_development || policy.ios.allow_development,
            &policy.trust.apple,
            chain::ValidityCheck::At(now),
        )
        .map_err(VerifyError::Refused)?;
        let human = [
            "VERIFIED apple-appattest".to_owned(),
            format!("  app id:           {}", facts.app_id),
            format!("  environment:      {:?}", facts.environment),
            format!("  key id:           {}", facts.key_id),
            format!(
                "  credential cert:  serial {}",
                facts.credential_certificate_serial
            ),
            format!("  chain:            to {}", facts.root),
        ]
        .join("\n");
        (
            serde_json::to_value(&facts).expect("facts serialize"),
            human,
        )
    };
    if a.json {
        Ok(
            serde_json::to_string_pretty(&serde_json::json!({ "verified": true, "facts": value }))
                .expect("json"),
        )
    } else {
        Ok(human)
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (SQLite file, KEK, operator token, server.url).
    #[arg(long, env = "SHOMEI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address (port 0 picks a free port).
    #[arg(long, env = "SHOMEI_LISTEN")]
    pub listen: Option<String>,
    /// Listen address of the operator API (default 127.0.0.1:8701; port 0 when --listen has port 0).
    #[arg(long, env = "SHOMEI_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// postgres://… for PostgreSQL; default SQLite in the data directory.
    #[arg(long, env = "SHOMEI_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Origin phones see in QR codes (https://host[:port]); default http://127.0.0.1:PORT.
    #[arg(long, env = "SHOMEI_PUBLIC_ORIGIN")]
    pub public_origin: Option<String>,
    /// Seed demo data on an empty store and serve the /demo page with its terminal.
    #[arg(long, env = "SHOMEI_DEMO")]
    pub demo: bool,
    /// TOML config file (default: <data-dir>/shomei.toml when present).
    #[arg(long, env = "SHOMEI_CONFIG")]
    pub config: Option<PathBuf>,
    /// Write the base URL here once listening.
    #[arg(long, env = "SHOMEI_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// Log line format on stderr: text (default) or json (one object per line).
    #[arg(long, env = "SHOMEI_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs --tls-key.
    #[arg(long, env = "SHOMEI_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1; must not be readable by group/other).
    #[arg(long, env = "SHOMEI_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

impl ServeArgs {
    pub fn resolve(self) -> Result<ServeConfig, crate::config::ConfigError> {
        ServeConfig::resolve(Overrides {
            data_dir: self.data_dir,
            listen: self.listen,
            admin_listen: self.admin_listen,
            database_url: self.database_url,
            public_origin: self.public_origin,
            demo: self.demo,
            config: self.config,
            ready_file: self.ready_file,
            log_format: self.log_format,
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
        })
    }
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Base URL of the server's operator API (default: <data-dir>/admin.url).
    #[arg(long, env = "SHOMEI_SERVER", global = true)]
    pub server: Option<String>,
    /// Operator token (default: <data-dir>/operator.token).
    #[arg(
        long,
        env = "SHOMEI_OPERATOR_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Data directory of a local server, to find admin.url and operator.token.
    #[arg(long, env = "SHOMEI_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Print exactly the created/listed object as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Facilities.
    #[command(subcommand)]
    Facility(FacilityCmd),
    /// EHR terminals (OAuth clients).
    #[command(subcommand)]
    Terminal(TerminalCmd),
    /// Practitioners.
    #[command(subcommand)]
    Practitioner(PractitionerCmd),
    /// Signing credentials.
    #[command(subcommand)]
    Credential(CredentialCmd),
    /// One-time enrollment codes.
    #[command(subcommand)]
    Enrollment(EnrollmentCmd),
    /// Enrolled phones.
    #[command(subcommand)]
    Device(DeviceCmd),
    /// Signing grants.
    #[command(subcommand)]
    Grant(GrantCmd),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Evidence of phone decisions, checkable with OpenSSL alone.
    #[command(subcommand)]
    Evidence(EvidenceCmd),
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Write a login's decision evidence (message.bin, signature.der,
    /// device-public-key.pem, decision.json, README.txt) into a directory.
    Export {
        /// Login id (b64u, as in the device authorization response). A b64u id
        /// may begin with '-', so the value is never read as a flag.
        #[arg(long, allow_hyphen_values = true)]
        login: String,
        /// Directory to write (default: evidence-<login>).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FacilityCmd {
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum TerminalCmd {
    /// Prints client_id and client_secret (shown only once).
    Create {
        #[arg(long)]
        facility: String,
        #[arg(long)]
        name: String,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PractitionerCmd {
    Create {
        #[arg(long)]
        name: String,
        /// doctor | dentist | pharmacist
        #[arg(long)]
        role: String,
        /// Facility id (repeat for several).
        #[arg(long = "facility", required = true)]
        facilities: Vec<String>,
    },
    List,
}

#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Key + certificate from the built-in development CA (with hcRole).
    Generate {
        #[arg(long)]
        practitioner: String,
        /// rsa2048 | ecdsa-p256
        #[arg(long, default_value = "rsa2048")]
        algorithm: String,
        /// software | pkcs11 (generate inside the server's HSM token; the
        /// key never leaves it). Default: pkcs11 when the server has a
        /// `[pkcs11]` token, else software.
        #[arg(long)]
        key_store: Option<String>,
    },
    /// Import PEM key + certificate chain, or a PKCS#12 file.
    Import {
        #[arg(long)]
        practitioner: String,
        #[arg(long, requires = "cert", conflicts_with = "pkcs12")]
        key: Option<PathBuf>,
        #[arg(long)]
        cert: Option<PathBuf>,
        #[arg(long)]
        pkcs12: Option<PathBuf>,
        #[arg(long, env = "SHOMEI_PKCS12_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// With --cert alone: the hex CKA_ID of a key pair already on the
        /// server's PKCS#11 token that the certificate was issued for.
        #[arg(long, requires = "cert", conflicts_with_all = ["key", "pkcs12"])]
        pkcs11_key_id: Option<String>,
    },
    List {
        #[arg(long)]
        practitioner: Option<String>,
    },
    /// Stop a credential from signing (signHash/signDoc refuse with credential_revoked).
    Revoke {
        id: String,
        /// Why (kept in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum EnrollmentCmd {
    /// Prints the payload URL, activation password, expiry and the QR.
    Create {
        #[arg(long)]
        practitioner: String,
        /// Lifetime in seconds (≤ 600).
        #[arg(long, default_value_t = 600)]
        ttl: i64,
        /// Also write the QR as PNG.
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCmd {
    List {
        #[arg(long)]
        practitioner: Option<String>,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GrantCmd {
    List {
        #[arg(long)]
        practitioner: Option<String>,
        /// Only grants that can still sign.
        #[arg(long)]
        active: bool,
    },
    Revoke {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain, check it against signed checkpoints and
    /// reconcile every grant's signature counter; non-zero exit when anything fails.
    Verify {
        /// Checkpoint file (one checkpoint JSON, or the JSON lines the server appends).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Trust this audit public key (PEM from `audit key`) instead of the server's.
        #[arg(long, requires = "checkpoint")]
        key: Option<PathBuf>,
    },
    /// Sign a checkpoint of the current head now (also appended to the server's checkpoint file).
    Checkpoint {
        /// Also write the checkpoint JSON to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The audit public key (PEM) that checkpoints verify against.
    Key {
        /// Write the PEM to this file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// JSON lines on stdout.
    Export {
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no admin API URL: pass --server, set SHOMEI_SERVER, or --data-dir with an admin.url")]
    NoServer,
    #[error(
        "no operator token: pass --token, set SHOMEI_OPERATOR_TOKEN, or --data-dir with an operator.token"
    )]
    NoToken,
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server refused ({status}): {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("{0}")]
    Qr(String),
    #[error("audit verification failed: {0}")]
    AuditFailed(String),
    #[error("{0}")]
    BadInput(String),
}

fn read_trimmed(path: &Path) -> Result<Option<String>, AdminError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AdminError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(a: &AdminArgs) -> Result<Client, AdminError> {
        let dir = a
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("shomei-data"));
        let base = match &a.server {
            Some(s) => s.clone(),
            None => read_trimmed(&dir.join("admin.url"))?.ok_or(AdminError::NoServer)?,
        };
        let token = match &a.token {
            Some(t) => t.clone(),
            None => read_trimmed(&dir.join("operator.token"))?.ok_or(AdminError::NoToken)?,
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, AdminError> {
        let r = rb.bearer_auth(&self.token).send().await?;
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        Err(AdminError::Refused {
            status,
            code: v["code"].as_str().unwrap_or("unknown").to_owned(),
            detail: v["detail"].as_str().unwrap_or("").to_owned(),
        })
    }

    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, AdminError> {
        Ok(self
            .send(self.http.get(format!("{}{path}", self.base)).query(query))
            .await?
            .json()
            .await?)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, AdminError> {
        Ok(self
            .send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await?
            .json()
            .await?)
    }
}

fn opt(name: &'static str, v: &Option<String>) -> Vec<(&'static str, String)> {
    v.iter().map(|v| (name, v.clone())).collect()
}

fn print(json: bool, v: &Value, human: impl FnOnce(&Value) -> String) {
    if json {
        println!("{}", serde_json::to_string_pretty(v).expect("json"));
    } else {
        println!("{}", human(v));
    }
}

fn table(v: &Value, fields: &[&str]) -> String {
    let rows = v.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "(none)".to_owned();
    }
    rows.iter()
        .map(|r| {
            fields
                .iter()
                .map(|f| match &r[*f] {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".to_owned(),
                    o => o.to_string(),
                })
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The device list with a one-line attestation summary per device.
fn device_table(v: &Value) -> String {
    let rows = v.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        return "(none)".to_owned();
    }
    let s = |r: &Value, f: &str| r[f].as_str().unwrap_or("-").to_owned();
    rows.iter()
        .map(|r| {
            let att = match serde_json::from_value::<crate::attestation::DeviceAttestation>(
                r["attestation"].clone(),
            ) {
                Ok(a) => a.summary(),
                Err(_) => "attestation unknown (enrolled before it was checked)".to_owned(),
            };
            format!(
                "{}  {}  {}  {}  {}  {}",
                s(r, "id"),
                s(r, "practitioner_id"),
                s(r, "platform"),
                s(r, "name"),
                s(r, "revoked_at"),
                att
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one admin command.
pub async fn admin(a: AdminArgs) -> Result<(), AdminError> {
    let c = Client::new(&a)?;
    let json = a.json;
    match a.command {
        AdminCommand::Facility(FacilityCmd::Create { name }) => {
            let v = c
                .post("/admin/v1/facilities", json!({ "name": name }))
                .await?;
            print(json, &v, |v| {
                format!("facility {} created", v["id"].as_str().unwrap_or(""))
            });
        }
        AdminCommand::Facility(FacilityCmd::List) => {
            let v = c.get("/admin/v1/facilities", &[]).await?;
            print(json, &v, |v| table(v, &["id", "name"]));
        }
        AdminCommand::Terminal(TerminalCmd::Create { facility, name }) => {
            let v = c
                .post(
                    "/admin/v1/terminals",
                    json!({ "facility_id": facility, "name": name }),
                )
                .await?;
            print(json, &v, |v| {
                format!(
                    "terminal created\nclient_id:     {}\nclient_secret: {}\n(the secret is shown only now; store it in the EHR)",
                    v["client_id"].as_str().unwrap_or(""),
                    v["client_secret"].as_str().unwrap_or("")
                )
            });
        }
        AdminCommand::Terminal(TerminalCmd::List) => {
            let v = c.get("/admin/v1/terminals", &[]).await?;
            print(json, &v, |v| {
                table(v, &["client_id", "facility_id", "name", "revoked_at"])
            });
        }
        AdminCommand::Terminal(TerminalCmd::Revoke { id }) => {
            let v = c
                .post(&format!("/admin/v1/terminals/{id}/revoke"), json!({}))
                .await?;
            print(json, &v, |_| format!("terminal {id} revoked"));
        }
        AdminCommand::Practitioner(PractitionerCmd::Create {
            name,
            role,
            facilities,
        }) => {
            let v = c
                .post(
                    "/admin/v1/practitioners",
                    json!({ "display_name": name, "role": role, "facility_ids": facilities }),
                )
                .await?;
            print(json, &v, |v| {
                format!("practitioner {} created", v["id"].as_str().unwrap_or(""))
            });
        }
        AdminCommand::Practitioner(PractitionerCmd::List) => {
            let v = c.get("/admin/v1/practitioners", &[]).await?;
            print(json, &v, |v| {
                table(v, &["id", "role", "display_name", "facility_ids"])
            });
        }
        AdminCommand::Credential(CredentialCmd::Generate {
            practitioner,
            algorithm,
            key_store,
        }) => {
            let mut body = json!({ "practitioner_id": practitioner, "algorithm": algorithm });
            if let Some(k) = key_store {
                body["key_store"] = json!(k);
            }
            let v = c.post("/admin/v1/credentials", body).await?;
            print(json, &v, |v| {
                format!(
                    "credential {} created: {}",
                    v["id"].as_str().unwrap_or(""),
                    v["subject_dn"].as_str().unwrap_or("")
                )
            });
        }
        AdminCommand::Credential(CredentialCmd::Import {
            practitioner,
            key,
            cert,
            pkcs12,
            password,
            pkcs11_key_id,
        }) => {
            let read = |p: &PathBuf| {
                std::fs::read(p).map_err(|source| AdminError::Read {
                    path: p.clone(),
                    source,
                })
            };
            let body = match (key, cert, pkcs12) {
                (None, Some(ce), None) if pkcs11_key_id.is_some() => json!({
                    "practitioner_id": practitioner,
                    "cert_pem": String::from_utf8_lossy(&read(&ce)?),
                    "pkcs11_key_id": pkcs11_key_id,
                }),
                (Some(k), Some(ce), None) => json!({
                    "practitioner_id": practitioner,
                    "key_pem": String::from_utf8_lossy(&read(&k)?),
                    "cert_pem": String::from_utf8_lossy(&read(&ce)?),
                }),
                (None, None, Some(p)) => json!({
                    "practitioner_id": practitioner,
                    "pkcs12": base64::engine::general_purpose::STANDARD.encode(read(&p)?),
                    "password": password.unwrap_or_default(),
                }),
                _ => {
                    return Err(AdminError::Refused {
                        status: 0,
                        code: "bad_request".into(),
                        detail: "give --key and --cert, --cert and --pkcs11-key-id, or --pkcs12 [--password]".into(),
                    });
                }
            };
            let v = c.post("/admin/v1/credentials/import", body).await?;
            print(json, &v, |v| {
                format!(
                    "credential {} imported: {}",
                    v["id"].as_str().unwrap_or(""),
                    v["subject_dn"].as_str().unwrap_or("")
                )
            });
        }
        AdminCommand::Credential(CredentialCmd::List { practitioner }) => {
            let v = c
                .get(
                    "/admin/v1/credentials",
                    &opt("practitioner_id", &practitioner),
                )
                .await?;
            print(json, &v, |v| {
                table(
                    v,
                    &[
                        "id",
                        "practitioner_id",
                        "algorithm",
                        "status",
                        "subject_dn",
                        "valid_to",
                    ],
                )
            });
        }
        AdminCommand::Credential(CredentialCmd::Revoke { id, reason }) => {
            let v = c
                .post(
                    &format!("/admin/v1/credentials/{id}/revoke"),
                    json!({ "reason": reason }),
                )
                .await?;
            print(json, &v, |_| format!("credential {id} revoked"));
        }
        AdminCommand::Enrollment(EnrollmentCmd::Create {
            practitioner,
            ttl,
            png,
        }) => {
            let v = c
                .post(
                    "/admin/v1/enrollments",
                    json!({ "practitioner_id": practitioner, "ttl": ttl }),
                )
                .await?;
            let url = v["payload_url"].as_str().unwrap_or("").to_owned();
            if let Some(p) = &png {
                let bytes = crate::qr::png(&url, 8).map_err(AdminError::Qr)?;
                std::fs::write(p, bytes).map_err(|source| AdminError::Write {
                    path: p.clone(),
                    source,
                })?;
            }
            if json {
                print(true, &v, |_| String::new());
            } else {
                let qr = crate::qr::unicode(&url).map_err(AdminError::Qr)?;
                println!("{qr}");
                println!("enrollment code for practitioner {practitioner}");
                println!("payload URL:          {url}");
                println!(
                    "activation password:  {}  (hand it over separately)",
                    v["activation_password"].as_str().unwrap_or("")
                );
                println!(
                    "expires at:           {}",
                    v["expires_at"].as_str().unwrap_or("")
                );
                if let Some(p) = &png {
                    println!("QR PNG written to     {}", p.display());
                }
            }
        }
        AdminCommand::Device(DeviceCmd::List { practitioner }) => {
            let v = c
                .get("/admin/v1/devices", &opt("practitioner_id", &practitioner))
                .await?;
            print(json, &v, device_table);
        }
        AdminCommand::Device(DeviceCmd::Revoke { id }) => {
            let v = c
                .post(&format!("/admin/v1/devices/{id}/revoke"), json!({}))
                .await?;
            print(json, &v, |_| {
                format!("device {id} revoked (and its grants ended)")
            });
        }
        AdminCommand::Grant(GrantCmd::List {
            practitioner,
            active,
        }) => {
            let mut q = opt("practitioner_id", &practitioner);
            if active {
                q.push(("active", "true".to_owned()));
            }
            let v = c.get("/admin/v1/grants", &q).await?;
            print(json, &v, |v| {
                table(
                    v,
                    &[
                        "id",
                        "practitioner_id",
                        "terminal_id",
                        "expires_at",
                        "signatures_made",
                        "active",
                    ],
                )
            });
        }
        AdminCommand::Grant(GrantCmd::Revoke { id }) => {
            let v = c
                .post(&format!("/admin/v1/grants/{id}/revoke"), json!({}))
                .await?;
            print(json, &v, |_| format!("grant {id} revoked"));
        }
        AdminCommand::Audit(AuditCmd::Verify { checkpoint, key }) => {
            let v = match &checkpoint {
                None => c.get("/admin/v1/audit/verify", &[]).await?,
                Some(path) => {
                    let read = |p: &PathBuf| {
                        std::fs::read_to_string(p).map_err(|source| AdminError::Read {
                            path: p.clone(),
                            source,
                        })
                    };
                    let checkpoints = crate::audit::checkpoint::Checkpoint::parse_file(&read(
                        path,
                    )?)
                    .map_err(|e| AdminError::BadInput(format!("{}: {e}", path.display())))?;
                    let pem = key.as_ref().map(read).transpose()?;
                    c.post(
                        "/admin/v1/audit/verify",
                        json!({ "checkpoints": checkpoints, "public_key_pem": pem }),
                    )
                    .await?
                }
            };
            print(json, &v, |v| {
                let mut lines = vec![match (v["ok"].as_bool(), v["broken_at_seq"].as_i64()) {
                    (_, Some(seq)) => format!(
                        "audit chain BROKEN at seq {seq}: {}",
                        v["error"].as_str().unwrap_or("")
                    ),
                    _ => format!(
                        "audit chain: {} entries, head {}",
                        v["count"],
                        v["head"].as_str().unwrap_or("")
                    ),
                }];
                for cp in v["checkpoints"].as_array().into_iter().flatten() {
                    lines.push(match cp["ok"].as_bool() {
                        Some(true) => format!(
                            "checkpoint seq {} (key {}): OK",
                            cp["seq"],
                            cp["key_id"].as_str().unwrap_or("")
                        ),
                        _ => format!(
                            "checkpoint seq {} FAILED: {}",
                            cp["seq"],
                            cp["error"].as_str().unwrap_or("")
                        ),
                    });
                }
                for m in v["signature_mismatches"].as_array().into_iter().flatten() {
                    lines.push(format!(
                        "grant {}: counter {} but {} signature records",
                        m["grant"].as_str().unwrap_or(""),
                        m["signatures_made"],
                        m["signature_records"]
                    ));
                }
                lines.push(if v["ok"].as_bool() == Some(true) {
                    "audit OK".to_owned()
                } else {
                    "audit FAILED".to_owned()
                });
                lines.join("\n")
            });
            if v["ok"].as_bool() != Some(true) {
                return Err(AdminError::AuditFailed(
                    v["error"]
                        .as_str()
                        .unwrap_or("audit verification failed")
                        .to_owned(),
                ));
            }
        }
        AdminCommand::Audit(AuditCmd::Checkpoint { out }) => {
            let v = c.post("/admin/v1/audit/checkpoints", json!({})).await?;
            if let Some(p) = &out {
                std::fs::write(p, format!("{}\n", serde_json::to_string(&v).expect("json")))
                    .map_err(|source| AdminError::Write {
                        path: p.clone(),
                        source,
                    })?;
            }
            print(json, &v, |v| {
                format!(
                    "audit checkpoint signed: seq {}, head {}, key {}",
                    v["seq"],
                    v["head"].as_str().unwrap_or(""),
                    v["key_id"].as_str().unwrap_or("")
                )
            });
        }
        AdminCommand::Audit(AuditCmd::Key { out }) => {
            let v = c.get("/admin/v1/audit/key", &[]).await?;
            let pem = v["public_key_pem"].as_str().unwrap_or("").to_owned();
            if let Some(p) = &out {
                std::fs::write(p, &pem).map_err(|source| AdminError::Write {
                    path: p.clone(),
                    source,
                })?;
            }
            print(json, &v, |v| {
                format!(
                    "audit key {}\n{}",
                    v["key_id"].as_str().unwrap_or(""),
                    pem.trim_end()
                )
            });
        }
        AdminCommand::Evidence(EvidenceCmd::Export { login, out }) => {
            let v = c.get(&format!("/admin/v1/evidence/{login}"), &[]).await?;
            let dir = out.unwrap_or_else(|| PathBuf::from(format!("evidence-{login}")));
            let files = write_evidence(&v, &dir)?;
            let summary = json!({ "dir": dir.display().to_string(), "files": files, "decision": v["decision"] });
            print(json, &summary, |_| {
                format!(
                    "evidence of login {login} written to {}\nverify: cd {} && openssl dgst -sha256 -verify device-public-key.pem -signature signature.der message.bin",
                    dir.display(),
                    dir.display()
                )
            });
        }
        AdminCommand::Audit(AuditCmd::Export { after_seq }) => {
            let r = c
                .send(
                    c.http
                        .get(format!("{}/admin/v1/audit/export", c.base))
                        .query(&[("after_seq", after_seq)]),
                )
                .await?;
            print!("{}", r.text().await?);
        }
    }
    Ok(())
}

/// Writes an evidence bundle (`GET /admin/v1/evidence/{login}`) as files.
fn write_evidence(v: &Value, dir: &Path) -> Result<Vec<String>, AdminError> {
    use crate::service::evidence::{
        ATTESTATION_FILE, DECISION_FILE, MESSAGE_FILE, PUBLIC_KEY_FILE, README_FILE, SIGNATURE_FILE,
    };
    let bad = |what: &str| AdminError::Refused {
        status: 0,
        code: "bad_response".into(),
        detail: format!("evidence bundle without {what}"),
    };
    let b64 = |name: &str| -> Result<Vec<u8>, AdminError> {
        let text = v[name].as_str().ok_or_else(|| bad(name))?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| bad(name))
    };
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        (MESSAGE_FILE, b64("message")?),
        (SIGNATURE_FILE, b64("signature")?),
        (
            PUBLIC_KEY_FILE,
            v["public_key_pem"]
                .as_str()
                .ok_or_else(|| bad("public_key_pem"))?
                .as_bytes()
                .to_vec(),
        ),
        (
            DECISION_FILE,
            format!(
                "{}\n",
                serde_json::to_string_pretty(&v["decision"]).expect("json")
            )
            .into_bytes(),
        ),
        (
            README_FILE,
            v["readme"]
                .as_str()
                .ok_or_else(|| bad("readme"))?
                .as_bytes()
                .to_vec(),
        ),
    ];
    if !v["attestation"].is_null() {
        files.push((
            ATTESTATION_FILE,
            format!(
                "{}\n",
                serde_json::to_string_pretty(&v["attestation"]).expect("json")
            )
            .into_bytes(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|source| AdminError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut names = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| AdminError::Write { path, source })?;
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// b64u login ids start with '-' one time in 64; clap must not take them for a flag.
    #[test]
    fn evidence_export_accepts_a_login_id_that_begins_with_a_hyphen() {
        let cli =
            Cli::try_parse_from(["shomei", "admin", "evidence", "export", "--login", "-J3xQ"])
                .expect("parses");
        let Command::Admin(admin) = cli.command else {
            panic!("not admin")
        };
        match admin.command {
            AdminCommand::Evidence(EvidenceCmd::Export { login, .. }) => assert_eq!(login, "-J3xQ"),
            other => panic!("parsed as {other:?}"),
        }
    }
}
