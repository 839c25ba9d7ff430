//! The weight rows (`weight_commits`): one per stored epoch, the weights and their way onto the
//! chain. Rows are decoded here, once, into [`WeightCommitRecord`]'s types (u16 uids, weights and
//! salt, the commit hash as bytes, status and mode as enums); a row that does not decode is a
//! query error naming the column, never a half-read record.

use serde::Serialize;
use serde::ser::SerializeStruct;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use subnet_common::chain::rpc::H256;

use super::DbError;

/// Where a weight row is on its way to the chain. Rows only move forward:
/// `pending` → `committed` → `revealed` (commit–reveal), `pending` → `set` (plain
/// `set_weights`), or from either open status to `failed` or `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightStatus {
    /// Stored with its epoch, not yet known to be on chain.
    Pending,
    /// The commit is on chain; the reveal is due in its reveal epoch.
    Committed,
    /// The reveal is on chain.
    Revealed,
    /// Plain `set_weights` is on chain.
    Set,
    /// Given up: refused by the chain, superseded or empty.
    Failed,
    /// The reveal window passed before a reveal landed.
    Expired,
}

impl WeightStatus {
    /// Every status, in the order rows move through them.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Committed,
        Self::Revealed,
        Self::Set,
        Self::Failed,
        Self::Expired,
    ];

    /// The value stored in `weight_commits.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::Revealed => "revealed",
            Self::Set => "set",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// Whether the row still has work to do on chain.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Committed)
    }
}

impl std::fmt::Display for WeightStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for WeightStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// How a row's weights reach the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightMode {
    /// Commit–reveal v2: `commit_weights` with `commit_hash` (blake2b-256 over the weights and
    /// `salt`), then `reveal_weights` with the salt in the reveal epoch.
    CommitReveal {
        /// The committed hash.
        commit_hash: [u8; 32],
        /// The salt the hash covers (u16 values).
        salt: Vec<u16>,
    },
    /// One plain `set_weights` (commit–reveal is off on the subnet).
    SetWeights,
    /// Commit–reveal v4: `commit_timelocked_weights`, the weights encrypted to a beacon round;
    /// the chain decrypts and applies them at the reveal epoch (no reveal extrinsic).
    Timelocked,
}

impl WeightMode {
    /// The value stored in `weight_commits.mode`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CommitReveal { .. } => "commit_reveal",
            Self::SetWeights => "set_weights",
            Self::Timelocked => "timelocked",
        }
    }
}

/// An extrinsic of a weight row as recorded: its hash, or `Unknown` when the chain showed the
/// commit had landed (the validator's `last_update` moved) without telling which extrinsic did
/// it. Stored as `0x…` or `unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedTx {
    /// The extrinsic's hash.
    Hash(H256),
    /// Landed, by an extrinsic whose hash was not recorded.
    Unknown,
}

impl RecordedTx {
    const UNKNOWN: &'static str = "unknown";

    /// The hash, when known.
    pub fn hash(self) -> Option<H256> {
        match self {
            Self::Hash(hash) => Some(hash),
            Self::Unknown => None,
        }
    }
}

impl std::fmt::Display for RecordedTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hash(hash) => hash.fmt(f),
            Self::Unknown => f.write_str(Self::UNKNOWN),
        }
    }
}

impl std::str::FromStr for RecordedTx {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::UNKNOWN {
            return Ok(Self::Unknown);
        }
        s.parse()
            .map(Self::Hash)
            .map_err(|_| format!("{s:?} is not an extrinsic hash"))
    }
}

impl Serialize for RecordedTx {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The weights of one epoch and their way onto the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightCommitRecord {
    /// Subnet.
    pub netuid: i32,
    /// Epoch the weights come from.
    pub epoch: i64,
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights as they are (or will be) set or revealed, one per uid.
    pub weights: Vec<u16>,
    /// Weights version key.
    pub version_key: u64,
    /// Commit–reveal (with its hash and salt) or plain `set_weights`.
    pub mode: WeightMode,
    /// Where the row is.
    pub status: WeightStatus,
    /// Extrinsic of the commit (or set_weights): the one last signed while `pending`, the one
    /// included once on chain.
    pub commit_tx: Option<RecordedTx>,
    /// Block the commit (or set_weights) was included in.
    pub commit_block: Option<u64>,
    /// Extrinsic of the reveal.
    pub reveal_tx: Option<H256>,
    /// Block the reveal was included in.
    pub reveal_block: Option<u64>,
    /// Last error, for `failed`/`expired` or a retry.
    pub error: Option<String>,
}

impl WeightCommitRecord {
    /// A new `pending` row for `epoch`.
    pub fn pending(
        netuid: u16,
        epoch: u64,
        uids: Vec<u16>,
        weights: Vec<u16>,
        version_key: u64,
        mode: WeightMode,
    ) -> Self {
        Self {
            netuid: i32::from(netuid),
            epoch: i64::try_from(epoch).unwrap_or(i64::MAX),
            uids,
            weights,
            version_key,
            mode,
            status: WeightStatus::Pending,
            commit_tx: None,
            commit_block: None,
            reveal_tx: None,
            reveal_block: None,
            error: None,
        }
    }

    /// The commit hash, for commit–reveal rows.
    pub fn commit_hash(&self) -> Option<[u8; 32]> {
        match &self.mode {
            WeightMode::CommitReveal { commit_hash, .. } => Some(*commit_hash),
            WeightMode::SetWeights | WeightMode::Timelocked => None,
        }
    }
}

/// `/api/weights` and the dashboard: the stored columns, hashes in hex.
impl Serialize for WeightCommitRecord {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (commit_hash, salt) = match &self.mode {
            WeightMode::CommitReveal { commit_hash, salt } => {
                (Some(hex::encode(commit_hash)), salt.as_slice())
            }
            WeightMode::SetWeights | WeightMode::Timelocked => (None, &[][..]),
        };
        let mut s = serializer.serialize_struct("WeightCommitRecord", 14)?;
        s.serialize_field("netuid", &self.netuid)?;
        s.serialize_field("epoch", &self.epoch)?;
        s.serialize_field("uids", &self.uids)?;
        s.serialize_field("weights", &self.weights)?;
        s.serialize_field("salt", salt)?;
        s.serialize_field("version_key", &self.version_key)?;
        s.serialize_field("mode", self.mode.as_str())?;
        s.serialize_field("commit_hash", &commit_hash)?;
        s.serialize_field("status", &self.status)?;
        s.serialize_field("commit_tx", &self.commit_tx)?;
        s.serialize_field("commit_block", &self.commit_block)?;
        s.serialize_field("reveal_tx", &self.reveal_tx)?;
        s.serialize_field("reveal_block", &self.reveal_block)?;
        s.serialize_field("error", &self.error)?;
        s.end()
    }
}

/// The columns [`WeightCommitRecord`] decodes from, for `SELECT`s.
macro_rules! weight_columns {
    () => {
        "netuid, epoch, uids, weights, salt, version_key, mode, commit_hash, status, commit_tx,
         commit_block, reveal_tx, reveal_block, error"
    };
}

impl<'r> sqlx::FromRow<'r, PgRow> for WeightCommitRecord {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        fn bad(column: &str, reason: impl Into<String>) -> sqlx::Error {
            sqlx::Error::ColumnDecode {
                index: column.to_string(),
                source: reason.into().into(),
            }
        }
        let u16s = |column: &str| -> Result<Vec<u16>, sqlx::Error> {
            let values: Vec<i32> = row.try_get(column)?;
            values
                .into_iter()
                .map(|v| u16::try_from(v).map_err(|_| bad(column, format!("{v} is not a u16"))))
                .collect()
        };
        let block = |column: &str| -> Result<Option<u64>, sqlx::Error> {
            let value: Option<i64> = row.try_get(column)?;
            value
                .map(|b| u64::try_from(b).map_err(|_| bad(column, format!("negative block {b}"))))
                .transpose()
        };
        let uids = u16s("uids")?;
        let weights = u16s("weights")?;
        if uids.len() != weights.len() {
            return Err(bad(
                "weights",
                format!("{} weights for {} uids", weights.len(), uids.len()),
            ));
        }
        let mode: String = row.try_get("mode")?;
        let hash: Option<String> = row.try_get("commit_hash")?;
        let mode = match (mode.as_str(), hash) {
            ("commit_reveal", Some(hash)) => WeightMode::CommitReveal {
                commit_hash: hex::decode(&hash)
                    .ok()
                    .and_then(|bytes| bytes.try_into().ok())
                    .ok_or_else(|| {
                        bad("commit_hash", format!("{hash:?} is not 32 bytes of hex"))
                    })?,
                salt: u16s("salt")?,
            },
            ("commit_reveal", None) => {
                return Err(bad("commit_hash", "commit_reveal without a hash"));
            }
            ("set_weights", _) => WeightMode::SetWeights,
            ("timelocked", _) => WeightMode::Timelocked,
            (other, _) => return Err(bad("mode", format!("unknown mode {other:?}"))),
        };
        let status: String = row.try_get("status")?;
        let commit_tx: Option<String> = row.try_get("commit_tx")?;
        let reveal_tx: Option<String> = row.try_get("reveal_tx")?;
        let version_key: i64 = row.try_get("version_key")?;
        Ok(Self {
            netuid: row.try_get("netuid")?,
            epoch: row.try_get("epoch")?,
            uids,
            weights,
            version_key: u64::try_from(version_key)
                .map_err(|_| bad("version_key", format!("negative {version_key}")))?,
            mode,
            status: status.parse().map_err(|e: String| bad("status", e))?,
            commit_tx: commit_tx
                .map(|tx| tx.parse().map_err(|e: String| bad("commit_tx", e)))
                .transpose()?,
            commit_block: block("commit_block")?,
            reveal_tx: reveal_tx
                .map(|tx| {
                    tx.parse()
                        .map_err(|_| bad("reveal_tx", format!("{tx:?} is not an extrinsic hash")))
                })
                .transpose()?,
            reveal_block: block("reveal_block")?,
            error: row.try_get("error")?,
        })
    }
}

/// Inserts `row` (status `pending`) inside `tx`, the transaction that stores its epoch.
pub(super) async fn insert_pending(
    tx: &mut sqlx::PgConnection,
    row: &WeightCommitRecord,
) -> Result<(), DbError> {
    let wide = |values: &[u16]| values.iter().map(|&v| i32::from(v)).collect::<Vec<i32>>();
    let (salt, hash) = match &row.mode {
        WeightMode::CommitReveal { commit_hash, salt } => {
            (wide(salt), Some(hex::encode(commit_hash)))
        }
        WeightMode::SetWeights | WeightMode::Timelocked => (Vec::new(), None),
    };
    sqlx::query(
        "INSERT INTO weight_commits (netuid, epoch, uids, weights, salt, version_key, mode, commit_hash, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
    )
    .bind(row.netuid)
    .bind(row.epoch)
    .bind(wide(&row.uids))
    .bind(wide(&row.weights))
    .bind(salt)
    .bind(i64::try_from(row.version_key).unwrap_or(i64::MAX))
    .bind(row.mode.as_str())
    .bind(hash)
    .execute(tx)
    .await?;
    Ok(())
}

/// Weight rows not yet settled (`pending` or `committed`), oldest first.
pub async fn open_weight_commits(
    pool: &PgPool,
    netuid: i32,
) -> Result<Vec<WeightCommitRecord>, DbError> {
    Ok(sqlx::query_as::<_, WeightCommitRecord>(concat!(
        "SELECT ",
        weight_columns!(),
        " FROM weight_commits WHERE netuid = $1 AND status IN ('pending', 'committed') ORDER BY epoch"
    ))
    .bind(netuid)
    .fetch_all(pool)
    .await?)
}

/// The `limit` most recent weight rows, newest first.
pub async fn recent_weight_commits(
    pool: &PgPool,
    netuid: i32,
    limit: i64,
) -> Result<Vec<WeightCommitRecord>, DbError> {
    Ok(sqlx::query_as::<_, WeightCommitRecord>(concat!(
        "SELECT ",
        weight_columns!(),
        " FROM weight_commits WHERE netuid = $1 ORDER BY epoch DESC LIMIT $2"
    ))
    .bind(netuid)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The weight row of one epoch.
pub async fn weight_commit(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Option<WeightCommitRecord>, DbError> {
    Ok(sqlx::query_as::<_, WeightCommitRecord>(concat!(
        "SELECT ",
        weight_columns!(),
        " FROM weight_commits WHERE netuid = $1 AND epoch = $2"
    ))
    .bind(netuid)
    .bind(epoch)
    .fetch_optional(pool)
    .await?)
}

/// A change of a weight row's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightUpdate {
    /// The commit extrinsic was included (`pending` → `committed`).
    Committed {
        /// The extrinsic.
        tx: RecordedTx,
        /// Block.
        block: u64,
    },
    /// Plain `set_weights` was included (`pending` → `set`).
    Set {
        /// The extrinsic.
        tx: RecordedTx,
        /// Block.
        block: u64,
    },
    /// The reveal was included (`committed` → `revealed`), or, for a timelocked commit, the
    /// chain's own reveal is due.
    Revealed {
        /// The reveal extrinsic; `None` when the chain revealed by itself.
        tx: Option<H256>,
        /// Block.
        block: u64,
    },
    /// Gave up: the chain refused for good, or the reveal window passed.
    Failed {
        /// Why.
        error: String,
        /// `expired` instead of `failed` when the reveal window passed.
        expired: bool,
    },
    /// A transient error to remember; the row stays open.
    Retry {
        /// Why.
        error: String,
    },
}

impl WeightUpdate {
    /// The status the row moves to (`None`: it stays where it is).
    pub fn status(&self) -> Option<WeightStatus> {
        match self {
            Self::Committed { .. } => Some(WeightStatus::Committed),
            Self::Set { .. } => Some(WeightStatus::Set),
            Self::Revealed { .. } => Some(WeightStatus::Revealed),
            Self::Failed { expired: true, .. } => Some(WeightStatus::Expired),
            Self::Failed { .. } => Some(WeightStatus::Failed),
            Self::Retry { .. } => None,
        }
    }
}

fn block_value(block: u64) -> i64 {
    i64::try_from(block).unwrap_or(i64::MAX)
}

/// Records progress of the weights of `epoch`. Only moves forward: an update that does not
/// apply to the row's current status changes nothing and returns `false`.
pub async fn update_weights(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
    update: &WeightUpdate,
) -> Result<bool, DbError> {
    let query = match update {
        WeightUpdate::Committed { tx, block } | WeightUpdate::Set { tx, block } => sqlx::query(
            "UPDATE weight_commits SET status = $3, commit_tx = $4, commit_block = $5, error = NULL, updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status = 'pending'",
        )
        .bind(netuid)
        .bind(epoch)
        .bind(update.status().map(WeightStatus::as_str))
        .bind(tx.to_string())
        .bind(block_value(*block)),
        WeightUpdate::Revealed { tx, block } => sqlx::query(
            "UPDATE weight_commits SET status = 'revealed', reveal_tx = $3, reveal_block = $4, error = NULL, updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status = 'committed'",
        )
        .bind(netuid)
        .bind(epoch)
        .bind(tx.map(|tx| tx.to_string()))
        .bind(block_value(*block)),
        WeightUpdate::Failed { error, .. } => sqlx::query(
            "UPDATE weight_commits SET status = $3, error = $4, updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status IN ('pending', 'committed')",
        )
        .bind(netuid)
        .bind(epoch)
        .bind(update.status().map(WeightStatus::as_str))
        .bind(error),
        WeightUpdate::Retry { error } => sqlx::query(
            "UPDATE weight_commits SET error = $3, updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status IN ('pending', 'committed')",
        )
        .bind(netuid)
        .bind(epoch)
        .bind(error),
    };
    Ok(query.execute(pool).await?.rows_affected() > 0)
}

/// Which extrinsic of a weight row [`record_submission`] notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submission {
    /// The `commit_weights` or `set_weights` of a `pending` row (stored in `commit_tx`).
    Commit,
    /// The `reveal_weights` of a `committed` row (stored in `reveal_tx`).
    Reveal,
}

/// Notes the hash of an extrinsic about to be sent, before it is sent: after a crash the loop
/// asks the chain about this hash instead of sending a second one. The status does not change.
/// For a commit, the first call also stores `head` as the row's submit guard block
/// ([`submit_guard_block`]). Returns `false` when the row is not in the status the extrinsic
/// belongs to.
pub async fn record_submission(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
    which: Submission,
    tx: H256,
    head: u64,
) -> Result<bool, DbError> {
    let sql = match which {
        Submission::Commit => {
            "UPDATE weight_commits SET commit_tx = $3, submit_guard_block = COALESCE(submit_guard_block, $4),
                 updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status = 'pending'"
        }
        Submission::Reveal => {
            "UPDATE weight_commits SET reveal_tx = $3, updated_at = now()
             WHERE netuid = $1 AND epoch = $2 AND status = 'committed'"
        }
    };
    let mut query = sqlx::query(sql)
        .bind(netuid)
        .bind(epoch)
        .bind(tx.to_string());
    if which == Submission::Commit {
        query = query.bind(block_value(head));
    }
    let result = query.execute(pool).await?;
    Ok(result.rows_affected() > 0)
}

/// The chain head when the first commit (or set_weights) of the row was signed, if one was.
pub async fn submit_guard_block(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Option<u64>, DbError> {
    let row: Option<(Option<i64>,)> = sqlx::query_as(
        "SELECT submit_guard_block FROM weight_commits WHERE netuid = $1 AND epoch = $2",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_optional(pool)
    .await?;
    Ok(row
        .and_then(|(guard,)| guard)
        .map(|guard| u64::try_from(guard).unwrap_or(0)))
}

/// The subnet's tempo when `epoch` was scored (`None`: not stored, or stored before the tempo
/// was recorded).
pub async fn epoch_tempo(pool: &PgPool, netuid: i32, epoch: i64) -> Result<Option<u16>, DbError> {
    let row: Option<(Option<i32>,)> =
        sqlx::query_as("SELECT tempo FROM epochs WHERE netuid = $1 AND epoch = $2")
            .bind(netuid)
            .bind(epoch)
            .fetch_optional(pool)
            .await?;
    Ok(row
        .and_then(|(tempo,)| tempo)
        .and_then(|tempo| u16::try_from(tempo).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_recorded_hashes_read_back_what_they_write() {
        for status in WeightStatus::ALL {
            assert_eq!(status.as_str().parse::<WeightStatus>(), Ok(status));
        }
        assert!("carrier-pigeon".parse::<WeightStatus>().is_err());
        let hash = RecordedTx::Hash(H256([7; 32]));
        assert_eq!(hash.to_string().parse::<RecordedTx>(), Ok(hash));
        assert_eq!("unknown".parse::<RecordedTx>(), Ok(RecordedTx::Unknown));
        assert!("0x12".parse::<RecordedTx>().is_err());
    }

    #[test]
    fn the_api_shape_is_the_stored_columns() {
        let mut row = WeightCommitRecord::pending(
            1,
            5,
            vec![0, 3],
            vec![65535, 12],
            1000,
            WeightMode::CommitReveal {
                commit_hash: [0xab; 32],
                salt: vec![1, 2],
            },
        );
        row.commit_tx = Some(RecordedTx::Unknown);
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["mode"], "commit_reveal");
        assert_eq!(json["status"], "pending");
        assert_eq!(json["commit_hash"], "ab".repeat(32));
        assert_eq!(json["salt"], serde_json::json!([1, 2]));
        assert_eq!(json["commit_tx"], "unknown");
        assert_eq!(json["weights"], serde_json::json!([65535, 12]));
        let set = WeightCommitRecord::pending(1, 5, vec![], vec![], 1000, WeightMode::SetWeights);
        let json = serde_json::to_value(&set).unwrap();
        assert_eq!(json["commit_hash"], serde_json::Value::Null);
        assert_eq!(json["mode"], "set_weights");
    }
}
