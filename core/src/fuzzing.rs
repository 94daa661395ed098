//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, nightly) and
//! for the replay of their committed corpora under plain `cargo test`
//! (`core/tests/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! Each function takes arbitrary bytes, feeds them to one parser a phone or
//! the server exposes to untrusted input, and asserts what must hold for
//! every input: no panic, and whatever parses re-encodes to an equal value.
//! Not part of the stable API.

use crate::api::{
    DecisionRequest, EnrollRequest, EnrollResponse, GrantList, LoginContext, LoginContextRequest,
    Problem,
};
use crate::approval::DevicePublicKey;
use crate::payload::Payload;

/// Device public key of the protocol.md test vectors (RFC 6979 §A.2.5 key).
const VECTOR_DEVICE_KEY: &str = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb67903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex constant"))
        .collect()
}

/// QR payload parser: strict and expiry-free parses never panic, and an
/// accepted payload re-encodes to a URL that parses to the same payload.
pub fn payload(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Payload::parse(text, 1_795_000_000);
    if let Ok(p) = Payload::parse_ignoring_expiry(text) {
        let url = match &p {
            Payload::Login(l) => l.to_url(),
            Payload::Enrollment(e) => e.to_url(),
        };
        assert_eq!(
            Payload::parse_ignoring_expiry(&url),
            Ok(p),
            "re-encoded payload {url} parses differently"
        );
    }
}

/// Approval / enrollment message checks as the server runs them: the
/// device key from SEC1 bytes, then the DER signature over a message. The
/// input is `key (65 bytes) || signature-length byte || signature || message`;
/// inputs too short for a key try the vector key, so the signature parser
/// is always reached. A forged signature must never verify.
pub fn signed_messages(data: &[u8]) {
    let (key, rest) = if data.len() >= 65 {
        match DevicePublicKey::from_sec1(&data[..65]) {
            Ok(k) => (k, &data[65..]),
            Err(_) => (vector_key(), &data[65..]),
        }
    } else {
        let _ = DevicePublicKey::from_sec1(data);
        (vector_key(), data)
    };
    let (sig_len, rest) = match rest.split_first() {
        Some((n, r)) => (usize::from(*n).min(r.len()), r),
        None => return,
    };
    let (sig, message) = rest.split_at(sig_len);
    if key.verify(message, sig).is_ok() {
        // Only reachable with a genuine signature: check it is not malleable
        // into accepting a different message.
        let mut other = message.to_vec();
        other.push(0);
        assert!(
            key.verify(&other, sig).is_err(),
            "one signature verified two messages"
        );
    }
}

fn vector_key() -> DevicePublicKey {
    DevicePublicKey::from_sec1(&unhex(VECTOR_DEVICE_KEY)).expect("vector key is valid")
}

fn json_round_trip<
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
>(
    data: &[u8],
) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_vec(&v).expect("a parsed value serializes");
        let again: T = serde_json::from_slice(&text).expect("what we serialize parses back");
        assert!(
            again == v,
            "JSON round trip changed a {}",
            std::any::type_name::<T>()
        );
    }
}

/// The phone API's JSON bodies (both directions): never panic, and what
/// parses survives a serialize/parse round trip unchanged.
pub fn phone_json(data: &[u8]) {
    json_round_trip::<EnrollRequest>(data);
    json_round_trip::<EnrollResponse>(data);
    json_round_trip::<LoginContextRequest>(data);
    json_round_trip::<LoginContext>(data);
    json_round_trip::<DecisionRequest>(data);
    json_round_trip::<GrantList>(data);
    json_round_trip::<Problem>(data);
}

/// `scan_frame` on an arbitrary camera frame: the first three bytes choose
/// width (1..=128), height (1..=128) and extra row padding (0..=3), the rest
/// is luma (too short or too long must be an error, never a panic).
pub fn scan_frame(data: &[u8]) {
    let [w, h, pad, luma @ ..] = data else { return };
    let width = 1 + u32::from(*w) % 128;
    let height = 1 + u32::from(*h) % 128;
    let stride = width + u32::from(*pad) % 4;
    let _ = crate::scan::scan_frame(luma, width, height, stride);
}
