//! The group commit's statements: one read and one write per batch.
//!
//! [`super::Store::record_signatures`] runs under the write lock, so every
//! statement it sends is time the next batch waits: on PostgreSQL a round
//! trip each, on SQLite a hop to the connection's thread and back (two
//! thread wake-ups). It used to send seven after `BEGIN` (the batch's
//! grants, its revoked credentials, the grants' counters, the audit head,
//! the audit rows, the signing-log rows, `COMMIT`). Now it sends three:
//!
//! * **one read** — the batch's grants, its revoked credentials and the
//!   audit chain's head, as one `UNION ALL` (a `kind` column tells the
//!   rows apart). SQLite, whose statements cost no round trip on its
//!   commit thread, reads the same rows by key, one small statement each;
//! * **one write** — the grants' counters, the audit entries and the
//!   signing-log rows. PostgreSQL takes them as one statement with
//!   data-modifying `WITH` parts over `unnest` of array parameters.
//!   SQLite runs the whole commit on a thread with its own connection
//!   (`store::sqlite`), where no statement crosses a thread: there each
//!   row is bound to a cached prepared statement and stepped;
//! * `COMMIT`.
//!
//! [`plan`] decides what a batch writes and answers from what the read
//! found (the rule, `store::tally`; the chain), the same for both.
//!
//! Both statements' text is fixed whatever the batch's size, so each
//! connection prepares them once (statements with one placeholder per row
//! were a new text, and a new prepare, for almost every batch size).

use std::collections::HashMap;

use sqlx::Row as _;

use super::tally::{self, GrantTally};
use super::{RecordOutcome, SignatureRecord, StoreError, StoreResult};
use crate::audit::chain::{GENESIS, entry_hash};

/// The read: `$1` the batch's grant ids, `$2` its credential ids, as the
/// dialect passes a list (`ids`). Column `kind` tells the rows apart: `g`
/// (a grant of the batch, with its rule's columns), `c` (a revoked
/// credential of the batch: only `id`), `a` (the audit chain's last entry:
/// `seq` and `hash`). The first part's columns type the others' NULLs.
fn read_sql(ids: impl Fn(&str) -> String, null_bigint: &str, null_bytes: &str) -> String {
    format!(
        "SELECT 'g' AS kind, id, terminal_id, practitioner_id, revoked_ms, expires_ms, signature_cap, signatures_made, \
         idle_timeout_s, last_used_ms, {null_bigint} AS seq, {null_bytes} AS hash FROM grants WHERE {g} \
         UNION ALL SELECT 'c', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM credentials \
         WHERE revoked_ms IS NOT NULL AND {c} \
         UNION ALL SELECT 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, seq, hash \
         FROM (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) AS head",
        g = ids("$1"),
        c = ids("$2"),
    )
}

/// What the read found, decoded.
pub(crate) struct Read {
    pub grants: HashMap<String, GrantTally>,
    pub revoked_credentials: Vec<String>,
    /// The audit chain's last entry (seq, hash), or (0, genesis).
    pub head: (i64, [u8; 32]),
}

/// Decodes one row of the read into `read` (the same code for both
/// backends' row types: `$get` is the row's getter, `try_get` or `get`).
macro_rules! decode_read_row {
    ($read:expr, $r:expr, $get:ident) => {{
        let kind: String = $r.$get("kind")?;
        match kind.as_str() {
            "g" => {
                let id: String = $r.$get("id")?;
                let revoked_ms: Option<i64> = $r.$get("revoked_ms")?;
                $read.grants.insert(
                    id,
                    GrantTally {
                        terminal_id: $r.$get("terminal_id")?,
                        practitioner_id: $r.$get("practitioner_id")?,
                        revoked: revoked_ms.is_some(),
                        expires_ms: $r.$get("expires_ms")?,
                        signature_cap: $r.$get("signature_cap")?,
                        signatures_made: $r.$get("signatures_made")?,
                        idle_timeout_s: $r.$get("idle_timeout_s")?,
                        last_used_ms: $r.$get("last_used_ms")?,
                        touched: false,
                    },
                );
            }
            "c" => $read.revoked_credentials.push($r.$get("id")?),
            "a" => {
                let hash: Vec<u8> = $r.$get("hash")?;
                let hash = <[u8; 32]>::try_from(hash.as_slice())
                    .map_err(|_| StoreError::Corrupt(format!("audit hash of {} bytes", hash.len())))?;
                $read.head = ($r.$get("seq")?, hash);
            }
            other => return Err(StoreError::Corrupt(format!("group commit read kind {other:?}"))),
        }
    }};
}

impl Read {
    fn empty() -> Self {
        Read { grants: HashMap::new(), revoked_credentials: Vec::new(), head: (0, GENESIS) }
    }
}

/// Everything one batch writes, column by column. It borrows from the
/// batch's records what it writes as they are (ids, digests, labels): a
/// batch of twenty records used to copy each of them into a `String` or
/// `Vec` of its own, ≈200 allocations per commit on the commit's path.
#[derive(Default)]
pub(crate) struct Write<'a> {
    grant_id: Vec<String>,
    signatures_made: Vec<i64>,
    last_used_ms: Vec<i64>,
    audit: AuditRows<'a>,
    signatures: SignatureRows<'a>,
}

#[derive(Default)]
struct AuditRows<'a> {
    seq: Vec<i64>,
    at_ms: Vec<i64>,
    actor: Vec<String>,
    action: Vec<&'static str>,
    subject: Vec<&'a str>,
    details: Vec<String>,
    prev_hash: Vec<[u8; 32]>,
    hash: Vec<[u8; 32]>,
}

#[derive(Default)]
struct SignatureRows<'a> {
    seq: Vec<i64>,
    grant_id: Vec<&'a str>,
    practitioner_id: Vec<String>,
    terminal_id: Vec<&'a str>,
    credential_id: Vec<&'a str>,
    at_ms: Vec<i64>,
    sign_algo: Vec<&'a str>,
    format: Vec<&'static str>,
    digest: Vec<&'a [u8]>,
    label: Vec<Option<&'a str>>,
}

/// The `details` of a `signature.create` audit entry. Its fields are in
/// the order `serde_json`'s map (a `BTreeMap`) kept them when the entry was
/// built as a `json!` object, so the text — and the chain hash over it — is
/// byte for byte what it was.
#[derive(serde::Serialize)]
struct SignatureDetails<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a str>,
    grant: &'a str,
    hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    label: Option<&'a str>,
    sign_algo: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_time: Option<&'a str>,
}

impl<'a> Write<'a> {
    fn grant(&mut self, id: String, signatures_made: i64, last_used_ms: i64) {
        self.grant_id.push(id);
        self.signatures_made.push(signatures_made);
        self.last_used_ms.push(last_used_ms);
    }

    fn is_empty(&self) -> bool {
        self.grant_id.is_empty() && self.audit.seq.is_empty() && self.signatures.seq.is_empty()
    }
}

/// The batch's grant ids and credential ids, each once: the read's lists.
pub(crate) fn ids(records: &[SignatureRecord]) -> (Vec<&str>, Vec<&str>) {
    let mut grant_ids: Vec<&str> = records.iter().map(|r| r.grant_id.as_str()).collect();
    grant_ids.sort_unstable();
    grant_ids.dedup();
    let mut credential_ids: Vec<&str> = records.iter().map(|r| r.credential_id.as_str()).collect();
    credential_ids.sort_unstable();
    credential_ids.dedup();
    (grant_ids, credential_ids)
}

/// What one batch writes and answers, decided from what the read found.
pub(crate) struct Plan<'a> {
    pub write: Write<'a>,
    pub outcomes: Vec<RecordOutcome>,
    /// Grants a record of the batch used up (other replicas are told).
    pub used_up: Vec<String>,
}

/// Applies the per-record rule in order (`store::tally`) to what the read
/// found under the write lock, and lays out the writes: the grants'
/// counters, the batch's audit entries chained after the last stored one
/// (the same rows as one append each), and the signing-log row of each,
/// which shares its entry's seq.
pub(crate) fn plan(records: &[SignatureRecord], read: Read) -> StoreResult<Plan<'_>> {
    let mut grants = read.grants;
    let tallied = tally::tally(records, &mut grants, &read.revoked_credentials);
    let mut write = Write::default();
    for (id, g) in grants.into_iter().filter(|(_, g)| g.touched) {
        write.grant(id, g.signatures_made, g.last_used_ms);
    }
    let (mut seq, mut prev_hash) = read.head;
    for (rec, practitioner_id) in records.iter().zip(tallied.practitioners) {
        let Some(mut practitioner_id) = practitioner_id else { continue };
        let mut actor = format!("terminal:{}", rec.terminal_id);
        let signing_time = (!rec.signature_formats.is_empty()).then(|| rfc3339_ms(rec.now_ms));
        for (i, h) in rec.hashes.iter().enumerate() {
            let (format, signature_format) = match rec.signature_formats.get(i).map(String::as_str) {
                None => ("hash", None),
                Some(f @ "X") => ("xades", Some(f)),
                Some(f @ "C") => ("cms", Some(f)),
                Some(o) => return Err(StoreError::Corrupt(format!("signature format {o:?}"))),
            };
            let details = serde_json::to_string(&SignatureDetails {
                format: signature_format,
                grant: &rec.grant_id,
                hash: &hex::encode(h),
                label: rec.label.as_deref(),
                sign_algo: &rec.sign_algo,
                signing_time: signature_format.and(signing_time.as_deref()),
            })
            .map_err(|e| StoreError::Corrupt(format!("audit details: {e}")))?;
            seq += 1;
            let hash = entry_hash(&prev_hash, seq, rec.now_ms, &actor, SIGNATURE_CREATE, &rec.credential_id, &details);
            // The record's last row takes its owned strings; rows before it copy them.
            let last = i + 1 == rec.hashes.len();
            let a = &mut write.audit;
            a.seq.push(seq);
            a.at_ms.push(rec.now_ms);
            a.actor.push(if last { std::mem::take(&mut actor) } else { actor.clone() });
            a.action.push(SIGNATURE_CREATE);
            a.subject.push(&rec.credential_id);
            a.details.push(details);
            a.prev_hash.push(prev_hash);
            a.hash.push(hash);
            let s = &mut write.signatures;
            s.seq.push(seq);
            s.grant_id.push(&rec.grant_id);
            s.practitioner_id.push(if last { std::mem::take(&mut practitioner_id) } else { practitioner_id.clone() });
            s.terminal_id.push(&rec.terminal_id);
            s.credential_id.push(&rec.credential_id);
            s.at_ms.push(rec.now_ms);
            s.sign_algo.push(&rec.sign_algo);
            s.format.push(format);
            s.digest.push(h);
            s.label.push(rec.label.as_deref());
            prev_hash = hash;
        }
    }
    Ok(Plan { write, outcomes: tallied.outcomes, used_up: tallied.used_up })
}

/// The audit action of a signature's entry.
const SIGNATURE_CREATE: &str = "signature.create";

fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub(crate) mod sqlite {
    //! SQLite: run on the group-commit thread's own connection
    //! (`store::sqlite`), so no statement crosses a thread. Each row is
    //! bound to a cached prepared statement and stepped: no lists as JSON
    //! text to build and parse again (SQLite has no array parameters).

    use rusqlite::{Transaction, params};

    use super::*;

    /// The read, as one lookup by key per grant and per credential of the
    /// batch and one for the chain's head: here a statement costs no round
    /// trip, and a lookup needs no list built as JSON text, parsed again by
    /// `json_each` and copied into a temporary b-tree for `IN` (which the
    /// one-statement read did, for a batch of usually one grant). The rows
    /// are the one-statement read's (`read_sql`), decoded the same way.
    const READ_GRANT: &str = "SELECT 'g' AS kind, id, terminal_id, practitioner_id, revoked_ms, expires_ms, signature_cap, \
        signatures_made, idle_timeout_s, last_used_ms FROM grants WHERE id = ?1";
    const READ_REVOKED_CREDENTIAL: &str = "SELECT 'c' AS kind, id FROM credentials WHERE id = ?1 AND revoked_ms IS NOT NULL";
    const READ_HEAD: &str = "SELECT 'a' AS kind, seq, hash FROM audit ORDER BY seq DESC LIMIT 1";

    const UPDATE_GRANT: &str = "UPDATE grants SET signatures_made = ?1, last_used_ms = ?2 WHERE id = ?3";
    const INSERT_AUDIT: &str = "INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
    const INSERT_SIGNATURE: &str = "INSERT INTO signatures \
        (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

    pub(crate) fn read(tx: &Transaction<'_>, grant_ids: &[&str], credential_ids: &[&str]) -> StoreResult<Read> {
        let mut read = Read::empty();
        let mut decode = |sql: &str, id: Option<&str>| -> StoreResult<()> {
            let mut statement = tx.prepare_cached(sql)?;
            let mut rows = match id {
                Some(id) => statement.query(params![id])?,
                None => statement.query([])?,
            };
            while let Some(r) = rows.next()? {
                decode_read_row!(read, r, get);
            }
            Ok(())
        };
        for id in grant_ids {
            decode(READ_GRANT, Some(id))?;
        }
        for id in credential_ids {
            decode(READ_REVOKED_CREDENTIAL, Some(id))?;
        }
        decode(READ_HEAD, None)?;
        Ok(read)
    }

    pub(crate) fn write(tx: &Transaction<'_>, w: &Write<'_>) -> StoreResult<()> {
        let mut grant = tx.prepare_cached(UPDATE_GRANT)?;
        for i in 0..w.grant_id.len() {
            grant.execute(params![w.signatures_made[i], w.last_used_ms[i], w.grant_id[i]])?;
        }
        let a = &w.audit;
        let mut audit = tx.prepare_cached(INSERT_AUDIT)?;
        for i in 0..a.seq.len() {
            audit.execute(params![a.seq[i], a.at_ms[i], a.actor[i], a.action[i], a.subject[i], a.details[i], &a.prev_hash[i][..], &a.hash[i][..]])?;
        }
        let s = &w.signatures;
        let mut signature = tx.prepare_cached(INSERT_SIGNATURE)?;
        for i in 0..s.seq.len() {
            signature.execute(params![
                s.seq[i],
                s.grant_id[i],
                s.practitioner_id[i],
                s.terminal_id[i],
                s.credential_id[i],
                s.at_ms[i],
                s.sign_algo[i],
                s.format[i],
                s.digest[i],
                s.label[i]
            ])?;
        }
        Ok(())
    }
}

pub(crate) mod postgres {
    //! PostgreSQL: lists as array parameters, rows by `unnest`.

    use std::sync::LazyLock;

    use sqlx::PgConnection;

    use super::*;

    static READ: LazyLock<String> = LazyLock::new(|| read_sql(|p| format!("id = ANY({p})"), "NULL::BIGINT", "NULL::BYTEA"));

    /// One statement: every `WITH` part runs whether or not it is
    /// referenced, all on the same snapshot, and no part reads a table
    /// another writes.
    const WRITE: &str = "\
        WITH g AS (UPDATE grants SET signatures_made = v.made, last_used_ms = v.used \
          FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS v (id, made, used) WHERE grants.id = v.id), \
        a AS (INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash) \
          SELECT * FROM unnest($4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BYTEA[], $11::BYTEA[])) \
        INSERT INTO signatures (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label) \
          SELECT * FROM unnest($12::BIGINT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[], $17::BIGINT[], $18::TEXT[], \
          $19::TEXT[], $20::BYTEA[], $21::TEXT[])";

    pub(crate) async fn read(conn: &mut PgConnection, grant_ids: &[&str], credential_ids: &[&str]) -> StoreResult<Read> {
        let rows = sqlx::query(READ.as_str()).bind(grant_ids).bind(credential_ids).fetch_all(conn).await?;
        let mut read = Read::empty();
        for r in &rows {
            decode_read_row!(read, r, try_get);
        }
        Ok(read)
    }

    pub(crate) async fn write(conn: &mut PgConnection, w: &Write<'_>) -> StoreResult<()> {
        if w.is_empty() {
            return Ok(());
        }
        let (a, s) = (&w.audit, &w.signatures);
        let prev_hash: Vec<&[u8]> = a.prev_hash.iter().map(|h| &h[..]).collect();
        let hash: Vec<&[u8]> = a.hash.iter().map(|h| &h[..]).collect();
        sqlx::query(WRITE)
            .bind(&w.grant_id)
            .bind(&w.signatures_made)
            .bind(&w.last_used_ms)
            .bind(&a.seq)
            .bind(&a.at_ms)
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.subject)
            .bind(&a.details)
            .bind(&prev_hash)
            .bind(&hash)
            .bind(&s.seq)
            .bind(&s.grant_id)
            .bind(&s.practitioner_id)
            .bind(&s.terminal_id)
            .bind(&s.credential_id)
            .bind(&s.at_ms)
            .bind(&s.sign_algo)
            .bind(&s.format)
            .bind(&s.digest)
            .bind(&s.label)
            .execute(conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The details as they were built before [`SignatureDetails`]: a
    /// `json!` object (a `BTreeMap`) with fields set one by one.
    fn as_json_object(grant: &str, digest: &[u8], sign_algo: &str, format: Option<&str>, signing_time: &str, label: Option<&str>) -> String {
        let mut details = serde_json::json!({ "grant": grant, "hash": hex::encode(digest), "sign_algo": sign_algo });
        if let Some(format) = format {
            details["format"] = serde_json::json!(format);
            details["signing_time"] = serde_json::json!(signing_time);
        }
        if let Some(label) = label {
            details["label"] = serde_json::json!(label);
        }
        details.to_string()
    }

    fn record(hashes: Vec<Vec<u8>>, formats: &[&str], label: Option<&str>) -> SignatureRecord {
        SignatureRecord {
            grant_id: "g-\"1\"".into(),
            credential_id: "c1".into(),
            terminal_id: "t1".into(),
            hashes,
            sign_algo: "1.2.840.113549.1.1.11".into(),
            now_ms: 1_764_000_000_123,
            signature_formats: formats.iter().map(|f| f.to_string()).collect(),
            label: label.map(str::to_owned),
        }
    }

    fn read() -> Read {
        let mut read = Read::empty();
        read.grants.insert(
            "g-\"1\"".into(),
            GrantTally {
                terminal_id: "t1".into(),
                practitioner_id: "p1".into(),
                revoked: false,
                expires_ms: i64::MAX,
                signature_cap: None,
                signatures_made: 0,
                idle_timeout_s: None,
                last_used_ms: 0,
                touched: false,
            },
        );
        read
    }

    #[test]
    fn signature_details_are_the_text_the_json_object_gave() {
        let digests = vec![vec![0xab; 32], vec![0x01; 32]];
        let cases: [(&[&str], Option<&str>); 4] =
            [(&[], None), (&[], Some("処方箋 \"Rx\" \\ 1\n")), (&["X", "C"], None), (&["C", "X"], Some("label"))];
        for (formats, label) in cases {
            let rec = record(digests.clone(), formats, label);
            let plan = plan(std::slice::from_ref(&rec), read()).unwrap();
            for (i, d) in digests.iter().enumerate() {
                let want = as_json_object(&rec.grant_id, d, &rec.sign_algo, formats.get(i).copied(), &rfc3339_ms(rec.now_ms), label);
                assert_eq!(plan.write.audit.details[i], want, "formats {formats:?}, label {label:?}");
            }
        }
    }

    #[test]
    fn every_row_of_a_multi_hash_record_names_its_terminal_and_practitioner() {
        let rec = record(vec![vec![1; 32], vec![2; 32], vec![3; 32]], &[], None);
        let plan = plan(std::slice::from_ref(&rec), read()).unwrap();
        assert_eq!(plan.write.audit.actor, ["terminal:t1"; 3]);
        assert_eq!(plan.write.signatures.practitioner_id, ["p1"; 3]);
        assert_eq!(plan.write.audit.seq, [1, 2, 3]);
        assert_eq!(plan.write.audit.prev_hash[1], plan.write.audit.hash[0]);
    }
}
