//! The QR payload: what an EHR screen (login) or an operator (enrollment) shows
//! and the phone scans.
//!
//! A payload is an `https` URL so that the phone's system camera can open the
//! app through Android App Links / iOS Universal Links:
//!
//! ```text
//! https://shomei.example.jp/shomei#EQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fav2GwA
//! ```
//!
//! The binary body (kind, version, id, secret, expiry) sits in the URL
//! *fragment*. Browsers never send the fragment to a server, so if the link is
//! opened in a browser instead of the app (app not installed, link opened on a
//! PC) the one-time secret does not reach any server log, proxy or the
//! server's own landing page. The byte layout is normative in docs/protocol.md.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ids::{EnrollmentId, ID_LEN, LoginId, QrSecret};
use crate::origin::Origin;

/// Path of every payload URL; the app registers it for App Links / Universal Links.
pub const PAYLOAD_PATH: &str = "/shomei";
/// Current body format version (high nibble of the first byte).
pub const PAYLOAD_VERSION: u8 = 1;
/// Body length in bytes for version 1: tag, id, secret, big-endian u32 expiry.
pub const BODY_LEN_V1: usize = 1 + ID_LEN + ID_LEN + 4;

const KIND_LOGIN: u8 = 1;
const KIND_ENROLLMENT: u8 = 2;

/// Which kind of code a payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// Daily login QR shown by an EHR terminal.
    Login,
    /// One-time enrollment QR issued by an operator.
    Enrollment,
}

impl std::fmt::Display for PayloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PayloadKind::Login => "login",
            PayloadKind::Enrollment => "enrollment",
        })
    }
}

/// Why a string is not an acceptable payload (or origin).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not a Shomei payload URL at all (no `/shomei#` part); scanners treat it as a foreign code.
    #[error("not a Shomei payload")]
    NotShomei,
    /// The origin part is malformed.
    #[error("bad server origin: {0}")]
    BadOrigin(String),
    /// The origin is not https (http is accepted only for loopback hosts).
    #[error("server origin is not https")]
    InsecureOrigin,
    /// The origin is longer than [`Origin::MAX_LEN`].
    #[error("server origin is {len} bytes, at most {max} allowed")]
    OriginTooLong {
        /// Normalized length.
        len: usize,
        /// [`Origin::MAX_LEN`].
        max: usize,
    },
    /// The text is a valid payload in a spelling other than the canonical one.
    #[error("payload is not in canonical form")]
    NonCanonical,
    /// The body is not strict base64url without padding.
    #[error("payload body is not base64url without padding")]
    BadEncoding,
    /// The body (or an id) has the wrong number of bytes.
    #[error("wrong length: expected {expected} bytes, got {actual}")]
    WrongLength {
        /// Expected byte count.
        expected: usize,
        /// Actual byte count.
        actual: usize,
    },
    /// The body's format version is not one this code understands.
    #[error("unknown payload version {0}")]
    UnknownVersion(u8),
    /// The body's kind nibble is neither login nor enrollment.
    #[error("unknown payload kind {0}")]
    UnknownKind(u8),
    /// A login payload was expected but an enrollment one was given, or vice versa.
    #[error("expected a {expected} code, got a {found} code")]
    WrongKind {
        /// What the caller asked for.
        expected: PayloadKind,
        /// What the payload is.
        found: PayloadKind,
    },
    /// The code's expiry is not after `now`.
    #[error("code expired at {expires_at} (now {now})")]
    Expired {
        /// Expiry in Unix seconds.
        expires_at: u64,
        /// The time the caller checked against.
        now: u64,
    },
}

/// A login QR: "the terminal behind login `login_id` at `origin` asks you to sign in".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPayload {
    /// Server the login lives on.
    pub origin: Origin,
    /// The login request.
    pub login_id: LoginId,
    /// One-time secret proving the scanner saw this QR.
    pub secret: QrSecret,
    /// Unix seconds; the code is valid while `now < expires_at`. Carried as u32 in the
    /// QR (values past 2106 are capped to `u32::MAX` by `to_url`).
    pub expires_at: u64,
}

/// An enrollment QR: a one-time code to register a phone for a practitioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentPayload {
    /// Server to enroll with.
    pub origin: Origin,
    /// The enrollment code's id.
    pub enrollment_id: EnrollmentId,
    /// One-time secret proving the scanner saw this QR.
    pub secret: QrSecret,
    /// Unix seconds; the code is valid while `now < expires_at`.
    pub expires_at: u64,
}

/// Either kind of payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A daily login code.
    Login(LoginPayload),
    /// A one-time enrollment code.
    Enrollment(EnrollmentPayload),
}

fn encode(
    origin: &Origin,
    kind: u8,
    id: &[u8; ID_LEN],
    secret: &QrSecret,
    expires_at: u64,
) -> String {
    let mut body = [0u8; BODY_LEN_V1];
    body[0] = (PAYLOAD_VERSION << 4) | kind;
    body[1..17].copy_from_slice(id);
    body[17..33].copy_from_slice(secret.as_bytes());
    // u32 seconds reach 2106; a later expiry is capped, which only makes the code expire sooner.
    let expires_at = u32::try_from(expires_at).unwrap_or(u32::MAX);
    body[33..37].copy_from_slice(&expires_at.to_be_bytes());
    let out = format!(
        "{}{}#{}",
        origin.as_str(),
        PAYLOAD_PATH,
        URL_SAFE_NO_PAD.encode(body)
    );
    zeroize::Zeroize::zeroize(&mut body);
    out
}

impl LoginPayload {
    /// The payload URL to put in the QR code.
    pub fn to_url(&self) -> String {
        encode(
            &self.origin,
            KIND_LOGIN,
            self.login_id.as_bytes(),
            &self.secret,
            self.expires_at,
        )
    }
    /// Strict parse of a login payload, rejecting it if expired at `now_unix`.
    pub fn parse(s: &str, now_unix: u64) -> Result<LoginPayload, PayloadError> {
        match Payload::parse(s, now_unix)? {
            Payload::Login(p) => Ok(p),
            Payload::Enrollment(_) => Err(PayloadError::WrongKind {
                expected: PayloadKind::Login,
                found: PayloadKind::Enrollment,
            }),
        }
    }
}

impl EnrollmentPayload {
    /// The payload URL to put in the QR code.
    pub fn to_url(&self) -> String {
        encode(
            &self.origin,
            KIND_ENROLLMENT,
            self.enrollment_id.as_bytes(),
            &self.secret,
            self.expires_at,
        )
    }
    /// Strict parse of an enrollment payload, rejecting it if expired at `now_unix`.
    pub fn parse(s: &str, now_unix: u64) -> Result<EnrollmentPayload, PayloadError> {
        match Payload::parse(s, now_unix)? {
            Payload::Enrollment(p) => Ok(p),
            Payload::Login(_) => Err(PayloadError::WrongKind {
                expected: PayloadKind::Enrollment,
                found: PayloadKind::Login,
            }),
        }
    }
}

impl Payload {
    /// Strict parse; also rejects a code whose expiry is not after `now_unix`.
    pub fn parse(s: &str, now_unix: u64) -> Result<Payload, PayloadError> {
        let p = Payload::parse_ignoring_expiry(s)?;
        let expires_at = p.expires_at();
        if now_unix >= expires_at {
            return Err(PayloadError::Expired {
                expires_at,
                now: now_unix,
            });
        }
        Ok(p)
    }

    /// Strict parse without the expiry check (scanners use it; the caller checks
    /// expiry against its own clock).
    pub fn parse_ignoring_expiry(s: &str) -> Result<Payload, PayloadError> {
        let marker = format!("{PAYLOAD_PATH}#");
        let at = s.find(&marker).ok_or(PayloadError::NotShomei)?;
        let (origin_text, rest) = s.split_at(at);
        let body_text = &rest[marker.len()..];
        let scheme_ok = |scheme: &str| {
            origin_text
                .get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        };
        if !(scheme_ok("https://") || scheme_ok("http://")) {
            // Something else that happens to contain our path, e.g. a foreign URL scheme.
            // (An upper-case scheme is ours in the wrong spelling: NonCanonical below.)
            return Err(PayloadError::NotShomei);
        }
        let origin = Origin::parse_canonical(origin_text)?;
        let body = URL_SAFE_NO_PAD
            .decode(body_text.as_bytes())
            .map_err(|_| PayloadError::BadEncoding)?;
        let tag = *body.first().ok_or(PayloadError::WrongLength {
            expected: BODY_LEN_V1,
            actual: 0,
        })?;
        let version = tag >> 4;
        if version != PAYLOAD_VERSION {
            return Err(PayloadError::UnknownVersion(version));
        }
        let kind = tag & 0x0f;
        if kind != KIND_LOGIN && kind != KIND_ENROLLMENT {
            return Err(PayloadError::UnknownKind(kind));
        }
        if body.len() != BODY_LEN_V1 {
            return Err(PayloadError::WrongLength {
                expected: BODY_LEN_V1,
                actual: body.len(),
            });
        }
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&body[1..17]);
        let mut secret = [0u8; ID_LEN];
        secret.copy_from_slice(&body[17..33]);
        let secret = QrSecret::from_bytes(secret);
        let mut exp = [0u8; 4];
        exp.copy_from_slice(&body[33..37]);
        let expires_at = u64::from(u32::from_be_bytes(exp));
        let mut body = body;
        zeroize::Zeroize::zeroize(&mut body);
        Ok(if kind == KIND_LOGIN {
            Payload::Login(LoginPayload {
                origin,
                login_id: LoginId(id),
                secret,
                expires_at,
            })
        } else {
            Payload::Enrollment(EnrollmentPayload {
                origin,
                enrollment_id: EnrollmentId(id),
                secret,
                expires_at,
            })
        })
    }

    /// The payload URL to put in the QR code.
    pub fn to_url(&self) -> String {
        match self {
            Payload::Login(p) => p.to_url(),
            Payload::Enrollment(p) => p.to_url(),
        }
    }

    /// Which kind of code this is.
    pub fn kind(&self) -> PayloadKind {
        match self {
            Payload::Login(_) => PayloadKind::Login,
            Payload::Enrollment(_) => PayloadKind::Enrollment,
        }
    }

    /// The server the code belongs to.
    pub fn origin(&self) -> &Origin {
        match self {
            Payload::Login(p) => &p.origin,
            Payload::Enrollment(p) => &p.origin,
        }
    }

    /// Expiry in Unix seconds.
    pub fn expires_at(&self) -> u64 {
        match self {
            Payload::Login(p) => p.expires_at,
            Payload::Enrollment(p) => p.expires_at,
        }
    }
}

impl std::str::FromStr for Payload {
    type Err = PayloadError;
    /// Same as [`Payload::parse_ignoring_expiry`]: `FromStr` has no clock.
    fn from_str(s: &str) -> Result<Self, PayloadError> {
        Payload::parse_ignoring_expiry(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: u64 = 1_795_000_000;

    fn login(origin: &str) -> LoginPayload {
        LoginPayload {
            origin: Origin::parse(origin).unwrap(),
            login_id: LoginId([0x11; 16]),
            secret: QrSecret::from_bytes([0x22; 16]),
            expires_at: NOW + 120,
        }
    }

    fn enrollment() -> EnrollmentPayload {
        EnrollmentPayload {
            origin: Origin::parse("https://shomei.example.jp").unwrap(),
            enrollment_id: EnrollmentId([0x33; 16]),
            secret: QrSecret::from_bytes([0x44; 16]),
            expires_at: NOW + 86_400,
        }
    }

    /// Re-encodes a valid login URL's body after `f` changed its bytes.
    fn with_body(url: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
        let (head, body) = url.split_once('#').unwrap();
        let mut b = URL_SAFE_NO_PAD.decode(body).unwrap();
        f(&mut b);
        format!("{head}#{}", URL_SAFE_NO_PAD.encode(b))
    }

    #[test]
    fn login_payload_round_trips() {
        let p = login("https://shomei.example.jp");
        let url = p.to_url();
        assert!(url.starts_with("https://shomei.example.jp/shomei#"));
        assert_eq!(LoginPayload::parse(&url, NOW).unwrap(), p);
        assert_eq!(Payload::parse(&url, NOW).unwrap(), Payload::Login(p));
    }

    #[test]
    fn enrollment_payload_round_trips() {
        let p = enrollment();
        let url = p.to_url();
        assert_eq!(EnrollmentPayload::parse(&url, NOW).unwrap(), p);
        assert_eq!(
            Payload::parse(&url, NOW).unwrap().kind(),
            PayloadKind::Enrollment
        );
    }

    #[test]
    fn loopback_http_payload_round_trips() {
        let p = login("http://127.0.0.1:38080");
        assert_eq!(LoginPayload::parse(&p.to_url(), NOW).unwrap(), p);
    }

    #[test]
    fn secret_travels_only_in_the_fragment() {
        let p = login("https://shomei.example.jp");
        let url = url::Url::parse(&p.to_url()).unwrap();
        let fragment = url.fragment().unwrap();
        let body = URL_SAFE_NO_PAD.decode(fragment).unwrap();
        assert_eq!(&body[17..33], p.secret.as_bytes());
        assert_eq!(url.path(), PAYLOAD_PATH);
        assert!(url.query().is_none());
    }

    #[test]
    fn expired_code_is_rejected() {
        let p = login("https://shomei.example.jp");
        let url = p.to_url();
        assert_eq!(
            Payload::parse(&url, p.expires_at),
            Err(PayloadError::Expired {
                expires_at: p.expires_at,
                now: p.expires_at
            })
        );
        assert!(Payload::parse(&url, p.expires_at - 1).is_ok());
        assert!(Payload::parse_ignoring_expiry(&url).is_ok());
    }

    #[test]
    fn wrong_kind_is_rejected() {
        let url = login("https://shomei.example.jp").to_url();
        assert_eq!(
            EnrollmentPayload::parse(&url, NOW),
            Err(PayloadError::WrongKind {
                expected: PayloadKind::Enrollment,
                found: PayloadKind::Login
            })
        );
        assert_eq!(
            LoginPayload::parse(&enrollment().to_url(), NOW),
            Err(PayloadError::WrongKind {
                expected: PayloadKind::Login,
                found: PayloadKind::Enrollment
            })
        );
    }

    #[test]
    fn unknown_version_is_rejected() {
        let url = with_body(&login("https://a.example").to_url(), |b| b[0] = 0x21);
        assert_eq!(
            Payload::parse(&url, NOW),
            Err(PayloadError::UnknownVersion(2))
        );
        let url = with_body(&login("https://a.example").to_url(), |b| b[0] = 0x01);
        assert_eq!(
            Payload::parse(&url, NOW),
            Err(PayloadError::UnknownVersion(0))
        );
    }

    #[test]
    fn unknown_kind_is_rejected() {
        let url = with_body(&login("https://a.example").to_url(), |b| b[0] = 0x13);
        assert_eq!(Payload::parse(&url, NOW), Err(PayloadError::UnknownKind(3)));
    }

    #[test]
    fn wrong_length_is_rejected() {
        let long = with_body(&login("https://a.example").to_url(), |b| b.push(0));
        assert_eq!(
            Payload::parse(&long, NOW),
            Err(PayloadError::WrongLength {
                expected: BODY_LEN_V1,
                actual: BODY_LEN_V1 + 1
            })
        );
        let short = with_body(&login("https://a.example").to_url(), |b| b.truncate(36));
        assert_eq!(
            Payload::parse(&short, NOW),
            Err(PayloadError::WrongLength {
                expected: BODY_LEN_V1,
                actual: 36
            })
        );
        assert_eq!(
            Payload::parse("https://a.example/shomei#", NOW),
            Err(PayloadError::WrongLength {
                expected: BODY_LEN_V1,
                actual: 0
            })
        );
    }

    #[test]
    fn bad_encoding_is_rejected() {
        let url = login("https://a.example").to_url();
        for bad in [
            format!("{url}="),
            url.replace('#', "#+"),
            format!("{url}*"),
            format!("{url} "),
        ] {
            assert_eq!(
                Payload::parse(&bad, NOW),
                Err(PayloadError::BadEncoding),
                "{bad}"
            );
        }
    }

    #[test]
    fn non_https_origin_is_rejected() {
        let url = login("https://shomei.example.jp")
            .to_url()
            .replacen("https://", "http://", 1);
        assert_eq!(Payload::parse(&url, NOW), Err(PayloadError::InsecureOrigin));
    }

    #[test]
    fn non_canonical_origin_is_rejected() {
        let url = login("https://shomei.example.jp").to_url();
        for bad in [
            url.replacen("shomei.example.jp", "SHOMEI.example.jp", 1),
            url.replacen("shomei.example.jp", "shomei.example.jp:443", 1),
            url.replacen("/shomei#", "//shomei#", 1),
            url.replacen("https://", "HTTPS://", 1),
        ] {
            assert_eq!(
                Payload::parse(&bad, NOW),
                Err(PayloadError::NonCanonical),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_origin_is_rejected() {
        let url = login("https://shomei.example.jp").to_url();
        let bad = url.replacen("https://", "https://user@", 1);
        assert!(matches!(
            Payload::parse(&bad, NOW),
            Err(PayloadError::BadOrigin(_))
        ));
        let bad = url.replacen("shomei.example.jp", "shomei.example.jp/extra", 1);
        assert!(matches!(
            Payload::parse(&bad, NOW),
            Err(PayloadError::BadOrigin(_))
        ));
    }

    #[test]
    fn overlong_origin_in_payload_is_rejected() {
        let url = login("https://a.example").to_url();
        let host = format!("{}.example", "a".repeat(Origin::MAX_LEN));
        let bad = url.replacen("a.example", &host, 1);
        assert!(matches!(
            Payload::parse(&bad, NOW),
            Err(PayloadError::OriginTooLong {
                max: Origin::MAX_LEN,
                ..
            })
        ));
    }

    #[test]
    fn foreign_codes_are_not_shomei() {
        for s in [
            "",
            "hello",
            "https://example.com/",
            "WIFI:S:x;;",
            "https://a.example/shomei?x#y",
            "mailto:x/shomei#AAAA",
        ] {
            assert_eq!(
                Payload::parse_ignoring_expiry(s),
                Err(PayloadError::NotShomei),
                "{s}"
            );
        }
    }

    fn qr_version(data: &str) -> i16 {
        let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
            .unwrap();
        match code.version() {
            qrcode::Version::Normal(v) => v,
            qrcode::Version::Micro(_) => panic!("unexpected micro QR"),
        }
    }

    /// The longest allowed origin, with a port so that the QR encoder's
    /// segment optimizer sees digit runs (which can cost it extra bits).
    fn longest_origin() -> Origin {
        let port = ":65535";
        let host_len = Origin::MAX_LEN - "https://".len() - port.len();
        let host: String = (0..host_len)
            .map(|i| if i % 20 == 19 { '.' } else { 'w' })
            .collect();
        let o = Origin::parse(&format!("https://{host}{port}")).unwrap();
        assert_eq!(o.as_str().len(), Origin::MAX_LEN);
        o
    }

    // The property "every payload with the longest origin fits version 7"
    // is checked where the symbol is made: server/src/qr.rs (the crate's
    // segment optimizer alone can need version 8 for some ids).
    #[test]
    fn longest_origin_fits_qr_version_7_at_level_m() {
        let p = LoginPayload {
            origin: longest_origin(),
            ..login("https://a.example")
        };
        let url = p.to_url();
        let v = qr_version(&url);
        assert!(v <= 7, "{} chars need QR version {v}", url.len());
        // Readable from pixels, not just small enough.
        assert_eq!(render_and_decode(&url), url);
    }

    /// Renders to pixels and decodes with rqrr, proving the code is readable, not just sized.
    fn render_and_decode(data: &str) -> String {
        let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
            .unwrap();
        let w = code.width();
        let scale = 4;
        let quiet = 4;
        let size = (w + 2 * quiet) * scale;
        let colors = code.to_colors();
        let img = image::GrayImage::from_fn(size as u32, size as u32, |x, y| {
            let (mx, my) = (x as usize / scale, y as usize / scale);
            let dark = mx >= quiet
                && my >= quiet
                && mx < w + quiet
                && my < w + quiet
                && colors[(my - quiet) * w + (mx - quiet)] == qrcode::Color::Dark;
            image::Luma([if dark { 0 } else { 255 }])
        });
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1);
        grids[0].decode().unwrap().1
    }

    #[test]
    fn expiry_after_2106_is_capped_not_wrapped() {
        let p = LoginPayload {
            expires_at: u64::MAX,
            ..login("https://a.example")
        };
        let back = Payload::parse_ignoring_expiry(&p.to_url()).unwrap();
        assert_eq!(back.expires_at(), u64::from(u32::MAX));
    }

    #[test]
    fn typical_origin_needs_at_most_version_6() {
        let url = login("https://shomei.hospital.example.jp").to_url();
        assert!(qr_version(&url) <= 6, "{}", url.len());
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_arbitrary_strings(s in ".*") {
            let _ = Payload::parse(&s, NOW);
        }

        #[test]
        fn parse_never_panics_on_url_like_strings(s in "(https?://)?[a-zA-Z0-9.:\\[\\]@%-]{0,40}(/shomei)?#?[A-Za-z0-9_=+/-]{0,80}") {
            let _ = Payload::parse(&s, NOW);
        }

        #[test]
        fn parse_never_panics_on_mutated_payloads(pos in 0usize..200, byte in any::<u8>(), cut in 0usize..200, del in any::<bool>()) {
            let mut b = login("https://shomei.example.jp").to_url().into_bytes();
            let i = pos % b.len();
            if del { b.remove(i); } else { b[i] = byte; }
            if cut % 4 == 0 && cut < b.len() { b.truncate(cut); }
            let s = String::from_utf8_lossy(&b);
            if let Ok(p) = Payload::parse_ignoring_expiry(&s) {
                // Anything accepted must be exactly canonical.
                prop_assert_eq!(p.to_url(), s.to_string());
            }
        }

        #[test]
        fn body_mutations_never_panic_and_accepted_ones_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..60)) {
            let s = format!("https://shomei.example.jp/shomei#{}", URL_SAFE_NO_PAD.encode(&bytes));
            if let Ok(p) = Payload::parse_ignoring_expiry(&s) {
                prop_assert_eq!(p.to_url(), s);
            }
        }
    }
}
