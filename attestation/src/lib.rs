//! Proving phones: verification of the platform attestation a phone sends
//! at enrollment, so the server knows whether the device key is
//! hardware-backed, non-exportable and biometric-gated (and on which
//! device, in which app) rather than a script's software key.
//!
//! Shaped like webauthn-rs's `attestation.rs`: one verify function per
//! format ([`android_key::verify_android_key`],
//! [`app_attest::verify_app_attest`]) whose numbered comments follow the
//! platform's specification, chain trust as its own function with an
//! explicit skip of time checks for captured vectors ([`chain`]), and one
//! error variant per failed check ([`error::AttestationError`]) mapped once
//! to the public `attestation_invalid` code. [`evaluate`] applies the
//! operator's [`policy::AttestationPolicy`] and returns the facts the device
//! record keeps ([`DeviceAttestation`]).
//!
//! A crate of its own, apart from shomei-server, because these parsers read
//! untrusted bytes from any phone that enrolls: the cargo-fuzz targets in
//! `fuzz/` link this crate and shomei-core only (a small sanitizer build),
//! not the HTTP server and its storage. The server re-exports it as
//! `shomei_server::attestation`. The `openapi` feature derives the schemas
//! of the device facts the server's API documents.

pub mod android_key;
pub mod app_attest;
pub mod chain;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod policy;

use serde::{Deserialize, Serialize};
use shomei_core::DevicePublicKey;
use shomei_core::api::Platform;
use shomei_core::attestation::{Attestation, client_data_hash};

pub use error::AttestationError;
pub use policy::{AttestationPolicy, Mode};

use android_key::AndroidKeyFacts;
use app_attest::{AllowedApps, AppAttestFacts};
use chain::{StatusList, ValidityCheck};

pub(crate) fn sha256_32(data: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether the device's key was proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttestationStatus {
    /// A platform attestation verified under the policy.
    Verified,
    /// Enrolled without a verified attestation (allowed by the policy).
    Unattested,
}

/// The verified facts kept with a device (the device record's
/// `attestation_facts`, `shomei admin device list`, evidence of decisions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceAttestation {
    pub status: AttestationStatus,
    /// The policy mode that applied to the device's platform at enrollment.
    pub policy: Mode,
    /// "android-key" / "apple-appattest" when one was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Why the device is unattested, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Android Key Attestation facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android: Option<AndroidKeyFacts>,
    /// App Attest facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apple: Option<AppAttestFacts>,
}

impl DeviceAttestation {
    /// One-line summary for the operator's device table.
    pub fn summary(&self) -> String {
        match (&self.android, &self.apple) {
            (Some(a), _) => {
                let boot = a.root_of_trust.as_ref().map(|r| {
                    format!(
                        "{}{}",
                        r.verified_boot_state.name(),
                        if r.device_locked {
                            "/locked"
                        } else {
                            "/unlocked"
                        }
                    )
                });
                let app = a
                    .app
                    .as_ref()
                    .and_then(|x| x.packages.first())
                    .map(|p| p.name.clone());
                format!(
                    "verified {} patch={} boot={} app={}",
                    a.security_level.name(),
                    a.os_patch_level
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                    boot.unwrap_or_else(|| "-".into()),
                    app.unwrap_or_else(|| "-".into())
                )
            }
            (None, Some(i)) => {
                let env = match i.environment {
                    app_attest::Environment::Production => "production",
                    app_attest::Environment::Development => "development",
                };
                format!("verified AppAttest app={} env={env}", i.app_id)
            }
            (None, None) => format!("unattested (policy {})", self.policy.as_str()),
        }
    }
}

/// What a phone presented at enrollment.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub platform: Platform,
    pub attestation: Option<&'a Attestation>,
    /// The enrollment's attestation challenge (docs/protocol.md §3.3).
    pub challenge: &'a [u8; 32],
    /// The device key being enrolled.
    pub public_key: &'a DevicePublicKey,
}

fn platform_name(p: Platform) -> &'static str {
    match p {
        Platform::Android => "android",
        Platform::Ios => "ios",
        Platform::Desktop => "desktop",
    }
}

/// Applies `policy` to what the phone presented, verifying the attestation
/// at `now` (Unix seconds). `Ok` carries the facts to keep; `Err` is the
/// refusal with its precise reason.
pub fn evaluate(
    policy: &AttestationPolicy,
    p: Presented<'_>,
    now: i64,
) -> Result<DeviceAttestation, AttestationError> {
    let mode = policy.mode_for(p.platform);
    let unattested = |note: &str| DeviceAttestation {
        status: AttestationStatus::Unattested,
        policy: mode,
        format: p.attestation.map(|a| a.format().to_owned()),
        note: Some(note.to_owned()),
        android: None,
        apple: None,
    };
    if mode == Mode::Off {
        return Ok(unattested("attestation not examined (policy off)"));
    }
    let Some(att) = p.attestation else {
        return match (mode, p.platform) {
            (Mode::Require, Platform::Desktop) => Err(AttestationError::PlatformCannotAttest {
                platform: "desktop".into(),
            }),
            (Mode::Require, _) => Err(AttestationError::Missing),
            _ => Ok(unattested(if p.platform == Platform::Desktop {
                "desktop phone (software key); the policy allows unattested devices"
            } else {
                "no attestation sent; the policy allows unattested devices"
            })),
        };
    };
    let mismatch = || AttestationError::FormatMismatch {
        format: att.format().to_owned(),
        platform: platform_name(p.platform).to_owned(),
    };
    match att {
        Attestation::AndroidKey { certificates } => {
            if p.platform != Platform::Android {
                return Err(mismatch());
            }
            let status = match &policy.android.status_file {
                Some(path) => {
                    Some(StatusList::load(path).map_err(AttestationError::StatusListUnavailable)?)
                }
                None => None,
            };
            let facts = android_key::verify_android_key(
                certificates,
                p.challenge,
                &policy.trust.android,
                ValidityCheck::At(now),
                status.as_ref(),
            )?;
            android_key::check_android_policy(&facts, Some(p.public_key), &policy.android)?;
            Ok(DeviceAttestation {
                status: AttestationStatus::Verified,
                policy: mode,
                format: Some(att.format().into()),
                note: None,
                android: Some(facts),
                apple: None,
            })
        }
        Attestation::AppleAppAttest {
            key_id,
            attestation_object,
        } => {
            if p.platform != Platform::Ios {
                return Err(mismatch());
            }
            let cdh = client_data_hash(p.challenge, p.public_key);
            let apps = AllowedApps::from_app_ids(&policy.ios.app_ids);
            let facts = app_attest::verify_app_attest(
                attestation_object,
                key_id,
                &cdh,
                &apps,
                policy.ios.allow_development,
                &policy.trust.apple,
                ValidityCheck::At(now),
            )?;
            Ok(DeviceAttestation {
                status: AttestationStatus::Verified,
                policy: mode,
                format: Some(att.format().into()),
                note: None,
                android: None,
                apple: Some(facts),
            })
        }
        Attestation::Unknown => Err(AttestationError::UnsupportedFormat),
    }
}
