//! Signed checkpoints that anchor the audit chain outside the database.
//!
//! The hash chain alone cannot show that its *tail* was cut off, nor that
//! someone with write access edited an entry and recomputed every later
//! hash: both leave a chain that verifies. A checkpoint is the server audit
//! key's signature over (seq, head hash, time, key id); kept in a file or
//! system the database writer cannot change, it pins the chain: a log
//! shorter than the checkpoint's seq was truncated, and a log whose entry at
//! that seq has another hash was rewritten.
//!
//! The audit key is an ECDSA P-256 key (so `openssl dgst -sha256 -verify`
//! checks a checkpoint, like the device evidence), generated once, sealed
//! under the KEK and stored in the settings table: a copy of the database
//! cannot sign, and neither can anyone who can write it but lacks the KEK.
//!
//! The signed bytes are UTF-8 text, exactly:
//!
//! ```text
//! shomei.audit.checkpoint.v1\n
//! seq=<decimal>\n
//! head=<64 lower-case hex digits>\n
//! at_ms=<decimal Unix milliseconds>\n
//! key_id=<16 lower-case hex digits>\n
//! ```
//!
//! and a checkpoint file line is the JSON [`Checkpoint`], which carries that
//! text (`signed`) and the DER signature (`signature`, standard base64).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

/// First line of the signed text; names the format.
pub const CHECKPOINT_TAG: &str = "shomei.audit.checkpoint.v1";

/// One signed checkpoint (a line of the checkpoint file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    /// The last audit entry covered.
    pub seq: i64,
    /// Its hash, hex.
    pub head: String,
    /// When the checkpoint was signed, Unix milliseconds.
    pub at_ms: i64,
    /// Which audit key signed it.
    pub key_id: String,
    /// The exact signed text (see the module docs).
    pub signed: String,
    /// DER ECDSA P-256 SHA-256 signature over `signed`, standard base64.
    pub signature: String,
}

/// Why a checkpoint does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("checkpoint was signed by audit key {found}, not by the trusted key {trusted}")]
    UnknownKey { found: String, trusted: String },
    #[error("checkpoint signature does not verify (forged or altered checkpoint)")]
    SignatureInvalid,
    #[error(
        "audit log truncated: the checkpoint covers seq {checkpoint_seq} but the log ends at seq {last_seq}"
    )]
    Truncated { checkpoint_seq: i64, last_seq: i64 },
    #[error("audit log rewritten: the entry at seq {seq} has another hash than the checkpoint's")]
    Rewritten { seq: i64 },
}

impl CheckpointError {
    /// A stable short name for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            CheckpointError::Malformed(_) => "malformed",
            CheckpointError::UnknownKey { .. } => "unknown_key",
            CheckpointError::SignatureInvalid => "signature_invalid",
            CheckpointError::Truncated { .. } => "truncated",
            CheckpointError::Rewritten { .. } => "rewritten",
        }
    }
}

/// The exact text a checkpoint signs.
pub fn signed_text(seq: i64, head_hex: &str, at_ms: i64, key_id: &str) -> String {
    format!("{CHECKPOINT_TAG}\nseq={seq}\nhead={head_hex}\nat_ms={at_ms}\nkey_id={key_id}\n")
}

/// Key id: the first 8 bytes of SHA-256 of the SEC1 public key, hex.
pub fn key_id_of(public_sec1: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, public_sec1);
    hex::encode(&d.as_ref()[..8])
}

/// The server's audit signing key.
pub struct AuditKey {
    pair: EcdsaKeyPair,
    key_id: String,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.key_id)
    }
}

impl AuditKey {
    /// A new key and its PKCS#8 v1 DER (secret: seal it before storing).
    pub fn generate() -> Result<(AuditKey, zeroize::Zeroizing<Vec<u8>>), CheckpointError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .map_err(|_| CheckpointError::Malformed("cannot generate the audit key".into()))?;
        let der = zeroize::Zeroizing::new(doc.as_ref().to_vec());
        Ok((Self::from_pkcs8(&der)?, der))
    }

    /// From PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<AuditKey, CheckpointError> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der).map_err(|_| {
                CheckpointError::Malformed("stored audit key is not a P-256 PKCS#8 key".into())
            })?;
        let key_id = key_id_of(pair.public_key().as_ref());
        Ok(AuditKey { pair, key_id })
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// SEC1 uncompressed public key.
    pub fn public_sec1(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// Public key as SubjectPublicKeyInfo PEM (for `openssl dgst -verify`).
    pub fn public_pem(&self) -> String {
        public_pem(&self.public_sec1()).expect("our own key is a valid P-256 point")
    }

    /// Signs a checkpoint of the chain at (`seq`, `head`).
    pub fn sign(&self, seq: i64, head: &[u8; 32], at_ms: i64) -> Checkpoint {
        let head = hex::encode(head);
        let signed = signed_text(seq, &head, at_ms, &self.key_id);
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("ECDSA signing with a valid key");
        Checkpoint {
            seq,
            head,
            at_ms,
            key_id: self.key_id.clone(),
            signed,
            signature: STANDARD.encode(sig.as_ref()),
        }
    }
}

/// A SEC1 P-256 public key as SubjectPublicKeyInfo PEM.
pub fn public_pem(sec1: &[u8]) -> Result<String, CheckpointError> {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let key = p256::PublicKey::from_sec1_bytes(sec1)
        .map_err(|_| CheckpointError::Malformed("not a P-256 public key".into()))?;
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| CheckpointError::Malformed(e.to_string()))
}

/// A SubjectPublicKeyInfo PEM (as `audit key` exports it) back to SEC1.
pub fn sec1_from_pem(pem: &str) -> Result<Vec<u8>, CheckpointError> {
    use p256::pkcs8::DecodePublicKey;
    let key = p256::PublicKey::from_public_key_pem(pem.trim()).map_err(|_| {
        CheckpointError::Malformed(
            "the audit public key is not a P-256 SubjectPublicKeyInfo PEM".into(),
        )
    })?;
    use p256::elliptic_curve::sec1::ToEncodedPoint;
    Ok(key.to_encoded_point(false).as_bytes().to_vec())
}

impl Checkpoint {
    /// The head hash as bytes.
    pub fn head_bytes(&self) -> Result<[u8; 32], CheckpointError> {
        hex::decode(&self.head)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| CheckpointError::Malformed("head is not 32 bytes of hex".into()))
    }

    /// Checks that the checkpoint was signed by the key `public_sec1` and that
    /// its fields are exactly what was signed.
    pub fn verify_signature(&self, public_sec1: &[u8]) -> Result<(), CheckpointError> {
        let trusted = key_id_of(public_sec1);
        if self.key_id != trusted {
            return Err(CheckpointError::UnknownKey {
                found: self.key_id.clone(),
                trusted,
            });
        }
        self.head_bytes()?;
        if self.seq < 0 {
            return Err(CheckpointError::Malformed("negative seq".into()));
        }
        // The JSON fields are a convenience: they must say what the signature covers.
        if self.signed != signed_text(self.seq, &self.head, self.at_ms, &self.key_id) {
            return Err(CheckpointError::SignatureInvalid);
        }
        let sig = STANDARD
            .decode(self.signature.trim())
            .map_err(|_| CheckpointError::Malformed("signature is not base64".into()))?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, public_sec1)
            .verify(self.signed.as_bytes(), &sig)
            .map_err(|_| CheckpointError::SignatureInvalid)
    }

    /// Parses a checkpoint file: one JSON checkpoint, or JSON lines (the
    /// file the server appends to).
    pub fn parse_file(text: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
        if let Ok(one) = serde_json::from_str::<Checkpoint>(text) {
            return Ok(vec![one]);
        }
        let all = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| {
                serde_json::from_str::<Checkpoint>(l)
                    .map_err(|e| CheckpointError::Malformed(format!("line {}: {e}", i + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if all.is_empty() {
            return Err(CheckpointError::Malformed(
                "no checkpoint in the file".into(),
            ));
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_verifies_with_its_key_only() {
        let (key, der) = AuditKey::generate().unwrap();
        let cp = key.sign(7, &[9; 32], 1_000);
        cp.verify_signature(&key.public_sec1()).unwrap();
        assert_eq!(AuditKey::from_pkcs8(&der).unwrap().key_id(), key.key_id());
        let (other, _) = AuditKey::generate().unwrap();
        assert!(matches!(
            cp.verify_signature(&other.public_sec1()),
            Err(CheckpointError::UnknownKey { .. })
        ));
    }

    #[test]
    fn a_checkpoint_with_an_edited_field_is_refused() {
        let (key, _) = AuditKey::generate().unwrap();
        let mut cp = key.sign(7, &[9; 32], 1_000);
        cp.seq = 3;
        assert_eq!(
            cp.verify_signature(&key.public_sec1()),
            Err(CheckpointError::SignatureInvalid)
        );
        let mut cp = key.sign(7, &[9; 32], 1_000);
        cp.signed = signed_text(3, &cp.head, cp.at_ms, &cp.key_id);
        cp.seq = 3;
        assert_eq!(
            cp.verify_signature(&key.public_sec1()),
            Err(CheckpointError::SignatureInvalid)
        );
    }

    #[test]
    fn the_public_key_round_trips_through_pem() {
        let (key, _) = AuditKey::generate().unwrap();
        assert_eq!(sec1_from_pem(&key.public_pem()).unwrap(), key.public_sec1());
    }

    #[test]
    fn a_checkpoint_file_is_one_json_or_json_lines() {
        let (key, _) = AuditKey::generate().unwrap();
        let a = key.sign(1, &[1; 32], 1);
        let b = key.sign(2, &[2; 32], 2);
        let lines = format!(
            "{}\n{}\n",
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(Checkpoint::parse_file(&lines).unwrap(), vec![a.clone(), b]);
        assert_eq!(
            Checkpoint::parse_file(&serde_json::to_string_pretty(&a).unwrap()).unwrap(),
            vec![a]
        );
        assert!(Checkpoint::parse_file("").is_err());
        assert!(Checkpoint::parse_file("{\"seq\":1}").is_err());
    }
}
