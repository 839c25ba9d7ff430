//! The model track: each epoch, fetch every eligible miner's committed model, check it, evaluate
//! it on the epoch's samples, spot-check what miners serve, detect copies, and score.
//!
//! An epoch loop builds one [`ModelTrack`] at start-up and calls [`ModelTrack::score_epoch`]
//! once per epoch with the chain data of that epoch ([`EpochInput`]); the returned
//! [`ModelTrackResult`] holds everything needed to store and later recompute the scores.
//!
//! | module | what | IO |
//! |---|---|---|
//! | [`plan`] | which uids are candidates (commitment, competition, `block_delay`, axon) | none |
//! | [`base`] | the competition's pinned base model, checked on the validator's disk | disk |
//! | [`outcome`] | outcome codes, per-miner results, scoring through `score_models` | none |
//! | [`compute`] | the device job: checked load, fitted evaluation, weight sketch, greedy verification | disk, device |
//! | [`spot`] | which miners are spot-checked, and asking their `/v1/generate` | network |
//!
//! Per epoch: [`plan::plan`] → fetch artifacts and ask spot-checks in parallel (at most
//! [`TrackSettings::fetch_concurrency`] miners at once) while the device evaluates, one model
//! at a time as each arrives (the CPU/GPU is the bottleneck; results are cached in memory by
//! `(manifest_sha256, seed, competition file)`), the competition's base model first when it pins
//! one → [`similarity::find_copies`] (by function: the
//! divergence of the models' token log-probabilities; by weights: cosines, pairs proven apart by
//! their [`similarity::WeightSketch`]es not read) → [`outcome::assemble`].
//!
//! [`similarity::find_copies`]: subnet_model::similarity::find_copies
//! [`similarity::WeightSketch`]: subnet_model::similarity::WeightSketch

pub mod base;
pub mod compute;
pub mod outcome;
pub mod plan;
pub mod spot;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use subnet_common::btauth::SignedClient;
use subnet_common::chain::types::{Commitment, Metagraph};
use subnet_model::backend::Selected;
use subnet_model::competition::{Competition, CompetitionFile, SampleSetError};
use subnet_model::config::{CONFIG_FILE, LlamaConfig};
use subnet_model::data::Dataset;
use subnet_model::eval::{FittedEval, Sample};
use subnet_model::follow::{Followed, judged_scores};
use subnet_model::io::WEIGHTS_FILE;
use subnet_model::score::{ScoreError, ScoreParams};
use subnet_model::tasks::open::OpenTask;
use subnet_model::tokenizer::{TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, Tokenizer};
use tracing::Instrument;

use crate::artifacts::{self, CachedArtifact};
use base::{BaseError, BaseModel};
use compute::{EvalJob, JudgeJob};
use outcome::{Committed, MinerEval, MinerResult, Outcome, SpotCheck, SpotStatus, Stage};
use plan::{Candidate, Planned};
use spot::{Asked, SpotSettings};
use subnet_model::generate::{GreedyAnswer, GreedyVerdict};
use subnet_model::similarity::{CopyCandidate, CopyEvidence, CopyRules, WeightSketch};

/// How the track runs; the rules themselves come from the competition file.
#[derive(Debug, Clone)]
pub struct TrackSettings {
    /// Download limits; the total and per-file sizes are capped at the competition's
    /// `max_artifact_bytes` each epoch.
    pub fetch: artifacts::Limits,
    /// Miners fetched (and spot-checked) at once.
    pub fetch_concurrency: usize,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// Spot-checks of `/v1/generate`.
    pub spot: SpotSettings,
    /// The epoch's cut-off for the network half (fetch and spot-check), from the start of the
    /// track: a miner not done by then is recorded as `timeout` and the rest of the epoch goes
    /// on without it, so no miner can hold the epoch (and the weight commit) past it.
    pub fetch_budget: Duration,
}

impl Default for TrackSettings {
    fn default() -> Self {
        Self {
            fetch: artifacts::Limits::default(),
            fetch_concurrency: 8,
            batch_size: 16,
            spot: SpotSettings::default(),
            fetch_budget: Duration::from_secs(300),
        }
    }
}

/// One epoch's chain data, as the epoch loop read it.
#[derive(Debug, Clone, Copy)]
pub struct EpochInput<'a> {
    /// The subnet.
    pub netuid: u16,
    /// `eval_seed(block_hash(seed_block), netuid)`.
    pub seed: [u8; 32],
    /// The block whose hash seeded the epoch; commitments must be `block_delay` older.
    pub seed_block: u64,
    /// The block the metagraph was read at (recorded; nothing in the scoring depends on it).
    pub current_block: u64,
    /// Uids, hotkeys and axons.
    pub metagraph: &'a Metagraph,
    /// Every commitment of the subnet.
    pub commitments: &'a [Commitment],
    /// The competition's rules and the hash of its file.
    pub competition: &'a CompetitionFile,
    /// The competition's pinned dataset, when it names one.
    pub dataset: Option<&'a Dataset>,
}

/// The model track's result for one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelTrackResult {
    /// The subnet.
    pub netuid: u16,
    /// The eval seed, hex.
    pub seed: String,
    /// The block that seeded it.
    pub seed_block: u64,
    /// The block the scores were computed for.
    pub current_block: u64,
    /// The competition id.
    pub competition: String,
    /// sha256 of the competition file, hex.
    pub competition_sha256: String,
    /// Samples each model was evaluated on.
    pub samples: usize,
    /// One entry per uid of the metagraph, in uid order.
    pub miners: Vec<MinerResult>,
    /// The competition's base model on the same samples, when it pins one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseResult>,
}

/// The base model's evaluation in one epoch: the losses every entry had to beat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseResult {
    /// Its manifest hash (the competition's pin).
    pub manifest_sha256: String,
    /// Per-sample losses at its fitted temperature, in sample order.
    pub losses: Vec<f64>,
    /// Mean of `losses`.
    pub mean_loss: f64,
}

/// Why an epoch could not be scored at all (a single miner's failure is never one of these).
#[derive(Debug, thiserror::Error)]
pub enum ModelTrackError {
    /// The competition's samples cannot be built (e.g. its dataset was not loaded).
    #[error("building the epoch's samples: {0}")]
    Samples(#[from] SampleSetError),
    /// The scoring math refused its input (a bug, not a miner's doing).
    #[error("scoring: {0}")]
    Score(#[from] ScoreError),
    /// The competition pins a base model this track does not have (or has another of).
    #[error(transparent)]
    Base(#[from] BaseError),
    /// The base model could not be evaluated, so no entry can be compared with it.
    #[error("evaluating the base model: {0}")]
    BaseEval(String),
}

/// Cached evaluations of one seed under one competition file, by manifest hash.
#[derive(Debug, Default)]
struct EvalCache {
    /// The seed and competition-file hash the entries belong to; another pair empties the cache.
    key: ([u8; 32], [u8; 32]),
    /// Per-sample losses and token counts, or the deterministic reason the model failed.
    entries: HashMap<String, Result<CachedEval, (Outcome, String)>>,
}

/// A cached evaluation.
#[derive(Debug, Clone)]
struct CachedEval {
    /// Per-sample fitted losses, token counts and per-token log-probabilities.
    fitted: Arc<FittedEval>,
    /// The model's sketch, so that near-copy detection needs no reload.
    sketch: Option<Arc<WeightSketch>>,
    /// Per open instruction, the share of its constraints the model's answer kept.
    following: Option<Vec<f64>>,
}

/// Where one epoch of the model track spent its wall time (see [`ModelTrack::score_epoch_timed`]).
/// `plan`, then fetching and evaluating together (`device + waiting`), then `copies` and
/// `scoring`; `load`, `eval` and `spot` are parts of `device`; `fetch` overlaps the device work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackTimings {
    /// Building the byte-level samples and the plan.
    pub plan: Duration,
    /// From the first request until every candidate was fetched (downloads, tokenizing,
    /// spot-check requests, in parallel); the device evaluates what has arrived meanwhile.
    pub fetch: Duration,
    /// Time the device was busy with candidates: their jobs and bookkeeping. With workers the
    /// jobs overlap, and this is their summed wall time (queueing included).
    pub device: Duration,
    /// Time the device had nothing to do, waiting for the next download.
    pub waiting: Duration,
    /// Part of `device`: loading and checking artifacts.
    pub load: Duration,
    /// Part of `device`: the forward passes over the epoch's samples.
    pub eval: Duration,
    /// Part of `device`: verifying spot-check answers.
    pub spot: Duration,
    /// Part of `device`: answering the open instructions.
    pub follow: Duration,
    /// Near-copy detection.
    pub copies: Duration,
    /// Turning the evaluations into scores.
    pub scoring: Duration,
    /// Models evaluated (not served from the evaluation cache).
    pub evaluated: usize,
}

/// What the device half produced for one candidate.
struct Evaluated {
    stage: Stage,
    /// Completion tokens per sample, beside the stage's losses (empty when not evaluated).
    tokens: Vec<usize>,
    /// What near-copy detection compares, when the model was evaluated.
    copy: Option<CopyCandidate>,
    /// The job's device time, when the device ran.
    work: Option<DeviceWork>,
}

/// One job's device time, and whether it evaluated (not only verified a spot-check).
#[derive(Debug, Clone, Copy)]
struct DeviceWork {
    timings: compute::JobTimings,
    evaluated: bool,
}

/// One arrived candidate, through the device half.
struct Arrived {
    uid: u16,
    /// The manifest its commitment binds, once the artifact was fetched.
    manifest_sha256: Option<String>,
    evaluated: Evaluated,
    /// Wall time of its device half.
    busy: Duration,
}

impl TrackTimings {
    /// Adds one job's device time.
    fn add_job(&mut self, work: Option<DeviceWork>) {
        if let Some(DeviceWork { timings, evaluated }) = work {
            self.load += timings.load;
            self.eval += timings.eval;
            self.spot += timings.spot;
            self.follow += timings.follow;
            self.evaluated += usize::from(evaluated);
        }
    }
}

/// The validator's model track. Build once, call [`ModelTrack::score_epoch`] each epoch.
#[derive(Debug)]
pub struct ModelTrack {
    /// Signs requests to miners with the validator's hotkey.
    client: SignedClient,
    /// Where artifacts are cached by manifest hash.
    cache_dir: PathBuf,
    /// The evaluation device.
    device: Selected,
    /// Limits, concurrency, thresholds.
    settings: TrackSettings,
    /// Evaluations of the current seed.
    evals: Mutex<EvalCache>,
    /// The competition's base model, when it pins one.
    base: Option<BaseModel>,
    /// Where candidates are evaluated when not on `device`: `validator worker`s through the
    /// database (the base model stays on `device`).
    queue: Option<crate::workers::Queue>,
}

/// What the parallel phase produced for one candidate.
struct Fetched {
    artifact: CachedArtifact,
    samples: Arc<Vec<Sample>>,
    spot: Option<(Vec<u32>, Asked)>,
}

/// The per-epoch values every candidate's work shares.
struct EpochContext {
    seed: [u8; 32],
    /// `(seed, competition file sha256)`: what cached evaluations are valid for.
    cache_key: ([u8; 32], [u8; 32]),
    competition: Arc<Competition>,
    dataset: Option<Arc<Dataset>>,
    /// The samples of a model without `tokenizer.json` (bytes as tokens). `None` in a chat
    /// competition: a conversation needs the model's chat template, so every model brings its
    /// tokenizer and is given samples of its own.
    byte_samples: Option<Arc<Vec<Sample>>>,
    limits: artifacts::Limits,
    /// Drawn fresh for the epoch and never published: picks the spot-checked miners and their
    /// prompts.
    spot_secret: [u8; 32],
    spot_uids: std::collections::BTreeSet<u16>,
    /// The epoch's open instructions, when the competition has them (`[open]`).
    open_tasks: Option<Arc<Vec<OpenTask>>>,
    /// The judge's base once the first judge job loaded it; freed with the epoch.
    judge_base: Arc<compute::LoadedBase>,
}

impl ModelTrack {
    /// A track that signs with `client`, caches artifacts under `cache_dir` and evaluates on
    /// `device`.
    pub fn new(
        client: SignedClient,
        cache_dir: PathBuf,
        device: Selected,
        settings: TrackSettings,
    ) -> Self {
        Self {
            client,
            cache_dir,
            device,
            settings,
            evals: Mutex::new(EvalCache::default()),
            base: None,
            queue: None,
        }
    }

    /// The track with candidates evaluated by `validator worker` processes through `queue`
    /// instead of on this process's device (see [`crate::workers`]).
    pub fn with_queue(mut self, queue: crate::workers::Queue) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The track with the competition's base model (from [`BaseModel::for_competition`]),
    /// evaluated each epoch on the entries' samples; every entry must beat it to score.
    pub fn with_base(mut self, base: Option<BaseModel>) -> Self {
        self.base = base;
        self
    }

    /// Scores one epoch. Never fails because of a miner: each miner's problems are recorded in
    /// its [`MinerResult`].
    pub async fn score_epoch(
        &self,
        input: &EpochInput<'_>,
    ) -> Result<ModelTrackResult, ModelTrackError> {
        Ok(self.score_epoch_timed(input).await?.0)
    }

    /// [`ModelTrack::score_epoch`], with where its wall time went.
    pub async fn score_epoch_timed(
        &self,
        input: &EpochInput<'_>,
    ) -> Result<(ModelTrackResult, TrackTimings), ModelTrackError> {
        let mut timings = TrackTimings::default();
        let started = Instant::now();
        let competition = &input.competition.competition;
        let base = match (&competition.base, &self.base) {
            (None, _) => None,
            (Some(pin), None) => {
                return Err(BaseError::Missing {
                    competition: competition.id.clone(),
                    pinned: pin.manifest_sha256.clone(),
                }
                .into());
            }
            (Some(pin), Some(base)) if base.manifest_sha256() != pin.manifest_sha256 => {
                return Err(BaseError::Mismatch {
                    dir: base.dir().to_path_buf(),
                    competition: competition.id.clone(),
                    actual: base.manifest_sha256().to_string(),
                    pinned: pin.manifest_sha256.clone(),
                }
                .into());
            }
            (Some(_), Some(base)) => Some(base),
        };
        let byte_samples = if competition.eval.chat {
            competition.required_dataset(input.dataset)?;
            None
        } else {
            Some(competition.eval_samples(input.seed, &Tokenizer::bytes(), input.dataset)?)
        };
        let planned = plan::plan(
            input.metagraph,
            input.commitments,
            &competition.id,
            input.seed_block,
            competition.eval.block_delay,
        );
        let candidates: Vec<&Candidate> = planned
            .iter()
            .filter_map(|p| match p {
                Planned::Candidate(c) => Some(c),
                Planned::Skipped { .. } => None,
            })
            .collect();
        let uids: Vec<u16> = candidates.iter().map(|c| c.uid).collect();
        let limits = self
            .settings
            .fetch
            .clone()
            .for_artifacts_of(competition.max_artifact_bytes);
        let spot_secret = crate::tracks::labels::fresh_secret();
        let context = EpochContext {
            seed: input.seed,
            cache_key: (input.seed, input.competition.sha256),
            competition: Arc::new(competition.clone()),
            dataset: input.dataset.map(|d| Arc::new(d.clone())),
            byte_samples: byte_samples.map(Arc::new),
            limits,
            spot_secret,
            spot_uids: spot::select(spot_secret, &uids, self.settings.spot.per_epoch),
            open_tasks: competition
                .open
                .is_some()
                .then(|| Arc::new(competition.open_tasks(input.seed))),
            judge_base: Arc::default(),
        };
        tracing::info!(
            candidates = candidates.len(),
            uids = planned.len(),
            samples = competition.sample_count(),
            "model track: fetching artifacts"
        );
        timings.plan = started.elapsed();

        let context = &context;
        let budget = self.settings.fetch_budget;
        let cutoff = tokio::time::Instant::now() + budget;
        // The futures are built into a Vec first: a stream over a borrowing closure would make
        // this future not `Send` for every lifetime (rustc's "FnOnce is not general enough").
        let mut jobs = Vec::with_capacity(candidates.len());
        for &candidate in &candidates {
            let span =
                tracing::info_span!("miner", uid = candidate.uid, hotkey = %candidate.hotkey);
            jobs.push(
                async move {
                    let prepared =
                        tokio::time::timeout_at(cutoff, self.prepare(candidate, context))
                            .await
                            .unwrap_or_else(|_| {
                                Err((
                                    Outcome::Timeout,
                                    format!(
                                        "not fetched by the epoch's cut-off ({budget:?} after the \
                                     model track started)"
                                    ),
                                ))
                            });
                    (candidate, prepared)
                }
                .instrument(span),
            );
        }
        // Downloads and evaluation overlap: the device takes each candidate as soon as it is
        // fetched (in arrival order; results do not depend on it) while the rest download.
        let (sender, mut arrived) = tokio::sync::mpsc::unbounded_channel();
        let fetching = async move {
            let started = Instant::now();
            let mut fetches = futures::stream::iter(jobs)
                .buffer_unordered(self.settings.fetch_concurrency.max(1));
            while let Some(fetched) = fetches.next().await {
                if sender.send(fetched).is_err() {
                    break;
                }
            }
            started.elapsed()
        };
        let parallel = self.queue.as_ref().map(crate::workers::Queue::parallelism);
        let evaluating = async {
            let started = Instant::now();
            // Every entry is compared with the base.
            let base_job = async {
                let base = base?;
                let job_started = Instant::now();
                let evaluated = self
                    .evaluate_base(base, context)
                    .instrument(tracing::info_span!("base"))
                    .await;
                Some((evaluated, job_started.elapsed()))
            };
            // The device takes one candidate at a time; workers as many as are queued.
            let candidates_job = async {
                let mut done = Vec::new();
                let mut running = futures::stream::FuturesUnordered::new();
                let mut open = true;
                loop {
                    tokio::select! {
                        arrival = arrived.recv(), if open && running.len() < parallel.unwrap_or(1) => {
                            match arrival {
                                Some((candidate, fetched)) => {
                                    running.push(self.evaluate_arrived(candidate, fetched, context));
                                }
                                None => open = false,
                            }
                        }
                        Some(finished) = running.next(), if !running.is_empty() => done.push(finished),
                        else => break,
                    }
                }
                done
            };
            // On the device, the base first (one model in memory at a time); with workers, the
            // base here while the workers take the candidates.
            let (base_eval, done) = if parallel.is_some() {
                futures::join!(base_job, candidates_job)
            } else {
                let base_eval = base_job.await;
                (base_eval, candidates_job.await)
            };
            (base_eval, done, started.elapsed())
        };
        let (fetch_wall, (base_eval, done, wall)) = futures::join!(fetching, evaluating);
        let mut busy = Duration::ZERO;
        let base_fitted = base_eval.map(|(evaluated, elapsed)| {
            busy += elapsed;
            evaluated.map(|(fitted, work)| {
                timings.add_job(work);
                fitted
            })
        });
        let mut tokens: BTreeMap<u16, Vec<usize>> = BTreeMap::new();
        let mut stages: BTreeMap<u16, Stage> = BTreeMap::new();
        let mut manifests: BTreeMap<u16, String> = BTreeMap::new();
        let mut copy_candidates = Vec::new();
        for arrived in done {
            let Arrived {
                uid,
                manifest_sha256,
                evaluated,
                busy: job_busy,
            } = arrived;
            busy += job_busy;
            timings.add_job(evaluated.work);
            if let Some(manifest) = manifest_sha256 {
                manifests.insert(uid, manifest);
            }
            if !evaluated.tokens.is_empty() {
                tokens.insert(uid, evaluated.tokens);
            }
            copy_candidates.extend(evaluated.copy);
            stages.insert(uid, evaluated.stage);
        }
        let base = match (base, base_fitted) {
            (Some(base), Some(fitted)) => {
                let losses: Vec<f64> = fitted?.losses.iter().map(|l| l.loss).collect();
                Some(BaseResult {
                    manifest_sha256: base.manifest_sha256().to_string(),
                    mean_loss: outcome::mean(&losses).unwrap_or(f64::NAN),
                    losses,
                })
            }
            _ => None,
        };
        timings.fetch = fetch_wall;
        timings.device = busy;
        timings.waiting = wall.saturating_sub(busy);

        let mut evals = Vec::with_capacity(planned.len());
        for planned in &planned {
            let eval = match planned {
                Planned::Skipped {
                    uid,
                    hotkey,
                    commit_block,
                    outcome,
                    reason,
                } => MinerEval {
                    uid: *uid,
                    hotkey: hotkey.to_ss58(),
                    commitment: commit_block.map(|block| Committed {
                        block,
                        manifest_sha256: None,
                    }),
                    stage: Stage::Skipped {
                        outcome: *outcome,
                        reason: reason.clone(),
                    },
                },
                Planned::Candidate(candidate) => MinerEval {
                    uid: candidate.uid,
                    hotkey: candidate.hotkey.to_ss58(),
                    commitment: Some(Committed {
                        block: candidate.commit_block,
                        manifest_sha256: manifests.remove(&candidate.uid),
                    }),
                    stage: stages.remove(&candidate.uid).unwrap_or(Stage::Failed {
                        outcome: Outcome::InternalError,
                        reason: "the fetch did not complete".into(),
                    }),
                },
            };
            if let Stage::Failed { outcome, reason } | Stage::Skipped { outcome, reason } =
                &eval.stage
            {
                tracing::debug!(uid = eval.uid, %outcome, %reason, "not scored");
            }
            evals.push(eval);
        }

        let started = Instant::now();
        let rules = CopyRules {
            max_divergence: competition.copies.max_divergence,
            weight_cosine: competition
                .copies
                .compare_weights
                .then_some(competition.copies.weight_cosine),
            max_bytes: competition.max_artifact_bytes,
            dethrone: competition.dethrone,
        };
        let copies = tokio::task::spawn_blocking(move || {
            subnet_model::similarity::find_copies(&copy_candidates, &rules)
        })
        .await
        .unwrap_or_else(|error| {
            tracing::error!(%error, "near-copy detection crashed; no copies flagged this epoch");
            BTreeMap::new()
        });
        for eval in &mut evals {
            if let Stage::Evaluated { copy_of, .. } = &mut eval.stage
                && let Some(&(original, evidence)) = copies.get(&eval.uid)
            {
                match evidence {
                    CopyEvidence::Function { divergence } => {
                        tracing::info!(uid = eval.uid, original, divergence, "copy by function");
                    }
                    CopyEvidence::Weights { min_cosine } => {
                        tracing::info!(uid = eval.uid, original, min_cosine, "copy by weights");
                    }
                }
                *copy_of = Some(original);
            }
        }
        timings.copies = started.elapsed();

        let started = Instant::now();
        // Nothing here depends on the head this validator happened to read: every honest
        // validator scoring the epoch gets the same scores.
        let params = ScoreParams::new(competition);
        let base_losses = base.as_ref().map(|b| b.losses.as_slice());
        let mut miners = outcome::assemble(&evals, base_losses, &params)?;
        for miner in &mut miners {
            if let Some(counts) = tokens.remove(&miner.uid)
                && counts.len() == miner.losses.len()
            {
                miner.sample_tokens = counts;
            }
        }
        timings.scoring = started.elapsed();
        let result = ModelTrackResult {
            netuid: input.netuid,
            seed: hex::encode(input.seed),
            seed_block: input.seed_block,
            current_block: input.current_block,
            competition: competition.id.clone(),
            competition_sha256: input.competition.sha256_hex(),
            samples: competition.sample_count(),
            miners,
            base,
        };
        Ok((result, timings))
    }

    /// The network half for one candidate: fetch the artifact, tokenize the samples for it, ask
    /// its spot-check when selected.
    async fn prepare(
        &self,
        candidate: &Candidate,
        context: &EpochContext,
    ) -> Result<Fetched, (Outcome, String)> {
        let artifact = artifacts::fetch_artifact(
            &self.client,
            &candidate.base_url,
            &candidate.hotkey,
            &candidate.binding,
            &context.limits,
            &self.cache_dir,
        )
        .await
        .map_err(|error| (Outcome::of_fetch(&error), error.to_string()))?;
        if artifact.manifest.competition != context.competition.id {
            return Err((
                Outcome::Malformed,
                format!(
                    "the manifest names competition {:?}, the commitment {:?}",
                    artifact.manifest.competition, context.competition.id
                ),
            ));
        }
        let file_sha256 = |name: &str| {
            artifact
                .manifest
                .files
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.sha256.as_str())
        };
        context
            .competition
            .check_tokenizer(
                file_sha256(TOKENIZER_JSON),
                file_sha256(TOKENIZER_CONFIG_JSON),
            )
            .map_err(|reason| (Outcome::BadModel, reason))?;
        let samples = samples_for(
            &artifact.dir,
            artifact.file_path(TOKENIZER_JSON).is_some(),
            context,
        )
        .await?;
        let spot = match spot::prompt(context.spot_secret, candidate.uid, &samples) {
            Some(prompt) if context.spot_uids.contains(&candidate.uid) => {
                let asked = spot::ask(
                    &self.client,
                    &candidate.base_url,
                    &candidate.hotkey,
                    &prompt,
                    &self.settings.spot,
                )
                .await;
                Some((prompt, asked))
            }
            _ => None,
        };
        Ok(Fetched {
            artifact,
            samples,
            spot,
        })
    }

    /// Evaluates the competition's base model on this process's device on the epoch's samples
    /// (or takes the cached losses), with the job's device time when the device ran. A failure
    /// fails the epoch, so its device time is not kept.
    async fn evaluate_base(
        &self,
        base: &BaseModel,
        context: &EpochContext,
    ) -> Result<(Arc<FittedEval>, Option<DeviceWork>), ModelTrackError> {
        let manifest_sha256 = base.manifest_sha256();
        match self.cached(context.cache_key, manifest_sha256) {
            Some(Ok(hit)) => return Ok((hit.fitted, None)),
            Some(Err((_, reason))) => return Err(ModelTrackError::BaseEval(reason)),
            None => {}
        }
        let dir = base.dir().to_path_buf();
        let samples = samples_for(&dir, dir.join(TOKENIZER_JSON).is_file(), context)
            .await
            .map_err(|(_, reason)| ModelTrackError::BaseEval(reason))?;
        let job = EvalJob {
            dir,
            competition: context.competition.clone(),
            samples,
            batch_size: self.settings.batch_size,
            skip_eval: false,
            spot: None,
            open: None,
        };
        let device = self.device.clone();
        let started = Instant::now();
        let output = tokio::task::spawn_blocking(move || device.run(job))
            .await
            .map_err(|join| ModelTrackError::BaseEval(format!("the evaluation crashed: {join}")))?
            .map_err(|error| ModelTrackError::BaseEval(error.to_string()))?;
        crate::metrics::record_eval(started.elapsed());
        let work = DeviceWork {
            timings: output.timings,
            evaluated: true,
        };
        let fitted = output.fitted.ok_or_else(|| {
            ModelTrackError::BaseEval("the evaluation returned no losses".to_string())
        })?;
        tracing::info!(
            mean_loss = outcome::mean(&fitted.losses.iter().map(|l| l.loss).collect::<Vec<_>>()),
            "base model evaluated"
        );
        self.remember(
            context.cache_key,
            manifest_sha256,
            Ok(CachedEval {
                fitted: fitted.clone(),
                sketch: output.sketch,
                following: None,
            }),
        );
        Ok((fitted, Some(work)))
    }

    /// The device half for one arrived candidate (fetched, or failed to), timed.
    async fn evaluate_arrived(
        &self,
        candidate: &Candidate,
        fetched: Result<Fetched, (Outcome, String)>,
        context: &EpochContext,
    ) -> Arrived {
        let started = Instant::now();
        let (manifest_sha256, evaluated) = match fetched {
            Ok(fetched) => {
                let manifest = fetched.artifact.manifest.manifest_sha256.clone();
                let span = tracing::info_span!("miner", uid = candidate.uid);
                let evaluated = self
                    .evaluate(candidate, &fetched, context)
                    .instrument(span)
                    .await;
                (Some(manifest), evaluated)
            }
            Err((outcome, reason)) => (
                None,
                Evaluated {
                    stage: Stage::Failed { outcome, reason },
                    tokens: Vec::new(),
                    copy: None,
                    work: None,
                },
            ),
        };
        Arrived {
            uid: candidate.uid,
            manifest_sha256,
            evaluated,
            busy: started.elapsed(),
        }
    }

    /// The device half for one candidate: evaluate (or reuse the cached losses), verify its
    /// spot-check answer, and return it for near-copy detection.
    async fn evaluate(
        &self,
        candidate: &Candidate,
        fetched: &Fetched,
        context: &EpochContext,
    ) -> Evaluated {
        let mut work = None;
        let failed = |outcome, reason, work| Evaluated {
            stage: Stage::Failed { outcome, reason },
            tokens: Vec::new(),
            copy: None,
            work,
        };
        let manifest_sha256 = &fetched.artifact.manifest.manifest_sha256;
        let cached = self.cached(context.cache_key, manifest_sha256);
        if let Some(Err((outcome, reason))) = &cached {
            return failed(*outcome, reason.clone(), None);
        }
        let (answer, unavailable) = match &fetched.spot {
            Some((prompt, Asked::Answered(output))) => (
                Some(GreedyAnswer {
                    prompt: prompt.clone(),
                    max_new_tokens: self.settings.spot.max_new_tokens,
                    output: output.clone(),
                }),
                None,
            ),
            Some((_, Asked::Unavailable(reason))) => (None, Some(reason.clone())),
            None => (None, None),
        };
        let job = EvalJob {
            dir: fetched.artifact.dir.clone(),
            competition: context.competition.clone(),
            samples: fetched.samples.clone(),
            batch_size: self.settings.batch_size,
            skip_eval: cached.is_some(),
            spot: answer,
            open: context.open_tasks.clone(),
        };
        let config_path = fetched.artifact.dir.join(CONFIG_FILE);
        let run = if job.skip_eval && job.spot.is_none() {
            // Cached and nothing to verify: only the config is needed, for copy detection.
            match LlamaConfig::from_file(&config_path) {
                Ok(config) => Ok(compute::EvalOutput {
                    config,
                    fitted: None,
                    spot: None,
                    following: None,
                    sketch: None,
                    timings: compute::JobTimings::default(),
                }),
                Err(error) => Err((Outcome::BadModel, format!("config.json: {error}"))),
            }
        } else {
            let skip_eval = job.skip_eval;
            let started = Instant::now();
            let result = self.run_job(candidate, fetched, job).await;
            let elapsed = started.elapsed();
            tracing::debug!(elapsed_ms = elapsed.as_millis() as u64, "evaluated");
            if !skip_eval {
                crate::metrics::record_eval(elapsed);
            }
            if let Ok(output) = &result {
                work = Some(DeviceWork {
                    timings: output.timings,
                    evaluated: !skip_eval,
                });
            }
            result
        };
        let output = match run {
            Ok(output) => output,
            Err((outcome, reason)) => {
                if outcome != Outcome::InternalError {
                    self.remember(
                        context.cache_key,
                        manifest_sha256,
                        Err((outcome, reason.clone())),
                    );
                }
                return failed(outcome, reason, work);
            }
        };
        let (fitted, sketch, following, from_cache) = match (cached, output.fitted) {
            (Some(Ok(hit)), _) => (
                hit.fitted,
                output.sketch.or(hit.sketch),
                hit.following,
                true,
            ),
            (_, Some(fitted)) => {
                let following = match &output.following {
                    Some(answers) => {
                        let started = Instant::now();
                        let judged = self.judge(answers, context).await;
                        if let Some(work) = &mut work {
                            work.timings.follow += started.elapsed();
                        }
                        match judged {
                            Ok(scores) => Some(scores),
                            Err(reason) => return failed(Outcome::InternalError, reason, work),
                        }
                    }
                    None => None,
                };
                if let Some(answers) = &output.following {
                    let kept = answers.iter().filter(|a| a.score == 1.0).count();
                    let cut_off = answers.iter().filter(|a| !a.finished).count();
                    tracing::debug!(
                        tasks = answers.len(),
                        kept,
                        cut_off,
                        "answered the open instructions"
                    );
                }
                self.remember(
                    context.cache_key,
                    manifest_sha256,
                    Ok(CachedEval {
                        fitted: fitted.clone(),
                        sketch: output.sketch.clone(),
                        following: following.clone(),
                    }),
                );
                (fitted, output.sketch, following, false)
            }
            (_, None) => {
                return failed(
                    Outcome::InternalError,
                    "the evaluation returned no losses".to_string(),
                    work,
                );
            }
        };
        let losses: Vec<f64> = fitted.losses.iter().map(|l| l.loss).collect();
        let tokens: Vec<usize> = fitted.losses.iter().map(|l| l.tokens).collect();
        let spot_check = match (output.spot, unavailable) {
            (Some(GreedyVerdict::Match), _) => Some(SpotCheck {
                status: SpotStatus::Passed,
                detail: String::new(),
            }),
            (Some(GreedyVerdict::Mismatch(detail)), _) => Some(SpotCheck {
                status: SpotStatus::Failed,
                detail,
            }),
            (None, Some(detail)) => Some(SpotCheck {
                status: if self.settings.spot.required {
                    SpotStatus::Failed
                } else {
                    SpotStatus::Unavailable
                },
                detail,
            }),
            (None, None) => None,
        };
        let copy = CopyCandidate {
            uid: candidate.uid,
            commit_block: candidate.commit_block,
            manifest_sha256: manifest_sha256.clone(),
            config: output.config,
            weights: fetched.artifact.dir.join(WEIGHTS_FILE),
            sketch,
            fitted: Some(fitted.clone()),
        };
        Evaluated {
            stage: Stage::Evaluated {
                losses,
                following,
                cached: from_cache,
                copy_of: None,
                spot_check,
            },
            tokens,
            copy: Some(copy),
            work,
        }
    }

    /// The scores of a model's answers to the open instructions after the base model judged
    /// them (`[open] max_base_loss`): an answer that scores but that the base finds above the
    /// limit (a word list, salad) scores 0. Without a limit, the answers' own scores. Runs on
    /// this process's device, which holds the base; an error is the validator's, not the miner's.
    async fn judge(
        &self,
        answers: &[Followed],
        context: &EpochContext,
    ) -> Result<Vec<f64>, String> {
        let scores: Vec<f64> = answers.iter().map(|a| a.score).collect();
        let (Some(max_loss), Some(base), Some(tasks)) = (
            context.competition.open.and_then(|open| open.max_base_loss),
            &self.base,
            &context.open_tasks,
        ) else {
            return Ok(scores);
        };
        if scores.iter().all(|&score| score == 0.0) {
            return Ok(scores);
        }
        let job = JudgeJob::for_answers(
            base.dir().to_path_buf(),
            context.judge_base.clone(),
            context.competition.clone(),
            tasks.clone(),
            answers,
            self.settings.batch_size,
        );
        let device = self.device.clone();
        let losses = tokio::task::spawn_blocking(move || device.run(job))
            .await
            .map_err(|join| format!("judging the answers crashed: {join}"))?
            .map_err(|error| format!("judging the answers with the base model: {error}"))?;
        let judged = judged_scores(answers, &losses, max_loss);
        let refused = judged
            .iter()
            .zip(&scores)
            .filter(|(judged, score)| judged != score)
            .count();
        tracing::info!(refused, max_loss, "the base model judged the open answers");
        Ok(judged)
    }

    /// Runs `job` on this process's device, or queues it for a `validator worker` when the
    /// track has a queue.
    async fn run_job(
        &self,
        candidate: &Candidate,
        fetched: &Fetched,
        job: EvalJob,
    ) -> Result<compute::EvalOutput, (Outcome, String)> {
        if let Some(queue) = &self.queue {
            let queued = crate::workers::QueuedEval {
                source: crate::workers::ArtifactSource {
                    base_url: candidate.base_url.to_string(),
                    hotkey: candidate.hotkey.to_ss58(),
                    binding: candidate.binding.clone(),
                    manifest_sha256: fetched.artifact.manifest.manifest_sha256.clone(),
                },
                competition: Competition::clone(&job.competition),
                samples: Vec::clone(&job.samples),
                batch_size: job.batch_size,
                skip_eval: job.skip_eval,
                spot: job.spot,
                open: job.open.map(Arc::unwrap_or_clone),
            };
            return queue.evaluate(candidate.uid, queued).await;
        }
        let device = self.device.clone();
        match tokio::task::spawn_blocking(move || device.run(job)).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(error)) => Err((error.outcome(), error.to_string())),
            Err(join) => Err((
                Outcome::InternalError,
                format!("the evaluation crashed: {join}"),
            )),
        }
    }

    /// The cached evaluation of `manifest` under `key` (seed, competition), if any.
    fn cached(
        &self,
        key: ([u8; 32], [u8; 32]),
        manifest: &str,
    ) -> Option<Result<CachedEval, (Outcome, String)>> {
        let cache = self
            .evals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.key != key {
            return None;
        }
        cache.entries.get(manifest).cloned()
    }

    /// Caches an evaluation, dropping those of other seeds or competitions.
    fn remember(
        &self,
        key: ([u8; 32], [u8; 32]),
        manifest: &str,
        result: Result<CachedEval, (Outcome, String)>,
    ) {
        let mut cache = self
            .evals
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if cache.key != key {
            cache.key = key;
            cache.entries.clear();
        }
        cache.entries.insert(manifest.to_string(), result);
    }
}

/// The epoch's samples for the model in `dir`: tokenized with its own `tokenizer.json` when it
/// has one (`has_tokenizer`), else the byte-level samples (refused in a chat competition).
async fn samples_for(
    dir: &std::path::Path,
    has_tokenizer: bool,
    context: &EpochContext,
) -> Result<Arc<Vec<Sample>>, (Outcome, String)> {
    if !has_tokenizer {
        return context.byte_samples.clone().ok_or((
            Outcome::BadModel,
            format!("a chat competition's model must carry {TOKENIZER_JSON} and its chat template"),
        ));
    }
    let (dir, competition, dataset, seed) = (
        dir.to_path_buf(),
        context.competition.clone(),
        context.dataset.clone(),
        context.seed,
    );
    let built = tokio::task::spawn_blocking(move || {
        let tokenizer = Tokenizer::from_model_dir(&dir).map_err(|e| e.to_string())?;
        competition
            .eval_samples(seed, &tokenizer, dataset.as_deref())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| (Outcome::InternalError, format!("tokenizing crashed: {e}")))?;
    Ok(Arc::new(built.map_err(|reason| {
        (Outcome::BadModel, format!("tokenizer: {reason}"))
    })?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A track on the CPU that signs as Alice, with no artifact cache.
    fn cpu_track() -> ModelTrack {
        ModelTrack::new(
            SignedClient::new(
                reqwest::Client::new(),
                subnet_common::keys::Keypair::from_uri("//Alice").unwrap(),
            ),
            PathBuf::from("/nonexistent"),
            subnet_model::backend::select(subnet_model::backend::DeviceChoice::Cpu).unwrap(),
            TrackSettings::default(),
        )
    }

    #[tokio::test]
    async fn an_epoch_can_run_in_a_spawned_task() {
        // The epoch loop runs `score_epoch` inside `tokio::spawn`: this only compiles while the
        // epoch future is `Send` for every lifetime of what it borrows.
        let task = tokio::spawn(async move {
            let track = cpu_track();
            let competition =
                CompetitionFile::from_bytes(crate::eval_cmd::DEFAULT_COMPETITION_TOML.as_bytes())
                    .unwrap();
            let metagraph = Metagraph {
                netuid: 1,
                block: 0,
                neurons: vec![],
            };
            let input = EpochInput {
                netuid: 1,
                seed: [0; 32],
                seed_block: 0,
                current_block: 0,
                metagraph: &metagraph,
                commitments: &[],
                competition: &competition,
                dataset: None,
            };
            track.score_epoch(&input).await
        });
        let result = task.await.unwrap().unwrap();
        assert!(result.miners.is_empty());
        assert_eq!(result.samples, 256);
    }

    #[tokio::test]
    async fn the_judge_loads_the_base_once_per_epoch_and_zeroes_the_answers_it_refuses() {
        use subnet_model::competition::{BasePin, OpenSettings};

        // A tiny pinned base, and an epoch whose two instructions fit its 32 positions.
        let dir = tempfile::tempdir().unwrap();
        compute::tests::saved(dir.path());
        let mut competition = compute::tests::competition();
        competition.base = Some(BasePin {
            manifest_sha256: subnet_common::protocol::manifest_of_dir(&competition.id, dir.path())
                .unwrap()
                .manifest_sha256,
        });
        let base = BaseModel::for_competition(&competition, Some(dir.path())).unwrap();
        let track = cpu_track().with_base(base);
        let tasks = compute::tests::short_open_tasks();
        let judge_base = Arc::new(compute::LoadedBase::default());
        let epoch = |max_base_loss: f64| {
            let mut competition = competition.clone();
            competition.open = Some(OpenSettings {
                samples: 2,
                max_new_tokens: 8,
                margin: 0.05,
                max_base_loss: Some(max_base_loss),
            });
            EpochContext {
                seed: [5; 32],
                cache_key: ([5; 32], [0; 32]),
                limits: TrackSettings::default()
                    .fetch
                    .for_artifacts_of(competition.max_artifact_bytes),
                competition: Arc::new(competition),
                dataset: None,
                byte_samples: None,
                spot_secret: [0; 32],
                spot_uids: Default::default(),
                open_tasks: Some(tasks.clone()),
                judge_base: judge_base.clone(),
            }
        };
        let answers = [
            Followed {
                answer: "a short answer".to_string(),
                finished: true,
                tokens: 15,
                score: 0.5,
            },
            Followed {
                answer: "cut off".to_string(),
                finished: false,
                tokens: 8,
                score: 0.0,
            },
        ];
        // Under a limit no answer reaches, the scores stand.
        let lenient = track.judge(&answers, &epoch(1e9)).await.unwrap();
        assert_eq!(lenient, vec![0.5, 0.0]);
        // The epoch's later judgments reuse the loaded base: with its weights gone from the disk
        // it still judges, and an answer above the limit (a random base finds every answer
        // unlikely) scores 0.
        std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
        let strict = track.judge(&answers, &epoch(1e-3)).await.unwrap();
        assert_eq!(strict, vec![0.0, 0.0]);
        // Another epoch loads it afresh: now it is gone, which is the validator's error.
        let mut next = epoch(1e9);
        next.judge_base = Arc::default();
        let error = track.judge(&answers, &next).await.unwrap_err();
        assert!(
            error.contains("judging the answers with the base model"),
            "{error}"
        );
    }
}
