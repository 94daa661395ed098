//! JSON wire types of the phone API (`/v1/phone/*`, see docs/api.md) and the
//! problem document every error uses.
//!
//! Server and client both use these types, so a field cannot be renamed on one
//! side only. Binary values are base64url without padding ([`b64u`]), times
//! are RFC 3339 UTC strings.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::approval::Decision;
pub use crate::attestation::Attestation;
use crate::ids::{EnrollmentId, LoginId, QrSecret};
use crate::origin::Origin;

/// serde helpers: binary values as base64url without padding.
///
/// `#[serde(with = "b64u")]` for `Vec<u8>`, `#[serde(with = "b64u::array")]`
/// for `[u8; N]`, `#[serde(with = "b64u::list")]` for `Vec<Vec<u8>>`.
pub mod b64u {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes bytes as base64url without padding.
    pub fn encode(b: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(b)
    }

    /// Strict decode: no padding, no non-canonical trailing bits.
    pub fn decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(s.as_bytes())
    }

    /// serde `serialize_with` for byte vectors.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&encode(b))
    }

    /// serde `deserialize_with` for byte vectors.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        decode(&s).map_err(|_| serde::de::Error::custom("not base64url without padding"))
    }

    /// Fixed-length arrays, e.g. the 32-byte challenge.
    pub mod array {
        use serde::{Deserializer, Serializer};

        /// serde `serialize_with` for `[u8; N]`.
        pub fn serialize<S: Serializer, const N: usize>(
            b: &[u8; N],
            s: S,
        ) -> Result<S::Ok, S::Error> {
            super::serialize(b, s)
        }

        /// serde `deserialize_with` for `[u8; N]`; rejects other lengths.
        pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
            d: D,
        ) -> Result<[u8; N], D::Error> {
            let v = super::deserialize(d)?;
            let len = v.len();
            v.try_into()
                .map_err(|_| serde::de::Error::custom(format!("expected {N} bytes, got {len}")))
        }
    }

    /// Lists of byte strings (attestation chains).
    pub mod list {
        use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};

        /// serde `serialize_with` for `Vec<Vec<u8>>`.
        pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for b in v {
                seq.serialize_element(&super::encode(b))?;
            }
            seq.end()
        }

        /// serde `deserialize_with` for `Vec<Vec<u8>>`.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
            let v = Vec::<String>::deserialize(d)?;
            v.iter()
                .map(|s| {
                    super::decode(s)
                        .map_err(|_| serde::de::Error::custom("not base64url without padding"))
                })
                .collect()
        }

        /// For optional lists (`Option<Vec<Vec<u8>>>`).
        pub mod option {
            use serde::{Deserialize, Deserializer, Serializer};

            /// serde `serialize_with` for `Option<Vec<Vec<u8>>>`.
            pub fn serialize<S: Serializer>(
                v: &Option<Vec<Vec<u8>>>,
                s: S,
            ) -> Result<S::Ok, S::Error> {
                match v {
                    Some(v) => super::serialize(v, s),
                    None => s.serialize_none(),
                }
            }

            /// serde `deserialize_with` for `Option<Vec<Vec<u8>>>`.
            pub fn deserialize<'de, D: Deserializer<'de>>(
                d: D,
            ) -> Result<Option<Vec<Vec<u8>>>, D::Error> {
                let v = Option::<Vec<String>>::deserialize(d)?;
                v.map(|v| {
                    v.iter()
                        .map(|s| {
                            super::super::decode(s).map_err(|_| {
                                serde::de::Error::custom("not base64url without padding")
                            })
                        })
                        .collect()
                })
                .transpose()
            }
        }
    }
}

/// Longest device name accepted, in characters (docs/api.md).
pub const DEVICE_NAME_MAX_CHARS: usize = 64;

/// The phone's platform, as reported at enrollment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Android (Keystore key).
    Android,
    /// iOS (Secure Enclave key).
    Ios,
    /// Desktop simulator (software key).
    Desktop,
}

/// A practitioner's profession.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 医師.
    Doctor,
    /// 歯科医師.
    Dentist,
    /// 薬剤師.
    Pharmacist,
}

/// `POST /v1/phone/enroll` body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// From the enrollment QR.
    pub enrollment_id: EnrollmentId,
    /// From the enrollment QR.
    pub secret: QrSecret,
    /// Told to the practitioner out of band (a second factor beside the QR).
    pub activation_password: String,
    /// Device public key, SEC1 uncompressed (65 bytes), b64u.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]*$"))]
    #[serde(with = "b64u")]
    pub public_key: Vec<u8>,
    /// DER ECDSA signature by the device key over the enrollment message, b64u.
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]*$"))]
    #[serde(with = "b64u")]
    pub proof: Vec<u8>,
    /// User-visible name, 1..=64 characters.
    pub device_name: String,
    /// The phone's platform.
    pub platform: Platform,
    /// The platform's attestation of the device key (docs/protocol.md §3.3, §4.1);
    /// absent when the platform has none (the desktop phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
}

impl std::fmt::Debug for EnrollRequest {
    // The activation password must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("enrollment_id", &self.enrollment_id)
            .field("secret", &self.secret)
            .field("activation_password", &"..")
            .field("public_key", &b64u::encode(&self.public_key))
            .field("device_name", &self.device_name)
            .field("platform", &self.platform)
            .field(
                "attestation",
                &self.attestation.as_ref().map(Attestation::format),
            )
            .finish_non_exhaustive()
    }
}

/// Who the enrolled phone belongs to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PractitionerInfo {
    /// Practitioner id.
    pub id: Uuid,
    /// Name to show in the app.
    pub display_name: String,
    /// Profession.
    pub role: Role,
}

/// `POST /v1/phone/enroll` 201 response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Id of the new device; bound into every approval message.
    pub device_id: Uuid,
    /// Bearer token for the device's cheap calls (b64u of 32 bytes).
    pub device_token: String,
    /// Whose phone this is now.
    pub practitioner: PractitionerInfo,
    /// The server's origin; the phone accepts login QRs only for this origin.
    pub server_origin: Origin,
}

impl std::fmt::Debug for EnrollResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollResponse")
            .field("device_id", &self.device_id)
            .field("device_token", &"..")
            .field("practitioner", &self.practitioner)
            .field("server_origin", &self.server_origin)
            .finish()
    }
}

/// `POST /v1/phone/logins/{login_id}/context` body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginContextRequest {
    /// The login QR's secret.
    pub secret: QrSecret,
}

/// `POST /v1/phone/logins/by-code` body: the code the practitioner typed
/// (docs/protocol.md §4.6). Clients send the canonical spelling
/// (`BCDF-GHJK`, [`crate::user_code::UserCode::canonical`]); the server
/// normalizes again, so any spelling the rules accept is answered the same.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginByCodeRequest {
    /// The RFC 8628 `user_code` shown next to the QR, e.g. `BCDF-GHJK`.
    #[cfg_attr(feature = "openapi", schema(example = "BCDF-GHJK", max_length = 32))]
    pub user_code: String,
}

impl std::fmt::Debug for LoginByCodeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginByCodeRequest")
            .field("user_code", &"..")
            .finish()
    }
}

/// `POST /v1/phone/logins/by-code` answer: the login the typed code names,
/// as if its QR had been scanned — the QR payload (with the login's one-time
/// secret, so the approval message is the §3.1 one) and its context.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginByCode {
    /// The login QR's payload URL (docs/protocol.md §2), exactly what the QR shows.
    pub payload: String,
    /// The login's context, as `POST …/context` returns it.
    pub context: LoginContext,
}

impl std::fmt::Debug for LoginByCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginByCode")
            .field("payload", &"..")
            .field("context", &self.context)
            .finish()
    }
}

/// An id with a human-readable name (facility, terminal).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    /// Id.
    pub id: Uuid,
    /// Name shown to the practitioner.
    pub name: String,
}

/// What the phone shows before asking for the biometric: who is asking, and the
/// numbers to match against the EHR screen.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginContext {
    /// The login.
    pub login_id: LoginId,
    /// Facility of the requesting terminal.
    pub facility: NamedRef,
    /// The requesting EHR terminal.
    pub terminal: NamedRef,
    /// When the terminal started the login.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// When the login expires.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Three two-digit numbers (10..=99); one is shown on the EHR screen.
    pub number_choices: [u8; 3],
    /// Server nonce bound into the approval signature (32 bytes, b64u).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{43}$"))]
    #[serde(with = "b64u::array")]
    pub challenge: [u8; 32],
}

/// `POST /v1/phone/logins/{login_id}/decision` body.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// The deciding device.
    pub device_id: Uuid,
    /// Approve or deny.
    pub decision: Decision,
    /// The picked number (0 allowed for deny).
    pub number: u8,
    /// DER ECDSA signature over the approval message (b64u).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]*$"))]
    #[serde(with = "b64u")]
    pub signature: Vec<u8>,
}

/// Result of a decision.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A grant was issued to the terminal.
    Approved,
    /// The login was denied.
    Denied,
}

/// `POST /v1/phone/logins/{login_id}/decision` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionResponse {
    /// What happened.
    pub outcome: Outcome,
    /// The grant issued on approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantSummary>,
    /// With the server's `code` confirmation policy: the short code the phone
    /// shows after approval, which the practitioner types into the EHR
    /// (docs/protocol.md §8). Not a secret worth keeping: it is useful only
    /// to the terminal that started this login, once, for a few minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_code: Option<String>,
}

/// The type of grant ids (a UUID), for crates that do not depend on `uuid`.
pub type GrantIdType = Uuid;

/// A signing grant, as shown to its practitioner.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantSummary {
    /// Grant id.
    pub id: Uuid,
    /// Facility of the terminal holding the grant.
    pub facility: NamedRef,
    /// Terminal holding the grant.
    pub terminal: NamedRef,
    /// Issue time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Signatures made with this grant so far.
    pub signatures_made: u32,
    /// Maximum signatures, if capped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_cap: Option<u32>,
}

/// `GET /v1/phone/grants` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantList {
    /// Active grants of the device's practitioner.
    pub grants: Vec<GrantSummary>,
}

/// `DELETE /v1/phone/grants` response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndAllResponse {
    /// How many grants were ended.
    pub ended: u32,
}

/// Largest signing-log page (`limit`) the server accepts.
pub const SIGNATURE_PAGE_MAX: u32 = 200;

/// Most characters (Unicode scalar values) in a signHash/signDoc `label`.
pub const LABEL_MAX_CHARS: usize = 80;

/// Why a document label is refused (docs/protocol.md §9.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The label's bytes are not UTF-8 (or hold an unpaired surrogate escape).
    #[error("label is not valid UTF-8")]
    NotUtf8,
    /// An empty label: leave the field out instead.
    #[error("label is empty (leave the field out instead)")]
    Empty,
    /// Longer than [`LABEL_MAX_CHARS`] characters.
    #[error("label has {0} characters, at most {max} are allowed", max = LABEL_MAX_CHARS)]
    TooLong(usize),
    /// A control character (Unicode Cc), a line/paragraph separator or a
    /// bidirectional formatting character, which could hide or reorder
    /// what the practitioner reads.
    #[error("label holds the forbidden character U+{0:04X} at character {1}")]
    ForbiddenChar(u32, usize),
}

/// Checks a document label: 1..=[`LABEL_MAX_CHARS`] Unicode scalar values,
/// none of them a control character (U+0000–U+001F, U+007F–U+009F), a
/// line/paragraph separator (U+2028, U+2029) or a bidirectional formatting
/// character (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
/// Everything else (any script, spaces, emoji) is allowed as given; the
/// server stores the label byte for byte.
pub fn check_label(label: &str) -> Result<(), LabelError> {
    let mut n = 0usize;
    for (i, c) in label.chars().enumerate() {
        n += 1;
        let forbidden = c.is_control()
            || matches!(
                c,
                '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
            )
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c);
        if forbidden {
            return Err(LabelError::ForbiddenChar(c as u32, i));
        }
    }
    if n == 0 {
        return Err(LabelError::Empty);
    }
    if n > LABEL_MAX_CHARS {
        return Err(LabelError::TooLong(n));
    }
    Ok(())
}

/// How a signature was made: signHash (a raw signature over the digest),
/// or signDoc building an XAdES or CMS container around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SignatureFormat {
    /// `signatures/signHash`: a raw signature.
    Hash,
    /// `signatures/signDoc` with `signature_format` "X".
    Xades,
    /// `signatures/signDoc` with `signature_format` "C".
    Cms,
}

impl SignatureFormat {
    /// The wire text (`hash`, `xades`, `cms`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFormat::Hash => "hash",
            SignatureFormat::Xades => "xades",
            SignatureFormat::Cms => "cms",
        }
    }

    /// Inverse of [`SignatureFormat::as_str`].
    pub fn parse(s: &str) -> Option<SignatureFormat> {
        match s {
            "hash" => Some(SignatureFormat::Hash),
            "xades" => Some(SignatureFormat::Xades),
            "cms" => Some(SignatureFormat::Cms),
            _ => None,
        }
    }
}

/// serde helper: bytes as standard base64 with padding (as CSC sends hashes).
pub mod b64std {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Encodes bytes as standard base64 with padding.
    pub fn encode(b: &[u8]) -> String {
        STANDARD.encode(b)
    }

    /// Serializes bytes as standard base64.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    /// Deserializes standard base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

/// One signature made in the practitioner's name (`GET /v1/phone/signatures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureEntry {
    /// Position in the server's signing log: unique, increasing in the
    /// order signatures were recorded (the `since` / SSE `id` cursor).
    pub seq: u64,
    /// Signing time.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[serde(with = "time::serde::rfc3339")]
    pub signed_at: OffsetDateTime,
    /// The grant it was made under.
    pub grant_id: Uuid,
    /// Facility of the terminal that asked for it.
    pub facility: NamedRef,
    /// The terminal that asked for it.
    pub terminal: NamedRef,
    /// The signing credential (CSC `credentialID`).
    pub credential_id: String,
    /// Signature algorithm: `rsa-pkcs1-sha256` or `ecdsa-p256-sha256`.
    pub algorithm: String,
    /// signHash (`hash`) or signDoc (`xades`, `cms`).
    pub format: SignatureFormat,
    /// The SHA-256 digest that was signed, standard base64 (as the EHR sent it).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9+/]{43}=$"))]
    #[serde(with = "b64std")]
    pub digest: Vec<u8>,
    /// The EHR's document label, if it gave one.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 80))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// `GET /v1/phone/signatures` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignatureList {
    /// Newest first (paging), or oldest first (with `since`).
    pub signatures: Vec<SignatureEntry>,
    /// Follow from here: `since=watermark` (or SSE `Last-Event-ID`) returns
    /// exactly the signatures this walk does not show.
    pub watermark: u64,
    /// Paging only: pass as `cursor` for the next (older) page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// With `since`: more signatures are waiting; ask again at once with `since=watermark`.
    #[serde(default)]
    pub more: bool,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $status:literal, $title:literal; )*) => {
        /// Stable error codes of problem documents (docs/api.md). Clients match on
        /// these; a code this build does not know deserializes to [`ErrorCode::Other`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
            /// A code unknown to this build (newer server).
            #[serde(other)]
            Other,
        }

        impl ErrorCode {
            /// Every known code (not `Other`).
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The wire text, e.g. `"login_expired"`.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $text,)* ErrorCode::Other => "other" }
            }

            /// The HTTP status the server sends with this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* ErrorCode::Other => 500 }
            }

            /// Short English title for the problem document.
            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* ErrorCode::Other => "Error" }
            }
        }
    };
}

error_codes! {
    /// Malformed request.
    BadRequest = "bad_request", 400, "Bad request";
    /// Request body over the limit.
    BodyTooLarge = "body_too_large", 413, "Body too large";
    /// Missing or bad credentials.
    Unauthorized = "unauthorized", 401, "Unauthorized";
    /// Not allowed.
    Forbidden = "forbidden", 403, "Forbidden";
    /// No such resource.
    NotFound = "not_found", 404, "Not found";
    /// Unknown enrollment id, wrong secret, or malformed enrollment.
    EnrollmentInvalid = "enrollment_invalid", 400, "Enrollment invalid";
    /// Enrollment code already used.
    EnrollmentUsed = "enrollment_used", 409, "Enrollment already used";
    /// Enrollment code expired.
    EnrollmentExpired = "enrollment_expired", 410, "Enrollment expired";
    /// Too many wrong activation passwords.
    EnrollmentLocked = "enrollment_locked", 423, "Enrollment locked";
    /// Wrong activation password.
    ActivationPasswordWrong = "activation_password_wrong", 401, "Activation password wrong";
    /// Enrollment proof-of-possession signature fails.
    ProofInvalid = "proof_invalid", 400, "Proof invalid";
    /// Platform attestation missing, malformed or refused by the server's policy.
    AttestationInvalid = "attestation_invalid", 403, "Attestation invalid";
    /// Unknown device (or device token).
    DeviceUnknown = "device_unknown", 401, "Device unknown";
    /// Device revoked.
    DeviceRevoked = "device_revoked", 403, "Device revoked";
    /// Unknown login.
    LoginUnknown = "login_unknown", 404, "Login unknown";
    /// Login expired.
    LoginExpired = "login_expired", 410, "Login expired";
    /// Login already approved or denied.
    LoginAlreadyDecided = "login_already_decided", 409, "Login already decided";
    /// Wrong QR secret.
    LoginSecretWrong = "login_secret_wrong", 403, "Login secret wrong";
    /// Approval signature fails.
    SignatureInvalid = "signature_invalid", 400, "Signature invalid";
    /// Picked number is not the one on the EHR screen.
    NumberMismatch = "number_mismatch", 403, "Number mismatch";
    /// Practitioner may not be activated at this facility.
    PractitionerNotAllowed = "practitioner_not_allowed", 403, "Practitioner not allowed";
    /// Grant token invalid.
    GrantInvalid = "grant_invalid", 401, "Grant invalid";
    /// Grant expired.
    GrantExpired = "grant_expired", 401, "Grant expired";
    /// Grant revoked.
    GrantRevoked = "grant_revoked", 401, "Grant revoked";
    /// Grant used by another terminal.
    GrantTerminalMismatch = "grant_terminal_mismatch", 403, "Grant terminal mismatch";
    /// Grant's signature cap reached.
    GrantExhausted = "grant_exhausted", 403, "Grant exhausted";
    /// Unknown signing credential.
    CredentialUnknown = "credential_unknown", 404, "Credential unknown";
    /// Hash has the wrong length or encoding.
    HashInvalid = "hash_invalid", 400, "Hash invalid";
    /// Unsupported algorithm.
    AlgorithmUnsupported = "algorithm_unsupported", 400, "Algorithm unsupported";
    /// signDoc `signature_format`, `conformance_level` or `signed_envelope_property` not supported.
    FormatUnsupported = "format_unsupported", 400, "Format unsupported";
    /// The signing certificate is past its notAfter.
    CertificateExpired = "certificate_expired", 403, "Certificate expired";
    /// The signing certificate is before its notBefore.
    CertificateNotYetValid = "certificate_not_yet_valid", 403, "Certificate not yet valid";
    /// The operator revoked the signing credential.
    CredentialRevoked = "credential_revoked", 403, "Credential revoked";
    /// Terminal credentials missing or wrong.
    TerminalUnauthenticated = "terminal_unauthenticated", 401, "Terminal unauthenticated";
    /// Operator token missing or wrong.
    OperatorUnauthenticated = "operator_unauthenticated", 401, "Operator unauthenticated";
    /// Conflicting state.
    Conflict = "conflict", 409, "Conflict";
    /// Server failure.
    Internal = "internal", 500, "Internal error";
    /// Temporarily unavailable.
    Unavailable = "unavailable", 503, "Unavailable";
    /// Too many requests; retry after the `Retry-After` seconds.
    RateLimited = "rate_limited", 429, "Rate limited";
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed = "method_not_allowed", 405, "Method not allowed";
    /// Missing or wrong `Content-Type` for the body.
    UnsupportedMediaType = "unsupported_media_type", 415, "Unsupported media type";
    /// signHash/signDoc `label` not UTF-8, empty, too long, or holding a forbidden character.
    LabelInvalid = "label_invalid", 400, "Label invalid";
    /// Signing-log `cursor` or `since` malformed.
    CursorInvalid = "cursor_invalid", 400, "Cursor invalid";
    /// No grant of this practitioner has that id.
    GrantUnknown = "grant_unknown", 404, "Grant unknown";
    /// A typed login code is not eight letters of the code alphabet (docs/protocol.md §4.6).
    UserCodeInvalid = "user_code_invalid", 400, "User code invalid";
    /// `--demo` only: the demo page's session is unknown or expired (start again).
    DemoSessionUnknown = "demo_session_unknown", 401, "Demo session unknown";
    /// The practitioner denied the login (or it failed its confirmation code).
    LoginDenied = "login_denied", 403, "Login denied";
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Content type of problem documents.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document, the body of every non-OAuth error.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:shomei:problem:<code>`.
    #[serde(rename = "type")]
    pub r#type: String,
    /// Short human title.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human detail for this occurrence (never contains secrets).
    #[serde(default)]
    pub detail: String,
}

impl Problem {
    /// A problem for `code` with the code's standard type, title and status.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Problem {
        Problem {
            r#type: format!("urn:shomei:problem:{}", code.as_str()),
            title: code.title().to_string(),
            status: code.http_status(),
            code,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_round_trips_as_its_snake_case_text() {
        for &c in ErrorCode::ALL {
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(j, format!("\"{}\"", c.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&j).unwrap(), c);
        }
    }

    #[test]
    fn error_code_list_matches_docs_api_md() {
        let doc = include_str!("../../docs/api.md");
        let section = doc
            .split("Stable codes (HTTP status):")
            .nth(1)
            .and_then(|s| s.split("\n\n").next())
            .expect("docs/api.md lists stable codes");
        let mut listed = Vec::new();
        for part in section.split('`').skip(1).step_by(2) {
            listed.push(part.to_string());
        }
        let known: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|c| c.as_str().to_string())
            .collect();
        assert_eq!(listed, known);
        // Each code's status in the doc, e.g. "`login_expired` (410)".
        for &c in ErrorCode::ALL {
            let needle = format!("`{}` ({}", c.as_str(), c.http_status());
            assert!(
                section.contains(&needle),
                "status of {c} differs from docs/api.md"
            );
        }
    }

    #[test]
    fn signing_log_example_of_protocol_md_is_what_the_types_say() {
        let doc = include_str!("../../docs/protocol.md");
        let section = doc
            .split("<!-- signing-log-example")
            .nth(1)
            .expect("protocol.md has the signing-log example");
        let json = section
            .split("```json\n")
            .nth(1)
            .and_then(|s| s.split("\n```").next())
            .expect("a JSON block");
        let list: SignatureList = serde_json::from_str(json).unwrap();
        assert_eq!(list.signatures.len(), 2);
        assert_eq!(list.signatures[0].format, SignatureFormat::Hash);
        assert_eq!(list.signatures[1].format, SignatureFormat::Xades);
        assert_eq!(list.signatures[1].label, None);
        assert_eq!(list.signatures[0].digest.len(), 32);
        check_label(list.signatures[0].label.as_deref().unwrap()).unwrap();
        // Exactly these fields, spelled so: re-serializing gives the same document.
        let doc_value: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(serde_json::to_value(&list).unwrap(), doc_value);
        // The cursor shown is the 16 bytes it is said to be.
        let cursor = list.next_cursor.as_deref().unwrap();
        let raw = b64u::decode(cursor).unwrap();
        assert_eq!(raw.len(), 16);
        assert_eq!(i64::from_be_bytes(raw[..8].try_into().unwrap()), 1187);
        assert_eq!(i64::from_be_bytes(raw[8..].try_into().unwrap()), 1185);
        // The refusal shown is a problem document with its code.
        let problem = section
            .split("```json\n")
            .nth(2)
            .and_then(|s| s.split("\n```").next())
            .unwrap();
        let p: Problem = serde_json::from_str(problem).unwrap();
        assert_eq!((p.code, p.status), (ErrorCode::GrantUnknown, 404));
    }

    #[test]
    fn labels_allow_any_script_and_refuse_hidden_characters() {
        assert_eq!(check_label("処方箋 No.0002 ヤマダ 💊"), Ok(()));
        assert_eq!(check_label(&"x".repeat(LABEL_MAX_CHARS)), Ok(()));
        assert_eq!(
            check_label(&"x".repeat(LABEL_MAX_CHARS + 1)),
            Err(LabelError::TooLong(81))
        );
        assert_eq!(check_label(""), Err(LabelError::Empty));
        for (s, c) in [
            ("a\tb", 0x09),
            ("\u{85}", 0x85),
            ("a\u{2029}", 0x2029),
            ("\u{200F}", 0x200F),
            ("\u{2067}", 0x2067),
            ("\u{61C}", 0x61C),
        ] {
            assert!(
                matches!(check_label(s), Err(LabelError::ForbiddenChar(x, _)) if x == c),
                "{s:?}"
            );
        }
    }

    #[test]
    fn unknown_error_code_maps_to_other() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:x","title":"t","status":418,"code":"teapot_overflow","detail":"d"}"#,
        )
        .unwrap();
        assert_eq!(p.code, ErrorCode::Other);
    }

    #[test]
    fn problem_new_fills_type_title_status() {
        let p = Problem::new(ErrorCode::LoginExpired, "late");
        let v: serde_json::Value = serde_json::to_value(&p).unwrap();
        assert_eq!(v["type"], "urn:shomei:problem:login_expired");
        assert_eq!(v["status"], 410);
        assert_eq!(v["code"], "login_expired");
    }

    #[test]
    fn login_context_challenge_must_be_32_bytes() {
        let good = serde_json::json!({
            "login_id": LoginId([1; 16]), "facility": {"id": Uuid::nil(), "name": "f"},
            "terminal": {"id": Uuid::nil(), "name": "t"},
            "requested_at": "2026-11-24T09:00:00Z", "expires_at": "2026-11-24T09:02:00Z",
            "number_choices": [12, 34, 56], "challenge": b64u::encode(&[9; 32]),
        });
        let ctx: LoginContext = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(ctx.challenge, [9; 32]);
        let mut bad = good;
        bad["challenge"] = serde_json::Value::String(b64u::encode(&[9; 31]));
        assert!(serde_json::from_value::<LoginContext>(bad).is_err());
    }

    #[test]
    fn enroll_request_debug_hides_password_and_secret() {
        let r = EnrollRequest {
            enrollment_id: EnrollmentId([1; 16]),
            secret: QrSecret::from_bytes([2; 16]),
            activation_password: "hunter2-password".into(),
            public_key: vec![4; 65],
            proof: vec![1, 2],
            device_name: "phone".into(),
            platform: Platform::Android,
            attestation: None,
        };
        let d = format!("{r:?}");
        assert!(!d.contains("hunter2"));
        assert!(!d.contains(&QrSecret::from_bytes([2; 16]).to_b64u()));
        let j = serde_json::to_value(&r).unwrap();
        assert!(j.get("attestation").is_none());
        let back: EnrollRequest = serde_json::from_value(j).unwrap();
        assert_eq!(back, r);
    }
}
