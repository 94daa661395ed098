//! Where the desktop phone keeps its P-256 device key.
//!
//! A real phone keeps its key in the Android Keystore or the Secure Enclave; the desktop phone
//! uses keyring-core (through core's `SoftwareKey::load_or_create`), and this module chooses
//! which keyring-core store backs it. keyring-core's default store is process-global, so the
//! choice is made once per process.
//!
//! - `keyutils` (Linux default): the kernel key retention service. Works headless (no D-Bus,
//!   no desktop keyring) but is in-memory only: keys are gone after a reboot or when the
//!   session keyring goes away, and the phone must then enroll again. In a container or a
//!   login-less shell, run commands under one session: `keyctl session - bash`.
//! - `file`: keyring-core's sample store backed by a file in the state directory. Not secure
//!   (the key sits in a plain file), but persistent and available everywhere: for demos.
//! - `memory`: keyring-core's sample store without backing; the key lives as long as the
//!   process. What the in-process e2e tests use.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

/// Which keyring-core store holds the desktop phone's device key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyStoreKind {
    /// Linux kernel keyutils (session keyring): headless, not persisted across reboots.
    Keyutils,
    /// A plain file in the state directory (keyring-core's sample store): demos only.
    File,
    /// Process memory only: tests.
    Memory,
}

impl KeyStoreKind {
    /// keyutils on Linux, the file store elsewhere (no platform store is wired up there yet).
    pub fn platform_default() -> Self {
        if cfg!(target_os = "linux") {
            KeyStoreKind::Keyutils
        } else {
            KeyStoreKind::File
        }
    }
}

/// Errors choosing or opening a key store.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("the {0:?} key store is not available on this platform")]
    Unsupported(KeyStoreKind),
    #[error("key store already set to {set:?} in this process; cannot switch to {wanted:?}")]
    AlreadySet { set: KeyStoreKind, wanted: KeyStoreKind },
    #[error("key store: {0}")]
    Store(#[from] keyring_core::Error),
}

static CHOSEN: OnceLock<KeyStoreKind> = OnceLock::new();
/// The sample store with a backing file must be saved explicitly: the global default store is
/// never dropped, so keyring-core would never write it.
static FILE_STORE: Mutex<Option<Arc<keyring_core::sample::Store>>> = Mutex::new(None);

/// Makes `kind` keyring-core's default store for this process (idempotent for the same kind).
pub fn install(kind: KeyStoreKind, state_dir: &Path) -> Result<(), KeyStoreError> {
    if let Some(set) = CHOSEN.get() {
        return if *set == kind {
            Ok(())
        } else {
            Err(KeyStoreError::AlreadySet { set: *set, wanted: kind })
        };
    }
    match kind {
        KeyStoreKind::Keyutils => {
            #[cfg(target_os = "linux")]
            {
                keyring_core::set_default_store(linux_keyutils_keyring_store::Store::new()?);
            }
            #[cfg(not(target_os = "linux"))]
            return Err(KeyStoreError::Unsupported(kind));
        }
        KeyStoreKind::File => {
            let path = state_dir.join("device-key.ron");
            let store = keyring_core::sample::Store::new_with_backing(&path.to_string_lossy())?;
            *FILE_STORE.lock().unwrap_or_else(|e| e.into_inner()) = Some(store.clone());
            keyring_core::set_default_store(store);
        }
        KeyStoreKind::Memory => {
            keyring_core::set_default_store(keyring_core::sample::Store::new()?);
        }
    }
    let _ = CHOSEN.set(kind);
    Ok(())
}

/// Writes the file-backed store to disk (no-op for the other stores).
pub fn persist() -> Result<(), KeyStoreError> {
    if let Some(store) = FILE_STORE.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        store.save()?;
    }
    Ok(())
}
