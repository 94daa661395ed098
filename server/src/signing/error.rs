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
    /// Reading or writing the KEK file.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
