//! Model artifacts on disk: an HF-style directory with `config.json` and `model.safetensors`.
//!
//! Tensor names and layouts are those of transformers' `LlamaForCausalLM`, so a model saved by
//! transformers loads here and ours load there. HF stores linear weights as `[out, in]`; burn's
//! `Linear` holds `[in, out]`, so they are transposed on the way in and out.
//!
//! Loading treats the artifact as hostile (a validator loads miners' uploads): the file size is
//! checked before it is read, the safetensors header before any tensor is converted, and every
//! tensor must be present with exactly the config's shape, in f32, f16 or bf16, with finite
//! values; anything else is a typed [`IoError`], never a panic. Weights are saved as f32.
//!
//! [`load_artifact`] and [`load_weights_file`] read the weights file tensor by tensor, a piece
//! of at most [`READ_PIECE`] bytes at a time, so the only full copy of the weights they hold is
//! the f32 model itself; [`load_weights`] converts from bytes the caller already holds. Both
//! give bit-identical models.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{Embedding, RmsNorm};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use safetensors::SafeTensorError;
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo, TensorView};

use crate::config::{CONFIG_FILE, ConfigError, LlamaConfig};
use crate::llama::{Attention, DecoderLayer, Llama, Mlp, linear_from};

/// The file name of a model's weights inside an artifact directory.
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// A tensor on the host: row-major f32 values and the shape (HF layout).
pub type HostTensor = (Vec<f32>, Vec<usize>);

/// Why an artifact could not be loaded, saved or compared.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// The `config.json` was rejected.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The weights are larger than the caller allows.
    #[error("weights are {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size found (or at least this many bytes).
        bytes: u64,
        /// The caller's limit.
        limit: u64,
    },
    /// The bytes are not a well-formed safetensors file.
    #[error("not a valid safetensors file: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    /// A tensor the config requires is absent.
    #[error("tensor `{name}` is missing")]
    MissingTensor {
        /// HF tensor name.
        name: String,
    },
    /// A tensor the config does not describe is present.
    #[error("unexpected tensor `{name}`")]
    UnexpectedTensor {
        /// HF tensor name.
        name: String,
    },
    /// A tensor's shape differs from the config's.
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        /// HF tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype other than f32, f16 or bf16.
    #[error("tensor `{name}` has unsupported dtype {dtype}")]
    Dtype {
        /// HF tensor name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// A tensor holds a NaN or an infinity.
    #[error("tensor `{name}` has a non-finite value at flat index {index}")]
    NonFinite {
        /// HF tensor name.
        name: String,
        /// Index of the first bad value.
        index: usize,
    },
    /// A tied model also carries an `lm_head.weight` that differs from the embedding.
    #[error("tie_word_embeddings is set but lm_head.weight differs from model.embed_tokens.weight")]
    TiedHeadDiffers,
    /// Two weight files compared by [`crate::similarity::tensor_cosines`] hold different tensor
    /// names or shapes.
    #[error("the two weight files differ in tensor `{name}` (missing or reshaped)")]
    Incomparable {
        /// The first differing tensor.
        name: String,
    },
    /// Reading a tensor back from the backend failed.
    #[error("reading tensor `{name}` from the backend: {message}")]
    Backend {
        /// HF tensor name.
        name: String,
        /// The backend's message.
        message: String,
    },
}

/// Reads a weights file of at most `max_bytes` bytes; the size is checked before reading.
pub fn read_weights_file(path: &Path, max_bytes: u64) -> Result<Vec<u8>, IoError> {
    let file = std::fs::File::open(path).map_err(file_error(path))?;
    let len = file.metadata().map_err(file_error(path))?.len();
    if len > max_bytes {
        return Err(IoError::TooLarge {
            bytes: len,
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    // `take` guards against a file that grows between the size check and the read.
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(file_error(path))?;
    if bytes.len() as u64 > max_bytes {
        return Err(IoError::TooLarge {
            bytes: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

/// Loads `dir/config.json` and `dir/model.safetensors` (at most `max_bytes`) onto `device`,
/// reading the weights file tensor by tensor ([`load_weights_file`]).
pub fn load_artifact<B: Backend>(
    dir: &Path,
    max_bytes: u64,
    device: &B::Device,
) -> Result<(LlamaConfig, Llama<B>), IoError> {
    let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE))?;
    let model = load_weights_file(&config, &dir.join(WEIGHTS_FILE), max_bytes, device)?;
    Ok((config, model))
}

/// Builds a model for `config` from the bytes of a safetensors file, after checking every tensor
/// (names, shapes, dtypes, finiteness) without allocating any backend memory.
pub fn load_weights<B: Backend>(
    config: &LlamaConfig,
    bytes: &[u8],
    device: &B::Device,
) -> Result<Llama<B>, IoError> {
    load_checked(config, WeightsReader::from_bytes(bytes)?, device)
}

/// [`load_weights`] from the safetensors file at `path` (at most `max_bytes`, checked before
/// reading), without reading the whole file into memory: its header is read and validated as
/// [`SafeTensors::deserialize`] does, then each tensor is read and converted in pieces of at
/// most [`READ_PIECE`] bytes. The model is bit-identical to [`load_weights`] on the file's bytes,
/// and the same checks pass or fail.
pub fn load_weights_file<B: Backend>(
    config: &LlamaConfig,
    path: &Path,
    max_bytes: u64,
    device: &B::Device,
) -> Result<Llama<B>, IoError> {
    load_checked(config, WeightsReader::open(path, max_bytes)?, device)
}

/// The most bytes of a tensor [`load_weights_file`] reads from the file at once (1 MiB, a
/// multiple of every element size).
pub const READ_PIECE: usize = 1 << 20;

/// The longest safetensors header accepted, as the `safetensors` crate's.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Where a safetensors file's tensor data is read from.
enum Payload<'a> {
    /// The data section of a file already in memory.
    Bytes(&'a [u8]),
    /// The file itself; its data section starts at byte `start`. `piece` is the reusable read
    /// buffer.
    File {
        file: std::fs::File,
        path: PathBuf,
        start: u64,
        piece: Vec<u8>,
    },
}

/// A safetensors file whose header was parsed and validated (offsets contiguous, sizes matching
/// dtypes and shapes, the data section exactly the rest of the file), read tensor by tensor.
pub(crate) struct WeightsReader<'a> {
    metadata: Metadata,
    payload: Payload<'a>,
}

impl<'a> WeightsReader<'a> {
    /// The header of the safetensors file `bytes`, validated as [`SafeTensors::deserialize`]
    /// does.
    pub(crate) fn from_bytes(bytes: &'a [u8]) -> Result<Self, IoError> {
        let (header, metadata) = SafeTensors::read_metadata(bytes)?;
        // `read_metadata` checked that 8 + header + the data section is the whole buffer.
        let data = bytes
            .get(8 + header..)
            .ok_or(SafeTensorError::MetadataIncompleteBuffer)?;
        Ok(Self {
            metadata,
            payload: Payload::Bytes(data),
        })
    }

    /// Opens the safetensors file at `path` (at most `max_bytes`) and reads its header only,
    /// with [`SafeTensors::read_metadata`]'s checks: the header's length is bounded by the
    /// file's before it is allocated, and the tensors' data must end exactly at the file's end.
    pub(crate) fn open(path: &Path, max_bytes: u64) -> Result<Self, IoError> {
        let mut file = std::fs::File::open(path).map_err(file_error(path))?;
        let len = file.metadata().map_err(file_error(path))?.len();
        if len > max_bytes {
            return Err(IoError::TooLarge {
                bytes: len,
                limit: max_bytes,
            });
        }
        if len < 8 {
            return Err(SafeTensorError::HeaderTooSmall.into());
        }
        let mut prefix = [0u8; 8];
        file.read_exact(&mut prefix).map_err(file_error(path))?;
        let header = u64::from_le_bytes(prefix);
        if header > MAX_HEADER_BYTES {
            return Err(SafeTensorError::HeaderTooLarge.into());
        }
        if header > len - 8 {
            return Err(SafeTensorError::InvalidHeaderLength.into());
        }
        // At most 100 MB and within the file: both checked above.
        let mut text = vec![0u8; header as usize];
        file.read_exact(&mut text).map_err(file_error(path))?;
        let text = std::str::from_utf8(&text).map_err(SafeTensorError::InvalidHeader)?;
        // `Metadata`'s deserializer validates offsets, shapes and sizes (`Metadata::new`).
        let metadata: Metadata =
            serde_json::from_str(text).map_err(SafeTensorError::InvalidHeaderDeserialization)?;
        if (metadata.data_len() as u64).checked_add(8 + header) != Some(len) {
            return Err(SafeTensorError::MetadataIncompleteBuffer.into());
        }
        Ok(Self {
            metadata,
            payload: Payload::File {
                file,
                path: path.to_path_buf(),
                start: 8 + header,
                piece: Vec::new(),
            },
        })
    }

    /// Every tensor's name, in the order of their data in the file.
    pub(crate) fn names(&self) -> Vec<String> {
        self.metadata.offset_keys()
    }

    /// A tensor's dtype, shape and offsets, if the file holds it.
    pub(crate) fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.metadata.info(name)
    }

    /// Elements `elements` of tensor `info` (f32, f16 or bf16; else [`IoError::Dtype`]) as f32
    /// values appended to `out`, read at most [`READ_PIECE`] bytes at a time.
    pub(crate) fn read_into(
        &mut self,
        name: &str,
        info: &TensorInfo,
        elements: Range<usize>,
        out: &mut Vec<f32>,
    ) -> Result<(), IoError> {
        let size = element_size(name, info.dtype)?;
        let (first, _) = info.data_offsets;
        let bytes = first + elements.start * size..first + elements.end * size;
        let mut at = bytes.start;
        while at < bytes.end {
            let piece = at..bytes.end.min(at + READ_PIECE);
            match &mut self.payload {
                Payload::Bytes(data) => decode_into(name, info.dtype, &data[piece.clone()], out)?,
                Payload::File {
                    file,
                    path,
                    start,
                    piece: buffer,
                } => {
                    buffer.resize(piece.len(), 0);
                    file.seek(SeekFrom::Start(*start + piece.start as u64))
                        .and_then(|_| file.read_exact(buffer))
                        .map_err(file_error(path))?;
                    decode_into(name, info.dtype, buffer, out)?;
                }
            }
            at = piece.end;
        }
        Ok(())
    }

    /// Tensor `info` as f32 values (exactly as many as its shape holds).
    pub(crate) fn read_f32(&mut self, name: &str, info: &TensorInfo) -> Result<Vec<f32>, IoError> {
        // Validated with the header: the count fits the file (and so `max_bytes`).
        let count: usize = info.shape.iter().product();
        let mut values = Vec::with_capacity(count);
        self.read_into(name, info, 0..count, &mut values)?;
        Ok(values)
    }

    /// Whether tensors `a` and `b` (same shape) hold equal values as f32 (`==` element by
    /// element, as two `Vec<f32>` compare), compared a piece at a time.
    fn equal_f32(
        &mut self,
        a: (&str, &TensorInfo),
        b: (&str, &TensorInfo),
    ) -> Result<bool, IoError> {
        element_size(a.0, a.1.dtype)?;
        element_size(b.0, b.1.dtype)?;
        let count: usize = a.1.shape.iter().product();
        let step = READ_PIECE / 4;
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for first in (0..count).step_by(step) {
            let elements = first..count.min(first + step);
            x.clear();
            y.clear();
            self.read_into(a.0, a.1, elements.clone(), &mut x)?;
            self.read_into(b.0, b.1, elements, &mut y)?;
            if x != y {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// Checks every tensor of `file` against `config` (names, shapes, dtypes, then finiteness while
/// converting each to f32, one at a time), then builds the model: no backend memory is allocated
/// before every check has passed.
fn load_checked<B: Backend>(
    config: &LlamaConfig,
    mut file: WeightsReader<'_>,
    device: &B::Device,
) -> Result<Llama<B>, IoError> {
    let expected = config.expected_tensors();
    let expected_names: BTreeSet<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();

    let mut redundant_head = None;
    for name in file.names() {
        if expected_names.contains(name.as_str()) {
            continue;
        }
        if name == "lm_head.weight" && config.tie_word_embeddings {
            redundant_head = file.info(&name).cloned();
            continue;
        }
        return Err(IoError::UnexpectedTensor { name });
    }
    let mut infos = Vec::with_capacity(expected.len());
    for (name, shape) in &expected {
        let info = file
            .info(name)
            .ok_or_else(|| IoError::MissingTensor { name: name.clone() })?;
        check_tensor(name, info.dtype, &info.shape, shape)?;
        infos.push((name.as_str(), info.clone()));
    }
    if let Some(head) = redundant_head {
        let embed = infos
            .iter()
            .find(|(name, _)| *name == "model.embed_tokens.weight")
            .map(|(_, info)| info)
            .ok_or_else(|| IoError::MissingTensor {
                name: "model.embed_tokens.weight".into(),
            })?;
        if head.shape != embed.shape || !file.equal_f32(("lm_head.weight", &head), ("", embed))? {
            return Err(IoError::TiedHeadDiffers);
        }
    }
    // Every check passed: convert to f32 on the host, then place on the device. The source
    // bytes of each tensor are read (from a file: one piece at a time) only while converting it.
    let mut converted = HashMap::with_capacity(infos.len());
    for (name, info) in infos {
        let values = file.read_f32(name, &info)?;
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(IoError::NonFinite {
                name: name.to_string(),
                index,
            });
        }
        converted.insert(name, (values, info.shape));
    }
    drop(file);
    let mut take = |name: &str| {
        converted
            .remove(name)
            .ok_or_else(|| IoError::MissingTensor {
                name: name.to_string(),
            })
    };
    build_model(config, &mut take, device)
}

/// Assembles the burn modules from HF-layout tensors handed out by `take`.
fn build_model<B: Backend>(
    config: &LlamaConfig,
    take: &mut dyn FnMut(&str) -> Result<HostTensor, IoError>,
    device: &B::Device,
) -> Result<Llama<B>, IoError> {
    let mut vector = |name: &str| -> Result<Tensor<B, 1>, IoError> {
        let (values, shape) = take(name)?;
        Ok(Tensor::from_data(TensorData::new(values, shape), device))
    };
    let mut norm = |name: &str| -> Result<RmsNorm<B>, IoError> {
        Ok(RmsNorm {
            gamma: Param::from_tensor(vector(name)?),
            epsilon: config.rms_norm_eps,
        })
    };
    let mut layers = Vec::with_capacity(config.num_hidden_layers);
    let mut norms = Vec::with_capacity(2 * config.num_hidden_layers + 1);
    for layer in 0..config.num_hidden_layers {
        norms.push(norm(&format!(
            "model.layers.{layer}.input_layernorm.weight"
        ))?);
        norms.push(norm(&format!(
            "model.layers.{layer}.post_attention_layernorm.weight"
        ))?);
    }
    let final_norm = norm("model.norm.weight")?;

    let mut linear = |name: &str| -> Result<_, IoError> {
        let (values, shape) = take(name)?;
        let [out, inp] = [shape[0], shape[1]];
        Ok(linear_from(Tensor::from_data(
            TensorData::new(transpose(&values, out, inp), [inp, out]),
            device,
        )))
    };
    let mut norms = norms.into_iter();
    for layer in 0..config.num_hidden_layers {
        let p = format!("model.layers.{layer}");
        let (Some(input_layernorm), Some(post_attention_layernorm)) = (norms.next(), norms.next())
        else {
            return Err(IoError::MissingTensor {
                name: format!("{p}.input_layernorm.weight"),
            });
        };
        layers.push(DecoderLayer {
            input_layernorm,
            self_attn: Attention {
                q_proj: linear(&format!("{p}.self_attn.q_proj.weight"))?,
                k_proj: linear(&format!("{p}.self_attn.k_proj.weight"))?,
                v_proj: linear(&format!("{p}.self_attn.v_proj.weight"))?,
                o_proj: linear(&format!("{p}.self_attn.o_proj.weight"))?,
                num_heads: config.num_attention_heads,
                num_kv_heads: config.num_key_value_heads,
                head_dim: config.head_dim(),
            },
            post_attention_layernorm,
            mlp: Mlp {
                gate_proj: linear(&format!("{p}.mlp.gate_proj.weight"))?,
                up_proj: linear(&format!("{p}.mlp.up_proj.weight"))?,
                down_proj: linear(&format!("{p}.mlp.down_proj.weight"))?,
            },
        });
    }
    let lm_head = if config.tie_word_embeddings {
        None
    } else {
        Some(linear("lm_head.weight")?)
    };
    let (values, shape) = take("model.embed_tokens.weight")?;
    let embed_tokens = Embedding {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device)),
    };
    Ok(Llama {
        embed_tokens,
        layers,
        norm: final_norm,
        lm_head,
        rope_theta: config.rope_theta,
        max_position_embeddings: config.max_position_embeddings,
    })
}

/// Checks a tensor's dtype and shape against what the config expects.
fn check_tensor(
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    expected: &[usize],
) -> Result<(), IoError> {
    if !matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
        return Err(IoError::Dtype {
            name: name.to_string(),
            dtype: format!("{dtype:?}"),
        });
    }
    if shape != expected {
        return Err(IoError::Shape {
            name: name.to_string(),
            expected: expected.to_vec(),
            found: shape.to_vec(),
        });
    }
    Ok(())
}

/// Bytes per element of an f32, f16 or bf16 tensor; [`IoError::Dtype`] for any other dtype.
fn element_size(name: &str, dtype: Dtype) -> Result<usize, IoError> {
    match dtype {
        Dtype::F32 => Ok(4),
        Dtype::F16 | Dtype::BF16 => Ok(2),
        other => Err(IoError::Dtype {
            name: name.to_string(),
            dtype: format!("{other:?}"),
        }),
    }
}

/// Converts little-endian f32, f16 or bf16 `data` to f32 values appended to `out`.
fn decode_into(name: &str, dtype: Dtype, data: &[u8], out: &mut Vec<f32>) -> Result<(), IoError> {
    match dtype {
        Dtype::F32 => out.extend(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        Dtype::F16 => out.extend(
            data.chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        Dtype::BF16 => out.extend(
            data.chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        other => {
            return Err(IoError::Dtype {
                name: name.to_string(),
                dtype: format!("{other:?}"),
            });
        }
    }
    Ok(())
}

/// Converts a little-endian f32, f16 or bf16 tensor to f32 values.
pub(crate) fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, IoError> {
    let mut values = Vec::new();
    decode_into(name, view.dtype(), view.data(), &mut values)?;
    Ok(values)
}

/// Row-major `[rows, cols]` → row-major `[cols, rows]`.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// The model's tensors by HF name, in HF layout, as f32 values with their shapes.
pub fn hf_state_dict<B: Backend>(
    model: &Llama<B>,
) -> Result<BTreeMap<String, HostTensor>, IoError> {
    fn values<B: Backend, const D: usize>(
        name: &str,
        tensor: Tensor<B, D>,
    ) -> Result<HostTensor, IoError> {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| IoError::Backend {
                name: name.to_string(),
                message: format!("{e:?}"),
            })?;
        Ok((values, shape))
    }
    let mut out = BTreeMap::new();
    let mut linear = |name: String, layer: &burn::nn::Linear<B>| -> Result<(), IoError> {
        let (v, shape) = values(&name, layer.weight.val())?;
        let [inp, outp] = [shape[0], shape[1]];
        out.insert(name, (transpose(&v, inp, outp), vec![outp, inp]));
        Ok(())
    };
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        let attn = &layer.self_attn;
        linear(format!("{p}.self_attn.q_proj.weight"), &attn.q_proj)?;
        linear(format!("{p}.self_attn.k_proj.weight"), &attn.k_proj)?;
        linear(format!("{p}.self_attn.v_proj.weight"), &attn.v_proj)?;
        linear(format!("{p}.self_attn.o_proj.weight"), &attn.o_proj)?;
        linear(format!("{p}.mlp.gate_proj.weight"), &layer.mlp.gate_proj)?;
        linear(format!("{p}.mlp.up_proj.weight"), &layer.mlp.up_proj)?;
        linear(format!("{p}.mlp.down_proj.weight"), &layer.mlp.down_proj)?;
    }
    if let Some(head) = &model.lm_head {
        linear("lm_head.weight".to_string(), head)?;
    }
    for (i, layer) in model.layers.iter().enumerate() {
        for (suffix, norm) in [
            ("input_layernorm", &layer.input_layernorm),
            ("post_attention_layernorm", &layer.post_attention_layernorm),
        ] {
            let name = format!("model.layers.{i}.{suffix}.weight");
            out.insert(name.clone(), values(&name, norm.gamma.val())?);
        }
    }
    out.insert(
        "model.norm.weight".into(),
        values("model.norm.weight", model.norm.gamma.val())?,
    );
    out.insert(
        "model.embed_tokens.weight".into(),
        values("model.embed_tokens.weight", model.embed_tokens.weight.val())?,
    );
    Ok(out)
}

/// The model's weights as the bytes of an f32 safetensors file with HF names and
/// `{"format": "pt"}` metadata (transformers requires it).
pub fn weights_to_safetensors<B: Backend>(model: &Llama<B>) -> Result<Vec<u8>, IoError> {
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = hf_state_dict(model)?
        .into_iter()
        .map(|(name, (values, shape))| (name, shape, values))
        .collect();
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    serialize(&tensors, WeightDtype::F32, Some(metadata))
}

/// `tensors` (name, shape, values) as the bytes of a safetensors file storing `dtype`.
fn serialize(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: WeightDtype,
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>, IoError> {
    let raw: Vec<Vec<u8>> = tensors.iter().map(|(_, _, v)| dtype.encode(v)).collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, shape, _), raw) in tensors.iter().zip(&raw) {
        views.push((
            name.as_str(),
            TensorView::new(dtype.safetensors(), shape.clone(), raw)?,
        ));
    }
    Ok(safetensors::serialize(views, metadata)?)
}

/// An I/O error on `path`, as [`IoError::File`].
fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> IoError {
    let path = path.to_path_buf();
    move |source| IoError::File { path, source }
}

/// Writes `bytes` to `dir/name` through `dir/.name.tmp` and a rename, so a crash never leaves a
/// torn file.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), IoError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).map_err(file_error(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(file_error(&path))
}

/// Writes `dir/config.json` and `dir/model.safetensors` (f32), creating `dir` if needed. Each
/// file is written to a temporary name and renamed, so a crash never leaves a torn artifact.
pub fn save_artifact<B: Backend>(
    model: &Llama<B>,
    config: &LlamaConfig,
    dir: &Path,
) -> Result<(), IoError> {
    std::fs::create_dir_all(dir).map_err(file_error(dir))?;
    write_atomically(dir, WEIGHTS_FILE, &weights_to_safetensors(model)?)?;
    let mut text = serde_json::to_string_pretty(&config.to_hf_json()).map_err(ConfigError::from)?;
    text.push('\n');
    write_atomically(dir, CONFIG_FILE, text.as_bytes())
}

/// How an artifact stores its weights: f32 (what training computes in), or bf16 (half the
/// size; the validators load either as f32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightDtype {
    /// 4 bytes per weight, exactly as trained.
    #[default]
    F32,
    /// 2 bytes per weight: f32 rounded to the nearest bfloat16 (8 exponent bits, as f32's; 8
    /// significant bits, a relative error of at most 2^-9).
    Bf16,
}

impl WeightDtype {
    /// `f32` or `bf16`, as flags and messages write it.
    pub fn name(self) -> &'static str {
        match self {
            WeightDtype::F32 => "f32",
            WeightDtype::Bf16 => "bf16",
        }
    }

    fn safetensors(self) -> Dtype {
        match self {
            WeightDtype::F32 => Dtype::F32,
            WeightDtype::Bf16 => Dtype::BF16,
        }
    }

    fn encode(self, values: &[f32]) -> Vec<u8> {
        match self {
            WeightDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            WeightDtype::Bf16 => values
                .iter()
                .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
                .collect(),
        }
    }
}

impl std::fmt::Display for WeightDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WeightDtype {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "f32" => Ok(WeightDtype::F32),
            "bf16" => Ok(WeightDtype::Bf16),
            other => Err(format!("unknown weight dtype {other:?}: use f32 or bf16")),
        }
    }
}

/// Rewrites `dir/model.safetensors` with every tensor stored as `dtype` (names, shapes and the
/// metadata kept), through a temporary file and a rename, so a crash leaves the old file.
/// Returns the new file's size in bytes.
pub fn convert_weights(dir: &Path, dtype: WeightDtype) -> Result<u64, IoError> {
    let mut file = WeightsReader::open(&dir.join(WEIGHTS_FILE), u64::MAX)?;
    let mut tensors = Vec::new();
    for name in file.names() {
        let Some(info) = file.info(&name).cloned() else {
            continue;
        };
        let values = file.read_f32(&name, &info)?;
        tensors.push((name, info.shape, values));
    }
    let metadata = file.metadata.metadata().clone();
    drop(file);
    let converted = serialize(&tensors, dtype, metadata)?;
    write_atomically(dir, WEIGHTS_FILE, &converted)?;
    Ok(converted.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = crate::backend::Cpu;

    fn tiny(tied: bool) -> LlamaConfig {
        LlamaConfig {
            hidden_size: 8,
            intermediate_size: 12,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            vocab_size: 10,
            max_position_embeddings: 16,
            rms_norm_eps: 1e-6,
            rope_theta: 10_000.0,
            tie_word_embeddings: tied,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }

    /// A state dict with a distinct value per element, as raw f32 bytes per tensor.
    fn state(config: &LlamaConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        config
            .expected_tensors()
            .into_iter()
            .enumerate()
            .map(|(t, (name, shape))| {
                let n: usize = shape.iter().product();
                let values = (0..n).map(|i| ((t * 31 + i) as f32 * 0.37).sin()).collect();
                (name, shape, values)
            })
            .collect()
    }

    fn encode(tensors: &[(String, Vec<usize>, Vec<f32>)], dtype: Dtype) -> Vec<u8> {
        let raw: Vec<Vec<u8>> = tensors
            .iter()
            .map(|(_, _, v)| match dtype {
                Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                Dtype::F16 => v
                    .iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect(),
                Dtype::BF16 => v
                    .iter()
                    .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
                    .collect(),
                _ => v.iter().flat_map(|x| f64::from(*x).to_le_bytes()).collect(),
            })
            .collect();
        let views: Vec<_> = tensors
            .iter()
            .zip(&raw)
            .map(|((name, shape, _), raw)| {
                (
                    name.as_str(),
                    TensorView::new(dtype, shape.clone(), raw).unwrap(),
                )
            })
            .collect();
        safetensors::serialize(views, None).unwrap()
    }

    fn load(config: &LlamaConfig, bytes: &[u8]) -> Result<Llama<B>, IoError> {
        load_weights::<B>(config, bytes, &Default::default())
    }

    #[test]
    fn loads_each_float_dtype_and_saves_back_the_same_f32_values() {
        let config = tiny(false);
        let tensors = state(&config);
        for (dtype, tolerance) in [(Dtype::F32, 0.0), (Dtype::F16, 1e-3), (Dtype::BF16, 1e-2)] {
            let model = load(&config, &encode(&tensors, dtype)).unwrap();
            let back = hf_state_dict(&model).unwrap();
            assert_eq!(back.len(), tensors.len());
            for (name, shape, values) in &tensors {
                let (got, got_shape) = &back[name];
                assert_eq!(got_shape, shape, "{name}");
                for (x, y) in values.iter().zip(got) {
                    assert!((x - y).abs() <= tolerance, "{name} {dtype:?}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn converts_an_artifact_to_bf16_at_half_the_size_and_loads_it() {
        let config = tiny(true);
        let model = config.init_seeded::<B>(&Default::default(), 963);
        let dir = tempfile::tempdir().unwrap();
        save_artifact(&model, &config, dir.path()).unwrap();
        let weights = dir.path().join(WEIGHTS_FILE);
        let f32_size = std::fs::metadata(&weights).unwrap().len();

        let size = convert_weights(dir.path(), WeightDtype::Bf16).unwrap();
        assert_eq!(size, std::fs::metadata(&weights).unwrap().len());
        let bytes = std::fs::read(&weights).unwrap();
        let (header, metadata) = SafeTensors::read_metadata(&bytes).unwrap();
        // Two bytes a weight after the header.
        let weights_count: usize = hf_state_dict(&model)
            .unwrap()
            .values()
            .map(|v| v.0.len())
            .sum();
        assert_eq!(size as usize - 8 - header, 2 * weights_count);
        assert_eq!(metadata.metadata().as_ref().unwrap()["format"], "pt");
        let file = SafeTensors::deserialize(&bytes).unwrap();
        assert!(file.tensors().iter().all(|(_, v)| v.dtype() == Dtype::BF16));

        let original = hf_state_dict(&model).unwrap();
        let (_, bf16) = load_artifact::<B>(dir.path(), 1 << 20, &Default::default()).unwrap();
        let bf16 = hf_state_dict(&bf16).unwrap();
        for (name, (values, _)) in &original {
            for (x, y) in values.iter().zip(&bf16[name].0) {
                assert!((x - y).abs() <= x.abs() / 256.0, "{name}: {x} vs {y}");
            }
        }
        // Back to f32: exactly the bf16 values, nothing more lost.
        convert_weights(dir.path(), WeightDtype::F32).unwrap();
        assert_eq!(std::fs::metadata(&weights).unwrap().len(), f32_size);
        let (_, back) = load_artifact::<B>(dir.path(), 1 << 20, &Default::default()).unwrap();
        assert_eq!(hf_state_dict(&back).unwrap(), bf16);

        assert_eq!("bf16".parse::<WeightDtype>(), Ok(WeightDtype::Bf16));
        assert!(
            "fp8"
                .parse::<WeightDtype>()
                .unwrap_err()
                .contains("f32 or bf16")
        );
    }

    #[test]
    fn saves_and_reloads_an_artifact_with_identical_logits() {
        for tied in [false, true] {
            let config = tiny(tied);
            let model = config.init_seeded::<B>(&Default::default(), 1011);
            let dir = tempfile::tempdir().unwrap();
            save_artifact(&model, &config, dir.path()).unwrap();
            let (config2, model2) =
                load_artifact::<B>(dir.path(), 1 << 20, &Default::default()).unwrap();
            assert_eq!(config2, config);
            let ids = Tensor::from_data(
                TensorData::new(vec![1i64, 4, 2, 9], [1, 4]),
                &Default::default(),
            );
            let a = model.forward(ids.clone()).into_data();
            let b = model2.forward(ids).into_data();
            assert_eq!(a, b);
            let cos = crate::similarity::tensor_cosines(
                &dir.path().join(WEIGHTS_FILE),
                &dir.path().join(WEIGHTS_FILE),
                1 << 20,
            )
            .unwrap();
            assert!(crate::similarity::is_near_copy(&cos, 0.999999));
        }
    }

    #[test]
    fn rejects_a_missing_tensor() {
        let config = tiny(false);
        let mut tensors = state(&config);
        tensors.retain(|(n, _, _)| n != "model.layers.1.mlp.up_proj.weight");
        let err = load(&config, &encode(&tensors, Dtype::F32)).unwrap_err();
        assert!(
            matches!(err, IoError::MissingTensor { name } if name == "model.layers.1.mlp.up_proj.weight")
        );
    }

    #[test]
    fn rejects_an_unexpected_tensor() {
        let config = tiny(false);
        let mut tensors = state(&config);
        tensors.push((
            "model.layers.2.input_layernorm.weight".into(),
            vec![8],
            vec![1.0; 8],
        ));
        let err = load(&config, &encode(&tensors, Dtype::F32)).unwrap_err();
        assert!(matches!(err, IoError::UnexpectedTensor { name } if name.contains("layers.2")));
    }

    #[test]
    fn rejects_a_wrong_shape_even_with_the_right_element_count() {
        let config = tiny(false);
        let mut tensors = state(&config);
        let k = tensors
            .iter_mut()
            .find(|(n, _, _)| n == "model.layers.0.self_attn.k_proj.weight")
            .unwrap();
        k.1 = vec![8, 4]; // [kv_dim, hidden] is [4, 8]
        let err = load(&config, &encode(&tensors, Dtype::F32)).unwrap_err();
        assert!(
            matches!(err, IoError::Shape { expected, found, .. } if expected == vec![4, 8] && found == vec![8, 4])
        );
    }

    #[test]
    fn rejects_unsupported_dtypes_and_non_finite_values() {
        let config = tiny(false);
        let tensors = state(&config);
        let err = load(&config, &encode(&tensors, Dtype::F64)).unwrap_err();
        assert!(matches!(err, IoError::Dtype { dtype, .. } if dtype == "F64"));

        let mut tensors = state(&config);
        tensors[3].2[5] = f32::NAN;
        let name = tensors[3].0.clone();
        let err = load(&config, &encode(&tensors, Dtype::F32)).unwrap_err();
        assert!(matches!(err, IoError::NonFinite { name: n, index: 5 } if n == name));

        let mut tensors = state(&config);
        tensors[0].2[0] = f32::INFINITY;
        assert!(matches!(
            load(&config, &encode(&tensors, Dtype::BF16)),
            Err(IoError::NonFinite { index: 0, .. })
        ));
    }

    #[test]
    fn rejects_garbage_and_truncated_files_without_panicking() {
        let config = tiny(false);
        assert!(matches!(load(&config, b""), Err(IoError::Format(_))));
        assert!(matches!(
            load(&config, &[0xff; 64]),
            Err(IoError::Format(_))
        ));
        let bytes = encode(&state(&config), Dtype::F32);
        for cut in [8, 100, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                matches!(load(&config, &bytes[..cut]), Err(IoError::Format(_))),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn accepts_a_redundant_tied_head_only_when_equal_to_the_embedding() {
        let config = tiny(true);
        let mut tensors = state(&config);
        let embed = tensors[0].clone();
        tensors.push(("lm_head.weight".into(), embed.1.clone(), embed.2.clone()));
        load(&config, &encode(&tensors, Dtype::F32)).unwrap();
        tensors.last_mut().unwrap().2[3] += 1.0;
        assert!(matches!(
            load(&config, &encode(&tensors, Dtype::F32)),
            Err(IoError::TiedHeadDiffers)
        ));
    }

    #[test]
    fn checks_the_size_limit_before_reading() {
        let config = tiny(false);
        let dir = tempfile::tempdir().unwrap();
        let model = config.init_seeded::<B>(&Default::default(), 1129);
        save_artifact(&model, &config, dir.path()).unwrap();
        let size = std::fs::metadata(dir.path().join(WEIGHTS_FILE))
            .unwrap()
            .len();
        let err = load_artifact::<B>(dir.path(), size - 1, &Default::default()).unwrap_err();
        assert!(
            matches!(err, IoError::TooLarge { bytes, limit } if bytes == size && limit == size - 1)
        );
        load_artifact::<B>(dir.path(), size, &Default::default()).unwrap();
    }

    /// The outcome of loading `bytes` from memory and from a file must be the same: equal
    /// models, or errors of the same kind (the same message, except the safetensors crate's
    /// wording of a malformed header).
    fn assert_both_paths_agree(config: &LlamaConfig, bytes: &[u8], case: &str) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WEIGHTS_FILE);
        std::fs::write(&path, bytes).unwrap();
        let from_bytes = load(config, bytes);
        let from_file = load_weights_file::<B>(config, &path, u64::MAX, &Default::default());
        match (from_bytes, from_file) {
            (Ok(a), Ok(b)) => {
                assert_eq!(
                    hf_state_dict(&a).unwrap(),
                    hf_state_dict(&b).unwrap(),
                    "{case}"
                )
            }
            (Err(IoError::Format(_)), Err(IoError::Format(_))) => {}
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{case}"),
            (a, b) => panic!(
                "{case}: from bytes {:?}, from the file {:?}",
                a.err(),
                b.err()
            ),
        }
    }

    #[test]
    fn reading_the_file_tensor_by_tensor_loads_what_the_bytes_load() {
        // An embedding of 2.2 MB in f32 spans three read pieces, 1.1 MB in bf16 two.
        let mut config = tiny(true);
        config.vocab_size = 70_000;
        let tensors = state(&config);
        for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16, Dtype::F64] {
            assert_both_paths_agree(&config, &encode(&tensors, dtype), &format!("{dtype:?}"));
        }
        let bytes = encode(&tensors, Dtype::BF16);
        assert_both_paths_agree(&config, b"", "empty");
        assert_both_paths_agree(&config, &[0xff; 64], "garbage");
        for cut in [7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
            assert_both_paths_agree(&config, &bytes[..cut], &format!("cut at {cut}"));
        }

        // A redundant tied head, equal, then differing only in its last read piece.
        let mut with_head = tensors.clone();
        let embed = with_head[0].clone();
        with_head.push(("lm_head.weight".into(), embed.1, embed.2));
        assert_both_paths_agree(&config, &encode(&with_head, Dtype::F32), "equal head");
        let last = with_head.last_mut().unwrap();
        *last.2.last_mut().unwrap() += 1.0;
        for dtype in [Dtype::F32, Dtype::BF16] {
            assert!(matches!(
                load(&config, &encode(&with_head, dtype)),
                Err(IoError::TiedHeadDiffers)
            ));
            assert_both_paths_agree(&config, &encode(&with_head, dtype), "differing head");
        }

        // Non-finite values, in the embedding's last piece and in a small tensor.
        let mut bad = tensors.clone();
        let n = bad[0].2.len();
        bad[0].2[n - 3] = f32::NAN;
        bad[4].2[1] = f32::NEG_INFINITY;
        let error = load(&config, &encode(&bad, Dtype::F32)).unwrap_err();
        assert!(matches!(error, IoError::NonFinite { index, .. } if index == n - 3));
        assert_both_paths_agree(&config, &encode(&bad, Dtype::F32), "non-finite");

        let mut missing = tensors.clone();
        missing.remove(2);
        assert_both_paths_agree(&config, &encode(&missing, Dtype::F32), "missing");
        let mut reshaped = tensors.clone();
        reshaped[2].1.reverse();
        assert_both_paths_agree(&config, &encode(&reshaped, Dtype::F32), "reshaped");

        // The size limit is checked on the file before anything is read.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WEIGHTS_FILE);
        std::fs::write(&path, &bytes).unwrap();
        let size = bytes.len() as u64;
        let error =
            load_weights_file::<B>(&config, &path, size - 1, &Default::default()).unwrap_err();
        assert!(
            matches!(error, IoError::TooLarge { bytes, limit } if bytes == size && limit == size - 1)
        );
        let error = load_weights_file::<B>(
            &config,
            &dir.path().join("absent"),
            size,
            &Default::default(),
        )
        .unwrap_err();
        assert!(matches!(error, IoError::File { .. }));
    }

    #[test]
    fn cosines_tell_a_noisy_copy_from_an_independent_model() {
        let config = tiny(false);
        let tensors = state(&config);
        let noisy: Vec<_> = tensors
            .iter()
            .map(|(n, s, v)| {
                let v = v
                    .iter()
                    .enumerate()
                    .map(|(i, x)| x + 1e-3 * ((i as f32) * 1.7).cos())
                    .collect();
                (n.clone(), s.clone(), v)
            })
            .collect();
        let other: Vec<_> = tensors
            .iter()
            .map(|(n, s, v)| (n.clone(), s.clone(), v.iter().rev().copied().collect()))
            .collect();
        let original = encode(&tensors, Dtype::F32);
        let copy = crate::similarity::tensor_cosines_bytes(&original, &encode(&noisy, Dtype::BF16))
            .unwrap();
        assert_eq!(copy.len(), tensors.len());
        assert!(crate::similarity::is_near_copy(&copy, 0.999), "{copy:?}");
        let independent =
            crate::similarity::tensor_cosines_bytes(&original, &encode(&other, Dtype::F32))
                .unwrap();
        assert!(!crate::similarity::is_near_copy(&independent, 0.999));

        let untied = encode(&state(&tiny(true)), Dtype::F32);
        assert!(matches!(
            crate::similarity::tensor_cosines_bytes(&original, &untied),
            Err(IoError::Incomparable { name }) if name == "lm_head.weight"
        ));
    }
}
