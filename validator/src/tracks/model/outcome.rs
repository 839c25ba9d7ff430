//! What the model track records per miner, and the pure step that turns per-miner evaluations
//! into scores ([`assemble`], a thin layer over [`subnet_model::score::score_models`]).

use serde::{Deserialize, Serialize};
use subnet_model::score::{Evaluation, MinerScore, ModelEntry, ScoreError, ScoreParams, Status};

use crate::artifacts::FetchError;

/// How a miner's model fared this epoch. Serialized as the snake_case code stored with the
/// evaluation; every code but `ok` scores 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Evaluated and scored.
    Ok,
    /// No model commitment on chain (or one that does not parse).
    NoCommitment,
    /// Committed less than `eval.block_delay` blocks before the seed block.
    TooRecent,
    /// Committed for another competition.
    WrongCompetition,
    /// No axon published on chain.
    NotServing,
    /// The miner did not answer in time.
    Timeout,
    /// The miner could not be reached.
    Unreachable,
    /// The miner answered with an HTTP error status.
    BadStatus,
    /// The miner answered with a redirect, which the validator never follows.
    Redirect,
    /// A served hash differs from the commitment (manifest or a file).
    HashMismatch,
    /// The artifact, a file or an architecture dimension is over the competition's limit.
    TooLarge,
    /// The miner's answers break the protocol (bad manifest, names, sizes, competition).
    Malformed,
    /// The artifact does not load as a valid model (bad config, shapes, dtypes, NaN/Inf, ...).
    BadModel,
    /// The same manifest as a model committed earlier.
    Duplicate,
    /// A near-copy of a model committed earlier (by function, or cosine ≥ threshold on every
    /// tensor).
    Copy,
    /// Evaluated, but not better than the competition's base model by the dethrone margin under
    /// the paired test: an upload of the public base, or a copy of it, earns nothing.
    NotBetterThanBase,
    /// `/v1/generate` answered something the committed model does not produce: the miner serves
    /// another model than it committed. Scores 0.
    SpotCheckFailed,
    /// The validator itself failed (its disk, a crashed evaluation); not the miner's fault, but
    /// nothing could be scored.
    InternalError,
}

impl Outcome {
    /// The stable code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::NoCommitment => "no_commitment",
            Self::TooRecent => "too_recent",
            Self::WrongCompetition => "wrong_competition",
            Self::NotServing => "not_serving",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::BadStatus => "bad_status",
            Self::Redirect => "redirect",
            Self::HashMismatch => "hash_mismatch",
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::BadModel => "bad_model",
            Self::Duplicate => "duplicate",
            Self::Copy => "copy",
            Self::NotBetterThanBase => "not_better_than_base",
            Self::SpotCheckFailed => "spot_check_failed",
            Self::InternalError => "internal_error",
        }
    }

    /// The outcome of a failed artifact fetch.
    pub fn of_fetch(error: &FetchError) -> Self {
        match error {
            FetchError::Timeout { .. } | FetchError::TooSlow { .. } => Self::Timeout,
            FetchError::Redirect { .. } => Self::Redirect,
            FetchError::Unreachable { .. } => Self::Unreachable,
            FetchError::BadStatus { .. } => Self::BadStatus,
            FetchError::Malformed(_) => Self::Malformed,
            FetchError::HashMismatch { .. } => Self::HashMismatch,
            FetchError::TooLarge { .. } => Self::TooLarge,
            FetchError::Io { .. } => Self::InternalError,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Result of asking a miner's `/v1/generate` for a greedy continuation and checking it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpotStatus {
    /// The answer is the committed model's greedy output.
    Passed,
    /// The answer is not: outcome [`Outcome::SpotCheckFailed`], score 0.
    Failed,
    /// The miner has no `/v1/generate` (404/405/501), did not answer, or answered garbage.
    /// No penalty unless the track is configured to require spot-checks.
    Unavailable,
}

/// A spot-check as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpotCheck {
    /// What happened.
    pub status: SpotStatus,
    /// Details: the mismatching token, the HTTP status, ...
    pub detail: String,
}

/// A miner's model-track record for one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerResult {
    /// The miner's uid.
    pub uid: u16,
    /// Its hotkey (SS58).
    pub hotkey: String,
    /// The manifest hash the commitment binds, once the served manifest was verified against it.
    pub manifest_sha256: Option<String>,
    /// The block of that commitment.
    pub commit_block: Option<u64>,
    /// How it fared.
    pub outcome: Outcome,
    /// Why, in words (empty for `ok`).
    pub reason: String,
    /// Per-sample losses (nats), in sample order; empty when not evaluated.
    pub losses: Vec<f64>,
    /// Completion tokens each loss averages over, in sample order: one per loss when the model
    /// track evaluated the model this run, empty otherwise (e.g. a result rebuilt from stored
    /// losses alone).
    #[serde(default)]
    pub sample_tokens: Vec<usize>,
    /// Mean of `losses`.
    pub mean_loss: Option<f64>,
    /// Per open instruction, the share of its constraints the model's answer kept, in task
    /// order; empty when the competition has no open instructions or the model was not
    /// evaluated.
    #[serde(default)]
    pub following: Vec<f64>,
    /// Fraction of pairwise contests won among eligible models (0 when ineligible); shown, the
    /// score is from the defeats.
    pub win_rate: f64,
    /// Model-track score; eligible scores sum to 1.
    pub score: f64,
    /// The spot-check, when this miner was checked.
    pub spot_check: Option<SpotCheck>,
    /// True when the losses came from this epoch's evaluation cache.
    pub cached: bool,
}

/// Where one miner got to this epoch; the input of [`assemble`].
#[derive(Debug, Clone, PartialEq)]
pub struct MinerEval {
    /// The miner's uid.
    pub uid: u16,
    /// Its hotkey (SS58).
    pub hotkey: String,
    /// Its model commitment, if any.
    pub commitment: Option<Committed>,
    /// How far it got.
    pub stage: Stage,
}

/// A miner's model commitment, as far as the track verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The block of the commitment.
    pub block: u64,
    /// The manifest hash the commitment binds to the miner's hotkey, once the miner served a
    /// manifest the binding names; `None` when the track got no such manifest (skipped, or the
    /// fetch failed before).
    pub manifest_sha256: Option<String>,
}

/// How far a miner's model got through the track.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Not a candidate this epoch (no commitment, too recent, wrong competition, not serving):
    /// takes no part in scoring, not even in duplicate ownership.
    Skipped {
        /// Why.
        outcome: Outcome,
        /// In words.
        reason: String,
    },
    /// A candidate whose fetch or load failed: owns its manifest (when verified) against later
    /// duplicates but scores 0.
    Failed {
        /// Why.
        outcome: Outcome,
        /// In words.
        reason: String,
    },
    /// Evaluated.
    Evaluated {
        /// Per-sample losses.
        losses: Vec<f64>,
        /// Per open instruction, the share of its constraints kept (when the competition has
        /// open instructions).
        following: Option<Vec<f64>>,
        /// From the evaluation cache.
        cached: bool,
        /// Near-copy of this uid's earlier model.
        copy_of: Option<u16>,
        /// The spot-check, if any.
        spot_check: Option<SpotCheck>,
    },
}

/// Scores the epoch: candidates (failed or evaluated) go through `score_models`, whose statuses
/// become outcomes (`duplicate`, `copy`, the failure's own code); a failed spot-check counts as a
/// failed evaluation, so the miner takes no part in the comparisons. Results in `evals` order.
///
/// `base`: the competition's base model's losses on the same samples, when it pins one; an entry
/// that does not displace it is `not_better_than_base`.
pub fn assemble(
    evals: &[MinerEval],
    base: Option<&[f64]>,
    params: &ScoreParams,
) -> Result<Vec<MinerResult>, ScoreError> {
    let mut entries = Vec::new();
    for eval in evals {
        // Without a verified manifest a miner owns nothing and duplicates nothing: it scores 0
        // from its stage alone.
        let Some(Committed {
            block,
            manifest_sha256: Some(manifest),
        }) = &eval.commitment
        else {
            continue;
        };
        let evaluation = match &eval.stage {
            Stage::Skipped { .. } => continue,
            Stage::Failed { outcome, reason } => Evaluation::Failed {
                reason: format!("{outcome}: {reason}"),
            },
            Stage::Evaluated { spot_check, .. } if is_failed(spot_check) => Evaluation::Failed {
                reason: "spot_check_failed".into(),
            },
            Stage::Evaluated { losses, .. } => Evaluation::Losses(losses.clone()),
        };
        let (copy_of, following) = match &eval.stage {
            Stage::Evaluated {
                copy_of, following, ..
            } => (*copy_of, following.clone()),
            _ => (None, None),
        };
        entries.push(ModelEntry {
            uid: eval.uid,
            hotkey: eval.hotkey.clone(),
            commit_block: *block,
            manifest_sha256: manifest_bytes(manifest),
            evaluation,
            copy_of,
            following,
        });
    }
    let scores = subnet_model::score::score_models_over_base(&entries, base, params)?;
    let by_uid: std::collections::BTreeMap<u16, MinerScore> =
        scores.into_iter().map(|s| (s.uid, s)).collect();
    Ok(evals
        .iter()
        .map(|eval| result_of(eval, by_uid.get(&eval.uid)))
        .collect())
}

fn is_failed(spot: &Option<SpotCheck>) -> bool {
    spot.as_ref()
        .is_some_and(|s| s.status == SpotStatus::Failed)
}

/// The 32 bytes of a hex manifest hash (validated upstream; anything else hashes to a value no
/// real manifest has, so it still only duplicates itself).
fn manifest_bytes(hex_hash: &str) -> [u8; 32] {
    match hex::decode(hex_hash)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        Some(bytes) => bytes,
        None => sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(
            hex_hash.as_bytes(),
        ))
        .into(),
    }
}

fn result_of(eval: &MinerEval, score: Option<&MinerScore>) -> MinerResult {
    let (manifest_sha256, commit_block) = match &eval.commitment {
        Some(committed) => (committed.manifest_sha256.clone(), Some(committed.block)),
        None => (None, None),
    };
    let mut result = MinerResult {
        uid: eval.uid,
        hotkey: eval.hotkey.clone(),
        manifest_sha256,
        commit_block,
        outcome: Outcome::Ok,
        reason: String::new(),
        losses: Vec::new(),
        sample_tokens: Vec::new(),
        mean_loss: None,
        following: Vec::new(),
        win_rate: score.map_or(0.0, |s| s.win_rate),
        score: score.map_or(0.0, |s| s.score),
        spot_check: None,
        cached: false,
    };
    match &eval.stage {
        Stage::Skipped { outcome, reason } | Stage::Failed { outcome, reason } => {
            result.outcome = *outcome;
            result.reason = reason.clone();
        }
        Stage::Evaluated {
            losses,
            following,
            cached,
            spot_check,
            ..
        } => {
            result.mean_loss = mean(losses);
            result.losses = losses.clone();
            result.following = following.clone().unwrap_or_default();
            result.cached = *cached;
            result.spot_check = spot_check.clone();
            match score.map(|s| &s.status) {
                Some(Status::DuplicateOf { uid }) => {
                    result.outcome = Outcome::Duplicate;
                    result.reason = format!("same manifest as uid {uid}, committed earlier");
                }
                Some(Status::CopyOf { uid }) => {
                    result.outcome = Outcome::Copy;
                    result.reason = format!("near-copy of uid {uid}'s earlier model");
                }
                Some(Status::NotBetterThanBase) => {
                    result.outcome = Outcome::NotBetterThanBase;
                    result.reason = "does not beat the competition's base model by the dethrone \
                                     margin (paired t-test)"
                        .into();
                }
                _ if is_failed(spot_check) => {
                    result.outcome = Outcome::SpotCheckFailed;
                    result.reason = spot_check
                        .as_ref()
                        .map(|s| s.detail.clone())
                        .unwrap_or_default();
                }
                _ => {}
            }
        }
    }
    if let (Stage::Failed { .. }, Some(Status::DuplicateOf { uid })) =
        (&eval.stage, score.map(|s| &s.status))
    {
        result.outcome = Outcome::Duplicate;
        result.reason = format!("same manifest as uid {uid}, committed earlier");
    }
    result
}

/// Arithmetic mean, `None` for no values.
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::competition::DethroneRule;

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

    fn hash(byte: char) -> String {
        byte.to_string().repeat(64)
    }

    fn evaluated(uid: u16, block: u64, manifest: char, losses: &[f64]) -> MinerEval {
        MinerEval {
            uid,
            hotkey: format!("hk{uid}"),
            commitment: Some(Committed {
                block,
                manifest_sha256: Some(hash(manifest)),
            }),
            stage: Stage::Evaluated {
                losses: losses.to_vec(),
                following: None,
                cached: false,
                copy_of: None,
                spot_check: None,
            },
        }
    }

    #[test]
    fn outcome_codes_match_their_serde_names() {
        for outcome in [
            Outcome::Ok,
            Outcome::NoCommitment,
            Outcome::TooRecent,
            Outcome::SpotCheckFailed,
            Outcome::InternalError,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::json!(outcome.code())
            );
        }
    }

    #[test]
    fn better_losses_score_higher_and_ineligible_miners_score_zero() {
        let mut copy = evaluated(3, 950, 'c', &[1.0, 1.0]);
        if let Stage::Evaluated { copy_of, .. } = &mut copy.stage {
            *copy_of = Some(0);
        }
        let evals = vec![
            evaluated(0, 900, 'a', &[1.0, 1.0]),
            evaluated(1, 900, 'b', &[2.0, 2.0]),
            evaluated(2, 950, 'a', &[1.0, 1.0]),
            copy,
            MinerEval {
                uid: 4,
                hotkey: "hk4".into(),
                commitment: Some(Committed {
                    block: 900,
                    manifest_sha256: Some(hash('d')),
                }),
                stage: Stage::Failed {
                    outcome: Outcome::BadModel,
                    reason: "NaN".into(),
                },
            },
            MinerEval {
                uid: 5,
                hotkey: "hk5".into(),
                commitment: None,
                stage: Stage::Skipped {
                    outcome: Outcome::NoCommitment,
                    reason: "none".into(),
                },
            },
        ];
        let results = assemble(&evals, None, &params()).unwrap();
        let outcomes: Vec<Outcome> = results.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Ok,
                Outcome::Ok,
                Outcome::Duplicate,
                Outcome::Copy,
                Outcome::BadModel,
                Outcome::NoCommitment
            ]
        );
        assert!(results[0].score > results[1].score);
        assert!((results[0].score + results[1].score - 1.0).abs() < 1e-12);
        assert!(results[2..].iter().all(|r| r.score == 0.0));
        assert_eq!(results[0].mean_loss, Some(1.0));
        assert_eq!(
            results[2].reason,
            "same manifest as uid 0, committed earlier"
        );
        assert_eq!(results[5].manifest_sha256, None);
    }

    #[test]
    fn a_failed_spot_check_zeroes_the_miner_and_leaves_the_others_normalised() {
        let mut cheat = evaluated(1, 900, 'b', &[0.5, 0.5]);
        if let Stage::Evaluated { spot_check, .. } = &mut cheat.stage {
            *spot_check = Some(SpotCheck {
                status: SpotStatus::Failed,
                detail: "token 0 differs".into(),
            });
        }
        let mut unavailable = evaluated(2, 900, 'c', &[2.0, 2.0]);
        if let Stage::Evaluated { spot_check, .. } = &mut unavailable.stage {
            *spot_check = Some(SpotCheck {
                status: SpotStatus::Unavailable,
                detail: "404".into(),
            });
        }
        let evals = vec![evaluated(0, 900, 'a', &[1.0, 1.0]), cheat, unavailable];
        let results = assemble(&evals, None, &params()).unwrap();
        assert_eq!(results[1].outcome, Outcome::SpotCheckFailed);
        assert_eq!(results[1].reason, "token 0 differs");
        assert_eq!(results[1].score, 0.0);
        assert_eq!(results[2].outcome, Outcome::Ok);
        assert!(results[0].score > results[2].score && results[2].score > 0.0);
        assert!((results[0].score + results[2].score - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_failed_earlier_owner_still_makes_a_later_identical_manifest_a_duplicate() {
        let evals = vec![
            MinerEval {
                uid: 0,
                hotkey: "hk0".into(),
                commitment: Some(Committed {
                    block: 900,
                    manifest_sha256: Some(hash('a')),
                }),
                stage: Stage::Failed {
                    outcome: Outcome::Timeout,
                    reason: "slow".into(),
                },
            },
            evaluated(1, 950, 'a', &[1.0]),
        ];
        let results = assemble(&evals, None, &params()).unwrap();
        assert_eq!(results[0].outcome, Outcome::Timeout);
        assert_eq!(results[1].outcome, Outcome::Duplicate);
        assert_eq!(results[1].score, 0.0);
    }

    #[test]
    fn a_candidate_whose_manifest_was_never_verified_owns_nothing() {
        let evals = vec![
            MinerEval {
                uid: 0,
                hotkey: "hk0".into(),
                commitment: Some(Committed {
                    block: 900,
                    manifest_sha256: None,
                }),
                stage: Stage::Failed {
                    outcome: Outcome::HashMismatch,
                    reason: "front-run".into(),
                },
            },
            evaluated(1, 950, 'a', &[1.0]),
        ];
        let results = assemble(&evals, None, &params()).unwrap();
        assert_eq!(results[0].outcome, Outcome::HashMismatch);
        assert_eq!(
            (
                results[0].manifest_sha256.as_deref(),
                results[0].commit_block
            ),
            (None, Some(900))
        );
        assert_eq!(results[1].outcome, Outcome::Ok);
        assert_eq!(results[1].score, 1.0);
    }

    #[test]
    fn an_entry_short_of_the_base_is_recorded_as_such_and_scores_nothing() {
        let base = [2.0, 2.2, 1.8, 2.4];
        let better: Vec<f64> = base.iter().map(|l| l * 0.9).collect();
        let evals = [
            evaluated(0, 900, 'a', &base),
            evaluated(1, 950, 'b', &better),
        ];
        let results = assemble(&evals, Some(&base), &params()).unwrap();
        assert_eq!(results[0].outcome, Outcome::NotBetterThanBase);
        assert_eq!(results[0].outcome.code(), "not_better_than_base");
        assert!(
            results[0].reason.contains("base model"),
            "{}",
            results[0].reason
        );
        assert_eq!((results[0].score, results[0].mean_loss), (0.0, Some(2.1)));
        assert_eq!((results[1].outcome, results[1].score), (Outcome::Ok, 1.0));
    }
}
