//! Read-only queries: what the dashboard shows, what `validator verify` recomputes and what
//! `validator doctor` checks. Nothing here writes.

use std::collections::BTreeMap;

use sqlx::PgPool;

use super::{DbError, EpochRecord, ModelEvalRecord, ScoreRecord};

/// One miner's line of an epoch's leaderboard: its scores joined with its model evaluation.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct LeaderboardRow {
    /// Uid at this epoch.
    pub uid: i32,
    /// SS58 hotkey.
    pub hotkey: String,
    /// Model-track score (0 without a score row).
    pub model_score: f64,
    /// Label-track score.
    pub label_score: f64,
    /// Tracks combined by share.
    pub combined: f64,
    /// EMA after this epoch.
    pub ema: f64,
    /// Normalized weight submitted.
    pub weight: f64,
    /// Mean per-sample loss, when evaluated.
    pub mean_loss: Option<f64>,
    /// Pairwise win rate, when scored.
    pub win_rate: Option<f64>,
    /// Mean share of the open instructions' constraints its model kept, when the competition
    /// scores them and the model was evaluated.
    pub following: Option<f64>,
    /// Model-track outcome code (`None` when the model track has no row for it).
    pub outcome: Option<String>,
    /// Why, for a non-ok outcome.
    pub reason: Option<String>,
    /// The label track's estimate of its labels' accuracy (known answers over the scoring
    /// window), when it was sent a label batch this epoch.
    pub label_accuracy: Option<f64>,
    /// How its label batch went this epoch (`ok`, `no_labels`, `bad_status`, …), when it was
    /// sent one.
    pub label_outcome: Option<String>,
    /// Why, for a non-ok label outcome.
    pub label_reason: Option<String>,
}

/// One epoch of a miner's history.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct MinerEpochRow {
    /// The epoch.
    pub epoch: i64,
    /// Uid at that epoch.
    pub uid: i32,
    /// Model-track score.
    pub model_score: f64,
    /// Label-track score.
    pub label_score: f64,
    /// Tracks combined.
    pub combined: f64,
    /// EMA after the epoch.
    pub ema: f64,
    /// Normalized weight.
    pub weight: f64,
    /// Mean loss, when evaluated.
    pub mean_loss: Option<f64>,
    /// Win rate, when scored.
    pub win_rate: Option<f64>,
    /// Mean share of the open instructions' constraints kept, when answered.
    pub following: Option<f64>,
    /// Outcome code.
    pub outcome: Option<String>,
    /// Why, for a non-ok outcome.
    pub reason: Option<String>,
    /// The manifest evaluated.
    pub manifest_sha256: Option<String>,
}

/// What the validator knows about a hotkey across epochs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct MinerSummary {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Latest uid.
    pub uid: i32,
    /// SS58 coldkey.
    pub coldkey: String,
    /// Block of its latest (re)registration.
    pub block_at_registration: i64,
    /// First epoch it was seen in.
    pub first_seen_epoch: i64,
    /// Last epoch it was seen in.
    pub last_seen_epoch: i64,
}

/// The columns of [`EpochRecord`] (a macro: sqlx takes only static SQL).
macro_rules! epoch_columns {
    () => {
        "netuid, epoch, start_block, block_hash, seed, competition_sha256, scored_block, duration_ms, base_losses, tempo"
    };
}

/// The most recent stored epoch of `netuid`.
pub async fn latest_epoch(pool: &PgPool, netuid: i32) -> Result<Option<EpochRecord>, DbError> {
    Ok(sqlx::query_as::<_, EpochRecord>(concat!(
        "SELECT ",
        epoch_columns!(),
        " FROM epochs WHERE netuid = $1 ORDER BY epoch DESC LIMIT 1"
    ))
    .bind(netuid)
    .fetch_optional(pool)
    .await?)
}

/// Epoch `epoch` of `netuid`, if stored.
pub async fn epoch(pool: &PgPool, netuid: i32, epoch: i64) -> Result<Option<EpochRecord>, DbError> {
    Ok(sqlx::query_as::<_, EpochRecord>(concat!(
        "SELECT ",
        epoch_columns!(),
        " FROM epochs WHERE netuid = $1 AND epoch = $2"
    ))
    .bind(netuid)
    .bind(epoch)
    .fetch_optional(pool)
    .await?)
}

/// The `limit` most recent epochs, newest first.
pub async fn recent_epochs(
    pool: &PgPool,
    netuid: i32,
    limit: i64,
) -> Result<Vec<EpochRecord>, DbError> {
    Ok(sqlx::query_as::<_, EpochRecord>(concat!(
        "SELECT ",
        epoch_columns!(),
        " FROM epochs WHERE netuid = $1 ORDER BY epoch DESC LIMIT $2"
    ))
    .bind(netuid)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The leaderboard of one epoch: every hotkey with a score or a model evaluation, best EMA
/// first (ties: lower uid first).
pub async fn leaderboard(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Vec<LeaderboardRow>, DbError> {
    Ok(sqlx::query_as::<_, LeaderboardRow>(
        "SELECT COALESCE(s.uid, m.uid) AS uid, COALESCE(s.hotkey, m.hotkey) AS hotkey,
                COALESCE(s.model_score, m.score, 0) AS model_score, COALESCE(s.label_score, 0) AS label_score,
                COALESCE(s.combined, 0) AS combined, COALESCE(s.ema, 0) AS ema, COALESCE(s.weight, 0) AS weight,
                m.mean_loss, m.win_rate, (SELECT avg(f) FROM unnest(m.following) AS f) AS following,
                m.outcome, m.reason, lb.accuracy AS label_accuracy,
                lb.outcome AS label_outcome,
                CASE WHEN lb.noise
                     THEN 'answers like noise: its known answers over the window fail the sequential test'
                     ELSE lb.reason END AS label_reason
         FROM (SELECT * FROM scores WHERE netuid = $1 AND epoch = $2) s
         FULL OUTER JOIN (SELECT * FROM model_evals WHERE netuid = $1 AND epoch = $2) m ON m.hotkey = s.hotkey
         LEFT JOIN label_batches lb
           ON lb.netuid = $1 AND lb.epoch = $2 AND lb.hotkey = COALESCE(s.hotkey, m.hotkey)
         ORDER BY ema DESC, weight DESC, uid ASC",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?)
}

/// A hotkey's row in `miners`, if it was ever seen.
pub async fn miner(
    pool: &PgPool,
    netuid: i32,
    hotkey: &str,
) -> Result<Option<MinerSummary>, DbError> {
    Ok(sqlx::query_as::<_, MinerSummary>(
        "SELECT hotkey, uid, coldkey, block_at_registration, first_seen_epoch, last_seen_epoch
         FROM miners WHERE netuid = $1 AND hotkey = $2",
    )
    .bind(netuid)
    .bind(hotkey)
    .fetch_optional(pool)
    .await?)
}

/// Registration blocks of every hotkey seen on the subnet.
pub async fn registrations(pool: &PgPool, netuid: i32) -> Result<BTreeMap<String, i64>, DbError> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT hotkey, block_at_registration FROM miners WHERE netuid = $1")
            .bind(netuid)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// A hotkey's last `limit` epochs, oldest first (ready to plot).
pub async fn miner_history(
    pool: &PgPool,
    netuid: i32,
    hotkey: &str,
    limit: i64,
) -> Result<Vec<MinerEpochRow>, DbError> {
    Ok(sqlx::query_as::<_, MinerEpochRow>(
        "SELECT * FROM (
             SELECT COALESCE(s.epoch, m.epoch) AS epoch, COALESCE(s.uid, m.uid) AS uid,
                    COALESCE(s.model_score, m.score, 0) AS model_score, COALESCE(s.label_score, 0) AS label_score,
                    COALESCE(s.combined, 0) AS combined, COALESCE(s.ema, 0) AS ema, COALESCE(s.weight, 0) AS weight,
                    m.mean_loss, m.win_rate,
                    (SELECT avg(f) FROM unnest(m.following) AS f) AS following,
                    m.outcome, m.reason, m.manifest_sha256
             FROM (SELECT * FROM scores WHERE netuid = $1 AND hotkey = $2) s
             FULL OUTER JOIN (SELECT * FROM model_evals WHERE netuid = $1 AND hotkey = $2) m ON m.epoch = s.epoch
             ORDER BY epoch DESC LIMIT $3
         ) h ORDER BY epoch ASC",
    )
    .bind(netuid)
    .bind(hotkey)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The model-track rows of one epoch, in uid order.
pub async fn model_evals(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Vec<ModelEvalRecord>, DbError> {
    Ok(sqlx::query_as::<_, ModelEvalRecord>(
        "SELECT hotkey, uid, manifest_sha256, commit_block, outcome, reason, mean_loss, win_rate, score,
                sample_losses, sample_tokens, following
         FROM model_evals WHERE netuid = $1 AND epoch = $2 ORDER BY uid",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?)
}

/// The score rows of one epoch, in uid order.
pub async fn scores(pool: &PgPool, netuid: i32, epoch: i64) -> Result<Vec<ScoreRecord>, DbError> {
    Ok(sqlx::query_as::<_, ScoreRecord>(
        "SELECT hotkey, uid, model_score, label_score, combined, ema, weight
         FROM scores WHERE netuid = $1 AND epoch = $2 ORDER BY uid",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?)
}

/// Each hotkey's most recent score row from an epoch before `epoch`: the EMA state the loop
/// started that epoch from.
pub async fn scores_before(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Vec<ScoreRecord>, DbError> {
    Ok(sqlx::query_as::<_, ScoreRecord>(
        "SELECT DISTINCT ON (hotkey) hotkey, uid, model_score, label_score, combined, ema, weight
         FROM scores WHERE netuid = $1 AND epoch < $2 ORDER BY hotkey, epoch DESC",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?)
}

/// A weight row's extrinsic that landed on chain: where the dashboard's header says when the
/// weights were last committed (or set) and last revealed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct WeightLanding {
    /// The epoch the weights come from.
    pub epoch: i64,
    /// The block the extrinsic was included in (for a timelocked commit's reveal: the block the
    /// chain reveals it at).
    pub block: i64,
    /// The row's status now (`committed`, `revealed`, `set`, `failed`, `expired`).
    pub status: String,
    /// How the row reaches the chain (`commit_reveal`, `set_weights`, `timelocked`).
    pub mode: String,
}

/// The weight row whose commit (or plain `set_weights`) landed last, and the one whose reveal
/// landed last, by block.
pub async fn last_weight_landings(
    pool: &PgPool,
    netuid: i32,
) -> Result<(Option<WeightLanding>, Option<WeightLanding>), DbError> {
    let commit = sqlx::query_as::<_, WeightLanding>(
        "SELECT epoch, commit_block AS block, status, mode FROM weight_commits
         WHERE netuid = $1 AND commit_block IS NOT NULL
         ORDER BY commit_block DESC, epoch DESC LIMIT 1",
    )
    .bind(netuid)
    .fetch_optional(pool)
    .await?;
    let reveal = sqlx::query_as::<_, WeightLanding>(
        "SELECT epoch, reveal_block AS block, status, mode FROM weight_commits
         WHERE netuid = $1 AND reveal_block IS NOT NULL
         ORDER BY reveal_block DESC, epoch DESC LIMIT 1",
    )
    .bind(netuid)
    .fetch_optional(pool)
    .await?;
    Ok((commit, reveal))
}

/// The hotkey of each `(epoch, uid)` of the given epochs, from their scores and model
/// evaluations: whom a stored weight row's uids named when it was computed.
pub async fn epoch_hotkeys(
    pool: &PgPool,
    netuid: i32,
    epochs: &[i64],
) -> Result<BTreeMap<(i64, i32), String>, DbError> {
    let rows: Vec<(i64, i32, String)> = sqlx::query_as(
        "SELECT epoch, uid, hotkey FROM scores WHERE netuid = $1 AND epoch = ANY($2)
         UNION
         SELECT epoch, uid, hotkey FROM model_evals WHERE netuid = $1 AND epoch = ANY($2)",
    )
    .bind(netuid)
    .bind(epochs)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(epoch, uid, hotkey)| ((epoch, uid), hotkey))
        .collect())
}

/// Versions of the migrations recorded as applied successfully (no migrations table: none).
pub async fn applied_migrations(pool: &PgPool) -> Result<Vec<i64>, DbError> {
    let exists: (bool,) = sqlx::query_as("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    if !exists.0 {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(|(v,)| v).collect())
}

/// Connects (5 s timeout) without applying migrations, to inspect a database as it is.
pub async fn connect_unmigrated(url: &str) -> Result<PgPool, DbError> {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: super::redact(url),
            source,
        })
}
