//! The evaluation queue (`eval_jobs`): the epoch loop inserts jobs, `validator worker` processes
//! take them with `FOR UPDATE SKIP LOCKED`, renew a lease while they work and write results
//! fenced by their attempt number; the loop reads each result once and deletes the row. The
//! protocol is described in `migrations/validator/20261206150000_eval_jobs.sql` and
//! `crate::workers`.

use std::time::Duration;

use serde::{Serialize, de::DeserializeOwned};
use sqlx::PgPool;

/// CBOR (exact floats, NaN included), as `eval_jobs` stores payloads and results.
fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, sqlx::Error> {
    let mut bytes = Vec::new();
    ciborium::into_writer(value, &mut bytes).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    Ok(bytes)
}

/// The value [`encode`] wrote.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, sqlx::Error> {
    ciborium::from_reader(bytes).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A job a worker took: its id, the attempt it holds (the fencing token) and its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenJob<P> {
    /// The row.
    pub id: i64,
    /// This attempt's number (1 for the first worker to take it): only the holder of the latest
    /// attempt may renew the lease or write the result.
    pub attempt: i32,
    /// What to do.
    pub payload: P,
}

/// Where a queued job stands, as the epoch loop sees it while waiting.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState<R> {
    /// Nobody holds it, or a worker holds it under a live lease.
    Open,
    /// Its last worker's lease ran out after `attempts` attempts: nobody is working on it. The
    /// next worker to look will take it, unless the attempts are used up.
    Abandoned {
        /// Attempts made so far.
        attempts: i32,
    },
    /// A worker finished it (the row is deleted as it is read: a result is read once).
    Done(R),
    /// The row is gone (cancelled or read by another caller).
    Missing,
}

/// Inserts a job for `uid`'s model `manifest_sha256`; returns its id.
pub async fn enqueue_job<P: Serialize>(
    pool: &PgPool,
    netuid: u16,
    uid: u16,
    manifest_sha256: &str,
    payload: &P,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO eval_jobs (netuid, uid, manifest_sha256, payload) VALUES ($1, $2, $3, $4) \
         RETURNING id",
    )
    .bind(i32::from(netuid))
    .bind(i32::from(uid))
    .bind(manifest_sha256)
    .bind(encode(payload)?)
    .fetch_one(pool)
    .await
}

/// Takes the oldest job nobody holds (queued, or its lease ran out) with fewer than
/// `max_attempts` attempts, under a lease of `lease` for `worker`. `None` when there is none.
/// Concurrent workers never take the same row (`FOR UPDATE SKIP LOCKED`).
pub async fn take_job<P: DeserializeOwned>(
    pool: &PgPool,
    worker: &str,
    lease: Duration,
    max_attempts: i32,
) -> Result<Option<TakenJob<P>>, sqlx::Error> {
    let row: Option<(i64, i32, Vec<u8>)> = sqlx::query_as(
        "UPDATE eval_jobs SET state = 'running', attempts = attempts + 1, worker = $1, \
             lease_until = now() + make_interval(secs => $2) \
         WHERE id = ( \
             SELECT id FROM eval_jobs \
             WHERE (state = 'queued' OR (state = 'running' AND lease_until < now())) \
               AND attempts < $3 \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, attempts, payload",
    )
    .bind(worker)
    .bind(lease.as_secs_f64())
    .bind(max_attempts)
    .fetch_optional(pool)
    .await?;
    row.map(|(id, attempt, payload)| {
        Ok(TakenJob {
            id,
            attempt,
            payload: decode(&payload)?,
        })
    })
    .transpose()
}

/// Extends the lease of `attempt` on job `id` to `lease` from now. False when the attempt is no
/// longer the job's (another worker took it after the lease ran out) or the job is gone
/// (cancelled): the caller should stop and drop its result.
pub async fn renew_job_lease(
    pool: &PgPool,
    id: i64,
    attempt: i32,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE eval_jobs SET lease_until = now() + make_interval(secs => $3) \
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(attempt)
    .bind(lease.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Puts job `id` back in the queue while `attempt` holds it (a worker stopping before it
/// finished): the next worker takes it at once, as its next attempt. False when the attempt no
/// longer holds it.
pub async fn release_job(pool: &PgPool, id: i64, attempt: i32) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE eval_jobs SET state = 'queued', worker = NULL, lease_until = NULL \
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(attempt)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Writes the result of `attempt` on job `id`. False (and nothing written) when the attempt is no
/// longer the job's or the job is gone: a result is recorded once, by the latest attempt.
pub async fn finish_job<R: Serialize>(
    pool: &PgPool,
    id: i64,
    attempt: i32,
    result: &R,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE eval_jobs SET state = 'done', result = $3, finished_at = now(), lease_until = NULL \
         WHERE id = $1 AND attempts = $2 AND state = 'running'",
    )
    .bind(id)
    .bind(attempt)
    .bind(encode(result)?)
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Where job `id` stands; a finished job's row is deleted as its result is returned.
pub async fn poll_job<R: DeserializeOwned>(
    pool: &PgPool,
    id: i64,
) -> Result<JobState<R>, sqlx::Error> {
    let done: Option<(Vec<u8>,)> = sqlx::query_as(
        "DELETE FROM eval_jobs WHERE id = $1 AND state = 'done' AND result IS NOT NULL \
         RETURNING result",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    if let Some((result,)) = done {
        return Ok(JobState::Done(decode(&result)?));
    }
    let row: Option<(String, i32, bool)> = sqlx::query_as(
        "SELECT state, attempts, coalesce(lease_until < now(), false) FROM eval_jobs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => JobState::Missing,
        Some((state, attempts, true)) if state == "running" => JobState::Abandoned { attempts },
        Some(_) => JobState::Open,
    })
}

/// Deletes job `id` (given up: its result, if one comes, is refused).
pub async fn cancel_job(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM eval_jobs WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Deletes every job of `netuid` (a validator starting: jobs of an earlier run are nobody's).
/// Returns how many there were.
pub async fn clear_jobs(pool: &PgPool, netuid: u16) -> Result<u64, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM eval_jobs WHERE netuid = $1")
        .bind(i32::from(netuid))
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}
