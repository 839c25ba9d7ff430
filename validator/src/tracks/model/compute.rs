//! The CPU/GPU-bound half of the model track: load an artifact with every check, evaluate it,
//! verify a spot-check answer against it, and compare weight files for near-copies.
//!
//! Everything here is blocking and runs on the device chosen with `--device`
//! ([`subnet_model::backend::Selected::run`]); callers in async code use `spawn_blocking`.
//! Loading treats the artifact as hostile: `config.json` is parsed and its dimensions checked
//! against the competition's architecture bounds *before* the weights file is opened, and the
//! weights file's size is checked before it is read (see [`load_checked`]).
//!
//! Each evaluation also records the model's [`WeightSketch`] (per-tensor chunk norms, a few
//! kilobytes) while its weights are in memory, so that copy detection
//! ([`subnet_model::similarity::find_copies`]) reads only the weight files of pairs the sketches
//! cannot prove apart.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use subnet_model::backend::BackendTask;
use subnet_model::competition::{BoundsViolation, Competition};
use subnet_model::config::{CONFIG_FILE, ConfigError, LlamaConfig};
use subnet_model::eval::{EvalError, FittedEval, Sample, evaluate_fitted};
use subnet_model::follow::{FollowError, Followed, answer_losses, follow};
use subnet_model::generate::{GenerateError, GreedyAnswer, GreedyVerdict, verify_greedy};
use subnet_model::io::{IoError, WEIGHTS_FILE, load_weights_file, read_weights_file};
use subnet_model::llama::Llama;
use subnet_model::similarity::WeightSketch;
use subnet_model::tasks::open::OpenTask;
use subnet_model::tokenizer::{Tokenizer, TokenizerError};

use super::outcome::Outcome;

/// Why a model could not be loaded or evaluated. Each maps to a recorded [`Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `config.json` is missing or invalid.
    #[error("config.json: {0}")]
    Config(#[from] ConfigError),
    /// A dimension is above the competition's bound.
    #[error("architecture: {0}")]
    Bounds(#[from] BoundsViolation),
    /// The weights are missing, too large, or not a valid model for the config.
    #[error("weights: {0}")]
    Weights(#[from] IoError),
    /// The artifact's `tokenizer.json` cannot be used.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// The samples do not fit the model (vocabulary, context length).
    #[error("evaluation: {0}")]
    Eval(#[from] EvalError),
    /// The spot-check answer could not be checked against the model.
    #[error("spot-check: {0}")]
    Spot(#[from] GenerateError),
    /// The open instructions could not be answered (a prompt does not fit the model).
    #[error("open instructions: {0}")]
    Follow(#[from] FollowError),
}

impl ModelError {
    /// The outcome recorded for a miner whose model fails this way.
    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Bounds(_) | Self::Weights(IoError::TooLarge { .. }) => Outcome::TooLarge,
            _ => Outcome::BadModel,
        }
    }
}

/// Loads `dir` (an HF-style artifact) under the competition's rules: `config.json` valid and
/// within the architecture bounds, weights at most `max_artifact_bytes`, every tensor present with
/// the config's shape, a float dtype and finite values. Nothing is allocated on the device before
/// every check has passed.
pub fn load_checked<B: Backend>(
    dir: &Path,
    competition: &Competition,
    device: &B::Device,
) -> Result<(LlamaConfig, Llama<B>), ModelError> {
    let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE))?;
    competition.architecture.check(&config.dims())?;
    let model = load_weights_file(
        &config,
        &dir.join(WEIGHTS_FILE),
        competition.max_artifact_bytes,
        device,
    )?;
    Ok((config, model))
}

/// A checked model, its config and its weights' sketch.
type Sketched<B> = (LlamaConfig, Llama<B>, Option<Arc<WeightSketch>>);

/// [`load_checked`], also returning the weights' [`WeightSketch`] (`None`, with a warning, when
/// the file cannot be sketched). The sketch is taken from the file's bytes, which are dropped
/// before the model is read from the file again tensor by tensor: the bytes and the model are
/// never in memory together (on SmolLM2 in f32 they are 538 and 513 MB).
fn load_checked_sketched<B: Backend>(
    dir: &Path,
    competition: &Competition,
    device: &B::Device,
) -> Result<Sketched<B>, ModelError> {
    let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE))?;
    competition.architecture.check(&config.dims())?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_weights_file(&path, competition.max_artifact_bytes)?;
    let sketch = match WeightSketch::from_safetensors(&bytes) {
        Ok(sketch) => Some(Arc::new(sketch)),
        Err(reason) => {
            tracing::warn!(%reason, dir = %dir.display(), "cannot sketch the weights; near-copy checks read the file");
            None
        }
    };
    drop(bytes);
    let model = load_weights_file(&config, &path, competition.max_artifact_bytes, device)?;
    Ok((config, model, sketch))
}

/// One model's evaluation on the epoch's samples, with an optional spot-check answer to verify.
///
/// Owns its inputs so it can move into `spawn_blocking`; run it with
/// [`subnet_model::backend::Selected::run`].
#[derive(Debug, Clone)]
pub struct EvalJob {
    /// The artifact directory (`config.json`, `model.safetensors`).
    pub dir: PathBuf,
    /// The rules the artifact is loaded under.
    pub competition: Arc<Competition>,
    /// The samples, already tokenized for this model.
    pub samples: Arc<Vec<Sample>>,
    /// Samples per forward pass.
    pub batch_size: usize,
    /// Skip the evaluation (a cached result exists) and only verify `spot`.
    pub skip_eval: bool,
    /// A spot-check answer to verify, if the miner was checked.
    pub spot: Option<GreedyAnswer>,
    /// The epoch's open instructions, answered within `competition.open`'s token budget when
    /// the competition has them (not when `skip_eval`).
    pub open: Option<Arc<Vec<OpenTask>>>,
}

/// What an [`EvalJob`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutput {
    /// The model's config.
    pub config: LlamaConfig,
    /// Per-sample losses at the model's fitted temperature, in sample order, with its per-token
    /// log-probabilities (`None` when `skip_eval`).
    pub fitted: Option<Arc<FittedEval>>,
    /// The spot-check verdict, when an answer was given.
    pub spot: Option<GreedyVerdict>,
    /// The answers to the open instructions and their scores, in task order (`None` when the
    /// job had none to answer).
    pub following: Option<Vec<Followed>>,
    /// The weights' sketch, for near-copy detection (`None` when the file could not be
    /// sketched; its comparisons then read it).
    pub sketch: Option<Arc<WeightSketch>>,
    /// Where the job's time went.
    pub timings: JobTimings,
}

/// Wall time of the parts of one [`EvalJob`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobTimings {
    /// [`load_checked`]: reading and checking the config and weights, building the model, and
    /// its [`WeightSketch`].
    pub load: Duration,
    /// The forward passes over the samples (zero when `skip_eval`).
    pub eval: Duration,
    /// Verifying the spot-check answer (zero without one).
    pub spot: Duration,
    /// Answering the open instructions (zero without them).
    #[serde(default)]
    pub follow: Duration,
}

impl BackendTask for EvalJob {
    type Output = Result<EvalOutput, ModelError>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let started = Instant::now();
        let (config, model, sketch) =
            load_checked_sketched::<B>(&self.dir, &self.competition, &device)?;
        let load = started.elapsed();
        let started = Instant::now();
        let fitted = if self.skip_eval {
            None
        } else {
            let fitted = evaluate_fitted(&model, &self.samples, self.batch_size)?;
            tracing::debug!(
                inverse_temperature = fitted.inverse_temperature,
                "fitted the temperature"
            );
            Some(Arc::new(fitted))
        };
        let eval = started.elapsed();
        let started = Instant::now();
        let open = match (&self.open, self.competition.open) {
            (Some(tasks), Some(open)) if !self.skip_eval => Some((tasks, open)),
            _ => None,
        };
        // Read once, for the spot-check's stop ids and the open instructions' prompts.
        let tokenizer = if self.spot.is_some() || open.is_some() {
            Some(Tokenizer::from_model_dir(&self.dir)?)
        } else {
            None
        };
        let spot = match (&self.spot, &tokenizer) {
            (Some(answer), Some(tokenizer)) => {
                // A miner stops at its tokenizer's end-of-sequence id; accept the config's too.
                let stops: Vec<u32> = config
                    .eos_token_id
                    .into_iter()
                    .chain(tokenizer.eos_id())
                    .collect();
                Some(verify_greedy(&model, answer, &stops)?)
            }
            _ => None,
        };
        let spot_time = started.elapsed();
        let started = Instant::now();
        let following = match (open, &tokenizer) {
            (Some((tasks, open)), Some(tokenizer)) => Some(follow(
                &model,
                tokenizer,
                &self.competition,
                tasks,
                open.max_new_tokens,
            )?),
            _ => None,
        };
        Ok(EvalOutput {
            config,
            fitted,
            spot,
            following,
            sketch,
            timings: JobTimings {
                load,
                eval,
                spot: spot_time,
                follow: started.elapsed(),
            },
        })
    }
}

/// The judge's base model once loaded, shared by the judge jobs of one epoch
/// ([`JudgeJob::loaded`]): the first job loads it, the others reuse it, and it is freed with the
/// epoch. Jobs sharing it take turns (a lock held for the whole forward pass), so however many
/// run at once (with `validator worker`s, one per candidate in flight) the process holds one copy
/// of the base. Typed per backend at run time: a job on another backend than the stored one
/// loads its own.
#[derive(Default)]
pub struct LoadedBase(Mutex<Option<Box<dyn Any + Send>>>);

impl std::fmt::Debug for LoadedBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.0.lock().map(|slot| slot.is_some()).unwrap_or_default();
        f.debug_struct("LoadedBase")
            .field("loaded", &loaded)
            .finish()
    }
}

/// What [`LoadedBase`] holds for backend `B`.
struct Judge<B: Backend> {
    base: Llama<B>,
    tokenizer: Tokenizer,
}

/// The competition's base model judging one model's answers to the open instructions
/// ([`answer_losses`]): run in the validator's own process, which holds the base (a worker may
/// not). Owns its inputs so it can move into `spawn_blocking`.
#[derive(Debug, Clone)]
pub struct JudgeJob {
    /// The base model's directory (checked against the competition's pin).
    pub base_dir: PathBuf,
    /// The base once loaded from `base_dir`, shared with the epoch's other judge jobs.
    pub loaded: Arc<LoadedBase>,
    /// The rules the base is loaded under, and the prompts' format.
    pub competition: Arc<Competition>,
    /// The epoch's open instructions.
    pub tasks: Arc<Vec<OpenTask>>,
    /// The model's answers, in task order.
    pub answers: Vec<String>,
    /// Answers per forward pass.
    pub batch_size: usize,
}

impl JudgeJob {
    /// The job judging `answers` (a model's, in task order) with the base in `base_dir`: the
    /// answers that score go as they are, the others (0 already) as empty answers, not judged.
    pub fn for_answers(
        base_dir: PathBuf,
        loaded: Arc<LoadedBase>,
        competition: Arc<Competition>,
        tasks: Arc<Vec<OpenTask>>,
        answers: &[Followed],
        batch_size: usize,
    ) -> Self {
        let answers = answers
            .iter()
            .map(|a| {
                if a.score > 0.0 {
                    a.answer.clone()
                } else {
                    String::new()
                }
            })
            .collect();
        Self {
            base_dir,
            loaded,
            competition,
            tasks,
            answers,
            batch_size,
        }
    }
}

impl BackendTask for JudgeJob {
    type Output = Result<Vec<Option<f64>>, ModelError>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        // A panic in an earlier job leaves nothing half-written in the slot: it holds a whole
        // judge or none.
        let mut slot = self.loaded.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|held| held.is::<Judge<B>>()) {
            let (_, base) = load_checked::<B>(&self.base_dir, &self.competition, &device)?;
            let tokenizer = Tokenizer::from_model_dir(&self.base_dir)?;
            *slot = Some(Box::new(Judge { base, tokenizer }));
        }
        let judge = slot
            .as_ref()
            .and_then(|held| held.downcast_ref::<Judge<B>>())
            .expect("the slot holds this backend's judge");
        let answers: Vec<&str> = self.answers.iter().map(String::as_str).collect();
        Ok(answer_losses(
            &judge.base,
            &judge.tokenizer,
            &self.competition,
            &self.tasks,
            &answers,
            self.batch_size,
        )?)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use subnet_model::backend::Cpu;
    use subnet_model::io::{hf_state_dict, save_artifact};

    fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            max_position_embeddings: 32,
            ..LlamaConfig::tiny()
        }
    }

    pub(crate) fn competition() -> Competition {
        let text = crate::eval_cmd::DEFAULT_COMPETITION_TOML;
        Competition::from_toml(text).unwrap()
    }

    /// Writes the model's tensors, each passed through `edit`, as an f32 safetensors file.
    fn write_edited(model: &Llama<Cpu>, path: &Path, edit: impl Fn(&str, &mut Vec<f32>)) {
        let mut raw = Vec::new();
        for (name, (mut values, shape)) in hf_state_dict(model).unwrap() {
            edit(&name, &mut values);
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            raw.push((name, bytes, shape));
        }
        let views: Vec<_> = raw
            .iter()
            .map(|(name, bytes, shape)| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    shape.clone(),
                    bytes,
                )
                .unwrap();
                (name.as_str(), view)
            })
            .collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    /// A tiny random model (32 positions) saved as an artifact in `dir`.
    pub(crate) fn saved(dir: &Path) -> Llama<Cpu> {
        let model = tiny_config().init::<Cpu>(&Default::default());
        save_artifact(&model, &tiny_config(), dir).unwrap();
        model
    }

    #[test]
    fn bounds_are_checked_before_the_weights_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = tiny_config();
        config.num_hidden_layers = 100;
        config.save(dir.path()).unwrap();
        // No weights file at all: the bounds must refuse the model first.
        let error = load_checked::<Cpu>(dir.path(), &competition(), &Default::default())
            .err()
            .unwrap();
        assert!(matches!(error, ModelError::Bounds(ref v) if v.field == "num_hidden_layers"));
        assert_eq!(error.outcome(), Outcome::TooLarge);
    }

    #[test]
    fn oversized_and_non_finite_weights_are_refused_with_their_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let model = saved(dir.path());
        let mut rules = competition();
        assert!(load_checked::<Cpu>(dir.path(), &rules, &Default::default()).is_ok());
        rules.max_artifact_bytes = 1000;
        let error = load_checked::<Cpu>(dir.path(), &rules, &Default::default())
            .err()
            .unwrap();
        assert_eq!(error.outcome(), Outcome::TooLarge, "{error}");

        write_edited(&model, &dir.path().join(WEIGHTS_FILE), |name, values| {
            if name == "model.norm.weight" {
                values[3] = f32::NAN;
            }
        });
        let error = load_checked::<Cpu>(dir.path(), &competition(), &Default::default())
            .err()
            .unwrap();
        assert_eq!(error.outcome(), Outcome::BadModel);
        assert!(error.to_string().contains("model.norm.weight"), "{error}");
    }

    /// Two open instructions whose prompts fit [`saved`]'s 32 positions with room for an answer.
    pub(crate) fn short_open_tasks() -> Arc<Vec<OpenTask>> {
        let tasks = subnet_model::tasks::open::generate([5; 32], 2)
            .into_iter()
            .map(|task| OpenTask {
                prompt: task.subject[0].clone(),
                ..task
            })
            .collect();
        Arc::new(tasks)
    }

    #[test]
    fn the_judge_loads_the_base_and_scores_each_answer_after_its_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let base = saved(dir.path());
        let competition = Arc::new(competition());
        let tasks = short_open_tasks();
        let answers = vec!["a short answer".to_string(), String::new()];
        let job = JudgeJob {
            base_dir: dir.path().to_path_buf(),
            loaded: Arc::default(),
            competition: competition.clone(),
            tasks: tasks.clone(),
            answers: answers.clone(),
            batch_size: 4,
        };
        let losses = job.clone().run::<Cpu>(Default::default()).unwrap();
        let refs: Vec<&str> = answers.iter().map(String::as_str).collect();
        let direct =
            answer_losses(&base, &Tokenizer::bytes(), &competition, &tasks, &refs, 1).unwrap();
        assert_eq!(losses.len(), 2);
        assert!(losses[0].is_some_and(|loss| loss.is_finite() && loss > 0.0));
        assert_eq!(losses[1], None);
        assert!((losses[0].unwrap() - direct[0].unwrap()).abs() < 1e-5);
        // The epoch's later jobs reuse the loaded base: with its weights gone from the disk, a
        // job sharing the slot still judges, to the same bits.
        std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
        let again = job.clone().run::<Cpu>(Default::default()).unwrap();
        assert_eq!(again, losses);
        // A job with a slot of its own loads the base, and a base that is not there fails it
        // (the validator's problem, not the miner's).
        let unloaded = JudgeJob {
            loaded: Arc::default(),
            ..job.clone()
        };
        let error = unloaded.run::<Cpu>(Default::default()).unwrap_err();
        assert!(error.to_string().contains("weights"), "{error}");
        let missing = JudgeJob {
            base_dir: dir.path().join("nowhere"),
            loaded: Arc::default(),
            ..job
        };
        assert!(missing.run::<Cpu>(Default::default()).is_err());
    }
}
