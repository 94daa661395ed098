//! Signing calls' authorizations, held between calls (issue 11).
//!
//! Why: before it signs, a signHash or signDoc reads its terminal, grant and
//! credential from the store. On SQLite that read is a round trip to the
//! connection's worker thread, on PostgreSQL one to the database, and it
//! cost about a fifth of the server's CPU per signature (on PostgreSQL, the
//! database's own CPU besides). A signature's safety does not rest on that
//! read being fresh: the group commit (`Store::record_signatures`,
//! `store::tally`) checks again, under the write lock and before any
//! signature is returned, everything about the grant and the credential
//! that can change — the grant revoked (also by revoking its terminal or
//! device, which revokes their grants in the same transaction), expired,
//! idled out or capped; the credential revoked. What else the read decides
//! is fixed when the rows are created: the terminal's secret hash, which
//! terminal and practitioner a grant is for, whose a credential is and its
//! certificate.
//!
//! So a call presenting a token the store admitted before is admitted from
//! what was read then, with the same checks in the same order. A check that
//! fails on held rows is never answered from them: the entry is dropped and
//! the call takes the store's path, which gives the exact answer. A record
//! the commit refuses drops the entry too, and is answered with what the
//! store says at that moment ([`super::App::refused_at_commit`]). The
//! entries are also dropped wherever a held signing key is (a grant ends, a
//! terminal, device, practitioner or credential is revoked, here or — by
//! the change feed — on another replica), so a stale entry is rare; it
//! could cost a wasted signature, never a returned one.
//!
//! Bounded ([`HeldAuthorizations::DEFAULT_CAPACITY`] tokens, least recently
//! used dropped first), one credential per token (another credential named
//! with the same token replaces it), never written anywhere. An entry holds
//! no secret: the terminal's secret *hash*, the sealed (KEK-encrypted) key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::{Credential, Grant, Terminal};

/// The rows one token's calls were admitted with.
#[derive(Debug)]
pub(crate) struct HeldAuthorization {
    pub terminal: Terminal,
    grant: Grant,
    pub credential: Arc<Credential>,
    /// The grant's counters as this server last recorded them (never older
    /// than the row read): the idle clock and cap are checked on these.
    signatures_made: AtomicI64,
    last_used_ms: AtomicI64,
    /// Recency, for dropping the least recently used entry when full.
    used: AtomicU64,
}

impl HeldAuthorization {
    /// The grant as read, with the counters this server has recorded since.
    pub(crate) fn grant(&self) -> Grant {
        let mut g = self.grant.clone();
        g.signatures_made = self.signatures_made.load(Ordering::Relaxed);
        g.last_used_ms = self.last_used_ms.load(Ordering::Relaxed);
        g
    }
}

/// Token hash → the rows its calls were admitted with.
pub(crate) struct HeldAuthorizations {
    capacity: usize,
    entries: Mutex<HashMap<Vec<u8>, Arc<HeldAuthorization>>>,
    clock: AtomicU64,
}

impl Default for HeldAuthorizations {
    fn default() -> Self {
        HeldAuthorizations::with_capacity(HeldAuthorizations::DEFAULT_CAPACITY)
    }
}

impl HeldAuthorizations {
    /// Tokens held at most: a grant is one terminal's day, so this is more
    /// than the terminals one replica serves at once; an entry is a few KB.
    pub const DEFAULT_CAPACITY: usize = 4096;

    pub(crate) fn with_capacity(capacity: usize) -> Self {
        HeldAuthorizations { capacity: capacity.max(1), entries: Mutex::default(), clock: AtomicU64::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Arc<HeldAuthorization>>> {
        // A panic while holding the lock cannot leave the map half-changed
        // (every change is one map call), so a poisoned lock is still usable.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rows held for the token whose SHA-256 is `token_hash`.
    pub(crate) fn get(&self, token_hash: &[u8]) -> Option<Arc<HeldAuthorization>> {
        let held = self.lock().get(token_hash).cloned()?;
        held.used.store(self.clock.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        Some(held)
    }

    /// Holds the rows the store just admitted a call with (the caller checked
    /// the credential is the grant's practitioner's and can sign).
    pub(crate) fn hold(&self, token_hash: &[u8], terminal: Terminal, grant: Grant, credential: Arc<Credential>) {
        let held = Arc::new(HeldAuthorization {
            signatures_made: AtomicI64::new(grant.signatures_made),
            last_used_ms: AtomicI64::new(grant.last_used_ms),
            used: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
            terminal,
            grant,
            credential,
        });
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(token_hash) {
            // Full: drop the least recently used (a scan, but only when a new
            // token arrives at a full table, at most once per grant).
            let oldest = entries.iter().min_by_key(|(_, h)| h.used.load(Ordering::Relaxed)).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        entries.insert(token_hash.to_vec(), held);
    }

    /// A record of the token's grant committed: `made` signatures now, the last at `at_ms`.
    pub(crate) fn recorded(&self, token_hash: &[u8], made: i64, at_ms: i64) {
        if let Some(held) = self.lock().get(token_hash) {
            held.signatures_made.fetch_max(made, Ordering::Relaxed);
            held.last_used_ms.fetch_max(at_ms, Ordering::Relaxed);
        }
    }

    /// Drops the token's entry.
    pub(crate) fn release_token(&self, token_hash: &[u8]) {
        self.lock().remove(token_hash);
    }

    /// Drops every entry of grant `grant_id` (it ended).
    pub(crate) fn release_grant(&self, grant_id: &str) {
        self.lock().retain(|_, h| h.grant.id != grant_id);
    }

    /// Drops every entry (a revocation whose grants are not named).
    pub(crate) fn release_all(&self) {
        self.lock().clear();
    }

    /// Tokens held now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(grant: &str) -> (Terminal, Grant, Arc<Credential>) {
        let terminal = Terminal { id: "t".into(), facility_id: "f".into(), name: "EHR".into(), secret_hash: vec![1; 32], created_ms: 0, revoked_ms: None };
        let grant = Grant {
            id: grant.into(),
            practitioner_id: "p".into(),
            terminal_id: "t".into(),
            device_id: "d".into(),
            login_id: "l".into(),
            token_hash: None,
            created_ms: 0,
            expires_ms: 1_000_000,
            last_used_ms: 100,
            idle_timeout_s: Some(60),
            signature_cap: Some(10),
            signatures_made: 3,
            revoked_ms: None,
            revoked_reason: None,
        };
        let credential = Credential {
            id: "c".into(),
            practitioner_id: "p".into(),
            algorithm: "rsa2048".into(),
            sealed_key: vec![2; 8].into(),
            certificate_chain: vec![vec![3; 8]],
            created_ms: 0,
            revoked_ms: None,
            revoked_reason: None,
        };
        (terminal, grant, Arc::new(credential))
    }

    fn hold(h: &HeldAuthorizations, token: &[u8], grant: &str) {
        let (t, g, c) = rows(grant);
        h.hold(token, t, g, c);
    }

    #[test]
    fn a_full_table_drops_the_least_recently_used_token() {
        let h = HeldAuthorizations::with_capacity(2);
        hold(&h, b"a", "g1");
        hold(&h, b"b", "g2");
        assert!(h.get(b"a").is_some()); // b is now the least recently used
        hold(&h, b"c", "g3");
        assert_eq!(h.len(), 2);
        assert!(h.get(b"a").is_some() && h.get(b"c").is_some());
        assert!(h.get(b"b").is_none());
        // Holding a token already held replaces it without dropping another.
        hold(&h, b"c", "g3");
        assert_eq!(h.len(), 2);
        assert!(h.get(b"a").is_some());
    }

    #[test]
    fn recorded_counters_only_move_forward() {
        let h = HeldAuthorizations::default();
        hold(&h, b"a", "g1");
        h.recorded(b"a", 5, 500);
        // A record committed earlier but acknowledged later does not move them back.
        h.recorded(b"a", 4, 400);
        let g = h.get(b"a").unwrap().grant();
        assert_eq!((g.signatures_made, g.last_used_ms), (5, 500));
        // The rest of the row is as read.
        assert_eq!((g.id.as_str(), g.expires_ms, g.signature_cap), ("g1", 1_000_000, Some(10)));
        // Nothing held for an unknown token: nothing happens.
        h.recorded(b"zz", 9, 900);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn releasing_a_grant_drops_only_its_tokens() {
        let h = HeldAuthorizations::default();
        hold(&h, b"a", "g1");
        hold(&h, b"b", "g1");
        hold(&h, b"c", "g2");
        h.release_grant("g1");
        assert_eq!(h.len(), 1);
        assert!(h.get(b"c").is_some());
        h.release_token(b"c");
        assert_eq!(h.len(), 0);
        hold(&h, b"d", "g3");
        h.release_all();
        assert_eq!(h.len(), 0);
    }
}
