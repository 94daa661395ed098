//! Apple App Attest: the CBOR attestation object of
//! `DCAppAttestService.attestKey`, verified as Apple's "Validating apps that
//! connect to your server" describes (and the WebAuthn-shaped
//! "apple-appattest" statement).
//!
//! App Attest attests an App Attest key, not the Secure Enclave key Shomei
//! signs with. The binding is the `clientDataHash`: Shomei's phone passes
//! `client_data_hash(challenge, enrolled public key)` (docs/protocol.md
//! §3.3), so an object that verifies for that hash vouches for this app
//! instance enrolling this very key in this very enrollment.
//!
//! Step order: the structural authData checks (counter, AAGUID, credential
//! id, rpIdHash) come before the nonce, so that each kind of wrong object is
//! refused with its own reason; every check must pass either way.

use serde::{Deserialize, Serialize};

use super::chain::{TrustAnchors, ValidityCheck, parse_certificate, verify_chain};
use super::error::AttestationError;

/// OID of the credential certificate's nonce extension.
pub const NONCE_OID: &str = "1.2.840.113635.100.8.2";
/// AAGUID of the production App Attest environment.
pub const AAGUID_PRODUCTION: &[u8; 16] = b"appattest\0\0\0\0\0\0\0";
/// AAGUID of the development App Attest environment.
pub const AAGUID_DEVELOPMENT: &[u8; 16] = b"appattestdevelop";

/// Which App Attest environment attested the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Production,
    Development,
}

/// The app ids ("TEAMID.bundle.id") a server accepts, by their rpIdHash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedApps {
    apps: Vec<(String, [u8; 32])>,
}

impl AllowedApps {
    /// From "TEAMID.bundle.id" strings.
    pub fn from_app_ids<S: AsRef<str>>(ids: &[S]) -> AllowedApps {
        AllowedApps {
            apps: ids
                .iter()
                .map(|i| {
                    (
                        i.as_ref().to_owned(),
                        super::sha256_32(i.as_ref().as_bytes()),
                    )
                })
                .collect(),
        }
    }

    /// From a known rpIdHash (tests with vectors whose app id is not published).
    pub fn from_rp_id_hash(label: &str, hash: [u8; 32]) -> AllowedApps {
        AllowedApps {
            apps: vec![(label.to_owned(), hash)],
        }
    }

    fn find(&self, hash: &[u8]) -> Option<&str> {
        self.apps
            .iter()
            .find(|(_, h)| super::ct_eq(h, hash))
            .map(|(id, _)| id.as_str())
    }
}

/// What a verified App Attest object says; kept with the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppAttestFacts {
    /// The allowed app id the rpIdHash matched.
    pub app_id: String,
    pub environment: Environment,
    /// The App Attest key id (b64u).
    pub key_id: String,
    /// Serial of the credential certificate (hex).
    pub credential_certificate_serial: String,
    /// Subject of the trusted root.
    pub root: String,
    /// Size of Apple's fraud-risk receipt (kept by the app's server for later
    /// risk-metric queries; Shomei does not query).
    pub receipt_len: usize,
}

fn bad(m: impl Into<String>) -> AttestationError {
    AttestationError::MalformedAttestationObject(m.into())
}

fn map_get<'a>(
    map: &'a [(ciborium::Value, ciborium::Value)],
    key: &str,
) -> Option<&'a ciborium::Value> {
    map.iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

/// The parts of the attestation object.
struct Object {
    fmt: String,
    x5c: Vec<Vec<u8>>,
    receipt: Vec<u8>,
    auth_data: Vec<u8>,
}

fn parse_object(bytes: &[u8]) -> Result<Object, AttestationError> {
    let value: ciborium::Value =
        ciborium::de::from_reader(bytes).map_err(|e| bad(format!("not CBOR: {e}")))?;
    let map = value.as_map().ok_or_else(|| bad("not a CBOR map"))?;
    let fmt = map_get(map, "fmt")
        .and_then(|v| v.as_text())
        .ok_or_else(|| bad("no fmt"))?
        .to_owned();
    let stmt = map_get(map, "attStmt")
        .and_then(|v| v.as_map())
        .ok_or_else(|| bad("no attStmt"))?;
    let auth_data = map_get(map, "authData")
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| bad("no authData"))?
        .clone();
    let x5c = map_get(stmt, "x5c")
        .and_then(|v| v.as_array())
        .ok_or_else(|| bad("no attStmt.x5c"))?
        .iter()
        .map(|c| {
            c.as_bytes()
                .cloned()
                .ok_or_else(|| bad("x5c entry is not a byte string"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let receipt = map_get(stmt, "receipt")
        .and_then(|v| v.as_bytes())
        .ok_or_else(|| bad("no attStmt.receipt"))?
        .clone();
    Ok(Object {
        fmt,
        x5c,
        receipt,
        auth_data,
    })
}

/// authData fields (WebAuthn §6.1).
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    counter: u32,
    aaguid: &'a [u8],
    credential_id: &'a [u8],
}

fn parse_auth_data(a: &[u8]) -> Result<AuthData<'_>, AttestationError> {
    let short = || AttestationError::MalformedAuthData(format!("{} bytes is too short", a.len()));
    if a.len() < 55 {
        return Err(short());
    }
    let flags = a[32];
    if flags & 0x40 == 0 {
        return Err(AttestationError::MalformedAuthData(
            "no attested credential data (AT flag clear)".into(),
        ));
    }
    let counter = u32::from_be_bytes([a[33], a[34], a[35], a[36]]);
    let id_len = u16::from_be_bytes([a[53], a[54]]) as usize;
    let credential_id = a.get(55..55 + id_len).ok_or_else(short)?;
    Ok(AuthData {
        rp_id_hash: &a[..32],
        counter,
        aaguid: &a[37..53],
        credential_id,
    })
}

/// The nonce in the credential certificate: `SEQUENCE { [1] EXPLICIT OCTET STRING }`.
fn certificate_nonce(value: &[u8]) -> Result<Vec<u8>, AttestationError> {
    use asn1_rs::{Any, Class, FromDer, Tag};
    let fail = || AttestationError::MissingNonce;
    let (rest, seq) = Any::from_der(value).map_err(|_| fail())?;
    if !rest.is_empty() || seq.tag() != Tag::Sequence {
        return Err(fail());
    }
    let (rest, tagged) = Any::from_der(seq.data).map_err(|_| fail())?;
    if !rest.is_empty() || tagged.class() != Class::ContextSpecific || tagged.tag().0 != 1 {
        return Err(fail());
    }
    let (rest, octets) = Any::from_der(tagged.data).map_err(|_| fail())?;
    if !rest.is_empty() || octets.tag() != Tag::OctetString || octets.class() != Class::Universal {
        return Err(fail());
    }
    Ok(octets.data.to_vec())
}

/// Verifies an App Attest attestation object:
///
/// 1. It is the CBOR map `{fmt: "apple-appattest", attStmt: {x5c, receipt}, authData}`.
/// 2. x5c (credential certificate, intermediate) verifies to Apple's App
///    Attestation root (`anchors`), valid at the instant.
/// 3. authData is well formed and its counter is 0 (a fresh key).
/// 4. The AAGUID is production's, or development's when `allow_development`.
/// 5. The credential id equals `key_id`.
/// 6. rpIdHash is SHA-256 of an allowed app id.
/// 7. The credential certificate's nonce extension equals
///    SHA-256(authData ‖ `client_data_hash`) — the bytes the app passed to
///    `attestKey` (Shomei's are 32 bytes, §3.3; Apple's API takes any `Data`).
/// 8. `key_id` is SHA-256 of the credential certificate's public key (SEC1 point).
pub fn verify_app_attest(
    object: &[u8],
    key_id: &[u8],
    client_data_hash: &[u8],
    apps: &AllowedApps,
    allow_development: bool,
    anchors: &TrustAnchors,
    validity: ValidityCheck,
) -> Result<AppAttestFacts, AttestationError> {
    // 1.
    let o = parse_object(object)?;
    if o.fmt != "apple-appattest" {
        return Err(AttestationError::WrongObjectFormat(o.fmt));
    }
    // 2.
    let chain = verify_chain(&o.x5c, anchors, validity, None)?;
    let cred_cert = parse_certificate(0, &o.x5c[0])?;
    // 3.
    let auth = parse_auth_data(&o.auth_data)?;
    if auth.counter != 0 {
        return Err(AttestationError::NonZeroCounter(auth.counter));
    }
    // 4.
    let environment = if auth.aaguid == AAGUID_PRODUCTION {
        Environment::Production
    } else if auth.aaguid == AAGUID_DEVELOPMENT {
        if !allow_development {
            return Err(AttestationError::DevelopmentAaguid);
        }
        Environment::Development
    } else {
        return Err(AttestationError::UnknownAaguid(hex::encode(auth.aaguid)));
    };
    // 5.
    if !super::ct_eq(auth.credential_id, key_id) {
        return Err(AttestationError::KeyIdMismatch);
    }
    // 6.
    let app_id = apps
        .find(auth.rp_id_hash)
        .ok_or(AttestationError::RpIdMismatch)?
        .to_owned();
    // 7.
    let ext = cred_cert
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == NONCE_OID)
        .ok_or(AttestationError::MissingNonce)?;
    let in_cert = certificate_nonce(ext.value)?;
    let mut preimage = o.auth_data.clone();
    preimage.extend_from_slice(client_data_hash);
    if !super::ct_eq(&in_cert, &super::sha256_32(&preimage)) {
        return Err(AttestationError::NonceMismatch);
    }
    // 8.
    let point = &cred_cert.public_key().subject_public_key.data;
    if !super::ct_eq(&super::sha256_32(point), key_id) {
        return Err(AttestationError::KeyIdMismatch);
    }
    Ok(AppAttestFacts {
        app_id,
        environment,
        key_id: shomei_core::api::b64u::encode(key_id),
        credential_certificate_serial: hex::encode(cred_cert.tbs_certificate.raw_serial()),
        root: chain.root,
        receipt_len: o.receipt.len(),
    })
}
