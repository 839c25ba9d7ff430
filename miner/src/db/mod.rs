//! Everything the miner stores in Postgres (`migrations/miner/`): RLHF task batches from
//! validators, the operator's labelers, their sessions and form tokens, and the labels.
//! SQL lives only here; the API routes, the labeler form and `miner labelers` call these functions.
//!
//! Secrets (sign-in tokens, session cookies, CSRF tokens) are stored as sha256 hashes only
//! ([`hash_secret`]); a stolen database dump signs nobody in.

use sha2::{Digest, Sha256};
use sqlx::{PgPool, postgres::PgPoolOptions};
use subnet_common::protocol::{Choice, Label, RlhfTaskBatch};

/// The miner's migrations, applied at start-up and by `#[sqlx::test]`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/miner");

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
    #[error("migrating the miner database failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A labeler with this name exists already.
    #[error("a labeler named {0:?} exists already")]
    LabelerExists(String),
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

/// Lowercase hex sha256 of a secret, the only form in which secrets are stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether a batch was stored by this call or had been stored before (re-sends are idempotent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStored {
    /// First time this validator sent this `batch_id`.
    New,
    /// The batch was already stored; nothing changed.
    AlreadyKnown,
}

/// Stores a validator's batch with its tasks in one transaction. A second batch with the same
/// `(validator, batch_id)` changes nothing: the first one stands.
pub async fn store_batch(
    pool: &PgPool,
    validator: &str,
    batch: &RlhfTaskBatch,
) -> Result<BatchStored, DbError> {
    let mut tx = pool.begin().await?;
    let id: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO batches (validator, batch_id, deadline_block) VALUES ($1, $2, $3)
         ON CONFLICT (validator, batch_id) DO NOTHING RETURNING id",
    )
    .bind(validator)
    .bind(&batch.batch_id)
    .bind(to_i64(batch.deadline_block))
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = id else {
        return Ok(BatchStored::AlreadyKnown);
    };
    for (position, task) in batch.tasks.iter().enumerate() {
        sqlx::query(
            "INSERT INTO tasks (batch, position, task_id, prompt, a, b)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(i32::try_from(position).unwrap_or(i32::MAX))
        .bind(&task.task_id)
        .bind(&task.prompt)
        .bind(&task.a)
        .bind(&task.b)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(BatchStored::New)
}

/// The labels collected for `validator`'s batch `batch_id`, one per (task, labeler), in task
/// order; `None` when this validator sent no such batch.
pub async fn batch_labels(
    pool: &PgPool,
    validator: &str,
    batch_id: &str,
    reading_speed: f64,
) -> Result<Option<Vec<Label>>, DbError> {
    let batch: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM batches WHERE validator = $1 AND batch_id = $2")
            .bind(validator)
            .bind(batch_id)
            .fetch_optional(pool)
            .await?;
    let Some((batch,)) = batch else {
        return Ok(None);
    };
    // Faster than the pair can be read: not a judgement (a reading speed of 0 keeps all).
    let rows: Vec<(String, String, String, f64)> = sqlx::query_as(
        "SELECT t.task_id, l.choice, lr.name, l.seconds
         FROM labels l JOIN tasks t ON t.id = l.task JOIN labelers lr ON lr.id = l.labeler
         WHERE t.batch = $1
           AND ($2 <= 0 OR l.seconds * $2 >= char_length(t.prompt) + char_length(t.a) + char_length(t.b))
         ORDER BY t.position, lr.name",
    )
    .bind(batch)
    .bind(reading_speed)
    .fetch_all(pool)
    .await?;
    Ok(Some(
        rows.into_iter()
            .filter_map(|(task_id, choice, labeler, seconds)| {
                Some(Label {
                    task_id,
                    choice: Verdict::parse(&choice)?.choice()?,
                    labeler,
                    seconds,
                })
            })
            .collect(),
    ))
}

/// A labeler as `miner labelers list` shows it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LabelerRow {
    /// Unique name, reported to validators with each label.
    pub name: String,
    /// Disabled labelers cannot sign in; their sessions are gone.
    pub disabled: bool,
    /// When the operator added the labeler (UTC, `YYYY-MM-DD HH:MM`).
    pub created: String,
    /// Labels stored so far.
    pub labels: i64,
    /// Whether an unused, unexpired sign-in link exists.
    pub link_pending: bool,
}

/// Adds a labeler with a pending sign-in token (hash) valid for `token_ttl_secs`.
pub async fn add_labeler(
    pool: &PgPool,
    name: &str,
    token_hash: &str,
    token_ttl_secs: i64,
) -> Result<(), DbError> {
    let inserted = sqlx::query(
        "INSERT INTO labelers (name, token_hash, token_expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(token_hash)
    .bind(token_ttl_secs as f64)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(DbError::LabelerExists(name.to_string()));
    }
    Ok(())
}

/// Replaces an enabled labeler's pending sign-in token (a new link; the old one stops working).
/// `false` when no enabled labeler has this name.
pub async fn renew_token(
    pool: &PgPool,
    name: &str,
    token_hash: &str,
    token_ttl_secs: i64,
) -> Result<bool, DbError> {
    let updated = sqlx::query(
        "UPDATE labelers SET token_hash = $2, token_expires_at = now() + make_interval(secs => $3)
         WHERE name = $1 AND NOT disabled",
    )
    .bind(name)
    .bind(token_hash)
    .bind(token_ttl_secs as f64)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Every labeler, by name.
pub async fn list_labelers(pool: &PgPool) -> Result<Vec<LabelerRow>, DbError> {
    Ok(sqlx::query_as(
        "SELECT lr.name, lr.disabled, to_char(lr.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS created,
                (SELECT count(*) FROM labels l WHERE l.labeler = lr.id) AS labels,
                (lr.token_hash IS NOT NULL AND lr.token_expires_at > now()) AS link_pending
         FROM labelers lr ORDER BY lr.name",
    )
    .fetch_all(pool)
    .await?)
}

/// Disables a labeler: no more sign-ins, every session ends, the pending link stops working.
/// Labels already given stay. `false` when no labeler has this name.
pub async fn disable_labeler(pool: &PgPool, name: &str) -> Result<bool, DbError> {
    let mut tx = pool.begin().await?;
    let id: Option<(i64,)> = sqlx::query_as(
        "UPDATE labelers SET disabled = TRUE, token_hash = NULL, token_expires_at = NULL
         WHERE name = $1 RETURNING id",
    )
    .bind(name)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id,)) = id else {
        return Ok(false);
    };
    sqlx::query("DELETE FROM sessions WHERE labeler = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Trades a one-time sign-in token for a new session (`session_hash`, valid `session_ttl_secs`).
/// Returns the labeler's name; `None` when the token is unknown, used, expired or its labeler
/// disabled.
pub async fn redeem_token(
    pool: &PgPool,
    token_hash: &str,
    session_hash: &str,
    session_ttl_secs: i64,
) -> Result<Option<String>, DbError> {
    let mut tx = pool.begin().await?;
    let labeler: Option<(i64, String)> = sqlx::query_as(
        "UPDATE labelers SET token_hash = NULL, token_expires_at = NULL
         WHERE token_hash = $1 AND token_expires_at > now() AND NOT disabled
         RETURNING id, name",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, name)) = labeler else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO sessions (id_hash, labeler, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))",
    )
    .bind(session_hash)
    .bind(id)
    .bind(session_ttl_secs as f64)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at < now() - interval '1 day'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Some(name))
}

/// What a request made with a session cookie found: the session's labeler and what the request
/// did, or why the session is not usable (then the request changed nothing).
#[derive(Debug, Clone, PartialEq)]
pub enum SessionLookup<T> {
    /// A live session.
    Valid {
        /// Labeler name.
        name: String,
        /// What the request did.
        value: T,
    },
    /// The session existed but its time is up.
    Expired,
    /// No such session (never existed, signed out, or its labeler was disabled).
    Unknown,
}

/// The first part of every statement run with a session cookie (`$1`, its hash): the labeler
/// behind it and whether the session is still live. Looked up in the same statement as the
/// request's work, so a task page or an answer is one round trip.
macro_rules! with_session {
    ($rest:literal) => {
        concat!(
            "WITH sess AS (
                 SELECT lr.id AS labeler, lr.name, s.expires_at > now() AS live
                 FROM sessions s JOIN labelers lr ON lr.id = s.labeler
                 WHERE s.id_hash = $1 AND NOT lr.disabled
             ), ",
            $rest
        )
    };
}

/// Ends a session (sign-out).
pub async fn delete_session(pool: &PgPool, session_hash: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(session_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// A task waiting for a labeler's answer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OpenTask {
    /// Row id (what form tokens and labels refer to).
    pub id: i64,
    /// The validator's batch id.
    pub batch_id: String,
    /// The validator's task id.
    pub task_id: String,
    /// The prompt.
    pub prompt: String,
    /// Answer A.
    pub a: String,
    /// Answer B.
    pub b: String,
    /// Labels given after this block are not collected.
    pub deadline_block: i64,
}

/// `current_block`, or "every deadline is open" when the block is unknown.
fn open_from(current_block: Option<u64>) -> i64 {
    current_block.map_or(i64::MIN, to_i64)
}

/// A labeler's task page: progress over the open batches and the next task to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextForm {
    /// Tasks of open batches this labeler answered.
    pub done: i64,
    /// Tasks of open batches.
    pub total: i64,
    /// The next task to answer, now bound to the form's token; `None` when all are answered.
    pub task: Option<OpenTask>,
}

/// What a labeler's task page shows, in one statement (one round trip) with the session lookup
/// (`session_hash`): `(answered, total)` over the tasks of batches whose deadline has not
/// passed, and the next task the labeler has not answered (earliest deadline first, then in the
/// order received and sent). The rendered form's one-time token (`token_hash`) is recorded,
/// bound to the session and to that task (the first showing starts the labeler's clock); no
/// token is recorded when no task is left or the session is not live.
///
/// The token is committed without waiting for the WAL flush (`synchronous_commit` off for this
/// transaction only): it halves the flushes per label. A crash may forget a token issued in the
/// last moments, which only makes that form "not valid" (nothing stored); it cannot lose a
/// label, because a label's commit is flushed, and flushes everything written before it.
pub async fn next_form(
    pool: &PgPool,
    session_hash: &str,
    token_hash: &str,
    current_block: Option<u64>,
) -> Result<SessionLookup<NextForm>, DbError> {
    type Row = (
        String,
        bool,
        i64,
        i64,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let row: Option<Row> = sqlx::query_as(with_session!(
        "open_tasks AS (
             SELECT t.id, t.position, t.task_id, t.prompt, t.a, t.b,
                    bt.id AS batch, bt.batch_id, bt.deadline_block, bt.received_at,
                    mine.task IS NOT NULL AS answered
             FROM sess, tasks t JOIN batches bt ON bt.id = t.batch
             -- One probe of labels' (task, labeler) index per open task: LATERAL with LIMIT
             -- keeps the planner from hashing every stored label instead.
             LEFT JOIN LATERAL (
                 SELECT l.task FROM labels l
                 WHERE l.task = t.id AND l.labeler = sess.labeler LIMIT 1
             ) mine ON TRUE
             WHERE sess.live AND bt.deadline_block >= $2
         ), next_task AS (
             SELECT * FROM open_tasks WHERE NOT answered
             ORDER BY deadline_block, received_at, batch, position
             LIMIT 1
         ), issued AS (
             INSERT INTO form_tokens (token_hash, session, task)
             SELECT $3, $1, id FROM next_task
         )
         SELECT sess.name, sess.live, p.done, p.total,
                n.id, n.batch_id, n.task_id, n.prompt, n.a, n.b, n.deadline_block
         FROM sess,
              (SELECT set_config('synchronous_commit', 'off', true)) no_flush,
              (SELECT count(*) FILTER (WHERE answered) AS done, count(*) AS total
               FROM open_tasks) p
         LEFT JOIN next_task n ON TRUE"
    ))
    .bind(session_hash)
    .bind(open_from(current_block))
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    let Some((name, live, done, total, id, batch_id, task_id, prompt, a, b, deadline_block)) = row
    else {
        return Ok(SessionLookup::Unknown);
    };
    if !live {
        return Ok(SessionLookup::Expired);
    }
    let task = match (id, batch_id, task_id, prompt, a, b, deadline_block) {
        (
            Some(id),
            Some(batch_id),
            Some(task_id),
            Some(prompt),
            Some(a),
            Some(b),
            Some(deadline_block),
        ) => Some(OpenTask {
            id,
            batch_id,
            task_id,
            prompt,
            a,
            b,
            deadline_block,
        }),
        _ => None,
    };
    Ok(SessionLookup::Valid {
        name,
        value: NextForm { done, total, task },
    })
}

/// An answer from the labeler form.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<'a> {
    /// The form token submitted (hash).
    pub token_hash: &'a str,
    /// The session it was submitted with (hash).
    pub session_hash: &'a str,
    /// The judgement.
    pub verdict: Verdict,
    /// Optional free text.
    pub note: &'a str,
    /// The chain's current block, if known (labels after the deadline are refused).
    pub current_block: Option<u64>,
}

/// What became of an answer. Anything but [`AnswerOutcome::Stored`] changed nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnswerOutcome {
    /// Stored; the labeler spent this many seconds since the task was first shown to them.
    Stored {
        /// Server time between the first showing and this answer.
        seconds: f64,
    },
    /// The form was submitted before (reused token, double submit).
    TokenUsed,
    /// The token was not issued to this session.
    TokenUnknown,
    /// This labeler answered the task already (e.g. from another tab).
    AlreadyLabeled,
    /// The batch's deadline block has passed.
    DeadlinePassed,
}

/// Stores an answer in one statement (one round trip, one transaction) with the session lookup:
/// locks the form token, checks that it is this live session's and unspent and that the
/// deadline has not passed, inserts the label once per (task, labeler) and spends the token only
/// when the label was stored. When the outcome is not `Stored`, nothing is changed. A racing
/// second submit of the same token waits for the first one's lock and then finds it spent.
pub async fn submit_answer(
    pool: &PgPool,
    answer: &Answer<'_>,
) -> Result<SessionLookup<AnswerOutcome>, DbError> {
    type Row = (String, bool, Option<bool>, Option<bool>, Option<f64>);
    let row: Option<Row> = sqlx::query_as(with_session!(
        "token AS (
             SELECT ft.task, ft.used_at IS NOT NULL AS used, bt.deadline_block >= $3 AS open
             FROM sess, form_tokens ft
                  JOIN tasks t ON t.id = ft.task JOIN batches bt ON bt.id = t.batch
             WHERE sess.live AND ft.token_hash = $2 AND ft.session = $1
             FOR UPDATE OF ft
         ), stored AS (
             INSERT INTO labels (task, labeler, choice, note, seconds)
             SELECT token.task, sess.labeler, $4, $5,
                    (SELECT greatest(0, extract(epoch FROM clock_timestamp() - min(ft.shown_at)))::float8
                     FROM form_tokens ft JOIN sessions s ON s.id_hash = ft.session
                     WHERE ft.task = token.task AND s.labeler = sess.labeler)
             FROM token, sess WHERE NOT token.used AND token.open
             ON CONFLICT (task, labeler) DO NOTHING
             RETURNING seconds
         ), spent AS (
             UPDATE form_tokens SET used_at = now()
             WHERE token_hash = $2 AND session = $1 AND EXISTS (SELECT 1 FROM stored)
         )
         SELECT sess.name, sess.live, token.used, token.open, (SELECT seconds FROM stored)
         FROM sess LEFT JOIN token ON TRUE"
    ))
    .bind(answer.session_hash)
    .bind(answer.token_hash)
    .bind(open_from(answer.current_block))
    .bind(answer.verdict.as_str())
    .bind(answer.note)
    .fetch_optional(pool)
    .await?;
    let Some((name, live, used, open, seconds)) = row else {
        return Ok(SessionLookup::Unknown);
    };
    if !live {
        return Ok(SessionLookup::Expired);
    }
    let value = match (used, open, seconds) {
        (None, _, _) => AnswerOutcome::TokenUnknown,
        (Some(true), _, _) => AnswerOutcome::TokenUsed,
        (Some(false), Some(false) | None, _) => AnswerOutcome::DeadlinePassed,
        (Some(false), Some(true), None) => AnswerOutcome::AlreadyLabeled,
        (Some(false), Some(true), Some(seconds)) => AnswerOutcome::Stored { seconds },
    };
    Ok(SessionLookup::Valid { name, value })
}

/// A labeler's answer on the form: a choice, "both bad" or "skip".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A, B or tie.
    Choice(Choice),
    /// Neither answer is acceptable: sent to validators as a tie (no preference), kept apart on
    /// the miner.
    BothBad,
    /// The labeler cannot judge this pair: stored so it is not shown again, never sent.
    Skip,
}

impl Verdict {
    /// The stored spelling: `a`, `b`, `tie`, `both_bad`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Choice(choice) => choice_str(choice),
            Verdict::BothBad => "both_bad",
            Verdict::Skip => "skip",
        }
    }

    /// Parses a stored (or submitted) verdict.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "both_bad" => Some(Verdict::BothBad),
            "skip" => Some(Verdict::Skip),
            other => parse_choice(other).map(Verdict::Choice),
        }
    }

    /// What validators are sent: a both-bad verdict is a tie, a skip nothing.
    pub fn choice(self) -> Option<Choice> {
        match self {
            Verdict::Choice(choice) => Some(choice),
            Verdict::BothBad => Some(Choice::Tie),
            Verdict::Skip => None,
        }
    }
}

/// The stored spelling of a choice (as in the protocol: `a`, `b`, `tie`).
pub fn choice_str(choice: Choice) -> &'static str {
    match choice {
        Choice::A => "a",
        Choice::B => "b",
        Choice::Tie => "tie",
    }
}

/// Parses a stored choice.
pub fn parse_choice(s: &str) -> Option<Choice> {
    match s {
        "a" => Some(Choice::A),
        "b" => Some(Choice::B),
        "tie" => Some(Choice::Tie),
        _ => None,
    }
}

/// Blocks fit i64 for any real chain; saturate rather than wrap for absurd values.
fn to_i64(block: u64) -> i64 {
    i64::try_from(block).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://me:pw@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact("postgres://db/x"), "postgres://db/x");
    }

    #[test]
    fn choices_round_trip_through_their_stored_spelling() {
        for c in [Choice::A, Choice::B, Choice::Tie] {
            assert_eq!(parse_choice(choice_str(c)), Some(c));
        }
        assert_eq!(parse_choice("c"), None);
    }

    #[test]
    fn secrets_are_hashed_to_hex_sha256() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
