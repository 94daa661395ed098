//! Where signatures are made. The trait is the seam for a PKCS#11 HSM; the
//! software backend keeps keys sealed under the KEK.
//!
//! # Held keys
//!
//! Unsealing and parsing an RSA key costs about three signatures (AES-GCM,
//! PKCS#8 parse, AWS-LC's key check), so opening it on every signHash call
//! capped the server at a fifth of what the cores can sign. A grant is a day
//! of signing with one key, so [`SigningBackend::sign_digests_held`] may keep
//! the *parsed* key in memory for that grant ([`KeyHold`]):
//!
//! - bounded: keys of at most [`SoftwareBackend::DEFAULT_HELD_KEYS`] (or the
//!   configured number of) grants, least recently used dropped first;
//! - only while the grant can sign: an entry is dropped when the grant's
//!   end (`until_ms`: expiry, cut-off or idle timeout) has passed, and at once
//!   through [`SigningBackend::release_grant`] / [`SigningBackend::release_all`]
//!   when a grant, its device, terminal or practitioner is revoked;
//! - keyed by the grant *and* the sealed bytes, so a key that changed in the
//!   store is opened afresh, and a grant never signs with another grant's key;
//! - never written anywhere: the parsed key lives inside AWS-LC, which wipes
//!   (`OPENSSL_cleanse`) key material when the last holder drops it. The
//!   PKCS#8 plaintext is zeroized right after parsing, as before.
//!
//! Holding a key changes nothing about *whether* a call may sign: the grant
//! and credential are checked before the backend is asked (from held rows,
//! `service::held_authorization`) and again against the store by the group
//! commit, under the write lock, before any signature is returned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
    /// `Kek::seal(pkcs8, credential_id.as_bytes())`. Shared with the
    /// credential row it was read from: each signing call names its key by
    /// this, and a held key is found again by it (`HeldKeys::get`), where
    /// the same allocation compares equal without reading its bytes.
    pub sealed_pkcs8: Arc<[u8]>,
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
            sealed_pkcs8: kek.seal(&credential.pkcs8, credential_id.as_bytes()).into(),
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

    /// [`sign_digests`](Self::sign_digests) for a caller that has just checked
    /// that grant `hold.grant_id` may sign: the backend may keep the opened
    /// key for that grant until `hold.until_ms` (see the module docs). The
    /// default holds nothing.
    fn sign_digests_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        let _ = hold;
        self.sign_digests(key, alg, digests)
    }

    /// Everything [`sign_digests_held`](Self::sign_digests_held) checks
    /// and opens before it signs, done now: the request's digests and
    /// algorithm are checked and the key opened and held for the grant.
    /// A caller that records a signature before computing it (the inline
    /// signHash path, `service::signature`) calls this first, so that a key
    /// that does not open, or a request the key cannot sign, fails before
    /// anything is recorded. The default only checks the request.
    fn prepare_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<(), SigningError> {
        let _ = hold;
        check_request(key, alg, digests)
    }

    /// Grant `grant_id` ended (revoked, ended from the phone, used up): drop
    /// every key held for it.
    fn release_grant(&self, grant_id: &str) {
        let _ = grant_id;
    }

    /// Many grants ended at once (a device, terminal or practitioner was
    /// revoked): drop every held key.
    fn release_all(&self) {}

    /// How many opened keys are held now (for tests and metrics).
    fn held_keys(&self) -> usize {
        0
    }

    /// Whether signing with `key` is quick, CPU-only work that may run on
    /// the async runtime's thread (a software key), rather than a call that
    /// may wait (a PKCS#11 token: its session pool, the device).
    fn signs_inline(&self, key: &SealedKey) -> bool {
        let _ = key;
        true
    }

    /// The PKCS#11 token new keys can be generated on, if one is configured.
    fn token(&self) -> Option<&Arc<super::Pkcs11Token>> {
        None
    }
}

/// The grant a key is opened for, and until when it may be held.
#[derive(Debug, Clone, Copy)]
pub struct KeyHold<'a> {
    /// The grant that is signing (checked usable by the caller).
    pub grant_id: &'a str,
    /// Now, Unix ms (the caller's clock).
    pub now_ms: i64,
    /// When the grant stops being usable at the latest (expiry, cut-off,
    /// idle timeout), Unix ms.
    pub until_ms: i64,
}

pub(crate) fn check_request(
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

/// Keys in the database, sealed under a KEK held in memory; opened keys
/// held per grant (module docs).
#[derive(Debug, Clone)]
pub struct SoftwareBackend {
    kek: Arc<Kek>,
    held: Arc<HeldKeys>,
}

impl SoftwareBackend {
    /// Opened keys held at most, by default: one per grant signing at once
    /// on a large site; an RSA-2048 key is about 2 KiB inside AWS-LC.
    pub const DEFAULT_HELD_KEYS: usize = 1024;

    /// Accepts a `Kek` or an `Arc<Kek>` shared with the rest of the server.
    pub fn new(kek: impl Into<Arc<Kek>>) -> Self {
        Self::with_held_keys(kek, Self::DEFAULT_HELD_KEYS)
    }

    /// Holds at most `capacity` opened keys (0: open the key on every call).
    pub fn with_held_keys(kek: impl Into<Arc<Kek>>, capacity: usize) -> Self {
        SoftwareBackend {
            kek: kek.into(),
            held: Arc::new(HeldKeys {
                capacity,
                inner: Mutex::new(HeldInner::default()),
            }),
        }
    }

    /// The KEK this backend opens keys with (to seal new ones).
    pub fn kek(&self) -> &Kek {
        &self.kek
    }

    /// The key held for `hold`'s grant, or opened now and held.
    fn held_or_open(&self, hold: &KeyHold<'_>, key: &SealedKey) -> Result<Arc<OpenKey>, SigningError> {
        if let Some(open) = self.held.get(hold, key) {
            return Ok(open);
        }
        let open = Arc::new(self.open(key)?);
        self.held.insert(hold, key, open.clone());
        Ok(open)
    }

    fn open(&self, key: &SealedKey) -> Result<OpenKey, SigningError> {
        if let Some(r) = super::TokenKeyRef::from_stored(&key.sealed_pkcs8) {
            return Err(SigningError::WrongToken {
                wanted: r.map(|r| r.token_label).unwrap_or_default(),
                configured: "no PKCS#11 token ([pkcs11] is not configured)".into(),
            });
        }
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

/// Opened keys by grant (module docs). The lock is held only to look up or
/// insert; signing happens outside it on a shared `Arc`.
struct HeldKeys {
    capacity: usize,
    inner: Mutex<HeldInner>,
}

#[derive(Default)]
struct HeldInner {
    tick: u64,
    /// Per grant, the keys it signed with (one per credential; usually one).
    by_grant: HashMap<String, Vec<Held>>,
}

struct Held {
    /// Exactly the sealed key this was opened from (ciphertext, not secret).
    sealed: SealedKey,
    until_ms: i64,
    last_used: u64,
    key: Arc<OpenKey>,
}

impl std::fmt::Debug for HeldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .inner
            .lock()
            .map(|i| i.by_grant.values().map(Vec::len).sum::<usize>())
            .unwrap_or(0);
        f.debug_struct("HeldKeys")
            .field("capacity", &self.capacity)
            .field("held", &n)
            .finish()
    }
}

impl HeldKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HeldInner> {
        // A panic while holding the lock leaves only a map of keys behind;
        // clear it rather than trust it.
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut g = poisoned.into_inner();
            g.by_grant.clear();
            g
        })
    }

    fn get(&self, hold: &KeyHold<'_>, key: &SealedKey) -> Option<Arc<OpenKey>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let keys = inner.by_grant.get_mut(hold.grant_id)?;
        if keys.iter().any(|h| h.until_ms <= hold.now_ms) {
            // The grant's end has passed: nothing of it is held any longer.
            inner.by_grant.remove(hold.grant_id);
            return None;
        }
        let held = keys
            .iter_mut()
            .find(|h| h.sealed.credential_id == key.credential_id)?;
        if held.sealed != *key {
            // The stored key changed: open it afresh.
            keys.retain(|h| h.sealed.credential_id != key.credential_id);
            return None;
        }
        held.last_used = tick;
        held.until_ms = hold.until_ms;
        Some(held.key.clone())
    }

    fn insert(&self, hold: &KeyHold<'_>, key: &SealedKey, open: Arc<OpenKey>) {
        if self.capacity == 0 || hold.until_ms <= hold.now_ms {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if !inner.by_grant.contains_key(hold.grant_id) && inner.by_grant.len() >= self.capacity {
            // Ended grants first, then the least recently used.
            inner
                .by_grant
                .retain(|_, keys| keys.iter().all(|h| h.until_ms > hold.now_ms));
            if inner.by_grant.len() >= self.capacity {
                let oldest = inner
                    .by_grant
                    .iter()
                    .min_by_key(|(_, keys)| keys.iter().map(|h| h.last_used).max())
                    .map(|(g, _)| g.clone());
                if let Some(g) = oldest {
                    inner.by_grant.remove(&g);
                }
            }
        }
        let keys = inner.by_grant.entry(hold.grant_id.to_owned()).or_default();
        keys.retain(|h| h.sealed.credential_id != key.credential_id);
        keys.push(Held {
            sealed: key.clone(),
            until_ms: hold.until_ms,
            last_used: tick,
            key: open,
        });
    }
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

    fn sign_digests_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        check_request(key, alg, digests)?;
        let open = self.held_or_open(hold, key)?;
        digests.iter().map(|d| open.sign(d)).collect()
    }

    fn prepare_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<(), SigningError> {
        check_request(key, alg, digests)?;
        self.held_or_open(hold, key).map(drop)
    }

    fn release_grant(&self, grant_id: &str) {
        self.held.lock().by_grant.remove(grant_id);
    }

    fn release_all(&self) {
        self.held.lock().by_grant.clear();
    }

    fn held_keys(&self) -> usize {
        self.held.lock().by_grant.values().map(Vec::len).sum()
    }
}
