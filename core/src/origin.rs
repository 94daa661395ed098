//! The server origin a phone is enrolled with.
//!
//! The origin is what ties a QR code, an enrollment and every signature to one
//! server: a phone refuses a login QR naming any other origin, and the origin is
//! bound into every signed message so nothing signed for one server can be
//! replayed at another. It is kept in one normalized text form so that byte
//! comparison is meaningful.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::payload::PayloadError;

/// A normalized server origin: `https://host[:port]`, lower-case host, no
/// default port, no path, query, fragment or user info. `http` is accepted only
/// for loopback hosts (127.0.0.0/8, `::1`, `localhost`) so that tests and local
/// development work without TLS while no real deployment can downgrade.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin(String);

impl Origin {
    /// Longest normalized origin accepted, in bytes. A payload of an origin this
    /// long is 118 characters and fits a QR code of version 7 at error
    /// correction level M (122 bytes) with room for encoders whose segment
    /// optimizer is not perfect (tested in `payload`).
    pub const MAX_LEN: usize = 60;

    /// Parses and normalizes. A trailing `/` is tolerated (config files often
    /// have one); anything else beyond scheme, host and port is rejected.
    pub fn parse(s: &str) -> Result<Origin, PayloadError> {
        let url = url::Url::parse(s).map_err(|e| PayloadError::BadOrigin(e.to_string()))?;
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(PayloadError::InsecureOrigin);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(PayloadError::BadOrigin("user info is not allowed".into()));
        }
        if url.path() != "/" && !url.path().is_empty() {
            return Err(PayloadError::BadOrigin("a path is not allowed".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(PayloadError::BadOrigin(
                "a query or fragment is not allowed".into(),
            ));
        }
        let host = url
            .host()
            .ok_or_else(|| PayloadError::BadOrigin("missing host".into()))?;
        if scheme == "http" && !is_loopback(&host) {
            return Err(PayloadError::InsecureOrigin);
        }
        let serialized = url.origin().ascii_serialization();
        if serialized.len() > Self::MAX_LEN {
            return Err(PayloadError::OriginTooLong {
                len: serialized.len(),
                max: Self::MAX_LEN,
            });
        }
        Ok(Origin(serialized))
    }

    /// Parses and additionally requires `s` to be exactly the normalized form.
    /// Used for origins inside QR payloads and signed data, where two spellings
    /// of one origin must not exist.
    pub fn parse_canonical(s: &str) -> Result<Origin, PayloadError> {
        let o = Origin::parse(s)?;
        if o.0 != s {
            return Err(PayloadError::NonCanonical);
        }
        Ok(o)
    }

    /// The normalized text, e.g. `https://shomei.example.jp`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for `http://` loopback origins (development and tests only).
    pub fn is_loopback_http(&self) -> bool {
        self.0.starts_with("http://")
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Origin({})", self.0)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Origin {
    type Err = PayloadError;
    fn from_str(s: &str) -> Result<Self, PayloadError> {
        Origin::parse(s)
    }
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Origin::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_origin_is_normalized() {
        let o = Origin::parse("HTTPS://Shomei.Example.JP:443/").unwrap();
        assert_eq!(o.as_str(), "https://shomei.example.jp");
    }

    #[test]
    fn non_default_port_is_kept() {
        assert_eq!(
            Origin::parse("https://a.example:8443").unwrap().as_str(),
            "https://a.example:8443"
        );
    }

    #[test]
    fn http_is_rejected_for_public_hosts() {
        assert_eq!(
            Origin::parse("http://shomei.example.jp"),
            Err(PayloadError::InsecureOrigin)
        );
    }

    #[test]
    fn http_is_allowed_for_loopback() {
        for s in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://[::1]:1",
            "http://localhost:3000",
        ] {
            let o = Origin::parse(s).unwrap();
            assert!(o.is_loopback_http(), "{s}");
        }
    }

    #[test]
    fn other_schemes_are_insecure() {
        assert_eq!(
            Origin::parse("ftp://a.example"),
            Err(PayloadError::InsecureOrigin)
        );
    }

    #[test]
    fn path_query_userinfo_are_rejected() {
        for s in [
            "https://a.example/x",
            "https://a.example/?q",
            "https://a.example/#f",
            "https://u:p@a.example",
            "not a url",
        ] {
            assert!(
                matches!(Origin::parse(s), Err(PayloadError::BadOrigin(_))),
                "{s}"
            );
        }
    }

    #[test]
    fn overlong_origin_is_rejected() {
        let host = format!("{}.example", "a".repeat(Origin::MAX_LEN));
        assert!(matches!(
            Origin::parse(&format!("https://{host}")),
            Err(PayloadError::OriginTooLong { .. })
        ));
    }

    #[test]
    fn canonical_parse_rejects_other_spellings() {
        assert_eq!(
            Origin::parse_canonical("https://A.example"),
            Err(PayloadError::NonCanonical)
        );
        assert!(Origin::parse_canonical("https://a.example").is_ok());
    }
}
