//! Reading the audit log back: verification of the hash chain and export
//! as JSON lines an auditor can re-verify independently.

use serde::{Deserialize, Serialize};

use super::{App, Result};
use crate::audit::chain::{ChainedEntry, GENESIS, verify_from};

/// Page size when streaming the log out of the store.
const PAGE: i64 = 5000;

/// Outcome of `audit verify`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditReport {
    pub ok: bool,
    pub count: u64,
    /// Hex of the last entry's hash (the head to record elsewhere).
    pub head: String,
    /// Where the chain breaks, if it does.
    pub broken_at_seq: Option<i64>,
    pub error: Option<String>,
}

/// One exported entry (hashes in hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditLine {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&ChainedEntry> for AuditLine {
    fn from(e: &ChainedEntry) -> Self {
        AuditLine {
            seq: e.seq,
            at_ms: e.at_ms,
            actor: e.actor.clone(),
            action: e.action.clone(),
            subject: e.subject.clone(),
            details: e.details.clone(),
            prev_hash: hex::encode(e.prev_hash),
            hash: hex::encode(e.hash),
        }
    }
}

impl App {
    /// Verifies the whole chain, page by page.
    pub async fn audit_verify(&self) -> Result<AuditReport> {
        let (mut after_seq, mut head, mut count) = (0i64, GENESIS, 0u64);
        loop {
            let page = self.store.audit_entries(after_seq, PAGE).await?;
            if page.is_empty() {
                break;
            }
            match verify_from(after_seq, head, page.iter()) {
                Ok(s) => {
                    count += s.count;
                    head = s.head;
                    after_seq = page.last().map_or(after_seq, |e| e.seq);
                }
                Err(e) => {
                    return Ok(AuditReport { ok: false, count, head: hex::encode(head), broken_at_seq: Some(e.seq()), error: Some(e.to_string()) });
                }
            }
        }
        Ok(AuditReport { ok: true, count, head: hex::encode(head), broken_at_seq: None, error: None })
    }

    /// Every entry after `after_seq`, as JSON lines.
    pub async fn audit_export(&self, after_seq: i64) -> Result<String> {
        let mut out = String::new();
        let mut after = after_seq;
        loop {
            let page = self.store.audit_entries(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in &page {
                out.push_str(&serde_json::to_string(&AuditLine::from(e)).expect("json"));
                out.push('\n');
            }
        }
        Ok(out)
    }
}
