//! Demo mode (`shomei serve --demo`): on an empty store, seed a facility,
//! a terminal, a practitioner with a dev-CA RSA credential and an
//! enrollment code, so a first run can be tried end to end at once.

use crate::service::admin::CredentialSource;
use crate::service::enrollment::EnrollmentCode;
use crate::service::{App, Result};
use crate::signing::KeyAlgorithm;

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
    let f = app.create_facility("しょうめい内科クリニック (Shomei Demo Clinic)").await?;
    let t = app.create_terminal(&f.id, "診察室1 EHR (demo terminal)").await?;
    let p = app.create_practitioner("山田 花子 (Hanako Yamada)", "doctor", std::slice::from_ref(&f.id)).await?;
    let c = app.create_credential(&p.id, CredentialSource::Generate(KeyAlgorithm::Rsa2048)).await?;
    let e = app.create_enrollment(&p.id, None).await?;
    Ok(Some(DemoSeed { facility_id: f.id, client_id: t.client_id, client_secret: t.client_secret, practitioner_id: p.id, credential_id: c.id, enrollment: e }))
}

/// The client id the demo page fills in: the seeded terminal, else the
/// first active one. Never its secret: the page is public.
pub async fn demo_terminal(app: &App, seed: Option<&DemoSeed>) -> Result<Option<String>> {
    if let Some(s) = seed {
        return Ok(Some(s.client_id.clone()));
    }
    Ok(app
        .list_terminals()
        .await?
        .into_iter()
        .find(|t| t.revoked_at.is_none())
        .map(|t| t.client_id))
}

/// What the demo says about phone attestation: whether its policy lets the
/// desktop phone (a software key that cannot attest) enroll.
pub fn attestation_note(p: &crate::attestation::AttestationPolicy) -> String {
    use crate::attestation::Mode;
    let desktop = match p.mode_for(shomei_core::api::Platform::Desktop) {
        Mode::Require => "refuses the desktop phone (shomei-phone): it cannot attest its software key",
        Mode::Allow | Mode::Off => "allows the desktop phone (shomei-phone), enrolled as unattested",
    };
    format!("Attestation policy ({}): {desktop}.", p.summary())
}
