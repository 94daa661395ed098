//! `SoftwareKey::load_or_create` against a real OS credential store: Linux
//! kernel keyutils, which needs no desktop session (the same store the desktop
//! simulator uses on headless Linux). Elsewhere, keyring-core's in-memory mock
//! store stands in, with a loud note.

use std::sync::Once;

use shomei_core::approval::DevicePublicKey;
use shomei_core::{KeyError, PlatformKey, SoftwareKey};

static STORE: Once = Once::new();

fn use_store() {
    // Linux credentials (and with them the session keyring) are per thread, and
    // the test harness runs each test on its own thread.
    #[cfg(target_os = "linux")]
    join_fresh_session_keyring();
    STORE.call_once(|| {
        #[cfg(target_os = "linux")]
        {
            let store = linux_keyutils_keyring_store::Store::new().expect("kernel keyutils store");
            keyring_core::set_default_store(store);
        }
        #[cfg(not(target_os = "linux"))]
        {
            eprintln!("NOTE: not Linux; keyring tests use keyring-core's in-memory mock store");
            keyring_core::set_default_store(keyring_core::mock::Store::new().unwrap());
        }
    });
}

/// Gives the calling thread its own anonymous session keyring, as
/// `keyctl session -` would for a shell: containers and login-less shells often have a
/// session keyring the process may not write to (EACCES).
#[cfg(target_os = "linux")]
fn join_fresh_session_keyring() {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL) takes no pointers but the null name.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    assert!(
        id >= 0,
        "keyctl(JOIN_SESSION_KEYRING) failed: {}",
        std::io::Error::last_os_error()
    );
}

fn account() -> String {
    format!("test-{}", uuid::Uuid::new_v4())
}

#[test]
fn stored_key_is_loaded_back_not_regenerated() {
    use_store();
    let account = account();
    let first = SoftwareKey::load_or_create("shomei-core-test", &account).unwrap();
    let second = SoftwareKey::load_or_create("shomei-core-test", &account).unwrap();
    assert_eq!(first.public_key_sec1(), second.public_key_sec1());
    // The reloaded key signs, and the original's public key verifies it.
    let pk = DevicePublicKey::from_sec1(&first.public_key().unwrap()).unwrap();
    pk.verify(b"hello", &second.sign(b"hello").unwrap())
        .unwrap();
    SoftwareKey::delete_stored("shomei-core-test", &account).unwrap();
}

#[test]
fn deleted_key_is_replaced_by_a_new_one() {
    use_store();
    let account = account();
    let first = SoftwareKey::load_or_create("shomei-core-test", &account).unwrap();
    SoftwareKey::delete_stored("shomei-core-test", &account).unwrap();
    let second = SoftwareKey::load_or_create("shomei-core-test", &account).unwrap();
    assert_ne!(first.public_key_sec1(), second.public_key_sec1());
    SoftwareKey::delete_stored("shomei-core-test", &account).unwrap();
}

#[test]
fn corrupt_stored_secret_is_a_typed_error() {
    use_store();
    let account = account();
    keyring_core::Entry::new("shomei-core-test", &account)
        .unwrap()
        .set_secret(b"not pkcs8")
        .unwrap();
    let err = SoftwareKey::load_or_create("shomei-core-test", &account).unwrap_err();
    assert!(matches!(err, KeyError::Failed(_)), "{err:?}");
    SoftwareKey::delete_stored("shomei-core-test", &account).unwrap();
}

#[test]
fn deleting_a_missing_key_is_fine() {
    use_store();
    SoftwareKey::delete_stored("shomei-core-test", &account()).unwrap();
}
