//! Why an attestation was refused: one variant per failed check, so a
//! refusal names exactly what was wrong (the `detail` of the public
//! `attestation_invalid` problem, and the operator tool's output). The
//! mapping to the public code happens once, in `service::Error`.

/// One failed attestation check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    // ---- policy ----
    /// The policy requires attestation and the phone sent none.
    #[error("attestation required but none was sent")]
    Missing,
    /// The policy requires attestation and this platform has none (the desktop phone).
    #[error("the {platform} platform cannot attest and the policy requires attestation")]
    PlatformCannotAttest { platform: String },
    /// The attestation format does not belong to the enrolling platform.
    #[error("{format} attestation sent by a {platform} device")]
    FormatMismatch { format: String, platform: String },
    /// A format this server does not know.
    #[error("unsupported attestation format")]
    UnsupportedFormat,

    // ---- certificate chains (both formats) ----
    /// No certificates.
    #[error("empty certificate chain")]
    EmptyChain,
    /// More certificates than any real chain has.
    #[error("certificate chain too long ({len} certificates, at most {max})")]
    ChainTooLong { len: usize, max: usize },
    /// A certificate is not a well-formed DER X.509 certificate.
    #[error("certificate {index} is malformed: {reason}")]
    MalformedCertificate { index: usize, reason: String },
    /// A link's signature does not verify with the next certificate's key.
    #[error("certificate {index} is not signed by certificate {}", index + 1)]
    BadChainSignature { index: usize },
    /// The chain ends in none of the trusted roots (a self-made chain, or another vendor's).
    #[error("untrusted root: the chain does not end in a trusted {anchors} root")]
    UntrustedRoot { anchors: String },
    /// A certificate is not valid yet at the verification instant.
    #[error("certificate {index} is not valid before {not_before}")]
    NotYetValid { index: usize, not_before: String },
    /// A certificate expired before the verification instant.
    #[error("certificate {index} expired at {not_after}")]
    Expired { index: usize, not_after: String },
    /// A certificate's serial is on the revocation status list.
    #[error("certificate {index} (serial {serial}) is revoked: {reason}")]
    Revoked {
        index: usize,
        serial: String,
        reason: String,
    },

    // ---- Android Key Attestation ----
    /// The leaf has no KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17).
    #[error("leaf certificate has no key attestation extension")]
    MissingKeyDescription,
    /// The KeyDescription does not parse as its ASN.1 schema says.
    #[error("malformed key description: {0}")]
    MalformedKeyDescription(String),
    /// attestationChallenge is not this enrollment's challenge.
    #[error("challenge mismatch")]
    ChallengeMismatch,
    /// The key (or its attestation) lives in software, not in a TEE or StrongBox.
    #[error("software key (security level {level})")]
    SoftwareKey { level: String },
    /// StrongBox required but the key is in the TEE.
    #[error("key is not in StrongBox (security level {level})")]
    NotStrongBox { level: String },
    /// The attested key is not ECDSA P-256 (the protocol's device key type).
    #[error("{algorithm} key, not EC P-256")]
    NotEcP256 { algorithm: String },
    /// The attested key is not the key being enrolled.
    #[error("attested key does not match the enrolled key")]
    KeyMismatch,
    /// The key may not sign.
    #[error("key purpose does not include SIGN")]
    PurposeNotSign,
    /// The key is usable without the user authenticating.
    #[error("user authentication not required by the key")]
    UserAuthNotRequired,
    /// User authentication does not include a biometric.
    #[error("user authentication is not biometric (authenticator type {user_auth_type})")]
    NotBiometric { user_auth_type: i64 },
    /// Authentication is valid for a time window instead of per use.
    #[error("user authentication is valid for {seconds} s instead of per use")]
    AuthTimeout { seconds: i64 },
    /// The device's bootloader is unlocked.
    #[error("bootloader unlocked")]
    BootloaderUnlocked,
    /// Verified boot did not verify the OS.
    #[error("verified boot state is {state}, not Verified")]
    BootNotVerified { state: String },
    /// No root of trust (boot state) in the attestation.
    #[error("no root of trust in the attestation")]
    MissingRootOfTrust,
    /// No attestationApplicationId to check the app against.
    #[error("no attestation application id")]
    MissingApplicationId,
    /// The attesting app is not on the allow-list.
    #[error("app not allowed ({package})")]
    AppNotAllowed { package: String },
    /// The attesting app's signing certificate is not on the allow-list.
    #[error("app signing certificate not allowed ({package})")]
    AppSignerNotAllowed { package: String },

    // ---- Apple App Attest ----
    /// The attestation object is not the CBOR map Apple specifies.
    #[error("malformed attestation object: {0}")]
    MalformedAttestationObject(String),
    /// `fmt` is not "apple-appattest".
    #[error("attestation object format is {0:?}, not \"apple-appattest\"")]
    WrongObjectFormat(String),
    /// authData is shorter than its fields or inconsistent.
    #[error("malformed authenticator data: {0}")]
    MalformedAuthData(String),
    /// The credential certificate lacks the nonce extension (1.2.840.113635.100.8.2).
    #[error("credential certificate has no nonce extension")]
    MissingNonce,
    /// The nonce in the certificate is not SHA-256(authData ‖ clientDataHash).
    #[error("nonce mismatch")]
    NonceMismatch,
    /// The key id is not SHA-256 of the attested public key (or not the credential id).
    #[error("key id mismatch")]
    KeyIdMismatch,
    /// rpIdHash is not SHA-256 of an allowed "TEAMID.bundle.id".
    #[error("wrong rpIdHash: app not allowed")]
    RpIdMismatch,
    /// The development App Attest environment while the policy allows only production.
    #[error("development AAGUID (appattestdevelop) not allowed")]
    DevelopmentAaguid,
    /// An AAGUID that is neither App Attest environment.
    #[error("unknown AAGUID {0}")]
    UnknownAaguid(String),
    /// A fresh attestation has counter 0.
    #[error("non-zero counter ({0})")]
    NonZeroCounter(u32),

    // ---- server side ----
    /// The configured revocation status list cannot be read (fail closed).
    #[error("revocation status list unavailable: {0}")]
    StatusListUnavailable(String),
}

impl AttestationError {
    /// True when the server, not the phone, is at fault (mapped to `internal`).
    pub fn is_server_fault(&self) -> bool {
        matches!(self, AttestationError::StatusListUnavailable(_))
    }
}
