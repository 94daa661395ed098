//! shomei-tests: the desktop phone (a command-line stand-in for the Android/iOS app, for EHR
//! integrators without a phone) and the shared code the end-to-end tests drive.
//!
//! The phone logic lives in the library rather than in the binary so that the e2e tests run
//! exactly the code `shomei-phone` runs, in-process, against the real `shomei` server.

pub mod keystore;
pub mod phone;

pub use keystore::KeyStoreKind;
pub use phone::{Phone, PhoneError, PhoneState};
