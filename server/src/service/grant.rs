//! Grants: a day of signing for one (practitioner, terminal) pair, under
//! the lifetime / cut-off / idle / cap policy, ended at once by the
//! practitioner, the operator, or revoking the device.

use shomei_core::api::GrantSummary;

use super::login::named;
use super::{App, Error, Result, rfc3339, sha256};
use crate::store::{AuditEvent, Device, Grant, Terminal};

/// Japan has no daylight saving time: Asia/Tokyo is always UTC+9.
const JST_OFFSET_MS: i64 = 9 * 3600 * 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The next instant at `hour`:00 Asia/Tokyo strictly after `now_ms`.
pub fn next_cutoff_ms(now_ms: i64, hour: u8) -> i64 {
    let local = now_ms + JST_OFFSET_MS;
    let day_start = local.div_euclid(DAY_MS) * DAY_MS;
    let mut cut = day_start + hour as i64 * 3600 * 1000;
    if cut <= local {
        cut += DAY_MS;
    }
    cut - JST_OFFSET_MS
}

impl App {
    pub(crate) fn grant_expiry(&self, now_ms: i64) -> i64 {
        let ttl = now_ms.saturating_add(self.policy.grant_ttl_s.saturating_mul(1000));
        match self.policy.cutoff_hour_jst {
            Some(h) => ttl.min(next_cutoff_ms(now_ms, h)),
            None => ttl,
        }
    }

    pub(crate) async fn grant_summary_for(&self, g: &Grant, t: &Terminal) -> Result<GrantSummary> {
        let f = self.store.get_facility(&t.facility_id).await?.ok_or_else(|| Error::Internal("missing facility".into()))?;
        Ok(GrantSummary {
            id: uuid::Uuid::parse_str(&g.id).map_err(|e| Error::Internal(e.to_string()))?,
            facility: named(&f.id, &f.name)?,
            terminal: named(&t.id, &t.name)?,
            created_at: rfc3339(g.created_ms),
            expires_at: rfc3339(g.expires_ms),
            signatures_made: g.signatures_made as u32,
            signature_cap: g.signature_cap.map(|c| c as u32),
        })
    }

    /// The usable grant behind an access token, for this terminal.
    pub async fn authorize_grant(&self, access_token: &str, terminal: &Terminal) -> Result<Grant> {
        let raw = shomei_core::api::b64u::decode(access_token).map_err(|_| Error::GrantInvalid)?;
        let g = self.store.get_grant_by_token_hash(&sha256(&raw)).await?;
        self.admit_grant(g, terminal)
    }

    /// The grant `found` for an access token, if it is `terminal`'s and usable now.
    pub(super) fn admit_grant(&self, found: Option<Grant>, terminal: &Terminal) -> Result<Grant> {
        let g = found.ok_or(Error::GrantInvalid)?;
        if g.terminal_id != terminal.id {
            return Err(Error::GrantTerminalMismatch);
        }
        if let Err(e) = check_usable(&g, self.clock.now_ms()) {
            // Ended (expired, idle, revoked, used up): nothing stays held for it.
            self.release_grant(&g.id);
            return Err(e);
        }
        Ok(g)
    }

    /// Active grants of the phone's practitioner.
    pub async fn phone_grants(&self, device: &Device) -> Result<Vec<GrantSummary>> {
        let now = self.clock.now_ms();
        let grants = self.store.list_grants(Some(&device.practitioner_id), Some(now)).await?;
        let mut out = Vec::new();
        for g in grants.iter().filter(|g| check_usable(g, now).is_ok()) {
            let t = self.store.get_terminal(&g.terminal_id).await?.ok_or_else(|| Error::Internal("missing terminal".into()))?;
            out.push(self.grant_summary_for(g, &t).await?);
        }
        Ok(out)
    }

    /// The practitioner ends one grant from the phone.
    pub async fn phone_end_grant(&self, device: &Device, grant_id: &str) -> Result<()> {
        let g = self.store.get_grant(grant_id).await?.filter(|g| g.practitioner_id == device.practitioner_id);
        let g = g.ok_or_else(|| Error::NotFound(format!("grant {grant_id}")))?;
        let now = self.clock.now_ms();
        let audit = AuditEvent::new(format!("device:{}", device.id), "grant.revoke", g.id.clone(), serde_json::json!({ "reason": "ended from phone" }));
        if !self.store.revoke_grant(&g.id, "ended from phone", now, &audit).await? {
            return Err(Error::NotFound(format!("active grant {grant_id}")));
        }
        self.release_grant(&g.id);
        Ok(())
    }

    /// The practitioner ends every grant from the phone.
    pub async fn phone_end_all(&self, device: &Device) -> Result<u32> {
        let now = self.clock.now_ms();
        let audit = AuditEvent::new(format!("device:{}", device.id), "grant.revoke_all", device.practitioner_id.clone(), serde_json::json!({}));
        let ended = self.store.revoke_practitioner_grants(&device.practitioner_id, "ended from phone", now, &audit).await?;
        self.release_all();
        Ok(ended)
    }

    /// The last instant `g` can sign at, as far as it is known now: its
    /// expiry, or its idle timeout counted from its last use.
    pub(crate) fn grant_end_ms(g: &Grant) -> i64 {
        match g.idle_timeout_s {
            Some(idle) => g.expires_ms.min(g.last_used_ms + idle * 1000),
            None => g.expires_ms,
        }
    }
}

/// Why a grant cannot sign now, if it cannot.
pub fn check_usable(g: &Grant, now_ms: i64) -> Result<()> {
    if g.revoked_ms.is_some() {
        return Err(Error::GrantRevoked);
    }
    if now_ms >= g.expires_ms {
        return Err(Error::GrantExpired);
    }
    if let Some(idle) = g.idle_timeout_s {
        // Saturating: a huge stored timeout means "never idle", not a panic.
        if now_ms >= g.last_used_ms.saturating_add(idle.saturating_mul(1000)) {
            return Err(Error::GrantExpired);
        }
    }
    if let Some(cap) = g.signature_cap
        && g.signatures_made >= cap
    {
        return Err(Error::GrantExhausted);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutoff_is_next_tokyo_hour_after_now() {
        // 2026-11-24T09:00:00Z = 18:00 JST; cut-off 04:00 JST → 2026-11-25T04:00 JST = 2026-11-24T19:00Z.
        let now = 1_795_510_800_000; // 2026-11-24T09:00:00Z
        let t = time::OffsetDateTime::from_unix_timestamp(now / 1000).unwrap();
        assert_eq!((t.hour(), t.minute()), (9, 0));
        let cut = next_cutoff_ms(now, 4);
        assert_eq!(cut - now, 10 * 3600 * 1000);
    }

    #[test]
    fn a_huge_stored_idle_timeout_means_never_idle_and_does_not_overflow() {
        let g = Grant {
            id: "g".into(),
            practitioner_id: "p".into(),
            terminal_id: "t".into(),
            device_id: "d".into(),
            login_id: "l".into(),
            token_hash: None,
            created_ms: 0,
            expires_ms: i64::MAX,
            last_used_ms: i64::MAX - 5,
            idle_timeout_s: Some(i64::MAX),
            signature_cap: Some(i64::MAX),
            signatures_made: 0,
            revoked_ms: None,
            revoked_reason: None,
        };
        assert!(check_usable(&g, 1_795_510_800_000).is_ok());
    }
}
