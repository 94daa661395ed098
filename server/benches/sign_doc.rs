//! signDoc against signHash, in the same run: what building the XAdES
//! (e-prescription profile) or CMS (CAdES-BES) container around a digest
//! costs on top of the raw signature.
//!
//! Each row is one request's CPU work after HTTP parsing and before the
//! audit commit (both of which signHash and signDoc share):
//! - `signHash`: SoftwareBackend::sign_digests for one digest (unseal +
//!   parse + sign) + base64;
//! - `signDoc X`: xades::prepare (KeyInfo, SignedProperties, SignedInfo in
//!   canonical form, their digests) + the same backend call + assemble +
//!   base64;
//! - `signDoc C`: cms::prepare (signed attributes) + the backend call +
//!   assemble the DER ContentInfo + base64.
//!
//! The ratio signDoc/signHash per second is the number issue 8 asks for
//! (target ≥ 60 %); the run prints it at the end.
//!
//! Run: `cargo bench -p shomei-server --bench sign_doc`

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shomei_server::signing::{
    DevCa, HcRole, Kek, KeyAlgorithm, SealedKey, SigningBackend, SoftwareBackend, Subject,
};
use shomei_server::{cms, xades};

struct Fixture {
    backend: SoftwareBackend,
    sealed: SealedKey,
    chain: Vec<Vec<u8>>,
    alg: shomei_server::signing::SignatureAlgorithm,
    digest: Vec<u8>,
}

fn fixture(alg: KeyAlgorithm) -> Fixture {
    let ca = DevCa::generate().expect("dev CA");
    let subject = Subject {
        common_name: "Dr. Bench".into(),
        role: HcRole::Doctor,
        organization: Some("Bench Clinic".into()),
    };
    let credential = ca.issue(&subject, alg).expect("issue");
    let kek = Kek::generate().expect("kek");
    let sealed = SealedKey::seal(&kek, "bench-credential", &credential);
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        b"<PrescriptionDocument Id=\"rx\"></PrescriptionDocument>",
    )
    .as_ref()
    .to_vec();
    Fixture {
        backend: SoftwareBackend::new(kek),
        sealed,
        chain: credential.certificate_chain.clone(),
        alg: alg.signature_algorithm(),
        digest,
    }
}

impl Fixture {
    fn sign_hash(&self) -> String {
        let sigs = self
            .backend
            .sign_digests(&self.sealed, self.alg, &[&self.digest])
            .unwrap();
        STANDARD.encode(&sigs[0])
    }

    fn sign_doc_xades(&self) -> String {
        let input = xades::XadesInput {
            reference_id: "PrescriptionDocument",
            element_digest: &self.digest,
            certificate_der: &self.chain[0],
            alg: self.alg,
            signing_time: "2026-12-01T09:30:00Z",
            signature_id: "Sig-0123456789abcdef",
        };
        let p = xades::prepare(&input).unwrap();
        let sigs = self
            .backend
            .sign_digests(&self.sealed, self.alg, &[&p.to_sign])
            .unwrap();
        STANDARD.encode(p.assemble(&sigs[0]).unwrap())
    }

    fn sign_doc_cms(&self) -> String {
        let p = cms::prepare(&self.chain, self.alg, &self.digest, 1_795_000_000).unwrap();
        let sigs = self
            .backend
            .sign_digests(&self.sealed, self.alg, &[&p.to_sign])
            .unwrap();
        STANDARD.encode(p.assemble(&sigs[0]).unwrap())
    }
}

/// Calls per second of `f` over about `budget`.
fn rate(budget: Duration, f: &dyn Fn() -> String) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        std::hint::black_box(f());
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn sign_doc(c: &mut Criterion) {
    let mut summary = Vec::new();
    for alg in [KeyAlgorithm::Rsa2048, KeyAlgorithm::EcdsaP256] {
        let fx = fixture(alg);
        let mut g = c.benchmark_group(format!("sign_doc_{}", alg.as_str()));
        g.throughput(Throughput::Elements(1));
        g.sample_size(30)
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        g.bench_function("signHash (backend + base64)", |b| b.iter(|| fx.sign_hash()));
        g.bench_function("signDoc X (XAdES build + backend + base64)", |b| {
            b.iter(|| fx.sign_doc_xades())
        });
        g.bench_function("signDoc C (CMS build + backend + base64)", |b| {
            b.iter(|| fx.sign_doc_cms())
        });
        g.finish();
        // The ratio row: interleaved rounds so drift hits all three alike.
        let (mut h, mut x, mut m) = (0.0, 0.0, 0.0);
        for _ in 0..3 {
            h += rate(Duration::from_millis(700), &|| fx.sign_hash());
            x += rate(Duration::from_millis(700), &|| fx.sign_doc_xades());
            m += rate(Duration::from_millis(700), &|| fx.sign_doc_cms());
        }
        summary.push((alg, h / 3.0, x / 3.0, m / 3.0));
    }
    println!("\nsignDoc vs signHash, same run, one core (per second):");
    println!("| key | signHash | signDoc X | X / signHash | signDoc C | C / signHash |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (alg, h, x, m) in summary {
        println!(
            "| {} | {h:.0} | {x:.0} | {:.0} % | {m:.0} | {:.0} % |",
            alg.as_str(),
            100.0 * x / h,
            100.0 * m / h
        );
    }
}

criterion_group!(benches, sign_doc);
criterion_main!(benches);
