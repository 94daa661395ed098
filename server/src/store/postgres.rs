//! PostgreSQL store, for running several stateless replicas on one
//! database. Writers serialise on a transaction-scoped advisory lock so
//! that audit entries get a gap-free total order across replicas; the
//! single-use rules are conditional updates as in SQLite.
//!
//! Replicas hear of each other's changes through `LISTEN`/`NOTIFY`
//! ([`super::change`]): every write transaction that changes what another
//! replica holds in memory (a login's waiters, a grant's held key) calls
//! `pg_notify` before its COMMIT, and [`PgStore::change_feed`] keeps one
//! listening connection per replica, outside the pool, reconnecting with
//! backoff.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;

use super::change::{self, ChangeEvent, ChangeFeed, ChangeNotice};
use super::{StoreError, StoreResult};

/// Advisory lock key of the audit chain ("shomei" in ASCII, fits i64).
const AUDIT_LOCK_KEY: i64 = 0x73686f6d6569;
/// `BEGIN` and the writer lock, sent together.
static BEGIN_WRITE: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("BEGIN; SELECT pg_advisory_xact_lock({AUDIT_LOCK_KEY})"));

/// A pooled connection idle this long is pinged before it is used again.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(30);

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
    /// Queues `change` for every listening replica; PostgreSQL delivers it
    /// at COMMIT, and never if the transaction rolls back. Call it last,
    /// just before [`WriteTx::commit`]: its time is the notice's `at_ms`.
    pub(crate) async fn publish(&mut self, change: change::Change) -> StoreResult<()> {
        let payload = ChangeNotice { change, at_ms: change::wall_ms() }.to_payload();
        sqlx::query("SELECT pg_notify($1, $2)").bind(change::CHANNEL).bind(payload).execute(&mut *self.tx).await?;
        Ok(())
    }

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
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // sqlx pings every connection it checks out by default: a full
            // round trip to the server before each statement, which doubled
            // what a signHash waits on. Only a connection that sat idle long
            // enough for a firewall or the server to have dropped it is
            // pinged now; a busy pool's connections have just been used.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn begin_write(&self) -> StoreResult<WriteTx> {
        // BEGIN and the lock in one round trip (a simple-protocol query of
        // two statements): a write holds the lock for all its round trips,
        // and replicas' writes queue behind it.
        let tx = self.pool.begin_with(BEGIN_WRITE.as_str()).await?;
        Ok(WriteTx { tx })
    }

    /// The group commit ([`super::Store::record_signatures`]): under the
    /// writer lock no grant or credential changes until this commits (a
    /// revocation committed before it wins, so no signature is returned
    /// after it). One read (the batch's grants, revoked credentials and the
    /// audit head), the per-record rule in order, one write (the grants'
    /// counters, audit entries and signing-log rows), then `COMMIT`.
    async fn commit_signatures(&self, records: Vec<super::SignatureRecord>) -> StoreResult<Vec<super::RecordOutcome>> {
        use super::group_commit::{self as group, postgres as statements};
        let records = records.as_slice();
        let mut w = self.begin_write().await?;
        let (grant_ids, credential_ids) = group::ids(records);
        let read = statements::read(&mut w.tx, &grant_ids, &credential_ids).await?;
        let plan = group::plan(records, read)?;
        statements::write(&mut w.tx, &plan.write).await?;
        for id in plan.used_up {
            w.publish(super::change::Change::Grant { id }).await?;
        }
        w.commit().await?;
        Ok(plan.outcomes)
    }

    /// The pool, for tests that tamper with rows on purpose.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Starts this replica's listener: one connection of its own (a pool of
    /// one, outside the store's pool, named [`LISTENER_APPLICATION_NAME`] in
    /// `pg_stat_activity`) that `LISTEN`s on [`change::CHANNEL`]; see
    /// [`follow`]. Ends when the feed is dropped.
    pub(crate) fn change_feed(&self) -> Option<ChangeFeed> {
        let opts: PgConnectOptions = (*self.pool.connect_options()).clone().application_name(LISTENER_APPLICATION_NAME);
        let (tx, rx) = mpsc::channel(FEED_BUFFER);
        tokio::spawn(follow(opts, tx));
        Some(rx)
    }
}

/// `application_name` of the listening connections (find them in
/// `pg_stat_activity`).
pub const LISTENER_APPLICATION_NAME: &str = "shomei-listener";
/// Events buffered between the listener and its follower.
const FEED_BUFFER: usize = 1024;
/// First wait before reconnecting; doubled per failure up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// With no notice for this long, the listener asks its connection a
/// question: a connection that died silently (no FIN, e.g. a dropped
/// network path) is found within `HEARTBEAT + HEARTBEAT_TIMEOUT`.
const HEARTBEAT: Duration = Duration::from_secs(10);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a connection to listen (connect, `LISTEN`, pid).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects and `LISTEN`s; the connection's backend pid. Each attempt
/// gets a pool of its own (of one connection), so a dead connection that
/// is still being let go of never stands in the way of the next one.
async fn listen(opts: &PgConnectOptions) -> Result<(PgListener, u32), sqlx::Error> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(opts.clone());
    let mut listener = PgListener::connect_with(&pool).await?;
    // A loss is reported to us (`Ok(None)`) and we reconnect ourselves.
    listener.eager_reconnect(false);
    listener.listen(change::CHANNEL).await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(&mut listener).await?;
    Ok((listener, pid as u32))
}

/// The listener loop: listen, forward every notice, and on any failure
/// (an I/O error, the server ending the session, a silent connection)
/// drop the connection, report [`ChangeEvent::Lost`], reconnect with
/// backoff, and report [`ChangeEvent::Listening`] once `LISTEN` is in
/// place again — so that the follower's re-read covers the gap.
async fn follow(opts: PgConnectOptions, tx: mpsc::Sender<ChangeEvent>) {
    let mut backoff = BACKOFF_MIN;
    let mut reconnect = false;
    loop {
        let (mut listener, session) = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, listen(&opts)) => match r.unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut)) {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "replica listener: cannot listen; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = tx.closed() => return,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            },
            _ = tx.closed() => return,
        };
        backoff = BACKOFF_MIN;
        tracing::info!(session, reconnect, channel = change::CHANNEL, "replica listener: listening");
        if tx.send(ChangeEvent::Listening { reconnect, session }).await.is_err() {
            return;
        }
        reconnect = true;
        let why = loop {
            let next = tokio::select! {
                // (try_recv is cancel-safe: sqlx keeps a partly read message buffered)
                r = listener.try_recv() => r,
                _ = tokio::time::sleep(HEARTBEAT) => {
                    match tokio::time::timeout(HEARTBEAT_TIMEOUT, sqlx::query("SELECT 1").execute(&mut listener)).await {
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => break format!("heartbeat failed: {e}"),
                        Err(_) => break "heartbeat timed out".to_owned(),
                    }
                }
                _ = tx.closed() => return,
            };
            let event = match next {
                Ok(Some(n)) => match ChangeNotice::from_payload(n.payload()) {
                    Some(notice) => ChangeEvent::Committed(notice),
                    None => ChangeEvent::Unreadable,
                },
                Ok(None) => break "connection lost".to_owned(),
                Err(e) => break e.to_string(),
            };
            if tx.send(event).await.is_err() {
                return;
            }
        };
        tracing::warn!(session, reason = %why, "replica listener: connection lost; reconnecting");
        // Dropped, not reused: the next `listen` starts from a fresh session.
        drop(listener);
        if tx.send(ChangeEvent::Lost).await.is_err() {
            return;
        }
    }
}

super::queries::store_impl!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, super::signing_log_sql::Dialect::Postgres);
