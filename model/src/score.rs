//! Model-track scoring: pairwise contests decided by significance, earlier commits win ties.
//!
//! Pure: no IO, no clock, no randomness. The rule (`docs/scoring.md` has a worked example):
//!
//! 1. **Eligibility.** Among entries with the same `manifest_sha256`, only the earliest commit
//!    (lowest block, then lowest uid) is eligible; the others are [`Status::DuplicateOf`] it.
//!    Entries flagged as copies (before scoring, by function or by weights) are [`Status::CopyOf`];
//!    entries whose evaluation failed are [`Status::EvalFailed`]. When the competition pins a base
//!    model, its losses on the same samples act as the earliest commitment of all: an evaluated
//!    entry (a copy included) that does not displace the base under the rule of step 2 is
//!    [`Status::NotBetterThanBase`] (an upload of the public base, or a perturbed or sharpened
//!    copy of it, earns nothing).
//!    Ineligible entries score 0 and take no part in step 2.
//! 2. **Contests.** The losses are per-sample completion losses at each model's fitted
//!    temperature ([`crate::eval::evaluate_fitted`]). For each pair of eligible models, the
//!    later commit (block, then uid) wins only if it beats the earlier one's mean by
//!    the competition's [`DethroneRule::margin`] under a paired one-sided t-test at
//!    [`DethroneRule::p_value`] ([`later_displaces`]); otherwise the earlier one wins. A NaN loss
//!    counts as +∞. When the competition scores open instructions by generation (`[open]`),
//!    each pair also holds a **following contest** on the per-task share of constraints kept
//!    ([`crate::follow`]): the model whose mean is higher by `following_margin` under the same
//!    paired test wins it, whichever committed first; otherwise nobody loses it. A model's
//!    `defeats` are the contests it lost; `win_rate = contests won / contests held` (a model
//!    alone has 1) is kept for display.
//! 3. **Score.** `score = softmax(−defeats / T)` over eligible models, so scores sum to 1. Each
//!    defeat divides a model's weight by `e^(1/T)` whatever the size of the field: a copy that
//!    loses only to its original earns `e^(−1/T)` of it (0.7% at `T = 0.2`) in a field of 3 or
//!    of 300. (`softmax(win_rate / T)` would let the runner-up of a large field earn almost
//!    what the leader earns.)
//!
//! Sums run in sample order and the softmax in uid order with `libm` functions, so the same
//! inputs give bit-identical scores in any input order on any machine.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::competition::{Competition, DethroneRule};

/// Inputs the scoring cannot work with; these are validator bugs, not miner misbehaviour.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ScoreError {
    /// Two entries share a uid.
    #[error("uid {uid} appears more than once")]
    DuplicateUid {
        /// The repeated uid.
        uid: u16,
    },
    /// An eligible entry has a different number of losses than the others.
    #[error("uid {uid} has {got} sample losses, expected {expected}")]
    SampleCountMismatch {
        /// The entry's uid.
        uid: u16,
        /// The count of the first eligible entry.
        expected: usize,
        /// This entry's count.
        got: usize,
    },
    /// An eligible entry has no losses at all.
    #[error("uid {uid} has no sample losses")]
    NoSamples {
        /// The entry's uid.
        uid: u16,
    },
    /// A loss is negative; cross-entropy never is.
    #[error("uid {uid} sample {sample} has negative loss {loss}")]
    NegativeLoss {
        /// The entry's uid.
        uid: u16,
        /// The sample index.
        sample: usize,
        /// The loss.
        loss: f64,
    },
    /// The dethrone rule's margin or p-value is out of range.
    #[error("dethrone margin {margin} must be in 0..1 and p-value {p_value} in (0, 0.5]")]
    InvalidDethrone {
        /// The margin given.
        margin: f64,
        /// The p-value given.
        p_value: f64,
    },
    /// The base model's losses are not one per sample.
    #[error("the base model has {got} sample losses, expected {expected}")]
    BaseSampleCountMismatch {
        /// The count of an evaluated entry.
        expected: usize,
        /// The base's count.
        got: usize,
    },
    /// An eligible entry's following shares are not one per task within `[0, 1]`.
    #[error("uid {uid} has bad following shares: {reason}")]
    BadFollowing {
        /// The entry's uid.
        uid: u16,
        /// What is wrong.
        reason: String,
    },
    /// The temperature is not a finite positive number.
    #[error("temperature {temperature} must be finite and > 0")]
    InvalidTemperature {
        /// The temperature given.
        temperature: f64,
    },
}

/// What the validator learned evaluating one miner's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluation {
    /// Mean completion cross-entropy per sample, in the shared sample order.
    Losses(Vec<f64>),
    /// The model could not be evaluated (unreachable, hash mismatch, bad shapes, ...).
    Failed {
        /// Why, for the dashboard and the database.
        reason: String,
    },
}

/// One miner's committed model and its evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelEntry {
    /// The miner's uid on the subnet.
    pub uid: u16,
    /// The miner's hotkey (SS58), carried through to the result.
    pub hotkey: String,
    /// Block of the commitment; the earlier of two commits wins unless significantly beaten.
    pub commit_block: u64,
    /// The committed manifest hash; equal hashes are the same model.
    pub manifest_sha256: [u8; 32],
    /// Per-sample losses or the failure.
    pub evaluation: Evaluation,
    /// Set by near-duplicate detection: this model copies the model of that uid.
    pub copy_of: Option<u16>,
    /// Per open instruction, the share of its constraints the model's answer kept (in the
    /// shared task order), when the competition scores open instructions (`[open]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub following: Option<Vec<f64>>,
}

/// Scoring parameters, from the competition file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreParams {
    /// When a later model wins a contest against an earlier one.
    pub dethrone: DethroneRule,
    /// Softmax temperature `T`.
    pub temperature: f64,
    /// Margin of the following contests (absolute, in share of constraints kept); used only for
    /// entries that carry [`ModelEntry::following`].
    pub following_margin: f64,
}

impl ScoreParams {
    /// The parameters of `competition`.
    pub fn new(competition: &Competition) -> Self {
        ScoreParams {
            dethrone: competition.dethrone,
            temperature: competition.temperature,
            following_margin: competition.open.map_or(0.0, |open| open.margin),
        }
    }
}

/// Why a miner got the score it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Compared against the other eligible models.
    Scored,
    /// Same manifest as an earlier commit by `uid`; scores 0.
    DuplicateOf {
        /// The earliest committer of this manifest.
        uid: u16,
    },
    /// Flagged as a near-duplicate of `uid`'s model; scores 0.
    CopyOf {
        /// The uid whose model this copies.
        uid: u16,
    },
    /// Evaluation failed; scores 0.
    EvalFailed {
        /// The evaluator's reason.
        reason: String,
    },
    /// Does not beat the competition's base model by the dethrone margin under the paired test;
    /// scores 0.
    NotBetterThanBase,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Scored => f.write_str("scored"),
            Status::DuplicateOf { uid } => {
                write!(f, "same manifest as uid {uid}, committed earlier")
            }
            Status::CopyOf { uid } => write!(f, "near-duplicate of uid {uid}"),
            Status::EvalFailed { reason } => write!(f, "evaluation failed: {reason}"),
            Status::NotBetterThanBase => {
                f.write_str("not significantly better than the base model")
            }
        }
    }
}

/// One miner's model-track result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerScore {
    /// The miner's uid.
    pub uid: u16,
    /// The miner's hotkey.
    pub hotkey: String,
    /// Fraction of pairwise contests won (step 2); 0 when not scored.
    pub win_rate: f64,
    /// Share of the model track, `softmax(−defeats / T)`; 0 when not scored.
    pub score: f64,
    /// Scored, or why not.
    pub status: Status,
}

/// Scores every entry of a competition without a base model; results come back in input order.
pub fn score_models(
    entries: &[ModelEntry],
    params: &ScoreParams,
) -> Result<Vec<MinerScore>, ScoreError> {
    score_models_over_base(entries, None, params)
}

/// Scores every entry; with `base` (the base model's per-sample losses, at its fitted
/// temperature, in the entries' sample order) only entries that displace the base take part.
/// Results come back in input order.
pub fn score_models_over_base(
    entries: &[ModelEntry],
    base: Option<&[f64]>,
    params: &ScoreParams,
) -> Result<Vec<MinerScore>, ScoreError> {
    if !(params.temperature.is_finite() && params.temperature > 0.0) {
        return Err(ScoreError::InvalidTemperature {
            temperature: params.temperature,
        });
    }
    if !params.dethrone.is_valid() {
        let DethroneRule { margin, p_value } = params.dethrone;
        return Err(ScoreError::InvalidDethrone { margin, p_value });
    }
    let mut uids = BTreeSet::new();
    for entry in entries {
        if !uids.insert(entry.uid) {
            return Err(ScoreError::DuplicateUid { uid: entry.uid });
        }
    }

    let mut statuses: Vec<Status> = eligibility(entries);
    if let Some(base) = base {
        gate_on_base(entries, &mut statuses, base, params)?;
    }
    // Eligible entries in uid order, with NaN losses mapped to +∞.
    let mut eligible: Vec<Contender> = Vec::new();
    for (entry, status) in entries.iter().zip(&statuses) {
        if let (Status::Scored, Evaluation::Losses(losses)) = (status, &entry.evaluation) {
            eligible.push(Contender {
                uid: entry.uid,
                block: entry.commit_block,
                losses: finite_or_infinite(losses),
                following: entry.following.clone(),
            });
        }
    }
    eligible.sort_by_key(|c| c.uid);
    validate_losses(&eligible)?;
    validate_following(&eligible)?;

    let (defeats, held) = contests(&eligible, params);
    let win_rates: Vec<f64> = defeats
        .iter()
        .zip(&held)
        .map(|(&d, &h)| {
            if h == 0 {
                1.0
            } else {
                f64::from(h - d) / f64::from(h)
            }
        })
        .collect();
    let weights: Vec<f64> = defeats.iter().map(|&d| -f64::from(d)).collect();
    let scores = softmax(&weights, params.temperature);
    let by_uid: BTreeMap<u16, (f64, f64)> = eligible
        .iter()
        .zip(win_rates.iter().zip(&scores))
        .map(|(contender, (&win_rate, &score))| (contender.uid, (win_rate, score)))
        .collect();

    Ok(entries
        .iter()
        .zip(statuses)
        .map(|(entry, status)| {
            let (win_rate, score) = by_uid.get(&entry.uid).copied().unwrap_or((0.0, 0.0));
            MinerScore {
                uid: entry.uid,
                hotkey: entry.hotkey.clone(),
                win_rate,
                score,
                status,
            }
        })
        .collect())
}

/// Step 1, with a base model: every evaluated entry (copies included: not beating the base is
/// the more basic failure) that does not displace the base becomes [`Status::NotBetterThanBase`].
fn gate_on_base(
    entries: &[ModelEntry],
    statuses: &mut [Status],
    base: &[f64],
    params: &ScoreParams,
) -> Result<(), ScoreError> {
    let base = finite_or_infinite(base);
    let critical = critical_t(base.len(), params.dethrone.p_value);
    for (entry, status) in entries.iter().zip(statuses.iter_mut()) {
        let (Status::Scored | Status::CopyOf { .. }, Evaluation::Losses(losses)) =
            (&*status, &entry.evaluation)
        else {
            continue;
        };
        if losses.len() != base.len() {
            return Err(ScoreError::BaseSampleCountMismatch {
                expected: losses.len(),
                got: base.len(),
            });
        }
        let losses = finite_or_infinite(losses);
        if !later_displaces(&base, &losses, params.dethrone.margin, critical) {
            *status = Status::NotBetterThanBase;
        }
    }
    Ok(())
}

/// The losses with NaN (a model that produced no number) counted as +∞.
fn finite_or_infinite(losses: &[f64]) -> Vec<f64> {
    losses
        .iter()
        .map(|&loss| if loss.is_nan() { f64::INFINITY } else { loss })
        .collect()
}

/// Step 1: each entry's status. Duplicates first, then copies, then failures.
fn eligibility(entries: &[ModelEntry]) -> Vec<Status> {
    let mut owners: BTreeMap<[u8; 32], (u64, u16)> = BTreeMap::new();
    for entry in entries {
        let key = (entry.commit_block, entry.uid);
        owners
            .entry(entry.manifest_sha256)
            .and_modify(|owner| *owner = (*owner).min(key))
            .or_insert(key);
    }
    entries
        .iter()
        .map(|entry| {
            let owner_uid = owners
                .get(&entry.manifest_sha256)
                .map_or(entry.uid, |&(_, uid)| uid);
            if owner_uid != entry.uid {
                Status::DuplicateOf { uid: owner_uid }
            } else if let Some(uid) = entry.copy_of {
                Status::CopyOf { uid }
            } else if let Evaluation::Failed { reason } = &entry.evaluation {
                Status::EvalFailed {
                    reason: reason.clone(),
                }
            } else {
                Status::Scored
            }
        })
        .collect()
}

/// An eligible model as the contests see it.
struct Contender {
    uid: u16,
    block: u64,
    /// Per-sample losses, NaN mapped to +∞.
    losses: Vec<f64>,
    /// Per open instruction, the share of constraints kept.
    following: Option<Vec<f64>>,
}

/// All eligible entries need the same, non-zero number of non-negative losses.
fn validate_losses(eligible: &[Contender]) -> Result<(), ScoreError> {
    let Some(Contender { losses: first, .. }) = eligible.first() else {
        return Ok(());
    };
    for Contender { uid, losses, .. } in eligible {
        if losses.is_empty() {
            return Err(ScoreError::NoSamples { uid: *uid });
        }
        if losses.len() != first.len() {
            return Err(ScoreError::SampleCountMismatch {
                uid: *uid,
                expected: first.len(),
                got: losses.len(),
            });
        }
        if let Some((sample, &loss)) = losses.iter().enumerate().find(|&(_, &loss)| loss < 0.0) {
            return Err(ScoreError::NegativeLoss {
                uid: *uid,
                sample,
                loss,
            });
        }
    }
    Ok(())
}

/// Following shares, where entries carry them, are one per task (the same count for all) and
/// within `[0, 1]`.
fn validate_following(eligible: &[Contender]) -> Result<(), ScoreError> {
    let mut count = None;
    for contender in eligible {
        let Some(following) = &contender.following else {
            continue;
        };
        let expected = *count.get_or_insert(following.len());
        if following.len() != expected || following.is_empty() {
            return Err(ScoreError::BadFollowing {
                uid: contender.uid,
                reason: format!(
                    "{} shares, expected {expected} (at least 1)",
                    following.len()
                ),
            });
        }
        if let Some(bad) = following.iter().find(|f| !(0.0..=1.0).contains(*f)) {
            return Err(ScoreError::BadFollowing {
                uid: contender.uid,
                reason: format!("share {bad} is outside [0, 1]"),
            });
        }
    }
    Ok(())
}

/// Step 2: how many contests each eligible model lost and how many it took part in, in the
/// order given. Every pair holds a loss contest, which one of them loses (the later unless it
/// displaces the earlier); a pair that both carry following shares also holds a following
/// contest, which a model loses only when the other keeps significantly more constraints (by
/// `following_margin` under the same paired test), whichever committed first: neither loses a
/// tie.
fn contests(eligible: &[Contender], params: &ScoreParams) -> (Vec<u32>, Vec<u32>) {
    let k = eligible.len();
    let mut defeats = vec![0u32; k];
    let mut held = vec![0u32; k];
    if k <= 1 {
        return (defeats, held);
    }
    let p_value = params.dethrone.p_value;
    let critical = critical_t(eligible[0].losses.len(), p_value);
    for i in 0..k {
        for j in i + 1..k {
            let (a, b) = (&eligible[i], &eligible[j]);
            let (earlier, later) = if (a.block, a.uid) < (b.block, b.uid) {
                (i, j)
            } else {
                (j, i)
            };
            let (e, l) = (&eligible[earlier], &eligible[later]);
            let loser = if later_displaces(&e.losses, &l.losses, params.dethrone.margin, critical) {
                earlier
            } else {
                later
            };
            defeats[loser] += 1;
            held[i] += 1;
            held[j] += 1;
            if let (Some(fe), Some(fl)) = (&e.following, &l.following) {
                let critical = critical_t(fe.len(), p_value);
                let margin = params.following_margin;
                let loser = if exceeds(fl, fe, margin, critical) {
                    Some(earlier)
                } else if exceeds(fe, fl, margin, critical) {
                    Some(later)
                } else {
                    None
                };
                if let Some(loser) = loser {
                    defeats[loser] += 1;
                    held[i] += 1;
                    held[j] += 1;
                }
            }
        }
    }
    (defeats, held)
}

/// True when the later model (per-sample losses `later`) displaces the earlier one (`earlier`,
/// same samples): the mean of `excess_s = earlier_s − later_s − margin · mean(earlier)` is
/// positive and its t statistic `mean / (sd / √n)` exceeds `critical` (see [`critical_t`]).
/// With one sample, or no spread, a positive mean suffices. A later model with an infinite loss
/// never displaces; one that is finite displaces an earlier model with an infinite loss.
pub fn later_displaces(earlier: &[f64], later: &[f64], margin: f64, critical: f64) -> bool {
    let finite = |losses: &[f64]| losses.iter().all(|l| l.is_finite());
    match (finite(earlier), finite(later)) {
        (_, false) => return false,
        (false, true) => return true,
        (true, true) => {}
    }
    let n = earlier.len().min(later.len());
    if n == 0 {
        return false;
    }
    let required = margin * earlier[..n].iter().sum::<f64>() / n as f64;
    exceeds(&earlier[..n], &later[..n], required, critical)
}

/// True when `higher` is above `lower` by more than `by`, significantly: over the paired values
/// (the shorter length), the mean of `higher_s − lower_s − by` is positive and its t statistic
/// `mean / (sd / √n)` exceeds `critical`; with one pair, or no spread, a positive mean suffices.
fn exceeds(higher: &[f64], lower: &[f64], by: f64, critical: f64) -> bool {
    let n = higher.len().min(lower.len());
    if n == 0 {
        return false;
    }
    let count = n as f64;
    let excess: Vec<f64> = higher.iter().zip(lower).map(|(h, l)| h - l - by).collect();
    let mean = excess.iter().sum::<f64>() / count;
    if mean <= 0.0 {
        return false;
    }
    if n == 1 {
        return true;
    }
    let variance = excess.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (count - 1.0);
    if variance == 0.0 {
        return true;
    }
    mean / libm::sqrt(variance / count) > critical
}

/// The one-sided critical value of Student's t with `samples − 1` degrees of freedom at
/// `p_value`: the normal quantile (Acklam's rational approximation, relative error below 1.2e-9)
/// corrected by the Cornish–Fisher expansion to the fourth order in `1/ν`, within 0.2% of the
/// exact value from ν = 5 on (0.01 at ν = 10: 2.7638 exact). Fewer than 2 samples: +∞.
pub fn critical_t(samples: usize, p_value: f64) -> f64 {
    if samples < 2 {
        return f64::INFINITY;
    }
    let z = upper_normal_quantile(p_value);
    let nu = (samples - 1) as f64;
    let (z2, z3) = (z * z, z * z * z);
    let (z5, z7, z9) = (z3 * z2, z3 * z2 * z2, z3 * z3 * z3);
    let g1 = (z3 + z) / 4.0;
    let g2 = (5.0 * z5 + 16.0 * z3 + 3.0 * z) / 96.0;
    let g3 = (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / 384.0;
    let g4 = (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z) / 92160.0;
    z + g1 / nu + g2 / (nu * nu) + g3 / (nu * nu * nu) + g4 / (nu * nu * nu * nu)
}

/// `z` with `P(Z > z) = p` for a standard normal `Z`, `0 < p < 1` (Acklam's algorithm).
fn upper_normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    // The lower-tail quantile of q = p, negated.
    let tail = |q: f64| {
        let r = libm::sqrt(-2.0 * libm::log(q));
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    const LOW: f64 = 0.02425;
    if p < LOW {
        -tail(p)
    } else if p <= 1.0 - LOW {
        let r = 0.5 - p;
        let s = r * r;
        (((((A[0] * s + A[1]) * s + A[2]) * s + A[3]) * s + A[4]) * s + A[5]) * r
            / (((((B[0] * s + B[1]) * s + B[2]) * s + B[3]) * s + B[4]) * s + 1.0)
    } else {
        tail(1.0 - p)
    }
}

/// Step 3: `softmax(x / t)`, shifted by the maximum for stability, summed in order.
fn softmax(values: &[f64], temperature: f64) -> Vec<f64> {
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = values
        .iter()
        .map(|&v| libm::exp((v - max) / temperature))
        .collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params() -> ScoreParams {
        ScoreParams {
            dethrone: DethroneRule {
                margin: 0.01,
                p_value: 0.01,
            },
            temperature: 0.2,
            following_margin: 0.05,
        }
    }

    fn entry(uid: u16, commit_block: u64, losses: &[f64]) -> ModelEntry {
        ModelEntry {
            uid,
            hotkey: format!("hotkey-{uid}"),
            commit_block,
            manifest_sha256: [uid as u8; 32],
            evaluation: Evaluation::Losses(losses.to_vec()),
            copy_of: None,
            following: None,
        }
    }

    fn following(mut entry: ModelEntry, shares: &[f64]) -> ModelEntry {
        entry.following = Some(shares.to_vec());
        entry
    }

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
    }

    const A: [f64; 8] = [2.00, 1.50, 3.00, 2.50, 1.80, 2.20, 2.60, 1.90];
    const B: [f64; 8] = [1.90, 1.42, 2.85, 2.40, 1.70, 2.08, 2.49, 1.80];
    const C: [f64; 8] = [1.85, 1.60, 2.70, 2.55, 1.60, 2.00, 2.70, 1.70];

    /// The worked example of docs/scoring.md.
    fn worked_example() -> Vec<ModelEntry> {
        let mut duplicate = entry(3, 960, &B);
        duplicate.manifest_sha256 = [1; 32];
        let mut failed = entry(4, 800, &[]);
        failed.evaluation = Evaluation::Failed {
            reason: "timeout fetching manifest".into(),
        };
        vec![
            entry(0, 900, &A),
            entry(1, 950, &B),
            entry(2, 990, &C),
            duplicate,
            failed,
        ]
    }

    #[test]
    fn worked_three_miner_example_matches_the_hand_computation() {
        let scores = score_models(&worked_example(), &params()).unwrap();
        // B beats A's mean 2.1875 by 0.0856 (4%, t = 11.8 > 3.00): B displaces A.
        // C beats A's mean by 0.0781 too, but noisily (t = 1.40): A keeps the pair.
        // C's mean 2.0875 is above B's 2.08: B keeps the pair.
        assert_close(scores[0].win_rate, 0.5);
        assert_close(scores[1].win_rate, 1.0);
        assert_close(scores[2].win_rate, 0.0);
        // defeats A 1, B 0, C 2: softmax(−[1, 0, 2] / 0.2)
        assert_close(scores[0].score, 0.006_692_6);
        assert_close(scores[1].score, 0.993_262_2);
        assert_close(scores[2].score, 0.000_045_1);
        assert_eq!(scores[3].status, Status::DuplicateOf { uid: 1 });
        assert_eq!((scores[3].win_rate, scores[3].score), (0.0, 0.0));
        assert!(
            matches!(&scores[4].status, Status::EvalFailed { reason } if reason.contains("timeout"))
        );
        assert_eq!(scores[4].score, 0.0);
    }

    #[test]
    fn the_runner_up_earns_the_same_fraction_of_the_leader_in_any_field() {
        // A leader, a copy that loses only to it, and `others` weaker models.
        for others in [1usize, 5, 60] {
            let leader: Vec<f64> = A.iter().map(|l| l * 0.5).collect();
            let copy: Vec<f64> = A.iter().map(|l| l * 0.501).collect();
            let mut field = vec![entry(0, 1, &leader), entry(1, 2, &copy)];
            for i in 0..others {
                let weaker: Vec<f64> = A.iter().map(|l| l * (1.0 + i as f64 * 0.01)).collect();
                field.push(entry(2 + i as u16, 3 + i as u64, &weaker));
            }
            let scores = score_models(&field, &params()).unwrap();
            assert_close(scores[1].score / scores[0].score, (-1.0f64 / 0.2).exp());
            assert!(scores[1].score < 0.01 * scores[0].score, "{others} others");
        }
    }

    #[test]
    fn winning_most_samples_with_a_worse_mean_does_not_dethrone() {
        // The later model wins 6 of 8 samples by a little and loses 2 by a lot: the
        // overconfident pattern that per-sample win counting used to pay.
        let earlier = [2.0; 8];
        let later = [1.9, 1.9, 1.9, 1.9, 1.9, 1.9, 2.5, 2.5];
        let scores =
            score_models(&[entry(0, 1, &earlier), entry(1, 2, &later)], &params()).unwrap();
        assert_close(scores[0].win_rate, 1.0);
        assert_close(scores[1].win_rate, 0.0);
    }

    #[test]
    fn a_later_model_must_beat_the_margin_however_old_the_leader() {
        // 0.5% better on every sample: consistent, but under the 1% margin.
        let earlier: Vec<f64> = A.to_vec();
        let slightly: Vec<f64> = A.iter().map(|l| l * 0.995).collect();
        let clearly: Vec<f64> = A.iter().map(|l| l * 0.985).collect();
        for (leader_block, challenger_block) in [(1, 2), (1, 1_000_000)] {
            let scores = score_models(
                &[
                    entry(0, leader_block, &earlier),
                    entry(1, challenger_block, &slightly),
                ],
                &params(),
            )
            .unwrap();
            assert_close(scores[0].win_rate, 1.0);
            let scores = score_models(
                &[
                    entry(0, leader_block, &earlier),
                    entry(1, challenger_block, &clearly),
                ],
                &params(),
            )
            .unwrap();
            assert_close(scores[1].win_rate, 1.0);
        }
    }

    #[test]
    fn equal_losses_go_to_the_earlier_commit_and_in_one_block_to_the_lower_uid() {
        let scores = score_models(
            &[entry(5, 7, &A), entry(2, 9, &A), entry(9, 7, &A)],
            &params(),
        )
        .unwrap();
        let rates: Vec<f64> = scores.iter().map(|s| s.win_rate).collect();
        assert_eq!(rates, vec![1.0, 0.0, 0.5]);
    }

    #[test]
    fn nan_losses_lose_to_everything_finite() {
        let scores = score_models(
            &[
                entry(0, 5, &[f64::NAN, 1.0]),
                entry(1, 6, &[9.0, 9.0]),
                entry(2, 7, &[f64::INFINITY, 1.0]),
            ],
            &params(),
        )
        .unwrap();
        // uid 1 displaces uid 0 (finite against infinite); uid 2 displaces nobody.
        assert_close(scores[0].win_rate, 0.5);
        assert_close(scores[1].win_rate, 1.0);
        assert_close(scores[2].win_rate, 0.0);
    }

    #[test]
    fn critical_values_match_student_t_tables() {
        // One-sided 1% and 5% points of Student's t (standard tables).
        for (samples, p, want) in [
            (6, 0.01, 3.365),
            (11, 0.01, 2.764),
            (31, 0.01, 2.457),
            (101, 0.01, 2.364),
            (11, 0.05, 1.812),
            (61, 0.05, 1.671),
        ] {
            let got = critical_t(samples, p);
            assert!(
                (got - want).abs() < 2e-3 * want,
                "{samples} samples, p {p}: {got}"
            );
        }
        assert_eq!(critical_t(1, 0.01), f64::INFINITY);
        assert!((upper_normal_quantile(0.5)).abs() < 1e-12);
        assert!((upper_normal_quantile(0.025) - 1.959_964).abs() < 1e-6);
    }

    #[test]
    fn identical_manifests_in_one_block_go_to_the_lowest_uid() {
        let mut a = entry(7, 10, &[1.0]);
        let mut b = entry(3, 10, &[1.0]);
        a.manifest_sha256 = [9; 32];
        b.manifest_sha256 = [9; 32];
        let scores = score_models(&[a, b], &params()).unwrap();
        assert_eq!(scores[0].status, Status::DuplicateOf { uid: 3 });
        assert_eq!(scores[1].status, Status::Scored);
        assert_eq!(scores[1].score, 1.0);
    }

    #[test]
    fn flagged_copies_score_zero_and_do_not_compete() {
        let mut copy = entry(1, 20, &[0.1]);
        copy.copy_of = Some(0);
        let scores = score_models(
            &[entry(0, 10, &[1.0]), copy, entry(2, 30, &[2.0])],
            &params(),
        )
        .unwrap();
        assert_eq!(scores[1].status, Status::CopyOf { uid: 0 });
        assert_eq!(scores[1].score, 0.0);
        assert_close(scores[0].win_rate, 1.0);
        assert_close(scores[2].win_rate, 0.0);
    }

    #[test]
    fn the_base_model_is_the_earliest_commitment_of_all() {
        let base = A;
        // An upload of the base, the base with noise, and a model 4% better on every sample.
        let noisy: Vec<f64> = A
            .iter()
            .enumerate()
            .map(|(s, l)| l + if s % 2 == 0 { 0.03 } else { -0.03 })
            .collect();
        let better: Vec<f64> = A.iter().map(|l| l * 0.96).collect();
        let field = [
            entry(0, 10, &base),
            entry(1, 20, &noisy),
            entry(2, 30, &better),
        ];
        let scores = score_models_over_base(&field, Some(&base), &params()).unwrap();
        assert_eq!(scores[0].status, Status::NotBetterThanBase);
        assert_eq!(scores[1].status, Status::NotBetterThanBase);
        assert_eq!((scores[0].score, scores[1].score), (0.0, 0.0));
        // The only model past the base takes the whole track, as a lone model would.
        assert_eq!(scores[2].status, Status::Scored);
        assert_eq!((scores[2].win_rate, scores[2].score), (1.0, 1.0));
        // Without the gate the base upload, committed first, would have kept its place.
        let ungated = score_models(&field, &params()).unwrap();
        assert!(ungated[0].score > 0.0);

        // A copy flagged as such: reported as not better than the base when it is not, as a copy
        // when it is; 0 either way.
        let mut copy_of_base = entry(3, 40, &base);
        copy_of_base.copy_of = Some(0);
        let mut copy_of_better = entry(4, 50, &better);
        copy_of_better.copy_of = Some(2);
        let field = [entry(2, 30, &better), copy_of_base, copy_of_better];
        let scores = score_models_over_base(&field, Some(&base), &params()).unwrap();
        assert_eq!(scores[1].status, Status::NotBetterThanBase);
        assert_eq!(scores[2].status, Status::CopyOf { uid: 2 });
        assert_eq!(
            scores.iter().map(|s| s.score).collect::<Vec<_>>(),
            [1.0, 0.0, 0.0]
        );
    }

    #[test]
    fn models_below_the_base_leave_the_contests_to_those_past_it() {
        let base: Vec<f64> = A.iter().map(|l| l * 1.10).collect();
        // A is 9% better than the base, B 4% better than A; C beats the base only noisily.
        let gated = [entry(0, 900, &A), entry(1, 950, &B), entry(2, 990, &base)];
        let scores = score_models_over_base(&gated, Some(&base), &params()).unwrap();
        assert_eq!(scores[2].status, Status::NotBetterThanBase);
        assert_close(scores[0].win_rate, 0.0);
        assert_close(scores[1].win_rate, 1.0);
        assert_close(scores[0].score + scores[1].score, 1.0);
    }

    #[test]
    fn a_base_of_another_sample_count_is_an_error() {
        assert_eq!(
            score_models_over_base(&[entry(1, 1, &[1.0, 2.0])], Some(&[1.0]), &params()),
            Err(ScoreError::BaseSampleCountMismatch {
                expected: 2,
                got: 1
            })
        );
        // Nothing eligible: nothing to compare the base with, no error.
        assert!(
            score_models_over_base(&[], Some(&[1.0]), &params())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_lone_eligible_model_takes_everything() {
        let scores = score_models(&[entry(4, 1, &[3.0])], &params()).unwrap();
        assert_eq!((scores[0].win_rate, scores[0].score), (1.0, 1.0));
    }

    #[test]
    fn no_eligible_model_gives_all_zeros() {
        let mut failed = entry(0, 1, &[]);
        failed.evaluation = Evaluation::Failed { reason: "x".into() };
        assert_eq!(score_models(&[failed], &params()).unwrap()[0].score, 0.0);
        assert!(score_models(&[], &params()).unwrap().is_empty());
    }

    #[test]
    fn malformed_inputs_are_errors_naming_the_uid() {
        let p = params();
        assert_eq!(
            score_models(&[entry(1, 1, &[1.0]), entry(1, 2, &[1.0])], &p),
            Err(ScoreError::DuplicateUid { uid: 1 })
        );
        assert_eq!(
            score_models(&[entry(1, 1, &[1.0]), entry(2, 2, &[1.0, 2.0])], &p),
            Err(ScoreError::SampleCountMismatch {
                uid: 2,
                expected: 1,
                got: 2
            })
        );
        assert_eq!(
            score_models(&[entry(1, 1, &[1.0, -0.5])], &p),
            Err(ScoreError::NegativeLoss {
                uid: 1,
                sample: 1,
                loss: -0.5
            })
        );
        assert_eq!(
            score_models(&[entry(1, 1, &[])], &p),
            Err(ScoreError::NoSamples { uid: 1 })
        );
        let loose = ScoreParams {
            dethrone: DethroneRule {
                margin: 0.01,
                p_value: 0.0,
            },
            ..p
        };
        assert!(matches!(
            score_models(&[], &loose),
            Err(ScoreError::InvalidDethrone { .. })
        ));
        let hot = ScoreParams {
            temperature: 0.0,
            ..p
        };
        assert!(matches!(
            score_models(&[], &hot),
            Err(ScoreError::InvalidTemperature { .. })
        ));
    }

    #[test]
    fn params_come_from_the_competition_file() {
        let competition =
            Competition::from_toml(include_str!("../../competitions/default.toml")).unwrap();
        let p = ScoreParams::new(&competition);
        assert_eq!(p.dethrone, competition.dethrone);
        assert_eq!(p.temperature, competition.temperature);
        assert_eq!(p.following_margin, 0.0, "no [open]");
    }

    /// Eight open tasks: `LOW` keeps half the constraints of most, `HIGH` all of most.
    const LOW: [f64; 8] = [0.5, 0.5, 0.0, 0.5, 1.0, 0.5, 0.0, 0.5];
    const HIGH: [f64; 8] = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0];

    /// Scores two models, uid 0 committed at block 900 and uid 1 at 950, each given as
    /// (per-sample losses, per-task following shares).
    fn duel(earlier: (&[f64], &[f64]), later: (&[f64], &[f64])) -> Vec<MinerScore> {
        let entries = [
            following(entry(0, 900, earlier.0), earlier.1),
            following(entry(1, 950, later.0), later.1),
        ];
        score_models(&entries, &params()).unwrap()
    }

    #[test]
    fn a_model_that_keeps_significantly_more_constraints_wins_the_following_contest_either_way() {
        // Equal losses: the later model loses the loss contest (ties go to the earlier one) and
        // wins the following contest: one defeat each, equal shares.
        let scores = duel((&A, &LOW), (&A, &HIGH));
        assert_close(scores[0].score, 0.5);
        assert_close(scores[1].score, 0.5);
        assert_close(scores[0].win_rate, 0.5);
        // The earlier one can win a following contest too: the later B displaces it on loss
        // but follows worse, so each has one defeat.
        assert_close(duel((&A, &HIGH), (&B, &LOW))[0].score, 0.5);
        // Better on both: the later model takes both contests.
        let scores = duel((&A, &LOW), (&B, &HIGH));
        assert_close(scores[1].score, 1.0 / (1.0 + (-2.0f64 / 0.2).exp()));
        assert_eq!(scores[1].win_rate, 1.0);
        assert_eq!(scores[0].win_rate, 0.0);
    }

    #[test]
    fn equal_or_insignificant_following_changes_nothing() {
        // A sharpened or permuted copy answers greedily exactly as its original: equal shares
        // hold no following contest, so the loss contest alone decides, as without [open].
        let plain = score_models(&[entry(0, 900, &A), entry(1, 950, &B)], &params()).unwrap();
        assert_eq!(duel((&A, &LOW), (&B, &LOW)), plain);
        // One task better by chance is not significant at p = 0.01 over 8 tasks.
        let mut lucky = LOW;
        lucky[2] = 1.0;
        assert_eq!(duel((&A, &LOW), (&B, &lucky)), plain);
        // Better by less than the margin on every task: no contest either.
        let lower: Vec<f64> = LOW.iter().map(|f| f * 0.9).collect();
        let slightly: Vec<f64> = lower.iter().map(|f| f + 0.04).collect();
        assert_eq!(duel((&A, &slightly), (&B, &lower)), plain);
    }

    #[test]
    fn following_shares_must_be_one_per_task_within_zero_and_one() {
        let bad = |shares: &[f64], other: &[f64]| {
            score_models(
                &[
                    following(entry(0, 900, &A), other),
                    following(entry(1, 950, &B), shares),
                ],
                &params(),
            )
        };
        assert!(matches!(
            bad(&LOW[..7], &LOW),
            Err(ScoreError::BadFollowing { uid: 1, .. })
        ));
        assert!(matches!(
            bad(&[1.5; 8], &LOW),
            Err(ScoreError::BadFollowing { uid: 1, .. })
        ));
        assert!(matches!(
            bad(&[f64::NAN; 8], &LOW),
            Err(ScoreError::BadFollowing { uid: 1, .. })
        ));
        assert!(matches!(
            bad(&[], &[]),
            Err(ScoreError::BadFollowing { .. })
        ));
        // An entry without shares holds no following contest (and is not an error).
        let mixed = score_models(
            &[following(entry(0, 900, &A), &HIGH), entry(1, 950, &B)],
            &params(),
        )
        .unwrap();
        assert_eq!(
            mixed,
            score_models(&[entry(0, 900, &A), entry(1, 950, &B)], &params()).unwrap()
        );
    }

    #[test]
    fn status_serializes_with_a_tag() {
        let json = serde_json::to_string(&Status::DuplicateOf { uid: 3 }).unwrap();
        assert_eq!(json, r#"{"status":"duplicate_of","uid":3}"#);
    }

    /// Up to 6 miners over `samples` samples; a few share manifests, fail, or are flagged copies.
    fn arb_entries() -> impl Strategy<Value = Vec<ModelEntry>> {
        (1usize..8).prop_flat_map(|samples| {
            proptest::collection::vec(
                (
                    0u64..1000,
                    0u8..4,
                    proptest::collection::vec(0.0f64..5.0, samples),
                    0u8..10,
                ),
                0..7,
            )
            .prop_map(|rows| {
                rows.into_iter()
                    .enumerate()
                    .map(|(i, (block, manifest, losses, fate))| {
                        let uid = i as u16 * 3 + 1;
                        let mut e = entry(uid, block, &losses);
                        // Half the miners share one of three manifests with somebody, the rest are unique.
                        e.manifest_sha256 = if manifest < 2 {
                            [manifest; 32]
                        } else {
                            [100 + i as u8; 32]
                        };
                        match fate {
                            0 => {
                                e.evaluation = Evaluation::Failed {
                                    reason: "down".into(),
                                }
                            }
                            1 => e.copy_of = Some(0),
                            _ => {}
                        }
                        e
                    })
                    .collect()
            })
        })
    }

    proptest! {
        #[test]
        fn scores_are_non_negative_and_sum_to_one_when_anyone_is_eligible(entries in arb_entries()) {
            let scores = score_models(&entries, &params()).unwrap();
            prop_assert!(scores.iter().all(|s| s.score >= 0.0 && (0.0..=1.0).contains(&s.win_rate)));
            let eligible: Vec<&MinerScore> = scores.iter().filter(|s| s.status == Status::Scored).collect();
            let total: f64 = scores.iter().map(|s| s.score).sum();
            if eligible.is_empty() {
                prop_assert_eq!(total, 0.0);
            } else {
                prop_assert!((total - 1.0).abs() < 1e-9, "total {}", total);
            }
            prop_assert!(scores.iter().filter(|s| s.status != Status::Scored).all(|s| s.score == 0.0));
        }

        #[test]
        fn nothing_short_of_the_base_by_the_margin_scores(entries in arb_entries(), cut in 0.0f64..0.5) {
            // The base: the first evaluated entry's losses, lowered by `cut` (possibly below all).
            let Some(base) = entries.iter().find_map(|e| match &e.evaluation {
                Evaluation::Losses(l) => Some(l.iter().map(|x| (x - cut).max(0.0)).collect::<Vec<f64>>()),
                _ => None,
            }) else {
                return Ok(());
            };
            let scores = score_models_over_base(&entries, Some(&base), &params()).unwrap();
            let base_mean = base.iter().sum::<f64>() / base.len() as f64;
            for (entry, score) in entries.iter().zip(&scores) {
                if score.status == Status::Scored {
                    let Evaluation::Losses(l) = &entry.evaluation else { unreachable!() };
                    let mean = l.iter().sum::<f64>() / l.len() as f64;
                    prop_assert!(mean < base_mean * (1.0 - params().dethrone.margin));
                } else {
                    prop_assert_eq!(score.score, 0.0);
                }
            }
            let total: f64 = scores.iter().map(|s| s.score).sum();
            let any = scores.iter().any(|s| s.status == Status::Scored);
            let expected = if any { 1.0 } else { 0.0 };
            prop_assert!((total - expected).abs() < 1e-9, "total {}", total);
        }

        #[test]
        fn win_rates_of_k_models_sum_to_k_over_two(entries in arb_entries()) {
            let scores = score_models(&entries, &params()).unwrap();
            let k = scores.iter().filter(|s| s.status == Status::Scored).count();
            if k >= 2 {
                let sum: f64 = scores.iter().map(|s| s.win_rate).sum();
                prop_assert!((sum - k as f64 / 2.0).abs() < 1e-9);
            }
        }

        #[test]
        fn input_order_does_not_change_any_result(entries in arb_entries(), rotate in 0usize..7) {
            let scores = score_models(&entries, &params()).unwrap();
            let mut shuffled = entries.clone();
            shuffled.reverse();
            let len = shuffled.len().max(1);
            shuffled.rotate_left(rotate % len);
            let mut again = score_models(&shuffled, &params()).unwrap();
            again.sort_by_key(|s| s.uid);
            let mut sorted = scores;
            sorted.sort_by_key(|s| s.uid);
            prop_assert_eq!(sorted, again);
        }

        #[test]
        fn an_earlier_model_better_on_every_sample_outscores_a_later_one(
            entries in arb_entries(),
            better in proptest::collection::vec(0.01f64..5.0, 1..8),
            margin in 0.001f64..1.0,
            block in 0u64..900,
            gap in 1u64..100,
        ) {
            // Put the two contenders on the same sample count as the rest.
            let samples = match entries.first().map(|e| &e.evaluation) {
                Some(Evaluation::Losses(l)) => l.len(),
                _ => better.len(),
            };
            let good: Vec<f64> = (0..samples).map(|s| better[s % better.len()]).collect();
            let worse: Vec<f64> = good.iter().map(|l| l + margin).collect();
            // (the later, worse model cannot displace the earlier one, so it loses the pair)
            let mut field: Vec<ModelEntry> = entries
                .into_iter()
                .filter(|e| matches!(&e.evaluation, Evaluation::Losses(l) if l.len() == samples) || matches!(e.evaluation, Evaluation::Failed { .. }))
                .collect();
            field.push(entry(900, block, &good));
            field.push(entry(901, block + gap, &worse));
            let scores = score_models(&field, &params()).unwrap();
            let a = scores.iter().find(|s| s.uid == 900).unwrap();
            let b = scores.iter().find(|s| s.uid == 901).unwrap();
            prop_assert!(a.score > b.score, "{:?} vs {:?}", a, b);
            prop_assert!(a.win_rate > b.win_rate);
        }
    }
}
