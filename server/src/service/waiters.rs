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
//! wake came and the status stays with the login's registration until read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

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
    /// One [`Outcome`] per waited login, shared by its waiters (the map
    /// holds one reference, each waiter one). The entry goes when its last
    /// waiter does.
    by_login: Mutex<HashMap<String, Arc<Outcome>>>,
}

/// A waited login's final wire status, once known, and the waiters to
/// wake when it is. (Not a `tokio::sync::watch` channel: that carries nine
/// `Notify`s, ≈450 bytes per waited login; a login's outcome is set once.)
#[derive(Debug, Default)]
struct Outcome {
    status: OnceLock<&'static str>,
    decided: Notify,
}

/// One waiter's registration; dropping it unregisters.
#[derive(Debug)]
pub struct LoginWatch {
    waiters: Arc<Waiters>,
    login_id: String,
    /// (`Option` only so that `drop` can release it under the map's lock)
    outcome: Option<Arc<Outcome>>,
}

impl Waiters {
    /// Registers a waiter for `login_id`. Call BEFORE reading the login.
    pub fn watch(self: &Arc<Self>, login_id: &str) -> LoginWatch {
        let mut map = self.by_login.lock().expect("waiters lock");
        let outcome = map.entry(login_id.to_owned()).or_default().clone();
        LoginWatch {
            waiters: self.clone(),
            login_id: login_id.to_owned(),
            outcome: Some(outcome),
        }
    }

    /// Wakes the waiters of `login_id` with its final `status` (after the
    /// decision is committed). Other logins' waiters are not touched. A
    /// login is decided once: a later wake (the same decision, heard again
    /// from the store) changes nothing.
    pub fn wake(&self, login_id: &str, status: &'static str) {
        let map = self.by_login.lock().expect("waiters lock");
        if let Some(outcome) = map.get(login_id)
            && outcome.status.set(status).is_ok()
        {
            outcome.decided.notify_waiters();
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
            .map(|o| Arc::strong_count(o) - 1)
            .sum()
    }

    /// Waiters registered for `login_id` (tests, metrics).
    pub fn waiting_on(&self, login_id: &str) -> usize {
        self.by_login
            .lock()
            .expect("waiters lock")
            .get(login_id)
            .map_or(0, |o| Arc::strong_count(o) - 1)
    }

    /// Ids of waited logins nobody has woken yet.
    fn pending_ids(&self) -> Vec<String> {
        let map = self.by_login.lock().expect("waiters lock");
        map.iter()
            .filter(|(_, o)| o.status.get().is_none())
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
    /// The waited login.
    pub fn login_id(&self) -> &str {
        &self.login_id
    }

    fn outcome(&self) -> &Outcome {
        self.outcome.as_deref().expect("released only on drop")
    }

    /// Waits until the login is woken with its final status (returns at once
    /// if that already happened since [`Waiters::watch`]).
    pub async fn decided(&mut self) -> &'static str {
        let outcome = self.outcome();
        let mut notified = std::pin::pin!(outcome.decided.notified());
        loop {
            // Listen first, then look: a wake between the two is not lost.
            notified.as_mut().enable();
            if let Some(status) = outcome.status.get() {
                return status;
            }
            notified.as_mut().await;
            notified.set(outcome.decided.notified());
        }
    }
}

impl Drop for LoginWatch {
    fn drop(&mut self) {
        let mut map = self.waiters.by_login.lock().expect("waiters lock");
        // Released under the lock, so two waiters leaving at once cannot
        // both see the other still registered and leave the entry behind.
        drop(self.outcome.take());
        if map.get(&self.login_id).is_some_and(|o| Arc::strong_count(o) == 1) {
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
        assert_eq!(b.outcome().status.get(), None, "B's waiter was woken by A's decision");
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
    async fn a_login_is_decided_once() {
        let w = Arc::new(Waiters::default());
        let mut a = w.watch("A");
        w.wake("A", "approved");
        // the same login heard of again (e.g. by the re-check) changes nothing
        w.wake("A", "denied");
        assert_eq!(a.decided().await, "approved");
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
