//! The audit log's hash-chain format, kept pure (no storage) so that the
//! SQLite and PostgreSQL stores, `shomei admin audit verify` and an auditor
//! holding an export all compute exactly the same thing.
//!
//! Each entry commits to its predecessor:
//!
//! ```text
//! hash_n = SHA-256( "shomei.audit.chain.v1" 0x00
//!                   || prev_hash (32 bytes)
//!                   || seq as i64 big-endian || at_ms as i64 big-endian
//!                   || for each of actor, action, subject, details:
//!                        u64 big-endian byte length || UTF-8 bytes )
//! prev_hash_1 = GENESIS (32 zero bytes); prev_hash_n = hash_(n-1); seq starts at 1.
//! ```
//!
//! Length prefixes make the encoding injective (no two field splits give
//! the same bytes); the domain tag keeps these hashes from colliding with
//! any other SHA-256 use in the system. Editing a field, removing,
//! inserting or reordering entries all break either the seq sequence, a
//! prev link, or a recomputed hash. Dropping entries from the *end* cannot
//! be seen from the chain alone: compare [`ChainSummary::head`] with a head
//! recorded elsewhere (an export, a log line, a witness).

use aws_lc_rs::digest::{Context, SHA256};

/// `prev_hash` of the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// Domain separation tag (with its terminating NUL).
const DOMAIN_TAG: &[u8] = b"shomei.audit.chain.v1\0";

/// One audit entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEntry {
    /// Position in the log, contiguous from 1.
    pub seq: i64,
    /// Time of the event, Unix milliseconds.
    pub at_ms: i64,
    /// Who did it (`operator`, `terminal:<id>`, `device:<id>`, `system`).
    pub actor: String,
    /// What happened (`credential.create`, `signature.create`, …).
    pub action: String,
    /// What it happened to (an id).
    pub subject: String,
    /// JSON text with the details; hashed as the exact bytes stored.
    pub details: String,
    /// Hash of the previous entry ([`GENESIS`] for seq 1).
    pub prev_hash: [u8; 32],
    /// [`entry_hash`] of this entry.
    pub hash: [u8; 32],
}

impl ChainedEntry {
    /// Build the entry that follows `prev_hash` at `seq`, computing its hash.
    pub fn new(
        prev_hash: [u8; 32],
        seq: i64,
        at_ms: i64,
        actor: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
        details: impl Into<String>,
    ) -> Self {
        let (actor, action, subject, details) =
            (actor.into(), action.into(), subject.into(), details.into());
        let hash = entry_hash(&prev_hash, seq, at_ms, &actor, &action, &subject, &details);
        ChainedEntry {
            seq,
            at_ms,
            actor,
            action,
            subject,
            details,
            prev_hash,
            hash,
        }
    }

    /// Recompute this entry's hash from its fields.
    pub fn recompute_hash(&self) -> [u8; 32] {
        entry_hash(
            &self.prev_hash,
            self.seq,
            self.at_ms,
            &self.actor,
            &self.action,
            &self.subject,
            &self.details,
        )
    }
}

/// The canonical hash of one entry (see the module docs for the encoding).
pub fn entry_hash(
    prev: &[u8; 32],
    seq: i64,
    at_ms: i64,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> [u8; 32] {
    let mut ctx = Context::new(&SHA256);
    ctx.update(DOMAIN_TAG);
    ctx.update(prev);
    ctx.update(&seq.to_be_bytes());
    ctx.update(&at_ms.to_be_bytes());
    for field in [actor, action, subject, details] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    let digest = ctx.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// Result of a successful verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainSummary {
    /// Number of entries verified.
    pub count: u64,
    /// Hash of the last entry (the chain head); [`GENESIS`] for an empty log.
    pub head: [u8; 32],
}

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An entry is missing, duplicated, inserted or moved: seq is not the
    /// next number.
    #[error(
        "audit chain broken at seq {found}: expected seq {expected} (entry removed, inserted or reordered)"
    )]
    SeqGap { expected: i64, found: i64 },
    /// The entry does not point at its predecessor's hash.
    #[error(
        "audit chain broken at seq {seq}: prev_hash does not match the previous entry (entry removed, inserted or reordered)"
    )]
    PrevMismatch { seq: i64 },
    /// The entry's fields do not hash to its stored hash.
    #[error(
        "audit chain broken at seq {seq}: entry content does not match its hash (entry edited)"
    )]
    HashMismatch { seq: i64 },
}

impl ChainError {
    /// The seq at which verification stopped.
    pub fn seq(&self) -> i64 {
        match self {
            ChainError::SeqGap { found, .. } => *found,
            ChainError::PrevMismatch { seq } | ChainError::HashMismatch { seq } => *seq,
        }
    }
}

/// Verify a whole log, which must start at seq 1 after [`GENESIS`].
pub fn verify<'a>(
    entries: impl IntoIterator<Item = &'a ChainedEntry>,
) -> Result<ChainSummary, ChainError> {
    verify_from(0, GENESIS, entries)
}

/// Verify a slice of the log that follows a trusted anchor: the entry with
/// seq `after_seq` whose hash is `after_hash` (use 0 and [`GENESIS`] for the
/// start). Lets a verifier resume from a checkpoint instead of re-reading
/// the whole log.
pub fn verify_from<'a>(
    after_seq: i64,
    after_hash: [u8; 32],
    entries: impl IntoIterator<Item = &'a ChainedEntry>,
) -> Result<ChainSummary, ChainError> {
    let mut prev = after_hash;
    let mut count = 0u64;
    for (e, expected_seq) in entries.into_iter().zip(after_seq + 1..) {
        if e.seq != expected_seq {
            return Err(ChainError::SeqGap {
                expected: expected_seq,
                found: e.seq,
            });
        }
        // Content first: an edited entry should be reported as edited even
        // if the editor also rewrote its prev_hash.
        if e.recompute_hash() != e.hash {
            return Err(ChainError::HashMismatch { seq: e.seq });
        }
        if e.prev_hash != prev {
            return Err(ChainError::PrevMismatch { seq: e.seq });
        }
        prev = e.hash;
        count += 1;
    }
    Ok(ChainSummary { count, head: prev })
}
