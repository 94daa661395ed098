//! Clean-up: logins nobody decided and enrollment codes nobody used stay
//! in the store after they expire; a periodic sweep deletes them (an hour
//! after expiry, so late pollers still get `expired_token`) and audits what
//! it removed. Decided logins and used codes are the record and stay.

use std::time::Duration;

use super::{App, Result};
use crate::store::SweepReport;

/// How often `serve` sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Expired rows are kept this long before the sweep removes them.
pub const KEEP_EXPIRED_MS: i64 = 3600 * 1000;
/// At most this many logins and this many codes per sweep (one transaction).
pub const SWEEP_BATCH: i64 = 1000;

impl App {
    /// One clean-up pass (also drops idle rate-limit keys).
    pub async fn sweep(&self) -> Result<SweepReport> {
        self.limits.forget_idle();
        let now = self.clock.now_ms();
        let report = self
            .store
            .sweep_expired(now.saturating_sub(KEEP_EXPIRED_MS), SWEEP_BATCH, now)
            .await?;
        // Only never-decided logins are swept: each one expired.
        if !report.logins.is_empty() {
            self.metrics.logins_finished(crate::metrics::LoginOutcome::Expired, report.logins.len() as u64);
        }
        Ok(report)
    }
}
