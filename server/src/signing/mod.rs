//! Practitioner signing keys: how they are created, imported, kept encrypted
//! at rest, and used to sign precomputed SHA-256 digests for the CSC
//! `signatures/signHash` endpoint.
//!
//! Why this module exists: the EHR sends only the hash of the prescription
//! (CSC signHash, XAdES over the prescription element), so the server must
//! sign a digest it did not compute. *ring* cannot do that; aws-lc-rs can
//! (`sign_digest`, byte-identical PKCS#1 v1.5 output), so every private-key
//! operation here goes through aws-lc-rs.
//!
//! Pieces:
//! - [`Kek`]: the key-encryption key (AES-256-GCM) that seals every private
//!   key at rest; loaded from a 0600 file or an environment value.
//! - [`DevCa`]: a built-in development CA that issues HPKI-shaped
//!   practitioner certificates (with the `hcRole` attribute) so that a fresh
//!   install can sign without a real HPKI card.
//! - [`import_pem`] / [`import_pkcs12`]: bring an existing key and chain in.
//! - [`SigningBackend`] / [`SoftwareBackend`]: where signatures are made; the
//!   software backend holds opened keys per grant, bounded.
//! - [`Pkcs11Token`] / [`Pkcs11Backend`]: keys generated and kept inside a
//!   PKCS#11 token (an HSM); the credential stores only a `pkcs11:` reference.
//! - [`certificate_info`]: the fields CSC `credentials/info` reports.

mod algorithm;
mod backend;
mod certificate;
mod credential;
mod der;
mod dev_ca;
mod error;
mod hc_role;
mod kek;
mod pkcs11;

pub use algorithm::{KeyAlgorithm, SignatureAlgorithm, oid};
pub use backend::{KeyHold, SealedKey, SigningBackend, SoftwareBackend};
pub use certificate::{CertificateInfo, CertificateStatus, Validity, certificate_info, certificate_validity};
pub use credential::{NewCredential, certificates_from_pem, check_chain, import_pem, import_pkcs12};
pub use dev_ca::{DEV_CA_COMMON_NAME, DevCa, Subject};
pub use error::SigningError;
pub use hc_role::{HcRole, hc_role_extension_value, hc_role_from_certificate};
pub use kek::Kek;
pub use pkcs11::{Pkcs11Backend, Pkcs11Config, Pkcs11Token, TokenKey, TokenKeyRef, TokenStatus};

/// Length of a SHA-256 digest, the only hash CSC signHash accepts here.
pub const SHA256_LEN: usize = 32;
