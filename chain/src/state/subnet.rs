//! One subnet's storage: its owner, hyperparameters, neurons (one per uid), stake, commitments and
//! weight commits (`spec/subtensor.md` §1.2, §1.6 storage).

use std::collections::BTreeMap;

use parity_scale_codec::{Decode, Encode};
use subnet_common::chain::types::{AxonInfo, Balance, Hyperparameters, NetUid, Uid};
use subnet_common::keys::AccountId;

/// The largest number of unrevealed commits per hotkey (`spec/subtensor.md` §2.4).
pub const MAX_UNREVEALED_COMMITS: usize = 10;

/// Everything stored per uid.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Neuron {
    /// The uid's hotkey.
    pub hotkey: AccountId,
    /// Published endpoint; `block` 0 = never served.
    pub axon: AxonInfo,
    /// Block of the most recent (re)registration; immunity counts from here.
    pub block_at_registration: u64,
    /// Block of the last set_weights or commit.
    pub last_update: u64,
    /// Weight row `(dest, w)`, max-upscaled.
    pub weights: Vec<(Uid, u16)>,
    /// Bond row `(miner, b)` from the last epoch.
    pub bonds: Vec<(Uid, u16)>,
    /// Permit from the last epoch; applies now.
    pub validator_permit: bool,
    /// Active at the last epoch.
    pub active: bool,
    /// Consensus at the last epoch, /65535.
    pub consensus: u16,
    /// Incentive at the last epoch, /65535.
    pub incentive: u16,
    /// Dividends at the last epoch, /65535.
    pub dividends: u16,
    /// Validator trust at the last epoch, /65535.
    pub validator_trust: u16,
    /// Emission at the last epoch, rao; the pruning score.
    pub emission: Balance,
}

impl Neuron {
    /// A freshly (re)registered neuron, as Subtensor's `append_neuron` / `clear_neuron` leave it.
    pub fn new(hotkey: AccountId, block: u64) -> Self {
        Self {
            hotkey,
            axon: AxonInfo::default(),
            block_at_registration: block,
            last_update: block,
            weights: Vec::new(),
            bonds: Vec::new(),
            validator_permit: false,
            active: true,
            consensus: 0,
            incentive: 0,
            dividends: 0,
            validator_trust: 0,
            emission: 0,
        }
    }
}

/// A queued commit–reveal v2 commit.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct WeightCommit {
    /// The committed hash.
    pub hash: [u8; 32],
    /// Legacy epoch index at the commit block.
    pub epoch: u64,
    /// Block of the commit.
    pub block: u64,
}

/// A queued commit–reveal v4 commit: weights encrypted to a round of the chain's beacon, which
/// the chain opens and applies at the reveal epoch.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TimelockedCommit {
    /// The committing hotkey.
    pub hotkey: AccountId,
    /// The ciphertext of a `WeightsTlockPayload`.
    pub commit: Vec<u8>,
    /// The beacon round that opens it.
    pub reveal_round: u64,
    /// Legacy epoch index at the commit block.
    pub epoch: u64,
}

/// A stored commitment.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct StoredCommitment {
    /// Block it was set at (also the rate-limit anchor).
    pub block: u64,
    /// The bytes.
    pub data: Vec<u8>,
}

/// One subnet.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Subnet {
    /// Subnet id.
    pub netuid: NetUid,
    /// May change hyperparameters; receives the owner cut.
    pub owner_coldkey: AccountId,
    /// Never pruned, always permitted; the owner cut is staked on it.
    pub owner_hotkey: AccountId,
    /// Current hyperparameters.
    pub params: Hyperparameters,
    /// Rao emitted per block.
    pub emission_per_block: Balance,
    /// Rao accrued since the last epoch.
    pub pending_emission: Balance,
    /// Block of the last epoch (0 = none yet).
    pub last_epoch_block: u64,
    /// One entry per uid, index = uid.
    pub neurons: Vec<Neuron>,
    /// hotkey → uid.
    pub uids: BTreeMap<AccountId, Uid>,
    /// (hotkey, coldkey) → stake in rao.
    pub stakes: BTreeMap<(AccountId, AccountId), Balance>,
    /// hotkey → commitment.
    pub commitments: BTreeMap<AccountId, StoredCommitment>,
    /// hotkey → queued weight commits, oldest first.
    pub weight_commits: BTreeMap<AccountId, Vec<WeightCommit>>,
    /// Timelocked weight commits waiting for their reveal, oldest first.
    pub timelocked_commits: Vec<TimelockedCommit>,
}

impl Subnet {
    /// An empty subnet.
    pub fn new(
        netuid: NetUid,
        owner_coldkey: AccountId,
        owner_hotkey: AccountId,
        params: Hyperparameters,
        emission_per_block: Balance,
    ) -> Self {
        Self {
            netuid,
            owner_coldkey,
            owner_hotkey,
            params,
            emission_per_block,
            pending_emission: 0,
            last_epoch_block: 0,
            neurons: Vec::new(),
            uids: BTreeMap::new(),
            stakes: BTreeMap::new(),
            commitments: BTreeMap::new(),
            weight_commits: BTreeMap::new(),
            timelocked_commits: Vec::new(),
        }
    }

    /// Number of uids.
    pub fn n(&self) -> u16 {
        // `neurons` never grows past `max_allowed_uids: u16`.
        u16::try_from(self.neurons.len()).unwrap_or(u16::MAX)
    }

    /// The hotkey's uid, if registered.
    pub fn uid_of(&self, hotkey: &AccountId) -> Option<Uid> {
        self.uids.get(hotkey).copied()
    }

    /// The owner hotkey's uid, if registered.
    pub fn owner_uid(&self) -> Option<Uid> {
        self.uid_of(&self.owner_hotkey)
    }

    /// Total stake on `hotkey` in this subnet, over all coldkeys.
    pub fn hotkey_stake(&self, hotkey: &AccountId) -> Balance {
        self.stakes
            .range((*hotkey, AccountId([0; 32]))..=(*hotkey, AccountId([0xff; 32])))
            .fold(0u64, |sum, (_, s)| sum.saturating_add(*s))
    }

    /// Stake of `coldkey` on `hotkey`.
    pub fn stake_of(&self, hotkey: &AccountId, coldkey: &AccountId) -> Balance {
        self.stakes.get(&(*hotkey, *coldkey)).copied().unwrap_or(0)
    }

    /// Adds stake (saturating: issuance never nears u64::MAX on a dev chain).
    pub fn credit_stake(&mut self, hotkey: AccountId, coldkey: AccountId, amount: Balance) {
        if amount == 0 {
            return;
        }
        let entry = self.stakes.entry((hotkey, coldkey)).or_insert(0);
        *entry = entry.saturating_add(amount);
    }

    /// Legacy epoch index of a block: `(block + netuid + 1) / (tempo + 1)` (§1.9).
    pub fn epoch_index(&self, block: u64) -> u64 {
        (block + u64::from(self.netuid) + 1) / (u64::from(self.params.tempo) + 1)
    }

    /// Whether the epoch runs at `block`: `(block + netuid + 1) % (tempo + 1) == 0`, never at tempo 0.
    pub fn is_epoch_block(&self, block: u64) -> bool {
        let tempo = u64::from(self.params.tempo);
        tempo != 0 && (block + u64::from(self.netuid) + 1).is_multiple_of(tempo + 1)
    }

    /// Whether `uid` is still immune at `block`.
    pub fn is_immune(&self, uid: Uid, block: u64) -> bool {
        self.neurons.get(usize::from(uid)).is_some_and(|n| {
            block.saturating_sub(n.block_at_registration) < u64::from(self.params.immunity_period)
        })
    }

    /// The uid a registration replaces when the subnet is full (legacy rule of §5.3 with the pruning
    /// score = last emission): the lowest emission among non-immune uids, ties to the earliest
    /// registration, then the lowest uid; if all are immune, the same among immune uids. The owner
    /// hotkey is never pruned. `None` when only the owner is left.
    pub fn uid_to_prune(&self, block: u64) -> Option<Uid> {
        let candidates = || {
            self.neurons
                .iter()
                .enumerate()
                .filter(|(_, n)| n.hotkey != self.owner_hotkey)
                .filter_map(|(uid, n)| Some((Uid::try_from(uid).ok()?, n)))
        };
        let best = |immune: bool| {
            candidates()
                .filter(|(uid, _)| self.is_immune(*uid, block) == immune)
                .min_by_key(|(uid, n)| (n.emission, n.block_at_registration, *uid))
                .map(|(uid, _)| uid)
        };
        best(false).or_else(|| best(true))
    }

    /// Frees `uid` for `hotkey`: the old hotkey loses its uid, axon, commitment and commits; the
    /// neuron is reset; every weight to the uid becomes 0 (`clear_neuron`, §5.2). Returns the old
    /// hotkey.
    pub fn replace_neuron(&mut self, uid: Uid, hotkey: AccountId, block: u64) -> Option<AccountId> {
        let slot = self.neurons.get_mut(usize::from(uid))?;
        let old = std::mem::replace(slot, Neuron::new(hotkey, block)).hotkey;
        self.uids.remove(&old);
        self.commitments.remove(&old);
        self.weight_commits.remove(&old);
        self.uids.insert(hotkey, uid);
        for neuron in &mut self.neurons {
            for (dest, w) in &mut neuron.weights {
                if *dest == uid {
                    *w = 0;
                }
            }
        }
        Some(old)
    }

    /// Appends `hotkey` as uid n.
    pub fn append_neuron(&mut self, hotkey: AccountId, block: u64) -> Uid {
        let uid = self.n();
        self.neurons.push(Neuron::new(hotkey, block));
        self.uids.insert(hotkey, uid);
        uid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> AccountId {
        AccountId([b; 32])
    }

    fn subnet() -> Subnet {
        let params = Hyperparameters {
            immunity_period: 10,
            ..Hyperparameters::default()
        };
        let mut s = Subnet::new(1, key(100), key(101), params, 0);
        s.append_neuron(key(101), 0);
        s
    }

    #[test]
    fn epoch_schedule_follows_the_legacy_rule() {
        let mut s = subnet();
        s.params.tempo = 10;
        // (b + 1 + 1) % 11 == 0 → b = 9, 20, 31
        let blocks: Vec<u64> = (0..35).filter(|b| s.is_epoch_block(*b)).collect();
        assert_eq!(blocks, vec![9, 20, 31]);
        assert_eq!(s.epoch_index(8), 0);
        assert_eq!(s.epoch_index(9), 1);
        s.params.tempo = 0;
        assert!((0..100).all(|b| !s.is_epoch_block(b)));
    }

    #[test]
    fn pruning_picks_lowest_emission_non_immune_and_never_the_owner() {
        let mut s = subnet();
        s.append_neuron(key(1), 0);
        s.append_neuron(key(2), 0);
        s.append_neuron(key(3), 15);
        s.neurons[1].emission = 50;
        s.neurons[2].emission = 40;
        s.neurons[3].emission = 0; // immune at block 20
        assert_eq!(s.uid_to_prune(20), Some(2));
        s.neurons[1].emission = 40;
        // tie on emission and registration block → lowest uid
        assert_eq!(s.uid_to_prune(20), Some(1));
    }

    #[test]
    fn pruning_falls_back_to_immune_uids_and_fails_with_only_the_owner() {
        let mut s = subnet();
        assert_eq!(s.uid_to_prune(1), None);
        s.append_neuron(key(1), 0);
        s.append_neuron(key(2), 1);
        assert_eq!(s.uid_to_prune(2), Some(1));
    }

    #[test]
    fn replacing_a_neuron_clears_its_state_and_weights_to_it() {
        let mut s = subnet();
        s.append_neuron(key(1), 0);
        s.neurons[0].weights = vec![(0, 5), (1, 65535)];
        s.neurons[1].emission = 7;
        s.commitments.insert(
            key(1),
            StoredCommitment {
                block: 1,
                data: vec![1],
            },
        );
        let old = s.replace_neuron(1, key(9), 30);
        assert_eq!(old, Some(key(1)));
        assert_eq!(s.uid_of(&key(9)), Some(1));
        assert_eq!(s.uid_of(&key(1)), None);
        assert!(s.commitments.is_empty());
        assert_eq!(s.neurons[1], Neuron::new(key(9), 30));
        assert_eq!(s.neurons[0].weights, vec![(0, 5), (1, 0)]);
    }

    #[test]
    fn hotkey_stake_sums_all_coldkeys() {
        let mut s = subnet();
        s.credit_stake(key(1), key(10), 5);
        s.credit_stake(key(1), key(11), 7);
        s.credit_stake(key(2), key(10), 100);
        assert_eq!(s.hotkey_stake(&key(1)), 12);
        assert_eq!(s.stake_of(&key(1), &key(11)), 7);
        assert_eq!(s.hotkey_stake(&key(3)), 0);
    }
}
