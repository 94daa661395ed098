//! What other replicas commit, applied here at once (issue 12): several
//! `shomei serve` processes on one PostgreSQL database, behind a load
//! balancer, each holding state in memory that another's commit makes
//! stale — the terminals waiting on a login ([`Waiters`]), the signing
//! keys held open per grant ([`SigningBackend`]) and the signing calls'
//! held authorizations (`held_authorization`).
//!
//! The store publishes a [`Change`] in the transaction of every such state
//! change and gives each replica a feed of them ([`Store::changes`]; see
//! [`crate::store::change`]). [`follow_changes`] applies them: a decided
//! login wakes its waiters here too, an ended grant drops its held key, a
//! revoked device, terminal, practitioner or credential drops every held
//! key (as the revoking replica does for itself). The replica that made the
//! change has already done the same in-process; doing it twice is harmless.
//!
//! A notice can be missed only while the listening connection is down, so
//! whenever the feed listens (again) — and whenever a notice cannot be
//! read — [`App::resync`] re-reads: it wakes every waited login the store
//! has decided and drops every held key. The periodic re-check of waited
//! logins (`serve`, `[replicas] recheck_interval_s`) stays as a slower
//! backstop; what it wakes is counted, and should stay at zero.
//!
//! [`Waiters`]: super::waiters::Waiters
//! [`SigningBackend`]: crate::signing::SigningBackend
//! [`Store::changes`]: crate::store::Store::changes

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::App;
use crate::store::StoreResult;
use crate::store::change::{Change, ChangeEvent, ChangeFeed, ChangeNotice, wall_ms};

/// Wait before retrying a re-read that failed (the database is away).
const RESYNC_RETRY: Duration = Duration::from_secs(1);

impl App {
    /// Re-reads what notices would have said: wakes the waiters of every
    /// waited login the store has decided, and drops every held key (the
    /// next signature opens its key again, after the store said the grant
    /// may sign). Returns how many logins it woke.
    pub async fn resync(&self) -> StoreResult<usize> {
        self.release_all();
        self.waiters.recheck(self.store.as_ref()).await
    }

    /// Applies one committed change; false when it asks for a re-read
    /// (a status or kind this build does not know).
    fn apply_change(&self, notice: &ChangeNotice) -> bool {
        match &notice.change {
            Change::Login { id, status } => match status.as_str() {
                "approved" => self.waiters.wake(id, "approved"),
                "denied" => self.waiters.wake(id, "denied"),
                _ => return false,
            },
            Change::Grant { id } => self.release_grant(id),
            Change::Device { .. }
            | Change::Terminal { .. }
            | Change::Practitioner { .. }
            | Change::Credential { .. } => self.release_all(),
            Change::Unnamed => return false,
        }
        true
    }

    /// Handles one feed event; true when a re-read is due.
    fn on_change_event(&self, event: ChangeEvent) -> bool {
        match event {
            ChangeEvent::Listening { reconnect, session } => {
                self.metrics.replica_listening(reconnect);
                tracing::debug!(session, reconnect, "replica feed listening; re-reading");
                true
            }
            ChangeEvent::Lost => {
                self.metrics.replica_lost();
                false
            }
            ChangeEvent::Committed(notice) => {
                let lag_ms = (wall_ms() - notice.at_ms).max(0);
                self.metrics.replica_notice(
                    notice.change.kind(),
                    Some(Duration::from_millis(lag_ms as u64)),
                );
                !self.apply_change(&notice)
            }
            ChangeEvent::Unreadable => {
                self.metrics.replica_notice("unreadable", None);
                tracing::warn!(
                    "replica feed: a notice this build cannot read (a newer replica?); re-reading"
                );
                true
            }
        }
    }
}

/// Follows `feed` until `stop` (or until the feed ends): applies every
/// change, re-reads after every gap, retrying a failed re-read every
/// [`RESYNC_RETRY`].
pub async fn follow_changes(app: Arc<App>, mut feed: ChangeFeed, mut stop: watch::Receiver<bool>) {
    let mut resync_due: Option<tokio::time::Instant> = None;
    loop {
        let due = resync_due;
        let retry = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = feed.recv() => match event {
                Some(event) => {
                    if app.on_change_event(event) {
                        resync_due = Some(tokio::time::Instant::now());
                    }
                }
                None => return,
            },
            () = retry => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if resync_due.is_some_and(|at| at <= tokio::time::Instant::now()) {
            match app.resync().await {
                Ok(woken) => {
                    resync_due = None;
                    if woken > 0 {
                        tracing::info!(
                            woken,
                            "replica re-read woke terminals whose decision came while not listening"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "replica re-read failed; retrying");
                    resync_due = Some(tokio::time::Instant::now() + RESYNC_RETRY);
                }
            }
        }
    }
}
