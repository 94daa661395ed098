//! Enrolling a phone: one-time codes (QR + activation password handed
//! over separately, like the HPKI service), proof of possession of the
//! new device key, and the single-use, lock-after-5 rules. Each password
//! attempt is reserved in the store before the (slow, blocking-pool)
//! PBKDF2 check, so parallel guesses never exceed the maximum.

use std::num::NonZeroU32;

use serde::Serialize;
use shomei_core::api::{DEVICE_NAME_MAX_CHARS, EnrollRequest, EnrollResponse, PractitionerInfo, Role};
use shomei_core::approval::enrollment_bytes_from_secret_sha256;
use shomei_core::attestation::attestation_challenge;
use shomei_core::{DevicePublicKey, EnrollmentId, EnrollmentPayload, QrSecret};

use super::{App, Error, Result, b64u, ct_eq, new_uuid, random_bytes, rfc3339, sha256};
use crate::attestation::Presented;
use crate::store::{AuditEvent, Device, Enrollment, EnrollmentStatus};

const PBKDF2_ITERATIONS: u32 = 100_000;
/// Unambiguous characters (no 0/O, 1/I/L) for passwords read aloud or typed.
const PASSWORD_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// A freshly issued enrollment code; the password is shown only here.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnrollmentCode {
    pub enrollment_id: String,
    pub practitioner_id: String,
    pub payload_url: String,
    pub activation_password: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: time::OffsetDateTime,
}

fn password_hash(password: &str, salt: &[u8]) -> Vec<u8> {
    let mut out = [0u8; 32];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::new(PBKDF2_ITERATIONS).expect("nonzero"),
        salt,
        normalize_password(password).as_bytes(),
        &mut out,
    );
    out.to_vec()
}

/// People type passwords with or without the dashes and in any case.
fn normalize_password(p: &str) -> String {
    p.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_uppercase).collect()
}

fn new_password() -> String {
    let raw = random_bytes::<12>();
    let chars: Vec<char> = raw.iter().map(|b| PASSWORD_ALPHABET[*b as usize % PASSWORD_ALPHABET.len()] as char).collect();
    chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

pub(crate) fn parse_role(s: &str) -> Result<Role> {
    match s {
        "doctor" => Ok(Role::Doctor),
        "dentist" => Ok(Role::Dentist),
        "pharmacist" => Ok(Role::Pharmacist),
        o => Err(Error::BadRequest(format!("unknown role {o:?} (doctor, dentist, pharmacist)"))),
    }
}

impl App {
    /// Issues a one-time enrollment code for a practitioner (operator).
    pub async fn create_enrollment(&self, practitioner_id: &str, ttl_s: Option<i64>) -> Result<EnrollmentCode> {
        let ttl = ttl_s.unwrap_or(self.policy.enrollment_max_ttl_s);
        if ttl <= 0 || ttl > self.policy.enrollment_max_ttl_s {
            return Err(Error::BadRequest(format!("ttl must be 1..={} seconds", self.policy.enrollment_max_ttl_s)));
        }
        self.store
            .get_practitioner(practitioner_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("practitioner {practitioner_id}")))?;
        let now = self.clock.now_ms();
        let id = EnrollmentId::random();
        let secret = QrSecret::random();
        let password = new_password();
        let salt = random_bytes::<16>().to_vec();
        let expires_ms = now.saturating_add(ttl.saturating_mul(1000));
        let row = Enrollment {
            id: id.to_b64u(),
            practitioner_id: practitioner_id.to_owned(),
            secret_hash: secret.sha256().to_vec(),
            password_hash: password_hash(&password, &salt),
            password_salt: salt,
            failed_attempts: 0,
            status: EnrollmentStatus::Pending,
            created_ms: now,
            expires_ms,
            device_id: None,
        };
        let audit = AuditEvent::new("operator", "enrollment.create", row.id.clone(), serde_json::json!({ "practitioner": practitioner_id, "expires_ms": expires_ms }));
        self.store.create_enrollment(&row, &audit).await?;
        let payload = EnrollmentPayload { origin: self.origin.clone(), enrollment_id: id, secret, expires_at: (expires_ms / 1000) as u64 };
        Ok(EnrollmentCode {
            enrollment_id: row.id,
            practitioner_id: practitioner_id.to_owned(),
            payload_url: payload.to_url(),
            activation_password: password,
            expires_at: rfc3339(expires_ms),
        })
    }

    /// `POST /v1/phone/enroll`.
    pub async fn enroll(&self, req: &EnrollRequest) -> Result<EnrollResponse> {
        let now = self.clock.now_ms();
        let id = req.enrollment_id.to_b64u();
        let e = self.store.get_enrollment(&id).await?.ok_or_else(|| Error::EnrollmentInvalid("unknown enrollment code".into()))?;
        if !ct_eq(&req.secret.sha256(), &e.secret_hash) {
            return Err(Error::EnrollmentInvalid("secret does not match".into()));
        }
        match e.status {
            EnrollmentStatus::Used => return Err(Error::EnrollmentUsed),
            EnrollmentStatus::Locked => return Err(Error::EnrollmentLocked),
            EnrollmentStatus::Pending => {}
        }
        if now >= e.expires_ms {
            return Err(Error::EnrollmentExpired);
        }
        // Reserve the attempt before checking the password (a conditional
        // update), so concurrent guesses cannot check more than the maximum.
        let max = self.policy.enrollment_max_attempts;
        if self
            .store
            .reserve_enrollment_attempt(&id, max, now)
            .await?
            .is_none()
        {
            let again = self.store.get_enrollment(&id).await?;
            return Err(match again {
                Some(a) if a.status == EnrollmentStatus::Used => Error::EnrollmentUsed,
                Some(a) if a.status == EnrollmentStatus::Pending && now >= a.expires_ms => {
                    Error::EnrollmentExpired
                }
                // Locked, or every attempt is reserved by requests still in flight.
                Some(_) => Error::EnrollmentLocked,
                None => Error::EnrollmentInvalid("unknown enrollment code".into()),
            });
        }
        // PBKDF2 is deliberately slow: keep it off the async workers.
        let password = zeroize::Zeroizing::new(req.activation_password.clone());
        let salt = e.password_salt.clone();
        let candidate = tokio::task::spawn_blocking(move || password_hash(&password, &salt))
            .await
            .map_err(|e| Error::Internal(format!("password check task: {e}")))?;
        if !ct_eq(&candidate, &e.password_hash) {
            let audit = AuditEvent::new(
                "phone",
                "enrollment.password_wrong",
                id.clone(),
                serde_json::json!({}),
            );
            let after = self
                .store
                .record_enrollment_failure(&id, max, &audit)
                .await?;
            return Err(match after {
                Some(a) if a.status == EnrollmentStatus::Locked => Error::EnrollmentLocked,
                Some(a) if a.status == EnrollmentStatus::Used => Error::EnrollmentUsed,
                Some(a) => Error::ActivationPasswordWrong {
                    remaining: max.saturating_sub(a.failed_attempts).max(0),
                },
                None => Error::EnrollmentInvalid("unknown enrollment code".into()),
            });
        }
        let name_len = req.device_name.chars().count();
        if name_len == 0 || name_len > DEVICE_NAME_MAX_CHARS || req.device_name.chars().any(char::is_control) {
            return Err(Error::BadRequest(format!("device_name must be 1..={DEVICE_NAME_MAX_CHARS} printable characters")));
        }
        let public_key = DevicePublicKey::from_sec1(&req.public_key).map_err(|e| Error::EnrollmentInvalid(format!("public_key: {e}")))?;
        let secret_hash: [u8; 32] = e.secret_hash.clone().try_into().map_err(|_| Error::Internal("secret hash length".into()))?;
        let message = enrollment_bytes_from_secret_sha256(&self.origin, &req.enrollment_id, &secret_hash, &public_key, &req.device_name);
        public_key.verify(&message, &req.proof).map_err(|e| Error::ProofInvalid(e.to_string()))?;

        // Platform attestation (docs/protocol.md §3.3, docs/attestation.md): verified
        // before anything is stored, so a refusal leaves the code usable.
        let challenge = attestation_challenge(&self.origin, &req.enrollment_id, &secret_hash);
        let presented = Presented { platform: req.platform, attestation: req.attestation.as_ref(), challenge: &challenge, public_key: &public_key };
        let facts = match crate::attestation::evaluate(&self.policy.attestation, presented, now / 1000) {
            Ok(f) => f,
            Err(e) => {
                tracing::info!(enrollment = %id, platform = ?req.platform, reason = %e, "enrollment refused: attestation");
                return Err(e.into());
            }
        };

        let practitioner = self
            .store
            .get_practitioner(&e.practitioner_id)
            .await?
            .ok_or_else(|| Error::Internal("enrollment names a missing practitioner".into()))?;
        let token = random_bytes::<32>();
        let device = Device {
            id: new_uuid(),
            practitioner_id: e.practitioner_id.clone(),
            name: req.device_name.clone(),
            platform: serde_json::to_value(req.platform).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            public_key: public_key.as_bytes().to_vec(),
            token_hash: sha256(&token),
            attestation: req.attestation.as_ref().map(|a| serde_json::to_string(a).expect("attestation serializes")),
            attestation_facts: Some(facts.clone()),
            created_ms: now,
            revoked_ms: None,
        };
        let audit = AuditEvent::new(
            format!("device:{}", device.id),
            "device.enroll",
            device.id.clone(),
            serde_json::json!({ "enrollment": id, "practitioner": e.practitioner_id, "platform": device.platform, "name": device.name, "attestation": facts }),
        );
        if !self.store.complete_enrollment(&id, &device, self.policy.one_device_per_practitioner, now, &audit).await? {
            // Lost a race with another use of the same code, or it expired meanwhile.
            let again = self.store.get_enrollment(&id).await?;
            return Err(match again {
                Some(a) if a.status == EnrollmentStatus::Locked => Error::EnrollmentLocked,
                Some(a) if a.status == EnrollmentStatus::Pending => Error::EnrollmentExpired,
                _ => Error::EnrollmentUsed,
            });
        }
        if self.policy.one_device_per_practitioner {
            // The practitioner's other phones and their grants were retired.
            self.release_all();
        }
        let device_id = uuid::Uuid::parse_str(&device.id).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(EnrollResponse {
            device_id,
            device_token: b64u(&token),
            practitioner: PractitionerInfo {
                id: uuid::Uuid::parse_str(&practitioner.id).map_err(|e| Error::Internal(e.to_string()))?,
                display_name: practitioner.display_name,
                role: parse_role(&practitioner.role)?,
            },
            server_origin: self.origin.clone(),
        })
    }

    /// The active device a phone's bearer token names.
    pub async fn device_by_token(&self, token: &str) -> Result<Device> {
        let raw = shomei_core::api::b64u::decode(token).map_err(|_| Error::DeviceUnknown)?;
        let d = self.store.get_device_by_token_hash(&sha256(&raw)).await?.ok_or(Error::DeviceUnknown)?;
        if d.revoked_ms.is_some() {
            return Err(Error::DeviceRevoked);
        }
        Ok(d)
    }
}
