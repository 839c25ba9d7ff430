//! Fine-tuning: AdamW on the completion loss ([`train`]) or on preferences ([`train_preferences`],
//! DPO), with linear warmup, gradient clipping, periodic checkpoints and resume, writing an
//! HF-style artifact directory.
//!
//! DPO (Rafailov et al. 2023) trains on pairs of completions of one prompt, one preferred: with
//! `m(x) = log π(chosen) − log π(rejected)` summed over the completion tokens, and the same margin
//! `m_ref` of the reference model (the base, computed once before training),
//!
//! ```text
//! loss = mean over pairs of −log σ(β · (m − m_ref))
//! ```
//!
//! so the model moves towards the preferred answers, β keeping it near the reference.
//!
//! The objective is the one the validator scores: for each sample the mean cross-entropy over
//! its completion tokens, averaged over the batch. Samples are drawn in a seeded order (a fresh
//! shuffle per pass over the data), so step `s` always sees the same batch and a resumed run
//! continues the same stream.
//!
//! Layout of `out_dir`: `config.json` + `model.safetensors` (the final model), and
//! `checkpoint/` with the same two files, burn records of the exact training state
//! (`model.bin` with parameter ids, `optimizer.bin` with AdamW's moments) and
//! `trainer_state.json` (written last, so a present state file means a complete checkpoint).
//! Resuming restores all of it: a run stopped and resumed ends with the same weights as one that
//! ran straight through. A [`StopFlag`] in the config stops a run after the step in progress,
//! with a checkpoint of that step ([`TrainError::Stopped`]): what Ctrl-C does to `miner finetune`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::{AutodiffModule, Module};
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::LlamaConfig;
use crate::eval::{EvalError, Sample, check_samples, evaluate, pad_batch};
use crate::io::{IoError, save_artifact};
use crate::llama::Llama;

/// The sub-directory of the output directory that holds the latest checkpoint.
pub const CHECKPOINT_DIR: &str = "checkpoint";
/// The trainer's progress file inside the checkpoint directory.
pub const STATE_FILE: &str = "trainer_state.json";
/// Stem of the burn record of the model (with parameter ids) inside the checkpoint directory.
const MODEL_RECORD: &str = "model";
/// Stem of the burn record of the optimizer state inside the checkpoint directory.
const OPTIMIZER_RECORD: &str = "optimizer";

/// Full-precision bincode records: exact, and tied to this crate's burn version.
type CheckpointRecorder = BinFileRecorder<FullPrecisionSettings>;

/// Hyperparameters of a fine-tuning run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Total optimizer steps (a resumed run stops at the same total).
    pub steps: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// Peak learning rate, reached after the warmup.
    pub learning_rate: f64,
    /// Steps of linear warmup from `learning_rate / warmup_steps` to `learning_rate`; after it the
    /// rate decays linearly to 10% of the peak at the last step.
    pub warmup_steps: usize,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Largest L2 norm of each parameter's gradient (burn clips per parameter tensor); `None`
    /// to disable.
    pub max_grad_norm: Option<f64>,
    /// Save a checkpoint every this many steps (0: only the final model).
    pub checkpoint_every: usize,
    /// Seed of the sample order.
    pub seed: u64,
    /// Asks the run to stop early (not a hyperparameter: never saved, never compared).
    pub stop: StopFlag,
}

/// Asks a running [`train`] or [`train_preferences`] to stop after the step in progress, which
/// it saves as a checkpoint and answers [`TrainError::Stopped`]. Clones share the flag; the
/// default one never fires.
#[derive(Debug, Clone, Default)]
pub struct StopFlag(Option<Arc<AtomicBool>>);

impl StopFlag {
    /// A flag that [`StopFlag::stop`] can raise.
    pub fn new() -> Self {
        Self(Some(Arc::new(AtomicBool::new(false))))
    }

    /// Asks the run to stop (from any thread, e.g. a signal handler's task).
    pub fn stop(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

/// Every flag is equal: a stop request is not part of a run's configuration.
impl PartialEq for StopFlag {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 1000,
            batch_size: 16,
            learning_rate: 1e-3,
            warmup_steps: 50,
            weight_decay: 0.01,
            max_grad_norm: Some(1.0),
            checkpoint_every: 100,
            seed: 0,
            stop: StopFlag::default(),
        }
    }
}

/// What one step did, handed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// 1-based step number.
    pub step: usize,
    /// Total steps of the run.
    pub steps: usize,
    /// The batch's loss before the update (mean over samples of the completion loss).
    pub loss: f64,
    /// The learning rate used.
    pub learning_rate: f64,
}

/// Summary of a finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    /// The step the run started from (0, or the checkpoint's step when resumed).
    pub start_step: usize,
    /// Losses of the steps run by this call, in order.
    pub losses: Vec<f64>,
    /// Where the final artifact was written.
    pub artifact_dir: PathBuf,
}

/// Progress saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TrainerState {
    step: usize,
    seed: u64,
    batch_size: usize,
    loss: f64,
    /// [`Objective::name`]; checkpoints from before DPO are completion ones.
    #[serde(default = "completion_objective")]
    objective: String,
}

fn completion_objective() -> String {
    Objective::Completion.name().to_string()
}

/// What a run optimises (recorded in its checkpoints: a resume must not switch it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objective {
    /// The completion loss.
    Completion,
    /// DPO on preference pairs.
    Preference,
}

impl Objective {
    fn name(self) -> &'static str {
        match self {
            Objective::Completion => "completion",
            Objective::Preference => "dpo",
        }
    }
}

/// One preference: a prompt with the preferred completion and the other one, as two samples that
/// share the prompt tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencePair {
    /// Prompt then the preferred completion.
    pub chosen: Sample,
    /// Prompt then the other completion.
    pub rejected: Sample,
}

/// DPO's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpoConfig {
    /// How far the model may move from the reference: larger keeps it closer (0.1 is usual).
    pub beta: f64,
}

impl Default for DpoConfig {
    fn default() -> Self {
        Self { beta: 0.1 }
    }
}

/// One pair's completion log-probabilities under a model: the summed log-probability and the
/// token count of the chosen and of the rejected completion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairLogProbs {
    /// `(Σ log p, tokens)` of the chosen completion.
    pub chosen: (f64, usize),
    /// `(Σ log p, tokens)` of the rejected completion.
    pub rejected: (f64, usize),
}

impl PairLogProbs {
    /// `log p(chosen) − log p(rejected)`, summed over the tokens: DPO's margin.
    pub fn margin(&self) -> f64 {
        self.chosen.0 - self.rejected.0
    }

    /// The same per token (each side's mean log-probability): which answer a model prefers
    /// when the two differ in length.
    pub fn mean_margin(&self) -> f64 {
        let mean = |(sum, tokens): (f64, usize)| sum / tokens.max(1) as f64;
        mean(self.chosen) - mean(self.rejected)
    }
}

/// Each pair's [`PairLogProbs`] under `model`, computed `batch_size` sequences at a time.
pub fn pair_log_probs<B: Backend>(
    model: &Llama<B>,
    pairs: &[PreferencePair],
    batch_size: usize,
) -> Result<Vec<PairLogProbs>, EvalError> {
    let samples: Vec<Sample> = pairs
        .iter()
        .flat_map(|p| [p.chosen.clone(), p.rejected.clone()])
        .collect();
    let losses = evaluate(model, &samples, batch_size)?;
    let side = |l: &crate::eval::SampleLoss| (-l.loss * l.tokens as f64, l.tokens);
    Ok(losses
        .chunks(2)
        .map(|pair| PairLogProbs {
            chosen: side(&pair[0]),
            rejected: side(&pair[1]),
        })
        .collect())
}

/// Each pair's margin under `model` ([`PairLogProbs::margin`]); with the base model these are
/// DPO's reference margins.
pub fn preference_margins<B: Backend>(
    model: &Llama<B>,
    pairs: &[PreferencePair],
    batch_size: usize,
) -> Result<Vec<f64>, EvalError> {
    Ok(pair_log_probs(model, pairs, batch_size)?
        .iter()
        .map(PairLogProbs::margin)
        .collect())
}

/// The share of `margins` above 0: how often a model prefers the chosen completion (0 for none).
pub fn preference_accuracy(margins: &[f64]) -> f64 {
    if margins.is_empty() {
        return 0.0;
    }
    margins.iter().filter(|&&m| m > 0.0).count() as f64 / margins.len() as f64
}

/// Why training could not run or finish.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A training sample is unusable.
    #[error("bad training data: {0}")]
    Data(#[from] EvalError),
    /// There are no training samples.
    #[error("no training samples")]
    NoSamples,
    /// The hyperparameters are unusable.
    #[error("bad training config: {0}")]
    Config(String),
    /// Reading or writing an artifact or checkpoint failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Reading or writing the trainer state failed.
    #[error("trainer state {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The checkpoint belongs to a different model or run.
    #[error("checkpoint in {path} does not match this run: {message}")]
    CheckpointMismatch {
        /// The checkpoint directory.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// Writing or reading a burn record (model or optimizer state) failed.
    #[error("checkpoint record {path}: {message}")]
    Record {
        /// The record file stem.
        path: PathBuf,
        /// The recorder's message.
        message: String,
    },
    /// The loss became NaN or infinite.
    #[error("loss is not finite at step {step}")]
    Diverged {
        /// The step.
        step: usize,
    },
    /// Reading the loss back from the backend failed.
    #[error("reading the loss from the backend: {0}")]
    Backend(String),
    /// The [`StopFlag`] was raised: the run stopped after `step`, saved in `checkpoint`.
    #[error("stopped at step {step}; checkpoint saved in {checkpoint}")]
    Stopped {
        /// The last step run and saved.
        step: usize,
        /// The checkpoint directory.
        checkpoint: PathBuf,
    },
}

/// The learning rate at 1-based `step`.
pub fn learning_rate_at(config: &TrainConfig, step: usize) -> f64 {
    let peak = config.learning_rate;
    if step <= config.warmup_steps {
        return peak * step as f64 / config.warmup_steps as f64;
    }
    let decay_steps = config.steps.saturating_sub(config.warmup_steps).max(1) as f64;
    let progress = (step - config.warmup_steps) as f64 / decay_steps;
    peak * (1.0 - 0.9 * progress.min(1.0))
}

/// Fine-tunes `model` on `samples` and writes the result to `out_dir`. With `resume`, a complete
/// checkpoint in `out_dir/checkpoint` replaces `model` and the run continues from its step.
pub fn train<B: AutodiffBackend>(
    model: Llama<B>,
    model_config: &LlamaConfig,
    samples: &[Sample],
    config: &TrainConfig,
    out_dir: &Path,
    resume: bool,
    progress: &mut dyn FnMut(&StepReport),
) -> Result<(Llama<B>, TrainOutcome), TrainError> {
    validate(config)?;
    if samples.is_empty() {
        return Err(TrainError::NoSamples);
    }
    check_samples(
        samples,
        model_config.vocab_size,
        model_config.max_position_embeddings,
    )?;
    run_training(
        model,
        model_config,
        Objective::Completion,
        samples.len(),
        &|model: &Llama<B>, batch: &[usize], device: &B::Device| {
            let batch: Vec<&Sample> = batch.iter().map(|&i| &samples[i]).collect();
            batch_loss(model, &batch, device)
        },
        config,
        out_dir,
        resume,
        progress,
    )
}

/// DPO: trains `model` to prefer each pair's chosen completion, relative to `reference` (each
/// pair's margin under the reference model, [`preference_margins`] of the base), and writes the
/// result to `out_dir`; checkpoints and resume as [`train`]. A step's batch is
/// `config.batch_size` pairs (twice as many sequences).
#[allow(clippy::too_many_arguments)]
pub fn train_preferences<B: AutodiffBackend>(
    model: Llama<B>,
    model_config: &LlamaConfig,
    pairs: &[PreferencePair],
    reference: &[f64],
    dpo: DpoConfig,
    config: &TrainConfig,
    out_dir: &Path,
    resume: bool,
    progress: &mut dyn FnMut(&StepReport),
) -> Result<(Llama<B>, TrainOutcome), TrainError> {
    validate(config)?;
    if pairs.is_empty() {
        return Err(TrainError::NoSamples);
    }
    if reference.len() != pairs.len() || reference.iter().any(|m| !m.is_finite()) {
        return Err(TrainError::Config(format!(
            "{} reference margins for {} pairs (each must be finite)",
            reference.len(),
            pairs.len()
        )));
    }
    if !(dpo.beta > 0.0 && dpo.beta.is_finite()) {
        return Err(TrainError::Config("beta must be positive".to_string()));
    }
    let sequences: Vec<Sample> = pairs
        .iter()
        .flat_map(|p| [p.chosen.clone(), p.rejected.clone()])
        .collect();
    check_samples(
        &sequences,
        model_config.vocab_size,
        model_config.max_position_embeddings,
    )?;
    run_training(
        model,
        model_config,
        Objective::Preference,
        pairs.len(),
        &|model: &Llama<B>, batch: &[usize], device: &B::Device| {
            let pairs: Vec<&PreferencePair> = batch.iter().map(|&i| &pairs[i]).collect();
            let reference: Vec<f64> = batch.iter().map(|&i| reference[i]).collect();
            dpo_loss(model, &pairs, &reference, dpo.beta, device)
        },
        config,
        out_dir,
        resume,
        progress,
    )
}

/// The loss of one batch of item indices.
type BatchLoss<'a, B> = dyn Fn(&Llama<B>, &[usize], &burn::tensor::Device<B>) -> Tensor<B, 1> + 'a;

/// The training loop over `items` items (samples or pairs), `loss` giving a batch's loss.
#[allow(clippy::too_many_arguments)]
fn run_training<B: AutodiffBackend>(
    mut model: Llama<B>,
    model_config: &LlamaConfig,
    objective: Objective,
    items: usize,
    loss_of: &BatchLoss<'_, B>,
    config: &TrainConfig,
    out_dir: &Path,
    resume: bool,
    progress: &mut dyn FnMut(&StepReport),
) -> Result<(Llama<B>, TrainOutcome), TrainError> {
    let device = model.embed_tokens.weight.val().device();
    let checkpoint = out_dir.join(CHECKPOINT_DIR);

    let mut start_step = 0;
    if resume && let Some(state) = read_state(&checkpoint)? {
        if state.seed != config.seed || state.batch_size != config.batch_size {
            return Err(TrainError::CheckpointMismatch {
                path: checkpoint,
                message: format!(
                    "seed {} / batch size {} there, {} / {} here",
                    state.seed, state.batch_size, config.seed, config.batch_size
                ),
            });
        }
        if state.objective != objective.name() {
            return Err(TrainError::CheckpointMismatch {
                path: checkpoint,
                message: format!(
                    "a {} run there, a {} run here",
                    state.objective,
                    objective.name()
                ),
            });
        }
        let saved_config = LlamaConfig::from_file(&checkpoint.join(crate::config::CONFIG_FILE))
            .map_err(IoError::from)?;
        if &saved_config != model_config {
            return Err(TrainError::CheckpointMismatch {
                path: checkpoint,
                message: "model config differs".to_string(),
            });
        }
        let path = checkpoint.join(MODEL_RECORD);
        model = model
            .load_file(path.clone(), &CheckpointRecorder::new(), &device)
            .map_err(|e| record_error(path, e))?;
        start_step = state.step.min(config.steps);
    }

    let mut optimizer = AdamWConfig::new()
        .with_weight_decay(config.weight_decay as f32)
        .with_grad_clipping(
            config
                .max_grad_norm
                .map(|norm| GradientClippingConfig::Norm(norm as f32)),
        )
        .init::<B, Llama<B>>();
    if start_step > 0 {
        let path = checkpoint.join(OPTIMIZER_RECORD);
        let record = CheckpointRecorder::new()
            .load(path.clone(), &device)
            .map_err(|e| record_error(path, e))?;
        optimizer = optimizer.load_record(record);
        tracing::info!(step = start_step, "resuming from checkpoint");
    }
    let mut order = SampleOrder::new(items, config.seed);
    let mut losses = Vec::with_capacity(config.steps - start_step);

    for step in start_step + 1..=config.steps {
        let batch = order.batch(step - 1, config.batch_size);
        let loss = loss_of(&model, &batch, &device);
        let loss_value = loss
            .clone()
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| TrainError::Backend(format!("{e:?}")))?
            .first()
            .copied()
            .unwrap_or(f64::NAN);
        if !loss_value.is_finite() {
            return Err(TrainError::Diverged { step });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let learning_rate = learning_rate_at(config, step);
        model = optimizer.step(learning_rate, model, grads);
        losses.push(loss_value);
        progress(&StepReport {
            step,
            steps: config.steps,
            loss: loss_value,
            learning_rate,
        });
        let periodic = config.checkpoint_every > 0 && step % config.checkpoint_every == 0;
        let stop = config.stop.is_stopped();
        if step < config.steps && (periodic || stop) {
            let records = (&model, optimizer.to_record());
            let at = (step, loss_value, objective);
            save_checkpoint(records, model_config, config, at, &checkpoint)?;
            if stop {
                return Err(TrainError::Stopped { step, checkpoint });
            }
        }
    }

    let last_loss = losses.last().copied().unwrap_or(f64::NAN);
    let records = (&model, optimizer.to_record());
    save_checkpoint(
        records,
        model_config,
        config,
        (config.steps, last_loss, objective),
        &checkpoint,
    )?;
    save_artifact(&model.valid(), model_config, out_dir)?;
    Ok((
        model,
        TrainOutcome {
            start_step,
            losses,
            artifact_dir: out_dir.to_path_buf(),
        },
    ))
}

fn validate(config: &TrainConfig) -> Result<(), TrainError> {
    let bad = |m: &str| Err(TrainError::Config(m.to_string()));
    if config.steps == 0 {
        return bad("steps must be at least 1");
    }
    if config.batch_size == 0 {
        return bad("batch_size must be at least 1");
    }
    if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        return bad("learning_rate must be positive");
    }
    if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
        return bad("weight_decay must be non-negative");
    }
    if let Some(norm) = config.max_grad_norm
        && !(norm > 0.0 && norm.is_finite())
    {
        return bad("max_grad_norm must be positive");
    }
    Ok(())
}

/// The training objective of one batch: mean over samples of each sample's mean completion
/// cross-entropy.
///
/// Shapes: → `[1]`.
fn batch_loss<B: AutodiffBackend>(
    model: &Llama<B>,
    batch: &[&Sample],
    device: &B::Device,
) -> Tensor<B, 1> {
    let rows = batch.len();
    weighted_completion_log_probs(model, batch, |tokens| 1.0 / (tokens * rows) as f32, device)
        .sum()
        .neg()
}

/// The log-probability of each completion token of `rows` (one padded batch), times
/// `weight(completion tokens of the row)`; 0 at prompt and padding positions.
///
/// Shapes: → `[rows, seq]`.
fn weighted_completion_log_probs<B: AutodiffBackend>(
    model: &Llama<B>,
    rows: &[&Sample],
    weight: impl Fn(usize) -> f32,
    device: &B::Device,
) -> Tensor<B, 2> {
    let (input_ids, targets, lengths) = pad_batch::<B>(rows, device);
    let [n, seq] = input_ids.dims();
    let mut weights = vec![0f32; n * seq];
    for (row, sample) in rows.iter().enumerate() {
        let (from, to) = (sample.completion_start - 1, sample.input_ids.len() - 1);
        weights[row * seq + from..row * seq + to].fill(weight(to - from));
    }
    let weights = Tensor::<B, 2>::from_data(TensorData::new(weights, [n, seq]), device);
    // [n, seq, vocab] → log p(target) [n, seq]
    let log_probs = log_softmax(model.forward_padded(input_ids, &lengths), 2)
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .reshape([n, seq]);
    log_probs * weights
}

/// DPO's loss of one batch of pairs: the mean over pairs of `−log σ(β · (m − m_ref))`, with `m`
/// the model's summed completion log-probability of the chosen minus the rejected sequence.
///
/// Shapes: → `[1]`.
fn dpo_loss<B: AutodiffBackend>(
    model: &Llama<B>,
    pairs: &[&PreferencePair],
    reference: &[f64],
    beta: f64,
    device: &B::Device,
) -> Tensor<B, 1> {
    // Chosen sequences first, then the rejected ones, in one padded batch.
    let rows: Vec<&Sample> = pairs
        .iter()
        .map(|p| &p.chosen)
        .chain(pairs.iter().map(|p| &p.rejected))
        .collect();
    let n = rows.len();
    // Summed over each completion: [n]
    let sums = weighted_completion_log_probs(model, &rows, |_| 1.0, device)
        .sum_dim(1)
        .reshape([n]);
    let k = pairs.len();
    let margins = sums.clone().narrow(0, 0, k) - sums.narrow(0, k, n - k);
    let reference: Vec<f32> = reference.iter().map(|&m| m as f32).collect();
    let reference = Tensor::<B, 1>::from_data(TensorData::new(reference, [k]), device);
    log_sigmoid((margins - reference).mul_scalar(beta))
        .mean()
        .neg()
}

/// The seeded sample stream: pass `p` over the data is a shuffle seeded by `(seed, p)`.
struct SampleOrder {
    len: usize,
    seed: u64,
    pass: Option<(usize, Vec<usize>)>,
}

impl SampleOrder {
    fn new(len: usize, seed: u64) -> Self {
        Self {
            len,
            seed,
            pass: None,
        }
    }

    /// Sample indices of 0-based step `step`.
    fn batch(&mut self, step: usize, batch_size: usize) -> Vec<usize> {
        (step * batch_size..(step + 1) * batch_size)
            .map(|position| self.at(position))
            .collect()
    }

    fn at(&mut self, position: usize) -> usize {
        let (pass, offset) = (position / self.len, position % self.len);
        if self.pass.as_ref().map(|(p, _)| *p) != Some(pass) {
            let mut indices: Vec<usize> = (0..self.len).collect();
            let mut rng = ChaCha8Rng::seed_from_u64(
                self.seed ^ (pass as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            indices.shuffle(&mut rng);
            self.pass = Some((pass, indices));
        }
        self.pass
            .as_ref()
            .map_or(offset, |(_, indices)| indices[offset])
    }
}

fn record_error(path: PathBuf, error: burn::record::RecorderError) -> TrainError {
    TrainError::Record {
        path,
        message: error.to_string(),
    }
}

fn save_checkpoint<B: AutodiffBackend, R: burn::record::Record<B>>(
    (model, optimizer): (&Llama<B>, R),
    model_config: &LlamaConfig,
    config: &TrainConfig,
    (step, loss, objective): (usize, f64, Objective),
    dir: &Path,
) -> Result<(), TrainError> {
    let path = dir.join(STATE_FILE);
    let state_error = |message: String| TrainError::State {
        path: path.clone(),
        message,
    };
    // Remove the old state first: a crash mid-write then leaves "no checkpoint", never a state
    // file next to half-written weights.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(state_error(e.to_string())),
    }
    save_artifact(&model.valid(), model_config, dir)?;
    let recorder = CheckpointRecorder::new();
    let model_record = dir.join(MODEL_RECORD);
    model
        .clone()
        .save_file(model_record.clone(), &recorder)
        .map_err(|e| record_error(model_record, e))?;
    let optimizer_record = dir.join(OPTIMIZER_RECORD);
    recorder
        .record(optimizer, optimizer_record.clone())
        .map_err(|e| record_error(optimizer_record, e))?;
    let state = TrainerState {
        step,
        seed: config.seed,
        batch_size: config.batch_size,
        loss,
        objective: objective.name().to_string(),
    };
    let text = serde_json::to_string_pretty(&state).map_err(|e| state_error(e.to_string()))?;
    let tmp = dir.join(format!(".{STATE_FILE}.tmp"));
    std::fs::write(&tmp, text).map_err(|e| state_error(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| state_error(e.to_string()))?;
    tracing::debug!(step, dir = %dir.display(), "checkpoint saved");
    Ok(())
}

fn read_state(dir: &Path) -> Result<Option<TrainerState>, TrainError> {
    let path = dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TrainError::State {
                path,
                message: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TrainError::State {
            path,
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::evaluate;
    use crate::io::load_artifact;

    type B = crate::backend::CpuTrain;

    fn model_config() -> LlamaConfig {
        LlamaConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            vocab_size: 12,
            max_position_embeddings: 16,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }

    /// "a b =" → "b a": reverse two tokens.
    fn samples() -> Vec<Sample> {
        let mut out = Vec::new();
        for a in 0..5u32 {
            for b in 0..5u32 {
                out.push(Sample {
                    input_ids: vec![10, a, b, 11, b, a],
                    completion_start: 4,
                });
            }
        }
        out
    }

    fn quick(steps: usize) -> TrainConfig {
        TrainConfig {
            steps,
            batch_size: 8,
            learning_rate: 1e-2,
            warmup_steps: 3,
            weight_decay: 0.0,
            max_grad_norm: Some(1.0),
            checkpoint_every: 4,
            seed: 3,
            stop: StopFlag::default(),
        }
    }

    fn mean_loss(model: &Llama<crate::backend::Cpu>) -> f64 {
        let losses = evaluate(model, &samples(), 32).unwrap();
        losses.iter().map(|l| l.loss).sum::<f64>() / losses.len() as f64
    }

    #[test]
    fn a_few_steps_lower_the_completion_loss_and_write_an_artifact() {
        let config = model_config();
        let model = config.init_seeded::<B>(&Default::default(), 1);
        let before = mean_loss(&model.valid());
        let dir = tempfile::tempdir().unwrap();
        let mut reports = Vec::new();
        let (model, outcome) = train(
            model,
            &config,
            &samples(),
            &quick(40),
            dir.path(),
            false,
            &mut |r| reports.push(*r),
        )
        .unwrap();
        let after = mean_loss(&model.valid());
        assert!(after < 0.6 * before, "loss {before} → {after}");
        assert_eq!(outcome.start_step, 0);
        assert_eq!(outcome.losses.len(), 40);
        assert_eq!(reports.len(), 40);
        assert_eq!(reports[0].step, 1);

        let (_, reloaded) =
            load_artifact::<crate::backend::Cpu>(dir.path(), 1 << 20, &Default::default()).unwrap();
        assert!((mean_loss(&reloaded) - after).abs() < 1e-6);
    }

    #[test]
    fn a_raised_stop_flag_ends_the_run_after_that_step_with_a_checkpoint_to_resume() {
        let config = model_config();
        let dir = tempfile::tempdir().unwrap();
        let stop = StopFlag::new();
        let stopping = TrainConfig {
            stop: stop.clone(),
            ..quick(10)
        };
        let model = config.init_seeded::<B>(&Default::default(), 2);
        let stopped = train(
            model,
            &config,
            &samples(),
            &stopping,
            dir.path(),
            false,
            &mut |r| {
                if r.step == 3 {
                    stop.stop();
                }
            },
        )
        .map(|(_, outcome)| outcome);
        let checkpoint = dir.path().join(CHECKPOINT_DIR);
        assert!(
            matches!(&stopped, Err(TrainError::Stopped { step: 3, checkpoint: c }) if *c == checkpoint),
            "{stopped:?}"
        );
        assert_eq!(read_state(&checkpoint).unwrap().unwrap().step, 3);
        let (_, resumed) = train(
            config.init_seeded::<B>(&Default::default(), 998),
            &config,
            &samples(),
            &quick(10),
            dir.path(),
            true,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!((resumed.start_step, resumed.losses.len()), (3, 7));
    }

    #[test]
    fn a_resumed_run_ends_with_the_same_weights_as_a_straight_one() {
        // A warmup longer than both runs keeps the learning rate independent of `steps`, so
        // stopping at 6 and resuming to 10 follows the same schedule as running to 10.
        let warm = |steps| TrainConfig {
            warmup_steps: 20,
            ..quick(steps)
        };
        let config = model_config();
        let start = tempfile::tempdir().unwrap();
        save_artifact(
            &config.init_seeded::<crate::backend::Cpu>(&Default::default(), 5),
            &config,
            start.path(),
        )
        .unwrap();
        let initial = || {
            load_artifact::<B>(start.path(), 1 << 20, &Default::default())
                .unwrap()
                .1
        };
        let straight = tempfile::tempdir().unwrap();
        train(
            initial(),
            &config,
            &samples(),
            &warm(10),
            straight.path(),
            false,
            &mut |_| {},
        )
        .unwrap();
        let stopped = tempfile::tempdir().unwrap();
        let (_, first) = train(
            initial(),
            &config,
            &samples(),
            &warm(6),
            stopped.path(),
            false,
            &mut |_| {},
        )
        .unwrap();
        let (_, second) = train(
            initial(),
            &config,
            &samples(),
            &warm(10),
            stopped.path(),
            true,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(second.start_step, 6);
        let (_, a) =
            load_artifact::<crate::backend::Cpu>(straight.path(), 1 << 20, &Default::default())
                .unwrap();
        let (_, b) =
            load_artifact::<crate::backend::Cpu>(stopped.path(), 1 << 20, &Default::default())
                .unwrap();
        let a = crate::io::hf_state_dict(&a).unwrap();
        let b = crate::io::hf_state_dict(&b).unwrap();
        let worst = a
            .iter()
            .flat_map(|(name, (x, _))| x.iter().zip(&b[name].0).map(|(x, y)| (x - y).abs()))
            .fold(0f32, f32::max);
        assert!(worst < 1e-6, "weights differ by {worst}");
        assert!(first.losses.len() == 6 && second.losses.len() == 4);
    }

    #[test]
    fn resumes_from_the_checkpoint_step() {
        let config = model_config();
        let dir = tempfile::tempdir().unwrap();
        let first = config.init_seeded::<B>(&Default::default(), 2);
        train(
            first,
            &config,
            &samples(),
            &quick(6),
            dir.path(),
            false,
            &mut |_| {},
        )
        .unwrap();
        let state = read_state(&dir.path().join(CHECKPOINT_DIR))
            .unwrap()
            .unwrap();
        assert_eq!(state.step, 6);

        let fresh = config.init_seeded::<B>(&Default::default(), 1100);
        let (_, outcome) = train(
            fresh,
            &config,
            &samples(),
            &quick(10),
            dir.path(),
            true,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(outcome.start_step, 6);
        assert_eq!(outcome.losses.len(), 4);

        let other_seed = TrainConfig {
            seed: 4,
            ..quick(12)
        };
        let fresh = config.init_seeded::<B>(&Default::default(), 1118);
        assert!(matches!(
            train(
                fresh,
                &config,
                &samples(),
                &other_seed,
                dir.path(),
                true,
                &mut |_| {}
            ),
            Err(TrainError::CheckpointMismatch { .. })
        ));
    }

    /// "a b =" with the reversal "b a" preferred over the same reversal in the upper register
    /// ("b+5 a+5"), for every a ≠ b below 5: a preference a model can learn from some pairs and
    /// apply to the others.
    fn preference_pairs() -> Vec<PreferencePair> {
        let mut out = Vec::new();
        for a in 0..5u32 {
            for b in (0..5u32).filter(|&b| b != a) {
                let sample = |completion: [u32; 2]| Sample {
                    input_ids: vec![10, a, b, 11, completion[0], completion[1]],
                    completion_start: 4,
                };
                out.push(PreferencePair {
                    chosen: sample([b, a]),
                    rejected: sample([b + 5, a + 5]),
                });
            }
        }
        out
    }

    #[test]
    fn dpo_starts_at_ln_2_and_makes_held_out_pairs_preferred() {
        let config = model_config();
        let model = config.init_seeded::<B>(&Default::default(), 4);
        let pairs = preference_pairs();
        // Every fifth pair is held out.
        let (held_out, train_pairs): (Vec<_>, Vec<_>) =
            pairs.into_iter().enumerate().partition(|(i, _)| i % 5 == 0);
        let held_out: Vec<PreferencePair> = held_out.into_iter().map(|(_, p)| p).collect();
        let train_pairs: Vec<PreferencePair> = train_pairs.into_iter().map(|(_, p)| p).collect();
        let base_held_out = preference_margins(&model.valid(), &held_out, 8).unwrap();
        let reference = preference_margins(&model.valid(), &train_pairs, 8).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut reports = Vec::new();
        let (model, outcome) = train_preferences(
            model,
            &config,
            &train_pairs,
            &reference,
            DpoConfig { beta: 0.5 },
            &quick(60),
            dir.path(),
            false,
            &mut |r| reports.push(*r),
        )
        .unwrap();
        // The model starts as its own reference: every margin difference is 0, loss ln 2.
        assert!(
            (reports[0].loss - std::f64::consts::LN_2).abs() < 1e-4,
            "{}",
            reports[0].loss
        );
        assert!(
            outcome.losses.last().unwrap() < &0.3,
            "{:?}",
            outcome.losses
        );
        let tuned_held_out = preference_margins(&model.valid(), &held_out, 8).unwrap();
        let (before, after) = (
            preference_accuracy(&base_held_out),
            preference_accuracy(&tuned_held_out),
        );
        assert!(after > before, "held-out preference {before} → {after}");
        assert_eq!(after, 1.0, "{tuned_held_out:?}");
        assert!(dir.path().join("model.safetensors").exists());
        // A completion run cannot resume a DPO checkpoint.
        let resumed = train(
            config.init_seeded::<B>(&Default::default(), 1200),
            &config,
            &samples(),
            &quick(40),
            dir.path(),
            true,
            &mut |_| {},
        );
        assert!(
            matches!(resumed, Err(TrainError::CheckpointMismatch { .. })),
            "{resumed:?}"
        );
    }

    #[test]
    fn dpo_refuses_mismatched_reference_margins_and_a_bad_beta() {
        let config = model_config();
        let dir = tempfile::tempdir().unwrap();
        let pairs = preference_pairs();
        let run = |reference: &[f64], beta: f64| {
            train_preferences(
                config.init_seeded::<B>(&Default::default(), 1221),
                &config,
                &pairs,
                reference,
                DpoConfig { beta },
                &quick(1),
                dir.path(),
                false,
                &mut |_| {},
            )
            .map(|_| ())
        };
        assert!(matches!(run(&[0.0], 0.1), Err(TrainError::Config(_))));
        let zeros = vec![0.0; pairs.len()];
        assert!(matches!(run(&zeros, 0.0), Err(TrainError::Config(_))));
        assert!(matches!(run(&zeros, f64::NAN), Err(TrainError::Config(_))));
    }

    #[test]
    fn learning_rate_warms_up_linearly_then_decays_to_a_tenth() {
        let config = TrainConfig {
            steps: 12,
            learning_rate: 1.0,
            warmup_steps: 2,
            ..TrainConfig::default()
        };
        assert_eq!(learning_rate_at(&config, 1), 0.5);
        assert_eq!(learning_rate_at(&config, 2), 1.0);
        assert!((learning_rate_at(&config, 7) - 0.55).abs() < 1e-12);
        assert!((learning_rate_at(&config, 12) - 0.1).abs() < 1e-12);
        let no_warmup = TrainConfig {
            warmup_steps: 0,
            ..config
        };
        assert!(learning_rate_at(&no_warmup, 1) < 1.0);
    }

    #[test]
    fn sample_order_covers_every_sample_once_per_pass() {
        let mut order = SampleOrder::new(7, 9);
        let mut first_pass: Vec<usize> = (0..7).map(|p| order.at(p)).collect();
        first_pass.sort_unstable();
        assert_eq!(first_pass, (0..7).collect::<Vec<_>>());
        let again = SampleOrder::new(7, 9).batch(3, 4);
        assert_eq!(order.batch(3, 4), again);
    }

    #[test]
    fn rejects_unusable_configs_and_data() {
        let config = model_config();
        let dir = tempfile::tempdir().unwrap();
        let run = |samples: &[Sample], train_config: &TrainConfig| {
            train(
                config.init_seeded::<B>(&Default::default(), 1274),
                &config,
                samples,
                train_config,
                dir.path(),
                false,
                &mut |_| {},
            )
        };
        assert!(matches!(run(&[], &quick(1)), Err(TrainError::NoSamples)));
        let zero_batch = TrainConfig {
            batch_size: 0,
            ..quick(1)
        };
        assert!(matches!(
            run(&samples(), &zero_batch),
            Err(TrainError::Config(_))
        ));
        let bad = [Sample {
            input_ids: vec![1, 12],
            completion_start: 1,
        }];
        assert!(matches!(
            run(&bad, &quick(1)),
            Err(TrainError::Data(EvalError::TokenOutOfRange { .. }))
        ));
    }
}
