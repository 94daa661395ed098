//! The operator's attestation policy (`[policy.attestation]` in shomei.toml):
//! per platform `require` / `allow` / `off`, the app allow-lists, the device
//! state checks, and the trust anchors (built in, replaceable by file).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::chain::{StatusList, TrustAnchors};

/// What the server does with a platform's attestation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Refuse enrollment without a valid attestation (and refuse platforms that cannot attest).
    Require,
    /// Enroll without attestation (the device is marked unattested); a sent attestation must verify.
    #[default]
    Allow,
    /// Do not examine attestation; every device is marked unattested.
    Off,
}

impl Mode {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Require => "require",
            Mode::Allow => "allow",
            Mode::Off => "off",
        }
    }
}

/// An Android app allowed to enroll keys: its package name and the SHA-256
/// digests (hex) of its signing certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedAndroidApp {
    pub package: String,
    pub signing_cert_sha256: Vec<String>,
}

/// Android Key Attestation settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AndroidPolicy {
    /// Overrides `policy.attestation.mode` for Android.
    pub mode: Option<Mode>,
    /// Apps allowed to enroll; empty = any app (not for production; `require` needs a list).
    pub apps: Vec<AllowedAndroidApp>,
    /// The key must be in StrongBox (not only the TEE).
    pub require_strongbox: bool,
    /// The key must require biometric authentication for every use.
    pub require_user_auth: bool,
    /// The bootloader must be locked.
    pub require_locked_bootloader: bool,
    /// Verified boot must have verified the OS (state Verified).
    pub require_verified_boot: bool,
    /// PEM file of trusted roots replacing Google's built-in roots.
    pub roots_file: Option<PathBuf>,
    /// Google's attestation status list (JSON), re-read at every enrollment;
    /// without it revocation is not checked.
    pub status_file: Option<PathBuf>,
}

impl Default for AndroidPolicy {
    fn default() -> Self {
        AndroidPolicy {
            mode: None,
            apps: Vec::new(),
            require_strongbox: false,
            require_user_auth: true,
            require_locked_bootloader: true,
            require_verified_boot: true,
            roots_file: None,
            status_file: None,
        }
    }
}

/// Apple App Attest settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IosPolicy {
    /// Overrides `policy.attestation.mode` for iOS.
    pub mode: Option<Mode>,
    /// Allowed app ids, "TEAMID.bundle.id" (rpIdHash = SHA-256 of one of them).
    pub app_ids: Vec<String>,
    /// Accept the development App Attest environment (AAGUID "appattestdevelop").
    pub allow_development: bool,
    /// PEM file replacing the built-in Apple App Attestation root.
    pub root_file: Option<PathBuf>,
}

/// The desktop phone (software key, never attested).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DesktopPolicy {
    /// Overrides `policy.attestation.mode` for the desktop platform.
    pub mode: Option<Mode>,
}

/// Trust anchors of both formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub android: TrustAnchors,
    pub apple: TrustAnchors,
}

const GOOGLE_ROOTS: &str = include_str!("roots/google_hardware_attestation.pem");
const APPLE_ROOT: &str = include_str!("roots/apple_app_attestation_root_ca.pem");

impl Default for Trust {
    /// The built-in roots.
    fn default() -> Self {
        Trust {
            android: TrustAnchors::from_pem("Google hardware attestation", GOOGLE_ROOTS)
                .expect("built-in Google roots parse"),
            apple: TrustAnchors::from_pem("Apple App Attestation", APPLE_ROOT)
                .expect("built-in Apple root parses"),
        }
    }
}

/// `[policy.attestation]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Mode of every platform unless overridden (default `allow`).
    pub mode: Mode,
    pub android: AndroidPolicy,
    pub ios: IosPolicy,
    pub desktop: DesktopPolicy,
    /// The roots in effect (built in, or loaded by [`AttestationPolicy::load_trust`]).
    #[serde(skip)]
    pub trust: Trust,
}

impl AttestationPolicy {
    /// The mode for a platform.
    pub fn mode_for(&self, platform: shomei_core::api::Platform) -> Mode {
        use shomei_core::api::Platform;
        match platform {
            Platform::Android => self.android.mode,
            Platform::Ios => self.ios.mode,
            Platform::Desktop => self.desktop.mode,
        }
        .unwrap_or(self.mode)
    }

    /// Checks the settings and loads the configured root files (server start-up).
    pub fn load(&mut self) -> Result<(), String> {
        self.validate()?;
        self.load_trust()
    }

    /// Checks the settings: `require` needs app allow-lists, digests are SHA-256 hex.
    pub fn validate(&self) -> Result<(), String> {
        use shomei_core::api::Platform;
        if self.mode_for(Platform::Android) == Mode::Require && self.android.apps.is_empty() {
            return Err(
                "attestation: android mode \"require\" needs [[policy.attestation.android.apps]]"
                    .into(),
            );
        }
        if self.mode_for(Platform::Ios) == Mode::Require && self.ios.app_ids.is_empty() {
            return Err(
                "attestation: ios mode \"require\" needs policy.attestation.ios.app_ids".into(),
            );
        }
        for app in &self.android.apps {
            if app.package.is_empty() || app.signing_cert_sha256.is_empty() {
                return Err(format!(
                    "attestation: android app {:?} needs a package and at least one signing_cert_sha256",
                    app.package
                ));
            }
            for d in &app.signing_cert_sha256 {
                if d.len() != 64 || !d.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(format!(
                        "attestation: signing_cert_sha256 {d:?} is not 64 hex digits"
                    ));
                }
            }
        }
        for id in &self.ios.app_ids {
            if !id.contains('.') {
                return Err(format!(
                    "attestation: ios app id {id:?} is not TEAMID.bundle.id"
                ));
            }
        }
        Ok(())
    }

    /// Loads the configured root files and checks the status list file parses.
    pub fn load_trust(&mut self) -> Result<(), String> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| format!("attestation: {}: {e}", p.display()))
        };
        if let Some(p) = &self.android.roots_file {
            self.trust.android =
                TrustAnchors::from_pem("configured Android attestation", &read(p)?)?;
        }
        if let Some(p) = &self.ios.root_file {
            self.trust.apple = TrustAnchors::from_pem("configured App Attest", &read(p)?)?;
        }
        if let Some(p) = &self.android.status_file {
            // Fail at start-up on a broken file; it is re-read at each enrollment.
            StatusList::load(p).map_err(|e| format!("attestation status list: {e}"))?;
        }
        Ok(())
    }

    /// One line for logs and the demo page, e.g. "android=require ios=require desktop=allow".
    pub fn summary(&self) -> String {
        use shomei_core::api::Platform;
        format!(
            "android={} ios={} desktop={}",
            self.mode_for(Platform::Android).as_str(),
            self.mode_for(Platform::Ios).as_str(),
            self.mode_for(Platform::Desktop).as_str()
        )
    }
}
