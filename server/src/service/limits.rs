//! Rate limits: how often one terminal may start logins, one client
//! address may try enrollment codes or a wrong operator token, and one
//! phone may call the phone API. Each is a keyed GCRA limiter (`governor`)
//! held in memory per replica; a refusal is [`Error::RateLimited`] with the
//! seconds until the next request would pass (the HTTP `Retry-After`).
//!
//! These are in-process (per replica) bounds against floods and online
//! guessing; they are not a quota. Stale keys are dropped by the periodic
//! sweep ([`RateLimits::forget_idle`]).

use std::net::IpAddr;
use std::num::NonZeroU32;

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

fn limiter<K: std::hash::Hash + Eq + Clone>(b: Budget) -> DefaultKeyedRateLimiter<K> {
    let nz = |n: u32| NonZeroU32::new(n.max(1)).expect("max(1) is nonzero");
    RateLimiter::keyed(Quota::per_minute(nz(b.per_minute)).allow_burst(nz(b.burst)))
}

/// The server's limiters.
pub struct RateLimits {
    logins: DefaultKeyedRateLimiter<String>,
    enrollments: DefaultKeyedRateLimiter<IpAddr>,
    phone: DefaultKeyedRateLimiter<String>,
    operator_failures: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            logins: limiter(LOGINS_PER_TERMINAL),
            enrollments: limiter(ENROLLMENTS_PER_ADDRESS),
            phone: limiter(PHONE_CALLS_PER_DEVICE),
            operator_failures: limiter(OPERATOR_FAILURES_PER_ADDRESS),
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
    /// Drops keys whose budget is full again (memory bound).
    pub fn forget_idle(&self) {
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
}
