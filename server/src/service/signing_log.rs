//! The practitioner's signing log (issue 14): every signature made in
//! their name, as their phone lists it — when, by which terminal at which
//! facility, with which credential, algorithm and format, over which
//! digest, under which EHR label — so that a doctor glancing at the phone
//! at noon can end a grant the moment something looks wrong.
//!
//! Two ways to read it, both bounded index ranges in the store:
//! - **paging**, newest first (by `seq`, the order the server recorded
//!   them — a signDoc time is whole seconds, so times alone could list a
//!   signature below an older one): the first page fixes
//!   a *watermark* (the practitioner's highest `seq`), and every later page
//!   of that walk shows only rows at or below it, so signatures recorded
//!   meanwhile never shift or repeat a page;
//! - **following**, by `seq` (which increases in commit order, so a row
//!   with a smaller `seq` can never appear after a larger one was seen):
//!   `since = watermark` returns exactly what the walk did not show. The
//!   phone API offers it as a poll (`since`) and as SSE (`Last-Event-ID`).
//!
//! Also here: the optional `label` of signHash/signDoc, read as raw bytes
//! so that a non-UTF-8 label is refused as `label_invalid` (not as an
//! unreadable body), and checked by the one rule of
//! [`shomei_core::api::check_label`].

use std::time::Duration;

use serde::Deserialize;
use shomei_core::api::{self, SignatureFormat, SignatureList};
use tokio::sync::watch;

use super::login::named;
use super::{App, Error, Result, rfc3339};
use crate::store::{Device, SignatureEntry, SignaturePage};

/// Page size when the phone names none.
pub const PAGE_DEFAULT: i64 = 50;
/// Largest page (and largest `since` batch).
pub const PAGE_MAX: i64 = 200;
/// Without `grant` and `from`, "today" is the last 24 hours.
pub const DAY_MS: i64 = 24 * 3600 * 1000;
/// A live follower re-reads the store at least this often, for signatures
/// recorded by another replica (this replica's own wake it at once).
pub const FOLLOW_RECHECK: Duration = Duration::from_secs(5);

/// The `label` of a signHash/signDoc request as it arrived: raw bytes, so
/// that a label that is not UTF-8 (raw bytes, or an unpaired `\uD800`
/// escape) reaches [`label_from_request`] and is refused as
/// `label_invalid`, like any other bad label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawLabel(pub Vec<u8>);

impl<'de> Deserialize<'de> for RawLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RawLabel;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<RawLabel, E> {
                Ok(RawLabel(v.as_bytes().to_vec()))
            }
            fn visit_bytes<E: serde::de::Error>(
                self,
                v: &[u8],
            ) -> std::result::Result<RawLabel, E> {
                Ok(RawLabel(v.to_vec()))
            }
        }
        // serde_json hands a string's bytes to `deserialize_bytes` without
        // checking them as UTF-8 (escapes resolved); the check is ours.
        d.deserialize_bytes(V)
    }
}

/// The label a signing call may carry, checked: `None` when absent.
pub fn label_from_request(raw: Option<&RawLabel>) -> Result<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    let s = std::str::from_utf8(&raw.0).map_err(|_| api::LabelError::NotUtf8)?;
    api::check_label(s)?;
    Ok(Some(s.to_owned()))
}

/// The query of `GET /v1/phone/signatures` (and its SSE twin), as text:
/// each value is parsed here so that each mistake gets its typed problem.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SignatureQuery {
    /// One grant (UUID) instead of the whole day.
    pub grant: Option<String>,
    /// Day view only: signatures at or after this RFC 3339 time (default: 24 h ago).
    pub from: Option<String>,
    /// 1..=[`PAGE_MAX`] (default [`PAGE_DEFAULT`]).
    pub limit: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Follow: only signatures with `seq` above this.
    pub since: Option<String>,
}

/// Where a newest-first walk stands: opaque to clients (base64url of 16
/// bytes: watermark, then the last `seq` shown; big-endian i64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub watermark: i64,
    pub seq: i64,
}

impl Cursor {
    /// The wire text.
    pub fn encode(&self) -> String {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.watermark.to_be_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        api::b64u::encode(&b)
    }

    /// Parses the wire text; anything this server did not issue's shape is `cursor_invalid`.
    pub fn decode(s: &str) -> Result<Cursor> {
        let bad = || Error::CursorInvalid("cursor is not one this server issued".into());
        let b = api::b64u::decode(s).map_err(|_| bad())?;
        if b.len() != 16 {
            return Err(bad());
        }
        let int = |i: usize| i64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let c = Cursor {
            watermark: int(0),
            seq: int(8),
        };
        if c.seq < 1 || c.seq > c.watermark {
            return Err(bad());
        }
        Ok(c)
    }
}

fn parse_limit(s: Option<&str>) -> Result<i64> {
    match s {
        None => Ok(PAGE_DEFAULT),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => Ok(n),
            _ => Err(Error::BadRequest(format!(
                "limit must be an integer 1..={PAGE_MAX}"
            ))),
        },
    }
}

/// `since` / `Last-Event-ID`: a `seq` this server issued (0 = from the start).
pub fn parse_since(s: &str) -> Result<i64> {
    s.parse::<u64>()
        .ok()
        .and_then(|n| i64::try_from(n).ok())
        .ok_or_else(|| {
            Error::CursorInvalid(format!("since must be a non-negative integer, not {s:?}"))
        })
}

fn parse_from(s: &str) -> Result<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| Error::BadRequest(format!("from must be an RFC 3339 time, not {s:?}")))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| Error::BadRequest("from is out of range".into()))
}

/// The wire form of a stored signature.
fn to_wire(e: SignatureEntry) -> Result<api::SignatureEntry> {
    let corrupt = |what: &str| Error::Internal(format!("signature {}: stored {what}", e.seq));
    Ok(api::SignatureEntry {
        seq: u64::try_from(e.seq).map_err(|_| corrupt("seq"))?,
        signed_at: rfc3339(e.at_ms),
        grant_id: uuid::Uuid::parse_str(&e.grant_id).map_err(|_| corrupt("grant id"))?,
        facility: named(&e.facility_id, &e.facility_name)?,
        terminal: named(&e.terminal_id, &e.terminal_name)?,
        credential_id: e.credential_id.clone(),
        algorithm: e.sign_algo.clone(),
        format: SignatureFormat::parse(&e.format).ok_or_else(|| corrupt("format"))?,
        digest: e.digest,
        label: e.label,
    })
}

impl App {
    /// The grant `id` if it is the phone's practitioner's; `grant_unknown`
    /// otherwise (unknown, malformed and foreign ids alike).
    async fn own_grant_id(&self, device: &Device, id: &str) -> Result<String> {
        let unknown = || Error::GrantUnknown(id.chars().take(64).collect());
        let parsed = uuid::Uuid::parse_str(id).map_err(|_| unknown())?;
        let g = self
            .store
            .get_grant(&parsed.hyphenated().to_string())
            .await?;
        match g {
            Some(g) if g.practitioner_id == device.practitioner_id => Ok(g.id),
            _ => Err(unknown()),
        }
    }

    /// A cursor or `since` from the future of this practitioner's log was
    /// not issued here (another server, a restored database): refuse it
    /// rather than wait forever for signatures that will never come.
    async fn check_not_ahead(&self, device: &Device, seq: i64) -> Result<()> {
        let top = self
            .store
            .signature_watermark(&device.practitioner_id)
            .await?;
        if seq > top {
            return Err(Error::CursorInvalid(format!(
                "position {seq} is ahead of this log (at {top})"
            )));
        }
        Ok(())
    }

    /// `GET /v1/phone/signatures`: one page of the phone's practitioner's
    /// signatures (one grant's, or the day's across all grants), newest
    /// first; or, with `since`, the ones recorded after it, oldest first.
    pub async fn phone_signatures(
        &self,
        device: &Device,
        q: &SignatureQuery,
    ) -> Result<SignatureList> {
        let limit = parse_limit(q.limit.as_deref())?;
        let grant = match q.grant.as_deref() {
            Some(id) => Some(self.own_grant_id(device, id).await?),
            None => None,
        };
        if grant.is_some() && q.from.is_some() {
            return Err(Error::BadRequest(
                "from applies to the day view only (without grant)".into(),
            ));
        }
        let pid = &device.practitioner_id;
        if let Some(since) = q.since.as_deref() {
            if q.cursor.is_some() {
                return Err(Error::CursorInvalid(
                    "give cursor (paging) or since (following), not both".into(),
                ));
            }
            let since = parse_since(since)?;
            self.check_not_ahead(device, since).await?;
            let mut rows = self
                .store
                .signatures_since(pid, grant.as_deref(), since, limit + 1)
                .await?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            let watermark = rows.last().map_or(since, |r| r.seq);
            return Ok(SignatureList {
                signatures: rows.into_iter().map(to_wire).collect::<Result<_>>()?,
                watermark: watermark as u64,
                next_cursor: None,
                more,
            });
        }
        let (watermark, before) = match q.cursor.as_deref() {
            Some(c) => {
                let c = Cursor::decode(c)?;
                self.check_not_ahead(device, c.watermark).await?;
                (c.watermark, Some(c.seq))
            }
            None => (self.store.signature_watermark(pid).await?, None),
        };
        let page = SignaturePage {
            watermark,
            before_seq: before,
            limit: limit + 1,
        };
        let mut rows = match &grant {
            Some(g) => self.store.grant_signatures(g, page).await?,
            None => {
                let from = match q.from.as_deref() {
                    Some(f) => parse_from(f)?,
                    None => self.clock.now_ms() - DAY_MS,
                };
                self.store.practitioner_signatures(pid, from, page).await?
            }
        };
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(
                Cursor {
                    watermark,
                    seq: last.seq,
                }
                .encode(),
            ),
            _ => None,
        };
        Ok(SignatureList {
            signatures: rows.into_iter().map(to_wire).collect::<Result<_>>()?,
            watermark: watermark as u64,
            next_cursor,
            more,
        })
    }

    /// Where a live follower without `Last-Event-ID`/`since` starts: now
    /// (it then sees only new signatures). Checks the grant is the phone's.
    pub async fn follow_start(
        &self,
        device: &Device,
        q: &SignatureQuery,
        last_event_id: Option<&str>,
    ) -> Result<(Option<String>, i64)> {
        let grant = match q.grant.as_deref() {
            Some(id) => Some(self.own_grant_id(device, id).await?),
            None => None,
        };
        let since = match last_event_id.or(q.since.as_deref()) {
            Some(s) => {
                let s = parse_since(s)?;
                self.check_not_ahead(device, s).await?;
                s
            }
            None => {
                self.store
                    .signature_watermark(&device.practitioner_id)
                    .await?
            }
        };
        Ok((grant, since))
    }

    /// The next signatures after `after` for a live follower, waiting for
    /// them until `deadline` (then an empty list). Re-checks the device on
    /// every wake: a revoked phone's stream ends (`device_revoked`).
    pub async fn next_signatures(
        &self,
        device_id: &str,
        practitioner_id: &str,
        grant: Option<&str>,
        after: i64,
        wake: &mut watch::Receiver<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<api::SignatureEntry>> {
        loop {
            match self.store.get_device(device_id).await? {
                Some(d) if d.revoked_ms.is_none() => {}
                Some(_) => return Err(Error::DeviceRevoked),
                None => return Err(Error::DeviceUnknown),
            }
            // Mark what this replica has committed so far as seen before
            // reading, so a commit between the read and the wait still wakes us.
            wake.borrow_and_update();
            let rows = self
                .store
                .signatures_since(practitioner_id, grant, after, PAGE_MAX)
                .await?;
            if !rows.is_empty() {
                return rows.into_iter().map(to_wire).collect();
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let until = (now + FOLLOW_RECHECK).min(deadline);
            tokio::select! {
                r = wake.changed() => if r.is_err() { tokio::time::sleep_until(until).await },
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// Wakes when this replica records signatures (for live followers).
    pub fn signatures_recorded(&self) -> watch::Receiver<u64> {
        self.signature_log.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let c = Cursor {
            watermark: 90,
            seq: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "!!",
            "AAAA",
            &api::b64u::encode(&[0u8; 15]),
            &api::b64u::encode(&[0u8; 16]),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(Error::CursorInvalid(_))),
                "{bad:?}"
            );
        }
        // seq above the watermark cannot come from a walk.
        let forged = Cursor {
            watermark: 5,
            seq: 6,
        }
        .encode();
        assert!(matches!(
            Cursor::decode(&forged),
            Err(Error::CursorInvalid(_))
        ));
    }

    #[test]
    fn a_label_must_be_utf8_without_control_or_bidi_characters() {
        let ok = |s: &str| label_from_request(Some(&RawLabel(s.as_bytes().to_vec())));
        assert_eq!(
            ok("処方箋 山田太郎 #12").unwrap().as_deref(),
            Some("処方箋 山田太郎 #12")
        );
        assert_eq!(label_from_request(None).unwrap(), None);
        assert!(matches!(
            ok(""),
            Err(Error::LabelInvalid(api::LabelError::Empty))
        ));
        assert!(matches!(
            ok("a\nb"),
            Err(Error::LabelInvalid(api::LabelError::ForbiddenChar(0x0A, 1)))
        ));
        assert!(matches!(
            ok("rx\u{202E}gpj"),
            Err(Error::LabelInvalid(api::LabelError::ForbiddenChar(
                0x202E, 2
            )))
        ));
        assert!(matches!(
            ok(&"あ".repeat(81)),
            Err(Error::LabelInvalid(api::LabelError::TooLong(81)))
        ));
        assert!(ok(&"あ".repeat(80)).is_ok());
        let raw = RawLabel(vec![b'a', 0xff, b'b']);
        assert!(matches!(
            label_from_request(Some(&raw)),
            Err(Error::LabelInvalid(api::LabelError::NotUtf8))
        ));
    }

    #[test]
    fn a_json_label_that_is_not_utf8_reaches_the_label_check() {
        #[derive(Deserialize)]
        struct Body {
            label: Option<RawLabel>,
        }
        let raw: &[u8] = b"{\"label\":\"a\xffb\"}";
        let b: Body = serde_json::from_slice(raw).unwrap();
        assert!(matches!(
            label_from_request(b.label.as_ref()),
            Err(Error::LabelInvalid(api::LabelError::NotUtf8))
        ));
        let b: Body = serde_json::from_slice(br#"{"label":"x\ud800y"}"#).unwrap();
        assert!(matches!(
            label_from_request(b.label.as_ref()),
            Err(Error::LabelInvalid(api::LabelError::NotUtf8))
        ));
        let b: Body = serde_json::from_slice(br#"{"label":"\u51e6\u65b9"}"#).unwrap();
        assert_eq!(
            label_from_request(b.label.as_ref()).unwrap().as_deref(),
            Some("処方")
        );
    }
}
