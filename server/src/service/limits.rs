//! Rate limits: how often one terminal may start logins, one client
//! address may try enrollment codes or a wrong operator token, and one
//! phone may call the phone API. Each is a keyed GCRA limiter (`governor`)
//! held in memory per replica; a refusal is [`Error::RateLimited`] with the
//! seconds until the next request would pass (the HTTP `Retry-After`).
//!
//! These are in-process (per replica) bounds against floods and online
//! guessing; they are not a quota. Stale keys are dropped by the periodic
//! sweep ([`RateLimits::forget_idle`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Instant;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::Error;

/// One budget: `burst` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub burst: u32,
    pub per_minute: u32,
}

/// Login creation per terminal (`POST /oauth/device_authorization`).
pub const LOGINS_PER_TERMINAL: Budget = Budget {
    burst: 30,
    per_minute: 30,
};
/// Enrollment attempts per client address (`POST /v1/phone/enroll`).
pub const ENROLLMENTS_PER_ADDRESS: Budget = Budget {
    burst: 20,
    per_minute: 10,
};
/// Authenticated phone API calls per device (`/v1/phone/*` with a device token).
pub const PHONE_CALLS_PER_DEVICE: Budget = Budget {
    burst: 60,
    per_minute: 60,
};
/// Failed operator authentications per client address (admin API).
pub const OPERATOR_FAILURES_PER_ADDRESS: Budget = Budget {
    burst: 10,
    per_minute: 10,
};

/// Failed typed-code lookups per device (docs/protocol.md §4.6).
pub const CODE_FAILURES_PER_DEVICE: Budget = Budget {
    burst: 5,
    per_minute: 1,
};
/// Failed typed-code lookups per practitioner (all their devices).
pub const CODE_FAILURES_PER_PRACTITIONER: Budget = Budget {
    burst: 10,
    per_minute: 2,
};
/// Failed typed-code lookups on this replica, all phones together: the
/// bound on guessing across every open login, however many devices an
/// attacker holds.
pub const CODE_FAILURES_GLOBAL: Budget = Budget {
    burst: 100,
    per_minute: 20,
};

fn limiter<K: std::hash::Hash + Eq + Clone>(b: Budget) -> DefaultKeyedRateLimiter<K> {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("max(1) is nonzero");
    RateLimiter::keyed(Quota::per_minute(nz(b.per_minute)).allow_burst(nz(b.burst)))
}

/// A keyed token bucket that counts failures only: a lookup *reserves* one
/// token before it runs (so concurrent guesses cannot overdraw the budget)
/// and gets it back when it succeeds. `governor` has no refund, hence this
/// small bucket.
struct FailureBudget {
    budget: Budget,
    /// key -> (tokens, when they were counted)
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl FailureBudget {
    fn new(budget: Budget) -> Self {
        FailureBudget { budget, buckets: Mutex::default() }
    }

    fn refill(&self, tokens: f64, since: Instant, now: Instant) -> f64 {
        let per_s = f64::from(self.budget.per_minute) / 60.0;
        (tokens + now.saturating_duration_since(since).as_secs_f64() * per_s).min(f64::from(self.budget.burst))
    }

    /// Takes one token, or says how many seconds until one is back.
    fn reserve(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let entry = b.entry(key.to_owned()).or_insert((f64::from(self.budget.burst), now));
        let tokens = self.refill(entry.0, entry.1, now);
        if tokens < 1.0 {
            *entry = (tokens, now);
            let per_s = f64::from(self.budget.per_minute.max(1)) / 60.0;
            return Err((((1.0 - tokens) / per_s).ceil() as u64).max(1));
        }
        *entry = (tokens - 1.0, now);
        Ok(())
    }

    /// Gives back a reserved token (the lookup succeeded).
    fn refund(&self, key: &str) {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = b.get_mut(key) {
            *entry = ((self.refill(entry.0, entry.1, now) + 1.0).min(f64::from(self.budget.burst)), now);
        }
    }

    /// Drops keys whose bucket is full again.
    fn forget_idle(&self) {
        let now = Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let full = f64::from(self.budget.burst);
        b.retain(|_, (t, at)| self.refill(*t, *at, now) < full);
    }
}

/// The typed-code budgets a lookup holds: dropped without
/// [`CodeReservation::succeeded`], the reserved failure stays spent.
pub struct CodeReservation<'a> {
    limits: &'a RateLimits,
    device: String,
    practitioner: String,
}

impl CodeReservation<'_> {
    /// The code named a login this phone may see: the failure tokens come back.
    pub fn succeeded(self) {
        self.limits.code_device.refund(&self.device);
        self.limits.code_practitioner.refund(&self.practitioner);
        self.limits.code_global.refund(GLOBAL);
    }
}

const GLOBAL: &str = "";

/// The server's limiters.
pub struct RateLimits {
    logins: DefaultKeyedRateLimiter<String>,
    enrollments: DefaultKeyedRateLimiter<IpAddr>,
    phone: DefaultKeyedRateLimiter<String>,
    operator_failures: DefaultKeyedRateLimiter<IpAddr>,
    code_device: FailureBudget,
    code_practitioner: FailureBudget,
    code_global: FailureBudget,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            logins: limiter(LOGINS_PER_TERMINAL),
            enrollments: limiter(ENROLLMENTS_PER_ADDRESS),
            phone: limiter(PHONE_CALLS_PER_DEVICE),
            operator_failures: limiter(OPERATOR_FAILURES_PER_ADDRESS),
            code_device: FailureBudget::new(CODE_FAILURES_PER_DEVICE),
            code_practitioner: FailureBudget::new(CODE_FAILURES_PER_PRACTITIONER),
            code_global: FailureBudget::new(CODE_FAILURES_GLOBAL),
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    l: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &'static str,
) -> Result<(), Error> {
    l.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Round up: "Retry-After: 0" would invite an immediate retry that fails again.
        let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Error::RateLimited {
            what,
            retry_after_s: retry_after_s.max(1),
        }
    })
}

impl RateLimits {
    /// A terminal starts a login.
    pub fn login(&self, terminal_id: &str) -> Result<(), Error> {
        check(
            &self.logins,
            &terminal_id.to_owned(),
            "logins started by this terminal",
        )
    }
    /// A client address tries an enrollment code.
    pub fn enrollment(&self, addr: IpAddr) -> Result<(), Error> {
        check(
            &self.enrollments,
            &addr,
            "enrollment attempts from this address",
        )
    }
    /// A phone calls the phone API.
    pub fn phone(&self, device_id: &str) -> Result<(), Error> {
        check(&self.phone, &device_id.to_owned(), "calls by this phone")
    }
    /// A client address presented a wrong operator token.
    pub fn operator_failure(&self, addr: IpAddr) -> Result<(), Error> {
        check(
            &self.operator_failures,
            &addr,
            "failed operator authentications from this address",
        )
    }
    /// A phone is about to look a typed code up: reserves one failure from
    /// the device's, the practitioner's and the global code budgets (all
    /// three, or none), refunded by [`CodeReservation::succeeded`].
    pub fn code_lookup(&self, device_id: &str, practitioner_id: &str) -> Result<CodeReservation<'_>, Error> {
        let limited = |what: &'static str, retry_after_s: u64| Error::RateLimited { what, retry_after_s };
        self.code_device.reserve(device_id).map_err(|s| limited("failed code lookups by this phone", s))?;
        if let Err(s) = self.code_practitioner.reserve(practitioner_id) {
            self.code_device.refund(device_id);
            return Err(limited("failed code lookups by this practitioner", s));
        }
        if let Err(s) = self.code_global.reserve(GLOBAL) {
            self.code_device.refund(device_id);
            self.code_practitioner.refund(practitioner_id);
            return Err(limited("failed code lookups on this server", s));
        }
        Ok(CodeReservation { limits: self, device: device_id.to_owned(), practitioner: practitioner_id.to_owned() })
    }
    /// Drops keys whose budget is full again (memory bound).
    pub fn forget_idle(&self) {
        self.code_device.forget_idle();
        self.code_practitioner.forget_idle();
        self.logins.retain_recent();
        self.enrollments.retain_recent();
        self.phone.retain_recent();
        self.operator_failures.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_allows_its_burst_then_refuses_with_a_positive_retry_after() {
        let l = limiter::<String>(Budget {
            burst: 3,
            per_minute: 1,
        });
        let k = "t".to_owned();
        for _ in 0..3 {
            check(&l, &k, "x").unwrap();
        }
        match check(&l, &k, "x") {
            Err(Error::RateLimited { retry_after_s, .. }) => {
                assert!((1..=60).contains(&retry_after_s), "{retry_after_s}")
            }
            other => panic!("expected RateLimited, got {other:?}"),
        }
        // Another key has its own budget.
        check(&l, &"u".to_owned(), "x").unwrap();
    }

    #[test]
    fn code_budgets_count_failures_only() {
        let l = RateLimits::default();
        // Successes give their token back: many in a row never run dry.
        for _ in 0..(3 * CODE_FAILURES_PER_DEVICE.burst) {
            l.code_lookup("d", "p").unwrap().succeeded();
        }
        // Failures (dropped reservations) spend it: the burst, then refusal.
        for _ in 0..CODE_FAILURES_PER_DEVICE.burst {
            drop(l.code_lookup("d", "p").unwrap());
        }
        match l.code_lookup("d", "p") {
            Err(Error::RateLimited { retry_after_s, what }) => {
                assert!((1..=60).contains(&retry_after_s), "{retry_after_s}");
                assert!(what.contains("phone"), "{what}");
            }
            _ => panic!("expected RateLimited"),
        }
        // The practitioner's budget is shared by their devices.
        for _ in 0..(CODE_FAILURES_PER_PRACTITIONER.burst - CODE_FAILURES_PER_DEVICE.burst) {
            drop(l.code_lookup("d2", "p").unwrap());
        }
        match l.code_lookup("d3", "p") {
            Err(Error::RateLimited { what, .. }) => assert!(what.contains("practitioner"), "{what}"),
            _ => panic!("expected RateLimited"),
        }
        // A refusal by the practitioner budget spent nothing of d3's own.
        assert!(l.code_lookup("d3", "q").is_ok());
    }

    #[test]
    fn the_global_code_budget_bounds_many_devices_together() {
        let l = RateLimits::default();
        let mut failures = 0;
        for i in 0..1000 {
            match l.code_lookup(&format!("d{i}"), &format!("p{i}")) {
                Ok(r) => {
                    drop(r);
                    failures += 1;
                }
                Err(Error::RateLimited { what, .. }) => {
                    assert!(what.contains("server"), "{what}");
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        // The burst (plus at most a token refilled while the loop ran).
        assert!((CODE_FAILURES_GLOBAL.burst..=CODE_FAILURES_GLOBAL.burst + 1).contains(&failures), "{failures}");
    }
}
