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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use subnet_model::backend::BackendTask;
use subnet_model::competition::{ArchitectureDims, BoundsViolation, Competition};
use subnet_model::config::{CONFIG_FILE, ConfigError, LlamaConfig};
use subnet_model::eval::{EvalError, FittedEval, Sample, evaluate_fitted};
use subnet_model::io::{IoError, WEIGHTS_FILE, load_weights, read_weights_file};
use subnet_model::llama::Llama;
use subnet_model::similarity::WeightSketch;
use subnet_model::tokenizer::{Tokenizer, TokenizerError};

use super::outcome::Outcome;

/// How far below the best logit a miner's spot-check token may be and still count as the greedy
/// choice: absolute slack for numeric differences between devices (CPU vs GPU, f32 summation
/// order), far below the gap between two genuinely different choices.
pub const SPOT_LOGIT_TOLERANCE: f32 = 1e-3;

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

/// The architecture dimensions of `config`, to check against a competition's bounds.
pub fn dims_of(config: &LlamaConfig) -> ArchitectureDims {
    ArchitectureDims {
        layers: config.num_hidden_layers as u64,
        hidden_size: config.hidden_size as u64,
        intermediate_size: config.intermediate_size as u64,
        attention_heads: config.num_attention_heads as u64,
        key_value_heads: config.num_key_value_heads as u64,
        vocab_size: config.vocab_size as u64,
        max_position_embeddings: config.max_position_embeddings as u64,
        params: config.num_parameters(),
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
    let (config, model, _) = load_checked_bytes(dir, competition, device)?;
    Ok((config, model))
}

/// [`load_checked`], also returning the bytes of the weights file the model was built from.
fn load_checked_bytes<B: Backend>(
    dir: &Path,
    competition: &Competition,
    device: &B::Device,
) -> Result<(LlamaConfig, Llama<B>, Vec<u8>), ModelError> {
    let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE))?;
    competition.architecture.check(&dims_of(&config))?;
    let bytes = read_weights_file(&dir.join(WEIGHTS_FILE), competition.max_artifact_bytes)?;
    let model = load_weights(&config, &bytes, device)?;
    Ok((config, model, bytes))
}

/// What a miner's `/v1/generate` returned for a greedy request, to verify against its artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotAnswer {
    /// The prompt ids sent.
    pub prompt: Vec<u32>,
    /// `max_new_tokens` sent.
    pub max_new_tokens: usize,
    /// The ids the miner answered.
    pub output: Vec<u32>,
}

/// Whether a spot-check answer is what the committed model produces greedily.
#[derive(Debug, Clone, PartialEq)]
pub enum SpotVerdict {
    /// Every token is the committed model's greedy choice (within [`SPOT_LOGIT_TOLERANCE`]).
    Match,
    /// The answer cannot come from greedy decoding of the committed model; why.
    Mismatch(String),
}

/// Checks `answer` against `model` by teacher forcing: one forward pass over prompt + answer
/// gives the logits at every generated position, and each answered token must be the argmax
/// there (up to [`SPOT_LOGIT_TOLERANCE`], so an honest miner on other hardware passes). An answer
/// shorter than asked must end with one of `stop_tokens` (or fill the context); a longer one
/// fails.
///
/// This accepts exactly what greedy decoding of the committed model can produce, and unlike a
/// token-for-token comparison with a local generation it does not fail an honest miner on a
/// near-tie that its hardware breaks the other way.
pub fn verify_greedy<B: Backend>(
    model: &Llama<B>,
    answer: &SpotAnswer,
    stop_tokens: &[u32],
) -> Result<SpotVerdict, ModelError> {
    let [vocab, _] = model.embed_tokens.weight.dims();
    let max = model.max_position_embeddings;
    let (prompt, output) = (&answer.prompt, &answer.output);
    let room = max.saturating_sub(prompt.len());
    let expected_len = answer.max_new_tokens.min(room);
    let mismatch = |reason: String| Ok(SpotVerdict::Mismatch(reason));
    if output.len() > expected_len {
        return mismatch(format!(
            "{} tokens answered, at most {expected_len} asked",
            output.len()
        ));
    }
    if output.is_empty() {
        return mismatch(format!("no tokens answered, {expected_len} asked"));
    }
    if let Some(&token) = output.iter().find(|&&t| t as usize >= vocab) {
        return mismatch(format!(
            "token id {token} is outside the vocabulary of {vocab}"
        ));
    }
    if output.len() < expected_len && !output.last().is_some_and(|t| stop_tokens.contains(t)) {
        return mismatch(format!(
            "answer stops after {} of {expected_len} tokens without the end-of-sequence token",
            output.len()
        ));
    }
    // Positions prompt.len() - 1 .. prompt.len() + output.len() - 1 predict the output tokens.
    let mut sequence = prompt.clone();
    sequence.extend_from_slice(&output[..output.len() - 1]);
    let len = sequence.len();
    let device = model.embed_tokens.weight.val().device();
    let ids: Vec<i64> = sequence.iter().map(|&t| i64::from(t)).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
    // [1, len, vocab] → the rows of the generated positions, [output.len(), vocab]
    let start = prompt.len() - 1;
    let logits = model
        .forward(ids)
        .narrow(1, start, output.len())
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| EvalError::Backend(format!("{e:?}")))?;
    for (position, (row, &token)) in logits.chunks_exact(vocab).zip(output).enumerate() {
        let (best, best_logit) =
            row.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |acc, (i, v)| {
                        if v > acc.1 { (i, v) } else { acc }
                    },
                );
        let got = row[token as usize];
        // Written so that a NaN logit fails the check.
        let is_greedy = got >= best_logit - SPOT_LOGIT_TOLERANCE;
        if !is_greedy {
            return mismatch(format!(
                "token {position}: the miner sent id {token}, the committed model's greedy choice is id {best} (logit gap {:.4})",
                best_logit - got
            ));
        }
    }
    Ok(SpotVerdict::Match)
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
    pub spot: Option<SpotAnswer>,
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
    pub spot: Option<SpotVerdict>,
    /// The weights' sketch, for near-copy detection (`None` when the file could not be
    /// sketched; its comparisons then read it).
    pub sketch: Option<Arc<WeightSketch>>,
    /// Where the job's time went.
    pub timings: JobTimings,
}

/// Wall time of the parts of one [`EvalJob`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobTimings {
    /// [`load_checked`]: reading and checking the config and weights, building the model, and
    /// its [`WeightSketch`].
    pub load: Duration,
    /// The forward passes over the samples (zero when `skip_eval`).
    pub eval: Duration,
    /// Verifying the spot-check answer (zero without one).
    pub spot: Duration,
}

impl BackendTask for EvalJob {
    type Output = Result<EvalOutput, ModelError>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let started = Instant::now();
        let (config, model, bytes) =
            load_checked_bytes::<B>(&self.dir, &self.competition, &device)?;
        let sketch = match WeightSketch::from_safetensors(&bytes) {
            Ok(sketch) => Some(Arc::new(sketch)),
            Err(reason) => {
                tracing::warn!(%reason, dir = %self.dir.display(), "cannot sketch the weights; near-copy checks read the file");
                None
            }
        };
        drop(bytes);
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
        let spot = match &self.spot {
            Some(answer) => {
                // A miner stops at its tokenizer's end-of-sequence id; accept the config's too.
                let tokenizer_eos = Tokenizer::from_model_dir(&self.dir)?.eos_id();
                let stops: Vec<u32> = config
                    .eos_token_id
                    .into_iter()
                    .chain(tokenizer_eos)
                    .collect();
                Some(verify_greedy(&model, answer, &stops)?)
            }
            None => None,
        };
        Ok(EvalOutput {
            config,
            fitted,
            spot,
            sketch,
            timings: JobTimings {
                load,
                eval,
                spot: started.elapsed(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_model::backend::Cpu;
    use subnet_model::generate::{GenerateOptions, generate};
    use subnet_model::io::{hf_state_dict, save_artifact};

    fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            vocab_size: 259,
            max_position_embeddings: 32,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: Some(256),
            eos_token_id: Some(257),
            pad_token_id: None,
        }
    }

    fn competition() -> Competition {
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

    fn saved(dir: &Path) -> Llama<Cpu> {
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

    #[test]
    fn the_models_own_greedy_output_passes_and_anything_else_fails() {
        let model = tiny_config().init::<Cpu>(&Default::default());
        let prompt = vec![256, 40, 41, 42];
        let options = GenerateOptions {
            max_new_tokens: 6,
            temperature: 0.0,
            seed: 0,
            stop_token: Some(257),
        };
        let output = generate(&model, &prompt, &options).unwrap();
        let answer = |output: Vec<u32>| SpotAnswer {
            prompt: prompt.clone(),
            max_new_tokens: 6,
            output,
        };
        let verdict = |output| verify_greedy(&model, &answer(output), &[257]).unwrap();
        assert_eq!(verdict(output.clone()), SpotVerdict::Match);

        let mut wrong = output.clone();
        let last = wrong.len() - 1;
        wrong[last] = (wrong[last] + 1) % 256;
        assert!(
            matches!(verdict(wrong), SpotVerdict::Mismatch(r) if r.contains(&format!("token {last}")))
        );
        if output.len() == 6 && output[5] != 257 {
            assert!(
                matches!(verdict(output[..3].to_vec()), SpotVerdict::Mismatch(r) if r.contains("stops after 3"))
            );
        }
        let mut long = output.clone();
        long.resize(7, 0);
        assert!(matches!(verdict(long), SpotVerdict::Mismatch(_)));
        assert!(matches!(verdict(vec![]), SpotVerdict::Mismatch(_)));
        assert!(
            matches!(verdict(vec![9999]), SpotVerdict::Mismatch(r) if r.contains("vocabulary"))
        );
    }
}
