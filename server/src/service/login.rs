//! The daily login, shaped as the RFC 8628 device authorization grant: a
//! registered terminal starts it, the phone fetches its context and signs a
//! decision, the terminal collects the grant with its device code.

use serde::Serialize;
use shomei_core::api::{DecisionRequest, DecisionResponse, LoginByCode, LoginContext, NamedRef, Outcome};
use shomei_core::approval::approval_bytes_from_secret_sha256;
use shomei_core::{Decision, DevicePublicKey, LoginId, LoginPayload, QrSecret, UserCode};

use super::{App, Confirmation, Error, Result, b64u, ct_eq, new_uuid, random_bytes, rfc3339, sha256};
use crate::metrics::LoginOutcome;
use crate::store::{AuditEvent, DecideOutcome, DecisionEvidence, Device, Grant, Login, LoginDecision, LoginStatus, Terminal};

/// RFC 8628 §3.2 response (plus `login_id` and `match_number`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: i64,
    pub interval: i64,
    pub login_id: String,
    pub match_number: u8,
    /// `number` or `code`: whether the token request must carry the
    /// confirmation code the phone shows after approval (§8 of protocol.md).
    pub confirmation: &'static str,
}

/// Wrong confirmation codes after which the login fails (its grant ends).
pub const CONFIRMATION_MAX_FAILURES: i64 = 3;
/// How long after the approval the confirmation code is accepted.
pub const CONFIRMATION_TTL_S: i64 = 300;
/// Digits of the confirmation code.
pub const CONFIRMATION_DIGITS: usize = 6;

/// Who approved the login, so the EHR can show whose signing day it opened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Approver {
    pub id: String,
    pub display_name: String,
    pub role: String,
}

/// Successful token response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub grant_id: String,
    /// The practitioner whose phone approved (extension).
    pub practitioner: Approver,
}

/// RFC 6749 / RFC 8628 token endpoint errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("authorization_pending")]
    AuthorizationPending,
    #[error("slow_down")]
    SlowDown,
    #[error("access_denied")]
    AccessDenied,
    #[error("expired_token")]
    ExpiredToken,
    #[error("invalid_grant")]
    InvalidGrant,
    #[error("invalid_client")]
    InvalidClient,
    #[error("invalid_request")]
    InvalidRequest,
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("server_error")]
    ServerError,
    /// Approved, but the `code` policy needs the code shown on the phone.
    #[error("confirmation_required")]
    ConfirmationRequired,
    /// The confirmation code is wrong (attempts remain).
    #[error("confirmation_wrong")]
    ConfirmationWrong,
    /// Too many wrong confirmation codes: the login failed.
    #[error("access_denied")]
    ConfirmationFailed,
}

impl TokenError {
    /// Human description for `error_description`.
    pub fn description(self) -> &'static str {
        match self {
            TokenError::AuthorizationPending => "the practitioner has not answered yet",
            TokenError::SlowDown => "polling too fast; interval increased by 5 seconds",
            TokenError::AccessDenied => "the practitioner denied the login",
            TokenError::ExpiredToken => "the login expired; start a new one",
            TokenError::InvalidGrant => "unknown device code, another terminal's login, or the token was already issued",
            TokenError::InvalidClient => "terminal authentication failed",
            TokenError::InvalidRequest => "missing or malformed parameter",
            TokenError::UnsupportedGrantType => "only urn:ietf:params:oauth:grant-type:device_code is supported",
            TokenError::ServerError => "internal error",
            TokenError::ConfirmationRequired => "approved on the phone: send the confirmation code the phone shows as confirmation_code",
            TokenError::ConfirmationWrong => "the confirmation code is wrong; the login fails after 3 wrong codes",
            TokenError::ConfirmationFailed => "too many wrong confirmation codes: the login failed and its grant ended",
        }
    }
}

/// What a waiting terminal is told (`events` / `wait`).
pub fn wire_status(l: &Login, now_ms: i64) -> &'static str {
    match l.status {
        LoginStatus::Pending if now_ms >= l.expires_ms => "expired",
        s => s.as_str(),
    }
}

/// A fresh user code: eight letters of RFC 8628 §6.1's consonant alphabet
/// (`shomei_core::user_code::ALPHABET`), each exactly 1/20 likely.
fn draw_user_code() -> UserCode {
    // Rejection sampling: a byte ≥ 240 (= 12 × 20) is dropped, so `b % 20`
    // has no bias (the plain modulus made 16 letters 13/12 as likely).
    let mut idx = [0u8; shomei_core::user_code::LETTERS];
    let mut n = 0;
    while n < idx.len() {
        for b in random_bytes::<16>() {
            if n < idx.len() && b < 240 {
                idx[n] = b % 20;
                n += 1;
            }
        }
    }
    UserCode::from_indices(idx).expect("indices are below 20")
}

/// Where the user-code HMAC key is kept (sealed under the KEK).
const USER_CODE_KEY_SETTING: &str = "user_code_key";
/// AAD of the sealed user-code key.
const USER_CODE_KEY_AAD: &[u8] = b"shomei.user-code-key.v1";
/// Draws before giving up on a code no open login holds (a clash is ~N/2^34.6).
const USER_CODE_DRAWS: usize = 4;

/// A random code of [`CONFIRMATION_DIGITS`] decimal digits.
fn confirmation_code() -> String {
    // 64 random bits reduced mod 10^6: the bias is below 2^-44.
    let n = u64::from_be_bytes(random_bytes::<8>()) % 10u64.pow(CONFIRMATION_DIGITS as u32);
    format!("{n:0width$}", width = CONFIRMATION_DIGITS)
}

/// What is stored of a confirmation code: a hash bound to the login.
fn confirmation_hash(login_id: &str, code: &str) -> Vec<u8> {
    sha256(format!("shomei.confirmation.v1\0{login_id}\0{code}").as_bytes())
}

/// The code as typed: digits only (spaces and hyphens a user may add are dropped).
fn normalize_code(typed: &str) -> String {
    typed.chars().filter(|c| !c.is_whitespace() && *c != '-').collect()
}

fn number_choices() -> ([u8; 3], u8) {
    let mut out = [0u8; 3];
    let mut i = 0;
    while i < 3 {
        let r = random_bytes::<2>();
        let n = 10 + (u16::from_be_bytes(r) % 90) as u8;
        if !out[..i].contains(&n) {
            out[i] = n;
            i += 1;
        }
    }
    let pick = out[(random_bytes::<1>()[0] % 3) as usize];
    (out, pick)
}

impl App {
    /// The key of the user-code HMAC: loaded from the settings table
    /// (sealed under the KEK), or generated and stored on first use; with
    /// several replicas the first stored key wins.
    async fn user_code_key(&self) -> Result<&ring::hmac::Key> {
        self.user_code_key
            .get_or_try_init(|| async {
                let sealed = match self.store.get_setting(USER_CODE_KEY_SETTING).await? {
                    Some(s) => s,
                    None => {
                        let sealed = self.kek.seal(&random_bytes::<32>(), USER_CODE_KEY_AAD);
                        self.store.put_setting_if_absent(USER_CODE_KEY_SETTING, &sealed).await?
                    }
                };
                let raw = self.kek.open(&sealed, USER_CODE_KEY_AAD).map_err(|e| Error::Internal(format!("user code key: {e}")))?;
                Ok(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &raw[..]))
            })
            .await
    }

    /// What is stored of a user code: HMAC-SHA256 of its eight letters. Keyed
    /// so that a copy of the database cannot be searched for codes.
    async fn user_code_hash(&self, code: &UserCode) -> Result<Vec<u8>> {
        let key = self.user_code_key().await?;
        Ok(ring::hmac::sign(key, code.letters()).as_ref().to_vec())
    }

    /// A code no open login holds, and its hash.
    async fn unused_user_code(&self, now: i64) -> Result<(UserCode, Vec<u8>)> {
        for _ in 0..USER_CODE_DRAWS {
            let code = draw_user_code();
            let hash = self.user_code_hash(&code).await?;
            match self.store.get_login_by_user_code_hash(&hash).await? {
                Some(l) if l.status == LoginStatus::Pending && now < l.expires_ms => continue,
                _ => return Ok((code, hash)),
            }
        }
        Err(Error::Internal("no unused user code after several draws".into()))
    }

    /// `POST /oauth/device_authorization`.
    pub async fn start_login(&self, terminal: &Terminal) -> Result<DeviceAuthorization> {
        self.limits.login(&terminal.id)?;
        let now = self.clock.now_ms();
        let (user_code, user_code_hash) = self.unused_user_code(now).await?;
        let login_id = LoginId::random();
        let secret = QrSecret::random();
        let device_code = random_bytes::<32>();
        let (choices, pick) = number_choices();
        let expires_ms = now.saturating_add(self.policy.login_ttl_s.saturating_mul(1000));
        let id = login_id.to_b64u();
        let row = Login {
            id: id.clone(),
            terminal_id: terminal.id.clone(),
            device_code_hash: sha256(&device_code),
            user_code_hash: Some(user_code_hash),
            code_device_id: None,
            secret_hash: secret.sha256().to_vec(),
            secret_sealed: self.kek.seal(secret.as_bytes(), id.as_bytes()),
            challenge: random_bytes::<32>().to_vec(),
            number_choices: choices,
            match_number: pick,
            status: LoginStatus::Pending,
            created_ms: now,
            expires_ms,
            last_poll_ms: None,
            poll_interval_s: self.policy.poll_interval_s,
            decided_ms: None,
            device_id: None,
            grant_id: None,
            confirmation_hash: None,
            confirmation_failures: 0,
        };
        let audit = AuditEvent::new(format!("terminal:{}", terminal.id), "login.start", id.clone(), serde_json::json!({ "expires_ms": expires_ms }));
        self.store.create_login(&row, &audit).await?;
        self.metrics.login_started();
        let payload = LoginPayload { origin: self.origin.clone(), login_id, secret, expires_at: (expires_ms / 1000) as u64 };
        Ok(DeviceAuthorization {
            device_code: b64u(&device_code),
            user_code: user_code.canonical(),
            verification_uri: format!("{}{}", self.origin.as_str(), shomei_core::payload::PAYLOAD_PATH),
            verification_uri_complete: payload.to_url(),
            expires_in: self.policy.login_ttl_s,
            interval: self.policy.poll_interval_s,
            login_id: id,
            match_number: pick,
            confirmation: self.policy.confirmation.as_str(),
        })
    }

    /// The terminal's own login (for the QR and wait endpoints).
    pub async fn terminal_login(&self, terminal: &Terminal, login_id: &str) -> Result<Login> {
        let l = self.store.get_login(login_id).await?.ok_or(Error::LoginUnknown)?;
        if l.terminal_id != terminal.id {
            // Do not tell other terminals which logins exist.
            return Err(Error::LoginUnknown);
        }
        Ok(l)
    }

    /// The QR payload URL of a login, redrawn from its sealed secret.
    pub fn login_payload_url(&self, l: &Login) -> Result<String> {
        let secret = self.kek.open(&l.secret_sealed, l.id.as_bytes()).map_err(|e| Error::Internal(e.to_string()))?;
        let bytes: [u8; 16] = secret.as_slice().try_into().map_err(|_| Error::Internal("sealed secret length".into()))?;
        let login_id = LoginId::from_b64u(&l.id).map_err(|e| Error::Internal(e.to_string()))?;
        let p = LoginPayload { origin: self.origin.clone(), login_id, secret: QrSecret::from_bytes(bytes), expires_at: (l.expires_ms / 1000) as u64 };
        Ok(p.to_url())
    }

    /// `POST /oauth/token` with the device-code grant; `confirmation_code`
    /// is the code the phone showed (needed when the login was approved
    /// under the `code` confirmation policy).
    pub async fn poll_token(&self, terminal: &Terminal, device_code: &str, confirmation_code: Option<&str>) -> Result<TokenResponse, TokenError> {
        let now = self.clock.now_ms();
        let raw = shomei_core::api::b64u::decode(device_code).map_err(|_| TokenError::InvalidGrant)?;
        let l = self
            .store
            .get_login_by_device_code_hash(&sha256(&raw))
            .await
            .map_err(|_| TokenError::ServerError)?
            .ok_or(TokenError::InvalidGrant)?;
        if l.terminal_id != terminal.id {
            return Err(TokenError::InvalidGrant);
        }
        match l.status {
            LoginStatus::Denied => Err(TokenError::AccessDenied),
            LoginStatus::Pending if now >= l.expires_ms => Err(TokenError::ExpiredToken),
            LoginStatus::Pending => {
                // RFC 8628 §3.5: too fast → slow_down and +5 s for this and later polls.
                let too_fast = l.last_poll_ms.is_some_and(|t| {
                    now.saturating_sub(t) < l.poll_interval_s.saturating_mul(1000)
                });
                let interval = if too_fast {
                    l.poll_interval_s.saturating_add(5)
                } else {
                    l.poll_interval_s
                };
                self.store
                    .touch_login_poll(&l.id, now, interval)
                    .await
                    .map_err(|_| TokenError::ServerError)?;
                Err(if too_fast {
                    TokenError::SlowDown
                } else {
                    TokenError::AuthorizationPending
                })
            }
            LoginStatus::Approved => {
                let grant_id = l.grant_id.clone().ok_or(TokenError::ServerError)?;
                let g = self.store.get_grant(&grant_id).await.map_err(|_| TokenError::ServerError)?.ok_or(TokenError::ServerError)?;
                if l.confirmation_hash.is_some() && l.confirmation_failures >= CONFIRMATION_MAX_FAILURES {
                    return Err(TokenError::ConfirmationFailed);
                }
                if g.revoked_ms.is_some() || now >= g.expires_ms {
                    return Err(TokenError::InvalidGrant);
                }
                if let Some(want) = &l.confirmation_hash {
                    self.check_confirmation(terminal, &l, &g.id, want, confirmation_code, now).await?;
                }
                let p = self.store.get_practitioner(&g.practitioner_id).await.map_err(|_| TokenError::ServerError)?.ok_or(TokenError::ServerError)?;
                let token = random_bytes::<32>();
                let audit = AuditEvent::new(format!("terminal:{}", terminal.id), "grant.token_issue", grant_id.clone(), serde_json::json!({}));
                let issued = self.store.issue_grant_token(&grant_id, &sha256(&token), &audit).await.map_err(|_| TokenError::ServerError)?;
                if !issued {
                    return Err(TokenError::InvalidGrant);
                }
                Ok(TokenResponse {
                    access_token: b64u(&token),
                    token_type: "Bearer",
                    expires_in: (g.expires_ms - now) / 1000,
                    grant_id,
                    practitioner: Approver { id: p.id, display_name: p.display_name, role: p.role },
                })
            }
        }
    }

    /// The `code` policy's check at the token endpoint: the code the
    /// practitioner typed must be the one their phone showed, within
    /// [`CONFIRMATION_TTL_S`] of the approval; each wrong code is audited and
    /// the [`CONFIRMATION_MAX_FAILURES`]th ends the grant.
    async fn check_confirmation(&self, terminal: &Terminal, l: &Login, grant_id: &str, want: &[u8], typed: Option<&str>, now: i64) -> Result<(), TokenError> {
        if l.decided_ms.is_some_and(|d| now >= d + CONFIRMATION_TTL_S * 1000) {
            return Err(TokenError::ExpiredToken);
        }
        let Some(typed) = typed else { return Err(TokenError::ConfirmationRequired) };
        // Constant-time: the hash comparison leaks nothing about the code.
        if ct_eq(&confirmation_hash(&l.id, &normalize_code(typed)), want) {
            return Ok(());
        }
        let audit = AuditEvent::new(format!("terminal:{}", terminal.id), "login.confirmation_wrong", l.id.clone(), serde_json::json!({ "grant": grant_id }));
        let failures = self
            .store
            .record_confirmation_failure(&l.id, grant_id, CONFIRMATION_MAX_FAILURES, now, &audit)
            .await
            .map_err(|_| TokenError::ServerError)?;
        Err(if failures >= CONFIRMATION_MAX_FAILURES { TokenError::ConfirmationFailed } else { TokenError::ConfirmationWrong })
    }

    async fn phone_login(&self, login_id: &str) -> Result<Login> {
        LoginId::from_b64u(login_id).map_err(|_| Error::LoginUnknown)?;
        self.store.get_login(login_id).await?.ok_or(Error::LoginUnknown)
    }

    fn check_open(&self, l: &Login, now: i64) -> Result<()> {
        match l.status {
            LoginStatus::Pending if now >= l.expires_ms => Err(Error::LoginExpired),
            LoginStatus::Pending => Ok(()),
            _ => Err(Error::LoginAlreadyDecided),
        }
    }

    async fn allowed_at_terminal(&self, device: &Device, terminal_id: &str) -> Result<(Terminal, bool)> {
        let t = self.store.get_terminal(terminal_id).await?.ok_or_else(|| Error::Internal("login names a missing terminal".into()))?;
        let p = self.store.get_practitioner(&device.practitioner_id).await?.ok_or_else(|| Error::Internal("device names a missing practitioner".into()))?;
        let ok = t.revoked_ms.is_none() && p.facility_ids.contains(&t.facility_id);
        Ok((t, ok))
    }

    async fn named(&self, t: &Terminal) -> Result<(NamedRef, NamedRef)> {
        let f = self.store.get_facility(&t.facility_id).await?.ok_or_else(|| Error::Internal("terminal names a missing facility".into()))?;
        Ok((named(&f.id, &f.name)?, named(&t.id, &t.name)?))
    }

    /// `POST /v1/phone/logins/{id}/context`.
    pub async fn login_context(&self, device: &Device, login_id: &str, secret: &QrSecret) -> Result<LoginContext> {
        let now = self.clock.now_ms();
        let l = self.phone_login(login_id).await?;
        if !ct_eq(&secret.sha256(), &l.secret_hash) {
            return Err(Error::LoginSecretWrong);
        }
        self.check_open(&l, now)?;
        let (t, allowed) = self.allowed_at_terminal(device, &l.terminal_id).await?;
        if !allowed {
            return Err(Error::PractitionerNotAllowed);
        }
        self.context_of(&l, &t).await
    }

    /// What the phone is shown of a login (§4.2), by the QR or the code path.
    async fn context_of(&self, l: &Login, t: &Terminal) -> Result<LoginContext> {
        let (facility, terminal) = self.named(t).await?;
        Ok(LoginContext {
            login_id: LoginId::from_b64u(&l.id).map_err(|e| Error::Internal(e.to_string()))?,
            facility,
            terminal,
            requested_at: rfc3339(l.created_ms),
            expires_at: rfc3339(l.expires_ms),
            number_choices: l.number_choices,
            challenge: l.challenge.clone().try_into().map_err(|_| Error::Internal("challenge length".into()))?,
        })
    }

    /// `POST /v1/phone/logins/by-code` (protocol.md §4.6): the typed-code
    /// fallback. The text is normalized first (`user_code_invalid`, no lookup,
    /// no budget spent); then one failure is reserved from the device's, the
    /// practitioner's and the server's code budgets and given back only if
    /// the code names an open login this practitioner may approve. Every
    /// lookup is audited (`login.code_resolve` / `login.code_refused`),
    /// never with the code.
    pub async fn login_by_code(&self, device: &Device, typed: &str) -> Result<LoginByCode> {
        let code = UserCode::parse(typed)?;
        let reservation = self.limits.code_lookup(&device.id, &device.practitioner_id)?;
        let now = self.clock.now_ms();
        let (found, login_id) = self.resolve_code(device, &code, now).await;
        match &found {
            Ok(_) => reservation.succeeded(),
            Err(e @ (Error::LoginUnknown | Error::LoginExpired | Error::LoginAlreadyDecided | Error::PractitionerNotAllowed)) => {
                // A guess (or a typo): the reservation stays spent.
                let subject = login_id.unwrap_or_else(|| device.id.clone());
                let audit = AuditEvent::new(format!("device:{}", device.id), "login.code_refused", subject, serde_json::json!({ "reason": e.code().as_str() }));
                self.store.append_audit(now, &audit).await?;
            }
            // A server fault is not the phone's failure.
            Err(_) => reservation.succeeded(),
        }
        found
    }

    /// The login a code names, if this device may see it; with the login id
    /// when the code named one (for the audit of a refusal).
    async fn resolve_code(&self, device: &Device, code: &UserCode, now: i64) -> (Result<LoginByCode>, Option<String>) {
        let hash = match self.user_code_hash(code).await {
            Ok(h) => h,
            Err(e) => return (Err(e), None),
        };
        let l = match self.store.get_login_by_user_code_hash(&hash).await {
            Ok(Some(l)) => l,
            Ok(None) => return (Err(Error::LoginUnknown), None),
            Err(e) => return (Err(e.into()), None),
        };
        // The index found it by hash; compare once more in constant time.
        if !l.user_code_hash.as_deref().is_some_and(|h| ct_eq(h, &hash)) {
            return (Err(Error::LoginUnknown), None);
        }
        let id = l.id.clone();
        (self.resolve_open_login(device, l, now).await, Some(id))
    }

    async fn resolve_open_login(&self, device: &Device, l: Login, now: i64) -> Result<LoginByCode> {
        self.check_open(&l, now)?;
        let (t, allowed) = self.allowed_at_terminal(device, &l.terminal_id).await?;
        if !allowed {
            return Err(Error::PractitionerNotAllowed);
        }
        let context = self.context_of(&l, &t).await?;
        let payload = self.login_payload_url(&l)?;
        let audit = AuditEvent::new(
            format!("device:{}", device.id),
            "login.code_resolve",
            l.id.clone(),
            serde_json::json!({ "terminal": l.terminal_id, "practitioner": device.practitioner_id }),
        );
        if !self.store.mark_login_code_resolved(&l.id, &device.id, now, &audit).await? {
            return Err(self.why_not_pending(&l.id, now).await);
        }
        Ok(LoginByCode { payload, context })
    }

    /// `POST /v1/phone/logins/{id}/decision`.
    pub async fn decide(&self, device: &Device, login_id: &str, req: &DecisionRequest) -> Result<DecisionResponse> {
        let now = self.clock.now_ms();
        if req.device_id.to_string() != device.id {
            return Err(Error::DeviceUnknown);
        }
        let l = self.phone_login(login_id).await?;
        self.check_open(&l, now)?;
        let key = DevicePublicKey::from_sec1(&device.public_key).map_err(|_| Error::Internal("stored device key".into()))?;
        let secret_hash: [u8; 32] = l.secret_hash.clone().try_into().map_err(|_| Error::Internal("secret hash".into()))?;
        let challenge: [u8; 32] = l.challenge.clone().try_into().map_err(|_| Error::Internal("challenge".into()))?;
        let lid = LoginId::from_b64u(&l.id).map_err(|e| Error::Internal(e.to_string()))?;
        let message = approval_bytes_from_secret_sha256(&self.origin, &lid, &secret_hash, *req.device_id.as_bytes(), req.decision, req.number, &challenge);
        key.verify(&message, &req.signature).map_err(|e| Error::SignatureInvalid(e.to_string()))?;

        let actor = format!("device:{}", device.id);
        // How the deciding phone found the login (protocol.md §4.6): an
        // auditor weighs a typed code (34.6 bits) differently from a scan.
        let via = via(&l, &device.id);
        // What the device signed, kept with the decision as evidence a third
        // party can check with OpenSSL (service/evidence.rs).
        let evidence = |outcome: LoginStatus, reason: &str| DecisionEvidence {
            login_id: l.id.clone(),
            device_id: device.id.clone(),
            outcome,
            reason: reason.to_owned(),
            message: message.clone(),
            signature: req.signature.clone(),
            public_key: device.public_key.clone(),
            // The verified attestation facts (issue 9) when the device has them.
            attestation: device.attestation_facts.as_ref().map(|f| serde_json::to_string(f).expect("attestation facts serialize")),
            decided_ms: now,
        };
        let deny = |reason: &str| LoginDecision {
            login_id: l.id.clone(),
            device_id: device.id.clone(),
            status: LoginStatus::Denied,
            now_ms: now,
            grant: None,
            evidence: Some(evidence(LoginStatus::Denied, reason)),
            confirmation_hash: None,
            audit: AuditEvent::new(actor.clone(), "login.deny", l.id.clone(), serde_json::json!({ "reason": reason, "via": via })),
        };
        let (t, allowed) = self.allowed_at_terminal(device, &l.terminal_id).await?;
        let refusal = if req.decision == Decision::Deny {
            None
        } else if !allowed {
            Some(("practitioner not allowed at facility", Error::PractitionerNotAllowed))
        } else if req.number != l.match_number {
            // A wrong number is the phishing signal number matching exists
            // for: the login is consumed so that guesses cannot be retried.
            Some(("number mismatch", Error::NumberMismatch))
        } else {
            None
        };
        if req.decision == Decision::Deny || refusal.is_some() {
            let reason = refusal.as_ref().map_or("user denied", |r| r.0);
            let outcome = self.store.decide_login(&deny(reason)).await?;
            if outcome == DecideOutcome::Done {
                self.notify(&l.id, "denied");
                self.metrics.logins_finished(
                    match &refusal {
                        None => LoginOutcome::Denied,
                        Some((_, Error::NumberMismatch)) => LoginOutcome::NumberMismatch,
                        Some(_) => LoginOutcome::NotAllowed,
                    },
                    1,
                );
            }
            if let Some((_, e)) = refusal {
                return Err(e);
            }
            return match outcome {
                DecideOutcome::Done => Ok(DecisionResponse { outcome: Outcome::Denied, grant: None, confirmation_code: None }),
                DecideOutcome::NotPending => Err(self.why_not_pending(&l.id, now).await),
            };
        }
        let grant = Grant {
            id: new_uuid(),
            practitioner_id: device.practitioner_id.clone(),
            terminal_id: l.terminal_id.clone(),
            device_id: device.id.clone(),
            login_id: l.id.clone(),
            token_hash: None,
            created_ms: now,
            expires_ms: self.grant_expiry(now),
            last_used_ms: now,
            idle_timeout_s: self.policy.idle_timeout_s,
            signature_cap: self.policy.signature_cap,
            signatures_made: 0,
            revoked_ms: None,
            revoked_reason: None,
        };
        // The code goes to the phone only (never to a log or the audit);
        // the login keeps its hash.
        let code = (self.policy.confirmation == Confirmation::Code).then(confirmation_code);
        let d = LoginDecision {
            login_id: l.id.clone(),
            device_id: device.id.clone(),
            status: LoginStatus::Approved,
            now_ms: now,
            grant: Some(grant.clone()),
            evidence: Some(evidence(LoginStatus::Approved, "user approved")),
            confirmation_hash: code.as_deref().map(|c| confirmation_hash(&l.id, c)),
            audit: AuditEvent::new(actor, "login.approve", l.id.clone(), serde_json::json!({ "grant": grant.id, "terminal": l.terminal_id, "practitioner": device.practitioner_id, "via": via })),
        };
        match self.store.decide_login(&d).await? {
            DecideOutcome::Done => {
                self.notify(&l.id, "approved");
                self.metrics.logins_finished(LoginOutcome::Approved, 1);
                let summary = self.grant_summary_for(&grant, &t).await?;
                Ok(DecisionResponse { outcome: Outcome::Approved, grant: Some(summary), confirmation_code: code })
            }
            DecideOutcome::NotPending => Err(self.why_not_pending(&l.id, now).await),
        }
    }

    async fn why_not_pending(&self, login_id: &str, now: i64) -> Error {
        match self.store.get_login(login_id).await {
            Ok(Some(l)) if l.status == LoginStatus::Pending && now >= l.expires_ms => Error::LoginExpired,
            Ok(_) => Error::LoginAlreadyDecided,
            Err(e) => e.into(),
        }
    }
}

/// `code` when `device_id` resolved the login by its typed code, else `qr`.
pub(crate) fn via(l: &Login, device_id: &str) -> &'static str {
    if l.code_device_id.as_deref() == Some(device_id) { "code" } else { "qr" }
}

pub(crate) fn named(id: &str, name: &str) -> Result<NamedRef> {
    Ok(NamedRef { id: uuid::Uuid::parse_str(id).map_err(|e| Error::Internal(format!("stored id {id}: {e}")))?, name: name.to_owned() })
}
