//! Committed changes other replicas must hear of at once: the store's
//! publish/subscribe seam (issue 12, replicas on one PostgreSQL).
//!
//! Why a seam here and not in the services: "sent if and only if it
//! committed" is a property of the transaction. The store publishes a
//! [`Change`] inside the same transaction as the state change (PostgreSQL:
//! `pg_notify`, delivered by the server only at COMMIT, never for a
//! rollback), and hands every replica a [`ChangeFeed`] of what was
//! committed, on any replica, this one included. The services decide what a
//! change means for this process (wake the terminals waiting on a login,
//! drop signing keys held for a grant that ended); handlers never see it.
//!
//! A feed can miss notices only while its listening connection is down, so
//! it says so: [`ChangeEvent::Lost`] when the connection goes,
//! [`ChangeEvent::Listening`] once it listens again; whoever follows the
//! feed must then re-read what it derived from notices (every waited login,
//! every held key), because notices committed in the gap are gone.
//!
//! The payload carries ids, a kind and a time only — never a secret, a
//! token or a code — and stays far below PostgreSQL's 8000-byte limit.

use serde::{Deserialize, Serialize};

/// The PostgreSQL `LISTEN`/`NOTIFY` channel every replica of one database
/// shares.
pub const CHANNEL: &str = "shomei_changes";

/// Largest payload sent (PostgreSQL refuses 8000 bytes and more).
pub const MAX_PAYLOAD: usize = 7900;

/// What was committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A login was decided: `approved` or `denied` (a deny, a number
    /// mismatch or a practitioner not allowed there).
    Login { id: String, status: String },
    /// A grant ended before its time: revoked by the operator, ended from
    /// the phone, revoked after wrong confirmation codes, or used up.
    Grant { id: String },
    /// A device was revoked or retired (its grants ended with it).
    Device { id: String },
    /// A terminal was revoked (its grants ended with it).
    Terminal { id: String },
    /// Every grant of a practitioner was ended from the phone.
    Practitioner { id: String },
    /// A signing credential was revoked.
    Credential { id: String },
    /// Too big to name (never expected: ids are short): followers re-read everything.
    Unnamed,
}

impl Change {
    /// The kind, as the metrics label it.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Login { .. } => "login",
            Change::Grant { .. } => "grant",
            Change::Device { .. } => "device",
            Change::Terminal { .. } => "terminal",
            Change::Practitioner { .. } => "practitioner",
            Change::Credential { .. } => "credential",
            Change::Unnamed => "unnamed",
        }
    }
}

/// A [`Change`] with the time it was published (Unix ms, the committing
/// replica's wall clock, just before its COMMIT), so that a receiver can
/// measure the notification's lag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNotice {
    #[serde(flatten)]
    pub change: Change,
    /// Wall-clock time of publication, Unix ms.
    pub at_ms: i64,
}

impl ChangeNotice {
    /// The `pg_notify` payload: compact JSON, at most [`MAX_PAYLOAD`] bytes
    /// (anything longer becomes [`Change::Unnamed`], which makes every
    /// follower re-read).
    pub fn to_payload(&self) -> String {
        let text = serde_json::to_string(self).expect("a notice serializes");
        if text.len() <= MAX_PAYLOAD {
            return text;
        }
        serde_json::to_string(&ChangeNotice {
            change: Change::Unnamed,
            at_ms: self.at_ms,
        })
        .expect("a notice serializes")
    }

    /// Reads a payload; `None` for one this build does not understand (a
    /// newer replica's kind during a rolling upgrade): treat it as a gap.
    pub fn from_payload(payload: &str) -> Option<ChangeNotice> {
        serde_json::from_str(payload).ok()
    }
}

/// What a [`ChangeFeed`] delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeEvent {
    /// The feed listens (first, or again after [`ChangeEvent::Lost`]).
    /// Notices committed while it did not listen are lost: re-read.
    Listening {
        /// True after a loss (false for the first connection).
        reconnect: bool,
        /// The database session that listens (PostgreSQL backend pid), for
        /// logs and `pg_stat_activity`.
        session: u32,
    },
    /// The listening connection is gone; reconnecting with backoff.
    Lost,
    /// A change committed by some replica (this one included).
    Committed(ChangeNotice),
    /// A notice this build could not read: re-read, as after a gap.
    Unreadable,
}

/// The stream of [`ChangeEvent`]s of one listening connection; the
/// listener stops when this is dropped.
pub type ChangeFeed = tokio::sync::mpsc::Receiver<ChangeEvent>;

/// Unix ms of the wall clock (not the services' test-adjustable clock:
/// lag is measured in real time).
pub fn wall_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_round_trips_through_its_payload() {
        let n = ChangeNotice {
            change: Change::Login {
                id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
                status: "approved".into(),
            },
            at_ms: 1_767_000_000_123,
        };
        let p = n.to_payload();
        assert_eq!(
            p,
            r#"{"kind":"login","id":"AAAAAAAAAAAAAAAAAAAAAA","status":"approved","at_ms":1767000000123}"#
        );
        assert_eq!(ChangeNotice::from_payload(&p), Some(n));
        for change in [
            Change::Grant { id: "g".into() },
            Change::Device { id: "d".into() },
            Change::Terminal { id: "t".into() },
            Change::Practitioner { id: "p".into() },
            Change::Credential { id: "c".into() },
            Change::Unnamed,
        ] {
            let n = ChangeNotice { change, at_ms: 1 };
            assert_eq!(ChangeNotice::from_payload(&n.to_payload()), Some(n));
        }
    }

    #[test]
    fn an_oversized_notice_becomes_unnamed_and_fits_postgres() {
        let n = ChangeNotice {
            change: Change::Grant {
                id: "x".repeat(10_000),
            },
            at_ms: 7,
        };
        let p = n.to_payload();
        assert!(p.len() < 8000);
        assert_eq!(
            ChangeNotice::from_payload(&p),
            Some(ChangeNotice {
                change: Change::Unnamed,
                at_ms: 7
            })
        );
    }

    #[test]
    fn an_unknown_kind_is_not_read_as_anything() {
        assert_eq!(
            ChangeNotice::from_payload(r#"{"kind":"future","id":"x","at_ms":1}"#),
            None
        );
        assert_eq!(ChangeNotice::from_payload("not json"), None);
    }
}
