//! The PKCS#11 signing backend on a real SoftHSM2 token: keys generated in
//! the token and never exported, signHash over HTTP verified with the
//! certificate's public key, signDoc XAdES/CMS verified by xmlsec1 and
//! openssl, and every refusal (wrong PIN, loose PIN file, missing module or
//! token, key gone from the token, a certificate for another key).
//!
//! A PKCS#11 library is initialised once per process and SoftHSM2 reads its
//! config (`SOFTHSM2_CONF`) then, so this test process uses one temporary
//! SoftHSM2 directory; every test creates its own token in it (its own
//! label, SO PIN and user PIN) through C_InitToken, so tests stay
//! independent. The startup refusals through the `shomei` binary run with
//! a config and token directory of their own.
//!
//! Without SoftHSM2 the tests skip loudly; under CI (`CI=true`) they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeInfo, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shomei_server::config::ServeConfig;
use shomei_server::signing::{Pkcs11Config, TokenKeyRef};

use crate::common::{Env, World, assert_problem, std64};
use crate::signdoc::{
    ECDSA_SHA256_OID, RSA_SHA256_OID, assembled, check_xades_properties, cms_entry, now_s,
    openssl_cms_verify, prescription_element, sha256, sign_doc, tool, xades_entry, xmlsec1_verify,
};

const MODULE_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
}

/// The SoftHSM2 module, or None after a loud skip line (never under CI).
fn softhsm_module() -> Option<PathBuf> {
    if let Some(p) = MODULE_PATHS.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(p);
    }
    if under_ci() {
        panic!("SoftHSM2 (libsofthsm2.so) is required under CI (scripts/test installs softhsm2)");
    }
    eprintln!(
        "*** SKIPPED: SoftHSM2 not installed (apt-get install softhsm2); the PKCS#11 test did not run ***"
    );
    None
}

/// `softhsm2.conf` with its own token directory under `dir`.
fn write_softhsm_conf(dir: &Path) -> PathBuf {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens.display())).unwrap();
    conf
}

/// This process's SoftHSM2: its config set before the library is first
/// initialised here, the module loaded and initialised.
struct SoftHsm {
    module: PathBuf,
    ctx: Pkcs11,
}

fn softhsm() -> Option<&'static SoftHsm> {
    static HSM: OnceLock<Option<SoftHsm>> = OnceLock::new();
    HSM.get_or_init(|| {
        let module = softhsm_module()?;
        let dir = Box::leak(Box::new(tempfile::tempdir().unwrap()));
        let conf = write_softhsm_conf(dir.path());
        // SAFETY: set once, before this process first initialises SoftHSM2
        // (which reads it); Rust's own env reads take the same lock.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        let ctx = Pkcs11::new(&module).expect("load libsofthsm2");
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        Some(SoftHsm { module, ctx })
    })
    .as_ref()
}

/// A fresh token of this test: label, user PIN, and the PIN file (0600).
struct Token {
    label: String,
    pin: String,
    pin_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl SoftHsm {
    /// C_InitToken on the free slot (SoftHSM2 always keeps one), then the
    /// user PIN. Serialised: two tests must not take the same free slot.
    fn new_token(&self) -> Token {
        static INIT: Mutex<()> = Mutex::new(());
        let _one = INIT.lock().unwrap_or_else(|p| p.into_inner());
        let label = format!(
            "shomei-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        let pin = format!("{:06}", rand_u32() % 1_000_000);
        let so_pin = AuthPin::from(format!("so-{}", rand_u32()));
        let slot = self
            .ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| !self.ctx.get_token_info(*s).unwrap().token_initialized())
            .expect("SoftHSM2 keeps a free slot");
        self.ctx.init_token(slot, &so_pin, &label).unwrap();
        // The new token may appear on another slot id: find it by label.
        let slot = self.slot_of(&label);
        let s = self.ctx.open_rw_session(slot).unwrap();
        s.login(UserType::So, Some(&so_pin)).unwrap();
        s.init_pin(&AuthPin::from(pin.clone())).unwrap();
        s.logout().unwrap();
        drop(s);
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("hsm-pin");
        write_mode(&pin_file, &format!("{pin}\n"), 0o600);
        Token {
            label,
            pin,
            pin_file,
            _dir: dir,
        }
    }

    fn slot_of(&self, label: &str) -> cryptoki::slot::Slot {
        self.ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                self.ctx
                    .get_token_info(*s)
                    .is_ok_and(|i| i.token_initialized() && i.label().trim_end() == label)
            })
            .unwrap_or_else(|| panic!("token {label} not found"))
    }

    /// A user session of the test itself on `token` (as an auditor would
    /// use the vendor tool).
    fn user_session(&self, token: &Token) -> Session {
        let s = self
            .ctx
            .open_rw_session(self.slot_of(&token.label))
            .unwrap();
        match s.login(UserType::User, Some(&AuthPin::from(token.pin.clone()))) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("login: {e}"),
        }
        s
    }

    fn config(&self, token: &Token) -> Pkcs11Config {
        Pkcs11Config {
            module: self.module.clone(),
            token_label: token.label.clone(),
            pin_file: Some(token.pin_file.clone()),
            pin_env: None,
            sessions: 4,
            session_wait_ms: 5000,
        }
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    u32::from_le_bytes(b)
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A server whose `[pkcs11]` is `p`.
async fn hsm_env(p: Pkcs11Config) -> Env {
    Env::with_config(|cfg: &mut ServeConfig| cfg.pkcs11 = Some(p)).await
}

/// Facility, terminal, practitioner and an HSM credential of `algorithm`
/// (the default key store of a server with a token), enrolled phone, grant.
async fn hsm_world(env: &Env, algorithm: &str) -> (World, String, Value) {
    let mut w = env.world().await;
    let c = env
        .admin(
            "/admin/v1/credentials",
            json!({ "practitioner_id": w.practitioner, "algorithm": algorithm }),
        )
        .await;
    assert_eq!(c["key_store"], "pkcs11", "{c}");
    w.credential = c["id"].as_str().unwrap().to_owned();
    let phone = env.enroll(&w.practitioner).await;
    let token = env.grant(&w.terminal, &phone).await;
    (w, token, c)
}

async fn chain_of(env: &Env, token: &str, w: &World) -> Vec<Vec<u8>> {
    let (s, info) = env
        .csc(
            "credentials/info",
            token,
            &w.terminal,
            json!({ "credentialID": w.credential, "certificates": "chain" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{info}");
    assert_eq!(info["cert"]["status"], "valid");
    info["cert"]["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| STANDARD.decode(c.as_str().unwrap()).unwrap())
        .collect()
}

/// The certificate's SubjectPublicKeyInfo bit string (what ring verifies with).
fn leaf_public_key(leaf: &[u8]) -> Vec<u8> {
    use x509_parser::prelude::FromDer;
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(leaf).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

async fn audit_intact(env: &Env) {
    let report = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["broken_at_seq"], Value::Null, "{report}");
}

async fn sign_hash_verifies(
    algorithm: &str,
    sign_algo: &str,
    verify: &'static dyn ring::signature::VerificationAlgorithm,
) {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, c) = hsm_world(&env, algorithm).await;
    let key_uri = c["key_uri"].as_str().unwrap();
    assert!(
        key_uri.starts_with(&format!("pkcs11:token={};id=", token.label)),
        "{key_uri}"
    );
    let chain = chain_of(&env, &grant, &w).await;
    let public = leaf_public_key(&chain[0]);
    let messages: Vec<Vec<u8>> = (0..3)
        .map(|i| format!("prescription {i} for {algorithm}").into_bytes())
        .collect();
    let hashes: Vec<String> = messages.iter().map(|m| std64(&sha256(m))).collect();
    let (s, v) = env
        .csc("signatures/signHash", &grant, &w.terminal, json!({ "credentialID": w.credential, "hashes": hashes, "hashAlgorithmOID": crate::signdoc::SHA256_OID, "signAlgo": sign_algo }))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sigs = v["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 3);
    for (m, sig) in messages.iter().zip(sigs) {
        let sig = STANDARD.decode(sig.as_str().unwrap()).unwrap();
        ring::signature::UnparsedPublicKey::new(verify, &public)
            .verify(m, &sig)
            .unwrap_or_else(|_| panic!("{algorithm} signature from the token does not verify"));
        let mut other = m.clone();
        other.push(b'!');
        assert!(
            ring::signature::UnparsedPublicKey::new(verify, &public)
                .verify(&other, &sig)
                .is_err()
        );
    }
    audit_intact(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_key_generated_in_the_token_signs_hashes_that_verify_with_its_certificate() {
    sign_hash_verifies(
        "rsa2048",
        RSA_SHA256_OID,
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p256_key_generated_in_the_token_signs_hashes_that_verify_with_its_certificate() {
    sign_hash_verifies(
        "ecdsa-p256",
        ECDSA_SHA256_OID,
        &ring::signature::ECDSA_P256_SHA256_ASN1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_key_is_sensitive_never_extractable_and_the_store_holds_only_its_reference() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, _, c) = hsm_world(&env, "rsa2048").await;
    let key_uri = c["key_uri"].as_str().unwrap().to_owned();
    // The store: the credential's key column is the pkcs11: URI, nothing else.
    let stored = env
        .app()
        .store
        .get_credential(&w.credential)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&*stored.sealed_key, key_uri.as_bytes());
    let key_ref = TokenKeyRef::from_stored(&stored.sealed_key)
        .unwrap()
        .unwrap();
    assert_eq!(key_ref.token_label, token.label);
    assert_eq!(key_ref.id.len(), 16);

    // The token, asked directly by a logged-in user session.
    let s = hsm.user_session(&token);
    let keys = s
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Id(key_ref.id.clone()),
        ])
        .unwrap();
    assert_eq!(keys.len(), 1);
    let info = s
        .get_attribute_info(
            keys[0],
            &[
                AttributeType::PrivateExponent,
                AttributeType::Prime1,
                AttributeType::Value,
            ],
        )
        .unwrap();
    assert!(
        info.iter().all(|i| matches!(
            i,
            AttributeInfo::Sensitive | AttributeInfo::TypeInvalid | AttributeInfo::Unavailable
        )),
        "private key material readable: {info:?}"
    );
    assert!(
        matches!(info[0], AttributeInfo::Sensitive),
        "CKA_PRIVATE_EXPONENT must be sensitive: {info:?}"
    );
    let attrs = s
        .get_attributes(
            keys[0],
            &[
                AttributeType::Sensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Token,
                AttributeType::Local,
                AttributeType::Label,
            ],
        )
        .unwrap();
    for a in &attrs {
        match a {
            Attribute::Sensitive(v) => assert!(*v, "CKA_SENSITIVE"),
            Attribute::Extractable(v) => assert!(!*v, "CKA_EXTRACTABLE"),
            Attribute::NeverExtractable(v) => assert!(*v, "CKA_NEVER_EXTRACTABLE"),
            Attribute::Token(v) => assert!(*v, "CKA_TOKEN"),
            Attribute::Local(v) => assert!(*v, "CKA_LOCAL: generated on the token"),
            Attribute::Label(l) => assert_eq!(
                l,
                w.credential.as_bytes(),
                "CKA_LABEL links the key to its credential"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(attrs.len(), 6, "{attrs:?}");
    // Wrapping it out is refused too: the key is not extractable.
    let wrap_key = s
        .generate_key(
            &cryptoki::mechanism::Mechanism::AesKeyGen,
            &[
                Attribute::ValueLen(32u64.into()),
                Attribute::Wrap(true),
                Attribute::Token(false),
            ],
        )
        .unwrap();
    let wrapped = s.wrap_key(
        &cryptoki::mechanism::Mechanism::AesKeyWrapPad,
        wrap_key,
        keys[0],
    );
    assert!(
        matches!(wrapped, Err(CkError::Pkcs11(RvError::KeyUnextractable, _))),
        "{wrapped:?}"
    );
}

async fn signdoc_world(algorithm: &str) -> Option<(Env, World, String, Vec<Vec<u8>>, Token)> {
    let hsm = softhsm()?;
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, _) = hsm_world(&env, algorithm).await;
    let chain = chain_of(&env, &grant, &w).await;
    Some((env, w, grant, chain, token))
}

async fn xades_from_the_token_verifies_with_xmlsec1(algorithm: &str, sign_algo: &str) {
    let Some((env, w, grant, chain, _token)) = signdoc_world(algorithm).await else {
        return;
    };
    let element = prescription_element("PrescriptionDocument", 7);
    let before = now_s();
    let (s, v) = sign_doc(
        &env,
        &grant,
        &w,
        json!([xades_entry(
            &sha256(element.as_bytes()),
            "PrescriptionDocument",
            sign_algo
        )]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let xml = String::from_utf8(
        STANDARD
            .decode(v["SignatureObject"][0].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    check_xades_properties(&xml, (before, now_s()));
    let Some(xmlsec1) = tool("xmlsec1", &["--version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let doc = assembled(&element, &xml);
    xmlsec1_verify(xmlsec1, dir.path(), &doc, chain.last().unwrap())
        .unwrap_or_else(|e| panic!("xmlsec1 rejects the HSM-signed prescription:\n{e}\n{doc}"));
    let tampered = assembled(&prescription_element("PrescriptionDocument", 8), &xml);
    assert!(
        xmlsec1_verify(xmlsec1, dir.path(), &tampered, chain.last().unwrap()).is_err(),
        "xmlsec1 accepts a changed prescription"
    );
    audit_intact(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xades_rsa_signed_in_the_token_verifies_with_xmlsec1() {
    xades_from_the_token_verifies_with_xmlsec1("rsa2048", RSA_SHA256_OID).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xades_ecdsa_signed_in_the_token_verifies_with_xmlsec1() {
    xades_from_the_token_verifies_with_xmlsec1("ecdsa-p256", ECDSA_SHA256_OID).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cms_signed_in_the_token_verifies_with_openssl() {
    let Some((env, w, grant, chain, _token)) = signdoc_world("rsa2048").await else {
        return;
    };
    let doc = "紹介状: 経過良好".as_bytes().to_vec();
    let (s, v) = sign_doc(
        &env,
        &grant,
        &w,
        json!([cms_entry(&[sha256(&doc)], RSA_SHA256_OID)]),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let der = STANDARD
        .decode(v["SignatureObject"][0].as_str().unwrap())
        .unwrap();
    let Some(openssl) = tool("openssl", &["version"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    openssl_cms_verify(openssl, dir.path(), &der, &doc, chain.last().unwrap())
        .unwrap_or_else(|e| panic!("openssl cms -verify rejects the HSM signature: {e}"));
    let mut changed = doc.clone();
    changed[0] ^= 1;
    assert!(
        openssl_cms_verify(openssl, dir.path(), &der, &changed, chain.last().unwrap()).is_err()
    );
    audit_intact(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_reports_the_token() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let v: Value = env
        .http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "ready", "{v}");
    assert_eq!(v["pkcs11_token"], token.label.as_str(), "{v}");
}

async fn start_err(p: Pkcs11Config) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::config_in(dir.path());
    cfg.pkcs11 = Some(p);
    match shomei_server::run::start(cfg).await {
        Ok(_) => panic!("the server started"),
        Err(e) => {
            // Nothing listens: the data directory has no server.url.
            assert!(!dir.path().join("server.url").exists());
            e.to_string()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_stops_startup_with_pin_incorrect_and_never_shows_the_pin() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let wrong = format!("{}9", token.pin);
    write_mode(&token.pin_file, &wrong, 0o600);
    let msg = start_err(hsm.config(&token)).await;
    assert!(msg.contains("CKR_PIN_INCORRECT"), "{msg}");
    assert!(msg.contains(&token.label), "{msg}");
    assert!(!msg.contains(&wrong), "the PIN is in the message: {msg}");
    // The token is not locked by it: the right PIN still works.
    write_mode(&token.pin_file, &token.pin, 0o600);
    let env = hsm_env(hsm.config(&token)).await;
    hsm_world(&env, "rsa2048").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_file_readable_by_others_or_a_missing_pin_env_stops_startup() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    write_mode(&token.pin_file, &token.pin, 0o644);
    let msg = start_err(hsm.config(&token)).await;
    assert!(
        msg.contains("readable by group or others") && msg.contains("644"),
        "{msg}"
    );
    let mut p = hsm.config(&token);
    p.pin_file = None;
    p.pin_env = Some("SHOMEI_TEST_PIN_THAT_IS_NOT_SET".into());
    let msg = start_err(p).await;
    assert!(
        msg.contains("SHOMEI_TEST_PIN_THAT_IS_NOT_SET is not set"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_module_a_non_pkcs11_library_or_an_unknown_token_label_stops_startup() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let mut p = hsm.config(&token);
    p.module = PathBuf::from("/nonexistent/libvendor-pkcs11.so");
    let msg = start_err(p).await;
    assert!(
        msg.contains("/nonexistent/libvendor-pkcs11.so") && msg.contains("cannot be loaded"),
        "{msg}"
    );

    let not_pkcs11 = std::fs::read_dir("/usr/lib/x86_64-linux-gnu")
        .ok()
        .and_then(|mut d| {
            d.find_map(|e| {
                e.ok().map(|e| e.path()).filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("libz.so"))
                })
            })
        });
    if let Some(lib) = not_pkcs11 {
        let mut p = hsm.config(&token);
        p.module = lib.clone();
        let msg = start_err(p).await;
        assert!(
            msg.contains("cannot be loaded") && msg.contains("C_GetFunctionList"),
            "{msg}"
        );
    }

    let mut p = hsm.config(&token);
    p.token_label = "no-such-token".into();
    let msg = start_err(p).await;
    assert!(
        msg.contains("no PKCS#11 token labelled \"no-such-token\""),
        "{msg}"
    );
    assert!(
        msg.contains(&token.label),
        "the tokens present are listed: {msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_gone_from_the_token_is_refused_and_nothing_is_recorded() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, c) = hsm_world(&env, "rsa2048").await;
    let (s, v) = env
        .sign_one(&grant, &w.terminal, &w.credential, &[1; 32])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let audit_before = env.admin_get("/admin/v1/audit/verify").await;
    // Someone deletes the key object on the token (the vendor tool, a reset).
    let key_ref = TokenKeyRef::from_stored(c["key_uri"].as_str().unwrap().as_bytes())
        .unwrap()
        .unwrap();
    let session = hsm.user_session(&token);
    for h in session
        .find_objects(&[Attribute::Id(key_ref.id.clone())])
        .unwrap()
    {
        session.destroy_object(h).unwrap();
    }
    drop(session);
    let res = env
        .sign_one(&grant, &w.terminal, &w.credential, &[2; 32])
        .await;
    assert_problem(&res, 503, "unavailable");
    assert!(
        res.1["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("not on the PKCS#11 token"),
        "{}",
        res.1
    );
    let audit_after = env.admin_get("/admin/v1/audit/verify").await;
    assert_eq!(audit_after["ok"], true, "{audit_after}");
    assert_eq!(
        audit_before["count"], audit_after["count"],
        "a refused signature is not recorded: {audit_before} {audit_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_a_key_already_on_the_token_is_imported_and_one_for_another_key_is_refused()
 {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let w = env.world().await;
    // Two key pairs made on the token by the operator's own tool.
    let s = hsm.user_session(&token);
    let make = |id: &[u8]| {
        let public = [
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
            Attribute::Verify(true),
            Attribute::ModulusBits(2048u64.into()),
            Attribute::PublicExponent(vec![1, 0, 1]),
        ];
        let private = [
            Attribute::Token(true),
            Attribute::Id(id.to_vec()),
            Attribute::Sign(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ];
        s.generate_key_pair(
            &cryptoki::mechanism::Mechanism::RsaPkcsKeyPairGen,
            &public,
            &private,
        )
        .unwrap();
    };
    make(&[0xa1; 8]);
    make(&[0xb2; 8]);
    // The certificate of key A, issued by a CA outside the server (here a fresh dev CA).
    let modulus = |id: &[u8]| {
        let pubs = s
            .find_objects(&[
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::Id(id.to_vec()),
            ])
            .unwrap();
        let attrs = s
            .get_attributes(
                pubs[0],
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .unwrap();
        let (Attribute::Modulus(n), Attribute::PublicExponent(e)) = (&attrs[0], &attrs[1]) else {
            panic!("{attrs:?}")
        };
        rsa_public_key_der(n, e)
    };
    let ca = shomei_server::signing::DevCa::generate().unwrap();
    let subject = shomei_server::signing::Subject {
        common_name: "Dr HSM".into(),
        role: shomei_server::signing::HcRole::Doctor,
        organization: None,
    };
    let chain = ca
        .issue_for_public_key(
            &subject,
            shomei_server::signing::KeyAlgorithm::Rsa2048,
            &modulus(&[0xa1; 8]),
        )
        .unwrap();
    let pem: String = chain
        .iter()
        .map(|c| {
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                STANDARD.encode(c)
            )
        })
        .collect();
    drop(s);

    // Key B with A's certificate: refused, nothing stored.
    let before = env.admin_get("/admin/v1/credentials").await;
    let res = env.post_json("/admin/v1/credentials/import", Some(&format!("Bearer {}", env.token)), &json!({ "practitioner_id": w.practitioner, "cert_pem": pem, "pkcs11_key_id": hex::encode([0xb2; 8]) })).await;
    assert_problem(&res, 400, "bad_request");
    assert!(
        res.1["detail"]
            .as_str()
            .unwrap()
            .contains("does not belong"),
        "{}",
        res.1
    );
    // An id with no key on the token: refused.
    let res = env.post_json("/admin/v1/credentials/import", Some(&format!("Bearer {}", env.token)), &json!({ "practitioner_id": w.practitioner, "cert_pem": pem, "pkcs11_key_id": "c3c3c3" })).await;
    assert_problem(&res, 400, "bad_request");
    assert!(
        res.1["detail"]
            .as_str()
            .unwrap()
            .contains("not on the PKCS#11 token"),
        "{}",
        res.1
    );
    assert_eq!(env.admin_get("/admin/v1/credentials").await, before);

    // Key A with its certificate: imported, and it signs.
    let c = env.admin("/admin/v1/credentials/import", json!({ "practitioner_id": w.practitioner, "cert_pem": pem, "pkcs11_key_id": hex::encode([0xa1; 8]) })).await;
    assert_eq!(c["key_store"], "pkcs11");
    let phone = env.enroll(&w.practitioner).await;
    let grant = env.grant(&w.terminal, &phone).await;
    let msg = b"imported token key";
    let (st, v) = env
        .sign_one(
            &grant,
            &w.terminal,
            c["id"].as_str().unwrap(),
            &sha256(msg).try_into().unwrap(),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let sig = STANDARD
        .decode(v["signatures"][0].as_str().unwrap())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        leaf_public_key(&chain[0]),
    )
    .verify(msg, &sig)
    .unwrap();
}

/// `RSAPublicKey` DER from the token's modulus and exponent.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn int(v: &[u8]) -> Vec<u8> {
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        let mut c = if v[0] & 0x80 != 0 { vec![0] } else { vec![] };
        c.extend_from_slice(v);
        tlv(0x02, &c)
    }
    fn tlv(tag: u8, c: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match c.len() {
            l if l < 0x80 => out.push(l as u8),
            l if l < 0x100 => out.extend([0x81, l as u8]),
            l => out.extend([0x82, (l >> 8) as u8, l as u8]),
        }
        out.extend_from_slice(c);
        out
    }
    let mut body = int(n);
    body.extend(int(e));
    tlv(0x30, &body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_software_key_store_can_still_be_asked_for_and_pkcs11_without_a_token_is_refused() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let w = env.world().await;
    let c = env
        .admin(
            "/admin/v1/credentials",
            json!({ "practitioner_id": w.practitioner, "key_store": "software" }),
        )
        .await;
    assert_eq!(c["key_store"], "software");
    assert_eq!(c["key_uri"], Value::Null);
    // A server without [pkcs11]: generating in a token is a clear 400.
    let plain = Env::new().await;
    let w = plain.world().await;
    let res = plain
        .post_json(
            "/admin/v1/credentials",
            Some(&format!("Bearer {}", plain.token)),
            &json!({ "practitioner_id": w.practitioner, "key_store": "pkcs11" }),
        )
        .await;
    assert_problem(&res, 400, "bad_request");
    assert!(
        res.1["detail"]
            .as_str()
            .unwrap()
            .contains("no PKCS#11 token"),
        "{}",
        res.1
    );
}

/// The `shomei` binary with a config of its own (own SoftHSM2 token
/// directory): a token label that is not there stops `serve` with exit
/// code ≠ 0 and a message naming it, before anything listens.
#[test]
fn serve_with_an_unknown_token_exits_naming_the_token() {
    let Some(module) = softhsm_module() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let conf = write_softhsm_conf(dir.path());
    let pin = dir.path().join("pin");
    write_mode(&pin, "123456\n", 0o600);
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    std::fs::write(
        data.join("shomei.toml"),
        format!(
            "[pkcs11]\nmodule = {:?}\ntoken_label = \"absent\"\npin_file = {:?}\n",
            module.display().to_string(),
            pin.display().to_string()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_shomei"))
        .env("SOFTHSM2_CONF", &conf)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no PKCS#11 token labelled \"absent\""),
        "{stderr}"
    );
    assert!(!data.join("server.url").exists());
}

#[test]
fn a_token_key_reference_round_trips_through_its_rfc7512_uri_and_a_sealed_key_is_not_one() {
    let r = TokenKeyRef {
        token_label: "HPKI; partition=1 ラベル".into(),
        id: vec![0x00, 0x3b, 0xff, b'='],
    };
    let uri = r.to_uri();
    assert_eq!(
        uri,
        "pkcs11:token=HPKI%3B%20partition%3D1%20%E3%83%A9%E3%83%99%E3%83%AB;id=%00%3b%ff%3d;type=private"
    );
    assert_eq!(
        TokenKeyRef::from_stored(uri.as_bytes()).unwrap().unwrap(),
        r
    );
    // A KEK-sealed key starts with its format byte 1: not a reference.
    assert!(TokenKeyRef::from_stored(&[1, b'p', b'k']).is_none());
    // Damaged references are refused, not guessed.
    for bad in [
        "pkcs11:token=a",
        "pkcs11:id=%01",
        "pkcs11:token=a;id=",
        "pkcs11:token=a;id=%01;object=x",
        "pkcs11:token",
    ] {
        assert!(
            TokenKeyRef::from_stored(bad.as_bytes()).unwrap().is_err(),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_logged_out_of_its_token_logs_in_again_and_signs() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, _) = hsm_world(&env, "rsa2048").await;
    let (s, v) = env
        .sign_one(&grant, &w.terminal, &w.credential, &[1; 32])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Login state belongs to the token and this process: a logout on any
    // session logs out the server's pooled sessions too.
    let session = hsm.user_session(&token);
    session.logout().unwrap();
    drop(session);
    let (s, v) = env
        .sign_one(&grant, &w.terminal, &w.credential, &[2; 32])
        .await;
    assert_eq!(s, StatusCode::OK, "the server did not log in again: {v}");
    audit_intact(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_changed_under_the_running_server_is_refused_once_and_never_tried_again() {
    let Some(hsm) = softhsm() else { return };
    let token = hsm.new_token();
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, _) = hsm_world(&env, "rsa2048").await;
    let old = AuthPin::from(token.pin.clone());
    let new = AuthPin::from(format!("{}7", token.pin));
    // The security officer's tool changes the user PIN and logs out.
    let session = hsm.user_session(&token);
    session.set_pin(&old, &new).unwrap();
    session.logout().unwrap();
    drop(session);
    let res = env
        .sign_one(&grant, &w.terminal, &w.credential, &[1; 32])
        .await;
    assert_problem(&res, 503, "unavailable");
    assert!(
        res.1["detail"]
            .as_str()
            .unwrap()
            .contains("CKR_PIN_INCORRECT"),
        "{}",
        res.1
    );
    // The PIN is set back: a server that tried its PIN again would now sign.
    // It does not try: the refusal is latched until a restart.
    let session = hsm.ctx.open_rw_session(hsm.slot_of(&token.label)).unwrap();
    session.login(UserType::User, Some(&new)).unwrap();
    session.set_pin(&new, &old).unwrap();
    session.logout().unwrap();
    drop(session);
    let res = env
        .sign_one(&grant, &w.terminal, &w.credential, &[2; 32])
        .await;
    assert_problem(&res, 503, "unavailable");
    let r = env
        .http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["detail"].as_str().unwrap().contains("PKCS#11 token"),
        "{v}"
    );
    // A restarted server (same token, PIN source unchanged) signs again.
    drop(env);
    let env = hsm_env(hsm.config(&token)).await;
    let (w, grant, _) = hsm_world(&env, "rsa2048").await;
    let (s, v) = env
        .sign_one(&grant, &w.terminal, &w.credential, &[3; 32])
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
