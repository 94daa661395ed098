//! Domain services: the rules of enrollment, login, grants, signing and
//! the operator's registry, independent of HTTP and of SQL. Handlers call
//! these; these call the [`Store`](crate::store::Store).

pub mod admin;
pub mod audit;
pub mod enrollment;
mod error;
pub mod evidence;
pub mod grant;
mod held_authorization;
pub mod limits;
pub mod login;
pub mod replicas;
pub mod signature;
pub mod signed_document;
pub mod signing_log;
pub mod sweep;
mod validity;
pub mod waiters;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ring::rand::{SecureRandom, SystemRandom};
use shomei_core::Origin;

pub use error::{Error, Result};

use crate::signing::{Kek, SigningBackend};
use crate::store::Store;

/// Grant and login policy (configurable; defaults follow the HPKI
/// second-certificate service).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Grant lifetime in seconds (18 h).
    pub grant_ttl_s: i64,
    /// Hour of day (0..=23, Asia/Tokyo) at which every grant ends, if set.
    pub cutoff_hour_jst: Option<u8>,
    /// Grant ends after this many seconds without a signature, if set.
    pub idle_timeout_s: Option<i64>,
    /// At most this many signatures per grant, if set.
    pub signature_cap: Option<i64>,
    /// Login lifetime in seconds (≤ 120).
    pub login_ttl_s: i64,
    /// RFC 8628 polling interval in seconds.
    pub poll_interval_s: i64,
    /// Longest enrollment code lifetime in seconds (≤ 600).
    pub enrollment_max_ttl_s: i64,
    /// Wrong activation passwords before the code locks.
    pub enrollment_max_attempts: i64,
    /// Enrolling a phone retires the practitioner's other phones.
    pub one_device_per_practitioner: bool,
    /// Platform attestation at enrollment (`[policy.attestation]`, docs/attestation.md).
    pub attestation: crate::attestation::AttestationPolicy,
    /// How the practitioner confirms the login happens at *their* terminal
    /// (relay-phishing defence, docs/protocol.md §8): `number` matching
    /// (default), or also a `code` the phone shows after approval that must
    /// be typed into the EHR before the token is issued.
    pub confirmation: Confirmation,
}

/// The `confirmation` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// The phone offers three numbers; the practitioner picks the one the EHR shows.
    #[default]
    Number,
    /// Number matching, and the EHR must send the code the phone shows after approval.
    Code,
}

impl Confirmation {
    /// Wire text (`number` / `code`).
    pub fn as_str(self) -> &'static str {
        match self {
            Confirmation::Number => "number",
            Confirmation::Code => "code",
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            grant_ttl_s: 18 * 3600,
            cutoff_hour_jst: None,
            idle_timeout_s: None,
            signature_cap: None,
            login_ttl_s: 120,
            poll_interval_s: 5,
            enrollment_max_ttl_s: 600,
            enrollment_max_attempts: 5,
            one_device_per_practitioner: true,
            attestation: crate::attestation::AttestationPolicy::default(),
            confirmation: Confirmation::Number,
        }
    }
}

/// Wall clock with an adjustable offset, so tests can move time forward
/// (expiry) without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
            + self.offset_ms.load(Ordering::Relaxed)
    }
    /// Moves this clock forward (tests).
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// The services and what they share.
pub struct App {
    pub store: Arc<dyn Store>,
    pub clock: Clock,
    pub policy: Policy,
    pub origin: Origin,
    pub kek: Arc<Kek>,
    pub backend: Arc<dyn SigningBackend>,
    /// Terminals waiting on a login (SSE, long-poll), woken per login.
    pub waiters: Arc<waiters::Waiters>,
    /// Per-terminal / per-address / per-device request budgets.
    pub limits: limits::RateLimits,
    pub(crate) signature_log: signature::SignatureLog,
    /// The audit key and where signed audit checkpoints go.
    pub checkpoints: audit::CheckpointSink,
    /// What `GET /metrics` reports (this server's own registry).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// HMAC key of stored user codes (loaded on first use, login.rs).
    pub(crate) user_code_key: tokio::sync::OnceCell<ring::hmac::Key>,
    /// Signing calls' authorizations held between calls (held_authorization.rs).
    pub(crate) held: held_authorization::HeldAuthorizations,
    /// Credentials' certificate validity periods, parsed once (validity.rs).
    pub(crate) validities: validity::Validities,
}

impl App {
    /// Wires the services; spawns the audit group-commit writer (needs a Tokio runtime).
    pub fn new(
        store: Arc<dyn Store>,
        policy: Policy,
        origin: Origin,
        kek: Arc<Kek>,
        backend: Arc<dyn SigningBackend>,
    ) -> Arc<App> {
        let metrics = Arc::new(crate::metrics::Metrics::new(store.backend()));
        let signature_log = signature::SignatureLog::spawn(store.clone(), metrics.clone());
        Arc::new(App {
            store,
            clock: Clock::default(),
            policy,
            origin,
            kek,
            backend,
            waiters: Arc::default(),
            limits: limits::RateLimits::default(),
            signature_log,
            checkpoints: audit::CheckpointSink::default(),
            metrics,
            user_code_key: tokio::sync::OnceCell::new(),
            held: held_authorization::HeldAuthorizations::default(),
            validities: validity::Validities::default(),
        })
    }

    /// Grant `grant_id` ended (or may have): drops what is held for it, its
    /// opened signing key and its signing calls' authorizations.
    pub(crate) fn release_grant(&self, grant_id: &str) {
        self.backend.release_grant(grant_id);
        self.held.release_grant(grant_id);
    }

    /// A revocation that ends grants without naming them (terminal, device,
    /// practitioner, credential): drops everything held for every grant.
    pub(crate) fn release_all(&self) {
        self.backend.release_all();
        self.held.release_all();
    }

    /// Signing calls' authorizations held now (tests, metrics).
    pub fn held_authorizations(&self) -> usize {
        self.held.len()
    }

    /// Wakes the terminals waiting on `login_id` (after its decision is committed).
    pub(crate) fn notify(&self, login_id: &str, status: &'static str) {
        self.waiters.wake(login_id, status);
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    SystemRandom::new().fill(&mut b).expect("system RNG");
    b
}

pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

pub(crate) fn new_uuid() -> String {
    uuid::Builder::from_random_bytes(random_bytes::<16>())
        .into_uuid()
        .to_string()
}

pub(crate) fn rfc3339(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub(crate) fn b64u(b: &[u8]) -> String {
    shomei_core::api::b64u::encode(b)
}
