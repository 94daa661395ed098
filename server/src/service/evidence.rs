//! Evidence of phone decisions that a third party can check without
//! Shomei: the exact approval/deny message the device key signed, the DER
//! signature and the device public key (stored with the decision in the
//! same transaction, see [`crate::store::DecisionEvidence`]), exported as a
//! bundle that `openssl dgst -verify` checks and whose README maps every
//! byte of the message to the decision record.
//!
//! Why a bundle and not an API answer: an auditor, a court or the
//! practitioner's own lawyer must be able to check "this practitioner's
//! phone approved this login on that terminal" long after the fact, with a
//! standard tool, and without trusting this server's code or database.

use serde::{Deserialize, Serialize};
use shomei_core::approval::{APPROVAL_DOMAIN, MESSAGE_VERSION};

use super::{App, Error, Result, rfc3339};
use crate::store::{DecisionEvidence, LoginStatus};

type Time = time::OffsetDateTime;

/// Names of the files of an evidence bundle.
pub const MESSAGE_FILE: &str = "message.bin";
pub const SIGNATURE_FILE: &str = "signature.der";
pub const PUBLIC_KEY_FILE: &str = "device-public-key.pem";
pub const DECISION_FILE: &str = "decision.json";
pub const ATTESTATION_FILE: &str = "attestation.json";
pub const README_FILE: &str = "README.txt";

/// An id with its name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Named {
    pub id: String,
    pub name: String,
}

/// Who approved or denied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PractitionerRef {
    pub id: String,
    pub display_name: String,
    pub role: String,
}

/// The deciding phone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceRef {
    pub id: String,
    pub name: String,
    pub platform: String,
    /// The device public key, SEC1 uncompressed, hex (the point in `device-public-key.pem`).
    pub public_key_sec1: String,
}

/// One field of the signed message (docs/protocol.md §3): where it is in
/// `message.bin` and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MessageField {
    pub name: String,
    /// Offset of the field's 4-byte length prefix (for `version`: of its 2 bytes).
    pub offset: usize,
    /// Length of the value in bytes.
    pub length: usize,
    /// The value in hex.
    pub hex: String,
}

/// `decision.json`: the decision as the server recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DecisionRecord {
    /// Login id (b64u, as in the QR and the API).
    pub login: String,
    pub terminal: Named,
    pub facility: Named,
    pub practitioner: PractitionerRef,
    pub device: DeviceRef,
    /// When the server stored the decision (its clock; the message carries no time).
    #[schema(value_type = String, format = DateTime)]
    #[serde(with = "time::serde::rfc3339")]
    pub time: Time,
    /// What the device signed: `approve` or `deny`.
    pub decision: String,
    /// The number the device signed (0 for a deny without choice).
    pub number: u8,
    /// What the server made of it: `approved` or `denied`.
    pub outcome: String,
    /// Why (`user approved`, `user denied`, `number mismatch`, …).
    pub reason: String,
    /// How the deciding phone found the login: `qr` (it scanned the QR and
    /// sent its secret) or `code` (the practitioner typed the user code,
    /// protocol.md §4.6). The signed bytes are the same either way.
    pub via: String,
    /// The server origin, as signed.
    pub origin: String,
    /// The fields of `message.bin`, in order.
    pub message_fields: Vec<MessageField>,
}

/// `GET /admin/v1/evidence/{login_id}`: every file of the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvidenceBundle {
    pub decision: DecisionRecord,
    /// `message.bin`, standard base64.
    pub message: String,
    /// `signature.der`, standard base64.
    pub signature: String,
    /// `device-public-key.pem`.
    pub public_key_pem: String,
    /// `attestation.json`: the device's attestation record at decision time, if any.
    pub attestation: Option<serde_json::Value>,
    /// `README.txt`.
    pub readme: String,
}

/// The device key as SubjectPublicKeyInfo PEM (what `openssl dgst -verify` reads).
pub fn device_key_pem(sec1: &[u8]) -> Result<String> {
    use p256::pkcs8::{EncodePublicKey, LineEnding};
    let key = p256::PublicKey::from_sec1_bytes(sec1)
        .map_err(|_| Error::Internal("stored device key is not a P-256 point".into()))?;
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Internal(format!("device key PEM: {e}")))
}

/// Splits an approval message (docs/protocol.md §3.1) into its fields,
/// refusing anything that is not exactly one.
pub fn approval_fields(m: &[u8]) -> Result<Vec<MessageField>> {
    const NAMES: [&str; 7] = [
        "origin",
        "login_id",
        "login_secret_sha256",
        "device_id",
        "decision",
        "number",
        "challenge",
    ];
    let bad = |why: &str| Error::Internal(format!("stored approval message is malformed: {why}"));
    let mut fields = Vec::new();
    let mut at = 0usize;
    let take = |name: &str, at: &mut usize, fields: &mut Vec<MessageField>| -> Result<()> {
        let len_bytes: [u8; 4] = m
            .get(*at..*at + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("truncated length"))?;
        let len = u32::from_be_bytes(len_bytes) as usize;
        let value = m
            .get(*at + 4..*at + 4 + len)
            .ok_or_else(|| bad("truncated value"))?;
        fields.push(MessageField {
            name: name.to_owned(),
            offset: *at,
            length: len,
            hex: hex::encode(value),
        });
        *at += 4 + len;
        Ok(())
    };
    take("domain", &mut at, &mut fields)?;
    if fields[0].hex != hex::encode(APPROVAL_DOMAIN) {
        return Err(bad("not an approval message"));
    }
    let version = m.get(at..at + 2).ok_or_else(|| bad("truncated version"))?;
    if version != MESSAGE_VERSION.to_be_bytes() {
        return Err(bad("unknown version"));
    }
    fields.push(MessageField {
        name: "version".into(),
        offset: at,
        length: 2,
        hex: hex::encode(version),
    });
    at += 2;
    for name in NAMES {
        take(name, &mut at, &mut fields)?;
    }
    if at != m.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [MessageField], name: &str) -> &'a MessageField {
    fields
        .iter()
        .find(|f| f.name == name)
        .expect("approval_fields names every field")
}

fn byte_of(f: &MessageField) -> Result<u8> {
    match hex::decode(&f.hex).ok().as_deref() {
        Some([b]) => Ok(*b),
        _ => Err(Error::Internal(format!(
            "stored approval message: {} is not one byte",
            f.name
        ))),
    }
}

impl App {
    /// The evidence bundle of a decided login (`shomei admin evidence export`).
    pub async fn evidence_bundle(&self, login_id: &str) -> Result<EvidenceBundle> {
        let l = self
            .store
            .get_login(login_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("login {login_id}")))?;
        let e = self
            .store
            .get_decision_evidence(login_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no decision evidence for login {login_id}")))?;
        let missing = |what: &str| Error::Internal(format!("evidence names a missing {what}"));
        let device = self
            .store
            .get_device(&e.device_id)
            .await?
            .ok_or_else(|| missing("device"))?;
        let terminal = self
            .store
            .get_terminal(&l.terminal_id)
            .await?
            .ok_or_else(|| missing("terminal"))?;
        let facility = self
            .store
            .get_facility(&terminal.facility_id)
            .await?
            .ok_or_else(|| missing("facility"))?;
        let practitioner = self
            .store
            .get_practitioner(&device.practitioner_id)
            .await?
            .ok_or_else(|| missing("practitioner"))?;

        let fields = approval_fields(&e.message)?;
        // The record must say what the bytes say: cross-check the signed
        // fields against the login and device rows before exporting.
        let login_bytes = shomei_core::api::b64u::decode(&l.id)
            .map_err(|_| Error::Internal("login id".into()))?;
        let device_uuid =
            uuid::Uuid::parse_str(&device.id).map_err(|_| Error::Internal("device id".into()))?;
        let checks = [
            ("origin", hex::encode(self.origin.as_str())),
            ("login_id", hex::encode(&login_bytes)),
            ("login_secret_sha256", hex::encode(&l.secret_hash)),
            ("device_id", hex::encode(device_uuid.as_bytes())),
            ("challenge", hex::encode(&l.challenge)),
        ];
        for (name, want) in checks {
            if field(&fields, name).hex != want {
                return Err(Error::Internal(format!(
                    "stored evidence of login {login_id}: signed {name} differs from the login record"
                )));
            }
        }
        let decision = match byte_of(field(&fields, "decision"))? {
            0x01 => "approve",
            0x02 => "deny",
            b => {
                return Err(Error::Internal(format!(
                    "stored approval message: decision byte {b:#04x}"
                )));
            }
        };
        let number = byte_of(field(&fields, "number"))?;
        let record = DecisionRecord {
            login: l.id.clone(),
            terminal: Named {
                id: terminal.id.clone(),
                name: terminal.name.clone(),
            },
            facility: Named {
                id: facility.id.clone(),
                name: facility.name.clone(),
            },
            practitioner: PractitionerRef {
                id: practitioner.id.clone(),
                display_name: practitioner.display_name.clone(),
                role: practitioner.role.clone(),
            },
            device: DeviceRef {
                id: device.id.clone(),
                name: device.name.clone(),
                platform: device.platform.clone(),
                public_key_sec1: hex::encode(&e.public_key),
            },
            time: rfc3339(e.decided_ms),
            decision: decision.to_owned(),
            number,
            outcome: e.outcome.as_str().to_owned(),
            reason: e.reason.clone(),
            via: super::login::via(&l, &e.device_id).to_owned(),
            origin: self.origin.as_str().to_owned(),
            message_fields: fields,
        };
        let attestation = e.attestation.as_deref().map(|a| {
            serde_json::from_str(a).unwrap_or_else(|_| serde_json::Value::String(a.to_owned()))
        });
        let readme = readme(&record, &e, attestation.is_some());
        use base64::Engine as _;
        let std = base64::engine::general_purpose::STANDARD;
        Ok(EvidenceBundle {
            decision: record,
            message: std.encode(&e.message),
            signature: std.encode(&e.signature),
            public_key_pem: device_key_pem(&e.public_key)?,
            attestation,
            readme,
        })
    }
}

fn readme(r: &DecisionRecord, e: &DecisionEvidence, attestation: bool) -> String {
    let verb = if e.outcome == LoginStatus::Approved {
        "APPROVED"
    } else {
        "DENIED"
    };
    let mut s = String::new();
    s.push_str("Evidence of a Shomei login decision\n===================================\n\n");
    s.push_str(&format!(
        "Login {} at {} / {} was {verb} ({}) at {} by {} ({}, practitioner {})\nwith the phone \"{}\" (device {}, {}).\n\n",
        r.login, r.facility.name, r.terminal.name, r.reason, r.time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        r.practitioner.display_name, r.practitioner.role, r.practitioner.id, r.device.name, r.device.id, r.device.platform
    ));
    s.push_str(match r.via.as_str() {
        "code" => "The phone found the login by the user code the practitioner typed (the camera\ncould not read the QR; docs/protocol.md section 4.6), not by scanning it.\n\n",
        _ => "The phone found the login by scanning its QR code.\n\n",
    });
    s.push_str("Files\n-----\n");
    s.push_str(&format!("  {MESSAGE_FILE:<22} the exact bytes the phone's device key signed (Shomei protocol, docs/protocol.md section 3.1)\n"));
    s.push_str(&format!("  {SIGNATURE_FILE:<22} the device's ECDSA P-256 signature with SHA-256 over {MESSAGE_FILE} (ASN.1 DER)\n"));
    s.push_str(&format!("  {PUBLIC_KEY_FILE:<22} the device's public key (SubjectPublicKeyInfo, PEM), registered when the phone enrolled\n"));
    s.push_str(&format!("  {DECISION_FILE:<22} the decision as the server recorded it, with every field of {MESSAGE_FILE}\n"));
    if attestation {
        s.push_str(&format!("  {ATTESTATION_FILE:<22} the phone's platform attestation record as stored at decision time\n"));
    }
    s.push_str(&format!("  {README_FILE:<22} this file\n\n"));
    s.push_str("1. The device key signed exactly these bytes (OpenSSL alone)\n------------------------------------------------------------\n\n");
    s.push_str(&format!("  openssl dgst -sha256 -verify {PUBLIC_KEY_FILE} -signature {SIGNATURE_FILE} {MESSAGE_FILE}\n\n"));
    s.push_str("prints \"Verified OK\". Changing any byte of the message, the signature or the key\nmakes it print \"Verification failure\" (and exit with status 1).\n\n");
    s.push_str(&format!(
        "  openssl pkey -pubin -in {PUBLIC_KEY_FILE} -text -noout\n\nshows the key's point (\"pub:\"), which is device.public_key_sec1 in {DECISION_FILE}:\n  {}\n\n",
        r.device.public_key_sec1
    ));
    s.push_str("2. The signed bytes say what decision.json says\n-----------------------------------------------\n\n");
    s.push_str(&format!(
        "  od -A d -t x1 {MESSAGE_FILE}        (or: xxd {MESSAGE_FILE})\n\n"
    ));
    s.push_str("The message is a sequence of fields, each a 4-byte big-endian length followed by\nthat many bytes, after a 2-byte protocol version that follows the domain tag:\n\n");
    s.push_str("  offset  length  field                 value (hex)\n");
    for f in &r.message_fields {
        let shown = if f.name == "version" { 2 } else { 4 + f.length };
        s.push_str(&format!(
            "  {:>6}  {:>6}  {:<20}  {}\n",
            f.offset, shown, f.name, f.hex
        ));
    }
    s.push_str(&format!(
        "\nHow the fields map to {DECISION_FILE}:\n\
  domain               \"shomei/approval\" in ASCII: this is a login decision, not an enrollment\n\
  version              protocol version 1\n\
  origin               the server's origin in UTF-8: \"{}\" (decision.json \"origin\")\n\
  login_id             the 16-byte login id; decision.json \"login\" is its base64url form\n\
  login_secret_sha256  SHA-256 of the one-time secret in the login QR: only a phone that\n\
                       scanned that QR could sign it\n\
  device_id            the phone's device id as 16 UUID bytes: decision.json device.id\n\
  decision             01 = approve, 02 = deny: decision.json \"decision\" = \"{}\"\n\
  number               the number the practitioner picked (number matching; 0 for a deny\n\
                       without choice): decision.json \"number\" = {}\n\
  challenge            32 random bytes the server issued for this login only\n\n",
        r.origin, r.decision, r.number
    ));
    s.push_str(&format!(
        "The terminal ({} \"{}\"), facility ({} \"{}\") and practitioner are not in the signed\n\
bytes: the login id binds them, as the server recorded when the terminal started the login.\n\
The time is the server's clock when it stored the decision; the challenge ties the signature\n\
to this login, which was valid for at most 120 seconds.\n\n\
\"outcome\" is what the server made of the decision: an approval with a number other than the\n\
one on the EHR screen is refused (\"number mismatch\") and kept here as evidence all the same.\n",
        r.terminal.id, r.terminal.name, r.facility.id, r.facility.name
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let origin = shomei_core::Origin::parse("https://shomei.example.jp").unwrap();
        let lid = shomei_core::LoginId([1; 16]);
        shomei_core::approval::approval_bytes_from_secret_sha256(
            &origin,
            &lid,
            &[2; 32],
            [3; 16],
            shomei_core::Decision::Approve,
            42,
            &[4; 32],
        )
    }

    #[test]
    fn approval_fields_name_every_byte_of_the_message() {
        let m = sample();
        let f = approval_fields(&m).unwrap();
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "domain",
                "version",
                "origin",
                "login_id",
                "login_secret_sha256",
                "device_id",
                "decision",
                "number",
                "challenge"
            ]
        );
        assert_eq!(field(&f, "number").hex, "2a");
        assert_eq!(field(&f, "decision").hex, "01");
        let last = f.last().unwrap();
        assert_eq!(last.offset + 4 + last.length, m.len());
    }

    #[test]
    fn approval_fields_refuse_trailing_or_truncated_bytes() {
        let mut m = sample();
        m.push(0);
        assert!(approval_fields(&m).is_err());
        let m = sample();
        assert!(approval_fields(&m[..m.len() - 1]).is_err());
    }

    #[test]
    fn device_key_pem_is_an_spki_pem() {
        let key = shomei_core::SoftwareKey::generate();
        let pem = device_key_pem(&key.public_key_sec1()).unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
        assert!(device_key_pem(&[4; 65]).is_err());
    }
}
