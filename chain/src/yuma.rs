//! Yuma Consensus, as `spec/subtensor.md` §1 describes it: one subnet's epoch as pure math.
//!
//! [`epoch`] takes everything the chain stores about a subnet ([`EpochInput`]) and returns what the
//! chain stores back ([`EpochOutput`]): consensus, incentive, dividends, validator trust, the new
//! validator permits, the new bonds and the emission per uid. It does no IO, reads no clock and draws
//! no randomness: the same input gives the same output on every machine.
//!
//! | module | what |
//! |---|---|
//! | [`fixed`] | `I32F32` fixed point with Subtensor's rounding, so stored u16 values match bit for bit |
//! | [`sparse`] | the sparse-matrix steps (normalize, clip, EMA, weighted median), twins of `math.rs` |
//!
//! Everything is computed in `I32F32` with Subtensor's rounding, step for step like its sparse
//! `epoch_mechanism` (including the fixed-point `exp` series of the liquid-alpha sigmoid), so the
//! stored u16 values come out bit for bit: the legacy bonds of `spec/subtensor.md` §6.1 are
//! checked exactly. No floating-point rounding reaches a result (f64 only estimates quotients that
//! are then corrected exactly).

pub mod fixed;
pub mod sparse;

use serde::{Deserialize, Serialize};

use fixed::{I32F32, normalize, normalize_stake};
use sparse::SparseMatrix;

/// The subnet hyperparameters that the epoch reads (`spec/subtensor.md` §1.10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YumaParams {
    /// Consensus majority κ as a u16 proportion (32 767 ≈ 0.5).
    pub kappa: u16,
    /// Bonds penalty β as a u16 proportion (65 535 = 1: bonds follow the clipped weights).
    pub bonds_penalty: u16,
    /// Bonds EMA memory in millionths: the fixed α is `1 − bonds_moving_average / 1e6`.
    pub bonds_moving_average: u64,
    /// `true` runs the Yuma 3 bonds path (§1.5), `false` the legacy path (§1.4).
    pub yuma3: bool,
    /// Per-(validator, miner) α from the liquid-alpha sigmoid; Yuma 3 path only.
    pub liquid_alpha: bool,
    /// Lower bound of the liquid α as a u16 proportion.
    pub alpha_low: u16,
    /// Upper bound of the liquid α as a u16 proportion.
    pub alpha_high: u16,
    /// Steepness of the liquid-alpha sigmoid (divided by 100 inside it).
    pub alpha_sigmoid_steepness: i16,
    /// How many uids can hold a validator permit (the top-k by stake).
    pub max_allowed_validators: u16,
    /// Stake below this (in rao) counts as zero, except for the subnet owner's uid.
    pub stake_threshold: u64,
    /// A uid is inactive when `last_update + activity_cutoff < current_block`.
    pub activity_cutoff: u64,
    /// Whether commit-reveal is on: then weights committed before a miner's registration are dropped.
    pub commit_reveal: bool,
}

impl Default for YumaParams {
    /// The values a newly created subnet gets (§1.10): Yuma 3 on, 64 validator permits.
    fn default() -> Self {
        Self {
            kappa: 32_767,
            bonds_penalty: 65_535,
            bonds_moving_average: 900_000,
            yuma3: true,
            liquid_alpha: false,
            alpha_low: 45_875,
            alpha_high: 58_982,
            alpha_sigmoid_steepness: 1_000,
            max_allowed_validators: 64,
            stake_threshold: 0,
            activity_cutoff: 5_000,
            commit_reveal: true,
        }
    }
}

/// Everything one subnet's epoch reads. All per-uid vectors have length n (= `stake.len()`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochInput {
    /// The block the epoch runs in.
    pub current_block: u64,
    /// `last_tempo` of §1.4: bond columns of miners with `last_tempo <= block_at_registration` are
    /// zeroed before the update (the chain passes `LastMechanismStepBlock + 1`, or
    /// `current_block − tempo` when that is 0).
    pub last_tempo: u64,
    /// Raw stake weight per uid, in rao.
    pub stake: Vec<u64>,
    /// Stored weight rows: `(dest uid, max-upscaled u16 weight)`; entries with dest ≥ n are ignored.
    pub weights: Vec<Vec<(u16, u16)>>,
    /// Stored bond rows: `(miner uid, u16 bond)`; entries with a miner uid ≥ n are ignored.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Block of each uid's last `set_weights` (or commit).
    pub last_update: Vec<u64>,
    /// Block of each uid's most recent (re)registration.
    pub block_at_registration: Vec<u64>,
    /// Permits stored by the previous epoch.
    pub validator_permit: Vec<bool>,
    /// The subnet owner's uid, if the owner hotkey is registered: always permitted, self-weight kept,
    /// exempt from the stake threshold.
    pub owner_uid: Option<u16>,
    /// Per uid, the block of its earliest unexpired weight commit (used only with commit-reveal on).
    pub commit_blocks: Vec<Option<u64>>,
    /// Alpha to distribute in this epoch, in rao (`E_tot` of §1.6).
    pub emission_total: u64,
    /// The subnet's hyperparameters.
    pub params: YumaParams,
}

/// Everything one subnet's epoch writes back. All vectors have length n.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochOutput {
    /// Whether the uid set weights within the activity cutoff.
    pub active: Vec<bool>,
    /// Normalized stake S as a u16 proportion.
    pub stake_weight: Vec<u16>,
    /// Consensus weight C_j as a u16 proportion.
    pub consensus: Vec<u16>,
    /// Incentive I_j as a u16 proportion.
    pub incentive: Vec<u16>,
    /// Dividends D_i as a u16 proportion.
    pub dividends: Vec<u16>,
    /// Validator trust Tv_i (row sum of clipped weights) as a u16 proportion.
    pub validator_trust: Vec<u16>,
    /// The new permits, which apply from the next epoch.
    pub validator_permit: Vec<bool>,
    /// The new bond rows to store (empty for uids without a new permit).
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// Miner (server) part of each uid's emission, in rao.
    pub server_emission: Vec<u64>,
    /// Validator part of each uid's emission, in rao.
    pub validator_emission: Vec<u64>,
    /// Combined emission per uid, in rao (what the chain stores as `Emission`).
    pub emission: Vec<u64>,
}

/// `x / 65535` for a u16 hyperparameter, truncated like Subtensor's `get_float_*`.
fn u16_ratio(x: u16) -> I32F32 {
    I32F32::from_u16_proportion(x)
}

/// The fixed bonds EMA α = `1 − bonds_moving_average / 1e6`, computed as Subtensor does (through
/// `I64F64`, then truncated to `I32F32`).
fn fixed_alpha(bonds_moving_average: u64) -> I32F32 {
    let bits = (u128::from(bonds_moving_average) << 32) / 1_000_000;
    let memory = I32F32::from_bits(i64::try_from(bits).unwrap_or(i64::MAX));
    I32F32::ONE.saturating_sub(memory)
}

/// `true` for the k largest non-zero entries (`is_topk_nonzero`): sort ascending with a stable sort
/// and clear the first `len − k`, so among equal values at the cut the lower index loses. When
/// `len < k` every non-zero entry is kept.
pub fn top_k_nonzero(values: &[I32F32], k: usize) -> Vec<bool> {
    let mut keep: Vec<bool> = values.iter().map(|&v| v != I32F32::ZERO).collect();
    if values.len() < k {
        return keep;
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by_key(|&i| values[i]);
    for &i in order.iter().take(values.len() - k) {
        keep[i] = false;
    }
    keep
}

/// Max-upscales weights to u16 so the largest becomes 65 535, rounding to nearest with ties away
/// from zero (`vec_u16_max_upscale_to_u16`, step 13 of `set_weights`). All zeros stay zeros.
pub fn max_upscale_to_u16(values: &[u16]) -> Vec<u16> {
    let u16_max = I32F32::from_u64(u64::from(u16::MAX));
    let Some(&max) = values.iter().max() else {
        return Vec::new();
    };
    let max = I32F32::from_u64(u64::from(max));
    if max == I32F32::ZERO {
        return vec![0; values.len()];
    }
    let threshold = I32F32::from_u64(32_768);
    values
        .iter()
        .map(|&v| {
            let v = I32F32::from_u64(u64::from(v));
            // Subtensor scales in a different order above 32 768 to avoid overflow; keep both.
            let scaled = if max > threshold {
                v.saturating_mul(u16_max.safe_div(max))
            } else {
                v.saturating_mul(u16_max).safe_div(max)
            };
            scaled.round().to_u16_saturating()
        })
        .collect()
}

/// The liquid-α sigmoid of a subnet (`alpha_sigmoid`), with its constants computed once.
struct LiquidAlpha {
    low: I32F32,
    high: I32F32,
    /// `steepness / −100`.
    neg_rate: I32F32,
    /// α at a difference of 0, the most common case (weight at or below consensus).
    at_zero: I32F32,
}

impl LiquidAlpha {
    fn new(params: &YumaParams) -> Self {
        let mut sigmoid = Self {
            low: u16_ratio(params.alpha_low),
            high: u16_ratio(params.alpha_high),
            neg_rate: I32F32::from_int(i64::from(params.alpha_sigmoid_steepness))
                .safe_div(I32F32::from_int(-100)),
            at_zero: I32F32::ZERO,
        };
        sigmoid.at_zero = sigmoid.alpha_of_diff(I32F32::ZERO);
        sigmoid
    }

    /// α for one (validator, miner) pair: a buy (`weight ≥ bond`) looks at how far the weight is
    /// above consensus, a sell at how far it is below the bond.
    fn alpha(&self, consensus: I32F32, weight: I32F32, bond: I32F32) -> I32F32 {
        let (zero, one) = (I32F32::ZERO, I32F32::ONE);
        let diff = if weight >= bond {
            weight.saturating_sub(consensus).clamp_to(zero, one)
        } else {
            bond.saturating_sub(weight).clamp_to(zero, one)
        };
        if diff == zero {
            self.at_zero
        } else {
            self.alpha_of_diff(diff)
        }
    }

    /// `clamp(low + σ(diff)·(high − low), low, high)` with
    /// `σ(d) = 1 / (1 + exp_safe((steepness/−100)·(d − 0.5)))`.
    fn alpha_of_diff(&self, diff: I32F32) -> I32F32 {
        let one = I32F32::ONE;
        let half = I32F32::from_bits(1 << 31);
        let exponent = self.neg_rate.saturating_mul(diff.saturating_sub(half));
        let sigmoid = one.safe_div(one.saturating_add(exponent.exp_safe()));
        self.low
            .saturating_add(sigmoid.saturating_mul(self.high.saturating_sub(self.low)))
            .clamp_to(self.low, self.high)
    }
}

/// Per row, the entries a forward scan over ascending columns finds: an entry counts only when
/// its column is larger than every column before it in the row (Subtensor's peekable scan in
/// `compute_liquid_alpha_values_sparse`; rows sorted ascending find every entry).
fn scan_visible(row: &[(u16, I32F32)], dense: &mut [I32F32]) {
    let mut last: Option<u16> = None;
    for &(j, v) in row {
        if last.is_none_or(|l| j > l) {
            last = Some(j);
            if let Some(cell) = dense.get_mut(usize::from(j)) {
                *cell = v;
            }
        }
    }
}

/// Sets the columns of `row` back to 0 in `dense`.
fn clear_columns(row: &[(u16, I32F32)], dense: &mut [I32F32]) {
    for &(j, _) in row {
        if let Some(cell) = dense.get_mut(usize::from(j)) {
            *cell = I32F32::ZERO;
        }
    }
}

/// Yuma 3 bonds with liquid α (`compute_liquid_alpha_values_sparse` + `mat_ema_alpha_sparse`):
/// `B'_ij = min(1, (1−α_ij)·B_ij + max(0, α_ij·W̃_ij))`, emitted only for the columns of row i of
/// `weights`, in that row's order, when > 0.
fn liquid_alpha_ema(
    weights: &[Vec<(u16, I32F32)>],
    bonds: &[Vec<(u16, I32F32)>],
    consensus: &[I32F32],
    params: &YumaParams,
) -> SparseMatrix {
    let n = consensus.len();
    let sigmoid = LiquidAlpha::new(params);
    let (zero, one) = (I32F32::ZERO, I32F32::ONE);
    let mut seen_weight = vec![zero; n];
    let mut seen_bond = vec![zero; n];
    let mut old_bond = vec![zero; n];
    let empty: Vec<(u16, I32F32)> = Vec::new();
    weights
        .iter()
        .enumerate()
        .map(|(i, new_row)| {
            let old_row = bonds.get(i).unwrap_or(&empty);
            scan_visible(new_row, &mut seen_weight);
            scan_visible(old_row, &mut seen_bond);
            for &(j, b) in old_row {
                if let Some(cell) = old_bond.get_mut(usize::from(j)) {
                    *cell = b;
                }
            }
            let mut out = Vec::with_capacity(new_row.len());
            for &(j, new_value) in new_row {
                let col = usize::from(j);
                let Some(&c) = consensus.get(col) else {
                    continue;
                };
                let alpha = sigmoid.alpha(c, seen_weight[col], seen_bond[col]);
                let decayed = one.saturating_sub(alpha).saturating_mul(old_bond[col]);
                let bought = alpha.saturating_mul(new_value).max(zero);
                let value = decayed.saturating_add(bought).min(one);
                if value > zero {
                    out.push((j, value));
                }
            }
            clear_columns(new_row, &mut seen_weight);
            clear_columns(old_row, &mut seen_bond);
            clear_columns(old_row, &mut old_bond);
            out
        })
        .collect()
}

/// Reads a per-uid vector padded (or cut) to length `n`, missing entries taking the default.
fn per_uid<T: Copy + Default>(values: &[T], n: usize) -> Vec<T> {
    (0..n)
        .map(|i| values.get(i).copied().unwrap_or_default())
        .collect()
}

/// Reads stored `(column, u16)` rows as a sparse matrix of n rows, dropping columns ≥ n.
fn read_sparse(rows: &[Vec<(u16, u16)>], n: usize, value: impl Fn(u16) -> I32F32) -> SparseMatrix {
    let empty: Vec<(u16, u16)> = Vec::new();
    (0..n)
        .map(|i| {
            let row = rows.get(i).unwrap_or(&empty);
            let mut out = Vec::with_capacity(row.len());
            for &(j, w) in row {
                if usize::from(j) < n {
                    out.push((j, value(w)));
                }
            }
            out
        })
        .collect()
}

/// Yuma 3 bonds (§1.5): relative bonds in [0, 1] move toward the weights with a fixed or liquid
/// α, no stake inside; dividends are `A ⊙ (colnorm(B') · I)`. Returns the dividends (not yet
/// normalized) and the new bonds as proportions.
fn yuma3_bonds(
    input: &EpochInput,
    weights_for_bonds: &[Vec<(u16, I32F32)>],
    consensus: &[I32F32],
    incentive: &[I32F32],
    active_stake: &[I32F32],
    registered: &[u64],
) -> (Vec<I32F32>, SparseMatrix) {
    let params = &input.params;
    let n = consensus.len();
    let mut bonds = read_sparse(&input.bonds, n, u16_ratio);
    sparse::retain_entries(&mut bonds, |_, j| input.last_tempo > registered[j]);
    let ema_bonds = if params.liquid_alpha && consensus.iter().any(|&c| c != I32F32::ZERO) {
        liquid_alpha_ema(weights_for_bonds, &bonds, consensus, params)
    } else {
        let alpha = fixed_alpha(params.bonds_moving_average);
        sparse::ema(weights_for_bonds, &bonds, alpha, n)
    };
    let mut bonds_norm = ema_bonds.clone();
    sparse::col_normalize(&mut bonds_norm, n);
    let dividends = sparse::row_dot_by_column(&bonds_norm, incentive)
        .iter()
        .zip(active_stake)
        .map(|(&b, &a)| b.checked_mul(a).unwrap_or_default())
        .collect();
    (dividends, ema_bonds)
}

/// Legacy bonds (§1.4): column-normalized stake-weighted bonds with a fixed-α EMA; dividends are
/// `B_ema · I`. Returns the dividends (not yet normalized) and the new bonds, column
/// max-upscaled for storage.
fn legacy_bonds(
    input: &EpochInput,
    weights_for_bonds: &[Vec<(u16, I32F32)>],
    incentive: &[I32F32],
    active_stake: &[I32F32],
    registered: &[u64],
) -> (Vec<I32F32>, SparseMatrix) {
    let n = incentive.len();
    let mut bonds = read_sparse(&input.bonds, n, |b| I32F32::from_u64(u64::from(b)));
    sparse::retain_entries(&mut bonds, |_, j| input.last_tempo > registered[j]);
    sparse::col_normalize(&mut bonds, n);
    let mut delta = sparse::scale_rows(weights_for_bonds, active_stake);
    sparse::col_normalize(&mut delta, n);
    let alpha = fixed_alpha(input.params.bonds_moving_average);
    let mut ema_bonds = sparse::ema(&delta, &bonds, alpha, n);
    sparse::col_normalize(&mut ema_bonds, n);
    let dividends = sparse::row_dot(&ema_bonds, incentive);
    sparse::col_max_upscale(&mut ema_bonds, n);
    (dividends, ema_bonds)
}

/// The shares of the epoch's emission (§1.6): server `I / Σ(I+D)`, validator `D / Σ(I+D)` and
/// combined `normalize(I + D)`. When `Σ(I+D) = 0` the validator and combined shares fall back to
/// the active stake, or to the stake when no stake is active.
fn emission_shares(
    incentive: &[I32F32],
    dividends: &[I32F32],
    active_stake: &[I32F32],
    stake: &[I32F32],
) -> (Vec<I32F32>, Vec<I32F32>, Vec<I32F32>) {
    let mut combined: Vec<I32F32> = incentive
        .iter()
        .zip(dividends)
        .map(|(&i, &d)| i.saturating_add(d))
        .collect();
    let emission_sum: I32F32 = combined.iter().sum();
    if emission_sum == I32F32::ZERO {
        let active_total: I32F32 = active_stake.iter().sum();
        let fallback = if active_total == I32F32::ZERO {
            stake
        } else {
            active_stake
        };
        return (incentive.to_vec(), fallback.to_vec(), fallback.to_vec());
    }
    let share = |x: &I32F32| x.safe_div(emission_sum);
    let server = incentive.iter().map(share).collect();
    let validator = dividends.iter().map(share).collect();
    normalize(&mut combined);
    (server, validator, combined)
}

/// Runs one subnet's epoch: Yuma Consensus, bonds, dividends and the emission split
/// (`spec/subtensor.md` §1.3–1.6; Subtensor's sparse `epoch_mechanism`).
///
/// n is `input.stake.len()`; the other per-uid vectors are read padded with defaults (or cut) to n.
pub fn epoch(input: &EpochInput) -> EpochOutput {
    let params = &input.params;
    let n = input.stake.len();
    let owner = input.owner_uid.map(usize::from);
    let is_owner = |i: usize| owner == Some(i);
    let last_update = per_uid(&input.last_update, n);
    let registered = per_uid(&input.block_at_registration, n);

    // 1. Active: set weights within the activity cutoff.
    let active: Vec<bool> = last_update
        .iter()
        .map(|&u| u.saturating_add(params.activity_cutoff) >= input.current_block)
        .collect();

    // 2. Stake below the threshold counts as zero (owner exempt), then normalize.
    let filtered: Vec<u64> = input
        .stake
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            if !is_owner(i) && s < params.stake_threshold {
                0
            } else {
                s
            }
        })
        .collect();
    let stake = normalize_stake(&filtered);

    // 3. Permits: stored ones apply now, new ones (top-k by stake) from the next epoch.
    let mut permit = per_uid(&input.validator_permit, n);
    let mut new_permit = top_k_nonzero(&stake, usize::from(params.max_allowed_validators));
    if let Some(o) = owner.filter(|&o| o < n) {
        permit[o] = true;
        new_permit[o] = true;
    }

    // 4. Active stake: permitted, active uids only.
    let mut active_stake: Vec<I32F32> = (0..n)
        .map(|i| {
            if active[i] && permit[i] {
                stake[i]
            } else {
                I32F32::ZERO
            }
        })
        .collect();
    normalize(&mut active_stake);

    // 5. Weights, masked and row-normalized.
    let mut weights = read_sparse(&input.weights, n, |w| I32F32::from_u64(u64::from(w)));
    let commit_block: Vec<u64> = (0..n)
        .map(|i| {
            input
                .commit_blocks
                .get(i)
                .copied()
                .flatten()
                .unwrap_or(u64::MAX)
        })
        .collect();
    sparse::retain_entries(&mut weights, |i, j| {
        permit[i]
            && (i != j || is_owner(i))
            && last_update[i] > registered[j]
            && !(params.commit_reveal && commit_block[i] < registered[j])
    });
    sparse::row_normalize(&mut weights);

    // 6–9. Consensus, clip, validator trust, incentive.
    let kappa = u16_ratio(params.kappa);
    let consensus = sparse::weighted_median_cols(&active_stake, &weights, n, kappa);
    let clipped = sparse::col_clip(&weights, &consensus);
    let validator_trust = sparse::row_sums(&clipped);
    let mut incentive = sparse::weighted_col_sums(&clipped, &active_stake, n);
    normalize(&mut incentive);

    // 10. Weights for bonds.
    let beta = u16_ratio(params.bonds_penalty);
    let weights_for_bonds = sparse::interpolate(&weights, &clipped, n, beta);

    // 11. Bonds and dividends.
    let (mut dividends, ema_bonds) = if params.yuma3 {
        yuma3_bonds(
            input,
            &weights_for_bonds,
            &consensus,
            &incentive,
            &active_stake,
            &registered,
        )
    } else {
        legacy_bonds(
            input,
            &weights_for_bonds,
            &incentive,
            &active_stake,
            &registered,
        )
    };
    normalize(&mut dividends);

    // 12. Emission split.
    let (server_share, validator_share, combined_share) =
        emission_shares(&incentive, &dividends, &active_stake, &stake);
    let to_rao =
        |v: &[I32F32]| -> Vec<u64> { v.iter().map(|x| x.mul_rao(input.emission_total)).collect() };
    let to_u16 = |v: &[I32F32]| -> Vec<u16> { v.iter().map(|x| x.to_u16_proportion()).collect() };

    let bonds = ema_bonds
        .iter()
        .zip(&new_permit)
        .map(|(row, &permitted)| {
            if permitted {
                row.iter()
                    .map(|&(j, v)| (j, v.to_u16_proportion()))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();

    EpochOutput {
        active,
        stake_weight: to_u16(&stake),
        consensus: to_u16(&consensus),
        incentive: to_u16(&incentive),
        dividends: to_u16(&dividends),
        validator_trust: to_u16(&validator_trust),
        validator_permit: new_permit,
        bonds,
        server_emission: to_rao(&server_share),
        validator_emission: to_rao(&validator_share),
        emission: to_rao(&combined_share),
    }
}

#[cfg(test)]
mod tests;
