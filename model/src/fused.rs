//! The decoder's steps between matrix products, fused into one pass each, for the CPU.
//!
//! Written with burn's tensor ops, every step between two matrix products is several passes over
//! memory (RMSNorm: square, mean, add, sqrt, divide, multiply; rotary embeddings: two narrows, a
//! negation, a concatenation, two products, a sum; attention: scale, broadcast mask, softmax,
//! repeated key/value heads, two layout copies), each into a freshly allocated buffer, and the
//! CPU backend walks broadcast and transposed operands element by element. On SmolLM2's shapes
//! those passes cost more than the matrix products. Here each step is one pass over rows that
//! are in cache, spread over threads, with a vectorisable `exp`; the matrix products stay burn's.
//!
//! Every function works on plain row-major `f32` slices, so each is tested against a direct
//! reference below, and [`crate::llama`] checks the fused decoder against the tensor-op one.
//! Results do not depend on the number of threads: each output element is computed by one
//! thread, in a fixed order. Nor on the SIMD width: each pass runs through [`widest`], compiled
//! for the widest vectors the CPU has, and every sum is taken in [`LANES`] partial sums combined
//! in a fixed order, so a baseline x86-64 build gives the same bits (tested).

use rayon::prelude::*;

use crate::grid::{LANES, exp_nonpositive};

/// Elements per task of the element-wise passes.
const CHUNK: usize = 4096;

/// One block of a pass (a row, a chunk), for [`widest`]. `run` must be `#[inline(always)]`, as
/// must everything it calls, to be compiled with the wider target features: a closure's body
/// would be compiled on its own, for baseline x86-64 (the disassembly showed SSE only).
pub(crate) trait Pass {
    fn run(self);
}

struct Widest<P>(P);

impl<P: Pass> pulp::WithSimd for Widest<P> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        self.0.run();
    }
}

/// Runs `pass` compiled for the widest SIMD the CPU has (AVX-512 or AVX2 where present, picked at
/// run time by pulp, with no `unsafe` of ours); the crate itself is built for baseline x86-64,
/// whose 4-lane SSE2 left these passes at a quarter of the width.
#[inline(always)]
pub(crate) fn widest<P: Pass>(pass: P) {
    pulp::Arch::new().dispatch(Widest(pass));
}

/// RMSNorm of each `width`-wide row of `x`: `x / sqrt(mean(x²) + eps) * gamma`.
pub fn rms_norm(x: &[f32], gamma: &[f32], eps: f32) -> Vec<f32> {
    let width = gamma.len();
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .for_each(|(out, row)| {
            widest(RmsNormRow {
                out,
                row,
                gamma,
                eps,
            })
        });
    out
}

/// One row of [`rms_norm`].
struct RmsNormRow<'a> {
    out: &'a mut [f32],
    row: &'a [f32],
    gamma: &'a [f32],
    eps: f32,
}

impl Pass for RmsNormRow<'_> {
    #[inline(always)]
    fn run(self) {
        let Self {
            out,
            row,
            gamma,
            eps,
        } = self;
        let rms = (dot(row, row) / gamma.len() as f32 + eps).sqrt();
        for ((o, v), g) in out.iter_mut().zip(row).zip(gamma) {
            *o = v / rms * g;
        }
    }
}

/// Rotary position embedding tables for positions `0..seq`: `[seq, head_dim]` cosines and
/// sines, each frequency written twice (once per half), computed in f64 and rounded once.
#[derive(Debug, Clone)]
pub struct Rotary {
    /// `[seq, head_dim]` cosines.
    pub cos: Vec<f32>,
    /// `[seq, head_dim]` sines.
    pub sin: Vec<f32>,
    /// Width of one head.
    pub head_dim: usize,
}

impl Rotary {
    /// The tables of `seq` positions for heads `head_dim` wide and frequencies
    /// `theta^(-2i/head_dim)`.
    pub fn new(seq: usize, head_dim: usize, theta: f64) -> Self {
        let half = head_dim / 2;
        let inv_freq: Vec<f64> = (0..half)
            .map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64))
            .collect();
        let mut cos = Vec::with_capacity(seq * head_dim);
        let mut sin = Vec::with_capacity(seq * head_dim);
        for pos in 0..seq {
            for _ in 0..2 {
                for f in &inv_freq {
                    let angle = pos as f64 * f;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
        Self { cos, sin, head_dim }
    }
}

/// Splits `[batch, seq, heads * head_dim]` projections into `[batch, heads, seq, head_dim]`
/// heads, rotating each by its position when `rotary` is given (`x·cos + rotate_half(x)·sin`,
/// `rotate_half([x1, x2]) = [−x2, x1]`, rounded as the tensor ops round it).
pub fn split_heads(
    x: &[f32],
    [batch, seq, heads, head_dim]: [usize; 4],
    rotary: Option<&Rotary>,
) -> Vec<f32> {
    assert_eq!(
        x.len(),
        batch * seq * heads * head_dim,
        "x is not [batch, seq, heads · head_dim]"
    );
    let mut out = vec![0.0; x.len()];
    // One chunk per (sample, head): `[seq, head_dim]`.
    out.par_chunks_mut(seq * head_dim)
        .enumerate()
        .for_each(|(chunk, out)| {
            widest(SplitHead {
                out,
                x,
                sample_head: [chunk / heads, chunk % heads],
                shape: [seq, heads, head_dim],
                rotary,
            });
        });
    out
}

/// One `(sample, head)` chunk of [`split_heads`]: `[seq, head_dim]`.
struct SplitHead<'a> {
    out: &'a mut [f32],
    x: &'a [f32],
    sample_head: [usize; 2],
    /// `[seq, heads, head_dim]`.
    shape: [usize; 3],
    rotary: Option<&'a Rotary>,
}

impl Pass for SplitHead<'_> {
    #[inline(always)]
    fn run(self) {
        let [b, h] = self.sample_head;
        let [seq, heads, head_dim] = self.shape;
        for (s, out) in self.out.chunks_exact_mut(head_dim).enumerate() {
            let start = ((b * seq + s) * heads + h) * head_dim;
            let row = &self.x[start..start + head_dim];
            match self.rotary {
                Some(rotary) => {
                    debug_assert_eq!(rotary.head_dim, head_dim);
                    let table = s * head_dim..(s + 1) * head_dim;
                    let (cos, sin) = (&rotary.cos[table.clone()], &rotary.sin[table]);
                    rotate_head(out, row, cos, sin);
                }
                None => out.copy_from_slice(row),
            }
        }
    }
}

/// The inverse of [`split_heads`] without rotation: `[batch, heads, seq, head_dim]` →
/// `[batch, seq, heads * head_dim]`.
pub fn merge_heads(x: &[f32], [batch, heads, seq, head_dim]: [usize; 4]) -> Vec<f32> {
    assert_eq!(
        x.len(),
        batch * heads * seq * head_dim,
        "x is not [batch, heads, seq, head_dim]"
    );
    let mut out = vec![0.0; x.len()];
    let width = heads * head_dim;
    // One chunk per (sample, position): `[heads * head_dim]`.
    out.par_chunks_mut(width)
        .enumerate()
        .for_each(|(chunk, out)| {
            let (b, s) = (chunk / seq, chunk % seq);
            for (h, out) in out.chunks_exact_mut(head_dim).enumerate() {
                let start = ((b * heads + h) * seq + s) * head_dim;
                out.copy_from_slice(&x[start..start + head_dim]);
            }
        });
    out
}

/// Causal softmax, in place, of attention scores laid out as blocks of `seq` keys per row, where
/// row `r` of a block is the query at position `r % seq` (several query heads sharing a
/// key/value head are stacked in one block). Each row is scaled by `scale`; keys after the
/// query's position get exactly 0. A row with a NaN among its visible scores becomes NaN, as the
/// backend's softmax makes it (the fast `exp` alone would turn NaN into 0).
pub fn causal_softmax(scores: &mut [f32], seq: usize, scale: f32) {
    scores
        .par_chunks_mut(seq)
        .enumerate()
        .for_each(|(row_index, row)| {
            let position = row_index % seq;
            let (visible, future) = row.split_at_mut(position + 1);
            future.fill(0.0);
            widest(SoftmaxRow {
                row: visible,
                scale,
            });
        });
}

/// [`softmax_scaled`] of one row.
struct SoftmaxRow<'a> {
    row: &'a mut [f32],
    scale: f32,
}

impl Pass for SoftmaxRow<'_> {
    #[inline(always)]
    fn run(self) {
        softmax_scaled(self.row, self.scale);
    }
}

/// Softmax, in place, of `row` scaled by `scale`; a row with a NaN becomes NaN (the fast `exp`
/// alone would turn NaN into 0). Maxima and sums in [`LANES`] partial ones, combined in a fixed
/// order.
#[inline(always)]
fn softmax_scaled(row: &mut [f32], scale: f32) {
    let mut maxima = [f32::NEG_INFINITY; LANES];
    let mut nans = [false; LANES];
    let mut scale_lanes = |chunk: &mut [f32]| {
        for ((value, max), nan) in chunk.iter_mut().zip(&mut maxima).zip(&mut nans) {
            *value *= scale;
            *nan |= value.is_nan();
            *max = if *value > *max { *value } else { *max };
        }
    };
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        scale_lanes(chunk);
    }
    scale_lanes(chunks.into_remainder());
    if nans.contains(&true) {
        row.fill(f32::NAN);
        return;
    }
    let max = maxima
        .iter()
        .fold(f32::NEG_INFINITY, |max, &m| if m > max { m } else { max });
    // Partial sums in lanes, so the loop vectorises; combined in a fixed order.
    let mut partial = [0.0f32; LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (acc, value) in partial.iter_mut().zip(chunk) {
            *value = exp_nonpositive(*value - max);
            *acc += *value;
        }
    }
    for (acc, value) in partial.iter_mut().zip(chunks.into_remainder()) {
        *value = exp_nonpositive(*value - max);
        *acc += *value;
    }
    let sum: f32 = partial.iter().sum();
    for value in row.iter_mut() {
        *value /= sum;
    }
}

/// The slots that slot `slot` of a row left-padded by `pad` slots attends to: its real slots
/// `pad..=slot`, or itself alone when it is padding (so its values stay finite: a row of nothing
/// but masked scores would be NaN, and NaN times a zero weight is NaN in the real rows).
pub fn visible_slots(pad: usize, slot: usize) -> std::ops::RangeInclusive<usize> {
    pad.min(slot)..=slot
}

/// Position of each slot `start..start + n` of each row left-padded by `pads[row]`, row-major:
/// `slot - pad` (padding slots: 0; nothing reads them).
pub fn slot_positions(pads: &[usize], start: usize, n: usize) -> Vec<usize> {
    pads.iter()
        .flat_map(|&pad| (start..start + n).map(move |slot| slot.saturating_sub(pad)))
        .collect()
}

/// Rotates each `head_dim`-wide head of token `t`'s row of `x` (`[tokens, heads · head_dim]`) by
/// position `positions[t]`, as [`split_heads`] does, keeping the layout.
pub fn rotate(x: &[f32], head_dim: usize, positions: &[usize], rotary: &Rotary) -> Vec<f32> {
    assert!(
        !positions.is_empty() && x.len().is_multiple_of(positions.len()),
        "x is not one row per position"
    );
    debug_assert_eq!(rotary.head_dim, head_dim);
    let width = x.len() / positions.len();
    let mut out = vec![0.0; x.len()];
    out.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .zip(positions.par_iter())
        .for_each(|((out, row), &position)| {
            let table = position * head_dim..(position + 1) * head_dim;
            let (cos, sin) = (&rotary.cos[table.clone()], &rotary.sin[table]);
            widest(RotateToken {
                out,
                row,
                cos,
                sin,
                head_dim,
            });
        });
    out
}

/// One token's row of [`rotate`]: every head by the same angles.
struct RotateToken<'a> {
    out: &'a mut [f32],
    row: &'a [f32],
    cos: &'a [f32],
    sin: &'a [f32],
    head_dim: usize,
}

impl Pass for RotateToken<'_> {
    #[inline(always)]
    fn run(self) {
        for (out, head) in self
            .out
            .chunks_exact_mut(self.head_dim)
            .zip(self.row.chunks_exact(self.head_dim))
        {
            rotate_head(out, head, self.cos, self.sin);
        }
    }
}

/// `out = x·cos + rotate_half(x)·sin` for one head `x` (`rotate_half([x1, x2]) = [−x2, x1]`),
/// rounded as the tensor ops round it; one loop per half so each vectorises.
#[inline(always)]
fn rotate_head(out: &mut [f32], x: &[f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    let (x1, x2) = x.split_at(half);
    let (out1, out2) = out.split_at_mut(half);
    let (cos1, cos2) = cos.split_at(half);
    let (sin1, sin2) = sin.split_at(half);
    for (((o, x), (c, s)), other) in out1.iter_mut().zip(x1).zip(cos1.iter().zip(sin1)).zip(x2) {
        *o = x * c + -other * s;
    }
    for (((o, x), (c, s)), other) in out2.iter_mut().zip(x2).zip(cos2.iter().zip(sin2)).zip(x1) {
        *o = x * c + other * s;
    }
}

/// One decoder layer's cached keys (rotated) and values of a batch of sequences on the host:
/// `keys[row][kv_head]` is `[slots, head_dim]`, appended to as slots are fed.
#[derive(Debug, Clone, Default)]
pub struct HostKv {
    /// Rotated keys, `[row][kv_head]` → `[slots, head_dim]`.
    pub keys: Vec<Vec<Vec<f32>>>,
    /// Values, laid out as `keys`.
    pub values: Vec<Vec<Vec<f32>>>,
}

/// The shape of a [`cached_attention`] call.
#[derive(Debug, Clone, Copy)]
pub struct CachedShape {
    /// Query heads (a multiple of the cache's key/value heads).
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// New slots per row (the queries).
    pub new: usize,
    /// Slots cached before them.
    pub start: usize,
}

/// Causal attention of new queries against cached keys and values, one row of the batch at a
/// time: `q` `[rows · new, heads · head_dim]` (rotated) → `[rows · new, heads · head_dim]`. Query
/// `i` of row `b` is slot `start + i`; it reads the row's slots `pads[b] ..= start + i` (its
/// real positions so far; a padding slot reads itself only), scaled by `1/sqrt(head_dim)` and
/// softmax-weighted as [`causal_softmax`] weights them. Query head `h` reads key/value head
/// `h / (heads / kv_heads)` (HF's `repeat_kv`, without the copies).
pub fn cached_attention(q: &[f32], kv: &HostKv, shape: CachedShape, pads: &[usize]) -> Vec<f32> {
    let CachedShape {
        heads,
        head_dim,
        new,
        start,
    } = shape;
    let width = heads * head_dim;
    assert_eq!(
        q.len(),
        pads.len() * new * width,
        "q is not [rows · new, heads · head_dim]"
    );
    let scale = (head_dim as f32).powf(-0.5);
    let mut out = vec![0.0; q.len()];
    out.par_chunks_mut(width)
        .zip(q.par_chunks(width))
        .enumerate()
        .for_each(|(token, (out, query))| {
            let (row, slot) = (token / new, start + token % new);
            widest(AttendToken {
                out,
                query,
                keys: &kv.keys[row],
                values: &kv.values[row],
                visible: visible_slots(pads[row], slot),
                head_dim,
                scale,
            });
        });
    out
}

/// One query token of [`cached_attention`], every head: its row's cached keys and values, the
/// slots `visible`.
struct AttendToken<'a> {
    out: &'a mut [f32],
    query: &'a [f32],
    /// `[kv_head]` → `[slots, head_dim]`.
    keys: &'a [Vec<f32>],
    values: &'a [Vec<f32>],
    visible: std::ops::RangeInclusive<usize>,
    head_dim: usize,
    scale: f32,
}

impl Pass for AttendToken<'_> {
    #[inline(always)]
    fn run(self) {
        let head_dim = self.head_dim;
        let group = (self.query.len() / head_dim) / self.keys.len().max(1);
        let visible = self.visible.start() * head_dim..(self.visible.end() + 1) * head_dim;
        let mut weights = vec![0.0f32; visible.len() / head_dim];
        for (h, (out, query)) in self
            .out
            .chunks_exact_mut(head_dim)
            .zip(self.query.chunks_exact(head_dim))
            .enumerate()
        {
            let (keys, values) = (&self.keys[h / group], &self.values[h / group]);
            for (weight, key) in weights
                .iter_mut()
                .zip(keys[visible.clone()].chunks_exact(head_dim))
            {
                *weight = dot(query, key);
            }
            // A NaN score makes every weight, and so the output, NaN.
            softmax_scaled(&mut weights, self.scale);
            out.fill(0.0);
            for (weight, value) in weights
                .iter()
                .zip(values[visible.clone()].chunks_exact(head_dim))
            {
                for (o, v) in out.iter_mut().zip(value) {
                    *o += weight * v;
                }
            }
        }
    }
}

/// `a · b`, summed in [`LANES`] partial sums (so it vectorises), combined in a fixed order.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut partial = [0.0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((acc, x), y) in partial.iter_mut().zip(a).zip(b) {
            *acc += x * y;
        }
    }
    partial.iter().sum::<f32>() + tail
}

/// `x += y`, element by element.
pub fn add_assign(x: &mut [f32], y: &[f32]) {
    x.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(x, y)| widest(AddChunk { x, y }));
}

/// One chunk of [`add_assign`].
struct AddChunk<'a> {
    x: &'a mut [f32],
    y: &'a [f32],
}

impl Pass for AddChunk<'_> {
    #[inline(always)]
    fn run(self) {
        for (x, y) in self.x.iter_mut().zip(self.y) {
            *x += y;
        }
    }
}

/// SwiGLU's gate, in place: `gate = silu(gate) · up = gate · sigmoid(gate) · up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    gate.par_chunks_mut(CHUNK)
        .zip(up.par_chunks(CHUNK))
        .for_each(|(gate, up)| widest(SwigluChunk { gate, up }));
}

/// One chunk of [`swiglu`].
struct SwigluChunk<'a> {
    gate: &'a mut [f32],
    up: &'a [f32],
}

impl Pass for SwigluChunk<'_> {
    #[inline(always)]
    fn run(self) {
        for (g, u) in self.gate.iter_mut().zip(self.up) {
            // sigmoid from exp(−|g|) ≤ 1, which neither overflows nor loses the small side.
            let e = exp_nonpositive(-g.abs());
            let sigmoid = if *g >= 0.0 {
                1.0 / (1.0 + e)
            } else {
                e / (1.0 + e)
            };
            *g = *g * sigmoid * u;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        // Deterministic values in about [−2, 2].
        (0..n)
            .map(|i| {
                let x = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (x as f32 / (1 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    fn close(got: &[f32], expected: &[f64], tolerance: f64) {
        assert_eq!(got.len(), expected.len());
        for (i, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!(
                (f64::from(*g) - e).abs() <= tolerance * e.abs().max(1.0),
                "element {i}: {g} vs {e}"
            );
        }
    }

    #[test]
    fn rms_norm_matches_its_definition() {
        let (x, gamma) = (values(3 * 8, 1), values(8, 2));
        let mut expected = Vec::new();
        for row in x.chunks(8) {
            let mean = row.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / 8.0;
            let rms = (mean + 1e-5).sqrt();
            expected.extend(
                row.iter()
                    .zip(&gamma)
                    .map(|(v, g)| f64::from(*v) / rms * f64::from(*g)),
            );
        }
        close(&rms_norm(&x, &gamma, 1e-5), &expected, 1e-6);
    }

    #[test]
    fn split_heads_rotates_and_merge_heads_undoes_the_split() {
        let shape = [2, 5, 3, 4]; // batch, seq, heads, head_dim
        let x = values(2 * 5 * 3 * 4, 3);
        let plain = split_heads(&x, shape, None);
        assert_eq!(merge_heads(&plain, [2, 3, 5, 4]), x);
        // Element (b, h, s, d) of the split is x[b, s, h·4 + d].
        assert_eq!(
            plain[((3 + 2) * 5 + 3) * 4 + 1],
            x[((5 + 3) * 3 + 2) * 4 + 1]
        );

        let rotary = Rotary::new(5, 4, 10_000.0);
        let rotated = split_heads(&x, shape, Some(&rotary));
        for (chunk, (got, input)) in rotated.chunks(4).zip(plain.chunks(4)).enumerate() {
            let s = chunk % 5;
            let angle = |i: usize| s as f64 * 10_000f64.powf(-((2 * i) as f64) / 4.0);
            let input: Vec<f64> = input.iter().map(|v| f64::from(*v)).collect();
            let expected: Vec<f64> = (0..4)
                .map(|d| {
                    let (a, other) = (
                        angle(d % 2),
                        if d < 2 { -input[d + 2] } else { input[d - 2] },
                    );
                    input[d] * a.cos() + other * a.sin()
                })
                .collect();
            close(got, &expected, 1e-6);
        }
        // Position 0 is not rotated.
        assert_eq!(&rotated[..4], &plain[..4]);
    }

    #[test]
    fn causal_softmax_weights_only_earlier_keys_and_sums_to_one() {
        let seq = 6;
        // Two stacked query heads of one key/value head: rows 0..6 and 6..12.
        let scores = values(2 * seq * seq, 4);
        let mut got = scores.clone();
        causal_softmax(&mut got, seq, 0.5);
        for (r, (row, input)) in got.chunks(seq).zip(scores.chunks(seq)).enumerate() {
            let position = r % seq;
            let max = input[..=position]
                .iter()
                .map(|v| f64::from(*v) * 0.5)
                .fold(f64::MIN, f64::max);
            let total: f64 = input[..=position]
                .iter()
                .map(|v| (f64::from(*v) * 0.5 - max).exp())
                .sum();
            let expected: Vec<f64> = (0..seq)
                .map(|j| {
                    if j <= position {
                        (f64::from(input[j]) * 0.5 - max).exp() / total
                    } else {
                        0.0
                    }
                })
                .collect();
            close(row, &expected, 1e-6);
            assert!(row[position + 1..].iter().all(|v| *v == 0.0));
        }
    }

    #[test]
    fn a_nan_score_makes_its_row_nan_and_leaves_the_others() {
        let mut scores = vec![0.0, 0.0, f32::NAN, 1.0, 2.0, 3.0, 0.5, 0.5, 0.5];
        causal_softmax(&mut scores, 3, 1.0);
        assert_eq!(&scores[..3], &[1.0, 0.0, 0.0]);
        assert!(scores[3..5].iter().all(|v| v.is_finite()) && scores[5] == 0.0);
        let mut scores = vec![0.0, 1.0, f32::NAN, 2.0];
        causal_softmax(&mut scores, 2, 1.0);
        assert_eq!(&scores[..2], &[1.0, 0.0]);
        assert!(scores[2].is_nan() && scores[3].is_nan());
    }

    #[test]
    fn swiglu_matches_silu_times_up_including_large_gates() {
        let mut gate = values(10_000, 5);
        gate.extend([-100.0, -30.0, 0.0, 30.0, 100.0]);
        let up = values(gate.len(), 6);
        let expected: Vec<f64> = gate
            .iter()
            .zip(&up)
            .map(|(g, u)| {
                let g = f64::from(*g);
                g / (1.0 + (-g).exp()) * f64::from(*u)
            })
            .collect();
        let mut got = gate.clone();
        swiglu(&mut got, &up);
        close(&got, &expected, 1e-6);
    }

    #[test]
    fn the_widest_simd_gives_the_baseline_bits() {
        // Each pass as run (through `widest`: AVX-512 or AVX2 where the CPU has them) and row by
        // row as compiled for baseline x86-64 (SSE2): the same bits. Debug builds vectorise
        // neither, so this bites under `cargo test --release`.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let width = 96; // not a multiple of the lanes
        let (x, gamma) = (values(64 * width, 12), values(width, 13));
        let mut baseline = vec![0.0; x.len()];
        for (out, row) in baseline.chunks_mut(width).zip(x.chunks(width)) {
            let gamma = &gamma;
            RmsNormRow {
                out,
                row,
                gamma,
                eps: 1e-5,
            }
            .run();
        }
        assert_eq!(bits(&rms_norm(&x, &gamma, 1e-5)), bits(&baseline));

        let seq = 80;
        let scores: Vec<f32> = values(3 * seq * seq, 14).iter().map(|v| v * 9.0).collect();
        let mut got = scores.clone();
        causal_softmax(&mut got, seq, 0.3);
        let mut baseline = scores;
        for (r, row) in baseline.chunks_mut(seq).enumerate() {
            let (visible, future) = row.split_at_mut(r % seq + 1);
            future.fill(0.0);
            softmax_scaled(visible, 0.3);
        }
        assert_eq!(bits(&got), bits(&baseline));

        let (mut gate, up) = (values(3 * CHUNK + 77, 15), values(3 * CHUNK + 77, 16));
        let mut baseline = gate.clone();
        swiglu(&mut gate, &up);
        for (gate, up) in baseline.chunks_mut(CHUNK).zip(up.chunks(CHUNK)) {
            SwigluChunk { gate, up }.run();
        }
        assert_eq!(bits(&gate), bits(&baseline));

        let (head_dim, heads) = (40, 3);
        let rotary = Rotary::new(seq, head_dim, 10_000.0);
        let x = values(2 * seq * heads * head_dim, 17);
        let got = split_heads(&x, [2, seq, heads, head_dim], Some(&rotary));
        let mut baseline = vec![0.0; x.len()];
        for (chunk, out) in baseline.chunks_mut(seq * head_dim).enumerate() {
            SplitHead {
                out,
                x: &x,
                sample_head: [chunk / heads, chunk % heads],
                shape: [seq, heads, head_dim],
                rotary: Some(&rotary),
            }
            .run();
        }
        assert_eq!(bits(&got), bits(&baseline));
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let seq = 64;
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut scores = values(3 * seq * seq, 7);
                causal_softmax(&mut scores, seq, 0.125);
                let norm = rms_norm(&values(seq * 32, 8), &values(32, 9), 1e-5);
                let mut gate = values(50_000, 10);
                swiglu(&mut gate, &values(50_000, 11));
                (scores, norm, gate)
            })
        };
        assert_eq!(run(1), run(2));
    }
}
