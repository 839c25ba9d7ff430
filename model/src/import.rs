//! Importing a pretrained base model into an artifact directory the subnet loads: from a
//! llama.cpp GGUF file ([`read_gguf`]) or a Hugging Face snapshot directory ([`read_hf`]), then
//! [`Import::write`].
//!
//! What a GGUF holds is turned into what `transformers` writes for `LlamaForCausalLM`:
//! - `config.json` from the `llama.*` metadata;
//! - `model.safetensors` (f32) with the HF tensor names, every tensor de-quantized, and the rows
//!   of `q_proj` and `k_proj` put back in HF order (llama.cpp's converter interleaves the two
//!   halves of each head for its RoPE; [`unpermute_rows`] undoes it);
//! - `tokenizer.json` from the `tokenizer.ggml.*` vocabulary (byte-level BPE: tokens, merges,
//!   control tokens as special added tokens, the pre-tokenizer llama.cpp names) and
//!   `tokenizer_config.json` with the special tokens and the `chat_template`.
//!
//! Files are checked before anything large is allocated: the file size against
//! [`ImportLimits::max_file_bytes`], every count in the container against [`GgufLimits`], and
//! the architecture against the model's own bounds ([`LlamaConfig::validate`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use thiserror::Error;

use crate::config::{CONFIG_FILE, ConfigError, LlamaConfig};
use crate::gguf::{Gguf, GgufError, GgufLimits, TensorInfo, Value};
use crate::io::WEIGHTS_FILE;
use crate::tokenizer::{TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, Tokenizer, TokenizerError};

/// Bounds of an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest file read (it is read into memory whole).
    pub max_file_bytes: u64,
    /// Bounds inside the container.
    pub gguf: GgufLimits,
}

impl Default for ImportLimits {
    /// 4 GiB files.
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
            gguf: GgufLimits::default(),
        }
    }
}

/// Why an import failed.
#[derive(Debug, Error)]
pub enum ImportError {
    /// The file could not be read or the directory written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than the limit.
    #[error("{path}: {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The container is malformed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The model is not one this subnet runs (architecture, metadata, tensors).
    #[error("{0}")]
    Unsupported(String),
    /// The derived config is out of the model's bounds.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The derived tokenizer does not load.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] TokenizerError),
    /// Writing the weights failed.
    #[error("writing the weights: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
}

/// A model read and converted, ready to be written ([`Import::write`]).
#[derive(Debug, Clone)]
pub struct Import {
    /// The model's configuration.
    pub config: LlamaConfig,
    /// The GGUF's `general.name`, when it has one.
    pub name: Option<String>,
    /// Tensor count by storage type (`Q4_1` → 210, `BF16` → 12, ...).
    pub tensor_types: BTreeMap<String, usize>,
    /// Whether a chat template came with it.
    pub chat_template: bool,
    /// The weights, in the config's order.
    tensors: Vec<HfTensor>,
    /// `tokenizer.json`'s bytes (none: the model uses the byte-level tokenizer).
    tokenizer: Option<Vec<u8>>,
    /// `tokenizer_config.json`'s bytes, when there is one.
    tokenizer_config: Option<Vec<u8>>,
}

/// One tensor of the HF state dict, de-quantized.
#[derive(Debug, Clone)]
struct HfTensor {
    /// HF name (`model.layers.0.self_attn.q_proj.weight`).
    name: String,
    /// Row-major shape.
    shape: Vec<usize>,
    /// f32 little-endian values.
    bytes: Vec<u8>,
}

/// Reads the llama.cpp GGUF at `path` and converts it (nothing is written yet).
pub fn read_gguf(path: &Path, limits: &ImportLimits) -> Result<Import, ImportError> {
    let data = read_bounded(path, limits.max_file_bytes)?.ok_or_else(|| {
        io(path)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file",
        ))
    })?;
    let file = Gguf::parse(&data, &limits.gguf)?;
    let model = GgufModel::new(&file)?;
    let tokenizer = pretty(&model.tokenizer_json()?)?;
    let tokenizer_config = pretty(&model.tokenizer_config())?;
    // The tokenizer must load as the subnet will load it, special tokens included.
    Tokenizer::from_hf_bytes(&tokenizer, Some(&tokenizer_config))?;
    let tensors = model.tensors()?;
    let mut tensor_types = BTreeMap::new();
    for t in &file.tensors {
        *tensor_types.entry(t.kind.to_string()).or_insert(0) += 1;
    }
    Ok(Import {
        config: model.config.clone(),
        name: file
            .get("general.name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        tensor_types,
        chat_template: model.chat_template.is_some(),
        tensors,
        tokenizer: Some(tokenizer),
        tokenizer_config: Some(tokenizer_config),
    })
}

/// Name of the index of a sharded safetensors checkpoint.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Reads a Hugging Face snapshot directory (as `huggingface-cli download` or transformers'
/// `save_pretrained` leaves it) and converts it: `config.json` (transformers 4 or 5 form),
/// `model.safetensors` or the shards named by `model.safetensors.index.json` (f32, f16 or bf16,
/// to f32), and `tokenizer.json` / `tokenizer_config.json` (with its chat template) as they are.
/// Every file is size-checked before it is read; nothing is written yet.
pub fn read_hf(dir: &Path, limits: &ImportLimits) -> Result<Import, ImportError> {
    let read = |name: &str, limit: u64| read_bounded(&dir.join(name), limit);
    let config_path = dir.join(CONFIG_FILE);
    let config = LlamaConfig::from_file(&config_path)?;
    let shards: Vec<String> = match read(SHARD_INDEX, 16 << 20)? {
        None => vec![WEIGHTS_FILE.to_string()],
        Some(index) => {
            let index: Json = serde_json::from_slice(&index).map_err(ConfigError::from)?;
            let map = index
                .get("weight_map")
                .and_then(Json::as_object)
                .ok_or_else(|| unsupported(format!("{SHARD_INDEX} has no weight_map")))?;
            let mut files: Vec<String> = Vec::new();
            for file in map.values() {
                let file = file
                    .as_str()
                    .filter(|f| {
                        !f.contains('/') && !f.contains('\\') && f.ends_with(".safetensors")
                    })
                    .ok_or_else(|| {
                        unsupported(format!("{SHARD_INDEX} names a bad shard {file}"))
                    })?;
                if !files.iter().any(|f| f == file) {
                    files.push(file.to_string());
                }
            }
            files
        }
    };
    let expected = config.expected_tensors();
    let mut found: BTreeMap<String, HfTensor> = BTreeMap::new();
    let mut tensor_types = BTreeMap::new();
    let mut total = 0u64;
    for shard in &shards {
        let bytes = read(shard, limits.max_file_bytes)?
            .ok_or_else(|| unsupported(format!("{} is missing", dir.join(shard).display())))?;
        total += bytes.len() as u64;
        if total > limits.max_file_bytes {
            return Err(ImportError::TooLarge {
                path: dir.to_path_buf(),
                bytes: total,
                limit: limits.max_file_bytes,
            });
        }
        let file = safetensors::SafeTensors::deserialize(&bytes)?;
        for (name, view) in file.tensors() {
            // Buffers older checkpoints kept: recomputed, never loaded.
            if name.ends_with("rotary_emb.inv_freq") {
                continue;
            }
            let Some((_, shape)) = expected.iter().find(|(n, _)| *n == name) else {
                if name == "lm_head.weight" && config.tie_word_embeddings {
                    continue; // a redundant copy of the tied embedding
                }
                return Err(unsupported(format!("{shard}: unexpected tensor {name}")));
            };
            if view.shape() != shape.as_slice() {
                return Err(unsupported(format!(
                    "{shard}: tensor {name} has shape {:?}, expected {shape:?}",
                    view.shape()
                )));
            }
            let values = crate::io::to_f32(&name, &view)
                .map_err(|e| unsupported(format!("{shard}: {e}")))?;
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(unsupported(format!(
                    "tensor {name} has a non-finite value at {bad}"
                )));
            }
            *tensor_types
                .entry(format!("{:?}", view.dtype()))
                .or_insert(0) += 1;
            let tensor = HfTensor {
                name: name.clone(),
                shape: shape.clone(),
                bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            };
            if found.insert(name.clone(), tensor).is_some() {
                return Err(unsupported(format!("tensor {name} appears in two shards")));
            }
        }
    }
    let mut tensors = Vec::with_capacity(expected.len());
    for (name, _) in &expected {
        tensors.push(
            found
                .remove(name)
                .ok_or_else(|| unsupported(format!("tensor {name} is missing")))?,
        );
    }
    let tokenizer = read(TOKENIZER_JSON, 64 << 20)?;
    let tokenizer_config = read(TOKENIZER_CONFIG_JSON, 16 << 20)?;
    let mut chat_template = false;
    if let Some(json) = &tokenizer {
        let loaded = Tokenizer::from_hf_bytes(json, tokenizer_config.as_deref())?;
        if loaded.vocab_size() > config.vocab_size {
            return Err(unsupported(format!(
                "the tokenizer has {} ids but the model only {}",
                loaded.vocab_size(),
                config.vocab_size
            )));
        }
        chat_template = loaded.chat_template().is_some();
    }
    Ok(Import {
        config,
        name: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        tensor_types,
        chat_template,
        tensors,
        tokenizer,
        tokenizer_config,
    })
}

/// JSON as the files are written: pretty, with a final newline.
fn pretty(value: &Json) -> Result<Vec<u8>, ImportError> {
    let mut text = serde_json::to_string_pretty(value).map_err(ConfigError::from)?;
    text.push('\n');
    Ok(text.into_bytes())
}

impl Import {
    /// Whether the model comes with a `tokenizer.json` (else it uses the byte-level tokenizer).
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// Writes `config.json`, `model.safetensors`, `tokenizer.json` and `tokenizer_config.json`
    /// to `dir` (created if missing; each file is written under a temporary name and renamed,
    /// the weights first).
    pub fn write(&self, dir: &Path) -> Result<(), ImportError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = self
            .tensors
            .iter()
            .map(|t| {
                let view = safetensors::tensor::TensorView::new(
                    safetensors::Dtype::F32,
                    t.shape.clone(),
                    &t.bytes,
                )?;
                Ok((t.name.clone(), view))
            })
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        let metadata = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
        let weights = dir.join(WEIGHTS_FILE);
        let tmp = dir.join(format!(".{WEIGHTS_FILE}.tmp"));
        safetensors::serialize_to_file(views, Some(metadata), &tmp)?;
        std::fs::rename(&tmp, &weights).map_err(io(&weights))?;
        let config = pretty(&self.config.to_hf_json())?;
        let files = [
            (TOKENIZER_JSON, self.tokenizer.as_deref()),
            (TOKENIZER_CONFIG_JSON, self.tokenizer_config.as_deref()),
            (CONFIG_FILE, Some(config.as_slice())),
        ];
        for (name, bytes) in files {
            let path = dir.join(name);
            let Some(bytes) = bytes else {
                // A byte-level model: no tokenizer file may be left over from before.
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(io(&path)(e));
                    }
                    _ => continue,
                }
            };
            let tmp = dir.join(format!(".{name}.tmp"));
            std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
        }
        Ok(())
    }
}

/// The bytes of `path` once its size is checked against `limit` (before it is read); `None`
/// when there is no such file.
fn read_bounded(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, ImportError> {
    let bytes = match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
        Ok(meta) => meta.len(),
    };
    if bytes > limit {
        return Err(ImportError::TooLarge {
            path: path.to_path_buf(),
            bytes,
            limit,
        });
    }
    std::fs::read(path).map(Some).map_err(io(path))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The HF name of a llama.cpp tensor name, `None` for names a llama has no use for.
pub fn hf_tensor_name(gguf: &str) -> Option<String> {
    let fixed = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let hf = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}"))
}

/// Puts the rows of a llama.cpp `attn_q`/`attn_k` matrix (`heads` heads of `rows / heads` rows,
/// `cols` wide) back in HF order. llama.cpp's converter stores HF row `h·d + a·d/2 + b` of head `h`
/// (`a` ∈ {0, 1}, `b` < d/2) at row `h·d + 2b + a`.
pub fn unpermute_rows(values: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let rows = values.len() / cols;
    let head_dim = rows / heads;
    let half = head_dim / 2;
    let mut out = vec![0.0; values.len()];
    for h in 0..heads {
        for a in 0..2 {
            for b in 0..half {
                let hf = h * head_dim + a * half + b;
                let gg = h * head_dim + 2 * b + a;
                out[hf * cols..(hf + 1) * cols]
                    .copy_from_slice(&values[gg * cols..(gg + 1) * cols]);
            }
        }
    }
    out
}

/// The llama of a parsed GGUF.
struct GgufModel<'f, 'a> {
    file: &'f Gguf<'a>,
    config: LlamaConfig,
    tokens: Vec<&'f str>,
    chat_template: Option<&'f str>,
}

impl<'f, 'a> GgufModel<'f, 'a> {
    fn new(file: &'f Gguf<'a>) -> Result<Self, ImportError> {
        let arch = file
            .get("general.architecture")
            .and_then(Value::as_str)
            .ok_or_else(|| unsupported("no general.architecture in the metadata"))?;
        if arch != "llama" {
            return Err(unsupported(format!(
                "architecture {arch:?}: only llama models import (SmolLM, Llama, TinyLlama, ...)"
            )));
        }
        let uint = |key: &str| -> Result<usize, ImportError> {
            file.get(key)
                .and_then(Value::as_u64)
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| unsupported(format!("metadata {key} is missing or not an integer")))
        };
        // f32 metadata to the decimal it was written from (1e-5, not 9.99999974e-6).
        let float = |key: &str, default: Option<f64>| -> Result<f64, ImportError> {
            match file.get(key) {
                Some(Value::F32(v)) => Ok(v.to_string().parse().unwrap_or(f64::from(*v))),
                Some(other) => other
                    .as_f64()
                    .ok_or_else(|| unsupported(format!("metadata {key} is not a number"))),
                None => default.ok_or_else(|| unsupported(format!("metadata {key} is missing"))),
            }
        };
        if let Some(kind) = file.get("llama.rope.scaling.type").and_then(Value::as_str)
            && kind != "none"
        {
            return Err(unsupported(format!(
                "RoPE scaling {kind:?} is not supported"
            )));
        }
        let model = file.get("tokenizer.ggml.model").and_then(Value::as_str);
        if model != Some("gpt2") {
            return Err(unsupported(format!(
                "tokenizer.ggml.model {model:?}: only byte-level BPE (\"gpt2\") tokenizers import"
            )));
        }
        let tokens: Vec<&str> = strings(file, "tokenizer.ggml.tokens")?;
        let heads = uint("llama.attention.head_count")?;
        let kv_heads = match file.get("llama.attention.head_count_kv") {
            None => heads,
            Some(_) => uint("llama.attention.head_count_kv")?,
        };
        let token = |key: &str| -> Result<Option<u32>, ImportError> {
            match file.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .and_then(|id| u32::try_from(id).ok())
                    .filter(|&id| (id as usize) < tokens.len())
                    .map(Some)
                    .ok_or_else(|| unsupported(format!("metadata {key} is not a token id"))),
            }
        };
        let config = LlamaConfig {
            hidden_size: uint("llama.embedding_length")?,
            intermediate_size: uint("llama.feed_forward_length")?,
            num_hidden_layers: uint("llama.block_count")?,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            vocab_size: tokens.len(),
            max_position_embeddings: uint("llama.context_length")?,
            rms_norm_eps: float("llama.attention.layer_norm_rms_epsilon", None)?,
            rope_theta: float("llama.rope.freq_base", Some(10_000.0))?,
            tie_word_embeddings: file.tensor("output.weight").is_none(),
            bos_token_id: token("tokenizer.ggml.bos_token_id")?,
            eos_token_id: token("tokenizer.ggml.eos_token_id")?,
            pad_token_id: token("tokenizer.ggml.padding_token_id")?,
        };
        config.validate()?;
        if let Some(vocab) = file.get("llama.vocab_size").and_then(Value::as_u64)
            && vocab != tokens.len() as u64
        {
            return Err(unsupported(format!(
                "llama.vocab_size is {vocab} but the vocabulary has {} tokens",
                tokens.len()
            )));
        }
        for key in [
            "llama.rope.dimension_count",
            "llama.attention.key_length",
            "llama.attention.value_length",
        ] {
            if let Some(dim) = file.get(key).and_then(Value::as_u64)
                && dim != config.head_dim() as u64
            {
                return Err(unsupported(format!(
                    "{key} is {dim}, not the head width {} (hidden / heads)",
                    config.head_dim()
                )));
            }
        }
        let chat_template = file.get("tokenizer.chat_template").and_then(Value::as_str);
        Ok(Self {
            file,
            config,
            tokens,
            chat_template,
        })
    }

    /// Every HF tensor, in the config's order.
    fn tensors(&self) -> Result<Vec<HfTensor>, ImportError> {
        let mut by_name: BTreeMap<String, &TensorInfo> = BTreeMap::new();
        for t in &self.file.tensors {
            let Some(hf) = hf_tensor_name(&t.name) else {
                let why = if t.name == "rope_freqs.weight" {
                    " (RoPE frequency scaling is not supported)"
                } else {
                    ""
                };
                return Err(unsupported(format!("unexpected tensor {}{why}", t.name)));
            };
            by_name.insert(hf, t);
        }
        let expected = self.config.expected_tensors();
        if by_name.len() != expected.len() {
            let names: std::collections::BTreeSet<&str> =
                expected.iter().map(|(n, _)| n.as_str()).collect();
            if let Some(extra) = by_name.keys().find(|n| !names.contains(n.as_str())) {
                return Err(unsupported(format!(
                    "tensor {extra} does not belong to a {}-layer llama",
                    self.config.num_hidden_layers
                )));
            }
        }
        let mut out = Vec::with_capacity(expected.len());
        for (name, shape) in expected {
            let t = by_name
                .get(&name)
                .ok_or_else(|| unsupported(format!("tensor {name} is missing")))?;
            if t.shape() != shape {
                return Err(unsupported(format!(
                    "tensor {} has shape {:?}, expected {shape:?}",
                    t.name,
                    t.shape()
                )));
            }
            let mut values = self.file.dequantize(t);
            if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                return Err(unsupported(format!(
                    "tensor {} has a non-finite value at {bad}",
                    t.name
                )));
            }
            let cols = shape[shape.len() - 1];
            if name.ends_with("self_attn.q_proj.weight") {
                values = unpermute_rows(&values, self.config.num_attention_heads, cols);
            } else if name.ends_with("self_attn.k_proj.weight") {
                values = unpermute_rows(&values, self.config.num_key_value_heads, cols);
            }
            let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            out.push(HfTensor { name, shape, bytes });
        }
        Ok(out)
    }

    /// `tokenizer.json` for the `tokenizers` crate: byte-level BPE over the GGUF vocabulary.
    fn tokenizer_json(&self) -> Result<Json, ImportError> {
        let merges = strings(self.file, "tokenizer.ggml.merges")?;
        let types: Vec<i64> = match self.file.get("tokenizer.ggml.token_type") {
            None => vec![1; self.tokens.len()],
            Some(v) => v
                .as_array()
                .ok_or_else(|| unsupported("tokenizer.ggml.token_type is not an array"))?
                .iter()
                .map(|t| match t {
                    Value::I32(t) => Ok(i64::from(*t)),
                    other => other.as_u64().map(|t| t as i64).ok_or_else(|| {
                        unsupported("tokenizer.ggml.token_type holds a non-integer")
                    }),
                })
                .collect::<Result<_, _>>()?,
        };
        if types.len() != self.tokens.len() {
            return Err(unsupported(format!(
                "tokenizer.ggml.token_type has {} entries for {} tokens",
                types.len(),
                self.tokens.len()
            )));
        }
        let mut vocab = serde_json::Map::new();
        for (id, token) in self.tokens.iter().enumerate() {
            if vocab.insert((*token).to_string(), json!(id)).is_some() {
                return Err(unsupported(format!(
                    "token {token:?} appears twice in the vocabulary"
                )));
            }
        }
        // llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused,
        // 6 byte. Control and user-defined tokens are matched whole in text, as HF does.
        let added: Vec<Json> = self
            .tokens
            .iter()
            .zip(&types)
            .enumerate()
            .filter(|(_, (_, t))| matches!(**t, 3 | 4))
            .map(|(id, (token, t))| {
                json!({
                    "id": id,
                    "content": token,
                    "single_word": false,
                    "lstrip": false,
                    "rstrip": false,
                    "normalized": false,
                    "special": *t == 3,
                })
            })
            .collect();
        let byte_level = json!({
            "type": "ByteLevel",
            "add_prefix_space": false,
            "trim_offsets": true,
            "use_regex": true,
        });
        let pre = self
            .file
            .get("tokenizer.ggml.pre")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let pre_tokenizer = match pre {
            "default" | "gpt2" | "gpt-2" => byte_level.clone(),
            // llama.cpp splits every digit off before the GPT-2 regex for these (StarCoder's
            // tokenizer, which SmolLM reuses): HF's Digits(individual) + ByteLevel.
            "smollm" | "starcoder" | "refact" => json!({
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Digits", "individual_digits": true},
                    byte_level,
                ],
            }),
            other => {
                return Err(unsupported(format!(
                    "tokenizer.ggml.pre {other:?} is not supported (gpt2, smollm, starcoder are)"
                )));
            }
        };
        Ok(json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {
                "type": "ByteLevel",
                "add_prefix_space": true,
                "trim_offsets": false,
                "use_regex": true,
            },
            "decoder": {
                "type": "ByteLevel",
                "add_prefix_space": true,
                "trim_offsets": true,
                "use_regex": true,
            },
            "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": null,
                "continuing_subword_prefix": null,
                "end_of_word_suffix": null,
                "fuse_unk": false,
                "byte_fallback": false,
                "ignore_merges": false,
                "vocab": vocab,
                "merges": merges,
            },
        }))
    }

    /// `tokenizer_config.json`: the special tokens by name and the chat template.
    fn tokenizer_config(&self) -> Json {
        let mut config = serde_json::Map::new();
        for (role, id) in [
            ("bos_token", self.config.bos_token_id),
            ("eos_token", self.config.eos_token_id),
            ("pad_token", self.config.pad_token_id),
        ] {
            if let Some(id) = id {
                config.insert(role.into(), json!(self.tokens[id as usize]));
            }
        }
        let add_bos = self
            .file
            .get("tokenizer.ggml.add_bos_token")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        config.insert("add_bos_token".into(), json!(add_bos));
        config.insert(
            "model_max_length".into(),
            json!(self.config.max_position_embeddings),
        );
        if let Some(template) = self.chat_template {
            config.insert("chat_template".into(), json!(template));
        }
        Json::Object(config)
    }
}

fn unsupported(message: impl Into<String>) -> ImportError {
    ImportError::Unsupported(message.into())
}

/// The metadata array `key` of strings.
fn strings<'f>(file: &'f Gguf<'_>, key: &str) -> Result<Vec<&'f str>, ImportError> {
    file.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| unsupported(format!("metadata {key} is missing or not an array")))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or_else(|| unsupported(format!("metadata {key} holds a non-string")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::gguf::tests::Writer;
    use crate::io::load_artifact;

    /// GPT-2's printable stand-in for each byte (`bytes_to_unicode`).
    fn byte_char(b: u8) -> char {
        let printable = |b: u8| (33..=126).contains(&b) || (161..=172).contains(&b) || b >= 174;
        if printable(b) {
            return char::from(b);
        }
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).expect("char")
    }

    /// `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`, the 256 bytes, then `ab` and `12`.
    fn vocabulary() -> (Vec<String>, Vec<i32>, Vec<&'static str>) {
        let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
            .map(String::from)
            .to_vec();
        tokens.extend((0..=255u8).map(|b| byte_char(b).to_string()));
        tokens.push("ab".into());
        tokens.push("12".into());
        let mut types = vec![3, 3, 3];
        types.resize(tokens.len(), 1);
        (tokens, types, vec!["a b", "1 2"])
    }

    fn tiny(vocab: usize, tied: bool) -> LlamaConfig {
        LlamaConfig {
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            vocab_size: vocab,
            max_position_embeddings: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 100_000.0,
            tie_word_embeddings: tied,
            bos_token_id: Some(1),
            eos_token_id: Some(2),
            pad_token_id: Some(2),
        }
    }

    /// llama.cpp's converter: HF row `h·d + a·d/2 + b` goes to row `h·d + 2b + a`.
    fn permute_rows(values: &[f32], heads: usize, cols: usize) -> Vec<f32> {
        let rows = values.len() / cols;
        let (d, half) = (rows / heads, rows / heads / 2);
        let mut out = vec![0.0; values.len()];
        for h in 0..heads {
            for a in 0..2 {
                for b in 0..half {
                    let (hf, gg) = (h * d + a * half + b, h * d + 2 * b + a);
                    out[gg * cols..(gg + 1) * cols]
                        .copy_from_slice(&values[hf * cols..(hf + 1) * cols]);
                }
            }
        }
        out
    }

    /// HF tensors of `config` with distinct seeded values.
    fn hf_tensors(config: &LlamaConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut state = 0x2545_f491_u64;
        config
            .expected_tensors()
            .into_iter()
            .map(|(name, shape)| {
                let n = shape.iter().product();
                let values = (0..n)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1);
                        ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
                    })
                    .collect();
                (name, shape, values)
            })
            .collect()
    }

    fn gguf_name(hf: &str) -> String {
        let (fixed, rest) = match hf {
            "model.embed_tokens.weight" => (Some("token_embd.weight"), ""),
            "model.norm.weight" => (Some("output_norm.weight"), ""),
            "lm_head.weight" => (Some("output.weight"), ""),
            other => (None, other),
        };
        if let Some(name) = fixed {
            return name.into();
        }
        let rest = rest.strip_prefix("model.layers.").expect("a layer tensor");
        let (layer, part) = rest.split_once('.').expect("layer.part");
        let part = match part {
            "input_layernorm.weight" => "attn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            other => panic!("{other}"),
        };
        format!("blk.{layer}.{part}")
    }

    /// A GGUF of `config` holding `tensors` as llama.cpp's converter writes them.
    fn writer(config: &LlamaConfig, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Writer {
        let (tokens, types, merges) = vocabulary();
        let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
        let mut w = Writer::new();
        w.str("general.architecture", "llama")
            .str("general.name", "Tiny Test")
            .u32("llama.block_count", config.num_hidden_layers as u32)
            .u32("llama.context_length", config.max_position_embeddings as u32)
            .u32("llama.embedding_length", config.hidden_size as u32)
            .u32("llama.feed_forward_length", config.intermediate_size as u32)
            .u32("llama.attention.head_count", config.num_attention_heads as u32)
            .u32("llama.attention.head_count_kv", config.num_key_value_heads as u32)
            .f32("llama.rope.freq_base", config.rope_theta as f32)
            .f32("llama.attention.layer_norm_rms_epsilon", config.rms_norm_eps as f32)
            .u32("llama.rope.dimension_count", config.head_dim() as u32)
            .str("tokenizer.ggml.model", "gpt2")
            .str("tokenizer.ggml.pre", "smollm")
            .strings("tokenizer.ggml.tokens", &tokens)
            .i32s("tokenizer.ggml.token_type", &types)
            .strings("tokenizer.ggml.merges", &merges)
            .u32("tokenizer.ggml.bos_token_id", 1)
            .u32("tokenizer.ggml.eos_token_id", 2)
            .u32("tokenizer.ggml.padding_token_id", 2)
            .bool("tokenizer.ggml.add_bos_token", false)
            .str("tokenizer.chat_template", "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}");
        for (name, shape, values) in tensors {
            let cols = shape[shape.len() - 1];
            let stored = if name.ends_with("q_proj.weight") {
                permute_rows(values, config.num_attention_heads, cols)
            } else if name.ends_with("k_proj.weight") {
                permute_rows(values, config.num_key_value_heads, cols)
            } else {
                values.clone()
            };
            w.f32_tensor(&gguf_name(name), shape, &stored);
        }
        w
    }

    fn import_bytes(bytes: &[u8]) -> Result<Import, ImportError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.gguf");
        std::fs::write(&path, bytes).expect("write");
        read_gguf(&path, &ImportLimits::default())
    }

    #[test]
    fn a_llama_cpp_file_imports_to_the_exact_hf_tensors_config_and_tokenizer() {
        let vocab = vocabulary().0.len();
        for tied in [true, false] {
            let config = tiny(vocab, tied);
            let tensors = hf_tensors(&config);
            let import = import_bytes(&writer(&config, &tensors).bytes()).expect("import");
            assert_eq!(import.config, config);
            assert_eq!(import.name.as_deref(), Some("Tiny Test"));
            assert!(import.chat_template);
            let dir = tempfile::tempdir().expect("tempdir");
            import.write(dir.path()).expect("write");

            // Every tensor is the HF original, q and k rows back in HF order.
            let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).expect("weights");
            let file = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
            assert_eq!(file.len(), tensors.len());
            for (name, shape, values) in &tensors {
                let view = file.tensor(name).expect(name);
                assert_eq!(view.shape(), shape.as_slice(), "{name}");
                let got: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                assert_eq!(&got, values, "{name}");
            }
            let (loaded, _) =
                load_artifact::<Cpu>(dir.path(), u64::MAX, &Default::default()).expect("loads");
            assert_eq!(loaded, config);

            // The tokenizer: special tokens whole, digits one by one (the merge "1 2" never
            // applies), other merges as usual.
            let tokenizer = Tokenizer::from_model_dir(dir.path()).expect("tokenizer");
            let id = |t: &str| vocabulary().0.iter().position(|x| x == t).unwrap() as u32;
            assert_eq!(tokenizer.encode("<|im_start|>ab").unwrap(), [1, id("ab")]);
            assert_eq!(tokenizer.encode("12").unwrap(), [id("1"), id("2")]);
            assert_eq!(
                tokenizer.encode("a b").unwrap(),
                [id("a"), id("Ġ"), id("b")]
            );
            assert_eq!(tokenizer.bos_id(), Some(1));
            assert_eq!(tokenizer.eos_id(), Some(2));
            assert_eq!(
                tokenizer.decode(&[id("ab"), id("Ġ"), id("1")]).unwrap(),
                "ab 1"
            );
            let config: Json = serde_json::from_slice(
                &std::fs::read(dir.path().join(TOKENIZER_CONFIG_JSON)).unwrap(),
            )
            .unwrap();
            assert!(
                config["chat_template"]
                    .as_str()
                    .unwrap()
                    .contains("<|im_start|>")
            );
            assert_eq!(config["add_bos_token"], json!(false));
        }
    }

    #[test]
    fn unpermute_inverts_llama_cpp_s_permutation() {
        let values: Vec<f32> = (0..8 * 3).map(|v| v as f32).collect();
        for heads in [1, 2, 4] {
            assert_eq!(
                unpermute_rows(&permute_rows(&values, heads, 3), heads, 3),
                values
            );
        }
        // One head of 4 rows: HF rows 0 1 | 2 3 are stored as 0 2 1 3.
        let stored = [0.0, 2.0, 1.0, 3.0];
        assert_eq!(unpermute_rows(&stored, 1, 1), [0.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    fn what_the_subnet_cannot_run_is_refused_with_the_reason() {
        let vocab = vocabulary().0.len();
        let config = tiny(vocab, true);
        let tensors = hf_tensors(&config);
        let message = |w: &Writer| import_bytes(&w.bytes()).unwrap_err().to_string();

        let mut w = writer(&config, &tensors);
        w.remove("general.architecture")
            .str("general.architecture", "qwen2");
        assert!(
            message(&w).contains("\"qwen2\": only llama"),
            "{}",
            message(&w)
        );
        w.remove("general.architecture");
        assert!(message(&w).contains("no general.architecture"));

        let mut w = writer(&config, &tensors);
        w.remove("tokenizer.ggml.model")
            .str("tokenizer.ggml.model", "llama");
        assert!(message(&w).contains("byte-level BPE"));
        w.remove("tokenizer.ggml.model")
            .str("tokenizer.ggml.model", "gpt2");
        w.remove("tokenizer.ggml.pre")
            .str("tokenizer.ggml.pre", "qwen2");
        assert!(message(&w).contains("tokenizer.ggml.pre"));

        let mut w = writer(&config, &tensors[1..]);
        assert!(message(&w).contains("model.embed_tokens.weight is missing"));
        w.f32_tensor("rope_freqs.weight", &[2], &[1.0, 1.0]);
        assert!(message(&w).contains("RoPE"));

        let mut w = writer(&config, &tensors);
        w.str("llama.rope.scaling.type", "yarn");
        assert!(message(&w).contains("yarn"));

        let mut bad = tensors.clone();
        bad[0].2[3] = f32::NAN;
        assert!(message(&writer(&config, &bad)).contains("non-finite"));

        let mut wrong = tiny(vocab, true);
        wrong.intermediate_size = 20;
        let w = writer(&wrong, &tensors);
        assert!(message(&w).contains("shape"), "{}", message(&w));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.gguf");
        std::fs::write(&path, writer(&config, &tensors).bytes()).unwrap();
        let limits = ImportLimits {
            max_file_bytes: 100,
            ..ImportLimits::default()
        };
        assert!(matches!(
            read_gguf(&path, &limits),
            Err(ImportError::TooLarge { .. })
        ));
        let err = read_gguf(&dir.path().join("missing.gguf"), &limits).unwrap_err();
        assert!(err.to_string().contains("missing.gguf"), "{err}");
    }
}
