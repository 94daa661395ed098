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
//!   rows apart);
//! * **one write** — the grants' counters, the audit entries and the
//!   signing-log rows. PostgreSQL takes them as one statement with
//!   data-modifying `WITH` parts over `unnest` of array parameters;
//!   SQLite as three statements in one call, each over `json_each` of one
//!   JSON parameter (SQLite has no array parameters);
//! * `COMMIT`.
//!
//! Both statements' text is fixed whatever the batch's size, so each
//! connection prepares them once (statements with one placeholder per row
//! were a new text, and a new prepare, for almost every batch size).

use std::collections::HashMap;

use sqlx::Row as _;

use super::tally::GrantTally;
use super::{StoreError, StoreResult};
use crate::audit::chain::GENESIS;

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

/// Decodes the read's rows (the same code for both backends' row types).
macro_rules! decode_read {
    ($rows:expr) => {{
        let mut read = Read { grants: HashMap::new(), revoked_credentials: Vec::new(), head: (0, GENESIS) };
        for r in $rows {
            let kind: String = r.try_get("kind")?;
            match kind.as_str() {
                "g" => {
                    read.grants.insert(
                        r.try_get::<String, _>("id")?,
                        GrantTally {
                            terminal_id: r.try_get("terminal_id")?,
                            practitioner_id: r.try_get("practitioner_id")?,
                            revoked: r.try_get::<Option<i64>, _>("revoked_ms")?.is_some(),
                            expires_ms: r.try_get("expires_ms")?,
                            signature_cap: r.try_get("signature_cap")?,
                            signatures_made: r.try_get("signatures_made")?,
                            idle_timeout_s: r.try_get("idle_timeout_s")?,
                            last_used_ms: r.try_get("last_used_ms")?,
                            touched: false,
                        },
                    );
                }
                "c" => read.revoked_credentials.push(r.try_get("id")?),
                "a" => {
                    let hash: Vec<u8> = r.try_get("hash")?;
                    let hash = <[u8; 32]>::try_from(hash.as_slice())
                        .map_err(|_| StoreError::Corrupt(format!("audit hash of {} bytes", hash.len())))?;
                    read.head = (r.try_get("seq")?, hash);
                }
                other => return Err(StoreError::Corrupt(format!("group commit read kind {other:?}"))),
            }
        }
        Ok(read)
    }};
}

/// Everything one batch writes, column by column.
#[derive(Default)]
pub(crate) struct Write {
    grant_id: Vec<String>,
    signatures_made: Vec<i64>,
    last_used_ms: Vec<i64>,
    audit: AuditRows,
    signatures: SignatureRows,
}

#[derive(Default)]
struct AuditRows {
    seq: Vec<i64>,
    at_ms: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    subject: Vec<String>,
    details: Vec<String>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

#[derive(Default)]
struct SignatureRows {
    seq: Vec<i64>,
    grant_id: Vec<String>,
    practitioner_id: Vec<String>,
    terminal_id: Vec<String>,
    credential_id: Vec<String>,
    at_ms: Vec<i64>,
    sign_algo: Vec<String>,
    format: Vec<String>,
    digest: Vec<Vec<u8>>,
    label: Vec<Option<String>>,
}

/// One audit entry of the batch, its chain hash already computed.
pub(crate) struct AuditRow<'a> {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub details: String,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// One signing-log row (table `signatures`); `seq` is its audit entry's.
pub(crate) struct SignatureRow<'a> {
    pub seq: i64,
    pub grant_id: &'a str,
    pub practitioner_id: &'a str,
    pub terminal_id: &'a str,
    pub credential_id: &'a str,
    pub at_ms: i64,
    pub sign_algo: &'a str,
    pub format: &'a str,
    pub digest: &'a [u8],
    pub label: Option<&'a str>,
}

impl Write {
    pub(crate) fn grant(&mut self, id: &str, signatures_made: i64, last_used_ms: i64) {
        self.grant_id.push(id.to_owned());
        self.signatures_made.push(signatures_made);
        self.last_used_ms.push(last_used_ms);
    }

    pub(crate) fn audit(&mut self, a: AuditRow<'_>) {
        let rows = &mut self.audit;
        rows.seq.push(a.seq);
        rows.at_ms.push(a.at_ms);
        rows.actor.push(a.actor.to_owned());
        rows.action.push(a.action.to_owned());
        rows.subject.push(a.subject.to_owned());
        rows.details.push(a.details);
        rows.prev_hash.push(a.prev_hash.to_vec());
        rows.hash.push(a.hash.to_vec());
    }

    pub(crate) fn signature(&mut self, s: SignatureRow<'_>) {
        let rows = &mut self.signatures;
        rows.seq.push(s.seq);
        rows.grant_id.push(s.grant_id.to_owned());
        rows.practitioner_id.push(s.practitioner_id.to_owned());
        rows.terminal_id.push(s.terminal_id.to_owned());
        rows.credential_id.push(s.credential_id.to_owned());
        rows.at_ms.push(s.at_ms);
        rows.sign_algo.push(s.sign_algo.to_owned());
        rows.format.push(s.format.to_owned());
        rows.digest.push(s.digest.to_vec());
        rows.label.push(s.label.map(str::to_owned));
    }

    fn is_empty(&self) -> bool {
        self.grant_id.is_empty() && self.audit.seq.is_empty() && self.signatures.seq.is_empty()
    }
}

pub(crate) mod sqlite {
    //! SQLite: lists as JSON text, read back with `json_each`.

    use std::sync::LazyLock;

    use serde_json::{Value, json};
    use sqlx::SqliteConnection;

    use super::*;

    static READ: LazyLock<String> =
        LazyLock::new(|| read_sql(|p| format!("id IN (SELECT value FROM json_each({p}))"), "NULL", "NULL"));

    /// Three statements, one call: sqlx runs them in order on the
    /// connection's thread, each binding the `$n` it names. Blobs travel
    /// as hex (`unhex`, SQLite ≥ 3.41).
    const WRITE: &str = "\
        UPDATE grants SET signatures_made = v.made, last_used_ms = v.used \
        FROM (SELECT value ->> 0 AS id, value ->> 1 AS made, value ->> 2 AS used FROM json_each($1)) AS v \
        WHERE grants.id = v.id; \
        INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash) \
        SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, unhex(value ->> 6), unhex(value ->> 7) \
        FROM json_each($2) ORDER BY key; \
        INSERT INTO signatures (seq, grant_id, practitioner_id, terminal_id, credential_id, at_ms, sign_algo, format, digest, label) \
        SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, \
        unhex(value ->> 8), value ->> 9 FROM json_each($3) ORDER BY key";

    fn ids_json(ids: &[&str]) -> String {
        Value::from(ids.iter().map(|s| Value::from(*s)).collect::<Vec<_>>()).to_string()
    }

    pub(crate) async fn read(conn: &mut SqliteConnection, grant_ids: &[&str], credential_ids: &[&str]) -> StoreResult<Read> {
        let rows = sqlx::query(READ.as_str()).bind(ids_json(grant_ids)).bind(ids_json(credential_ids)).fetch_all(conn).await?;
        decode_read!(&rows)
    }

    pub(crate) async fn write(conn: &mut SqliteConnection, w: &Write) -> StoreResult<()> {
        if w.is_empty() {
            return Ok(());
        }
        let grants: Vec<Value> =
            (0..w.grant_id.len()).map(|i| json!([w.grant_id[i], w.signatures_made[i], w.last_used_ms[i]])).collect();
        let a = &w.audit;
        let audit: Vec<Value> = (0..a.seq.len())
            .map(|i| {
                json!([a.seq[i], a.at_ms[i], a.actor[i], a.action[i], a.subject[i], a.details[i], hex::encode(&a.prev_hash[i]), hex::encode(&a.hash[i])])
            })
            .collect();
        let s = &w.signatures;
        let signatures: Vec<Value> = (0..s.seq.len())
            .map(|i| {
                json!([
                    s.seq[i], s.grant_id[i], s.practitioner_id[i], s.terminal_id[i], s.credential_id[i], s.at_ms[i],
                    s.sign_algo[i], s.format[i], hex::encode(&s.digest[i]), s.label[i]
                ])
            })
            .collect();
        sqlx::query(WRITE)
            .bind(Value::from(grants).to_string())
            .bind(Value::from(audit).to_string())
            .bind(Value::from(signatures).to_string())
            .execute(conn)
            .await?;
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
        decode_read!(&rows)
    }

    pub(crate) async fn write(conn: &mut PgConnection, w: &Write) -> StoreResult<()> {
        if w.is_empty() {
            return Ok(());
        }
        let (a, s) = (&w.audit, &w.signatures);
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
            .bind(&a.prev_hash)
            .bind(&a.hash)
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
