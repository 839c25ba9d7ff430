//! Evaluation beyond one machine: `validator worker` processes take the model track's jobs from
//! the validator's own Postgres and write the results back (issue 16, item 4).
//!
//! Postgres is the queue (`eval_jobs`, SQL in [`crate::db`]); there is no other protocol between
//! the epoch loop and its workers:
//!
//! 1. The loop ([`Queue::evaluate`]) inserts one [`QueuedEval`] per model it fetched and checked:
//!    where the artifact comes from (the miner's URL, its hotkey, the commitment's binding and the
//!    manifest hash the loop verified), the competition, the samples already tokenized for that
//!    model, and the spot-check answer to verify.
//! 2. A worker ([`Worker::run_until`]) takes the oldest open job (`FOR UPDATE SKIP LOCKED`, so two
//!    workers never take the same one), finds the artifact in its cache by manifest hash (shared
//!    with the loop when the cache directory is) or fetches it from the miner with the same
//!    checks as the loop (the commitment's binding, every file's hash), and runs the same
//!    [`EvalJob`] the loop would run on its own device. It renews its lease every third of it.
//! 3. The worker writes a [`WorkerResult`] only while its attempt is the job's latest: a worker
//!    that was killed or stalled past its lease loses the job to the next worker, and its late
//!    result is refused. The loop reads each result once and deletes the row, so a result is
//!    counted once.
//! 4. A job is given up (`internal_error`: not the miner's doing) when [`MAX_ATTEMPTS`] workers
//!    died on it, or when the queue made no progress for [`QueueSettings::timeout`]: no job of
//!    this loop finished since the later of this job's queueing and the last result. A long queue
//!    that few workers work through steadily never times out (its jobs wait their turn); dead or
//!    hung workers do, and so does one model that takes longer than the timeout.
//!
//! Jobs and results travel as CBOR, whose floats are exact (NaN included): a worker's losses and
//! log-probabilities are bit-identical to the loop's own evaluation of the same model on the same
//! kind of device, so the scores do not depend on who evaluated (tested in
//! `validator/tests/it/workers.rs`).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use subnet_common::btauth::SignedClient;
use subnet_common::keys::AccountId;
use subnet_model::backend::Selected;
use subnet_model::competition::Competition;
use subnet_model::config::LlamaConfig;
use subnet_model::eval::{FittedEval, Sample};
use subnet_model::follow::Followed;
use subnet_model::generate::{GreedyAnswer, GreedyVerdict};
use subnet_model::similarity::WeightSketch;
use subnet_model::tasks::open::OpenTask;

use crate::artifacts::{self, CachedArtifact, FetchError};
use crate::db::{self, JobState, TakenJob};
use crate::tracks::model::compute::{EvalJob, EvalOutput, JobTimings};
use crate::tracks::model::outcome::Outcome;

/// Workers that may die on one job before the loop gives it up (a model that crashes every
/// worker that loads it must not hold the epoch).
pub const MAX_ATTEMPTS: i32 = 3;

/// Where a worker gets a job's artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSource {
    /// The miner's axon, e.g. `http://10.0.0.1:8091/`.
    pub base_url: String,
    /// The miner's hotkey (SS58): the btauth receiver, and what the binding binds.
    pub hotkey: String,
    /// The commitment's binding of the manifest hash to the hotkey.
    pub binding: String,
    /// The manifest hash the loop fetched and verified.
    pub manifest_sha256: String,
}

/// One model's evaluation, as queued for a worker: an [`EvalJob`] with the artifact's source in
/// place of its local directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEval {
    /// Where the artifact comes from.
    pub source: ArtifactSource,
    /// The rules the artifact is loaded under.
    pub competition: Competition,
    /// The samples, tokenized for this model.
    pub samples: Vec<Sample>,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// Only verify `spot` (the loop has this model's evaluation cached).
    pub skip_eval: bool,
    /// A spot-check answer to verify.
    pub spot: Option<GreedyAnswer>,
    /// The epoch's open instructions to answer, when the competition has them.
    #[serde(default)]
    pub open: Option<Vec<OpenTask>>,
}

/// What a worker wrote back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerResult {
    /// The job ran.
    Evaluated(Box<WorkerOutput>),
    /// The model (or its miner) failed: the outcome the loop records, and why.
    Failed {
        /// The recorded outcome.
        outcome: Outcome,
        /// Why.
        reason: String,
    },
}

/// A job's [`EvalOutput`] as it travels, and who computed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerOutput {
    /// The model's config.
    pub config: LlamaConfig,
    /// The fitted evaluation (`None` when the job only verified a spot-check).
    pub fitted: Option<FittedEval>,
    /// The spot-check verdict.
    pub spot: Option<GreedyVerdict>,
    /// The answers to the open instructions.
    #[serde(default)]
    pub following: Option<Vec<Followed>>,
    /// The weights' sketch.
    pub sketch: Option<WeightSketch>,
    /// Where the worker's time went.
    pub timings: JobTimings,
    /// The worker's name.
    pub worker: String,
}

impl WorkerResult {
    fn evaluated(output: EvalOutput, worker: &str) -> Self {
        Self::Evaluated(Box::new(WorkerOutput {
            config: output.config,
            fitted: output.fitted.map(Arc::unwrap_or_clone),
            spot: output.spot,
            following: output.following,
            sketch: output.sketch.map(Arc::unwrap_or_clone),
            timings: output.timings,
            worker: worker.to_string(),
        }))
    }

    fn into_output(self) -> Result<EvalOutput, (Outcome, String)> {
        match self {
            Self::Evaluated(output) => {
                let WorkerOutput {
                    config,
                    fitted,
                    spot,
                    following,
                    sketch,
                    timings,
                    worker,
                } = *output;
                tracing::debug!(%worker, "evaluated by a worker");
                Ok(EvalOutput {
                    config,
                    fitted: fitted.map(Arc::new),
                    spot,
                    following,
                    sketch: sketch.map(Arc::new),
                    timings,
                })
            }
            Self::Failed { outcome, reason } => Err((outcome, reason)),
        }
    }
}

/// How the loop uses the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSettings {
    /// How long the loop waits without any of its jobs finishing before it gives up the jobs
    /// still open.
    pub timeout: Duration,
    /// How often the loop looks at a job it waits for.
    pub poll: Duration,
    /// Jobs queued at once.
    pub parallelism: usize,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1800),
            poll: Duration::from_millis(250),
            parallelism: 64,
        }
    }
}

/// The epoch loop's side of the queue.
#[derive(Debug, Clone)]
pub struct Queue {
    pool: PgPool,
    netuid: u16,
    settings: QueueSettings,
    /// When a job of this queue last came back.
    last_result: Arc<std::sync::Mutex<Instant>>,
}

impl Queue {
    /// The queue of `netuid` in `pool`'s database. Jobs left by an earlier run of the loop are
    /// deleted: nobody waits for them.
    pub async fn open(
        pool: PgPool,
        netuid: u16,
        settings: QueueSettings,
    ) -> Result<Self, sqlx::Error> {
        let stale = db::clear_jobs(&pool, netuid).await?;
        if stale > 0 {
            tracing::info!(jobs = stale, "deleted evaluation jobs of an earlier run");
        }
        Ok(Self {
            pool,
            netuid,
            settings,
            last_result: Arc::new(std::sync::Mutex::new(Instant::now())),
        })
    }

    /// When the waiting of a job queued at `queued` runs out: the timeout after the later of
    /// its queueing and the queue's last result.
    fn stalled_since(&self, queued: Instant) -> Instant {
        let last = *self
            .last_result
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        queued.max(last)
    }

    /// Jobs the model track keeps queued at once.
    pub fn parallelism(&self) -> usize {
        self.settings.parallelism.max(1)
    }

    /// Queues `job` for `uid` and waits for a worker's result: what [`EvalJob`] would have
    /// returned here, or the outcome to record. A job is given up as `internal_error` when
    /// [`MAX_ATTEMPTS`] workers died on it or the queue made no progress for the timeout (see
    /// the module docs).
    pub async fn evaluate(
        &self,
        uid: u16,
        job: QueuedEval,
    ) -> Result<EvalOutput, (Outcome, String)> {
        let internal = |reason: String| (Outcome::InternalError, reason);
        let id = db::enqueue_job(
            &self.pool,
            self.netuid,
            uid,
            &job.source.manifest_sha256,
            &job,
        )
        .await
        .map_err(|error| internal(format!("queueing the evaluation: {error}")))?;
        drop(job);
        let open = crate::metrics::OpenEvalJob::open();
        let started = Instant::now();
        loop {
            tokio::time::sleep(self.settings.poll).await;
            let state = db::poll_job::<WorkerResult>(&self.pool, id).await;
            let give_up = match state {
                Ok(JobState::Done(result)) => {
                    *self
                        .last_result
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                    let output = result.into_output();
                    open.close(if output.is_ok() { "done" } else { "failed" });
                    return output;
                }
                Ok(JobState::Missing) => {
                    open.close("given_up");
                    return Err(internal(format!(
                        "evaluation job {id} disappeared from the queue"
                    )));
                }
                Ok(JobState::Abandoned { attempts }) if attempts >= MAX_ATTEMPTS => Some(format!(
                    "{attempts} workers stopped while evaluating this model (job {id})"
                )),
                Ok(JobState::Open | JobState::Abandoned { .. }) => None,
                Err(error) => {
                    tracing::warn!(job = id, %error, "cannot read the evaluation queue; retrying");
                    None
                }
            };
            let give_up = give_up.or_else(|| {
                (self.stalled_since(started).elapsed() >= self.settings.timeout).then(|| {
                    format!(
                        "no `validator worker` finished any evaluation for {:?} (job {id}); \
                         are workers running against this database?",
                        self.settings.timeout
                    )
                })
            });
            if let Some(reason) = give_up {
                open.close("given_up");
                tracing::warn!(job = id, uid, %reason, "evaluation job given up");
                if let Err(error) = db::cancel_job(&self.pool, id).await {
                    tracing::warn!(job = id, %error, "cannot delete the given-up job");
                }
                return Err(internal(reason));
            }
        }
    }
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Its name in the queue and in logs (e.g. `host-pid`).
    pub name: String,
    /// How long a job stays this worker's without a renewal; renewed every third of it.
    pub lease: Duration,
    /// How long to wait before looking again when the queue is empty.
    pub idle_poll: Duration,
    /// Where artifacts are cached by manifest hash (the loop's `--cache.dir` when it is shared).
    pub cache_dir: PathBuf,
}

/// A `validator worker`: takes jobs from the queue until told to stop.
#[derive(Debug)]
pub struct Worker {
    pool: PgPool,
    client: SignedClient,
    device: Selected,
    settings: WorkerSettings,
}

impl Worker {
    /// A worker on `pool`'s queue that fetches artifacts with `client` (signed with the
    /// validator's hotkey, as the loop's own requests are) and evaluates on `device`.
    pub fn new(
        pool: PgPool,
        client: SignedClient,
        device: Selected,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            pool,
            client,
            device,
            settings,
        }
    }

    /// Takes and runs jobs until `shutdown` completes; a job in progress then goes back to the
    /// queue at once for another worker (a worker that dies instead loses it when its lease
    /// runs out). Returns the jobs finished.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> usize {
        tracing::info!(
            worker = %self.settings.name,
            device = %self.device.name(),
            lease_secs = self.settings.lease.as_secs_f64(),
            "worker started; waiting for evaluation jobs"
        );
        let mut finished = 0;
        let mut holding = None;
        let work = async {
            loop {
                let taken = db::take_job::<QueuedEval>(
                    &self.pool,
                    &self.settings.name,
                    self.settings.lease,
                    MAX_ATTEMPTS,
                )
                .await;
                match taken {
                    Ok(Some(job)) => {
                        holding = Some((job.id, job.attempt));
                        if self.work(job).await {
                            finished += 1;
                        }
                        holding = None;
                    }
                    Ok(None) => tokio::time::sleep(self.settings.idle_poll).await,
                    Err(error) => {
                        tracing::warn!(%error, "cannot read the evaluation queue; retrying");
                        tokio::time::sleep(self.settings.idle_poll.max(Duration::from_secs(1)))
                            .await;
                    }
                }
            }
        };
        tokio::select! {
            () = work => {}
            () = shutdown => tracing::info!(finished, "worker stopping"),
        }
        if let Some((id, attempt)) = holding {
            match db::release_job(&self.pool, id, attempt).await {
                Ok(true) => {
                    tracing::info!(job = id, "job put back in the queue for another worker")
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(job = id, %error, "cannot put the job back; it returns to the queue when the lease runs out");
                }
            }
        }
        finished
    }

    /// Runs one job under its lease and writes its result; true when the result was recorded.
    async fn work(&self, job: TakenJob<QueuedEval>) -> bool {
        let TakenJob {
            id,
            attempt,
            payload,
        } = job;
        let span =
            tracing::info_span!("job", id, attempt, manifest = %payload.source.manifest_sha256);
        tracing::info!(parent: &span, "took an evaluation job");
        let started = Instant::now();
        let renewing = async {
            let every = self.settings.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match db::renew_job_lease(&self.pool, id, attempt, self.settings.lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => {
                        tracing::warn!(parent: &span, %error, "cannot renew the job's lease");
                    }
                }
            }
        };
        let result = tokio::select! {
            result = self.evaluate(payload) => result,
            () = renewing => {
                tracing::warn!(parent: &span, "the job was given up or taken by another worker; stopping it");
                return false;
            }
        };
        match db::finish_job(&self.pool, id, attempt, &result).await {
            Ok(true) => {
                tracing::info!(
                    parent: &span,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    failed = matches!(result, WorkerResult::Failed { .. }),
                    "job done"
                );
                true
            }
            Ok(false) => {
                tracing::warn!(parent: &span, "the job was given up or taken by another worker; result dropped");
                false
            }
            Err(error) => {
                tracing::warn!(parent: &span, %error, "cannot write the job's result; it goes back to the queue when the lease runs out");
                false
            }
        }
    }

    /// Fetches (or finds) the artifact and runs the evaluation on this worker's device.
    async fn evaluate(&self, job: QueuedEval) -> WorkerResult {
        let artifact = match self.artifact(&job).await {
            Ok(artifact) => artifact,
            Err(error) => {
                return WorkerResult::Failed {
                    outcome: Outcome::of_fetch(&error),
                    reason: error.to_string(),
                };
            }
        };
        let eval = EvalJob {
            dir: artifact.dir,
            competition: Arc::new(job.competition),
            samples: Arc::new(job.samples),
            batch_size: job.batch_size,
            skip_eval: job.skip_eval,
            spot: job.spot,
            open: job.open.map(Arc::new),
        };
        let device = self.device.clone();
        match tokio::task::spawn_blocking(move || device.run(eval)).await {
            Ok(Ok(output)) => WorkerResult::evaluated(output, &self.settings.name),
            Ok(Err(error)) => WorkerResult::Failed {
                outcome: error.outcome(),
                reason: error.to_string(),
            },
            Err(join) => WorkerResult::Failed {
                outcome: Outcome::InternalError,
                reason: format!(
                    "the evaluation crashed on worker {}: {join}",
                    self.settings.name
                ),
            },
        }
    }

    /// The job's artifact: from the cache by manifest hash, else from the miner with every check
    /// [`artifacts::fetch_artifact`] makes (the served manifest must be the verified one).
    async fn artifact(&self, job: &QueuedEval) -> Result<CachedArtifact, FetchError> {
        let source = &job.source;
        if let Some(cached) =
            artifacts::cached_artifact(&self.settings.cache_dir, &source.manifest_sha256).await?
        {
            return Ok(cached);
        }
        let base_url = reqwest::Url::parse(&source.base_url)
            .map_err(|e| FetchError::Malformed(format!("miner URL {:?}: {e}", source.base_url)))?;
        let hotkey: AccountId = source
            .hotkey
            .parse()
            .map_err(|e| FetchError::Malformed(format!("miner hotkey {:?}: {e}", source.hotkey)))?;
        let limits =
            artifacts::Limits::default().for_artifacts_of(job.competition.max_artifact_bytes);
        let artifact = artifacts::fetch_artifact(
            &self.client,
            &base_url,
            &hotkey,
            &source.binding,
            &limits,
            &self.settings.cache_dir,
        )
        .await?;
        if artifact.manifest.manifest_sha256 != source.manifest_sha256 {
            return Err(FetchError::Malformed(format!(
                "the miner now serves manifest {}, the validator evaluated {}",
                artifact.manifest.manifest_sha256, source.manifest_sha256
            )));
        }
        Ok(artifact)
    }
}

/// This machine's name, for a worker's default name.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "worker".to_string())
}

/// `validator worker`: connects to the loop's database, loads the hotkey, picks the device and
/// takes jobs until Ctrl-C or SIGTERM.
pub async fn run(args: &crate::cli::WorkerArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let hotkey = args
        .wallet
        .load_hotkey()
        .context("while loading the hotkey")?;
    let pool = db::connect(&args.db_url)
        .await
        .context("while connecting to Postgres (--db.url)")?;
    let device = args.models.open()?;
    let http = artifacts::miner_http_client().context("while building the HTTP client")?;
    let settings = WorkerSettings {
        name: args
            .worker_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", host_name(), std::process::id())),
        lease: Duration::from_secs(args.lease_secs),
        idle_poll: Duration::from_millis(500),
        cache_dir: args.models.cache_dir.clone(),
    };
    let worker = Worker::new(pool, SignedClient::new(http, hotkey), device, settings);
    worker
        .run_until(subnet_common::serve::shutdown_signal())
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        let mut bytes = Vec::new();
        ciborium::into_writer(value, &mut bytes).unwrap();
        ciborium::from_reader(bytes.as_slice()).unwrap()
    }

    #[test]
    fn a_job_and_its_result_travel_unchanged_bit_for_bit() {
        let competition =
            Competition::from_toml(crate::eval_cmd::DEFAULT_COMPETITION_TOML).unwrap();
        let job = QueuedEval {
            source: ArtifactSource {
                base_url: "http://10.0.0.1:8091/".into(),
                hotkey: "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".into(),
                binding: "ab".repeat(32),
                manifest_sha256: "cd".repeat(32),
            },
            competition,
            samples: vec![Sample {
                input_ids: vec![1, 2, 3, 70_000],
                completion_start: 2,
            }],
            batch_size: 16,
            skip_eval: false,
            spot: Some(GreedyAnswer {
                prompt: vec![5, 6],
                max_new_tokens: 4,
                output: vec![7],
            }),
            open: Some(subnet_model::tasks::open::generate([2; 32], 3)),
        };
        assert_eq!(round_trip(&job), job);

        // Floats JSON cannot carry (NaN, infinities) or that decimal text may round: exact.
        let odd_f32 = [
            f32::NAN,
            f32::NEG_INFINITY,
            -0.0,
            1e-45,
            0.1,
            f32::MAX,
            1.0 / 3.0,
        ];
        let odd_f64 = [f64::NAN, f64::INFINITY, -0.0, 5e-324, 0.1 + 0.2, 1.0 / 3.0];
        let fitted = FittedEval {
            losses: odd_f64
                .iter()
                .map(|&loss| subnet_model::eval::SampleLoss { loss, tokens: 3 })
                .collect(),
            inverse_temperature: 2f64.powf(3.0 / 8.0),
            token_log_probs: vec![odd_f32.to_vec()],
            unfitted: Vec::new(),
        };
        let following = Some(vec![Followed {
            answer: "- one\n- \"two\" é".into(),
            finished: false,
            tokens: 9,
            score: 2.0 / 3.0,
        }]);
        let output = EvalOutput {
            config: LlamaConfig::tiny(),
            fitted: Some(Arc::new(fitted.clone())),
            spot: Some(GreedyVerdict::Mismatch("token 3".into())),
            following: following.clone(),
            sketch: None,
            timings: JobTimings::default(),
        };
        let back = round_trip(&WorkerResult::evaluated(output, "w1"))
            .into_output()
            .unwrap();
        let back_fitted = back.fitted.unwrap();
        let bits64 = |f: &FittedEval| {
            f.losses
                .iter()
                .map(|l| l.loss.to_bits())
                .collect::<Vec<_>>()
        };
        let bits32 = |f: &FittedEval| {
            f.token_log_probs[0]
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits64(&back_fitted), bits64(&fitted));
        assert_eq!(bits32(&back_fitted), bits32(&fitted));
        assert_eq!(
            back_fitted.inverse_temperature.to_bits(),
            fitted.inverse_temperature.to_bits()
        );
        assert_eq!(back.config, LlamaConfig::tiny());
        assert_eq!(back.spot, Some(GreedyVerdict::Mismatch("token 3".into())));
        assert_eq!(back.following, following);

        let failed = WorkerResult::Failed {
            outcome: Outcome::TooLarge,
            reason: "num_hidden_layers".into(),
        };
        assert_eq!(
            round_trip(&failed).into_output().unwrap_err(),
            (Outcome::TooLarge, "num_hidden_layers".to_string())
        );
    }
}
