//! `miner finetune`: fine-tune a base model on the competition's tasks or a JSONL dataset, or
//! with DPO on preferences (`--preferences`, the lines `validator export-preferences` writes;
//! the reference is the base). A share of the pairs (`--holdout`) is kept out of training, and
//! the run reports how often the base and the tuned model prefer their chosen answers.
//!
//! The loop is `subnet_model::train` (AdamW on the completion loss, warmup then linear decay,
//! per-tensor gradient clipping). While it runs, `--out/checkpoint/` holds the latest checkpoint;
//! re-running the same command after an interruption resumes from it (and says so), exactly: the
//! generated samples depend only on `--seed`, `--steps` and `--batch`, and the checkpoint keeps
//! the optimizer state. A different `--steps` continues from the checkpoint's step on a
//! different sample stream. When the run
//! finishes, `--out` holds exactly a servable artifact — `config.json`, `model.safetensors` and the
//! base's `tokenizer.json` / `generation_config.json` if it had them — and the checkpoint is
//! removed, because `miner serve --model.dir` refuses sub-directories.
//!
//! Progress is a bar with the loss on a terminal and about twenty log lines otherwise.
//!
//! Ctrl-C (or SIGTERM) stops the run after the step in progress and saves it as the checkpoint;
//! the command prints where it stopped and the command that resumes (the same one), and exits
//! 130. A second Ctrl-C quits at once, keeping the last checkpoint written.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use subnet_model::{
    backend::{self, DeviceChoice, TrainTask},
    competition::Competition,
    config::LlamaConfig,
    data::{Dataset, Limits, load_preferences},
    eval::Sample,
    io::{WeightDtype, convert_weights, load_artifact},
    tasks::{TaskKind, TaskMix, generate},
    tokenizer::Tokenizer,
    train::{
        CHECKPOINT_DIR, DpoConfig, PairLogProbs, PreferencePair, STATE_FILE, StepReport, StopFlag,
        TrainConfig, TrainError, TrainOutcome, pair_log_probs, preference_accuracy,
        preference_margins, train, train_preferences,
    },
};

use super::{check_bounds, init_base::ensure_empty_or_forced, load_competition};
use crate::artifact::Artifact;
use subnet_common::protocol::OPTIONAL_FILES;

/// Most task samples generated for one run (fresh ones for every step up to this many).
pub const MAX_GENERATED_SAMPLES: usize = 1_000_000;

/// `miner finetune`.
#[derive(Debug, Clone, Args)]
pub struct FinetuneArgs {
    /// Model directory to start from (`config.json` + `model.safetensors`, e.g. from
    /// `miner init-base`).
    #[arg(long, env = "MINER_FINETUNE_BASE")]
    pub base: PathBuf,

    /// Directory for checkpoints and the final artifact (created if missing).
    #[arg(long, env = "MINER_FINETUNE_OUT")]
    pub out: PathBuf,

    /// Total optimizer steps (a resumed run stops at the same total).
    #[arg(long, env = "MINER_FINETUNE_STEPS")]
    pub steps: usize,

    /// Peak learning rate.
    #[arg(long, env = "MINER_FINETUNE_LR", default_value_t = 1e-3)]
    pub lr: f64,

    /// Samples per step.
    #[arg(long, env = "MINER_FINETUNE_BATCH", default_value_t = 16)]
    pub batch: usize,

    /// Longest sample in tokens (default: the competition's `eval.max_seq_len`).
    #[arg(long = "seq-len", env = "MINER_FINETUNE_SEQ_LEN")]
    pub seq_len: Option<usize>,

    /// Warmup steps (default: a tenth of `--steps`, at most 100).
    #[arg(long, env = "MINER_FINETUNE_WARMUP")]
    pub warmup: Option<usize>,

    /// Largest gradient norm per parameter tensor; 0 disables clipping.
    #[arg(long, env = "MINER_FINETUNE_CLIP", default_value_t = 1.0)]
    pub clip: f64,

    /// AdamW weight decay.
    #[arg(
        long = "weight-decay",
        env = "MINER_FINETUNE_WEIGHT_DECAY",
        default_value_t = 0.01
    )]
    pub weight_decay: f64,

    /// Save a checkpoint every this many steps (0: none until the end).
    #[arg(
        long = "checkpoint-every",
        env = "MINER_FINETUNE_CHECKPOINT_EVERY",
        default_value_t = 100
    )]
    pub checkpoint_every: usize,

    /// Seed of the generated tasks and of the sample order.
    #[arg(long, env = "MINER_FINETUNE_SEED", default_value_t = 0)]
    pub seed: u64,

    /// JSONL file of `{"prompt", "completion"}` (or `{"input_ids", "completion_start"}`) lines
    /// to train on instead of generated tasks.
    #[arg(long, env = "MINER_FINETUNE_DATA", conflicts_with = "tasks")]
    pub data: Option<PathBuf>,

    /// JSONL file of preferences (`{"prompt", "chosen", "rejected", ...}` per line, as
    /// `validator export-preferences` writes them) to train on with DPO instead, the base as
    /// the reference; `--batch` counts pairs.
    #[arg(long, env = "MINER_FINETUNE_PREFERENCES", conflicts_with_all = ["data", "tasks"])]
    pub preferences: Option<PathBuf>,

    /// DPO's β: how far the model may move from the base (larger keeps it closer).
    #[arg(
        long = "dpo.beta",
        env = "MINER_FINETUNE_DPO_BETA",
        default_value_t = 0.1,
        requires = "preferences"
    )]
    pub dpo_beta: f64,

    /// Share of the preference pairs kept out of training (picked by `--seed`) to measure how
    /// often the base and the tuned model prefer the chosen answer; 0 keeps none.
    #[arg(long, env = "MINER_FINETUNE_HOLDOUT", default_value_t = 0.1,
          value_parser = parse_holdout, requires = "preferences")]
    pub holdout: f64,

    /// Comma-separated task kinds to generate, equally weighted (default: the competition's
    /// task mix). Kinds: arithmetic, reverse, sort, copy, count, successor.
    #[arg(long, env = "MINER_FINETUNE_TASKS", value_delimiter = ',', value_parser = parse_task_kind)]
    pub tasks: Vec<TaskKind>,

    /// Competition file (default: the built-in `competitions/default.toml`): architecture
    /// bounds, task mix, sequence length, artifact size limit, and the id in the manifest.
    #[arg(long, env = "MINER_COMPETITION_FILE")]
    pub competition: Option<PathBuf>,

    /// Where to train: `auto` (CUDA if built with it and a GPU answers, else CPU), `cpu`, `cuda`.
    #[arg(long, env = "MINER_DEVICE", default_value = "auto")]
    pub device: DeviceChoice,

    /// How the exported artifact stores its weights: `f32` (as trained) or `bf16` (half the
    /// size to serve and download; validators load both). The checkpoint stays f32, so a resumed
    /// run loses nothing.
    #[arg(long, env = "MINER_FINETUNE_DTYPE", default_value = "f32")]
    pub dtype: WeightDtype,

    /// Train into a non-empty `--out` that holds no checkpoint (its model files are replaced).
    #[arg(long)]
    pub force: bool,
}

/// What a finished run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct FinetuneSummary {
    /// Step the run started from (0, or the checkpoint's step).
    pub start_step: usize,
    /// Total steps.
    pub steps: usize,
    /// Losses of the steps this run did.
    pub losses: Vec<f64>,
    /// The artifact directory.
    pub out: PathBuf,
    /// How the artifact stores its weights.
    pub dtype: WeightDtype,
    /// Competition id put in the manifest.
    pub competition: String,
    /// The artifact's manifest hash, as `miner serve` and `miner commit` compute it.
    pub manifest_sha256: String,
    /// With `--preferences` and held-out pairs: how often each model prefers the chosen answer.
    pub preference: Option<PreferenceReport>,
}

/// How the base and the tuned model judge the held-out pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreferenceReport {
    /// Held-out pairs.
    pub pairs: usize,
    /// Share the base prefers the chosen answer on: a higher mean log-probability per token
    /// than the rejected one's (per token, so that length alone does not decide).
    pub base: f64,
    /// The same share for the tuned model.
    pub tuned: f64,
    /// Share on which the tuned model moved towards the chosen answer relative to the base (its
    /// summed margin grew): DPO's reward accuracy.
    pub moved: f64,
}

/// How a `miner finetune` ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finetuned {
    /// All steps ran; `--out` holds the artifact.
    Finished(FinetuneSummary),
    /// Stopped early (Ctrl-C): the checkpoint holds `step`.
    Stopped {
        /// The last step run, saved in the checkpoint.
        step: usize,
        /// The run's total steps.
        steps: usize,
        /// The checkpoint directory.
        checkpoint: PathBuf,
    },
}

/// The error of a run stopped by Ctrl-C or SIGTERM (its checkpoint saved); `main` exits 130.
#[derive(Debug, thiserror::Error)]
#[error(
    "fine-tuning stopped at step {step} (Ctrl-C); its checkpoint is saved, the same command resumes"
)]
pub struct Interrupted {
    /// The step saved.
    pub step: usize,
}

/// Runs `miner finetune` and prints the final loss and manifest hash, or, stopped by Ctrl-C or
/// SIGTERM, where the checkpoint is and the command that resumes.
pub async fn run(args: FinetuneArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let stop = StopFlag::new();
    let listener = tokio::spawn(stop_on_signal(stop.clone()));
    let finished = finetune(args, stop).await;
    listener.abort();
    let summary = match finished? {
        Finetuned::Finished(summary) => summary,
        Finetuned::Stopped {
            step,
            steps,
            checkpoint,
        } => {
            writeln!(
                out,
                "stopped at step {step} of {steps}: checkpoint saved in {}\n\
                 resume with the same command:\n  {}",
                checkpoint.display(),
                resume_command(std::env::args_os())
            )
            .context("while printing the result")?;
            return Err(Interrupted { step }.into());
        }
    };
    match summary.losses.first().zip(summary.losses.last()) {
        Some((first, last)) => writeln!(
            out,
            "final loss {last:.4} at step {} ({} steps run, first loss {first:.4})",
            summary.steps,
            summary.losses.len(),
        ),
        None => writeln!(
            out,
            "nothing to run: the checkpoint was already at step {}",
            summary.steps
        ),
    }
    .and_then(|()| match &summary.preference {
        Some(p) => writeln!(
            out,
            "held-out preference (mean log-prob per token): the base prefers the chosen answer on \
             {:.1}% of {} pairs, the tuned model on {:.1}%; the tuned model moved towards the chosen \
             answer on {:.1}% (DPO's reward accuracy)",
            100.0 * p.base,
            p.pairs,
            100.0 * p.tuned,
            100.0 * p.moved
        ),
        None => Ok(()),
    })
    .and_then(|()| {
        writeln!(
            out,
            "model written to {} ({} weights)\nmanifest sha256 {} (competition {})",
            summary.out.display(),
            summary.dtype,
            summary.manifest_sha256,
            summary.competition
        )
    })
    .context("while printing the result")
}

/// Raises `stop` at the first Ctrl-C or SIGTERM (the run saves the step in progress and
/// stops); quits at once at the second.
async fn stop_on_signal(stop: StopFlag) {
    subnet_common::serve::shutdown_signal().await;
    tracing::warn!(
        "stopping after the step in progress and saving it as the checkpoint; Ctrl-C again quits \
         without saving it"
    );
    stop.stop();
    subnet_common::serve::shutdown_signal().await;
    eprintln!("quit without saving the step in progress; the last checkpoint in --out stays");
    std::process::exit(130);
}

/// The command line this process was started with, quoted for a POSIX shell: the command that
/// resumes a stopped run.
fn resume_command(args: impl Iterator<Item = std::ffi::OsString>) -> String {
    args.map(|arg| shell_quote(&arg.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `word` as one POSIX shell word: as is when it needs no quoting, else in single quotes.
fn shell_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `clap` parser of `--holdout`: a fraction below 1.
fn parse_holdout(text: &str) -> Result<f64, String> {
    let value = subnet_common::cli::parse_fraction(text)?;
    if value >= 1.0 {
        return Err("must be below 1: some pairs must be left to train on".into());
    }
    Ok(value)
}

/// Fine-tunes as `args` say (the training on a blocking thread), then hashes the artifact
/// exactly as `miner serve` does. Raising `stop` ends the run after the step in progress, saved
/// as the checkpoint ([`Finetuned::Stopped`]).
pub async fn finetune(args: FinetuneArgs, stop: StopFlag) -> anyhow::Result<Finetuned> {
    let (out, dtype, steps) = (args.out.clone(), args.dtype, args.steps);
    let ran = tokio::task::spawn_blocking(move || {
        let (trained, competition) = match train_blocking(&args, stop)? {
            Run::Finished(trained, competition) => (trained, competition),
            Run::Stopped { step, checkpoint } => {
                return anyhow::Ok(Run::Stopped { step, checkpoint });
            }
        };
        if args.dtype != WeightDtype::F32 {
            convert_weights(&args.out, args.dtype).with_context(|| {
                format!(
                    "while storing the artifact in {} as {}",
                    args.out.display(),
                    args.dtype
                )
            })?;
        }
        anyhow::Ok(Run::Finished(trained, competition))
    })
    .await
    .context("while waiting for the training thread")??;
    let (trained, competition) = match ran {
        Run::Finished(trained, competition) => (trained, competition),
        Run::Stopped { step, checkpoint } => {
            return Ok(Finetuned::Stopped {
                step,
                steps,
                checkpoint,
            });
        }
    };
    let Trained {
        outcome,
        preference,
    } = trained;
    let artifact = Artifact::load(&out, &competition)
        .await
        .with_context(|| format!("while hashing the artifact in {}", out.display()))?;
    Ok(Finetuned::Finished(FinetuneSummary {
        start_step: outcome.start_step,
        steps: outcome.start_step + outcome.losses.len(),
        losses: outcome.losses,
        out,
        dtype,
        competition,
        manifest_sha256: artifact.manifest().manifest_sha256.clone(),
        preference,
    }))
}

/// What the training thread did.
enum Run {
    /// Trained every step, for the competition of this id.
    Finished(Trained, String),
    /// Stopped by the flag after `step`, saved in `checkpoint`.
    Stopped { step: usize, checkpoint: PathBuf },
}

/// A finished training run.
struct Trained {
    outcome: TrainOutcome,
    preference: Option<PreferenceReport>,
}

/// What a run trains on.
enum TrainData {
    /// Samples for the completion loss.
    Samples(Vec<Sample>),
    /// Preference pairs for DPO, and those held out to measure it.
    Pairs {
        train: Vec<PreferencePair>,
        held_out: Vec<PreferencePair>,
        beta: f64,
    },
}

/// Loads everything, trains, and leaves a servable artifact in `--out` (or, stopped, the
/// checkpoint); returns the outcome and the competition id.
fn train_blocking(args: &FinetuneArgs, stop: StopFlag) -> anyhow::Result<Run> {
    let competition = load_competition(args.competition.as_deref())?;
    let config = load_base_config(&args.base)?;
    check_bounds(&config, &competition)
        .with_context(|| format!("--base {}", args.base.display()))?;
    let tokenizer = artifact_tokenizer(&args.base)?;
    if tokenizer.vocab_size() > config.vocab_size {
        bail!(
            "--base {}: its tokenizer has {} ids but the model only {} (vocab_size)",
            args.base.display(),
            tokenizer.vocab_size(),
            config.vocab_size
        );
    }
    let seq_len = args.seq_len.unwrap_or(competition.eval.max_seq_len);
    if seq_len < 2 || seq_len > config.max_position_embeddings {
        bail!(
            "--seq-len {seq_len} must be within 2..={} (the base model's max_position_embeddings)",
            config.max_position_embeddings
        );
    }
    let train_config = train_config(args, stop)?;
    let resume_from = checkpoint_step(&args.out)?;
    match resume_from {
        Some(step) => tracing::info!(
            step,
            checkpoint = %args.out.join(CHECKPOINT_DIR).display(),
            "resuming from the checkpoint in --out"
        ),
        None => ensure_empty_or_forced(&args.out, args.force, "--out")?,
    }
    let data = match &args.preferences {
        Some(path) => preference_data(args, path, &tokenizer, seq_len)?,
        None => TrainData::Samples(training_samples(args, &competition, &tokenizer, seq_len)?),
    };
    let device = backend::select(args.device).context("--device")?;
    let samples = match &data {
        TrainData::Samples(samples) => samples.len(),
        TrainData::Pairs { train, .. } => train.len(),
    };
    tracing::info!(
        device = %device.name(),
        samples,
        dpo = matches!(data, TrainData::Pairs { .. }),
        steps = args.steps,
        batch = args.batch,
        seq_len,
        params = config.num_parameters(),
        "fine-tuning"
    );
    let started = Instant::now();
    let trained = device.run_train(Job {
        base: &args.base,
        out: &args.out,
        config: &config,
        data: &data,
        eval_batch: args.batch,
        train: &train_config,
        resume: resume_from.is_some(),
        max_bytes: competition.max_artifact_bytes,
        start_step: resume_from.unwrap_or(0),
    });
    let trained = match trained {
        Ok(trained) => trained,
        Err(error) => {
            if let Some(TrainError::Stopped { step, checkpoint }) = error.downcast_ref() {
                tracing::info!(step, checkpoint = %checkpoint.display(), "training stopped");
                return Ok(Run::Stopped {
                    step: *step,
                    checkpoint: checkpoint.clone(),
                });
            }
            return Err(error);
        }
    };
    tracing::info!(
        seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
        "training finished"
    );
    finish_artifact(&args.base, &args.out)?;
    Ok(Run::Finished(trained, competition.id))
}

/// The preference pairs of `path`, split into training and held-out pairs by `--seed`: a pair is
/// held out when the hash of the seed and its line index falls under `--holdout`.
fn preference_data(
    args: &FinetuneArgs,
    path: &Path,
    tokenizer: &Tokenizer,
    seq_len: usize,
) -> anyhow::Result<TrainData> {
    if !(args.dpo_beta.is_finite() && args.dpo_beta > 0.0) {
        bail!("--dpo.beta {} must be a positive number", args.dpo_beta);
    }
    let records = load_preferences(path, &Limits::default())
        .with_context(|| format!("--preferences {}", path.display()))?;
    let mut train = Vec::new();
    let mut held_out = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let (chosen, rejected) = record
            .to_samples(tokenizer, seq_len)
            .with_context(|| format!("--preferences {}: record {}", path.display(), i + 1))?;
        let pair = PreferencePair { chosen, rejected };
        let draw: [u8; 32] = Sha256::new()
            .chain_update(b"miner-finetune/holdout")
            .chain_update(args.seed.to_le_bytes())
            .chain_update((i as u64).to_le_bytes())
            .finalize()
            .into();
        let mut head = [0u8; 8];
        head.copy_from_slice(&draw[..8]);
        let unit = u64::from_le_bytes(head) as f64 / u64::MAX as f64;
        if unit < args.holdout {
            held_out.push(pair);
        } else {
            train.push(pair);
        }
    }
    if train.is_empty() {
        bail!(
            "--preferences {}: every pair fell in the held-out share (--holdout {}); lower it or add pairs",
            path.display(),
            args.holdout
        );
    }
    Ok(TrainData::Pairs {
        train,
        held_out,
        beta: args.dpo_beta,
    })
}

/// `clap` parser of one `--tasks` entry.
fn parse_task_kind(name: &str) -> Result<TaskKind, String> {
    TaskKind::ALL
        .into_iter()
        .find(|kind| kind.name() == name.trim())
        .ok_or_else(|| {
            let known: Vec<&str> = TaskKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown task {name:?}; known: {}", known.join(", "))
        })
}

fn load_base_config(base: &Path) -> anyhow::Result<LlamaConfig> {
    if !base.is_dir() {
        bail!(
            "--base {}: no such directory (create a base model with `miner init-base --out DIR`)",
            base.display()
        );
    }
    LlamaConfig::from_file(&base.join("config.json"))
        .with_context(|| format!("--base {}: while reading config.json", base.display()))
}

/// The tokenizer a validator will build from the artifact: `tokenizer.json` (special tokens from
/// `tokenizer_config.json`) if the model directory has one, else the built-in byte-level one.
fn artifact_tokenizer(dir: &Path) -> anyhow::Result<Tokenizer> {
    Tokenizer::from_model_dir(dir).with_context(|| format!("--base {}: tokenizer", dir.display()))
}

fn train_config(args: &FinetuneArgs, stop: StopFlag) -> anyhow::Result<TrainConfig> {
    if args.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr {} must be a positive number", args.lr);
    }
    if !(args.clip.is_finite() && args.clip >= 0.0) {
        bail!("--clip {} must be 0 (off) or positive", args.clip);
    }
    if !(args.weight_decay.is_finite() && args.weight_decay >= 0.0) {
        bail!("--weight-decay {} must be 0 or positive", args.weight_decay);
    }
    Ok(TrainConfig {
        steps: args.steps,
        batch_size: args.batch,
        learning_rate: args.lr,
        warmup_steps: args.warmup.unwrap_or((args.steps / 10).min(100)),
        weight_decay: args.weight_decay,
        max_grad_norm: (args.clip > 0.0).then_some(args.clip),
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        stop,
    })
}

/// The step of a complete checkpoint in `out`, if there is one.
fn checkpoint_step(out: &Path) -> anyhow::Result<Option<usize>> {
    let path = out.join(CHECKPOINT_DIR).join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("while reading {}", path.display())),
    };
    let state: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a trainer state", path.display()))?;
    let step = state["step"]
        .as_u64()
        .with_context(|| format!("{}: no step number", path.display()))?;
    Ok(Some(usize::try_from(step).context("checkpoint step")?))
}

/// The training samples: the JSONL dataset, or tasks generated from `--seed`.
fn training_samples(
    args: &FinetuneArgs,
    competition: &Competition,
    tokenizer: &Tokenizer,
    seq_len: usize,
) -> anyhow::Result<Vec<Sample>> {
    if let Some(path) = &args.data {
        let dataset = Dataset::load(path, &Limits::default())
            .with_context(|| format!("--data {}", path.display()))?;
        return dataset
            .records()
            .iter()
            .enumerate()
            .map(|(i, record)| {
                record
                    .to_sample(tokenizer, seq_len)
                    .with_context(|| format!("--data {}: record {}", path.display(), i + 1))
            })
            .collect();
    }
    let mix = if args.tasks.is_empty() {
        competition.tasks.clone()
    } else {
        TaskMix::new(args.tasks.iter().map(|&kind| (kind, 1)).collect()).context("--tasks")?
    };
    let n = args
        .steps
        .saturating_mul(args.batch)
        .clamp(1, MAX_GENERATED_SAMPLES);
    let seed: [u8; 32] = Sha256::new()
        .chain_update(b"miner-finetune/tasks")
        .chain_update(args.seed.to_le_bytes())
        .finalize()
        .into();
    generate(seed, &mix, n)
        .iter()
        .map(|example| {
            competition
                .task_sample(tokenizer, example, seq_len)
                .with_context(|| format!("encoding the generated task {:?}", example.prompt))
        })
        .collect()
}

/// One fine-tuning run, generic over the backend the device selection picked.
struct Job<'a> {
    base: &'a Path,
    out: &'a Path,
    config: &'a LlamaConfig,
    data: &'a TrainData,
    /// Sequences per forward pass when measuring preferences.
    eval_batch: usize,
    train: &'a TrainConfig,
    resume: bool,
    max_bytes: u64,
    start_step: usize,
}

impl TrainTask for Job<'_> {
    type Output = anyhow::Result<Trained>;

    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output {
        B::seed(&device, self.train.seed);
        let (_, model) = load_artifact::<B>(self.base, self.max_bytes, &device)
            .with_context(|| format!("--base {}: while loading the model", self.base.display()))?;
        let mut progress = Progress::new(self.train.steps, self.start_step);
        let mut report = |r: &StepReport| progress.step(r);
        let failed = || format!("while fine-tuning into {}", self.out.display());
        let trained = match self.data {
            TrainData::Samples(samples) => {
                let (_, outcome) = train(
                    model,
                    self.config,
                    samples,
                    self.train,
                    self.out,
                    self.resume,
                    &mut report,
                )
                .with_context(failed)?;
                Trained {
                    outcome,
                    preference: None,
                }
            }
            TrainData::Pairs {
                train: pairs,
                held_out,
                beta,
            } => {
                // The base is the reference; its margins are computed once, before training.
                let scored = |model: &_, pairs: &[PreferencePair]| {
                    pair_log_probs(model, pairs, self.eval_batch)
                        .context("while scoring the preference pairs")
                };
                let base = model.valid();
                let reference = preference_margins(&base, pairs, self.eval_batch)
                    .context("while scoring the preference pairs")?;
                let base_held_out = scored(&base, held_out)?;
                drop(base);
                let (model, outcome) = train_preferences(
                    model,
                    self.config,
                    pairs,
                    &reference,
                    DpoConfig { beta: *beta },
                    self.train,
                    self.out,
                    self.resume,
                    &mut report,
                )
                .with_context(failed)?;
                let preference = if held_out.is_empty() {
                    None
                } else {
                    let tuned = scored(&model.valid(), held_out)?;
                    let means = |lps: &[PairLogProbs]| -> Vec<f64> {
                        lps.iter().map(PairLogProbs::mean_margin).collect()
                    };
                    let moved: Vec<f64> = tuned
                        .iter()
                        .zip(&base_held_out)
                        .map(|(t, b)| t.margin() - b.margin())
                        .collect();
                    Some(PreferenceReport {
                        pairs: held_out.len(),
                        base: preference_accuracy(&means(&base_held_out)),
                        tuned: preference_accuracy(&means(&tuned)),
                        moved: preference_accuracy(&moved),
                    })
                };
                Trained {
                    outcome,
                    preference,
                }
            }
        };
        progress.finish();
        Ok(trained)
    }
}

/// Step reports shown as a progress bar (terminal) or periodic log lines.
enum Progress {
    /// An interactive terminal: a bar with the latest loss.
    Bar(ProgressBar),
    /// Logs: one line every `every` steps with the mean loss since the last line.
    Lines {
        every: usize,
        sum: f64,
        count: usize,
        started: Instant,
    },
}

impl Progress {
    fn new(steps: usize, start_step: usize) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(steps as u64);
            let style = ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} steps  loss {msg}  eta {eta}",
            )
            .map(|style| style.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_position(start_step as u64);
            Self::Bar(bar)
        } else {
            Self::Lines {
                every: (steps / 20).max(1),
                sum: 0.0,
                count: 0,
                started: Instant::now(),
            }
        }
    }

    fn step(&mut self, report: &StepReport) {
        match self {
            Self::Bar(bar) => {
                bar.set_position(report.step as u64);
                bar.set_message(format!("{:.4}", report.loss));
            }
            Self::Lines {
                every,
                sum,
                count,
                started,
            } => {
                *sum += report.loss;
                *count += 1;
                if report.step.is_multiple_of(*every) || report.step == report.steps {
                    let seconds_per_step = started.elapsed().as_secs_f64() / *count as f64;
                    tracing::info!(
                        step = report.step,
                        steps = report.steps,
                        loss = format!("{:.4}", *sum / *count as f64),
                        lr = format!("{:.2e}", report.learning_rate),
                        seconds_per_step = format!("{seconds_per_step:.3}"),
                        "training"
                    );
                    (*sum, *count, *started) = (0.0, 0, Instant::now());
                }
            }
        }
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish();
        }
    }
}

/// Makes `out` a servable artifact: copies the base's optional files (tokenizer, generation
/// config) and removes the checkpoint of the finished run.
fn finish_artifact(base: &Path, out: &Path) -> anyhow::Result<()> {
    for name in OPTIONAL_FILES {
        let from = base.join(name);
        if from.is_file() && base != out {
            std::fs::copy(&from, out.join(name)).with_context(|| {
                format!("while copying {} into {}", from.display(), out.display())
            })?;
        }
    }
    let checkpoint = out.join(CHECKPOINT_DIR);
    std::fs::remove_dir_all(&checkpoint)
        .with_context(|| format!("while removing the finished run's {}", checkpoint.display()))?;
    tracing::info!(dir = %out.display(), "artifact ready (checkpoint removed)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_parse_and_unknown_ones_list_the_known() {
        assert_eq!(parse_task_kind("reverse"), Ok(TaskKind::Reverse));
        let err = parse_task_kind("poetry").unwrap_err();
        assert!(
            err.contains("arithmetic") && err.contains("successor"),
            "{err}"
        );
    }

    #[test]
    fn the_resume_command_quotes_only_what_a_shell_would_split() {
        let args = [
            "miner",
            "finetune",
            "--out",
            "my dir/it's",
            "--lr",
            "3e-3",
            "",
        ];
        assert_eq!(
            resume_command(args.iter().map(std::ffi::OsString::from)),
            r"miner finetune --out 'my dir/it'\''s' --lr 3e-3 ''"
        );
    }

    #[test]
    fn checkpoint_step_reads_the_trainer_state() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(checkpoint_step(dir.path()).unwrap(), None);
        let checkpoint = dir.path().join(CHECKPOINT_DIR);
        std::fs::create_dir(&checkpoint).unwrap();
        std::fs::write(checkpoint.join(STATE_FILE), r#"{"step": 12, "seed": 0}"#).unwrap();
        assert_eq!(checkpoint_step(dir.path()).unwrap(), Some(12));
        std::fs::write(checkpoint.join(STATE_FILE), "{").unwrap();
        assert!(checkpoint_step(dir.path()).is_err());
    }
}
