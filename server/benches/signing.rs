//! RSA-2048 signHash throughput: what one signature costs through
//! `SoftwareBackend` (unseal with AES-256-GCM + parse PKCS#8 + sign) compared
//! with raw aws-lc-rs and raw ring signing on an already-parsed key, all on
//! one core. Tells us whether unsealing per call is affordable and how much
//! aws-lc-rs buys over ring.
//!
//! Also the PKCS#11 backend on a SoftHSM2 token against the software
//! backend in the same run (issue 12): one signature per call on one
//! thread (criterion), and signatures/s with every core signing at once
//! (a 4-session pool vs held software keys), printed as a ratio. Skipped,
//! with a line saying so, when SoftHSM2 is not installed.
//!
//! Run: `cargo bench -p shomei-server --bench signing`

use std::time::Duration;

use aws_lc_rs::digest::{Digest, SHA256};
use aws_lc_rs::encoding::AsDer;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shomei_server::signing::{
    Kek, KeyAlgorithm, NewCredential, SealedKey, SignatureAlgorithm, SigningBackend,
    SoftwareBackend,
};
use zeroize::Zeroizing;

fn rsa_signing(c: &mut Criterion) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("keygen");
    let pkcs8 = Zeroizing::new(key.as_der().expect("pkcs8").as_ref().to_vec());
    let credential = NewCredential {
        algorithm: KeyAlgorithm::Rsa2048,
        pkcs8: pkcs8.clone(),
        certificate_chain: vec![],
    };
    let kek = Kek::generate().expect("kek");
    let sealed = SealedKey::seal(&kek, "bench-credential", &credential);
    let backend = SoftwareBackend::new(kek);
    let msg = b"<Prescription>benchmark</Prescription>";
    let digest = aws_lc_rs::digest::digest(&SHA256, msg);
    let digest_bytes = digest.as_ref().to_vec();

    let aws_key = aws_lc_rs::rsa::KeyPair::from_pkcs8(&pkcs8).expect("aws key");
    let ring_key = ring::signature::RsaKeyPair::from_pkcs8(&pkcs8).expect("ring key");
    let ring_rng = ring::rand::SystemRandom::new();

    let mut g = c.benchmark_group("rsa2048_sign");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));

    g.bench_function("software_backend_sign_digest (unseal+parse+sign)", |b| {
        b.iter(|| {
            backend
                .sign_digest(&sealed, SignatureAlgorithm::RsaPkcs1Sha256, &digest_bytes)
                .unwrap()
        })
    });
    g.bench_function(
        "software_backend_sign_digests batch of 10 (per call)",
        |b| {
            let batch: Vec<&[u8]> = vec![&digest_bytes[..]; 10];
            b.iter(|| {
                backend
                    .sign_digests(&sealed, SignatureAlgorithm::RsaPkcs1Sha256, &batch)
                    .unwrap()
            })
        },
    );
    g.bench_function("aws_lc_rs sign_digest (parsed key)", |b| {
        let mut sig = vec![0u8; aws_key.public_modulus_len()];
        b.iter(|| {
            let d = Digest::import_less_safe(&digest_bytes, &SHA256).unwrap();
            aws_key
                .sign_digest(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &d, &mut sig)
                .unwrap();
        })
    });
    g.bench_function("ring sign message (parsed key)", |b| {
        let mut sig = vec![0u8; ring_key.public().modulus_len()];
        b.iter(|| {
            ring_key
                .sign(&ring::signature::RSA_PKCS1_SHA256, &ring_rng, msg, &mut sig)
                .unwrap()
        })
    });
    g.bench_function("unseal + parse only", |b| {
        b.iter(|| {
            let pk = backend
                .kek()
                .open(&sealed.sealed_pkcs8, sealed.credential_id.as_bytes())
                .unwrap();
            aws_lc_rs::rsa::KeyPair::from_pkcs8(&pk).unwrap()
        })
    });
    g.finish();
}

/// SoftHSM2 with its own config and token directory (set before this
/// process first loads the module), one fresh token, logged in.
fn softhsm_token(dir: &std::path::Path) -> Option<shomei_server::signing::Pkcs11Config> {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let module = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())?;
    std::fs::create_dir_all(dir.join("tokens")).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", dir.join("tokens").display())).unwrap();
    // SAFETY: single-threaded here, before the module is loaded.
    unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
    let ctx = Pkcs11::new(&module).unwrap();
    ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    let slot = ctx.get_slots_with_token().unwrap()[0];
    let so = AuthPin::from("bench-so".to_owned());
    ctx.init_token(slot, &so, "bench").unwrap();
    let slot = ctx
        .get_slots_with_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim_end() == "bench")
        .unwrap();
    let s = ctx.open_rw_session(slot).unwrap();
    s.login(UserType::So, Some(&so)).unwrap();
    s.init_pin(&AuthPin::from("123456".to_owned())).unwrap();
    drop(s);
    let pin = dir.join("pin");
    std::fs::write(&pin, "123456\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    Some(shomei_server::signing::Pkcs11Config {
        module,
        token_label: "bench".into(),
        pin_file: Some(pin),
        pin_env: None,
        sessions: 4,
        session_wait_ms: 5000,
    })
}

/// Signatures/s with `threads` threads calling `sign` for `secs`.
fn per_second(threads: usize, secs: Duration, sign: &(dyn Fn() + Sync)) -> f64 {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let count = std::sync::atomic::AtomicU64::new(0);
    let start = std::time::Instant::now();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    sign();
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(secs);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    count.into_inner() as f64 / start.elapsed().as_secs_f64()
}

fn pkcs11_vs_software(c: &mut Criterion) {
    use shomei_server::signing::{KeyHold, Pkcs11Backend, Pkcs11Token, Subject};
    let dir = tempfile::tempdir().unwrap();
    let Some(cfg) = softhsm_token(dir.path()) else {
        println!("*** SKIPPED pkcs11_vs_software: SoftHSM2 not installed (apt-get install softhsm2) ***");
        return;
    };
    let kek = Kek::generate().expect("kek");
    let ca = shomei_server::signing::DevCa::generate().unwrap();
    let subject = Subject { common_name: "Bench".into(), role: shomei_server::signing::HcRole::Doctor, organization: None };
    let software_credential = ca.issue(&subject, KeyAlgorithm::Rsa2048).unwrap();
    let software_key = SealedKey::seal(&kek, "software-credential", &software_credential);
    let token = std::sync::Arc::new(Pkcs11Token::open(&cfg).expect("open SoftHSM2 token"));
    let token_key = token.generate(KeyAlgorithm::Rsa2048, "pkcs11-credential").expect("generate in token");
    let hsm_key = SealedKey { credential_id: "pkcs11-credential".into(), algorithm: KeyAlgorithm::Rsa2048, sealed_pkcs8: token_key.key_ref.to_uri().into_bytes().into() };
    let backend = Pkcs11Backend::new(token, SoftwareBackend::new(kek));
    let digest = aws_lc_rs::digest::digest(&SHA256, b"<Prescription>benchmark</Prescription>").as_ref().to_vec();
    let hold = KeyHold { grant_id: "bench-grant", now_ms: 0, until_ms: i64::MAX };
    let alg = SignatureAlgorithm::RsaPkcs1Sha256;
    let software = || {
        backend.sign_digests_held(&hold, &software_key, alg, &[&digest[..]]).unwrap();
    };
    let hsm = || {
        backend.sign_digests_held(&hold, &hsm_key, alg, &[&digest[..]]).unwrap();
    };

    let mut g = c.benchmark_group("rsa2048_signhash_backend");
    g.throughput(Throughput::Elements(1));
    g.sample_size(30).measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    g.bench_function("software backend, held key (the signHash path)", |b| b.iter(software));
    g.bench_function("pkcs11 backend, SoftHSM2 token (CKM_RSA_PKCS)", |b| b.iter(hsm));
    g.finish();

    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let secs = Duration::from_secs(5);
    let sw = per_second(threads, secs, &software);
    let hw = per_second(threads, secs, &hsm);
    let sw2 = per_second(threads, secs, &software);
    println!();
    println!("| backend ({threads} threads, RSA-2048, one digest per call) | signatures/s |");
    println!("|---|---|");
    println!("| software, held key (before / after) | {sw:.0} / {sw2:.0} |");
    println!("| PKCS#11, SoftHSM2, 4 sessions | {hw:.0} |");
    println!("| PKCS#11 / software (mean of before and after) | {:.2} |", hw / ((sw + sw2) / 2.0));
}

criterion_group!(benches, rsa_signing, pkcs11_vs_software);
criterion_main!(benches);
