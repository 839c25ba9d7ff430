//! Yuma Consensus epoch benchmark: Yuma 3 with liquid alpha, every validator weighting every miner
//! with random weights (fixed seed), bonds already populated by a previous epoch.
//!
//! Run: `cargo bench -p subnet-chain --bench yuma`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use subnet_chain::yuma::{EpochInput, YumaParams, epoch};

/// SplitMix64: a tiny deterministic generator, so the inputs are the same on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A subnet of `n` uids whose first `validators` uids hold stake and permits and weight all the
/// other uids, after one epoch has run so the bonds are in place.
fn subnet(n: usize, validators: usize, seed: u64) -> EpochInput {
    let mut rng = SplitMix(seed);
    let block = 10_000;
    let stake = (0..n)
        .map(|i| {
            if i < validators {
                1_000_000_000 + rng.next() % 1_000_000_000_000
            } else {
                0
            }
        })
        .collect();
    let weights = (0..n)
        .map(|i| {
            if i < validators {
                let raw: Vec<u16> = (validators..n).map(|_| rng.next() as u16).collect();
                let upscaled = subnet_chain::yuma::max_upscale_to_u16(&raw);
                (validators as u16..n as u16).zip(upscaled).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let mut input = EpochInput {
        current_block: block,
        last_tempo: block - 360,
        stake,
        weights,
        bonds: vec![Vec::new(); n],
        last_update: vec![block - 1; n],
        block_at_registration: vec![0; n],
        validator_permit: (0..n).map(|i| i < validators).collect(),
        owner_uid: None,
        commit_blocks: vec![Some(block - 400); n],
        emission_total: 1_000_000_000_000,
        params: YumaParams {
            liquid_alpha: true,
            max_allowed_validators: validators as u16,
            ..YumaParams::default()
        },
    };
    input.bonds = epoch(&input).bonds;
    input
}

fn bench_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("yuma3_liquid_alpha_epoch");
    for (n, validators) in [(256, 64), (4096, 256)] {
        let input = subnet(n, validators, 42);
        if n > 1024 {
            group.sample_size(10);
        }
        group.bench_function(format!("n{n}_v{validators}"), |b| {
            b.iter(|| epoch(black_box(&input)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_epoch);
criterion_main!(benches);
