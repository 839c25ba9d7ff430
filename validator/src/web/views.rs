//! The data behind each page, read once and shown as HTML ([`super::pages`]) or JSON
//! ([`super::api`]), so both always agree.

use serde::Serialize;

use super::error::ApiError;
use super::{ChainStatus, DashboardState};
use crate::db::{
    self, EpochRecord, LeaderboardRow, MinerEpochRow, MinerSummary, WeightCommitRecord,
};

/// Epochs of history shown for one miner.
pub const HISTORY_EPOCHS: i64 = 200;
/// Weight rows shown.
pub const WEIGHT_ROWS: i64 = 50;
/// Epochs listed by `/api/epochs`.
pub const EPOCH_ROWS: i64 = 100;

/// `/` and `/api/leaderboard`.
#[derive(Debug, Clone, Serialize)]
pub struct Leaderboard {
    /// The subnet.
    pub netuid: u16,
    /// The latest stored epoch, `None` before the first one.
    pub epoch: Option<EpochRecord>,
    /// Best EMA first.
    pub rows: Vec<RankedRow>,
}

/// A leaderboard line with its rank.
#[derive(Debug, Clone, Serialize)]
pub struct RankedRow {
    /// 1 for the best.
    pub rank: usize,
    /// The stored values.
    #[serde(flatten)]
    pub row: LeaderboardRow,
    /// The hotkey's emission at the chain's last epoch (rao), when the chain was read.
    pub last_emission_rao: Option<u64>,
}

/// The latest epoch's leaderboard.
pub async fn leaderboard(state: &DashboardState) -> Result<Leaderboard, ApiError> {
    let netuid = i32::from(state.netuid);
    let Some(epoch) = db::latest_epoch(&state.pool, netuid).await? else {
        return Ok(Leaderboard {
            netuid: state.netuid,
            epoch: None,
            rows: Vec::new(),
        });
    };
    let rows = db::leaderboard(&state.pool, netuid, epoch.epoch).await?;
    let chain = state.chain.borrow().clone();
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| RankedRow {
            rank: i + 1,
            last_emission_rao: chain.emissions_rao.get(&row.hotkey).copied(),
            row,
        })
        .collect();
    Ok(Leaderboard {
        netuid: state.netuid,
        epoch: Some(epoch),
        rows,
    })
}

/// `/miner/{hotkey}` and `/api/miners/{hotkey}`.
#[derive(Debug, Clone, Serialize)]
pub struct MinerHistory {
    /// The subnet.
    pub netuid: u16,
    /// The hotkey asked for.
    pub hotkey: String,
    /// Its `miners` row, when seen in a stored metagraph.
    pub miner: Option<MinerSummary>,
    /// Emission at the chain's last epoch (rao), when the chain was read.
    pub last_emission_rao: Option<u64>,
    /// Up to [`HISTORY_EPOCHS`] epochs, oldest first.
    pub history: Vec<MinerEpochRow>,
}

/// A hotkey's history; 404 when nothing is stored about it.
pub async fn miner(state: &DashboardState, hotkey: &str) -> Result<MinerHistory, ApiError> {
    let netuid = i32::from(state.netuid);
    let miner = db::miner(&state.pool, netuid, hotkey).await?;
    let history = db::miner_history(&state.pool, netuid, hotkey, HISTORY_EPOCHS).await?;
    if miner.is_none() && history.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no miner with hotkey {hotkey} on subnet {}",
            state.netuid
        )));
    }
    let last_emission_rao = state.chain.borrow().emissions_rao.get(hotkey).copied();
    Ok(MinerHistory {
        netuid: state.netuid,
        hotkey: hotkey.to_string(),
        miner,
        last_emission_rao,
        history,
    })
}

/// `/weights` and `/api/weights`.
#[derive(Debug, Clone, Serialize)]
pub struct Weights {
    /// The subnet.
    pub netuid: u16,
    /// Newest first, up to [`WEIGHT_ROWS`].
    pub commits: Vec<WeightCommitRecord>,
}

/// The recent weight commits.
pub async fn weights(state: &DashboardState) -> Result<Weights, ApiError> {
    let commits =
        db::recent_weight_commits(&state.pool, i32::from(state.netuid), WEIGHT_ROWS).await?;
    Ok(Weights {
        netuid: state.netuid,
        commits,
    })
}

/// `/api/epochs`.
#[derive(Debug, Clone, Serialize)]
pub struct Epochs {
    /// The subnet.
    pub netuid: u16,
    /// Newest first, up to [`EPOCH_ROWS`].
    pub epochs: Vec<EpochRecord>,
}

/// The recent epochs.
pub async fn epochs(state: &DashboardState) -> Result<Epochs, ApiError> {
    let epochs = db::recent_epochs(&state.pool, i32::from(state.netuid), EPOCH_ROWS).await?;
    Ok(Epochs {
        netuid: state.netuid,
        epochs,
    })
}

/// The chain status as last published.
pub fn chain(state: &DashboardState) -> ChainStatus {
    state.chain.borrow().clone()
}
