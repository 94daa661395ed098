//! Replays the committed attestation fuzz corpora (`fuzz/corpus/{key_description,
//! android_chain,app_attest}/`) through the same checks the cargo-fuzz
//! targets run (`shomei_attestation::fuzzing`, re-exported as
//! `shomei_server::attestation::fuzzing`), so every input a
//! fuzzer ever kept — seeds from the real device data in
//! tests/data/attestation plus whatever `scripts/fuzz` added — is re-checked
//! by plain `cargo test` on stable in every CI run. The seeds must still
//! verify, so the harness provably reaches the end of both verifiers.

use std::path::{Path, PathBuf};

use shomei_server::attestation::fuzzing;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` on every input of `target`; returns how many returned true.
fn replay<R>(target: &str, check: fn(&[u8]) -> R, verified: fn(&R) -> bool) -> (usize, usize) {
    let files = corpus(target);
    let mut ok = 0;
    for (path, data) in &files {
        match std::panic::catch_unwind(|| check(data)) {
            Ok(r) => ok += usize::from(verified(&r)),
            Err(_) => panic!("fuzz input {} fails target {target}", path.display()),
        }
    }
    (files.len(), ok)
}

#[test]
fn key_description_corpus_parses_without_panic() {
    let (n, _) = replay("key_description", fuzzing::key_description, |_| false);
    assert!(n >= 20, "key_description corpus has only {n} inputs");
}

#[test]
fn android_chain_corpus_never_panics_and_the_real_chains_verify() {
    let (n, verified) = replay("android_chain", fuzzing::android_chain, |v| *v);
    assert!(n >= 20, "android_chain corpus has only {n} inputs");
    // The real device chains (all but the malformed ones in testdata/invalid) verify
    // to Google's roots, so the fuzzer starts from inputs that pass every check.
    assert!(
        verified >= 15,
        "only {verified} of {n} corpus chains verify"
    );
}

#[test]
fn app_attest_corpus_never_panics_and_apples_objects_verify() {
    let (n, verified) = replay("app_attest", fuzzing::app_attest, |v| *v);
    assert!(n >= 4, "app_attest corpus has only {n} inputs");
    assert!(
        verified >= 2,
        "only {verified} of {n} App Attest inputs verify (production and development seeds)"
    );
}

#[test]
fn chain_encoding_round_trips() {
    let certs = vec![vec![1u8, 2, 3], vec![], vec![9; 300]];
    assert_eq!(fuzzing::split_chain(&fuzzing::join_chain(&certs)), certs);
}
