//! The chain state machine (pure: no IO, no clock).
//!
//! [`State`] holds every account and subnet in ordered maps, so its SCALE encoding is
//! deterministic and the node can commit to it with `sha256(state.encode())`. The node drives it:
//!
//! ```text
//! State::from_genesis(&genesis)
//! loop {                                   // one block, number state.current_block()
//!     for ext in block { state.apply_extrinsic(&ext, &genesis_hash) }   // Ok(events) | Err(refused)
//!     state.end_block()                    // emission accrues; epochs run (§1.9); block += 1
//! }
//! ```
//! A refused extrinsic changes nothing, not even the nonce: every call checks everything before it
//! writes anything.
//!
//! | submodule | what |
//! |---|---|
//! | [`error`] | [`ChainError`], with Subtensor's error names |
//! | [`genesis`] | the genesis file |
//! | [`subnet`] | per-subnet storage: neurons, stake, commitments, weight commits; pruning |
//! | [`params`] | owner-settable hyperparameters and their ranges |
//! | `accounts` | transfer, add_stake, remove_stake |
//! | `neurons` | register (burn, append or prune), serve_axon, set_commitment |
//! | `weights` | set_weights (§2.2), commit_weights / reveal_weights (§2.4) |
//! | `epoch` | end of block: emission, Yuma Consensus, payouts (§1.6, §1.8, §1.9) |

mod accounts;
mod epoch;
pub mod error;
pub mod genesis;
mod neurons;
pub mod params;
pub mod subnet;
mod weights;

use std::collections::BTreeMap;

use parity_scale_codec::{Decode, Encode};
use subnet_common::chain::types::{
    AccountInfo, Call, Commitment, Event, GenesisHash, Hyperparameters, MAX_EXTRINSIC_SIZE,
    Metagraph, NetUid, NeuronInfo, SignedExtrinsic,
};
use subnet_common::keys::AccountId;
use subnet_common::timelock::Beacon;

pub use error::ChainError;
pub use genesis::{Genesis, GenesisError, GenesisNeuron, GenesisSubnet};
use subnet::Subnet;

/// The whole chain state.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct State {
    /// The block being built: extrinsics applied now are in this block.
    block: u64,
    /// Free balance and nonce per account.
    accounts: BTreeMap<AccountId, AccountInfo>,
    /// hotkey → owning coldkey (set at first registration, never changes).
    hotkey_owners: BTreeMap<AccountId, AccountId>,
    /// Subnets by netuid.
    subnets: BTreeMap<NetUid, Subnet>,
    /// What the chain's beacon key derives from (the genesis seed and time): its round `r`
    /// signature opens timelocked weight commits made for `r`, and round `r` is published at
    /// block `r`. Anyone who knows the genesis can derive it: the dev chain's commit–reveal v4
    /// hides weights from nobody who reads this, only the flow is Subtensor's.
    beacon_seed: Vec<u8>,
}

impl State {
    /// Builds block 0's state from a genesis; the first block to build is 1.
    pub fn from_genesis(genesis: &Genesis) -> Result<Self, GenesisError> {
        let accounts = genesis
            .balances
            .iter()
            .map(|(id, free)| {
                (
                    *id,
                    AccountInfo {
                        free: *free,
                        nonce: 0,
                    },
                )
            })
            .collect();
        let mut state = Self {
            block: 1,
            accounts,
            hotkey_owners: BTreeMap::new(),
            subnets: BTreeMap::new(),
            beacon_seed: format!("{}|{}", genesis.seed, genesis.timestamp_ms).into_bytes(),
        };
        for g in &genesis.subnets {
            state.add_genesis_subnet(g)?;
        }
        Ok(state)
    }

    fn add_genesis_subnet(&mut self, g: &GenesisSubnet) -> Result<(), GenesisError> {
        let netuid = g.netuid;
        if netuid == 0 {
            return Err(GenesisError::RootSubnet);
        }
        if self.subnets.contains_key(&netuid) {
            return Err(GenesisError::DuplicateSubnet { netuid });
        }
        params::validate(&g.hyperparameters)
            .map_err(|reason| GenesisError::InvalidHyperparameters { netuid, reason })?;
        let count = g.neurons.len() + usize::from(g.register_owner_hotkey);
        let max = g.hyperparameters.max_allowed_uids;
        if count > usize::from(max) {
            return Err(GenesisError::TooManyNeurons { netuid, count, max });
        }
        let mut subnet = Subnet::new(
            netuid,
            g.owner_coldkey,
            g.owner_hotkey,
            g.hyperparameters.clone(),
            g.emission_per_block,
        );
        self.claim_hotkey(g.owner_hotkey, g.owner_coldkey)?;
        if g.register_owner_hotkey {
            subnet.append_neuron(g.owner_hotkey, 0);
        }
        for neuron in &g.neurons {
            if subnet.uid_of(&neuron.hotkey).is_some() {
                return Err(GenesisError::DuplicateHotkey {
                    netuid,
                    hotkey: neuron.hotkey,
                });
            }
            self.claim_hotkey(neuron.hotkey, neuron.coldkey)?;
            subnet.append_neuron(neuron.hotkey, 0);
            subnet.credit_stake(neuron.hotkey, neuron.coldkey, neuron.stake);
        }
        self.subnets.insert(netuid, subnet);
        Ok(())
    }

    fn claim_hotkey(&mut self, hotkey: AccountId, coldkey: AccountId) -> Result<(), GenesisError> {
        match self.hotkey_owners.insert(hotkey, coldkey) {
            Some(previous) if previous != coldkey => Err(GenesisError::ConflictingOwner { hotkey }),
            _ => Ok(()),
        }
    }

    /// Checks and applies one signed extrinsic in the current block: size, nonce (must equal the
    /// signer's account nonce), signature over `(call, nonce, genesis_hash)`, then the call's own
    /// rules. On success the signer's nonce goes up by one; on any error nothing changes.
    pub fn apply_extrinsic(
        &mut self,
        ext: &SignedExtrinsic,
        genesis_hash: &GenesisHash,
    ) -> Result<Vec<Event>, ChainError> {
        let size = ext.encoded_size();
        if size > MAX_EXTRINSIC_SIZE {
            return Err(ChainError::TooLarge {
                size,
                max: MAX_EXTRINSIC_SIZE,
            });
        }
        let expected = self.account(&ext.signer).nonce;
        if ext.nonce != expected {
            return Err(ChainError::BadNonce {
                expected,
                got: ext.nonce,
            });
        }
        if !ext.verify(genesis_hash) {
            return Err(ChainError::BadSignature { signer: ext.signer });
        }
        let events = self.dispatch(&ext.signer, &ext.call)?;
        let account = self.accounts.entry(ext.signer).or_default();
        account.nonce += 1;
        Ok(events)
    }

    /// Applies a call as if `signer` had signed it, without signature or nonce checks. For the
    /// simulator and tests; the node must use [`State::apply_extrinsic`].
    pub(crate) fn dispatch(
        &mut self,
        signer: &AccountId,
        call: &Call,
    ) -> Result<Vec<Event>, ChainError> {
        match call {
            Call::Register { netuid, hotkey } => self.register(signer, *netuid, hotkey),
            Call::ServeAxon {
                netuid,
                version,
                ip,
                port,
                ip_type,
                protocol,
            } => self.serve_axon(
                signer,
                *netuid,
                neurons::Endpoint {
                    version: *version,
                    ip: *ip,
                    port: *port,
                    ip_type: *ip_type,
                    protocol: *protocol,
                },
            ),
            Call::SetCommitment { netuid, data } => self.set_commitment(signer, *netuid, data),
            Call::SetWeights {
                netuid,
                dests,
                weights,
                version_key,
            } => self.set_weights(signer, *netuid, dests, weights, *version_key),
            Call::CommitWeights {
                netuid,
                commit_hash,
            } => self.commit_weights(signer, *netuid, *commit_hash),
            Call::RevealWeights {
                netuid,
                uids,
                values,
                salt,
                version_key,
            } => self.reveal_weights(signer, *netuid, uids, values, salt, *version_key),
            Call::AddStake {
                hotkey,
                netuid,
                amount,
            } => self.add_stake(signer, hotkey, *netuid, *amount),
            Call::RemoveStake {
                hotkey,
                netuid,
                amount,
            } => self.remove_stake(signer, hotkey, *netuid, *amount),
            Call::Transfer { dest, amount } => self.transfer(signer, dest, *amount),
            Call::SetHyperparameter {
                netuid,
                param,
                value,
            } => self.set_hyperparameter(signer, *netuid, *param, *value),
            Call::CommitTimelockedWeights {
                netuid,
                commit,
                reveal_round,
                commit_reveal_version,
            } => self.commit_timelocked_weights(
                signer,
                *netuid,
                commit,
                *reveal_round,
                *commit_reveal_version,
            ),
        }
    }

    /// The chain's beacon (see `beacon_seed`).
    pub fn beacon(&self) -> Beacon {
        Beacon::from_seed(&self.beacon_seed)
    }

    /// The block being built (extrinsics applied now land in it).
    pub fn current_block(&self) -> u64 {
        self.block
    }

    /// An account's free balance and nonce (zero for unknown accounts).
    pub fn account(&self, id: &AccountId) -> AccountInfo {
        self.accounts.get(id).copied().unwrap_or_default()
    }

    /// The coldkey owning `hotkey`, once it has been registered somewhere.
    pub fn hotkey_owner(&self, hotkey: &AccountId) -> Option<AccountId> {
        self.hotkey_owners.get(hotkey).copied()
    }

    /// The netuids of all subnets, ascending.
    pub fn netuids(&self) -> Vec<NetUid> {
        self.subnets.keys().copied().collect()
    }

    /// A subnet's hyperparameters.
    pub fn hyperparameters(&self, netuid: NetUid) -> Option<Hyperparameters> {
        self.subnets.get(&netuid).map(|s| s.params.clone())
    }

    /// Stake of `coldkey` on `hotkey` in `netuid`, rao.
    pub fn stake(&self, netuid: NetUid, hotkey: &AccountId, coldkey: &AccountId) -> u64 {
        self.subnets
            .get(&netuid)
            .map_or(0, |s| s.stake_of(hotkey, coldkey))
    }

    /// Every uid of a subnet with the §5.1 fields, as of the current block.
    pub fn metagraph(&self, netuid: NetUid) -> Option<Metagraph> {
        let subnet = self.subnets.get(&netuid)?;
        let neurons = subnet
            .neurons
            .iter()
            .zip(0..)
            .map(|(n, uid)| NeuronInfo {
                hotkey: n.hotkey,
                coldkey: self.hotkey_owner(&n.hotkey).unwrap_or(n.hotkey),
                uid,
                netuid,
                active: n.active,
                axon_info: n.axon.clone(),
                stake: subnet.hotkey_stake(&n.hotkey),
                emission: n.emission,
                incentive: n.incentive,
                consensus: n.consensus,
                validator_trust: n.validator_trust,
                dividends: n.dividends,
                rank: 0,
                trust: 0,
                pruning_score: 0,
                last_update: n.last_update,
                validator_permit: n.validator_permit,
                weights: n.weights.clone(),
                bonds: n.bonds.clone(),
                block_at_registration: n.block_at_registration,
            })
            .collect();
        Some(Metagraph {
            netuid,
            block: self.block,
            neurons,
        })
    }

    /// Every stored commitment of a subnet's registered hotkeys, in uid order.
    pub fn commitments(&self, netuid: NetUid) -> Option<Vec<Commitment>> {
        let subnet = self.subnets.get(&netuid)?;
        Some(
            subnet
                .neurons
                .iter()
                .zip(0..)
                .filter_map(|(n, uid)| {
                    let c = subnet.commitments.get(&n.hotkey)?;
                    Some(Commitment {
                        hotkey: n.hotkey,
                        uid,
                        block: c.block,
                        data: c.data.clone(),
                    })
                })
                .collect(),
        )
    }

    fn subnet(&self, netuid: NetUid) -> Result<&Subnet, ChainError> {
        self.subnets
            .get(&netuid)
            .ok_or(ChainError::SubnetNotExists { netuid })
    }

    fn subnet_mut(&mut self, netuid: NetUid) -> Result<&mut Subnet, ChainError> {
        self.subnets
            .get_mut(&netuid)
            .ok_or(ChainError::SubnetNotExists { netuid })
    }

    fn free(&self, id: &AccountId) -> u64 {
        self.account(id).free
    }

    /// Sets a free balance, creating the account if needed.
    fn set_free(&mut self, id: &AccountId, free: u64) {
        self.accounts.entry(*id).or_default().free = free;
    }

    fn set_hyperparameter(
        &mut self,
        signer: &AccountId,
        netuid: NetUid,
        param: subnet_common::chain::types::Hyperparameter,
        value: u64,
    ) -> Result<Vec<Event>, ChainError> {
        let subnet = self.subnet(netuid)?;
        if subnet.owner_coldkey != *signer {
            return Err(ChainError::NotSubnetOwner { netuid });
        }
        let updated = params::with_value(&subnet.params, param, value, subnet.n())?;
        self.subnet_mut(netuid)?.params = updated;
        Ok(vec![Event::HyperparameterSet {
            netuid,
            param,
            value,
        }])
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests;
