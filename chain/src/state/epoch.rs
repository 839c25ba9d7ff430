//! End of block: each subnet accrues `emission_per_block`; at its epoch block (§1.9 legacy schedule
//! `(b + netuid + 1) % (tempo + 1) == 0`) the accrued amount is paid out: the owner cut
//! (`subnet_owner_cut`/65535, ≈ 18%) is staked on the owner hotkey, and the rest goes through Yuma
//! Consensus (§1.6): each uid's server and validator emission is staked on its hotkey, owned by its
//! coldkey (§1.8 "recommendation for a dev chain"; no take, nominators or pools).

use std::collections::BTreeMap;

use subnet_common::chain::types::{Balance, Event, NetUid};
use subnet_common::keys::AccountId;

use super::subnet::Subnet;
use super::weights::is_expired;
use super::{ChainError, State};
use crate::yuma::{self, EpochInput, EpochOutput, YumaParams};

impl State {
    /// Finishes the current block: opens the timelocked weight commits due, accrues emission,
    /// runs the epochs due at this block, then moves to the next block. Returns the reveal and
    /// [`Event::EpochRun`] events.
    pub fn end_block(&mut self) -> Vec<Event> {
        let block = self.block;
        let mut events = Vec::new();
        // Timelocked commits due now are applied before any epoch of this block runs.
        let netuids: Vec<NetUid> = self.subnets.keys().copied().collect();
        for netuid in netuids {
            events.extend(self.reveal_timelocked(netuid));
        }
        for subnet in self.subnets.values_mut() {
            subnet.pending_emission = subnet
                .pending_emission
                .saturating_add(subnet.emission_per_block);
            if subnet.is_epoch_block(block) {
                let emission = std::mem::take(&mut subnet.pending_emission);
                events.push(run_epoch(subnet, &self.hotkey_owners, block, emission));
            }
        }
        self.block += 1;
        events
    }

    /// Runs a subnet's epoch math now, in the current block, with `emission_total` rao, and stores
    /// its outputs (consensus, incentive, dividends, trust, permits, bonds, emission) without
    /// paying anything out, as Subtensor's `epoch()` does in its tests. Pending emission and the
    /// schedule are untouched. The simulator uses it; a node never needs it.
    pub fn run_epoch_without_payout(
        &mut self,
        netuid: NetUid,
        emission_total: Balance,
    ) -> Result<(), ChainError> {
        let block = self.block;
        let subnet = self
            .subnets
            .get_mut(&netuid)
            .ok_or(ChainError::SubnetNotExists { netuid })?;
        store_epoch(subnet, block, emission_total);
        Ok(())
    }
}

/// The yuma parameters from a subnet's hyperparameters.
fn yuma_params(subnet: &Subnet) -> YumaParams {
    let p = &subnet.params;
    YumaParams {
        kappa: p.kappa,
        bonds_penalty: p.bonds_penalty,
        bonds_moving_average: p.bonds_moving_average,
        yuma3: p.yuma3_enabled,
        liquid_alpha: p.liquid_alpha_enabled,
        alpha_low: p.alpha_low,
        alpha_high: p.alpha_high,
        alpha_sigmoid_steepness: p.alpha_sigmoid_steepness,
        max_allowed_validators: p.max_allowed_validators,
        stake_threshold: p.stake_threshold,
        activity_cutoff: u64::from(p.activity_cutoff),
        commit_reveal: p.commit_reveal_weights_enabled,
    }
}

/// Runs the epoch and pays out: the owner cut to the owner hotkey, each uid's server and validator
/// emission to its hotkey (owned by its coldkey).
fn run_epoch(
    subnet: &mut Subnet,
    hotkey_owners: &BTreeMap<AccountId, AccountId>,
    block: u64,
    emission_total: Balance,
) -> Event {
    let owner_cut = u64::try_from(
        u128::from(emission_total) * u128::from(subnet.params.subnet_owner_cut)
            / u128::from(u16::MAX),
    )
    .unwrap_or(emission_total);
    let out = store_epoch(subnet, block, emission_total - owner_cut);
    let payouts: Vec<(AccountId, AccountId, Balance)> = subnet
        .neurons
        .iter()
        .enumerate()
        .map(|(uid, n)| {
            let coldkey = hotkey_owners.get(&n.hotkey).copied().unwrap_or(n.hotkey);
            let amount = out.server_emission[uid].saturating_add(out.validator_emission[uid]);
            (n.hotkey, coldkey, amount)
        })
        .collect();
    let mut paid = 0u64;
    for (hotkey, coldkey, amount) in payouts {
        subnet.credit_stake(hotkey, coldkey, amount);
        paid = paid.saturating_add(amount);
    }
    subnet.credit_stake(subnet.owner_hotkey, subnet.owner_coldkey, owner_cut);
    Event::EpochRun {
        netuid: subnet.netuid,
        block,
        emission: paid.saturating_add(owner_cut),
        owner_cut,
    }
}

/// Builds the epoch input from storage, runs Yuma Consensus and stores the outputs back.
fn store_epoch(subnet: &mut Subnet, block: u64, emission_total: Balance) -> EpochOutput {
    let last_tempo = if subnet.last_epoch_block == 0 {
        block.saturating_sub(u64::from(subnet.params.tempo))
    } else {
        subnet.last_epoch_block + 1
    };
    let current_epoch = subnet.epoch_index(block);
    let commit_blocks = subnet
        .neurons
        .iter()
        .map(|n| {
            subnet.weight_commits.get(&n.hotkey).and_then(|q| {
                q.iter()
                    .filter(|c| !is_expired(subnet, c, current_epoch))
                    .map(|c| c.block)
                    .min()
            })
        })
        .collect();
    let input = EpochInput {
        current_block: block,
        last_tempo,
        stake: subnet
            .neurons
            .iter()
            .map(|n| subnet.hotkey_stake(&n.hotkey))
            .collect(),
        weights: subnet.neurons.iter().map(|n| n.weights.clone()).collect(),
        bonds: subnet.neurons.iter().map(|n| n.bonds.clone()).collect(),
        last_update: subnet.neurons.iter().map(|n| n.last_update).collect(),
        block_at_registration: subnet
            .neurons
            .iter()
            .map(|n| n.block_at_registration)
            .collect(),
        validator_permit: subnet.neurons.iter().map(|n| n.validator_permit).collect(),
        owner_uid: subnet.owner_uid(),
        commit_blocks,
        emission_total,
        params: yuma_params(subnet),
    };
    let out = yuma::epoch(&input);
    for (uid, neuron) in subnet.neurons.iter_mut().enumerate() {
        neuron.active = out.active[uid];
        neuron.consensus = out.consensus[uid];
        neuron.incentive = out.incentive[uid];
        neuron.dividends = out.dividends[uid];
        neuron.validator_trust = out.validator_trust[uid];
        neuron.validator_permit = out.validator_permit[uid];
        neuron.bonds = out.bonds[uid].clone();
        neuron.emission = out.emission[uid];
    }
    subnet.last_epoch_block = block;
    out
}
