//! Demo sessions: the browser's only handle on a login the server runs
//! for it as the demo terminal.
//!
//! Why in-process and not a terminal secret in the page: the page is
//! public, so whatever credential it held would let anyone act as the
//! terminal; and the seeded client secret exists only on the seeding run,
//! so a page that needed it would stop working when `serve --demo`
//! restarts on the same data directory. Instead the demo routes call the
//! same domain services a terminal's requests reach (start_login,
//! poll_token, authorize_grant, csc_sign_doc) with the demo terminal's row,
//! so every state change is audited as `terminal:<id>` exactly as for a
//! real terminal. The device code and the grant's access token stay in
//! this table (server memory); the browser holds a random 256-bit handle in
//! an HttpOnly cookie, bound to one login and expiring with it.
//!
//! Bounded: at most [`MAX_SESSIONS`] live sessions of [`SESSION_TTL_S`]
//! each (expired ones are dropped on every start); a full table refuses new
//! ones with `rate_limited` until the oldest expires, so `--demo` cannot be
//! used to grow the server's memory.

use std::collections::HashMap;
use std::sync::Mutex;

use zeroize::Zeroizing;

use crate::service::login::Approver;
use crate::service::{Error, Result, b64u, random_bytes, sha256};

/// Most live demo sessions.
pub const MAX_SESSIONS: usize = 16;
/// Lifetime of a demo session (the login, the approval and a few signatures).
pub const SESSION_TTL_S: i64 = 600;

/// The grant a session collected.
#[derive(Clone)]
pub(super) struct Held {
    pub access_token: Zeroizing<String>,
    pub grant_id: String,
    pub practitioner: Approver,
    pub expires_ms: i64,
}

/// One session's state.
#[derive(Clone)]
pub(super) struct Session {
    pub login_id: String,
    pub device_code: Zeroizing<String>,
    pub expires_ms: i64,
    pub held: Option<Held>,
}

/// The live sessions, by SHA-256 of their handle (the handle itself is
/// never stored, so a memory dump does not hand out live cookies).
#[derive(Default)]
pub struct Sessions {
    by_handle: Mutex<HashMap<Vec<u8>, Session>>,
}

fn key(handle: &str) -> Vec<u8> {
    sha256(handle.as_bytes())
}

impl Sessions {
    /// Stores `s` under a new random handle (returned); `replaces` (the
    /// browser's previous handle) is dropped first.
    pub(super) fn insert(&self, s: Session, replaces: Option<&str>, now_ms: i64) -> Result<String> {
        let mut map = self.by_handle.lock().expect("demo sessions lock");
        if let Some(old) = replaces {
            map.remove(&key(old));
        }
        map.retain(|_, s| s.expires_ms > now_ms);
        if map.len() >= MAX_SESSIONS {
            let oldest = map.values().map(|s| s.expires_ms).min().unwrap_or(now_ms);
            return Err(Error::RateLimited {
                what: "demo sessions (at most 16 live)",
                retry_after_s: ((oldest - now_ms).max(1000) / 1000) as u64,
            });
        }
        let handle = b64u(&random_bytes::<32>());
        map.insert(key(&handle), s);
        Ok(handle)
    }

    /// Whether there is room for one more session without evicting a live
    /// one (checked before a login is started for it).
    pub(super) fn has_room(&self, replaces: Option<&str>, now_ms: i64) -> Result<()> {
        let map = self.by_handle.lock().expect("demo sessions lock");
        let live = map
            .iter()
            .filter(|(k, s)| s.expires_ms > now_ms && replaces.is_none_or(|r| **k != key(r)))
            .count();
        if live >= MAX_SESSIONS {
            let oldest = map
                .values()
                .filter(|s| s.expires_ms > now_ms)
                .map(|s| s.expires_ms)
                .min()
                .unwrap_or(now_ms);
            return Err(Error::RateLimited {
                what: "demo sessions (at most 16 live)",
                retry_after_s: ((oldest - now_ms).max(1000) / 1000) as u64,
            });
        }
        Ok(())
    }

    /// The live session of `handle` (an expired one is dropped).
    pub(super) fn get(&self, handle: Option<&str>, now_ms: i64) -> Result<Session> {
        let handle = handle.ok_or(Error::DemoSessionUnknown)?;
        let mut map = self.by_handle.lock().expect("demo sessions lock");
        let k = key(handle);
        match map.get(&k) {
            Some(s) if s.expires_ms > now_ms => Ok(s.clone()),
            Some(_) => {
                map.remove(&k);
                Err(Error::DemoSessionUnknown)
            }
            None => Err(Error::DemoSessionUnknown),
        }
    }

    /// Records the grant a session collected.
    pub(super) fn hold(&self, handle: &str, held: Held) -> Result<()> {
        let mut map = self.by_handle.lock().expect("demo sessions lock");
        let s = map.get_mut(&key(handle)).ok_or(Error::DemoSessionUnknown)?;
        s.held = Some(held);
        Ok(())
    }

    /// Forgets a session (the page's "end").
    pub(super) fn remove(&self, handle: &str) -> bool {
        self.by_handle
            .lock()
            .expect("demo sessions lock")
            .remove(&key(handle))
            .is_some()
    }

    /// Live sessions (tests).
    pub fn live(&self, now_ms: i64) -> usize {
        self.by_handle
            .lock()
            .expect("demo sessions lock")
            .values()
            .filter(|s| s.expires_ms > now_ms)
            .count()
    }
}
