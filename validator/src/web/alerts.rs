//! What needs the operator's attention now, read from the database and the last chain read:
//! `/health` lists it (`"status": "warn"`), every page shows it under its header. Nothing here is
//! remembered between requests; each alert clears itself once its cause is gone (the next
//! epoch's weights are set, the disk has room again, the permit is granted).
//!
//! | code | when | what to do |
//! |---|---|---|
//! | `chain_unreachable` | the last chain read failed | start the chain node or fix `--chain.url` |
//! | `no_permit` | the validator's neuron holds no validator permit | stake more on its hotkey |
//! | `tempo_changed` | the subnet's tempo changed since the epochs before the latest: epochs are numbered on from the last one scored, a v2 commit under the old tempo was given up | nothing; it clears once two epochs are scored under the new tempo |
//! | `weights_not_set` | the latest epoch's weights failed or expired on chain | read the error; the next epoch commits again |
//! | `cache_disk_full` | the latest epoch scored models 0 because the artifact cache had no space | free space or move `--cache.dir` |

use serde::Serialize;
use sqlx::PgPool;

use super::ChainStatus;
use crate::db::{self, DbError, WeightStatus};

/// One thing to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alert {
    /// Stable code (see the module table).
    pub code: &'static str,
    /// What is wrong, with the values that show it.
    pub message: String,
    /// What to do about it.
    pub hint: &'static str,
}

/// The OS's words for a full disk (`ENOSPC`), as they appear in a stored reason.
const DISK_FULL: &str = "No space left on device";

/// Every current alert of subnet `netuid`.
pub async fn current(
    pool: &PgPool,
    netuid: u16,
    chain: &ChainStatus,
) -> Result<Vec<Alert>, DbError> {
    let mut alerts = Vec::new();
    if chain.is_known() && !chain.connected {
        alerts.push(Alert {
            code: "chain_unreachable",
            message: format!(
                "the chain could not be read: {}",
                chain.error.as_deref().unwrap_or("no answer")
            ),
            hint: "is the chain node running? check --subtensor.chain_endpoint",
        });
    }
    if chain.validator_permit == Some(false) {
        alerts.push(Alert {
            code: "no_permit",
            message: format!(
                "the validator's hotkey {} holds no validator permit on subnet {netuid}: its \
                 weights are not counted",
                chain.validator_hotkey.as_deref().unwrap_or("?")
            ),
            hint: "stake more on the hotkey; permits are given at each chain epoch",
        });
    }
    let netuid = i32::from(netuid);
    if let Some(changed) = tempo_change(pool, netuid, chain).await? {
        alerts.push(changed);
    }
    if let Some(latest) = db::recent_weight_commits(pool, netuid, 1).await?.pop()
        && matches!(latest.status, WeightStatus::Failed | WeightStatus::Expired)
    {
        alerts.push(Alert {
            code: "weights_not_set",
            message: format!(
                "the weights of epoch {} were not set ({}): {}",
                latest.epoch,
                latest.status.as_str(),
                latest.error.as_deref().unwrap_or("no error recorded")
            ),
            hint: "docs/operations.md explains the chain's errors; the next epoch commits again",
        });
    }
    if let Some(epoch) = db::latest_epoch(pool, netuid).await? {
        let full = db::model_evals(pool, netuid, epoch.epoch)
            .await?
            .iter()
            .filter(|e| e.outcome == "internal_error" && e.reason.contains(DISK_FULL))
            .count();
        if full > 0 {
            alerts.push(Alert {
                code: "cache_disk_full",
                message: format!(
                    "{full} model(s) scored 0 in epoch {}: the disk of the artifact cache is full",
                    epoch.epoch
                ),
                hint: "free space on the cache's disk or point --cache.dir at a larger one",
            });
        }
    }
    Ok(alerts)
}

/// `tempo_changed` while a tempo change is recent: the chain's tempo differs from the one the
/// latest epoch was scored under, or the latest epoch's from the one before it.
async fn tempo_change(
    pool: &PgPool,
    netuid: i32,
    chain: &ChainStatus,
) -> Result<Option<Alert>, DbError> {
    let recent = db::recent_epochs(pool, netuid, 2).await?;
    let Some(latest) = recent.first() else {
        return Ok(None);
    };
    let latest_tempo = latest.tempo.and_then(|t| u16::try_from(t).ok());
    let earlier_tempo = recent
        .get(1)
        .and_then(|e| e.tempo)
        .and_then(|t| u16::try_from(t).ok());
    let (before, after, at) = match (earlier_tempo, latest_tempo, chain.tempo) {
        (_, Some(scored), Some(now)) if scored != now => (scored, now, latest.epoch + 1),
        (Some(before), Some(scored), _) if before != scored => (before, scored, latest.epoch),
        _ => return Ok(None),
    };
    Ok(Some(Alert {
        code: "tempo_changed",
        message: format!(
            "the subnet's tempo changed from {before} to {after} (from epoch {at} on): the \
             chain's epoch index moved with it, so epochs are numbered on from the last one \
             scored, and a commit-reveal v2 commit made under the old tempo was given up (its \
             weights row says so)"
        ),
        hint: "nothing to do: scoring and weights go on under the new tempo; this clears once \
               two epochs are scored under it",
    }))
}
