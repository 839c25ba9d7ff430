//! The data behind each page, read once and shown as HTML ([`super::pages`]) or JSON
//! ([`super::api`]), so both always agree.

use serde::Serialize;

use super::alerts::{self, Alert};
use super::error::ApiError;
use super::{ChainStatus, DashboardState, NeuronStatus};
use crate::db::{
    self, EpochRecord, LeaderboardRow, MinerEpochRow, MinerSummary, WeightCommitRecord,
    WeightLanding,
};
use crate::tracks::labels::collect::LabelOutcome;

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
    /// The mean of the pinned base model's per-sample losses in that epoch (what every entry
    /// had to beat by the competition's margin), when the competition pins a base.
    pub base_mean_loss: Option<f64>,
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
    /// What the neuron is on the subnet (see [`Role::of`]).
    pub role: Role,
    /// `weight` as a percentage of the epoch's weights.
    pub weight_percent: f64,
    /// The hotkey's emission at the chain's last epoch (rao), when the chain was read.
    pub last_emission_rao: Option<u64>,
    /// Its neuron at the last metagraph read, when the chain was read and it is still registered.
    pub chain: Option<NeuronStats>,
}

/// What a neuron is, as far as this validator can tell. Serialized snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A validator: this validator's own hotkey, a neuron with dividends or validator trust, or
    /// one with a validator permit and stake that neither commits a model nor labels.
    Validator,
    /// Commits a model (its model outcome is anything but `no_commitment`).
    ModelMiner,
    /// Labels (its label batch was answered or timed out, or it has a label score) without a
    /// model commitment.
    LabelMiner,
    /// Both commits a model and labels.
    ModelAndLabelMiner,
    /// Registered, but neither commits a model, labels nor validates.
    Idle,
}

impl Role {
    /// The role of a leaderboard row; `neuron` is its chain entry, `own_hotkey` this validator's.
    pub fn of(
        row: &LeaderboardRow,
        neuron: Option<&NeuronStatus>,
        own_hotkey: Option<&str>,
    ) -> Self {
        let models = row.outcome.as_deref().is_some_and(|o| o != "no_commitment");
        let labels = row.label_score > 0.0
            || row
                .label_outcome
                .as_deref()
                .and_then(LabelOutcome::from_code)
                .is_some_and(|o| {
                    o != LabelOutcome::NoTasks && !LabelOutcome::LABELS_NOTHING.contains(&o)
                });
        let validates = own_hotkey == Some(row.hotkey.as_str())
            || neuron.is_some_and(|n| {
                n.dividends > 0
                    || n.validator_trust > 0
                    || (n.validator_permit && n.stake_rao > 0 && !models && !labels)
            });
        match (models, labels) {
            _ if own_hotkey == Some(row.hotkey.as_str()) => Self::Validator,
            (true, true) => Self::ModelAndLabelMiner,
            (true, false) => Self::ModelMiner,
            (false, true) => Self::LabelMiner,
            (false, false) if validates => Self::Validator,
            (false, false) => Self::Idle,
        }
    }

    /// The stable code, as serialized.
    pub fn code(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::ModelMiner => "model_miner",
            Self::LabelMiner => "label_miner",
            Self::ModelAndLabelMiner => "model_and_label_miner",
            Self::Idle => "idle",
        }
    }

    /// Words for a person.
    pub fn label(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::ModelMiner => "model miner",
            Self::LabelMiner => "label miner",
            Self::ModelAndLabelMiner => "model + label miner",
            Self::Idle => "idle",
        }
    }

    /// Whether it commits a model (so a model outcome other than `ok` is its problem).
    pub fn commits_models(self) -> bool {
        matches!(self, Self::ModelMiner | Self::ModelAndLabelMiner)
    }

    /// Whether it labels (so a label outcome other than `ok` is its problem).
    pub fn labels(self) -> bool {
        matches!(self, Self::LabelMiner | Self::ModelAndLabelMiner)
    }
}

/// A neuron's stake, emission and consensus fractions (as percentages) at the last metagraph
/// read; `/api/chain` has the raw u16 values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NeuronStats {
    /// Stake on the hotkey in this subnet, rao.
    pub stake_rao: u64,
    /// Emission at the chain's last epoch, rao.
    pub emission_rao: u64,
    /// Incentive, percent.
    pub incentive_percent: f64,
    /// Dividends, percent.
    pub dividends_percent: f64,
    /// Trust, percent (legacy on current Subtensor: 0).
    pub trust_percent: f64,
    /// Consensus, percent.
    pub consensus_percent: f64,
    /// Validator trust, percent.
    pub validator_trust_percent: f64,
    /// Holds a validator permit.
    pub validator_permit: bool,
}

impl From<&NeuronStatus> for NeuronStats {
    fn from(n: &NeuronStatus) -> Self {
        Self {
            stake_rao: n.stake_rao,
            emission_rao: n.emission_rao,
            incentive_percent: NeuronStatus::percent(n.incentive),
            dividends_percent: NeuronStatus::percent(n.dividends),
            trust_percent: NeuronStatus::percent(n.trust),
            consensus_percent: NeuronStatus::percent(n.consensus),
            validator_trust_percent: NeuronStatus::percent(n.validator_trust),
            validator_permit: n.validator_permit,
        }
    }
}

/// The latest epoch's leaderboard.
pub async fn leaderboard(state: &DashboardState) -> Result<Leaderboard, ApiError> {
    let netuid = i32::from(state.netuid);
    let Some(epoch) = db::latest_epoch(&state.pool, netuid).await? else {
        return Ok(Leaderboard {
            netuid: state.netuid,
            epoch: None,
            base_mean_loss: None,
            rows: Vec::new(),
        });
    };
    let rows = db::leaderboard(&state.pool, netuid, epoch.epoch).await?;
    let chain = state.chain.borrow().clone();
    let rows = rows
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let neuron = chain.neuron(&row.hotkey);
            RankedRow {
                rank: i + 1,
                role: Role::of(&row, neuron, chain.validator_hotkey.as_deref()),
                weight_percent: row.weight * 100.0,
                last_emission_rao: chain.emissions_rao.get(&row.hotkey).copied(),
                chain: neuron.map(NeuronStats::from),
                row,
            }
        })
        .collect();
    let base_mean_loss = epoch
        .base_losses
        .as_deref()
        .filter(|losses| !losses.is_empty())
        .map(|losses| losses.iter().sum::<f64>() / losses.len() as f64);
    Ok(Leaderboard {
        netuid: state.netuid,
        epoch: Some(epoch),
        base_mean_loss,
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
    /// Its neuron at the last metagraph read, when the chain was read and it is registered.
    pub chain: Option<NeuronStats>,
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
    let chain = state.chain.borrow().clone();
    Ok(MinerHistory {
        netuid: state.netuid,
        hotkey: hotkey.to_string(),
        miner,
        last_emission_rao: chain.emissions_rao.get(hotkey).copied(),
        chain: chain.neuron(hotkey).map(NeuronStats::from),
        history,
    })
}

/// `/weights` and `/api/weights`.
#[derive(Debug, Clone, Serialize)]
pub struct Weights {
    /// The subnet.
    pub netuid: u16,
    /// Newest first, up to [`WEIGHT_ROWS`].
    pub commits: Vec<WeightRow>,
}

/// A stored weight row (its columns as stored, the u16 `weights` among them) with each uid's
/// share of the row.
#[derive(Debug, Clone, Serialize)]
pub struct WeightRow {
    /// The stored row.
    #[serde(flatten)]
    pub commit: WeightCommitRecord,
    /// One per uid, in the row's order.
    pub shares: Vec<WeightShare>,
}

/// One uid's weight in a row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightShare {
    /// Destination uid.
    pub uid: u16,
    /// Its hotkey when the weights were computed, when stored.
    pub hotkey: Option<String>,
    /// The u16 weight as set or committed.
    pub weight: u16,
    /// `weight` over the row's sum, percent.
    pub percent: f64,
}

/// Each uid's share of `commit`'s weights, named by `hotkeys` (`(epoch, uid)` → hotkey).
pub fn shares(
    commit: &WeightCommitRecord,
    hotkeys: &std::collections::BTreeMap<(i64, i32), String>,
) -> Vec<WeightShare> {
    let sum: u64 = commit.weights.iter().map(|&w| u64::from(w)).sum();
    commit
        .uids
        .iter()
        .zip(&commit.weights)
        .map(|(&uid, &weight)| WeightShare {
            uid,
            hotkey: hotkeys.get(&(commit.epoch, i32::from(uid))).cloned(),
            weight,
            percent: if sum == 0 {
                0.0
            } else {
                f64::from(weight) * 100.0 / sum as f64
            },
        })
        .collect()
}

/// The recent weight commits.
pub async fn weights(state: &DashboardState) -> Result<Weights, ApiError> {
    let netuid = i32::from(state.netuid);
    let commits = db::recent_weight_commits(&state.pool, netuid, WEIGHT_ROWS).await?;
    let epochs: Vec<i64> = commits.iter().map(|c| c.epoch).collect();
    let hotkeys = db::epoch_hotkeys(&state.pool, netuid, &epochs).await?;
    Ok(Weights {
        netuid: state.netuid,
        commits: commits
            .into_iter()
            .map(|commit| WeightRow {
                shares: shares(&commit, &hotkeys),
                commit,
            })
            .collect(),
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

/// `/api/status` and the header of every page: where the chain and the validator are, the last
/// weights on chain, the permit, and what needs the operator.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// The subnet.
    pub netuid: u16,
    /// Whether the chain was ever read.
    pub chain_known: bool,
    /// Whether the last read of the chain succeeded.
    pub connected: bool,
    /// Best block at the last read, when the chain was read.
    pub head: Option<u64>,
    /// The chain's epoch index at that head.
    pub chain_epoch: Option<u64>,
    /// The last epoch this validator scored and stored (its own number, which a tempo change
    /// makes differ from the chain's index: `service::schedule`).
    pub last_epoch: Option<u64>,
    /// The chain's epoch index of that epoch's first block, under today's tempo: how far behind
    /// the chain the scoring is, whatever the numbering.
    pub scored_chain_epoch: Option<u64>,
    /// First block of the chain's next epoch.
    pub next_epoch_block: Option<u64>,
    /// Milliseconds per block, when measured.
    pub block_time_ms: Option<u64>,
    /// The validator's hotkey, when the dashboard runs beside the epoch loop.
    pub validator_hotkey: Option<String>,
    /// Its permit: `yes`, `no`, `not_registered` (the metagraph was read without it) or
    /// `unknown` (no hotkey, or the metagraph not read).
    pub permit: &'static str,
    /// The weight row whose commit (or `set_weights`) landed last.
    pub last_commit: Option<Landing>,
    /// The weight row whose reveal landed last.
    pub last_reveal: Option<Landing>,
    /// What needs the operator now (as `/health` lists it).
    pub alerts: Vec<Alert>,
}

/// When a weight row's extrinsic landed, against the chain's head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landing {
    /// The stored row's epoch, block, status and mode.
    #[serde(flatten)]
    pub row: WeightLanding,
    /// `head - block` (negative: a block still to come), when the head is known.
    pub blocks_ago: Option<i64>,
    /// Seconds since that block, estimated from the head's timestamp and the measured block
    /// time, when both are known.
    pub secs_ago: Option<i64>,
}

impl Landing {
    /// `row` against the chain as `chain` last read it, at `now_ms`.
    pub fn new(row: WeightLanding, chain: &ChainStatus, now_ms: u64) -> Self {
        let known = chain.is_known() && chain.head_timestamp_ms != 0;
        let blocks_ago = known.then(|| i64::try_from(chain.head).unwrap_or(i64::MAX) - row.block);
        let secs_ago = blocks_ago
            .zip(chain.block_time_ms)
            .map(|(blocks, block_ms)| {
                let since_head = i64::try_from(now_ms.saturating_sub(chain.head_timestamp_ms))
                    .unwrap_or(i64::MAX);
                let block_ms = i64::try_from(block_ms).unwrap_or(i64::MAX);
                since_head.saturating_add(blocks.saturating_mul(block_ms)) / 1000
            });
        Self {
            row,
            blocks_ago,
            secs_ago,
        }
    }
}

/// The header, read now.
pub async fn header(state: &DashboardState) -> Result<Header, ApiError> {
    let netuid = i32::from(state.netuid);
    let mut chain = chain(state);
    let latest = db::latest_epoch(&state.pool, netuid).await?;
    if chain.last_epoch.is_none() {
        // `validator dashboard` has no epoch loop to tell it: the database does.
        chain.last_epoch = latest.as_ref().and_then(|e| u64::try_from(e.epoch).ok());
    }
    let scored_chain_epoch = latest
        .as_ref()
        .zip(chain.tempo.filter(|&tempo| tempo != 0))
        .map(|(epoch, tempo)| {
            crate::service::schedule::EpochSchedule::new(state.netuid, tempo)
                .epoch_of(u64::try_from(epoch.start_block).unwrap_or(0))
        });
    let alerts = alerts::current(&state.pool, state.netuid, &chain).await?;
    let (commit, reveal) = db::last_weight_landings(&state.pool, netuid).await?;
    let now = super::now_ms();
    let permit = match (chain.validator_permit, &chain.validator_hotkey) {
        (Some(true), _) => "yes",
        (Some(false), _) => "no",
        (None, Some(_)) if !chain.neurons.is_empty() => "not_registered",
        (None, _) => "unknown",
    };
    Ok(Header {
        netuid: state.netuid,
        chain_known: chain.is_known(),
        connected: chain.connected,
        head: chain.is_known().then_some(chain.head),
        chain_epoch: chain.chain_epoch,
        last_epoch: chain.last_epoch,
        scored_chain_epoch,
        next_epoch_block: chain.next_epoch_block,
        block_time_ms: chain.block_time_ms,
        validator_hotkey: chain.validator_hotkey.clone(),
        permit,
        last_commit: commit.map(|row| Landing::new(row, &chain, now)),
        last_reveal: reveal.map(|row| Landing::new(row, &chain, now)),
        alerts,
    })
}
