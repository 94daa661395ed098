//! Signing with a grant (CSC v2 credentials/list, credentials/info,
//! signatures/signHash), and the group-commit audit writer that records
//! every signature before it is returned.
//!
//! Why a writer task: a hash-chained append is a serial point (each entry
//! needs its predecessor's hash), and one fsync'ed transaction per request
//! caps throughput at a few thousand per second. Requests hand their
//! records to [`SignatureLog`]; it takes whatever has queued up, commits
//! it in ONE transaction, and only then wakes each waiting request.
//!
//! A small signHash call with a software key hands its record *before* it
//! signs and signs while the record commits: the call waits for the
//! longer of the two, not their sum. Before, with 32 callers on two cores,
//! every caller spent a commit's time (≈2.4 ms on PostgreSQL) with its
//! signature done and nothing to compute, and the cores sat idle 10–15 %
//! of the time (docs/performance.md). The security rule is unchanged: no
//! signature leaves before its record is committed, and a record the
//! commit refuses (revoked, capped, ended) drops its signature unreturned.
//! The key is opened and the request checked before the record is handed
//! (`SigningBackend::prepare_held`), so what can fail then fails before
//! anything is recorded; were the signing itself to fail after its record
//! committed, the call appends a `signature.failed` entry naming the
//! committed one's grant and hashes and answers an internal error.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::grant::check_usable;
use super::{App, Error, Result};
use crate::signing::{CertificateStatus, KeyAlgorithm, KeyHold, SealedKey, SignatureAlgorithm, certificate_info};
use crate::store::{Credential, Grant, RecordOutcome, SignatureRecord, Store, Terminal};

/// Most records committed in one transaction.
const MAX_BATCH: usize = 256;
/// Most hashes in one signHash call.
pub const MAX_HASHES: usize = 1000;
/// Calls with at most this many hashes sign on the request's own thread.
const INLINE_SIGNATURES: usize = 4;

type Reply = oneshot::Sender<std::result::Result<RecordOutcome, String>>;

/// Longest a batch waits for more records (see [`SignatureLog`]).
const GATHER: std::time::Duration = std::time::Duration::from_micros(1_000);

/// Handle to the audit group-commit writer.
///
/// Records that arrive just after a batch was taken would each start,
/// alone or nearly, the next commit; the writer waits for more instead (at
/// most [`GATHER`] from the batch's first record), as PostgreSQL's
/// `commit_delay` with `commit_siblings` does, but only when more are
/// likely: while calls that sign before they record are signing
/// ([`SignatureLog::coming`]), or when the previous batch held more than
/// one record (concurrent callers; their next calls are on their way).
/// A lone call on a quiet server commits at once. Under load this makes
/// fewer, fuller commits — every commit's statements and hand-offs cost
/// CPU the signatures need.
pub(crate) struct SignatureLog {
    tx: mpsc::Sender<(SignatureRecord, Reply)>,
    /// Bumped after each committed batch: wakes the phones following the
    /// signing log (`signing_log`).
    recorded: tokio::sync::watch::Sender<u64>,
    /// Signing calls between [`SignatureLog::coming`] and their record.
    coming: Arc<Coming>,
}

/// Calls whose record is on its way, and a wake-up each time one arrives or gives up.
#[derive(Default)]
struct Coming {
    calls: std::sync::atomic::AtomicUsize,
    changed: tokio::sync::Notify,
}

/// A signing call whose record is on its way (see [`SignatureLog::coming`]).
pub(crate) struct OnItsWay {
    coming: Arc<Coming>,
}

impl Drop for OnItsWay {
    fn drop(&mut self) {
        self.coming.calls.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.coming.changed.notify_one();
    }
}

impl SignatureLog {
    pub(crate) fn spawn(store: Arc<dyn Store>, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let (tx, mut rx) = mpsc::channel::<(SignatureRecord, Reply)>(4096);
        let (recorded, _) = tokio::sync::watch::channel(0u64);
        let wake = recorded.clone();
        let coming = Arc::new(Coming::default());
        let gather = coming.clone();
        tokio::spawn(async move {
            let mut busy = false;
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let until = tokio::time::Instant::now() + GATHER;
                loop {
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(item) => batch.push(item),
                            Err(_) => break,
                        }
                    }
                    if batch.len() >= MAX_BATCH || (!busy && gather.calls.load(std::sync::atomic::Ordering::Acquire) == 0) {
                        break;
                    }
                    tokio::select! {
                        item = rx.recv() => match item {
                            Some(item) => batch.push(item),
                            None => break,
                        },
                        () = gather.changed.notified() => {}
                        () = tokio::time::sleep_until(until) => break,
                    }
                }
                busy = batch.len() > 1;
                let (records, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let started = std::time::Instant::now();
                let count = records.len();
                let committed = store.record_signatures(records).await;
                metrics.audit_commit(count, started.elapsed(), committed.is_ok());
                match committed {
                    Ok(outcomes) => {
                        wake.send_modify(|n| *n = n.wrapping_add(1));
                        for (reply, o) in replies.into_iter().zip(outcomes) {
                            let _ = reply.send(Ok(o));
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "recording signatures failed");
                        for reply in replies {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        SignatureLog { tx, recorded, coming }
    }

    pub(super) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.recorded.subscribe()
    }

    /// Says a call is about to sign: its record comes soon, or the returned
    /// guard is dropped (the call failed). Hand it to [`SignatureLog::record`].
    pub(super) fn coming(&self) -> OnItsWay {
        self.coming.calls.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        OnItsWay { coming: self.coming.clone() }
    }

    /// Records `r` (the call signed first, see [`SignatureLog::coming`]):
    /// resolves once its batch committed.
    pub(super) async fn record(&self, r: SignatureRecord, on_its_way: OnItsWay) -> Result<RecordOutcome> {
        let handed = self.hand(r).await;
        // Queued (or refused): the writer need not wait for it any longer.
        drop(on_its_way);
        handed?.outcome().await
    }

    /// Queues `r` for the next batch and returns at once; the outcome comes
    /// from [`Handed::outcome`]. For a call that signs while its record commits.
    pub(super) async fn hand(&self, r: SignatureRecord) -> Result<Handed> {
        let (reply, wait) = oneshot::channel();
        self.tx.send((r, reply)).await.map_err(|_| Error::Internal("signature log stopped".into()))?;
        Ok(Handed { wait })
    }
}

/// A record queued for the group commit (see [`SignatureLog::hand`]).
pub(super) struct Handed {
    wait: oneshot::Receiver<std::result::Result<RecordOutcome, String>>,
}

impl Handed {
    /// What the commit of the record's batch decided.
    pub(super) async fn outcome(self) -> Result<RecordOutcome> {
        self.wait.await.map_err(|_| Error::Internal("signature log stopped".into()))?.map_err(Error::Internal)
    }
}

/// The terminal and grant one signing call (signHash, signDoc) is
/// authorized by, with the credential read alongside them.
pub struct SigningCall {
    pub terminal: Terminal,
    pub grant: Grant,
    /// The credential row read with them: (the id asked for, the row if any).
    credential: Option<(String, Option<Arc<Credential>>)>,
    /// SHA-256 of the access token the call presented (none for the demo page).
    token_hash: Option<Vec<u8>>,
}

impl SigningCall {
    /// A call whose terminal and grant were authorized one by one (the demo
    /// page); its credential is read when the call names it.
    pub fn new(terminal: Terminal, grant: Grant) -> Self {
        SigningCall { terminal, grant, credential: None, token_hash: None }
    }
}

/// CSC `credentials/list` response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialList {
    #[serde(rename = "credentialIDs")]
    pub credential_ids: Vec<String>,
}

/// CSC `credentials/info` request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfoRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[serde(default)]
    pub certificates: Option<String>,
}

/// CSC `credentials/info` response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CredentialInfo {
    pub key: KeyInfo,
    pub cert: CertInfo,
    /// Always `implicit`: the day's grant authorizes each call (no per-call SAD).
    #[schema(value_type = String, pattern = "^implicit$")]
    pub auth_mode: &'static str,
    /// Most hashes one signHash call takes.
    pub multisign: usize,
}

/// The key of a credential (CSC `key`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    /// `enabled`, or `disabled` once the operator revoked the credential.
    #[schema(value_type = String, pattern = "^(enabled|disabled)$")]
    pub status: &'static str,
    /// Signature algorithm OIDs accepted as `signAlgo`.
    #[schema(value_type = Vec<String>)]
    pub algo: Vec<&'static str>,
    /// Key length in bits.
    pub len: u32,
}

/// The certificate of a credential (CSC `cert`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CertInfo {
    /// `valid`, `not_yet_valid`, `expired` or `revoked`, at the call.
    #[schema(value_type = String, pattern = "^(valid|not_yet_valid|expired|revoked)$")]
    pub status: &'static str,
    /// Standard base64 DER certificates (`certificates` of the request: none, the leaf, or the chain).
    pub certificates: Vec<String>,
    #[serde(rename = "issuerDN")]
    pub issuer_dn: String,
    #[serde(rename = "subjectDN")]
    pub subject_dn: String,
    /// Lowercase hex of the serial number's DER integer bytes.
    #[serde(rename = "serialNumber")]
    pub serial_number: String,
    /// RFC 3339.
    #[serde(rename = "validFrom")]
    pub valid_from: String,
    /// RFC 3339.
    #[serde(rename = "validTo")]
    pub valid_to: String,
}

/// CSC `signatures/signHash` request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignHashRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID", default)]
    pub hash_algorithm_oid: Option<String>,
    pub sign_algo: String,
    /// Shomei extension: the EHR's short document label, shown on the
    /// practitioner's phone (docs/protocol.md §9.2).
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 80)]
    pub label: Option<super::signing_log::RawLabel>,
}

/// CSC `signatures/signHash` response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignHashResponse {
    pub signatures: Vec<String>,
}

impl App {
    /// CSC `credentials/list`.
    pub async fn csc_credentials(&self, grant: &Grant) -> Result<CredentialList> {
        let creds = self.store.list_credentials(Some(&grant.practitioner_id)).await?;
        Ok(CredentialList { credential_ids: creds.into_iter().map(|c| c.id).collect() })
    }

    pub(super) async fn grant_credential(&self, grant: &Grant, id: &str) -> Result<crate::store::Credential> {
        self.store.get_credential(id).await?.filter(|c| c.practitioner_id == grant.practitioner_id).ok_or(Error::CredentialUnknown)
    }

    /// Authenticates the terminal and authorizes the grant of a signing call,
    /// reading them and the credential `credential_id` in one store statement:
    /// the same checks, in the same order, with the same errors as
    /// [`App::authenticate_terminal`] then [`App::authorize_grant`]. A token
    /// the store admitted before is admitted from the rows read then when
    /// every check passes on them (held_authorization.rs: the group commit
    /// re-checks what can change); any check failing there takes the store's path.
    pub async fn authorize_signing(&self, client_id: &str, client_secret: &str, access_token: &str, credential_id: &str) -> Result<SigningCall> {
        // A token that is not base64url names no grant; the statement then
        // looks for an empty hash (no token has one), so the terminal is
        // still checked first, as on the long path.
        let token_hash = shomei_core::api::b64u::decode(access_token).ok().map(|raw| super::sha256(&raw));
        if let Some(h) = token_hash.as_deref()
            && let Some(held) = self.held.get(h)
        {
            if let Some(call) = self.admit_held(&held, h, client_id, client_secret, credential_id) {
                return Ok(call);
            }
            self.held.release_token(h);
        }
        let ctx = self.store.get_signing_context(client_id, token_hash.as_deref().unwrap_or_default(), credential_id).await?;
        let (terminal, grant, credential) = match ctx {
            Some(c) => (Some(c.terminal), c.grant, c.credential),
            None => (None, None, None),
        };
        let terminal = super::admin::admit_terminal(terminal, client_secret)?;
        let Some(token_hash) = token_hash else {
            return Err(Error::GrantInvalid);
        };
        let grant = self.admit_grant(grant, &terminal)?;
        let credential = credential.map(Arc::new);
        if let Some(c) = &credential
            && self.signs_for(c, &grant, self.clock.now_ms())
        {
            self.held.hold(&token_hash, terminal.clone(), grant.clone(), c.clone());
        }
        Ok(SigningCall { terminal, grant, credential: Some((credential_id.to_owned(), credential)), token_hash: Some(token_hash) })
    }

    /// The call as the store's path would admit it, from held rows; `None`
    /// when any check fails on them (the store's path then answers).
    fn admit_held(&self, held: &super::held_authorization::HeldAuthorization, token_hash: &[u8], client_id: &str, client_secret: &str, credential_id: &str) -> Option<SigningCall> {
        if held.terminal.id != client_id || held.credential.id != credential_id {
            return None;
        }
        let terminal = super::admin::admit_terminal(Some(held.terminal.clone()), client_secret).ok()?;
        let grant = held.grant();
        let now = self.clock.now_ms();
        if grant.terminal_id != terminal.id || check_usable(&grant, now).is_err() {
            return None;
        }
        if !self.signs_for(&held.credential, &grant, now) {
            return None;
        }
        Some(SigningCall { terminal, grant, credential: Some((credential_id.to_owned(), Some(held.credential.clone()))), token_hash: Some(token_hash.to_vec()) })
    }

    /// The call's credential `id` if it is the grant's practitioner's:
    /// the one read with the call when it is for `id`, else from the store.
    pub(super) async fn call_credential(&self, call: &mut SigningCall, id: &str) -> Result<Arc<Credential>> {
        let row = match call.credential.take() {
            Some((read_for, row)) if read_for == id => row,
            _ => self.store.get_credential(id).await?.map(Arc::new),
        };
        row.filter(|c| c.practitioner_id == call.grant.practitioner_id).ok_or(Error::CredentialUnknown)
    }

    /// A record of `call` was committed: its grant has `made` signatures,
    /// the last at `at_ms` (held authorizations count with it).
    pub(super) fn recorded(&self, call: &SigningCall, made: i64, at_ms: i64) {
        if let Some(h) = &call.token_hash {
            self.held.recorded(h, made, at_ms);
        }
        if call.grant.signature_cap.is_some_and(|cap| made >= cap) {
            // That used the grant up: it has ended, and nothing stays held for it.
            self.release_grant(&call.grant.id);
        }
    }

    /// CSC `credentials/info`.
    pub async fn csc_credential_info(&self, grant: &Grant, req: &CredentialInfoRequest) -> Result<CredentialInfo> {
        let c = self.grant_credential(grant, &req.credential_id).await?;
        let alg = KeyAlgorithm::parse(&c.algorithm).map_err(|e| Error::Internal(e.to_string()))?;
        let leaf = c.certificate_chain.first().ok_or_else(|| Error::Internal("credential without certificate".into()))?;
        let info = certificate_info(leaf).map_err(|e| Error::Internal(e.to_string()))?;
        let status = self.credential_status(&c, self.clock.now_ms())?;
        let key_status = if status == CertificateStatus::Revoked { "disabled" } else { "enabled" };
        let certs: Vec<String> = match req.certificates.as_deref().unwrap_or("single") {
            "none" => vec![],
            "single" => vec![STANDARD.encode(leaf)],
            "chain" => c.certificate_chain.iter().map(|d| STANDARD.encode(d)).collect(),
            o => return Err(Error::BadRequest(format!("certificates must be none, single or chain, not {o:?}"))),
        };
        Ok(CredentialInfo {
            key: KeyInfo { status: key_status, algo: alg.csc_sign_algos().to_vec(), len: alg.key_len_bits() },
            cert: CertInfo {
                status: status.as_str(),
                certificates: certs,
                issuer_dn: info.issuer_dn,
                subject_dn: info.subject_dn,
                serial_number: info.serial_hex,
                valid_from: info.not_before,
                valid_to: info.not_after,
            },
            auth_mode: "implicit",
            multisign: MAX_HASHES,
        })
    }

    /// CSC `signatures/signHash`: sign and record in the audit log (a small
    /// call with a software key does both at once, module docs), then return.
    pub async fn csc_sign_hash(&self, mut call: SigningCall, req: SignHashRequest) -> Result<SignHashResponse> {
        let label = super::signing_log::label_from_request(req.label.as_ref())?;
        let c = self.call_credential(&mut call, &req.credential_id).await?;
        let (grant, terminal) = (&call.grant, &call.terminal);
        self.check_can_sign(&c, self.clock.now_ms())?;
        if req.hashes.is_empty() || req.hashes.len() > MAX_HASHES {
            return Err(Error::HashInvalid(format!("1..={MAX_HASHES} hashes per call")));
        }
        let mut digests = Vec::with_capacity(req.hashes.len());
        for (i, h) in req.hashes.iter().enumerate() {
            let d = STANDARD.decode(h).map_err(|_| Error::HashInvalid(format!("hashes[{i}] is not standard base64")))?;
            if d.len() != 32 {
                return Err(Error::HashInvalid(format!("hashes[{i}] is {} bytes, SHA-256 needs 32", d.len())));
            }
            digests.push(d);
        }
        let key_alg = KeyAlgorithm::parse(&c.algorithm).map_err(|e| Error::Internal(e.to_string()))?;
        let alg = SignatureAlgorithm::from_csc(&req.sign_algo, req.hash_algorithm_oid.as_deref(), key_alg)?;
        if let Some(cap) = grant.signature_cap
            && grant.signatures_made + digests.len() as i64 > cap
        {
            return Err(Error::GrantExhausted);
        }
        let sealed = SealedKey { credential_id: c.id.clone(), algorithm: key_alg, sealed_pkcs8: c.sealed_key.clone() };
        // The grant was checked usable just now (authorize_grant), so the
        // backend may hold the opened key for it until it ends.
        let signing_ms = self.clock.now_ms();
        let until_ms = App::grant_end_ms(grant);
        let refs: Vec<&[u8]> = digests.iter().map(Vec::as_slice).collect();
        let record = |hashes: Vec<Vec<u8>>, now_ms: i64, label: Option<String>| SignatureRecord {
            grant_id: grant.id.clone(),
            credential_id: c.id.clone(),
            terminal_id: terminal.id.clone(),
            hashes,
            sign_algo: alg.as_str().to_owned(),
            now_ms,
            signature_formats: Vec::new(),
            label,
        };
        let answer = |made: i64, at_ms: i64, signatures: Vec<Vec<u8>>| {
            self.recorded(&call, made, at_ms);
            self.metrics.signatures(crate::metrics::SignatureKind::Hash, signatures.len() as u64);
            SignHashResponse { signatures: signatures.iter().map(|s| STANDARD.encode(s)).collect() }
        };
        // One RSA-2048 signature is ≈0.2 ms: cheaper than moving a single
        // hash to the blocking pool and back (two thread hand-offs), so small
        // calls sign on the runtime thread, while their record commits
        // (module docs); big batches go to the pool. A token key always
        // signs on the blocking pool: its call may wait for a session or the
        // device.
        if refs.len() <= INLINE_SIGNATURES && self.backend.signs_inline(&sealed) {
            // Everything that can refuse the call before signing is checked first.
            let hold = KeyHold { grant_id: &grant.id, now_ms: signing_ms, until_ms };
            if let Err(e) = self.backend.prepare_held(&hold, &sealed, alg, &refs) {
                // Held rows carry the credential's stored key: let the next
                // call read it afresh (a key repaired in the store signs again).
                self.release_grant(&grant.id);
                return Err(e.into());
            }
            let handed = self.signature_log.hand(record(digests.clone(), signing_ms, label)).await?;
            // Let the calls that arrived with this one hand their records
            // before this thread spends a signature's time: they then join
            // the same batch instead of the next.
            tokio::task::yield_now().await;
            let signed = self.backend.sign_digests_held(&hold, &sealed, alg, &refs);
            return match handed.outcome().await? {
                RecordOutcome::Recorded(made) => match signed {
                    Ok(signatures) => Ok(answer(made, signing_ms, signatures)),
                    Err(e) => {
                        self.recorded(&call, made, signing_ms);
                        Err(self.failed_after_record(&call, &c.id, &digests, e.into()).await)
                    }
                },
                outcome => Err(self.refused_at_commit(&call, &c.id, outcome).await),
            };
        }
        let on_its_way = self.signature_log.coming();
        let signatures = {
            let backend = self.backend.clone();
            let to_sign = digests.clone();
            let grant_id = grant.id.clone();
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&[u8]> = to_sign.iter().map(Vec::as_slice).collect();
                let hold = KeyHold { grant_id: &grant_id, now_ms: signing_ms, until_ms };
                backend.sign_digests_held(&hold, &sealed, alg, &refs)
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
        };
        drop(refs);
        let now = self.clock.now_ms();
        match self.signature_log.record(record(digests, now, label), on_its_way).await? {
            RecordOutcome::Recorded(made) => Ok(answer(made, now, signatures)),
            outcome => Err(self.refused_at_commit(&call, &c.id, outcome).await),
        }
    }

    /// The answer to a call whose signing failed after its record was
    /// committed (module docs): the audit log says so next to the record
    /// (`signature.failed`, the same grant and hashes), then the error.
    async fn failed_after_record(&self, call: &SigningCall, credential_id: &str, digests: &[Vec<u8>], e: Error) -> Error {
        tracing::error!(grant = %call.grant.id, credential = %credential_id, error = %e, "signing failed after its record was committed");
        let details = serde_json::json!({
            "grant": call.grant.id,
            "hashes": digests.iter().map(hex::encode).collect::<Vec<_>>(),
            "error": e.to_string(),
        });
        let audit = crate::store::AuditEvent::new(format!("terminal:{}", call.terminal.id), "signature.failed", credential_id, details);
        if let Err(a) = self.store.append_audit(self.clock.now_ms(), &audit).await {
            tracing::error!(error = %a, "recording a signing failure");
        }
        e
    }

    /// The answer to a call whose record the commit refused (revoked,
    /// expired, idled out or capped between the check and the commit; the
    /// signatures are dropped unreturned): what the store's path would
    /// answer the same call now — the terminal, then the grant, then the
    /// credential, read afresh — or, when they all pass, what the commit
    /// said (the call's signatures did not fit under the cap).
    pub(super) async fn refused_at_commit(&self, call: &SigningCall, credential_id: &str, outcome: RecordOutcome) -> Error {
        // The grant or the credential can no longer sign: drop what is held
        // for the grant (its key, and every token's held rows).
        self.release_grant(&call.grant.id);
        match self.answer_now(call, credential_id).await {
            Err(e) => e,
            Ok(()) => match outcome {
                RecordOutcome::CredentialRevoked => Error::CredentialRevoked,
                RecordOutcome::GrantUnusable => Error::GrantExhausted,
                RecordOutcome::Recorded(_) => Error::Internal("recorded signature treated as refused".into()),
            },
        }
    }

    /// The store's checks of a call, read afresh (the terminal's secret and
    /// what never changes — whose grant and credential — were checked
    /// when it was admitted).
    async fn answer_now(&self, call: &SigningCall, credential_id: &str) -> Result<()> {
        let now = self.clock.now_ms();
        match self.store.get_terminal(&call.terminal.id).await? {
            Some(t) if t.revoked_ms.is_none() => {}
            _ => return Err(Error::TerminalUnauthenticated),
        }
        let g = self.store.get_grant(&call.grant.id).await?.ok_or(Error::GrantInvalid)?;
        check_usable(&g, now)?;
        let c = self.store.get_credential(credential_id).await?.ok_or(Error::CredentialUnknown)?;
        self.check_can_sign(&c, now)
    }
}

impl App {
    /// The credential's status at `now_ms`: revoked by the operator, or the
    /// leaf certificate's validity period.
    pub(crate) fn credential_status(&self, c: &Credential, now_ms: i64) -> Result<CertificateStatus> {
        Ok(CertificateStatus::at(self.validities.of(c)?, c.revoked_ms.is_some(), now_ms))
    }

    /// Whether credential `c` may sign for `grant` at `now_ms`: the grant's
    /// practitioner's, and [`App::check_can_sign`] passes.
    fn signs_for(&self, c: &Credential, grant: &Grant, now_ms: i64) -> bool {
        c.practitioner_id == grant.practitioner_id && self.check_can_sign(c, now_ms).is_ok()
    }

    /// No signature outside the certificate's validity, none with a revoked credential.
    pub(super) fn check_can_sign(&self, c: &Credential, now_ms: i64) -> Result<()> {
        let validity = self.validities.of(c)?;
        let when = |ms: i64| super::rfc3339(ms).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        match CertificateStatus::at(validity, c.revoked_ms.is_some(), now_ms) {
            CertificateStatus::Valid => Ok(()),
            CertificateStatus::Revoked => Err(Error::CredentialRevoked),
            CertificateStatus::Expired => Err(Error::CertificateExpired(when(validity.not_after_ms))),
            CertificateStatus::NotYetValid => Err(Error::CertificateNotYetValid(when(validity.not_before_ms))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(grant: &str) -> SignatureRecord {
        SignatureRecord {
            grant_id: grant.into(),
            credential_id: "c".into(),
            terminal_id: "t".into(),
            hashes: vec![vec![7; 32]],
            sign_algo: "rsa".into(),
            now_ms: 1_000,
            signature_formats: Vec::new(),
            label: None,
        }
    }

    async fn log() -> (tempfile::TempDir, SignatureLog) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open(&dir.path().join("s.db").display().to_string()).await.unwrap();
        let metrics = Arc::new(crate::metrics::Metrics::new(store.backend()));
        (dir, SignatureLog::spawn(store, metrics))
    }

    /// A call that announced its record and never hands it (it failed
    /// without dropping its guard, or is just slow) holds a batch up by
    /// the gather time, not for ever: the other calls' records commit.
    #[tokio::test]
    async fn a_record_that_never_comes_holds_a_batch_up_only_briefly() {
        let (_dir, log) = log().await;
        let never = log.coming();
        let out = tokio::time::timeout(std::time::Duration::from_secs(10), log.record(record("g"), log.coming()))
            .await
            .expect("committed although a call never handed its record");
        assert_eq!(out.unwrap(), RecordOutcome::GrantUnusable, "no such grant: recorded nothing, answered");
        assert_eq!(log.coming.calls.load(std::sync::atomic::Ordering::Acquire), 1, "the silent call is still counted");
        drop(never);
        assert_eq!(log.coming.calls.load(std::sync::atomic::Ordering::Acquire), 0);
    }

    /// Each call's guard is released whether its record is queued or the
    /// call fails before it: the count returns to zero, so a lone call on
    /// an idle server never waits for a record that will not come.
    #[tokio::test]
    async fn guards_are_released_on_record_and_on_failure() {
        let (_dir, log) = log().await;
        let failed = log.coming();
        drop(failed);
        let out = log.record(record("g"), log.coming()).await.unwrap();
        assert_eq!(out, RecordOutcome::GrantUnusable);
        assert_eq!(log.coming.calls.load(std::sync::atomic::Ordering::Acquire), 0);
    }
}
