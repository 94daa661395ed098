//! The one error type of the domain services. Each variant is one stable
//! `code` of docs/api.md, so the HTTP layer maps errors to problem
//! documents without string matching.

use shomei_core::api::ErrorCode;

use crate::attestation::AttestationError;
use crate::signing::SigningError;
use crate::store::StoreError;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("request body is larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("enrollment code invalid: {0}")]
    EnrollmentInvalid(String),
    #[error("enrollment code already used")]
    EnrollmentUsed,
    #[error("enrollment code expired")]
    EnrollmentExpired,
    #[error("enrollment code locked after too many wrong activation passwords")]
    EnrollmentLocked,
    #[error("activation password wrong ({remaining} attempts left)")]
    ActivationPasswordWrong { remaining: i64 },
    #[error("proof of possession does not verify: {0}")]
    ProofInvalid(String),
    /// Platform attestation missing, malformed or refused by the policy (the
    /// variant names the failed check).
    #[error("attestation invalid: {0}")]
    AttestationInvalid(AttestationError),
    #[error("device unknown")]
    DeviceUnknown,
    #[error("device revoked")]
    DeviceRevoked,
    #[error("login unknown")]
    LoginUnknown,
    #[error("login expired")]
    LoginExpired,
    #[error("login already decided")]
    LoginAlreadyDecided,
    #[error("login secret wrong")]
    LoginSecretWrong,
    #[error("approval signature invalid: {0}")]
    SignatureInvalid(String),
    #[error("the chosen number is not the one shown on the EHR screen")]
    NumberMismatch,
    #[error("practitioner is not allowed at this terminal's facility")]
    PractitionerNotAllowed,
    #[error("grant invalid")]
    GrantInvalid,
    #[error("grant expired")]
    GrantExpired,
    #[error("grant revoked")]
    GrantRevoked,
    #[error("grant belongs to another terminal")]
    GrantTerminalMismatch,
    #[error("grant signature cap reached")]
    GrantExhausted,
    #[error("credential unknown")]
    CredentialUnknown,
    #[error("hash invalid: {0}")]
    HashInvalid(String),
    #[error("algorithm unsupported: {0}")]
    AlgorithmUnsupported(String),
    #[error("signature format unsupported: {0}")]
    FormatUnsupported(String),
    #[error("the signing certificate expired at {0}")]
    CertificateExpired(String),
    #[error("the signing certificate is not valid before {0}")]
    CertificateNotYetValid(String),
    #[error("the signing credential was revoked by the operator")]
    CredentialRevoked,
    #[error("terminal credentials missing or wrong")]
    TerminalUnauthenticated,
    #[error("operator token missing or wrong")]
    OperatorUnauthenticated,
    #[error("device token missing or wrong")]
    Unauthorized,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many {what}; retry after {retry_after_s} s")]
    RateLimited {
        what: &'static str,
        retry_after_s: u64,
    },
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// signHash/signDoc `label` refused (the variant says why).
    #[error("label invalid: {0}")]
    LabelInvalid(#[from] shomei_core::api::LabelError),
    /// Signing-log `cursor` / `since` malformed.
    #[error("cursor invalid: {0}")]
    CursorInvalid(String),
    /// No grant of the asking practitioner has this id (unknown and
    /// foreign grants alike: the answer does not tell them apart).
    #[error("no grant of yours has id {0:?}")]
    GrantUnknown(String),
    /// A typed login code is not a code (docs/protocol.md §4.6); refused
    /// before any lookup.
    #[error("user code invalid: {0}")]
    UserCodeInvalid(#[from] shomei_core::UserCodeError),
    /// `--demo` only: no demo session has this handle (or it expired).
    #[error("demo session unknown or expired: start a new login")]
    DemoSessionUnknown,
    /// The practitioner denied the login (or it failed its confirmation code).
    #[error("the practitioner denied the login")]
    LoginDenied,
    /// Not ready to serve (`/readyz`): the store does not answer or its
    /// schema is behind this binary.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("storage failed")]
    Store(#[from] StoreError),
    #[error("signing failed: {0}")]
    Signing(SigningError),
    /// The PKCS#11 token cannot sign now: every session busy for the
    /// configured wait, the PIN refused or locked, the device gone, the
    /// credential's key object no longer on it. 503
    /// `unavailable`; the message (no secret in it) says which.
    #[error("signing token unavailable: {0}")]
    TokenUnavailable(SigningError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<SigningError> for Error {
    fn from(e: SigningError) -> Self {
        match e {
            SigningError::BadDigestLength { .. } => Error::HashInvalid(e.to_string()),
            SigningError::AlgorithmMismatch { .. } | SigningError::UnsupportedAlgorithm(_) => Error::AlgorithmUnsupported(e.to_string()),
            SigningError::BadKey(_)
            | SigningError::BadCertificate(_)
            | SigningError::CertificateKeyMismatch
            | SigningError::Pkcs12Password
            | SigningError::Pkcs12(_) => Error::BadRequest(e.to_string()),
            SigningError::TokenBusy { .. }
            | SigningError::PinIncorrect { .. }
            | SigningError::PinLocked { .. }
            | SigningError::KeyNotOnToken { .. }
            | SigningError::WrongToken { .. }
            | SigningError::Token(_) => Error::TokenUnavailable(e),
            other => Error::Signing(other),
        }
    }
}

impl From<AttestationError> for Error {
    fn from(e: AttestationError) -> Self {
        Error::AttestationInvalid(e)
    }
}

impl Error {
    /// The stable code (and so the HTTP status) of this error.
    pub fn code(&self) -> ErrorCode {
        use Error::*;
        match self {
            BadRequest(_) => ErrorCode::BadRequest,
            BodyTooLarge { .. } => ErrorCode::BodyTooLarge,
            NotFound(_) => ErrorCode::NotFound,
            EnrollmentInvalid(_) => ErrorCode::EnrollmentInvalid,
            EnrollmentUsed => ErrorCode::EnrollmentUsed,
            EnrollmentExpired => ErrorCode::EnrollmentExpired,
            EnrollmentLocked => ErrorCode::EnrollmentLocked,
            ActivationPasswordWrong { .. } => ErrorCode::ActivationPasswordWrong,
            ProofInvalid(_) => ErrorCode::ProofInvalid,
            AttestationInvalid(e) if e.is_server_fault() => ErrorCode::Internal,
            AttestationInvalid(_) => ErrorCode::AttestationInvalid,
            DeviceUnknown => ErrorCode::DeviceUnknown,
            DeviceRevoked => ErrorCode::DeviceRevoked,
            LoginUnknown => ErrorCode::LoginUnknown,
            LoginExpired => ErrorCode::LoginExpired,
            LoginAlreadyDecided => ErrorCode::LoginAlreadyDecided,
            LoginSecretWrong => ErrorCode::LoginSecretWrong,
            SignatureInvalid(_) => ErrorCode::SignatureInvalid,
            NumberMismatch => ErrorCode::NumberMismatch,
            PractitionerNotAllowed => ErrorCode::PractitionerNotAllowed,
            GrantInvalid => ErrorCode::GrantInvalid,
            GrantExpired => ErrorCode::GrantExpired,
            GrantRevoked => ErrorCode::GrantRevoked,
            GrantTerminalMismatch => ErrorCode::GrantTerminalMismatch,
            GrantExhausted => ErrorCode::GrantExhausted,
            CredentialUnknown => ErrorCode::CredentialUnknown,
            HashInvalid(_) => ErrorCode::HashInvalid,
            AlgorithmUnsupported(_) => ErrorCode::AlgorithmUnsupported,
            FormatUnsupported(_) => ErrorCode::FormatUnsupported,
            CertificateExpired(_) => ErrorCode::CertificateExpired,
            CertificateNotYetValid(_) => ErrorCode::CertificateNotYetValid,
            CredentialRevoked => ErrorCode::CredentialRevoked,
            TerminalUnauthenticated => ErrorCode::TerminalUnauthenticated,
            OperatorUnauthenticated => ErrorCode::OperatorUnauthenticated,
            Unauthorized => ErrorCode::Unauthorized,
            Conflict(_) => ErrorCode::Conflict,
            RateLimited { .. } => ErrorCode::RateLimited,
            MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            LabelInvalid(_) => ErrorCode::LabelInvalid,
            CursorInvalid(_) => ErrorCode::CursorInvalid,
            GrantUnknown(_) => ErrorCode::GrantUnknown,
            UserCodeInvalid(_) => ErrorCode::UserCodeInvalid,
            DemoSessionUnknown => ErrorCode::DemoSessionUnknown,
            LoginDenied => ErrorCode::LoginDenied,
            NotReady(_) | TokenUnavailable(_) => ErrorCode::Unavailable,
            Store(StoreError::Duplicate(_)) => ErrorCode::Conflict,
            Store(_) | Signing(_) | Internal(_) => ErrorCode::Internal,
        }
    }

    /// Text safe to send to the client (internal failures stay in the log).
    pub fn public_detail(&self) -> String {
        match self.code() {
            ErrorCode::Internal => "internal error (see server log)".to_owned(),
            _ => self.to_string(),
        }
    }
}

/// Result of service calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
