//! The `shomei` command line: `serve`, and `admin …` which talks to a
//! running server over `/admin/v1/*` (so the CLI works the same against a
//! local SQLite server and a PostgreSQL cluster).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};

use crate::config::{Overrides, ServeConfig};

#[derive(Debug, Parser)]
#[command(name = "shomei", version, about = "Shomei remote-signing server and operator CLI")]
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
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Data directory (SQLite file, KEK, operator token, server.url).
    #[arg(long, env = "SHOMEI_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address (port 0 picks a free port).
    #[arg(long, env = "SHOMEI_LISTEN")]
    pub listen: Option<String>,
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
}

impl ServeArgs {
    pub fn resolve(self) -> Result<ServeConfig, crate::config::ConfigError> {
        ServeConfig::resolve(Overrides {
            data_dir: self.data_dir,
            listen: self.listen,
            database_url: self.database_url,
            public_origin: self.public_origin,
            demo: self.demo,
            config: self.config,
            ready_file: self.ready_file,
        })
    }
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Server base URL (default: <data-dir>/server.url).
    #[arg(long, env = "SHOMEI_SERVER", global = true)]
    pub server: Option<String>,
    /// Operator token (default: <data-dir>/operator.token).
    #[arg(long, env = "SHOMEI_OPERATOR_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of a local server, to find server.url and operator.token.
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
    },
    List {
        #[arg(long)]
        practitioner: Option<String>,
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
    /// Recompute the hash chain; non-zero exit when broken.
    Verify,
    /// JSON lines on stdout.
    Export {
        #[arg(long, default_value_t = 0)]
        after_seq: i64,
    },
}

/// Why an admin command failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no server URL: pass --server, set SHOMEI_SERVER, or --data-dir with a server.url")]
    NoServer,
    #[error("no operator token: pass --token, set SHOMEI_OPERATOR_TOKEN, or --data-dir with an operator.token")]
    NoToken,
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("server refused ({status}): {code}: {detail}")]
    Refused { status: u16, code: String, detail: String },
    #[error("{0}")]
    Qr(String),
    #[error("audit chain is broken at seq {0}")]
    AuditBroken(i64),
}

fn read_trimmed(path: &Path) -> Result<Option<String>, AdminError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AdminError::Read { path: path.to_owned(), source }),
    }
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(a: &AdminArgs) -> Result<Client, AdminError> {
        let dir = a.data_dir.clone().unwrap_or_else(|| PathBuf::from("shomei-data"));
        let base = match &a.server {
            Some(s) => s.clone(),
            None => read_trimmed(&dir.join("server.url"))?.ok_or(AdminError::NoServer)?,
        };
        let token = match &a.token {
            Some(t) => t.clone(),
            None => read_trimmed(&dir.join("operator.token"))?.ok_or(AdminError::NoToken)?,
        };
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(60)).build()?;
        Ok(Client { http, base: base.trim_end_matches('/').to_owned(), token })
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
        Ok(self.send(self.http.get(format!("{}{path}", self.base)).query(query)).await?.json().await?)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value, AdminError> {
        Ok(self.send(self.http.post(format!("{}{path}", self.base)).json(&body)).await?.json().await?)
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
        .map(|r| fields.iter().map(|f| match &r[*f] { Value::String(s) => s.clone(), Value::Null => "-".to_owned(), o => o.to_string() }).collect::<Vec<_>>().join("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs one admin command.
pub async fn admin(a: AdminArgs) -> Result<(), AdminError> {
    let c = Client::new(&a)?;
    let json = a.json;
    match a.command {
        AdminCommand::Facility(FacilityCmd::Create { name }) => {
            let v = c.post("/admin/v1/facilities", json!({ "name": name })).await?;
            print(json, &v, |v| format!("facility {} created", v["id"].as_str().unwrap_or("")));
        }
        AdminCommand::Facility(FacilityCmd::List) => {
            let v = c.get("/admin/v1/facilities", &[]).await?;
            print(json, &v, |v| table(v, &["id", "name"]));
        }
        AdminCommand::Terminal(TerminalCmd::Create { facility, name }) => {
            let v = c.post("/admin/v1/terminals", json!({ "facility_id": facility, "name": name })).await?;
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
            print(json, &v, |v| table(v, &["client_id", "facility_id", "name", "revoked_at"]));
        }
        AdminCommand::Terminal(TerminalCmd::Revoke { id }) => {
            let v = c.post(&format!("/admin/v1/terminals/{id}/revoke"), json!({})).await?;
            print(json, &v, |_| format!("terminal {id} revoked"));
        }
        AdminCommand::Practitioner(PractitionerCmd::Create { name, role, facilities }) => {
            let v = c.post("/admin/v1/practitioners", json!({ "display_name": name, "role": role, "facility_ids": facilities })).await?;
            print(json, &v, |v| format!("practitioner {} created", v["id"].as_str().unwrap_or("")));
        }
        AdminCommand::Practitioner(PractitionerCmd::List) => {
            let v = c.get("/admin/v1/practitioners", &[]).await?;
            print(json, &v, |v| table(v, &["id", "role", "display_name", "facility_ids"]));
        }
        AdminCommand::Credential(CredentialCmd::Generate { practitioner, algorithm }) => {
            let v = c.post("/admin/v1/credentials", json!({ "practitioner_id": practitioner, "algorithm": algorithm })).await?;
            print(json, &v, |v| format!("credential {} created: {}", v["id"].as_str().unwrap_or(""), v["subject_dn"].as_str().unwrap_or("")));
        }
        AdminCommand::Credential(CredentialCmd::Import { practitioner, key, cert, pkcs12, password }) => {
            let read = |p: &PathBuf| std::fs::read(p).map_err(|source| AdminError::Read { path: p.clone(), source });
            let body = match (key, cert, pkcs12) {
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
                    return Err(AdminError::Refused { status: 0, code: "bad_request".into(), detail: "give --key and --cert, or --pkcs12 [--password]".into() });
                }
            };
            let v = c.post("/admin/v1/credentials/import", body).await?;
            print(json, &v, |v| format!("credential {} imported: {}", v["id"].as_str().unwrap_or(""), v["subject_dn"].as_str().unwrap_or("")));
        }
        AdminCommand::Credential(CredentialCmd::List { practitioner }) => {
            let v = c.get("/admin/v1/credentials", &opt("practitioner_id", &practitioner)).await?;
            print(json, &v, |v| table(v, &["id", "practitioner_id", "algorithm", "subject_dn", "valid_to"]));
        }
        AdminCommand::Enrollment(EnrollmentCmd::Create { practitioner, ttl, png }) => {
            let v = c.post("/admin/v1/enrollments", json!({ "practitioner_id": practitioner, "ttl": ttl })).await?;
            let url = v["payload_url"].as_str().unwrap_or("").to_owned();
            if let Some(p) = &png {
                let bytes = crate::qr::png(&url, 8).map_err(AdminError::Qr)?;
                std::fs::write(p, bytes).map_err(|source| AdminError::Write { path: p.clone(), source })?;
            }
            if json {
                print(true, &v, |_| String::new());
            } else {
                let qr = crate::qr::unicode(&url).map_err(AdminError::Qr)?;
                println!("{qr}");
                println!("enrollment code for practitioner {practitioner}");
                println!("payload URL:          {url}");
                println!("activation password:  {}  (hand it over separately)", v["activation_password"].as_str().unwrap_or(""));
                println!("expires at:           {}", v["expires_at"].as_str().unwrap_or(""));
                if let Some(p) = &png {
                    println!("QR PNG written to     {}", p.display());
                }
            }
        }
        AdminCommand::Device(DeviceCmd::List { practitioner }) => {
            let v = c.get("/admin/v1/devices", &opt("practitioner_id", &practitioner)).await?;
            print(json, &v, |v| table(v, &["id", "practitioner_id", "platform", "name", "revoked_at"]));
        }
        AdminCommand::Device(DeviceCmd::Revoke { id }) => {
            let v = c.post(&format!("/admin/v1/devices/{id}/revoke"), json!({})).await?;
            print(json, &v, |_| format!("device {id} revoked (and its grants ended)"));
        }
        AdminCommand::Grant(GrantCmd::List { practitioner, active }) => {
            let mut q = opt("practitioner_id", &practitioner);
            if active {
                q.push(("active", "true".to_owned()));
            }
            let v = c.get("/admin/v1/grants", &q).await?;
            print(json, &v, |v| table(v, &["id", "practitioner_id", "terminal_id", "expires_at", "signatures_made", "active"]));
        }
        AdminCommand::Grant(GrantCmd::Revoke { id }) => {
            let v = c.post(&format!("/admin/v1/grants/{id}/revoke"), json!({})).await?;
            print(json, &v, |_| format!("grant {id} revoked"));
        }
        AdminCommand::Audit(AuditCmd::Verify) => {
            let v = c.get("/admin/v1/audit/verify", &[]).await?;
            print(json, &v, |v| match v["ok"].as_bool() {
                Some(true) => format!("audit chain OK: {} entries, head {}", v["count"], v["head"].as_str().unwrap_or("")),
                _ => format!("audit chain BROKEN at seq {}: {}", v["broken_at_seq"], v["error"].as_str().unwrap_or("")),
            });
            if v["ok"].as_bool() != Some(true) {
                return Err(AdminError::AuditBroken(v["broken_at_seq"].as_i64().unwrap_or(0)));
            }
        }
        AdminCommand::Audit(AuditCmd::Export { after_seq }) => {
            let r = c.send(c.http.get(format!("{}/admin/v1/audit/export", c.base)).query(&[("after_seq", after_seq)])).await?;
            print!("{}", r.text().await?);
        }
    }
    Ok(())
}
