//! Weights: `set_weights` with every check of `spec/subtensor.md` §2.2 in Subtensor's order, and
//! commit–reveal v2 (`commit_weights` / `reveal_weights`, §2.4) with the legacy epoch index, and
//! commit–reveal v4 (`commit_timelocked_weights`, opened by the chain with its own beacon).

use std::collections::BTreeSet;

use subnet_common::chain::types::{Event, NetUid, Uid, commit_hash};
use subnet_common::keys::AccountId;

use super::neurons::passes_rate_limit;
use parity_scale_codec::Decode;
use subnet_common::timelock::{self, WeightsTlockPayload};

use super::subnet::{MAX_UNREVEALED_COMMITS, Subnet, TimelockedCommit, WeightCommit};
use super::{ChainError, State};
use crate::yuma::max_upscale_to_u16;

/// The commit–reveal version whose commits are timelocked.
pub const TIMELOCK_VERSION: u16 = 4;

/// A weight row that passed every check, ready to store.
struct CheckedWeights {
    uid: Uid,
    row: Vec<(Uid, u16)>,
}

impl State {
    pub(super) fn set_weights(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        dests: &[Uid],
        weights: &[u16],
        version_key: u64,
    ) -> Result<Vec<Event>, ChainError> {
        if let Some(subnet) = self.subnets.get(&netuid)
            && subnet.params.commit_reveal_weights_enabled
        {
            return Err(ChainError::CommitRevealEnabled { netuid });
        }
        let checked = self.check_weights(hotkey, netuid, dests, weights, version_key)?;
        let block = self.block;
        let neuron = &mut self.subnet_mut(netuid)?.neurons[usize::from(checked.uid)];
        neuron.weights = checked.row;
        neuron.last_update = block;
        Ok(vec![Event::WeightsSet {
            netuid,
            uid: checked.uid,
        }])
    }

    /// `internal_set_weights` checks 1–14 (§2.2), in order. The rate limit (8) applies only with
    /// commit–reveal off; with it on, the commit was rate-limited instead.
    fn check_weights(
        &self,
        hotkey: &AccountId,
        netuid: NetUid,
        dests: &[Uid],
        weights: &[u16],
        version_key: u64,
    ) -> Result<CheckedWeights, ChainError> {
        // 1.
        if netuid == 0 {
            return Err(ChainError::CanNotSetRootNetworkWeights);
        }
        // 2.
        if dests.len() != weights.len() {
            return Err(ChainError::WeightVecNotEqualSize {
                uids: dests.len(),
                values: weights.len(),
            });
        }
        // 3.
        let subnet = self.subnet(netuid)?;
        let n = subnet.n();
        let params = &subnet.params;
        // 4.
        if dests.len() > usize::from(n) {
            return Err(ChainError::UidsLengthExceedUidsInSubNet {
                len: dests.len(),
                n,
            });
        }
        // 5.
        let uid = subnet
            .uid_of(hotkey)
            .ok_or(ChainError::HotKeyNotRegisteredInSubNet {
                netuid,
                hotkey: *hotkey,
            })?;
        let is_owner = *hotkey == subnet.owner_hotkey;
        // 6.
        let stake = subnet.hotkey_stake(hotkey);
        if !is_owner && stake < params.stake_threshold {
            return Err(ChainError::NotEnoughStakeToSetWeights {
                stake,
                threshold: params.stake_threshold,
            });
        }
        // 7.
        if params.weights_version_key != 0 && version_key < params.weights_version_key {
            return Err(ChainError::IncorrectWeightVersionKey {
                required: params.weights_version_key,
                got: version_key,
            });
        }
        // 8.
        let neuron = &subnet.neurons[usize::from(uid)];
        if !params.commit_reveal_weights_enabled
            && !passes_rate_limit(
                neuron.last_update,
                params.weights_set_rate_limit,
                self.block,
            )
        {
            return Err(ChainError::SettingWeightsTooFast {
                last_update: neuron.last_update,
                limit: params.weights_set_rate_limit,
            });
        }
        // 9.
        let self_weight = dests == [uid];
        if !self_weight && !is_owner && !neuron.validator_permit {
            return Err(ChainError::NeuronNoValidatorPermit { uid });
        }
        // 10.
        let mut seen = BTreeSet::new();
        if !dests.iter().all(|d| seen.insert(*d)) {
            return Err(ChainError::DuplicateUids);
        }
        // 11.
        if let Some(&bad) = dests.iter().find(|d| **d >= n) {
            return Err(ChainError::UidVecContainInvalidOne { uid: bad });
        }
        // 12.
        let min = usize::from(params.min_allowed_weights.min(n));
        if !self_weight && dests.len() < min {
            return Err(ChainError::WeightVecLengthIsLow {
                len: dests.len(),
                min,
            });
        }
        // 13.
        let upscaled = max_upscale_to_u16(weights);
        // 14.
        if params.max_weight_limit != u16::MAX && !self_weight {
            let sum: u64 = upscaled.iter().map(|w| u64::from(*w)).sum();
            let max = upscaled.iter().copied().max().map_or(0, u64::from);
            let normalized_max = (max * u64::from(u16::MAX)).checked_div(sum).unwrap_or(0);
            if normalized_max > u64::from(params.max_weight_limit) {
                return Err(ChainError::MaxWeightExceeded {
                    max: normalized_max,
                    limit: params.max_weight_limit,
                });
            }
        }
        Ok(CheckedWeights {
            uid,
            row: dests.iter().copied().zip(upscaled).collect(),
        })
    }

    pub(super) fn commit_weights(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        hash: [u8; 32],
    ) -> Result<Vec<Event>, ChainError> {
        let block = self.block;
        let subnet = self.subnet(netuid)?;
        if !subnet.params.commit_reveal_weights_enabled {
            return Err(ChainError::CommitRevealDisabled { netuid });
        }
        let uid = committer_uid(subnet, hotkey, block)?;
        let epoch = subnet.epoch_index(block);
        let mut queue: Vec<WeightCommit> = subnet
            .weight_commits
            .get(hotkey)
            .map(|q| {
                q.iter()
                    .filter(|c| !is_expired(subnet, c, epoch))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if queue.len() >= MAX_UNREVEALED_COMMITS {
            return Err(ChainError::TooManyUnrevealedCommits {
                limit: MAX_UNREVEALED_COMMITS,
            });
        }
        queue.push(WeightCommit { hash, epoch, block });
        let subnet = self.subnet_mut(netuid)?;
        subnet.weight_commits.insert(*hotkey, queue);
        subnet.neurons[usize::from(uid)].last_update = block;
        Ok(vec![Event::WeightsCommitted {
            netuid,
            hotkey: *hotkey,
            commit_hash: hash,
        }])
    }

    /// Commit–reveal v4: queues weights encrypted to beacon round `reveal_round` for the chain
    /// to open at the reveal epoch ([`State::reveal_timelocked`]). Checked as `commit_weights`
    /// is (commit–reveal on, registered, rate limit, at most ten waiting per hotkey), plus the
    /// subnet's version and a round not yet published.
    pub(super) fn commit_timelocked_weights(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        commit: &[u8],
        reveal_round: u64,
        version: u16,
    ) -> Result<Vec<Event>, ChainError> {
        let block = self.block;
        let subnet = self.subnet(netuid)?;
        if !subnet.params.commit_reveal_weights_enabled {
            return Err(ChainError::CommitRevealDisabled { netuid });
        }
        let expected = subnet.params.commit_reveal_version;
        if version != expected || expected != TIMELOCK_VERSION {
            return Err(ChainError::IncorrectCommitRevealVersion {
                netuid,
                given: version,
                expected,
            });
        }
        if reveal_round <= block {
            return Err(ChainError::InvalidRevealRound {
                round: reveal_round,
                block,
            });
        }
        let uid = committer_uid(subnet, hotkey, block)?;
        let waiting = subnet
            .timelocked_commits
            .iter()
            .filter(|c| c.hotkey == *hotkey)
            .count();
        if waiting >= MAX_UNREVEALED_COMMITS {
            return Err(ChainError::TooManyUnrevealedCommits {
                limit: MAX_UNREVEALED_COMMITS,
            });
        }
        let epoch = subnet.epoch_index(block);
        let subnet = self.subnet_mut(netuid)?;
        subnet.timelocked_commits.push(TimelockedCommit {
            hotkey: *hotkey,
            commit: commit.to_vec(),
            reveal_round,
            epoch,
        });
        subnet.neurons[usize::from(uid)].last_update = block;
        Ok(vec![Event::TimelockedWeightsCommitted {
            netuid,
            hotkey: *hotkey,
            reveal_round,
        }])
    }

    /// Opens and applies the timelocked commits of `netuid` due at the current block: those in
    /// their reveal epoch (commit epoch + `commit_reveal_period`) whose round is published (round
    /// `r` at block `r`). A commit that does not open, carries another hotkey's payload or
    /// invalid weights, or whose reveal epoch passed before its round came, is dropped with the
    /// reason.
    pub(super) fn reveal_timelocked(&mut self, netuid: NetUid) -> Vec<Event> {
        let block = self.block;
        let beacon = self.beacon();
        let Some(subnet) = self.subnets.get_mut(&netuid) else {
            return Vec::new();
        };
        let current_epoch = subnet.epoch_index(block);
        let period = subnet.params.commit_reveal_period;
        let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut subnet.timelocked_commits)
            .into_iter()
            .partition(|c| {
                let reveal_epoch = c.epoch + period;
                current_epoch > reveal_epoch
                    || (current_epoch == reveal_epoch && c.reveal_round <= block)
            });
        subnet.timelocked_commits = waiting;
        let mut events = Vec::new();
        for commit in due {
            let dropped = |reason: String| Event::TimelockedWeightsDropped {
                netuid,
                hotkey: commit.hotkey,
                reason,
            };
            if commit.reveal_round > block {
                events.push(dropped(format!(
                    "the reveal epoch passed before beacon round {}",
                    commit.reveal_round
                )));
                continue;
            }
            let payload =
                match timelock::decrypt(&commit.commit, &beacon.signature(commit.reveal_round))
                    .map_err(|e| e.to_string())
                    .and_then(|bytes| {
                        WeightsTlockPayload::decode(&mut bytes.as_slice())
                            .map_err(|e| e.to_string())
                    }) {
                    Ok(payload) => payload,
                    Err(reason) => {
                        events.push(dropped(reason));
                        continue;
                    }
                };
            if payload.hotkey != commit.hotkey.as_bytes() {
                events.push(dropped("the payload names another hotkey".into()));
                continue;
            }
            match self.check_weights(
                &commit.hotkey,
                netuid,
                &payload.uids,
                &payload.values,
                payload.version_key,
            ) {
                Ok(checked) => {
                    if let Some(subnet) = self.subnets.get_mut(&netuid) {
                        subnet.neurons[usize::from(checked.uid)].weights = checked.row;
                    }
                    events.push(Event::WeightsRevealed {
                        netuid,
                        hotkey: commit.hotkey,
                    });
                    events.push(Event::WeightsSet {
                        netuid,
                        uid: checked.uid,
                    });
                }
                Err(error) => events.push(dropped(error.to_string())),
            }
        }
        events
    }

    pub(super) fn reveal_weights(
        &mut self,
        hotkey: &AccountId,
        netuid: NetUid,
        uids: &[Uid],
        values: &[u16],
        salt: &[u16],
        version_key: u64,
    ) -> Result<Vec<Event>, ChainError> {
        let subnet = self.subnet(netuid)?;
        if !subnet.params.commit_reveal_weights_enabled {
            return Err(ChainError::CommitRevealDisabled { netuid });
        }
        let queue = subnet
            .weight_commits
            .get(hotkey)
            .filter(|q| !q.is_empty())
            .ok_or(ChainError::NoWeightsCommitFound)?;
        let current_epoch = subnet.epoch_index(self.block);
        let expired = queue
            .iter()
            .take_while(|c| is_expired(subnet, c, current_epoch))
            .count();
        let (expired_commits, live) = queue.split_at(expired);
        let hash = commit_hash(hotkey, netuid, uids, values, salt, version_key);
        let Some(position) = live.iter().position(|c| c.hash == hash) else {
            return Err(if expired_commits.iter().any(|c| c.hash == hash) {
                ChainError::ExpiredWeightCommit
            } else {
                ChainError::InvalidRevealCommitHashNotMatch
            });
        };
        let commit = &live[position];
        let reveal_epoch = commit.epoch + subnet.params.commit_reveal_period;
        if current_epoch != reveal_epoch {
            return Err(ChainError::RevealTooEarly {
                commit_epoch: commit.epoch,
                reveal_epoch,
                current_epoch,
            });
        }
        let remaining = live[position + 1..].to_vec();
        let checked = self.check_weights(hotkey, netuid, uids, values, version_key)?;

        let subnet = self.subnet_mut(netuid)?;
        if remaining.is_empty() {
            subnet.weight_commits.remove(hotkey);
        } else {
            subnet.weight_commits.insert(*hotkey, remaining);
        }
        subnet.neurons[usize::from(checked.uid)].weights = checked.row;
        Ok(vec![
            Event::WeightsRevealed {
                netuid,
                hotkey: *hotkey,
            },
            Event::WeightsSet {
                netuid,
                uid: checked.uid,
            },
        ])
    }
}

/// The uid of a hotkey about to commit weights (v2 or v4) at `block`: registered, and past the
/// weights rate limit since its last update.
fn committer_uid(subnet: &Subnet, hotkey: &AccountId, block: u64) -> Result<Uid, ChainError> {
    let uid = subnet
        .uid_of(hotkey)
        .ok_or(ChainError::HotKeyNotRegisteredInSubNet {
            netuid: subnet.netuid,
            hotkey: *hotkey,
        })?;
    let last_update = subnet.neurons[usize::from(uid)].last_update;
    let limit = subnet.params.weights_set_rate_limit;
    if !passes_rate_limit(last_update, limit, block) {
        return Err(ChainError::SettingWeightsTooFast { last_update, limit });
    }
    Ok(uid)
}

/// A commit expires once the current epoch is past its reveal epoch.
pub(super) fn is_expired(subnet: &Subnet, commit: &WeightCommit, current_epoch: u64) -> bool {
    current_epoch > commit.epoch + subnet.params.commit_reveal_period
}
