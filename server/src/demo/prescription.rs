//! The demo's sample e-prescription: a `PrescriptionDocument` element in
//! the shape of docs/signing.md (the national schema's element names are not
//! reproduced), written directly in exc-c14n form so that its SHA-256 is the
//! digest an EHR sends to signDoc. The verifier re-derives that form from the
//! parsed document, so the two agree only if both are right.

use crate::service::{Error, Result};
use crate::xades::canonical::{Element, leaf};

/// Longest medication line the page may send.
pub const MAX_MEDICATION_CHARS: usize = 120;
/// What the page signs when the person typed nothing.
pub const DEFAULT_MEDICATION: &str = "アムロジピン錠5mg 1錠 1日1回 朝食後 14日分";

/// The medication line as typed: trimmed, 1..=120 characters, no control
/// characters (they would be invisible in the signed XML).
pub fn medication(typed: Option<&str>) -> Result<String> {
    let m = typed
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_MEDICATION);
    if m.chars().count() > MAX_MEDICATION_CHARS {
        return Err(Error::BadRequest(format!(
            "medication is longer than {MAX_MEDICATION_CHARS} characters"
        )));
    }
    if m.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "medication holds a control character".into(),
        ));
    }
    Ok(m.to_owned())
}

/// The canonical `PrescriptionDocument` element with `Id=id`.
pub fn element(id: &str, practitioner: &str, medication: &str, issued_on: &str) -> String {
    let mut s = String::with_capacity(512);
    let doc = Element::open(&mut s, "PrescriptionDocument", None, &[("Id", id)]);
    let patient = Element::open(&mut s, "Patient", None, &[]);
    leaf(&mut s, "Name", None, &[], "山田 太郎 (sample patient)");
    leaf(&mut s, "BirthDate", None, &[], "1960-04-01");
    patient.close(&mut s);
    leaf(&mut s, "Prescriber", None, &[], practitioner);
    leaf(&mut s, "IssuedOn", None, &[], issued_on);
    let med = Element::open(&mut s, "Medication", None, &[]);
    leaf(&mut s, "Rp", None, &[("number", "1")], medication);
    med.close(&mut s);
    doc.close(&mut s);
    s
}

/// The EHR's document with the returned `PrescriptionSign` inserted right
/// after the prescription element (docs/signing.md).
pub fn assembled(element: &str, signature: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document>\n  <Prescription>\n    {element}{signature}\n  </Prescription>\n</Document>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_element_is_its_own_exc_c14n_form() {
        let e = element("Rx-1", "山田 花子 & <co>", "Rp \"1\"", "2026-12-02");
        let doc = assembled(&e, "");
        let parsed = roxmltree::Document::parse(&doc).unwrap();
        let node = parsed
            .descendants()
            .find(|n| n.attribute("Id") == Some("Rx-1"))
            .unwrap();
        assert_eq!(crate::xades::verify::c14n(node, &doc), e);
    }

    #[test]
    fn a_medication_line_is_bounded_and_printable() {
        assert_eq!(medication(None).unwrap(), DEFAULT_MEDICATION);
        assert_eq!(medication(Some("  ")).unwrap(), DEFAULT_MEDICATION);
        assert_eq!(
            medication(Some(" ロキソプロフェン錠60mg ")).unwrap(),
            "ロキソプロフェン錠60mg"
        );
        assert!(matches!(
            medication(Some(&"錠".repeat(121))),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(
            medication(Some("a\u{7}b")),
            Err(Error::BadRequest(_))
        ));
    }
}
