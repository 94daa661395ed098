//! Where signatures are made. The trait is the seam for a PKCS#11 HSM; the
//! software backend keeps keys sealed under the KEK and opens one only for
//! the length of a single signHash call.

use std::sync::Arc;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256};
use zeroize::Zeroizing;

use super::{Kek, KeyAlgorithm, NewCredential, SHA256_LEN, SignatureAlgorithm, SigningError};

/// A stored private key: PKCS#8 sealed under the KEK with the credential id
/// as additional authenticated data, so a sealed key copied onto another
/// credential's row does not open.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// The credential this key belongs to (also the AAD).
    pub credential_id: String,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// `Kek::seal(pkcs8, credential_id.as_bytes())`.
    pub sealed_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedKey")
            .field("credential_id", &self.credential_id)
            .field("algorithm", &self.algorithm)
            .field("sealed_pkcs8_len", &self.sealed_pkcs8.len())
            .finish()
    }
}

impl SealedKey {
    /// Seal a new credential's key for storage under `credential_id`.
    pub fn seal(kek: &Kek, credential_id: &str, credential: &NewCredential) -> Self {
        SealedKey {
            credential_id: credential_id.to_owned(),
            algorithm: credential.algorithm,
            sealed_pkcs8: kek.seal(&credential.pkcs8, credential_id.as_bytes()),
        }
    }
}

/// Something that can sign a SHA-256 digest with a stored key.
pub trait SigningBackend: Send + Sync {
    /// Sign one precomputed SHA-256 digest. RSA: PKCS#1 v1.5 with the
    /// SHA-256 DigestInfo added here; ECDSA: DER `Ecdsa-Sig-Value`.
    fn sign_digest(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        sha256_digest: &[u8],
    ) -> Result<Vec<u8>, SigningError>;

    /// Sign several digests with one key (CSC signHash accepts a list). All
    /// digests are checked before anything is signed, so a bad one fails
    /// the whole call without producing partial output.
    fn sign_digests(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        check_request(key, alg, digests)?;
        digests
            .iter()
            .map(|d| self.sign_digest(key, alg, d))
            .collect()
    }
}

fn check_request(
    key: &SealedKey,
    alg: SignatureAlgorithm,
    digests: &[&[u8]],
) -> Result<(), SigningError> {
    alg.check_key(key.algorithm)?;
    for d in digests {
        if d.len() != SHA256_LEN {
            return Err(SigningError::BadDigestLength {
                expected: SHA256_LEN,
                actual: d.len(),
            });
        }
    }
    Ok(())
}

/// Keys in the database, sealed under a KEK held in memory.
#[derive(Debug, Clone)]
pub struct SoftwareBackend {
    kek: Arc<Kek>,
}

impl SoftwareBackend {
    /// Accepts a `Kek` or an `Arc<Kek>` shared with the rest of the server.
    pub fn new(kek: impl Into<Arc<Kek>>) -> Self {
        SoftwareBackend { kek: kek.into() }
    }

    /// The KEK this backend opens keys with (to seal new ones).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    fn open(&self, key: &SealedKey) -> Result<OpenKey, SigningError> {
        let pkcs8: Zeroizing<Vec<u8>> = self
            .kek
            .open(&key.sealed_pkcs8, key.credential_id.as_bytes())?;
        // The parsed key lives inside AWS-LC, which wipes it when freed at
        // the end of the caller's scope.
        match key.algorithm {
            KeyAlgorithm::Rsa2048 => {
                let kp = RsaKeyPair::from_pkcs8(&pkcs8)
                    .map_err(|e| SigningError::BadKey(format!("stored RSA key: {e}")))?;
                if kp.public_modulus_len() != 256 {
                    return Err(SigningError::AlgorithmMismatch {
                        requested: "rsa2048",
                        key: "RSA of another size",
                    });
                }
                Ok(OpenKey::Rsa(kp))
            }
            KeyAlgorithm::EcdsaP256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8)
                    .map(OpenKey::Ec)
                    .map_err(|e| SigningError::BadKey(format!("stored P-256 key: {e}")))
            }
        }
    }
}

enum OpenKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl OpenKey {
    fn sign(&self, digest: &[u8]) -> Result<Vec<u8>, SigningError> {
        let digest = Digest::import_less_safe(digest, &SHA256).map_err(|_| {
            SigningError::BadDigestLength {
                expected: SHA256_LEN,
                actual: digest.len(),
            }
        })?;
        match self {
            OpenKey::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign_digest(&RSA_PKCS1_SHA256, &digest, &mut sig)
                    .map_err(|_| SigningError::Crypto("RSA signing"))?;
                Ok(sig)
            }
            OpenKey::Ec(kp) => kp
                .sign_digest(&digest)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::Crypto("ECDSA signing")),
        }
    }
}

impl SigningBackend for SoftwareBackend {
    fn sign_digest(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        sha256_digest: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        check_request(key, alg, &[sha256_digest])?;
        self.open(key)?.sign(sha256_digest)
    }

    /// Opens the key once for the whole batch.
    fn sign_digests(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        check_request(key, alg, digests)?;
        let open = self.open(key)?;
        digests.iter().map(|d| open.sign(d)).collect()
    }
}
