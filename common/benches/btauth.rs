//! btauth/1 and sr25519 throughput on one core: raw signature verification, and the full
//! server-side check (header parsing, payload rebuild, sha256 of a small body, sr25519 verify,
//! nonce store insert). Run with `cargo bench -p subnet-common --bench btauth`.
//!
//! Wall-clock times of one thread: on a shared machine run the binary with a high priority
//! (`nice -n -20 target/release/deps/btauth-* --bench`) so it gets a whole core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::HeaderMap;
use subnet_common::btauth::{NonceStore, Verifier, build_payload, sign_headers};
use subnet_common::keys::Keypair;

const T0: u64 = 1_764_000_000_000_000_000;
const BODY: &[u8] =
    br#"{"prompt": "What is 17 + 25?", "max_new_tokens": 16, "temperature": 0.0, "seed": 7}"#;
const TARGET: &str = "/v1/generate";
/// Requests signed ahead of timing; a fresh verifier per batch keeps every nonce new.
const BATCH: usize = 2_048;

fn keys() -> (Keypair, Keypair) {
    (
        Keypair::from_uri("//Alice").expect("dev key"),
        Keypair::from_uri("//Bob").expect("dev key"),
    )
}

fn signed_batch(alice: &Keypair, bob: &Keypair) -> Vec<(HeaderMap, u64)> {
    (0..BATCH as u64)
        .map(|i| {
            // One request per millisecond: the nonce store expires entries as it would live.
            let nonce = T0 + i * 1_000_000;
            let mut headers = HeaderMap::new();
            for (name, value) in
                sign_headers(alice, "POST", TARGET, BODY, Some(&bob.account_id()), nonce)
            {
                headers.insert(name, value.parse().expect("header value"));
            }
            (headers, nonce)
        })
        .collect()
}

fn bench_sr25519(c: &mut Criterion) {
    let (alice, bob) = keys();
    let payload = build_payload(
        "POST",
        TARGET,
        BODY,
        T0,
        &alice.account_id().to_ss58(),
        Some(&bob.account_id().to_ss58()),
    );
    let signature = alice.sign(&payload);
    let public = alice.account_id();
    assert!(public.verify(&payload, &signature));

    let mut group = c.benchmark_group("sr25519");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify", |b| {
        b.iter(|| black_box(public.verify(black_box(&payload), black_box(&signature))))
    });
    group.bench_function("sign", |b| {
        b.iter(|| black_box(alice.sign(black_box(&payload))))
    });
    group.finish();
}

fn bench_btauth(c: &mut Criterion) {
    let (alice, bob) = keys();
    let batch = signed_batch(&alice, &bob);

    let mut group = c.benchmark_group("btauth");
    group.throughput(Throughput::Elements(1));
    group.bench_function("verify_full", |b| {
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let verifier = Verifier::new(bob.account_id());
                let n = (iters - done).min(BATCH as u64) as usize;
                let start = Instant::now();
                for (headers, nonce) in &batch[..n] {
                    let caller = verifier.verify("POST", TARGET, headers, BODY, *nonce);
                    assert!(caller.is_ok());
                }
                elapsed += start.elapsed();
                done += n as u64;
            }
            elapsed
        })
    });
    group.bench_function("nonce_store_insert", |b| {
        let store = NonceStore::new(12_000_000_000, 1 << 18);
        let hotkey = alice.account_id();
        let mut nonce = T0;
        b.iter(|| {
            // 10 µs apart: about 1.2 million live entries would fit the window, so the cap binds.
            nonce += 10_000;
            black_box(store.check_and_store(&hotkey, nonce, nonce))
        })
    });
    group.bench_function("sign_headers", |b| {
        let receiver = bob.account_id();
        b.iter(|| {
            black_box(sign_headers(
                &alice,
                "POST",
                TARGET,
                BODY,
                Some(&receiver),
                T0,
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_sr25519, bench_btauth);
criterion_main!(benches);
