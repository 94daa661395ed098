//! The HPKI `hcRole` certificate attribute: which healthcare qualification
//! (doctor, dentist, pharmacist) the certificate's holder has. Japanese
//! e-prescription verifiers read it to decide whether a signer may sign a
//! prescription or a dispensing result, so dev-CA certificates carry it in
//! exactly the shape real HPKI certificates do.
//!
//! Shape (ISO 17090-2 as profiled by the HPKI certificate policy; checked
//! byte for byte against a MEDIS-issued HPKI signature certificate):
//!
//! ```text
//! Extension subjectDirectoryAttributes (2.5.29.9), non-critical
//! SubjectDirectoryAttributes ::= SEQUENCE OF Attribute
//! Attribute ::= SEQUENCE {
//!   type    OBJECT IDENTIFIER,        -- 1.0.17090.0.1 id-hcpki-at-healthcareactor
//!   values  SET OF HCActorData }
//! HCActorData ::= SET OF HCActor
//! HCActor ::= SEQUENCE {
//!   codedData [0] EXPLICIT CodedData OPTIONAL, ... }
//! CodedData ::= SET {
//!   codingSchemeReference [0] EXPLICIT OBJECT IDENTIFIER,  -- 1.2.392.100495.1.6.1.1 (HPKI hcRole codes)
//!   codeDataValue         [1] EXPLICIT UTF8String OPTIONAL,
//!   codeDataFreeText      [2] EXPLICIT DirectoryString OPTIONAL } -- "Medical Doctor" | "Dentist" | "Pharmacist"
//! ```
//!
//! HPKI puts the role name in `codeDataFreeText` ([2]) as a UTF8String;
//! so do we.

use super::SigningError;
use super::der::{self, context, expect_only, read_tlv, tlv};

/// OID of the subjectDirectoryAttributes extension, as arcs for rcgen.
pub(crate) const SUBJECT_DIRECTORY_ATTRIBUTES: &[u64] = &[2, 5, 29, 9];
/// Dotted form, for matching parsed extensions.
pub(crate) const SUBJECT_DIRECTORY_ATTRIBUTES_DOTTED: &str = "2.5.29.9";
/// DER content of OID 1.0.17090.0.1 (id-hcpki-at-healthcareactor, ISO 17090).
const HEALTHCARE_ACTOR_OID: &[u8] = &[0x28, 0x81, 0x85, 0x42, 0x00, 0x01];
/// DER content of OID 1.2.392.100495.1.6.1.1 (HPKI hcRole coding scheme).
const HPKI_HC_ROLE_SCHEME_OID: &[u8] =
    &[0x2a, 0x83, 0x08, 0x86, 0x91, 0x0f, 0x01, 0x06, 0x01, 0x01];

/// The three qualifications that can sign e-prescription documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HcRole {
    /// 医師, HPKI code "Medical Doctor".
    Doctor,
    /// 歯科医師, HPKI code "Dentist".
    Dentist,
    /// 薬剤師, HPKI code "Pharmacist".
    Pharmacist,
}

impl HcRole {
    /// The hcActor code HPKI writes into the certificate.
    pub fn hpki_code(self) -> &'static str {
        match self {
            HcRole::Doctor => "Medical Doctor",
            HcRole::Dentist => "Dentist",
            HcRole::Pharmacist => "Pharmacist",
        }
    }

    /// Inverse of [`HcRole::hpki_code`].
    pub fn from_hpki_code(code: &str) -> Option<Self> {
        match code {
            "Medical Doctor" => Some(HcRole::Doctor),
            "Dentist" => Some(HcRole::Dentist),
            "Pharmacist" => Some(HcRole::Pharmacist),
            _ => None,
        }
    }

    /// Stable lowercase name used by the API and CLI (`doctor`, `dentist`, `pharmacist`).
    pub fn as_str(self) -> &'static str {
        match self {
            HcRole::Doctor => "doctor",
            HcRole::Dentist => "dentist",
            HcRole::Pharmacist => "pharmacist",
        }
    }

    /// Inverse of [`HcRole::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "doctor" => Some(HcRole::Doctor),
            "dentist" => Some(HcRole::Dentist),
            "pharmacist" => Some(HcRole::Pharmacist),
            _ => None,
        }
    }
}

/// The DER value (extnValue contents) of a subjectDirectoryAttributes
/// extension that carries `role` as an HPKI hcRole.
pub fn hc_role_extension_value(role: HcRole) -> Vec<u8> {
    let scheme = tlv(context(0), &tlv(der::OID, HPKI_HC_ROLE_SCHEME_OID));
    let free_text = tlv(
        context(2),
        &tlv(der::UTF8_STRING, role.hpki_code().as_bytes()),
    );
    let coded_data = tlv(der::SET, &[scheme, free_text].concat());
    let hc_actor = tlv(der::SEQUENCE, &tlv(context(0), &coded_data));
    let hc_actor_data = tlv(der::SET, &hc_actor);
    let values = tlv(der::SET, &hc_actor_data);
    let attribute = tlv(
        der::SEQUENCE,
        &[tlv(der::OID, HEALTHCARE_ACTOR_OID), values].concat(),
    );
    tlv(der::SEQUENCE, &attribute)
}

/// All hcActor codes (e.g. "Medical Doctor") in a subjectDirectoryAttributes
/// extension value that use the HPKI coding scheme. Other attributes and
/// other coding schemes are skipped; malformed DER is an error.
pub(crate) fn hc_actor_codes(ext_value: &[u8]) -> Result<Vec<String>, SigningError> {
    let bad = |what: &str| {
        SigningError::BadCertificate(format!("malformed subjectDirectoryAttributes: {what}"))
    };
    let mut codes = Vec::new();
    let mut attributes =
        expect_only(ext_value, der::SEQUENCE).ok_or_else(|| bad("outer SEQUENCE"))?;
    while !attributes.is_empty() {
        let (tag, attribute, rest) = read_tlv(attributes).ok_or_else(|| bad("Attribute"))?;
        attributes = rest;
        if tag != der::SEQUENCE {
            return Err(bad("Attribute is not a SEQUENCE"));
        }
        let (tag, attr_type, values) = read_tlv(attribute).ok_or_else(|| bad("Attribute type"))?;
        if tag != der::OID {
            return Err(bad("Attribute type is not an OID"));
        }
        if attr_type != HEALTHCARE_ACTOR_OID {
            continue;
        }
        let mut values = expect_only(values, der::SET).ok_or_else(|| bad("Attribute values"))?;
        while !values.is_empty() {
            let (tag, mut actors, rest) = read_tlv(values).ok_or_else(|| bad("HCActorData"))?;
            values = rest;
            if tag != der::SET {
                return Err(bad("HCActorData is not a SET"));
            }
            while !actors.is_empty() {
                let (tag, actor, rest) = read_tlv(actors).ok_or_else(|| bad("HCActor"))?;
                actors = rest;
                if tag != der::SEQUENCE {
                    return Err(bad("HCActor is not a SEQUENCE"));
                }
                if let Some(code) = coded_data_code(actor).map_err(|()| bad("CodedData"))? {
                    codes.push(code);
                }
            }
        }
    }
    Ok(codes)
}

/// The HPKI code inside one HCActor, if it has codedData in the HPKI scheme.
fn coded_data_code(mut actor: &[u8]) -> Result<Option<String>, ()> {
    while !actor.is_empty() {
        let (tag, content, rest) = read_tlv(actor).ok_or(())?;
        actor = rest;
        if tag != context(0) {
            continue; // regionalHCActorData and later fields are not roles
        }
        let mut fields = expect_only(content, der::SET).ok_or(())?;
        let mut scheme = None;
        let mut text = None;
        while !fields.is_empty() {
            let (tag, field, rest) = read_tlv(fields).ok_or(())?;
            fields = rest;
            match tag {
                t if t == context(0) => scheme = Some(expect_only(field, der::OID).ok_or(())?),
                t if t == context(1) || t == context(2) => {
                    // DirectoryString: UTF8String, PrintableString (0x13) or BMP is not expected.
                    let (inner_tag, value, rest) = read_tlv(field).ok_or(())?;
                    if !rest.is_empty() || !matches!(inner_tag, der::UTF8_STRING | 0x13) {
                        return Err(());
                    }
                    let value = std::str::from_utf8(value).map_err(|_| ())?;
                    // Prefer the free text ([2]) which is where HPKI puts the role name.
                    if t == context(2) || text.is_none() {
                        text = Some(value.to_owned());
                    }
                }
                _ => {}
            }
        }
        if scheme == Some(HPKI_HC_ROLE_SCHEME_OID) {
            return Ok(text);
        }
    }
    Ok(None)
}

/// The hcRole of a DER certificate: `Ok(None)` when it has no HPKI hcRole,
/// an error when the extension is malformed or names a role this server
/// does not sign for.
pub fn hc_role_from_certificate(cert_der: &[u8]) -> Result<Option<HcRole>, SigningError> {
    let Some(code) = super::certificate::hc_role_code(cert_der)? else {
        return Ok(None);
    };
    HcRole::from_hpki_code(&code).map(Some).ok_or_else(|| {
        SigningError::BadCertificate(format!(
            "hcRole {code:?} is not doctor, dentist or pharmacist"
        ))
    })
}
