//! Practitioner keys inside a PKCS#11 token (an HSM, or SoftHSM2 in tests).
//!
//! Why: a national signing service keeps its signing keys where they cannot
//! be copied — generated inside the token (`CKA_SENSITIVE`, not
//! `CKA_EXTRACTABLE`, `CKA_TOKEN`), used there, never exported. The server
//! stores only a reference to the key object (an RFC 7512 `pkcs11:` URI with
//! the token label and the object's `CKA_ID`) in the credential's key
//! column, where a software key keeps its KEK-sealed PKCS#8.
//!
//! How it signs: RSA with `CKM_RSA_PKCS` over the SHA-256 `DigestInfo` the
//! server builds (byte-identical to the software backend's PKCS#1 v1.5
//! output), P-256 with `CKM_ECDSA` over the digest, its raw `r || s`
//! re-encoded as the DER `Ecdsa-Sig-Value` the rest of the server expects.
//!
//! Sessions: a PKCS#11 session must not be used by two threads at once, so
//! the token keeps a small pool ([`Pkcs11Config::sessions`]) of sessions
//! that are handed out one caller at a time; a caller waits at most
//! [`Pkcs11Config::session_wait_ms`] for one. Login state belongs to the
//! token (all sessions of the process share it): a call that meets
//! `CKR_USER_NOT_LOGGED_IN` logs in again once; a closed session is dropped
//! and replaced once. A wrong PIN (`CKR_PIN_INCORRECT`) is never retried: it
//! latches, and every later call fails at once with [`SigningError::PinIncorrect`]
//! instead of spending the token's few PIN tries.
//!
//! The PIN comes from a file (mode 0600 checked, like the KEK file) or an
//! environment variable named in the config — never from a flag, never logged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::der::{SEQUENCE, tlv};
use super::{KeyAlgorithm, SHA256_LEN, SignatureAlgorithm, SigningError};

/// `[pkcs11]` in the server's TOML config.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// Path of the vendor's PKCS#11 shared library, e.g.
    /// `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (`CKA_LABEL` of the token, as `softhsm2-util
    /// --show-slots` or the vendor tool prints it). Slot numbers change
    /// when tokens are added; labels do not.
    pub token_label: String,
    /// File holding the user PIN (one line; mode 0600 or stricter).
    pub pin_file: Option<PathBuf>,
    /// Name of the environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// Sessions kept open and logged in (1..=64, default 4).
    #[serde(default = "default_sessions")]
    pub sessions: usize,
    /// How long a signing call waits for a free session (ms, 1..=60000,
    /// default 5000) before it fails with `TokenBusy`.
    #[serde(default = "default_session_wait_ms")]
    pub session_wait_ms: u64,
}

fn default_sessions() -> usize {
    4
}

fn default_session_wait_ms() -> u64 {
    5000
}

impl Pkcs11Config {
    /// The limits stated in docs/operations.md; exactly one PIN source.
    pub fn validate(&self) -> Result<(), String> {
        if self.module.as_os_str().is_empty() {
            return Err("module must name the PKCS#11 library".into());
        }
        if self.token_label.trim().is_empty() || self.token_label.len() > 32 {
            return Err("token_label must be 1..=32 bytes (a PKCS#11 token label)".into());
        }
        match (&self.pin_file, &self.pin_env) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err("give exactly one of pin_file and pin_env".into()),
        }
        if !(1..=64).contains(&self.sessions) {
            return Err("sessions must be 1..=64".into());
        }
        if !(1..=60_000).contains(&self.session_wait_ms) {
            return Err("session_wait_ms must be 1..=60000".into());
        }
        Ok(())
    }

    fn read_pin(&self) -> Result<AuthPin, SigningError> {
        let pin: Zeroizing<String> = match (&self.pin_file, &self.pin_env) {
            (Some(path), _) => read_pin_file(path)?,
            (None, Some(var)) => Zeroizing::new(std::env::var(var).map_err(|_| {
                SigningError::PinSource(format!("environment variable {var} is not set"))
            })?),
            (None, None) => return Err(SigningError::PinSource("no PIN source configured".into())),
        };
        let trimmed = pin.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            return Err(SigningError::PinSource("the PIN is empty".into()));
        }
        Ok(AuthPin::from(trimmed.to_owned()))
    }
}

fn read_pin_file(path: &Path) -> Result<Zeroizing<String>, SigningError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SigningError::PinSource(format!("PIN file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SigningError::InsecurePinFile {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| SigningError::PinSource(format!("PIN file {}: {e}", path.display())))
}

/// Where a credential's key lives on a token: the token's label and the key
/// object's `CKA_ID`. Stored as an RFC 7512 URI,
/// `pkcs11:token=<label>;id=<%xx…>;type=private`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenKeyRef {
    /// The token's label.
    pub token_label: String,
    /// The key object's `CKA_ID` (16 random bytes for keys this server made).
    pub id: Vec<u8>,
}

const URI_SCHEME: &str = "pkcs11:";

impl TokenKeyRef {
    /// The stored form (RFC 7512).
    pub fn to_uri(&self) -> String {
        let id: String = self.id.iter().map(|b| format!("%{b:02x}")).collect();
        format!(
            "{URI_SCHEME}token={};id={id};type=private",
            percent_encoding::utf8_percent_encode(&self.token_label, URI_ATTR)
        )
    }

    /// Reads what [`TokenKeyRef::to_uri`] wrote; `None` for anything that is
    /// not a `pkcs11:` URI (a KEK-sealed key starts with its format byte 1).
    pub fn from_stored(stored: &[u8]) -> Option<Result<Self, SigningError>> {
        let text = stored.strip_prefix(URI_SCHEME.as_bytes())?;
        Some(Self::parse_path(text))
    }

    fn parse_path(text: &[u8]) -> Result<Self, SigningError> {
        let bad = |why: &str| SigningError::BadKey(format!("stored PKCS#11 key reference: {why}"));
        let text = std::str::from_utf8(text).map_err(|_| bad("not UTF-8"))?;
        let (mut label, mut id) = (None, None);
        for attr in text.split(';') {
            let (k, v) = attr
                .split_once('=')
                .ok_or_else(|| bad("attribute without ="))?;
            let decoded: Vec<u8> = percent_encoding::percent_decode_str(v).collect();
            match k {
                "token" => {
                    label =
                        Some(String::from_utf8(decoded).map_err(|_| bad("token label not UTF-8"))?)
                }
                "id" => id = Some(decoded),
                "type" if v == "private" => {}
                _ => return Err(bad(&format!("unexpected attribute {k:?}"))),
            }
        }
        match (label, id) {
            (Some(token_label), Some(id)) if !id.is_empty() => Ok(TokenKeyRef { token_label, id }),
            _ => Err(bad("token and id are required")),
        }
    }
}

/// RFC 7512 §2.3: everything but unreserved characters is percent-encoded in
/// a path attribute value (over-encoding is allowed; it keeps `;` and `=` out).
const URI_ATTR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A key pair made inside the token: where it is, and its public half.
#[derive(Debug, Clone)]
pub struct TokenKey {
    /// Where the private key is.
    pub key_ref: TokenKeyRef,
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// `RSAPublicKey` DER, or the uncompressed P-256 point, as a
    /// certificate's subjectPublicKey carries it.
    pub public_key: Vec<u8>,
}

/// What `/readyz` reports about the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStatus {
    /// The token's label.
    pub label: String,
    /// Sessions open now (idle and in use).
    pub sessions_open: usize,
}

/// Modules loaded in this process. A PKCS#11 library is initialised once
/// per process (`C_Initialize`); it stays loaded so that a second server in
/// the same process (tests, a restart in place) shares it.
fn module(path: &Path) -> Result<Pkcs11, SigningError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = MODULES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let err = |reason: String| SigningError::Pkcs11Module {
        path: path.display().to_string(),
        reason,
    };
    if !path.is_file() {
        return Err(err("no such file".into()));
    }
    let ctx = Pkcs11::new(path).map_err(|e| err(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err(format!("C_Initialize: {e}"))),
    }
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// An open, logged-in token and its session pool (module docs).
pub struct Pkcs11Token {
    ctx: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    max_sessions: usize,
    wait: Duration,
    pool: Mutex<Pool>,
    freed: Condvar,
    /// Set by CKR_PIN_INCORRECT / CKR_PIN_LOCKED: no login is tried again.
    pin_refused: AtomicBool,
    /// `CKA_ID` → object handle of the private key (valid for the process).
    handles: Mutex<HashMap<Vec<u8>, ObjectHandle>>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Session>,
    open: usize,
}

impl std::fmt::Debug for Pkcs11Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Token")
            .field("label", &self.label)
            .field("slot", &self.slot.id())
            .field("max_sessions", &self.max_sessions)
            .finish_non_exhaustive()
    }
}

/// What one operation on a session can end in.
enum OpError {
    Ck(CkError),
    Signing(SigningError),
    /// The session is not logged in (found out without a CKR_USER_NOT_LOGGED_IN:
    /// a logged-out session simply does not see private objects).
    NotLoggedIn,
}

/// Whether `s` is logged in as the user (its private objects visible).
fn logged_in(s: &Session) -> bool {
    use cryptoki::session::SessionState;
    s.get_session_info().is_ok_and(|i| {
        matches!(
            i.session_state(),
            SessionState::RoUser | SessionState::RwUser
        )
    })
}

impl From<CkError> for OpError {
    fn from(e: CkError) -> Self {
        OpError::Ck(e)
    }
}

fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

impl Pkcs11Token {
    /// Load the module, find the token by label, read the PIN and log in
    /// (one session, opened now, so that a bad config fails at startup).
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, SigningError> {
        cfg.validate().map_err(SigningError::Token)?;
        let pin = cfg.read_pin()?;
        let ctx = module(&cfg.module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| SigningError::Token(format!("C_GetSlotList: {e}")))?;
        let mut present = Vec::new();
        let mut found = None;
        for slot in slots {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            if !info.token_initialized() {
                continue;
            }
            let label = info.label().trim_end().to_owned();
            if label == cfg.token_label {
                if info.user_pin_locked() {
                    return Err(SigningError::PinLocked { label });
                }
                found = Some(slot);
                break;
            }
            present.push(format!("{label:?}"));
        }
        let slot = found.ok_or_else(|| SigningError::TokenNotFound {
            label: cfg.token_label.clone(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        })?;
        let token = Pkcs11Token {
            ctx,
            slot,
            label: cfg.token_label.clone(),
            pin,
            max_sessions: cfg.sessions,
            wait: Duration::from_millis(cfg.session_wait_ms),
            pool: Mutex::new(Pool::default()),
            freed: Condvar::new(),
            pin_refused: AtomicBool::new(false),
            handles: Mutex::new(HashMap::new()),
        };
        // Open and log in the first session now: a wrong PIN stops startup.
        let s = token.checkout()?;
        token.checkin(s, true);
        Ok(token)
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn login(&self, s: &Session) -> Result<(), SigningError> {
        if self.pin_refused.load(Ordering::Acquire) {
            return Err(SigningError::PinIncorrect {
                label: self.label.clone(),
            });
        }
        match s.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                self.pin_refused.store(true, Ordering::Release);
                tracing::error!(token = %self.label, "PKCS#11 token refused the user PIN; no further login is tried until restart");
                Err(SigningError::PinIncorrect {
                    label: self.label.clone(),
                })
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                self.pin_refused.store(true, Ordering::Release);
                Err(SigningError::PinLocked {
                    label: self.label.clone(),
                })
            }
            Err(e) => Err(SigningError::Token(format!("C_Login: {e}"))),
        }
    }

    /// A session for this caller alone: an idle one, a new one while fewer
    /// than `sessions` are open, or the next one freed within the wait.
    fn checkout(&self) -> Result<Session, SigningError> {
        let deadline = Instant::now() + self.wait;
        let mut pool = self.pool();
        loop {
            if self.pin_refused.load(Ordering::Acquire) {
                return Err(SigningError::PinIncorrect {
                    label: self.label.clone(),
                });
            }
            if let Some(s) = pool.idle.pop() {
                return Ok(s);
            }
            if pool.open < self.max_sessions {
                pool.open += 1;
                drop(pool);
                let opened = self
                    .ctx
                    .open_rw_session(self.slot)
                    .map_err(|e| SigningError::Token(format!("C_OpenSession: {e}")))
                    .and_then(|s| self.login(&s).map(|()| s));
                if opened.is_err() {
                    self.pool().open -= 1;
                    self.freed.notify_one();
                }
                return opened;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(SigningError::TokenBusy {
                    sessions: self.max_sessions,
                    waited_ms: self.wait.as_millis() as u64,
                });
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Return a session; a broken one is closed and its place freed.
    fn checkin(&self, s: Session, healthy: bool) {
        let mut pool = self.pool();
        if healthy {
            pool.idle.push(s);
        } else {
            pool.open -= 1;
            drop(pool);
            drop(s);
        }
        self.freed.notify_one();
    }

    fn drop_idle(&self) {
        let idle = {
            let mut pool = self.pool();
            let idle = std::mem::take(&mut pool.idle);
            pool.open -= idle.len();
            idle
        };
        drop(idle);
        self.freed.notify_all();
    }

    /// Run `op` on a pooled session: once more after a re-login
    /// (`CKR_USER_NOT_LOGGED_IN`), a replaced session (closed, token
    /// removed) or a stale key handle; never in a loop.
    fn with_session<T>(
        &self,
        mut op: impl FnMut(&Self, &Session) -> Result<T, OpError>,
    ) -> Result<T, SigningError> {
        let mut last = None;
        for _attempt in 0..2 {
            let s = self.checkout()?;
            match op(self, &s) {
                Ok(v) => {
                    self.checkin(s, true);
                    return Ok(v);
                }
                Err(OpError::Signing(e)) => {
                    self.checkin(s, true);
                    return Err(e);
                }
                Err(OpError::NotLoggedIn) => {
                    let relogin = self.login(&s);
                    self.checkin(s, true);
                    relogin?;
                    last = None;
                }
                Err(OpError::Ck(e)) => match rv(&e) {
                    Some(RvError::UserNotLoggedIn) => {
                        let relogin = self.login(&s);
                        self.checkin(s, true);
                        relogin?;
                        last = Some(e);
                    }
                    Some(
                        RvError::SessionHandleInvalid
                        | RvError::SessionClosed
                        | RvError::DeviceRemoved
                        | RvError::TokenNotPresent
                        | RvError::DeviceError,
                    ) => {
                        tracing::warn!(token = %self.label, error = %e, "PKCS#11 session lost; closing the idle ones and opening another");
                        self.checkin(s, false);
                        // What closed this one (token removed and back, the
                        // module reset) closed the idle ones too.
                        self.drop_idle();
                        self.handles
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clear();
                        last = Some(e);
                    }
                    Some(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid) => {
                        // A stale cached handle, or (SoftHSM2) a private key
                        // handle used while logged out.
                        self.handles
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .clear();
                        let relogin = if logged_in(&s) {
                            Ok(())
                        } else {
                            self.login(&s)
                        };
                        self.checkin(s, true);
                        relogin?;
                        last = Some(e);
                    }
                    _ => {
                        self.checkin(s, true);
                        return Err(SigningError::Token(e.to_string()));
                    }
                },
            }
        }
        Err(SigningError::Token(
            last.map(|e| e.to_string()).unwrap_or_else(|| {
                "the token still answers as logged out after a fresh login".into()
            }),
        ))
    }

    /// The private key object with `CKA_ID` = `id` (cached handle).
    fn private_key(&self, s: &Session, id: &[u8]) -> Result<ObjectHandle, OpError> {
        if let Some(h) = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            return Ok(*h);
        }
        let found = s.find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
        ])?;
        let h = match found.as_slice() {
            [h] => *h,
            // Logged out (the token's login state was lost): private
            // objects are invisible, which is not the same as absent.
            [] if !logged_in(s) => return Err(OpError::NotLoggedIn),
            [] => {
                return Err(OpError::Signing(SigningError::KeyNotOnToken {
                    key: hex::encode(id),
                }));
            }
            _ => {
                return Err(OpError::Signing(SigningError::Token(format!(
                    "{} private keys share CKA_ID {}",
                    found.len(),
                    hex::encode(id)
                ))));
            }
        };
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_vec(), h);
        Ok(h)
    }

    /// Generate a key pair inside the token: the private key is a token
    /// object, sensitive, never extractable, sign-only; both halves carry
    /// `CKA_ID` = 16 random bytes and `CKA_LABEL` = `label` (the credential id).
    pub fn generate(&self, alg: KeyAlgorithm, label: &str) -> Result<TokenKey, SigningError> {
        let mut id = vec![0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| SigningError::Crypto("random"))?;
        let common = |private: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Private(private),
                Attribute::Id(id.clone()),
                Attribute::Label(label.as_bytes().to_vec()),
            ]
        };
        let mut private = common(true);
        private.extend([
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Derive(false),
        ]);
        let mut public = common(false);
        public.push(Attribute::Verify(true));
        let mechanism = match alg {
            KeyAlgorithm::Rsa2048 => {
                public.extend([
                    Attribute::KeyType(KeyType::RSA),
                    Attribute::ModulusBits(2048u64.into()),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ]);
                private.push(Attribute::KeyType(KeyType::RSA));
                Mechanism::RsaPkcsKeyPairGen
            }
            KeyAlgorithm::EcdsaP256 => {
                public.extend([
                    Attribute::KeyType(KeyType::EC),
                    Attribute::EcParams(P256_PARAMS.to_vec()),
                ]);
                private.push(Attribute::KeyType(KeyType::EC));
                Mechanism::EccKeyPairGen
            }
        };
        let public_key = self.with_session(|_, s| {
            let (pub_h, _priv_h) = s.generate_key_pair(&mechanism, &public, &private)?;
            read_public_key(s, pub_h, alg)
        })?;
        Ok(TokenKey {
            key_ref: TokenKeyRef {
                token_label: self.label.clone(),
                id,
            },
            algorithm: alg,
            public_key,
        })
    }

    /// The public key of the key pair `key_ref` names, read from its public
    /// key object (for matching a certificate to a token key).
    pub fn public_key(
        &self,
        key_ref: &TokenKeyRef,
        alg: KeyAlgorithm,
    ) -> Result<Vec<u8>, SigningError> {
        self.check_token(key_ref)?;
        self.with_session(|token, s| {
            // The private half must be there too (it is what signs).
            token.private_key(s, &key_ref.id)?;
            let found = s.find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(key_ref.id.clone()),
            ])?;
            match found.as_slice() {
                [h] => Ok(read_public_key(s, *h, alg)?),
                _ => Err(OpError::Signing(SigningError::KeyNotOnToken {
                    key: format!("{} (public key object)", hex::encode(&key_ref.id)),
                })),
            }
        })
    }

    fn check_token(&self, key_ref: &TokenKeyRef) -> Result<(), SigningError> {
        if key_ref.token_label != self.label {
            return Err(SigningError::WrongToken {
                wanted: key_ref.token_label.clone(),
                configured: format!("token {:?}", self.label),
            });
        }
        Ok(())
    }

    /// Sign SHA-256 digests (already checked to be 32 bytes) with the key.
    pub fn sign_digests(
        &self,
        key_ref: &TokenKeyRef,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        self.check_token(key_ref)?;
        self.with_session(|token, s| {
            let key = token.private_key(s, &key_ref.id)?;
            let mut out = Vec::with_capacity(digests.len());
            for d in digests {
                out.push(match alg {
                    SignatureAlgorithm::RsaPkcs1Sha256 => {
                        let mut info =
                            Vec::with_capacity(SHA256_DIGEST_INFO_PREFIX.len() + SHA256_LEN);
                        info.extend_from_slice(&SHA256_DIGEST_INFO_PREFIX);
                        info.extend_from_slice(d);
                        s.sign(&Mechanism::RsaPkcs, key, &info)?
                    }
                    SignatureAlgorithm::EcdsaP256Sha256 => {
                        let raw = s.sign(&Mechanism::Ecdsa, key, d)?;
                        p256::ecdsa::Signature::from_slice(&raw)
                            .map_err(|_| {
                                OpError::Signing(SigningError::Token(format!(
                                    "ECDSA signature of {} bytes, not r||s",
                                    raw.len()
                                )))
                            })?
                            .to_der()
                            .as_bytes()
                            .to_vec()
                    }
                });
            }
            Ok(out)
        })
    }

    /// For `/readyz`: the token still answers and a session can be had.
    pub fn status(&self) -> Result<TokenStatus, SigningError> {
        let info = self
            .ctx
            .get_token_info(self.slot)
            .map_err(|e| SigningError::Token(format!("C_GetTokenInfo: {e}")))?;
        if info.user_pin_locked() {
            return Err(SigningError::PinLocked {
                label: self.label.clone(),
            });
        }
        self.with_session(|_, s| Ok(s.get_session_info()?))?;
        Ok(TokenStatus {
            label: self.label.clone(),
            sessions_open: self.pool().open,
        })
    }
}

/// `CKA_EC_PARAMS` of P-256: the DER OID prime256v1.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// DER of `DigestInfo { sha256, NULL }` up to the 32 digest bytes (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

fn read_public_key(s: &Session, h: ObjectHandle, alg: KeyAlgorithm) -> Result<Vec<u8>, OpError> {
    let bad = |why: String| OpError::Signing(SigningError::Token(why));
    match alg {
        KeyAlgorithm::Rsa2048 => {
            let attrs =
                s.get_attributes(h, &[AttributeType::Modulus, AttributeType::PublicExponent])?;
            let (mut n, mut e) = (None, None);
            for a in attrs {
                match a {
                    Attribute::Modulus(v) => n = Some(v),
                    Attribute::PublicExponent(v) => e = Some(v),
                    _ => {}
                }
            }
            let (Some(n), Some(e)) = (n, e) else {
                return Err(bad("RSA public key without modulus or exponent".into()));
            };
            let n = strip_zeros(&n);
            if n.len() != 256 {
                return Err(OpError::Signing(SigningError::UnsupportedAlgorithm(
                    format!("RSA-{} on the token", n.len() * 8),
                )));
            }
            let mut body = der_uint(n);
            body.extend(der_uint(strip_zeros(&e)));
            Ok(tlv(SEQUENCE, &body))
        }
        KeyAlgorithm::EcdsaP256 => {
            let attrs = s.get_attributes(h, &[AttributeType::EcPoint])?;
            let point = attrs
                .into_iter()
                .find_map(|a| {
                    if let Attribute::EcPoint(v) = a {
                        Some(v)
                    } else {
                        None
                    }
                })
                .ok_or_else(|| bad("EC public key without CKA_EC_POINT".into()))?;
            // PKCS#11 says DER OCTET STRING; some modules give the raw point.
            let raw = match super::der::expect_only(&point, 0x04) {
                Some(inner) if inner.len() == 65 && inner[0] == 0x04 => inner.to_vec(),
                _ if point.len() == 65 && point[0] == 0x04 => point,
                _ => return Err(bad("CKA_EC_POINT is not an uncompressed P-256 point".into())),
            };
            Ok(raw)
        }
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let skip = b.iter().take_while(|x| **x == 0).count();
    &b[skip..]
}

/// DER INTEGER of an unsigned big-endian value (a 0 byte in front of a set high bit).
fn der_uint(v: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(v.len() + 1);
    if v.is_empty() || v[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(v);
    tlv(0x02, &content)
}

/// The PKCS#11 backend: keys whose stored form is a `pkcs11:` reference
/// sign on the token; KEK-sealed keys (the dev CA, credentials made before
/// the token was configured) still sign in software.
#[derive(Debug, Clone)]
pub struct Pkcs11Backend {
    software: super::SoftwareBackend,
    token: Arc<Pkcs11Token>,
}

impl Pkcs11Backend {
    /// Token keys on `token`, sealed keys through `software`.
    pub fn new(token: Arc<Pkcs11Token>, software: super::SoftwareBackend) -> Self {
        Pkcs11Backend { software, token }
    }
}

use super::{KeyHold, SealedKey, SigningBackend};

impl SigningBackend for Pkcs11Backend {
    fn sign_digest(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        sha256_digest: &[u8],
    ) -> Result<Vec<u8>, SigningError> {
        Ok(self.sign_digests(key, alg, &[sha256_digest])?.remove(0))
    }

    fn sign_digests(
        &self,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        match TokenKeyRef::from_stored(&key.sealed_pkcs8) {
            Some(r) => {
                super::backend::check_request(key, alg, digests)?;
                self.token.sign_digests(&r?, alg, digests)
            }
            None => self.software.sign_digests(key, alg, digests),
        }
    }

    fn sign_digests_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, SigningError> {
        // A token key is never "opened": nothing to hold.
        match TokenKeyRef::from_stored(&key.sealed_pkcs8) {
            Some(_) => self.sign_digests(key, alg, digests),
            None => self.software.sign_digests_held(hold, key, alg, digests),
        }
    }

    fn prepare_held(
        &self,
        hold: &KeyHold<'_>,
        key: &SealedKey,
        alg: SignatureAlgorithm,
        digests: &[&[u8]],
    ) -> Result<(), SigningError> {
        match TokenKeyRef::from_stored(&key.sealed_pkcs8) {
            Some(r) => r.and_then(|_| super::backend::check_request(key, alg, digests)),
            None => self.software.prepare_held(hold, key, alg, digests),
        }
    }

    fn release_grant(&self, grant_id: &str) {
        self.software.release_grant(grant_id);
    }

    fn release_all(&self) {
        self.software.release_all();
    }

    fn held_keys(&self) -> usize {
        self.software.held_keys()
    }

    fn signs_inline(&self, key: &SealedKey) -> bool {
        TokenKeyRef::from_stored(&key.sealed_pkcs8).is_none()
    }

    fn token(&self) -> Option<&Arc<Pkcs11Token>> {
        Some(&self.token)
    }
}
