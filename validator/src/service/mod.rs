//! The epoch loop behind `validator run`: follow the chain, score each epoch once, store it, and
//! get its weights onto the chain exactly once (commit–reveal v2 or plain `set_weights`).
//!
//! | module | what | IO |
//! |---|---|---|
//! | [`clock`] | [`clock::BlockClock`]: the current block and waiting for one (chain-backed, manual) | chain |
//! | [`schedule`] | epoch index and first block from `tempo` and `netuid` | none |
//! | [`weights`] | track scores → combined → EMA → normalized → SDK u16 weights | none |
//! | [`submit`] | [`submit::WeightSubmitter`]: commit, reveal or set the weights of stored epochs; resume after a crash | chain, db |
//!
//! One turn of the loop ([`Service::run_once`]), at the chain head `h` in epoch `e`:
//! 1. settle the open weight rows: finish or detect an interrupted commit, reveal a commit whose
//!    reveal epoch has come, give up on expired or superseded ones ([`submit`]) — beside step 2
//!    when the epoch is to be scored, since waiting for a reveal's inclusion need not hold up
//!    the evaluation;
//! 2. unless epoch `e` is already in the database: read the metagraph, derive the seed from the
//!    hash of `e`'s first block (the seed block), read the commitments at that block, run the model track and, beside it, the label track
//!    (when on: send the batches, answered by the last stored epoch's best models, and keep
//!    them in `label_pending`; wait for the deadline of the batches due in this epoch — these,
//!    or an earlier epoch's when the window spans epochs — collect them, store their rows in
//!    their own transaction, or reuse the rows a run before a restart stored), combine the tracks, update the EMA, convert to u16, and store all
//!    of it with the `pending` weight row in one transaction;
//! 3. settle again, which commits (or sets) the new row;
//! 4. wait for the first block of epoch `e + 1`.
//!
//! A restart (even a SIGKILL) resumes from Postgres: a stored epoch is never scored again, and
//! the commit of a row is never sent twice (see [`submit`] for how).

pub mod clock;
pub mod schedule;
pub mod submit;
pub mod weights;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use sqlx::PgPool;
use subnet_common::chain::client::{ChainClient, ChainClientError};
use subnet_common::chain::types::{Hyperparameters, Metagraph, commit_hash};
use subnet_common::keys::Keypair;
use subnet_model::backend::Selected;
use subnet_model::competition::{CompetitionFile, eval_seed};
use subnet_model::data::Dataset;
use tracing::Instrument;

use crate::db::{
    self, DbError, EpochRecord, EpochResults, MinerRecord, ModelEvalRecord, ScoreRecord,
    WeightCommitRecord, WeightMode,
};
use crate::tracks::labels::answers::{AnswerOptions, ModelAnswers};
use crate::tracks::labels::batch::AnswerSource;
use crate::tracks::labels::prompts::PromptPool;
use crate::tracks::labels::{self, LabelEpochInput, LabelTrack};
use crate::tracks::model::outcome::Outcome;
use crate::tracks::model::{
    EpochInput, ModelTrack, ModelTrackError, ModelTrackResult, TrackTimings,
};
use clock::BlockClock;
use schedule::EpochSchedule;
use submit::WeightSubmitter;
use weights::{ConvertError, Neuron, PreviousEma, TrackScores};

/// Default EMA smoothing factor of the combined score (`--scores.ema-alpha`).
pub const DEFAULT_EMA_ALPHA: f64 = 0.3;

/// Number of u16 values in a commit–reveal salt.
pub const SALT_LEN: usize = 8;

/// A point where a test stops the loop as if the process had been killed there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// Right after the epoch was saved, before anything was sent.
    AfterSave,
    /// Right after the commit (or set_weights) extrinsic was accepted by the chain, before its
    /// inclusion was recorded.
    AfterSend,
}

impl Failpoint {
    /// [`ServiceError::Stopped`] when this point is the `configured` one (the loop, then, stops
    /// here as a crash would).
    fn stop_if_configured(self, configured: Option<Failpoint>) -> Result<(), ServiceError> {
        if configured == Some(self) {
            tracing::warn!(point = ?self, "stopping at the test failpoint");
            return Err(ServiceError::Stopped(self));
        }
        Ok(())
    }
}

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// The subnet.
    pub netuid: u16,
    /// EMA smoothing factor in (0, 1]: weight of this epoch's combined score.
    pub ema_alpha: f64,
    /// `version_key` sent with the weights; must be ≥ the subnet's `weights_version_key`.
    pub version_key: u64,
    /// How long to wait for an extrinsic's inclusion before asking again.
    pub inclusion_timeout: Duration,
    /// Attempts per weight extrinsic in one turn of the loop (the next turn tries again).
    pub submit_attempts: u32,
    /// First pause after a failed turn or attempt; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    /// Longest pause between retries.
    pub max_backoff: Duration,
    /// Blocks after an epoch's first block by which the label track collects the labels sent in
    /// it (`None`: half the tempo). More than the tempo: the window spans epochs, and the labels
    /// are collected, and paid, in the epoch the deadline falls in.
    pub label_deadline_blocks: Option<u64>,
    /// Tests only: stop the loop at this point, as a crash would.
    pub failpoint: Option<Failpoint>,
}

impl ServiceConfig {
    /// Defaults for `netuid`.
    pub fn new(netuid: u16) -> Self {
        Self {
            netuid,
            ema_alpha: DEFAULT_EMA_ALPHA,
            version_key: version_key(env!("CARGO_PKG_VERSION")),
            inclusion_timeout: Duration::from_secs(60),
            submit_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            label_deadline_blocks: None,
            failpoint: None,
        }
    }
}

/// The number and first block of a stored epoch, as [`EpochSchedule::numbered`] takes them.
fn stored_epoch(record: &EpochRecord) -> schedule::StoredEpoch {
    schedule::StoredEpoch {
        epoch: u64::try_from(record.epoch).unwrap_or(0),
        start_block: u64::try_from(record.start_block).unwrap_or(0),
    }
}

/// Says what a tempo change or a gap did to the epoch numbering, before the turn at `head`
/// (`schedule` numbered on from `latest`, the last epoch stored).
fn warn_on_renumbering(latest: &EpochRecord, schedule: EpochSchedule, head: u64) {
    let epoch = schedule.epoch_of(head);
    let last = u64::try_from(latest.epoch).unwrap_or(0);
    let chain_epoch = schedule.chain_epoch_of(head);
    if let Some(before) = latest.tempo
        && before != i32::from(schedule.tempo)
    {
        tracing::warn!(
            tempo_before = before,
            tempo = schedule.tempo,
            last_scored = last,
            epoch,
            chain_epoch,
            next_epoch_block = schedule.first_block(epoch + 1),
            "the subnet's tempo changed: epochs are numbered on from the last one scored (the \
             chain's epoch index is {chain_epoch}, scored here as epoch {epoch}); weight commits \
             made under the old tempo are given up and the newest weights committed under the \
             new one"
        );
    }
    if epoch > last + 1 {
        tracing::warn!(
            last_scored = last,
            epoch,
            missed = epoch - last - 1,
            "epochs {}..={} were not scored: the validator was not running, or a turn took \
             longer than its epoch",
            last + 1,
            epoch - 1
        );
    }
}

/// The SDK's `version_as_int`: `major·10⁶ + minor·10³ + patch` (unparsable parts count as 0).
pub fn version_key(version: &str) -> u64 {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    next() * 1_000_000 + next() * 1_000 + next()
}

/// Why a turn of the loop failed. Every variant but [`ServiceError::Stopped`] is retried by
/// [`Service::run`] after a pause.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A chain request failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainClientError),
    /// A database query failed.
    #[error("database: {0}")]
    Db(#[from] DbError),
    /// The model track could not score the epoch.
    #[error("model track: {0}")]
    ModelTrack(#[from] ModelTrackError),
    /// The weights did not convert (a bug upstream).
    #[error("weights: {0}")]
    Convert(#[from] ConvertError),
    /// The hash of an epoch's first block is not on the chain.
    #[error("block {block} (first of epoch {epoch}) has no hash on the chain")]
    MissingBlock {
        /// The block.
        block: u64,
        /// Its epoch.
        epoch: u64,
    },
    /// The validator's hotkey holds no uid on the subnet.
    #[error(
        "hotkey {hotkey} is not registered on subnet {netuid}: register it (and stake on it to earn a validator permit)"
    )]
    NotRegistered {
        /// SS58 hotkey.
        hotkey: String,
        /// Subnet.
        netuid: u16,
    },
    /// The subnet's tempo is 0: its epochs never run.
    #[error("subnet {netuid} has tempo 0: epochs never run")]
    NoEpochs {
        /// Subnet.
        netuid: u16,
    },
    /// A stored weight row is inconsistent (e.g. a commit hash that is not hex).
    #[error("stored weights of epoch {epoch}: {reason}")]
    BadRow {
        /// Epoch of the row.
        epoch: i64,
        /// What is wrong.
        reason: String,
    },
    /// A test failpoint was reached.
    #[error("stopped at failpoint {0:?}")]
    Stopped(Failpoint),
}

/// What one turn of the loop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// The epoch the head was in, by the validator's number (see [`schedule`]).
    pub epoch: u64,
    /// The chain's epoch index of the head (the same number unless a tempo change moved the
    /// index back).
    pub chain_epoch: u64,
    /// Whether this turn scored and stored it (false: it was stored before).
    pub scored: bool,
    /// First block of the next epoch, where the next turn starts.
    pub next_epoch_start: u64,
    /// Where the turn's wall time went, when it scored an epoch (`None` when it was stored
    /// before, or a restart found it stored by the time it was saved).
    pub timings: Option<EpochTimings>,
}

/// Where the wall time of a turn that scored an epoch went, phase by phase, in the order they
/// run. Each phase is also recorded as `validator_epoch_phase_seconds{phase}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EpochTimings {
    /// Settling open weight rows before scoring (e.g. revealing the last epoch's commit).
    pub settle: Duration,
    /// Chain reads: head, hyperparameters, the seed block's hash, metagraph, commitments.
    pub chain: Duration,
    /// Database reads: whether the epoch is stored, the previous EMAs.
    pub db_read: Duration,
    /// The model track, by phase.
    pub model: TrackTimings,
    /// The label track (zero when off); it runs beside the model track, so the two overlap.
    pub labels: Duration,
    /// Combining the tracks, EMA, u16 conversion, the weight row.
    pub weights: Duration,
    /// Storing the epoch in one transaction.
    pub save: Duration,
    /// Committing (or setting) the new weights, until included.
    pub submit: Duration,
    /// The whole turn, from reading the head to the weights' inclusion.
    pub total: Duration,
}

impl EpochTimings {
    /// `(phase, wall time)` of each phase, the model track's split into its own phases (its
    /// `load`, `eval` and `spot` are parts of `model_device`, and `model_fetch` overlaps
    /// `model_device` and `model_waiting`: listed apart, they overlap).
    pub fn phases(&self) -> [(&'static str, Duration); 17] {
        let m = &self.model;
        [
            ("settle", self.settle),
            ("chain", self.chain),
            ("db_read", self.db_read),
            ("model_plan", m.plan),
            ("model_fetch", m.fetch),
            ("model_device", m.device),
            ("model_waiting", m.waiting),
            ("model_load", m.load),
            ("model_eval", m.eval),
            ("model_spot", m.spot),
            ("model_copies", m.copies),
            ("model_scoring", m.scoring),
            ("labels", self.labels),
            ("weights", self.weights),
            ("save", self.save),
            ("submit", self.submit),
            ("total", self.total),
        ]
    }
}

/// Number of top models of the model track that answer the label track's open prompts.
pub const ANSWER_MODELS: usize = 2;

/// The label track as the loop runs it.
#[derive(Debug, Clone)]
pub struct LabelSetup {
    /// The track (signs requests with the validator's hotkey).
    pub track: LabelTrack,
    /// The prompts its pairs are drawn from.
    pub prompts: PromptPool,
    /// The model track's artifact cache, where the answering models are read from.
    pub cache_dir: PathBuf,
    /// Where the answering models run.
    pub device: Selected,
    /// How many of the model track's best models answer the prompts (default
    /// [`ANSWER_MODELS`]; 0: no answers, so no tasks).
    pub answer_models: usize,
    /// How they answer (the sampling seed is set each epoch from the track seed).
    pub answers: AnswerOptions,
}

/// The validator's epoch loop.
pub struct Service<C, K> {
    /// The chain.
    chain: Arc<C>,
    /// When things happen.
    clock: K,
    /// Where everything is stored.
    pool: PgPool,
    /// Signs weight extrinsics (and requests to miners, inside the track).
    hotkey: Keypair,
    /// The model track (holds the per-seed evaluation cache).
    track: ModelTrack,
    /// The rules the models are judged by.
    competition: CompetitionFile,
    /// The competition's pinned dataset, loaded once.
    dataset: Option<Dataset>,
    /// Loop settings.
    config: ServiceConfig,
    /// The label track; `None`: off, its scores are 0.
    labels: Option<LabelSetup>,
    /// Gets the stored weights onto the chain.
    submitter: WeightSubmitter<C>,
}

impl<C: ChainClient, K: BlockClock> Service<C, K> {
    /// A loop over `chain` and `clock`, storing into `pool`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Arc<C>,
        clock: K,
        pool: PgPool,
        hotkey: Keypair,
        track: ModelTrack,
        competition: CompetitionFile,
        dataset: Option<Dataset>,
        config: ServiceConfig,
    ) -> Self {
        let submitter = WeightSubmitter::new(chain.clone(), pool.clone(), hotkey.clone(), &config);
        Self {
            chain,
            clock,
            pool,
            hotkey,
            track,
            competition,
            dataset,
            config,
            labels: None,
            submitter,
        }
    }

    /// Runs the label track each epoch beside the model track (off unless set).
    pub fn with_labels(mut self, labels: LabelSetup) -> Self {
        self.labels = Some(labels);
        self
    }

    /// Runs turns until `shutdown` resolves. A failed turn is logged and retried after a pause
    /// that doubles up to `max_backoff`; only a test failpoint ends the loop with an error.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ServiceError> {
        tokio::pin!(shutdown);
        let mut backoff = self.config.initial_backoff;
        loop {
            let turn = async {
                let turn = self.run_once().await?;
                self.clock.wait_until(turn.next_epoch_start).await?;
                Ok::<_, ServiceError>(())
            };
            let result = tokio::select! {
                () = &mut shutdown => return Ok(()),
                result = turn => result,
            };
            match result {
                Ok(()) => backoff = self.config.initial_backoff,
                Err(error @ ServiceError::Stopped(_)) => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "epoch turn failed");
                    tokio::select! {
                        () = &mut shutdown => return Ok(()),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// One turn at the current head: settle open weights, score the head's epoch unless it is
    /// stored, submit its weights.
    pub async fn run_once(&self) -> Result<Turn, ServiceError> {
        let started = Instant::now();
        let netuid = self.config.netuid;
        let head = self.clock.current_block().await?;
        let hp = self.chain.hyperparameters(netuid).await?;
        let next_epoch_start = EpochSchedule::new(netuid, hp.tempo)
            .next_epoch_start(head)
            .ok_or(ServiceError::NoEpochs { netuid })?;
        let chain_read = started.elapsed();
        let latest = db::latest_epoch(&self.pool, i32::from(netuid)).await?;
        let schedule =
            EpochSchedule::numbered(netuid, hp.tempo, latest.as_ref().map(stored_epoch), head);
        let epoch = schedule.epoch_of(head);
        let chain_epoch = schedule.chain_epoch_of(head);
        if let Some(latest) = &latest {
            warn_on_renumbering(latest, schedule, head);
        }
        let span = tracing::info_span!("epoch", netuid, epoch, chain_epoch, block = head);
        let timings = self
            .turn(epoch, schedule, &hp)
            .instrument(span)
            .await?
            .map(|mut timings| {
                timings.chain += chain_read;
                timings.total = started.elapsed();
                for (phase, elapsed) in timings.phases() {
                    crate::metrics::record_epoch_phase(phase, elapsed);
                }
                timings
            });
        Ok(Turn {
            epoch,
            chain_epoch,
            scored: timings.is_some(),
            next_epoch_start,
            timings,
        })
    }

    /// Steps 1–3 of a turn in `epoch`; the timings when it scored the epoch.
    async fn turn(
        &self,
        epoch: u64,
        schedule: EpochSchedule,
        hp: &Hyperparameters,
    ) -> Result<Option<EpochTimings>, ServiceError> {
        let netuid = self.config.netuid;
        let started = Instant::now();
        if db::epoch_stored(&self.pool, i32::from(netuid), epoch as i64).await? {
            self.submitter.settle(hp, &self.clock).await?;
            return Ok(None);
        }
        let stored_check = started.elapsed();
        // Settling the earlier rows (e.g. revealing the last commit and waiting for its
        // inclusion) runs beside the scoring instead of before it: it touches only the weight
        // rows of earlier epochs, and the new row is saved after both.
        let settling = async {
            let started = Instant::now();
            self.submitter
                .settle(hp, &self.clock)
                .await
                .map(|()| started.elapsed())
        };
        let (settled, scored) = tokio::join!(settling, self.score(epoch, schedule, hp));
        let settled = settled?;
        let (results, mut timings) = scored?;
        timings.settle = settled;
        timings.db_read += stored_check;
        let started = Instant::now();
        let saved = db::save_epoch(&self.pool, &results).await?;
        timings.save = started.elapsed();
        tracing::info!(
            epoch,
            ?saved,
            weights = results.weights.uids.len(),
            mode = results.weights.mode.as_str(),
            "epoch stored"
        );
        Failpoint::AfterSave.stop_if_configured(self.config.failpoint)?;
        let started = Instant::now();
        self.submitter.settle(hp, &self.clock).await?;
        timings.submit = started.elapsed();
        Ok((saved == db::Saved::New).then_some(timings))
    }

    /// Scores `epoch` into everything [`db::save_epoch`] stores, weight row `pending`, with the
    /// time its phases took.
    async fn score(
        &self,
        epoch: u64,
        schedule: EpochSchedule,
        hp: &Hyperparameters,
    ) -> Result<(EpochResults, EpochTimings), ServiceError> {
        let started = Instant::now();
        let mut timings = EpochTimings::default();
        let netuid = self.config.netuid;
        let start_block = schedule.first_block(epoch);
        let block_hash =
            self.chain
                .block_hash(start_block)
                .await?
                .ok_or(ServiceError::MissingBlock {
                    block: start_block,
                    epoch,
                })?;
        let seed = eval_seed(block_hash.0, netuid);
        let metagraph = self.chain.metagraph(netuid).await?;
        let Some(me) = metagraph
            .neurons
            .iter()
            .find(|n| n.hotkey == self.hotkey.account_id())
        else {
            return Err(ServiceError::NotRegistered {
                hotkey: self.hotkey.account_id().to_ss58(),
                netuid,
            });
        };
        crate::metrics::set_validator_permit(me.validator_permit);
        if let Some(warning) = permit_warning(me.uid, me.validator_permit, netuid) {
            tracing::warn!(epoch, uid = me.uid, "{warning}");
        }
        // At the seed block, not the head: a miner that commits again while validators read
        // cannot make them disagree about which model it entered this epoch.
        let commitments = self.chain.commitments_at(netuid, block_hash).await?;
        timings.chain = started.elapsed();
        let input = EpochInput {
            netuid,
            seed,
            seed_block: start_block,
            current_block: metagraph.block,
            metagraph: &metagraph,
            commitments: &commitments,
            competition: &self.competition,
            dataset: self.dataset.as_ref(),
        };
        // The two tracks run side by side: the label batches go out first thing (labelers get
        // the whole window) and the model track fetches and evaluates while labelers work, so
        // the turn takes the longer of the two, not their sum.
        let labels = async {
            let phase = Instant::now();
            let scores = self.label_scores(epoch, schedule, seed, &metagraph).await;
            (scores, phase.elapsed())
        };
        let (model, (labels, label_time)) =
            tokio::join!(self.track.score_epoch_timed(&input), labels);
        let (model, model_timings) = model?;
        let labels = labels?;
        timings.model = model_timings;
        timings.labels = label_time;
        for miner in &model.miners {
            crate::metrics::record_miner_queried(miner.outcome.code());
        }
        let phase = Instant::now();
        let scores = TrackScores {
            model: model.miners.iter().map(|m| (m.uid, m.score)).collect(),
            labels,
        };
        let previous: BTreeMap<String, PreviousEma> =
            db::latest_ema_state(&self.pool, i32::from(netuid))
                .await?
                .into_iter()
                .map(|s| {
                    let previous = PreviousEma {
                        uid: u16::try_from(s.uid).unwrap_or(u16::MAX),
                        block_at_registration: u64::try_from(s.block_at_registration)
                            .unwrap_or(u64::MAX),
                        ema: s.ema,
                    };
                    (s.hotkey, previous)
                })
                .collect();
        timings.db_read = phase.elapsed();
        let phase = Instant::now();
        let neurons = neurons_of(&metagraph);
        let rows = weights::weight_rows(
            &neurons,
            &scores,
            &self.competition.competition.shares,
            self.config.ema_alpha,
            &previous,
        );
        let weight_pairs: Vec<(u16, f64)> = rows.iter().map(|r| (r.uid, r.weight)).collect();
        let (uids, values) = weights::to_u16_weights(&weight_pairs)?;
        let timelocked =
            hp.commit_reveal_weights_enabled && self.chain.timelocked_weights(netuid).await?;
        let weights = self.weight_record(epoch, hp, timelocked, uids, values);
        let model_eval_rows = model_eval_records(&model);
        timings.weights = phase.elapsed();

        let elapsed = started.elapsed();
        crate::metrics::record_epoch_duration(elapsed);
        let record = EpochRecord {
            tempo: Some(i32::from(hp.tempo)),
            netuid: i32::from(netuid),
            epoch: epoch as i64,
            start_block: start_block as i64,
            block_hash: hex::encode(block_hash.0),
            seed: hex::encode(seed),
            competition_sha256: self.competition.sha256_hex(),
            scored_block: metagraph.block as i64,
            duration_ms: elapsed.as_millis() as i64,
            base_losses: model.base.as_ref().map(|b| b.losses.clone()),
        };
        let results = EpochResults {
            epoch: record,
            miners: metagraph
                .neurons
                .iter()
                .map(|n| MinerRecord {
                    hotkey: n.hotkey.to_ss58(),
                    uid: i32::from(n.uid),
                    coldkey: n.coldkey.to_ss58(),
                    block_at_registration: n.block_at_registration as i64,
                })
                .collect(),
            model_evals: model_eval_rows,
            scores: rows
                .iter()
                .map(|r| ScoreRecord {
                    hotkey: r.hotkey.clone(),
                    uid: i32::from(r.uid),
                    model_score: r.model_score,
                    label_score: r.label_score,
                    combined: r.combined,
                    ema: r.ema,
                    weight: r.weight,
                })
                .collect(),
            weights,
        };
        Ok((results, timings))
    }

    /// The label track's scores of `epoch`: the stored ones when a run before a restart stored
    /// them, else this epoch's batches are sent (unless a run before a restart sent them) and the
    /// batches whose deadline falls in this epoch are collected (after waiting for the deadline)
    /// and stored in their own transaction. With a window inside the epoch (the default) those
    /// are the same batches; a window spanning epochs (`--labels.deadline-blocks` above the
    /// tempo) collects, and pays, an earlier epoch's batches while this epoch's go out. Empty
    /// when the track is off, nobody labels or nothing is due yet; a miner that serves no labels
    /// is recorded with its outcome and scores 0.
    async fn label_scores(
        &self,
        epoch: u64,
        schedule: EpochSchedule,
        seed: [u8; 32],
        metagraph: &Metagraph,
    ) -> Result<BTreeMap<u16, f64>, ServiceError> {
        let Some(setup) = &self.labels else {
            return Ok(BTreeMap::new());
        };
        let netuid = self.config.netuid;
        let stored_epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        if let Some(stored) =
            db::load_label_track(&self.pool, i32::from(netuid), stored_epoch).await?
        {
            tracing::info!(
                epoch,
                miners = stored.miners.len(),
                "label track: using the labels stored before"
            );
            return Ok(stored.scores());
        }
        let mut miners = labels::label_miners(metagraph, &self.hotkey.account_id());
        let labelling_nothing = db::hotkeys_labelling_nothing(
            &self.pool,
            i32::from(netuid),
            stored_epoch,
            labels::PROBE_AFTER,
        )
        .await?;
        for miner in &mut miners {
            miner.probe = labelling_nothing.contains(&miner.hotkey.to_ss58());
        }
        let planned = schedule.label_deadline(epoch, self.config.label_deadline_blocks);
        let result = if schedule.epoch_of(planned) > epoch {
            // The window spans epochs: this epoch's batches are not collected in this turn, so
            // sending them and collecting an earlier epoch's run side by side.
            let (sent, collected) = tokio::join!(
                self.send_labels(setup, epoch, schedule, seed, metagraph, &miners),
                self.collect_labels(setup, epoch, schedule, &miners)
            );
            sent?;
            collected?
        } else {
            self.send_labels(setup, epoch, schedule, seed, metagraph, &miners)
                .await?;
            self.collect_labels(setup, epoch, schedule, &miners).await?
        };
        Ok(result.map(|r| r.scores()).unwrap_or_default())
    }

    /// Builds and sends the label batches of `epoch` and stores them until they are collected
    /// (`label_pending`); nothing when nobody labels or a run before a restart sent them. The
    /// open pairs are answered by the best models of the last epoch stored before this one
    /// (none yet: no tasks).
    async fn send_labels(
        &self,
        setup: &LabelSetup,
        epoch: u64,
        schedule: EpochSchedule,
        seed: [u8; 32],
        metagraph: &Metagraph,
        miners: &[labels::LabelMiner],
    ) -> Result<(), ServiceError> {
        let netuid = self.config.netuid;
        let stored_epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        if miners.is_empty()
            || db::label_batches_sent(&self.pool, i32::from(netuid), stored_epoch).await?
        {
            return Ok(());
        }
        let planned_deadline = schedule.label_deadline(epoch, self.config.label_deadline_blocks);
        // The samples' seed holds the validator's secret: nobody can regenerate the answers.
        let secret = labels::fresh_secret();
        let answer_seed = subnet_model::competition::derive_seed(
            labels::batch::track_seed(seed, secret),
            "labels/answers",
        );
        let mut answer_seed8 = [0u8; 8];
        answer_seed8.copy_from_slice(&answer_seed[..8]);
        let answer_dirs = match db::latest_epoch(&self.pool, i32::from(netuid)).await? {
            Some(last) if last.epoch < stored_epoch => {
                let evals = db::model_evals(&self.pool, i32::from(netuid), last.epoch).await?;
                ModelAnswers::top_models(&evals, &setup.cache_dir, setup.answer_models)
            }
            _ => Vec::new(),
        };
        let answers: Arc<dyn AnswerSource> = Arc::new(ModelAnswers::new(
            answer_dirs,
            self.competition.competition.clone(),
            setup.device.clone(),
            AnswerOptions {
                seed: u64::from_le_bytes(answer_seed8),
                ..setup.answers.clone()
            },
        ));
        let input = LabelEpochInput {
            netuid,
            epoch,
            seed,
            secret,
            deadline_block: planned_deadline,
            miners,
            prompts: &setup.prompts,
        };
        let sent = setup
            .track
            .send_deadline_at(&input, answers, || async {
                // The answers took their time (and a turn may start late): the head has moved on.
                let head = self
                    .clock
                    .current_block()
                    .await
                    .unwrap_or(metagraph.block)
                    .max(metagraph.block);
                schedule.label_deadline_sent_at(epoch, self.config.label_deadline_blocks, head)
            })
            .await;
        let deadline_block = sent.deadline_block();
        if deadline_block > planned_deadline {
            tracing::warn!(
                epoch,
                planned_deadline,
                deadline_block,
                "label track: batches sent too late for the planned deadline (the turn started \
                 late, or the answers took that long); labelers get the window from now, up to the \
                 last block of the epoch that collects them"
            );
        }
        db::save_label_pending(&self.pool, &sent).await?;
        if schedule.epoch_of(deadline_block) > epoch {
            tracing::info!(
                epoch,
                deadline_block,
                collect_epoch = schedule.epoch_of(deadline_block),
                "label track: batches sent; they are collected, and paid, in a later epoch"
            );
        }
        Ok(())
    }

    /// Collects and stores, as `epoch`'s, the pending batches whose deadline falls in `epoch` (or
    /// before: a validator that was down), once the deadline block is over. `None` when none is
    /// due. When several are (a long downtime), the newest is collected and the others dropped:
    /// one label result per epoch.
    async fn collect_labels(
        &self,
        setup: &LabelSetup,
        epoch: u64,
        schedule: EpochSchedule,
        miners: &[labels::LabelMiner],
    ) -> Result<Option<labels::LabelTrackResult>, ServiceError> {
        let netuid = i32::from(self.config.netuid);
        let mut due = db::label_pending_due(&self.pool, netuid, schedule.last_block(epoch)).await?;
        let Some(mut sent) = due.pop() else {
            return Ok(None);
        };
        for stale in due {
            tracing::warn!(
                epoch,
                sent_epoch = stale.epoch(),
                deadline_block = stale.deadline_block(),
                "label track: dropping batches whose collecting epoch was missed (the validator \
                 was down); their labels are not paid"
            );
            db::drop_label_pending(
                &self.pool,
                netuid,
                i64::try_from(stale.epoch()).unwrap_or(i64::MAX),
            )
            .await?;
        }
        let sent_epoch = i64::try_from(sent.epoch()).unwrap_or(i64::MAX);
        let gone = sent.follow(miners);
        if gone > 0 {
            tracing::info!(
                epoch,
                sent_epoch,
                gone,
                "label track: miners deregistered since their batch was sent are not collected"
            );
        }
        if sent.batches().next().is_none() {
            db::drop_label_pending(&self.pool, netuid, sent_epoch).await?;
            return Ok(None);
        }
        let deadline_block = sent.deadline_block();
        // Miners take labels through the deadline block itself: collecting once it is over
        // loses none of them (a label given in the last block used to be taken and never paid).
        if let Err(error) = self
            .clock
            .wait_until(deadline_block.saturating_add(1))
            .await
        {
            tracing::warn!(%error, deadline_block, "label track: waiting for the deadline failed; collecting now");
        }
        let stored_epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let history = db::known_history(
            &self.pool,
            netuid,
            stored_epoch,
            setup.track.settings().score.window_epochs,
        )
        .await?;
        let result = setup.track.collect(sent, epoch, history).await;
        let saved = db::save_label_track(&self.pool, &result).await?;
        tracing::info!(
            epoch,
            sent_epoch,
            deadline_block,
            miners = result.miners.len(),
            ok = result
                .miners
                .iter()
                .filter(|m| m.outcome == labels::collect::LabelOutcome::Ok)
                .count(),
            ?saved,
            "label track stored"
        );
        Ok(Some(result))
    }

    /// The `pending` weight row: commit–reveal with a fresh OS-random salt when the subnet has it
    /// on, plain `set_weights` otherwise.
    fn weight_record(
        &self,
        epoch: u64,
        hp: &Hyperparameters,
        timelocked: bool,
        uids: Vec<u16>,
        values: Vec<u16>,
    ) -> WeightCommitRecord {
        let netuid = self.config.netuid;
        let version_key = self.config.version_key;
        let mode = if timelocked {
            WeightMode::Timelocked
        } else if hp.commit_reveal_weights_enabled {
            let mut salt = [0u16; SALT_LEN];
            let mut rng = rand::rngs::OsRng;
            for s in &mut salt {
                *s = (rng.next_u32() & 0xffff) as u16;
            }
            let commit_hash = commit_hash(
                &self.hotkey.account_id(),
                netuid,
                &uids,
                &values,
                &salt,
                version_key,
            );
            WeightMode::CommitReveal {
                commit_hash,
                salt: salt.to_vec(),
            }
        } else {
            WeightMode::SetWeights
        };
        WeightCommitRecord::pending(netuid, epoch, uids, values, version_key, mode)
    }
}

/// What to tell the operator when the validator's neuron holds no validator permit: its weights
/// go on chain but count for nothing in Yuma Consensus (no dividends) until it does.
fn permit_warning(uid: u16, permit: bool, netuid: u16) -> Option<String> {
    (!permit).then(|| {
        format!(
            "this hotkey (uid {}) holds no validator permit on subnet {netuid}: its weights are \
             set but do not count, and it earns no dividends, until its stake is among the top \
             validators' (stake more on it; permits are given at each epoch)",
            uid
        )
    })
}

/// The metagraph's uids, in uid order.
fn neurons_of(metagraph: &Metagraph) -> Vec<Neuron> {
    let mut neurons: Vec<Neuron> = metagraph
        .neurons
        .iter()
        .map(|n| Neuron {
            uid: n.uid,
            hotkey: n.hotkey.to_ss58(),
            block_at_registration: n.block_at_registration,
        })
        .collect();
    neurons.sort_by_key(|n| n.uid);
    neurons
}

/// The model track's per-miner results as stored rows.
fn model_eval_records(model: &ModelTrackResult) -> Vec<ModelEvalRecord> {
    model
        .miners
        .iter()
        .map(|m| ModelEvalRecord {
            hotkey: m.hotkey.clone(),
            uid: i32::from(m.uid),
            manifest_sha256: m.manifest_sha256.clone(),
            commit_block: m.commit_block.map(|b| b as i64),
            outcome: m.outcome.code().into(),
            reason: m.reason.clone(),
            mean_loss: m.mean_loss,
            win_rate: (m.outcome == Outcome::Ok).then_some(m.win_rate),
            score: m.score,
            sample_losses: m.losses.clone(),
            sample_tokens: m
                .sample_tokens
                .iter()
                .map(|&t| i32::try_from(t).unwrap_or(i32::MAX))
                .collect(),
            following: m.following.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_neuron_without_a_permit_gets_a_warning_naming_the_fix() {
        let warning = permit_warning(3, false, 1).expect("a warning");
        assert!(
            warning.contains("uid 3") && warning.contains("no validator permit"),
            "{warning}"
        );
        assert!(warning.contains("stake more"), "{warning}");
        assert_eq!(permit_warning(3, true, 1), None);
    }

    #[test]
    fn version_key_is_the_sdks_version_as_int() {
        assert_eq!(version_key("11.3.0"), 11_003_000);
        assert_eq!(version_key("0.1.0"), 1_000);
        assert_eq!(version_key("1.2.3-rc.1"), 1_002_003);
    }
}
