//! The operator's registry: facilities, terminals (client credentials),
//! practitioners, signing credentials (dev CA or import), devices and
//! grants as the operator sees them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::enrollment::parse_role;
use super::{App, Error, Result, b64u, ct_eq, new_uuid, random_bytes, rfc3339, sha256};
use crate::signing::{DevCa, HcRole, KeyAlgorithm, NewCredential, Pkcs11Token, SealedKey, SigningError, Subject, TokenKeyRef, certificate_info, certificate_validity, check_chain};
use crate::store::{AuditEvent, Credential, Device, Facility, Grant, Practitioner, Terminal};

const DEV_CA_SETTING: &str = "dev_ca";
const DEV_CA_AAD: &[u8] = b"shomei.dev_ca";

type Time = time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FacilityView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalView {
    pub client_id: String,
    pub facility_id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Time>,
}

/// A new terminal; the secret is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TerminalCreated {
    pub client_id: String,
    pub client_secret: String,
    pub facility_id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PractitionerView {
    pub id: String,
    pub display_name: String,
    pub role: String,
    pub facility_ids: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialView {
    pub id: String,
    pub practitioner_id: String,
    pub algorithm: String,
    pub subject_dn: String,
    pub issuer_dn: String,
    pub serial_number: String,
    pub valid_from: String,
    pub valid_to: String,
    pub hc_role: Option<String>,
    /// `valid`, `not_yet_valid`, `expired` or `revoked`, now.
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Time>,
    /// Where the private key lives: `software` (sealed under the KEK) or
    /// `pkcs11` (generated and kept inside the HSM token).
    #[schema(pattern = "^(software|pkcs11)$")]
    #[serde(default)]
    pub key_store: String,
    /// For `pkcs11` keys: the RFC 7512 URI of the key object on the token.
    #[serde(default)]
    pub key_uri: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub practitioner_id: String,
    pub name: String,
    pub platform: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Time>,
    /// What was verified about the device key at enrollment; `null` for devices
    /// enrolled before attestation was checked.
    pub attestation: Option<crate::attestation::DeviceAttestation>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GrantView {
    pub id: String,
    pub practitioner_id: String,
    pub terminal_id: String,
    pub device_id: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: Time,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: Time,
    pub signatures_made: i64,
    pub signature_cap: Option<i64>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<Time>,
    pub revoked_reason: Option<String>,
    pub active: bool,
}

/// How a credential comes into being.
pub enum CredentialSource {
    /// Issue from the built-in development CA.
    Generate(KeyAlgorithm),
    /// Generate the key pair inside the configured PKCS#11 token; the
    /// development CA certifies the public key read from the token.
    GenerateInToken(KeyAlgorithm),
    /// Import an existing key and chain.
    Import(NewCredential),
    /// A certificate chain for a key pair already on the configured token
    /// (made there with the vendor's tool), named by its `CKA_ID`.
    ImportForTokenKey {
        /// The key pair's `CKA_ID`.
        key_id: Vec<u8>,
        /// DER certificates, leaf first.
        certificate_chain: Vec<Vec<u8>>,
    },
}

/// Where a credential's private key lives: `software` (sealed under the
/// KEK in the store) or `pkcs11` (inside the token; the store holds its
/// `pkcs11:` URI).
fn key_store_of(c: &Credential) -> (&'static str, Option<String>) {
    match TokenKeyRef::from_stored(&c.sealed_key) {
        Some(Ok(r)) => ("pkcs11", Some(r.to_uri())),
        Some(Err(_)) => ("pkcs11", None),
        None => ("software", None),
    }
}

fn terminal_view(t: &Terminal) -> TerminalView {
    TerminalView { client_id: t.id.clone(), facility_id: t.facility_id.clone(), name: t.name.clone(), created_at: rfc3339(t.created_ms), revoked_at: t.revoked_ms.map(rfc3339) }
}

fn practitioner_view(p: &Practitioner) -> PractitionerView {
    PractitionerView { id: p.id.clone(), display_name: p.display_name.clone(), role: p.role.clone(), facility_ids: p.facility_ids.clone() }
}

fn credential_view(app: &App, c: &Credential, now_ms: i64) -> Result<CredentialView> {
    let leaf = c.certificate_chain.first().ok_or_else(|| Error::Internal("credential without certificate".into()))?;
    let i = certificate_info(leaf).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(CredentialView {
        id: c.id.clone(),
        practitioner_id: c.practitioner_id.clone(),
        algorithm: c.algorithm.clone(),
        subject_dn: i.subject_dn,
        issuer_dn: i.issuer_dn,
        serial_number: i.serial_hex,
        valid_from: i.not_before,
        valid_to: i.not_after,
        hc_role: i.hc_role_code,
        status: app.credential_status(c, now_ms)?.as_str().to_owned(),
        revoked_at: c.revoked_ms.map(rfc3339),
        key_store: key_store_of(c).0.to_owned(),
        key_uri: key_store_of(c).1,
    })
}

pub(crate) fn device_view(d: &Device) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        practitioner_id: d.practitioner_id.clone(),
        name: d.name.clone(),
        platform: d.platform.clone(),
        created_at: rfc3339(d.created_ms),
        revoked_at: d.revoked_ms.map(rfc3339),
        attestation: d.attestation_facts.clone(),
    }
}

fn grant_view(g: &Grant, now: i64) -> GrantView {
    GrantView {
        id: g.id.clone(),
        practitioner_id: g.practitioner_id.clone(),
        terminal_id: g.terminal_id.clone(),
        device_id: g.device_id.clone(),
        created_at: rfc3339(g.created_ms),
        expires_at: rfc3339(g.expires_ms),
        signatures_made: g.signatures_made,
        signature_cap: g.signature_cap,
        revoked_at: g.revoked_ms.map(rfc3339),
        revoked_reason: g.revoked_reason.clone(),
        active: super::grant::check_usable(g, now).is_ok(),
    }
}

fn check_name(what: &str, s: &str) -> Result<()> {
    let n = s.trim().chars().count();
    if n == 0 || n > 200 || s.chars().any(char::is_control) {
        return Err(Error::BadRequest(format!("{what} must be 1..=200 printable characters")));
    }
    Ok(())
}

const OPERATOR: &str = "operator";

impl App {
    pub async fn create_facility(&self, name: &str) -> Result<FacilityView> {
        check_name("name", name)?;
        let f = Facility { id: new_uuid(), name: name.trim().to_owned(), created_ms: self.clock.now_ms() };
        self.store.create_facility(&f, &AuditEvent::new(OPERATOR, "facility.create", f.id.clone(), serde_json::json!({ "name": f.name }))).await?;
        Ok(FacilityView { id: f.id, name: f.name, created_at: rfc3339(f.created_ms) })
    }

    pub async fn list_facilities(&self) -> Result<Vec<FacilityView>> {
        Ok(self.store.list_facilities().await?.into_iter().map(|f| FacilityView { id: f.id, name: f.name, created_at: rfc3339(f.created_ms) }).collect())
    }

    pub async fn create_terminal(&self, facility_id: &str, name: &str) -> Result<TerminalCreated> {
        check_name("name", name)?;
        self.store.get_facility(facility_id).await?.ok_or_else(|| Error::NotFound(format!("facility {facility_id}")))?;
        let secret = random_bytes::<32>();
        let t = Terminal {
            id: new_uuid(),
            facility_id: facility_id.to_owned(),
            name: name.trim().to_owned(),
            secret_hash: sha256(&secret),
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
        };
        let audit = AuditEvent::new(OPERATOR, "terminal.create", t.id.clone(), serde_json::json!({ "facility": facility_id, "name": t.name }));
        self.store.create_terminal(&t, &audit).await?;
        Ok(TerminalCreated { client_id: t.id, client_secret: b64u(&secret), facility_id: t.facility_id, name: t.name })
    }

    pub async fn list_terminals(&self) -> Result<Vec<TerminalView>> {
        Ok(self.store.list_terminals().await?.iter().map(terminal_view).collect())
    }

    pub async fn revoke_terminal(&self, id: &str) -> Result<TerminalView> {
        let now = self.clock.now_ms();
        if !self.store.revoke_terminal(id, now, &AuditEvent::new(OPERATOR, "terminal.revoke", id, serde_json::json!({}))).await? {
            return Err(Error::NotFound(format!("active terminal {id}")));
        }
        // Its grants ended with it: drop the keys held for them.
        self.release_all();
        let t = self.store.get_terminal(id).await?.ok_or_else(|| Error::NotFound(format!("terminal {id}")))?;
        Ok(terminal_view(&t))
    }

    /// Checks terminal client credentials (constant-time on the secret).
    pub async fn authenticate_terminal(&self, client_id: &str, client_secret: &str) -> Result<Terminal> {
        admit_terminal(self.store.get_terminal(client_id).await?, client_secret)
    }

    pub async fn create_practitioner(&self, display_name: &str, role: &str, facility_ids: &[String]) -> Result<PractitionerView> {
        check_name("name", display_name)?;
        parse_role(role)?;
        if facility_ids.is_empty() {
            return Err(Error::BadRequest("at least one facility is required".into()));
        }
        let mut ids = facility_ids.to_vec();
        ids.sort();
        ids.dedup();
        for f in &ids {
            self.store.get_facility(f).await?.ok_or_else(|| Error::NotFound(format!("facility {f}")))?;
        }
        let p = Practitioner { id: new_uuid(), display_name: display_name.trim().to_owned(), role: role.to_owned(), facility_ids: ids, created_ms: self.clock.now_ms() };
        let audit = AuditEvent::new(OPERATOR, "practitioner.create", p.id.clone(), serde_json::json!({ "role": p.role, "facilities": p.facility_ids }));
        self.store.create_practitioner(&p, &audit).await?;
        Ok(practitioner_view(&p))
    }

    pub async fn list_practitioners(&self) -> Result<Vec<PractitionerView>> {
        Ok(self.store.list_practitioners().await?.iter().map(practitioner_view).collect())
    }

    /// The development CA's certificate (DER), if the CA exists yet: the
    /// trust anchor for checking dev-CA signatures (the key stays sealed).
    pub async fn dev_ca_certificate(&self) -> Result<Option<Vec<u8>>> {
        #[derive(Deserialize)]
        struct Stored {
            cert: String,
        }
        let Some(raw) = self.store.get_setting(DEV_CA_SETTING).await? else { return Ok(None) };
        let s: Stored = serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("stored dev CA: {e}")))?;
        let cert = base64::engine::general_purpose::STANDARD.decode(&s.cert).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Some(cert))
    }

    /// The development CA, created and stored (sealed) on first use.
    async fn dev_ca(&self) -> Result<DevCa> {
        #[derive(Serialize, Deserialize)]
        struct Stored {
            cert: String,
            key_sealed: String,
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let raw = match self.store.get_setting(DEV_CA_SETTING).await? {
            Some(v) => v,
            None => {
                let ca = tokio::task::spawn_blocking(DevCa::generate).await.map_err(|e| Error::Internal(e.to_string()))??;
                let (pkcs8, cert) = ca.to_parts();
                let s = Stored { cert: b64.encode(cert), key_sealed: b64.encode(self.kek.seal(&pkcs8, DEV_CA_AAD)) };
                // Two racing first uses: whoever stored first wins; both use that one.
                self.store.put_setting_if_absent(DEV_CA_SETTING, &serde_json::to_vec(&s).expect("json")).await?
            }
        };
        let s: Stored = serde_json::from_slice(&raw).map_err(|e| Error::Internal(format!("stored dev CA: {e}")))?;
        let cert = b64.decode(&s.cert).map_err(|e| Error::Internal(e.to_string()))?;
        let sealed = b64.decode(&s.key_sealed).map_err(|e| Error::Internal(e.to_string()))?;
        let pkcs8 = self.kek.open(&sealed, DEV_CA_AAD)?;
        Ok(DevCa::from_parts(&pkcs8, &cert)?)
    }

    pub async fn create_credential(&self, practitioner_id: &str, source: CredentialSource) -> Result<CredentialView> {
        let p = self.store.get_practitioner(practitioner_id).await?.ok_or_else(|| Error::NotFound(format!("practitioner {practitioner_id}")))?;
        let id = new_uuid();
        let (algorithm, stored_key, certificate_chain, how) = match source {
            CredentialSource::Generate(alg) => {
                let (ca, subject) = self.dev_ca_subject(&p).await?;
                let new = tokio::task::spawn_blocking(move || ca.issue(&subject, alg)).await.map_err(|e| Error::Internal(e.to_string()))??;
                let sealed = SealedKey::seal(&self.kek, &id, &new);
                (new.algorithm, sealed.sealed_pkcs8, new.certificate_chain, "dev-ca")
            }
            CredentialSource::GenerateInToken(alg) => {
                let token = self.token()?;
                let (ca, subject) = self.dev_ca_subject(&p).await?;
                let label = id.clone();
                let (key, chain) = tokio::task::spawn_blocking(move || -> Result<_> {
                    let key = token.generate(alg, &label)?;
                    let chain = ca.issue_for_public_key(&subject, alg, &key.public_key)?;
                    Ok((key, chain))
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))??;
                (alg, key.key_ref.to_uri().into_bytes().into(), chain, "pkcs11-dev-ca")
            }
            CredentialSource::Import(new) => {
                self.check_not_expired(&new.certificate_chain)?;
                let sealed = SealedKey::seal(&self.kek, &id, &new);
                (new.algorithm, sealed.sealed_pkcs8, new.certificate_chain, "import")
            }
            CredentialSource::ImportForTokenKey { key_id, certificate_chain } => {
                let (alg, cert_public) = check_chain(&certificate_chain)?;
                self.check_not_expired(&certificate_chain)?;
                let token = self.token()?;
                let key_ref = TokenKeyRef { token_label: token.label().to_owned(), id: key_id };
                let r = key_ref.clone();
                let on_token = tokio::task::spawn_blocking(move || token.public_key(&r, alg)).await.map_err(|e| Error::Internal(e.to_string()))?.map_err(|e| match e {
                    // The operator named a key that is not there: their input, not the server.
                    SigningError::KeyNotOnToken { .. } => Error::BadRequest(e.to_string()),
                    e => e.into(),
                })?;
                if on_token != cert_public {
                    return Err(SigningError::CertificateKeyMismatch.into());
                }
                (alg, key_ref.to_uri().into_bytes().into(), certificate_chain, "pkcs11-import")
            }
        };
        let c = Credential {
            id: id.clone(),
            practitioner_id: practitioner_id.to_owned(),
            algorithm: algorithm.as_str().to_owned(),
            sealed_key: stored_key,
            certificate_chain,
            created_ms: self.clock.now_ms(),
            revoked_ms: None,
            revoked_reason: None,
        };
        let view = credential_view(self, &c, c.created_ms)?;
        let audit = AuditEvent::new(OPERATOR, "credential.create", id, serde_json::json!({ "practitioner": practitioner_id, "algorithm": c.algorithm, "source": how, "key_store": view.key_store, "subject": view.subject_dn }));
        self.store.create_credential(&c, &audit).await?;
        Ok(view)
    }

    /// The dev CA and the certificate subject for practitioner `p`.
    async fn dev_ca_subject(&self, p: &Practitioner) -> Result<(DevCa, Subject)> {
        let ca = self.dev_ca().await?;
        let role = match p.role.as_str() {
            "doctor" => HcRole::Doctor,
            "dentist" => HcRole::Dentist,
            _ => HcRole::Pharmacist,
        };
        let organization = match p.facility_ids.first() {
            Some(f) => self.store.get_facility(f).await?.map(|f| f.name),
            None => None,
        };
        Ok((ca, Subject { common_name: p.display_name.clone(), role, organization }))
    }

    /// A certificate that can never sign again is refused at the door.
    fn check_not_expired(&self, chain: &[Vec<u8>]) -> Result<()> {
        let leaf = chain.first().ok_or_else(|| Error::BadRequest("no certificate".into()))?;
        let validity = certificate_validity(leaf)?;
        if self.clock.now_ms() > validity.not_after_ms {
            let at = rfc3339(validity.not_after_ms).format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
            return Err(Error::CertificateExpired(at));
        }
        Ok(())
    }

    /// The configured PKCS#11 token, or `pkcs11_not_configured`.
    fn token(&self) -> Result<std::sync::Arc<Pkcs11Token>> {
        self.backend.token().cloned().ok_or_else(|| Error::BadRequest("key_store pkcs11: this server has no PKCS#11 token ([pkcs11] in its config)".into()))
    }

    pub async fn list_credentials(&self, practitioner_id: Option<&str>) -> Result<Vec<CredentialView>> {
        let now = self.clock.now_ms();
        self.store.list_credentials(practitioner_id).await?.iter().map(|c| credential_view(self, c, now)).collect()
    }

    /// Stops a credential from signing (signHash and signDoc answer
    /// `credential_revoked`; `credentials/info` reports `revoked`). Audited
    /// as `credential.revoke`. Grants stay: they may use other credentials.
    pub async fn revoke_credential(&self, id: &str, reason: Option<&str>) -> Result<CredentialView> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty()).unwrap_or("revoked by operator");
        check_name("reason", reason)?;
        let now = self.clock.now_ms();
        let audit = AuditEvent::new(OPERATOR, "credential.revoke", id, serde_json::json!({ "reason": reason }));
        if !self.store.revoke_credential(id, reason, now, &audit).await? {
            return Err(Error::NotFound(format!("active credential {id}")));
        }
        // No grant may sign with it any more: drop every held key.
        self.release_all();
        let c = self.store.get_credential(id).await?.ok_or_else(|| Error::NotFound(format!("credential {id}")))?;
        credential_view(self, &c, now)
    }

    pub async fn list_devices(&self, practitioner_id: Option<&str>) -> Result<Vec<DeviceView>> {
        Ok(self.store.list_devices(practitioner_id).await?.iter().map(device_view).collect())
    }

    pub async fn revoke_device(&self, id: &str) -> Result<DeviceView> {
        let now = self.clock.now_ms();
        if !self.store.revoke_device(id, now, &AuditEvent::new(OPERATOR, "device.revoke", id, serde_json::json!({}))).await? {
            return Err(Error::NotFound(format!("active device {id}")));
        }
        self.release_all();
        let d = self.store.get_device(id).await?.ok_or_else(|| Error::NotFound(format!("device {id}")))?;
        Ok(device_view(&d))
    }

    pub async fn list_grants(&self, practitioner_id: Option<&str>, active_only: bool) -> Result<Vec<GrantView>> {
        let now = self.clock.now_ms();
        let gs = self.store.list_grants(practitioner_id, active_only.then_some(now)).await?;
        Ok(gs.iter().map(|g| grant_view(g, now)).filter(|g| !active_only || g.active).collect())
    }

    pub async fn revoke_grant(&self, id: &str) -> Result<GrantView> {
        let now = self.clock.now_ms();
        if !self.store.revoke_grant(id, "revoked by operator", now, &AuditEvent::new(OPERATOR, "grant.revoke", id, serde_json::json!({ "reason": "revoked by operator" }))).await? {
            return Err(Error::NotFound(format!("active grant {id}")));
        }
        self.release_grant(id);
        let g = self.store.get_grant(id).await?.ok_or_else(|| Error::NotFound(format!("grant {id}")))?;
        Ok(grant_view(&g, now))
    }
}

impl App {
    /// A request to the operator API presented no or a wrong operator
    /// token: refused, audited (who tried from where), and counted against
    /// the address's budget — beyond it the answer is `rate_limited` and the
    /// attempt is not audited again (a flood must not grow the log).
    pub async fn operator_auth_failed(
        &self,
        peer: std::net::IpAddr,
        token_sent: bool,
        path: &str,
    ) -> Result<()> {
        self.limits.operator_failure(peer)?;
        let audit = AuditEvent::new(
            "system",
            "operator.auth_failed",
            peer.to_string(),
            serde_json::json!({ "reason": if token_sent { "wrong token" } else { "no token" }, "path": path }),
        );
        self.store.append_audit(self.clock.now_ms(), &audit).await?;
        Err(Error::OperatorUnauthenticated)
    }
}

/// The terminal `found` for a client id, if `client_secret` is its secret
/// and it is not revoked.
pub(super) fn admit_terminal(found: Option<Terminal>, client_secret: &str) -> Result<Terminal> {
    let t = match found {
        Some(t) => t,
        None => {
            // Same work as a known id, so timing does not reveal ids.
            let _ = ct_eq(&sha256(client_secret.as_bytes()), &[0u8; 32]);
            return Err(Error::TerminalUnauthenticated);
        }
    };
    let raw = shomei_core::api::b64u::decode(client_secret).unwrap_or_default();
    if !ct_eq(&sha256(&raw), &t.secret_hash) || t.revoked_ms.is_some() {
        return Err(Error::TerminalUnauthenticated);
    }
    Ok(t)
}
