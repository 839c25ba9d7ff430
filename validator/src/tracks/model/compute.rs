//! The CPU/GPU-bound half of the model track: load an artifact with every check, evaluate it,
//! verify a spot-check answer against it, and compare weight files for near-copies.
//!
//! Everything here is blocking and runs on the device chosen with `--device`
//! ([`subnet_model::backend::Selected::run`]); callers in async code use `spawn_blocking`.
//! Loading treats the artifact as hostile: `config.json` is parsed and its dimensions checked
//! against the competition's architecture bounds *before* the weights file is opened, and the
//! weights file's size is checked before it is read (see [`load_checked`]).
//!
//! Near-copy detection compares every pair of models with equal configs. Reading two weight
//! files per pair made it the epoch's largest cost past a few dozen miners (O(n²) file reads);
//! now each evaluation also records a [`WeightSketch`] of its model (per-tensor chunk norms, a
//! few kilobytes), which proves most pairs apart without touching their files, exactly (see
//! [`WeightSketch::surely_apart`]): only pairs the sketches cannot separate are read and compared.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use subnet_model::backend::BackendTask;
use subnet_model::competition::{ArchitectureDims, BoundsViolation, Competition};
use subnet_model::config::{CONFIG_FILE, ConfigError, LlamaConfig};
use subnet_model::eval::{EvalError, FittedEval, Sample, evaluate_fitted};
use subnet_model::io::{IoError, WEIGHTS_FILE, is_near_copy, load_weights, read_weights_file};
use subnet_model::llama::Llama;
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

/// A successfully loaded model, as near-copy detection sees it.
#[derive(Debug, Clone)]
pub struct CopyCandidate {
    /// The miner.
    pub uid: u16,
    /// Block of its commitment (earlier owns the weights).
    pub commit_block: u64,
    /// Its manifest hash; identical manifests are exact duplicates, handled by scoring.
    pub manifest_sha256: String,
    /// Its config: only models with equal configs (equal tensor shapes) are compared.
    pub config: LlamaConfig,
    /// Its `model.safetensors`.
    pub weights: PathBuf,
    /// Its sketch, when its evaluation recorded one; without it every comparison reads the file.
    pub sketch: Option<Arc<WeightSketch>>,
}

/// Elements per chunk of a [`WeightSketch`], at least: the lower bound on the distance between
/// two independent tensors is about `1 / chunk` (squared), far above the `2 (1 - 0.999)` a
/// near-copy may reach.
const SKETCH_CHUNK: usize = 64;
/// Most chunks of one tensor (larger tensors get larger chunks).
const SKETCH_MAX_CHUNKS: usize = 8192;
/// Most chunk norms kept per model, over its tensors in name order (a later tensor past the
/// budget is left out, so a pair can only be told apart by the first ones).
const SKETCH_BUDGET: usize = 32_768;

/// A few thousand numbers per model that bound the cosine of each tensor with the same tensor
/// of another model: each tensor, normalized to unit length, is cut into contiguous chunks
/// and the norm of each chunk kept.
///
/// For unit vectors `a`, `b` cut into the same chunks, `‖a − b‖² = Σ ‖a_c − b_c‖²
/// ≥ Σ (‖a_c‖ − ‖b_c‖)²` (reverse triangle inequality per chunk), and `‖a − b‖² = 2 − 2 cos`.
/// So when the chunk-norm differences of one tensor sum to more than `2 (1 − threshold)`, that
/// tensor's cosine is below the threshold and the pair is not a near-copy — exactly, whatever
/// the weights, not with some probability. Independent models are told apart by their first
/// tensor; a real copy (or two fine-tunes of one base) never is, and goes to the full comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightSketch {
    /// `(name, chunk norms of the unit-length tensor)` in name order; tensors with zero or
    /// non-finite norm are left out (they never prove a pair apart).
    tensors: Vec<(String, Vec<f64>)>,
}

impl WeightSketch {
    /// The sketch of a safetensors file's tensors (`F32`, `F16` or `BF16`; the values
    /// [`subnet_model::io::tensor_cosines`] compares), from its bytes. The file is one that
    /// loaded as a model; anything it cannot read is an error, never a panic.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, String> {
        let header_len = bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or("no header length")?;
        let data_start = header_len.checked_add(8).ok_or("header length overflows")?;
        let header = bytes.get(8..data_start).ok_or("header past the end")?;
        let data = &bytes[data_start..];
        let header: std::collections::BTreeMap<String, serde_json::Value> =
            serde_json::from_slice(header).map_err(|e| format!("header: {e}"))?;
        let mut budget = SKETCH_BUDGET;
        let mut tensors = Vec::new();
        for (name, info) in header {
            if name == "__metadata__" {
                continue;
            }
            if budget == 0 {
                break;
            }
            let offsets = info["data_offsets"]
                .as_array()
                .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
                .and_then(|(a, b)| Some((usize::try_from(a).ok()?, usize::try_from(b).ok()?)))
                .ok_or_else(|| format!("{name}: no data_offsets"))?;
            let raw = data
                .get(offsets.0..offsets.1)
                .ok_or_else(|| format!("{name}: data_offsets past the end"))?;
            let norms = match info["dtype"].as_str() {
                Some("F32") => chunk_norms(raw, 4, budget, |b| {
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
                }),
                Some("F16") => chunk_norms(raw, 2, budget, |b| {
                    burn::tensor::f16::from_le_bytes([b[0], b[1]]).to_f32()
                }),
                Some("BF16") => chunk_norms(raw, 2, budget, |b| {
                    burn::tensor::bf16::from_le_bytes([b[0], b[1]]).to_f32()
                }),
                other => return Err(format!("{name}: dtype {other:?}")),
            };
            if let Some(norms) = norms {
                budget -= norms.len();
                tensors.push((name, norms));
            }
        }
        Ok(Self { tensors })
    }

    /// True when some tensor of `self` and `other` is provably less than `threshold` cosine-similar,
    /// so the two models are not near-copies. False means "maybe": compare the weights.
    pub fn surely_apart(&self, other: &Self, threshold: f64) -> bool {
        // The slack keeps rounding (f32 weights, f64 sums) from ever proving a copy apart.
        let bound = 2.0 * (1.0 - threshold) * (1.0 + 1e-6) + 1e-9;
        let mut theirs = other.tensors.iter().peekable();
        for (name, mine) in &self.tensors {
            while theirs.next_if(|(n, _)| n < name).is_some() {}
            let Some((_, other_norms)) = theirs.next_if(|(n, _)| n == name) else {
                continue;
            };
            if other_norms.len() != mine.len() {
                continue;
            }
            let mut lower = 0.0;
            for (a, b) in mine.iter().zip(other_norms) {
                lower += (a - b) * (a - b);
                if lower > bound {
                    return true;
                }
            }
        }
        false
    }
}

/// The chunk norms of the tensor in `raw` (`width` bytes per value, read by `value`) scaled
/// to unit length: at most [`SKETCH_MAX_CHUNKS`] chunks of at least [`SKETCH_CHUNK`] values;
/// `None` for a tensor with zero or non-finite norm, or one that would need more than `budget`
/// chunks.
fn chunk_norms(
    raw: &[u8],
    width: usize,
    budget: usize,
    value: impl Fn(&[u8]) -> f32,
) -> Option<Vec<f64>> {
    let len = raw.len() / width;
    let chunk = SKETCH_CHUNK.max(len.div_ceil(SKETCH_MAX_CHUNKS));
    if len == 0 || len.div_ceil(chunk) > budget {
        return None;
    }
    let mut parts: Vec<f64> = raw
        .chunks(chunk * width)
        .map(|c| {
            c.chunks_exact(width)
                .map(|b| f64::from(value(b)).powi(2))
                .sum()
        })
        .collect();
    let squared: f64 = parts.iter().sum();
    if !(squared.is_finite() && squared > 0.0) {
        return None;
    }
    for part in &mut parts {
        *part = (*part / squared).sqrt();
    }
    Some(parts)
}

/// For each model that is a near-copy (cosine ≥ `threshold` on every tensor) of a model committed
/// earlier (same block: lower uid), the uid of the earliest such model. Configs need only equal
/// [`LlamaConfig::weight_shapes`]. Pairs that cannot be read
/// or compared are not copies; a read failure is logged. Pairs whose sketches prove them apart
/// are not read.
pub fn find_copies(
    candidates: &[CopyCandidate],
    threshold: f64,
    max_bytes: u64,
) -> std::collections::BTreeMap<u16, u16> {
    let mut order: Vec<&CopyCandidate> = candidates.iter().collect();
    order.sort_by_key(|c| (c.commit_block, c.uid));
    let mut copies = std::collections::BTreeMap::new();
    for (i, later) in order.iter().enumerate() {
        for earlier in &order[..i] {
            // Only the shapes must agree: a copy that changes `pad_token_id`, `rope_theta` or
            // `max_position_embeddings` keeps the same weights.
            if earlier.config.weight_shapes() != later.config.weight_shapes()
                || earlier.manifest_sha256 == later.manifest_sha256
            {
                continue;
            }
            if let (Some(a), Some(b)) = (&earlier.sketch, &later.sketch)
                && a.surely_apart(b, threshold)
            {
                continue;
            }
            match subnet_model::io::tensor_cosines(&earlier.weights, &later.weights, max_bytes) {
                Ok(cosines) if is_near_copy(&cosines, threshold) => {
                    copies.insert(later.uid, earlier.uid);
                    break;
                }
                Ok(_) | Err(IoError::Incomparable { .. }) => {}
                Err(error) => {
                    tracing::warn!(uid = later.uid, other = earlier.uid, %error, "cannot compare weights");
                }
            }
        }
    }
    copies
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

    #[test]
    fn a_lightly_perturbed_copy_is_found_and_an_independent_model_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let original = saved(&a);
        saved(&c); // independently initialised
        std::fs::create_dir_all(&b).unwrap();
        write_edited(&original, &b.join(WEIGHTS_FILE), |_, values| {
            for (i, v) in values.iter_mut().enumerate() {
                *v += if i % 2 == 0 { 1e-5 } else { -1e-5 };
            }
        });
        // The same with and without sketches: they only skip pairs that are no copies.
        for sketched in [false, true] {
            let candidate = |uid, block, dir: &Path| CopyCandidate {
                uid,
                commit_block: block,
                manifest_sha256: format!("{uid}"),
                // Fields that leave the shapes alone do not hide a copy.
                config: LlamaConfig {
                    pad_token_id: Some(u32::from(uid)),
                    rope_theta: 10_000.0 + f64::from(uid),
                    ..tiny_config()
                },
                weights: dir.join(WEIGHTS_FILE),
                sketch: sketched.then(|| Arc::new(sketch_of(&dir.join(WEIGHTS_FILE)))),
            };
            // The copy (uid 1) commits after the original (uid 0); uid 2 is unrelated.
            let copies = find_copies(
                &[
                    candidate(1, 20, &b),
                    candidate(2, 5, &c),
                    candidate(0, 10, &a),
                ],
                0.999,
                u64::MAX,
            );
            assert_eq!(copies, std::collections::BTreeMap::from([(1, 0)]));

            // An earlier commit of the perturbed weights makes the other one the copy.
            let copies = find_copies(
                &[candidate(1, 5, &b), candidate(0, 10, &a)],
                0.999,
                u64::MAX,
            );
            assert_eq!(copies, std::collections::BTreeMap::from([(0, 1)]));
        }
    }

    /// The sketch of the weights file at `path`.
    fn sketch_of(path: &Path) -> WeightSketch {
        WeightSketch::from_safetensors(&std::fs::read(path).unwrap()).unwrap()
    }

    #[test]
    fn sketches_never_separate_a_pair_at_or_above_the_threshold_and_separate_independent_models() {
        let dir = tempfile::tempdir().unwrap();
        let original = saved(&dir.path().join("original"));
        let original_weights = dir.path().join("original").join(WEIGHTS_FILE);
        let original_sketch = sketch_of(&original_weights);
        // Noise spread over every value, and chunk-wise rescaling: the latter is where the bound
        // is tight (within a chunk the two tensors are parallel), the worst case for the sketch.
        let scales = [1e-5f32, 1e-3, 1e-2, 3e-2, 0.1, 0.3];
        let cases = scales.iter().flat_map(|&s| [(s, false), (s, true)]);
        for (n, (scale, chunked)) in cases.enumerate() {
            let noisy = dir.path().join(format!("noisy{n}"));
            write_edited(&original, &noisy, |_, values| {
                let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
                let mut unit = || {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
                };
                if chunked {
                    for chunk in values.chunks_mut(SKETCH_CHUNK) {
                        let factor = 1.0 + scale * unit();
                        chunk.iter_mut().for_each(|v| *v *= factor);
                    }
                } else {
                    values.iter_mut().for_each(|v| *v += scale * unit());
                }
            });
            let cosines =
                subnet_model::io::tensor_cosines(&original_weights, &noisy, u64::MAX).unwrap();
            let sketch = sketch_of(&noisy);
            // At a threshold equal to the pair's lowest tensor cosine the pair is a near-copy
            // by definition: the sketch must leave it to the full comparison.
            let lowest = cosines.iter().map(|c| c.cosine).fold(1.0, f64::min);
            assert!(is_near_copy(&cosines, lowest));
            assert!(
                !original_sketch.surely_apart(&sketch, lowest),
                "scale {scale}, chunked {chunked}: lowest cosine {lowest}"
            );
            assert!(!sketch.surely_apart(&original_sketch, lowest));
        }
        // Independently initialised models are told apart without reading their files.
        for n in 0..5 {
            let other = dir.path().join(format!("other{n}"));
            saved(&other);
            let cosines = subnet_model::io::tensor_cosines(
                &original_weights,
                &other.join(WEIGHTS_FILE),
                u64::MAX,
            )
            .unwrap();
            assert!(!is_near_copy(&cosines, 0.999));
            assert!(original_sketch.surely_apart(&sketch_of(&other.join(WEIGHTS_FILE)), 0.999));
        }
    }

    #[test]
    fn half_precision_files_sketch_like_their_f32_values() {
        let values: Vec<f32> = (0..1000)
            .map(|i| burn::tensor::bf16::from_f32((i as f32 * 0.37).sin()).to_f32())
            .collect();
        let file = |dtype: safetensors::Dtype, bytes: Vec<u8>| {
            let view = safetensors::tensor::TensorView::new(dtype, vec![10, 100], &bytes).unwrap();
            let bytes = safetensors::serialize([("w", view)], None).unwrap();
            WeightSketch::from_safetensors(&bytes).unwrap()
        };
        let f32_bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bf16_bytes = values
            .iter()
            .flat_map(|&v| burn::tensor::bf16::from_f32(v).to_le_bytes())
            .collect();
        let full = file(safetensors::Dtype::F32, f32_bytes);
        assert_eq!(full.tensors.len(), 1);
        assert_eq!(full.tensors[0].1.len(), 1000usize.div_ceil(SKETCH_CHUNK));
        assert_eq!(file(safetensors::Dtype::BF16, bf16_bytes), full);
        // Chunk norms of a unit-length tensor: their squares sum to 1.
        let total: f64 = full.tensors[0].1.iter().map(|n| n * n).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
        assert!(WeightSketch::from_safetensors(b"short").is_err());
    }
}
