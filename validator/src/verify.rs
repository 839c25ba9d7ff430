//! `validator verify --epoch N`: recompute an epoch's scores, EMAs and u16 weights from the raw
//! data stored for it, with the same pure functions the epoch loop uses, and report every value
//! that differs from what was stored (and committed).
//!
//! Inputs, all from Postgres except the competition file: per-sample losses, outcomes, manifests
//! and commit blocks (`model_evals`), the base model's losses when the competition pins one
//! (`epochs.base_losses`), the block scores were computed at (`epochs.scored_block`),
//! the label track's inputs (`label_batches`: each miner's outcome and the scoring parameters;
//! `label_tasks`: every task sent with whether it was known-answer and which side was correct;
//! `labels`: every label collected), each hotkey's EMA from the epochs before N, registrations
//! (`miners`), and the weight row (`weight_commits`). The competition file must hash to the
//! stored `competition_sha256`.
//!
//! Steps: rebuild each miner's [`MinerEval`] from its stored outcome → [`outcome::assemble`]
//! (`score_models`); rebuild each label miner's votes from its tasks and labels →
//! [`labels::rescore`] (`score::score`, the majorities for the agreement term included, as they
//! are a function of the other miners' stored labels) → compare every component with
//! `label_batches` and the label score with `scores.label_score`; both tracks' recomputed scores
//! → [`weights::weight_rows`] → [`weights::to_u16_weights`] → the commit hash (when the
//! validator's hotkey is given).
//!
//! Limits: copy detection, spot-checks and fetch failures are taken as recorded (they need the
//! artifacts); so is each label miner's outcome (whether its batch was collected: it depends on
//! the network) and the batches themselves (rebuilding them needs the answer models; the stored
//! `track_seed` makes that possible but verify does not do it); registrations come from
//! `miners`, which keeps only each hotkey's latest one, so an epoch before a hotkey re-registered
//! may report an EMA difference for that hotkey.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use sqlx::PgPool;
use subnet_common::chain::types::commit_hash;
use subnet_common::keys::AccountId;
use subnet_model::competition::CompetitionFile;
use subnet_model::score::{ScoreError, ScoreParams};

use crate::db::{self, DbError, ModelEvalRecord, WeightMode};
use crate::service::weights::{self, ConvertError, Neuron, PreviousEma, TrackScores};
use crate::tracks::labels::{self, LabelTrackResult};
use crate::tracks::model::outcome::{
    self, Committed, MinerEval, Outcome, SpotCheck, SpotStatus, Stage,
};

/// Two floats are equal when within this (stored values round-trip exactly; this only absorbs
/// a different summation order).
const TOLERANCE: f64 = 1e-12;

/// Why an epoch cannot be verified at all (as opposed to verifying with differences).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading the stored data failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Nothing is stored for the epoch.
    #[error("epoch {epoch} of subnet {netuid} is not stored")]
    NoEpoch {
        /// Subnet.
        netuid: u16,
        /// Epoch.
        epoch: i64,
    },
    /// The competition file given is not the one the epoch was judged by.
    #[error("the competition file hashes to {given}, but epoch {epoch} was judged by {stored}")]
    CompetitionMismatch {
        /// Epoch.
        epoch: i64,
        /// sha256 of the file given.
        given: String,
        /// sha256 stored with the epoch.
        stored: String,
    },
    /// The stored data cannot be scored (e.g. losses of unequal length).
    #[error("the stored losses cannot be scored: {0}")]
    Score(#[from] ScoreError),
    /// The recomputed weights cannot be converted.
    #[error("the recomputed weights cannot be converted: {0}")]
    Convert(#[from] ConvertError),
}

/// One value that differs between the stored data and the recomputation.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// What: `uid 3 model_score`, `weights`, `commit_hash`, …
    pub what: String,
    /// As stored.
    pub stored: String,
    /// As recomputed.
    pub recomputed: String,
}

/// The result of verifying one epoch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// Subnet.
    pub netuid: u16,
    /// Epoch.
    pub epoch: i64,
    /// Miners whose rows were recomputed.
    pub miners: usize,
    /// Whether the commit hash was recomputed (needs the validator's hotkey).
    pub hash_checked: bool,
    /// Every mismatch; empty when the epoch verifies.
    pub differences: Vec<Difference>,
}

impl Report {
    /// Whether everything recomputed equals what was stored.
    pub fn is_consistent(&self) -> bool {
        self.differences.is_empty()
    }

    fn check_f64(&mut self, what: String, stored: f64, recomputed: f64) {
        let same = stored == recomputed
            || (stored - recomputed).abs() <= TOLERANCE
            || (stored.is_nan() && recomputed.is_nan());
        if !same {
            self.differences.push(Difference {
                what,
                stored: stored.to_string(),
                recomputed: recomputed.to_string(),
            });
        }
    }

    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: String, stored: T, recomputed: T) {
        if stored != recomputed {
            self.differences.push(Difference {
                what,
                stored: format!("{stored:?}"),
                recomputed: format!("{recomputed:?}"),
            });
        }
    }
}

/// Recomputes epoch `epoch` of `netuid` and compares. `hotkey` is the validator's hotkey, needed
/// to recompute a commit–reveal hash; without it the hash is not checked.
pub async fn verify_epoch(
    pool: &PgPool,
    netuid: u16,
    epoch: i64,
    competition: &CompetitionFile,
    ema_alpha: f64,
    hotkey: Option<&AccountId>,
) -> Result<Report, VerifyError> {
    let n = i32::from(netuid);
    let record = db::epoch(pool, n, epoch)
        .await?
        .ok_or(VerifyError::NoEpoch { netuid, epoch })?;
    if record.competition_sha256 != competition.sha256_hex() {
        return Err(VerifyError::CompetitionMismatch {
            epoch,
            given: competition.sha256_hex(),
            stored: record.competition_sha256,
        });
    }
    let evals = db::model_evals(pool, n, epoch).await?;
    let scores = db::scores(pool, n, epoch).await?;
    let before = db::scores_before(pool, n, epoch).await?;
    let registrations = db::registrations(pool, n).await?;
    let stored_weights = db::weight_commit(pool, n, epoch).await?;
    let mut report = Report {
        netuid,
        epoch,
        miners: scores.len().max(evals.len()),
        ..Report::default()
    };

    // Model track.
    for e in &evals {
        let mean = outcome::mean(&e.sample_losses);
        if let (Some(stored), Some(recomputed)) = (e.mean_loss, mean) {
            report.check_f64(format!("uid {} mean_loss", e.uid), stored, recomputed);
        }
    }
    let miner_evals: Vec<MinerEval> = evals.iter().map(miner_eval).collect();
    let params = ScoreParams::new(&competition.competition);
    let results = outcome::assemble(&miner_evals, record.base_losses.as_deref(), &params)?;
    for (stored, recomputed) in evals.iter().zip(&results) {
        let uid = stored.uid;
        report.check(
            format!("uid {uid} outcome"),
            stored.outcome.as_str(),
            recomputed.outcome.code(),
        );
        report.check_f64(
            format!("uid {uid} model score"),
            stored.score,
            recomputed.score,
        );
        if let Some(win_rate) = stored.win_rate {
            report.check_f64(format!("uid {uid} win_rate"), win_rate, recomputed.win_rate);
        }
    }

    // Label track.
    let label_track = db::load_label_track(pool, n, epoch).await?;
    let label_scores = match &label_track {
        Some(stored) => check_label_track(&mut report, stored),
        None => BTreeMap::new(),
    };

    // Combine, EMA, normalize.
    let track_scores = TrackScores {
        model: results.iter().map(|r| (r.uid, r.score)).collect(),
        labels: label_scores,
    };
    let neurons: Vec<Neuron> = scores
        .iter()
        .map(|s| Neuron {
            uid: u16::try_from(s.uid).unwrap_or(u16::MAX),
            hotkey: s.hotkey.clone(),
            block_at_registration: registration(&registrations, &s.hotkey),
        })
        .collect();
    let previous: BTreeMap<String, PreviousEma> = before
        .iter()
        .map(|s| {
            let previous = PreviousEma {
                uid: u16::try_from(s.uid).unwrap_or(u16::MAX),
                block_at_registration: registration(&registrations, &s.hotkey),
                ema: s.ema,
            };
            (s.hotkey.clone(), previous)
        })
        .collect();
    let rows = weights::weight_rows(
        &neurons,
        &track_scores,
        &competition.competition.shares,
        ema_alpha,
        &previous,
    );
    for (stored, recomputed) in scores.iter().zip(&rows) {
        let uid = stored.uid;
        report.check_f64(
            format!("uid {uid} stored model_score"),
            stored.model_score,
            recomputed.model_score,
        );
        report.check_f64(
            format!("uid {uid} label_score"),
            stored.label_score,
            recomputed.label_score,
        );
        report.check_f64(
            format!("uid {uid} combined"),
            stored.combined,
            recomputed.combined,
        );
        report.check_f64(format!("uid {uid} ema"), stored.ema, recomputed.ema);
        report.check_f64(
            format!("uid {uid} weight"),
            stored.weight,
            recomputed.weight,
        );
    }

    // u16 weights and the commit hash.
    let pairs: Vec<(u16, f64)> = rows.iter().map(|r| (r.uid, r.weight)).collect();
    let (uids, values) = weights::to_u16_weights(&pairs)?;
    match stored_weights {
        None => report.differences.push(Difference {
            what: "weight row".into(),
            stored: "none".into(),
            recomputed: format!("{} uids", uids.len()),
        }),
        Some(w) => {
            report.check("weights uids".into(), w.uids.clone(), uids.clone());
            report.check("weights values".into(), w.weights.clone(), values.clone());
            if let (
                Some(hotkey),
                WeightMode::CommitReveal {
                    commit_hash: stored_hash,
                    salt,
                },
            ) = (hotkey, &w.mode)
            {
                let hash = commit_hash(hotkey, netuid, &uids, &values, salt, w.version_key);
                report.hash_checked = true;
                report.check(
                    "commit_hash".into(),
                    hex::encode(stored_hash),
                    hex::encode(hash),
                );
            }
        }
    }
    Ok(report)
}

/// Recomputes every label miner's components from the stored tasks, labels, outcomes and
/// parameters with the loop's scoring ([`labels::rescore`]), reports each component that differs
/// from `label_batches`, and returns the recomputed label scores by uid.
fn check_label_track(report: &mut Report, stored: &LabelTrackResult) -> BTreeMap<u16, f64> {
    let mut recomputed = stored.clone();
    labels::rescore(&mut recomputed);
    for (s, r) in stored.miners.iter().zip(&recomputed.miners) {
        let uid = s.uid;
        let (s, r) = (&s.components, &r.components);
        let counts = [
            ("sent", s.sent, r.sent),
            ("answered", s.answered, r.answered),
            ("known_sent", s.known_sent, r.known_sent),
            ("known_answered", s.known_answered, r.known_answered),
            ("known_correct", s.known_correct, r.known_correct),
            ("known_wrong", s.known_wrong, r.known_wrong),
            ("compared", s.compared, r.compared),
            ("agreed", s.agreed, r.agreed),
        ];
        for (name, stored, recomputed) in counts {
            report.check(format!("uid {uid} label {name}"), stored, recomputed);
        }
        let values = [
            ("accuracy", s.accuracy, r.accuracy),
            ("coverage", s.coverage, r.coverage),
            ("agreement", s.agreement, r.agreement),
            ("raw_score", s.raw, r.raw),
            ("score", s.score, r.score),
        ];
        for (name, stored, recomputed) in values {
            report.check_f64(format!("uid {uid} label {name}"), stored, recomputed);
        }
        report.check(format!("uid {uid} label noise"), s.noise, r.noise);
    }
    recomputed.scores()
}

fn registration(registrations: &BTreeMap<String, i64>, hotkey: &str) -> u64 {
    registrations
        .get(hotkey)
        .and_then(|&b| u64::try_from(b).ok())
        .unwrap_or(0)
}

/// Rebuilds the model track's input for one miner from its stored row. Checks that need the
/// artifact (copy detection, spot-checks, fetch failures) are taken as recorded; everything
/// score_models decides (duplicates, win rates, scores) is decided again.
fn miner_eval(row: &ModelEvalRecord) -> MinerEval {
    let uid = u16::try_from(row.uid).unwrap_or(u16::MAX);
    let commitment = row.commit_block.map(|block| Committed {
        block: u64::try_from(block).unwrap_or(0),
        manifest_sha256: row.manifest_sha256.clone(),
    });
    let code: Outcome = serde_json::from_value(serde_json::Value::String(row.outcome.clone()))
        .unwrap_or(Outcome::InternalError);
    let evaluated = |copy_of: Option<u16>, spot_check: Option<SpotCheck>| Stage::Evaluated {
        losses: row.sample_losses.clone(),
        following: (!row.following.is_empty()).then(|| row.following.clone()),
        cached: false,
        copy_of,
        spot_check,
    };
    let stage = match code {
        Outcome::NoCommitment
        | Outcome::TooRecent
        | Outcome::WrongCompetition
        | Outcome::NotServing => Stage::Skipped {
            outcome: code,
            reason: row.reason.clone(),
        },
        Outcome::Ok => evaluated(None, None),
        Outcome::Duplicate | Outcome::NotBetterThanBase if !row.sample_losses.is_empty() => {
            evaluated(None, None)
        }
        Outcome::Copy => evaluated(Some(copy_source(&row.reason).unwrap_or(uid)), None),
        Outcome::SpotCheckFailed => evaluated(
            None,
            Some(SpotCheck {
                status: SpotStatus::Failed,
                detail: row.reason.clone(),
            }),
        ),
        _ => Stage::Failed {
            outcome: code,
            reason: row.reason.clone(),
        },
    };
    MinerEval {
        uid,
        hotkey: row.hotkey.clone(),
        commitment,
        stage,
    }
}

/// The uid in "near-copy of uid {uid}'s earlier model".
fn copy_source(reason: &str) -> Option<u16> {
    let rest = reason.split("uid ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Prints `report` for a person.
pub fn print_report(report: &Report, out: &mut impl Write) -> std::io::Result<()> {
    if report.is_consistent() {
        writeln!(
            out,
            "✓ epoch {} of subnet {} verifies: {} miners, model and label scores, EMAs and u16 weights equal the stored ones{}",
            report.epoch,
            report.netuid,
            report.miners,
            if report.hash_checked {
                ", and so does the commit hash"
            } else {
                " (commit hash not checked: no --hotkey)"
            }
        )
    } else {
        writeln!(
            out,
            "✗ epoch {} of subnet {}: {} value(s) differ",
            report.epoch,
            report.netuid,
            report.differences.len()
        )?;
        for d in &report.differences {
            writeln!(
                out,
                "  {}: stored {} ≠ recomputed {}",
                d.what, d.stored, d.recomputed
            )?;
        }
        Ok(())
    }
}

/// `validator verify`: returns whether the epoch verified (the binary exits 1 when not).
pub async fn run(args: &crate::cli::VerifyArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let competition = CompetitionFile::load_or_default(args.competition.as_deref()).with_context(
        || match &args.competition {
            Some(path) => format!("while loading the competition {}", path.display()),
            None => "while loading the built-in competition".to_string(),
        },
    )?;
    let pool = db::connect(&args.db_url)
        .await
        .context("while connecting to the database")?;
    let report = verify_epoch(
        &pool,
        args.netuid,
        args.epoch,
        &competition,
        args.ema_alpha,
        args.hotkey.as_ref(),
    )
    .await
    .with_context(|| format!("while verifying epoch {}", args.epoch))?;
    print_report(&report, out)?;
    Ok(report.is_consistent())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_copied_uid_from_the_reason() {
        assert_eq!(copy_source("near-copy of uid 12's earlier model"), Some(12));
        assert_eq!(copy_source("something else"), None);
    }
}
