//! GGUF, llama.cpp's model container (versions 2 and 3, little-endian): the header, the metadata
//! and the tensor table, read from bytes in memory with every count and length checked against
//! what is left of the input before anything is allocated; and the de-quantization of the tensor
//! types llama.cpp's published models use (F32, F16, BF16, Q4_0, Q4_1, Q8_0) to f32.
//!
//! Layout (`ggml/docs/gguf.md`): `"GGUF"`, `u32` version, `u64` tensor count, `u64` metadata
//! count; the metadata as `(string key, u32 type, value)`; per tensor `(string name, u32 n_dims,
//! u64 dims[n_dims], u32 type, u64 offset)`; padding to `general.alignment` (default 32); the
//! tensor data, each tensor at its offset from there. Strings are a `u64` length and UTF-8 bytes.
//! `dims[0]` varies fastest: a GGUF tensor of dims `[in, out]` is the row-major `[out, in]`
//! matrix of PyTorch. Quantized types store blocks of 32 consecutive values along `dims[0]`.
//!
//! No crate fitted: `gguf` 0.1 has no BF16 and `gguf-rs` 0.1 brings a CLI stack and flips
//! `serde_json`'s `arbitrary_precision` for the whole workspace.

use std::collections::BTreeMap;
use std::fmt;

use half::{bf16, f16};
use thiserror::Error;

/// Default alignment of the tensor data (`general.alignment` overrides it).
pub const DEFAULT_ALIGNMENT: u64 = 32;

/// Values per block of the quantized types this module reads.
pub const QK: usize = 32;

/// Bounds on what a file may declare; each is checked before memory is set aside for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgufLimits {
    /// Most metadata entries.
    pub max_metadata: u64,
    /// Most tensors.
    pub max_tensors: u64,
    /// Longest string (keys, values, tensor names), in bytes.
    pub max_string_bytes: u64,
    /// Most elements of one metadata array (a vocabulary is one array).
    pub max_array_len: u64,
    /// Most values in one tensor.
    pub max_tensor_values: u64,
}

impl Default for GgufLimits {
    /// 4,096 metadata entries and tensors, 1 MiB strings, 1 M array elements, 2³² values per
    /// tensor: far above any llama.cpp model of a few billion parameters.
    fn default() -> Self {
        Self {
            max_metadata: 4_096,
            max_tensors: 4_096,
            max_string_bytes: 1 << 20,
            max_array_len: 1 << 20,
            max_tensor_values: 1 << 32,
        }
    }
}

/// Why a file is not a GGUF this module reads.
#[derive(Debug, Error, PartialEq)]
pub enum GgufError {
    /// The first four bytes are not `GGUF`.
    #[error("not a GGUF file (it starts with {0:02x?}, not \"GGUF\")")]
    NotGguf(Vec<u8>),
    /// A version other than 2 or 3 (v1 had 32-bit counts; a byte-swapped version is big-endian).
    #[error("GGUF version {0} is not supported (only versions 2 and 3, little-endian)")]
    Version(u32),
    /// The input ended inside a structure.
    #[error("truncated: {what} needs {needed} bytes at offset {offset}, {left} left")]
    Truncated {
        /// What was being read.
        what: String,
        /// Where.
        offset: usize,
        /// Bytes it needs.
        needed: u64,
        /// Bytes left.
        left: usize,
    },
    /// A count or length over its limit.
    #[error("{what} is {value}, over the limit of {limit}")]
    TooLarge {
        /// What was counted.
        what: String,
        /// The declared value.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else that does not follow the format.
    #[error("malformed GGUF: {0}")]
    Malformed(String),
    /// A tensor type this module cannot de-quantize.
    #[error("tensor {name}: type {kind} is not supported (F32, F16, BF16, Q4_0, Q4_1, Q8_0 are)")]
    UnsupportedType {
        /// The tensor.
        name: String,
        /// The type's name or number.
        kind: String,
    },
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float32`.
    F32(f32),
    /// `float64`.
    F64(f64),
    /// `bool`.
    Bool(bool),
    /// `string`.
    String(String),
    /// `array` (of one element type; arrays may nest).
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(u64::from(v)),
            Self::U16(v) => Some(u64::from(v)),
            Self::U32(v) => Some(u64::from(v)),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(f64::from(v)),
            Self::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as text, when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool, when it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, when it is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Self::Array(values) => Some(values),
            _ => None,
        }
    }
}

/// A tensor's storage type (ggml's `ggml_type` numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of 32: an f16 scale `d` and 32 4-bit values, `x = (q − 8)·d`.
    Q4_0,
    /// Blocks of 32: f16 `d` and `m`, 32 4-bit values, `x = q·d + m`.
    Q4_1,
    /// Blocks of 32: an f16 scale `d` and 32 `i8`, `x = q·d`.
    Q8_0,
}

impl TensorType {
    /// The type numbered `id`, or its name for the error when it is not one of ours.
    fn from_id(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            30 => Self::Bf16,
            other => {
                let name = match other {
                    6 => "Q5_0",
                    7 => "Q5_1",
                    9 => "Q8_1",
                    10 => "Q2_K",
                    11 => "Q3_K",
                    12 => "Q4_K",
                    13 => "Q5_K",
                    14 => "Q6_K",
                    15 => "Q8_K",
                    16..=23 | 29 => "an IQ type",
                    24 => "I8",
                    25 => "I16",
                    26 => "I32",
                    27 => "I64",
                    28 => "F64",
                    _ => return Err(format!("#{other}")),
                };
                return Err(format!("{name} (#{other})"));
            }
        })
    }

    /// `(values, bytes)` per block.
    fn block(self) -> (u64, u64) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::Bf16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q8_0 => (32, 34),
        }
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Bf16 => "BF16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q8_0 => "Q8_0",
        })
    }
}

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// llama.cpp's name (`blk.0.attn_q.weight`).
    pub name: String,
    /// GGUF dims, fastest-varying first.
    pub dims: Vec<u64>,
    /// Storage type.
    pub kind: TensorType,
    /// Absolute byte range of its data in the file.
    pub range: std::ops::Range<usize>,
}

impl TensorInfo {
    /// The PyTorch (row-major) shape: the dims reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }

    /// True for a tensor without values (never in a valid file).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A parsed GGUF file over its bytes.
#[derive(Debug)]
pub struct Gguf<'a> {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, Value>,
    /// Tensors in file order.
    pub tensors: Vec<TensorInfo>,
    bytes: &'a [u8],
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor table of `bytes` (the whole file) under `limits`,
    /// and checks that every tensor's data lies inside the file.
    pub fn parse(bytes: &'a [u8], limits: &GgufLimits) -> Result<Self, GgufError> {
        let mut r = Reader {
            bytes,
            pos: 0,
            limits,
        };
        let magic = r.take(4, "the magic")?;
        if magic != b"GGUF" {
            return Err(GgufError::NotGguf(magic.to_vec()));
        }
        let version = r.u32("the version")?;
        if version != 2 && version != 3 {
            return Err(GgufError::Version(version));
        }
        let tensor_count = r.u64("the tensor count")?;
        check_limit("the tensor count", tensor_count, limits.max_tensors)?;
        let metadata_count = r.u64("the metadata count")?;
        check_limit("the metadata count", metadata_count, limits.max_metadata)?;

        let mut metadata = BTreeMap::new();
        for _ in 0..metadata_count {
            let key = r.string("a metadata key")?;
            let kind = r.u32("a metadata type")?;
            let value = r.value(kind, &key, 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(GgufError::Malformed(format!(
                    "metadata key {key} appears twice"
                )));
            }
        }
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => u64::from(*a),
            Some(other) => {
                return Err(GgufError::Malformed(format!(
                    "general.alignment must be a power of two u32, not {other:?}"
                )));
            }
        };

        let mut raw = Vec::new();
        for _ in 0..tensor_count {
            let name = r.string("a tensor name")?;
            let n_dims = r.u32("a tensor's dimension count")?;
            if !(1..=4).contains(&n_dims) {
                return Err(GgufError::Malformed(format!(
                    "tensor {name} has {n_dims} dimensions (1 to 4 allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64("a tensor dimension")?);
            }
            let kind = r.u32("a tensor type")?;
            let offset = r.u64("a tensor offset")?;
            raw.push((name, dims, kind, offset));
        }
        let data_start = (r.pos as u64).div_ceil(alignment) * alignment;

        let mut tensors = Vec::with_capacity(raw.len());
        let mut names = std::collections::BTreeSet::new();
        for (name, dims, kind, offset) in raw {
            if !names.insert(name.clone()) {
                return Err(GgufError::Malformed(format!("tensor {name} appears twice")));
            }
            let kind = TensorType::from_id(kind).map_err(|kind| GgufError::UnsupportedType {
                name: name.clone(),
                kind,
            })?;
            let values = dims
                .iter()
                .try_fold(1u64, |n, &d| (d > 0).then(|| n.checked_mul(d)).flatten())
                .ok_or_else(|| GgufError::Malformed(format!("tensor {name} has dims {dims:?}")))?;
            check_limit(
                &format!("the value count of tensor {name}"),
                values,
                limits.max_tensor_values,
            )?;
            let (per_block, block_bytes) = kind.block();
            if dims[0] % per_block != 0 {
                return Err(GgufError::Malformed(format!(
                    "tensor {name}: {kind} rows of {} values are not whole blocks of {per_block}",
                    dims[0]
                )));
            }
            if offset % alignment != 0 {
                return Err(GgufError::Malformed(format!(
                    "tensor {name}: offset {offset} is not a multiple of the alignment {alignment}"
                )));
            }
            let size = values / per_block * block_bytes;
            let start = data_start.checked_add(offset);
            let end = start.and_then(|s| s.checked_add(size));
            let (Some(start), Some(end)) = (start, end) else {
                return Err(GgufError::Malformed(format!(
                    "tensor {name}: offset {offset} overflows"
                )));
            };
            if end > bytes.len() as u64 {
                return Err(GgufError::Truncated {
                    what: format!("the data of tensor {name}"),
                    offset: usize::try_from(start).unwrap_or(usize::MAX),
                    needed: size,
                    left: bytes
                        .len()
                        .saturating_sub(usize::try_from(start).unwrap_or(usize::MAX)),
                });
            }
            tensors.push(TensorInfo {
                name,
                dims,
                kind,
                range: start as usize..end as usize,
            });
        }
        Ok(Self {
            version,
            metadata,
            tensors,
            bytes,
        })
    }

    /// The metadata value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The values of `tensor` as f32, in row-major order of [`TensorInfo::shape`].
    pub fn dequantize(&self, tensor: &TensorInfo) -> Vec<f32> {
        dequantize(tensor.kind, &self.bytes[tensor.range.clone()])
    }
}

fn check_limit(what: &str, value: u64, limit: u64) -> Result<(), GgufError> {
    if value > limit {
        return Err(GgufError::TooLarge {
            what: what.into(),
            value,
            limit,
        });
    }
    Ok(())
}

/// A cursor over the input.
struct Reader<'a, 'l> {
    bytes: &'a [u8],
    pos: usize,
    limits: &'l GgufLimits,
}

impl<'a> Reader<'a, '_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        if n > self.left() as u64 {
            return Err(GgufError::Truncated {
                what: what.into(),
                offset: self.pos,
                needed: n,
                left: self.left(),
            });
        }
        let n = n as usize;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let len = self.u64(what)?;
        check_limit(
            &format!("the length of {what}"),
            len,
            self.limits.max_string_bytes,
        )?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| GgufError::Malformed(format!("{what} is not UTF-8")))
    }

    /// A value of type `kind` (of key `key`, `depth` arrays deep).
    fn value(&mut self, kind: u32, key: &str, depth: u32) -> Result<Value, GgufError> {
        let what = format!("the value of {key}");
        Ok(match kind {
            0 => Value::U8(self.array::<1>(&what)?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => Value::U32(u32::from_le_bytes(self.array(&what)?)),
            5 => Value::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => match self.array::<1>(&what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(GgufError::Malformed(format!("{what}: bool byte {b}"))),
            },
            8 => Value::String(self.string(&what)?),
            9 => {
                if depth >= 4 {
                    return Err(GgufError::Malformed(format!(
                        "{what}: arrays nested too deep"
                    )));
                }
                let element = self.u32(&what)?;
                let len = self.u64(&what)?;
                check_limit(
                    &format!("the length of {what}"),
                    len,
                    self.limits.max_array_len,
                )?;
                // Every element takes at least one byte: a length the rest of the input cannot
                // hold is refused before anything is allocated for it.
                if len > self.left() as u64 {
                    return Err(GgufError::Truncated {
                        what,
                        offset: self.pos,
                        needed: len,
                        left: self.left(),
                    });
                }
                let mut values = Vec::with_capacity(len as usize);
                for _ in 0..len {
                    values.push(self.value(element, key, depth + 1)?);
                }
                Value::Array(values)
            }
            10 => Value::U64(u64::from_le_bytes(self.array(&what)?)),
            11 => Value::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(&what)?)),
            other => {
                return Err(GgufError::Malformed(format!(
                    "{what}: unknown value type {other}"
                )));
            }
        })
    }
}

/// De-quantizes `data` (whole blocks of `kind`) to f32.
pub fn dequantize(kind: TensorType, data: &[u8]) -> Vec<f32> {
    let half = |b: &[u8]| f16::from_le_bytes([b[0], b[1]]).to_f32();
    match kind {
        TensorType::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        TensorType::F16 => data.chunks_exact(2).map(half).collect(),
        TensorType::Bf16 => data
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        TensorType::Q8_0 => {
            let mut out = Vec::with_capacity(data.len() / 34 * QK);
            for block in data.chunks_exact(34) {
                let d = half(&block[..2]);
                out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
            out
        }
        TensorType::Q4_0 | TensorType::Q4_1 => {
            let (size, quants) = if kind == TensorType::Q4_0 {
                (18, 2)
            } else {
                (20, 4)
            };
            let mut out = Vec::with_capacity(data.len() / size * QK);
            for block in data.chunks_exact(size) {
                let d = half(&block[..2]);
                // Q4_0 centres the nibbles on 8; Q4_1 adds its minimum.
                let (shift, m) = if kind == TensorType::Q4_0 {
                    (8.0, 0.0)
                } else {
                    (0.0, half(&block[2..4]))
                };
                let qs = &block[quants..];
                let start = out.len();
                out.resize(start + QK, 0.0);
                for (j, &q) in qs.iter().enumerate() {
                    out[start + j] = (f32::from(q & 0x0f) - shift) * d + m;
                    out[start + j + QK / 2] = (f32::from(q >> 4) - shift) * d + m;
                }
            }
            out
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes GGUF files for tests (little-endian, version 3 unless changed).
    #[derive(Default)]
    pub(crate) struct Writer {
        pub(crate) version: u32,
        metadata: Vec<(String, Vec<u8>)>,
        tensors: Vec<(String, Vec<u64>, u32, Vec<u8>)>,
    }

    pub(crate) fn string(s: &str) -> Vec<u8> {
        let mut out = (s.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(s.as_bytes());
        out
    }

    impl Writer {
        pub(crate) fn new() -> Self {
            Self {
                version: 3,
                ..Self::default()
            }
        }

        /// Metadata entry with a raw `(type, bytes)` value.
        pub(crate) fn raw(&mut self, key: &str, kind: u32, value: &[u8]) -> &mut Self {
            let mut bytes = kind.to_le_bytes().to_vec();
            bytes.extend_from_slice(value);
            self.metadata.push((key.into(), bytes));
            self
        }

        /// Drops the metadata entries under `key`.
        pub(crate) fn remove(&mut self, key: &str) -> &mut Self {
            self.metadata.retain(|(k, _)| k != key);
            self
        }

        pub(crate) fn u32(&mut self, key: &str, v: u32) -> &mut Self {
            self.raw(key, 4, &v.to_le_bytes())
        }

        pub(crate) fn f32(&mut self, key: &str, v: f32) -> &mut Self {
            self.raw(key, 6, &v.to_le_bytes())
        }

        pub(crate) fn bool(&mut self, key: &str, v: bool) -> &mut Self {
            self.raw(key, 7, &[u8::from(v)])
        }

        pub(crate) fn str(&mut self, key: &str, v: &str) -> &mut Self {
            self.raw(key, 8, &string(v))
        }

        pub(crate) fn strings(&mut self, key: &str, values: &[&str]) -> &mut Self {
            let mut bytes = 8u32.to_le_bytes().to_vec();
            bytes.extend((values.len() as u64).to_le_bytes());
            for v in values {
                bytes.extend(string(v));
            }
            self.raw(key, 9, &bytes)
        }

        pub(crate) fn i32s(&mut self, key: &str, values: &[i32]) -> &mut Self {
            let mut bytes = 5u32.to_le_bytes().to_vec();
            bytes.extend((values.len() as u64).to_le_bytes());
            for v in values {
                bytes.extend(v.to_le_bytes());
            }
            self.raw(key, 9, &bytes)
        }

        /// A tensor of GGUF `dims` stored as type `kind` with `data`.
        pub(crate) fn tensor(
            &mut self,
            name: &str,
            dims: &[u64],
            kind: u32,
            data: Vec<u8>,
        ) -> &mut Self {
            self.tensors.push((name.into(), dims.to_vec(), kind, data));
            self
        }

        /// An f32 tensor of PyTorch `shape`.
        pub(crate) fn f32_tensor(
            &mut self,
            name: &str,
            shape: &[usize],
            values: &[f32],
        ) -> &mut Self {
            let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
            let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.tensor(name, &dims, 0, data)
        }

        pub(crate) fn bytes(&self) -> Vec<u8> {
            let mut out = b"GGUF".to_vec();
            out.extend(self.version.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend((self.metadata.len() as u64).to_le_bytes());
            for (key, value) in &self.metadata {
                out.extend(string(key));
                out.extend(value);
            }
            let mut offset = 0u64;
            let mut offsets = Vec::new();
            for (name, dims, kind, data) in &self.tensors {
                out.extend(string(name));
                out.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    out.extend(d.to_le_bytes());
                }
                out.extend(kind.to_le_bytes());
                out.extend(offset.to_le_bytes());
                offsets.push(offset);
                offset =
                    (offset + data.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
            }
            let start = (out.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
            out.resize(start as usize, 0);
            for ((_, _, _, data), offset) in self.tensors.iter().zip(offsets) {
                out.resize((start + offset) as usize, 0);
                out.extend(data);
            }
            out
        }
    }

    fn parse(bytes: &[u8]) -> Result<Gguf<'_>, GgufError> {
        Gguf::parse(bytes, &GgufLimits::default())
    }

    #[test]
    fn reads_metadata_of_every_type_and_the_tensor_table() {
        let mut w = Writer::new();
        w.u32("a.u32", 7)
            .f32("a.f32", 0.5)
            .bool("a.bool", true)
            .str("a.str", "héllo")
            .strings("a.list", &["x", "", "zz"])
            .i32s("a.ints", &[-1, 3])
            .raw("a.u64", 10, &u64::MAX.to_le_bytes())
            .raw("a.i8", 1, &[0xff])
            .raw("a.f64", 12, &2.25f64.to_le_bytes())
            .f32_tensor("t.weight", &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
            .f32_tensor("n.weight", &[3], &[0.5, -0.5, 0.25]);
        let bytes = w.bytes();
        let file = parse(&bytes).unwrap();
        assert_eq!(file.version, 3);
        assert_eq!(file.get("a.u32"), Some(&Value::U32(7)));
        assert_eq!(file.get("a.u32").and_then(Value::as_u64), Some(7));
        assert_eq!(file.get("a.f32").and_then(Value::as_f64), Some(0.5));
        assert_eq!(file.get("a.bool").and_then(Value::as_bool), Some(true));
        assert_eq!(file.get("a.str").and_then(Value::as_str), Some("héllo"));
        let list: Vec<_> = file
            .get("a.list")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(list, ["x", "", "zz"]);
        assert_eq!(
            file.get("a.ints"),
            Some(&Value::Array(vec![Value::I32(-1), Value::I32(3)]))
        );
        assert_eq!(file.get("a.u64").and_then(Value::as_u64), Some(u64::MAX));
        assert_eq!(file.get("a.i8"), Some(&Value::I8(-1)));
        assert_eq!(file.get("a.i8").and_then(Value::as_u64), None);
        assert_eq!(file.get("a.f64").and_then(Value::as_f64), Some(2.25));
        let t = file.tensor("t.weight").unwrap();
        assert_eq!(t.dims, [3, 2]);
        assert_eq!(t.shape(), [2, 3]);
        assert_eq!(file.dequantize(t), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            file.dequantize(file.tensor("n.weight").unwrap()),
            [0.5, -0.5, 0.25]
        );
        assert_eq!(t.range.start % 32, 0);
    }

    #[test]
    fn dequantizes_each_block_type() {
        let d = f16::from_f32(0.5).to_le_bytes();
        let m = f16::from_f32(-1.0).to_le_bytes();
        // Nibbles: byte j holds value j (low) and value j + 16 (high).
        let qs: Vec<u8> = (0..16u8).map(|j| j | ((15 - j) << 4)).collect();
        let q4_0: Vec<u8> = d.iter().chain(&qs).copied().collect();
        let out = dequantize(TensorType::Q4_0, &q4_0);
        assert_eq!(out.len(), 32);
        for j in 0..16 {
            assert_eq!(out[j], (j as f32 - 8.0) * 0.5);
            assert_eq!(out[j + 16], (15.0 - j as f32 - 8.0) * 0.5);
        }
        let q4_1: Vec<u8> = d.iter().chain(&m).chain(&qs).copied().collect();
        let out = dequantize(TensorType::Q4_1, &q4_1);
        for j in 0..16 {
            assert_eq!(out[j], j as f32 * 0.5 - 1.0);
            assert_eq!(out[j + 16], (15 - j) as f32 * 0.5 - 1.0);
        }
        let q8: Vec<u8> = d
            .iter()
            .copied()
            .chain((0..32).map(|i: i8| (i - 16) as u8))
            .collect();
        let out = dequantize(TensorType::Q8_0, &q8);
        for (i, v) in out.iter().enumerate() {
            assert_eq!(*v, (i as f32 - 16.0) * 0.5);
        }
        let h: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(dequantize(TensorType::F16, &h), [1.5, -2.0]);
        let b: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect();
        assert_eq!(dequantize(TensorType::Bf16, &b), [1.5, -2.0]);
    }

    #[test]
    fn refuses_what_is_not_gguf_v2_or_v3() {
        assert!(matches!(
            parse(b"GGML\x03\0\0\0"),
            Err(GgufError::NotGguf(_))
        ));
        assert!(matches!(parse(b"GG"), Err(GgufError::Truncated { .. })));
        for version in [1, 4, 0x0300_0000] {
            let mut w = Writer::new();
            w.version = version;
            assert_eq!(parse(&w.bytes()).unwrap_err(), GgufError::Version(version));
        }
        let mut w = Writer::new();
        w.version = 2;
        assert_eq!(parse(&w.bytes()).unwrap().version, 2);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut w = Writer::new();
        w.str("general.architecture", "llama")
            .strings("tokens", &["a", "b"])
            .f32_tensor("t", &[4], &[1.0, 2.0, 3.0, 4.0]);
        let bytes = w.bytes();
        parse(&bytes).unwrap();
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn huge_declared_sizes_are_refused_before_allocating() {
        // A string length of 2^62.
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(0u64.to_le_bytes());
        bytes.extend(1u64.to_le_bytes());
        bytes.extend((1u64 << 62).to_le_bytes());
        assert!(matches!(parse(&bytes), Err(GgufError::TooLarge { .. })));
        // Counts over the limits.
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(u64::MAX.to_le_bytes());
        bytes.extend(0u64.to_le_bytes());
        assert!(matches!(parse(&bytes), Err(GgufError::TooLarge { .. })));
        // An array longer than the input left.
        let mut w = Writer::new();
        let mut array = 0u32.to_le_bytes().to_vec();
        array.extend(1_000u64.to_le_bytes());
        w.raw("a", 9, &array);
        assert!(matches!(
            parse(&w.bytes()),
            Err(GgufError::Truncated { .. })
        ));
        // A tensor whose dims multiply past u64, and one past the value limit.
        let mut w = Writer::new();
        w.tensor("t", &[1 << 40, 1 << 40], 0, Vec::new());
        assert!(matches!(parse(&w.bytes()), Err(GgufError::Malformed(_))));
        let mut w = Writer::new();
        w.tensor("t", &[1 << 20, 1 << 20], 0, Vec::new());
        assert!(matches!(parse(&w.bytes()), Err(GgufError::TooLarge { .. })));
        // Data past the end of the file.
        let mut w = Writer::new();
        w.tensor("t", &[8], 0, vec![0; 16]);
        assert!(matches!(
            parse(&w.bytes()),
            Err(GgufError::Truncated { .. })
        ));
    }

    #[test]
    fn malformed_tables_are_named() {
        let mut w = Writer::new();
        w.tensor("t", &[32], 14, vec![0; 210]);
        let err = parse(&w.bytes()).unwrap_err();
        assert!(err.to_string().contains("Q6_K"), "{err}");
        let mut w = Writer::new();
        w.tensor("t", &[16], 8, vec![0; 34]);
        assert!(
            parse(&w.bytes())
                .unwrap_err()
                .to_string()
                .contains("whole blocks")
        );
        let mut w = Writer::new();
        w.f32_tensor("t", &[1], &[1.0])
            .f32_tensor("t", &[1], &[1.0]);
        assert!(parse(&w.bytes()).unwrap_err().to_string().contains("twice"));
        let mut w = Writer::new();
        w.u32("k", 1).u32("k", 2);
        assert!(parse(&w.bytes()).unwrap_err().to_string().contains("twice"));
        let mut w = Writer::new();
        w.raw("b", 7, &[2]);
        assert!(parse(&w.bytes()).unwrap_err().to_string().contains("bool"));
        let mut w = Writer::new();
        w.u32("general.alignment", 3);
        assert!(
            parse(&w.bytes())
                .unwrap_err()
                .to_string()
                .contains("alignment")
        );
    }
}
