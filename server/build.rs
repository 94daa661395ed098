//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds
//! the migration directories at compile time, and Cargo notices a changed
//! file but not a new one. Without this, an incremental build after a new
//! migration keeps the old list, and a database migrated by another build
//! is refused (`VersionMissing`).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
