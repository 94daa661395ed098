//! QR payloads as the app sees them: what kind of code, which server, until when.
//!
//! The app never builds or interprets payload bytes; it hands the URL string back to the
//! `Authenticator`, which parses it again with core's strict parser.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use shomei_core::payload::{Payload, PayloadError as CoreError, PayloadKind as CoreKind};

/// Which kind of Shomei code was scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PayloadKind {
    /// The daily login QR on an EHR screen.
    Login,
    /// The one-time enrollment QR from the operator.
    Enrollment,
}

impl From<CoreKind> for PayloadKind {
    fn from(k: CoreKind) -> Self {
        match k {
            CoreKind::Login => PayloadKind::Login,
            CoreKind::Enrollment => PayloadKind::Enrollment,
        }
    }
}

/// A parsed Shomei code. `url` is the canonical payload to pass to the `Authenticator`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PayloadInfo {
    pub kind: PayloadKind,
    /// The server the code belongs to, e.g. "https://shomei.example.jp".
    pub origin: String,
    /// When the code stops being accepted.
    pub expires_at: SystemTime,
    /// The canonical payload URL (contains the one-time secret: do not log it).
    pub url: String,
}

impl From<&Payload> for PayloadInfo {
    fn from(p: &Payload) -> Self {
        PayloadInfo {
            kind: p.kind().into(),
            origin: p.origin().as_str().to_owned(),
            expires_at: unix_to_system_time(p.expires_at()),
            url: p.to_url(),
        }
    }
}

/// Why a text is not a usable Shomei code. Mirrors core's `PayloadError` one to one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PayloadError {
    #[error("not a Shomei code")]
    NotShomei,
    #[error("bad server origin: {reason}")]
    BadOrigin { reason: String },
    #[error("server origin is not https")]
    InsecureOrigin,
    #[error("server origin is {len} bytes, at most {max} allowed")]
    OriginTooLong { len: u64, max: u64 },
    #[error("code is not in canonical form")]
    NonCanonical,
    #[error("code body is not base64url without padding")]
    BadEncoding,
    #[error("wrong length: expected {expected} bytes, got {actual}")]
    WrongLength { expected: u64, actual: u64 },
    #[error("unknown code version {version}")]
    UnknownVersion { version: u8 },
    #[error("unknown code kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("expected a {expected:?} code, got a {found:?} code")]
    WrongKind { expected: PayloadKind, found: PayloadKind },
    #[error("code expired")]
    Expired { expires_at: SystemTime },
}

impl From<CoreError> for PayloadError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotShomei => PayloadError::NotShomei,
            CoreError::BadOrigin(reason) => PayloadError::BadOrigin { reason },
            CoreError::InsecureOrigin => PayloadError::InsecureOrigin,
            CoreError::OriginTooLong { len, max } => PayloadError::OriginTooLong {
                len: len as u64,
                max: max as u64,
            },
            CoreError::NonCanonical => PayloadError::NonCanonical,
            CoreError::BadEncoding => PayloadError::BadEncoding,
            CoreError::WrongLength { expected, actual } => PayloadError::WrongLength {
                expected: expected as u64,
                actual: actual as u64,
            },
            CoreError::UnknownVersion(version) => PayloadError::UnknownVersion { version },
            CoreError::UnknownKind(kind) => PayloadError::UnknownKind { kind },
            CoreError::WrongKind { expected, found } => PayloadError::WrongKind {
                expected: expected.into(),
                found: found.into(),
            },
            CoreError::Expired { expires_at, .. } => PayloadError::Expired {
                expires_at: unix_to_system_time(expires_at),
            },
        }
    }
}

/// Parses a scanned or linked payload URL, rejecting expired codes.
#[uniffi::export]
pub fn parse_payload(text: String) -> Result<PayloadInfo, PayloadError> {
    let payload = Payload::parse(&text, now_unix())?;
    Ok(PayloadInfo::from(&payload))
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn unix_to_system_time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}
