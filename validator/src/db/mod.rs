//! Everything the validator stores in Postgres (`migrations/validator/`). SQL lives only here;
//! the epoch loop, `verify` and the dashboard call these functions.
//!
//! Writes of one epoch happen in one transaction ([`save_epoch`]); a second save of the same
//! epoch is refused by the primary keys, so a restart can never store or commit an epoch twice.

use std::collections::BTreeMap;

use sqlx::{PgPool, postgres::PgPoolOptions};

mod jobs;
mod labels;
mod read;
mod weights;
pub use jobs::*;
pub use labels::*;
pub use read::*;
pub use weights::*;

/// The validator's migrations, applied at start-up and by `#[sqlx::test]`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/validator");

/// Failures of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Cannot reach or log in to the server.
    #[error("cannot connect to Postgres at {url}: {source}")]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("migrating the validator database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// Connects (5 s timeout) and applies the migrations.
pub async fn connect(url: &str) -> Result<PgPool, DbError> {
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|source| DbError::Connect {
            url: redact(url),
            source,
        })?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db` (see
/// [`subnet_common::telemetry::redact_url`]).
pub use subnet_common::telemetry::redact_url as redact;

/// One scored epoch.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct EpochRecord {
    /// Subnet.
    pub netuid: i32,
    /// The validator's epoch number: the chain's legacy epoch index, numbered on from the last
    /// stored epoch when a tempo change moved the index back (`service::schedule`).
    pub epoch: i64,
    /// First block of the epoch.
    pub start_block: i64,
    /// Hash of `start_block`, hex.
    pub block_hash: String,
    /// Eval seed, hex.
    pub seed: String,
    /// sha256 of the competition file the models were judged by.
    pub competition_sha256: String,
    /// Chain head when scoring started.
    pub scored_block: i64,
    /// Wall time of the epoch's work.
    pub duration_ms: i64,
    /// The competition's base model's per-sample losses (what every entry had to beat), when
    /// the competition pins one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_losses: Option<Vec<f64>>,
    /// The subnet's tempo when the epoch was scored (`None`: stored before it was recorded).
    pub tempo: Option<i32>,
}

/// A hotkey on the subnet at this epoch.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize)]
pub struct MinerRecord {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Uid at this epoch.
    pub uid: i32,
    /// SS58 coldkey.
    pub coldkey: String,
    /// Block of its (re)registration.
    pub block_at_registration: i64,
}

/// Model-track result of one miner in one epoch.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ModelEvalRecord {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Uid.
    pub uid: i32,
    /// The manifest hash its commitment binds, once verified against the served manifest.
    pub manifest_sha256: Option<String>,
    /// Block of the commitment.
    pub commit_block: Option<i64>,
    /// Outcome code (`ok`, `timeout`, `hash_mismatch`, ...).
    pub outcome: String,
    /// Human reason for a non-ok outcome.
    pub reason: String,
    /// Mean per-sample loss when evaluated.
    pub mean_loss: Option<f64>,
    /// Pairwise win rate when scored.
    pub win_rate: Option<f64>,
    /// Model-track score (0 unless scored).
    pub score: f64,
    /// Per-sample losses in sample order.
    pub sample_losses: Vec<f64>,
    /// Completion tokens per sample.
    pub sample_tokens: Vec<i32>,
    /// Per open instruction, the share of its constraints kept (empty without `[open]`).
    pub following: Vec<f64>,
}

/// Combined score of one miner in one epoch.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow, serde::Serialize)]
pub struct ScoreRecord {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Uid.
    pub uid: i32,
    /// Model-track score.
    pub model_score: f64,
    /// Label-track score.
    pub label_score: f64,
    /// Track scores combined by their shares.
    pub combined: f64,
    /// Exponential moving average of `combined`.
    pub ema: f64,
    /// Normalized weight submitted.
    pub weight: f64,
}

/// Everything one epoch produced, saved atomically.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochResults {
    /// The epoch.
    pub epoch: EpochRecord,
    /// The metagraph's hotkeys.
    pub miners: Vec<MinerRecord>,
    /// Model-track rows.
    pub model_evals: Vec<ModelEvalRecord>,
    /// Score rows.
    pub scores: Vec<ScoreRecord>,
    /// The weights to commit, status `pending`.
    pub weights: WeightCommitRecord,
}

/// What [`save_epoch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored now.
    New,
    /// This epoch was stored before (a restart replayed it); nothing changed.
    AlreadyStored,
}

/// Stores an epoch's results in one transaction. Saving an epoch twice stores nothing the
/// second time.
pub async fn save_epoch(pool: &PgPool, results: &EpochResults) -> Result<Saved, DbError> {
    let e = &results.epoch;
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO epochs (netuid, epoch, start_block, block_hash, seed, competition_sha256, scored_block, duration_ms, base_losses, tempo)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (netuid, epoch) DO NOTHING",
    )
    .bind(e.netuid)
    .bind(e.epoch)
    .bind(e.start_block)
    .bind(&e.block_hash)
    .bind(&e.seed)
    .bind(&e.competition_sha256)
    .bind(e.scored_block)
    .bind(e.duration_ms)
    .bind(&e.base_losses)
    .bind(e.tempo)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if inserted == 0 {
        tx.rollback().await?;
        return Ok(Saved::AlreadyStored);
    }
    for m in &results.miners {
        sqlx::query(
            "INSERT INTO miners (netuid, hotkey, uid, coldkey, block_at_registration, first_seen_epoch, last_seen_epoch)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (netuid, hotkey) DO UPDATE SET uid = EXCLUDED.uid, coldkey = EXCLUDED.coldkey,
                 block_at_registration = EXCLUDED.block_at_registration,
                 last_seen_epoch = GREATEST(miners.last_seen_epoch, EXCLUDED.last_seen_epoch)",
        )
        .bind(e.netuid)
        .bind(&m.hotkey)
        .bind(m.uid)
        .bind(&m.coldkey)
        .bind(m.block_at_registration)
        .bind(e.epoch)
        .execute(&mut *tx)
        .await?;
    }
    for r in &results.model_evals {
        sqlx::query(
            "INSERT INTO model_evals (netuid, epoch, hotkey, uid, manifest_sha256, commit_block, outcome, reason,
                 mean_loss, win_rate, score, sample_losses, sample_tokens, following)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(e.netuid)
        .bind(e.epoch)
        .bind(&r.hotkey)
        .bind(r.uid)
        .bind(&r.manifest_sha256)
        .bind(r.commit_block)
        .bind(&r.outcome)
        .bind(&r.reason)
        .bind(r.mean_loss)
        .bind(r.win_rate)
        .bind(r.score)
        .bind(&r.sample_losses)
        .bind(&r.sample_tokens)
        .bind(&r.following)
        .execute(&mut *tx)
        .await?;
    }
    for s in &results.scores {
        sqlx::query(
            "INSERT INTO scores (netuid, epoch, hotkey, uid, model_score, label_score, combined, ema, weight)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(e.netuid)
        .bind(e.epoch)
        .bind(&s.hotkey)
        .bind(s.uid)
        .bind(s.model_score)
        .bind(s.label_score)
        .bind(s.combined)
        .bind(s.ema)
        .bind(s.weight)
        .execute(&mut *tx)
        .await?;
    }
    weights::insert_pending(&mut tx, &results.weights).await?;
    tx.commit().await?;
    Ok(Saved::New)
}

/// Whether `epoch` was already scored and stored.
pub async fn epoch_stored(pool: &PgPool, netuid: i32, epoch: i64) -> Result<bool, DbError> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT epoch FROM epochs WHERE netuid = $1 AND epoch = $2")
            .bind(netuid)
            .bind(epoch)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_some())
}

/// The EMA of each hotkey at its most recent stored epoch: the warm start after a restart.
pub async fn latest_ema(pool: &PgPool, netuid: i32) -> Result<BTreeMap<String, f64>, DbError> {
    let rows: Vec<(String, f64)> = sqlx::query_as(
        "SELECT DISTINCT ON (hotkey) hotkey, ema FROM scores WHERE netuid = $1 ORDER BY hotkey, epoch DESC",
    )
    .bind(netuid)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A hotkey's most recent EMA with the uid and registration block it was computed for.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StoredEma {
    /// SS58 hotkey.
    pub hotkey: String,
    /// Uid at that epoch.
    pub uid: i32,
    /// Registration block as last seen.
    pub block_at_registration: i64,
    /// The EMA.
    pub ema: f64,
}

/// [`latest_ema`] with the uid and registration each EMA belongs to, so the loop can restart a
/// re-registered hotkey from zero.
pub async fn latest_ema_state(pool: &PgPool, netuid: i32) -> Result<Vec<StoredEma>, DbError> {
    Ok(sqlx::query_as::<_, StoredEma>(
        "SELECT DISTINCT ON (s.hotkey) s.hotkey, s.uid, m.block_at_registration, s.ema
         FROM scores s JOIN miners m ON m.netuid = s.netuid AND m.hotkey = s.hotkey
         WHERE s.netuid = $1 ORDER BY s.hotkey, s.epoch DESC",
    )
    .bind(netuid)
    .fetch_all(pool)
    .await?)
}
