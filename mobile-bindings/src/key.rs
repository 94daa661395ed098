//! The phone's hardware-bound key, implemented by the app (Android Keystore + BiometricPrompt,
//! iOS Secure Enclave + LocalAuthentication) and adapted to core's `key::PlatformKey`.
//!
//! The key lives on the foreign side because only the platform can create a
//! non-exportable, biometric-gated key; Rust only ever asks it to sign canonical bytes.

use std::sync::Arc;

use shomei_core::key::{KeyError, PlatformKey as CoreKey};

/// Why the platform key could not produce a public key or signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PlatformKeyError {
    /// The user dismissed the biometric prompt.
    #[error("the user cancelled the biometric check")]
    UserCancelled,
    /// Too many failed attempts; biometrics are locked until the device credential is used.
    #[error("biometrics are locked out")]
    BiometricLockout,
    /// The key was invalidated (new fingerprint/face enrolled, or biometrics removed).
    /// The phone must be enrolled again.
    #[error("the device key was invalidated; enroll this phone again")]
    KeyInvalidated,
    /// The platform cannot provide the key (no secure hardware, no biometric enrolled, ...).
    #[error("the device key is not available: {reason}")]
    NotAvailable { reason: String },
    /// Any other platform failure, including exceptions the app did not map.
    #[error("the device key failed: {reason}")]
    Failed { reason: String },
}

/// A Kotlin/Swift exception that is not a `PlatformKeyError` must not crash the process; it
/// becomes a `Failed` error that flows back to the app like any other key failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for PlatformKeyError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        PlatformKeyError::Failed { reason: e.reason }
    }
}

impl From<PlatformKeyError> for KeyError {
    fn from(e: PlatformKeyError) -> Self {
        match e {
            PlatformKeyError::UserCancelled => KeyError::UserCancelled,
            PlatformKeyError::BiometricLockout => KeyError::BiometricLockout,
            PlatformKeyError::KeyInvalidated => KeyError::KeyInvalidated,
            PlatformKeyError::NotAvailable { reason } => KeyError::NotAvailable(reason),
            PlatformKeyError::Failed { reason } => KeyError::Failed(reason),
        }
    }
}

impl From<KeyError> for PlatformKeyError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::UserCancelled => PlatformKeyError::UserCancelled,
            KeyError::BiometricLockout => PlatformKeyError::BiometricLockout,
            KeyError::KeyInvalidated => PlatformKeyError::KeyInvalidated,
            KeyError::NotAvailable(reason) => PlatformKeyError::NotAvailable { reason },
            KeyError::Failed(reason) => PlatformKeyError::Failed { reason },
        }
    }
}

/// The device key, implemented by the app.
///
/// `sign` is called from a Rust worker thread and may block while the biometric prompt is
/// shown; the implementation must itself move to the main thread to show the prompt and
/// wait for its result (never block the main thread waiting for Rust).
#[uniffi::export(foreign)]
pub trait PlatformKey: Send + Sync {
    /// The public key as a SEC1 uncompressed P-256 point (65 bytes, 0x04 || X || Y).
    fn public_key(&self) -> Result<Vec<u8>, PlatformKeyError>;
    /// An ECDSA P-256 / SHA-256 signature over `message` (the key hashes), DER encoded.
    fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError>;
}

/// Core's view of the foreign key.
pub(crate) struct ForeignKey(pub(crate) Arc<dyn PlatformKey>);

impl ForeignKey {
    /// The foreign call may block for seconds (a biometric prompt). On our multi-threaded
    /// runtime, tell tokio so it moves other tasks off this worker meanwhile.
    fn blocking<T>(f: impl FnOnce() -> T) -> T {
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(f)
            }
            _ => f(),
        }
    }
}

impl CoreKey for ForeignKey {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        Self::blocking(|| self.0.public_key()).map_err(KeyError::from)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        Self::blocking(|| self.0.sign(message.to_vec())).map_err(KeyError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_key_error_survives_the_round_trip_through_core() {
        let all = [
            PlatformKeyError::UserCancelled,
            PlatformKeyError::BiometricLockout,
            PlatformKeyError::KeyInvalidated,
            PlatformKeyError::NotAvailable { reason: "no secure hardware".into() },
            PlatformKeyError::Failed { reason: "boom".into() },
        ];
        for e in all {
            assert_eq!(PlatformKeyError::from(KeyError::from(e.clone())), e);
        }
    }

    #[test]
    fn an_undeclared_foreign_exception_becomes_failed_with_its_reason() {
        let e = PlatformKeyError::from(uniffi::UnexpectedUniFFICallbackError::new("IllegalStateException: x"));
        assert_eq!(e, PlatformKeyError::Failed { reason: "IllegalStateException: x".into() });
    }

    struct Refusing;
    impl PlatformKey for Refusing {
        fn public_key(&self) -> Result<Vec<u8>, PlatformKeyError> {
            Err(PlatformKeyError::NotAvailable { reason: "none".into() })
        }
        fn sign(&self, _message: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
            Err(PlatformKeyError::UserCancelled)
        }
    }

    #[test]
    fn core_sees_the_foreign_keys_typed_failures() {
        let key = ForeignKey(Arc::new(Refusing));
        assert_eq!(CoreKey::sign(&key, b"m"), Err(KeyError::UserCancelled));
        assert_eq!(CoreKey::public_key(&key), Err(KeyError::NotAvailable("none".into())));
    }
}
