//! The Llama-style decoder, numerically matching Hugging Face's `LlamaForCausalLM`.
//!
//! token embedding → N × (RMSNorm → grouped-query attention with rotary embeddings → residual,
//! RMSNorm → SwiGLU MLP → residual) → RMSNorm → output projection (its own matrix, or the
//! embedding matrix when `tie_word_embeddings`).
//!
//! Rotary embeddings use HF's `rotate_half` convention: the first and second halves of each head
//! are the two coordinates of each rotated pair, with frequencies `rope_theta^(-2i/head_dim)`.
//! Attention is causal; [`Llama::forward_padded`] also masks the padding of right-padded
//! batches, so a sample's logits do not depend on what it was batched with.
//!
//! On the CPU backend the full-sequence pass ([`Llama::hidden_states`]) runs burn's matrix
//! products with every step between them fused into one host pass ([`crate::fused`]); other
//! backends (CUDA, autodiff for training) run the same layers as burn tensor ops, and a test
//! checks that both agree.
//!
//! For generation, [`Llama::forward_cached`] keeps each layer's rotated keys and values in a
//! [`KvCache`], so each new token costs one position's work instead of the whole sequence's.
//! [`Llama::forward_cached_batch`] does the same for a batch of left-padded sequences (one
//! matrix product per step for all of them, rows leaving the batch as they end). On the CPU the
//! cache is host buffers appended in place and attention reads them where they are
//! ([`crate::fused::cached_attention`]); other backends concatenate tensors.

use std::sync::{Mutex, PoisonError};

use burn::module::{Module, Param};
use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig, RmsNorm, RmsNormConfig,
};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Int, Tensor, TensorData};

use crate::config::LlamaConfig;
use crate::fused;

/// Standard deviation of HF's initialisation (`initializer_range`).
const INIT_STD: f64 = 0.02;

/// Added to attention scores that must receive no weight; `exp` of it is exactly zero. Minus
/// infinity rather than a large finite number: libm's `exp` returns 0 for −∞ at once, but takes
/// its slow underflow path (setting `errno`) for every finite score it cannot represent, which
/// was 4% of a CPU eval. Every row keeps at least key 0 unmasked, so no row is all −∞.
const MASKED_SCORE: f32 = f32::NEG_INFINITY;

/// A Llama-style causal language model.
#[derive(Module, Debug)]
pub struct Llama<B: Backend> {
    /// Token embedding, `[vocab_size, hidden_size]` (`model.embed_tokens`).
    pub embed_tokens: Embedding<B>,
    /// The decoder layers (`model.layers.{i}`).
    pub layers: Vec<DecoderLayer<B>>,
    /// Final RMSNorm (`model.norm`).
    pub norm: RmsNorm<B>,
    /// Output projection (`lm_head`), `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Longest accepted sequence.
    pub max_position_embeddings: usize,
}

/// One decoder layer: pre-norm attention and pre-norm MLP, each with a residual connection.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    /// RMSNorm before attention (`input_layernorm`).
    pub input_layernorm: RmsNorm<B>,
    /// Grouped-query self-attention (`self_attn`).
    pub self_attn: Attention<B>,
    /// RMSNorm before the MLP (`post_attention_layernorm`).
    pub post_attention_layernorm: RmsNorm<B>,
    /// SwiGLU MLP (`mlp`).
    pub mlp: Mlp<B>,
}

/// Every layer's keys (rotated) and values of the positions a batch of sequences has been fed so
/// far, for [`Llama::forward_cached`] and [`Llama::forward_cached_batch`]. Build it with
/// [`Llama::new_cache`] (one sequence) or [`Llama::new_batch_cache`] (left-padded sequences).
///
/// Every row holds the same number of slots; row `b`'s first `pads[b]` slots are padding, so
/// its position `p` is slot `pads[b] + p`. Padding is never read by the row's real positions.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    /// Per layer, the keys and values so far.
    layers: Vec<LayerCache<B>>,
    /// Slots cached (padding included).
    len: usize,
    /// Leading padding slots of each row.
    pads: Vec<usize>,
}

/// One layer's cached keys (rotated) and values.
#[derive(Debug, Clone)]
enum LayerCache<B: Backend> {
    /// `[rows, kv_heads, slots, head_dim]` tensors, `None` before the first call (tensor ops:
    /// the GPU's path).
    Tensors(Option<(Tensor<B, 4>, Tensor<B, 4>)>),
    /// Host buffers, `[row][kv_head]` → `[slots, head_dim]`, appended to in place (the CPU's
    /// fused path: no copy of the whole cache per step).
    Host(fused::HostKv),
}

impl<B: Backend> KvCache<B> {
    /// Slots fed so far (for one sequence: its positions).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first call.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.pads.len()
    }

    /// Keeps only the rows `keep` (distinct indices into the current rows, in the order given),
    /// so the next call feeds one row of ids per kept row.
    pub fn retain(&mut self, keep: &[usize]) {
        let mut seen = vec![false; self.pads.len()];
        for &row in keep {
            assert!(
                row < seen.len() && !std::mem::replace(&mut seen[row], true),
                "kept rows must be distinct rows of the batch"
            );
        }
        self.pads = keep.iter().map(|&row| self.pads[row]).collect();
        for layer in &mut self.layers {
            match layer {
                LayerCache::Tensors(None) => {}
                LayerCache::Tensors(Some((keys, values))) => {
                    let rows = Tensor::<B, 1, Int>::from_data(
                        TensorData::new(
                            keep.iter().map(|&row| row as i64).collect::<Vec<_>>(),
                            [keep.len()],
                        ),
                        &keys.device(),
                    );
                    *keys = keys.clone().select(0, rows.clone());
                    *values = values.clone().select(0, rows);
                }
                LayerCache::Host(fused::HostKv { keys, values }) => {
                    let pick = |buffers: &mut Vec<Vec<Vec<f32>>>| {
                        let mut old = std::mem::take(buffers);
                        *buffers = keep
                            .iter()
                            .map(|&row| std::mem::take(&mut old[row]))
                            .collect();
                    };
                    pick(keys);
                    pick(values);
                }
            }
        }
    }
}

/// Grouped-query self-attention with rotary position embeddings and no biases.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `[hidden, heads * head_dim]`.
    pub q_proj: Linear<B>,
    /// `[hidden, kv_heads * head_dim]`.
    pub k_proj: Linear<B>,
    /// `[hidden, kv_heads * head_dim]`.
    pub v_proj: Linear<B>,
    /// `[heads * head_dim, hidden]`.
    pub o_proj: Linear<B>,
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads; each serves `num_heads / num_kv_heads` query heads.
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

/// SwiGLU MLP: `down(silu(gate(x)) * up(x))`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// `[hidden, intermediate]`.
    pub gate_proj: Linear<B>,
    /// `[hidden, intermediate]`.
    pub up_proj: Linear<B>,
    /// `[intermediate, hidden]`.
    pub down_proj: Linear<B>,
}

/// Held while a seeded model is drawn: the backend's RNG is one per process, so two draws at once
/// (tests on parallel threads, two benches) would take numbers from each other.
static SEEDED_DRAW: Mutex<()> = Mutex::new(());

impl LlamaConfig {
    /// A freshly initialised model drawn from `seed`: the same weights for the same seed, whatever
    /// else the process draws meanwhile. Burn draws a parameter when it is first read, so the
    /// weights are all read here, in field order, while the draw lock is held.
    pub fn init_seeded<B: Backend>(&self, device: &B::Device, seed: u64) -> Llama<B> {
        let _draw = SEEDED_DRAW.lock().unwrap_or_else(PoisonError::into_inner);
        B::seed(device, seed);
        let drawn = self.init::<B>(device).into_record();
        self.init::<B>(device).load_record(drawn)
    }

    /// A freshly initialised model (HF's scheme: normal(0, 0.02) weights, unit norms), drawn from
    /// the backend's RNG when first read; [`LlamaConfig::init_seeded`] for a reproducible draw.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Llama<B> {
        let init = Initializer::Normal {
            mean: 0.0,
            std: INIT_STD,
        };
        let linear = |d_input: usize, d_output: usize| {
            LinearConfig::new(d_input, d_output)
                .with_bias(false)
                .with_initializer(init.clone())
                .init(device)
        };
        let norm = || {
            RmsNormConfig::new(self.hidden_size)
                .with_epsilon(self.rms_norm_eps)
                .init(device)
        };
        let (h, i, kv) = (self.hidden_size, self.intermediate_size, self.kv_dim());
        let layers = (0..self.num_hidden_layers)
            .map(|_| DecoderLayer {
                input_layernorm: norm(),
                self_attn: Attention {
                    q_proj: linear(h, h),
                    k_proj: linear(h, kv),
                    v_proj: linear(h, kv),
                    o_proj: linear(h, h),
                    num_heads: self.num_attention_heads,
                    num_kv_heads: self.num_key_value_heads,
                    head_dim: self.head_dim(),
                },
                post_attention_layernorm: norm(),
                mlp: Mlp {
                    gate_proj: linear(h, i),
                    up_proj: linear(h, i),
                    down_proj: linear(i, h),
                },
            })
            .collect();
        Llama {
            embed_tokens: EmbeddingConfig::new(self.vocab_size, h)
                .with_initializer(init.clone())
                .init(device),
            layers,
            norm: norm(),
            lm_head: (!self.tie_word_embeddings).then(|| linear(h, self.vocab_size)),
            rope_theta: self.rope_theta,
            max_position_embeddings: self.max_position_embeddings,
        }
    }
}

impl<B: Backend> Llama<B> {
    /// Logits for every position of unpadded sequences.
    ///
    /// Shapes: `input_ids` `[batch, seq]` → logits `[batch, seq, vocab]`.
    ///
    /// Ids must be below `vocab_size` and `seq` at most `max_position_embeddings` (callers with
    /// untrusted input check first, as [`crate::eval`] does).
    pub fn forward(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        self.forward_padded(input_ids, &vec![seq; batch])
    }

    /// Logits for a right-padded batch: sample `b` is `input_ids[b, ..lengths[b]]`, the rest is
    /// padding that no real position attends to. Logits at padded positions are meaningless.
    ///
    /// Shapes: `input_ids` `[batch, seq]`, `lengths` `[batch]` → logits `[batch, seq, vocab]`.
    pub fn forward_padded(&self, input_ids: Tensor<B, 2, Int>, lengths: &[usize]) -> Tensor<B, 3> {
        self.output_logits(self.hidden_states(input_ids, lengths))
    }

    /// The output projection (`lm_head`, or the tied embedding) of final hidden states:
    /// `[.., hidden]` → `[.., vocab]`.
    ///
    /// A tied embedding is stored `[vocab, hidden]`. The CPU backend multiplies by its transpose
    /// in place (strided); for other backends, with fewer rows than `hidden` (generation: one
    /// row), the product is taken as `(E · hᵀ)ᵀ`, which copies only the small operands (burn's
    /// earlier CPU backend copied the whole matrix into the other layout, 113 MB for SmolLM2,
    /// every call).
    pub fn output_logits<const D: usize>(&self, hidden: Tensor<B, D>) -> Tensor<B, D> {
        match &self.lm_head {
            Some(head) => head.forward(hidden),
            None => {
                let embedding = self.embed_tokens.weight.val();
                let [vocab, width] = embedding.dims();
                let mut dims = hidden.dims();
                let rows = dims[..D - 1].iter().product::<usize>();
                if rows < width && !crate::backend::is_cpu::<B>() {
                    let flat: Tensor<B, 2> = hidden.reshape([rows, width]);
                    let logits = embedding.matmul(flat.transpose()).transpose();
                    dims[D - 1] = vocab;
                    logits.reshape(dims)
                } else {
                    burn::tensor::module::linear(hidden, embedding.transpose(), None)
                }
            }
        }
    }

    /// The final normalised hidden states, before the output projection.
    ///
    /// Shapes: `input_ids` `[batch, seq]`, `lengths` `[batch]` → `[batch, seq, hidden]`.
    pub fn hidden_states(&self, input_ids: Tensor<B, 2, Int>, lengths: &[usize]) -> Tensor<B, 3> {
        if crate::backend::is_cpu::<B>() {
            self.hidden_states_fused(input_ids)
        } else {
            self.hidden_states_tensor_ops(input_ids, lengths)
        }
    }

    /// [`Llama::hidden_states`] with burn's tensor ops only (the GPU's path, and autodiff's).
    pub(crate) fn hidden_states_tensor_ops(
        &self,
        input_ids: Tensor<B, 2, Int>,
        lengths: &[usize],
    ) -> Tensor<B, 3> {
        let device = input_ids.device();
        let [batch, seq] = input_ids.dims();
        let head_dim = self.head_dim();
        let (cos, sin) = rotary_tables::<B>(seq, head_dim, self.rope_theta, &device);
        let mask = attention_bias::<B>(batch, seq, lengths, &device);

        let mut x = self.embed_tokens.forward(input_ids);
        for layer in &self.layers {
            x = layer.forward(x, &cos, &sin, &mask);
        }
        self.norm.forward(x)
    }

    /// [`Llama::hidden_states`] on the CPU: burn's matrix products, and every step between them
    /// as one host pass ([`crate::fused`]); the residual stream stays a host buffer.
    ///
    /// Only the causal mask is applied, not the padding mask: in a right-padded batch a real
    /// position never reads a later one, so the padding changes only the (meaningless) padded
    /// positions.
    pub(crate) fn hidden_states_fused(&self, input_ids: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [batch, seq] = input_ids.dims();
        let head_dim = self.head_dim();
        let rotary = fused::Rotary::new(seq, head_dim, self.rope_theta);
        let x = self.embed_tokens.forward(input_ids);
        let [_, _, hidden] = x.dims();
        let device = x.device();
        let mut x = host(x);
        let x = values_mut(&mut x);
        for layer in &self.layers {
            layer.forward_fused(x, [batch, seq], &rotary, &device);
        }
        let normed = fused_norm(&self.norm, x);
        to_tensor(normed, [batch, seq, hidden], &device)
    }

    /// Width of one attention head (the rotary tables' width; 2 for a model without layers).
    fn head_dim(&self) -> usize {
        self.layers
            .first()
            .map_or(2, |layer| layer.self_attn.head_dim)
    }

    /// Key/value heads of each layer (0 without layers).
    fn kv_heads(&self) -> usize {
        self.layers
            .first()
            .map_or(0, |layer| layer.self_attn.num_kv_heads)
    }

    /// Bytes of keys and values one position of one sequence holds in a [`KvCache`] (f32, every
    /// layer; SmolLM2-135M: 46 080).
    pub fn cache_bytes_per_position(&self) -> usize {
        self.layers.len() * 2 * self.kv_heads() * self.head_dim() * std::mem::size_of::<f32>()
    }

    /// An empty cache of one sequence for [`Llama::forward_cached`].
    pub fn new_cache(&self) -> KvCache<B> {
        self.new_batch_cache(vec![0])
    }

    /// An empty cache for [`Llama::forward_cached_batch`] of `pads.len()` sequences, row `b`
    /// left-padded by `pads[b]` slots (a prompt of `n` tokens in a batch whose longest prompt
    /// has `m` gets `m - n`).
    pub fn new_batch_cache(&self, pads: Vec<usize>) -> KvCache<B> {
        self.batch_cache(pads, crate::backend::is_cpu::<B>())
    }

    /// [`Llama::new_batch_cache`] with host buffers (`fused`, the CPU's fused path) or tensors.
    pub(crate) fn batch_cache(&self, pads: Vec<usize>, fused: bool) -> KvCache<B> {
        let layer = if fused {
            let empty = vec![vec![Vec::new(); self.kv_heads()]; pads.len()];
            LayerCache::Host(fused::HostKv {
                keys: empty.clone(),
                values: empty,
            })
        } else {
            LayerCache::Tensors(None)
        };
        KvCache {
            layers: vec![layer; self.layers.len()],
            len: 0,
            pads,
        }
    }

    /// Feeds `input_ids` (one sequence, `[1, n]`) at the positions after those in `cache`, adds
    /// their keys and values to it, and returns the logits of the last one, `[vocab]`: the same
    /// as [`Llama::forward`] over the whole sequence at its last position, up to f32 rounding.
    ///
    /// The caller keeps `cache.len() + n` within `max_position_embeddings` and ids below
    /// `vocab_size`, as for [`Llama::forward`].
    pub fn forward_cached(
        &self,
        input_ids: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 1> {
        let logits = self.forward_cached_batch(input_ids, cache);
        let [_, vocab] = logits.dims();
        logits.reshape([vocab])
    }

    /// [`Llama::forward_cached`] for a batch: `input_ids` `[rows, n]` (one row per row of
    /// `cache`) fills the next `n` slots of every row; returns each row's logits at its last slot,
    /// `[rows, vocab]`. Row `b`'s padding slots (`cache`'s `pads[b]`, the start of its first
    /// call) take any valid id and are never read by its real positions, so each row's logits
    /// are its sequence's alone, up to f32 rounding.
    ///
    /// The caller keeps every row's positions (`slots - pads[b]`) within
    /// `max_position_embeddings` and ids below `vocab_size`.
    pub fn forward_cached_batch(
        &self,
        input_ids: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 2> {
        let device = input_ids.device();
        let [rows, n] = input_ids.dims();
        assert_eq!(rows, cache.rows(), "one row of ids per row of the cache");
        if matches!(cache.layers.first(), Some(LayerCache::Host(_))) {
            return self.forward_cached_fused(input_ids, cache);
        }
        let start = cache.len;
        let head_dim = self.head_dim();
        let padded = cache.pads.iter().any(|&pad| pad > 0);
        let (cos, sin) = if padded {
            padded_rotary_tables::<B>(&cache.pads, start, n, head_dim, self.rope_theta, &device)
        } else {
            let (cos, sin) = rotary_tables::<B>(start + n, head_dim, self.rope_theta, &device);
            (cos.narrow(2, start, n), sin.narrow(2, start, n))
        };
        // Query i (slot start + i) reads every cached key and the new ones up to itself.
        let mask = if padded {
            Some(padded_causal_bias::<B>(&cache.pads, start, n, &device))
        } else {
            (n > 1).then(|| offset_causal_bias::<B>(start, n, &device))
        };

        let mut x = self.embed_tokens.forward(input_ids);
        for (layer, entry) in self.layers.iter().zip(&mut cache.layers) {
            x = layer.forward_cached(x, &cos, &sin, mask.as_ref(), entry);
        }
        cache.len = start + n;
        let [_, _, hidden] = x.dims();
        let last = self
            .norm
            .forward(x.narrow(1, n - 1, 1))
            .reshape([rows, hidden]);
        self.output_logits(last)
    }

    /// [`Llama::forward_cached_batch`] on the CPU with host keys and values: the steps between
    /// matrix products run as host passes ([`fused`]), and attention reads the cache where it is
    /// (no concatenated or repeated copy of it per step).
    fn forward_cached_fused(
        &self,
        input_ids: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 2> {
        let [rows, n] = input_ids.dims();
        let start = cache.len;
        let rotary = fused::Rotary::new(start + n, self.head_dim(), self.rope_theta);
        let positions = fused::slot_positions(&cache.pads, start, n);
        let slots = Slots {
            rows,
            new: n,
            start,
            pads: &cache.pads,
            positions: &positions,
        };
        let x = self.embed_tokens.forward(input_ids);
        let [_, _, hidden] = x.dims();
        let device = x.device();
        let mut x = host(x);
        let x = values_mut(&mut x);
        for (layer, entry) in self.layers.iter().zip(&mut cache.layers) {
            let LayerCache::Host(kv) = entry else {
                unreachable!("a host cache holds host buffers in every layer")
            };
            layer.forward_cached_fused(x, &slots, &rotary, kv, &device);
        }
        cache.len = start + n;
        let last: Vec<f32> = x
            .chunks_exact(n * hidden)
            .flat_map(|row| row[(n - 1) * hidden..].iter().copied())
            .collect();
        self.output_logits(to_tensor(
            fused_norm(&self.norm, &last),
            [rows, hidden],
            &device,
        ))
    }

    /// The output projection as `[vocab, hidden]` (HF layout), whichever way it is stored.
    pub fn output_weight(&self) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(head) => head.weight.val().transpose(),
            None => self.embed_tokens.weight.val(),
        }
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// Shapes: `x` `[batch, seq, hidden]`, `cos`/`sin` `[1, 1, seq, head_dim]`,
    /// `mask` `[batch, 1, seq, seq]` → `[batch, seq, hidden]`.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: &Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let attn = self
            .self_attn
            .forward(self.input_layernorm.forward(x.clone()), cos, sin, mask);
        let x = x + attn;
        let mlp = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + mlp
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// [`DecoderLayer::forward`] for new slots of a batch, with `cache` this layer's keys and
    /// values so far (extended in place). `mask` is `None` for a single new position of
    /// unpadded rows.
    fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: Option<&Tensor<B, 4>>,
        cache: &mut LayerCache<B>,
    ) -> Tensor<B, 3> {
        let LayerCache::Tensors(cache) = cache else {
            unreachable!("a tensor cache holds tensors in every layer")
        };
        let attn = self.self_attn.forward_cached(
            self.input_layernorm.forward(x.clone()),
            cos,
            sin,
            mask,
            cache,
        );
        let x = x + attn;
        let mlp = self
            .mlp
            .forward(self.post_attention_layernorm.forward(x.clone()));
        x + mlp
    }
}

impl<B: Backend> Attention<B> {
    /// [`Attention::forward`] for new slots of a batch against `cache`'s keys and values
    /// (rotated keys and values before `repeat_kv`, extended in place).
    ///
    /// Shapes: `x` `[rows, n, hidden]`, `cos`/`sin` `[1 or rows, 1, n, head_dim]` (the new
    /// slots'), `mask` `[1 or rows, 1, n, cached + n]` or `None` → `[rows, n, hidden]`.
    fn forward_cached(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: Option<&Tensor<B, 4>>,
        cache: &mut Option<(Tensor<B, 4>, Tensor<B, 4>)>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (heads, kv_heads, head_dim) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let split =
            |t: Tensor<B, 3>, n: usize| t.reshape([batch, seq, n, head_dim]).swap_dims(1, 2);
        let q = apply_rotary(split(self.q_proj.forward(x.clone()), heads), cos, sin);
        let k = apply_rotary(split(self.k_proj.forward(x.clone()), kv_heads), cos, sin);
        let v = split(self.v_proj.forward(x), kv_heads);
        let (k, v) = match cache.take() {
            Some((past_k, past_v)) => (
                Tensor::cat(vec![past_k, k], 2),
                Tensor::cat(vec![past_v, v], 2),
            ),
            None => (k, v),
        };
        *cache = Some((k.clone(), v.clone()));
        let k = repeat_kv(k, heads / kv_heads);
        let v = repeat_kv(v, heads / kv_heads);

        let scale = (head_dim as f64).powf(-0.5);
        // [rows, heads, n, cached + n]
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let out = softmax(scores, 3).matmul(v);
        let out = out.swap_dims(1, 2).reshape([batch, seq, heads * head_dim]);
        self.o_proj.forward(out)
    }

    /// Shapes: `x` `[batch, seq, hidden]`, `cos`/`sin` `[1, 1, seq, head_dim]`,
    /// `mask` `[batch, 1, seq, seq]` (additive) → `[batch, seq, hidden]`.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: &Tensor<B, 4>,
    ) -> Tensor<B, 3> {
        let [batch, seq, _] = x.dims();
        let (heads, kv_heads, head_dim) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let split =
            |t: Tensor<B, 3>, n: usize| t.reshape([batch, seq, n, head_dim]).swap_dims(1, 2);
        // [batch, heads or kv_heads, seq, head_dim]
        let q = apply_rotary(split(self.q_proj.forward(x.clone()), heads), cos, sin);
        let k = apply_rotary(split(self.k_proj.forward(x.clone()), kv_heads), cos, sin);
        let v = split(self.v_proj.forward(x), kv_heads);
        // Query head h reads key/value head h / (heads / kv_heads), as HF's `repeat_kv`.
        let k = repeat_kv(k, heads / kv_heads);
        let v = repeat_kv(v, heads / kv_heads);

        let scale = (head_dim as f64).powf(-0.5);
        // [batch, heads, seq, seq]
        let scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale) + mask.clone();
        let out = softmax(scores, 3).matmul(v);
        let out = out.swap_dims(1, 2).reshape([batch, seq, heads * head_dim]);
        self.o_proj.forward(out)
    }
}

impl<B: Backend> DecoderLayer<B> {
    /// [`DecoderLayer::forward`] on the CPU, adding the layer's output to the residual stream
    /// `x` (`[batch · seq, hidden]`, row-major) in place.
    fn forward_fused(
        &self,
        x: &mut [f32],
        [batch, seq]: [usize; 2],
        rotary: &fused::Rotary,
        device: &B::Device,
    ) {
        let rows = batch * seq;
        let hidden = x.len() / rows.max(1);
        let normed = to_tensor(fused_norm(&self.input_layernorm, x), [rows, hidden], device);
        let attended = self.self_attn.forward_fused(normed, [batch, seq], rotary);
        fused::add_assign(x, values(&host(attended)));
        self.mlp_fused(x, device);
    }

    /// The second half of a fused layer: `x += mlp(norm(x))` for `x` `[rows, hidden]`.
    fn mlp_fused(&self, x: &mut [f32], device: &B::Device) {
        let hidden = self.post_attention_layernorm.gamma.dims()[0];
        let rows = x.len() / hidden.max(1);
        let normed = to_tensor(
            fused_norm(&self.post_attention_layernorm, x),
            [rows, hidden],
            device,
        );
        let mlp = &self.mlp;
        let mut gate = host(project(&mlp.gate_proj, normed.clone()));
        let up = host(project(&mlp.up_proj, normed));
        fused::swiglu(values_mut(&mut gate), values(&up));
        let down = project(&mlp.down_proj, Tensor::<B, 2>::from_data(gate, device));
        fused::add_assign(x, values(&host(down)));
    }

    /// [`DecoderLayer::forward_cached`] on host buffers: `x` `[rows · new, hidden]`, changed in
    /// place; `kv` this layer's cache, extended by the new slots.
    fn forward_cached_fused(
        &self,
        x: &mut [f32],
        slots: &Slots,
        rotary: &fused::Rotary,
        kv: &mut fused::HostKv,
        device: &B::Device,
    ) {
        let hidden = self.input_layernorm.gamma.dims()[0];
        let normed = to_tensor(
            fused_norm(&self.input_layernorm, x),
            [slots.rows * slots.new, hidden],
            device,
        );
        let attended = self
            .self_attn
            .forward_cached_fused(normed, slots, rotary, kv);
        fused::add_assign(x, values(&host(attended)));
        self.mlp_fused(x, device);
    }
}

/// The new slots of a cached call: `new` per row for `rows` rows after `start` cached ones.
struct Slots<'a> {
    rows: usize,
    new: usize,
    start: usize,
    /// Leading padding slots of each row.
    pads: &'a [usize],
    /// Position of each new slot, `[rows · new]`, row-major.
    positions: &'a [usize],
}

impl<B: Backend> Attention<B> {
    /// [`Attention::forward`] on the CPU: `x` `[batch · seq, hidden]` (normalised) →
    /// `[batch · seq, hidden]`. The query heads that share a key/value head are stacked into
    /// one matrix product with it (no repeated keys and values); the causal softmax is one pass.
    fn forward_fused(
        &self,
        x: Tensor<B, 2>,
        [batch, seq]: [usize; 2],
        rotary: &fused::Rotary,
    ) -> Tensor<B, 2> {
        let device = x.device();
        let (heads, kv_heads, head_dim) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let group = heads / kv_heads;
        let q = fused::split_heads(
            values(&host(project(&self.q_proj, x.clone()))),
            [batch, seq, heads, head_dim],
            Some(rotary),
        );
        let k = fused::split_heads(
            values(&host(project(&self.k_proj, x.clone()))),
            [batch, seq, kv_heads, head_dim],
            Some(rotary),
        );
        let v = fused::split_heads(
            values(&host(project(&self.v_proj, x))),
            [batch, seq, kv_heads, head_dim],
            None,
        );
        // Query heads g·group .. (g+1)·group read key/value head g (HF's `repeat_kv`): as
        // `[batch, kv_heads, group · seq, head_dim]` they are one block per key/value head.
        let q = to_tensor::<B, 4>(q, [batch, kv_heads, group * seq, head_dim], &device);
        let k = to_tensor::<B, 4>(k, [batch, kv_heads, seq, head_dim], &device);
        let v = to_tensor::<B, 4>(v, [batch, kv_heads, seq, head_dim], &device);
        let mut scores = host(q.matmul(k.swap_dims(2, 3)));
        fused::causal_softmax(values_mut(&mut scores), seq, (head_dim as f32).powf(-0.5));
        let weights = Tensor::<B, 4>::from_data(scores, &device);
        let out = fused::merge_heads(
            values(&host(weights.matmul(v))),
            [batch, heads, seq, head_dim],
        );
        project(
            &self.o_proj,
            to_tensor(out, [batch * seq, heads * head_dim], &device),
        )
    }
}

impl<B: Backend> Attention<B> {
    /// [`Attention::forward_cached`] on host buffers: `x` `[rows · new, hidden]` (normalised) →
    /// `[rows · new, hidden]`. The new keys and values are appended to `kv`; each query reads its
    /// row's keys from the first real slot up to its own (a padding slot reads itself only).
    fn forward_cached_fused(
        &self,
        x: Tensor<B, 2>,
        slots: &Slots,
        rotary: &fused::Rotary,
        kv: &mut fused::HostKv,
    ) -> Tensor<B, 2> {
        let device = x.device();
        let (heads, kv_heads, head_dim) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let q = fused::rotate(
            values(&host(project(&self.q_proj, x.clone()))),
            head_dim,
            slots.positions,
            rotary,
        );
        let k = fused::rotate(
            values(&host(project(&self.k_proj, x.clone()))),
            head_dim,
            slots.positions,
            rotary,
        );
        let v = host(project(&self.v_proj, x));
        let v = values(&v);
        let width = kv_heads * head_dim;
        for (row, (keys, values)) in kv.keys.iter_mut().zip(&mut kv.values).enumerate() {
            let tokens = row * slots.new * width..(row + 1) * slots.new * width;
            for token in k[tokens.clone()]
                .chunks_exact(width)
                .zip(v[tokens].chunks_exact(width))
            {
                for (g, (keys, values)) in keys.iter_mut().zip(values.iter_mut()).enumerate() {
                    let head = g * head_dim..(g + 1) * head_dim;
                    keys.extend_from_slice(&token.0[head.clone()]);
                    values.extend_from_slice(&token.1[head]);
                }
            }
        }
        let out = fused::cached_attention(
            &q,
            kv,
            fused::CachedShape {
                heads,
                head_dim,
                new: slots.new,
                start: slots.start,
            },
            slots.pads,
        );
        project(
            &self.o_proj,
            to_tensor(out, [slots.rows * slots.new, heads * head_dim], &device),
        )
    }
}

/// `x · W` (+ bias) for a linear layer on the fused path: `x` `[rows, in]` → `[rows, out]`.
///
/// Taken as a 1×1 convolution with the operands' roles swapped: the rows of `x` are the kernel's
/// output channels (`[rows, in, 1]`) and `W` (`[in, out]`, row-major) a one-sample signal of
/// `in` channels and length `out`, so the output `[1, rows, out]` is `x · W`, row-major: the same
/// product, shapes and strides as [`Linear::forward`] (the bits are equal), but the CPU backend
/// writes a convolution's output once where it zeroes and then copies a matrix product's to
/// realign it (docs/benchmarks.md, "matrix products as 1×1 convolutions").
fn project<B: Backend>(layer: &Linear<B>, x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [rows, width] = x.dims();
    let weight = layer.weight.val();
    let out = weight.dims()[1];
    let product = burn::tensor::module::conv1d(
        weight.reshape([1, width, out]),
        x.reshape([rows, width, 1]),
        None,
        ConvOptions::new([1], [0], [1], 1),
    )
    .reshape([rows, out]);
    match &layer.bias {
        Some(bias) => product + bias.val().unsqueeze(),
        None => product,
    }
}

/// A float tensor's values, row-major (no copy on the CPU backend when the tensor is contiguous
/// and not shared); read them with [`values`] and [`values_mut`].
fn host<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> TensorData {
    tensor.into_data()
}

/// The `f32` values of `data`.
fn values(data: &TensorData) -> &[f32] {
    data.as_slice::<f32>()
        .expect("the decoder's tensors are f32")
}

/// The `f32` values of `data`, to change in place.
fn values_mut(data: &mut TensorData) -> &mut [f32] {
    data.as_mut_slice::<f32>()
        .expect("the decoder's tensors are f32")
}

/// A tensor of `shape` holding `values` (no copy on the CPU backend).
fn to_tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// An RMSNorm layer applied to the rows of a host buffer.
fn fused_norm<B: Backend>(norm: &RmsNorm<B>, x: &[f32]) -> Vec<f32> {
    fused::rms_norm(x, values(&host(norm.gamma.val())), norm.epsilon as f32)
}

impl<B: Backend> Mlp<B> {
    /// Shapes: `x` `[batch, seq, hidden]` → `[batch, seq, hidden]`.
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let gate = silu(self.gate_proj.forward(x.clone()));
        self.down_proj.forward(gate * self.up_proj.forward(x))
    }
}

/// Repeats each key/value head `times` times, consecutively.
///
/// Shapes: `[batch, kv_heads, seq, head_dim]` → `[batch, kv_heads * times, seq, head_dim]`.
fn repeat_kv<B: Backend>(x: Tensor<B, 4>, times: usize) -> Tensor<B, 4> {
    if times == 1 {
        return x;
    }
    let [batch, kv_heads, seq, head_dim] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .repeat_dim(2, times)
        .reshape([batch, kv_heads * times, seq, head_dim])
}

/// `x * cos + rotate_half(x) * sin`, where `rotate_half([x1, x2]) = [-x2, x1]` over the halves
/// of the last dimension.
///
/// Shapes: `x` `[batch, heads, seq, head_dim]`, `cos`/`sin` `[1, 1, seq, head_dim]` → as `x`.
fn apply_rotary<B: Backend>(
    x: Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Tensor<B, 4> {
    let half = x.dims()[3] / 2;
    let x1 = x.clone().narrow(3, 0, half);
    let x2 = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// Cosine and sine of every (position, frequency) angle, each frequency written twice (once per
/// half), computed in f64 and rounded once.
///
/// Shapes: → (`[1, 1, seq, head_dim]`, `[1, 1, seq, head_dim]`).
fn rotary_tables<B: Backend>(
    seq: usize,
    head_dim: usize,
    theta: f64,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let fused::Rotary { cos, sin, .. } = fused::Rotary::new(seq, head_dim, theta);
    let table = |values: Vec<f32>| {
        Tensor::<B, 4>::from_data(TensorData::new(values, [1, 1, seq, head_dim]), device)
    };
    (table(cos), table(sin))
}

/// Additive attention mask: 0 where query `i` of sample `b` may read key `j` (`j <= i` and
/// `j < lengths[b]`), a large negative number elsewhere. A missing length means "no padding".
///
/// Shapes: → `[batch, 1, seq, seq]`.
fn attention_bias<B: Backend>(
    batch: usize,
    seq: usize,
    lengths: &[usize],
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut values = Vec::with_capacity(batch * seq * seq);
    for b in 0..batch {
        let length = lengths.get(b).copied().unwrap_or(seq).max(1);
        for i in 0..seq {
            values.extend((0..seq).map(|j| {
                if j <= i && j < length {
                    0.0
                } else {
                    MASKED_SCORE
                }
            }));
        }
    }
    Tensor::from_data(TensorData::new(values, [batch, 1, seq, seq]), device)
}

/// Additive causal mask of `n` new queries at positions `start..start + n` over keys
/// `0..start + n`: query `i` reads key `j` when `j <= start + i`.
///
/// Shapes: → `[1, 1, n, start + n]`.
fn offset_causal_bias<B: Backend>(start: usize, n: usize, device: &B::Device) -> Tensor<B, 4> {
    let keys = start + n;
    let mut values = Vec::with_capacity(n * keys);
    for i in 0..n {
        values.extend((0..keys).map(|j| if j <= start + i { 0.0 } else { MASKED_SCORE }));
    }
    Tensor::from_data(TensorData::new(values, [1, 1, n, keys]), device)
}

/// Rotary tables of slots `start..start + n` of left-padded rows: row `b`'s slot `t` is its
/// position `t - pads[b]` (padding slots get position 0; nothing reads them).
///
/// Shapes: → (`[rows, 1, n, head_dim]`, `[rows, 1, n, head_dim]`).
fn padded_rotary_tables<B: Backend>(
    pads: &[usize],
    start: usize,
    n: usize,
    head_dim: usize,
    theta: f64,
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let table = fused::Rotary::new(start + n, head_dim, theta);
    let mut cos = Vec::with_capacity(pads.len() * n * head_dim);
    let mut sin = Vec::with_capacity(pads.len() * n * head_dim);
    for position in fused::slot_positions(pads, start, n) {
        let row = position * head_dim..(position + 1) * head_dim;
        cos.extend_from_slice(&table.cos[row.clone()]);
        sin.extend_from_slice(&table.sin[row]);
    }
    let shape = [pads.len(), 1, n, head_dim];
    (
        Tensor::from_data(TensorData::new(cos, shape), device),
        Tensor::from_data(TensorData::new(sin, shape), device),
    )
}

/// Additive causal mask of `n` new slots `start..start + n` of left-padded rows over keys
/// `0..start + n`: in row `b`, query slot `i` reads the key slots [`fused::visible_slots`] gives
/// (`pads[b] <= j <= i`; a padding slot reads itself only).
///
/// Shapes: → `[rows, 1, n, start + n]`.
fn padded_causal_bias<B: Backend>(
    pads: &[usize],
    start: usize,
    n: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let keys = start + n;
    let mut values = Vec::with_capacity(pads.len() * n * keys);
    for &pad in pads {
        for query in start..start + n {
            let visible = fused::visible_slots(pad, query);
            values.extend((0..keys).map(|key| {
                if visible.contains(&key) {
                    0.0
                } else {
                    MASKED_SCORE
                }
            }));
        }
    }
    Tensor::from_data(TensorData::new(values, [pads.len(), 1, n, keys]), device)
}

/// Builds a bias-free linear layer from a weight in burn's `[in, out]` layout.
pub(crate) fn linear_from<B: Backend>(weight: Tensor<B, 2>) -> Linear<B> {
    Linear {
        weight: Param::from_tensor(weight),
        bias: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = crate::backend::Cpu;

    fn tiny(tied: bool) -> LlamaConfig {
        LlamaConfig {
            hidden_size: 16,
            intermediate_size: 24,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            vocab_size: 40,
            max_position_embeddings: 64,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: tied,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
    }

    #[test]
    fn a_projection_as_a_convolution_equals_the_linear_layer_bit_for_bit() {
        let device = Default::default();
        for bias in [false, true] {
            let layer = LinearConfig::new(24, 40).with_bias(bias).init::<B>(&device);
            for rows in [1, 7, 300] {
                let x = Tensor::<B, 2>::random(
                    [rows, 24],
                    burn::tensor::Distribution::Normal(0.0, 1.0),
                    &device,
                );
                let expected = layer.forward(x.clone()).into_data();
                let got = project(&layer, x).into_data();
                assert_eq!(got.shape, expected.shape);
                assert_eq!(values(&got).len(), rows * 40);
                assert_eq!(values(&got), values(&expected), "bias {bias}, {rows} rows");
            }
        }
    }

    /// Every weight of `model`, by HF name.
    fn weights(model: &Llama<B>) -> Vec<(String, Vec<f32>)> {
        crate::io::hf_state_dict(model)
            .unwrap()
            .into_iter()
            .map(|(name, (values, _))| (name, values))
            .collect()
    }

    #[test]
    fn a_seeded_draw_is_the_same_whatever_other_threads_draw_meanwhile() {
        let config = tiny(false);
        let alone = |seed| weights(&config.init_seeded::<B>(&Default::default(), seed));
        let (three, four) = (alone(3), alone(4));
        assert_ne!(three, four);
        // Four threads drawing seeds 3 and 4 in turn: without the draw lock a thread's
        // parameters take numbers that another thread's seed put in the backend's one RNG.
        let drawn: Vec<Vec<_>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4u64)
                .map(|t| {
                    let config = config.clone();
                    scope.spawn(move || {
                        (0..8u64)
                            .map(|i| {
                                let seed = 3 + (t + i) % 2;
                                (
                                    seed,
                                    weights(&config.init_seeded::<B>(&Default::default(), seed)),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (seed, got) in drawn.into_iter().flatten() {
            let expected = if seed == 3 { &three } else { &four };
            assert!(got == *expected, "seed {seed}");
        }
    }

    fn ids(rows: &[&[i64]]) -> Tensor<B, 2, Int> {
        let seq = rows[0].len();
        let flat: Vec<i64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Tensor::from_data(
            TensorData::new(flat, [rows.len(), seq]),
            &Default::default(),
        )
    }

    fn to_vec(t: Tensor<B, 3>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn produces_logits_of_the_right_shape_for_tied_and_untied_heads() {
        for tied in [false, true] {
            let model = tiny(tied).init_seeded::<B>(&Default::default(), 1185);
            assert_eq!(model.lm_head.is_none(), tied);
            let logits = model.forward(ids(&[&[1, 2, 3], &[4, 5, 6]]));
            assert_eq!(logits.dims(), [2, 3, 40]);
            assert!(to_vec(logits).iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn is_causal_later_tokens_do_not_change_earlier_logits() {
        let model = tiny(false).init_seeded::<B>(&Default::default(), 1195);
        let a = to_vec(model.forward(ids(&[&[1, 2, 3, 4]])));
        let b = to_vec(model.forward(ids(&[&[1, 2, 9, 17]])));
        let per_pos = 40;
        assert_eq!(&a[..2 * per_pos], &b[..2 * per_pos]);
        assert_ne!(&a[2 * per_pos..3 * per_pos], &b[2 * per_pos..3 * per_pos]);
    }

    #[test]
    fn padded_batch_matches_each_sample_alone() {
        let model = tiny(false).init_seeded::<B>(&Default::default(), 1205);
        let short = to_vec(model.forward(ids(&[&[5, 6]])));
        let long = to_vec(model.forward(ids(&[&[7, 8, 9, 10]])));
        let batch = to_vec(model.forward_padded(ids(&[&[5, 6, 0, 0], &[7, 8, 9, 10]]), &[2, 4]));
        let v = 40;
        for (x, y) in short.iter().zip(&batch[..2 * v]) {
            assert!((x - y).abs() < 1e-5);
        }
        for (x, y) in long.iter().zip(&batch[4 * v..]) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    /// `tiny` with `kv_heads` key/value heads, and query/key weights scaled up so that attention
    /// is far from uniform (the initial 0.02 scale makes every softmax nearly flat, which would
    /// hide a wrong mask).
    fn sharp(kv_heads: usize, tied: bool) -> Llama<B> {
        let config = LlamaConfig {
            num_key_value_heads: kv_heads,
            ..tiny(tied)
        };
        let mut model = config.init_seeded::<B>(&Default::default(), 7);
        for layer in &mut model.layers {
            let attention = &mut layer.self_attn;
            for projection in [&mut attention.q_proj, &mut attention.k_proj] {
                projection.weight = Param::from_tensor(projection.weight.val().mul_scalar(40.0));
            }
        }
        model
    }

    #[test]
    fn the_fused_cpu_decoder_matches_the_tensor_ops_at_every_real_position() {
        let rows: [&[i64]; 3] = [&[5, 6, 7, 0, 0], &[7, 8, 9, 10, 11], &[1, 0, 0, 0, 0]];
        let lengths = [3, 5, 1];
        for (kv_heads, tied) in [(4, false), (2, true), (1, false)] {
            let model = sharp(kv_heads, tied);
            let fused = to_vec(model.hidden_states_fused(ids(&rows)));
            let reference = to_vec(model.hidden_states_tensor_ops(ids(&rows), &lengths));
            let hidden = 16;
            let mut largest = 0f32;
            for (b, &length) in lengths.iter().enumerate() {
                for position in 0..length {
                    let at = (b * 5 + position) * hidden;
                    for (x, y) in fused[at..at + hidden]
                        .iter()
                        .zip(&reference[at..at + hidden])
                    {
                        assert!(x.is_finite());
                        largest = largest.max((x - y).abs() / y.abs().max(1.0));
                    }
                }
            }
            assert!(largest < 1e-5, "kv_heads {kv_heads}: {largest}");
        }
        // Attention is not flat: a different earlier token changes a later position's state.
        let model = sharp(2, false);
        let a = to_vec(model.hidden_states_fused(ids(&[&[1, 2, 3]])));
        let b = to_vec(model.hidden_states_fused(ids(&[&[9, 2, 3]])));
        let moved = a[32..]
            .iter()
            .zip(&b[32..])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(moved > 1e-2, "{moved}");
    }

    #[test]
    fn a_left_padded_cached_batch_gives_each_row_its_own_logits() {
        let model = sharp(2, false);
        let prompts: [&[i64]; 3] = [&[5, 6], &[7, 8, 9, 10], &[3]];
        let steps: [[i64; 3]; 2] = [[1, 2, 4], [11, 0, 9]];
        // Alone, with the tensor ops: each prompt, then its two further tokens, one call each.
        let mut alone = Vec::new();
        for (row, prompt) in prompts.iter().enumerate() {
            let mut cache = model.batch_cache(vec![0], false);
            let mut logits = vec![to_vec(
                model.forward_cached(ids(&[prompt]), &mut cache).unsqueeze(),
            )];
            for step in &steps {
                let next = model.forward_cached(ids(&[&[step[row]]]), &mut cache);
                logits.push(to_vec(next.unsqueeze()));
            }
            alone.push(logits);
        }
        // Together, left-padded with a token that would change a row's logits if it were read,
        // on host buffers (the CPU's fused path) and with the tensor ops.
        for fused in [true, false] {
            let mut cache = model.batch_cache(vec![2, 0, 3], fused);
            let padded: [&[i64]; 3] = [&[39, 39, 5, 6], &[7, 8, 9, 10], &[39, 39, 39, 3]];
            let first = to_vec(
                model
                    .forward_cached_batch(ids(&padded), &mut cache)
                    .unsqueeze(),
            );
            let second = to_vec(
                model
                    .forward_cached_batch(ids(&[&[1], &[2], &[4]]), &mut cache)
                    .unsqueeze(),
            );
            // Row 1 leaves the batch; rows 2 and 0 run on, in that order.
            cache.retain(&[2, 0]);
            let third = to_vec(
                model
                    .forward_cached_batch(ids(&[&[9], &[11]]), &mut cache)
                    .unsqueeze(),
            );
            let vocab = 40;
            let together = [
                (0, 0, &first, 0),
                (1, 0, &first, 1),
                (2, 0, &first, 2),
                (0, 1, &second, 0),
                (1, 1, &second, 1),
                (2, 1, &second, 2),
                (2, 2, &third, 0),
                (0, 2, &third, 1),
            ];
            for (row, step, batch, at) in together {
                let got = &batch[at * vocab..(at + 1) * vocab];
                for (x, y) in got.iter().zip(&alone[row][step]) {
                    assert!(x.is_finite());
                    assert!(
                        (x - y).abs() < 1e-4,
                        "fused {fused} row {row} step {step}: {x} vs {y}"
                    );
                }
            }
        }
        // The padding token does change a row when it is real: the mask is what hides it.
        let mut cache = model.new_cache();
        let read = to_vec(
            model
                .forward_cached(ids(&[&[39, 39, 5, 6]]), &mut cache)
                .unsqueeze(),
        );
        let moved = read
            .iter()
            .zip(&alone[0][0])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(moved > 1e-2, "{moved}");
    }

    #[test]
    fn the_fused_decoder_runs_on_the_cpu_and_not_under_autodiff() {
        assert!(crate::backend::is_cpu::<B>());
        assert!(!crate::backend::is_cpu::<crate::backend::CpuTrain>());
    }

    #[test]
    fn rotary_tables_rotate_position_zero_by_nothing() {
        let (cos, sin) = rotary_tables::<B>(3, 4, 10_000.0, &Default::default());
        let cos = cos.into_data().to_vec::<f32>().unwrap();
        let sin = sin.into_data().to_vec::<f32>().unwrap();
        assert_eq!(&cos[..4], &[1.0; 4]);
        assert_eq!(&sin[..4], &[0.0; 4]);
        // position 1, frequencies [1, 1/100] written twice
        let expected = [1f64.sin(), 0.01f64.sin(), 1f64.sin(), 0.01f64.sin()];
        for (got, want) in sin[4..8].iter().zip(expected) {
            assert!((f64::from(*got) - want).abs() < 1e-7);
        }
    }

    #[test]
    fn repeat_kv_repeats_heads_consecutively() {
        let x = Tensor::<B, 4>::from_data(
            TensorData::new(vec![1.0f32, 2.0], [1, 2, 1, 1]),
            &Default::default(),
        );
        let out = repeat_kv(x, 3).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out, vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn cached_forward_matches_the_full_forward_at_every_step() {
        for tied in [false, true] {
            let model = tiny(tied).init_seeded::<B>(&Default::default(), 1382);
            let tokens: [i64; 7] = [3, 9, 1, 27, 14, 5, 38];
            let full = to_vec(model.forward(ids(&[&tokens])));
            let mut cache = model.new_cache();
            // A 3-token prefill, then one token at a time.
            let mut fed = 0;
            for step in [3usize, 1, 1, 1, 1] {
                let chunk = &tokens[fed..fed + step];
                let logits = model
                    .forward_cached(ids(&[chunk]), &mut cache)
                    .into_data()
                    .to_vec::<f32>()
                    .unwrap();
                fed += step;
                assert_eq!(cache.len(), fed);
                let want = &full[(fed - 1) * 40..fed * 40];
                for (got, want) in logits.iter().zip(want) {
                    assert!((got - want).abs() < 1e-5, "step {fed}: {got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn tied_logits_are_the_same_for_few_rows_and_many() {
        let model = tiny(true).init_seeded::<B>(&Default::default(), 1407);
        // 16 hidden units: on backends other than the CPU, 1 row takes the (E · hᵀ)ᵀ path and
        // 20 rows the transposed embedding.
        let many = to_vec(model.forward(ids(&[&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
        ]])));
        let hidden = model.hidden_states(
            ids(&[&[
                1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
            ]]),
            &[20],
        );
        let last: Tensor<B, 3> = hidden.narrow(1, 19, 1);
        let one = to_vec(model.output_logits(last));
        assert_eq!(one.len(), 40);
        for (a, b) in one.iter().zip(&many[19 * 40..]) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
