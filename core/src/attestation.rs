//! Platform key attestation at enrollment: the values that bind a phone's
//! attestation to *this* enrollment and *this* device key, and the wire form
//! of the attestation itself.
//!
//! A doctor's approval is only worth what the phone's key is worth, so the
//! server wants the platform to vouch that the key is hardware-backed and
//! biometric-gated. Two platform mechanisms exist and both need a server
//! value chosen before the evidence is made:
//!
//! - **Android Key Attestation** puts a caller-chosen *attestation
//!   challenge* (`KeyGenParameterSpec.setAttestationChallenge`) into the
//!   attested key's certificate. The app must know it *before* generating
//!   the key, without a server round trip, so it is derived from the
//!   enrollment QR: [`attestation_challenge`] hashes origin, enrollment id
//!   and the SHA-256 of the one-time secret under a domain tag. Only a phone
//!   that scanned this QR can compute it, and it is fresh per enrollment.
//! - **Apple App Attest** attests a separate App Attest key, not the Secure
//!   Enclave signing key, and commits to a caller-chosen 32-byte
//!   `clientDataHash`. [`client_data_hash`] commits to the attestation
//!   challenge *and* the Secure Enclave public key being enrolled, so the
//!   attestation object cannot be moved to another enrollment or another key.
//!
//! Both are normative in docs/protocol.md §3.3 with byte-exact test vectors.

use serde::{Deserialize, Serialize};

use crate::api::b64u;
use crate::approval::{DevicePublicKey, MESSAGE_VERSION};
use crate::ids::EnrollmentId;
use crate::origin::Origin;
use crate::payload::EnrollmentPayload;

/// Domain tag of the attestation challenge preimage.
pub const ATTESTATION_CHALLENGE_DOMAIN: &[u8] = b"shomei/attestation-challenge";
/// Domain tag of the App Attest client data preimage.
pub const CLIENT_DATA_DOMAIN: &[u8] = b"shomei/app-attest-client-data";
/// Length of the attestation challenge and of the client data hash.
pub const ATTESTATION_CHALLENGE_LEN: usize = 32;

fn put(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("field longer than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// The bytes hashed into the attestation challenge:
/// `len‖"shomei/attestation-challenge" ‖ u16be(1) ‖ len‖origin ‖ len‖enrollment_id ‖ len‖SHA-256(secret)`.
pub fn attestation_challenge_preimage(
    origin: &Origin,
    enrollment_id: &EnrollmentId,
    secret_sha256: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    put(&mut out, ATTESTATION_CHALLENGE_DOMAIN);
    out.extend_from_slice(&MESSAGE_VERSION.to_be_bytes());
    put(&mut out, origin.as_str().as_bytes());
    put(&mut out, enrollment_id.as_bytes());
    put(&mut out, secret_sha256);
    out
}

/// The 32-byte attestation challenge of an enrollment: SHA-256 of
/// [`attestation_challenge_preimage`]. The server computes it from the
/// stored secret hash; the phone from the scanned payload.
pub fn attestation_challenge(
    origin: &Origin,
    enrollment_id: &EnrollmentId,
    secret_sha256: &[u8; 32],
) -> [u8; 32] {
    sha256(&attestation_challenge_preimage(
        origin,
        enrollment_id,
        secret_sha256,
    ))
}

/// The attestation challenge for a scanned enrollment payload.
pub fn enrollment_attestation_challenge(p: &EnrollmentPayload) -> [u8; 32] {
    attestation_challenge(&p.origin, &p.enrollment_id, &p.secret.sha256())
}

/// The bytes hashed into the App Attest client data hash:
/// `len‖"shomei/app-attest-client-data" ‖ u16be(1) ‖ len‖challenge ‖ len‖public_key`.
pub fn client_data_preimage(challenge: &[u8; 32], public_key: &DevicePublicKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(160);
    put(&mut out, CLIENT_DATA_DOMAIN);
    out.extend_from_slice(&MESSAGE_VERSION.to_be_bytes());
    put(&mut out, challenge);
    put(&mut out, public_key.as_bytes());
    out
}

/// The `clientDataHash` an iOS app passes, unchanged, to
/// `DCAppAttestService.attestKey`: SHA-256 of [`client_data_preimage`].
pub fn client_data_hash(challenge: &[u8; 32], public_key: &DevicePublicKey) -> [u8; 32] {
    sha256(&client_data_preimage(challenge, public_key))
}

/// What core asks the platform key for at enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttestationRequest {
    /// The attestation challenge (Android: the key must have been generated with it).
    pub challenge: [u8; 32],
    /// App Attest `clientDataHash` (commits to the challenge and this key's public key).
    pub client_data_hash: [u8; 32],
}

impl AttestationRequest {
    /// The request for enrolling `public_key` with the payload `p`.
    pub fn new(p: &EnrollmentPayload, public_key: &DevicePublicKey) -> AttestationRequest {
        let challenge = enrollment_attestation_challenge(p);
        AttestationRequest {
            challenge,
            client_data_hash: client_data_hash(&challenge, public_key),
        }
    }
}

/// The platform's evidence for the enrolled key, as sent in
/// `EnrollRequest.attestation` (JSON object tagged by `format`, docs/protocol.md §4.1).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format")]
pub enum Attestation {
    /// Android Key Attestation: `KeyStore.getCertificateChain(alias)`, DER, leaf first.
    #[serde(rename = "android-key")]
    AndroidKey {
        /// DER certificates, leaf first, each b64u.
        #[serde(with = "b64u::list")]
        certificates: Vec<Vec<u8>>,
    },
    /// Apple App Attest: the key id and the CBOR attestation object from `attestKey`.
    #[serde(rename = "apple-appattest")]
    AppleAppAttest {
        /// App Attest key identifier (SHA-256 of the App Attest public key, 32 bytes), b64u.
        #[serde(with = "b64u")]
        key_id: Vec<u8>,
        /// The CBOR attestation object, b64u.
        #[serde(with = "b64u")]
        attestation_object: Vec<u8>,
    },
    /// A format this build does not know (newer client); the server refuses it.
    #[serde(other)]
    Unknown,
}

impl Attestation {
    /// The wire name of the format.
    pub fn format(&self) -> &'static str {
        match self {
            Attestation::AndroidKey { .. } => "android-key",
            Attestation::AppleAppAttest { .. } => "apple-appattest",
            Attestation::Unknown => "unknown",
        }
    }
}

impl std::fmt::Debug for Attestation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attestation::AndroidKey { certificates } => f
                .debug_struct("AndroidKey")
                .field("certificates", &certificates.len())
                .finish(),
            Attestation::AppleAppAttest {
                key_id,
                attestation_object,
            } => f
                .debug_struct("AppleAppAttest")
                .field("key_id", &b64u::encode(key_id))
                .field("attestation_object_len", &attestation_object.len())
                .finish(),
            Attestation::Unknown => f.write_str("Unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::QrSecret;
    use crate::key::SoftwareKey;

    fn payload() -> EnrollmentPayload {
        EnrollmentPayload {
            origin: Origin::parse("https://shomei.example.jp").unwrap(),
            enrollment_id: EnrollmentId([1; 16]),
            secret: QrSecret::from_bytes([2; 16]),
            expires_at: 1_795_000_000,
        }
    }

    #[test]
    fn challenge_binds_origin_enrollment_and_secret() {
        let p = payload();
        let base = enrollment_attestation_challenge(&p);
        let other_origin = EnrollmentPayload {
            origin: Origin::parse("https://other.example.jp").unwrap(),
            ..p.clone()
        };
        let other_id = EnrollmentPayload {
            enrollment_id: EnrollmentId([9; 16]),
            ..p.clone()
        };
        let other_secret = EnrollmentPayload {
            secret: QrSecret::from_bytes([9; 16]),
            ..p.clone()
        };
        for other in [other_origin, other_id, other_secret] {
            assert_ne!(enrollment_attestation_challenge(&other), base);
        }
        // The expiry is not part of it (the server does not need the QR to recompute it).
        let later = EnrollmentPayload {
            expires_at: p.expires_at + 1,
            ..p.clone()
        };
        assert_eq!(enrollment_attestation_challenge(&later), base);
    }

    #[test]
    fn client_data_hash_binds_challenge_and_key() {
        let k1 = DevicePublicKey::from_sec1(&SoftwareKey::generate().public_key_sec1()).unwrap();
        let k2 = DevicePublicKey::from_sec1(&SoftwareKey::generate().public_key_sec1()).unwrap();
        let c = [7; 32];
        let mut c2 = c;
        c2[0] = 8;
        assert_ne!(client_data_hash(&c, &k1), client_data_hash(&c, &k2));
        assert_ne!(client_data_hash(&c, &k1), client_data_hash(&c2, &k1));
        // Domain separation: not the bare challenge, not SHA-256 of the challenge.
        assert_ne!(client_data_hash(&c, &k1), c);
        assert_ne!(client_data_hash(&c, &k1), sha256(&c));
    }

    #[test]
    fn attestation_wire_form_is_tagged_by_format() {
        let a = Attestation::AndroidKey {
            certificates: vec![vec![0x30, 0x01], vec![0x30, 0x02]],
        };
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"format": "android-key", "certificates": ["MAE", "MAI"]})
        );
        assert_eq!(serde_json::from_value::<Attestation>(j).unwrap(), a);
        let b = Attestation::AppleAppAttest {
            key_id: vec![1; 32],
            attestation_object: vec![0xa3],
        };
        let j = serde_json::to_value(&b).unwrap();
        assert_eq!(j["format"], "apple-appattest");
        assert_eq!(serde_json::from_value::<Attestation>(j).unwrap(), b);
    }

    #[test]
    fn an_unknown_format_parses_as_unknown() {
        let u: Attestation = serde_json::from_value(serde_json::json!({"format": "tpm"})).unwrap();
        assert_eq!(u, Attestation::Unknown);
        assert!(
            serde_json::from_value::<Attestation>(serde_json::json!({"certificates": []})).is_err()
        );
    }
}
