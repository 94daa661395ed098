//! The bytes a phone's device key signs, and their verification.
//!
//! Two messages exist: the *approval message* (approve or deny one login) and the
//! *enrollment message* (proof of possession of a new device key). Both are
//! domain-separated, versioned and built from length-prefixed fields, so that no
//! signature over one can be read as a signature over another message, another
//! login, another server, another device, another decision or another number.
//! The exact layouts are normative in docs/protocol.md.
//!
//! The messages bind SHA-256 of the QR secret rather than the secret itself:
//! the server can then keep only the hash in its database (a read-only leak of
//! the database does not reveal usable secrets) and can store signed messages
//! as audit evidence without storing secrets, while the binding is just as
//! strong (SHA-256 is preimage- and collision-resistant).
//!
//! Verification uses ring (about 6x faster than the p256 crate for P-256
//! verification); p256 is used only to validate public-key points.

use serde::{Deserialize, Serialize};

use crate::ids::{EnrollmentId, LoginId, QrSecret};
use crate::origin::Origin;

/// Domain tag of the approval message.
pub const APPROVAL_DOMAIN: &[u8] = b"shomei/approval";
/// Domain tag of the enrollment (proof-of-possession) message.
pub const ENROLLMENT_DOMAIN: &[u8] = b"shomei/enrollment";
/// Protocol version bound into both messages.
pub const MESSAGE_VERSION: u16 = 1;
/// Length of the server challenge in a login context.
pub const CHALLENGE_LEN: usize = 32;

/// The user's answer to a login request.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Grant the terminal a day of signing.
    Approve,
    /// Refuse ("this wasn't me"); signed as well so nobody can forge it.
    Deny,
}

impl Decision {
    /// The byte that encodes the decision in the approval message.
    pub fn wire_byte(self) -> u8 {
        match self {
            Decision::Approve => 0x01,
            Decision::Deny => 0x02,
        }
    }
}

/// Why a public key or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not a 65-byte uncompressed SEC1 encoding of a point on P-256.
    #[error("public key is not an uncompressed P-256 point")]
    BadPublicKey,
    /// The signature is not a DER-encoded ECDSA signature.
    #[error("signature is not DER-encoded ECDSA")]
    BadEncoding,
    /// Well-formed, but not a valid signature by this key over this message.
    #[error("signature does not verify")]
    Invalid,
}

/// Appends `field` as a big-endian u32 length followed by the bytes.
fn put(out: &mut Vec<u8>, field: &[u8]) {
    let len = u32::try_from(field.len()).expect("message field longer than 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

fn header(domain: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    put(&mut out, domain);
    out.extend_from_slice(&MESSAGE_VERSION.to_be_bytes());
    out
}

/// The approval message: "device `device_id` answers `decision` with number
/// `number` to login `login_id` (QR secret hash) at `origin`, challenge `challenge`".
#[derive(Debug, Clone, Copy)]
pub struct ApprovalMessage<'a> {
    /// Server the login lives on.
    pub origin: &'a Origin,
    /// The login being decided.
    pub login_id: &'a LoginId,
    /// The QR secret (the message binds its SHA-256).
    pub secret: &'a QrSecret,
    /// Device id (UUID bytes) assigned at enrollment.
    pub device_id: [u8; 16],
    /// Approve or deny.
    pub decision: Decision,
    /// The number the user picked (0 allowed for a deny before choosing).
    pub number: u8,
    /// The server's challenge from the login context.
    pub challenge: [u8; CHALLENGE_LEN],
}

impl ApprovalMessage<'_> {
    /// The canonical bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        approval_bytes_from_secret_sha256(
            self.origin,
            self.login_id,
            &self.secret.sha256(),
            self.device_id,
            self.decision,
            self.number,
            &self.challenge,
        )
    }
}

/// The approval message built from SHA-256 of the QR secret, for a server that
/// stores only the hash. Equal to [`ApprovalMessage::to_bytes`] for the same inputs.
pub fn approval_bytes_from_secret_sha256(
    origin: &Origin,
    login_id: &LoginId,
    secret_sha256: &[u8; 32],
    device_id: [u8; 16],
    decision: Decision,
    number: u8,
    challenge: &[u8; CHALLENGE_LEN],
) -> Vec<u8> {
    let mut out = header(APPROVAL_DOMAIN);
    put(&mut out, origin.as_str().as_bytes());
    put(&mut out, login_id.as_bytes());
    put(&mut out, secret_sha256);
    put(&mut out, &device_id);
    put(&mut out, &[decision.wire_byte()]);
    put(&mut out, &[number]);
    put(&mut out, challenge);
    out
}

/// The enrollment message: "the holder of `public_key`, called `device_name`,
/// enrolls with enrollment code `enrollment_id` (secret hash) at `origin`".
#[derive(Debug, Clone, Copy)]
pub struct EnrollmentMessage<'a> {
    /// Server being enrolled with.
    pub origin: &'a Origin,
    /// The enrollment code.
    pub enrollment_id: &'a EnrollmentId,
    /// The enrollment QR secret (the message binds its SHA-256).
    pub secret: &'a QrSecret,
    /// The new device key.
    pub public_key: &'a DevicePublicKey,
    /// User-visible device name (UTF-8).
    pub device_name: &'a str,
}

impl EnrollmentMessage<'_> {
    /// The canonical bytes to sign.
    pub fn to_bytes(&self) -> Vec<u8> {
        enrollment_bytes_from_secret_sha256(
            self.origin,
            self.enrollment_id,
            &self.secret.sha256(),
            self.public_key,
            self.device_name,
        )
    }
}

/// The enrollment message built from SHA-256 of the enrollment secret, for a
/// server that stores only the hash. Equal to [`EnrollmentMessage::to_bytes`].
pub fn enrollment_bytes_from_secret_sha256(
    origin: &Origin,
    enrollment_id: &EnrollmentId,
    secret_sha256: &[u8; 32],
    public_key: &DevicePublicKey,
    device_name: &str,
) -> Vec<u8> {
    let mut out = header(ENROLLMENT_DOMAIN);
    put(&mut out, origin.as_str().as_bytes());
    put(&mut out, enrollment_id.as_bytes());
    put(&mut out, secret_sha256);
    put(&mut out, public_key.as_bytes());
    put(&mut out, device_name.as_bytes());
    out
}

/// A device's public key: a validated, uncompressed SEC1 P-256 point (65 bytes).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DevicePublicKey([u8; 65]);

impl DevicePublicKey {
    /// Length of the SEC1 uncompressed encoding.
    pub const LEN: usize = 65;

    /// Accepts exactly `0x04 || X || Y` with (X, Y) on P-256; rejects compressed,
    /// hybrid, identity, off-curve and wrong-length encodings.
    pub fn from_sec1(b: &[u8]) -> Result<Self, SignatureError> {
        let arr: [u8; 65] = b.try_into().map_err(|_| SignatureError::BadPublicKey)?;
        if arr[0] != 0x04 {
            return Err(SignatureError::BadPublicKey);
        }
        // p256 checks that the coordinates are field elements and the point is on the curve.
        p256::PublicKey::from_sec1_bytes(&arr).map_err(|_| SignatureError::BadPublicKey)?;
        Ok(Self(arr))
    }

    /// The 65 SEC1 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Verifies a DER ECDSA P-256 / SHA-256 signature over `message` (the
    /// message itself, not a digest: ring hashes it).
    pub fn verify(&self, message: &[u8], der_signature: &[u8]) -> Result<(), SignatureError> {
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            &self.0[..],
        );
        if key.verify(message, der_signature).is_ok() {
            return Ok(());
        }
        // Only on failure: tell a malformed signature apart from a wrong one.
        if p256::ecdsa::Signature::from_der(der_signature).is_err() {
            Err(SignatureError::BadEncoding)
        } else {
            Err(SignatureError::Invalid)
        }
    }
}

impl std::fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DevicePublicKey(")?;
        for b in &self.0[..9] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{PlatformKey, SoftwareKey};

    struct Fixture {
        origin: Origin,
        login_id: LoginId,
        secret: QrSecret,
        key: SoftwareKey,
        public: DevicePublicKey,
    }

    fn fixture() -> Fixture {
        let key = SoftwareKey::generate();
        let public = DevicePublicKey::from_sec1(&key.public_key().unwrap()).unwrap();
        Fixture {
            origin: Origin::parse("https://shomei.example.jp").unwrap(),
            login_id: LoginId([1; 16]),
            secret: QrSecret::from_bytes([2; 16]),
            key,
            public,
        }
    }

    fn approval(f: &Fixture) -> ApprovalMessage<'_> {
        ApprovalMessage {
            origin: &f.origin,
            login_id: &f.login_id,
            secret: &f.secret,
            device_id: [3; 16],
            decision: Decision::Approve,
            number: 42,
            challenge: [4; 32],
        }
    }

    #[test]
    fn approval_signature_verifies() {
        let f = fixture();
        let msg = approval(&f).to_bytes();
        let sig = f.key.sign(&msg).unwrap();
        assert_eq!(f.public.verify(&msg, &sig), Ok(()));
    }

    /// Signs the base message and checks that it does not verify for `changed`.
    fn assert_binding(changed: impl Fn(&Fixture) -> Vec<u8>) {
        let f = fixture();
        let sig = f.key.sign(&approval(&f).to_bytes()).unwrap();
        let other = changed(&f);
        assert_ne!(other, approval(&f).to_bytes());
        assert_eq!(f.public.verify(&other, &sig), Err(SignatureError::Invalid));
    }

    #[test]
    fn approval_cannot_be_replayed_at_another_server() {
        let other = Origin::parse("https://evil.example.jp").unwrap();
        assert_binding(|f| {
            ApprovalMessage {
                origin: &other,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_cannot_be_replayed_into_another_login() {
        let other = LoginId([9; 16]);
        assert_binding(|f| {
            ApprovalMessage {
                login_id: &other,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_binds_the_qr_secret() {
        let other = QrSecret::from_bytes([9; 16]);
        assert_binding(|f| {
            ApprovalMessage {
                secret: &other,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_binds_the_device() {
        assert_binding(|f| {
            ApprovalMessage {
                device_id: [8; 16],
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_cannot_be_turned_into_a_deny() {
        assert_binding(|f| {
            ApprovalMessage {
                decision: Decision::Deny,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_binds_the_number() {
        assert_binding(|f| {
            ApprovalMessage {
                number: 43,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_binds_the_challenge() {
        let mut c = [4; 32];
        c[31] = 5;
        assert_binding(|f| {
            ApprovalMessage {
                challenge: c,
                ..approval(f)
            }
            .to_bytes()
        });
    }

    #[test]
    fn approval_signature_is_not_an_enrollment_proof() {
        assert_binding(|f| {
            EnrollmentMessage {
                origin: &f.origin,
                enrollment_id: &EnrollmentId([1; 16]),
                secret: &f.secret,
                public_key: &f.public,
                device_name: "x",
            }
            .to_bytes()
        });
    }

    #[test]
    fn digest_form_equals_secret_form() {
        let f = fixture();
        let m = approval(&f);
        let by_digest = approval_bytes_from_secret_sha256(
            m.origin,
            m.login_id,
            &f.secret.sha256(),
            m.device_id,
            m.decision,
            m.number,
            &m.challenge,
        );
        assert_eq!(by_digest, m.to_bytes());
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let f = fixture();
        let msg = approval(&f).to_bytes();
        let mut sig = f.key.sign(&msg).unwrap();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        assert_eq!(f.public.verify(&msg, &sig), Err(SignatureError::Invalid));
    }

    #[test]
    fn garbage_signature_is_bad_encoding() {
        let f = fixture();
        let msg = approval(&f).to_bytes();
        assert_eq!(
            f.public.verify(&msg, b"not der"),
            Err(SignatureError::BadEncoding)
        );
        assert_eq!(f.public.verify(&msg, &[]), Err(SignatureError::BadEncoding));
    }

    #[test]
    fn signature_by_another_key_is_rejected() {
        let f = fixture();
        let msg = approval(&f).to_bytes();
        let sig = SoftwareKey::generate().sign(&msg).unwrap();
        assert_eq!(f.public.verify(&msg, &sig), Err(SignatureError::Invalid));
    }

    fn enrollment<'a>(f: &'a Fixture, id: &'a EnrollmentId) -> EnrollmentMessage<'a> {
        EnrollmentMessage {
            origin: &f.origin,
            enrollment_id: id,
            secret: &f.secret,
            public_key: &f.public,
            device_name: "Dr. Sato's Pixel",
        }
    }

    #[test]
    fn enrollment_proof_verifies_and_binds_every_field() {
        let f = fixture();
        let id = EnrollmentId([7; 16]);
        let msg = enrollment(&f, &id).to_bytes();
        let sig = f.key.sign(&msg).unwrap();
        assert_eq!(f.public.verify(&msg, &sig), Ok(()));
        let other_origin = Origin::parse("https://other.example").unwrap();
        let other_id = EnrollmentId([8; 16]);
        let other_secret = QrSecret::from_bytes([8; 16]);
        let other_key =
            DevicePublicKey::from_sec1(&SoftwareKey::generate().public_key_sec1()).unwrap();
        let variants = [
            EnrollmentMessage {
                origin: &other_origin,
                ..enrollment(&f, &id)
            }
            .to_bytes(),
            EnrollmentMessage {
                enrollment_id: &other_id,
                ..enrollment(&f, &id)
            }
            .to_bytes(),
            EnrollmentMessage {
                secret: &other_secret,
                ..enrollment(&f, &id)
            }
            .to_bytes(),
            EnrollmentMessage {
                public_key: &other_key,
                ..enrollment(&f, &id)
            }
            .to_bytes(),
            EnrollmentMessage {
                device_name: "Dr. Sato's Pixe",
                ..enrollment(&f, &id)
            }
            .to_bytes(),
        ];
        for v in variants {
            assert_eq!(f.public.verify(&v, &sig), Err(SignatureError::Invalid));
        }
    }

    #[test]
    fn length_prefixes_prevent_field_boundary_shifts() {
        // Moving a character from the device name into the origin must change the bytes.
        let f = fixture();
        let id = EnrollmentId([7; 16]);
        let a = EnrollmentMessage {
            device_name: "ab",
            ..enrollment(&f, &id)
        }
        .to_bytes();
        let b = EnrollmentMessage {
            device_name: "a",
            ..enrollment(&f, &id)
        }
        .to_bytes();
        assert_ne!(a[..a.len() - 1], b[..]);
    }

    #[test]
    fn public_key_must_be_uncompressed_and_on_curve() {
        let key = SoftwareKey::generate();
        let good = key.public_key_sec1();
        assert!(DevicePublicKey::from_sec1(&good).is_ok());
        // Wrong lengths.
        assert_eq!(
            DevicePublicKey::from_sec1(&good[..64]),
            Err(SignatureError::BadPublicKey)
        );
        assert_eq!(
            DevicePublicKey::from_sec1(&[]),
            Err(SignatureError::BadPublicKey)
        );
        // Compressed form of the same key.
        let compressed = p256::PublicKey::from_sec1_bytes(&good).unwrap();
        let compressed =
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&compressed, true);
        assert_eq!(
            DevicePublicKey::from_sec1(compressed.as_bytes()),
            Err(SignatureError::BadPublicKey)
        );
        // Off-curve: flip a bit of Y.
        let mut off = good.clone();
        off[64] ^= 1;
        assert_eq!(
            DevicePublicKey::from_sec1(&off),
            Err(SignatureError::BadPublicKey)
        );
        // Hybrid prefix.
        let mut hybrid = good.clone();
        hybrid[0] = 0x06;
        assert_eq!(
            DevicePublicKey::from_sec1(&hybrid),
            Err(SignatureError::BadPublicKey)
        );
        // Coordinates >= p.
        let mut big = vec![0x04];
        big.extend_from_slice(&[0xff; 64]);
        assert_eq!(
            DevicePublicKey::from_sec1(&big),
            Err(SignatureError::BadPublicKey)
        );
        // All-zero (not a point; identity has no uncompressed encoding).
        let mut zero = vec![0x04];
        zero.extend_from_slice(&[0; 64]);
        assert_eq!(
            DevicePublicKey::from_sec1(&zero),
            Err(SignatureError::BadPublicKey)
        );
    }
}
