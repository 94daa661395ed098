//! The phone's HTTP client for the phone API (`/v1/phone/*`, docs/api.md).
//!
//! It does the protocol work a phone app must not get wrong — refusing a QR of
//! another server before sending anything, building and signing the canonical
//! messages, checking that responses are about the login asked for — and turns
//! every failure into a [`ClientError`] that tells network trouble, server
//! refusals (with the server's stable code) and device-key failures apart.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{
    self, DecisionRequest, DecisionResponse, EndAllResponse, EnrollRequest, EnrollResponse,
    ErrorCode, GrantList, GrantSummary, LoginByCode, LoginByCodeRequest, LoginContext,
    LoginContextRequest, Platform, PractitionerInfo, Problem, SignatureList,
};
use crate::approval::{ApprovalMessage, Decision, DevicePublicKey, EnrollmentMessage};
use crate::attestation::AttestationRequest;
use crate::key::{KeyError, PlatformKey};
use crate::origin::Origin;
use crate::payload::{EnrollmentPayload, LoginPayload};
use crate::user_code::UserCode;

/// Default time limit for a whole request (connect, send, receive).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body the client reads; the phone API never sends more.
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// Why a client call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("network error: {0}")]
    Network(String),
    /// No complete response within the time limit.
    #[error("the server did not answer in time")]
    Timeout,
    /// The server refused the request. `code` is the problem document's stable
    /// code, or derived from the status when the body was not a problem document.
    #[error("server refused ({status} {code}): {detail}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: ErrorCode,
        /// The server's human-readable reason.
        detail: String,
    },
    /// The device key failed (cancelled, locked out, invalidated, ...).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The QR code belongs to a different server than this phone is enrolled
    /// with (or than this client talks to). Nothing was sent.
    #[error("this code belongs to a different server")]
    WrongServer,
    /// A local input is unacceptable (device name length, number not offered, ...). Nothing was sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The server's answer is not what the protocol says (bad JSON, wrong login, ...).
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// What the phone keeps after enrolling: everything it needs for later calls.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Server the phone is enrolled with; only its login QRs are accepted.
    pub origin: Origin,
    /// Device id assigned by the server (bound into approval messages).
    pub device_id: Uuid,
    /// Bearer token for cheap calls.
    pub device_token: String,
    /// Whose phone this is.
    pub practitioner: PractitionerInfo,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("origin", &self.origin)
            .field("device_id", &self.device_id)
            .field("device_token", &"..")
            .field("practitioner", &self.practitioner)
            .finish()
    }
}

/// Async client for one server origin.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    origin: Origin,
}

impl Client {
    /// A client for `origin` with the default 10 s timeout.
    pub fn new(origin: Origin) -> Result<Client, ClientError> {
        Client::with_timeout(origin, DEFAULT_TIMEOUT)
    }

    /// A client for `origin` with a custom per-request timeout.
    pub fn with_timeout(origin: Origin, timeout: Duration) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Secrets travel in bodies and headers; never follow them elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!origin.is_loopback_http())
            .user_agent(concat!("shomei-core/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Network(format!("cannot build HTTP client: {e}")))?;
        Ok(Client { http, origin })
    }

    /// The server this client talks to.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.origin.as_str(), path)
    }

    fn check_enrollment(&self, e: &Enrollment) -> Result<(), ClientError> {
        if e.origin != self.origin {
            return Err(ClientError::WrongServer);
        }
        Ok(())
    }

    /// Enrolls this phone: signs the enrollment message with `key`, asks `key` for
    /// its platform attestation (docs/protocol.md §3.3) and registers its public key
    /// with both. `platform` is reported to the server.
    pub async fn enroll(
        &self,
        p: &EnrollmentPayload,
        activation_password: &str,
        key: &dyn PlatformKey,
        device_name: &str,
        platform: Platform,
    ) -> Result<Enrollment, ClientError> {
        if p.origin != self.origin {
            return Err(ClientError::WrongServer);
        }
        let chars = device_name.chars().count();
        if chars == 0 || chars > api::DEVICE_NAME_MAX_CHARS {
            return Err(ClientError::InvalidInput(format!(
                "device name must be 1..={} characters",
                api::DEVICE_NAME_MAX_CHARS
            )));
        }
        let public_key = DevicePublicKey::from_sec1(&key.public_key()?).map_err(|_| {
            ClientError::Key(KeyError::Failed(
                "platform key returned an invalid P-256 public key".into(),
            ))
        })?;
        let message = EnrollmentMessage {
            origin: &p.origin,
            enrollment_id: &p.enrollment_id,
            secret: &p.secret,
            public_key: &public_key,
            device_name,
        }
        .to_bytes();
        let proof = key.sign(&message)?;
        let attestation = key.attestation(&AttestationRequest::new(p, &public_key))?;
        let body = EnrollRequest {
            enrollment_id: p.enrollment_id,
            secret: p.secret.clone(),
            activation_password: activation_password.to_string(),
            public_key: public_key.as_bytes().to_vec(),
            proof,
            device_name: device_name.to_string(),
            platform,
            attestation,
        };
        let req = self.http.post(self.url("/v1/phone/enroll")).json(&body);
        let resp: EnrollResponse = self.send(req, StatusCode::CREATED).await?;
        if resp.server_origin != self.origin {
            return Err(ClientError::Protocol(format!(
                "server says its origin is {}, expected {}",
                resp.server_origin, self.origin
            )));
        }
        Ok(Enrollment {
            origin: self.origin.clone(),
            device_id: resp.device_id,
            device_token: resp.device_token,
            practitioner: resp.practitioner,
        })
    }

    /// Fetches who is asking (facility, terminal, time) and the numbers to match.
    pub async fn login_context(
        &self,
        e: &Enrollment,
        p: &LoginPayload,
    ) -> Result<LoginContext, ClientError> {
        self.check_enrollment(e)?;
        if p.origin != e.origin {
            return Err(ClientError::WrongServer);
        }
        let path = format!("/v1/phone/logins/{}/context", p.login_id.to_b64u());
        let req = self
            .http
            .post(self.url(&path))
            .bearer_auth(&e.device_token)
            .json(&LoginContextRequest {
                secret: p.secret.clone(),
            });
        let ctx: LoginContext = self.send(req, StatusCode::OK).await?;
        if ctx.login_id != p.login_id {
            return Err(ClientError::Protocol(
                "context is for a different login".into(),
            ));
        }
        check_number_choices(&ctx)?;
        Ok(ctx)
    }

    /// The typed-code fallback (docs/protocol.md §4.6): resolves the code the
    /// practitioner typed to the login it names and returns that login's QR
    /// payload and context, exactly what [`Client::login_context`] gives
    /// after a scan. Approve or deny it with [`Client::decide`] and the
    /// returned payload: the signed approval is the same §3.1 message. (The
    /// payload's expiry is not checked against the phone's clock here: the
    /// server just said the login is open; `decide` callers that re-parse
    /// the URL check it as for a scan.)
    pub async fn login_by_code(
        &self,
        e: &Enrollment,
        code: &UserCode,
    ) -> Result<(LoginPayload, LoginContext), ClientError> {
        self.check_enrollment(e)?;
        let req = self
            .http
            .post(self.url("/v1/phone/logins/by-code"))
            .bearer_auth(&e.device_token)
            .json(&LoginByCodeRequest {
                user_code: code.canonical(),
            });
        let found: LoginByCode = self.send(req, StatusCode::OK).await?;
        // now = 0: the expiry is the server's to judge here (see above).
        let payload = LoginPayload::parse(&found.payload, 0)
            .map_err(|err| ClientError::Protocol(format!("the server's payload: {err}")))?;
        if payload.origin != e.origin {
            return Err(ClientError::Protocol(
                "the server answered with another server's login".into(),
            ));
        }
        if found.context.login_id != payload.login_id {
            return Err(ClientError::Protocol(
                "context is for a different login than the payload".into(),
            ));
        }
        check_number_choices(&found.context)?;
        Ok((payload, found.context))
    }
}

/// The user must be able to tell the three numbers apart on screen.
fn check_number_choices(ctx: &LoginContext) -> Result<(), ClientError> {
    let [a, b, c] = ctx.number_choices;
    let two_digit = ctx.number_choices.iter().all(|n| (10..=99).contains(n));
    if !two_digit || a == b || b == c || a == c {
        return Err(ClientError::Protocol(
            "number choices are not three distinct two-digit numbers".into(),
        ));
    }
    Ok(())
}

impl Client {
    /// Approves or denies a login: signs the approval message with `key` (which
    /// may prompt for biometrics) and posts it. For an approval `number` must be
    /// one of `ctx.number_choices`; a deny may use 0.
    #[allow(clippy::too_many_arguments)]
    pub async fn decide(
        &self,
        e: &Enrollment,
        p: &LoginPayload,
        ctx: &LoginContext,
        d: Decision,
        number: u8,
        key: &dyn PlatformKey,
    ) -> Result<DecisionResponse, ClientError> {
        self.check_enrollment(e)?;
        if p.origin != e.origin {
            return Err(ClientError::WrongServer);
        }
        if ctx.login_id != p.login_id {
            return Err(ClientError::InvalidInput(
                "context belongs to another login".into(),
            ));
        }
        let offered = ctx.number_choices.contains(&number);
        if !(offered || (d == Decision::Deny && number == 0)) {
            return Err(ClientError::InvalidInput(format!(
                "number {number} was not offered"
            )));
        }
        let message = ApprovalMessage {
            origin: &e.origin,
            login_id: &p.login_id,
            secret: &p.secret,
            device_id: *e.device_id.as_bytes(),
            decision: d,
            number,
            challenge: ctx.challenge,
        }
        .to_bytes();
        let signature = key.sign(&message)?;
        let path = format!("/v1/phone/logins/{}/decision", p.login_id.to_b64u());
        let body = DecisionRequest {
            device_id: e.device_id,
            decision: d,
            number,
            signature,
        };
        let req = self
            .http
            .post(self.url(&path))
            .bearer_auth(&e.device_token)
            .json(&body);
        let resp: DecisionResponse = self.send(req, StatusCode::OK).await?;
        let consistent = matches!(
            (d, resp.outcome),
            (Decision::Approve, api::Outcome::Approved) | (Decision::Deny, api::Outcome::Denied)
        );
        if !consistent {
            return Err(ClientError::Protocol(format!(
                "asked to {d:?} but the server answered {:?}",
                resp.outcome
            )));
        }
        Ok(resp)
    }

    /// Active grants of this device's practitioner.
    pub async fn grants(&self, e: &Enrollment) -> Result<Vec<GrantSummary>, ClientError> {
        self.check_enrollment(e)?;
        let req = self
            .http
            .get(self.url("/v1/phone/grants"))
            .bearer_auth(&e.device_token);
        let list: GrantList = self.send(req, StatusCode::OK).await?;
        Ok(list.grants)
    }

    /// Ends one grant at once (the terminal can no longer sign with it).
    pub async fn end_grant(&self, e: &Enrollment, grant_id: Uuid) -> Result<(), ClientError> {
        self.check_enrollment(e)?;
        let req = self
            .http
            .delete(self.url(&format!("/v1/phone/grants/{grant_id}")))
            .bearer_auth(&e.device_token);
        self.send_empty(req, StatusCode::NO_CONTENT).await
    }

    /// Ends every grant of this practitioner; returns how many were ended.
    pub async fn end_all_grants(&self, e: &Enrollment) -> Result<u32, ClientError> {
        self.check_enrollment(e)?;
        let req = self
            .http
            .delete(self.url("/v1/phone/grants"))
            .bearer_auth(&e.device_token);
        let r: EndAllResponse = self.send(req, StatusCode::OK).await?;
        Ok(r.ended)
    }

    /// One page of this practitioner's signing log (docs/protocol.md §9.1),
    /// newest first: one grant's (`grant`) or the last 24 hours across all
    /// grants. `cursor` is the previous page's `next_cursor`; `limit` 1..=200.
    pub async fn signatures(
        &self,
        e: &Enrollment,
        grant: Option<Uuid>,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<SignatureList, ClientError> {
        self.check_enrollment(e)?;
        check_page_limit(limit)?;
        let mut query = vec![("limit", limit.to_string())];
        if let Some(g) = grant {
            query.push(("grant", g.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let list = self.signature_list(e, &query).await?;
        check_page(&list, grant, limit)?;
        Ok(list)
    }

    /// The signatures recorded after `since` (a `watermark` or `seq` seen
    /// before), oldest first: polling the signing log (§9.3). When `more`
    /// is set, call again at once with `since = watermark`.
    pub async fn signatures_since(
        &self,
        e: &Enrollment,
        grant: Option<Uuid>,
        since: u64,
        limit: u32,
    ) -> Result<SignatureList, ClientError> {
        self.check_enrollment(e)?;
        check_page_limit(limit)?;
        let mut query = vec![("limit", limit.to_string()), ("since", since.to_string())];
        if let Some(g) = grant {
            query.push(("grant", g.to_string()));
        }
        let list = self.signature_list(e, &query).await?;
        check_since_batch(&list, grant, since, limit)?;
        Ok(list)
    }

    async fn signature_list(
        &self,
        e: &Enrollment,
        query: &[(&str, String)],
    ) -> Result<SignatureList, ClientError> {
        let req = self
            .http
            .get(self.url("/v1/phone/signatures"))
            .query(query)
            .bearer_auth(&e.device_token);
        self.send(req, StatusCode::OK).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        expect: StatusCode,
    ) -> Result<T, ClientError> {
        let (status, body) = exchange(req).await?;
        if status != expect {
            return Err(unexpected(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ClientError::Protocol(format!("response is not the expected JSON: {e}")))
    }

    async fn send_empty(
        &self,
        req: reqwest::RequestBuilder,
        expect: StatusCode,
    ) -> Result<(), ClientError> {
        let (status, body) = exchange(req).await?;
        if status != expect {
            return Err(unexpected(status, &body));
        }
        Ok(())
    }
}

fn check_page_limit(limit: u32) -> Result<(), ClientError> {
    if !(1..=api::SIGNATURE_PAGE_MAX).contains(&limit) {
        return Err(ClientError::InvalidInput(format!(
            "limit must be 1..={}",
            api::SIGNATURE_PAGE_MAX
        )));
    }
    Ok(())
}

/// What a signing-log page must be (docs/protocol.md §9.1): at most `limit`
/// entries, newest first (`seq` strictly descending) at or below its
/// `watermark`, of the asked grant only, with a `next_cursor` exactly when
/// `more` is set. A server that breaks this would make the phone show a
/// wrong or partial log, so the answer is refused as a protocol error.
pub(crate) fn check_page(
    list: &SignatureList,
    grant: Option<Uuid>,
    limit: u32,
) -> Result<(), ClientError> {
    let seqs: Vec<u64> = list.signatures.iter().map(|s| s.seq).collect();
    if list.signatures.len() > limit as usize {
        return Err(ClientError::Protocol(format!(
            "signature page holds {} entries, more than the limit {limit}",
            seqs.len()
        )));
    }
    let descending = seqs.windows(2).all(|w| w[0] > w[1]);
    if !descending || seqs.first().is_some_and(|&s| s > list.watermark) {
        return Err(ClientError::Protocol(
            "signature page is not newest first within its watermark".into(),
        ));
    }
    if list.more != list.next_cursor.is_some() {
        return Err(ClientError::Protocol(
            "signature page: more and next_cursor disagree".into(),
        ));
    }
    check_grant(list, grant)
}

/// What a `since` batch must be (§9.3): at most `limit` entries, all after
/// `since`, oldest first (`seq` strictly ascending), of the asked grant
/// only, no cursor, and a `watermark` that is the last `seq` returned
/// (`since` when none) — the next poll resumes there, so a wrong one would
/// skip or repeat signatures.
pub(crate) fn check_since_batch(
    list: &SignatureList,
    grant: Option<Uuid>,
    since: u64,
    limit: u32,
) -> Result<(), ClientError> {
    let seqs: Vec<u64> = list.signatures.iter().map(|s| s.seq).collect();
    let ascending = seqs.windows(2).all(|w| w[0] < w[1]);
    if !ascending || seqs.first().is_some_and(|&s| s <= since) || seqs.len() > limit as usize {
        return Err(ClientError::Protocol(
            "signatures since a seq are not new, ascending and within the limit".into(),
        ));
    }
    if list.watermark != seqs.last().copied().unwrap_or(since) {
        return Err(ClientError::Protocol(
            "watermark is not the last seq returned".into(),
        ));
    }
    if list.next_cursor.is_some() {
        return Err(ClientError::Protocol(
            "a since batch carries no next_cursor".into(),
        ));
    }
    check_grant(list, grant)
}

fn check_grant(list: &SignatureList, grant: Option<Uuid>) -> Result<(), ClientError> {
    if let Some(g) = grant
        && let Some(other) = list.signatures.iter().find(|s| s.grant_id != g)
    {
        return Err(ClientError::Protocol(format!(
            "signature {} of another grant was returned",
            other.seq
        )));
    }
    Ok(())
}

fn transport_error(e: reqwest::Error) -> ClientError {
    if e.is_timeout() {
        ClientError::Timeout
    } else {
        // without_url: ids in paths are harmless, but keep messages short and uniform.
        ClientError::Network(e.without_url().to_string())
    }
}

/// Sends and reads the whole body (bounded).
async fn exchange(req: reqwest::RequestBuilder) -> Result<(StatusCode, Vec<u8>), ClientError> {
    let mut resp = req.send().await.map_err(transport_error)?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(ClientError::Protocol(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Maps a response with an unexpected status to an error: the problem document
/// when there is one, else a code derived from the status (e.g. a proxy's 413).
fn unexpected(status: StatusCode, body: &[u8]) -> ClientError {
    if status.is_client_error() || status.is_server_error() {
        if let Ok(p) = serde_json::from_slice::<Problem>(body) {
            return ClientError::Rejected {
                status: status.as_u16(),
                code: p.code,
                detail: p.detail,
            };
        }
        return ClientError::Rejected {
            status: status.as_u16(),
            code: code_for_status(status),
            detail: format!("HTTP {status} without a problem document"),
        };
    }
    ClientError::Protocol(format!("unexpected HTTP status {status}"))
}

fn code_for_status(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::BadRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        405 => ErrorCode::MethodNotAllowed,
        413 => ErrorCode::BodyTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::RateLimited,
        500 => ErrorCode::Internal,
        502..=504 => ErrorCode::Unavailable,
        _ => ErrorCode::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{NamedRef, SignatureEntry, SignatureFormat};

    fn grant(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn entry(seq: u64, g: Uuid) -> SignatureEntry {
        let named = |name: &str| NamedRef {
            id: Uuid::from_bytes([3; 16]),
            name: name.into(),
        };
        SignatureEntry {
            seq,
            signed_at: time::OffsetDateTime::UNIX_EPOCH,
            grant_id: g,
            facility: named("Sakura Clinic"),
            terminal: named("Reception PC 1"),
            credential_id: "cred".into(),
            algorithm: "rsa-pkcs1-sha256".into(),
            format: SignatureFormat::Hash,
            digest: vec![7; 32],
            label: None,
        }
    }

    fn list(seqs: &[u64], watermark: u64, cursor: Option<&str>, more: bool) -> SignatureList {
        SignatureList {
            signatures: seqs.iter().map(|&s| entry(s, grant(1))).collect(),
            watermark,
            next_cursor: cursor.map(str::to_owned),
            more,
        }
    }

    fn protocol(r: Result<(), ClientError>) -> bool {
        matches!(r, Err(ClientError::Protocol(_)))
    }

    #[test]
    fn a_page_newest_first_within_its_watermark_is_accepted() {
        assert_eq!(
            check_page(&list(&[9, 7, 3], 9, Some("c"), true), Some(grant(1)), 3),
            Ok(())
        );
        assert_eq!(
            check_page(&list(&[5, 4], 12, None, false), None, 50),
            Ok(())
        );
        assert_eq!(check_page(&list(&[], 0, None, false), None, 1), Ok(()));
    }

    #[test]
    fn a_page_out_of_order_above_its_watermark_or_over_the_limit_is_a_protocol_error() {
        assert!(
            protocol(check_page(&list(&[3, 7], 9, None, false), None, 50)),
            "ascending"
        );
        assert!(
            protocol(check_page(&list(&[7, 7], 9, None, false), None, 50)),
            "repeated seq"
        );
        assert!(
            protocol(check_page(&list(&[10, 7], 9, None, false), None, 50)),
            "above the watermark"
        );
        assert!(
            protocol(check_page(&list(&[9, 8, 7], 9, None, false), None, 2)),
            "over the limit"
        );
    }

    #[test]
    fn a_page_whose_more_and_cursor_disagree_is_a_protocol_error() {
        assert!(protocol(check_page(&list(&[9], 9, None, true), None, 1)));
        assert!(protocol(check_page(
            &list(&[9], 9, Some("c"), false),
            None,
            1
        )));
    }

    #[test]
    fn a_page_holding_another_grants_signature_is_a_protocol_error() {
        let mut l = list(&[9, 8], 9, None, false);
        l.signatures[1].grant_id = grant(2);
        assert!(protocol(check_page(&l, Some(grant(1)), 50)));
        // The day view mixes grants by design.
        assert_eq!(check_page(&l, None, 50), Ok(()));
    }

    #[test]
    fn a_since_batch_is_new_ascending_and_ends_at_its_watermark() {
        assert_eq!(
            check_since_batch(&list(&[11, 12, 15], 15, None, true), Some(grant(1)), 10, 3),
            Ok(())
        );
        assert_eq!(
            check_since_batch(&list(&[], 10, None, false), None, 10, 50),
            Ok(())
        );
    }

    #[test]
    fn a_since_batch_that_repeats_reorders_or_moves_the_watermark_wrongly_is_a_protocol_error() {
        assert!(
            protocol(check_since_batch(
                &list(&[10, 12], 12, None, false),
                None,
                10,
                50
            )),
            "seq not after since"
        );
        assert!(
            protocol(check_since_batch(
                &list(&[13, 12], 13, None, false),
                None,
                10,
                50
            )),
            "descending"
        );
        assert!(
            protocol(check_since_batch(
                &list(&[11, 12], 14, None, false),
                None,
                10,
                50
            )),
            "watermark past the batch"
        );
        assert!(
            protocol(check_since_batch(&list(&[], 9, None, false), None, 10, 50)),
            "empty batch moved the watermark"
        );
        assert!(
            protocol(check_since_batch(
                &list(&[11, 12], 12, None, false),
                None,
                10,
                1
            )),
            "over the limit"
        );
        assert!(
            protocol(check_since_batch(
                &list(&[11], 11, Some("c"), false),
                None,
                10,
                50
            )),
            "cursor on a batch"
        );
        let mut l = list(&[11], 11, None, false);
        l.signatures[0].grant_id = grant(2);
        assert!(
            protocol(check_since_batch(&l, Some(grant(1)), 10, 50)),
            "another grant"
        );
    }
}
