//! Attestation verifiers on REAL data (server/tests/data/attestation, see its
//! README and LICENSE files): certificate chains captured on real Android
//! devices with their parsed KeyDescriptions, Google's roots, and Apple's
//! App Attest objects. Every valid vector verifies at a fixed instant inside
//! its validity (the chains are old); each refusal is checked for its own
//! reason; arbitrary bytes never make a parser panic.

use base64::Engine as _;
use proptest::prelude::*;
use serde_json::Value;
use shomei_core::api::Platform;
use shomei_core::attestation::{Attestation, client_data_hash};
use shomei_core::{DevicePublicKey, SoftwareKey};
use shomei_server::attestation::android_key::{
    SecurityLevel, check_android_policy, parse_key_description, verify_android_key,
};
use shomei_server::attestation::app_attest::{AllowedApps, Environment, verify_app_attest};
use shomei_server::attestation::chain::{StatusList, TrustAnchors, ValidityCheck, verify_chain};
use shomei_server::attestation::policy::{AllowedAndroidApp, AndroidPolicy, Trust};
use shomei_server::attestation::{
    AttestationError, AttestationPolicy, AttestationStatus, Mode, Presented, evaluate,
};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/attestation");

fn read(rel: &str) -> String {
    std::fs::read_to_string(format!("{DATA}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// DER certificates of a PEM chain file, leaf first.
fn chain(rel: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(read(rel).as_bytes())
        .map(|p| p.unwrap().contents)
        .collect()
}

/// The parsed KeyDescription published beside a chain (some start with a `//` comment line).
fn description(rel: &str) -> Value {
    let text: String = read(rel)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&text).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

fn at(rfc3339: &str) -> ValidityCheck {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    ValidityCheck::At(t.unix_timestamp())
}

fn google() -> TrustAnchors {
    Trust::default().android
}

fn apple() -> TrustAnchors {
    Trust::default().apple
}

/// Valid Android vectors and an instant inside every link's validity.
const VALID: &[(&str, &str)] = &[
    ("akita/sdk34/SB_RSA_NONE", "2024-09-20T00:00:00Z"),
    ("akita/sdk34/TEE_EC_NONE", "2024-09-20T00:00:00Z"),
    ("akita/sdk34/TEE_RSA_BASE+IMEI", "2024-09-20T00:00:00Z"),
    ("akita/sdk34/TEE_RSA_NONE", "2024-09-20T00:00:00Z"),
    ("akita/sdk34/TEE_RSA_NONE_USERAUTH", "2024-09-20T00:00:00Z"),
    ("blueline/sdk28/SB_RSA_NONE", "2019-01-01T00:00:00Z"),
    (
        "blueline/sdk28/SB_RSA_NONE_USERAUTH",
        "2019-01-01T00:00:00Z",
    ),
    ("blueline/sdk28/TEE_EC_NONE", "2019-01-01T00:00:00Z"),
    ("blueline/sdk28/TEE_RSA_BASE+IMEI", "2019-01-01T00:00:00Z"),
    ("blueline/sdk28/TEE_RSA_NONE", "2019-01-01T00:00:00Z"),
    ("caiman/sdk36/SB_EC_RKP", "2025-09-28T00:00:00Z"),
    ("caiman/sdk36/TEE_EC_RKP", "2025-09-28T00:00:00Z"),
    ("tegu/sdk36/SB_EC_2026_ROOT", "2026-03-01T00:00:00Z"),
    ("tegu/sdk36/TEE_EC_2026_ROOT", "2026-03-01T00:00:00Z"),
    ("tokay/sdk37/TEE_MLDSA_FACTORY", "2024-01-01T00:00:00Z"),
    ("tokay/sdk37/TEE_MLDSA_RKP", "2026-05-01T00:00:00Z"),
];

fn vector(name: &str) -> (Vec<Vec<u8>>, Value) {
    (
        chain(&format!("android/testdata/{name}.pem")),
        description(&format!("android/testdata/{name}.json")),
    )
}

fn instant(name: &str) -> ValidityCheck {
    at(VALID
        .iter()
        .find(|(n, _)| *n == name)
        .expect("listed vector")
        .1)
}

fn level_name(l: SecurityLevel) -> &'static str {
    match l {
        SecurityLevel::Software => "SOFTWARE",
        SecurityLevel::TrustedEnvironment => "TRUSTED_ENVIRONMENT",
        SecurityLevel::StrongBox => "STRONG_BOX",
    }
}

fn num(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
}

#[test]
fn every_valid_android_vector_verifies_with_the_facts_its_description_states() {
    for (name, when) in VALID {
        let (certs, d) = vector(name);
        let challenge = b64(d["attestationChallenge"].as_str().unwrap());
        let f = verify_android_key(&certs, &challenge, &google(), at(when), None)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            level_name(f.security_level),
            d["attestationSecurityLevel"],
            "{name}"
        );
        assert_eq!(
            level_name(f.keymint_security_level),
            d["keyMintSecurityLevel"],
            "{name}"
        );
        assert_eq!(
            Some(f.attestation_version),
            num(&d["attestationVersion"]),
            "{name}"
        );
        let hw = &d["hardwareEnforced"];
        let sw = &d["softwareEnforced"];
        let rot = &hw["rootOfTrust"];
        let facts_rot = f
            .root_of_trust
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no root of trust"));
        assert_eq!(
            Value::Bool(facts_rot.device_locked),
            rot["deviceLocked"],
            "{name}"
        );
        assert_eq!(
            facts_rot.verified_boot_state.name().to_uppercase(),
            rot["verifiedBootState"].as_str().unwrap().replace('_', ""),
            "{name}"
        );
        let patch = num(&hw["osPatchLevel"]).or_else(|| num(&sw["osPatchLevel"]));
        assert_eq!(f.os_patch_level, patch, "{name}");
        let app_json = if sw["attestationApplicationId"].is_null() {
            &hw["attestationApplicationId"]
        } else {
            &sw["attestationApplicationId"]
        };
        let app = f
            .app
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no app id"));
        let names: Vec<&str> = app.packages.iter().map(|p| p.name.as_str()).collect();
        let json_names: Vec<&str> = app_json["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, json_names, "{name}");
        let sigs: Vec<String> = app_json["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| hex::encode(b64(s.as_str().unwrap())))
            .collect();
        assert_eq!(app.signing_cert_sha256, sigs, "{name}");
        let alg = num(&hw["algorithms"]).unwrap();
        let expected = match alg {
            1 => "RSA",
            3 => "EC P-256",
            _ => "2.16.840.1.101.3.4.3.18", // ML-DSA
        };
        assert_eq!(f.key_algorithm, expected, "{name}");
        assert_eq!(
            f.user_auth_required,
            hw["noAuthRequired"].is_null(),
            "{name}"
        );
    }
}

#[test]
fn the_2026_root_and_the_rsa_root_are_both_built_in() {
    let roots: Vec<String> = google().roots().iter().map(|r| r.subject.clone()).collect();
    assert_eq!(roots.len(), 2);
    let (certs, d) = vector("tegu/sdk36/TEE_EC_2026_ROOT");
    let f = verify_android_key(
        &certs,
        &b64(d["attestationChallenge"].as_str().unwrap()),
        &google(),
        instant("tegu/sdk36/TEE_EC_2026_ROOT"),
        None,
    )
    .unwrap();
    assert!(f.root.contains("Key Attestation CA1"), "{}", f.root);
}

// ---- refusals, each with its own reason ----

#[test]
fn a_chain_ending_in_another_vendors_root_is_refused() {
    let (certs, d) = vector("akita/sdk34/TEE_EC_NONE");
    let r = verify_android_key(
        &certs,
        &b64(d["attestationChallenge"].as_str().unwrap()),
        &apple(),
        instant("akita/sdk34/TEE_EC_NONE"),
        None,
    );
    assert!(
        matches!(r, Err(AttestationError::UntrustedRoot { .. })),
        "{r:?}"
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "untrusted root: the chain does not end in a trusted Apple App Attestation root"
    );
}

#[test]
fn a_self_made_chain_carrying_a_real_key_description_is_refused_for_its_root_alone() {
    // Copy the real KeyDescription of a TEE key into a leaf issued by our own CA.
    let (certs, d) = vector("caiman/sdk36/TEE_EC_RKP");
    let (_, real_leaf) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    let ext = real_leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.11129.2.1.17")
        .unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Totally Google Root");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Android Keystore Key");
    leaf_params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 4, 1, 11129, 2, 1, 17],
            ext.value.to_vec(),
        ));
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let forged = vec![leaf.der().to_vec(), ca.der().to_vec()];
    let challenge = b64(d["attestationChallenge"].as_str().unwrap());
    let now = ValidityCheck::At(time::OffsetDateTime::now_utc().unix_timestamp());
    assert!(matches!(
        verify_android_key(&forged, &challenge, &google(), now, None),
        Err(AttestationError::UntrustedRoot { .. })
    ));
    // Control: trusting the forger's root makes the very same chain verify, so the root is the reason.
    let forger = TrustAnchors::from_der("forger", vec![ca.der().to_vec()]).unwrap();
    let f = verify_android_key(&forged, &challenge, &forger, now, None).unwrap();
    assert_eq!(f.security_level, SecurityLevel::TrustedEnvironment);
}

#[test]
fn a_link_signed_by_the_wrong_key_is_refused() {
    // Splice the intermediates of one device under the leaf of another.
    let (a, d) = vector("akita/sdk34/TEE_EC_NONE");
    let (b, _) = vector("caiman/sdk36/TEE_EC_RKP");
    let spliced = vec![
        a[0].clone(),
        b[1].clone(),
        b[2].clone(),
        b[3].clone(),
        b[4].clone(),
    ];
    let r = verify_android_key(
        &spliced,
        &b64(d["attestationChallenge"].as_str().unwrap()),
        &google(),
        ValidityCheck::SkipForCapturedVectors,
        None,
    );
    assert_eq!(r, Err(AttestationError::BadChainSignature { index: 0 }));
}

#[test]
fn a_wrong_challenge_is_refused() {
    let (certs, _) = vector("caiman/sdk36/TEE_EC_RKP");
    let r = verify_android_key(
        &certs,
        &[7u8; 32],
        &google(),
        instant("caiman/sdk36/TEE_EC_RKP"),
        None,
    );
    assert_eq!(r, Err(AttestationError::ChallengeMismatch));
    assert_eq!(r.unwrap_err().to_string(), "challenge mismatch");
}

#[test]
fn a_software_key_is_refused_even_when_its_root_is_trusted() {
    let (certs, d) = vector("marlin/sdk29/TEE_EC_NONE");
    let challenge = b64(d["attestationChallenge"].as_str().unwrap());
    // Under Google's hardware roots the software attestation root is simply untrusted...
    let r = verify_android_key(
        &certs,
        &challenge,
        &google(),
        at("2019-01-01T00:00:00Z"),
        None,
    );
    assert!(
        matches!(r, Err(AttestationError::UntrustedRoot { .. })),
        "{r:?}"
    );
    // ...and an operator who adds that root still gets the software key refused.
    let software_root =
        TrustAnchors::from_der("software attestation", vec![certs.last().unwrap().clone()])
            .unwrap();
    let r = verify_android_key(
        &certs,
        &challenge,
        &software_root,
        at("2019-01-01T00:00:00Z"),
        None,
    );
    assert_eq!(
        r,
        Err(AttestationError::SoftwareKey {
            level: "Software".into()
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "software key (security level Software)"
    );
}

/// A policy that checks only what a test names (the captured keys carry no user-auth tags
/// and most come from unlocked development devices).
fn relaxed() -> AndroidPolicy {
    AndroidPolicy {
        require_user_auth: false,
        require_locked_bootloader: false,
        require_verified_boot: false,
        ..AndroidPolicy::default()
    }
}

fn facts(name: &str) -> shomei_server::attestation::android_key::AndroidKeyFacts {
    let (certs, d) = vector(name);
    verify_android_key(
        &certs,
        &b64(d["attestationChallenge"].as_str().unwrap()),
        &google(),
        instant(name),
        None,
    )
    .unwrap()
}

fn attested_key(name: &str) -> DevicePublicKey {
    let f = facts(name);
    DevicePublicKey::from_sec1(
        &shomei_core::api::b64u::decode(f.public_key.as_ref().unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn an_ec_p256_key_that_is_the_enrolled_key_passes_the_relaxed_policy() {
    let name = "caiman/sdk36/TEE_EC_RKP";
    assert_eq!(
        check_android_policy(&facts(name), Some(&attested_key(name)), &relaxed()),
        Ok(())
    );
}

#[test]
fn an_rsa_key_is_refused() {
    let r = check_android_policy(&facts("akita/sdk34/TEE_RSA_NONE"), None, &relaxed());
    assert_eq!(
        r,
        Err(AttestationError::NotEcP256 {
            algorithm: "RSA".into()
        })
    );
    assert_eq!(r.unwrap_err().to_string(), "RSA key, not EC P-256");
}

#[test]
fn an_ml_dsa_key_is_refused() {
    let r = check_android_policy(&facts("tokay/sdk37/TEE_MLDSA_FACTORY"), None, &relaxed());
    assert!(
        matches!(r, Err(AttestationError::NotEcP256 { .. })),
        "{r:?}"
    );
}

#[test]
fn a_key_other_than_the_enrolled_one_is_refused() {
    let other = DevicePublicKey::from_sec1(&SoftwareKey::generate().public_key_sec1()).unwrap();
    let r = check_android_policy(&facts("caiman/sdk36/TEE_EC_RKP"), Some(&other), &relaxed());
    assert_eq!(r, Err(AttestationError::KeyMismatch));
}

#[test]
fn an_unlocked_bootloader_is_refused_when_the_policy_asks() {
    let name = "akita/sdk34/TEE_EC_NONE";
    let f = facts(name);
    let policy = AndroidPolicy {
        require_locked_bootloader: true,
        ..relaxed()
    };
    assert_eq!(
        check_android_policy(&f, Some(&attested_key(name)), &policy),
        Err(AttestationError::BootloaderUnlocked)
    );
    let policy = AndroidPolicy {
        require_verified_boot: true,
        ..relaxed()
    };
    assert_eq!(
        check_android_policy(&f, Some(&attested_key(name)), &policy),
        Err(AttestationError::BootNotVerified {
            state: "Unverified".into()
        })
    );
    // The policy off: the same device passes.
    assert_eq!(
        check_android_policy(&f, Some(&attested_key(name)), &relaxed()),
        Ok(())
    );
    // A locked, verified device passes the boot checks.
    let locked = "caiman/sdk36/SB_EC_RKP";
    let boot_only = AndroidPolicy {
        require_locked_bootloader: true,
        require_verified_boot: true,
        ..relaxed()
    };
    assert_eq!(
        check_android_policy(&facts(locked), Some(&attested_key(locked)), &boot_only),
        Ok(())
    );
}

#[test]
fn a_key_usable_without_user_authentication_is_refused_by_default() {
    let name = "caiman/sdk36/TEE_EC_RKP";
    let policy = AndroidPolicy {
        require_user_auth: true,
        ..relaxed()
    };
    assert_eq!(
        check_android_policy(&facts(name), Some(&attested_key(name)), &policy),
        Err(AttestationError::UserAuthNotRequired)
    );
}

#[test]
fn user_authentication_must_be_biometric_and_per_use() {
    // The captured user-auth key (RSA) shows how the fields read; check the rules on its facts
    // with the key type rule satisfied by an EC key's facts.
    let auth = facts("akita/sdk34/TEE_RSA_NONE_USERAUTH");
    assert!(auth.user_auth_required);
    let name = "caiman/sdk36/TEE_EC_RKP";
    let mut f = facts(name);
    f.user_auth_required = true;
    f.user_auth_type = auth.user_auth_type;
    f.auth_timeout_s = None;
    let policy = AndroidPolicy {
        require_user_auth: true,
        ..relaxed()
    };
    let key = attested_key(name);
    assert_eq!(
        check_android_policy(&f, Some(&key), &policy),
        Err(AttestationError::NotBiometric { user_auth_type: 1 })
    );
    f.user_auth_type = Some(2);
    f.auth_timeout_s = Some(30);
    assert_eq!(
        check_android_policy(&f, Some(&key), &policy),
        Err(AttestationError::AuthTimeout { seconds: 30 })
    );
    f.auth_timeout_s = None;
    assert_eq!(check_android_policy(&f, Some(&key), &policy), Ok(()));
}

#[test]
fn an_app_not_on_the_allow_list_is_refused() {
    let name = "caiman/sdk36/TEE_EC_RKP";
    let f = facts(name);
    let key = attested_key(name);
    let digest = f.app.as_ref().unwrap().signing_cert_sha256[0].clone();
    let only = |package: &str, digest: &str| AndroidPolicy {
        apps: vec![AllowedAndroidApp {
            package: package.into(),
            signing_cert_sha256: vec![digest.into()],
        }],
        ..relaxed()
    };
    let r = check_android_policy(&f, Some(&key), &only("jp.shomei.app", &digest));
    assert_eq!(
        r,
        Err(AttestationError::AppNotAllowed {
            package: "com.google.android.attestation".into()
        })
    );
    assert_eq!(
        r.unwrap_err().to_string(),
        "app not allowed (com.google.android.attestation)"
    );
    let r = check_android_policy(
        &f,
        Some(&key),
        &only("com.google.android.attestation", &"ab".repeat(32)),
    );
    assert_eq!(
        r,
        Err(AttestationError::AppSignerNotAllowed {
            package: "com.google.android.attestation".into()
        })
    );
    assert_eq!(
        check_android_policy(
            &f,
            Some(&key),
            &only("com.google.android.attestation", &digest.to_uppercase())
        ),
        Ok(())
    );
}

fn serial_of(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
    hex::encode(c.tbs_certificate.raw_serial())
}

#[test]
fn a_serial_on_googles_status_list_is_refused() {
    let name = "caiman/sdk36/TEE_EC_RKP";
    let (certs, d) = vector(name);
    let challenge = b64(d["attestationChallenge"].as_str().unwrap());
    // Google's format: {"entries": {"<hex serial>": {"status": ..., "reason": ...}}}
    let doc = serde_json::json!({ "entries": {
        "2c8cdddfd5e03bfc": { "status": "REVOKED", "expires": "2020-11-13", "reason": "KEY_COMPROMISE", "comment": "unrelated serial" },
        serial_of(&certs[2]).to_uppercase(): { "status": "REVOKED", "reason": "KEY_COMPROMISE" }
    }});
    let list = StatusList::from_json(&doc.to_string()).unwrap();
    let r = verify_android_key(&certs, &challenge, &google(), instant(name), Some(&list));
    assert!(
        matches!(&r, Err(AttestationError::Revoked { index: 2, reason, .. }) if reason == "REVOKED (KEY_COMPROMISE)"),
        "{r:?}"
    );
    // A list naming other serials does not refuse it, and the facts say revocation was checked.
    let other =
        StatusList::from_json(r#"{"entries": {"2c8cdddfd5e03bfc": {"status": "REVOKED"}}}"#)
            .unwrap();
    assert!(
        verify_android_key(&certs, &challenge, &google(), instant(name), Some(&other))
            .unwrap()
            .revocation_checked
    );
}

#[test]
fn the_committed_example_status_list_parses_in_googles_format() {
    let list = StatusList::load(std::path::Path::new(&format!(
        "{DATA}/status-revoked-example.json"
    )))
    .unwrap();
    assert!(!list.is_empty());
}

#[test]
fn an_expired_or_not_yet_valid_link_is_refused() {
    let (certs, d) = vector("akita/sdk34/TEE_EC_NONE");
    let challenge = b64(d["attestationChallenge"].as_str().unwrap());
    let r = verify_android_key(
        &certs,
        &challenge,
        &google(),
        at("2025-01-01T00:00:00Z"),
        None,
    );
    assert!(
        matches!(&r, Err(AttestationError::Expired { index: 1, .. })),
        "{r:?}"
    );
    let r = verify_android_key(
        &certs,
        &challenge,
        &google(),
        at("2024-01-01T00:00:00Z"),
        None,
    );
    assert!(
        matches!(&r, Err(AttestationError::NotYetValid { index: 1, .. })),
        "{r:?}"
    );
}

#[test]
fn truncated_or_garbage_der_is_refused() {
    let (mut certs, d) = vector("akita/sdk34/TEE_EC_NONE");
    let challenge = b64(d["attestationChallenge"].as_str().unwrap());
    let n = certs[0].len();
    certs[0].truncate(n - 10);
    let r = verify_android_key(
        &certs,
        &challenge,
        &google(),
        ValidityCheck::SkipForCapturedVectors,
        None,
    );
    assert!(
        matches!(
            &r,
            Err(AttestationError::MalformedCertificate { index: 0, .. })
        ),
        "{r:?}"
    );
    let r = verify_android_key(
        &[b"not DER".to_vec()],
        &challenge,
        &google(),
        ValidityCheck::SkipForCapturedVectors,
        None,
    );
    assert!(
        matches!(
            &r,
            Err(AttestationError::MalformedCertificate { index: 0, .. })
        ),
        "{r:?}"
    );
}

#[test]
fn a_malformed_root_of_trust_is_refused() {
    let certs = chain("android/testdata/invalid/malformed_rot_device_locked.pem");
    let r = verify_android_key(
        &certs,
        b"challenge",
        &google(),
        at("2022-06-01T00:00:00Z"),
        None,
    );
    assert!(
        matches!(&r, Err(AttestationError::MalformedKeyDescription(m)) if m.contains("deviceLocked")),
        "{r:?}"
    );
}

#[test]
fn authorization_list_tags_out_of_order_are_refused() {
    let certs = chain("android/testdata/invalid/tags_not_in_ascending_order.pem");
    // The vector's leaf was re-encoded after signing, so the chain already refuses it...
    let r = verify_android_key(
        &certs,
        b"challenge",
        &google(),
        at("2023-01-01T00:00:00Z"),
        None,
    );
    assert_eq!(r, Err(AttestationError::BadChainSignature { index: 0 }));
    // ...and its KeyDescription is refused on its own account.
    let (_, leaf) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
    let ext = leaf
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.11129.2.1.17")
        .unwrap();
    let r = parse_key_description(ext.value);
    assert!(
        matches!(&r, Err(AttestationError::MalformedKeyDescription(m)) if m.contains("tags not in ascending order")),
        "{r:?}"
    );
}

#[test]
fn a_p256_intermediate_signing_with_sha384_verifies() {
    let certs = chain("android/testdata/p256_sha384_intermediate.pem");
    let own_root = TrustAnchors::from_der("test", vec![certs.last().unwrap().clone()]).unwrap();
    let v = verify_chain(&certs, &own_root, at("2025-01-01T00:00:00Z"), None).unwrap();
    assert_eq!(v.len, 3);
    assert!(matches!(
        verify_chain(&certs, &google(), at("2025-01-01T00:00:00Z"), None),
        Err(AttestationError::UntrustedRoot { .. })
    ));
}

#[test]
fn an_authorization_list_with_tags_shomei_does_not_use_parses() {
    // allowWhileOnBody [506] and friends are skipped, not refused.
    let leaf = &chain("android/testdata/allow_while_on_body.pem")[0];
    let (_, c) = x509_parser::parse_x509_certificate(leaf).unwrap();
    let ext = c
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.11129.2.1.17")
        .unwrap();
    let kd = parse_key_description(ext.value).unwrap();
    assert!(kd.hardware_enforced.algorithm.is_some());
}

// ---- App Attest ----

fn apple_vector(name: &str) -> Value {
    let v: Value = serde_json::from_str(&read("apple/app_attest_vectors.json")).unwrap();
    v["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap()
        .clone()
}

fn sha256(d: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, d)
        .as_ref()
        .try_into()
        .unwrap()
}

/// The vectors' clientDataHash, as checked against their nonces: Apple's production sample
/// was made with the raw bytes "test_server_challenge", the development one with
/// SHA-256("server_challenge") (the data README's description is one hash level off).
struct AppleCase {
    object: Vec<u8>,
    key_id: Vec<u8>,
    cdh: Vec<u8>,
    apps: AllowedApps,
    when: ValidityCheck,
}

fn production() -> AppleCase {
    let v = apple_vector("production");
    AppleCase {
        object: b64(v["attestation_object_b64"].as_str().unwrap()),
        key_id: b64(v["key_id_b64"].as_str().unwrap()),
        cdh: b"test_server_challenge".to_vec(),
        apps: AllowedApps::from_app_ids(&[v["app_id"].as_str().unwrap()]),
        when: at(v["valid_at"].as_str().unwrap()),
    }
}

fn development() -> AppleCase {
    let v = apple_vector("development");
    let rp: [u8; 32] = b64(v["rp_id_hash_b64"].as_str().unwrap())
        .try_into()
        .unwrap();
    AppleCase {
        object: b64(v["attestation_object_b64"].as_str().unwrap()),
        key_id: b64(v["key_id_b64"].as_str().unwrap()),
        cdh: sha256(b"server_challenge").to_vec(),
        apps: AllowedApps::from_rp_id_hash("development vector app", rp),
        when: at(v["valid_at"].as_str().unwrap()),
    }
}

fn verify(
    c: &AppleCase,
    allow_development: bool,
) -> Result<shomei_server::attestation::app_attest::AppAttestFacts, AttestationError> {
    verify_app_attest(
        &c.object,
        &c.key_id,
        &c.cdh,
        &c.apps,
        allow_development,
        &apple(),
        c.when,
    )
}

#[test]
fn apples_production_sample_verifies() {
    let f = verify(&production(), false).unwrap();
    assert_eq!(f.app_id, "0352187391.com.apple.example_app_attest");
    assert_eq!(f.environment, Environment::Production);
    assert!(
        f.root.contains("Apple App Attestation Root CA"),
        "{}",
        f.root
    );
    assert!(f.receipt_len > 0);
}

#[test]
fn the_development_vector_verifies_when_development_is_allowed() {
    assert_eq!(
        verify(&development(), true).unwrap().environment,
        Environment::Development
    );
}

#[test]
fn a_development_aaguid_is_refused_in_production() {
    let r = verify(&development(), false);
    assert_eq!(r, Err(AttestationError::DevelopmentAaguid));
    assert_eq!(
        r.unwrap_err().to_string(),
        "development AAGUID (appattestdevelop) not allowed"
    );
}

#[test]
fn an_app_attest_nonce_over_another_client_data_hash_is_refused() {
    let mut c = production();
    c.cdh = sha256(b"test_server_challenge").to_vec();
    assert_eq!(verify(&c, false), Err(AttestationError::NonceMismatch));
}

#[test]
fn a_wrong_rp_id_hash_is_refused() {
    let mut c = production();
    c.apps = AllowedApps::from_app_ids(&["0352187391.jp.shomei.app"]);
    assert_eq!(verify(&c, false), Err(AttestationError::RpIdMismatch));
}

#[test]
fn another_key_id_is_refused() {
    let mut c = production();
    c.key_id = sha256(b"another key").to_vec();
    assert_eq!(verify(&c, false), Err(AttestationError::KeyIdMismatch));
}

/// The attestation object with `f` applied to its authData, re-encoded as CBOR.
fn with_auth_data(object: &[u8], f: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut v: ciborium::Value = ciborium::de::from_reader(object).unwrap();
    for (k, val) in v.as_map_mut().unwrap() {
        if k.as_text() == Some("authData") {
            let mut b = val.as_bytes().unwrap().clone();
            f(&mut b);
            *val = ciborium::Value::Bytes(b);
        }
    }
    let mut out = Vec::new();
    ciborium::ser::into_writer(&v, &mut out).unwrap();
    out
}

#[test]
fn a_non_zero_counter_is_refused() {
    let mut c = production();
    c.object = with_auth_data(&c.object, |a| a[36] = 1);
    assert_eq!(verify(&c, false), Err(AttestationError::NonZeroCounter(1)));
}

#[test]
fn a_tampered_auth_data_fails_the_nonce() {
    // Changing a byte the structural checks do not look at (the COSE key) breaks the nonce.
    let mut c = production();
    c.object = with_auth_data(&c.object, |a| {
        let last = a.len() - 1;
        a[last] ^= 1;
    });
    assert_eq!(verify(&c, false), Err(AttestationError::NonceMismatch));
}

#[test]
fn an_app_attest_object_outside_its_chain_validity_is_refused() {
    let mut c = production();
    c.when = at("2026-12-01T00:00:00Z");
    assert!(matches!(
        verify(&c, false),
        Err(AttestationError::Expired { index: 0, .. })
    ));
}

#[test]
fn an_app_attest_chain_under_googles_roots_is_refused() {
    let c = production();
    let r = verify_app_attest(
        &c.object,
        &c.key_id,
        &c.cdh,
        &c.apps,
        false,
        &google(),
        c.when,
    );
    assert!(
        matches!(r, Err(AttestationError::UntrustedRoot { .. })),
        "{r:?}"
    );
}

#[test]
fn truncated_or_foreign_cbor_is_refused() {
    let c = production();
    let r = verify_app_attest(
        &c.object[..c.object.len() / 2],
        &c.key_id,
        &c.cdh,
        &c.apps,
        false,
        &apple(),
        c.when,
    );
    assert!(
        matches!(r, Err(AttestationError::MalformedAttestationObject(_))),
        "{r:?}"
    );
    let mut v: ciborium::Value = ciborium::de::from_reader(&c.object[..]).unwrap();
    for (k, val) in v.as_map_mut().unwrap() {
        if k.as_text() == Some("fmt") {
            *val = ciborium::Value::Text("packed".into());
        }
    }
    let mut packed = Vec::new();
    ciborium::ser::into_writer(&v, &mut packed).unwrap();
    let r = verify_app_attest(&packed, &c.key_id, &c.cdh, &c.apps, false, &apple(), c.when);
    assert_eq!(r, Err(AttestationError::WrongObjectFormat("packed".into())));
}

// ---- the policy in front of the verifiers ----

fn presented<'a>(
    platform: Platform,
    attestation: Option<&'a Attestation>,
    challenge: &'a [u8; 32],
    key: &'a DevicePublicKey,
) -> Presented<'a> {
    Presented {
        platform,
        attestation,
        challenge,
        public_key: key,
    }
}

fn software_key() -> DevicePublicKey {
    DevicePublicKey::from_sec1(&SoftwareKey::generate().public_key_sec1()).unwrap()
}

const NOW: i64 = 1_800_000_000;

#[test]
fn require_refuses_the_desktop_platform_and_a_missing_attestation() {
    let key = software_key();
    let policy = AttestationPolicy {
        mode: Mode::Require,
        ..Default::default()
    };
    let r = evaluate(
        &policy,
        presented(Platform::Desktop, None, &[0; 32], &key),
        NOW,
    );
    assert_eq!(
        r,
        Err(AttestationError::PlatformCannotAttest {
            platform: "desktop".into()
        })
    );
    assert_eq!(
        evaluate(
            &policy,
            presented(Platform::Android, None, &[0; 32], &key),
            NOW
        ),
        Err(AttestationError::Missing)
    );
    assert_eq!(
        evaluate(&policy, presented(Platform::Ios, None, &[0; 32], &key), NOW),
        Err(AttestationError::Missing)
    );
}

#[test]
fn allow_enrolls_without_attestation_as_unattested() {
    let key = software_key();
    let f = evaluate(
        &AttestationPolicy::default(),
        presented(Platform::Desktop, None, &[0; 32], &key),
        NOW,
    )
    .unwrap();
    assert_eq!(f.status, AttestationStatus::Unattested);
    assert_eq!(f.policy, Mode::Allow);
    assert!(f.note.unwrap().contains("desktop"));
}

#[test]
fn allow_still_refuses_a_failing_attestation() {
    let key = software_key();
    let (certs, _) = vector("caiman/sdk36/TEE_EC_RKP");
    let att = Attestation::AndroidKey {
        certificates: certs,
    };
    // Its chain has expired by NOW, and its challenge is not ours either.
    let r = evaluate(
        &AttestationPolicy::default(),
        presented(Platform::Android, Some(&att), &[0; 32], &key),
        NOW,
    );
    assert!(matches!(r, Err(AttestationError::Expired { .. })), "{r:?}");
}

#[test]
fn off_does_not_examine_attestation() {
    let key = software_key();
    let att = Attestation::AndroidKey {
        certificates: vec![b"garbage".to_vec()],
    };
    let policy = AttestationPolicy {
        mode: Mode::Off,
        ..Default::default()
    };
    let f = evaluate(
        &policy,
        presented(Platform::Android, Some(&att), &[0; 32], &key),
        NOW,
    )
    .unwrap();
    assert_eq!(f.status, AttestationStatus::Unattested);
    assert_eq!(f.format.as_deref(), Some("android-key"));
}

#[test]
fn a_format_of_another_platform_or_an_unknown_format_is_refused() {
    let key = software_key();
    let android = Attestation::AndroidKey {
        certificates: vec![],
    };
    let r = evaluate(
        &AttestationPolicy::default(),
        presented(Platform::Ios, Some(&android), &[0; 32], &key),
        NOW,
    );
    assert_eq!(
        r,
        Err(AttestationError::FormatMismatch {
            format: "android-key".into(),
            platform: "ios".into()
        })
    );
    let r = evaluate(
        &AttestationPolicy::default(),
        presented(
            Platform::Android,
            Some(&Attestation::Unknown),
            &[0; 32],
            &key,
        ),
        NOW,
    );
    assert_eq!(r, Err(AttestationError::UnsupportedFormat));
}

#[test]
fn per_platform_modes_override_the_default() {
    let mut policy = AttestationPolicy {
        mode: Mode::Require,
        ..Default::default()
    };
    policy.desktop.mode = Some(Mode::Allow);
    assert_eq!(policy.mode_for(Platform::Desktop), Mode::Allow);
    assert_eq!(policy.mode_for(Platform::Android), Mode::Require);
    assert_eq!(
        policy.summary(),
        "android=require ios=require desktop=allow"
    );
}

#[test]
fn require_without_an_app_allow_list_is_a_configuration_error() {
    let mut policy = AttestationPolicy {
        mode: Mode::Require,
        ..Default::default()
    };
    assert!(policy.load().unwrap_err().contains("android"));
    policy.android.apps = vec![AllowedAndroidApp {
        package: "jp.shomei.app".into(),
        signing_cert_sha256: vec!["00".repeat(32)],
    }];
    assert!(policy.load().unwrap_err().contains("ios"));
    policy.ios.app_ids = vec!["ABCDE12345.jp.shomei.app".into()];
    policy.load().unwrap();
}

#[test]
fn the_client_data_hash_binding_is_what_app_attest_must_commit_to() {
    // The server recomputes clientDataHash from the challenge and the enrolled key: an App
    // Attest object made for another key fails with a nonce mismatch.
    let key = software_key();
    let c = production();
    let att = Attestation::AppleAppAttest {
        key_id: c.key_id.clone(),
        attestation_object: c.object.clone(),
    };
    let mut policy = AttestationPolicy::default();
    policy.ios.app_ids = vec!["0352187391.com.apple.example_app_attest".into()];
    let challenge = [9u8; 32];
    assert_ne!(client_data_hash(&challenge, &key).to_vec(), c.cdh);
    let when = time::OffsetDateTime::parse(
        "2024-04-18T00:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    let r = evaluate(
        &policy,
        presented(Platform::Ios, Some(&att), &challenge, &key),
        when,
    );
    assert_eq!(r, Err(AttestationError::NonceMismatch));
}

// ---- parsers never panic ----

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_key_description_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_key_description(&bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_app_attest_parser(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let c = production();
        let _ = verify_app_attest(&bytes, &c.key_id, &c.cdh, &c.apps, true, &apple(), c.when);
    }

    #[test]
    fn arbitrary_certificates_never_panic_the_chain(certs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4)) {
        let _ = verify_android_key(&certs, &[0; 32], &google(), ValidityCheck::At(NOW), None);
    }

    #[test]
    fn a_mutated_real_key_description_never_panics(pos in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let (certs, _) = vector("caiman/sdk36/TEE_EC_RKP");
        let (_, c) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
        let mut kd = c.extensions().iter().find(|e| e.oid.to_id_string() == "1.3.6.1.4.1.11129.2.1.17").unwrap().value.to_vec();
        let p = pos % kd.len();
        kd[p] = byte;
        kd.truncate(kd.len() - cut % kd.len());
        let _ = parse_key_description(&kd);
    }

    #[test]
    fn a_mutated_real_app_attest_object_never_panics(pos in 0usize..6000, byte in any::<u8>()) {
        let c = production();
        let mut o = c.object.clone();
        let p = pos % o.len();
        o[p] = byte;
        let _ = verify_app_attest(&o, &c.key_id, &c.cdh, &c.apps, true, &apple(), c.when);
    }
}

// ---- over HTTP: the enrollment path ----

mod over_http {
    use reqwest::StatusCode;
    use serde_json::json;

    use crate::common::*;

    #[tokio::test]
    async fn a_real_chain_made_for_another_challenge_is_refused_and_the_code_stays_usable() {
        let env = Env::new().await;
        let w = env.world().await;
        let (p, pw) = env.enrollment(&w.practitioner).await;
        let key = shomei_core::SoftwareKey::generate();
        // A real device chain that is still valid today, but generated for the challenge "challenge".
        let certs = super::chain("android/testdata/tokay/sdk37/TEE_MLDSA_FACTORY.pem");
        let mut body = env.enroll_body(&p, &pw, &key, "Pixel");
        body["platform"] = json!("android");
        body["attestation"] = json!({ "format": "android-key", "certificates": certs.iter().map(|c| b64u(c)).collect::<Vec<_>>() });
        let res = env.post_json("/v1/phone/enroll", None, &body).await;
        assert_problem(&res, 403, "attestation_invalid");
        assert_eq!(res.1["detail"], "attestation invalid: challenge mismatch");
        assert!(
            env.admin_get("/admin/v1/devices")
                .await
                .as_array()
                .unwrap()
                .is_empty()
        );
        // Nothing was consumed: the same code enrolls the phone without attestation (policy allow).
        let mut plain = env.enroll_body(&p, &pw, &key, "Pixel");
        plain["platform"] = json!("android");
        let (s, v) = env.post_json("/v1/phone/enroll", None, &plain).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let devices = env.admin_get("/admin/v1/devices").await;
        assert_eq!(devices[0]["attestation"]["status"], "unattested");
        assert_eq!(
            devices[0]["attestation"]["note"],
            "no attestation sent; the policy allows unattested devices"
        );
    }

    #[tokio::test]
    async fn an_unknown_attestation_format_is_refused() {
        let env = Env::new().await;
        let w = env.world().await;
        let (p, pw) = env.enrollment(&w.practitioner).await;
        let mut body = env.enroll_body(&p, &pw, &shomei_core::SoftwareKey::generate(), "x");
        body["attestation"] = json!({ "format": "tpm", "ver": "2.0" });
        let res = env.post_json("/v1/phone/enroll", None, &body).await;
        assert_problem(&res, 403, "attestation_invalid");
        assert_eq!(
            res.1["detail"],
            "attestation invalid: unsupported attestation format"
        );
    }

    #[tokio::test]
    async fn require_refuses_the_desktop_platform_over_http() {
        let env = Env::with_policy(|p| {
            p.attestation.desktop.mode = Some(shomei_server::attestation::Mode::Require)
        })
        .await;
        let w = env.world().await;
        let (p, pw) = env.enrollment(&w.practitioner).await;
        let res = env
            .post_json(
                "/v1/phone/enroll",
                None,
                &env.enroll_body(&p, &pw, &shomei_core::SoftwareKey::generate(), "x"),
            )
            .await;
        assert_problem(&res, 403, "attestation_invalid");
        assert_eq!(
            res.1["detail"],
            "attestation invalid: the desktop platform cannot attest and the policy requires attestation"
        );
    }

    #[tokio::test]
    async fn the_enrollment_audit_entry_records_the_attestation_facts() {
        let env = Env::new().await;
        let w = env.world().await;
        let phone = env.enroll(&w.practitioner).await;
        let r = env
            .http
            .get(format!("{}/admin/v1/audit/export", env.admin_base))
            .bearer_auth(&env.token)
            .send()
            .await
            .unwrap();
        let text = r.text().await.unwrap();
        let entry: serde_json::Value = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|e| e["action"] == "device.enroll" && e["subject"] == phone.device_id.to_string())
            .expect("device.enroll audited");
        let details: serde_json::Value = match &entry["details"] {
            serde_json::Value::String(s) => serde_json::from_str(s).unwrap(),
            v => v.clone(),
        };
        assert_eq!(details["attestation"]["status"], "unattested");
        assert_eq!(details["attestation"]["policy"], "allow");
    }
}
