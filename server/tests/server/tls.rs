//! `--tls-cert/--tls-key`: the public listener speaks HTTPS with a real
//! certificate (made here with rcgen: a CA and a leaf for 127.0.0.1) that a
//! reqwest client trusts; the whole day runs over it. Every bad file is
//! refused at start with its own typed error, before anything is created
//! or bound.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use reqwest::StatusCode;
use shomei_server::config::{ConfigError, Overrides, ServeConfig, TlsFiles};
use shomei_server::run::ServeError;
use shomei_server::tls::TlsError;

use crate::common::*;

/// A CA, and a leaf for 127.0.0.1 signed by it, as PEM files in `dir`
/// (key 0600). Returns (CA PEM, files).
fn certificate_in(dir: &Path) -> (String, TlsFiles) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "Shomei test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, leaf.pem()).unwrap();
    write_key(&files.key, &leaf_key.serialize_pem(), 0o600);
    (ca_pem, files)
}

fn write_key(path: &Path, pem: &str, mode: u32) {
    std::fs::write(path, pem).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A server on 127.0.0.1:0 serving `files`, and a client that trusts `ca_pem`.
async fn tls_env(ca_pem: &str, files: TlsFiles) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_in(dir.path());
    cfg.tls = Some(files);
    let running = shomei_server::run::start(cfg).await.unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .https_only(false) // the operator listener stays plain HTTP on loopback
        .build()
        .unwrap();
    Env {
        base: running.base_url.clone(),
        admin_base: running.admin_base_url.clone(),
        token: running.operator_token.clone(),
        running,
        http,
        _dir: dir,
    }
}

/// Starts with `files` in a data directory that does not exist yet.
async fn start_refused(files: TlsFiles) -> (ServeError, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = config_in(&data);
    cfg.tls = Some(files);
    let Err(e) = shomei_server::run::start(cfg).await else {
        panic!("started with bad TLS files")
    };
    (e, data, dir)
}

#[tokio::test]
async fn a_whole_day_runs_over_https_with_a_trusted_certificate() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, files) = certificate_in(certs.path());
    let env = tls_env(&ca, files).await;
    assert!(env.base.starts_with("https://127.0.0.1:"), "{}", env.base);
    assert_eq!(
        env.app().origin.as_str(),
        env.base,
        "phones bind their signatures to the https origin"
    );

    let w = env.world().await;
    let phone = env.enroll(&w.practitioner).await;
    let login = env.start_login(&w.terminal).await;
    assert_eq!(
        login.payload.origin.as_str(),
        env.base,
        "the QR names the https origin"
    );
    let (s, v) = env
        .decide(
            &phone,
            &login,
            shomei_core::Decision::Approve,
            login.number(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, t) = env.token(&w.terminal, login.device_code()).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let (s, v) = env
        .sign_one(
            t["access_token"].as_str().unwrap(),
            &w.terminal,
            &w.credential,
            &[9u8; 32],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["signatures"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn plain_http_to_the_tls_listener_gets_no_answer() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, files) = certificate_in(certs.path());
    let env = tls_env(&ca, files).await;
    let plain = env.base.replacen("https://", "http://", 1);
    let r = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(
        r.is_err(),
        "plain HTTP was answered: {:?}",
        r.map(|r| r.status())
    );
    // …and the listener still serves TLS afterwards.
    assert_eq!(
        env.http
            .get(format!("{}/healthz", env.base))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_client_that_connects_and_says_nothing_holds_up_nobody() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, files) = certificate_in(certs.path());
    let env = tls_env(&ca, files).await;
    // Silent TCP connections: each one's handshake waits (up to 10 s) in its own task.
    let addr = env.running.addr;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    let r = env
        .http
        .get(format!("{}/readyz", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Served while every silent handshake is still pending: their sockets
    // are open (no EOF yet), so the request did not wait for them to time out.
    for s in &silent {
        let mut buf = [0u8; 1];
        match s.try_read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("a silent connection was already answered or closed: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_certificate_is_refused_by_the_client() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, files) = certificate_in(certs.path());
    let env = tls_env(&ca, files).await;
    let r = reqwest::Client::new()
        .get(format!("{}/healthz", env.base))
        .send()
        .await;
    assert!(r.is_err(), "an untrusted certificate was accepted");
}

#[tokio::test]
async fn a_key_file_group_or_other_can_read_is_refused_before_anything_starts() {
    let certs = tempfile::tempdir().unwrap();
    let (_, files) = certificate_in(certs.path());
    std::fs::set_permissions(&files.key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let (e, data, _keep) = start_refused(files.clone()).await;
    match &e {
        ServeError::Tls(TlsError::InsecureKeyFile { path, mode }) => {
            assert_eq!(path, &files.key);
            assert_eq!(*mode, 0o640);
        }
        other => panic!("expected InsecureKeyFile, got {other:?}"),
    }
    assert!(e.to_string().contains("chmod 600"), "{e}");
    assert!(
        !data.exists(),
        "the data directory was created although TLS was refused"
    );
}

#[tokio::test]
async fn a_key_of_another_certificate_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (_, files) = certificate_in(certs.path());
    write_key(
        &files.key,
        &KeyPair::generate().unwrap().serialize_pem(),
        0o600,
    );
    let (e, data, _keep) = start_refused(files).await;
    assert!(
        matches!(e, ServeError::Tls(TlsError::KeyMismatch { .. })),
        "{e:?}"
    );
    assert!(!data.exists());
}

#[tokio::test]
async fn a_certificate_file_without_a_certificate_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (_, files) = certificate_in(certs.path());
    // The key where the certificate should be: PEM, but no CERTIFICATE block.
    std::fs::copy(&files.key, &files.cert).unwrap();
    let (e, data, _keep) = start_refused(files).await;
    assert!(
        matches!(e, ServeError::Tls(TlsError::NoCertificate { .. })),
        "{e:?}"
    );
    assert!(!data.exists());
}

#[tokio::test]
async fn a_key_file_without_a_key_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (_, files) = certificate_in(certs.path());
    let cert_pem = std::fs::read_to_string(&files.cert).unwrap();
    write_key(&files.key, &cert_pem, 0o600);
    let (e, data, _keep) = start_refused(files).await;
    assert!(
        matches!(e, ServeError::Tls(TlsError::NoKey { .. })),
        "{e:?}"
    );
    assert!(!data.exists());
}

#[tokio::test]
async fn a_missing_certificate_file_is_refused_naming_it() {
    let certs = tempfile::tempdir().unwrap();
    let (_, mut files) = certificate_in(certs.path());
    files.cert = certs.path().join("nope.pem");
    let (e, data, _keep) = start_refused(files).await;
    match &e {
        ServeError::Tls(TlsError::ReadCertificate { path, source }) => {
            assert!(path.ends_with("nope.pem"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected ReadCertificate, got {other:?}"),
    }
    assert!(!data.exists());
}

#[test]
fn a_certificate_without_a_key_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = ServeConfig::resolve(Overrides {
        data_dir: Some(dir.path().to_owned()),
        tls_cert: Some(dir.path().join("cert.pem")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::TlsPair("tls_cert", "tls_key")),
        "{e:?}"
    );
    let e = ServeConfig::resolve(Overrides {
        data_dir: Some(dir.path().to_owned()),
        tls_key: Some(dir.path().join("key.pem")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(e, ConfigError::TlsPair("tls_key", "tls_cert")),
        "{e:?}"
    );
}
