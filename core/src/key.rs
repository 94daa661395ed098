//! The device key: the phone's biometric-gated P-256 key, supplied by the app.
//!
//! On Android it lives in the Keystore, on iOS in the Secure Enclave; the core
//! only needs "give me your public key" and "sign these bytes" and a typed
//! reason when that fails. [`SoftwareKey`] is a plain software implementation
//! for tests and the desktop simulator.

use p256::ecdsa::signature::Signer as _;
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use ring::rand::{SecureRandom as _, SystemRandom};
use zeroize::Zeroizing;

use crate::attestation::{Attestation, AttestationRequest};

/// Why the device key could not produce a public key or signature.
///
/// The variants are the failures a phone user can actually meet, so the app
/// can show the right message (and the client can tell them from server errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The user dismissed the biometric prompt.
    #[error("the user cancelled")]
    UserCancelled,
    /// Too many failed biometric attempts; the platform locked biometrics.
    #[error("biometrics are locked out")]
    BiometricLockout,
    /// The key was invalidated (e.g. a new fingerprint/face was enrolled); the phone must re-enroll.
    #[error("the device key was invalidated; enroll this phone again")]
    KeyInvalidated,
    /// No key or no secure hardware / store is available.
    #[error("device key not available: {0}")]
    NotAvailable(String),
    /// Any other platform failure.
    #[error("device key failed: {0}")]
    Failed(String),
}

/// The app-supplied device key. Implementations must return the public key as
/// uncompressed SEC1 (65 bytes) and sign with ECDSA P-256 / SHA-256 over the
/// message (hashing it themselves), returning a DER signature — what Android
/// Keystore (`SHA256withECDSA`) and iOS `SecKeyCreateSignature`
/// (`.ecdsaSignatureMessageX962SHA256`) produce.
pub trait PlatformKey: Send + Sync {
    /// Uncompressed SEC1 public key (65 bytes).
    fn public_key(&self) -> Result<Vec<u8>, KeyError>;
    /// DER ECDSA P-256 / SHA-256 signature over `message`; may prompt for biometrics.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
    /// The platform's attestation of this key for an enrollment (docs/protocol.md §3.3):
    /// Android returns the key's certificate chain (the key must have been generated with
    /// `request.challenge` as its attestation challenge), iOS an App Attest object over
    /// `request.client_data_hash`. `None` when the platform has no attestation; the
    /// default (software keys, the desktop phone) has none.
    fn attestation(&self, request: &AttestationRequest) -> Result<Option<Attestation>, KeyError> {
        let _ = request;
        Ok(None)
    }
}

/// A software P-256 key (RFC 6979 deterministic signatures) for tests and the
/// desktop simulator. Its secret can be kept in the OS credential store via
/// keyring-core ([`SoftwareKey::load_or_create`]).
#[derive(Clone)]
pub struct SoftwareKey {
    signing: p256::ecdsa::SigningKey,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SoftwareKey(..)")
    }
}

impl SoftwareKey {
    /// A new random key (scalar drawn from the OS CSPRNG via ring).
    pub fn generate() -> SoftwareKey {
        let rng = SystemRandom::new();
        loop {
            let mut bytes = Zeroizing::new([0u8; 32]);
            rng.fill(bytes.as_mut())
                .expect("operating system random number generator failed");
            // Rejection sampling: about 2^-32 of 32-byte strings are not valid scalars.
            if let Ok(signing) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
                return SoftwareKey { signing };
            }
        }
    }

    /// From a raw 32-byte big-endian scalar (used by test vectors).
    pub fn from_scalar_bytes(b: &[u8]) -> Result<SoftwareKey, KeyError> {
        // from_slice alone would left-pad short inputs; a scalar is exactly 32 bytes.
        if b.len() != 32 {
            return Err(KeyError::Failed(
                "a P-256 private scalar is 32 bytes".into(),
            ));
        }
        p256::ecdsa::SigningKey::from_slice(b)
            .map(|signing| SoftwareKey { signing })
            .map_err(|_| KeyError::Failed("not a valid P-256 private scalar".into()))
    }

    /// From a PKCS#8 DER private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<SoftwareKey, KeyError> {
        p256::ecdsa::SigningKey::from_pkcs8_der(der)
            .map(|signing| SoftwareKey { signing })
            .map_err(|_| KeyError::Failed("not a PKCS#8 P-256 private key".into()))
    }

    /// PKCS#8 DER encoding of the private key (wiped when dropped).
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = self
            .signing
            .to_pkcs8_der()
            .map_err(|e| KeyError::Failed(format!("PKCS#8 encoding failed: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The uncompressed SEC1 public key (65 bytes).
    pub fn public_key_sec1(&self) -> Vec<u8> {
        self.signing
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// Loads the key stored under (`service`, `account`) in keyring-core's
    /// default store, or creates, stores and returns a new one if none exists.
    /// The caller chooses the store first (`keyring_core::set_default_store`).
    pub fn load_or_create(service: &str, account: &str) -> Result<SoftwareKey, KeyError> {
        let entry = keyring_core::Entry::new(service, account).map_err(keyring_error)?;
        match entry.get_secret() {
            Ok(der) => {
                let der = Zeroizing::new(der);
                SoftwareKey::from_pkcs8(&der)
            }
            Err(keyring_core::Error::NoEntry) => {
                let key = SoftwareKey::generate();
                entry.set_secret(&key.to_pkcs8()?).map_err(keyring_error)?;
                Ok(key)
            }
            Err(e) => Err(keyring_error(e)),
        }
    }

    /// Removes the key stored under (`service`, `account`), if any.
    pub fn delete_stored(service: &str, account: &str) -> Result<(), KeyError> {
        let entry = keyring_core::Entry::new(service, account).map_err(keyring_error)?;
        match entry.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

fn keyring_error(e: keyring_core::Error) -> KeyError {
    match e {
        keyring_core::Error::NoDefaultStore => {
            KeyError::NotAvailable("no credential store configured".into())
        }
        keyring_core::Error::NoStorageAccess(err) => {
            KeyError::NotAvailable(format!("credential store not accessible: {err}"))
        }
        // Variants other than these never carry secret material in their text.
        other => KeyError::Failed(format!("credential store: {other}")),
    }
}

impl PlatformKey for SoftwareKey {
    fn public_key(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.public_key_sec1())
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        let sig: p256::ecdsa::Signature = self.signing.sign(message);
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approval::DevicePublicKey;

    #[test]
    fn software_key_signatures_verify_with_ring() {
        let k = SoftwareKey::generate();
        let pk = DevicePublicKey::from_sec1(&k.public_key().unwrap()).unwrap();
        let sig = k.sign(b"message").unwrap();
        assert_eq!(pk.verify(b"message", &sig), Ok(()));
    }

    #[test]
    fn software_key_signatures_are_deterministic() {
        let k = SoftwareKey::generate();
        assert_eq!(k.sign(b"m").unwrap(), k.sign(b"m").unwrap());
        assert_ne!(k.sign(b"m").unwrap(), k.sign(b"n").unwrap());
    }

    #[test]
    fn pkcs8_round_trip_keeps_the_key() {
        let k = SoftwareKey::generate();
        let der = k.to_pkcs8().unwrap();
        let back = SoftwareKey::from_pkcs8(&der).unwrap();
        assert_eq!(back.public_key_sec1(), k.public_key_sec1());
        assert_eq!(back.sign(b"m").unwrap(), k.sign(b"m").unwrap());
    }

    #[test]
    fn garbage_pkcs8_is_rejected() {
        assert!(matches!(
            SoftwareKey::from_pkcs8(b"junk"),
            Err(KeyError::Failed(_))
        ));
    }

    #[test]
    fn invalid_scalar_is_rejected() {
        assert!(SoftwareKey::from_scalar_bytes(&[0; 32]).is_err());
        assert!(SoftwareKey::from_scalar_bytes(&[0xff; 32]).is_err());
        assert!(SoftwareKey::from_scalar_bytes(&[1; 31]).is_err());
    }

    #[test]
    fn debug_hides_the_private_key() {
        assert_eq!(format!("{:?}", SoftwareKey::generate()), "SoftwareKey(..)");
    }
}
