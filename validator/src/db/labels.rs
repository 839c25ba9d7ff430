//! The label track's tables (`migrations/validator/*_create_label_tables.sql`): batches with
//! their hidden truth, labels, score components; and the rows the preference export reads.

use std::collections::BTreeMap;

use sqlx::PgPool;
use subnet_common::protocol::{Choice, Label, RlhfTask};

use super::{DbError, Saved};
use crate::tracks::labels::batch::{MinerBatch, SentTask};
use crate::tracks::labels::collect::LabelOutcome;
use crate::tracks::labels::score::{Components, KnownCounts, KnownHistory, ScoreParams};
use crate::tracks::labels::{LabelMinerResult, LabelTrackResult, SentEpoch, StoredSent};

/// The stored text of a choice.
fn choice_code(choice: Choice) -> &'static str {
    match choice {
        Choice::A => "a",
        Choice::B => "b",
        Choice::Tie => "tie",
    }
}

/// A stored choice, or `None` for text the schema would not have let in.
pub fn parse_choice(code: &str) -> Option<Choice> {
    match code {
        "a" => Some(Choice::A),
        "b" => Some(Choice::B),
        "tie" => Some(Choice::Tie),
        _ => None,
    }
}

/// i64 of a u64 for Postgres `BIGINT`, saturating.
fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores one epoch of the label track in one transaction, and drops the pending batches it
/// collected ([`save_label_pending`]) in the same one. Saving the same epoch twice stores
/// nothing the second time.
pub async fn save_label_track(pool: &PgPool, result: &LabelTrackResult) -> Result<Saved, DbError> {
    let netuid = i32::from(result.netuid);
    let epoch = big(result.epoch);
    let mut tx = pool.begin().await?;
    let stored: Option<(i64,)> =
        sqlx::query_as("SELECT epoch FROM label_batches WHERE netuid = $1 AND epoch = $2 LIMIT 1")
            .bind(netuid)
            .bind(epoch)
            .fetch_optional(&mut *tx)
            .await?;
    if stored.is_some() {
        tx.rollback().await?;
        return Ok(Saved::AlreadyStored);
    }
    let params = serde_json::to_value(result.params).map_err(|e| sqlx::Error::Encode(e.into()))?;
    for m in &result.miners {
        let c = &m.components;
        sqlx::query(
            "INSERT INTO label_batches (netuid, epoch, hotkey, uid, batch_id, deadline_block, track_seed, outcome,
                 reason, dropped_labels, params, sent, answered, known_sent, known_answered, known_correct,
                 known_wrong, compared, agreed, accuracy, coverage, agreement, raw_score, score, sent_epoch,
                 noise)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                 $21, $22, $23, $24, $25, $26)",
        )
        .bind(netuid)
        .bind(epoch)
        .bind(&m.hotkey)
        .bind(i32::from(m.uid))
        .bind(&m.batch.batch_id)
        .bind(big(m.batch.deadline_block))
        .bind(&result.track_seed)
        .bind(m.outcome.code())
        .bind(&m.reason)
        .bind(i32::try_from(m.dropped_labels).unwrap_or(i32::MAX))
        .bind(&params)
        .bind(c.sent as i32)
        .bind(c.answered as i32)
        .bind(c.known_sent as i32)
        .bind(c.known_answered as i32)
        .bind(c.known_correct as i32)
        .bind(c.known_wrong as i32)
        .bind(c.compared as i32)
        .bind(c.agreed as i32)
        .bind(c.accuracy)
        .bind(c.coverage)
        .bind(c.agreement)
        .bind(c.raw)
        .bind(c.score)
        .bind(big(result.sent_epoch))
        .bind(c.noise)
        .execute(&mut *tx)
        .await?;
        for (position, t) in m.batch.tasks.iter().enumerate() {
            sqlx::query(
                "INSERT INTO label_tasks (netuid, epoch, hotkey, task_id, position, pair_id, prompt, a, b, known, swapped, shared)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(netuid)
            .bind(epoch)
            .bind(&m.hotkey)
            .bind(&t.task.task_id)
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .bind(&t.pair_id)
            .bind(&t.task.prompt)
            .bind(&t.task.a)
            .bind(&t.task.b)
            .bind(t.known)
            .bind(t.swapped)
            .bind(t.shared)
            .execute(&mut *tx)
            .await?;
        }
        for l in &m.labels {
            sqlx::query(
                "INSERT INTO labels (netuid, epoch, hotkey, task_id, labeler, choice, seconds)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(netuid)
            .bind(epoch)
            .bind(&m.hotkey)
            .bind(&l.task_id)
            .bind(&l.labeler)
            .bind(choice_code(l.choice))
            .bind(l.seconds)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("DELETE FROM label_pending WHERE netuid = $1 AND epoch = $2")
        .bind(netuid)
        .bind(big(result.sent_epoch))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Saved::New)
}

/// Stores the batches just sent until they are collected. A second save of the same sending
/// epoch stores nothing ([`Saved::AlreadyStored`]).
pub async fn save_label_pending(pool: &PgPool, sent: &SentEpoch) -> Result<Saved, DbError> {
    let stored = StoredSent::from(sent);
    let json = serde_json::to_value(&stored).map_err(|e| sqlx::Error::Encode(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO label_pending (netuid, epoch, deadline_block, batches) VALUES ($1, $2, $3, $4)
         ON CONFLICT (netuid, epoch) DO NOTHING",
    )
    .bind(i32::from(stored.netuid))
    .bind(big(stored.epoch))
    .bind(big(stored.deadline_block))
    .bind(json)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(if inserted == 1 {
        Saved::New
    } else {
        Saved::AlreadyStored
    })
}

/// Whether the batches of sending epoch `epoch` went out already: pending, or collected and
/// stored.
pub async fn label_batches_sent(pool: &PgPool, netuid: i32, epoch: i64) -> Result<bool, DbError> {
    let (sent,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM label_pending WHERE netuid = $1 AND epoch = $2)
             OR EXISTS (SELECT 1 FROM label_batches
                        WHERE netuid = $1 AND COALESCE(sent_epoch, epoch) = $2)",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_one(pool)
    .await?;
    Ok(sent)
}

/// The pending batches whose deadline is at or before `block`, oldest sending epoch first.
pub async fn label_pending_due(
    pool: &PgPool,
    netuid: i32,
    block: u64,
) -> Result<Vec<SentEpoch>, DbError> {
    let rows: Vec<(serde_json::Value,)> = sqlx::query_as(
        "SELECT batches FROM label_pending WHERE netuid = $1 AND deadline_block <= $2 ORDER BY epoch",
    )
    .bind(netuid)
    .bind(big(block))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|(json,)| {
            let stored: StoredSent = serde_json::from_value(json)
                .map_err(|e| sqlx::Error::Decode(format!("label_pending.batches: {e}").into()))?;
            SentEpoch::try_from(stored).map_err(|e| {
                DbError::Query(sqlx::Error::Decode(
                    format!("label_pending.batches: {e}").into(),
                ))
            })
        })
        .collect()
}

/// Forgets the pending batches of sending epoch `epoch` without collecting them.
pub async fn drop_label_pending(pool: &PgPool, netuid: i32, epoch: i64) -> Result<(), DbError> {
    sqlx::query("DELETE FROM label_pending WHERE netuid = $1 AND epoch = $2")
        .bind(netuid)
        .bind(epoch)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    hotkey: String,
    uid: i32,
    batch_id: String,
    deadline_block: i64,
    track_seed: String,
    outcome: String,
    reason: String,
    dropped_labels: i32,
    params: serde_json::Value,
    sent: i32,
    answered: i32,
    known_sent: i32,
    known_answered: i32,
    known_correct: i32,
    known_wrong: i32,
    compared: i32,
    agreed: i32,
    accuracy: f64,
    coverage: f64,
    agreement: f64,
    raw_score: f64,
    score: f64,
    sent_epoch: i64,
    noise: bool,
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    hotkey: String,
    task_id: String,
    pair_id: String,
    prompt: String,
    a: String,
    b: String,
    known: bool,
    swapped: bool,
    shared: bool,
}

#[derive(sqlx::FromRow)]
struct LabelRow {
    hotkey: String,
    task_id: String,
    labeler: String,
    choice: String,
    seconds: f64,
}

/// Loads a stored epoch of the label track as it was scored (`None` when not stored), so
/// [`crate::tracks::labels::rescore`] can recompute it.
pub async fn load_label_track(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
) -> Result<Option<LabelTrackResult>, DbError> {
    let batches: Vec<BatchRow> = sqlx::query_as(
        "SELECT hotkey, uid, batch_id, deadline_block, track_seed, outcome, reason, dropped_labels, params, sent,
                answered, known_sent, known_answered, known_correct, known_wrong, compared, agreed, accuracy,
                coverage, agreement, raw_score, score, COALESCE(sent_epoch, epoch) AS sent_epoch, noise
         FROM label_batches WHERE netuid = $1 AND epoch = $2 ORDER BY uid, hotkey",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    let bad = |what: String| DbError::Query(sqlx::Error::Decode(what.into()));
    let params: ScoreParams = serde_json::from_value(first.params.clone())
        .map_err(|e| bad(format!("label_batches.params: {e}")))?;
    let (track_seed, deadline_block, sent_epoch) = (
        first.track_seed.clone(),
        first.deadline_block,
        first.sent_epoch,
    );
    let tasks: Vec<TaskRow> = sqlx::query_as(
        "SELECT hotkey, task_id, pair_id, prompt, a, b, known, swapped, shared
         FROM label_tasks WHERE netuid = $1 AND epoch = $2 ORDER BY hotkey, position",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    let labels: Vec<LabelRow> = sqlx::query_as(
        "SELECT hotkey, task_id, labeler, choice, seconds
         FROM labels WHERE netuid = $1 AND epoch = $2
         ORDER BY hotkey COLLATE \"C\", task_id COLLATE \"C\", labeler COLLATE \"C\"",
    )
    .bind(netuid)
    .bind(epoch)
    .fetch_all(pool)
    .await?;
    let mut tasks_of: BTreeMap<String, Vec<SentTask>> = BTreeMap::new();
    for t in tasks {
        tasks_of.entry(t.hotkey).or_default().push(SentTask {
            task: RlhfTask {
                task_id: t.task_id,
                prompt: t.prompt,
                a: t.a,
                b: t.b,
            },
            pair_id: t.pair_id,
            known: t.known,
            swapped: t.swapped,
            shared: t.shared,
        });
    }
    let mut labels_of: BTreeMap<String, Vec<Label>> = BTreeMap::new();
    for l in labels {
        let choice =
            parse_choice(&l.choice).ok_or_else(|| bad(format!("labels.choice {:?}", l.choice)))?;
        labels_of.entry(l.hotkey).or_default().push(Label {
            task_id: l.task_id,
            choice,
            labeler: l.labeler,
            seconds: l.seconds,
        });
    }
    let mut miners = Vec::with_capacity(batches.len());
    for b in batches {
        let outcome = LabelOutcome::from_code(&b.outcome)
            .ok_or_else(|| bad(format!("label_batches.outcome {:?}", b.outcome)))?;
        let count = |v: i32| u32::try_from(v).unwrap_or(0);
        miners.push(LabelMinerResult {
            uid: u16::try_from(b.uid).unwrap_or(u16::MAX),
            outcome,
            reason: b.reason,
            batch: MinerBatch {
                batch_id: b.batch_id,
                deadline_block: u64::try_from(b.deadline_block).unwrap_or(0),
                tasks: tasks_of.remove(&b.hotkey).unwrap_or_default(),
            },
            labels: labels_of.remove(&b.hotkey).unwrap_or_default(),
            dropped_labels: count(b.dropped_labels),
            components: Components {
                sent: count(b.sent),
                answered: count(b.answered),
                known_sent: count(b.known_sent),
                known_answered: count(b.known_answered),
                known_correct: count(b.known_correct),
                known_wrong: count(b.known_wrong),
                compared: count(b.compared),
                agreed: count(b.agreed),
                accuracy: b.accuracy,
                coverage: b.coverage,
                agreement: b.agreement,
                raw: b.raw_score,
                score: b.score,
                noise: b.noise,
            },
            hotkey: b.hotkey,
        });
    }
    let history = known_history(pool, netuid, epoch, params.window_epochs).await?;
    Ok(Some(LabelTrackResult {
        netuid: u16::try_from(netuid).unwrap_or(u16::MAX),
        epoch: u64::try_from(epoch).unwrap_or(0),
        sent_epoch: u64::try_from(sent_epoch).unwrap_or(0),
        track_seed,
        deadline_block: u64::try_from(deadline_block).unwrap_or(0),
        params,
        miners,
        history,
    }))
}

/// Each hotkey's known-answer votes (correct, wrong) in the `window_epochs − 1` stored epochs
/// before `epoch`, from its collected batches: the history the label scores of `epoch` take in.
pub async fn known_history(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
    window_epochs: u32,
) -> Result<KnownHistory, DbError> {
    let earliest = epoch.saturating_sub(i64::from(window_epochs.saturating_sub(1)));
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT hotkey, SUM(known_correct)::BIGINT, SUM(known_wrong)::BIGINT
         FROM label_batches
         WHERE netuid = $1 AND epoch >= $2 AND epoch < $3 AND outcome = $4
         GROUP BY hotkey",
    )
    .bind(netuid)
    .bind(earliest)
    .bind(epoch)
    .bind(LabelOutcome::Ok.code())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(hotkey, correct, wrong)| {
            let count = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
            let counts = KnownCounts {
                correct: count(correct),
                wrong: count(wrong),
            };
            (hotkey, counts)
        })
        .collect())
}

/// Hotkeys whose last `last` batches stored before `epoch` all ended with an outcome of
/// [`LabelOutcome::LABELS_NOTHING`] (a miner that does not label: no axon, unreachable, an HTTP
/// error such as 404): the ones the label track only probes. Epochs it was sent nothing in
/// (`no_tasks`: no answers yet, or a probe not chosen) do not count either way. A hotkey with
/// fewer counted batches is not among them.
pub async fn hotkeys_labelling_nothing(
    pool: &PgPool,
    netuid: i32,
    epoch: i64,
    last: u32,
) -> Result<std::collections::BTreeSet<String>, DbError> {
    let codes: Vec<&str> = LabelOutcome::LABELS_NOTHING
        .iter()
        .map(|o| o.code())
        .collect();
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT hotkey FROM (
             SELECT hotkey, outcome,
                    ROW_NUMBER() OVER (PARTITION BY hotkey ORDER BY epoch DESC) AS recent
             FROM label_batches
             WHERE netuid = $1 AND epoch < $2 AND outcome <> $5
         ) batches
         WHERE recent <= $3
         GROUP BY hotkey
         HAVING COUNT(*) = $3 AND BOOL_AND(outcome = ANY($4))",
    )
    .bind(netuid)
    .bind(epoch)
    .bind(i64::from(last))
    .bind(&codes)
    .bind(LabelOutcome::NoTasks.code())
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(hotkey,)| hotkey).collect())
}

/// One label on an open (not known-answer) task of a miner whose batch was collected: what the
/// preference export aggregates.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OpenLabelRow {
    /// Epoch.
    pub epoch: i64,
    /// The label miner.
    pub hotkey: String,
    /// The pair (a miner's own, or shared by the epoch's miners).
    pub pair_id: String,
    /// The prompt.
    pub prompt: String,
    /// Answer shown as A.
    pub a: String,
    /// Answer shown as B.
    pub b: String,
    /// Whether the pair's first answer was shown as B.
    pub swapped: bool,
    /// `a`, `b` or `tie`.
    pub choice: String,
    /// The miner's estimated accuracy stored with the epoch's label scores.
    pub accuracy: f64,
}

/// Every label on open tasks from epoch `since_epoch` on, of miners with outcome `ok`, ordered
/// by epoch, pair, miner.
pub async fn open_labels_since(
    pool: &PgPool,
    netuid: i32,
    since_epoch: i64,
) -> Result<Vec<OpenLabelRow>, DbError> {
    Ok(sqlx::query_as::<_, OpenLabelRow>(
        "SELECT t.epoch, t.hotkey, t.pair_id, t.prompt, t.a, t.b, t.swapped, l.choice, lb.accuracy
         FROM label_tasks t
         JOIN label_batches lb ON lb.netuid = t.netuid AND lb.epoch = t.epoch AND lb.hotkey = t.hotkey
         JOIN labels l ON l.netuid = t.netuid AND l.epoch = t.epoch AND l.hotkey = t.hotkey AND l.task_id = t.task_id
         WHERE t.netuid = $1 AND t.epoch >= $2 AND NOT t.known AND lb.outcome = 'ok'
         ORDER BY t.epoch, t.pair_id, t.hotkey, l.labeler",
    )
    .bind(netuid)
    .bind(since_epoch)
    .fetch_all(pool)
    .await?)
}
