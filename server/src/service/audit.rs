//! Reading the audit log back: verification of the hash chain, against
//! signed checkpoints kept outside the database, reconciliation of each
//! grant's signature counter with its signature records, and export as
//! JSON lines an auditor can re-verify independently.
//!
//! Checkpoints (see [`crate::audit::checkpoint`]) are signed by the server
//! audit key, which is generated on first use, sealed under the KEK and kept
//! in the settings table. They are appended to a file outside the database
//! (configurable, `[audit] checkpoint_file`) periodically and on demand.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

use super::{App, Error, Result};
use crate::audit::chain::{ChainedEntry, GENESIS, verify_from};
use crate::audit::checkpoint::{AuditKey, Checkpoint, CheckpointError, sec1_from_pem};

/// Page size when streaming the log out of the store.
const PAGE: i64 = 5000;
/// Settings key of the sealed audit key, and the KEK AAD it is sealed with.
const AUDIT_KEY_SETTING: &str = "audit_key";
const AUDIT_KEY_AAD: &[u8] = b"shomei.audit.key.v1";

/// Outcome of `audit verify`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditReport {
    /// The chain, every checkpoint and the reconciliation hold.
    pub ok: bool,
    pub count: u64,
    /// Hex of the last entry's hash (the head to record elsewhere).
    pub head: String,
    /// Where the chain breaks, if it does.
    pub broken_at_seq: Option<i64>,
    pub error: Option<String>,
    /// One result per checkpoint given (`audit verify --checkpoint FILE`).
    #[serde(default)]
    pub checkpoints: Vec<CheckpointResult>,
    /// Grants whose `signatures_made` differs from their signature records.
    #[serde(default)]
    pub signature_mismatches: Vec<SignatureMismatch>,
}

/// How one checkpoint held up.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointResult {
    pub seq: i64,
    pub key_id: String,
    pub ok: bool,
    /// `malformed` | `unknown_key` | `signature_invalid` | `truncated` | `rewritten`.
    pub failure: Option<String>,
    pub error: Option<String>,
}

/// A grant whose counter and audit records disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignatureMismatch {
    pub grant: String,
    /// The grant row's counter (`None`: records name a grant that does not exist).
    pub signatures_made: Option<i64>,
    /// `signature.create` audit entries naming the grant.
    pub signature_records: i64,
}

/// `GET /admin/v1/audit/key`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditKeyView {
    pub key_id: String,
    pub public_key_pem: String,
}

/// Where checkpoints go and the audit key, shared by the periodic writer
/// and on-demand requests.
#[derive(Debug, Default)]
pub struct CheckpointSink {
    file: OnceLock<PathBuf>,
    key: tokio::sync::OnceCell<AuditKey>,
    /// Seq of the last checkpoint this process wrote (periodic runs skip an unchanged head).
    last_seq: AtomicI64,
    write: tokio::sync::Mutex<()>,
}

impl CheckpointSink {
    /// Sets the file checkpoints are appended to (once, at start).
    pub fn set_file(&self, path: PathBuf) {
        let _ = self.file.set(path);
    }

    /// The configured checkpoint file.
    pub fn file(&self) -> Option<&PathBuf> {
        self.file.get()
    }
}

fn result_of(cp: &Checkpoint, r: std::result::Result<(), CheckpointError>) -> CheckpointResult {
    CheckpointResult {
        seq: cp.seq,
        key_id: cp.key_id.clone(),
        ok: r.is_ok(),
        failure: r.as_ref().err().map(|e| e.kind().to_owned()),
        error: r.err().map(|e| e.to_string()),
    }
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
    /// The server audit key: loaded from the settings table (sealed under
    /// the KEK), or generated and stored on first use. With several
    /// replicas the first stored key wins.
    pub async fn audit_key(&self) -> Result<&AuditKey> {
        self.checkpoints.key.get_or_try_init(|| self.load_audit_key()).await
    }

    async fn load_audit_key(&self) -> Result<AuditKey> {
        let sealed = match self.store.get_setting(AUDIT_KEY_SETTING).await? {
            Some(s) => s,
            None => {
                let (_, der) = AuditKey::generate().map_err(|e| Error::Internal(e.to_string()))?;
                let sealed = self.kek.seal(&der, AUDIT_KEY_AAD);
                // With several replicas the first stored key wins; everyone uses it.
                self.store.put_setting_if_absent(AUDIT_KEY_SETTING, &sealed).await?
            }
        };
        let der = self.kek.open(&sealed, AUDIT_KEY_AAD).map_err(|e| Error::Internal(format!("audit key: {e}")))?;
        AuditKey::from_pkcs8(&der).map_err(|e| Error::Internal(e.to_string()))
    }

    /// The audit public key (`shomei admin audit key`).
    pub async fn audit_key_view(&self) -> Result<AuditKeyView> {
        let k = self.audit_key().await?;
        Ok(AuditKeyView { key_id: k.key_id().to_owned(), public_key_pem: k.public_pem() })
    }

    /// Signs a checkpoint of the current head and appends it to the
    /// checkpoint file (if configured). An empty log gives seq 0 and the
    /// genesis hash.
    pub async fn audit_checkpoint(&self) -> Result<Checkpoint> {
        let _one_writer = self.checkpoints.write.lock().await;
        let key = self.audit_key().await?;
        let (seq, head) = match self.store.audit_head().await? {
            Some(e) => (e.seq, e.hash),
            None => (0, GENESIS),
        };
        let cp = key.sign(seq, &head, self.clock.now_ms());
        if let Some(path) = self.checkpoints.file().cloned() {
            let line = format!("{}\n", serde_json::to_string(&cp).expect("json"));
            tokio::task::spawn_blocking(move || append_line(&path, &line))
                .await
                .map_err(|e| Error::Internal(format!("checkpoint writer: {e}")))?
                .map_err(|e| Error::Internal(format!("cannot append to the checkpoint file: {e}")))?;
        }
        self.checkpoints.last_seq.store(seq, Ordering::Relaxed);
        tracing::info!(seq, key_id = %cp.key_id, "audit checkpoint signed");
        Ok(cp)
    }

    /// The periodic run: a checkpoint only if the log grew since this
    /// process's last one.
    pub async fn audit_checkpoint_if_moved(&self) -> Result<Option<Checkpoint>> {
        let seq = self.store.audit_head().await?.map_or(0, |e| e.seq);
        if seq == 0 || seq == self.checkpoints.last_seq.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.audit_checkpoint().await.map(Some)
    }

    /// Verifies the whole chain, page by page; reconciles grants.
    pub async fn audit_verify(&self) -> Result<AuditReport> {
        self.audit_verify_with(&[], None).await
    }

    /// Verifies the whole chain, each checkpoint against it (signature with
    /// the server's audit key, or with `trusted_pem` when given), and each
    /// grant's `signatures_made` against its `signature.create` records.
    pub async fn audit_verify_with(&self, checkpoints: &[Checkpoint], trusted_pem: Option<&str>) -> Result<AuditReport> {
        let trusted = match trusted_pem {
            Some(pem) => sec1_from_pem(pem).map_err(|e| Error::BadRequest(e.to_string()))?,
            None if checkpoints.is_empty() => Vec::new(),
            None => self.audit_key().await?.public_sec1(),
        };
        // Checkpoints whose signature fails are not compared with anything.
        let mut results: Vec<Option<CheckpointResult>> = Vec::with_capacity(checkpoints.len());
        let mut want: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, cp) in checkpoints.iter().enumerate() {
            match cp.verify_signature(&trusted) {
                Ok(()) if cp.seq == 0 => results.push(Some(result_of(cp, if cp.head == hex::encode(GENESIS) { Ok(()) } else { Err(CheckpointError::Rewritten { seq: 0 }) }))),
                Ok(()) => {
                    results.push(None);
                    want.entry(cp.seq).or_default().push(i);
                }
                Err(e) => results.push(Some(result_of(cp, Err(e)))),
            }
        }
        let (mut after_seq, mut head, mut count) = (0i64, GENESIS, 0u64);
        let mut records: BTreeMap<String, i64> = BTreeMap::new();
        let mut broken: Option<(i64, String)> = None;
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
                    broken = Some((e.seq(), e.to_string()));
                    break;
                }
            }
            for e in &page {
                if let Some(idx) = want.get(&e.seq) {
                    for &i in idx {
                        let r = if hex::encode(e.hash) == checkpoints[i].head { Ok(()) } else { Err(CheckpointError::Rewritten { seq: e.seq }) };
                        results[i] = Some(result_of(&checkpoints[i], r));
                    }
                }
                count_signature_record(e, &mut records);
            }
        }
        // Checkpoints beyond the verified end: the tail is gone (or the chain broke before them).
        for (i, r) in results.iter_mut().enumerate() {
            if r.is_none() {
                *r = Some(result_of(&checkpoints[i], Err(CheckpointError::Truncated { checkpoint_seq: checkpoints[i].seq, last_seq: after_seq })));
            }
        }
        let checkpoints: Vec<CheckpointResult> = results.into_iter().flatten().collect();
        let signature_mismatches = if broken.is_none() { self.reconcile(records).await? } else { Vec::new() };
        let ok = broken.is_none() && checkpoints.iter().all(|c| c.ok) && signature_mismatches.is_empty();
        let error = match (&broken, checkpoints.iter().find(|c| !c.ok), signature_mismatches.first()) {
            (Some((_, e)), _, _) => Some(e.clone()),
            (None, Some(c), _) => c.error.clone(),
            (None, None, Some(m)) => Some(format!(
                "grant {} records {} signatures in the audit log but its counter says {}",
                m.grant,
                m.signature_records,
                m.signatures_made.map_or("nothing (no such grant)".to_owned(), |n| n.to_string())
            )),
            _ => None,
        };
        Ok(AuditReport { ok, count, head: hex::encode(head), broken_at_seq: broken.map(|b| b.0), error, checkpoints, signature_mismatches })
    }

    /// Compares every grant's counter with its signature records.
    async fn reconcile(&self, mut records: BTreeMap<String, i64>) -> Result<Vec<SignatureMismatch>> {
        let mut out = Vec::new();
        for g in self.store.list_grants(None, None).await? {
            let n = records.remove(&g.id).unwrap_or(0);
            if n != g.signatures_made {
                out.push(SignatureMismatch { grant: g.id, signatures_made: Some(g.signatures_made), signature_records: n });
            }
        }
        out.extend(records.into_iter().map(|(grant, n)| SignatureMismatch { grant, signatures_made: None, signature_records: n }));
        Ok(out)
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

/// Counts `signature.create` entries per grant (details: `{ "grant": id, … }`).
fn count_signature_record(e: &ChainedEntry, records: &mut BTreeMap<String, i64>) {
    if e.action != "signature.create" {
        return;
    }
    let grant = serde_json::from_str::<serde_json::Value>(&e.details).ok().and_then(|v| v["grant"].as_str().map(str::to_owned));
    *records.entry(grant.unwrap_or_else(|| "(no grant)".to_owned())).or_default() += 1;
}

fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(line.as_bytes())?;
    f.sync_all()
}
