//! The desktop phone: enrollment, scanning a login QR from pixels, approving with number match,
//! and managing grants, on top of shomei-core's client, scanner and software key.
//!
//! State that a real app would keep in its private storage (server origin, device id, device
//! token, the login being looked at) is a JSON file in the state directory; the device's
//! private key is not in it but in the keyring-core store (see [`crate::keystore`]).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use shomei_core::api::{GrantSummary, LoginContext, Platform, SignatureEntry};
use shomei_core::approval::Decision;
use shomei_core::client::{Client, ClientError, Enrollment};
use shomei_core::key::{KeyError, SoftwareKey};
use shomei_core::origin::Origin;
use uuid::Uuid;
use shomei_core::payload::{EnrollmentPayload, LoginPayload, Payload, PayloadError};
use shomei_core::scan::{ScanError, ScanOutcome};

/// keyring-core service name under which device keys are kept.
pub const KEY_SERVICE: &str = "shomei-phone";
const STATE_FILE: &str = "phone.json";

/// Everything that can go wrong on the desktop phone, typed so that tests can match on it.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    #[error("state directory {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
    #[error("state file {path} is corrupt: {source}")]
    StateCorrupt { path: PathBuf, source: serde_json::Error },
    #[error("this phone is not enrolled yet (run `shomei-phone enroll`)")]
    NotEnrolled,
    #[error("this phone is already enrolled with {0}; use a fresh --state directory")]
    AlreadyEnrolled(String),
    #[error("cannot read image {path}: {source}")]
    Image { path: PathBuf, source: image::ImageError },
    #[error("no QR code found in the image")]
    NothingFound,
    #[error("the image holds QR codes, but none is a Shomei code: {0:?}")]
    ForeignQr(Vec<String>),
    #[error("bad camera frame: {0}")]
    Scan(#[from] ScanError),
    #[error("QR payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("this is an enrollment code, not a login code")]
    NotALogin,
    #[error("this is a login code, not an enrollment code")]
    NotAnEnrollment,
    #[error("the QR code expired; ask the EHR to show a new one")]
    Expired,
    #[error("the QR code names server {qr}, but this phone is enrolled with {enrolled}")]
    WrongServer { qr: String, enrolled: String },
    #[error("no login is pending (run `shomei-phone scan` first)")]
    NoPendingLogin,
    #[error("{0} is not one of the offered numbers {1:?}")]
    NumberNotOffered(u8, Vec<u8>),
    #[error("device key: {0}")]
    Key(#[from] KeyError),
    #[error("key store: {0}")]
    KeyStore(#[from] crate::keystore::KeyStoreError),
    #[error("server: {0}")]
    Client(#[from] ClientError),
    #[error("typed code: {0}")]
    UserCode(#[from] shomei_core::UserCodeError),
}

/// A login the phone has scanned and fetched the context for, awaiting the user's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub payload_url: String,
    pub context: LoginContext,
}

/// The phone's persisted state (no secrets beyond the device token, which the server can revoke).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhoneState {
    /// Server, device id, device token and practitioner, as core's client returned them.
    pub enrollment: Enrollment,
    /// keyring-core account under [`KEY_SERVICE`] holding this device's key.
    pub key_account: String,
    pub pending: Option<PendingLogin>,
}

/// One desktop phone, bound to a state directory.
pub struct Phone {
    state_dir: PathBuf,
    state: Option<PhoneState>,
    /// Account for a key created before enrollment finished (kept so a retry reuses it).
    key_account: String,
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Phone {
    /// Opens (or starts) the phone whose state lives in `state_dir`.
    pub fn open(state_dir: impl Into<PathBuf>) -> Result<Phone, PhoneError> {
        let state_dir = state_dir.into();
        std::fs::create_dir_all(&state_dir)
            .map_err(|source| PhoneError::State { path: state_dir.clone(), source })?;
        let path = state_dir.join(STATE_FILE);
        let state = match std::fs::read(&path) {
            Ok(bytes) => Some(
                serde_json::from_slice::<PhoneState>(&bytes)
                    .map_err(|source| PhoneError::StateCorrupt { path: path.clone(), source })?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(PhoneError::State { path, source }),
        };
        let key_account = match &state {
            Some(s) => s.key_account.clone(),
            None => format!("device-{}", uuid::Uuid::new_v4()),
        };
        Ok(Phone { state_dir, state, key_account })
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn state(&self) -> Option<&PhoneState> {
        self.state.as_ref()
    }

    fn save(&self) -> Result<(), PhoneError> {
        let path = self.state_dir.join(STATE_FILE);
        let tmp = self.state_dir.join(format!("{STATE_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&self.state)
            .map_err(|source| PhoneError::StateCorrupt { path: path.clone(), source })?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| PhoneError::State { path, source })
    }

    /// This phone's device key (created in the key store on first use).
    pub fn key(&self) -> Result<SoftwareKey, PhoneError> {
        let key = SoftwareKey::load_or_create(KEY_SERVICE, &self.key_account)?;
        crate::keystore::persist()?;
        Ok(key)
    }

    fn enrolled(&self) -> Result<&PhoneState, PhoneError> {
        self.state.as_ref().ok_or(PhoneError::NotEnrolled)
    }

    /// The core client's view of this phone's enrollment.
    pub fn enrollment(&self) -> Result<Enrollment, PhoneError> {
        Ok(self.enrolled()?.enrollment.clone())
    }

    /// The server-assigned device id.
    pub fn device_id(&self) -> Result<Uuid, PhoneError> {
        Ok(self.enrolled()?.enrollment.device_id)
    }

    fn client(&self, origin: &Origin) -> Result<Client, PhoneError> {
        Ok(Client::new(origin.clone())?)
    }

    /// Enrolls with an enrollment payload URL, or the path of a PNG showing the enrollment QR.
    pub async fn enroll(&mut self, payload_or_png: &str, activation_password: &str, device_name: &str) -> Result<&PhoneState, PhoneError> {
        if let Some(s) = &self.state {
            return Err(PhoneError::AlreadyEnrolled(s.enrollment.origin.as_str().to_string()));
        }
        let payload = match Path::new(payload_or_png).is_file() {
            true => scan_png(Path::new(payload_or_png))?,
            false => Payload::parse_ignoring_expiry(payload_or_png)?,
        };
        let Payload::Enrollment(payload) = payload else { return Err(PhoneError::NotAnEnrollment) };
        self.enroll_payload(&payload, activation_password, device_name).await
    }

    /// Enrolls with an already-decoded enrollment payload.
    pub async fn enroll_payload(&mut self, payload: &EnrollmentPayload, activation_password: &str, device_name: &str) -> Result<&PhoneState, PhoneError> {
        if payload.expires_at <= now_unix() {
            return Err(PhoneError::Expired);
        }
        let key = self.key()?;
        let client = self.client(&payload.origin)?;
        let enrollment = client.enroll(payload, activation_password, &key, device_name, Platform::Desktop).await?;
        self.state = Some(PhoneState {
            enrollment,
            key_account: self.key_account.clone(),
            pending: None,
        });
        self.save()?;
        Ok(self.state.as_ref().expect("just set"))
    }

    /// Scans a PNG (decoding the QR from its pixels) and fetches the login's context.
    pub async fn scan_png(&mut self, png: &Path) -> Result<LoginContext, PhoneError> {
        let payload = scan_png(png)?;
        self.scan_payload(payload).await
    }

    /// Scans a grey camera frame and fetches the login's context.
    pub async fn scan_image(&mut self, frame: &image::GrayImage) -> Result<LoginContext, PhoneError> {
        let payload = decode_frame(frame)?;
        self.scan_payload(payload).await
    }

    async fn scan_payload(&mut self, payload: Payload) -> Result<LoginContext, PhoneError> {
        let Payload::Login(login) = payload else { return Err(PhoneError::NotALogin) };
        self.open_login(&login).await
    }

    /// Checks a decoded login payload (expiry, right server) and fetches its context; the
    /// login becomes this phone's pending one.
    pub async fn open_login(&mut self, login: &LoginPayload) -> Result<LoginContext, PhoneError> {
        if login.expires_at <= now_unix() {
            return Err(PhoneError::Expired);
        }
        let enrollment = self.enrollment()?;
        // The phishing defence starts here: a QR naming another server is refused before any
        // request leaves the phone.
        if login.origin != enrollment.origin {
            return Err(PhoneError::WrongServer {
                qr: login.origin.as_str().to_string(),
                enrolled: enrollment.origin.as_str().to_string(),
            });
        }
        let client = self.client(&enrollment.origin)?;
        let context = client.login_context(&enrollment, login).await?;
        if let Some(state) = self.state.as_mut() {
            state.pending = Some(PendingLogin { payload_url: login.to_url(), context: context.clone() });
        }
        self.save()?;
        Ok(context)
    }

    /// The typed-code fallback (docs/protocol.md §4.6): resolves the user code the EHR shows
    /// beside its QR to that login and fetches its context, exactly as [`Phone::open_login`]
    /// does after a scan; the login becomes this phone's pending one. The code is checked
    /// locally first (a typo is refused before anything is sent).
    pub async fn open_code(&mut self, typed: &str) -> Result<LoginContext, PhoneError> {
        let code = shomei_core::UserCode::parse(typed)?;
        let enrollment = self.enrollment()?;
        let client = self.client(&enrollment.origin)?;
        let (login, context) = client.login_by_code(&enrollment, &code).await?;
        if let Some(state) = self.state.as_mut() {
            state.pending = Some(PendingLogin { payload_url: login.to_url(), context: context.clone() });
        }
        self.save()?;
        Ok(context)
    }

    /// The pending login (payload and context), if any.
    pub fn pending(&self) -> Result<(LoginPayload, LoginContext), PhoneError> {
        let pending = self.enrolled()?.pending.as_ref().ok_or(PhoneError::NoPendingLogin)?;
        let Payload::Login(login) = Payload::parse_ignoring_expiry(&pending.payload_url)? else {
            return Err(PhoneError::NotALogin);
        };
        Ok((login, pending.context.clone()))
    }

    /// Approves the pending login, choosing `number` (the one the EHR screen shows).
    pub async fn approve(&mut self, number: u8) -> Result<shomei_core::api::DecisionResponse, PhoneError> {
        let (_, context) = self.pending()?;
        if !context.number_choices.contains(&number) {
            return Err(PhoneError::NumberNotOffered(number, context.number_choices.to_vec()));
        }
        self.decide(Decision::Approve, number).await
    }

    /// Denies the pending login ("this wasn't me").
    pub async fn deny(&mut self) -> Result<shomei_core::api::DecisionResponse, PhoneError> {
        self.decide(Decision::Deny, 0).await
    }

    async fn decide(&mut self, decision: Decision, number: u8) -> Result<shomei_core::api::DecisionResponse, PhoneError> {
        let (login, context) = self.pending()?;
        let enrollment = self.enrollment()?;
        let key = self.key()?;
        let client = self.client(&enrollment.origin)?;
        let result = client.decide(&enrollment, &login, &context, decision, number, &key).await;
        // A decided (or refused) login is no longer pending either way: a retry needs a new scan.
        if let Some(state) = self.state.as_mut() {
            state.pending = None;
        }
        self.save()?;
        Ok(result?)
    }

    /// This device's active grants.
    pub async fn grants(&self) -> Result<Vec<GrantSummary>, PhoneError> {
        let enrollment = self.enrollment()?;
        Ok(self.client(&enrollment.origin)?.grants(&enrollment).await?)
    }

    /// Ends one grant of this device.
    pub async fn end_grant(&self, grant_id: Uuid) -> Result<(), PhoneError> {
        let enrollment = self.enrollment()?;
        Ok(self.client(&enrollment.origin)?.end_grant(&enrollment, grant_id).await?)
    }

    /// Ends every grant of this device; returns how many ended.
    pub async fn end_all_grants(&self) -> Result<u32, PhoneError> {
        let enrollment = self.enrollment()?;
        Ok(self.client(&enrollment.origin)?.end_all_grants(&enrollment).await?)
    }

    /// The whole signing log of one grant, or of the last 24 hours, newest first, walking
    /// every page of `page` entries; with the walk's watermark (follow from there).
    pub async fn signatures(&self, grant: Option<Uuid>, page: u32) -> Result<(Vec<SignatureEntry>, u64), PhoneError> {
        let enrollment = self.enrollment()?;
        let client = self.client(&enrollment.origin)?;
        let first = client.signatures(&enrollment, grant, None, page).await?;
        let watermark = first.watermark;
        let mut cursor = first.next_cursor.clone();
        let mut all = first.signatures;
        while let Some(c) = cursor {
            let next = client.signatures(&enrollment, grant, Some(&c), page).await?;
            all.extend(next.signatures);
            cursor = next.next_cursor;
        }
        Ok((all, watermark))
    }

    /// Everything recorded after `since`, oldest first (every batch), and the new watermark.
    pub async fn signatures_since(&self, grant: Option<Uuid>, since: u64) -> Result<(Vec<SignatureEntry>, u64), PhoneError> {
        let enrollment = self.enrollment()?;
        let client = self.client(&enrollment.origin)?;
        let mut all = Vec::new();
        let mut at = since;
        loop {
            let batch = client.signatures_since(&enrollment, grant, at, 200).await?;
            at = batch.watermark;
            all.extend(batch.signatures);
            if !batch.more {
                return Ok((all, at));
            }
        }
    }
}

/// Decodes a Shomei payload from the pixels of a PNG (or any image `image` can read).
pub fn scan_png(path: &Path) -> Result<Payload, PhoneError> {
    let img = image::open(path).map_err(|source| PhoneError::Image { path: path.to_path_buf(), source })?;
    decode_frame(&img.to_luma8())
}

/// Decodes a Shomei payload from a grey frame, as the phone camera would.
pub fn decode_frame(frame: &image::GrayImage) -> Result<Payload, PhoneError> {
    match shomei_core::scan::scan_image(frame)? {
        ScanOutcome::Shomei(payload) => Ok(payload),
        ScanOutcome::ForeignOnly(texts) => Err(PhoneError::ForeignQr(texts)),
        ScanOutcome::NothingFound => Err(PhoneError::NothingFound),
    }
}
