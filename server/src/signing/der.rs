//! Just enough DER to write and read the hcRole extension by hand: the
//! structure is small and fixed, and a general ASN.1 library would hide the
//! exact bytes that HPKI verifiers look for.

/// Encode one tag-length-value with a definite, minimal length.
pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Read one TLV from the front of `input`: (tag, content, rest).
/// Only single-byte tags and lengths up to 4 bytes are accepted; indefinite
/// or non-minimal lengths are refused, as DER demands.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n || rest[0] == 0 {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        if len < 0x80 {
            return None;
        }
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// Read one TLV that must have tag `tag` and must be the whole of `input`.
pub(crate) fn expect_only(input: &[u8], tag: u8) -> Option<&[u8]> {
    match read_tlv(input)? {
        (t, content, []) if t == tag => Some(content),
        _ => None,
    }
}

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const SET: u8 = 0x31;
pub(crate) const OID: u8 = 0x06;
pub(crate) const UTF8_STRING: u8 = 0x0c;

/// Context-specific, constructed tag `[n]` (explicit tagging).
pub(crate) const fn context(n: u8) -> u8 {
    0xa0 | n
}
