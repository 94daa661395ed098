//! The SQL both backends run, written once.
//!
//! SQLite and PostgreSQL accept the same `$n` placeholders, `RETURNING`,
//! and the column types used here (BIGINT, TEXT, BLOB/BYTEA), so the
//! queries are shared and instantiated per backend by [`store_impl!`]. The
//! macro (rather than generic code over `sqlx::Database`) keeps each
//! backend's types concrete, which is what sqlx's runtime API is easy with.
//! Each backend supplies `begin_write()` (its writer serialisation) and its
//! migrations.

/// A [`Terminal`](super::Terminal) from the columns named `<prefix>id`, … of
/// a row (prefix `""` for `SELECT *`, `"t_"` in the joined signing context).
macro_rules! terminal_columns {
    ($r:expr, $p:literal) => {
        Ok::<_, $crate::store::StoreError>(Terminal {
            id: $r.try_get(concat!($p, "id"))?, facility_id: $r.try_get(concat!($p, "facility_id"))?, name: $r.try_get(concat!($p, "name"))?,
            secret_hash: $r.try_get(concat!($p, "secret_hash"))?, created_ms: $r.try_get(concat!($p, "created_ms"))?,
            revoked_ms: $r.try_get(concat!($p, "revoked_ms"))?,
        })
    };
}
pub(crate) use terminal_columns;

/// A [`Credential`](super::Credential) from prefixed columns (see [`terminal_columns`]).
macro_rules! credential_columns {
    ($r:expr, $p:literal) => {
        Ok::<_, $crate::store::StoreError>(Credential {
            id: $r.try_get(concat!($p, "id"))?, practitioner_id: $r.try_get(concat!($p, "practitioner_id"))?,
            algorithm: $r.try_get(concat!($p, "algorithm"))?, sealed_key: $r.try_get::<Vec<u8>, _>(concat!($p, "sealed_key"))?.into(),
            certificate_chain: chain_from_text(&$r.try_get::<String, _>(concat!($p, "certificate_chain"))?)?,
            created_ms: $r.try_get(concat!($p, "created_ms"))?, revoked_ms: $r.try_get(concat!($p, "revoked_ms"))?,
            revoked_reason: $r.try_get(concat!($p, "revoked_reason"))?,
        })
    };
}
pub(crate) use credential_columns;

/// A [`Grant`](super::Grant) from prefixed columns (see [`terminal_columns`]).
macro_rules! grant_columns {
    ($r:expr, $p:literal) => {
        Ok::<_, $crate::store::StoreError>(Grant {
            id: $r.try_get(concat!($p, "id"))?, practitioner_id: $r.try_get(concat!($p, "practitioner_id"))?,
            terminal_id: $r.try_get(concat!($p, "terminal_id"))?, device_id: $r.try_get(concat!($p, "device_id"))?,
            login_id: $r.try_get(concat!($p, "login_id"))?, token_hash: $r.try_get(concat!($p, "token_hash"))?,
            created_ms: $r.try_get(concat!($p, "created_ms"))?, expires_ms: $r.try_get(concat!($p, "expires_ms"))?,
            last_used_ms: $r.try_get(concat!($p, "last_used_ms"))?, idle_timeout_s: $r.try_get(concat!($p, "idle_timeout_s"))?,
            signature_cap: $r.try_get(concat!($p, "signature_cap"))?, signatures_made: $r.try_get(concat!($p, "signatures_made"))?,
            revoked_ms: $r.try_get(concat!($p, "revoked_ms"))?, revoked_reason: $r.try_get(concat!($p, "revoked_reason"))?,
        })
    };
}
pub(crate) use grant_columns;

/// [`super::Store::get_signing_context`]: the terminal, the grant of the
/// token and the credential, each column under its table's prefix.
pub(crate) const SIGNING_CONTEXT_SQL: &str = "SELECT \
    t.id AS t_id, t.facility_id AS t_facility_id, t.name AS t_name, t.secret_hash AS t_secret_hash, \
    t.created_ms AS t_created_ms, t.revoked_ms AS t_revoked_ms, \
    g.id AS g_id, g.practitioner_id AS g_practitioner_id, g.terminal_id AS g_terminal_id, g.device_id AS g_device_id, \
    g.login_id AS g_login_id, g.token_hash AS g_token_hash, g.created_ms AS g_created_ms, g.expires_ms AS g_expires_ms, \
    g.last_used_ms AS g_last_used_ms, g.idle_timeout_s AS g_idle_timeout_s, g.signature_cap AS g_signature_cap, \
    g.signatures_made AS g_signatures_made, g.revoked_ms AS g_revoked_ms, g.revoked_reason AS g_revoked_reason, \
    c.id AS c_id, c.practitioner_id AS c_practitioner_id, c.algorithm AS c_algorithm, c.sealed_key AS c_sealed_key, \
    c.certificate_chain AS c_certificate_chain, c.created_ms AS c_created_ms, c.revoked_ms AS c_revoked_ms, \
    c.revoked_reason AS c_revoked_reason \
    FROM terminals t \
    LEFT JOIN grants g ON g.token_hash = $2 \
    LEFT JOIN credentials c ON c.id = $3 \
    WHERE t.id = $1";

macro_rules! store_impl {
    ($store:ty, $db:ty, $row:ty, $dialect:expr) => {
        use sqlx::Row as _;
        use $crate::audit::chain::{entry_hash, ChainedEntry, GENESIS};
        use $crate::store::*;
        use $crate::store::change::Change;

        type Conn = <$db as sqlx::Database>::Connection;

        fn dup(e: sqlx::Error, what: &str) -> StoreError {
            match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Duplicate(what.to_owned()),
                _ => StoreError::Database(e),
            }
        }

        /// Appends one audit entry; returns its sequence number.
        async fn audit_tx(conn: &mut Conn, at_ms: i64, ev: &AuditEvent) -> StoreResult<i64> {
            let last = sqlx::query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
            let (prev_seq, prev_hash) = match last {
                Some(r) => (r.try_get::<i64, _>("seq")?, hash32(r.try_get::<Vec<u8>, _>("hash")?)?),
                None => (0, GENESIS),
            };
            let seq = prev_seq + 1;
            let details = ev.details.to_string();
            let hash = entry_hash(&prev_hash, seq, at_ms, &ev.actor, &ev.action, &ev.subject, &details);
            sqlx::query("INSERT INTO audit (seq, at_ms, actor, action, subject, details, prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)")
                .bind(seq).bind(at_ms).bind(&ev.actor).bind(&ev.action).bind(&ev.subject).bind(&details)
                .bind(&prev_hash[..]).bind(&hash[..])
                .execute(&mut *conn).await?;
            Ok(seq)
        }

        fn now_ms() -> i64 {
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
        }

        fn facility_row(r: &$row) -> StoreResult<Facility> {
            Ok(Facility { id: r.try_get("id")?, name: r.try_get("name")?, created_ms: r.try_get("created_ms")? })
        }
        fn terminal_row(r: &$row) -> StoreResult<Terminal> {
            $crate::store::queries::terminal_columns!(r, "")
        }
        fn credential_row(r: &$row) -> StoreResult<Credential> {
            $crate::store::queries::credential_columns!(r, "")
        }
        fn enrollment_row(r: &$row) -> StoreResult<Enrollment> {
            Ok(Enrollment {
                id: r.try_get("id")?, practitioner_id: r.try_get("practitioner_id")?, secret_hash: r.try_get("secret_hash")?,
                password_hash: r.try_get("password_hash")?, password_salt: r.try_get("password_salt")?,
                failed_attempts: r.try_get("failed_attempts")?, status: EnrollmentStatus::parse(&r.try_get::<String, _>("status")?)?,
                created_ms: r.try_get("created_ms")?, expires_ms: r.try_get("expires_ms")?, device_id: r.try_get("device_id")?,
            })
        }
        fn device_row(r: &$row) -> StoreResult<Device> {
            Ok(Device {
                id: r.try_get("id")?, practitioner_id: r.try_get("practitioner_id")?, name: r.try_get("name")?,
                platform: r.try_get("platform")?, public_key: r.try_get("public_key")?, token_hash: r.try_get("token_hash")?,
                attestation: r.try_get("attestation")?,
                attestation_facts: match r.try_get::<Option<String>, _>("attestation_facts")? {
                    Some(t) => Some(serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("device attestation facts: {e}")))?),
                    None => None,
                },
                created_ms: r.try_get("created_ms")?, revoked_ms: r.try_get("revoked_ms")?,
            })
        }
        fn login_row(r: &$row) -> StoreResult<Login> {
            let m: i64 = r.try_get("match_number")?;
            Ok(Login {
                id: r.try_get("id")?, terminal_id: r.try_get("terminal_id")?, device_code_hash: r.try_get("device_code_hash")?,
                user_code_hash: r.try_get("user_code_hash")?, code_device_id: r.try_get("code_device_id")?,
                secret_hash: r.try_get("secret_hash")?,
                secret_sealed: r.try_get("secret_sealed")?, challenge: r.try_get("challenge")?,
                number_choices: choices_from_text(&r.try_get::<String, _>("number_choices")?)?,
                match_number: u8::try_from(m).map_err(|_| StoreError::Corrupt("match number".into()))?,
                status: LoginStatus::parse(&r.try_get::<String, _>("status")?)?,
                created_ms: r.try_get("created_ms")?, expires_ms: r.try_get("expires_ms")?, last_poll_ms: r.try_get("last_poll_ms")?,
                poll_interval_s: r.try_get("poll_interval_s")?, decided_ms: r.try_get("decided_ms")?,
                device_id: r.try_get("device_id")?, grant_id: r.try_get("grant_id")?,
                confirmation_hash: r.try_get("confirmation_hash")?, confirmation_failures: r.try_get("confirmation_failures")?,
            })
        }
        fn grant_row(r: &$row) -> StoreResult<Grant> {
            $crate::store::queries::grant_columns!(r, "")
        }

        fn signature_row(r: &$row) -> StoreResult<SignatureEntry> {
            Ok(SignatureEntry {
                seq: r.try_get("seq")?, grant_id: r.try_get("grant_id")?, practitioner_id: r.try_get("practitioner_id")?,
                terminal_id: r.try_get("terminal_id")?, terminal_name: r.try_get("terminal_name")?,
                facility_id: r.try_get("facility_id")?, facility_name: r.try_get("facility_name")?,
                credential_id: r.try_get("credential_id")?, at_ms: r.try_get("at_ms")?, sign_algo: r.try_get("sign_algo")?,
                format: r.try_get("format")?, digest: r.try_get("digest")?, label: r.try_get("label")?,
            })
        }

        /// How far signing times may run behind recording order (a signDoc
        /// time is whole seconds, taken before signing; replicas' clocks).
        /// Only bounds the day view's index scan; the `at_ms` filter stays exact.
        const SIGNATURE_TIME_SKEW_MS: i64 = 60_000;

        fn audit_row(r: &$row) -> StoreResult<AuditEntry> {
            Ok(ChainedEntry {
                seq: r.try_get("seq")?, at_ms: r.try_get("at_ms")?, actor: r.try_get("actor")?,
                action: r.try_get("action")?, subject: r.try_get("subject")?, details: r.try_get("details")?,
                prev_hash: hash32(r.try_get("prev_hash")?)?, hash: hash32(r.try_get("hash")?)?,
            })
        }

        async fn practitioner_facilities(conn: &mut Conn, id: &str) -> StoreResult<Vec<String>> {
            let rows = sqlx::query("SELECT facility_id FROM practitioner_facilities WHERE practitioner_id = $1 ORDER BY facility_id")
                .bind(id).fetch_all(&mut *conn).await?;
            rows.iter().map(|r| Ok(r.try_get::<String, _>("facility_id")?)).collect()
        }

        /// Ends grants matching `cond` (an SQL condition over `$3`), auditing each.
        async fn revoke_grants_where(conn: &mut Conn, cond: &str, key: &str, reason: &str, now: i64, actor: &str) -> StoreResult<u32> {
            let sql = format!(
                "UPDATE grants SET revoked_ms = $1, revoked_reason = $2 WHERE revoked_ms IS NULL AND expires_ms > $1 AND {cond} RETURNING id"
            );
            let rows = sqlx::query(&sql).bind(now).bind(reason).bind(key).fetch_all(&mut *conn).await?;
            let mut ids: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<_, _>>()?;
            ids.sort();
            for id in &ids {
                audit_tx(conn, now, &AuditEvent::new(actor, "grant.revoke", id.clone(), serde_json::json!({ "reason": reason }))).await?;
            }
            Ok(ids.len() as u32)
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            fn changes(&self) -> Option<change::ChangeFeed> {
                self.change_feed()
            }

            async fn pending_migrations(&self) -> StoreResult<Vec<i64>> {
                let rows = sqlx::query("SELECT version FROM _sqlx_migrations WHERE success = TRUE").fetch_all(&self.pool).await?;
                let applied: std::collections::BTreeSet<i64> = rows.iter().map(|r| r.try_get::<i64, _>("version")).collect::<Result<_, _>>()?;
                Ok(Self::migrator()
                    .iter()
                    .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
                    .map(|m| m.version)
                    .collect())
            }

            async fn get_setting(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
                let r = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await?;
                Ok(match r { Some(r) => Some(r.try_get("value")?), None => None })
            }

            async fn put_setting_if_absent(&self, key: &str, value: &[u8]) -> StoreResult<Vec<u8>> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(key).bind(value).execute(&mut *w.tx).await?;
                let r = sqlx::query("SELECT value FROM settings WHERE key = $1").bind(key).fetch_one(&mut *w.tx).await?;
                let v: Vec<u8> = r.try_get("value")?;
                w.commit().await?;
                Ok(v)
            }

            async fn create_facility(&self, f: &Facility, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO facilities (id, name, created_ms) VALUES ($1,$2,$3)")
                    .bind(&f.id).bind(&f.name).bind(f.created_ms).execute(&mut *w.tx).await.map_err(|e| dup(e, "facility"))?;
                audit_tx(&mut *w.tx, f.created_ms, audit).await?;
                w.commit().await
            }

            async fn list_facilities(&self) -> StoreResult<Vec<Facility>> {
                let rows = sqlx::query("SELECT * FROM facilities ORDER BY created_ms, id").fetch_all(&self.pool).await?;
                rows.iter().map(facility_row).collect()
            }

            async fn get_facility(&self, id: &str) -> StoreResult<Option<Facility>> {
                let r = sqlx::query("SELECT * FROM facilities WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(facility_row).transpose()
            }

            async fn create_terminal(&self, t: &Terminal, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO terminals (id, facility_id, name, secret_hash, created_ms, revoked_ms) VALUES ($1,$2,$3,$4,$5,$6)")
                    .bind(&t.id).bind(&t.facility_id).bind(&t.name).bind(&t.secret_hash).bind(t.created_ms).bind(t.revoked_ms)
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "terminal"))?;
                audit_tx(&mut *w.tx, t.created_ms, audit).await?;
                w.commit().await
            }

            async fn list_terminals(&self) -> StoreResult<Vec<Terminal>> {
                let rows = sqlx::query("SELECT * FROM terminals ORDER BY created_ms, id").fetch_all(&self.pool).await?;
                rows.iter().map(terminal_row).collect()
            }

            async fn get_terminal(&self, id: &str) -> StoreResult<Option<Terminal>> {
                let r = sqlx::query("SELECT * FROM terminals WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(terminal_row).transpose()
            }

            async fn revoke_terminal(&self, id: &str, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE terminals SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                    .bind(now).bind(id).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now, audit).await?;
                revoke_grants_where(&mut *w.tx, "terminal_id = $3", id, "terminal revoked", now, &audit.actor).await?;
                w.publish(Change::Terminal { id: id.to_owned() }).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn create_practitioner(&self, p: &Practitioner, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO practitioners (id, display_name, role, created_ms) VALUES ($1,$2,$3,$4)")
                    .bind(&p.id).bind(&p.display_name).bind(&p.role).bind(p.created_ms)
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "practitioner"))?;
                for f in &p.facility_ids {
                    sqlx::query("INSERT INTO practitioner_facilities (practitioner_id, facility_id) VALUES ($1,$2)")
                        .bind(&p.id).bind(f).execute(&mut *w.tx).await.map_err(|e| dup(e, "practitioner facility"))?;
                }
                audit_tx(&mut *w.tx, p.created_ms, audit).await?;
                w.commit().await
            }

            async fn list_practitioners(&self) -> StoreResult<Vec<Practitioner>> {
                let mut conn = self.pool.acquire().await?;
                let rows = sqlx::query("SELECT * FROM practitioners ORDER BY created_ms, id").fetch_all(&mut *conn).await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let id: String = r.try_get("id")?;
                    let facility_ids = practitioner_facilities(&mut conn, &id).await?;
                    out.push(Practitioner {
                        id, display_name: r.try_get("display_name")?, role: r.try_get("role")?, facility_ids,
                        created_ms: r.try_get("created_ms")?,
                    });
                }
                Ok(out)
            }

            async fn get_practitioner(&self, id: &str) -> StoreResult<Option<Practitioner>> {
                let mut conn = self.pool.acquire().await?;
                let Some(r) = sqlx::query("SELECT * FROM practitioners WHERE id = $1").bind(id).fetch_optional(&mut *conn).await? else {
                    return Ok(None);
                };
                let facility_ids = practitioner_facilities(&mut conn, id).await?;
                Ok(Some(Practitioner {
                    id: id.to_owned(), display_name: r.try_get("display_name")?, role: r.try_get("role")?, facility_ids,
                    created_ms: r.try_get("created_ms")?,
                }))
            }

            async fn create_credential(&self, c: &Credential, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO credentials (id, practitioner_id, algorithm, sealed_key, certificate_chain, created_ms) VALUES ($1,$2,$3,$4,$5,$6)")
                    .bind(&c.id).bind(&c.practitioner_id).bind(&c.algorithm).bind(&*c.sealed_key)
                    .bind(chain_to_text(&c.certificate_chain)).bind(c.created_ms)
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "credential"))?;
                audit_tx(&mut *w.tx, c.created_ms, audit).await?;
                w.commit().await
            }

            async fn list_credentials(&self, practitioner_id: Option<&str>) -> StoreResult<Vec<Credential>> {
                let rows = match practitioner_id {
                    Some(p) => sqlx::query("SELECT * FROM credentials WHERE practitioner_id = $1 ORDER BY created_ms, id").bind(p).fetch_all(&self.pool).await?,
                    None => sqlx::query("SELECT * FROM credentials ORDER BY created_ms, id").fetch_all(&self.pool).await?,
                };
                rows.iter().map(credential_row).collect()
            }

            async fn get_credential(&self, id: &str) -> StoreResult<Option<Credential>> {
                let r = sqlx::query("SELECT * FROM credentials WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(credential_row).transpose()
            }

            async fn revoke_credential(&self, id: &str, reason: &str, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE credentials SET revoked_ms = $1, revoked_reason = $2 WHERE id = $3 AND revoked_ms IS NULL")
                    .bind(now).bind(reason).bind(id).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now, audit).await?;
                w.publish(Change::Credential { id: id.to_owned() }).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn create_enrollment(&self, e: &Enrollment, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO enrollments (id, practitioner_id, secret_hash, password_hash, password_salt, failed_attempts, status, created_ms, expires_ms, device_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)")
                    .bind(&e.id).bind(&e.practitioner_id).bind(&e.secret_hash).bind(&e.password_hash).bind(&e.password_salt)
                    .bind(e.failed_attempts).bind(e.status.as_str()).bind(e.created_ms).bind(e.expires_ms).bind(&e.device_id)
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "enrollment"))?;
                audit_tx(&mut *w.tx, e.created_ms, audit).await?;
                w.commit().await
            }

            async fn get_enrollment(&self, id: &str) -> StoreResult<Option<Enrollment>> {
                let r = sqlx::query("SELECT * FROM enrollments WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(enrollment_row).transpose()
            }

            async fn reserve_enrollment_attempt(&self, id: &str, max_attempts: i64, now: i64) -> StoreResult<Option<i64>> {
                let mut w = self.begin_write().await?;
                let r = sqlx::query(
                    "UPDATE enrollments SET failed_attempts = failed_attempts + 1 \
                     WHERE id = $1 AND status = 'pending' AND failed_attempts < $2 AND expires_ms > $3 RETURNING failed_attempts",
                )
                .bind(id).bind(max_attempts).bind(now).fetch_optional(&mut *w.tx).await?;
                let n = r.map(|r| r.try_get::<i64, _>("failed_attempts")).transpose()?;
                w.commit().await?;
                Ok(n)
            }

            async fn record_enrollment_failure(&self, id: &str, max_attempts: i64, audit: &AuditEvent) -> StoreResult<Option<Enrollment>> {
                let mut w = self.begin_write().await?;
                sqlx::query("UPDATE enrollments SET status = 'locked' WHERE id = $1 AND status = 'pending' AND failed_attempts >= $2")
                    .bind(id).bind(max_attempts).execute(&mut *w.tx).await?;
                let r = sqlx::query("SELECT * FROM enrollments WHERE id = $1").bind(id).fetch_optional(&mut *w.tx).await?;
                let e = r.as_ref().map(enrollment_row).transpose()?;
                if e.is_some() {
                    audit_tx(&mut *w.tx, now_ms(), audit).await?;
                }
                w.commit().await?;
                Ok(e)
            }

            async fn complete_enrollment(&self, enrollment_id: &str, d: &Device, retire_others: bool, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE enrollments SET status = 'used', device_id = $1 WHERE id = $2 AND status = 'pending' AND expires_ms > $3")
                    .bind(&d.id).bind(enrollment_id).bind(now).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                if retire_others {
                    let rows = sqlx::query("UPDATE devices SET revoked_ms = $1 WHERE practitioner_id = $2 AND revoked_ms IS NULL RETURNING id")
                        .bind(now).bind(&d.practitioner_id).fetch_all(&mut *w.tx).await?;
                    let mut ids: Vec<String> = rows.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<_, _>>()?;
                    ids.sort();
                    for old in &ids {
                        audit_tx(&mut *w.tx, now, &AuditEvent::new("system", "device.retire", old.clone(), serde_json::json!({ "replaced_by": d.id }))).await?;
                        revoke_grants_where(&mut *w.tx, "device_id = $3", old, "device retired", now, "system").await?;
                    }
                    for old in ids {
                        w.publish(Change::Device { id: old }).await?;
                    }
                }
                sqlx::query("INSERT INTO devices (id, practitioner_id, name, platform, public_key, token_hash, attestation, created_ms, revoked_ms, attestation_facts) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)")
                    .bind(&d.id).bind(&d.practitioner_id).bind(&d.name).bind(&d.platform).bind(&d.public_key)
                    .bind(&d.token_hash).bind(&d.attestation).bind(d.created_ms).bind(d.revoked_ms)
                    .bind(d.attestation_facts.as_ref().map(|f| serde_json::to_string(f).expect("facts serialize")))
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "device"))?;
                audit_tx(&mut *w.tx, now, audit).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn get_device(&self, id: &str) -> StoreResult<Option<Device>> {
                let r = sqlx::query("SELECT * FROM devices WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(device_row).transpose()
            }

            async fn get_device_by_token_hash(&self, h: &[u8]) -> StoreResult<Option<Device>> {
                let r = sqlx::query("SELECT * FROM devices WHERE token_hash = $1").bind(h).fetch_optional(&self.pool).await?;
                r.as_ref().map(device_row).transpose()
            }

            async fn list_devices(&self, practitioner_id: Option<&str>) -> StoreResult<Vec<Device>> {
                let rows = match practitioner_id {
                    Some(p) => sqlx::query("SELECT * FROM devices WHERE practitioner_id = $1 ORDER BY created_ms, id").bind(p).fetch_all(&self.pool).await?,
                    None => sqlx::query("SELECT * FROM devices ORDER BY created_ms, id").fetch_all(&self.pool).await?,
                };
                rows.iter().map(device_row).collect()
            }

            async fn revoke_device(&self, id: &str, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE devices SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                    .bind(now).bind(id).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now, audit).await?;
                revoke_grants_where(&mut *w.tx, "device_id = $3", id, "device revoked", now, &audit.actor).await?;
                w.publish(Change::Device { id: id.to_owned() }).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn create_login(&self, l: &Login, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                sqlx::query("INSERT INTO logins (id, terminal_id, device_code_hash, user_code_hash, secret_hash, challenge, number_choices, match_number, status, created_ms, expires_ms, last_poll_ms, poll_interval_s, decided_ms, device_id, grant_id, secret_sealed, code_device_id) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)")
                    .bind(&l.id).bind(&l.terminal_id).bind(&l.device_code_hash).bind(&l.user_code_hash).bind(&l.secret_hash)
                    .bind(&l.challenge).bind(choices_to_text(&l.number_choices)).bind(l.match_number as i64)
                    .bind(l.status.as_str()).bind(l.created_ms).bind(l.expires_ms).bind(l.last_poll_ms).bind(l.poll_interval_s)
                    .bind(l.decided_ms).bind(&l.device_id).bind(&l.grant_id).bind(&l.secret_sealed).bind(&l.code_device_id)
                    .execute(&mut *w.tx).await.map_err(|e| dup(e, "login"))?;
                audit_tx(&mut *w.tx, l.created_ms, audit).await?;
                w.commit().await
            }

            async fn get_login(&self, id: &str) -> StoreResult<Option<Login>> {
                let r = sqlx::query("SELECT * FROM logins WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(login_row).transpose()
            }

            async fn get_login_by_device_code_hash(&self, h: &[u8]) -> StoreResult<Option<Login>> {
                let r = sqlx::query("SELECT * FROM logins WHERE device_code_hash = $1").bind(h).fetch_optional(&self.pool).await?;
                r.as_ref().map(login_row).transpose()
            }

            async fn get_login_by_user_code_hash(&self, h: &[u8]) -> StoreResult<Option<Login>> {
                // Index logins_user_code_hash; the newest wins (codes of old
                // decided logins may repeat, open ones do not: start_login redraws).
                let r = sqlx::query("SELECT * FROM logins WHERE user_code_hash = $1 ORDER BY created_ms DESC LIMIT 1")
                    .bind(h).fetch_optional(&self.pool).await?;
                r.as_ref().map(login_row).transpose()
            }

            async fn mark_login_code_resolved(&self, login_id: &str, device_id: &str, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE logins SET code_device_id = $1 WHERE id = $2 AND status = 'pending' AND expires_ms > $3")
                    .bind(device_id).bind(login_id).bind(now).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now, audit).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn decided_logins(&self, ids: &[String]) -> StoreResult<Vec<(String, LoginStatus)>> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
                let sql = format!("SELECT id, status FROM logins WHERE status <> 'pending' AND id IN ({})", marks.join(","));
                let mut q = sqlx::query(&sql);
                for id in ids {
                    q = q.bind(id);
                }
                let rows = q.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok((r.try_get::<String, _>("id")?, LoginStatus::parse(&r.try_get::<String, _>("status")?)?)))
                    .collect()
            }

            async fn decide_login(&self, d: &LoginDecision) -> StoreResult<DecideOutcome> {
                let mut w = self.begin_write().await?;
                let grant_id = d.grant.as_ref().map(|g| g.id.clone());
                let n = sqlx::query("UPDATE logins SET status = $1, decided_ms = $2, device_id = $3, grant_id = $4, confirmation_hash = $6 WHERE id = $5 AND status = 'pending' AND expires_ms > $2")
                    .bind(d.status.as_str()).bind(d.now_ms).bind(&d.device_id).bind(&grant_id).bind(&d.login_id).bind(&d.confirmation_hash)
                    .execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(DecideOutcome::NotPending);
                }
                if let Some(e) = &d.evidence {
                    sqlx::query("INSERT INTO decision_evidence (login_id, device_id, outcome, reason, message, signature, public_key, attestation, decided_ms) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)")
                        .bind(&e.login_id).bind(&e.device_id).bind(e.outcome.as_str()).bind(&e.reason).bind(&e.message)
                        .bind(&e.signature).bind(&e.public_key).bind(&e.attestation).bind(e.decided_ms)
                        .execute(&mut *w.tx).await.map_err(|e| dup(e, "decision evidence"))?;
                }
                if let Some(g) = &d.grant {
                    sqlx::query("INSERT INTO grants (id, practitioner_id, terminal_id, device_id, login_id, token_hash, created_ms, expires_ms, last_used_ms, idle_timeout_s, signature_cap, signatures_made, revoked_ms, revoked_reason) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)")
                        .bind(&g.id).bind(&g.practitioner_id).bind(&g.terminal_id).bind(&g.device_id).bind(&g.login_id)
                        .bind(&g.token_hash).bind(g.created_ms).bind(g.expires_ms).bind(g.last_used_ms).bind(g.idle_timeout_s)
                        .bind(g.signature_cap).bind(g.signatures_made).bind(g.revoked_ms).bind(&g.revoked_reason)
                        .execute(&mut *w.tx).await.map_err(|e| dup(e, "grant"))?;
                }
                audit_tx(&mut *w.tx, d.now_ms, &d.audit).await?;
                w.publish(Change::Login { id: d.login_id.clone(), status: d.status.as_str().to_owned() }).await?;
                w.commit().await?;
                Ok(DecideOutcome::Done)
            }

            async fn get_decision_evidence(&self, login_id: &str) -> StoreResult<Option<DecisionEvidence>> {
                let r = sqlx::query("SELECT * FROM decision_evidence WHERE login_id = $1").bind(login_id).fetch_optional(&self.pool).await?;
                r.as_ref()
                    .map(|r| {
                        Ok(DecisionEvidence {
                            login_id: r.try_get("login_id")?, device_id: r.try_get("device_id")?,
                            outcome: LoginStatus::parse(&r.try_get::<String, _>("outcome")?)?, reason: r.try_get("reason")?,
                            message: r.try_get("message")?, signature: r.try_get("signature")?, public_key: r.try_get("public_key")?,
                            attestation: r.try_get("attestation")?, decided_ms: r.try_get("decided_ms")?,
                        })
                    })
                    .transpose()
            }

            async fn record_confirmation_failure(&self, login_id: &str, grant_id: &str, max_failures: i64, now: i64, audit: &AuditEvent) -> StoreResult<i64> {
                let mut w = self.begin_write().await?;
                let row = sqlx::query("UPDATE logins SET confirmation_failures = confirmation_failures + 1 WHERE id = $1 RETURNING confirmation_failures")
                    .bind(login_id).fetch_optional(&mut *w.tx).await?;
                let Some(row) = row else { return Err(StoreError::Corrupt(format!("login {login_id} vanished"))) };
                let failures: i64 = row.try_get("confirmation_failures")?;
                audit_tx(&mut *w.tx, now, audit).await?;
                if failures >= max_failures {
                    let n = sqlx::query("UPDATE grants SET revoked_ms = $1, revoked_reason = 'confirmation failed' WHERE id = $2 AND revoked_ms IS NULL")
                        .bind(now).bind(grant_id).execute(&mut *w.tx).await?.rows_affected();
                    if n > 0 {
                        audit_tx(&mut *w.tx, now, &AuditEvent::new(audit.actor.clone(), "grant.revoke", grant_id, serde_json::json!({ "reason": "confirmation failed" }))).await?;
                        w.publish(Change::Grant { id: grant_id.to_owned() }).await?;
                    }
                }
                w.commit().await?;
                Ok(failures)
            }

            async fn touch_login_poll(&self, id: &str, now: i64, interval_s: i64) -> StoreResult<()> {
                // Not audited: polling is not a state change anyone relies on.
                sqlx::query("UPDATE logins SET last_poll_ms = $1, poll_interval_s = $2 WHERE id = $3")
                    .bind(now).bind(interval_s).bind(id).execute(&self.pool).await?;
                Ok(())
            }

            async fn get_grant(&self, id: &str) -> StoreResult<Option<Grant>> {
                let r = sqlx::query("SELECT * FROM grants WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
                r.as_ref().map(grant_row).transpose()
            }

            async fn get_grant_by_token_hash(&self, h: &[u8]) -> StoreResult<Option<Grant>> {
                let r = sqlx::query("SELECT * FROM grants WHERE token_hash = $1").bind(h).fetch_optional(&self.pool).await?;
                r.as_ref().map(grant_row).transpose()
            }

            async fn get_signing_context(&self, terminal_id: &str, token_hash: &[u8], credential_id: &str) -> StoreResult<Option<SigningContext>> {
                // Each LEFT JOIN finds at most one row (token_hash is UNIQUE,
                // id the primary key), so this is one row or none.
                let r = sqlx::query($crate::store::queries::SIGNING_CONTEXT_SQL).bind(terminal_id).bind(token_hash).bind(credential_id).fetch_optional(&self.pool).await?;
                let Some(r) = r else { return Ok(None) };
                let grant = match r.try_get::<Option<String>, _>("g_id")? {
                    Some(_) => Some($crate::store::queries::grant_columns!(&r, "g_")?),
                    None => None,
                };
                let credential = match r.try_get::<Option<String>, _>("c_id")? {
                    Some(_) => Some($crate::store::queries::credential_columns!(&r, "c_")?),
                    None => None,
                };
                Ok(Some(SigningContext { terminal: $crate::store::queries::terminal_columns!(&r, "t_")?, grant, credential }))
            }

            async fn issue_grant_token(&self, grant_id: &str, token_hash: &[u8], audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE grants SET token_hash = $1 WHERE id = $2 AND token_hash IS NULL AND revoked_ms IS NULL")
                    .bind(token_hash).bind(grant_id).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now_ms(), audit).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn list_grants(&self, practitioner_id: Option<&str>, active_at: Option<i64>) -> StoreResult<Vec<Grant>> {
                let mut sql = String::from("SELECT * FROM grants WHERE 1 = 1");
                if practitioner_id.is_some() {
                    sql.push_str(" AND practitioner_id = $1");
                } else {
                    sql.push_str(" AND ($1 IS NULL OR 1 = 1)");
                }
                if active_at.is_some() {
                    sql.push_str(" AND revoked_ms IS NULL AND expires_ms > $2");
                } else {
                    sql.push_str(" AND ($2 IS NULL OR 1 = 1)");
                }
                sql.push_str(" ORDER BY created_ms DESC, id");
                let rows = sqlx::query(&sql).bind(practitioner_id).bind(active_at).fetch_all(&self.pool).await?;
                rows.iter().map(grant_row).collect()
            }

            async fn revoke_grant(&self, id: &str, reason: &str, now: i64, audit: &AuditEvent) -> StoreResult<bool> {
                let mut w = self.begin_write().await?;
                let n = sqlx::query("UPDATE grants SET revoked_ms = $1, revoked_reason = $2 WHERE id = $3 AND revoked_ms IS NULL")
                    .bind(now).bind(reason).bind(id).execute(&mut *w.tx).await?.rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                audit_tx(&mut *w.tx, now, audit).await?;
                w.publish(Change::Grant { id: id.to_owned() }).await?;
                w.commit().await?;
                Ok(true)
            }

            async fn revoke_practitioner_grants(&self, practitioner_id: &str, reason: &str, now: i64, audit: &AuditEvent) -> StoreResult<u32> {
                let mut w = self.begin_write().await?;
                let n = revoke_grants_where(&mut *w.tx, "practitioner_id = $3", practitioner_id, reason, now, &audit.actor).await?;
                audit_tx(&mut *w.tx, now, audit).await?;
                if n > 0 {
                    w.publish(Change::Practitioner { id: practitioner_id.to_owned() }).await?;
                }
                w.commit().await?;
                Ok(n)
            }

            async fn record_signatures(&self, records: Vec<SignatureRecord>) -> StoreResult<Vec<RecordOutcome>> {
                // Each backend's group commit (store::group_commit).
                self.commit_signatures(records).await
            }

            async fn signature_watermark(&self, practitioner_id: &str) -> StoreResult<i64> {
                let r = sqlx::query("SELECT seq FROM signatures WHERE practitioner_id = $1 ORDER BY seq DESC LIMIT 1")
                    .bind(practitioner_id).fetch_optional(&self.pool).await?;
                Ok(match r { Some(r) => r.try_get("seq")?, None => 0 })
            }

            async fn grant_signatures(&self, grant_id: &str, page: SignaturePage) -> StoreResult<Vec<SignatureEntry>> {
                let sql = signing_log_sql::grant_page($dialect);
                let rows = sqlx::query(&sql).bind(grant_id).bind(page.watermark).bind(page.before_seq.unwrap_or(i64::MAX)).bind(page.limit)
                    .fetch_all(&self.pool).await?;
                rows.iter().map(signature_row).collect()
            }

            async fn practitioner_signatures(&self, practitioner_id: &str, from_ms: i64, page: SignaturePage) -> StoreResult<Vec<SignatureEntry>> {
                // If times never run more than the skew behind recording
                // order, every signature at or after `from_ms` was recorded
                // after any one made before `from_ms - skew`: take the latest
                // such one (one index seek) as the scan's lower bound.
                let before = sqlx::query("SELECT seq FROM signatures WHERE practitioner_id = $1 AND at_ms < $2 ORDER BY practitioner_id DESC, at_ms DESC LIMIT 1")
                    .bind(practitioner_id).bind(from_ms.saturating_sub(SIGNATURE_TIME_SKEW_MS)).fetch_optional(&self.pool).await?;
                let first_seq: i64 = match before { Some(r) => r.try_get::<i64, _>("seq")? + 1, None => 0 };
                let sql = signing_log_sql::practitioner_page($dialect);
                let rows = sqlx::query(&sql).bind(practitioner_id).bind(page.watermark).bind(page.before_seq.unwrap_or(i64::MAX)).bind(page.limit)
                    .bind(first_seq).bind(from_ms)
                    .fetch_all(&self.pool).await?;
                rows.iter().map(signature_row).collect()
            }

            async fn signatures_since(&self, practitioner_id: &str, grant_id: Option<&str>, after_seq: i64, limit: i64) -> StoreResult<Vec<SignatureEntry>> {
                let rows = match grant_id {
                    Some(g) => {
                        let sql = signing_log_sql::grant_since($dialect);
                        sqlx::query(&sql).bind(g).bind(practitioner_id).bind(after_seq).bind(limit).fetch_all(&self.pool).await?
                    }
                    None => {
                        let sql = signing_log_sql::practitioner_since($dialect);
                        sqlx::query(&sql).bind(practitioner_id).bind(after_seq).bind(limit).fetch_all(&self.pool).await?
                    }
                };
                rows.iter().map(signature_row).collect()
            }

            async fn append_audit(&self, at_ms: i64, audit: &AuditEvent) -> StoreResult<()> {
                let mut w = self.begin_write().await?;
                audit_tx(&mut *w.tx, at_ms, audit).await?;
                w.commit().await
            }

            async fn sweep_expired(&self, before: i64, limit: i64, now: i64) -> StoreResult<SweepReport> {
                let mut w = self.begin_write().await?;
                let logins = sqlx::query(
                    "DELETE FROM logins WHERE id IN (SELECT id FROM logins WHERE status = 'pending' AND expires_ms < $1 ORDER BY expires_ms, id LIMIT $2) RETURNING id",
                )
                .bind(before).bind(limit).fetch_all(&mut *w.tx).await?;
                let enrollments = sqlx::query(
                    "DELETE FROM enrollments WHERE id IN (SELECT id FROM enrollments WHERE status IN ('pending', 'locked') AND expires_ms < $1 ORDER BY expires_ms, id LIMIT $2) RETURNING id",
                )
                .bind(before).bind(limit).fetch_all(&mut *w.tx).await?;
                let mut report = SweepReport {
                    logins: logins.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<_, _>>()?,
                    enrollments: enrollments.iter().map(|r| r.try_get::<String, _>("id")).collect::<Result<_, _>>()?,
                };
                report.logins.sort();
                report.enrollments.sort();
                if !report.logins.is_empty() || !report.enrollments.is_empty() {
                    let ev = AuditEvent::new(
                        "system",
                        "sweep.expired",
                        "logins+enrollments",
                        serde_json::json!({ "logins": report.logins, "enrollments": report.enrollments, "expired_before_ms": before }),
                    );
                    audit_tx(&mut *w.tx, now, &ev).await?;
                }
                w.commit().await?;
                Ok(report)
            }

            async fn audit_entries(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query("SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2")
                    .bind(after_seq).bind(limit).fetch_all(&self.pool).await?;
                rows.iter().map(audit_row).collect()
            }

            async fn audit_head(&self) -> StoreResult<Option<AuditEntry>> {
                let r = sqlx::query("SELECT * FROM audit ORDER BY seq DESC LIMIT 1").fetch_optional(&self.pool).await?;
                r.as_ref().map(audit_row).transpose()
            }
        }
    };
}

pub(crate) use store_impl;
