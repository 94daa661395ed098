//! The key-encryption key: every practitioner private key is stored only
//! sealed under it, so a copy of the database alone reveals no key.

use std::fs;
use std::io::Write;
use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::SigningError;

/// Format byte of sealed blobs. Bump it when the layout or cipher changes so
/// old blobs stay readable (or are refused with a clear error).
const SEALED_V1_AES256GCM: u8 = 1;
const TAG_LEN: usize = 16;
const KEK_LEN: usize = 32;

/// A 256-bit AES-256-GCM key-encryption key.
///
/// Sealed layout (version 1): `0x01 | 12-byte random nonce | ciphertext | 16-byte tag`.
/// Random 96-bit nonces are safe here: a KEK seals a few keys per
/// practitioner, far below GCM's 2^32 random-nonce limit.
pub struct Kek {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    /// A fresh random KEK.
    pub fn generate() -> Result<Self, SigningError> {
        let bytes = Self::random_bytes()?;
        Self::from_bytes(&bytes[..])
    }

    /// Build from exactly 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SigningError> {
        if bytes.len() != KEK_LEN {
            return Err(SigningError::BadKek(format!(
                "must be {KEK_LEN} bytes, got {}",
                bytes.len()
            )));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SigningError::BadKek("rejected by AES-256-GCM".into()))?;
        Ok(Kek {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Parse the environment form: standard base64 (padding optional) of 32
    /// bytes; surrounding whitespace is ignored.
    pub fn from_base64(value: &str) -> Result<Self, SigningError> {
        let trimmed = value.trim();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| SigningError::BadKek("not valid base64".into()))?,
        );
        Self::from_bytes(&decoded)
    }

    /// Load the KEK file at `path` (base64 text, as [`Kek::from_base64`]), or
    /// create it with a new random key and mode 0600 if it does not exist.
    ///
    /// Creation writes a temporary file and hard-links it into place, so two
    /// processes starting at once end up with the same key and nobody ever
    /// reads a half-written file. An existing file readable by group or
    /// others is refused ([`SigningError::InsecureKekFile`]).
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<Self, SigningError> {
        let path = path.as_ref();
        match fs::metadata(path) {
            Ok(_) => return Self::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let bytes = Self::random_bytes()?;
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(&bytes[..])));
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}-{}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("kek"),
            std::process::id(),
            hex::encode(&Self::random_bytes()?[..6])
        ));
        let write = || -> std::io::Result<()> {
            let mut f = create_private_file(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(e.into());
        }
        let linked = fs::hard_link(&tmp, path);
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Ok(d) = fs::File::open(dir) {
                    let _ = d.sync_all();
                }
                Self::from_bytes(&*bytes)
            }
            // Somebody else created it first: theirs wins.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(e.into()),
        }
    }

    fn load(path: &Path) -> Result<Self, SigningError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SigningError::InsecureKekFile {
                    path: path.display().to_string(),
                    mode,
                });
            }
        }
        let text = Zeroizing::new(fs::read_to_string(path)?);
        Self::from_base64(&text)
    }

    /// A new random KEK in its base64 (environment) form, for an operator who
    /// keeps the KEK in an environment variable or secret store. Secret.
    pub fn random_base64() -> Result<Zeroizing<String>, SigningError> {
        Ok(Zeroizing::new(STANDARD.encode(&Self::random_bytes()?[..])))
    }

    fn random_bytes() -> Result<Zeroizing<[u8; KEK_LEN]>, SigningError> {
        let mut bytes = Zeroizing::new([0u8; KEK_LEN]);
        SystemRandom::new()
            .fill(&mut *bytes)
            .map_err(|_| SigningError::Crypto("random"))?;
        Ok(bytes)
    }

    /// Encrypt and authenticate `plaintext`, binding it to `aad` (for keys:
    /// the credential id, so a sealed key cannot be swapped onto another
    /// credential's row).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // SystemRandom reads the OS RNG; its failure means the machine cannot
        // do any cryptography at all, so treat it like an allocation failure.
        self.rng
            .fill(&mut nonce)
            .expect("operating system random number generator failed");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + TAG_LEN);
        out.push(SEALED_V1_AES256GCM);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[1 + NONCE_LEN..],
            )
            .expect("AES-GCM sealing of an in-memory buffer cannot fail");
        out.extend_from_slice(tag.as_ref());
        out
    }

    /// Decrypt what [`Kek::seal`] produced with the same `aad`. The result is
    /// wiped from memory when dropped.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SigningError> {
        let (&version, rest) = sealed
            .split_first()
            .ok_or_else(|| SigningError::SealedFormat("empty".into()))?;
        if version != SEALED_V1_AES256GCM {
            return Err(SigningError::SealedFormat(format!(
                "unknown version byte {version}"
            )));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(SigningError::SealedFormat("too short".into()));
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SigningError::SealedFormat("bad nonce".into()))?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buf[..])
            .map_err(|_| SigningError::KeyDecrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}
