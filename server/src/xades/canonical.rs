//! Writing XML directly in its Exclusive XML Canonicalization 1.0 form
//! (exc-c14n, without comments) so that the bytes the server hashes are
//! the bytes a verifier's canonicaliser produces, with no XML library in
//! between.
//!
//! The rules this writer follows (W3C xml-exc-c14n §3, C14N 1.0 §2.3):
//! - an element's namespace declaration appears on it exactly when the
//!   element's own prefix uses it and no *output* ancestor declared it
//!   (so each signed subtree re-declares `ds:` / `xades:` at its apex,
//!   and siblings each declare what they use);
//! - namespace declarations first, then attributes sorted by (namespace
//!   URI, local name); none of ours are namespaced, so by local name;
//! - every element has a start and an end tag (no `<x/>`);
//! - no whitespace between elements, no XML declaration;
//! - text escapes `&`, `<`, `>`, CR; attribute values escape `&`, `<`,
//!   `"`, TAB, LF, CR and use double quotes.

use std::fmt::Write as _;

/// Escapes character data as C14N does.
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value as C14N does.
pub fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out
}

/// One element being written: `open` with its namespace declaration (if
/// this element must carry one) and attributes, which the caller passes
/// already in canonical order.
pub struct Element<'a> {
    name: &'a str,
}

impl<'a> Element<'a> {
    /// Writes the start tag. `ns` is `(prefix, uri)` when the element
    /// declares its namespace; `attrs` must be sorted by local name.
    pub fn open(
        out: &mut String,
        name: &'a str,
        ns: Option<(&str, &str)>,
        attrs: &[(&str, &str)],
    ) -> Element<'a> {
        debug_assert!(
            attrs.windows(2).all(|w| w[0].0 < w[1].0),
            "attributes must be in canonical order"
        );
        out.push('<');
        out.push_str(name);
        if let Some((prefix, uri)) = ns {
            let _ = write!(out, " xmlns:{prefix}=\"{}\"", attr(uri));
        }
        for (k, v) in attrs {
            let _ = write!(out, " {k}=\"{}\"", attr(v));
        }
        out.push('>');
        Element { name }
    }

    /// Writes the end tag.
    pub fn close(self, out: &mut String) {
        let _ = write!(out, "</{}>", self.name);
    }
}

/// `<name …>text</name>` in one call.
pub fn leaf(
    out: &mut String,
    name: &str,
    ns: Option<(&str, &str)>,
    attrs: &[(&str, &str)],
    content: &str,
) {
    let e = Element::open(out, name, ns, attrs);
    out.push_str(&text(content));
    e.close(out);
}

/// Is `s` usable as an `Id` and in a same-document reference `#s`: an
/// ASCII NCName (letter or `_` first, then letters, digits, `.`, `-`,
/// `_`), at most 128 characters.
pub fn is_ncname(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attribute_escapes_follow_c14n() {
        assert_eq!(text("a&b<c>d\re\"f\n"), "a&amp;b&lt;c&gt;d&#xD;e\"f\n");
        assert_eq!(
            attr("a&b<c>d\"e\tf\ng\r"),
            "a&amp;b&lt;c>d&quot;e&#x9;f&#xA;g&#xD;"
        );
    }

    #[test]
    fn empty_elements_get_an_end_tag_and_declarations_come_first() {
        let mut s = String::new();
        leaf(
            &mut s,
            "ds:DigestMethod",
            Some(("ds", "http://www.w3.org/2000/09/xmldsig#")),
            &[("Algorithm", "x")],
            "",
        );
        assert_eq!(
            s,
            r#"<ds:DigestMethod xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Algorithm="x"></ds:DigestMethod>"#
        );
    }

    #[test]
    fn ids_must_be_ascii_ncnames() {
        for ok in ["PrescriptionDocument", "_a", "rx-1.2_3"] {
            assert!(is_ncname(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "a b",
            "a\"b",
            "a:b",
            "#a",
            "ア",
            &"a".repeat(129),
        ] {
            assert!(!is_ncname(bad), "{bad}");
        }
    }
}
