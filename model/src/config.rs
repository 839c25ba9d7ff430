//! The decoder's hyperparameters, read from and written to a Hugging Face `config.json`.
//!
//! Reading is strict where a silent mismatch would change the logits (`hidden_act` other than
//! `silu`, `rope_scaling`, attention or MLP biases, a `head_dim` that is not
//! `hidden_size / num_attention_heads`) and lenient about fields that do not matter here: unknown HF
//! fields are ignored. Fields transformers fills with defaults when absent get the same defaults
//! here (`num_key_value_heads` = `num_attention_heads`, `rms_norm_eps` = 1e-6,
//! `rope_theta` = 10000, `max_position_embeddings` = 2048, `tie_word_embeddings` = false); the
//! sizes (`hidden_size`, `intermediate_size`, `num_hidden_layers`, `num_attention_heads`,
//! `vocab_size`) are required. transformers 5 writes `rope_theta` inside `rope_parameters` and
//! `dtype` instead of `torch_dtype`; both spellings are read.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The file name of a model's configuration inside an artifact directory.
pub const CONFIG_FILE: &str = "config.json";

/// Largest accepted `config.json` (real ones are about 1 KB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Largest accepted value of each size field; a config beyond these is rejected before any
/// allocation (an untrusted artifact could otherwise ask for terabytes).
const MAX_HIDDEN_SIZE: usize = 1 << 16;
const MAX_INTERMEDIATE_SIZE: usize = 1 << 18;
const MAX_LAYERS: usize = 1 << 9;
const MAX_HEADS: usize = 1 << 10;
const MAX_VOCAB: usize = 1 << 22;
const MAX_POSITIONS: usize = 1 << 20;

/// Why a `config.json` was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("config file is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The text is not JSON of the expected shape.
    #[error("config is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A required field is absent.
    #[error("config field `{field}` is missing")]
    Missing {
        /// The HF field name.
        field: &'static str,
    },
    /// A numeric field is outside the accepted range.
    #[error("config field `{field}` = {value} is outside [{min}, {max}]")]
    OutOfBounds {
        /// The HF field name.
        field: &'static str,
        /// The value found.
        value: f64,
        /// Smallest accepted value.
        min: f64,
        /// Largest accepted value.
        max: f64,
    },
    /// Two fields do not fit together (e.g. heads do not divide the hidden size).
    #[error("config is inconsistent: {0}")]
    Inconsistent(String),
    /// The config asks for a feature this implementation does not have.
    #[error("config field `{field}` = {value} is not supported")]
    Unsupported {
        /// The HF field name.
        field: &'static str,
        /// The value found, as JSON.
        value: String,
    },
}

/// Hyperparameters of a Llama-style decoder, in Hugging Face's vocabulary.
/// Serialised with these field names (not `config.json`'s HF layout: that is
/// [`LlamaConfig::to_hf_json`]) where a result travels whole, e.g. from a validator worker.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlamaConfig {
    /// Width of the residual stream (`d_model`).
    pub hidden_size: usize,
    /// Width of the SwiGLU MLP's hidden layer.
    pub intermediate_size: usize,
    /// Number of decoder layers.
    pub num_hidden_layers: usize,
    /// Number of query heads.
    pub num_attention_heads: usize,
    /// Number of key/value heads (grouped-query attention when below `num_attention_heads`).
    pub num_key_value_heads: usize,
    /// Number of token ids.
    pub vocab_size: usize,
    /// Longest sequence the model accepts.
    pub max_position_embeddings: usize,
    /// Epsilon added to the mean square in every RMSNorm.
    pub rms_norm_eps: f64,
    /// Base of the rotary embedding frequencies.
    pub rope_theta: f64,
    /// Whether the output projection reuses the token embedding matrix.
    pub tie_word_embeddings: bool,
    /// Beginning-of-sequence token id, when the config names one.
    pub bos_token_id: Option<u32>,
    /// End-of-sequence token id, when the config names one.
    pub eos_token_id: Option<u32>,
    /// Padding token id, when the config names one.
    pub pad_token_id: Option<u32>,
}

/// The subset of an HF config.json this crate reads; everything else is ignored.
#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    vocab_size: Option<usize>,
    max_position_embeddings: Option<usize>,
    rms_norm_eps: Option<f64>,
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    rope_scaling: Option<Value>,
    tie_word_embeddings: Option<bool>,
    hidden_act: Option<String>,
    head_dim: Option<usize>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    bos_token_id: Option<Value>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<Value>,
}

/// The fields of a [`LlamaConfig`] that decide its tensors' names and shapes; two configs with
/// equal dims have interchangeable weight files, whatever their token ids, ε or RoPE base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WeightShapes {
    /// `hidden_size`.
    pub hidden_size: usize,
    /// `intermediate_size`.
    pub intermediate_size: usize,
    /// `num_hidden_layers`.
    pub num_hidden_layers: usize,
    /// `num_attention_heads`.
    pub num_attention_heads: usize,
    /// `num_key_value_heads`.
    pub num_key_value_heads: usize,
    /// `vocab_size`.
    pub vocab_size: usize,
    /// `tie_word_embeddings` (whether `lm_head.weight` exists).
    pub tie_word_embeddings: bool,
}

impl LlamaConfig {
    /// The 6-layer, 256-wide byte-level model the benchmarks use (`bench_eval`, `bench_generate`,
    /// `model/scripts/bench_torch.py --shape 6x256`): 8 query and 4 key/value heads, 262 tokens.
    pub fn bench_6x256() -> Self {
        Self {
            hidden_size: 256,
            intermediate_size: 688,
            num_hidden_layers: 6,
            num_attention_heads: 8,
            num_key_value_heads: 4,
            vocab_size: 262,
            max_position_embeddings: 512,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }

    /// A one-layer, 16-wide byte-level model (vocabulary 259: bytes, BOS 256, EOS 257, one
    /// spare) for tests: it loads, evaluates and generates in milliseconds.
    pub fn tiny() -> Self {
        Self {
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            vocab_size: 259,
            max_position_embeddings: 64,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: Some(256),
            eos_token_id: Some(257),
            pad_token_id: None,
        }
    }

    /// SmolLM2-135M-Instruct's shapes (its `config.json`, as `miner init-base` imports it), for
    /// benchmarks with random weights of the real model's size.
    pub fn smollm2_135m() -> Self {
        Self {
            hidden_size: 576,
            intermediate_size: 1536,
            num_hidden_layers: 30,
            num_attention_heads: 9,
            num_key_value_heads: 3,
            vocab_size: 49152,
            max_position_embeddings: 8192,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            tie_word_embeddings: true,
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            pad_token_id: Some(2),
        }
    }

    /// The fields that decide the weights' names and shapes (bounds use [`crate::competition::ArchitectureDims`]).
    pub fn weight_shapes(&self) -> WeightShapes {
        WeightShapes {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            vocab_size: self.vocab_size,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Parses and validates the text of an HF `config.json`.
    pub fn from_json_str(text: &str) -> Result<Self, ConfigError> {
        let raw: RawConfig = serde_json::from_str(text)?;
        Self::from_raw(raw)
    }

    /// Reads and validates `path` (a `config.json` file of at most [`MAX_CONFIG_BYTES`]).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let io_error = |source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_error)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(io_error)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                limit: MAX_CONFIG_BYTES,
            });
        }
        Self::from_json_str(&text)
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        if let Some(model_type) = raw.model_type.as_deref()
            && model_type != "llama"
        {
            return Err(unsupported("model_type", model_type));
        }
        if let Some(act) = raw.hidden_act.as_deref()
            && act != "silu"
        {
            return Err(unsupported("hidden_act", act));
        }
        if raw.attention_bias == Some(true) {
            return Err(unsupported("attention_bias", true));
        }
        if raw.mlp_bias == Some(true) {
            return Err(unsupported("mlp_bias", true));
        }
        if let Some(scaling) = raw.rope_scaling.filter(|v| !v.is_null()) {
            return Err(unsupported("rope_scaling", scaling));
        }
        let mut rope_theta = raw.rope_theta;
        if let Some(params) = raw.rope_parameters.filter(|v| !v.is_null()) {
            match params.get("rope_type").and_then(Value::as_str) {
                None | Some("default") => {}
                Some(_) => return Err(unsupported("rope_parameters", params)),
            }
            if let Some(theta) = params.get("rope_theta").and_then(Value::as_f64) {
                rope_theta = Some(theta);
            }
        }

        let num_attention_heads = required("num_attention_heads", raw.num_attention_heads)?;
        let config = LlamaConfig {
            hidden_size: required("hidden_size", raw.hidden_size)?,
            intermediate_size: required("intermediate_size", raw.intermediate_size)?,
            num_hidden_layers: required("num_hidden_layers", raw.num_hidden_layers)?,
            num_attention_heads,
            num_key_value_heads: raw.num_key_value_heads.unwrap_or(num_attention_heads),
            vocab_size: required("vocab_size", raw.vocab_size)?,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(2048),
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope_theta: rope_theta.unwrap_or(10_000.0),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(false),
            bos_token_id: token_id(raw.bos_token_id),
            eos_token_id: token_id(raw.eos_token_id),
            pad_token_id: token_id(raw.pad_token_id),
        };
        config.validate()?;
        if let Some(head_dim) = raw.head_dim
            && head_dim != config.head_dim()
        {
            return Err(ConfigError::Inconsistent(format!(
                "head_dim {head_dim} differs from hidden_size / num_attention_heads = {}",
                config.head_dim()
            )));
        }
        Ok(config)
    }

    /// Checks every bound and cross-field rule; [`LlamaConfig::from_json_str`] calls it, and so
    /// should code that builds a config by hand.
    pub fn validate(&self) -> Result<(), ConfigError> {
        bounded("hidden_size", self.hidden_size, MAX_HIDDEN_SIZE)?;
        bounded(
            "intermediate_size",
            self.intermediate_size,
            MAX_INTERMEDIATE_SIZE,
        )?;
        bounded("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS)?;
        bounded("num_attention_heads", self.num_attention_heads, MAX_HEADS)?;
        bounded("num_key_value_heads", self.num_key_value_heads, MAX_HEADS)?;
        bounded("vocab_size", self.vocab_size, MAX_VOCAB)?;
        bounded(
            "max_position_embeddings",
            self.max_position_embeddings,
            MAX_POSITIONS,
        )?;
        if !(self.rms_norm_eps > 0.0 && self.rms_norm_eps < 1.0) {
            return Err(ConfigError::OutOfBounds {
                field: "rms_norm_eps",
                value: self.rms_norm_eps,
                min: f64::MIN_POSITIVE,
                max: 1.0,
            });
        }
        if !(self.rope_theta >= 1.0 && self.rope_theta <= 1e12) {
            return Err(ConfigError::OutOfBounds {
                field: "rope_theta",
                value: self.rope_theta,
                min: 1.0,
                max: 1e12,
            });
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(ConfigError::Inconsistent(format!(
                "num_attention_heads {} does not divide hidden_size {}",
                self.num_attention_heads, self.hidden_size
            )));
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return Err(ConfigError::Inconsistent(format!(
                "num_key_value_heads {} does not divide num_attention_heads {}",
                self.num_key_value_heads, self.num_attention_heads
            )));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(ConfigError::Inconsistent(format!(
                "head dimension {} is odd; rotary embeddings need it even",
                self.head_dim()
            )));
        }
        for (field, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return Err(ConfigError::OutOfBounds {
                    field,
                    value: f64::from(id),
                    min: 0.0,
                    max: (self.vocab_size - 1) as f64,
                });
            }
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Width of the key and value projections' outputs (`num_key_value_heads * head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim()
    }

    /// Every tensor of the HF `LlamaForCausalLM` state dict, with its shape in HF's layout
    /// (linear weights as `[out, in]`), in a stable order.
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (h, i, kv, v) = (
            self.hidden_size,
            self.intermediate_size,
            self.kv_dim(),
            self.vocab_size,
        );
        let mut tensors = vec![("model.embed_tokens.weight".to_string(), vec![v, h])];
        for layer in 0..self.num_hidden_layers {
            let p = format!("model.layers.{layer}");
            tensors.extend([
                (format!("{p}.input_layernorm.weight"), vec![h]),
                (format!("{p}.self_attn.q_proj.weight"), vec![h, h]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, h]),
                (format!("{p}.self_attn.o_proj.weight"), vec![h, h]),
                (format!("{p}.post_attention_layernorm.weight"), vec![h]),
                (format!("{p}.mlp.gate_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.up_proj.weight"), vec![i, h]),
                (format!("{p}.mlp.down_proj.weight"), vec![h, i]),
            ]);
        }
        tensors.push(("model.norm.weight".to_string(), vec![h]));
        if !self.tie_word_embeddings {
            tensors.push(("lm_head.weight".to_string(), vec![v, h]));
        }
        tensors
    }

    /// The dimensions a competition's architecture bounds are checked against.
    pub fn dims(&self) -> crate::competition::ArchitectureDims {
        crate::competition::ArchitectureDims {
            layers: self.num_hidden_layers as u64,
            hidden_size: self.hidden_size as u64,
            intermediate_size: self.intermediate_size as u64,
            attention_heads: self.num_attention_heads as u64,
            key_value_heads: self.num_key_value_heads as u64,
            vocab_size: self.vocab_size as u64,
            max_position_embeddings: self.max_position_embeddings as u64,
            params: self.num_parameters(),
        }
    }

    /// Number of trainable parameters (the tied output projection counted once).
    pub fn num_parameters(&self) -> u64 {
        self.expected_tensors()
            .iter()
            .map(|(_, shape)| shape.iter().map(|&d| d as u64).product::<u64>())
            .sum()
    }

    /// The config as HF writes it for `LlamaForCausalLM` with float32 weights.
    pub fn to_hf_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("architectures".into(), json!(["LlamaForCausalLM"]));
        map.insert("model_type".into(), json!("llama"));
        map.insert("torch_dtype".into(), json!("float32"));
        map.insert("hidden_act".into(), json!("silu"));
        map.insert("hidden_size".into(), json!(self.hidden_size));
        map.insert("intermediate_size".into(), json!(self.intermediate_size));
        map.insert("num_hidden_layers".into(), json!(self.num_hidden_layers));
        map.insert(
            "num_attention_heads".into(),
            json!(self.num_attention_heads),
        );
        map.insert(
            "num_key_value_heads".into(),
            json!(self.num_key_value_heads),
        );
        map.insert("head_dim".into(), json!(self.head_dim()));
        map.insert("vocab_size".into(), json!(self.vocab_size));
        map.insert(
            "max_position_embeddings".into(),
            json!(self.max_position_embeddings),
        );
        map.insert("rms_norm_eps".into(), json!(self.rms_norm_eps));
        map.insert("rope_theta".into(), json!(self.rope_theta));
        map.insert("rope_scaling".into(), Value::Null);
        map.insert("attention_bias".into(), json!(false));
        map.insert("attention_dropout".into(), json!(0.0));
        map.insert("mlp_bias".into(), json!(false));
        map.insert("initializer_range".into(), json!(0.02));
        map.insert("use_cache".into(), json!(true));
        map.insert(
            "tie_word_embeddings".into(),
            json!(self.tie_word_embeddings),
        );
        for (field, id) in [
            ("bos_token_id", self.bos_token_id),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id {
                map.insert(field.into(), json!(id));
            }
        }
        Value::Object(map)
    }

    /// Writes the HF form of the config to `dir/config.json`.
    pub fn save(&self, dir: &Path) -> Result<(), ConfigError> {
        let path = dir.join(CONFIG_FILE);
        let mut text = serde_json::to_string_pretty(&self.to_hf_json())?;
        text.push('\n');
        std::fs::write(&path, text).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn required(field: &'static str, value: Option<usize>) -> Result<usize, ConfigError> {
    value.ok_or(ConfigError::Missing { field })
}

fn bounded(field: &'static str, value: usize, max: usize) -> Result<(), ConfigError> {
    if value == 0 || value > max {
        return Err(ConfigError::OutOfBounds {
            field,
            value: value as f64,
            min: 1.0,
            max: max as f64,
        });
    }
    Ok(())
}

fn unsupported(field: &'static str, value: impl Into<Value>) -> ConfigError {
    ConfigError::Unsupported {
        field,
        value: value.into().to_string(),
    }
}

/// HF token ids are an integer, a list of integers (several EOS ids) or null; the first is kept.
fn token_id(value: Option<Value>) -> Option<u32> {
    let value = value?;
    let first = match &value {
        Value::Array(ids) => ids.first()?,
        other => other,
    };
    first.as_u64().and_then(|id| u32::try_from(id).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_json() -> Value {
        json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 262,
            "max_position_embeddings": 128,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "tie_word_embeddings": false,
            "hidden_act": "silu",
            "some_future_field": {"nested": [1, 2, 3]},
            "eos_token_id": [257, 3]
        })
    }

    fn parse(value: &Value) -> Result<LlamaConfig, ConfigError> {
        LlamaConfig::from_json_str(&value.to_string())
    }

    #[test]
    fn reads_hf_fields_and_ignores_unknown_ones() {
        let config = parse(&tiny_json()).unwrap();
        assert_eq!(config.hidden_size, 32);
        assert_eq!(config.num_key_value_heads, 2);
        assert_eq!(config.head_dim(), 8);
        assert_eq!(config.kv_dim(), 16);
        assert_eq!(config.eos_token_id, Some(257));
        assert_eq!(config.bos_token_id, None);
        assert!((config.rms_norm_eps - 1e-5).abs() < 1e-12);
    }

    #[test]
    fn round_trips_through_the_hf_form() {
        let config = parse(&tiny_json()).unwrap();
        let hf = config.to_hf_json();
        assert_eq!(hf["architectures"], json!(["LlamaForCausalLM"]));
        assert_eq!(hf["model_type"], json!("llama"));
        assert_eq!(hf["torch_dtype"], json!("float32"));
        assert_eq!(parse(&hf).unwrap(), config);

        let dir = tempfile::tempdir().unwrap();
        config.save(dir.path()).unwrap();
        assert_eq!(
            LlamaConfig::from_file(&dir.path().join(CONFIG_FILE)).unwrap(),
            config
        );
    }

    #[test]
    fn refuses_an_oversized_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        let mut text = tiny_json().to_string();
        text.push_str(&" ".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            LlamaConfig::from_file(&path),
            Err(ConfigError::TooLarge { .. })
        ));
    }

    #[test]
    fn applies_hf_defaults_for_optional_fields() {
        let mut value = tiny_json();
        let map = value.as_object_mut().unwrap();
        for field in [
            "num_key_value_heads",
            "rope_theta",
            "rms_norm_eps",
            "tie_word_embeddings",
            "max_position_embeddings",
        ] {
            map.remove(field);
        }
        let config = parse(&value).unwrap();
        assert_eq!(config.num_key_value_heads, 4);
        assert_eq!(config.rope_theta, 10_000.0);
        assert_eq!(config.rms_norm_eps, 1e-6);
        assert!(!config.tie_word_embeddings);
        assert_eq!(config.max_position_embeddings, 2048);
    }

    #[test]
    fn reads_rope_theta_from_transformers_5_rope_parameters() {
        let mut value = tiny_json();
        value.as_object_mut().unwrap().remove("rope_theta");
        value["rope_parameters"] = json!({"rope_type": "default", "rope_theta": 500000.0});
        assert_eq!(parse(&value).unwrap().rope_theta, 500_000.0);

        value["rope_parameters"] = json!({"rope_type": "llama3", "rope_theta": 500000.0});
        assert!(matches!(
            parse(&value),
            Err(ConfigError::Unsupported {
                field: "rope_parameters",
                ..
            })
        ));
    }

    #[test]
    fn rejects_missing_sizes() {
        let mut value = tiny_json();
        value.as_object_mut().unwrap().remove("vocab_size");
        assert!(matches!(
            parse(&value),
            Err(ConfigError::Missing {
                field: "vocab_size"
            })
        ));
    }

    #[test]
    fn rejects_heads_that_do_not_divide() {
        let mut value = tiny_json();
        value["num_key_value_heads"] = json!(3);
        assert!(matches!(parse(&value), Err(ConfigError::Inconsistent(_))));

        let mut value = tiny_json();
        value["num_attention_heads"] = json!(5);
        value["num_key_value_heads"] = json!(5);
        assert!(matches!(parse(&value), Err(ConfigError::Inconsistent(_))));

        let mut value = tiny_json();
        value["head_dim"] = json!(16);
        assert!(matches!(parse(&value), Err(ConfigError::Inconsistent(_))));
    }

    #[test]
    fn rejects_out_of_bounds_values() {
        for (field, bad) in [
            ("hidden_size", json!(0)),
            ("vocab_size", json!(1u64 << 40)),
            ("num_hidden_layers", json!(100_000)),
            ("rms_norm_eps", json!(0.0)),
            ("rope_theta", json!(-1.0)),
            ("max_position_embeddings", json!(0)),
        ] {
            let mut value = tiny_json();
            value[field] = bad;
            assert!(
                matches!(parse(&value), Err(ConfigError::OutOfBounds { field: f, .. }) if f == field),
                "{field} accepted"
            );
        }
        let mut value = tiny_json();
        value["pad_token_id"] = json!(262);
        assert!(matches!(
            parse(&value),
            Err(ConfigError::OutOfBounds {
                field: "pad_token_id",
                ..
            })
        ));
    }

    #[test]
    fn rejects_features_that_would_change_the_logits() {
        for (field, bad) in [
            ("hidden_act", json!("gelu")),
            ("attention_bias", json!(true)),
            ("mlp_bias", json!(true)),
            ("rope_scaling", json!({"type": "linear", "factor": 2.0})),
            ("model_type", json!("mistral")),
        ] {
            let mut value = tiny_json();
            value[field] = bad;
            assert!(
                matches!(parse(&value), Err(ConfigError::Unsupported { field: f, .. }) if f == field),
                "{field} accepted"
            );
        }
    }

    #[test]
    fn lists_hf_tensor_names_and_counts_parameters() {
        let mut config = parse(&tiny_json()).unwrap();
        let tensors = config.expected_tensors();
        assert_eq!(tensors.len(), 1 + 2 * 9 + 2);
        assert!(tensors.contains(&(
            "model.layers.1.self_attn.k_proj.weight".to_string(),
            vec![16, 32]
        )));
        assert_eq!(tensors.last().unwrap().0, "lm_head.weight");
        let untied = config.num_parameters();
        config.tie_word_embeddings = true;
        assert_eq!(config.num_parameters(), untied - 262 * 32);
        assert!(
            !config
                .expected_tensors()
                .iter()
                .any(|(n, _)| n == "lm_head.weight")
        );
    }
}
