//! Identifiers and the one-time secret that travel inside QR codes.
//!
//! Login and enrollment ids are 16 random bytes (not UUID strings) because every
//! byte in a QR code costs scanning robustness; on the wire they are base64url
//! without padding (22 characters). The secret is kept in its own type so that it
//! is wiped from memory on drop, compared in constant time and never printed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::payload::PayloadError;

/// Length in bytes of ids and secrets inside a payload.
pub const ID_LEN: usize = 16;

fn random16() -> [u8; ID_LEN] {
    let mut b = [0u8; ID_LEN];
    // SystemRandom only fails when the OS has no entropy source at all; nothing
    // sensible can continue without one.
    SystemRandom::new()
        .fill(&mut b)
        .expect("operating system random number generator failed");
    b
}

/// Decodes strict base64url without padding into exactly 16 bytes.
fn decode16(s: &str) -> Result<[u8; ID_LEN], PayloadError> {
    let v = URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| PayloadError::BadEncoding)?;
    <[u8; ID_LEN]>::try_from(v.as_slice()).map_err(|_| PayloadError::WrongLength {
        expected: ID_LEN,
        actual: v.len(),
    })
}

macro_rules! public_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// A fresh id from the operating system's CSPRNG.
            pub fn random() -> Self {
                Self(random16())
            }
            /// base64url without padding (22 characters).
            pub fn to_b64u(&self) -> String {
                URL_SAFE_NO_PAD.encode(self.0)
            }
            /// Strict inverse of [`Self::to_b64u`]: no padding, no non-canonical trailing bits.
            pub fn from_b64u(s: &str) -> Result<Self, PayloadError> {
                decode16(s).map(Self)
            }
            /// The raw 16 bytes.
            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_b64u())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_b64u())
            }
        }

        impl std::str::FromStr for $name {
            type Err = PayloadError;
            fn from_str(s: &str) -> Result<Self, PayloadError> {
                Self::from_b64u(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_b64u())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_b64u(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

public_id!(
    /// Names one login request (one QR code on one EHR screen).
    LoginId
);
public_id!(
    /// Names one one-time enrollment code issued by an operator.
    EnrollmentId
);

/// The one-time secret of a QR code (128 bits).
///
/// Whoever holds it has seen the QR code; the server checks it before showing a
/// login's context and the device signs (a hash of) it. It is zeroized on drop,
/// compared in constant time ([`QrSecret::ct_eq`], also used by `==`) and its
/// `Debug` output never shows the bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct QrSecret([u8; ID_LEN]);

impl QrSecret {
    /// A fresh secret from the operating system's CSPRNG.
    pub fn random() -> Self {
        Self(random16())
    }
    /// Wraps raw bytes (e.g. decoded from a payload).
    pub fn from_bytes(b: [u8; ID_LEN]) -> Self {
        Self(b)
    }
    /// base64url without padding (22 characters).
    pub fn to_b64u(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
    /// Strict inverse of [`Self::to_b64u`].
    pub fn from_b64u(s: &str) -> Result<Self, PayloadError> {
        decode16(s).map(Self)
    }
    /// The raw 16 bytes.
    pub fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }
    /// Constant-time equality, so a server comparing a presented secret leaks no timing.
    pub fn ct_eq(&self, other: &QrSecret) -> bool {
        self.0.ct_eq(&other.0).into()
    }
    /// SHA-256 of the secret: what the signed messages bind and what a server may
    /// store instead of the secret itself (see docs/protocol.md).
    pub fn sha256(&self) -> [u8; 32] {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

impl PartialEq for QrSecret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}
impl Eq for QrSecret {}

impl std::fmt::Debug for QrSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("QrSecret(..)")
    }
}

impl Serialize for QrSecret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_b64u())
    }
}

impl<'de> Deserialize<'de> for QrSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_b64u(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_b64u() {
        let id = LoginId::random();
        let s = id.to_b64u();
        assert_eq!(s.len(), 22);
        assert_eq!(LoginId::from_b64u(&s).unwrap(), id);
    }

    #[test]
    fn id_rejects_padding_and_wrong_length() {
        let s = LoginId([7; 16]).to_b64u();
        assert_eq!(
            LoginId::from_b64u(&format!("{s}==")),
            Err(PayloadError::BadEncoding)
        );
        assert_eq!(
            EnrollmentId::from_b64u("AAAA"),
            Err(PayloadError::WrongLength {
                expected: 16,
                actual: 3
            })
        );
    }

    #[test]
    fn id_rejects_non_canonical_trailing_bits() {
        // 22 chars carry 132 bits; the last 4 must be zero for 16 bytes.
        let mut s = LoginId([0; 16]).to_b64u();
        s.pop();
        s.push('B');
        assert_eq!(LoginId::from_b64u(&s), Err(PayloadError::BadEncoding));
    }

    #[test]
    fn secret_debug_hides_bytes() {
        let s = QrSecret::from_bytes([0xAB; 16]);
        let dbg = format!("{s:?}");
        assert_eq!(dbg, "QrSecret(..)");
    }

    #[test]
    fn secret_equality_is_by_value() {
        let a = QrSecret::from_bytes([1; 16]);
        assert!(a.ct_eq(&QrSecret::from_bytes([1; 16])));
        assert!(!a.ct_eq(&QrSecret::from_bytes([2; 16])));
    }

    #[test]
    fn secret_serde_is_b64u_string() {
        let s = QrSecret::from_bytes([0xFF; 16]);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(j, "\"_____________________w\"");
        let back: QrSecret = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<QrSecret>("\"short\"").is_err());
    }
}
