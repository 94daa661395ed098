//! Set-up shared by the flows: an operator registering a clinic, enrolling phones, and the
//! morning login; plus the checks every flow ends with (signatures verify, audit verifies).

use std::path::PathBuf;

use shomei_tests::{KeyStoreKind, Phone};

use crate::server::{Server, Store, field};
use crate::terminal::{DeviceAuthorization, Terminal, Token};

/// The desktop phone's key store for in-process tests: process memory, so parallel tests and
/// CI need no kernel keyring and leave nothing behind.
pub fn phone_keystore() {
    shomei_tests::keystore::install(KeyStoreKind::Memory, std::path::Path::new(".")).expect("memory key store");
}

/// What the operator registered: one facility with a terminal and a practitioner with a
/// signing credential and an enrollment code.
pub struct Clinic {
    pub server: Server,
    pub facility_id: String,
    pub terminal: Terminal,
    pub practitioner_id: String,
    pub credential_id: String,
    /// Kept so phone state dirs outlive the phones using them.
    _dirs: Vec<tempfile::TempDir>,
}

/// An enrollment code as the operator hands it over: the QR (as PNG file) and the password.
pub struct EnrollmentCode {
    pub payload_url: String,
    pub png: PathBuf,
    pub activation_password: String,
}

impl Clinic {
    pub fn open() -> Clinic {
        Self::open_on(Store::Sqlite)
    }

    pub fn open_on(store: Store) -> Clinic {
        Self::open_with(Server::start_with(store))
    }

    /// A clinic whose server issues logins that expire after `seconds`.
    pub fn open_with_login_ttl(store: Store, seconds: u32) -> Clinic {
        let toml = format!("[policy]\nlogin_ttl_s = {seconds}\n");
        Self::open_with(Server::start_configured(store, Vec::new(), Some(&toml)))
    }

    /// A clinic whose server runs with this `shomei.toml`.
    pub fn open_with_config(store: Store, toml: &str) -> Clinic {
        Self::open_with(Server::start_configured(store, Vec::new(), Some(toml)))
    }

    /// A clinic on a server the caller started (e.g. with debug logging).
    pub fn open_with(server: Server) -> Clinic {
        phone_keystore();
        let facility = server.admin(&["facility", "create", "--name", "Sakura Clinic"]);
        let facility_id = field(&facility, &["id", "facility_id"]);
        let terminal = register_terminal(&server, &facility_id, "Reception PC 1");
        let practitioner_id = register_practitioner(&server, &facility_id, "Dr. Hanako Sato");
        let credential = server.admin(&["credential", "generate", "--practitioner", &practitioner_id]);
        let credential_id = field(&credential, &["credential_id", "id"]);
        Clinic { server, facility_id, terminal, practitioner_id, credential_id, _dirs: Vec::new() }
    }

    /// Registers another terminal at the same facility.
    pub fn another_terminal(&self, name: &str) -> Terminal {
        register_terminal(&self.server, &self.facility_id, name)
    }

    /// Issues an enrollment code for a practitioner, QR written as PNG into the data dir.
    pub fn enrollment_code(&self, practitioner_id: &str) -> EnrollmentCode {
        let png = self.server.data_dir.join(format!("enroll-{}.png", uuid::Uuid::new_v4()));
        let png_arg = png.to_string_lossy().to_string();
        let v = self.server.admin(&["enrollment", "create", "--practitioner", practitioner_id, "--png", &png_arg]);
        EnrollmentCode {
            payload_url: field(&v, &["payload_url", "payload", "url"]),
            png,
            activation_password: field(&v, &["activation_password", "password"]),
        }
    }

    /// A fresh desktop phone (own state dir, own device key), not yet enrolled.
    pub fn new_phone(&mut self) -> Phone {
        let dir = tempfile::Builder::new().prefix("shomei-phone-").tempdir().expect("phone dir");
        let phone = Phone::open(dir.path()).expect("open phone");
        self._dirs.push(dir);
        phone
    }

    /// A phone enrolled for `practitioner_id` by scanning the enrollment QR from its PNG.
    pub async fn enrolled_phone(&mut self, practitioner_id: &str) -> Phone {
        let code = self.enrollment_code(practitioner_id);
        let mut phone = self.new_phone();
        phone
            .enroll(&code.png.to_string_lossy(), &code.activation_password, "Sato's desktop phone")
            .await
            .expect("enroll by scanning the enrollment QR");
        phone
    }

    /// The morning: terminal starts a login, phone decodes the QR PNG from pixels, sees the
    /// context, and approves with the number the terminal shows.
    pub async fn morning_login(&self, phone: &mut Phone) -> (DeviceAuthorization, Token) {
        let auth = self.terminal.start_login().await;
        scan_terminal_qr(&self.terminal, &auth, phone).await;
        let response = phone.approve(auth.match_number).await.expect("approve");
        assert_eq!(format!("{:?}", response.outcome).to_lowercase(), "approved");
        assert_eq!(self.terminal.wait(&auth.login_id, 30).await, "approved");
        let token = self.terminal.token(&auth.device_code).await.expect("token after approval");
        (auth, token)
    }

    pub fn device_id(phone: &Phone) -> String {
        phone.device_id().expect("enrolled").to_string()
    }

    /// `shomei admin audit verify` succeeds, and `audit export` as JSON text.
    pub fn audit_verified_export(&self) -> String {
        self.server.admin(&["audit", "verify"]);
        self.server.admin(&["audit", "export"]).to_string()
    }
}

pub fn register_terminal(server: &Server, facility_id: &str, name: &str) -> Terminal {
    let v = server.admin(&["terminal", "create", "--facility", facility_id, "--name", name]);
    Terminal::new(&server.url, &field(&v, &["client_id"]), &field(&v, &["client_secret"]))
}

pub fn register_practitioner(server: &Server, facility_id: &str, name: &str) -> String {
    let v = server.admin(&["practitioner", "create", "--facility", facility_id, "--name", name, "--role", "doctor"]);
    field(&v, &["id", "practitioner_id"])
}

/// The phone points its camera at the terminal's screen: the QR PNG is fetched over HTTP and
/// decoded from its pixels, and the phone fetches the login's context.
pub async fn scan_terminal_qr(terminal: &Terminal, auth: &DeviceAuthorization, phone: &mut Phone) -> shomei_core::api::LoginContext {
    let png = terminal.qr_png(&auth.login_id).await;
    let frame = image::load_from_memory(&png).expect("QR PNG decodes as an image").to_luma8();
    let context = phone.scan_image(&frame).await.expect("scan the login QR and fetch its context");
    assert!(
        context.number_choices.contains(&auth.match_number),
        "the EHR's number {} is among the phone's choices {:?}",
        auth.match_number,
        context.number_choices
    );
    context
}

/// Prescriptions of a working day: distinct documents whose SHA-256 the EHR sends.
pub fn prescriptions(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| format!("<Prescription id=\"rx-{i}\"><Drug code=\"6{i:08}\">amlodipine 5mg</Drug><Days>{}</Days></Prescription>", 7 + i).into_bytes())
        .collect()
}

pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().to_vec()
}

/// The signature algorithm OID a credential's certificate calls for.
pub fn sign_algo_for(cert_der: &[u8]) -> &'static str {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).expect("certificate parses");
    match cert.public_key().algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => crate::terminal::RSA_SHA256_OID,
        "1.2.840.10045.2.1" => crate::terminal::ECDSA_SHA256_OID,
        other => panic!("unexpected key algorithm {other}"),
    }
}

/// Verifies `signature` over `document` with the certificate's public key (ring), i.e. the
/// server signed exactly SHA-256(document) with the credential's key.
pub fn verify_with_certificate(cert_der: &[u8], document: &[u8], signature: &[u8]) -> Result<(), ring::error::Unspecified> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).expect("certificate parses");
    let spki = cert.public_key();
    let key = spki.subject_public_key.data.as_ref();
    let alg: &dyn ring::signature::VerificationAlgorithm = match spki.algorithm.algorithm.to_id_string().as_str() {
        "1.2.840.113549.1.1.1" => &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        "1.2.840.10045.2.1" => &ring::signature::ECDSA_P256_SHA256_ASN1,
        other => panic!("unexpected key algorithm {other}"),
    };
    ring::signature::UnparsedPublicKey::new(alg, key).verify(document, signature)
}

/// Signs a batch of prescriptions and checks each signature against the certificate.
pub async fn sign_and_verify(clinic: &Clinic, terminal: &Terminal, access_token: &str, docs: &[Vec<u8>]) {
    let cert = terminal.credential_certificate(access_token, &clinic.credential_id).await.expect("credentials/info");
    let algo = sign_algo_for(&cert);
    let digests: Vec<Vec<u8>> = docs.iter().map(|d| sha256(d)).collect();
    let signatures = terminal.sign_hash(access_token, &clinic.credential_id, &digests, algo).await.expect("signHash");
    assert_eq!(signatures.len(), docs.len(), "one signature per hash");
    for (i, (doc, sig)) in docs.iter().zip(&signatures).enumerate() {
        verify_with_certificate(&cert, doc, sig).unwrap_or_else(|_| panic!("signature {i} does not verify against the certificate"));
    }
}
