//! Demo mode (`shomei serve --demo`): on an empty store, seed a facility,
//! a terminal, a practitioner with a dev-CA RSA credential and an
//! enrollment code, so a first run can be tried end to end at once; and
//! the EHR demo page's server-side step ([`Demo`]): the page starts a login,
//! follows it, and signs a sample prescription through the server acting
//! in-process as the seeded demo terminal (see [`session`] for why).
//!
//! Never for production: anyone who can load `/demo` can start logins at
//! the demo terminal (that is the point of a demo).

pub mod prescription;
pub mod session;

use base64::Engine as _;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::service::admin::CredentialSource;
use crate::service::enrollment::EnrollmentCode;
use crate::service::login::{Approver, TokenError};
use crate::service::signature::CredentialInfoRequest;
use crate::service::signed_document::{DocumentDigests, SignDocRequest};
use crate::service::signing_log::RawLabel;
use crate::service::{App, Error, Result, random_bytes, rfc3339};
use crate::signing::{KeyAlgorithm, oid};
use crate::store::{Login, Terminal};
use crate::xades::verify::{Verified, verify};

use session::{Held, Session, Sessions};

/// The setting naming the terminal the demo acts for (written by [`seed`]),
/// so the demo still works after a restart on the same data directory,
/// and never acts for a terminal the operator registered.
const DEMO_TERMINAL_SETTING: &str = "demo_terminal";

/// What the demo seed created (secrets shown once).
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoSeed {
    pub facility_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub practitioner_id: String,
    pub credential_id: String,
    pub enrollment: EnrollmentCode,
}

/// Seeds an empty store; `None` when anything exists already.
pub async fn seed(app: &App) -> Result<Option<DemoSeed>> {
    if !app.store.list_facilities().await?.is_empty() {
        return Ok(None);
    }
    let f = app
        .create_facility("しょうめい内科クリニック (Shomei Demo Clinic)")
        .await?;
    let t = app
        .create_terminal(&f.id, "診察室1 EHR (demo terminal)")
        .await?;
    app.store
        .put_setting_if_absent(DEMO_TERMINAL_SETTING, t.client_id.as_bytes())
        .await?;
    let p = app
        .create_practitioner(
            "山田 花子 (Hanako Yamada)",
            "doctor",
            std::slice::from_ref(&f.id),
        )
        .await?;
    let c = app
        .create_credential(&p.id, CredentialSource::Generate(KeyAlgorithm::Rsa2048))
        .await?;
    let e = app.create_enrollment(&p.id, None).await?;
    Ok(Some(DemoSeed {
        facility_id: f.id,
        client_id: t.client_id,
        client_secret: t.client_secret,
        practitioner_id: p.id,
        credential_id: c.id,
        enrollment: e,
    }))
}

/// The terminal a demo seed created on this store, if any.
pub async fn demo_terminal(app: &App) -> Result<Option<String>> {
    Ok(app
        .store
        .get_setting(DEMO_TERMINAL_SETTING)
        .await?
        .and_then(|v| String::from_utf8(v).ok()))
}

/// What the demo says about phone attestation: whether its policy lets the
/// desktop phone (a software key that cannot attest) enroll.
pub fn attestation_note(p: &crate::attestation::AttestationPolicy) -> String {
    use crate::attestation::Mode;
    let desktop = match p.mode_for(shomei_core::api::Platform::Desktop) {
        Mode::Require => {
            "refuses the desktop phone (shomei-phone): it cannot attest its software key"
        }
        Mode::Allow | Mode::Off => {
            "allows the desktop phone (shomei-phone), enrolled as unattested"
        }
    };
    format!("Attestation policy ({}): {desktop}.", p.summary())
}

/// The demo page's server-side step: sessions acting as the demo terminal.
pub struct Demo {
    /// The seeded demo terminal (`None`: this store was not seeded by
    /// `--demo`; the page then explains that and starts nothing).
    terminal_id: Option<String>,
    /// The live demo sessions.
    pub sessions: Sessions,
}

/// `POST /demo/api/session` answer: what the page shows while waiting.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Started {
    /// The number the practitioner must pick on the phone.
    pub match_number: u8,
    /// Seconds until the login expires.
    pub expires_in: i64,
    /// `number`, or `code`: the page must ask for the code the phone shows.
    pub confirmation: &'static str,
    /// Facility and terminal the phone will name.
    pub terminal: String,
}

/// Whose signing day the page now holds (protocol.md §8, defence 1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Holding {
    pub practitioner: Approver,
    pub grant_id: String,
    /// RFC 3339.
    pub grant_expires_at: String,
    /// "signing as 山田 花子 (doctor)".
    pub signing_as: String,
}

/// `POST /demo/api/session/sign` answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Signed {
    /// `Id` of the signed `PrescriptionDocument`.
    pub prescription_id: String,
    /// Standard base64 SHA-256 of its exc-c14n form (what signDoc got).
    pub digest: String,
    /// The prescription document with the returned `PrescriptionSign`.
    pub document: String,
    /// Whether the server's verifier accepted the document.
    pub verified: bool,
    /// What was verified (when `verified`).
    pub verification: Option<Verified>,
    /// Why it did not verify (when not `verified`).
    pub failure: Option<String>,
}

fn token_error(e: TokenError) -> Error {
    match e {
        TokenError::AccessDenied | TokenError::ConfirmationFailed => Error::LoginDenied,
        TokenError::ExpiredToken => Error::LoginExpired,
        TokenError::AuthorizationPending | TokenError::SlowDown => {
            Error::Conflict("the practitioner has not answered yet".into())
        }
        // Token already collected, or the grant ended before it was.
        TokenError::InvalidGrant => Error::GrantInvalid,
        TokenError::ConfirmationRequired => {
            Error::BadRequest("type the confirmation code the phone shows".into())
        }
        TokenError::ConfirmationWrong => Error::BadRequest(e.description().into()),
        TokenError::InvalidClient => {
            Error::Conflict("the demo terminal was revoked by the operator".into())
        }
        TokenError::InvalidRequest | TokenError::UnsupportedGrantType | TokenError::ServerError => {
            Error::Internal(format!("demo token request: {e}"))
        }
    }
}

impl Demo {
    /// The demo for this store: acts for the terminal [`seed`] created.
    pub async fn new(app: &App) -> Result<Demo> {
        Ok(Demo {
            terminal_id: demo_terminal(app).await?,
            sessions: Sessions::default(),
        })
    }

    /// Whether this store has a demo terminal to act for.
    pub fn has_terminal(&self) -> bool {
        self.terminal_id.is_some()
    }

    async fn terminal(&self, app: &App) -> Result<Terminal> {
        let id = self.terminal_id.as_deref().ok_or_else(|| {
            Error::NotFound("no demo terminal: this data directory was not seeded by `shomei serve --demo` on an empty store".into())
        })?;
        let t = app
            .store
            .get_terminal(id)
            .await?
            .ok_or_else(|| Error::NotFound("the demo terminal no longer exists".into()))?;
        if t.revoked_ms.is_some() {
            return Err(Error::Conflict(
                "the demo terminal was revoked by the operator".into(),
            ));
        }
        Ok(t)
    }

    /// Starts a login as the demo terminal; returns the new session's
    /// handle (for the cookie) and what the page shows.
    pub async fn start(&self, app: &App, replaces: Option<&str>) -> Result<(String, Started)> {
        let t = self.terminal(app).await?;
        let now = app.clock.now_ms();
        // Refuse before a login exists, so a full table starts nothing.
        self.sessions.has_room(replaces, now)?;
        let d = app.start_login(&t).await?;
        let f = app
            .store
            .get_facility(&t.facility_id)
            .await?
            .map(|f| f.name)
            .unwrap_or_default();
        let s = Session {
            login_id: d.login_id,
            device_code: Zeroizing::new(d.device_code),
            expires_ms: now + session::SESSION_TTL_S * 1000,
            held: None,
        };
        let handle = self.sessions.insert(s, replaces, now)?;
        Ok((
            handle,
            Started {
                match_number: d.match_number,
                expires_in: d.expires_in,
                confirmation: d.confirmation,
                terminal: format!("{f} / {}", t.name),
            },
        ))
    }

    /// The session's login, read now (for the QR and the status stream).
    pub async fn login(&self, app: &App, handle: Option<&str>) -> Result<Login> {
        let s = self.sessions.get(handle, app.clock.now_ms())?;
        app.terminal_login(&self.terminal(app).await?, &s.login_id)
            .await
    }

    /// The login id of the session (to register a waiter before reading it).
    pub fn login_id(&self, app: &App, handle: Option<&str>) -> Result<String> {
        Ok(self.sessions.get(handle, app.clock.now_ms())?.login_id)
    }

    /// After the approval: collects the grant's token (kept here) with the
    /// confirmation code if the policy asks for one; says whose day it is.
    pub async fn collect(
        &self,
        app: &App,
        handle: Option<&str>,
        confirmation_code: Option<&str>,
    ) -> Result<Holding> {
        let now = app.clock.now_ms();
        let s = self.sessions.get(handle, now)?;
        let held = match s.held {
            Some(h) => h,
            None => {
                let t = self.terminal(app).await?;
                let tok = app
                    .poll_token(&t, &s.device_code, confirmation_code)
                    .await
                    .map_err(token_error)?;
                let h = Held {
                    access_token: Zeroizing::new(tok.access_token),
                    grant_id: tok.grant_id,
                    practitioner: tok.practitioner,
                    expires_ms: now + tok.expires_in * 1000,
                };
                self.sessions.hold(handle.unwrap_or_default(), h.clone())?;
                h
            }
        };
        let expires = rfc3339(held.expires_ms)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        Ok(Holding {
            signing_as: format!(
                "signing as {} ({})",
                held.practitioner.display_name, held.practitioner.role
            ),
            practitioner: held.practitioner,
            grant_id: held.grant_id,
            grant_expires_at: expires,
        })
    }

    /// Signs a sample prescription with the session's grant (signDoc,
    /// XAdES), then verifies the assembled document against the dev CA.
    pub async fn sign(
        &self,
        app: &App,
        handle: Option<&str>,
        medication: Option<&str>,
    ) -> Result<Signed> {
        let medication = prescription::medication(medication)?;
        let s = self.sessions.get(handle, app.clock.now_ms())?;
        let held = s.held.ok_or_else(|| {
            Error::Conflict("no grant yet: approve the login on the phone first".into())
        })?;
        let t = self.terminal(app).await?;
        let grant = app.authorize_grant(&held.access_token, &t).await?;
        let credential_id = app
            .csc_credentials(&grant)
            .await?
            .credential_ids
            .into_iter()
            .next()
            .ok_or(Error::CredentialUnknown)?;
        let info = app
            .csc_credential_info(
                &grant,
                &CredentialInfoRequest {
                    credential_id: credential_id.clone(),
                    certificates: None,
                },
            )
            .await?;
        let sign_algo = info
            .key
            .algo
            .first()
            .copied()
            .ok_or_else(|| Error::Internal("credential without algorithm".into()))?;
        let id = format!("Rx-{}", hex::encode(random_bytes::<6>()));
        let today = rfc3339(app.clock.now_ms() + 9 * 3600 * 1000)
            .date()
            .to_string();
        let element =
            prescription::element(&id, &held.practitioner.display_name, &medication, &today);
        let digest = crate::service::sha256(element.as_bytes());
        let std_b64 = base64::engine::general_purpose::STANDARD;
        let req = SignDocRequest {
            credential_id,
            document_digests: vec![DocumentDigests {
                hashes: vec![std_b64.encode(&digest)],
                hash_algorithm_oid: Some(oid::SHA256.to_owned()),
                signature_format: "X".to_owned(),
                conformance_level: None,
                sign_algo: sign_algo.to_owned(),
                sign_algo_params: None,
                signed_envelope_property: None,
                signed_props: None,
                reference_ids: Some(vec![id.clone()]),
            }],
            documents: None,
            label: Some(RawLabel(format!("処方箋 (demo) {id}").into_bytes())),
        };
        let out = app.csc_sign_doc(crate::service::signature::SigningCall::new(t, grant), req).await?;
        let object = out
            .signature_object
            .first()
            .ok_or_else(|| Error::Internal("signDoc returned nothing".into()))?;
        let signature = String::from_utf8(
            std_b64
                .decode(object)
                .map_err(|e| Error::Internal(e.to_string()))?,
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        let document = prescription::assembled(&element, &signature);
        let anchor = app.dev_ca_certificate().await?;
        let result = match &anchor {
            Some(ca) => verify(&document, ca).map_err(|e| e.to_string()),
            None => Err("this server has no development CA to verify against".to_owned()),
        };
        Ok(Signed {
            prescription_id: id,
            digest: std_b64.encode(&digest),
            document,
            verified: result.is_ok(),
            failure: result.as_ref().err().cloned(),
            verification: result.ok(),
        })
    }

    /// Ends the session (the token is dropped from memory; the grant stays
    /// until it expires or the practitioner ends it from the phone).
    pub fn end(&self, handle: Option<&str>) -> Result<()> {
        let h = handle.ok_or(Error::DemoSessionUnknown)?;
        if self.sessions.remove(h) {
            Ok(())
        } else {
            Err(Error::DemoSessionUnknown)
        }
    }
}
