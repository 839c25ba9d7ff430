//! The competition file: what models may look like, what they are judged on, how they are scored.
//!
//! A competition is a TOML file kept in the repository (`competitions/default.toml`). Validators
//! load it with [`CompetitionFile::load`], which validates every field and keeps the sha256 of the
//! file's bytes; that hash is recorded with every evaluation, so a result always names the exact
//! rules it was computed under. [`eval_seed`] turns an epoch's block hash into the seed the
//! evaluation samples are drawn from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::chat::Message;
use crate::data::{DataError, Dataset, Limits};
use crate::eval::Sample;
use crate::tasks::{Example, TaskError, TaskMix, encode_chat, generate, to_sample};
use crate::tokenizer::Tokenizer;

/// Longest competition id; it travels in the ≤128-byte on-chain commitment.
pub const MAX_ID_LEN: usize = 32;

/// What can go wrong loading a competition file.
#[derive(Debug, Error)]
pub enum CompetitionError {
    /// The file could not be read.
    #[error("reading competition file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a competition (syntax, missing or unknown fields).
    #[error("parsing competition file: {source}")]
    Parse {
        /// The TOML error, with line and column.
        source: toml::de::Error,
    },
    /// A field has a value the rules forbid.
    #[error("competition field `{field}` {reason}")]
    Invalid {
        /// The field's dotted path, e.g. `dethrone.margin`.
        field: &'static str,
        /// Why the value is refused.
        reason: String,
    },
}

/// Why an epoch's evaluation samples could not be built.
#[derive(Debug, Error)]
pub enum SampleSetError {
    /// One sample could not be encoded.
    #[error("sample {index}: {source}")]
    Sample {
        /// Position in the sample list.
        index: usize,
        /// The cause.
        source: TaskError,
    },
    /// The competition names a dataset but none was given.
    #[error("the competition mixes in dataset {path}, which was not loaded")]
    DatasetMissing {
        /// The dataset's path as the competition file writes it.
        path: PathBuf,
    },
}

/// [`derive_seed`] purpose of the generated part of an epoch's samples.
pub const TASKS_PURPOSE: &str = "model-eval/tasks";
/// [`derive_seed`] purpose of the dataset part of an epoch's samples.
pub const DATASET_PURPOSE: &str = "model-eval/dataset";
/// [`derive_seed`] purpose of an epoch's open instructions (`[open]`).
pub const OPEN_PURPOSE: &str = "model-eval/open";

/// A model architecture dimension above its competition bound.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field} = {value} exceeds the competition's maximum of {max}")]
pub struct BoundsViolation {
    /// The `config.json` name of the dimension (or `params`).
    pub field: &'static str,
    /// The model's value.
    pub value: u64,
    /// The competition's maximum.
    pub max: u64,
}

/// Upper bounds on a submitted model's `config.json` and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchitectureBounds {
    /// Most `num_hidden_layers`.
    pub max_layers: u64,
    /// Most `hidden_size`.
    pub max_hidden_size: u64,
    /// Most `intermediate_size` (the SwiGLU width).
    pub max_intermediate_size: u64,
    /// Most `num_attention_heads`.
    pub max_attention_heads: u64,
    /// Most `num_key_value_heads`.
    pub max_key_value_heads: u64,
    /// Most `vocab_size`.
    pub max_vocab_size: u64,
    /// Most `max_position_embeddings`.
    pub max_position_embeddings: u64,
    /// Most parameters in total (counting tied embeddings once).
    pub max_params: u64,
}

/// A model's dimensions, as read from its `config.json` and weights, to check against bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchitectureDims {
    /// `num_hidden_layers`.
    pub layers: u64,
    /// `hidden_size`.
    pub hidden_size: u64,
    /// `intermediate_size`.
    pub intermediate_size: u64,
    /// `num_attention_heads`.
    pub attention_heads: u64,
    /// `num_key_value_heads`.
    pub key_value_heads: u64,
    /// `vocab_size`.
    pub vocab_size: u64,
    /// `max_position_embeddings`.
    pub max_position_embeddings: u64,
    /// Total parameter count.
    pub params: u64,
}

impl ArchitectureBounds {
    /// The first dimension of `dims` above its bound, if any.
    pub fn check(&self, dims: &ArchitectureDims) -> Result<(), BoundsViolation> {
        let pairs = [
            ("num_hidden_layers", dims.layers, self.max_layers),
            ("hidden_size", dims.hidden_size, self.max_hidden_size),
            (
                "intermediate_size",
                dims.intermediate_size,
                self.max_intermediate_size,
            ),
            (
                "num_attention_heads",
                dims.attention_heads,
                self.max_attention_heads,
            ),
            (
                "num_key_value_heads",
                dims.key_value_heads,
                self.max_key_value_heads,
            ),
            ("vocab_size", dims.vocab_size, self.max_vocab_size),
            (
                "max_position_embeddings",
                dims.max_position_embeddings,
                self.max_position_embeddings,
            ),
            ("params", dims.params, self.max_params),
        ];
        match pairs.into_iter().find(|&(_, value, max)| value > max) {
            Some((field, value, max)) => Err(BoundsViolation { field, value, max }),
            None => Ok(()),
        }
    }
}

/// How each epoch's evaluation is run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSettings {
    /// Samples drawn from the epoch seed; every model is scored on the same ones.
    pub samples: usize,
    /// Longest token sequence of a sample (prompt and completion together).
    pub max_seq_len: usize,
    /// A commitment must be at least this many blocks older than the seed block to be evaluated,
    /// so nobody can commit after seeing the samples.
    pub block_delay: u64,
    /// Generated tasks are put to the model as a conversation (the task's prompt as the user's
    /// message, its completion as the assistant's answer) rendered with the pinned chat template,
    /// instead of as raw text. Needs `[tokenizer]`.
    #[serde(default)]
    pub chat: bool,
}

/// When a later model takes an earlier one's place (`docs/scoring.md`, step 3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DethroneRule {
    /// The later model's mean fitted loss must be below the earlier's by this fraction of the
    /// earlier's mean (0.01: one percent). Constant: an old leader is as protected as a new one.
    pub margin: f64,
    /// ...and the paired one-sided t-test of that improvement must reach this p-value.
    pub p_value: f64,
}

impl DethroneRule {
    /// True when `margin` is in `0..1` and `p_value` in `(0, 0.5]`.
    pub fn is_valid(&self) -> bool {
        (0.0..1.0).contains(&self.margin) && self.p_value > 0.0 && self.p_value <= 0.5
    }
}

/// Open instructions scored by generation (`[open]`; [`crate::tasks::open`], [`crate::follow`]):
/// each epoch every model answers `samples` of them greedily, and each answer scores the share
/// of its constraints kept.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenSettings {
    /// Instructions per epoch, drawn from the epoch's seed; every model answers the same ones.
    pub samples: usize,
    /// Most tokens per answer; an answer not finished within them keeps no constraint.
    pub max_new_tokens: usize,
    /// A model wins a following contest when its mean share of constraints kept is higher by
    /// this much (absolute: 0.05 is five points) under the paired one-sided t-test at
    /// `dethrone.p_value`, whichever of the two committed first.
    pub margin: f64,
    /// An answer whose mean token loss (nats) under the pinned base model, as the completion of
    /// its prompt, is above this is not an answer (a word list, salad) and scores 0
    /// ([`crate::follow::answer_losses`]); none: answers are not judged. Needs `[base]`.
    #[serde(default)]
    pub max_base_loss: Option<f64>,
}

/// When a later model is a copy of an earlier one (`docs/scoring.md`, step 2;
/// [`crate::similarity::find_copies`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CopyThresholds {
    /// Largest [`crate::similarity::divergence`] (mean |Δ log p| per completion token at fitted
    /// temperatures, nats) at which a later model is a copy by function.
    pub max_divergence: f64,
    /// Smallest per-tensor cosine at which a later model with the same tensor shapes is a copy
    /// by weights.
    pub weight_cosine: f64,
    /// Whether copies are also looked for by weights. Off for fine-tunes of a real pretrained
    /// base: they all keep every tensor at cosine > 0.999999 with the base and with each other
    /// (two SmolLM2 fine-tunes 3 nats apart in loss measured so), so the weight test would call
    /// every later honest fine-tune a copy; the test by function still applies.
    pub compare_weights: bool,
}

impl Default for CopyThresholds {
    fn default() -> Self {
        Self {
            max_divergence: DEFAULT_MAX_DIVERGENCE,
            weight_cosine: 0.999,
            compare_weights: true,
        }
    }
}

/// The default [`CopyThresholds::max_divergence`] (see `docs/scoring.md` for how it was measured).
pub const DEFAULT_MAX_DIVERGENCE: f64 = 0.1;

/// How the subnet's emission for this competition is split between the two tracks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackShares {
    /// Share of the weights given to the model track.
    pub model: f64,
    /// Share of the weights given to the label track.
    pub labels: f64,
}

/// A JSONL dataset mixed into every evaluation, pinned by its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The JSONL file, relative to the competition file's directory.
    pub path: PathBuf,
    /// sha256 of the file's bytes, 64 lowercase hex digits; a different file is refused.
    pub sha256: String,
    /// Records drawn from it per evaluation, after the generated samples.
    pub samples: usize,
}

impl DatasetSpec {
    /// The pinned hash as bytes, or `None` when it is not 64 hex digits.
    pub fn sha256_bytes(&self) -> Option<[u8; 32]> {
        let bytes = hex::decode(&self.sha256).ok()?;
        bytes.try_into().ok()
    }

    /// Loads the dataset from `competition_dir`, refusing a file whose sha256 differs.
    pub fn load(&self, competition_dir: &Path, limits: &Limits) -> Result<Dataset, DataError> {
        let path = competition_dir.join(&self.path);
        let expected = self.sha256_bytes().ok_or_else(|| DataError::HashMismatch {
            path: path.clone(),
            expected: self.sha256.clone(),
            actual: String::from("(not computed: the pinned hash is not 64 hex digits)"),
        })?;
        Dataset::load_pinned(&path, expected, limits)
    }
}

/// True for 64 lowercase hex digits, the form every pinned hash in a competition file takes.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The tokenizer every model of a competition must carry, pinned by the sha256 of its files.
///
/// A competition without one uses the built-in byte-level tokenizer, and an artifact carrying a
/// `tokenizer.json` is refused: a miner's own tokenizer would change what a token is, and with it
/// what the mean loss per token measures (a normalizer that pads every completion with
/// predictable text lowers the loss of any model), and a different chat template would change
/// the prompts themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerPin {
    /// sha256 of `tokenizer.json`, 64 lowercase hex digits.
    pub sha256: String,
    /// sha256 of `tokenizer_config.json` (special tokens, chat template), when it is pinned too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
}

/// The public model a competition's entries fine-tune, pinned by its manifest hash.
///
/// Validators evaluate it every epoch on the same samples as the entries, and it holds the place
/// of the earliest commitment of all: an entry must displace it under [`DethroneRule`] to score.
/// Without the pin an upload of the public base, or a perturbed or sharpened copy of it, would
/// be paid until somebody did better.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasePin {
    /// The manifest hash of the base model's files (`subnet_common::protocol::manifest_sha256`),
    /// 64 lowercase hex digits, of what `miner init-base` (as `scripts/fetch-base-model.sh` runs
    /// it) writes.
    pub manifest_sha256: String,
}

/// One competition's rules, validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Competition {
    /// Short name committed on chain next to the manifest hash (`[a-z0-9._-]`, ≤ 32 bytes).
    pub id: String,
    /// Largest total size of a model's files, in bytes.
    pub max_artifact_bytes: u64,
    /// Softmax temperature `T` of the model-track score `softmax(−defeats / T)`.
    pub temperature: f64,
    /// Bounds on the submitted architecture.
    pub architecture: ArchitectureBounds,
    /// Sample count, sequence length, commit delay.
    pub eval: EvalSettings,
    /// When a later model displaces an earlier one.
    pub dethrone: DethroneRule,
    /// When a later model is a copy of an earlier one.
    #[serde(default)]
    pub copies: CopyThresholds,
    /// Model versus label track.
    pub shares: TrackShares,
    /// Weights of the task generators (`[tasks]` table of kind → integer weight).
    pub tasks: TaskMix,
    /// An optional JSONL dataset whose records are added to the generated samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<DatasetSpec>,
    /// The tokenizer models must carry (none: the byte-level tokenizer, and no `tokenizer.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokenizer: Option<TokenizerPin>,
    /// The base model entries must beat (none: the earliest entry holds that place).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BasePin>,
    /// Open instructions scored by generation (none: the model track is scored by loss alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenSettings>,
}

impl Competition {
    /// The sample of a generated task under this competition's rules: raw text, or with
    /// `eval.chat` a user/assistant conversation through the tokenizer's chat template. Eval and
    /// fine-tuning both build their task samples here, so a miner trains on what is scored.
    pub fn task_sample(
        &self,
        tokenizer: &Tokenizer,
        example: &Example,
        max_len: usize,
    ) -> Result<Sample, TaskError> {
        if !self.eval.chat {
            return to_sample(tokenizer, example, max_len);
        }
        let messages = [
            Message::new("user", &example.prompt),
            Message::new("assistant", &example.completion),
        ];
        let (input_ids, completion_start) = encode_chat(tokenizer, &messages, max_len)?;
        Ok(Sample {
            input_ids,
            completion_start,
        })
    }

    /// The ids a model continues to answer a task prompt the way it is scored: `BOS + prompt`, or
    /// with `eval.chat` the prompt as the user's message rendered with the generation prompt.
    pub fn prompt_ids(&self, tokenizer: &Tokenizer, prompt: &str) -> Result<Vec<u32>, TaskError> {
        if !self.eval.chat {
            let mut ids: Vec<u32> = tokenizer.bos_id().into_iter().collect();
            ids.extend(tokenizer.encode(prompt)?);
            return Ok(ids);
        }
        let template = tokenizer.chat_template().ok_or(TaskError::NoChatTemplate)?;
        let text = template.render(&[Message::new("user", prompt)], true)?;
        Ok(tokenizer.encode(&text)?)
    }

    /// Checks an artifact's tokenizer files against the competition, given the sha256 (lowercase
    /// hex) of its `tokenizer.json` and `tokenizer_config.json` where it has them; the error says
    /// what differs.
    pub fn check_tokenizer(
        &self,
        tokenizer_sha256: Option<&str>,
        config_sha256: Option<&str>,
    ) -> Result<(), String> {
        match (&self.tokenizer, tokenizer_sha256) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(format!(
                "competition {} uses the byte-level tokenizer; the artifact must not carry a \
                 tokenizer.json",
                self.id
            )),
            (Some(_), None) => Err(format!(
                "competition {} requires its pinned tokenizer.json; the artifact has none",
                self.id
            )),
            (Some(pin), Some(actual)) => {
                if actual != pin.sha256 {
                    return Err(format!(
                        "tokenizer.json has sha256 {actual}, not competition {}'s {}",
                        self.id, pin.sha256
                    ));
                }
                match (&pin.config_sha256, config_sha256) {
                    (Some(expected), actual) if actual != Some(expected.as_str()) => Err(format!(
                        "tokenizer_config.json has sha256 {}, not competition {}'s {expected}",
                        actual.unwrap_or("(none: the file is missing)"),
                        self.id
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, CompetitionError> {
        let competition: Competition =
            toml::from_str(text).map_err(|source| CompetitionError::Parse { source })?;
        competition.validate()?;
        Ok(competition)
    }

    /// Checks every rule a loaded file must satisfy.
    pub fn validate(&self) -> Result<(), CompetitionError> {
        let invalid =
            |field: &'static str, reason: String| Err(CompetitionError::Invalid { field, reason });
        let id_ok = self.id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
        if self.id.is_empty() || self.id.len() > MAX_ID_LEN || !id_ok {
            return invalid(
                "id",
                format!(
                    "{:?} must be 1..={MAX_ID_LEN} bytes of [a-z0-9._-]",
                    self.id
                ),
            );
        }
        if self.max_artifact_bytes == 0 {
            return invalid("max_artifact_bytes", "must be positive".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return invalid(
                "temperature",
                format!("{} must be finite and > 0", self.temperature),
            );
        }
        let a = &self.architecture;
        let bounds = [
            ("architecture.max_layers", a.max_layers),
            ("architecture.max_hidden_size", a.max_hidden_size),
            (
                "architecture.max_intermediate_size",
                a.max_intermediate_size,
            ),
            ("architecture.max_attention_heads", a.max_attention_heads),
            ("architecture.max_key_value_heads", a.max_key_value_heads),
            ("architecture.max_vocab_size", a.max_vocab_size),
            (
                "architecture.max_position_embeddings",
                a.max_position_embeddings,
            ),
            ("architecture.max_params", a.max_params),
        ];
        if let Some((field, _)) = bounds.iter().find(|&&(_, value)| value == 0) {
            return invalid(field, "must be positive".into());
        }
        if a.max_vocab_size < crate::tokenizer::BYTE_VOCAB_SIZE as u64 {
            return invalid(
                "architecture.max_vocab_size",
                format!(
                    "{} cannot hold the byte-level tokenizer's 259 ids",
                    a.max_vocab_size
                ),
            );
        }
        if self.eval.samples == 0 {
            return invalid("eval.samples", "must be positive".into());
        }
        if self.eval.max_seq_len < 2 {
            return invalid("eval.max_seq_len", "must be at least 2".into());
        }
        if self.eval.max_seq_len as u64 > a.max_position_embeddings {
            return invalid(
                "eval.max_seq_len",
                format!(
                    "{} exceeds architecture.max_position_embeddings {}",
                    self.eval.max_seq_len, a.max_position_embeddings
                ),
            );
        }
        let d = &self.dethrone;
        if !(d.margin.is_finite() && (0.0..1.0).contains(&d.margin)) {
            return invalid("dethrone.margin", format!("{} must be in 0..1", d.margin));
        }
        if !(d.p_value > 0.0 && d.p_value <= 0.5) {
            return invalid(
                "dethrone.p_value",
                format!("{} must be in (0, 0.5]", d.p_value),
            );
        }
        let c = &self.copies;
        if !(c.max_divergence.is_finite() && c.max_divergence >= 0.0) {
            return invalid(
                "copies.max_divergence",
                format!("{} must be finite and >= 0", c.max_divergence),
            );
        }
        if !(c.weight_cosine > 0.0 && c.weight_cosine <= 1.0) {
            return invalid(
                "copies.weight_cosine",
                format!("{} must be in (0, 1]", c.weight_cosine),
            );
        }
        if let Some(dataset) = &self.dataset {
            if dataset.path.as_os_str().is_empty() {
                return invalid("dataset.path", "must not be empty".into());
            }
            if !is_sha256_hex(&dataset.sha256) {
                return invalid(
                    "dataset.sha256",
                    format!("{:?} must be 64 lowercase hex digits", dataset.sha256),
                );
            }
            if dataset.samples == 0 {
                return invalid("dataset.samples", "must be positive".into());
            }
        }
        if self.eval.chat && self.tokenizer.is_none() {
            return invalid(
                "eval.chat",
                "chat-formatted tasks need a [tokenizer] with a chat template".into(),
            );
        }
        if let Some(pin) = &self.tokenizer {
            if !is_sha256_hex(&pin.sha256) {
                return invalid(
                    "tokenizer.sha256",
                    format!("{:?} must be 64 lowercase hex digits", pin.sha256),
                );
            }
            if let Some(config) = pin.config_sha256.as_deref().filter(|c| !is_sha256_hex(c)) {
                return invalid(
                    "tokenizer.config_sha256",
                    format!("{config:?} must be 64 lowercase hex digits"),
                );
            }
        }
        if let Some(base) = self
            .base
            .as_ref()
            .filter(|b| !is_sha256_hex(&b.manifest_sha256))
        {
            return invalid(
                "base.manifest_sha256",
                format!("{:?} must be 64 lowercase hex digits", base.manifest_sha256),
            );
        }
        if let Some(open) = &self.open {
            if !self.eval.chat {
                return invalid(
                    "open",
                    "open instructions are put to chat models: set eval.chat = true".into(),
                );
            }
            if !(1..=MAX_OPEN_SAMPLES).contains(&open.samples) {
                return invalid(
                    "open.samples",
                    format!("{} must be in 1..={MAX_OPEN_SAMPLES}", open.samples),
                );
            }
            if !(1..=MAX_OPEN_NEW_TOKENS).contains(&open.max_new_tokens) {
                return invalid(
                    "open.max_new_tokens",
                    format!(
                        "{} must be in 1..={MAX_OPEN_NEW_TOKENS}",
                        open.max_new_tokens
                    ),
                );
            }
            if !(open.margin.is_finite() && (0.0..1.0).contains(&open.margin)) {
                return invalid("open.margin", format!("{} must be in 0..1", open.margin));
            }
            if let Some(loss) = open.max_base_loss {
                if !(loss.is_finite() && loss > 0.0) {
                    return invalid(
                        "open.max_base_loss",
                        format!("{loss} must be a positive number of nats"),
                    );
                }
                if self.base.is_none() {
                    return invalid(
                        "open.max_base_loss",
                        "answers are judged by the base model: pin one in [base]".into(),
                    );
                }
            }
        }
        let s = &self.shares;
        for (field, share) in [("shares.model", s.model), ("shares.labels", s.labels)] {
            if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
                return invalid(field, format!("{share} must be within 0..=1"));
            }
        }
        if (s.model + s.labels - 1.0).abs() > 1e-9 {
            return invalid(
                "shares",
                format!("model {} + labels {} must sum to 1", s.model, s.labels),
            );
        }
        Ok(())
    }
}

/// Most open instructions per epoch (each costs every validator a generation per model).
pub const MAX_OPEN_SAMPLES: usize = 256;
/// Most tokens per open answer.
pub const MAX_OPEN_NEW_TOKENS: usize = 1024;

impl Competition {
    /// The epoch's open instructions: `open.samples` tasks from `derive_seed(seed, OPEN_PURPOSE)`,
    /// none when the competition has no `[open]`.
    pub fn open_tasks(&self, seed: [u8; 32]) -> Vec<crate::tasks::open::OpenTask> {
        self.open.map_or_else(Vec::new, |open| {
            crate::tasks::open::generate(derive_seed(seed, OPEN_PURPOSE), open.samples)
        })
    }

    /// How many samples [`Self::eval_samples`] builds: the generated tasks, then the dataset's
    /// (drawn with repeats, so always its full count).
    pub fn sample_count(&self) -> usize {
        self.eval.samples + self.dataset.as_ref().map_or(0, |d| d.samples)
    }

    /// The dataset the competition mixes in, when it names one: `dataset`, which must be given.
    pub fn required_dataset<'a>(
        &self,
        dataset: Option<&'a Dataset>,
    ) -> Result<Option<&'a Dataset>, SampleSetError> {
        match (&self.dataset, dataset) {
            (None, _) => Ok(None),
            (Some(_), Some(dataset)) => Ok(Some(dataset)),
            (Some(spec), None) => Err(SampleSetError::DatasetMissing {
                path: spec.path.clone(),
            }),
        }
    }

    /// The samples every model is evaluated on for the epoch `seed` (see [`eval_seed`]):
    /// `eval.samples` generated examples drawn from `derive_seed(seed, TASKS_PURPOSE)`, then, when
    /// the competition names a dataset, `dataset.samples` records drawn from
    /// `derive_seed(seed, DATASET_PURPOSE)`; each encoded to at most `eval.max_seq_len` tokens.
    pub fn eval_samples(
        &self,
        seed: [u8; 32],
        tokenizer: &Tokenizer,
        dataset: Option<&Dataset>,
    ) -> Result<Vec<Sample>, SampleSetError> {
        let max_len = self.eval.max_seq_len;
        let generated = generate(
            derive_seed(seed, TASKS_PURPOSE),
            &self.tasks,
            self.eval.samples,
        );
        let mut samples = Vec::with_capacity(generated.len());
        for example in &generated {
            let sample = self
                .task_sample(tokenizer, example, max_len)
                .map_err(|source| SampleSetError::Sample {
                    index: samples.len(),
                    source,
                })?;
            samples.push(sample);
        }
        if let (Some(spec), Some(dataset)) = (&self.dataset, self.required_dataset(dataset)?) {
            for record in dataset.sample(derive_seed(seed, DATASET_PURPOSE), spec.samples) {
                let sample = record.to_sample(tokenizer, max_len).map_err(|source| {
                    SampleSetError::Sample {
                        index: samples.len(),
                        source,
                    }
                })?;
                samples.push(sample);
            }
        }
        Ok(samples)
    }
}

/// A loaded competition with the sha256 of the exact bytes it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct CompetitionFile {
    /// The validated rules.
    pub competition: Competition,
    /// sha256 of the file's bytes, recorded with every evaluation.
    pub sha256: [u8; 32],
}

/// The built-in competition, `competitions/default.toml`: what every command uses without
/// `--competition`.
pub const DEFAULT_COMPETITION_TOML: &str = include_str!("../../competitions/default.toml");

impl CompetitionFile {
    /// The competition file at `path`, or the built-in [`DEFAULT_COMPETITION_TOML`] without one.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self, CompetitionError> {
        match path {
            Some(path) => Self::load(path),
            None => Self::from_bytes(DEFAULT_COMPETITION_TOML.as_bytes()),
        }
    }

    /// Reads, parses and validates a competition file.
    pub fn load(path: &Path) -> Result<Self, CompetitionError> {
        let bytes = std::fs::read(path).map_err(|source| CompetitionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_bytes(&bytes)
    }

    /// Parses and validates file contents, hashing them as given.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CompetitionError> {
        let text = std::str::from_utf8(bytes).map_err(|err| CompetitionError::Invalid {
            field: "(file)",
            reason: format!("is not UTF-8: {err}"),
        })?;
        Ok(CompetitionFile {
            competition: Competition::from_toml(text)?,
            sha256: Sha256::digest(bytes).into(),
        })
    }

    /// The file hash as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// The seed of an epoch's evaluation: `sha256(block_hash ‖ netuid)`.
///
/// Byte order: the 32 bytes of `block_hash` as they appear on chain, followed by `netuid` as two
/// bytes little-endian (SCALE's encoding of a `u16`; netuid 1 is `01 00`). 34 bytes in all.
pub fn eval_seed(block_hash: [u8; 32], netuid: u16) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(block_hash);
    hasher.update(netuid.to_le_bytes());
    hasher.finalize().into()
}

/// An independent seed for one use of an epoch seed: `sha256(seed ‖ purpose as UTF-8)`, so, e.g.,
/// `"model-eval"` samples and `"label-tasks"` prompts never share a stream.
pub fn derive_seed(seed: [u8; 32], purpose: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update(purpose.as_bytes());
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_tokenizer_must_be_carried_exactly_and_no_other_one_is_accepted() {
        let mut competition = Competition::from_toml(DEFAULT_FILE).unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        // The byte-level competition: no tokenizer at all.
        assert_eq!(competition.check_tokenizer(None, None), Ok(()));
        assert!(
            competition
                .check_tokenizer(Some(&a), None)
                .unwrap_err()
                .contains("byte-level")
        );
        competition.tokenizer = Some(TokenizerPin {
            sha256: a.clone(),
            config_sha256: None,
        });
        competition.validate().unwrap();
        assert_eq!(competition.check_tokenizer(Some(&a), None), Ok(()));
        assert_eq!(competition.check_tokenizer(Some(&a), Some(&b)), Ok(()));
        assert!(
            competition
                .check_tokenizer(Some(&b), None)
                .unwrap_err()
                .contains("sha256")
        );
        assert!(
            competition
                .check_tokenizer(None, None)
                .unwrap_err()
                .contains("has none")
        );
        competition.tokenizer = Some(TokenizerPin {
            sha256: a.clone(),
            config_sha256: Some(b.clone()),
        });
        assert_eq!(competition.check_tokenizer(Some(&a), Some(&b)), Ok(()));
        assert!(
            competition
                .check_tokenizer(Some(&a), Some(&a))
                .unwrap_err()
                .contains("tokenizer_config")
        );
        assert!(
            competition
                .check_tokenizer(Some(&a), None)
                .unwrap_err()
                .contains("missing")
        );
        competition.tokenizer = Some(TokenizerPin {
            sha256: "A".repeat(64),
            config_sha256: None,
        });
        assert!(competition.validate().is_err());
        // Chat-formatted tasks need a pinned tokenizer (the byte-level one has no template).
        competition.tokenizer = None;
        competition.eval.chat = true;
        assert!(
            competition
                .validate()
                .unwrap_err()
                .to_string()
                .contains("eval.chat")
        );
    }
    use crate::tasks::TaskKind;

    const DEFAULT_FILE: &str = DEFAULT_COMPETITION_TOML;

    fn default_competition() -> Competition {
        Competition::from_toml(DEFAULT_FILE).unwrap()
    }

    fn assert_invalid(competition: &Competition, expected_field: &str) {
        match competition.validate() {
            Err(CompetitionError::Invalid { field, .. }) => assert_eq!(field, expected_field),
            other => panic!("expected Invalid {{ {expected_field} }}, got {other:?}"),
        }
    }

    #[test]
    fn default_competition_file_loads_with_the_documented_values() {
        let c = default_competition();
        assert_eq!(c.id, "byte-llama-v1");
        assert_eq!((c.dethrone.margin, c.dethrone.p_value), (0.01, 0.01));
        assert!(c.tasks.weight(TaskKind::Arithmetic) > 0);
        assert_eq!(c.shares.model + c.shares.labels, 1.0);
    }

    #[test]
    fn file_hash_is_the_sha256_of_the_bytes() {
        let file = CompetitionFile::from_bytes(DEFAULT_FILE.as_bytes()).unwrap();
        let expected: [u8; 32] = Sha256::digest(DEFAULT_FILE.as_bytes()).into();
        assert_eq!(file.sha256, expected);
        assert_eq!(file.sha256_hex().len(), 64);
        let edited = format!("{DEFAULT_FILE}\n# a comment changes the hash\n");
        assert_ne!(
            CompetitionFile::from_bytes(edited.as_bytes())
                .unwrap()
                .sha256,
            file.sha256
        );
    }

    #[test]
    fn load_or_default_is_the_built_in_file_without_a_path() {
        let built_in = CompetitionFile::load_or_default(None).unwrap();
        assert_eq!(built_in.competition, default_competition());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, DEFAULT_FILE.replace("samples = 256", "samples = 8")).unwrap();
        let file = CompetitionFile::load_or_default(Some(&path)).unwrap();
        assert_eq!(file.competition.eval.samples, 8);
        assert_ne!(file.sha256, built_in.sha256);
    }

    #[test]
    fn load_reads_from_disk_and_names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, DEFAULT_FILE).unwrap();
        assert_eq!(
            CompetitionFile::load(&path).unwrap().competition,
            default_competition()
        );
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            CompetitionFile::load(&missing),
            Err(CompetitionError::Io { path, .. }) if path == missing
        ));
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = DEFAULT_FILE.replace("[eval]", "[eval]\nsampels = 3");
        assert!(matches!(
            Competition::from_toml(&text),
            Err(CompetitionError::Parse { .. })
        ));
    }

    #[test]
    fn invalid_values_name_their_field() {
        let base = default_competition();
        let mut c = base.clone();
        c.id = "Has Spaces".into();
        assert_invalid(&c, "id");
        let mut c = base.clone();
        c.temperature = 0.0;
        assert_invalid(&c, "temperature");
        let mut c = base.clone();
        c.dethrone.margin = -0.01;
        assert_invalid(&c, "dethrone.margin");
        let mut c = base.clone();
        c.dethrone.p_value = f64::NAN;
        assert_invalid(&c, "dethrone.p_value");
        let mut c = default_competition();
        c.copies.max_divergence = -0.1;
        assert_invalid(&c, "copies.max_divergence");
        let mut c = default_competition();
        c.copies.weight_cosine = 1.5;
        assert_invalid(&c, "copies.weight_cosine");
        let mut c = base.clone();
        c.shares.labels = 0.5;
        assert_invalid(&c, "shares");
        let mut c = base.clone();
        c.eval.samples = 0;
        assert_invalid(&c, "eval.samples");
        let mut c = base.clone();
        c.eval.max_seq_len = 100_000;
        assert_invalid(&c, "eval.max_seq_len");
        let mut c = base.clone();
        c.architecture.max_vocab_size = 100;
        assert_invalid(&c, "architecture.max_vocab_size");
        let mut c = base;
        c.architecture.max_layers = 0;
        assert_invalid(&c, "architecture.max_layers");
    }

    #[test]
    fn open_instructions_are_validated_and_drawn_from_their_own_seed() {
        let smol = Competition::from_toml(include_str!("../../competitions/smollm2-135m.toml"))
            .expect("the SmolLM2 competition");
        let open = smol.open.expect("it scores open instructions");
        assert_eq!((open.samples, open.max_new_tokens), (16, 96));
        let seed = [9; 32];
        let tasks = smol.open_tasks(seed);
        assert_eq!(tasks.len(), 16);
        assert_eq!(tasks, smol.open_tasks(seed));
        assert_eq!(
            tasks,
            crate::tasks::open::generate(derive_seed(seed, OPEN_PURPOSE), 16)
        );
        assert!(default_competition().open_tasks(seed).is_empty());

        for (edit, field) in [
            ((0, 96, 0.05), "open.samples"),
            ((MAX_OPEN_SAMPLES + 1, 96, 0.05), "open.samples"),
            ((16, 0, 0.05), "open.max_new_tokens"),
            ((16, 96, 1.0), "open.margin"),
            ((16, 96, f64::NAN), "open.margin"),
        ] {
            let mut c = smol.clone();
            let (samples, max_new_tokens, margin) = edit;
            c.open = Some(OpenSettings {
                samples,
                max_new_tokens,
                margin,
                max_base_loss: None,
            });
            assert_invalid(&c, field);
        }
        for loss in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let mut c = smol.clone();
            c.open.as_mut().unwrap().max_base_loss = Some(loss);
            assert_invalid(&c, "open.max_base_loss");
        }
        // Judged by the base: a competition without one cannot judge.
        let mut c = smol.clone();
        c.base = None;
        assert_invalid(&c, "open.max_base_loss");
        // Open instructions are put as conversations: a raw-text competition cannot have them.
        let mut c = default_competition();
        c.open = smol.open;
        assert_invalid(&c, "open");
    }

    #[test]
    fn bounds_report_the_first_dimension_over_its_maximum() {
        let bounds = default_competition().architecture;
        let ok = ArchitectureDims {
            layers: 2,
            hidden_size: 64,
            intermediate_size: 128,
            attention_heads: 4,
            key_value_heads: 2,
            vocab_size: 259,
            max_position_embeddings: 128,
            params: 100_000,
        };
        assert_eq!(bounds.check(&ok), Ok(()));
        let big = ArchitectureDims {
            layers: bounds.max_layers + 1,
            ..ok
        };
        assert_eq!(
            bounds.check(&big),
            Err(BoundsViolation {
                field: "num_hidden_layers",
                value: bounds.max_layers + 1,
                max: bounds.max_layers
            })
        );
    }

    #[test]
    fn eval_seed_hashes_block_hash_then_netuid_little_endian() {
        let block = [0xab; 32];
        let mut manual = Vec::from(block);
        manual.extend([0x01, 0x02]);
        let expected: [u8; 32] = Sha256::digest(&manual).into();
        assert_eq!(eval_seed(block, 0x0201), expected);
        assert_ne!(eval_seed(block, 1), eval_seed(block, 256));
    }

    #[test]
    fn eval_seed_matches_a_known_vector() {
        // sha256 of 32 zero bytes followed by 01 00, computed independently with Python's hashlib.
        assert_eq!(hex::encode(eval_seed([0; 32], 1)), EVAL_SEED_ZERO_NETUID_1);
    }

    const EVAL_SEED_ZERO_NETUID_1: &str =
        "43b9847adfd48a8699d4d494fd7a4ca05106f3b44b159e78a6739e3e1f86c862";

    #[test]
    fn eval_samples_are_the_seeded_tasks_then_the_dataset_records() {
        let mut c = default_competition();
        c.eval.samples = 5;
        let tok = Tokenizer::bytes();
        let seed = eval_seed([3; 32], 1);
        let samples = c.eval_samples(seed, &tok, None).unwrap();
        assert_eq!(samples.len(), 5);
        assert_eq!(samples, c.eval_samples(seed, &tok, None).unwrap());
        assert_ne!(
            samples,
            c.eval_samples(eval_seed([4; 32], 1), &tok, None).unwrap()
        );
        let first = &generate(derive_seed(seed, TASKS_PURPOSE), &c.tasks, 1)[0];
        assert_eq!(
            samples[0],
            to_sample(&tok, first, c.eval.max_seq_len).unwrap()
        );

        let jsonl = b"{\"prompt\": \"hi\", \"completion\": \"there\"}\n";
        let dataset = Dataset::parse(jsonl, &Limits::default()).unwrap();
        c.dataset = Some(DatasetSpec {
            path: "d.jsonl".into(),
            sha256: hex::encode(Sha256::digest(jsonl)),
            samples: 2,
        });
        assert!(matches!(
            c.eval_samples(seed, &tok, None),
            Err(SampleSetError::DatasetMissing { .. })
        ));
        let mixed = c.eval_samples(seed, &tok, Some(&dataset)).unwrap();
        assert_eq!(mixed.len(), 7);
        assert_eq!(c.sample_count(), 7);
        assert_eq!(mixed[..5], samples[..]);
        assert_eq!(
            mixed[5],
            dataset.records()[0]
                .to_sample(&tok, c.eval.max_seq_len)
                .unwrap()
        );
    }

    #[test]
    fn a_pinned_dataset_loads_only_with_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = b"{\"prompt\": \"a\", \"completion\": \"b\"}\n";
        std::fs::write(dir.path().join("d.jsonl"), jsonl).unwrap();
        let mut spec = DatasetSpec {
            path: "d.jsonl".into(),
            sha256: hex::encode(Sha256::digest(jsonl)),
            samples: 1,
        };
        assert_eq!(spec.load(dir.path(), &Limits::default()).unwrap().len(), 1);
        spec.sha256 = hex::encode([0u8; 32]);
        assert!(matches!(
            spec.load(dir.path(), &Limits::default()),
            Err(DataError::HashMismatch { .. })
        ));
    }

    #[test]
    fn dataset_section_is_optional_and_validated() {
        let text = format!(
            "{DEFAULT_FILE}\n[dataset]\npath = \"x.jsonl\"\nsha256 = \"{}\"\nsamples = 3\n",
            "ab".repeat(32)
        );
        let c = Competition::from_toml(&text).unwrap();
        assert_eq!(c.dataset.as_ref().map(|d| d.samples), Some(3));
        assert!(default_competition().dataset.is_none());
        let mut bad = c.clone();
        if let Some(d) = bad.dataset.as_mut() {
            d.sha256 = "AB".repeat(32);
        }
        assert_invalid(&bad, "dataset.sha256");
        let mut bad = c;
        if let Some(d) = bad.dataset.as_mut() {
            d.samples = 0;
        }
        assert_invalid(&bad, "dataset.samples");
    }

    #[test]
    fn derived_seeds_differ_by_purpose() {
        let seed = [7; 32];
        assert_ne!(
            derive_seed(seed, "model-eval"),
            derive_seed(seed, "label-tasks")
        );
        assert_eq!(derive_seed(seed, "x"), derive_seed(seed, "x"));
    }
}
