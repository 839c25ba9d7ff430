//! `devchain genesis --dev`: a genesis for local runs.
//!
//! - Funded accounts: `//Alice`, `//Bob`, `//Charlie`, `//Dave`, `//Eve`, `//Ferdie` and
//!   `//Miner1` … `//Miner12`, each with [`DEV_BALANCE`] rao.
//! - Subnet 1, owned by `//Alice` (coldkey and hotkey; the owner hotkey holds uid 0).
//! - Hyperparameters: Subtensor's new-subnet defaults except [`DEV_TEMPO`] blocks per epoch (with
//!   the node's default 500 ms blocks an epoch takes ~10 s), commit–reveal **on** with a reveal
//!   period of 1 epoch (so validators exercise commit then reveal), a weights rate limit of half a
//!   tempo (one commit per epoch always fits), no axon serving limit (miners restart often) and a
//!   commitment rate limit of half a tempo.

use std::collections::BTreeMap;

use subnet_common::chain::types::{Balance, Hyperparameters};
use subnet_common::keys::{KeyError, Keypair};

use crate::state::{Genesis, GenesisSubnet};

/// Dev URIs that get funds.
pub const DEV_URIS: [&str; 18] = [
    "//Alice",
    "//Bob",
    "//Charlie",
    "//Dave",
    "//Eve",
    "//Ferdie",
    "//Miner1",
    "//Miner2",
    "//Miner3",
    "//Miner4",
    "//Miner5",
    "//Miner6",
    "//Miner7",
    "//Miner8",
    "//Miner9",
    "//Miner10",
    "//Miner11",
    "//Miner12",
];

/// Balance of each dev account: one million TAO.
pub const DEV_BALANCE: Balance = 1_000_000 * 1_000_000_000;

/// Default blocks per epoch of the dev subnet.
pub const DEV_TEMPO: u16 = 20;

/// The dev subnet's id.
pub const DEV_NETUID: u16 = 1;

/// The dev genesis with `tempo` blocks per epoch and block 0 at `timestamp_ms`.
pub fn dev_genesis(tempo: u16, timestamp_ms: u64) -> Result<Genesis, KeyError> {
    let mut balances = BTreeMap::new();
    for uri in DEV_URIS {
        balances.insert(Keypair::from_uri(uri)?.account_id(), DEV_BALANCE);
    }
    let alice = Keypair::from_uri("//Alice")?.account_id();
    let half_tempo = u64::from(tempo / 2);
    let hyperparameters = Hyperparameters {
        tempo,
        commit_reveal_weights_enabled: true,
        commit_reveal_period: 1,
        weights_set_rate_limit: half_tempo,
        serving_rate_limit: 0,
        commitment_rate_limit: half_tempo,
        ..Hyperparameters::default()
    };
    let subnet = GenesisSubnet {
        netuid: DEV_NETUID,
        owner_coldkey: alice,
        owner_hotkey: alice,
        register_owner_hotkey: true,
        emission_per_block: 1_000_000_000,
        hyperparameters,
        neurons: Vec::new(),
    };
    Ok(Genesis {
        timestamp_ms,
        seed: "devchain --dev".into(),
        balances,
        subnets: vec![subnet],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_genesis_funds_every_dev_account_and_round_trips_as_json() {
        let genesis = dev_genesis(DEV_TEMPO, 42).unwrap();
        assert_eq!(genesis.balances.len(), DEV_URIS.len());
        assert!(genesis.balances.values().all(|b| *b == DEV_BALANCE));
        let subnet = &genesis.subnets[0];
        assert_eq!(subnet.netuid, 1);
        assert_eq!(
            subnet.owner_coldkey,
            Keypair::from_uri("//Alice").unwrap().account_id()
        );
        assert!(subnet.hyperparameters.commit_reveal_weights_enabled);
        assert_eq!(subnet.hyperparameters.tempo, 20);
        let json = serde_json::to_string_pretty(&genesis).unwrap();
        assert_eq!(Genesis::from_json(&json).unwrap(), genesis);
    }
}
