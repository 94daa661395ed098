//! The phone's hardware-bound key, implemented by the app (Android Keystore + BiometricPrompt,
//! iOS Secure Enclave + LocalAuthentication) and adapted to core's `key::PlatformKey`.
//!
//! The key lives on the foreign side because only the platform can create a
//! non-exportable, biometric-gated key; Rust only ever asks it to sign canonical bytes.

use std::sync::Arc;

use shomei_core::attestation::{Attestation, AttestationRequest as CoreRequest};
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

/// What core asks the key for at enrollment (docs/protocol.md §3.3).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AttestationRequest {
    /// 32 bytes: the enrollment's attestation challenge, equal to
    /// `enrollment_attestation_challenge(payload)`. Android: the key must have been generated
    /// with `KeyGenParameterSpec.Builder.setAttestationChallenge(challenge)`.
    pub challenge: Vec<u8>,
    /// 32 bytes: the App Attest `clientDataHash`. It commits to the challenge and to this
    /// key's public key; iOS passes it to `DCAppAttestService.attestKey` unchanged (no
    /// further hashing).
    pub client_data_hash: Vec<u8>,
}

/// The platform's evidence that the key is hardware-backed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum PlatformAttestation {
    /// No attestation (a platform without one; servers requiring attestation refuse it).
    None,
    /// Android Key Attestation: `KeyStore.getCertificateChain(alias)` as DER, leaf first.
    AndroidKeyChain { certificates: Vec<Vec<u8>> },
    /// Apple App Attest: the App Attest key id (raw 32 bytes, not base64) and the CBOR
    /// attestation object returned by `attestKey`.
    AppleAppAttest { key_id: Vec<u8>, attestation_object: Vec<u8> },
}

impl From<PlatformAttestation> for Option<Attestation> {
    fn from(a: PlatformAttestation) -> Self {
        match a {
            PlatformAttestation::None => None,
            PlatformAttestation::AndroidKeyChain { certificates } => Some(Attestation::AndroidKey { certificates }),
            PlatformAttestation::AppleAppAttest { key_id, attestation_object } => {
                Some(Attestation::AppleAppAttest { key_id, attestation_object })
            }
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
    /// The platform's attestation of this key for an enrollment; called once, by `enroll`,
    /// after the enrollment proof is signed. Return `PlatformAttestation::None` when the
    /// platform has none.
    fn attestation(&self, request: AttestationRequest) -> Result<PlatformAttestation, PlatformKeyError>;
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

    fn attestation(&self, request: &CoreRequest) -> Result<Option<Attestation>, KeyError> {
        let request = AttestationRequest { challenge: request.challenge.to_vec(), client_data_hash: request.client_data_hash.to_vec() };
        Self::blocking(|| self.0.attestation(request)).map(Into::into).map_err(KeyError::from)
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
        fn attestation(&self, _request: AttestationRequest) -> Result<PlatformAttestation, PlatformKeyError> {
            Err(PlatformKeyError::NotAvailable { reason: "no App Attest".into() })
        }
    }

    #[test]
    fn core_sees_the_foreign_keys_typed_failures() {
        let key = ForeignKey(Arc::new(Refusing));
        assert_eq!(CoreKey::sign(&key, b"m"), Err(KeyError::UserCancelled));
        assert_eq!(CoreKey::public_key(&key), Err(KeyError::NotAvailable("none".into())));
        let req = CoreRequest { challenge: [1; 32], client_data_hash: [2; 32] };
        assert_eq!(CoreKey::attestation(&key, &req), Err(KeyError::NotAvailable("no App Attest".into())));
    }

    struct Attesting;
    impl PlatformKey for Attesting {
        fn public_key(&self) -> Result<Vec<u8>, PlatformKeyError> {
            Ok(vec![4; 65])
        }
        fn sign(&self, _message: Vec<u8>) -> Result<Vec<u8>, PlatformKeyError> {
            Ok(vec![])
        }
        fn attestation(&self, request: AttestationRequest) -> Result<PlatformAttestation, PlatformKeyError> {
            Ok(PlatformAttestation::AppleAppAttest { key_id: request.challenge, attestation_object: request.client_data_hash })
        }
    }

    #[test]
    fn the_foreign_attestation_reaches_core_with_the_request_bytes() {
        let key = ForeignKey(Arc::new(Attesting));
        let req = CoreRequest { challenge: [1; 32], client_data_hash: [2; 32] };
        assert_eq!(
            CoreKey::attestation(&key, &req),
            Ok(Some(Attestation::AppleAppAttest { key_id: vec![1; 32], attestation_object: vec![2; 32] }))
        );
    }

    #[test]
    fn every_platform_attestation_maps_to_its_wire_format() {
        assert_eq!(Option::<Attestation>::from(PlatformAttestation::None), None);
        assert_eq!(
            Option::<Attestation>::from(PlatformAttestation::AndroidKeyChain { certificates: vec![vec![0x30]] }),
            Some(Attestation::AndroidKey { certificates: vec![vec![0x30]] })
        );
    }
}
