//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same checks the cargo-fuzz targets run (`shomei_core::fuzzing`), so every
//! input a fuzzer ever kept — seeds from the protocol.md test vectors plus
//! whatever `cargo +nightly fuzz run <target>` added — is re-checked by
//! plain `cargo test` on stable, in every CI run.

use std::path::{Path, PathBuf};

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
    assert!(
        files.len() >= 4,
        "corpus {target} has only {} inputs",
        files.len()
    );
    files
}

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let files = corpus(target);
    for (path, data) in &files {
        let outcome = std::panic::catch_unwind(|| check(data));
        assert!(
            outcome.is_ok(),
            "fuzz input {} fails target {target}",
            path.display()
        );
    }
    files.len()
}

#[test]
fn payload_corpus_parses_without_panic_and_round_trips() {
    replay("payload", shomei_core::fuzzing::payload);
}

#[test]
fn signed_message_corpus_never_panics_and_no_signature_verifies_twice() {
    replay("signed_messages", shomei_core::fuzzing::signed_messages);
}

#[test]
fn phone_json_corpus_parses_without_panic_and_round_trips() {
    replay("phone_json", shomei_core::fuzzing::phone_json);
}

#[test]
fn scan_frame_corpus_never_panics() {
    replay("scan_frame", shomei_core::fuzzing::scan_frame);
}

/// The seeds must reach the interesting paths, not only the early exits.
#[test]
fn seeds_reach_the_accepting_paths() {
    use shomei_core::Payload;
    let parsed = corpus("payload")
        .iter()
        .filter(|(_, d)| {
            std::str::from_utf8(d).is_ok_and(|s| Payload::parse_ignoring_expiry(s).is_ok())
        })
        .count();
    assert!(
        parsed >= 2,
        "login and enrollment vector URLs are in the corpus"
    );
    let decoded = corpus("scan_frame")
        .iter()
        // The fuzz target reads its geometry from the first 3 bytes; shorter inputs are corpus
        // entries too (the target ignores them), but hold no frame.
        .filter(|(_, d)| d.len() >= 3)
        .filter(|(_, d)| {
            let (w, h, pad) = (
                1 + u32::from(d[0]) % 128,
                1 + u32::from(d[1]) % 128,
                u32::from(d[2]) % 4,
            );
            matches!(
                shomei_core::scan::scan_frame(&d[3..], w, h, w + pad),
                Ok(shomei_core::scan::ScanOutcome::Shomei(_))
            )
        })
        .count();
    assert!(
        decoded >= 1,
        "a frame holding a real Shomei QR is in the scan_frame corpus"
    );
}

/// Writes the scan_frame seed holding the protocol.md login QR (run once
/// with `--ignored` after changing the vectors).
#[test]
#[ignore]
fn write_scan_frame_qr_seed() {
    let url = "https://shomei.example.jp/shomei#EQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fav2GwA";
    let code = qrcode::QrCode::new(url.as_bytes()).unwrap();
    let modules = code.width() as u32;
    let quiet = 4u32;
    let scale = 2u32;
    let side = (modules + 2 * quiet) * scale;
    assert!(side <= 128, "{side}");
    let colors = code.to_colors();
    let mut data = vec![(side - 1) as u8, (side - 1) as u8, 0];
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = (
                (x / scale) as i64 - quiet as i64,
                (y / scale) as i64 - quiet as i64,
            );
            let dark = mx >= 0
                && my >= 0
                && (mx as u32) < modules
                && (my as u32) < modules
                && colors[(my as u32 * modules + mx as u32) as usize] == qrcode::Color::Dark;
            data.push(if dark { 0 } else { 255 });
        }
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/scan_frame");
    std::fs::write(dir.join("seed-login-vector-qr"), data).unwrap();
}
