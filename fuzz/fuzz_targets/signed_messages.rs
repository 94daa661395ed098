#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shomei_core::fuzzing::signed_messages(data));
