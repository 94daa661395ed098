//! shomei-core: the code every Shomei phone runs, and the protocol definitions
//! the server shares with it.
//!
//! Shomei lets a practitioner unlock a day of remote signing by scanning a QR
//! code on the EHR screen with an enrolled phone and passing its biometric
//! check. This crate holds everything both ends must agree on byte for byte —
//! the QR payload ([`payload`]), the signed approval and enrollment messages and
//! their verification ([`approval`]), the JSON wire types ([`api`]) — plus the
//! phone-only parts: the platform key abstraction ([`key`]) and the HTTP client
//! ([`client`]). docs/protocol.md is the normative description; its test
//! vectors are checked against this code by a unit test.

pub mod api;
pub mod approval;
pub mod attestation;
pub mod client;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod key;
pub mod origin;
pub mod payload;
pub mod scan;
#[cfg(feature = "openapi")]
mod schema;
pub mod user_code;

#[cfg(test)]
mod vectors;

pub use approval::{ApprovalMessage, Decision, DevicePublicKey, EnrollmentMessage, SignatureError};
pub use attestation::{Attestation, AttestationRequest};
pub use ids::{EnrollmentId, LoginId, QrSecret};
pub use key::{KeyError, PlatformKey, SoftwareKey};
pub use origin::Origin;
pub use payload::{EnrollmentPayload, LoginPayload, Payload, PayloadError, PayloadKind};
pub use user_code::{UserCode, UserCodeError};
