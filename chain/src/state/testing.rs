//! Test helpers: a small genesis with dev keys, and shortcuts to apply calls.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use subnet_common::chain::types::{Call, Event, GenesisHash, Hyperparameters, SignedExtrinsic};
use subnet_common::keys::{AccountId, Keypair};

use super::{ChainError, Genesis, GenesisNeuron, GenesisSubnet, State};

/// The genesis hash the tests sign for.
pub const GENESIS_HASH: GenesisHash = [42; 32];
/// The subnet the tests use.
pub const NETUID: u16 = 1;
/// 1 TAO.
pub const TAO: u64 = 1_000_000_000;

/// A dev key pair from `//name`, derived once per process (derivation runs PBKDF2).
pub fn pair(name: &str) -> Keypair {
    static CACHE: LazyLock<Mutex<HashMap<String, Keypair>>> = LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap();
    cache
        .entry(name.to_owned())
        .or_insert_with(|| Keypair::from_uri(&format!("//{name}")).unwrap())
        .clone()
}

/// The account of `//name`.
pub fn id(name: &str) -> AccountId {
    pair(name).account_id()
}

/// Hyperparameters convenient in tests: commit–reveal off, no rate limits, tempo 10.
pub fn test_params() -> Hyperparameters {
    Hyperparameters {
        tempo: 10,
        commit_reveal_weights_enabled: false,
        weights_set_rate_limit: 0,
        serving_rate_limit: 0,
        commitment_rate_limit: 0,
        immunity_period: 0,
        burn: TAO,
        ..Hyperparameters::default()
    }
}

/// Subnet 1 owned by Alice (hotkey `//Alice//hot` at uid 0), plus `validators` (stake 1000 TAO
/// each) and `miners` (no stake) registered at genesis. Every named key holds 1000 TAO.
pub fn genesis(params: Hyperparameters, validators: &[&str], miners: &[&str]) -> Genesis {
    let mut g = Genesis {
        seed: "test".into(),
        ..Genesis::default()
    };
    for name in ["Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"] {
        g.balances.insert(id(name), 1_000 * TAO);
    }
    let neurons = validators
        .iter()
        .map(|name| (name, 1_000 * TAO))
        .chain(miners.iter().map(|name| (name, 0)))
        .map(|(name, stake)| GenesisNeuron {
            hotkey: id(name),
            coldkey: id(&format!("{name}//cold")),
            stake,
        })
        .collect();
    g.subnets.push(GenesisSubnet {
        netuid: NETUID,
        owner_coldkey: id("Alice"),
        owner_hotkey: id("Alice//hot"),
        register_owner_hotkey: true,
        emission_per_block: TAO,
        hyperparameters: params,
        neurons,
    });
    g
}

/// Builds the state of [`genesis`].
pub fn state(params: Hyperparameters, validators: &[&str], miners: &[&str]) -> State {
    State::from_genesis(&genesis(params, validators, miners)).unwrap()
}

/// Signs `call` as `//name` at its current nonce and applies it.
pub fn apply(state: &mut State, name: &str, call: Call) -> Result<Vec<Event>, ChainError> {
    let keypair = pair(name);
    let nonce = state.account(&keypair.account_id()).nonce;
    let ext = SignedExtrinsic::sign(call, nonce, &GENESIS_HASH, &keypair);
    state.apply_extrinsic(&ext, &GENESIS_HASH)
}

/// Ends blocks until the current block is `block`.
pub fn advance_to(state: &mut State, block: u64) {
    while state.current_block() < block {
        state.end_block();
    }
}
