//! RSA-2048 signHash throughput: what one signature costs through
//! `SoftwareBackend` (unseal with AES-256-GCM + parse PKCS#8 + sign) compared
//! with raw aws-lc-rs and raw ring signing on an already-parsed key, all on
//! one core. Tells us whether unsealing per call is affordable and how much
//! aws-lc-rs buys over ring.
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

criterion_group!(benches, rsa_signing);
criterion_main!(benches);
