//! Device-signature verification cost: ring (what `DevicePublicKey::verify`
//! uses) against the p256 crate, over a real approval message. The server
//! verifies one signature per decision, so this bounds decisions per core.

use criterion::{Criterion, criterion_group, criterion_main};
use p256::ecdsa::signature::Verifier as _;
use shomei_core::{
    ApprovalMessage, Decision, DevicePublicKey, LoginId, Origin, PlatformKey, QrSecret, SoftwareKey,
};

fn verify(c: &mut Criterion) {
    let key = SoftwareKey::generate();
    let origin = Origin::parse("https://shomei.example.jp").unwrap();
    let login_id = LoginId::random();
    let secret = QrSecret::random();
    let msg = ApprovalMessage {
        origin: &origin,
        login_id: &login_id,
        secret: &secret,
        device_id: [7; 16],
        decision: Decision::Approve,
        number: 42,
        challenge: [9; 32],
    }
    .to_bytes();
    let der = key.sign(&msg).unwrap();
    let public = DevicePublicKey::from_sec1(&key.public_key_sec1()).unwrap();
    c.bench_function("verify approval (ring, DevicePublicKey::verify)", |b| {
        b.iter(|| public.verify(std::hint::black_box(&msg), &der).unwrap())
    });
    let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(public.as_bytes()).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    c.bench_function("verify approval (p256 crate)", |b| {
        b.iter(|| vk.verify(std::hint::black_box(&msg), &sig).unwrap())
    });
    c.bench_function("DevicePublicKey::from_sec1 (on-curve check)", |b| {
        b.iter(|| DevicePublicKey::from_sec1(std::hint::black_box(public.as_bytes())).unwrap())
    });
    c.bench_function("approval message to_bytes", |b| {
        b.iter(|| {
            ApprovalMessage {
                origin: &origin,
                login_id: &login_id,
                secret: &secret,
                device_id: [7; 16],
                decision: Decision::Approve,
                number: 42,
                challenge: [9; 32],
            }
            .to_bytes()
        })
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
