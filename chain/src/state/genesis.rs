//! The genesis file: dev accounts with balances, subnets with their owner and hyperparameters, and
//! optional initial registrations with stake.
//!
//! ```json
//! {
//!   "timestamp_ms": 1700000000000,
//!   "balances": { "5Grwva…": 1000000000000 },
//!   "subnets": [{
//!     "netuid": 1, "owner_coldkey": "5Grwva…", "owner_hotkey": "5FHneW…",
//!     "emission_per_block": 1000000000,
//!     "hyperparameters": { "tempo": 10, "commit_reveal_weights_enabled": false },
//!     "neurons": [{ "hotkey": "5…", "coldkey": "5…", "stake": 1000 }]
//!   }]
//! }
//! ```
//! Hyperparameters not named keep the new-subnet defaults of [`Hyperparameters::default`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use subnet_common::chain::types::{Balance, Hyperparameters, NetUid};
use subnet_common::keys::AccountId;

/// The whole genesis file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Wall-clock time of block 0 in milliseconds since the Unix epoch (the node's business; the
    /// state machine reads no clock). Part of the genesis hash.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Free text mixed into the genesis hash, so two dev chains with equal content still differ.
    #[serde(default)]
    pub seed: String,
    /// Free balance per account, in rao.
    #[serde(default)]
    pub balances: BTreeMap<AccountId, Balance>,
    /// The subnets that exist from block 0.
    #[serde(default)]
    pub subnets: Vec<GenesisSubnet>,
}

/// One subnet at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisSubnet {
    /// Subnet id; 0 is the root subnet and is refused.
    pub netuid: NetUid,
    /// The coldkey that may change hyperparameters and receives the owner cut.
    pub owner_coldkey: AccountId,
    /// The owner's hotkey: never pruned, always permitted; the owner cut is staked on it.
    pub owner_hotkey: AccountId,
    /// Whether the owner hotkey takes uid 0 at genesis, as Subtensor's network registration does.
    #[serde(default = "default_true")]
    pub register_owner_hotkey: bool,
    /// Rao emitted into the subnet per block, paid out at each epoch.
    #[serde(default = "default_emission_per_block")]
    pub emission_per_block: Balance,
    /// Overrides of the new-subnet defaults.
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
    /// Hotkeys registered at genesis after the owner's, in uid order.
    #[serde(default)]
    pub neurons: Vec<GenesisNeuron>,
}

/// A registration present at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenesisNeuron {
    /// The registered hotkey.
    pub hotkey: AccountId,
    /// Its owner, who holds the stake.
    pub coldkey: AccountId,
    /// Stake of `coldkey` on `hotkey` in this subnet, rao (created at genesis).
    #[serde(default)]
    pub stake: Balance,
}

fn default_true() -> bool {
    true
}

/// 1 TAO per block.
fn default_emission_per_block() -> Balance {
    1_000_000_000
}

/// Why a genesis cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Netuid 0 is the root subnet.
    #[error("netuid 0 is the root subnet and cannot be created")]
    RootSubnet,
    /// Two subnets share a netuid.
    #[error("subnet {netuid} is defined twice")]
    DuplicateSubnet {
        /// The netuid.
        netuid: NetUid,
    },
    /// A hotkey appears twice in one subnet.
    #[error("hotkey {hotkey} is registered twice on subnet {netuid}")]
    DuplicateHotkey {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// A hotkey is claimed by two coldkeys.
    #[error("hotkey {hotkey} is owned by two coldkeys")]
    ConflictingOwner {
        /// Hotkey.
        hotkey: AccountId,
    },
    /// More registrations than `max_allowed_uids`.
    #[error("subnet {netuid} has {count} neurons, max_allowed_uids is {max}")]
    TooManyNeurons {
        /// Subnet.
        netuid: NetUid,
        /// Neurons given.
        count: usize,
        /// The limit.
        max: u16,
    },
    /// A hyperparameter is out of range.
    #[error("subnet {netuid}: {reason}")]
    InvalidHyperparameters {
        /// Subnet.
        netuid: NetUid,
        /// What is wrong.
        reason: String,
    },
    /// The genesis JSON does not parse.
    #[error("genesis JSON: {0}")]
    Json(String),
}

impl Genesis {
    /// Parses a genesis file; unknown fields are errors.
    pub fn from_json(json: &str) -> Result<Self, GenesisError> {
        serde_json::from_str(json).map_err(|e| GenesisError::Json(e.to_string()))
    }
}
