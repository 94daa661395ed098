//! shomei-mobile: the uniffi bindings that put shomei-core on phones.
//!
//! This crate exists so the Android (Kotlin) and iOS (Swift) apps can use the same protocol
//! code as everything else, through generated bindings (library mode, no UDL). It is a thin
//! FFI layer in the style of matrix-rust-sdk's `bindings/` and mozilla application-services:
//! types are converted at the edge, async calls run on a runtime this crate owns, and every
//! core error becomes a typed error enum. No protocol decision is made here.
//!
//! - [`authenticator`]: the `Authenticator` object (enrollment state, enroll, login context,
//!   approve/deny, grants).
//! - [`key`]: the `PlatformKey` foreign trait the app implements with its hardware key.
//! - [`scan`]: `scan_frame` over a camera luma plane.
//! - [`payload`]: `parse_payload` for App Links / Universal Links.

uniffi::setup_scaffolding!();

pub mod authenticator;
pub mod key;
pub mod payload;
mod runtime;
pub mod scan;

pub use authenticator::{
    Authenticator, AuthenticatorError, DecisionResult, EnrollmentState, Grant, LoginContext,
    Outcome, Platform,
};
pub use authenticator::enrollment_attestation_challenge;
pub use key::{AttestationRequest, PlatformAttestation, PlatformKey, PlatformKeyError};
pub use payload::{PayloadError, PayloadInfo, PayloadKind, parse_payload};
pub use scan::{ScanError, ScanResult, scan_frame};
