//! Signing keys, the development CA, key import, signHash, and the audit
//! hash chain, checked with independent implementations (ring, the
//! `openssl` binary when present) rather than with the code under test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use ring::signature::{ECDSA_P256_SHA256_ASN1, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use shomei_server::audit::chain::{self, ChainError, ChainedEntry, GENESIS};
use shomei_server::signing::{
    DEV_CA_COMMON_NAME, DevCa, HcRole, Kek, KeyAlgorithm, KeyHold, NewCredential, SealedKey,
    SignatureAlgorithm, SigningBackend, SigningError, SoftwareBackend, Subject, certificate_info,
    hc_role_extension_value, hc_role_from_certificate, import_pem, import_pkcs12, oid,
};
use x509_parser::prelude::{FromDer, X509Certificate};

// ---------------------------------------------------------------- helpers

fn ca() -> &'static DevCa {
    static CA: OnceLock<DevCa> = OnceLock::new();
    CA.get_or_init(|| DevCa::generate().expect("dev CA"))
}

fn subject(role: HcRole) -> Subject {
    Subject {
        common_name: "山田 太郎".into(),
        role,
        organization: Some("Shomei Test Clinic".into()),
    }
}

fn rsa_credential() -> &'static NewCredential {
    static C: OnceLock<NewCredential> = OnceLock::new();
    C.get_or_init(|| {
        ca().issue(&subject(HcRole::Doctor), KeyAlgorithm::Rsa2048)
            .expect("issue RSA")
    })
}

fn ec_credential() -> &'static NewCredential {
    static C: OnceLock<NewCredential> = OnceLock::new();
    C.get_or_init(|| {
        ca().issue(&subject(HcRole::Pharmacist), KeyAlgorithm::EcdsaP256)
            .expect("issue EC")
    })
}

fn sha256(msg: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, msg)
        .as_ref()
        .to_vec()
}

/// Raw public key (RSAPublicKey DER or EC point) from a certificate, as ring wants it.
fn cert_public_key(cert_der: &[u8]) -> Vec<u8> {
    let (_, cert) = X509Certificate::from_der(cert_der).expect("parse cert");
    cert.public_key().subject_public_key.data.to_vec()
}

fn sealed(kek: &Kek, id: &str, cred: &NewCredential) -> SealedKey {
    SealedKey::seal(kek, id, cred)
}

fn openssl() -> Option<PathBuf> {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(PathBuf::from("openssl"))
    } else {
        eprintln!(
            "\n!!!!!!!! SKIPPED: `openssl` binary not found; the OpenSSL cross-check did not run !!!!!!!!\n"
        );
        None
    }
}

fn run_openssl(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin).args(args).output().expect("run openssl")
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn chain_pem(cred: &NewCredential) -> String {
    cred.certificate_chain
        .iter()
        .map(|c| pem("CERTIFICATE", c))
        .collect()
}

// ---------------------------------------------------------------- KEK

#[test]
fn sealed_key_opens_with_same_kek_and_aad() {
    let kek = Kek::generate().unwrap();
    let sealed = kek.seal(b"private key bytes", b"cred-1");
    assert_eq!(sealed[0], 1, "version byte");
    assert_eq!(sealed.len(), 1 + 12 + 17 + 16);
    assert_eq!(
        &kek.open(&sealed, b"cred-1").unwrap()[..],
        b"private key bytes"
    );
}

#[test]
fn sealing_twice_uses_fresh_nonces() {
    let kek = Kek::generate().unwrap();
    assert_ne!(kek.seal(b"same", b"a"), kek.seal(b"same", b"a"));
}

#[test]
fn sealed_key_does_not_open_under_another_kek() {
    let sealed = Kek::generate().unwrap().seal(b"secret", b"cred-1");
    let err = Kek::generate()
        .unwrap()
        .open(&sealed, b"cred-1")
        .unwrap_err();
    assert!(matches!(err, SigningError::KeyDecrypt), "{err:?}");
}

#[test]
fn sealed_key_does_not_open_for_another_credential_id() {
    let kek = Kek::generate().unwrap();
    let sealed = kek.seal(b"secret", b"cred-1");
    assert!(matches!(
        kek.open(&sealed, b"cred-2").unwrap_err(),
        SigningError::KeyDecrypt
    ));
}

#[test]
fn any_flipped_byte_in_sealed_data_is_rejected() {
    let kek = Kek::generate().unwrap();
    let sealed = kek.seal(b"a private key of some length", b"cred-1");
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x01;
        let err = kek.open(&bad, b"cred-1").unwrap_err();
        if i == 0 {
            assert!(
                matches!(err, SigningError::SealedFormat(_)),
                "byte {i}: {err:?}"
            );
        } else {
            assert!(matches!(err, SigningError::KeyDecrypt), "byte {i}: {err:?}");
        }
    }
}

#[test]
fn truncated_sealed_data_is_a_format_error() {
    let kek = Kek::generate().unwrap();
    let sealed = kek.seal(b"", b"x");
    assert!(kek.open(&sealed, b"x").unwrap().is_empty());
    for len in [0, 1, 12, sealed.len() - 1] {
        let err = kek.open(&sealed[..len], b"x").unwrap_err();
        assert!(
            matches!(
                err,
                SigningError::SealedFormat(_) | SigningError::KeyDecrypt
            ),
            "len {len}: {err:?}"
        );
    }
    assert!(matches!(
        kek.open(&[], b"x").unwrap_err(),
        SigningError::SealedFormat(_)
    ));
}

#[test]
fn kek_file_is_created_0600_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/kek");
    let first = Kek::load_or_create(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let sealed = first.seal(b"k", b"id");
    let second = Kek::load_or_create(&path).unwrap();
    assert_eq!(&second.open(&sealed, b"id").unwrap()[..], b"k");
    // The file holds the environment form, so it can be moved into SHOMEI_KEK-style config.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        &Kek::from_base64(&text)
            .unwrap()
            .open(&sealed, b"id")
            .unwrap()[..],
        b"k"
    );
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[cfg(unix)]
#[test]
fn kek_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kek");
    Kek::load_or_create(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = Kek::load_or_create(&path).unwrap_err();
    assert!(
        matches!(err, SigningError::InsecureKekFile { mode: 0o644, .. }),
        "{err:?}"
    );
}

#[test]
fn kek_from_base64_rejects_wrong_length_and_garbage() {
    assert!(matches!(
        Kek::from_base64("AAAA").unwrap_err(),
        SigningError::BadKek(_)
    ));
    assert!(matches!(
        Kek::from_base64("not base64 !!").unwrap_err(),
        SigningError::BadKek(_)
    ));
    let good = Kek::random_base64().unwrap();
    assert!(Kek::from_base64(&format!("  {}\n", &*good)).is_ok());
}

#[test]
fn kek_debug_does_not_print_key_material() {
    let text = format!("{:?} {:?}", Kek::generate().unwrap(), rsa_credential());
    assert!(text.contains("redacted"));
    assert!(!text.contains("pkcs8: ["));
}

// ---------------------------------------------------------------- signHash

#[test]
fn rsa_sign_digest_verifies_with_ring_against_certificate_key() {
    let cred = rsa_credential();
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let key = sealed(&kek, "cred-rsa", cred);
    let msg = "<Prescription>処方箋 本文</Prescription>".as_bytes();
    let sig = backend
        .sign_digest(&key, SignatureAlgorithm::RsaPkcs1Sha256, &sha256(msg))
        .unwrap();
    assert_eq!(sig.len(), 256);
    UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        cert_public_key(&cred.certificate_chain[0]),
    )
    .verify(msg, &sig)
    .expect("ring verifies the RSA signature");
    // A different message must not verify.
    assert!(
        UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            cert_public_key(&cred.certificate_chain[0])
        )
        .verify(b"other", &sig)
        .is_err()
    );
}

#[test]
fn rsa_sign_digest_is_byte_identical_to_ring_signing_the_message() {
    let cred = rsa_credential();
    let kek = Kek::generate().unwrap();
    let key = sealed(&kek, "c", cred);
    let backend = SoftwareBackend::new(kek);
    let msg = b"PKCS#1 v1.5 is deterministic";
    let ours = backend
        .sign_digest(&key, SignatureAlgorithm::RsaPkcs1Sha256, &sha256(msg))
        .unwrap();
    let ring_key = ring::signature::RsaKeyPair::from_pkcs8(&cred.pkcs8).unwrap();
    let mut theirs = vec![0; ring_key.public().modulus_len()];
    ring_key
        .sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            msg,
            &mut theirs,
        )
        .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn ecdsa_sign_digest_verifies_with_ring_against_certificate_key() {
    let cred = ec_credential();
    let kek = Kek::generate().unwrap();
    let key = sealed(&kek, "cred-ec", cred);
    let backend = SoftwareBackend::new(kek);
    let msg = b"dispensing result";
    let sig = backend
        .sign_digest(&key, SignatureAlgorithm::EcdsaP256Sha256, &sha256(msg))
        .unwrap();
    assert_eq!(sig[0], 0x30, "DER Ecdsa-Sig-Value");
    UnparsedPublicKey::new(
        &ECDSA_P256_SHA256_ASN1,
        cert_public_key(&cred.certificate_chain[0]),
    )
    .verify(msg, &sig)
    .expect("ring verifies the ECDSA signature");
}

#[test]
fn digest_of_wrong_length_is_rejected() {
    let kek = Kek::generate().unwrap();
    let key = sealed(&kek, "c", rsa_credential());
    let backend = SoftwareBackend::new(kek);
    for len in [0usize, 20, 31, 33, 48, 64] {
        let err = backend
            .sign_digest(&key, SignatureAlgorithm::RsaPkcs1Sha256, &vec![7; len])
            .unwrap_err();
        assert!(
            matches!(err, SigningError::BadDigestLength { expected: 32, actual } if actual == len),
            "{err:?}"
        );
    }
}

#[test]
fn batch_with_one_bad_digest_signs_nothing() {
    let kek = Kek::generate().unwrap();
    let key = sealed(&kek, "c", ec_credential());
    let backend = SoftwareBackend::new(kek);
    let good = sha256(b"a");
    let err = backend
        .sign_digests(
            &key,
            SignatureAlgorithm::EcdsaP256Sha256,
            &[&good, &good[..31]],
        )
        .unwrap_err();
    assert!(matches!(
        err,
        SigningError::BadDigestLength { actual: 31, .. }
    ));
    let sigs = backend
        .sign_digests(
            &key,
            SignatureAlgorithm::EcdsaP256Sha256,
            &[&good, &sha256(b"b")],
        )
        .unwrap();
    assert_eq!(sigs.len(), 2);
    let pk = cert_public_key(&ec_credential().certificate_chain[0]);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &pk)
        .verify(b"a", &sigs[0])
        .unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &pk)
        .verify(b"b", &sigs[1])
        .unwrap();
}

#[test]
fn signature_algorithm_must_match_key() {
    let kek = Kek::generate().unwrap();
    let rsa = sealed(&kek, "r", rsa_credential());
    let ec = sealed(&kek, "e", ec_credential());
    let backend = SoftwareBackend::new(kek);
    let d = sha256(b"x");
    assert!(matches!(
        backend
            .sign_digest(&rsa, SignatureAlgorithm::EcdsaP256Sha256, &d)
            .unwrap_err(),
        SigningError::AlgorithmMismatch { .. }
    ));
    assert!(matches!(
        backend
            .sign_digest(&ec, SignatureAlgorithm::RsaPkcs1Sha256, &d)
            .unwrap_err(),
        SigningError::AlgorithmMismatch { .. }
    ));
}

#[test]
fn sealed_key_moved_to_another_credential_does_not_sign() {
    let kek = Kek::generate().unwrap();
    let mut key = sealed(&kek, "cred-a", rsa_credential());
    key.credential_id = "cred-b".into();
    let backend = SoftwareBackend::new(kek);
    let err = backend
        .sign_digest(&key, SignatureAlgorithm::RsaPkcs1Sha256, &sha256(b"x"))
        .unwrap_err();
    assert!(matches!(err, SigningError::KeyDecrypt), "{err:?}");
}

#[test]
fn backend_with_wrong_kek_does_not_sign() {
    let key = sealed(&Kek::generate().unwrap(), "c", ec_credential());
    let backend = SoftwareBackend::new(Kek::generate().unwrap());
    let err = backend
        .sign_digest(&key, SignatureAlgorithm::EcdsaP256Sha256, &sha256(b"x"))
        .unwrap_err();
    assert!(matches!(err, SigningError::KeyDecrypt));
}

#[test]
fn csc_oids_map_to_signature_algorithms() {
    use KeyAlgorithm::*;
    use SignatureAlgorithm::*;
    assert_eq!(
        SignatureAlgorithm::from_csc(oid::SHA256_WITH_RSA, None, Rsa2048).unwrap(),
        RsaPkcs1Sha256
    );
    assert_eq!(
        SignatureAlgorithm::from_csc(oid::SHA256_WITH_RSA, Some(oid::SHA256), Rsa2048).unwrap(),
        RsaPkcs1Sha256
    );
    assert_eq!(
        SignatureAlgorithm::from_csc(oid::RSA_ENCRYPTION, Some(oid::SHA256), Rsa2048).unwrap(),
        RsaPkcs1Sha256
    );
    assert_eq!(
        SignatureAlgorithm::from_csc(oid::ECDSA_WITH_SHA256, None, EcdsaP256).unwrap(),
        EcdsaP256Sha256
    );
}

#[test]
fn csc_oids_that_do_not_fit_are_rejected() {
    use KeyAlgorithm::*;
    let unsupported = |r: Result<SignatureAlgorithm, SigningError>| {
        matches!(r, Err(SigningError::UnsupportedAlgorithm(_)))
    };
    // bare rsaEncryption without a hash
    assert!(unsupported(SignatureAlgorithm::from_csc(
        oid::RSA_ENCRYPTION,
        None,
        Rsa2048
    )));
    // SHA-1 / SHA-384
    assert!(unsupported(SignatureAlgorithm::from_csc(
        oid::RSA_ENCRYPTION,
        Some("1.3.14.3.2.26"),
        Rsa2048
    )));
    assert!(unsupported(SignatureAlgorithm::from_csc(
        oid::SHA256_WITH_RSA,
        Some("2.16.840.1.101.3.4.2.2"),
        Rsa2048
    )));
    // RSA-PSS, Ed25519
    assert!(unsupported(SignatureAlgorithm::from_csc(
        "1.2.840.113549.1.1.10",
        Some(oid::SHA256),
        Rsa2048
    )));
    assert!(unsupported(SignatureAlgorithm::from_csc(
        "1.3.101.112",
        None,
        EcdsaP256
    )));
    assert!(matches!(
        SignatureAlgorithm::from_csc(oid::ECDSA_WITH_SHA256, None, Rsa2048),
        Err(SigningError::AlgorithmMismatch { .. })
    ));
}

// ---------------------------------------------------------------- held keys

fn rsa_credential_b() -> &'static NewCredential {
    static C: OnceLock<NewCredential> = OnceLock::new();
    C.get_or_init(|| {
        ca().issue(&subject(HcRole::Dentist), KeyAlgorithm::Rsa2048)
            .expect("issue second RSA")
    })
}

const NOW: i64 = 1_800_000_000_000;

fn hold(grant_id: &str) -> KeyHold<'_> {
    KeyHold {
        grant_id,
        now_ms: NOW,
        until_ms: NOW + 3_600_000,
    }
}

fn verifies(cred: &NewCredential, msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        cert_public_key(&cred.certificate_chain[0]),
    )
    .verify(msg, sig)
    .is_ok()
}

#[test]
fn held_key_signs_byte_identically_to_a_freshly_opened_one() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let key = sealed(&kek, "cred-held", rsa_credential());
    let msg = b"held and fresh agree";
    let d = sha256(msg);
    let fresh = backend
        .sign_digests(&key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 0, "the plain call holds nothing");
    let first = backend
        .sign_digests_held(&hold("g1"), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 1);
    let second = backend
        .sign_digests_held(&hold("g1"), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 1, "the same grant reuses its key");
    assert_eq!(first, fresh);
    assert_eq!(second, fresh);
    assert!(verifies(rsa_credential(), msg, &second[0]));
}

#[test]
fn releasing_a_grant_drops_only_its_keys() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let key = sealed(&kek, "cred-a", rsa_credential());
    let d = sha256(b"x");
    for g in ["g1", "g2"] {
        backend
            .sign_digests_held(&hold(g), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
            .unwrap();
    }
    assert_eq!(backend.held_keys(), 2);
    backend.release_grant("g1");
    assert_eq!(backend.held_keys(), 1);
    backend.release_all();
    assert_eq!(backend.held_keys(), 0);
}

#[test]
fn a_key_is_not_held_past_its_grant_end() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let key = sealed(&kek, "cred-end", rsa_credential());
    let d = sha256(b"x");
    let ended = KeyHold {
        grant_id: "g-ended",
        now_ms: NOW,
        until_ms: NOW,
    };
    backend
        .sign_digests_held(&ended, &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 0, "a grant at its end holds nothing");
    backend
        .sign_digests_held(&hold("g"), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 1);
    // an hour later the grant has ended: the key is dropped, then opened for this call only
    let later = KeyHold {
        grant_id: "g",
        now_ms: NOW + 3_600_000,
        until_ms: NOW + 3_600_000,
    };
    backend
        .sign_digests_held(&later, &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(backend.held_keys(), 0);
}

#[test]
fn held_keys_are_bounded_least_recently_used_first() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::with_held_keys(kek.clone(), 2);
    let key = sealed(&kek, "cred-lru", rsa_credential());
    let d = sha256(b"x");
    let sign = |g: &str| {
        backend
            .sign_digests_held(&hold(g), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
            .unwrap()
    };
    sign("g1");
    sign("g2");
    sign("g1"); // g2 is now the least recently used
    sign("g3");
    assert_eq!(backend.held_keys(), 2);
    backend.release_grant("g1");
    backend.release_grant("g3");
    assert_eq!(backend.held_keys(), 0, "g2 was the one evicted");
    let none = SoftwareBackend::with_held_keys(kek.clone(), 0);
    none.sign_digests_held(&hold("g"), &key, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert_eq!(none.held_keys(), 0, "capacity 0 holds nothing");
}

#[test]
fn a_changed_stored_key_is_opened_afresh_not_served_from_memory() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let msg = b"which key signed this?";
    let d = sha256(msg);
    let old = sealed(&kek, "cred-same-id", rsa_credential());
    let new = sealed(&kek, "cred-same-id", rsa_credential_b());
    let s1 = backend
        .sign_digests_held(&hold("g"), &old, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    let s2 = backend
        .sign_digests_held(&hold("g"), &new, SignatureAlgorithm::RsaPkcs1Sha256, &[&d])
        .unwrap();
    assert!(verifies(rsa_credential(), msg, &s1[0]));
    assert!(
        verifies(rsa_credential_b(), msg, &s2[0]),
        "the new key signed"
    );
    assert!(!verifies(rsa_credential(), msg, &s2[0]));
    assert_eq!(backend.held_keys(), 1);
}

#[test]
fn held_signing_refuses_what_plain_signing_refuses_and_holds_nothing() {
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    let key = sealed(&kek, "cred-bad", rsa_credential());
    let short = [0u8; 20];
    let e = backend
        .sign_digests_held(
            &hold("g"),
            &key,
            SignatureAlgorithm::RsaPkcs1Sha256,
            &[&short],
        )
        .unwrap_err();
    assert!(matches!(e, SigningError::BadDigestLength { .. }), "{e:?}");
    let d = sha256(b"x");
    let e = backend
        .sign_digests_held(&hold("g"), &key, SignatureAlgorithm::EcdsaP256Sha256, &[&d])
        .unwrap_err();
    assert!(matches!(e, SigningError::AlgorithmMismatch { .. }), "{e:?}");
    // a key sealed for another credential id does not open, and nothing is held
    let moved = SealedKey {
        credential_id: "other".into(),
        ..key.clone()
    };
    assert!(
        backend
            .sign_digests_held(
                &hold("g"),
                &moved,
                SignatureAlgorithm::RsaPkcs1Sha256,
                &[&d]
            )
            .is_err()
    );
    assert_eq!(backend.held_keys(), 0);
}

// ---------------------------------------------------------------- dev CA and certificates

#[test]
fn issued_certificate_chains_to_the_dev_ca() {
    for cred in [rsa_credential(), ec_credential()] {
        assert_eq!(cred.certificate_chain.len(), 2);
        assert_eq!(cred.certificate_chain[1], ca().certificate_der());
        let (_, leaf) = X509Certificate::from_der(&cred.certificate_chain[0]).unwrap();
        let (_, ca_cert) = X509Certificate::from_der(ca().certificate_der()).unwrap();
        assert_eq!(leaf.issuer().as_raw(), ca_cert.subject().as_raw());
        // Independent check: ring verifies the CA's signature over the leaf's TBS bytes.
        assert_eq!(
            leaf.signature_algorithm.algorithm.to_id_string(),
            oid::SHA256_WITH_RSA
        );
        UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            cert_public_key(ca().certificate_der()),
        )
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .expect("leaf signed by dev CA");
        // And the CA is self-signed.
        UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            cert_public_key(ca().certificate_der()),
        )
        .verify(
            ca_cert.tbs_certificate.as_ref(),
            &ca_cert.signature_value.data,
        )
        .expect("CA self-signed");
    }
}

#[test]
fn certificate_from_another_ca_does_not_verify_under_the_dev_ca() {
    let other = DevCa::generate().unwrap();
    let cred = other
        .issue(&subject(HcRole::Dentist), KeyAlgorithm::EcdsaP256)
        .unwrap();
    let (_, leaf) = X509Certificate::from_der(&cred.certificate_chain[0]).unwrap();
    assert!(
        UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            cert_public_key(ca().certificate_der())
        )
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .is_err()
    );
}

#[test]
fn dev_ca_certificate_says_not_for_production_and_is_a_ca() {
    let info = certificate_info(ca().certificate_der()).unwrap();
    assert!(
        info.subject_dn.contains(DEV_CA_COMMON_NAME),
        "{}",
        info.subject_dn
    );
    assert!(DEV_CA_COMMON_NAME.contains("NOT FOR PRODUCTION"));
    assert_eq!(info.subject_dn, info.issuer_dn);
    let (_, cert) = X509Certificate::from_der(ca().certificate_der()).unwrap();
    assert!(cert.basic_constraints().unwrap().unwrap().value.ca);
}

#[test]
fn practitioner_certificate_is_hpki_shaped() {
    let (_, leaf) = X509Certificate::from_der(&rsa_credential().certificate_chain[0]).unwrap();
    let bc = leaf.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca);
    let ku = leaf.key_usage().unwrap().expect("keyUsage present");
    assert!(ku.critical);
    assert!(ku.value.non_repudiation());
    assert!(!ku.value.key_cert_sign());
    let info = certificate_info(&rsa_credential().certificate_chain[0]).unwrap();
    assert!(info.subject_dn.contains("C=JP"));
    assert!(info.subject_dn.contains("Shomei Test Clinic"));
    assert!(info.subject_dn.contains("山田 太郎"), "{}", info.subject_dn);
    assert!(info.issuer_dn.contains(DEV_CA_COMMON_NAME));
}

#[test]
fn hc_role_extension_matches_the_hpki_encoding() {
    // subjectDirectoryAttributes value of a MEDIS-issued HPKI signature
    // certificate for a medical doctor (public test certificate).
    let hpki_doctor = "303430320606288185420001312831263024a0223120a00c060a2a830886910f01060101a2100c0e4d65646963616c20446f63746f72";
    assert_eq!(
        hex::encode(hc_role_extension_value(HcRole::Doctor)),
        hpki_doctor
    );
}

#[test]
fn hc_role_is_present_in_issued_certificates_and_decodes() {
    for role in [HcRole::Doctor, HcRole::Dentist, HcRole::Pharmacist] {
        let cred = ca().issue(&subject(role), KeyAlgorithm::EcdsaP256).unwrap();
        let (_, leaf) = X509Certificate::from_der(&cred.certificate_chain[0]).unwrap();
        let ext = leaf
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "2.5.29.9")
            .expect("subjectDirectoryAttributes present");
        assert!(!ext.critical);
        assert_eq!(ext.value, &hc_role_extension_value(role)[..]);
        assert_eq!(
            hc_role_from_certificate(&cred.certificate_chain[0]).unwrap(),
            Some(role)
        );
        assert_eq!(
            certificate_info(&cred.certificate_chain[0])
                .unwrap()
                .hc_role_code
                .as_deref(),
            Some(role.hpki_code())
        );
    }
    assert_eq!(
        hc_role_from_certificate(ca().certificate_der()).unwrap(),
        None
    );
}

#[test]
fn hc_role_extension_decodes_with_openssl_asn1parse() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ext.der");
    std::fs::write(&path, hc_role_extension_value(HcRole::Pharmacist)).unwrap();
    let out = run_openssl(
        &bin,
        &["asn1parse", "-inform", "DER", "-in", path.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(":1.0.17090.0.1"), "{text}");
    assert!(text.contains(":1.2.392.100495.1.6.1.1"), "{text}");
    assert!(
        text.contains("UTF8STRING") && text.contains(":Pharmacist"),
        "{text}"
    );
}

#[test]
fn certificate_info_reports_csc_fields() {
    let info = certificate_info(&rsa_credential().certificate_chain[0]).unwrap();
    assert_eq!(info.key_len_bits, 2048);
    assert_eq!(info.key_algorithm, Some(KeyAlgorithm::Rsa2048));
    assert_eq!(info.serial_hex.len(), 32);
    assert!(
        info.serial_hex
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    let nb = time::OffsetDateTime::parse(
        &info.not_before,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let na = time::OffsetDateTime::parse(
        &info.not_after,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let years = (na - nb).whole_days() / 365;
    assert_eq!(years, 5);
    let ec = certificate_info(&ec_credential().certificate_chain[0]).unwrap();
    assert_eq!(
        (ec.key_len_bits, ec.key_algorithm),
        (256, Some(KeyAlgorithm::EcdsaP256))
    );
    assert_ne!(info.serial_hex, ec.serial_hex);
}

#[test]
fn certificate_info_rejects_garbage() {
    assert!(matches!(
        certificate_info(b"not a certificate").unwrap_err(),
        SigningError::BadCertificate(_)
    ));
    let mut trailing = rsa_credential().certificate_chain[0].clone();
    trailing.push(0);
    assert!(matches!(
        certificate_info(&trailing).unwrap_err(),
        SigningError::BadCertificate(_)
    ));
}

#[test]
fn dev_ca_round_trips_through_parts_and_keeps_issuing_under_the_same_name() {
    let (pkcs8, cert) = ca().to_parts();
    let restored = DevCa::from_parts(&pkcs8, &cert).unwrap();
    assert_eq!(restored.certificate_der(), ca().certificate_der());
    let cred = restored
        .issue(&subject(HcRole::Doctor), KeyAlgorithm::EcdsaP256)
        .unwrap();
    let (_, leaf) = X509Certificate::from_der(&cred.certificate_chain[0]).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, cert_public_key(&cert))
        .verify(leaf.tbs_certificate.as_ref(), &leaf.signature_value.data)
        .expect("restored CA signs with the same key");
}

#[test]
fn dev_ca_from_parts_rejects_mismatched_or_non_ca_parts() {
    let other = DevCa::generate().unwrap();
    let (other_key, _) = other.to_parts();
    assert!(matches!(
        DevCa::from_parts(&other_key, ca().certificate_der()).unwrap_err(),
        SigningError::CertificateKeyMismatch
    ));
    let leaf = rsa_credential();
    assert!(matches!(
        DevCa::from_parts(&leaf.pkcs8, &leaf.certificate_chain[0]).unwrap_err(),
        SigningError::BadCertificate(_)
    ));
}

#[test]
fn empty_subject_name_is_refused() {
    let s = Subject {
        common_name: "  ".into(),
        role: HcRole::Doctor,
        organization: None,
    };
    assert!(matches!(
        ca().issue(&s, KeyAlgorithm::EcdsaP256).unwrap_err(),
        SigningError::CertificateGeneration(_)
    ));
}

// ---------------------------------------------------------------- openssl cross-check

#[test]
fn openssl_verifies_certificate_chain_and_signatures() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(p("ca.pem"), pem("CERTIFICATE", ca().certificate_der())).unwrap();
    let kek = Arc::new(Kek::generate().unwrap());
    let backend = SoftwareBackend::new(kek.clone());
    for (name, cred, alg) in [
        ("rsa", rsa_credential(), SignatureAlgorithm::RsaPkcs1Sha256),
        ("ec", ec_credential(), SignatureAlgorithm::EcdsaP256Sha256),
    ] {
        let leaf = p(&format!("{name}.pem"));
        std::fs::write(&leaf, pem("CERTIFICATE", &cred.certificate_chain[0])).unwrap();
        let out = run_openssl(&bin, &["verify", "-CAfile", &p("ca.pem"), &leaf]);
        assert!(
            out.status.success(),
            "openssl verify {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        let out = run_openssl(&bin, &["x509", "-in", &leaf, "-pubkey", "-noout"]);
        assert!(out.status.success());
        std::fs::write(p(&format!("{name}.pub")), &out.stdout).unwrap();

        let msg = format!("prescription signed with {name}");
        std::fs::write(p(&format!("{name}.msg")), &msg).unwrap();
        let key = SealedKey::seal(&kek, name, cred);
        let sig = backend
            .sign_digest(&key, alg, &sha256(msg.as_bytes()))
            .unwrap();
        std::fs::write(p(&format!("{name}.sig")), &sig).unwrap();
        let out = run_openssl(
            &bin,
            &[
                "dgst",
                "-sha256",
                "-verify",
                &p(&format!("{name}.pub")),
                "-signature",
                &p(&format!("{name}.sig")),
                &p(&format!("{name}.msg")),
            ],
        );
        assert!(
            out.status.success(),
            "openssl dgst {name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Tampered message must fail under openssl as well.
        std::fs::write(p(&format!("{name}.msg")), format!("{msg}!")).unwrap();
        let out = run_openssl(
            &bin,
            &[
                "dgst",
                "-sha256",
                "-verify",
                &p(&format!("{name}.pub")),
                "-signature",
                &p(&format!("{name}.sig")),
                &p(&format!("{name}.msg")),
            ],
        );
        assert!(
            !out.status.success(),
            "openssl must reject a tampered message"
        );
    }
    // A leaf from a different CA fails openssl verify against our CA.
    let other = DevCa::generate()
        .unwrap()
        .issue(&subject(HcRole::Doctor), KeyAlgorithm::EcdsaP256)
        .unwrap();
    std::fs::write(
        p("other.pem"),
        pem("CERTIFICATE", &other.certificate_chain[0]),
    )
    .unwrap();
    let out = run_openssl(&bin, &["verify", "-CAfile", &p("ca.pem"), &p("other.pem")]);
    assert!(!out.status.success());
}

// ---------------------------------------------------------------- import

#[test]
fn pem_import_round_trips_an_issued_credential() {
    for cred in [rsa_credential(), ec_credential()] {
        let imported = import_pem(&pem("PRIVATE KEY", &cred.pkcs8), &chain_pem(cred)).unwrap();
        assert_eq!(imported.algorithm, cred.algorithm);
        assert_eq!(&imported.pkcs8[..], &cred.pkcs8[..]);
        assert_eq!(imported.certificate_chain, cred.certificate_chain);
    }
}

#[test]
fn pem_import_accepts_one_combined_file() {
    let cred = ec_credential();
    let combined = format!("{}{}", chain_pem(cred), pem("PRIVATE KEY", &cred.pkcs8));
    let imported = import_pem(&combined, &combined).unwrap();
    assert_eq!(imported.certificate_chain.len(), 2);
}

#[test]
fn pem_import_of_traditional_pkcs1_and_sec1_keys_via_openssl() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    for cred in [rsa_credential(), ec_credential()] {
        let in_path = dir.path().join("in.pem");
        let out_path = dir.path().join("out.pem");
        std::fs::write(&in_path, pem("PRIVATE KEY", &cred.pkcs8)).unwrap();
        let out = run_openssl(
            &bin,
            &[
                "pkey",
                "-in",
                in_path.to_str().unwrap(),
                "-traditional",
                "-out",
                out_path.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let traditional = std::fs::read_to_string(&out_path).unwrap();
        assert!(
            traditional.contains("BEGIN RSA PRIVATE KEY")
                || traditional.contains("BEGIN EC PRIVATE KEY"),
            "{traditional}"
        );
        let imported = import_pem(&traditional, &chain_pem(cred)).unwrap();
        assert_eq!(imported.algorithm, cred.algorithm);
        // Normalised to PKCS#8 carrying the same key: it signs verifiably for the certificate.
        let kek = Kek::generate().unwrap();
        let key = SealedKey::seal(&kek, "c", &imported);
        let sig = SoftwareBackend::new(kek)
            .sign_digest(&key, cred.algorithm.signature_algorithm(), &sha256(b"m"))
            .unwrap();
        let alg: &dyn ring::signature::VerificationAlgorithm = match cred.algorithm {
            KeyAlgorithm::Rsa2048 => &RSA_PKCS1_2048_8192_SHA256,
            KeyAlgorithm::EcdsaP256 => &ECDSA_P256_SHA256_ASN1,
        };
        UnparsedPublicKey::new(alg, cert_public_key(&cred.certificate_chain[0]))
            .verify(b"m", &sig)
            .unwrap();
    }
}

#[test]
fn pem_import_with_certificate_of_another_key_is_a_mismatch() {
    let err = import_pem(
        &pem("PRIVATE KEY", &rsa_credential().pkcs8),
        &chain_pem(ec_credential()),
    )
    .unwrap_err();
    assert!(
        matches!(err, SigningError::CertificateKeyMismatch),
        "{err:?}"
    );
    let other = ca()
        .issue(&subject(HcRole::Doctor), KeyAlgorithm::Rsa2048)
        .unwrap();
    let err = import_pem(
        &pem("PRIVATE KEY", &rsa_credential().pkcs8),
        &chain_pem(&other),
    )
    .unwrap_err();
    assert!(
        matches!(err, SigningError::CertificateKeyMismatch),
        "{err:?}"
    );
}

#[test]
fn pem_import_rejects_missing_encrypted_or_garbage_parts() {
    let cred = rsa_credential();
    let err = import_pem(&chain_pem(cred), &chain_pem(cred)).unwrap_err();
    assert!(matches!(err, SigningError::BadKey(_)), "{err:?}");
    let err = import_pem("hello", &chain_pem(cred)).unwrap_err();
    assert!(matches!(err, SigningError::BadKey(_)), "{err:?}");
    let err = import_pem(&pem("ENCRYPTED PRIVATE KEY", b"xx"), &chain_pem(cred)).unwrap_err();
    assert!(matches!(err, SigningError::BadKey(_)), "{err:?}");
    let err = import_pem(&pem("PRIVATE KEY", b"not a key"), &chain_pem(cred)).unwrap_err();
    assert!(matches!(err, SigningError::BadKey(_)), "{err:?}");
    let err = import_pem(
        &pem("PRIVATE KEY", &cred.pkcs8),
        &pem("PRIVATE KEY", &cred.pkcs8),
    )
    .unwrap_err();
    assert!(matches!(err, SigningError::BadCertificate(_)), "{err:?}");
    let err = import_pem(
        &pem("PRIVATE KEY", &cred.pkcs8),
        &pem("CERTIFICATE", b"garbage"),
    )
    .unwrap_err();
    assert!(matches!(err, SigningError::BadCertificate(_)), "{err:?}");
    let two_keys = format!(
        "{}{}",
        pem("PRIVATE KEY", &cred.pkcs8),
        pem("PRIVATE KEY", &cred.pkcs8)
    );
    assert!(matches!(
        import_pem(&two_keys, &chain_pem(cred)).unwrap_err(),
        SigningError::BadKey(_)
    ));
}

#[test]
fn pem_import_rejects_a_chain_out_of_order() {
    let cred = rsa_credential();
    let reversed: String = cred
        .certificate_chain
        .iter()
        .rev()
        .map(|c| pem("CERTIFICATE", c))
        .collect();
    // Leaf is now the CA certificate: key does not match.
    assert!(matches!(
        import_pem(&pem("PRIVATE KEY", &cred.pkcs8), &reversed).unwrap_err(),
        SigningError::CertificateKeyMismatch
    ));
    let other_ca = DevCa::generate().unwrap();
    let wrong_issuer = format!(
        "{}{}",
        pem("CERTIFICATE", &cred.certificate_chain[0]),
        pem("CERTIFICATE", other_ca.certificate_der())
    );
    let unrelated = format!(
        "{}{}",
        pem("CERTIFICATE", &cred.certificate_chain[0]),
        pem("CERTIFICATE", &ec_credential().certificate_chain[0])
    );
    // Same issuer name, different key: only the signature check can tell.
    assert!(matches!(
        import_pem(&pem("PRIVATE KEY", &cred.pkcs8), &wrong_issuer).unwrap_err(),
        SigningError::BadCertificate(_)
    ));
    assert!(matches!(
        import_pem(&pem("PRIVATE KEY", &cred.pkcs8), &unrelated).unwrap_err(),
        SigningError::BadCertificate(_)
    ));
}

#[test]
fn rsa_keys_other_than_2048_bits_are_refused() {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa3072).unwrap();
    use aws_lc_rs::encoding::AsDer;
    let der = key.as_der().unwrap();
    let err = import_pem(
        &pem("PRIVATE KEY", der.as_ref()),
        &chain_pem(rsa_credential()),
    )
    .unwrap_err();
    assert!(
        matches!(err, SigningError::UnsupportedAlgorithm(_)),
        "{err:?}"
    );
}

fn p12_from_rust(
    cred: &NewCredential,
    password: &str,
    alg: p12_keystore::EncryptionAlgorithm,
) -> Vec<u8> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let certs: Vec<Certificate> = cred
        .certificate_chain
        .iter()
        .map(|c| Certificate::from_der(c).unwrap())
        .collect();
    let chain = PrivateKeyChain::new(
        b"key-1".as_slice(),
        PrivateKey::from_der(&cred.pkcs8).unwrap(),
        certs,
    );
    let mut store = KeyStore::new();
    store.add_entry("practitioner", KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(alg)
        .write()
        .unwrap()
}

#[test]
fn pkcs12_import_round_trips_a_rust_written_file() {
    use p12_keystore::EncryptionAlgorithm::*;
    for (cred, alg) in [
        (rsa_credential(), PbeWithHmacSha256AndAes256),
        (ec_credential(), PbeWithShaAnd3KeyTripleDesCbc),
    ] {
        let p12 = p12_from_rust(cred, "パスワード-1", alg);
        let imported = import_pkcs12(&p12, "パスワード-1").unwrap();
        assert_eq!(imported.algorithm, cred.algorithm);
        assert_eq!(&imported.pkcs8[..], &cred.pkcs8[..]);
        assert_eq!(imported.certificate_chain, cred.certificate_chain);
    }
}

#[test]
fn pkcs12_with_wrong_password_is_a_typed_error() {
    let p12 = p12_from_rust(
        ec_credential(),
        "right",
        p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
    );
    let err = import_pkcs12(&p12, "wrong").unwrap_err();
    assert!(matches!(err, SigningError::Pkcs12Password), "{err:?}");
}

#[test]
fn pkcs12_garbage_is_rejected() {
    assert!(matches!(
        import_pkcs12(b"not pkcs12", "x").unwrap_err(),
        SigningError::Pkcs12(_)
    ));
    assert!(matches!(
        import_pkcs12(&[], "x").unwrap_err(),
        SigningError::Pkcs12(_)
    ));
}

#[test]
fn pkcs12_written_by_openssl_imports() {
    let Some(bin) = openssl() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    for cred in [rsa_credential(), ec_credential()] {
        std::fs::write(p("key.pem"), pem("PRIVATE KEY", &cred.pkcs8)).unwrap();
        std::fs::write(
            p("leaf.pem"),
            pem("CERTIFICATE", &cred.certificate_chain[0]),
        )
        .unwrap();
        std::fs::write(p("ca.pem"), pem("CERTIFICATE", &cred.certificate_chain[1])).unwrap();
        // OpenSSL 3 default (PBES2/AES-256-CBC, HMAC-SHA-256 MAC), then the legacy 3DES/SHA-1 form.
        let variants: [&[&str]; 2] = [
            &[],
            &[
                "-certpbe",
                "PBE-SHA1-3DES",
                "-keypbe",
                "PBE-SHA1-3DES",
                "-macalg",
                "sha1",
            ],
        ];
        let (key, leaf, ca_pem, out_p12) = (p("key.pem"), p("leaf.pem"), p("ca.pem"), p("out.p12"));
        for extra in variants {
            let mut args = vec![
                "pkcs12",
                "-export",
                "-inkey",
                &key,
                "-in",
                &leaf,
                "-certfile",
                &ca_pem,
                "-name",
                "practitioner",
                "-passout",
                "pass:s3cret",
                "-out",
                &out_p12,
            ];
            args.extend_from_slice(extra);
            let out = run_openssl(&bin, &args);
            assert!(
                out.status.success(),
                "openssl pkcs12 {extra:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let der = std::fs::read(&out_p12).unwrap();
            let imported =
                import_pkcs12(&der, "s3cret").unwrap_or_else(|e| panic!("{extra:?}: {e}"));
            assert_eq!(&imported.pkcs8[..], &cred.pkcs8[..]);
            assert_eq!(
                imported.certificate_chain, cred.certificate_chain,
                "{extra:?}"
            );
            assert!(matches!(
                import_pkcs12(&der, "S3cret").unwrap_err(),
                SigningError::Pkcs12Password
            ));
        }
    }
}

// ---------------------------------------------------------------- audit chain

fn sample_log(n: i64) -> Vec<ChainedEntry> {
    let mut prev = GENESIS;
    (1..=n)
        .map(|seq| {
            let e = ChainedEntry::new(
                prev,
                seq,
                1_700_000_000_000 + seq,
                "terminal:t1",
                "signature.create",
                format!("cred-{seq}"),
                format!(r#"{{"hash":"{seq:064x}"}}"#),
            );
            prev = e.hash;
            e
        })
        .collect()
}

#[test]
fn audit_chain_verifies_and_reports_head() {
    let log = sample_log(5);
    let summary = chain::verify(&log).unwrap();
    assert_eq!(summary.count, 5);
    assert_eq!(summary.head, log[4].hash);
    assert_eq!(log[0].prev_hash, GENESIS);
    let empty = chain::verify(&[]).unwrap();
    assert_eq!((empty.count, empty.head), (0, GENESIS));
}

#[test]
fn audit_chain_detects_an_edited_entry() {
    for field in 0..5 {
        let mut log = sample_log(5);
        match field {
            0 => log[2].details = r#"{"hash":"forged"}"#.into(),
            1 => log[2].actor = "terminal:t2".into(),
            2 => log[2].action = "signature.delete".into(),
            3 => log[2].subject = "cred-x".into(),
            _ => log[2].at_ms += 1,
        }
        assert_eq!(
            chain::verify(&log).unwrap_err(),
            ChainError::HashMismatch { seq: 3 },
            "field {field}"
        );
    }
}

#[test]
fn audit_chain_detects_an_edit_whose_hash_was_recomputed() {
    let mut log = sample_log(5);
    log[2].details = r#"{"hash":"forged"}"#.into();
    log[2].hash = log[2].recompute_hash();
    assert_eq!(
        chain::verify(&log).unwrap_err(),
        ChainError::PrevMismatch { seq: 4 }
    );
}

#[test]
fn audit_chain_detects_a_removed_entry() {
    let mut log = sample_log(5);
    log.remove(1);
    let err = chain::verify(&log).unwrap_err();
    assert_eq!(
        err,
        ChainError::SeqGap {
            expected: 2,
            found: 3
        }
    );
    assert_eq!(err.seq(), 3);
}

#[test]
fn audit_chain_detects_a_removed_entry_with_renumbered_successors() {
    let mut log = sample_log(5);
    log.remove(1);
    for e in log.iter_mut().skip(1) {
        e.seq -= 1;
    }
    assert_eq!(
        chain::verify(&log).unwrap_err(),
        ChainError::HashMismatch { seq: 2 }
    );
}

#[test]
fn audit_chain_detects_an_inserted_entry() {
    let mut log = sample_log(5);
    // A well-formed entry chained onto seq 2, slipped in before the original seq 3.
    let forged = ChainedEntry::new(
        log[1].hash,
        3,
        log[1].at_ms,
        "operator",
        "credential.create",
        "cred-evil",
        "{}",
    );
    log.insert(2, forged);
    assert_eq!(
        chain::verify(&log).unwrap_err(),
        ChainError::SeqGap {
            expected: 4,
            found: 3
        }
    );
}

#[test]
fn audit_chain_detects_reordered_entries() {
    let mut log = sample_log(5);
    log.swap(1, 3);
    assert_eq!(
        chain::verify(&log).unwrap_err(),
        ChainError::SeqGap {
            expected: 2,
            found: 4
        }
    );
    // Reordered and renumbered: content no longer matches the hashes.
    let mut log = sample_log(5);
    log.swap(1, 3);
    log[1].seq = 2;
    log[3].seq = 4;
    assert_eq!(
        chain::verify(&log).unwrap_err(),
        ChainError::HashMismatch { seq: 2 }
    );
}

#[test]
fn audit_chain_resumes_from_a_checkpoint() {
    let log = sample_log(6);
    let summary = chain::verify_from(3, log[2].hash, &log[3..]).unwrap();
    assert_eq!((summary.count, summary.head), (3, log[5].hash));
    assert_eq!(
        chain::verify_from(3, GENESIS, &log[3..]).unwrap_err(),
        ChainError::PrevMismatch { seq: 4 }
    );
}

#[test]
fn audit_entry_hash_separates_fields() {
    // Moving a byte from one field to the next must change the hash.
    let a = chain::entry_hash(&GENESIS, 1, 0, "ab", "c", "", "");
    let b = chain::entry_hash(&GENESIS, 1, 0, "a", "bc", "", "");
    assert_ne!(a, b);
    assert_ne!(
        chain::entry_hash(&GENESIS, 1, 0, "", "", "", ""),
        chain::entry_hash(&GENESIS, 2, 0, "", "", "", "")
    );
}
