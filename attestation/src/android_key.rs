//! Android Key Attestation: the certificate chain of
//! `KeyStore.getCertificateChain(alias)`, whose leaf carries the
//! KeyDescription extension (OID 1.3.6.1.4.1.11129.2.1.17) describing the
//! key and the device as the secure hardware saw them.
//!
//! [`verify_android_key`] establishes what is *true* (chain to Google's
//! roots, unrevoked, the challenge, hardware security level) and returns the
//! facts; [`check_android_policy`] then decides whether those facts are
//! *acceptable* for a Shomei device key (EC P-256, SIGN, the enrolled key,
//! biometric per-use authentication, locked and verified boot, allowed app),
//! each as far as the operator's policy asks. Steps follow
//! <https://developer.android.com/privacy-and-security/security-key-attestation>
//! and the WebAuthn "android-key" attestation statement (§8.4).
//!
//! The KeyDescription is parsed with asn1-rs (the DER crate under
//! x509-parser) in DER mode: non-minimal or indefinite encodings, a BOOLEAN
//! other than 00/FF, trailing bytes and AuthorizationList tags out of
//! ascending order are all refused.

use asn1_rs::{Any, Class, Enumerated, FromDer, Null, Tag};
use serde::{Deserialize, Serialize};
use shomei_core::DevicePublicKey;

use super::chain::{StatusList, TrustAnchors, ValidityCheck, parse_certificate, verify_chain};
use super::error::AttestationError;
use super::policy::AndroidPolicy;

/// OID of the KeyDescription extension.
pub const KEY_DESCRIPTION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";
const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";
const P256_OID: &str = "1.2.840.10045.3.1.7";
const RSA_OID: &str = "1.2.840.113549.1.1.1";

/// Keymaster/KeyMint `Algorithm` values.
const ALGORITHM_RSA: i64 = 1;
const ALGORITHM_EC: i64 = 3;
/// `EcCurve::P_256`.
const EC_CURVE_P256: i64 = 1;
/// `KeyPurpose::SIGN`.
const PURPOSE_SIGN: i64 = 2;
/// `HardwareAuthenticatorType::FINGERPRINT` (any biometric since Android 9).
const AUTH_TYPE_BIOMETRIC: i64 = 2;

/// Where the key (or its attestation) lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecurityLevel {
    Software,
    TrustedEnvironment,
    StrongBox,
}

impl SecurityLevel {
    fn from_enum(v: u32) -> Result<SecurityLevel, AttestationError> {
        match v {
            0 => Ok(SecurityLevel::Software),
            1 => Ok(SecurityLevel::TrustedEnvironment),
            2 => Ok(SecurityLevel::StrongBox),
            o => Err(malformed(format!("unknown security level {o}"))),
        }
    }

    /// The name Android uses.
    pub fn name(self) -> &'static str {
        match self {
            SecurityLevel::Software => "Software",
            SecurityLevel::TrustedEnvironment => "TrustedEnvironment",
            SecurityLevel::StrongBox => "StrongBox",
        }
    }
}

/// `VerifiedBootState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VerifiedBootState {
    Verified,
    SelfSigned,
    Unverified,
    Failed,
}

impl VerifiedBootState {
    fn from_enum(v: u32) -> Result<VerifiedBootState, AttestationError> {
        match v {
            0 => Ok(VerifiedBootState::Verified),
            1 => Ok(VerifiedBootState::SelfSigned),
            2 => Ok(VerifiedBootState::Unverified),
            3 => Ok(VerifiedBootState::Failed),
            o => Err(malformed(format!("unknown verified boot state {o}"))),
        }
    }

    /// The name Android uses.
    pub fn name(self) -> &'static str {
        match self {
            VerifiedBootState::Verified => "Verified",
            VerifiedBootState::SelfSigned => "SelfSigned",
            VerifiedBootState::Unverified => "Unverified",
            VerifiedBootState::Failed => "Failed",
        }
    }
}

/// `RootOfTrust`: the device's boot state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RootOfTrust {
    /// Hex of the verified boot key digest.
    pub verified_boot_key: String,
    pub device_locked: bool,
    pub verified_boot_state: VerifiedBootState,
}

/// One package of `AttestationApplicationId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackageInfo {
    pub name: String,
    pub version: i64,
}

/// `AttestationApplicationId`: the app(s) sharing the calling uid, and their signers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationId {
    pub packages: Vec<PackageInfo>,
    /// Hex SHA-256 digests of the signing certificates.
    pub signing_cert_sha256: Vec<String>,
}

/// The AuthorizationList fields Shomei looks at (others are parsed for
/// well-formedness and skipped).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationList {
    pub purpose: Vec<i64>,
    pub algorithm: Option<i64>,
    pub key_size: Option<i64>,
    pub ec_curve: Option<i64>,
    pub no_auth_required: bool,
    pub user_auth_type: Option<i64>,
    pub auth_timeout: Option<i64>,
    pub origin: Option<i64>,
    pub root_of_trust: Option<RootOfTrust>,
    pub os_version: Option<i64>,
    pub os_patch_level: Option<i64>,
    pub attestation_application_id: Option<ApplicationId>,
    pub vendor_patch_level: Option<i64>,
    pub boot_patch_level: Option<i64>,
}

/// The parsed KeyDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDescription {
    pub attestation_version: i64,
    pub attestation_security_level: SecurityLevel,
    pub keymint_version: i64,
    pub keymint_security_level: SecurityLevel,
    pub attestation_challenge: Vec<u8>,
    pub unique_id: Vec<u8>,
    pub software_enforced: AuthorizationList,
    pub hardware_enforced: AuthorizationList,
}

/// What a verified Android attestation says; kept with the device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AndroidKeyFacts {
    pub attestation_version: i64,
    pub security_level: SecurityLevel,
    pub keymint_version: i64,
    pub keymint_security_level: SecurityLevel,
    /// "EC P-256", "EC (other curve)", "RSA", or the key's algorithm OID.
    pub key_algorithm: String,
    /// The attested public key: b64u SEC1 for EC P-256, else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Hardware-enforced purposes (2 = SIGN).
    pub purposes: Vec<i64>,
    /// False when the key carries noAuthRequired.
    pub user_auth_required: bool,
    /// HardwareAuthenticatorType bits (1 password, 2 biometric).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_auth_type: Option<i64>,
    /// Seconds one authentication unlocks the key for; absent = every use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_timeout_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_of_trust: Option<RootOfTrust>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_patch_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_patch_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_patch_level: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<ApplicationId>,
    /// Subject of the trusted root the chain ends in.
    pub root: String,
    pub chain_len: usize,
    pub revocation_checked: bool,
}

fn malformed(m: impl Into<String>) -> AttestationError {
    AttestationError::MalformedKeyDescription(m.into())
}

/// A DER cursor over asn1-rs.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn any(&mut self, what: &str) -> Result<Any<'a>, AttestationError> {
        let (rest, v) = Any::from_der(self.0).map_err(|e| malformed(format!("{what}: {e}")))?;
        self.0 = rest;
        Ok(v)
    }

    fn universal(&mut self, tag: Tag, what: &str) -> Result<Any<'a>, AttestationError> {
        let a = self.any(what)?;
        if a.class() != Class::Universal || a.tag() != tag {
            return Err(malformed(format!(
                "{what}: expected {tag}, found {}",
                a.tag()
            )));
        }
        Ok(a)
    }

    fn sequence(&mut self, what: &str) -> Result<Der<'a>, AttestationError> {
        let a = self.universal(Tag::Sequence, what)?;
        if !a.header.is_constructed() {
            return Err(malformed(format!("{what}: primitive SEQUENCE")));
        }
        Ok(Der(a.data))
    }

    fn set(&mut self, what: &str) -> Result<Der<'a>, AttestationError> {
        let a = self.universal(Tag::Set, what)?;
        if !a.header.is_constructed() {
            return Err(malformed(format!("{what}: primitive SET")));
        }
        Ok(Der(a.data))
    }

    fn typed<T: FromDer<'a>>(&mut self, what: &str) -> Result<T, AttestationError> {
        let (rest, v) = T::from_der(self.0).map_err(|e| malformed(format!("{what}: {e}")))?;
        self.0 = rest;
        Ok(v)
    }

    fn integer(&mut self, what: &str) -> Result<i64, AttestationError> {
        self.typed::<i64>(what)
    }

    fn enumerated(&mut self, what: &str) -> Result<u32, AttestationError> {
        Ok(self.typed::<Enumerated>(what)?.0)
    }

    fn octets(&mut self, what: &str) -> Result<&'a [u8], AttestationError> {
        let a = self.universal(Tag::OctetString, what)?;
        if a.header.is_constructed() {
            return Err(malformed(format!("{what}: constructed OCTET STRING")));
        }
        Ok(a.data)
    }

    /// DER BOOLEAN: one content byte, 00 or FF. (Checked here rather than by
    /// asn1-rs's `bool::from_der`, whose DER check indexes the content before
    /// checking its length.)
    fn boolean(&mut self, what: &str) -> Result<bool, AttestationError> {
        let a = self.universal(Tag::Boolean, what)?;
        match a.data {
            [0x00] => Ok(false),
            [0xff] => Ok(true),
            _ => Err(malformed(format!("{what}: not a DER BOOLEAN"))),
        }
    }

    fn null(&mut self, what: &str) -> Result<(), AttestationError> {
        self.typed::<Null>(what).map(|_| ())
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn end(&self, what: &str) -> Result<(), AttestationError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(malformed(format!("trailing data after {what}")))
        }
    }
}

fn set_of_integers(d: &mut Der<'_>, what: &str) -> Result<Vec<i64>, AttestationError> {
    let mut set = d.set(what)?;
    let mut out = Vec::new();
    while !set.is_empty() {
        out.push(set.integer(what)?);
    }
    Ok(out)
}

fn root_of_trust(d: &mut Der<'_>) -> Result<RootOfTrust, AttestationError> {
    let mut s = d.sequence("rootOfTrust")?;
    let key = s.octets("verifiedBootKey")?;
    let device_locked = s.boolean("deviceLocked")?;
    let state = VerifiedBootState::from_enum(s.enumerated("verifiedBootState")?)?;
    if !s.is_empty() {
        s.octets("verifiedBootHash")?;
    }
    s.end("rootOfTrust")?;
    Ok(RootOfTrust {
        verified_boot_key: hex::encode(key),
        device_locked,
        verified_boot_state: state,
    })
}

fn application_id(bytes: &[u8]) -> Result<ApplicationId, AttestationError> {
    let mut outer = Der(bytes);
    let mut s = outer.sequence("attestationApplicationId")?;
    outer.end("attestationApplicationId")?;
    let mut infos = s.set("package_infos")?;
    let mut packages = Vec::new();
    while !infos.is_empty() {
        let mut p = infos.sequence("AttestationPackageInfo")?;
        let name = p.octets("package_name")?;
        let version = p.integer("version")?;
        p.end("AttestationPackageInfo")?;
        let name =
            String::from_utf8(name.to_vec()).map_err(|_| malformed("package_name is not UTF-8"))?;
        packages.push(PackageInfo { name, version });
    }
    let mut sigs = s.set("signature_digests")?;
    let mut signing_cert_sha256 = Vec::new();
    while !sigs.is_empty() {
        signing_cert_sha256.push(hex::encode(sigs.octets("signature_digest")?));
    }
    s.end("attestationApplicationId")?;
    Ok(ApplicationId {
        packages,
        signing_cert_sha256,
    })
}

fn authorization_list(d: &mut Der<'_>, what: &str) -> Result<AuthorizationList, AttestationError> {
    let mut list = d.sequence(what)?;
    let mut out = AuthorizationList::default();
    let mut last_tag: Option<u32> = None;
    while !list.is_empty() {
        let field = list.any(what)?;
        if field.class() != Class::ContextSpecific || !field.header.is_constructed() {
            return Err(malformed(format!(
                "{what}: element is not an explicit context tag"
            )));
        }
        let tag = field.tag().0;
        if last_tag.is_some_and(|t| tag <= t) {
            return Err(malformed(format!(
                "{what}: tags not in ascending order ([{tag}] after [{}])",
                last_tag.unwrap_or(0)
            )));
        }
        last_tag = Some(tag);
        let mut v = Der(field.data);
        let name = format!("{what} [{tag}]");
        match tag {
            1 => out.purpose = set_of_integers(&mut v, &name)?,
            2 => out.algorithm = Some(v.integer(&name)?),
            3 => out.key_size = Some(v.integer(&name)?),
            10 => out.ec_curve = Some(v.integer(&name)?),
            503 => {
                v.null(&name)?;
                out.no_auth_required = true;
            }
            504 => out.user_auth_type = Some(v.integer(&name)?),
            505 => out.auth_timeout = Some(v.integer(&name)?),
            702 => out.origin = Some(v.integer(&name)?),
            704 => out.root_of_trust = Some(root_of_trust(&mut v)?),
            705 => out.os_version = Some(v.integer(&name)?),
            706 => out.os_patch_level = Some(v.integer(&name)?),
            709 => out.attestation_application_id = Some(application_id(v.octets(&name)?)?),
            718 => out.vendor_patch_level = Some(v.integer(&name)?),
            719 => out.boot_patch_level = Some(v.integer(&name)?),
            _ => {
                // A tag Shomei does not use: it must still be one DER element.
                v.any(&name)?;
            }
        }
        v.end(&name)?;
    }
    Ok(out)
}

/// Parses the KeyDescription extension value (DER).
pub fn parse_key_description(bytes: &[u8]) -> Result<KeyDescription, AttestationError> {
    let mut outer = Der(bytes);
    let mut s = outer.sequence("KeyDescription")?;
    outer.end("KeyDescription")?;
    let attestation_version = s.integer("attestationVersion")?;
    let attestation_security_level =
        SecurityLevel::from_enum(s.enumerated("attestationSecurityLevel")?)?;
    let keymint_version = s.integer("keyMintVersion")?;
    let keymint_security_level = SecurityLevel::from_enum(s.enumerated("keyMintSecurityLevel")?)?;
    let attestation_challenge = s.octets("attestationChallenge")?.to_vec();
    let unique_id = s.octets("uniqueId")?.to_vec();
    let software_enforced = authorization_list(&mut s, "softwareEnforced")?;
    let hardware_enforced = authorization_list(&mut s, "hardwareEnforced")?;
    s.end("KeyDescription")?;
    Ok(KeyDescription {
        attestation_version,
        attestation_security_level,
        keymint_version,
        keymint_security_level,
        attestation_challenge,
        unique_id,
        software_enforced,
        hardware_enforced,
    })
}

/// The leaf's public key: its algorithm name and, for EC P-256, the SEC1 point.
fn leaf_key(cert: &x509_parser::certificate::X509Certificate<'_>) -> (String, Option<Vec<u8>>) {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    if alg == EC_PUBLIC_KEY_OID {
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        if curve.as_deref() == Some(P256_OID) {
            return (
                "EC P-256".into(),
                Some(spki.subject_public_key.data.to_vec()),
            );
        }
        return ("EC (not P-256)".into(), None);
    }
    if alg == RSA_OID {
        return ("RSA".into(), None);
    }
    (alg, None)
}

/// Verifies an Android key attestation chain for `challenge`:
///
/// 1. The chain verifies to one of `anchors` (Google's roots), valid at the
///    instant and unrevoked per `status` ([`verify_chain`]).
/// 2. The leaf carries exactly one KeyDescription extension, which parses.
/// 3. attestationChallenge equals `challenge`.
/// 4. Both attestationSecurityLevel and keyMintSecurityLevel are TEE or StrongBox.
///
/// Returns the facts; policy is checked separately by [`check_android_policy`].
pub fn verify_android_key(
    certificates: &[Vec<u8>],
    challenge: &[u8],
    anchors: &TrustAnchors,
    validity: ValidityCheck,
    status: Option<&StatusList>,
) -> Result<AndroidKeyFacts, AttestationError> {
    // 1.
    let chain = verify_chain(certificates, anchors, validity, status)?;
    // 2.
    let leaf = parse_certificate(0, &certificates[0])?;
    let mut found = leaf
        .extensions()
        .iter()
        .filter(|e| e.oid.to_id_string() == KEY_DESCRIPTION_OID);
    let ext = found
        .next()
        .ok_or(AttestationError::MissingKeyDescription)?;
    if found.next().is_some() {
        return Err(malformed("two key attestation extensions"));
    }
    let kd = parse_key_description(ext.value)?;
    // 3.
    if !super::ct_eq(&kd.attestation_challenge, challenge) {
        return Err(AttestationError::ChallengeMismatch);
    }
    // 4.
    for level in [kd.attestation_security_level, kd.keymint_security_level] {
        if level == SecurityLevel::Software {
            return Err(AttestationError::SoftwareKey {
                level: level.name().into(),
            });
        }
    }
    let (key_algorithm, point) = leaf_key(&leaf);
    let hw = &kd.hardware_enforced;
    let sw = &kd.software_enforced;
    Ok(AndroidKeyFacts {
        attestation_version: kd.attestation_version,
        security_level: kd.attestation_security_level,
        keymint_version: kd.keymint_version,
        keymint_security_level: kd.keymint_security_level,
        key_algorithm,
        public_key: point.map(|p| shomei_core::api::b64u::encode(&p)),
        purposes: hw.purpose.clone(),
        user_auth_required: !hw.no_auth_required
            && (hw.user_auth_type.is_some() || hw.auth_timeout.is_some()),
        user_auth_type: hw.user_auth_type,
        auth_timeout_s: hw.auth_timeout,
        root_of_trust: hw.root_of_trust.clone(),
        os_version: hw.os_version.or(sw.os_version),
        os_patch_level: hw.os_patch_level.or(sw.os_patch_level),
        vendor_patch_level: hw.vendor_patch_level.or(sw.vendor_patch_level),
        boot_patch_level: hw.boot_patch_level.or(sw.boot_patch_level),
        app: sw
            .attestation_application_id
            .clone()
            .or_else(|| hw.attestation_application_id.clone()),
        root: chain.root,
        chain_len: chain.len,
        revocation_checked: chain.revocation_checked,
    })
    .and_then(|f| {
        // The hardware must agree with the certificate about the key type.
        match (f.key_algorithm.as_str(), hw.algorithm, hw.ec_curve) {
            ("EC P-256", Some(ALGORITHM_EC), Some(EC_CURVE_P256) | None) => Ok(f),
            ("EC P-256", Some(other), _) if other != ALGORITHM_EC => Err(malformed(
                "certificate key is EC but the hardware says otherwise",
            )),
            ("RSA", Some(a), _) if a != ALGORITHM_RSA => Err(malformed(
                "certificate key is RSA but the hardware says otherwise",
            )),
            _ => Ok(f),
        }
    })
}

/// Checks verified facts against what a Shomei device key must be and the
/// operator's Android policy:
///
/// 5. The key is EC P-256 (the protocol's device key), and
/// 6. it is the key being enrolled (when one is given).
/// 7. Its purposes include SIGN.
/// 8. StrongBox, when the policy requires it.
/// 9. User authentication (policy `require_user_auth`): required, biometric,
///    per use (no timeout).
/// 10. Boot (policy): device locked; verified boot state Verified.
/// 11. App (policy allow-list, when non-empty): a package on the list, signed
///     by one of its listed certificates.
pub fn check_android_policy(
    facts: &AndroidKeyFacts,
    enrolled: Option<&DevicePublicKey>,
    policy: &AndroidPolicy,
) -> Result<(), AttestationError> {
    // 5.
    let Some(public_key) = &facts.public_key else {
        return Err(AttestationError::NotEcP256 {
            algorithm: facts.key_algorithm.clone(),
        });
    };
    // 6.
    if let Some(enrolled) = enrolled {
        let attested = shomei_core::api::b64u::decode(public_key).unwrap_or_default();
        if !super::ct_eq(&attested, enrolled.as_bytes()) {
            return Err(AttestationError::KeyMismatch);
        }
    }
    // 7.
    if !facts.purposes.contains(&PURPOSE_SIGN) {
        return Err(AttestationError::PurposeNotSign);
    }
    // 8.
    if policy.require_strongbox && facts.security_level != SecurityLevel::StrongBox {
        return Err(AttestationError::NotStrongBox {
            level: facts.security_level.name().into(),
        });
    }
    // 9.
    if policy.require_user_auth {
        if !facts.user_auth_required {
            return Err(AttestationError::UserAuthNotRequired);
        }
        let t = facts.user_auth_type.unwrap_or(0);
        if t & AUTH_TYPE_BIOMETRIC == 0 {
            return Err(AttestationError::NotBiometric { user_auth_type: t });
        }
        if let Some(s) = facts.auth_timeout_s.filter(|s| *s > 0) {
            return Err(AttestationError::AuthTimeout { seconds: s });
        }
    }
    // 10.
    if policy.require_locked_bootloader || policy.require_verified_boot {
        let rot = facts
            .root_of_trust
            .as_ref()
            .ok_or(AttestationError::MissingRootOfTrust)?;
        if policy.require_locked_bootloader && !rot.device_locked {
            return Err(AttestationError::BootloaderUnlocked);
        }
        if policy.require_verified_boot && rot.verified_boot_state != VerifiedBootState::Verified {
            return Err(AttestationError::BootNotVerified {
                state: rot.verified_boot_state.name().into(),
            });
        }
    }
    // 11.
    if !policy.apps.is_empty() {
        let app = facts
            .app
            .as_ref()
            .ok_or(AttestationError::MissingApplicationId)?;
        let first = app
            .packages
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let allowed: Vec<_> = policy
            .apps
            .iter()
            .filter(|a| app.packages.iter().any(|p| p.name == a.package))
            .collect();
        if allowed.is_empty() {
            return Err(AttestationError::AppNotAllowed { package: first });
        }
        let signed = allowed.iter().any(|a| {
            a.signing_cert_sha256.iter().any(|want| {
                app.signing_cert_sha256
                    .iter()
                    .any(|got| got.eq_ignore_ascii_case(want))
            })
        });
        if !signed {
            return Err(AttestationError::AppSignerNotAllowed {
                package: allowed[0].package.clone(),
            });
        }
    }
    Ok(())
}
