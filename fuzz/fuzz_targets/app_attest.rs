#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = shomei_attestation::fuzzing::app_attest(data);
});
