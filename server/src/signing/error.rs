//! The one error type of the signing module, so that the HTTP layer can map
//! each failure to a stable problem+json code without string matching.

/// Everything that can go wrong while creating, importing, sealing or using
/// a signing key. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// signHash got a hash whose length is not that of SHA-256.
    #[error("digest must be {expected} bytes (SHA-256), got {actual}")]
    BadDigestLength { expected: usize, actual: usize },
    /// The requested signature algorithm does not fit the credential's key.
    #[error("signature algorithm {requested} cannot be used with a {key} key")]
    AlgorithmMismatch {
        requested: &'static str,
        key: &'static str,
    },
    /// An OID, key type or key size this server does not support.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A sealed key could not be opened: wrong KEK, wrong credential id (AAD),
    /// or the stored bytes were altered.
    #[error(
        "sealed key could not be decrypted (wrong key-encryption key, wrong credential, or tampered data)"
    )]
    KeyDecrypt,
    /// Sealed bytes that are not in any format this server wrote.
    #[error("sealed data has an unknown format: {0}")]
    SealedFormat(String),
    /// The key-encryption key itself is unusable (wrong length, bad base64).
    #[error("key-encryption key is invalid: {0}")]
    BadKek(String),
    /// The KEK file can be read by other users; refusing it like ssh does.
    #[error(
        "key-encryption key file {path} is readable by group or others (mode {mode:o}); chmod 600 it"
    )]
    InsecureKekFile { path: String, mode: u32 },
    /// A private key that cannot be parsed or is not acceptable.
    #[error("private key rejected: {0}")]
    BadKey(String),
    /// A certificate that cannot be parsed or is not acceptable.
    #[error("certificate rejected: {0}")]
    BadCertificate(String),
    /// The leaf certificate carries a different public key than the private key.
    #[error("the certificate's public key does not belong to the private key")]
    CertificateKeyMismatch,
    /// The PKCS#12 file's password is wrong (its MAC or encryption fails).
    #[error("PKCS#12 password is wrong or the file is corrupted")]
    Pkcs12Password,
    /// Any other PKCS#12 structure problem.
    #[error("PKCS#12 file rejected: {0}")]
    Pkcs12(String),
    /// Certificate generation failed inside rcgen.
    #[error("certificate generation failed: {0}")]
    CertificateGeneration(String),
    /// The crypto library refused an operation that should not fail
    /// (key generation, signing with a key it accepted).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The PKCS#11 module (shared library) is missing or is not a PKCS#11 module.
    #[error("PKCS#11 module {path} cannot be loaded: {reason}")]
    Pkcs11Module { path: String, reason: String },
    /// No slot holds a token with the configured label.
    #[error("no PKCS#11 token labelled {label:?} (tokens present: {present})")]
    TokenNotFound { label: String, present: String },
    /// C_Login answered CKR_PIN_INCORRECT. Never retried by the server: a
    /// token locks its user PIN after a few wrong tries.
    #[error("the PKCS#11 token {label:?} refused the user PIN (CKR_PIN_INCORRECT); not retried, fix the PIN source and restart")]
    PinIncorrect { label: String },
    /// The token's user PIN is locked (too many wrong tries); the security
    /// officer must unlock it.
    #[error("the PKCS#11 token {label:?} has its user PIN locked; the security officer must reset it")]
    PinLocked { label: String },
    /// The PIN source is missing, empty, or not a file/env value as configured.
    #[error("PKCS#11 PIN: {0}")]
    PinSource(String),
    /// The PIN file can be read by other users.
    #[error("PKCS#11 PIN file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    InsecurePinFile { path: String, mode: u32 },
    /// A credential names a key object that is not on the token.
    #[error("key {key} is not on the PKCS#11 token")]
    KeyNotOnToken { key: String },
    /// A credential's key lives on a PKCS#11 token but this server has none
    /// configured (or another one).
    #[error("credential key is on PKCS#11 token {wanted:?}, but this server uses {configured}")]
    WrongToken { wanted: String, configured: String },
    /// Every session to the token stayed busy for the configured wait.
    #[error("all {sessions} PKCS#11 sessions stayed busy for {waited_ms} ms")]
    TokenBusy { sessions: usize, waited_ms: u64 },
    /// Any other failure the token reported (the PKCS#11 return value).
    #[error("PKCS#11 token: {0}")]
    Token(String),
    /// Reading or writing the KEK file.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
