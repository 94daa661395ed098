//! PostgreSQL store, for running several stateless replicas on one
//! database. Writers serialise on a transaction-scoped advisory lock so
//! that audit entries get a gap-free total order across replicas; the
//! single-use rules are conditional updates as in SQLite.

use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{StoreError, StoreResult};

/// Advisory lock key of the audit chain ("shomei" in ASCII, fits i64).
const AUDIT_LOCK_KEY: i64 = 0x73686f6d6569;

/// This backend's schema migrations, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// PostgreSQL-backed [`super::Store`].
pub struct PgStore {
    pool: PgPool,
}

pub(crate) struct WriteTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(StoreError::from)
    }
}

impl PgStore {
    const BACKEND: &'static str = "postgres";

    /// The migrations this binary applies on open (readiness compares them
    /// with the database's record).
    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Connects and applies migrations.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(AUDIT_LOCK_KEY).execute(&mut *tx).await?;
        Ok(WriteTx { tx })
    }

    /// The pool, for tests that tamper with rows on purpose.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

super::queries::store_impl!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, super::signing_log_sql::Dialect::Postgres);
