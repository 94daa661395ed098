//! The workspace's own `uniffi-bindgen`.
//!
//! Generated Kotlin/Swift must come from exactly the uniffi version the
//! `shomei-mobile` library was built with (the FFI checksums differ between
//! versions), so the generator is built from this workspace instead of a
//! globally installed binary.

fn main() {
    uniffi::uniffi_bindgen_main()
}
