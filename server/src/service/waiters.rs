//! Terminals waiting for a login's outcome (`events` SSE and `wait`
//! long-poll), woken per login.
//!
//! Why a registry keyed by login id rather than one broadcast channel: with
//! one channel every decision woke every waiter (10,000 waiting terminals →
//! 10,000 task wake-ups per decision, each checking an id that is not its
//! own), and every waiter re-read its login every 2 s to notice decisions
//! taken on another replica (10,000 waiters → 5,000 store reads/s while
//! nothing happens). Here a decision wakes only the waiters of its login
//! (on another replica: through the change feed, [`super::replicas`]),
//! and ONE periodic re-check ([`Waiters::recheck`], run by `serve`) reads
//! the decided logins among all waited ids in a few queries and wakes
//! exactly those waiters.
//!
//! No decision is lost between a waiter's read and its wait: a waiter
//! registers ([`Waiters::watch`]) BEFORE it reads the login, and the
//! deciding service commits BEFORE it wakes ([`Waiters::wake`]). Either the
//! read sees the committed decision, or the registration existed when the
//! wake came and the value stays in the login's `watch` channel until read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::{Store, StoreResult};

/// How often [`Waiters::recheck`] runs when the store has no change feed
/// (SQLite). On PostgreSQL another replica's decision arrives by notice
/// ([`super::replicas`]) and the re-check is a slower backstop
/// (`[replicas] recheck_interval_s`).
pub const RECHECK: Duration = Duration::from_secs(2);
/// Waited login ids per re-check query.
const RECHECK_CHUNK: usize = 500;

/// The waiting terminals, by login id.
#[derive(Debug, Default)]
pub struct Waiters {
    /// One `watch` channel per waited login: `None` while pending, then the
    /// final wire status. The entry goes when its last waiter does.
    by_login: Mutex<HashMap<String, watch::Sender<Option<&'static str>>>>,
}

/// One waiter's registration; dropping it unregisters.
#[derive(Debug)]
pub struct LoginWatch {
    waiters: Arc<Waiters>,
    login_id: String,
    rx: watch::Receiver<Option<&'static str>>,
}

impl Waiters {
    /// Registers a waiter for `login_id`. Call BEFORE reading the login.
    pub fn watch(self: &Arc<Self>, login_id: &str) -> LoginWatch {
        let mut map = self.by_login.lock().expect("waiters lock");
        let rx = map
            .entry(login_id.to_owned())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe();
        LoginWatch {
            waiters: self.clone(),
            login_id: login_id.to_owned(),
            rx,
        }
    }

    /// Wakes the waiters of `login_id` with its final `status` (after the
    /// decision is committed). Other logins' waiters are not touched.
    pub fn wake(&self, login_id: &str, status: &'static str) {
        let map = self.by_login.lock().expect("waiters lock");
        if let Some(tx) = map.get(login_id) {
            tx.send_replace(Some(status));
        }
    }

    /// Logins with at least one waiter (tests, metrics).
    pub fn waited(&self) -> usize {
        self.by_login.lock().expect("waiters lock").len()
    }

    /// Waiting connections over all logins (metrics).
    pub fn waiting(&self) -> usize {
        self.by_login
            .lock()
            .expect("waiters lock")
            .values()
            .map(|tx| tx.receiver_count())
            .sum()
    }

    /// Waiters registered for `login_id` (tests, metrics).
    pub fn waiting_on(&self, login_id: &str) -> usize {
        self.by_login
            .lock()
            .expect("waiters lock")
            .get(login_id)
            .map_or(0, |tx| tx.receiver_count())
    }

    /// Ids of waited logins nobody has woken yet.
    fn pending_ids(&self) -> Vec<String> {
        let map = self.by_login.lock().expect("waiters lock");
        map.iter()
            .filter(|(_, tx)| tx.borrow().is_none())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Reads which waited logins the store has decided (e.g. on another
    /// replica) and wakes their waiters. Returns how many logins it woke.
    pub async fn recheck(&self, store: &dyn Store) -> StoreResult<usize> {
        let ids = self.pending_ids();
        let mut woken = 0;
        for chunk in ids.chunks(RECHECK_CHUNK) {
            for (id, status) in store.decided_logins(chunk).await? {
                self.wake(&id, status.as_str());
                woken += 1;
            }
        }
        Ok(woken)
    }
}

impl LoginWatch {
    /// Waits until the login is woken with its final status (returns at once
    /// if that already happened since [`Waiters::watch`]).
    pub async fn decided(&mut self) -> &'static str {
        // (the borrow ends with this statement: nothing held across an await)
        let decided = self.rx.wait_for(Option::is_some).await.map(|v| *v);
        match decided {
            Ok(Some(status)) => status,
            // The sender lives in the map as long as this receiver: not reached.
            _ => std::future::pending().await,
        }
    }
}

impl Drop for LoginWatch {
    fn drop(&mut self) {
        let mut map = self.waiters.by_login.lock().expect("waiters lock");
        // This receiver still counts: 1 means it was the last waiter.
        if map
            .get(&self.login_id)
            .is_some_and(|tx| tx.receiver_count() <= 1)
        {
            map.remove(&self.login_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_only_the_waiters_of_its_login() {
        let w = Arc::new(Waiters::default());
        let mut a = w.watch("A");
        let b = w.watch("B");
        w.wake("A", "approved");
        assert_eq!(a.decided().await, "approved");
        assert!(
            !b.rx.has_changed().unwrap(),
            "B's waiter was woken by A's decision"
        );
        assert_eq!(*b.rx.borrow(), None);
    }

    #[tokio::test]
    async fn a_wake_before_the_wait_is_not_lost() {
        let w = Arc::new(Waiters::default());
        let mut a = w.watch("A");
        // the decision lands between the waiter's read and its wait
        w.wake("A", "denied");
        assert_eq!(a.decided().await, "denied");
    }

    #[tokio::test]
    async fn every_waiter_of_a_login_is_woken() {
        let w = Arc::new(Waiters::default());
        let mut first = w.watch("A");
        let mut second = w.watch("A");
        w.wake("A", "approved");
        assert_eq!(first.decided().await, "approved");
        assert_eq!(second.decided().await, "approved");
    }

    #[test]
    fn the_entry_goes_with_the_last_waiter() {
        let w = Arc::new(Waiters::default());
        let first = w.watch("A");
        let second = w.watch("A");
        let other = w.watch("B");
        assert_eq!(w.waited(), 2);
        drop(first);
        assert_eq!(w.waited(), 2, "A still has a waiter");
        drop(second);
        assert_eq!(w.waited(), 1);
        drop(other);
        assert_eq!(w.waited(), 0);
        // a wake for a login nobody waits on is a no-op, not a new entry
        w.wake("A", "approved");
        assert_eq!(w.waited(), 0);
    }
}
