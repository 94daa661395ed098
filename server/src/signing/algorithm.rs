//! Key and signature algorithms, and how CSC's OIDs map onto them.

use super::SigningError;

/// Object identifiers that appear on the CSC wire and in certificates.
pub mod oid {
    /// rsaEncryption: CSC lets a client name the key algorithm as signAlgo
    /// and give the hash separately in hashAlgorithmOID.
    pub const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
    /// sha256WithRSAEncryption.
    pub const SHA256_WITH_RSA: &str = "1.2.840.113549.1.1.11";
    /// ecdsa-with-SHA256.
    pub const ECDSA_WITH_SHA256: &str = "1.2.840.10045.4.3.2";
    /// id-ecPublicKey (key algorithm of EC keys).
    pub const EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
    /// prime256v1 / secp256r1.
    pub const P256: &str = "1.2.840.10045.3.1.7";
    /// id-sha256.
    pub const SHA256: &str = "2.16.840.1.101.3.4.2.1";
}

/// The kinds of practitioner key this server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    /// RSA with a 2048-bit modulus, what today's HPKI cards and the HPKI
    /// second certificate use.
    Rsa2048,
    /// ECDSA on NIST P-256.
    EcdsaP256,
}

impl KeyAlgorithm {
    /// Stable lowercase name for storage and JSON (`rsa2048`, `ecdsa-p256`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa2048 => "rsa2048",
            KeyAlgorithm::EcdsaP256 => "ecdsa-p256",
        }
    }

    /// Inverse of [`KeyAlgorithm::as_str`].
    pub fn parse(s: &str) -> Result<Self, SigningError> {
        match s {
            "rsa2048" => Ok(KeyAlgorithm::Rsa2048),
            "ecdsa-p256" => Ok(KeyAlgorithm::EcdsaP256),
            other => Err(SigningError::UnsupportedAlgorithm(format!(
                "key algorithm {other:?}"
            ))),
        }
    }

    /// Key length in bits, as CSC `credentials/info` reports it (`key.len`).
    pub fn key_len_bits(self) -> u32 {
        match self {
            KeyAlgorithm::Rsa2048 => 2048,
            KeyAlgorithm::EcdsaP256 => 256,
        }
    }

    /// The signature algorithm OIDs a client may pass as `signAlgo` for this
    /// key; CSC `credentials/info` lists them in `key.algo`.
    pub fn csc_sign_algos(self) -> &'static [&'static str] {
        match self {
            KeyAlgorithm::Rsa2048 => &[oid::SHA256_WITH_RSA, oid::RSA_ENCRYPTION],
            KeyAlgorithm::EcdsaP256 => &[oid::ECDSA_WITH_SHA256],
        }
    }

    /// The one signature algorithm this key makes.
    pub fn signature_algorithm(self) -> SignatureAlgorithm {
        match self {
            KeyAlgorithm::Rsa2048 => SignatureAlgorithm::RsaPkcs1Sha256,
            KeyAlgorithm::EcdsaP256 => SignatureAlgorithm::EcdsaP256Sha256,
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What signHash produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256; the server adds the DigestInfo.
    RsaPkcs1Sha256,
    /// ECDSA P-256 with SHA-256, DER-encoded `Ecdsa-Sig-Value`.
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    /// Map CSC's `signAlgo` / `hashAlgorithmOID` pair for a key of `key`.
    ///
    /// `hash_algo_oid` may be omitted when `signAlgo` already names the hash
    /// (sha256WithRSAEncryption, ecdsa-with-SHA256); with bare rsaEncryption
    /// it is required, as CSC v2 says. Only SHA-256 is accepted, because the
    /// digests are checked to be 32 bytes.
    pub fn from_csc(
        sign_algo_oid: &str,
        hash_algo_oid: Option<&str>,
        key: KeyAlgorithm,
    ) -> Result<Self, SigningError> {
        let hash = hash_algo_oid.map(str::trim).filter(|h| !h.is_empty());
        if let Some(h) = hash
            && h != oid::SHA256
        {
            return Err(SigningError::UnsupportedAlgorithm(format!(
                "hash algorithm {h}"
            )));
        }
        let alg = match sign_algo_oid.trim() {
            oid::SHA256_WITH_RSA => SignatureAlgorithm::RsaPkcs1Sha256,
            oid::RSA_ENCRYPTION => {
                if hash.is_none() {
                    return Err(SigningError::UnsupportedAlgorithm(
                        "signAlgo rsaEncryption needs hashAlgorithmOID (SHA-256)".into(),
                    ));
                }
                SignatureAlgorithm::RsaPkcs1Sha256
            }
            oid::ECDSA_WITH_SHA256 => SignatureAlgorithm::EcdsaP256Sha256,
            other => {
                return Err(SigningError::UnsupportedAlgorithm(format!(
                    "signAlgo {other}"
                )));
            }
        };
        alg.check_key(key)?;
        Ok(alg)
    }

    /// Fails with [`SigningError::AlgorithmMismatch`] when this algorithm
    /// cannot be made with a key of `key`.
    pub fn check_key(self, key: KeyAlgorithm) -> Result<(), SigningError> {
        if key.signature_algorithm() == self {
            Ok(())
        } else {
            Err(SigningError::AlgorithmMismatch {
                requested: self.as_str(),
                key: key.as_str(),
            })
        }
    }

    /// Stable name for logs and audit details.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => "rsa-pkcs1-sha256",
            SignatureAlgorithm::EcdsaP256Sha256 => "ecdsa-p256-sha256",
        }
    }

    /// The signature algorithm OID (for CMS / XAdES builders).
    pub fn oid(self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => oid::SHA256_WITH_RSA,
            SignatureAlgorithm::EcdsaP256Sha256 => oid::ECDSA_WITH_SHA256,
        }
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
