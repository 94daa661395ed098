//! A practitioner's key and certificate chain before it is sealed and
//! stored: either issued by the development CA or imported from PEM or
//! PKCS#12. Every path ends in the same checks: the key is RSA-2048 or
//! P-256, it is normalised to PKCS#8, and the leaf certificate carries its
//! public key.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use zeroize::Zeroizing;

use super::certificate::{parse, public_key_of};
use super::{KeyAlgorithm, SigningError};

/// A key and its certificate chain, ready to be sealed under the KEK.
pub struct NewCredential {
    /// The key's algorithm.
    pub algorithm: KeyAlgorithm,
    /// The private key as unencrypted PKCS#8 DER; wiped on drop. Seal it
    /// with `Kek::seal(&pkcs8, credential_id.as_bytes())` (see `SealedKey`).
    pub pkcs8: Zeroizing<Vec<u8>>,
    /// DER certificates, leaf first, then its issuers.
    pub certificate_chain: Vec<Vec<u8>>,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("algorithm", &self.algorithm)
            .field("pkcs8", &"<redacted>")
            .field(
                "certificate_chain",
                &format_args!("{} certificate(s)", self.certificate_chain.len()),
            )
            .finish()
    }
}

impl NewCredential {
    /// Check and assemble a credential: the key must parse, the chain must
    /// be non-empty, each certificate must be issued (name and signature) by
    /// the next, and the leaf must carry the key's public key. Whether the
    /// last certificate is trusted is not decided here.
    pub fn new(
        private_key_der: &[u8],
        certificate_chain: Vec<Vec<u8>>,
    ) -> Result<Self, SigningError> {
        let key = ParsedKey::from_der(private_key_der)?;
        let leaf = certificate_chain
            .first()
            .ok_or_else(|| SigningError::BadCertificate("no certificate given".into()))?;
        // The key first: a leaf for another key is named as such even when
        // the chain is also wrong.
        let (cert_alg, cert_public) = public_key_of(leaf)?;
        if cert_alg != key.algorithm || cert_public != key.public_key {
            return Err(SigningError::CertificateKeyMismatch);
        }
        check_chain(&certificate_chain)?;
        Ok(NewCredential {
            algorithm: key.algorithm,
            pkcs8: key.pkcs8,
            certificate_chain,
        })
    }
}

/// Check a certificate chain (leaf first): non-empty, each certificate
/// issued (name and signature) by the next, all parseable. Returns the
/// leaf's key algorithm and public key (`RSAPublicKey` DER or EC point),
/// for matching against the private key — in memory or on a token.
pub fn check_chain(certificate_chain: &[Vec<u8>]) -> Result<(KeyAlgorithm, Vec<u8>), SigningError> {
    let leaf = certificate_chain
        .first()
        .ok_or_else(|| SigningError::BadCertificate("no certificate given".into()))?;
    let leaf_key = public_key_of(leaf)?;
    for (i, pair) in certificate_chain.windows(2).enumerate() {
        verify_issued_by(&pair[0], &pair[1]).map_err(|why| {
            SigningError::BadCertificate(format!(
                "chain broken: certificate {} did not issue certificate {i}: {why}",
                i + 1
            ))
        })?;
    }
    if let Some(last) = certificate_chain.last() {
        parse(last)?;
    }
    Ok(leaf_key)
}

/// The `CERTIFICATE` blocks of a PEM text, in order (other blocks ignored).
pub fn certificates_from_pem(text: &str) -> Result<Vec<Vec<u8>>, SigningError> {
    let chain: Vec<Vec<u8>> = pem_blocks(text)
        .map_err(SigningError::BadCertificate)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.contents)
        .collect();
    if chain.is_empty() {
        return Err(SigningError::BadCertificate("no CERTIFICATE block in the PEM".into()));
    }
    Ok(chain)
}

/// A private key in canonical form.
pub(crate) struct ParsedKey {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) pkcs8: Zeroizing<Vec<u8>>,
    /// RSAPublicKey DER or uncompressed P-256 point, as in a certificate's SPKI.
    pub(crate) public_key: Vec<u8>,
}

impl ParsedKey {
    /// Accepts PKCS#8 (RSA or EC), PKCS#1 RSAPrivateKey, or SEC1 ECPrivateKey DER.
    pub(crate) fn from_der(der: &[u8]) -> Result<Self, SigningError> {
        if let Ok(rsa) = RsaKeyPair::from_pkcs8(der).or_else(|_| RsaKeyPair::from_der(der)) {
            return Self::from_rsa(&rsa);
        }
        if let Ok(ec) = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der) {
            return Self::from_ec(&ec);
        }
        Err(SigningError::BadKey(
            "not an RSA-2048 or ECDSA P-256 key in PKCS#8, PKCS#1 or SEC1 DER".into(),
        ))
    }

    pub(crate) fn from_rsa(rsa: &RsaKeyPair) -> Result<Self, SigningError> {
        let bits = rsa.public_modulus_len() * 8;
        if bits != 2048 {
            return Err(SigningError::UnsupportedAlgorithm(format!(
                "RSA-{bits} (only RSA-2048 is supported)"
            )));
        }
        let pkcs8 = rsa
            .as_der()
            .map_err(|_| SigningError::Crypto("RSA PKCS#8 encoding"))?;
        Ok(ParsedKey {
            algorithm: KeyAlgorithm::Rsa2048,
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            public_key: rsa.public_key().as_ref().to_vec(),
        })
    }

    pub(crate) fn from_ec(ec: &EcdsaKeyPair) -> Result<Self, SigningError> {
        let pkcs8 = ec
            .to_pkcs8v1()
            .map_err(|_| SigningError::Crypto("EC PKCS#8 encoding"))?;
        Ok(ParsedKey {
            algorithm: KeyAlgorithm::EcdsaP256,
            pkcs8: Zeroizing::new(pkcs8.as_ref().to_vec()),
            public_key: ec.public_key().as_ref().to_vec(),
        })
    }
}

/// Import a key and certificate chain given as PEM.
///
/// `key_pem` must hold exactly one unencrypted private key block:
/// `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY`
/// (SEC1, P-256); other blocks in it (e.g. certificates) are ignored.
/// `cert_chain_pem` holds the `CERTIFICATE` blocks, leaf first; other blocks
/// are ignored, so the same combined file may be passed for both.
pub fn import_pem(key_pem: &str, cert_chain_pem: &str) -> Result<NewCredential, SigningError> {
    let mut key_der: Option<Zeroizing<Vec<u8>>> = None;
    for block in pem_blocks(key_pem).map_err(SigningError::BadKey)? {
        match block.label.as_str() {
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => {
                if key_der.is_some() {
                    return Err(SigningError::BadKey(
                        "more than one private key in the PEM".into(),
                    ));
                }
                key_der = Some(Zeroizing::new(block.contents));
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(SigningError::BadKey(
                    "encrypted PEM keys are not supported; import a PKCS#12 file instead".into(),
                ));
            }
            _ => {
                // Zeroize anything else we decoded from the key text too.
                drop(Zeroizing::new(block.contents));
            }
        }
    }
    let key_der =
        key_der.ok_or_else(|| SigningError::BadKey("no PRIVATE KEY block in the PEM".into()))?;
    let chain = certificates_from_pem(cert_chain_pem)?;
    NewCredential::new(&key_der, chain)
}

struct PemBlock {
    label: String,
    contents: Vec<u8>,
}

fn pem_blocks(text: &str) -> Result<Vec<PemBlock>, String> {
    let mut blocks = Vec::new();
    for item in x509_parser::pem::Pem::iter_from_buffer(text.as_bytes()) {
        match item {
            Ok(p) => blocks.push(PemBlock {
                label: p.label,
                contents: p.contents,
            }),
            Err(x509_parser::error::PEMError::MissingHeader) if !blocks.is_empty() => break,
            Err(e) => return Err(format!("invalid PEM: {e}")),
        }
    }
    if blocks.is_empty() {
        return Err("no PEM block found".into());
    }
    Ok(blocks)
}

/// Import a PKCS#12 (.p12 / .pfx) file: the one private key it holds and
/// that key's certificate chain (linked by localKeyId, then by issuer name).
/// Supports what OpenSSL 3 writes by default (PBES2, AES-256-CBC, PBKDF2,
/// HMAC-SHA-256 MAC) and the legacy 3DES/RC2 forms.
pub fn import_pkcs12(der: &[u8], password: &str) -> Result<NewCredential, SigningError> {
    use p12_keystore::error::Error as P12Error;
    use p12_keystore::{KeyStore, Pkcs12ImportPolicy};

    let store =
        KeyStore::from_pkcs12(der, password, Pkcs12ImportPolicy::Strict).map_err(|e| match e {
            P12Error::MacError(_) | P12Error::UnpadError => SigningError::Pkcs12Password,
            other => SigningError::Pkcs12(other.to_string()),
        })?;
    let mut chains = store.entries().filter_map(|(_, entry)| match entry {
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => Some(chain),
        _ => None,
    });
    let chain = chains
        .next()
        .ok_or_else(|| SigningError::Pkcs12("no private key with a matching certificate".into()))?;
    if chains.next().is_some() {
        return Err(SigningError::Pkcs12(
            "more than one private key; export just the signing key".into(),
        ));
    }
    let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    NewCredential::new(chain.key().as_der(), certs)
}

/// `cert` names `issuer` as its issuer and carries a valid signature by it.
fn verify_issued_by(cert: &[u8], issuer: &[u8]) -> Result<(), String> {
    let cert = parse(cert).map_err(|e| e.to_string())?;
    let issuer = parse(issuer).map_err(|e| e.to_string())?;
    if cert.issuer().as_raw() != issuer.subject().as_raw() {
        return Err("issuer name differs".into());
    }
    cert.verify_signature(Some(issuer.public_key()))
        .map_err(|e| format!("signature: {e}"))
}
