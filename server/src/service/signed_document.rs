//! CSC `signatures/signDoc` over document digests: the server builds the
//! finished signature container around a digest the EHR computed, so the
//! document itself never leaves the clinic.
//!
//! - `signature_format` "X": XAdES (the e-prescription profile,
//!   docs/signing.md): the digest is that of the exc-c14n
//!   `PrescriptionDocument` element, named by its `Id`;
//! - `signature_format` "C": CMS / CAdES-BES detached SignedData.
//!
//! Same rules as signHash: the grant and the terminal authenticate the
//! call, the certificate must be valid and the credential unrevoked at the
//! signing time, and every signature is committed to the audit log
//! (digest, format, signing time) before it is returned.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::{App, Error, Result, random_bytes};
use crate::signing::{KeyAlgorithm, SealedKey, SignatureAlgorithm, oid};
use crate::store::{RecordOutcome, SignatureRecord};
use crate::{cms, xades};

/// Most signatures in one signDoc call (each XAdES answer is ~4 KiB).
pub const MAX_DOC_SIGNATURES: usize = 100;

/// CSC `signatures/signDoc` request (digest form only).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignDocRequest {
    #[serde(rename = "credentialID")]
    pub credential_id: String,
    #[serde(rename = "documentDigests", default)]
    pub document_digests: Vec<DocumentDigests>,
    /// CSC's whole-document form; refused (the document stays at the clinic).
    #[serde(default)]
    pub documents: Option<serde_json::Value>,
    /// Shomei extension: the EHR's short document label, shown on the
    /// practitioner's phone (docs/protocol.md §9.2).
    #[serde(default)]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 80)]
    pub label: Option<super::signing_log::RawLabel>,
}

/// One CSC `documentDigests` entry: digests signed alike.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DocumentDigests {
    /// Standard base64 SHA-256 digests.
    pub hashes: Vec<String>,
    #[serde(rename = "hashAlgorithmOID", default)]
    pub hash_algorithm_oid: Option<String>,
    /// "X" (XAdES) or "C" (CMS / CAdES).
    pub signature_format: String,
    /// "Ades-B-B" (default) or "Ades-B".
    #[serde(default)]
    pub conformance_level: Option<String>,
    #[serde(rename = "signAlgo")]
    pub sign_algo: String,
    #[serde(rename = "signAlgoParams", default)]
    pub sign_algo_params: Option<String>,
    /// "Detached" (default): the signature is returned apart from the document.
    #[serde(default)]
    pub signed_envelope_property: Option<String>,
    /// CSC signed_props: not supported (the profile fixes the properties).
    #[serde(default)]
    pub signed_props: Option<Vec<serde_json::Value>>,
    /// Shomei extension for "X": the `Id` of each signed element, one per hash.
    #[serde(default)]
    pub reference_ids: Option<Vec<String>>,
}

/// CSC `signatures/signDoc` response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignDocResponse {
    /// Always empty: only digests are signed here.
    #[serde(rename = "DocumentWithSignature")]
    pub document_with_signature: Vec<String>,
    /// One per hash, in request order: standard base64 of the UTF-8
    /// `PrescriptionSign` element ("X") or of the DER ContentInfo ("C").
    #[serde(rename = "SignatureObject")]
    pub signature_object: Vec<String>,
}

/// A signature format this server builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// XAdES, e-prescription profile.
    Xades,
    /// CMS / CAdES-BES, detached.
    Cms,
}

impl SignatureFormat {
    /// The CSC letter.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureFormat::Xades => "X",
            SignatureFormat::Cms => "C",
        }
    }
}

/// One signature to make.
struct Job {
    format: SignatureFormat,
    digest: Vec<u8>,
    reference_id: Option<String>,
}

fn parse_entry(
    i: usize,
    e: &DocumentDigests,
    key: KeyAlgorithm,
    jobs: &mut Vec<Job>,
) -> Result<SignatureAlgorithm> {
    let format = match e.signature_format.as_str() {
        "X" => SignatureFormat::Xades,
        "C" => SignatureFormat::Cms,
        o => {
            return Err(Error::FormatUnsupported(format!(
                "documentDigests[{i}].signature_format {o:?} (use \"X\" or \"C\")"
            )));
        }
    };
    let level = e.conformance_level.as_deref().unwrap_or("Ades-B-B");
    if !["ades-b-b", "ades-b"].contains(&level.to_ascii_lowercase().as_str()) {
        return Err(Error::FormatUnsupported(format!(
            "documentDigests[{i}].conformance_level {level:?} (only Ades-B-B / Ades-B: no time-stamping authority)"
        )));
    }
    let envelope = e.signed_envelope_property.as_deref().unwrap_or("Detached");
    if envelope != "Detached" {
        return Err(Error::FormatUnsupported(format!(
            "documentDigests[{i}].signed_envelope_property {envelope:?} (only \"Detached\" from a digest)"
        )));
    }
    if e.signed_props.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(Error::FormatUnsupported(format!(
            "documentDigests[{i}].signed_props: the profile fixes the signed properties"
        )));
    }
    if e.sign_algo_params.as_ref().is_some_and(|p| !p.is_empty()) {
        return Err(Error::AlgorithmUnsupported(format!(
            "documentDigests[{i}].signAlgoParams (none are needed for PKCS#1 v1.5 or ECDSA)"
        )));
    }
    let Some(hash_oid) = e.hash_algorithm_oid.as_deref() else {
        return Err(Error::AlgorithmUnsupported(format!(
            "documentDigests[{i}].hashAlgorithmOID is required ({})",
            oid::SHA256
        )));
    };
    let alg = SignatureAlgorithm::from_csc(&e.sign_algo, Some(hash_oid), key)?;
    if e.hashes.is_empty() {
        return Err(Error::HashInvalid(format!(
            "documentDigests[{i}].hashes is empty"
        )));
    }
    let ids = match (format, &e.reference_ids) {
        (SignatureFormat::Xades, Some(ids)) if ids.len() == e.hashes.len() => Some(ids),
        (SignatureFormat::Xades, _) => {
            return Err(Error::BadRequest(format!(
                "documentDigests[{i}].reference_ids must give the Id of each hashed element ({} hashes)",
                e.hashes.len()
            )));
        }
        (SignatureFormat::Cms, None) => None,
        (SignatureFormat::Cms, Some(_)) => {
            return Err(Error::BadRequest(format!(
                "documentDigests[{i}].reference_ids is for signature_format \"X\" only"
            )));
        }
    };
    for (j, h) in e.hashes.iter().enumerate() {
        let digest = STANDARD.decode(h).map_err(|_| {
            Error::HashInvalid(format!(
                "documentDigests[{i}].hashes[{j}] is not standard base64"
            ))
        })?;
        if digest.len() != 32 {
            return Err(Error::HashInvalid(format!(
                "documentDigests[{i}].hashes[{j}] is {} bytes, SHA-256 needs 32",
                digest.len()
            )));
        }
        let reference_id = match ids {
            Some(ids) => {
                let id = &ids[j];
                if !xades::canonical::is_ncname(id) {
                    return Err(Error::BadRequest(
                        xades::XadesError::BadReferenceId(id.clone()).to_string(),
                    ));
                }
                Some(id.clone())
            }
            None => None,
        };
        jobs.push(Job {
            format,
            digest,
            reference_id,
        });
    }
    Ok(alg)
}

enum Prepared {
    Xades(xades::Prepared),
    Cms(cms::Prepared),
}

impl App {
    /// CSC `signatures/signDoc`: build XAdES / CMS signatures around the
    /// given digests, record them in the audit log, then return them.
    pub async fn csc_sign_doc(&self, mut call: super::signature::SigningCall, req: SignDocRequest) -> Result<SignDocResponse> {
        let label = super::signing_log::label_from_request(req.label.as_ref())?;
        let c = self.call_credential(&mut call, &req.credential_id).await?;
        let (grant, terminal) = (&call.grant, &call.terminal);
        if req.documents.is_some() {
            return Err(Error::BadRequest("documents are not accepted: send documentDigests (the document stays at the clinic)".into()));
        }
        if req.document_digests.is_empty() {
            return Err(Error::HashInvalid(
                "documentDigests must hold at least one entry".into(),
            ));
        }
        // XAdES carries whole seconds; the audit records the same instant.
        let now = self.clock.now_ms();
        let signing_ms = now - now.rem_euclid(1000);
        self.check_can_sign(&c, signing_ms)?;
        let key_alg =
            KeyAlgorithm::parse(&c.algorithm).map_err(|e| Error::Internal(e.to_string()))?;
        let mut jobs = Vec::new();
        let mut alg = None;
        for (i, e) in req.document_digests.iter().enumerate() {
            alg = Some(parse_entry(i, e, key_alg, &mut jobs)?);
            if jobs.len() > MAX_DOC_SIGNATURES {
                return Err(Error::HashInvalid(format!(
                    "at most {MAX_DOC_SIGNATURES} digests per signDoc call"
                )));
            }
        }
        let alg = alg.expect("at least one entry");
        if let Some(cap) = grant.signature_cap
            && grant.signatures_made + jobs.len() as i64 > cap
        {
            return Err(Error::GrantExhausted);
        }
        let signing_time = super::rfc3339(signing_ms)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let sealed = SealedKey {
            credential_id: c.id.clone(),
            algorithm: key_alg,
            sealed_pkcs8: c.sealed_key.clone(),
        };
        let backend = self.backend.clone();
        let chain = c.certificate_chain.clone();
        let on_its_way = self.signature_log.coming();
        let specs: Vec<(SignatureFormat, Vec<u8>, Option<String>)> = jobs
            .iter()
            .map(|j| (j.format, j.digest.clone(), j.reference_id.clone()))
            .collect();
        let objects = tokio::task::spawn_blocking(move || -> Result<Vec<Vec<u8>>> {
            let mut prepared = Vec::with_capacity(specs.len());
            for (format, digest, reference_id) in &specs {
                prepared.push(match format {
                    SignatureFormat::Xades => {
                        let signature_id = format!("Sig-{}", hex::encode(random_bytes::<8>()));
                        let input = xades::XadesInput {
                            reference_id: reference_id.as_deref().unwrap_or_default(),
                            element_digest: digest,
                            certificate_der: &chain[0],
                            alg,
                            signing_time: &signing_time,
                            signature_id: &signature_id,
                        };
                        Prepared::Xades(
                            xades::prepare(&input).map_err(|e| Error::Internal(e.to_string()))?,
                        )
                    }
                    SignatureFormat::Cms => Prepared::Cms(
                        cms::prepare(&chain, alg, digest, (signing_ms / 1000) as u64)
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    ),
                });
            }
            let to_sign: Vec<&[u8]> = prepared
                .iter()
                .map(|p| match p {
                    Prepared::Xades(x) => x.to_sign.as_slice(),
                    Prepared::Cms(c) => c.to_sign.as_slice(),
                })
                .collect();
            let signatures = backend.sign_digests(&sealed, alg, &to_sign)?;
            prepared
                .into_iter()
                .zip(signatures)
                .map(|(p, sig)| match p {
                    Prepared::Xades(x) => x
                        .assemble(&sig)
                        .map(String::into_bytes)
                        .map_err(|e| Error::Internal(e.to_string())),
                    Prepared::Cms(c) => {
                        c.assemble(&sig).map_err(|e| Error::Internal(e.to_string()))
                    }
                })
                .collect()
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
        let record = SignatureRecord {
            grant_id: grant.id.clone(),
            credential_id: c.id.clone(),
            terminal_id: terminal.id.clone(),
            signature_formats: jobs.iter().map(|j| j.format.as_str().to_owned()).collect(),
            hashes: jobs.into_iter().map(|j| j.digest).collect(),
            sign_algo: alg.as_str().to_owned(),
            now_ms: signing_ms,
            label,
        };
        let kinds: Vec<_> = record.signature_formats.iter().filter_map(|f| crate::metrics::SignatureKind::from_format(f)).collect();
        match self.signature_log.record(record, on_its_way).await? {
            RecordOutcome::Recorded(made) => {
                self.recorded(&call, made, signing_ms);
                for kind in kinds {
                    self.metrics.signatures(kind, 1);
                }
                Ok(SignDocResponse {
                document_with_signature: Vec::new(),
                signature_object: objects.iter().map(|o| STANDARD.encode(o)).collect(),
                })
            }
            outcome => Err(self.refused_at_commit(&call, &c.id, outcome).await),
        }
    }
}
