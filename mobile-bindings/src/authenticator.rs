//! The phone's enrollment with one Shomei server, and the calls it makes there.
//!
//! A thin shell over `shomei_core::client`: it keeps the enrollment state, converts types at
//! the FFI edge and runs requests on the bindings' runtime. Every check (origin match,
//! message canonicalisation, response validation) happens in core.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use shomei_core::api;
use shomei_core::client::{Client, ClientError, Enrollment};
use shomei_core::key::KeyError;
use shomei_core::payload::{EnrollmentPayload, LoginPayload, PayloadError as CorePayloadError};

use crate::key::{ForeignKey, PlatformKey};
use crate::payload::now_unix;
use crate::runtime;

/// Which kind of phone is enrolling (stored by the server for the operator's device list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Platform {
    Android,
    Ios,
    Desktop,
}

/// Who this phone is enrolled as, and where. (The device token is deliberately absent: it is
/// only in `export_state`, which the app must store encrypted.)
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct EnrollmentState {
    pub server_origin: String,
    pub device_id: String,
    pub practitioner_id: String,
    pub practitioner_name: String,
    /// "doctor", "dentist" or "pharmacist".
    pub practitioner_role: String,
}

/// What the server says about a pending login: show all of it before asking for the biometric.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LoginContext {
    pub login_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub terminal_id: String,
    pub terminal_name: String,
    pub requested_at: SystemTime,
    pub expires_at: SystemTime,
    /// Three two-digit numbers; the user picks the one the EHR screen shows.
    pub number_choices: Vec<u8>,
    /// The server's nonce, bound into the signature (opaque to the app).
    pub challenge: Vec<u8>,
}

/// A login found by its typed code (docs/protocol.md §4.6): the payload the login's QR shows
/// and its context. Show the context, then `approve(payload, context, number)` or `deny` as after
/// a scan — the same decision and the same signed message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CodeLogin {
    /// The login QR's payload URL (pass it to `approve` / `deny`).
    pub payload: String,
    pub context: LoginContext,
}

/// An active grant: a terminal that may sign for this practitioner until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Grant {
    pub id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub terminal_id: String,
    pub terminal_name: String,
    pub created_at: SystemTime,
    pub expires_at: SystemTime,
    pub signatures_made: u32,
    pub signature_cap: Option<u32>,
}

/// How a signature was made: signHash (raw) or signDoc (XAdES / CMS container).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum SignatureFormat {
    Hash,
    Xades,
    Cms,
}

/// One signature made in this practitioner's name (docs/protocol.md §9).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignatureEntry {
    /// Position in the server's signing log (increasing); resume following after it.
    pub seq: u64,
    pub signed_at: SystemTime,
    pub grant_id: String,
    pub facility_id: String,
    pub facility_name: String,
    pub terminal_id: String,
    pub terminal_name: String,
    pub credential_id: String,
    /// "rsa-pkcs1-sha256" or "ecdsa-p256-sha256".
    pub algorithm: String,
    pub format: SignatureFormat,
    /// The signed SHA-256 digest, standard base64 (as the EHR sent it).
    pub digest_base64: String,
    /// The EHR's document label, if it gave one (show it as plain text).
    pub label: Option<String>,
}

/// A page (or a `since` batch) of the signing log.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SignaturePage {
    /// Newest first for pages; oldest first for `signatures_since`.
    pub entries: Vec<SignatureEntry>,
    /// Follow from here with `signatures_since`.
    pub watermark: u64,
    /// Pages only: pass to `signatures` for the next (older) page.
    pub next_cursor: Option<String>,
    /// More are waiting: fetch the next page, or call `signatures_since(watermark)` again at once.
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Outcome {
    Approved,
    Denied,
}

/// The server's answer to a decision.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DecisionResult {
    pub outcome: Outcome,
    /// Present when approved.
    pub grant: Option<Grant>,
    /// With the server's `code` confirmation policy: show this code after
    /// approval; the practitioner types it into the EHR (docs/protocol.md §8).
    pub confirmation_code: Option<String>,
}

/// Every way an `Authenticator` call can fail. Key failures keep their own variants so the
/// app can react (cancelled: do nothing; lockout: explain; invalidated: re-enroll).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum AuthenticatorError {
    #[error("invalid code: {reason}")]
    InvalidPayload { reason: String },
    /// The typed login code is not a code (a character outside the code alphabet, a wrong
    /// length); nothing was sent. `reason` names the character and its position.
    #[error("not a login code: {reason}")]
    InvalidUserCode { reason: String },
    #[error("the code has expired")]
    PayloadExpired,
    #[error("wrong kind of code: {reason}")]
    WrongPayloadKind { reason: String },
    #[error("this phone is not enrolled")]
    NotEnrolled,
    #[error("this phone is already enrolled; forget the enrollment first")]
    AlreadyEnrolled,
    #[error("the user cancelled the biometric check")]
    UserCancelled,
    #[error("biometrics are locked out")]
    BiometricLockout,
    #[error("the device key was invalidated; enroll this phone again")]
    KeyInvalidated,
    #[error("the device key is not available: {reason}")]
    KeyNotAvailable { reason: String },
    #[error("the device key failed: {reason}")]
    KeyFailed { reason: String },
    #[error("the code belongs to a different server than this phone is enrolled with")]
    WrongServer,
    #[error("network error: {reason}")]
    Network { reason: String },
    #[error("the server did not answer in time")]
    Timeout,
    /// The server refused; `code` is the stable problem code from docs/api.md
    /// (e.g. "login_expired", "number_mismatch", "device_revoked").
    #[error("the server refused ({status} {code}): {detail}")]
    Rejected { status: u16, code: String, detail: String },
    /// An argument the app passed is unusable (device name length, a number that was not
    /// offered, a context from another login, a malformed grant id).
    #[error("invalid input: {reason}")]
    InvalidInput { reason: String },
    #[error("unexpected server response: {reason}")]
    Protocol { reason: String },
    #[error("stored enrollment state is unusable: {reason}")]
    InvalidState { reason: String },
    #[error("internal error: {reason}")]
    Internal { reason: String },
}

impl From<CorePayloadError> for AuthenticatorError {
    fn from(e: CorePayloadError) -> Self {
        match e {
            CorePayloadError::Expired { .. } => AuthenticatorError::PayloadExpired,
            CorePayloadError::WrongKind { .. } => AuthenticatorError::WrongPayloadKind {
                reason: e.to_string(),
            },
            other => AuthenticatorError::InvalidPayload {
                reason: other.to_string(),
            },
        }
    }
}

impl From<shomei_core::UserCodeError> for AuthenticatorError {
    fn from(e: shomei_core::UserCodeError) -> Self {
        AuthenticatorError::InvalidUserCode { reason: e.to_string() }
    }
}

impl From<KeyError> for AuthenticatorError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::UserCancelled => AuthenticatorError::UserCancelled,
            KeyError::BiometricLockout => AuthenticatorError::BiometricLockout,
            KeyError::KeyInvalidated => AuthenticatorError::KeyInvalidated,
            KeyError::NotAvailable(reason) => AuthenticatorError::KeyNotAvailable { reason },
            KeyError::Failed(reason) => AuthenticatorError::KeyFailed { reason },
        }
    }
}

impl From<ClientError> for AuthenticatorError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Network(reason) => AuthenticatorError::Network { reason },
            ClientError::Timeout => AuthenticatorError::Timeout,
            ClientError::Rejected { status, code, detail } => AuthenticatorError::Rejected {
                status,
                code: error_code_name(&code),
                detail,
            },
            ClientError::Key(k) => k.into(),
            ClientError::WrongServer => AuthenticatorError::WrongServer,
            ClientError::InvalidInput(reason) => AuthenticatorError::InvalidInput { reason },
            ClientError::Protocol(reason) => AuthenticatorError::Protocol { reason },
        }
    }
}

/// The wire spelling of core's `ErrorCode` (what docs/api.md lists).
fn error_code_name(code: &api::ErrorCode) -> String {
    code.as_str().to_owned()
}

fn internal(reason: String) -> AuthenticatorError {
    AuthenticatorError::Internal { reason }
}

/// One phone's enrollment with one server, plus the device key that signs for it.
#[derive(uniffi::Object)]
pub struct Authenticator {
    /// The device key; replaced by the enrolled key on a successful `enroll`.
    key: Mutex<Arc<ForeignKey>>,
    enrollment: Mutex<Option<Arc<Enrolled>>>,
}

/// Enrollment plus a client already pointed at its server (reuses connections).
struct Enrolled {
    enrollment: Enrollment,
    client: Client,
}

impl Enrolled {
    fn new(enrollment: Enrollment) -> Result<Enrolled, AuthenticatorError> {
        let client = Client::new(enrollment.origin.clone())?;
        Ok(Enrolled { enrollment, client })
    }
}

/// The typed login code in its canonical spelling (`BCDF-GHJK`), or why it is not a code
/// (docs/protocol.md §4.6: case, spaces and hyphens — also full-width — do not matter; only the
/// 20 letters BCDFGHJKLMNPQRSTVWXZ count). Lets the entry screen refuse a typo before sending.
#[uniffi::export]
pub fn normalize_user_code(typed: String) -> Result<String, AuthenticatorError> {
    Ok(shomei_core::UserCode::parse(&typed)?.canonical())
}

/// The 32-byte attestation challenge of an enrollment code (docs/protocol.md §3.3). Android
/// needs it BEFORE generating the key: `KeyGenParameterSpec.Builder.setAttestationChallenge`.
#[uniffi::export]
pub fn enrollment_attestation_challenge(payload: String) -> Result<Vec<u8>, AuthenticatorError> {
    let payload = EnrollmentPayload::parse(&payload, now_unix())?;
    Ok(shomei_core::attestation::enrollment_attestation_challenge(&payload).to_vec())
}

impl Authenticator {
    fn enrolled(&self) -> Result<Arc<Enrolled>, AuthenticatorError> {
        self.enrollment
            .lock()
            .map_err(|_| internal("enrollment lock poisoned".into()))?
            .clone()
            .ok_or(AuthenticatorError::NotEnrolled)
    }
}

#[uniffi::export]
impl Authenticator {
    /// A phone with no enrollment yet.
    #[uniffi::constructor]
    pub fn new(key: Arc<dyn PlatformKey>) -> Arc<Self> {
        Arc::new(Authenticator {
            key: Mutex::new(Arc::new(ForeignKey(key))),
            enrollment: Mutex::new(None),
        })
    }

    /// A phone restored from `export_state` (same key as at enrollment).
    #[uniffi::constructor]
    pub fn restore(key: Arc<dyn PlatformKey>, state: String) -> Result<Arc<Self>, AuthenticatorError> {
        let enrollment: Enrollment = serde_json::from_str(&state).map_err(|e| {
            AuthenticatorError::InvalidState {
                reason: e.to_string(),
            }
        })?;
        Ok(Arc::new(Authenticator {
            key: Mutex::new(Arc::new(ForeignKey(key))),
            enrollment: Mutex::new(Some(Arc::new(Enrolled::new(enrollment)?))),
        }))
    }

    /// The enrollment as JSON for the app to persist (encrypted: it holds the device token),
    /// or `None` when not enrolled.
    pub fn export_state(&self) -> Option<String> {
        let enrolled = self.enrolled().ok()?;
        serde_json::to_string(&enrolled.enrollment).ok()
    }

    /// Who and where this phone is enrolled, or `None`.
    pub fn enrollment(&self) -> Option<EnrollmentState> {
        let enrolled = self.enrolled().ok()?;
        Some(enrollment_state(&enrolled.enrollment))
    }

    /// Drops the local enrollment (the server side is revoked by the operator).
    pub fn forget(&self) {
        if let Ok(mut guard) = self.enrollment.lock() {
            *guard = None;
        }
    }

    /// Enrolls this phone with the server named in an enrollment code, with `key`: the NEW
    /// device key (the app creates it under a temporary alias/tag; on Android with
    /// `setAttestationChallenge(enrollment_attestation_challenge(payload))`). Refuses
    /// `AlreadyEnrolled` before touching anything. Core signs the enrollment proof with `key`,
    /// asks it for its platform attestation (`PlatformKey.attestation`) and sends both; on
    /// success this Authenticator signs with `key` from then on (the app then keeps that
    /// alias/tag), on failure nothing changes.
    pub async fn enroll(
        self: Arc<Self>,
        payload: String,
        activation_password: String,
        device_name: String,
        platform: Platform,
        key: Arc<dyn PlatformKey>,
    ) -> Result<EnrollmentState, AuthenticatorError> {
        if self.enrolled().is_ok() {
            return Err(AuthenticatorError::AlreadyEnrolled);
        }
        let payload = EnrollmentPayload::parse(&payload, now_unix())?;
        let key = Arc::new(ForeignKey(key));
        let enrolling = key.clone();
        let enrollment = runtime::run(async move {
            let client = Client::new(payload.origin.clone())?;
            let enrollment = client
                .enroll(&payload, &activation_password, enrolling.as_ref(), &device_name, platform.into())
                .await?;
            Ok::<_, AuthenticatorError>(enrollment)
        })
        .await
        .map_err(internal)??;
        let state = enrollment_state(&enrollment);
        let enrolled = Arc::new(Enrolled::new(enrollment)?);
        let mut guard = self.enrollment.lock().map_err(|_| internal("enrollment lock poisoned".into()))?;
        if guard.is_some() {
            // Another enroll call won the race meanwhile; keep its key and enrollment.
            return Err(AuthenticatorError::AlreadyEnrolled);
        }
        *self.key.lock().map_err(|_| internal("key lock poisoned".into()))? = key;
        *guard = Some(enrolled);
        Ok(state)
    }

    /// Fetches what a scanned login QR is about (facility, terminal, numbers) from the server.
    pub async fn login_context(self: Arc<Self>, payload: String) -> Result<LoginContext, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let payload = LoginPayload::parse(&payload, now_unix())?;
        runtime::run(async move {
            let ctx = enrolled.client.login_context(&enrolled.enrollment, &payload).await?;
            login_context_to_ffi(ctx)
        })
        .await
        .map_err(internal)?
    }

    /// The typed-code fallback (docs/protocol.md §4.6): when the camera cannot read the QR, the
    /// practitioner types the code the EHR shows beside it. Checks the code locally
    /// (`InvalidUserCode`, nothing sent), then asks the server for that login's payload and
    /// context. Continue with `approve(result.payload, result.context, number)`.
    pub async fn login_by_code(self: Arc<Self>, code: String) -> Result<CodeLogin, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let code = shomei_core::UserCode::parse(&code)?;
        runtime::run(async move {
            let (payload, ctx) = enrolled.client.login_by_code(&enrolled.enrollment, &code).await?;
            Ok(CodeLogin { payload: payload.to_url(), context: login_context_to_ffi(ctx)? })
        })
        .await
        .map_err(internal)?
    }

    /// Approves the login with the number the user picked; asks the key (biometric) to sign.
    pub async fn approve(
        self: Arc<Self>,
        payload: String,
        context: LoginContext,
        number: u8,
    ) -> Result<DecisionResult, AuthenticatorError> {
        self.decide(payload, context, shomei_core::Decision::Approve, number).await
    }

    /// Denies the login ("this wasn't me"); signed too. `number` may be 0.
    pub async fn deny(
        self: Arc<Self>,
        payload: String,
        context: LoginContext,
        number: u8,
    ) -> Result<DecisionResult, AuthenticatorError> {
        self.decide(payload, context, shomei_core::Decision::Deny, number).await
    }

    /// This practitioner's active grants.
    pub async fn grants(self: Arc<Self>) -> Result<Vec<Grant>, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        runtime::run(async move {
            let grants = enrolled.client.grants(&enrolled.enrollment).await?;
            grants.into_iter().map(grant_to_ffi).collect()
        })
        .await
        .map_err(internal)?
    }

    /// Ends one grant (the terminal can no longer sign with it).
    pub async fn end_grant(self: Arc<Self>, grant_id: String) -> Result<(), AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let grant_id = grant_id.parse().map_err(|_| AuthenticatorError::InvalidInput {
            reason: "grant id is not a UUID".into(),
        })?;
        runtime::run(async move {
            enrolled.client.end_grant(&enrolled.enrollment, grant_id).await?;
            Ok(())
        })
        .await
        .map_err(internal)?
    }

    /// One page of the signing log, newest first: one grant's (`grant_id`) or the last 24 hours
    /// across all grants. `cursor`: the previous page's `next_cursor`; `limit` 1..=200.
    pub async fn signatures(
        self: Arc<Self>,
        grant_id: Option<String>,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SignaturePage, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let grant = grant_id.as_deref().map(parse_grant_id).transpose()?;
        runtime::run(async move {
            let list = enrolled.client.signatures(&enrolled.enrollment, grant, cursor.as_deref(), limit).await?;
            signature_page_to_ffi(list)
        })
        .await
        .map_err(internal)?
    }

    /// The signatures recorded after `since` (a `watermark` or `seq` seen before), oldest first.
    /// Poll it while the app is in the foreground and once on return from the background.
    pub async fn signatures_since(
        self: Arc<Self>,
        grant_id: Option<String>,
        since: u64,
        limit: u32,
    ) -> Result<SignaturePage, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let grant = grant_id.as_deref().map(parse_grant_id).transpose()?;
        runtime::run(async move {
            let list = enrolled.client.signatures_since(&enrolled.enrollment, grant, since, limit).await?;
            signature_page_to_ffi(list)
        })
        .await
        .map_err(internal)?
    }

    /// Ends every grant of this practitioner; returns how many were ended.
    pub async fn end_all_grants(self: Arc<Self>) -> Result<u32, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        runtime::run(async move { Ok(enrolled.client.end_all_grants(&enrolled.enrollment).await?) })
            .await
            .map_err(internal)?
    }
}

impl Authenticator {
    async fn decide(
        self: Arc<Self>,
        payload: String,
        context: LoginContext,
        decision: shomei_core::Decision,
        number: u8,
    ) -> Result<DecisionResult, AuthenticatorError> {
        let enrolled = self.enrolled()?;
        let payload = LoginPayload::parse(&payload, now_unix())?;
        let context = login_context_from_ffi(context)?;
        let key = self.key.lock().map_err(|_| internal("key lock poisoned".into()))?.clone();
        runtime::run(async move {
            let response = enrolled
                .client
                .decide(&enrolled.enrollment, &payload, &context, decision, number, key.as_ref())
                .await?;
            decision_to_ffi(response)
        })
        .await
        .map_err(internal)?
    }
}

// ---- conversions at the FFI edge (no decisions here: core and the server make them) ----

fn enrollment_state(e: &Enrollment) -> EnrollmentState {
    EnrollmentState {
        server_origin: e.origin.as_str().to_owned(),
        device_id: e.device_id.to_string(),
        practitioner_id: e.practitioner.id.to_string(),
        practitioner_name: e.practitioner.display_name.clone(),
        practitioner_role: role_name(e.practitioner.role).to_owned(),
    }
}

fn role_name(role: api::Role) -> &'static str {
    match role {
        api::Role::Doctor => "doctor",
        api::Role::Dentist => "dentist",
        api::Role::Pharmacist => "pharmacist",
    }
}

impl From<Platform> for api::Platform {
    fn from(p: Platform) -> Self {
        match p {
            Platform::Android => api::Platform::Android,
            Platform::Ios => api::Platform::Ios,
            Platform::Desktop => api::Platform::Desktop,
        }
    }
}

fn login_context_to_ffi(ctx: api::LoginContext) -> Result<LoginContext, AuthenticatorError> {
    Ok(LoginContext {
        login_id: ctx.login_id.to_b64u(),
        facility_id: ctx.facility.id.to_string(),
        facility_name: ctx.facility.name,
        terminal_id: ctx.terminal.id.to_string(),
        terminal_name: ctx.terminal.name,
        requested_at: ctx.requested_at.into(),
        expires_at: ctx.expires_at.into(),
        number_choices: ctx.number_choices.to_vec(),
        challenge: ctx.challenge.to_vec(),
    })
}

/// The app hands back the context it was shown; rebuild core's type from it. A context the
/// app altered only changes what is signed, which the server then rejects.
fn login_context_from_ffi(ctx: LoginContext) -> Result<api::LoginContext, AuthenticatorError> {
    let bad = |what: &str| AuthenticatorError::InvalidState {
        reason: format!("login context: {what}"),
    };
    Ok(api::LoginContext {
        login_id: shomei_core::LoginId::from_b64u(&ctx.login_id).map_err(|_| bad("login_id"))?,
        facility: api::NamedRef {
            id: ctx.facility_id.parse().map_err(|_| bad("facility_id"))?,
            name: ctx.facility_name,
        },
        terminal: api::NamedRef {
            id: ctx.terminal_id.parse().map_err(|_| bad("terminal_id"))?,
            name: ctx.terminal_name,
        },
        requested_at: ctx.requested_at.into(),
        expires_at: ctx.expires_at.into(),
        number_choices: ctx.number_choices.try_into().map_err(|_| bad("number_choices"))?,
        challenge: ctx.challenge.try_into().map_err(|_| bad("challenge"))?,
    })
}

fn grant_to_ffi(g: api::GrantSummary) -> Result<Grant, AuthenticatorError> {
    Ok(Grant {
        id: g.id.to_string(),
        facility_id: g.facility.id.to_string(),
        facility_name: g.facility.name,
        terminal_id: g.terminal.id.to_string(),
        terminal_name: g.terminal.name,
        created_at: g.created_at.into(),
        expires_at: g.expires_at.into(),
        signatures_made: g.signatures_made,
        signature_cap: g.signature_cap,
    })
}

/// A grant id as core's client takes it (a UUID).
fn parse_grant_id(id: &str) -> Result<api::GrantIdType, AuthenticatorError> {
    id.parse().map_err(|_| AuthenticatorError::InvalidInput {
        reason: "grant id is not a UUID".into(),
    })
}

fn signature_page_to_ffi(l: api::SignatureList) -> Result<SignaturePage, AuthenticatorError> {
    Ok(SignaturePage {
        entries: l
            .signatures
            .into_iter()
            .map(|e| SignatureEntry {
                seq: e.seq,
                signed_at: e.signed_at.into(),
                grant_id: e.grant_id.to_string(),
                facility_id: e.facility.id.to_string(),
                facility_name: e.facility.name,
                terminal_id: e.terminal.id.to_string(),
                terminal_name: e.terminal.name,
                credential_id: e.credential_id,
                algorithm: e.algorithm,
                format: match e.format {
                    api::SignatureFormat::Hash => SignatureFormat::Hash,
                    api::SignatureFormat::Xades => SignatureFormat::Xades,
                    api::SignatureFormat::Cms => SignatureFormat::Cms,
                },
                digest_base64: api::b64std::encode(&e.digest),
                label: e.label,
            })
            .collect(),
        watermark: l.watermark,
        next_cursor: l.next_cursor,
        more: l.more,
    })
}

fn decision_to_ffi(r: api::DecisionResponse) -> Result<DecisionResult, AuthenticatorError> {
    Ok(DecisionResult {
        outcome: match r.outcome {
            api::Outcome::Approved => Outcome::Approved,
            api::Outcome::Denied => Outcome::Denied,
        },
        grant: r.grant.map(grant_to_ffi).transpose()?,
        confirmation_code: r.confirmation_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attestation_challenge_of_a_payload_is_cores() {
        let p = EnrollmentPayload {
            origin: shomei_core::Origin::parse("https://shomei.example.jp").unwrap(),
            enrollment_id: shomei_core::EnrollmentId([1; 16]),
            secret: shomei_core::QrSecret::from_bytes([2; 16]),
            expires_at: u32::MAX as u64,
        };
        let got = enrollment_attestation_challenge(p.to_url()).unwrap();
        assert_eq!(got, shomei_core::attestation::enrollment_attestation_challenge(&p).to_vec());
        assert_eq!(got.len(), 32);
        assert!(matches!(
            enrollment_attestation_challenge("https://example.com/nope".into()),
            Err(AuthenticatorError::InvalidPayload { .. })
        ));
    }

    #[test]
    fn a_server_refusal_keeps_status_and_the_wire_code() {
        let e = AuthenticatorError::from(ClientError::Rejected {
            status: 403,
            code: api::ErrorCode::NumberMismatch,
            detail: "wrong number".into(),
        });
        assert_eq!(
            e,
            AuthenticatorError::Rejected {
                status: 403,
                code: "number_mismatch".into(),
                detail: "wrong number".into()
            }
        );
    }

    #[test]
    fn a_key_failure_inside_a_client_error_keeps_its_own_variant() {
        assert_eq!(
            AuthenticatorError::from(ClientError::Key(KeyError::UserCancelled)),
            AuthenticatorError::UserCancelled
        );
        assert_eq!(
            AuthenticatorError::from(ClientError::Key(KeyError::KeyInvalidated)),
            AuthenticatorError::KeyInvalidated
        );
    }

    #[test]
    fn an_expired_code_is_payload_expired() {
        let e = AuthenticatorError::from(CorePayloadError::Expired { expires_at: 1, now: 2 });
        assert_eq!(e, AuthenticatorError::PayloadExpired);
    }

    #[test]
    fn a_login_context_survives_the_trip_through_the_app() {
        let ctx = api::LoginContext {
            login_id: shomei_core::LoginId::random(),
            facility: api::NamedRef { id: "6f1c2b8e-0000-4000-8000-000000000001".parse().unwrap(), name: "さくら".into() },
            terminal: api::NamedRef { id: "6f1c2b8e-0000-4000-8000-000000000002".parse().unwrap(), name: "PC".into() },
            requested_at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            expires_at: time::OffsetDateTime::from_unix_timestamp(1_800_000_120).unwrap(),
            number_choices: [12, 34, 56],
            challenge: [7; 32],
        };
        let back = login_context_from_ffi(login_context_to_ffi(ctx.clone()).unwrap()).unwrap();
        assert_eq!(back, ctx);
    }

    #[test]
    fn a_tampered_challenge_length_is_invalid_state() {
        let mut ffi = LoginContext {
            login_id: shomei_core::LoginId::random().to_b64u(),
            facility_id: "6f1c2b8e-0000-4000-8000-000000000001".into(),
            facility_name: "f".into(),
            terminal_id: "6f1c2b8e-0000-4000-8000-000000000002".into(),
            terminal_name: "t".into(),
            requested_at: SystemTime::UNIX_EPOCH,
            expires_at: SystemTime::UNIX_EPOCH,
            number_choices: vec![12, 34, 56],
            challenge: vec![0; 32],
        };
        ffi.challenge.pop();
        assert!(matches!(login_context_from_ffi(ffi), Err(AuthenticatorError::InvalidState { .. })));
    }
}
