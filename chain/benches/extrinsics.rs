//! Signed extrinsics applied per second, the node's whole path for one extrinsic: decode the SCALE
//! bytes, check size, nonce and the sr25519 signature, then the call's rules and the write.
//!
//! - `transfer`: Alice sends 1 rao to Bob, nonces 0..BATCH.
//! - `set_weights_255`: a permitted validator on a 256-uid subnet weights all 255 other uids.
//!
//! Run: `cargo bench -p subnet-chain --bench extrinsics`.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use parity_scale_codec::Encode;
use subnet_chain::state::{Genesis, GenesisNeuron, GenesisSubnet, State};
use subnet_common::chain::types::{Call, GenesisHash, Hyperparameters, SignedExtrinsic};
use subnet_common::keys::{AccountId, Keypair};

/// Extrinsics applied per measured iteration.
const BATCH: u64 = 256;
const GENESIS_HASH: GenesisHash = [9; 32];
const NETUID: u16 = 1;

fn pair(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev URI")
}

/// Subnet 1 with 256 uids: the validator `//Validator` (stake, permit after the first epoch) and
/// 255 miners; Alice and the validator hold balance.
fn chain(validator: &AccountId) -> State {
    let alice = pair("//Alice").account_id();
    let mut genesis = Genesis::default();
    genesis.balances.insert(alice, u64::MAX / 2);
    let mut neurons = vec![GenesisNeuron {
        hotkey: *validator,
        coldkey: *validator,
        stake: 1_000_000_000_000,
    }];
    neurons.extend((1..255u16).map(|i| {
        let mut bytes = [0u8; 32];
        bytes[..2].copy_from_slice(&i.to_le_bytes());
        GenesisNeuron {
            hotkey: AccountId(bytes),
            coldkey: AccountId(bytes),
            stake: 0,
        }
    }));
    genesis.subnets.push(GenesisSubnet {
        netuid: NETUID,
        owner_coldkey: alice,
        owner_hotkey: alice,
        register_owner_hotkey: true,
        emission_per_block: 1_000_000_000,
        hyperparameters: Hyperparameters {
            tempo: 10,
            commit_reveal_weights_enabled: false,
            weights_set_rate_limit: 0,
            ..Hyperparameters::default()
        },
        neurons,
    });
    let mut state = State::from_genesis(&genesis).expect("valid genesis");
    // The first epoch (block 9) gives the validator its permit.
    while state.current_block() < 10 {
        state.end_block();
    }
    state
}

/// `BATCH` encoded extrinsics from `keypair`, nonces 0.., each carrying `call(i)`.
fn signed(keypair: &Keypair, call: impl Fn(u64) -> Call) -> Vec<Vec<u8>> {
    (0..BATCH)
        .map(|nonce| SignedExtrinsic::sign(call(nonce), nonce, &GENESIS_HASH, keypair).encode())
        .collect()
}

fn apply_all(mut state: State, batch: &[Vec<u8>]) -> State {
    for bytes in batch {
        let ext = SignedExtrinsic::decode_bytes(bytes).expect("well-formed");
        let events = state
            .apply_extrinsic(&ext, &GENESIS_HASH)
            .expect("valid extrinsic");
        black_box(events);
    }
    state
}

fn extrinsics(c: &mut Criterion) {
    let validator = pair("//Validator");
    let state = chain(&validator.account_id());
    let bob = pair("//Bob").account_id();
    let transfers = signed(&pair("//Alice"), |_| Call::Transfer {
        dest: bob,
        amount: 1,
    });
    let weights = signed(&validator, |i| Call::SetWeights {
        netuid: NETUID,
        dests: (1..256).collect(),
        weights: (1..256u64)
            .map(|j| ((j * 7 + i) % 1000 + 1) as u16)
            .collect(),
        version_key: 0,
    });

    let mut group = c.benchmark_group("extrinsics");
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("transfer", |b| {
        b.iter_batched(
            || state.clone(),
            |s| apply_all(s, &transfers),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("set_weights_255", |b| {
        b.iter_batched(
            || state.clone(),
            |s| apply_all(s, &weights),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, extrinsics);
criterion_main!(benches);
