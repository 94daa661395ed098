//! The group commit's grant checks, decided in memory.
//!
//! [`super::Store::record_signatures`] takes a batch of records (one per
//! signHash/signDoc call) and must refuse each one exactly as a conditional
//! `UPDATE grants … WHERE <usable>` per record, in order, would: a record
//! counts against its grant's cap only if the ones before it left room, and
//! it moves the grant's idle clock for the next. Doing that with one UPDATE
//! per record cost one round trip per signature inside the serial writer.
//! Instead the writer, holding the write lock (so no grant or credential can
//! change until it commits), reads the batch's grants and revoked
//! credentials once, runs the same rule here record by record, and writes
//! each grant's final counters back in one statement.

use std::collections::HashMap;

use super::{RecordOutcome, SignatureRecord};

/// A grant's columns the rule reads, as read under the write lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GrantTally {
    pub terminal_id: String,
    pub practitioner_id: String,
    pub revoked: bool,
    pub expires_ms: i64,
    pub signature_cap: Option<i64>,
    pub signatures_made: i64,
    pub idle_timeout_s: Option<i64>,
    pub last_used_ms: i64,
    /// Whether a record of this batch counted against it (it must be written back).
    pub touched: bool,
}

impl GrantTally {
    /// The rule of the per-record UPDATE: the terminal that asks is the
    /// grant's, it is not revoked, not expired at the record's time, the
    /// record's signatures fit under the cap, and the grant has not idled out.
    fn admits(&self, rec: &SignatureRecord, n: i64) -> bool {
        self.terminal_id == rec.terminal_id
            && !self.revoked
            && self.expires_ms > rec.now_ms
            && self.signature_cap.is_none_or(|cap| self.signatures_made + n <= cap)
            && self.idle_timeout_s.is_none_or(|idle| self.last_used_ms + idle * 1000 > rec.now_ms)
    }
}

/// What one record got, and what the batch writes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tallied {
    pub outcomes: Vec<RecordOutcome>,
    /// The practitioner of each recorded record's grant (`None` when refused).
    pub practitioners: Vec<Option<String>>,
    /// Grants a record of this batch used up (their last signature reached the cap).
    pub used_up: Vec<String>,
}

/// Applies `records` in order to `grants` (by id; a missing id is a grant
/// that does not exist) with `revoked_credentials` (ids).
pub(crate) fn tally(records: &[SignatureRecord], grants: &mut HashMap<String, GrantTally>, revoked_credentials: &[String]) -> Tallied {
    let mut out = Tallied { outcomes: Vec::with_capacity(records.len()), practitioners: Vec::with_capacity(records.len()), used_up: Vec::new() };
    for rec in records {
        let n = rec.hashes.len() as i64;
        let credential_revoked = revoked_credentials.contains(&rec.credential_id);
        match grants.get_mut(&rec.grant_id) {
            Some(g) if !credential_revoked && g.admits(rec, n) => {
                g.signatures_made += n;
                g.last_used_ms = rec.now_ms;
                g.touched = true;
                if g.signature_cap.is_some_and(|cap| g.signatures_made >= cap) {
                    // That used the grant up: it ends here, on every replica.
                    out.used_up.push(rec.grant_id.clone());
                }
                out.outcomes.push(RecordOutcome::Recorded(g.signatures_made));
                out.practitioners.push(Some(g.practitioner_id.clone()));
            }
            _ => {
                out.outcomes.push(if credential_revoked { RecordOutcome::CredentialRevoked } else { RecordOutcome::GrantUnusable });
                out.practitioners.push(None);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(cap: Option<i64>, idle: Option<i64>) -> GrantTally {
        GrantTally {
            terminal_id: "t1".into(), practitioner_id: "p1".into(), revoked: false, expires_ms: 10_000, signature_cap: cap,
            signatures_made: 0, idle_timeout_s: idle, last_used_ms: 1_000, touched: false,
        }
    }

    fn rec(grant: &str, terminal: &str, credential: &str, n: usize, now_ms: i64) -> SignatureRecord {
        SignatureRecord {
            grant_id: grant.into(), credential_id: credential.into(), terminal_id: terminal.into(), hashes: vec![vec![0; 32]; n],
            sign_algo: "rsa".into(), now_ms, signature_formats: Vec::new(), label: None,
        }
    }

    #[test]
    fn records_count_in_order_against_the_cap() {
        let mut grants = HashMap::from([("g".to_owned(), grant(Some(3), None))]);
        let t = tally(&[rec("g", "t1", "c", 2, 2_000), rec("g", "t1", "c", 2, 2_001), rec("g", "t1", "c", 1, 2_002)], &mut grants, &[]);
        assert_eq!(t.outcomes, vec![RecordOutcome::Recorded(2), RecordOutcome::GrantUnusable, RecordOutcome::Recorded(3)]);
        assert_eq!(t.used_up, vec!["g".to_owned()]);
        assert_eq!((grants["g"].signatures_made, grants["g"].last_used_ms, grants["g"].touched), (3, 2_002, true));
    }

    #[test]
    fn each_record_is_judged_at_its_own_time() {
        // Idle 2 s from 1,000: a record at 2,999 keeps it alive for one at 4,500;
        // one at 20,000 is past the expiry.
        let mut grants = HashMap::from([("g".to_owned(), grant(None, Some(2)))]);
        let t = tally(&[rec("g", "t1", "c", 1, 5_000), rec("g", "t1", "c", 1, 2_999), rec("g", "t1", "c", 1, 4_500), rec("g", "t1", "c", 1, 20_000)], &mut grants, &[]);
        assert_eq!(t.outcomes, vec![RecordOutcome::GrantUnusable, RecordOutcome::Recorded(1), RecordOutcome::Recorded(2), RecordOutcome::GrantUnusable]);
        assert_eq!(grants["g"].last_used_ms, 4_500);
    }

    #[test]
    fn another_terminal_a_revoked_grant_or_credential_and_an_unknown_grant_record_nothing() {
        let mut revoked = grant(None, None);
        revoked.revoked = true;
        let mut grants = HashMap::from([("g".to_owned(), grant(None, None)), ("r".to_owned(), revoked)]);
        let t = tally(
            &[rec("g", "t2", "c", 1, 2_000), rec("r", "t1", "c", 1, 2_000), rec("g", "t1", "gone", 1, 2_000), rec("x", "t1", "c", 1, 2_000), rec("g", "t1", "c", 1, 2_000)],
            &mut grants,
            &["gone".to_owned()],
        );
        assert_eq!(
            t.outcomes,
            vec![RecordOutcome::GrantUnusable, RecordOutcome::GrantUnusable, RecordOutcome::CredentialRevoked, RecordOutcome::GrantUnusable, RecordOutcome::Recorded(1)]
        );
        assert_eq!(t.practitioners, vec![None, None, None, None, Some("p1".to_owned())]);
        assert!(!grants["r"].touched);
    }
}
