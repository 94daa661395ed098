//! Entry points for the attestation fuzz targets in `fuzz/` (cargo-fuzz,
//! nightly) and for the replay of their committed corpora under plain
//! `cargo test` (`server/tests/server/attestation_corpus.rs`), so both run
//! exactly the same checks on the parsers a phone's enrollment feeds with
//! untrusted bytes: the KeyDescription DER, the Android certificate chain
//! and the App Attest CBOR object. Not part of the stable API.
//!
//! What must hold for every input: no panic; a verified chain or object
//! only ever chains to the built-in roots (checked by the verifiers), and
//! what verified serializes to facts that read back equal (the device
//! record stores them as JSON).

use super::android_key::{
    AndroidKeyFacts, KEY_DESCRIPTION_OID, check_android_policy, parse_key_description,
    verify_android_key,
};
use super::app_attest::{AllowedApps, AppAttestFacts, verify_app_attest};
use super::chain::{ValidityCheck, parse_certificate};
use super::policy::{AndroidPolicy, Trust};

/// Most certificates [`split_chain`] yields: one more than any chain the
/// verifier accepts, so its length refusal is reached too.
pub const MAX_FUZZ_CERTS: usize = super::chain::MAX_CHAIN_LEN + 1;

/// The KeyDescription parser alone: never panics, and parses deterministically.
pub fn key_description(data: &[u8]) {
    let a = parse_key_description(data);
    let b = parse_key_description(data);
    assert_eq!(a.is_ok(), b.is_ok());
    if let (Ok(a), Ok(b)) = (a, b) {
        assert_eq!(a, b);
    }
}

/// Encodes a chain as the [`android_chain`] target reads it: each
/// certificate as a big-endian u16 length and its DER.
pub fn join_chain(certs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in certs {
        let len = u16::try_from(c.len()).expect("certificate under 64 KiB");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

/// Inverse of [`join_chain`] on arbitrary bytes (a short last piece is kept as is).
pub fn split_chain(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < MAX_FUZZ_CERTS {
        let len = u16::from_be_bytes([data[0], data[1]]) as usize;
        let end = (2 + len).min(data.len());
        out.push(data[2..end].to_vec());
        data = &data[end..];
    }
    out
}

/// The attestation challenge the leaf claims, so that a real chain reaches
/// the end of verification (the fuzzer cannot guess 32 bytes).
fn claimed_challenge(leaf: &[u8]) -> Vec<u8> {
    let Ok(cert) = parse_certificate(0, leaf) else {
        return vec![0; 32];
    };
    cert.extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == KEY_DESCRIPTION_OID)
        .and_then(|e| parse_key_description(e.value).ok())
        .map(|kd| kd.attestation_challenge)
        .unwrap_or_else(|| vec![0; 32])
}

/// Android Key Attestation as enrollment runs it (chain to Google's roots,
/// KeyDescription, the policy checks), on a [`join_chain`]-encoded chain,
/// without the time check (the captured chains have expired). Returns
/// whether the chain verified (the corpus replay checks the real chains do).
pub fn android_chain(data: &[u8]) -> bool {
    let certs = split_chain(data);
    let challenge = certs
        .first()
        .map(|l| claimed_challenge(l))
        .unwrap_or_default();
    let trust = Trust::default();
    let Ok(facts) = verify_android_key(
        &certs,
        &challenge,
        &trust.android,
        ValidityCheck::SkipForCapturedVectors,
        None,
    ) else {
        return false;
    };
    let strict = AndroidPolicy {
        require_strongbox: true,
        require_user_auth: true,
        require_locked_bootloader: true,
        require_verified_boot: true,
        ..AndroidPolicy::default()
    };
    let _ = check_android_policy(&facts, None, &AndroidPolicy::default());
    let _ = check_android_policy(&facts, None, &strict);
    let json = serde_json::to_value(&facts).expect("facts serialize");
    let back: AndroidKeyFacts = serde_json::from_value(json).expect("facts read back");
    assert_eq!(back, facts);
    true
}

/// Splits an App Attest fuzz input: `n: u8 ‖ clientDataHash (n bytes) ‖
/// key_id (32) ‖ rpIdHash (32) ‖ attestation object (CBOR)`. Inputs too
/// short for that header are taken as the object alone, with zero values.
pub fn split_app_attest(data: &[u8]) -> (&[u8], &[u8], [u8; 32], &[u8]) {
    const ZERO: &[u8] = &[0; 32];
    if let Some((&n, rest)) = data.split_first() {
        let n = n as usize;
        if rest.len() >= n + 64 {
            let (cdh, rest) = rest.split_at(n);
            let (key_id, rest) = rest.split_at(32);
            let (rp, object) = rest.split_at(32);
            return (cdh, key_id, rp.try_into().expect("32 bytes"), object);
        }
    }
    (ZERO, ZERO, [0; 32], data)
}

/// App Attest as enrollment runs it, on a [`split_app_attest`] input (the
/// real objects in the corpus carry their own clientDataHash, key id and
/// rpIdHash, so they verify to the end); development AAGUIDs allowed, no
/// time check. Returns whether the object verified.
pub fn app_attest(data: &[u8]) -> bool {
    let trust = Trust::default();
    let (cdh, key_id, rp, object) = split_app_attest(data);
    let apps = AllowedApps::from_rp_id_hash("fuzz", rp);
    let Ok(facts) = verify_app_attest(
        object,
        key_id,
        cdh,
        &apps,
        true,
        &trust.apple,
        ValidityCheck::SkipForCapturedVectors,
    ) else {
        return false;
    };
    let json = serde_json::to_value(&facts).expect("facts serialize");
    let back: AppAttestFacts = serde_json::from_value(json).expect("facts read back");
    assert_eq!(back, facts);
    true
}
