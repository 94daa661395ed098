//! Persistent state behind one async trait, [`Store`], so that the domain
//! services never see SQL and the same code runs on the embedded SQLite
//! database (zero set-up default) or on PostgreSQL (several stateless
//! replicas).
//!
//! Every method that changes state also appends its hash-chained audit
//! entry in the *same* transaction, and commits before returning: nothing
//! the caller reports as done can be lost, and no state change exists
//! without its audit entry. Single-use rules (an enrollment code, a login
//! decision, a token issue) are conditional updates (`… WHERE status =
//! 'pending'`), so of two racing requests exactly one wins.
//!
//! The SQL text is shared by both backends ([`queries`]); each backend
//! module owns its connection set-up, migrations and the way it serialises
//! writers (SQLite: one in-process writer lock; PostgreSQL: a transaction
//! advisory lock), because the audit chain needs a total order.

pub mod change;
mod group_commit;
pub mod postgres;
mod queries;
mod tally;

/// The signing log's read statements (issue 14), shared by both backends
/// and public so that the storage tests can ask each database for its plan
/// (`EXPLAIN`) and check that every page is an index range, not a scan.
pub mod signing_log_sql {
    /// Which database a statement is written for. The statements are the
    /// same except where a planner must be told which index serves a page.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Dialect {
        Sqlite,
        Postgres,
    }

    /// The signature columns plus the terminal's and facility's names, read
    /// from the signatures through `index` where the dialect needs it named.
    fn select(d: Dialect, index: &str) -> String {
        // SQLite plans a page bounded on `seq` from both sides (the day
        // view's lower bound) as a range of the rowid — `seq` is the INTEGER
        // PRIMARY KEY — and then filters the whole day of *every*
        // practitioner's signatures. `INDEXED BY` pins the access path to
        // the practitioner's (or grant's) index; SQLite refuses the
        // statement rather than falling back to a scan if that index ever
        // goes, so a schema change cannot silently turn a page into a scan.
        let indexed = match d {
            Dialect::Sqlite => format!(" INDEXED BY {index}"),
            Dialect::Postgres => String::new(),
        };
        format!(
            "SELECT s.seq, s.grant_id, s.practitioner_id, s.terminal_id, s.credential_id, s.at_ms, \
             s.sign_algo, s.format, s.digest, s.label, t.name AS terminal_name, t.facility_id, f.name AS facility_name \
             FROM signatures s{indexed} JOIN terminals t ON t.id = s.terminal_id JOIN facilities f ON f.id = t.facility_id"
        )
    }

    /// A bound on `seq` within the rows of `col = $1`. On PostgreSQL it is
    /// written as a row comparison on the index's own columns,
    /// `(col, seq) < ($1, $n)`, rather than `seq < $n`: the latter is also
    /// a range of the primary key, and with a page bounded on both sides
    /// (the day view) PostgreSQL chose to walk the primary key through
    /// every practitioner's signatures of the day, filtering. A row
    /// comparison led by another column cannot be a range of the primary
    /// key. SQLite does not use a row comparison as an index range (only
    /// the equality), but there `INDEXED BY` already fixes the index, so
    /// it gets the plain bound, which it does use.
    fn bound(d: Dialect, col: &str, op: &str, param: &str) -> String {
        match d {
            Dialect::Sqlite => format!("s.seq {op} {param}"),
            Dialect::Postgres => format!("(s.{col}, s.seq) {op} ($1, {param})"),
        }
    }

    /// One grant's page, newest first ($1 grant, $2 watermark, $3 below
    /// this seq, $4 limit): index `signatures_grant_seq`.
    pub fn grant_page(d: Dialect) -> String {
        format!(
            "{} WHERE s.grant_id = $1 AND {} AND {} ORDER BY s.seq DESC LIMIT $4",
            select(d, "signatures_grant_seq"),
            bound(d, "grant_id", "<=", "$2"),
            bound(d, "grant_id", "<", "$3"),
        )
    }

    /// The day view's page ($1 practitioner, $2..$4 as above, $5 first seq
    /// of the day, $6 from time): index `signatures_practitioner_seq`.
    pub fn practitioner_page(d: Dialect) -> String {
        format!(
            "{} WHERE s.practitioner_id = $1 AND {} AND {} AND {} AND s.at_ms >= $6 ORDER BY s.seq DESC LIMIT $4",
            select(d, "signatures_practitioner_seq"),
            bound(d, "practitioner_id", "<=", "$2"),
            bound(d, "practitioner_id", "<", "$3"),
            bound(d, "practitioner_id", ">=", "$5"),
        )
    }

    /// Following the day, oldest first ($1 practitioner, $2 after this seq,
    /// $3 limit): index `signatures_practitioner_seq`.
    pub fn practitioner_since(d: Dialect) -> String {
        format!(
            "{} WHERE s.practitioner_id = $1 AND {} ORDER BY s.seq LIMIT $3",
            select(d, "signatures_practitioner_seq"),
            bound(d, "practitioner_id", ">", "$2"),
        )
    }

    /// Following one grant, oldest first ($1 grant, $2 practitioner, $3 after
    /// this seq, $4 limit): index `signatures_grant_seq`. A statement of its
    /// own rather than `($n IS NULL OR grant_id = $n)`, which PostgreSQL
    /// answered with a bitmap AND of two indexes and a sort of the rows.
    /// The practitioner check stays as a filter on the grant's rows (the
    /// service has already checked that the grant is theirs); written as
    /// an expression so that no planner ANDs in the practitioner's index.
    pub fn grant_since(d: Dialect) -> String {
        format!(
            "{} WHERE s.grant_id = $1 AND {} AND (s.practitioner_id || '') = $2 ORDER BY s.seq LIMIT $4",
            select(d, "signatures_grant_seq"),
            bound(d, "grant_id", ">", "$3"),
        )
    }
}
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::audit::chain::ChainedEntry;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// SQLite refused or failed on the group-commit thread's connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite group-commit thread is gone (it panicked).
    #[error("the SQLite commit thread stopped")]
    CommitThreadStopped,
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A unique key already exists.
    #[error("already exists: {0}")]
    Duplicate(String),
    /// A row has a value this build cannot read.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL is not one this server supports.
    #[error("unsupported database URL (use a file path, sqlite:// or postgres://)")]
    UnsupportedUrl,
}

/// Result of store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// One audit event, appended together with the change it describes.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// `operator`, `terminal:<id>`, `device:<id>`, `system`.
    pub actor: String,
    /// Dotted verb, e.g. `grant.revoke`.
    pub action: String,
    /// The id acted upon.
    pub subject: String,
    /// JSON details (never secrets).
    pub details: serde_json::Value,
}

impl AuditEvent {
    /// Shorthand constructor.
    pub fn new(
        actor: impl Into<String>,
        action: &str,
        subject: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        AuditEvent {
            actor: actor.into(),
            action: action.to_owned(),
            subject: subject.into(),
            details,
        }
    }
}

/// A facility (clinic, hospital, pharmacy).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Facility {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

/// A registered EHR terminal (an OAuth client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminal {
    pub id: String,
    pub facility_id: String,
    pub name: String,
    /// SHA-256 of the client secret.
    pub secret_hash: Vec<u8>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// A doctor, dentist or pharmacist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practitioner {
    pub id: String,
    pub display_name: String,
    /// `doctor` | `dentist` | `pharmacist`.
    pub role: String,
    pub facility_ids: Vec<String>,
    pub created_ms: i64,
}

/// A signing credential: sealed key + certificate chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    pub practitioner_id: String,
    /// `rsa2048` | `ecdsa-p256`.
    pub algorithm: String,
    /// The sealed key (`signing::SealedKey`), shared with the signing calls
    /// that use this row.
    pub sealed_key: std::sync::Arc<[u8]>,
    /// DER certificates, leaf first.
    pub certificate_chain: Vec<Vec<u8>>,
    pub created_ms: i64,
    /// Set when the operator revoked the credential; it signs no more.
    pub revoked_ms: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// Status of a one-time enrollment code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnrollmentStatus {
    Pending,
    Used,
    Locked,
}

impl EnrollmentStatus {
    fn as_str(self) -> &'static str {
        match self {
            EnrollmentStatus::Pending => "pending",
            EnrollmentStatus::Used => "used",
            EnrollmentStatus::Locked => "locked",
        }
    }
    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => EnrollmentStatus::Pending,
            "used" => EnrollmentStatus::Used,
            "locked" => EnrollmentStatus::Locked,
            o => return Err(StoreError::Corrupt(format!("enrollment status {o:?}"))),
        })
    }
}

/// A one-time enrollment code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrollment {
    /// b64u of the 16-byte enrollment id.
    pub id: String,
    pub practitioner_id: String,
    /// SHA-256 of the QR secret.
    pub secret_hash: Vec<u8>,
    /// PBKDF2 of the activation password.
    pub password_hash: Vec<u8>,
    pub password_salt: Vec<u8>,
    /// Password attempts reserved so far (each counted before checking).
    pub failed_attempts: i64,
    pub status: EnrollmentStatus,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub device_id: Option<String>,
}

/// An enrolled phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub practitioner_id: String,
    pub name: String,
    pub platform: String,
    /// SEC1 uncompressed P-256 point.
    pub public_key: Vec<u8>,
    /// SHA-256 of the device token.
    pub token_hash: Vec<u8>,
    /// The attestation the phone sent (JSON of `shomei_core::Attestation`), as given.
    pub attestation: Option<String>,
    /// What the server verified about the device key at enrollment (status, policy,
    /// security level, patch levels, boot state, app id); `None` for devices enrolled
    /// before attestation was checked (migration 0003).
    pub attestation_facts: Option<crate::attestation::DeviceAttestation>,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

/// Status of a login (device authorization request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginStatus {
    Pending,
    Approved,
    Denied,
}

impl LoginStatus {
    /// Wire/storage text.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStatus::Pending => "pending",
            LoginStatus::Approved => "approved",
            LoginStatus::Denied => "denied",
        }
    }
    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "pending" => LoginStatus::Pending,
            "approved" => LoginStatus::Approved,
            "denied" => LoginStatus::Denied,
            o => return Err(StoreError::Corrupt(format!("login status {o:?}"))),
        })
    }
}

/// A login started by a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// b64u of the 16-byte login id.
    pub id: String,
    pub terminal_id: String,
    /// SHA-256 of the device code.
    pub device_code_hash: Vec<u8>,
    /// HMAC-SHA256 of the user code's letters under the server's user-code
    /// key (never the code itself; `None` for logins older than migration 6).
    pub user_code_hash: Option<Vec<u8>>,
    /// The device that resolved this login by its typed code (protocol.md §4.6).
    pub code_device_id: Option<String>,
    /// SHA-256 of the QR secret.
    pub secret_hash: Vec<u8>,
    /// The QR secret sealed under the KEK (AAD = login id), to redraw the QR.
    pub secret_sealed: Vec<u8>,
    pub challenge: Vec<u8>,
    pub number_choices: [u8; 3],
    pub match_number: u8,
    pub status: LoginStatus,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub last_poll_ms: Option<i64>,
    pub poll_interval_s: i64,
    pub decided_ms: Option<i64>,
    pub device_id: Option<String>,
    pub grant_id: Option<String>,
    /// With the `code` confirmation policy: hash of the code the phone showed.
    pub confirmation_hash: Option<Vec<u8>>,
    /// Wrong confirmation codes the terminal sent.
    pub confirmation_failures: i64,
}

/// A day of signing for (practitioner, terminal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub practitioner_id: String,
    pub terminal_id: String,
    pub device_id: String,
    pub login_id: String,
    /// SHA-256 of the access token, set once when the terminal collects it.
    pub token_hash: Option<Vec<u8>>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub last_used_ms: i64,
    pub idle_timeout_s: Option<i64>,
    pub signature_cap: Option<i64>,
    pub signatures_made: i64,
    pub revoked_ms: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// How a login decision is to be stored.
#[derive(Debug, Clone)]
pub struct LoginDecision {
    pub login_id: String,
    pub device_id: String,
    pub status: LoginStatus,
    pub now_ms: i64,
    /// The grant to create with an approval.
    pub grant: Option<Grant>,
    /// What the device signed, stored in the same transaction as the decision.
    pub evidence: Option<DecisionEvidence>,
    /// With the `code` confirmation policy: hash of the code shown on the phone.
    pub confirmation_hash: Option<Vec<u8>>,
    pub audit: AuditEvent,
}

/// The evidence of one phone decision, kept with it so that someone who
/// does not trust the server can check, with OpenSSL alone, that this
/// device key signed exactly this decision (`shomei admin evidence export`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionEvidence {
    /// b64u of the 16-byte login id.
    pub login_id: String,
    pub device_id: String,
    /// What the server made of it: `Approved` or `Denied`.
    pub outcome: LoginStatus,
    /// Why (`user approved`, `user denied`, `number mismatch`, …).
    pub reason: String,
    /// The exact bytes the device signed (docs/protocol.md §3.1).
    pub message: Vec<u8>,
    /// The device's DER ECDSA P-256 signature over `message`.
    pub signature: Vec<u8>,
    /// The device's public key at decision time (SEC1 uncompressed).
    pub public_key: Vec<u8>,
    /// The device's verified attestation facts at decision time (JSON of
    /// `attestation::DeviceAttestation`), if it has them.
    pub attestation: Option<String>,
    pub decided_ms: i64,
}

/// Why a conditional login update did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideOutcome {
    /// Stored.
    Done,
    /// Someone decided first (or the login expired meanwhile).
    NotPending,
}

/// Signatures to record against a grant (one signHash call).
#[derive(Debug, Clone)]
pub struct SignatureRecord {
    pub grant_id: String,
    pub credential_id: String,
    pub terminal_id: String,
    /// SHA-256 digests that were signed, in order.
    pub hashes: Vec<Vec<u8>>,
    pub sign_algo: String,
    pub now_ms: i64,
    /// signDoc: the signature format of each hash ("X" XAdES, "C" CMS),
    /// in order, whose signing time is `now_ms`; empty for signHash.
    pub signature_formats: Vec<String>,
    /// The EHR's document label for the call (already validated), kept
    /// with each signature and in its audit entry.
    pub label: Option<String>,
}

/// One signed digest as the practitioner's phone lists it (table
/// `signatures`, migration 0005), with the names of the terminal and
/// facility that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureEntry {
    /// The sequence number of its `signature.create` audit entry: unique,
    /// and increasing in commit order (the follow cursor).
    pub seq: i64,
    pub grant_id: String,
    pub practitioner_id: String,
    pub terminal_id: String,
    pub terminal_name: String,
    pub facility_id: String,
    pub facility_name: String,
    pub credential_id: String,
    /// Signing time (Unix ms).
    pub at_ms: i64,
    /// `rsa-pkcs1-sha256` | `ecdsa-p256-sha256`.
    pub sign_algo: String,
    /// `hash` (signHash), `xades` or `cms` (signDoc).
    pub format: String,
    /// The SHA-256 digest that was signed.
    pub digest: Vec<u8>,
    pub label: Option<String>,
}

/// One page of a newest-first walk over signatures (`seq` descending:
/// the order they were recorded in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignaturePage {
    /// Only signatures with `seq <= watermark`: the walk shows the log as
    /// it was when it began, so rows committed meanwhile never shift it
    /// (they are what following `since = watermark` returns).
    pub watermark: i64,
    /// Only `seq` below this; `None` for the first page.
    pub before_seq: Option<i64>,
    /// At most this many rows.
    pub limit: i64,
}

/// What one signing call stands on, as [`Store::get_signing_context`]
/// reads it: the calling terminal, the grant its token names (whichever
/// terminal it belongs to) and the credential the request names (whichever
/// practitioner it belongs to). The service checks them exactly as it checks
/// the three when read one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningContext {
    pub terminal: Terminal,
    pub grant: Option<Grant>,
    pub credential: Option<Credential>,
}

/// Why a signature record was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Recorded; signatures made so far with the grant.
    Recorded(i64),
    /// The grant was revoked, expired or used up meanwhile.
    GrantUnusable,
    /// The credential was revoked meanwhile.
    CredentialRevoked,
}

/// What one clean-up pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub logins: Vec<String>,
    pub enrollments: Vec<String>,
}

/// An audit row as read back (for verify/export).
pub type AuditEntry = ChainedEntry;

/// Everything the services need from persistent storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap liveness check (`/healthz`).
    async fn ping(&self) -> StoreResult<()>;
    /// Which backend this is (`sqlite` / `postgres`).
    fn backend(&self) -> &'static str;
    /// Versions of this binary's migrations the database has not applied
    /// successfully (`/readyz`; empty when the schema is current). One
    /// query, so it also shows the store answers.
    async fn pending_migrations(&self) -> StoreResult<Vec<i64>>;
    /// Starts listening for the [`change::Change`]s every replica on this
    /// database commits (this one included), each published in the same
    /// transaction as its state change; `None` when no other process
    /// writes the store (SQLite). Each call opens its own listening
    /// connection, which ends when the feed is dropped.
    fn changes(&self) -> Option<change::ChangeFeed>;

    async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Stores `value` unless the key exists; returns the stored value either way.
    async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>>;

    async fn create_facility(&self, f: &Facility, audit: &AuditEvent) -> StoreResult<()>;
    async fn list_facilities(&self) -> StoreResult<Vec<Facility>>;
    async fn get_facility(&self, id: &str) -> StoreResult<Option<Facility>>;

    async fn create_terminal(&self, t: &Terminal, audit: &AuditEvent) -> StoreResult<()>;
    async fn list_terminals(&self) -> StoreResult<Vec<Terminal>>;
    async fn get_terminal(&self, id: &str) -> StoreResult<Option<Terminal>>;
    /// Revokes the terminal and ends its grants; false if unknown or already revoked.
    async fn revoke_terminal(&self, id: &str, now_ms: i64, audit: &AuditEvent)
    -> StoreResult<bool>;

    async fn create_practitioner(&self, p: &Practitioner, audit: &AuditEvent) -> StoreResult<()>;
    async fn list_practitioners(&self) -> StoreResult<Vec<Practitioner>>;
    async fn get_practitioner(&self, id: &str) -> StoreResult<Option<Practitioner>>;

    async fn create_credential(&self, c: &Credential, audit: &AuditEvent) -> StoreResult<()>;
    async fn list_credentials(&self, practitioner_id: Option<&str>)
    -> StoreResult<Vec<Credential>>;
    async fn get_credential(&self, id: &str) -> StoreResult<Option<Credential>>;
    /// Marks the credential revoked; false if unknown or already revoked.
    async fn revoke_credential(&self, id: &str, reason: &str, now_ms: i64, audit: &AuditEvent) -> StoreResult<bool>;

    async fn create_enrollment(&self, e: &Enrollment, audit: &AuditEvent) -> StoreResult<()>;
    async fn get_enrollment(&self, id: &str) -> StoreResult<Option<Enrollment>>;
    /// Reserves one password attempt BEFORE the password is checked
    /// (conditional update: pending, unexpired, fewer than `max_attempts`
    /// attempts so far), so that concurrent guesses can never check more
    /// than `max_attempts` passwords. Returns the attempt's number
    /// (1..=max), or `None` when no attempt is left or the code is not
    /// pending/unexpired.
    async fn reserve_enrollment_attempt(
        &self,
        id: &str,
        max_attempts: i64,
        now_ms: i64,
    ) -> StoreResult<Option<i64>>;
    /// A reserved attempt had a wrong password: audits it and locks the code
    /// once `max_attempts` attempts are used up. Returns the stored row afterwards.
    async fn record_enrollment_failure(
        &self,
        id: &str,
        max_attempts: i64,
        audit: &AuditEvent,
    ) -> StoreResult<Option<Enrollment>>;
    /// Consumes a pending, unexpired code and stores the device; with
    /// `retire_others` also revokes the practitioner's other devices and their
    /// grants. False when the code was not pending any more (lost a race).
    async fn complete_enrollment(
        &self,
        enrollment_id: &str,
        device: &Device,
        retire_others: bool,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;

    async fn get_device(&self, id: &str) -> StoreResult<Option<Device>>;
    async fn get_device_by_token_hash(&self, token_hash: &[u8]) -> StoreResult<Option<Device>>;
    async fn list_devices(&self, practitioner_id: Option<&str>) -> StoreResult<Vec<Device>>;
    /// Revokes the device and every grant it approved; false if unknown or already revoked.
    async fn revoke_device(&self, id: &str, now_ms: i64, audit: &AuditEvent) -> StoreResult<bool>;

    async fn create_login(&self, l: &Login, audit: &AuditEvent) -> StoreResult<()>;
    async fn get_login(&self, id: &str) -> StoreResult<Option<Login>>;
    async fn get_login_by_device_code_hash(&self, hash: &[u8]) -> StoreResult<Option<Login>>;
    /// The newest login whose user-code hash is `hash` (an index lookup).
    async fn get_login_by_user_code_hash(&self, hash: &[u8]) -> StoreResult<Option<Login>>;
    /// Records that `device_id` resolved the login by its typed code, with
    /// its audit entry. Conditional: only a pending login unexpired at
    /// `now_ms` is marked; `false` otherwise (nothing written).
    async fn mark_login_code_resolved(&self, login_id: &str, device_id: &str, now_ms: i64, audit: &AuditEvent) -> StoreResult<bool>;
    /// Which of `ids` are decided (not pending), with their status: one
    /// query for many waited logins (the waiters' periodic re-check).
    async fn decided_logins(&self, ids: &[String]) -> StoreResult<Vec<(String, LoginStatus)>>;
    /// Conditional: only a pending, unexpired login is decided.
    async fn decide_login(&self, d: &LoginDecision) -> StoreResult<DecideOutcome>;
    /// The evidence stored with a login's decision, if it was decided by a phone.
    async fn get_decision_evidence(&self, login_id: &str) -> StoreResult<Option<DecisionEvidence>>;
    /// Counts a wrong confirmation code; at `max_failures` also revokes the
    /// login's grant (reason `confirmation failed`). Returns the failures so far.
    async fn record_confirmation_failure(&self, login_id: &str, grant_id: &str, max_failures: i64, now_ms: i64, audit: &AuditEvent) -> StoreResult<i64>;
    /// Remembers a token poll (for slow_down).
    async fn touch_login_poll(&self, id: &str, now_ms: i64, interval_s: i64) -> StoreResult<()>;

    async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>>;
    async fn get_grant_by_token_hash(&self, hash: &[u8]) -> StoreResult<Option<Grant>>;
    /// The terminal `terminal_id`, the grant whose token hashes to
    /// `token_hash` and the credential `credential_id`, in ONE statement:
    /// signHash and signDoc read them on every call, and three lookups (each
    /// a pool checkout and a round trip to the database's thread or server)
    /// cost more than the signature. `None` when the terminal does not exist.
    async fn get_signing_context(&self, terminal_id: &str, token_hash: &[u8], credential_id: &str) -> StoreResult<Option<SigningContext>>;
    /// Sets the access token hash once; false if already issued.
    async fn issue_grant_token(
        &self,
        grant_id: &str,
        token_hash: &[u8],
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Grants, newest first; `active_at` filters out revoked/expired ones.
    async fn list_grants(
        &self,
        practitioner_id: Option<&str>,
        active_at_ms: Option<i64>,
    ) -> StoreResult<Vec<Grant>>;
    async fn revoke_grant(
        &self,
        id: &str,
        reason: &str,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> StoreResult<bool>;
    /// Ends every active grant of a practitioner; returns how many.
    async fn revoke_practitioner_grants(
        &self,
        practitioner_id: &str,
        reason: &str,
        now_ms: i64,
        audit: &AuditEvent,
    ) -> StoreResult<u32>;

    /// Records several signHash/signDoc calls in ONE transaction (group
    /// commit): per record, the grant's counter moves only if it is still
    /// usable and under its cap and the credential is not revoked, and one
    /// audit entry per signed hash is appended. The records are the
    /// store's to keep (SQLite hands them to its commit thread as they are).
    async fn record_signatures(&self, records: Vec<SignatureRecord>) -> StoreResult<Vec<RecordOutcome>>;

    /// The highest signature `seq` of a practitioner (0 when none): where
    /// a newest-first walk stops and following begins.
    async fn signature_watermark(&self, practitioner_id: &str) -> StoreResult<i64>;
    /// One page of a grant's signatures, newest first (index
    /// `signatures_grant_seq`).
    async fn grant_signatures(&self, grant_id: &str, page: SignaturePage) -> StoreResult<Vec<SignatureEntry>>;
    /// One page of a practitioner's signatures made at or after `from_ms`,
    /// newest first, across all their grants (index
    /// `signatures_practitioner_seq`; `signatures_practitioner_time` finds
    /// the first `seq` of the range, so the last page stops there instead
    /// of scanning older days).
    async fn practitioner_signatures(&self, practitioner_id: &str, from_ms: i64, page: SignaturePage) -> StoreResult<Vec<SignatureEntry>>;
    /// A practitioner's signatures (of one grant, if given) with `seq >
    /// after_seq`, oldest first, at most `limit` (index `signatures_practitioner_seq`).
    async fn signatures_since(&self, practitioner_id: &str, grant_id: Option<&str>, after_seq: i64, limit: i64) -> StoreResult<Vec<SignatureEntry>>;

    /// An audit entry with no other state change.
    async fn append_audit(&self, at_ms: i64, audit: &AuditEvent) -> StoreResult<()>;

    /// Clean-up: deletes at most `limit` logins never decided and
    /// enrollment codes never used (pending or locked) whose expiry is
    /// before `expired_before_ms`, and audits what it removed (one
    /// `sweep.expired` entry, same transaction) when anything was removed.
    /// Decided logins and used codes are kept: they are the record.
    async fn sweep_expired(
        &self,
        expired_before_ms: i64,
        limit: i64,
        now_ms: i64,
    ) -> StoreResult<SweepReport>;
    /// Audit entries with `seq > after_seq`, ascending, at most `limit`.
    async fn audit_entries(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditEntry>>;
    /// The last audit entry (the chain head), if any.
    async fn audit_head(&self) -> StoreResult<Option<AuditEntry>>;
}

/// Opens the store a URL names: `postgres://…` / `postgresql://…` → PostgreSQL,
/// `sqlite://…` or a plain path → SQLite file. Migrations run before returning.
pub async fn open(url: &str) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url).await?))
    } else if let Some(path) = url.strip_prefix("sqlite://") {
        Ok(Arc::new(
            sqlite::SqliteStore::open(std::path::Path::new(path)).await?,
        ))
    } else if url.contains("://") {
        Err(StoreError::UnsupportedUrl)
    } else {
        Ok(Arc::new(
            sqlite::SqliteStore::open(std::path::Path::new(url)).await?,
        ))
    }
}

pub(crate) fn choices_to_text(c: &[u8; 3]) -> String {
    format!("{},{},{}", c[0], c[1], c[2])
}

pub(crate) fn choices_from_text(s: &str) -> StoreResult<[u8; 3]> {
    let v: Vec<u8> = s
        .split(',')
        .map(|p| p.parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| StoreError::Corrupt("number choices".into()))?;
    v.try_into()
        .map_err(|_| StoreError::Corrupt("number choices".into()))
}

pub(crate) fn chain_to_text(chain: &[Vec<u8>]) -> String {
    use base64::Engine;
    let v: Vec<String> = chain
        .iter()
        .map(|c| base64::engine::general_purpose::STANDARD.encode(c))
        .collect();
    serde_json::to_string(&v).expect("strings serialize")
}

pub(crate) fn chain_from_text(s: &str) -> StoreResult<Vec<Vec<u8>>> {
    use base64::Engine;
    let v: Vec<String> =
        serde_json::from_str(s).map_err(|_| StoreError::Corrupt("certificate chain".into()))?;
    v.iter()
        .map(|c| {
            base64::engine::general_purpose::STANDARD
                .decode(c)
                .map_err(|_| StoreError::Corrupt("certificate chain".into()))
        })
        .collect()
}

pub(crate) fn hash32(v: Vec<u8>) -> StoreResult<[u8; 32]> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("audit hash length".into()))
}
