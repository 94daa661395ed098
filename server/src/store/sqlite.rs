//! The embedded default store: one SQLite file under the data directory,
//! WAL journal, migrations applied on open.
//!
//! SQLite allows one writer at a time and a deferred transaction that
//! upgrades from read to write can fail at once with SQLITE_BUSY when
//! another writer got there first; an in-process writer lock serialises
//! write transactions instead (which the audit chain needs anyway), while
//! readers use the pool freely under WAL.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, MutexGuard};

use super::{StoreError, StoreResult};

/// This backend's schema migrations, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// Page cache per pooled connection, KiB (SQLite's `cache_size` as a negative number).
pub const PAGE_CACHE_KIB: u32 = 512;

/// SQLite-backed [`super::Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Mutex<()>,
    committer: Committer,
}

pub(crate) struct WriteTx<'a> {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _guard: MutexGuard<'a, ()>,
}

impl WriteTx<'_> {
    /// One process owns a SQLite file: nobody else holds state a change
    /// could make stale, so nothing is published (the services wake and
    /// release in-process).
    pub(crate) async fn publish(&mut self, change: super::change::Change) -> StoreResult<()> {
        let _ = change;
        Ok(())
    }

    pub(crate) async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(StoreError::from)
    }
}

impl SqliteStore {
    const BACKEND: &'static str = "sqlite";

    /// The migrations this binary applies on open (readiness compares them
    /// with the database's record).
    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    /// Opens (creating if needed) the database file and applies migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(StoreError::from)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL is durable against process crashes; FULL also
            // against power loss, which is what "committed before the
            // response" means for a signing record.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Each pooled connection keeps its own page cache, 2 MB by
            // default: up to 16 MB for the pool, filled by any burst of
            // writes and kept (105.5 → 80.1 MiB of server RSS with 10,000
            // terminals waiting, docs/performance.md). The hot pages of a
            // signing call (terminal,
            // grant by token, credential, the audit head) fit many times in
            // 512 KiB; colder pages come from the OS's file cache.
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"))
            .busy_timeout(Duration::from_secs(10));
        // No ping before each checkout (sqlx's default): a connection to a
        // local file does not go stale, and the ping is one more round trip
        // to the connection's thread on every statement.
        let pool = SqlitePoolOptions::new().max_connections(8).test_before_acquire(false).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        let committer = Committer::start(path)?;
        Ok(SqliteStore { pool, writer: Mutex::new(()), committer })
    }

    /// The group commit ([`super::Store::record_signatures`]), on the
    /// commit thread; the writer lock keeps the process's other writers
    /// (which write through the pool) out until it has committed, so the
    /// file's own write lock is never contended.
    async fn commit_signatures(&self, records: Vec<super::SignatureRecord>) -> StoreResult<Vec<super::RecordOutcome>> {
        let _writer = self.writer.lock().await;
        self.committer.commit(records).await
    }

    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let guard = self.writer.lock().await;
        let tx = self.pool.begin().await?;
        Ok(WriteTx { tx, _guard: guard })
    }

    /// The pool, for tests that tamper with rows on purpose.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// No other replica writes this file: no feed.
    pub(crate) fn change_feed(&self) -> Option<super::change::ChangeFeed> {
        None
    }
}

/// One batch for the commit thread, and where its answer goes.
struct Job {
    records: Vec<super::SignatureRecord>,
    reply: tokio::sync::oneshot::Sender<StoreResult<Vec<super::RecordOutcome>>>,
}

/// SQLite's group commit on a thread that owns a connection of its own.
///
/// Why: sqlx runs every statement on its pooled connection's thread and
/// hands each answer back over a rendezvous, so `BEGIN`, the read, the
/// write and `COMMIT` were four round trips between threads per batch
/// (each a park and a wake on both sides), and the write's rows travelled
/// as JSON text that SQLite parsed again. Here a batch crosses once: this
/// thread runs `BEGIN IMMEDIATE`, the read, the rule, one prepared insert
/// per row and `COMMIT` (fsync'ed: `synchronous = FULL`, as the pool), then
/// answers. Same statements' effect, same rule and chain
/// (`store::group_commit`). The thread ends when the store is dropped.
struct Committer {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Committer {
    fn start(path: &Path) -> StoreResult<Committer> {
        let conn = rusqlite::Connection::open(path)?;
        // The pool's settings that are per connection (WAL is the file's).
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        conn.pragma_update(None, "cache_size", format!("-{PAGE_CACHE_KIB}"))?;
        let (jobs, incoming) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-commit".into())
            .spawn(move || {
                let mut conn = conn;
                for job in incoming {
                    let _ = job.reply.send(commit(&mut conn, &job.records));
                }
            })
            .map_err(|_| StoreError::CommitThreadStopped)?;
        Ok(Committer { jobs })
    }

    async fn commit(&self, records: Vec<super::SignatureRecord>) -> StoreResult<Vec<super::RecordOutcome>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs.send(Job { records, reply }).map_err(|_| StoreError::CommitThreadStopped)?;
        answer.await.map_err(|_| StoreError::CommitThreadStopped)?
    }
}

/// One batch in one transaction (dropped unfinished: rolled back).
fn commit(conn: &mut rusqlite::Connection, records: &[super::SignatureRecord]) -> StoreResult<Vec<super::RecordOutcome>> {
    use super::group_commit::{self as group, sqlite as statements};
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (grant_ids, credential_ids) = group::ids(records);
    let read = statements::read(&tx, &grant_ids, &credential_ids)?;
    let plan = group::plan(records, read)?;
    statements::write(&tx, &plan.write)?;
    tx.commit()?;
    // `plan.used_up` is for other replicas: one process owns a SQLite file.
    Ok(plan.outcomes)
}

super::queries::store_impl!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, super::signing_log_sql::Dialect::Sqlite);
