//! Model-track scoring: pairwise per-sample comparisons with an advantage for earlier commits.
//!
//! Pure: no IO, no clock, no randomness; the current block is an argument. The rule
//! (`docs/scoring.md` has a worked example):
//!
//! 1. **Eligibility.** Among entries with the same `manifest_sha256`, only the earliest commit
//!    (lowest block, then lowest uid) is eligible; the others are [`Status::DuplicateOf`] it.
//!    Entries flagged by near-duplicate detection are [`Status::CopyOf`]; entries whose evaluation
//!    failed are [`Status::EvalFailed`]. Ineligible entries score 0 and take no part in step 2.
//! 2. **Win rate.** For each pair of eligible models and each sample, the earlier-committed
//!    model's loss is multiplied by `1 − ε(age)`, `age = current_block − its commit block`, ε
//!    from the competition's [`EpsilonSchedule`]. The lower loss wins; equal losses are a tie worth
//!    half a win to each (models committed in the same block get no ε). A NaN loss counts as +∞.
//!    `win_rate = wins / ((k − 1) · samples)` over the `k` eligible models; a model alone is 1.
//! 3. **Score.** `score = softmax(win_rate / T)` over eligible models, so scores sum to 1.
//!
//! Wins are counted in exact half-units and the softmax is summed in uid order with `libm::exp`,
//! so the same inputs give bit-identical scores in any input order on any machine.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::competition::{Competition, EpsilonSchedule};

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
    /// An ε of the schedule is outside `0..1`, so a discount could flip or erase a loss.
    #[error("epsilon schedule {start} → {end} must stay within 0..1")]
    InvalidEpsilon {
        /// ε at age 0.
        start: f64,
        /// ε at the end of the decay.
        end: f64,
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
    /// Block of the commitment; earlier commits win ties within ε.
    pub commit_block: u64,
    /// The committed manifest hash; equal hashes are the same model.
    pub manifest_sha256: [u8; 32],
    /// Per-sample losses or the failure.
    pub evaluation: Evaluation,
    /// Set by near-duplicate detection: this model copies the model of that uid.
    pub copy_of: Option<u16>,
}

/// Scoring parameters, from the competition file and the chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreParams {
    /// The block ages are measured at (the eval seed block).
    pub current_block: u64,
    /// The earlier commit's advantage.
    pub epsilon: EpsilonSchedule,
    /// Softmax temperature `T`.
    pub temperature: f64,
}

impl ScoreParams {
    /// The parameters of `competition` for an evaluation seeded at `current_block`.
    pub fn new(competition: &Competition, current_block: u64) -> Self {
        ScoreParams {
            current_block,
            epsilon: competition.epsilon,
            temperature: competition.temperature,
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
    /// Fraction of pairwise per-sample comparisons won (ties half); 0 when not scored.
    pub win_rate: f64,
    /// Share of the model track, `softmax(win_rate / T)`; 0 when not scored.
    pub score: f64,
    /// Scored, or why not.
    pub status: Status,
}

/// Scores every entry; results come back in input order.
pub fn score_models(
    entries: &[ModelEntry],
    params: &ScoreParams,
) -> Result<Vec<MinerScore>, ScoreError> {
    if !(params.temperature.is_finite() && params.temperature > 0.0) {
        return Err(ScoreError::InvalidTemperature {
            temperature: params.temperature,
        });
    }
    let (start, end) = (params.epsilon.start, params.epsilon.end);
    if ![start, end].iter().all(|e| (0.0..1.0).contains(e)) {
        return Err(ScoreError::InvalidEpsilon { start, end });
    }
    let mut uids = BTreeSet::new();
    for entry in entries {
        if !uids.insert(entry.uid) {
            return Err(ScoreError::DuplicateUid { uid: entry.uid });
        }
    }

    let statuses: Vec<Status> = eligibility(entries);
    // Eligible entries in uid order, with NaN losses mapped to +∞.
    let mut eligible: Vec<(u16, u64, Vec<f64>)> = Vec::new();
    for (entry, status) in entries.iter().zip(&statuses) {
        if let (Status::Scored, Evaluation::Losses(losses)) = (status, &entry.evaluation) {
            let losses = losses
                .iter()
                .map(|&loss| if loss.is_nan() { f64::INFINITY } else { loss })
                .collect();
            eligible.push((entry.uid, entry.commit_block, losses));
        }
    }
    eligible.sort_by_key(|&(uid, _, _)| uid);
    validate_losses(&eligible)?;

    let win_rates = win_rates(&eligible, params);
    let scores = softmax(&win_rates, params.temperature);
    let by_uid: BTreeMap<u16, (f64, f64)> = eligible
        .iter()
        .zip(win_rates.iter().zip(&scores))
        .map(|((uid, _, _), (&win_rate, &score))| (*uid, (win_rate, score)))
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

/// All eligible entries need the same, non-zero number of non-negative losses.
fn validate_losses(eligible: &[(u16, u64, Vec<f64>)]) -> Result<(), ScoreError> {
    let Some((_, _, first)) = eligible.first() else {
        return Ok(());
    };
    for (uid, _, losses) in eligible {
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

/// Step 2: each eligible model's win rate, in the order given.
fn win_rates(eligible: &[(u16, u64, Vec<f64>)], params: &ScoreParams) -> Vec<f64> {
    let k = eligible.len();
    if k <= 1 {
        return vec![1.0; k];
    }
    // Wins in half-units: a win is 2, a tie 1. Integers, so order cannot change the totals.
    let mut half_wins = vec![0u64; k];
    for i in 0..k {
        for j in i + 1..k {
            let (_, block_i, losses_i) = &eligible[i];
            let (_, block_j, losses_j) = &eligible[j];
            let earlier = block_i.min(block_j);
            let discount = 1.0
                - params
                    .epsilon
                    .at(params.current_block.saturating_sub(*earlier));
            let (factor_i, factor_j) = match block_i.cmp(block_j) {
                std::cmp::Ordering::Less => (discount, 1.0),
                std::cmp::Ordering::Greater => (1.0, discount),
                std::cmp::Ordering::Equal => (1.0, 1.0),
            };
            for (&a, &b) in losses_i.iter().zip(losses_j) {
                let (a, b) = (a * factor_i, b * factor_j);
                if a < b {
                    half_wins[i] += 2;
                } else if b < a {
                    half_wins[j] += 2;
                } else {
                    half_wins[i] += 1;
                    half_wins[j] += 1;
                }
            }
        }
    }
    let samples = eligible[0].2.len() as f64;
    let comparisons = 2.0 * (k - 1) as f64 * samples;
    half_wins.iter().map(|&h| h as f64 / comparisons).collect()
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
            current_block: 1000,
            epsilon: EpsilonSchedule {
                start: 0.05,
                end: 0.01,
                decay_blocks: 100,
            },
            temperature: 0.1,
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
        }
    }

    fn assert_close(got: f64, want: f64) {
        assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
    }

    /// The worked example of docs/scoring.md.
    fn worked_example() -> Vec<ModelEntry> {
        let mut duplicate = entry(3, 960, &[0.1, 0.1, 0.1]);
        duplicate.manifest_sha256 = [0; 32];
        let mut failed = entry(4, 800, &[]);
        failed.evaluation = Evaluation::Failed {
            reason: "timeout fetching manifest".into(),
        };
        let mut a = entry(0, 900, &[1.000, 2.00, 0.52]);
        a.manifest_sha256 = [0; 32];
        vec![
            a,
            entry(1, 950, &[0.995, 2.10, 0.50]),
            entry(2, 990, &[0.900, 2.05, 0.55]),
            duplicate,
            failed,
        ]
    }

    #[test]
    fn worked_three_miner_example_matches_the_hand_computation() {
        let scores = score_models(&worked_example(), &params()).unwrap();
        // A beats B on s1 (0.99 < 0.995, thanks to ε = 0.01) and s2, C on s2 and s3: 4 of 6.
        // B beats A on s3, C on s2 (2.037 < 2.05, thanks to ε = 0.03) and s3: 3 of 6.
        // C beats A on s1, B on s1: 2 of 6.
        assert_close(scores[0].win_rate, 4.0 / 6.0);
        assert_close(scores[1].win_rate, 3.0 / 6.0);
        assert_close(scores[2].win_rate, 2.0 / 6.0);
        // softmax([4/6, 3/6, 2/6] / 0.1)
        assert_close(scores[0].score, 0.816_627);
        assert_close(scores[1].score, 0.154_241);
        assert_close(scores[2].score, 0.029_132);
        assert_eq!(scores[3].status, Status::DuplicateOf { uid: 0 });
        assert_eq!((scores[3].win_rate, scores[3].score), (0.0, 0.0));
        assert!(
            matches!(&scores[4].status, Status::EvalFailed { reason } if reason.contains("timeout"))
        );
        assert_eq!(scores[4].score, 0.0);
    }

    #[test]
    fn without_epsilon_the_worked_example_is_a_three_way_tie() {
        let mut p = params();
        p.epsilon = EpsilonSchedule {
            start: 0.0,
            end: 0.0,
            decay_blocks: 0,
        };
        let scores = score_models(&worked_example()[..3], &p).unwrap();
        // s1: B (0.995) now beats A (1.0); s2: C (2.05) now beats B (2.10). Everyone wins 3 of 6.
        for s in &scores {
            assert_close(s.win_rate, 0.5);
            assert_close(s.score, 1.0 / 3.0);
        }
    }

    #[test]
    fn equal_losses_in_the_same_block_tie_for_half_a_win_each() {
        let scores = score_models(
            &[entry(0, 5, &[1.0, 2.0]), entry(1, 5, &[1.0, 3.0])],
            &params(),
        )
        .unwrap();
        assert_close(scores[0].win_rate, 0.75);
        assert_close(scores[1].win_rate, 0.25);
    }

    #[test]
    fn nan_losses_lose_to_everything_and_tie_with_infinity() {
        let scores = score_models(
            &[
                entry(0, 5, &[f64::NAN]),
                entry(1, 6, &[9.0]),
                entry(2, 7, &[f64::INFINITY]),
            ],
            &params(),
        )
        .unwrap();
        assert_close(scores[0].win_rate, 0.25);
        assert_close(scores[1].win_rate, 1.0);
        assert_close(scores[2].win_rate, 0.25);
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
        let greedy = ScoreParams {
            epsilon: EpsilonSchedule {
                start: 1.5,
                end: 0.0,
                decay_blocks: 10,
            },
            ..p
        };
        assert!(matches!(
            score_models(&[], &greedy),
            Err(ScoreError::InvalidEpsilon { .. })
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
        let p = ScoreParams::new(&competition, 77);
        assert_eq!(p.current_block, 77);
        assert_eq!(p.epsilon, competition.epsilon);
        assert_eq!(p.temperature, competition.temperature);
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
