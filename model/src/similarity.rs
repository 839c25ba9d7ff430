//! Telling copies apart from independent models: by function and by weights.
//!
//! - **By function** ([`divergence`]): the mean absolute difference of two models'
//!   log-probabilities of the same completion tokens, each at its fitted temperature
//!   ([`crate::eval::evaluate_fitted`]). It does not care how the weights are laid out: permuting
//!   hidden units, changing config fields, rescaling the logits or re-encoding the file all leave
//!   it near 0.
//! - **By weights** ([`tensor_cosines`], [`is_near_copy`]): per-tensor cosine similarity of two
//!   weight files with the same shapes. A [`WeightSketch`] (a few kilobytes per model) proves most
//!   pairs apart without reading their files.
//!
//! [`find_copies`] applies both to an epoch's models: a later model is a copy of the earliest
//! earlier one it is too close to by either measure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use safetensors::tensor::SafeTensors;

use crate::competition::DethroneRule;
use crate::config::LlamaConfig;
use crate::eval::FittedEval;
use crate::io::{IoError, WeightsReader, to_f32};
use crate::score::{critical_t, later_displaces};

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
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WeightSketch {
    /// `(name, chunk norms of the unit-length tensor)` in name order; tensors with zero or
    /// non-finite norm are left out (they never prove a pair apart).
    tensors: Vec<(String, Vec<f64>)>,
}

impl WeightSketch {
    /// The sketch of a safetensors file's tensors (f32, f16 or bf16, the values
    /// [`tensor_cosines`] compares), from its bytes. Anything it cannot read is an error.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, IoError> {
        let file = SafeTensors::deserialize(bytes)?;
        let names: BTreeSet<&str> = file.names().into_iter().collect();
        let mut budget = SKETCH_BUDGET;
        let mut tensors = Vec::new();
        for name in names {
            if budget == 0 {
                break;
            }
            let values = to_f32(name, &file.tensor(name)?)?;
            if let Some(norms) = chunk_norms(&values, budget) {
                budget -= norms.len();
                tensors.push((name.to_string(), norms));
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

/// The chunk norms of `values` scaled to unit length: at most [`SKETCH_MAX_CHUNKS`] chunks of at
/// least [`SKETCH_CHUNK`] values; `None` for a tensor with zero or non-finite norm, or one that
/// would need more than `budget` chunks.
fn chunk_norms(values: &[f32], budget: usize) -> Option<Vec<f64>> {
    let chunk = SKETCH_CHUNK.max(values.len().div_ceil(SKETCH_MAX_CHUNKS));
    if values.is_empty() || values.len().div_ceil(chunk) > budget {
        return None;
    }
    let mut parts: Vec<f64> = values
        .chunks(chunk)
        .map(|c| c.iter().map(|&v| f64::from(v).powi(2)).sum())
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

/// How far apart two models behave: the mean, over every completion token of every sample, of
/// `|log p_a(token) − log p_b(token)|` at each model's fitted temperature (nats per token).
/// `None` when the two evaluations are not of the same tokens (sample or token counts differ).
pub fn divergence(a: &FittedEval, b: &FittedEval) -> Option<f64> {
    if a.token_log_probs.len() != b.token_log_probs.len() {
        return None;
    }
    let (mut total, mut count) = (0.0, 0usize);
    for (x, y) in a.token_log_probs.iter().zip(&b.token_log_probs) {
        if x.len() != y.len() {
            return None;
        }
        for (&p, &q) in x.iter().zip(y) {
            total += (f64::from(p) - f64::from(q)).abs();
            count += 1;
        }
    }
    (count > 0).then(|| total / count as f64)
}

/// The thresholds [`find_copies`] applies (the competition's `[copies]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CopyRules {
    /// A later model whose [`divergence`] from an earlier one is at most this is its copy.
    pub max_divergence: f64,
    /// A later model whose every tensor has at least this cosine with the same tensor of an
    /// earlier one is its copy; `None`: weights are not compared (fine-tunes of one pretrained
    /// base, which are all that close).
    pub weight_cosine: Option<f64>,
    /// Largest weights file read for a comparison.
    pub max_bytes: u64,
    /// A later model that displaces the earlier one under this rule is no copy, however close:
    /// starting from the leader and beating it by the margin is an improvement.
    pub dethrone: DethroneRule,
}

/// One evaluated model, as [`find_copies`] sees it.
#[derive(Debug, Clone)]
pub struct CopyCandidate {
    /// The miner.
    pub uid: u16,
    /// Block of its commitment (earlier owns the model).
    pub commit_block: u64,
    /// Its manifest hash; identical manifests are exact duplicates, handled by scoring.
    pub manifest_sha256: String,
    /// Its config: weights are compared only when the tensor shapes agree.
    pub config: LlamaConfig,
    /// Its `model.safetensors`.
    pub weights: PathBuf,
    /// Its sketch, when one was made; without it every weight comparison reads the file.
    pub sketch: Option<Arc<WeightSketch>>,
    /// Its fitted evaluation, for the comparison by function.
    pub fitted: Option<Arc<FittedEval>>,
}

/// Why [`find_copies`] called a model a copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CopyEvidence {
    /// Its [`divergence`] from the original, at most [`CopyRules::max_divergence`].
    Function {
        /// The divergence (nats per token).
        divergence: f64,
    },
    /// Every tensor at least [`CopyRules::weight_cosine`] similar; the lowest cosine.
    Weights {
        /// The least similar tensor's cosine.
        min_cosine: f64,
    },
}

/// For each model that copies one committed earlier (lower block, then lower uid), the uid of
/// the earliest such original and the evidence. By function first (in memory), then by weights
/// (pairs with equal tensor shapes that their sketches cannot prove apart). A later model that
/// displaces the earlier one ([`CopyRules::dethrone`], on their fitted losses) is not its copy.
/// Pairs that cannot be read or compared are not copies; a read failure is logged.
pub fn find_copies(
    candidates: &[CopyCandidate],
    rules: &CopyRules,
) -> BTreeMap<u16, (u16, CopyEvidence)> {
    let mut order: Vec<&CopyCandidate> = candidates.iter().collect();
    order.sort_by_key(|c| (c.commit_block, c.uid));
    let mut copies = BTreeMap::new();
    for (i, later) in order.iter().enumerate() {
        for earlier in &order[..i] {
            if earlier.manifest_sha256 == later.manifest_sha256 {
                continue;
            }
            if let Some(evidence) = copy_evidence(earlier, later, rules) {
                copies.insert(later.uid, (earlier.uid, evidence));
                break;
            }
        }
    }
    copies
}

/// Whether `later` copies `earlier` under `rules`, and the evidence.
fn copy_evidence(
    earlier: &CopyCandidate,
    later: &CopyCandidate,
    rules: &CopyRules,
) -> Option<CopyEvidence> {
    if let (Some(a), Some(b)) = (&earlier.fitted, &later.fitted) {
        let losses = |e: &FittedEval| e.losses.iter().map(|l| l.loss).collect::<Vec<f64>>();
        let (a_losses, b_losses) = (losses(a), losses(b));
        let critical = critical_t(a_losses.len(), rules.dethrone.p_value);
        if a_losses.len() == b_losses.len()
            && later_displaces(&a_losses, &b_losses, rules.dethrone.margin, critical)
        {
            return None;
        }
        if let Some(divergence) = divergence(a, b)
            && divergence <= rules.max_divergence
        {
            return Some(CopyEvidence::Function { divergence });
        }
    }
    let weight_cosine = rules.weight_cosine?;
    // Only the shapes must agree: a copy that changes `pad_token_id`, `rope_theta` or
    // `max_position_embeddings` keeps the same weights.
    if earlier.config.weight_shapes() != later.config.weight_shapes() {
        return None;
    }
    if let (Some(a), Some(b)) = (&earlier.sketch, &later.sketch)
        && a.surely_apart(b, weight_cosine)
    {
        return None;
    }
    match tensor_cosines(&earlier.weights, &later.weights, rules.max_bytes) {
        Ok(cosines) if is_near_copy(&cosines, weight_cosine) => {
            let min_cosine = cosines.iter().map(|c| c.cosine).fold(1.0, f64::min);
            Some(CopyEvidence::Weights { min_cosine })
        }
        Ok(_) | Err(IoError::Incomparable { .. }) => None,
        Err(error) => {
            tracing::warn!(uid = later.uid, other = earlier.uid, %error, "cannot compare weights");
            None
        }
    }
}

/// One tensor's cosine similarity between two weight files.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorCosine {
    /// HF tensor name.
    pub name: String,
    /// `a·b / (|a| |b|)`; 1 when both are all-zero, 0 when exactly one is.
    pub cosine: f64,
}

/// Per-tensor cosine similarity between two safetensors files (each at most `max_bytes`), in
/// name order. The files must hold the same names with the same shapes. A copy with a little
/// noise added scores above 0.999 on every tensor; independently trained models do not.
///
/// The files are read a piece at a time ([`crate::io::READ_PIECE`]), never whole: comparing two
/// f32 SmolLM2 files holds a few MiB, not 1 GiB.
pub fn tensor_cosines(a: &Path, b: &Path, max_bytes: u64) -> Result<Vec<TensorCosine>, IoError> {
    cosines_of(
        WeightsReader::open(a, max_bytes)?,
        WeightsReader::open(b, max_bytes)?,
    )
}

/// [`tensor_cosines`] on the bytes of two safetensors files.
pub fn tensor_cosines_bytes(a: &[u8], b: &[u8]) -> Result<Vec<TensorCosine>, IoError> {
    cosines_of(WeightsReader::from_bytes(a)?, WeightsReader::from_bytes(b)?)
}

/// [`tensor_cosines`] over two validated files, tensor by tensor and piece by piece; the sums
/// run over the elements in order, as one pass over whole tensors would.
fn cosines_of(
    mut a: WeightsReader<'_>,
    mut b: WeightsReader<'_>,
) -> Result<Vec<TensorCosine>, IoError> {
    let names_a: BTreeSet<String> = a.names().into_iter().collect();
    let names_b: BTreeSet<String> = b.names().into_iter().collect();
    if let Some(name) = names_a.symmetric_difference(&names_b).next() {
        return Err(IoError::Incomparable { name: name.clone() });
    }
    let step = crate::io::READ_PIECE / 4;
    let (mut xa, mut xb) = (Vec::with_capacity(step), Vec::with_capacity(step));
    let mut out = Vec::with_capacity(names_a.len());
    for name in names_a {
        let incomparable = || IoError::Incomparable { name: name.clone() };
        let info_a = a.info(&name).cloned().ok_or_else(incomparable)?;
        let info_b = b.info(&name).cloned().ok_or_else(incomparable)?;
        if info_a.shape != info_b.shape {
            return Err(incomparable());
        }
        let count: usize = info_a.shape.iter().product();
        let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
        for first in (0..count).step_by(step.max(1)) {
            let elements = first..count.min(first + step);
            xa.clear();
            xb.clear();
            a.read_into(&name, &info_a, elements.clone(), &mut xa)?;
            b.read_into(&name, &info_b, elements, &mut xb)?;
            for (offset, (&x, &y)) in xa.iter().zip(&xb).enumerate() {
                if !x.is_finite() || !y.is_finite() {
                    return Err(IoError::NonFinite {
                        name,
                        index: first + offset,
                    });
                }
                let (x, y) = (f64::from(x), f64::from(y));
                dot += x * y;
                na += x * x;
                nb += y * y;
            }
        }
        let cosine = match (na > 0.0, nb > 0.0) {
            (true, true) => dot / (na.sqrt() * nb.sqrt()),
            (false, false) => 1.0,
            _ => 0.0,
        };
        out.push(TensorCosine { name, cosine });
    }
    Ok(out)
}

/// Whether every tensor is at least `threshold` similar (e.g. 0.999): the copier test.
pub fn is_near_copy(cosines: &[TensorCosine], threshold: f64) -> bool {
    !cosines.is_empty() && cosines.iter().all(|t| t.cosine >= threshold)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::{Sample, evaluate_fitted};
    use crate::io::{WEIGHTS_FILE, hf_state_dict, load_weights, save_artifact};
    use crate::llama::Llama;

    use crate::backend::Cpu;

    fn tiny_config() -> LlamaConfig {
        LlamaConfig {
            max_position_embeddings: 32,
            ..LlamaConfig::tiny()
        }
    }

    fn rules() -> CopyRules {
        CopyRules {
            max_divergence: 0.01,
            weight_cosine: Some(0.999),
            max_bytes: u64::MAX,
            dethrone: DethroneRule {
                margin: 0.01,
                p_value: 0.01,
            },
        }
    }

    fn copy_map(copies: &BTreeMap<u16, (u16, CopyEvidence)>) -> BTreeMap<u16, u16> {
        copies.iter().map(|(&copy, &(of, _))| (copy, of)).collect()
    }

    /// The model's tensors, each passed through `edit`, as f32 safetensors bytes.
    fn edited_bytes(model: &Llama<Cpu>, edit: impl Fn(&str, &mut Vec<f32>)) -> Vec<u8> {
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
        safetensors::serialize(views, None).unwrap()
    }

    /// Writes the model's tensors, each passed through `edit`, as an f32 safetensors file.
    fn write_edited(model: &Llama<Cpu>, path: &Path, edit: impl Fn(&str, &mut Vec<f32>)) {
        std::fs::write(path, edited_bytes(model, edit)).unwrap();
    }

    /// A freshly drawn model (each call its own seed) saved as an artifact in `dir`.
    fn saved(dir: &Path) -> Llama<Cpu> {
        static SEED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(509);
        let seed = SEED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let model = tiny_config().init_seeded::<Cpu>(&Default::default(), seed);
        save_artifact(&model, &tiny_config(), dir).unwrap();
        model
    }

    #[test]
    fn cosines_read_piece_by_piece_are_those_of_whole_tensors_bit_for_bit() {
        // One tensor of several read pieces, f32 against bf16, and a small one.
        let big = 3 * crate::io::READ_PIECE / 4 + 12_345;
        let values = |seed: u32, n: usize| -> Vec<f32> {
            (0..n as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 1000.0 - 1.0)
                .collect()
        };
        let file = |dtype: safetensors::Dtype, tensors: &[(&str, Vec<f32>)]| -> Vec<u8> {
            let raw: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
                .iter()
                .map(|(name, v)| {
                    let bytes: Vec<u8> = match dtype {
                        safetensors::Dtype::BF16 => v
                            .iter()
                            .flat_map(|x| ((x.to_bits() >> 16) as u16).to_le_bytes())
                            .collect(),
                        _ => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    };
                    (name.to_string(), bytes, vec![v.len()])
                })
                .collect();
            let views: Vec<_> = raw
                .iter()
                .map(|(name, bytes, shape)| {
                    let view =
                        safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).unwrap();
                    (name.as_str(), view)
                })
                .collect();
            safetensors::serialize(views, None).unwrap()
        };
        let a = file(
            safetensors::Dtype::F32,
            &[("big", values(1, big)), ("small", values(2, 7))],
        );
        let b = file(
            safetensors::Dtype::BF16,
            &[("big", values(3, big)), ("small", values(4, 7))],
        );
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&pa, &a).unwrap();
        std::fs::write(&pb, &b).unwrap();

        // The whole-tensor computation the reader replaced.
        let (fa, fb) = (
            SafeTensors::deserialize(&a).unwrap(),
            SafeTensors::deserialize(&b).unwrap(),
        );
        let whole: Vec<f64> = ["big", "small"]
            .iter()
            .map(|&name| {
                let x = to_f32(name, &fa.tensor(name).unwrap()).unwrap();
                let y = to_f32(name, &fb.tensor(name).unwrap()).unwrap();
                let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
                for (&x, &y) in x.iter().zip(&y) {
                    let (x, y) = (f64::from(x), f64::from(y));
                    dot += x * y;
                    na += x * x;
                    nb += y * y;
                }
                dot / (na.sqrt() * nb.sqrt())
            })
            .collect();
        for cosines in [
            tensor_cosines(&pa, &pb, u64::MAX).unwrap(),
            tensor_cosines_bytes(&a, &b).unwrap(),
        ] {
            let got: Vec<u64> = cosines.iter().map(|c| c.cosine.to_bits()).collect();
            let expected: Vec<u64> = whole.iter().map(|c| c.to_bits()).collect();
            assert_eq!(got, expected);
        }
        // A non-finite value deep in the big tensor is found with its index.
        let mut broken = values(1, big);
        broken[big - 3] = f32::INFINITY;
        let c = file(
            safetensors::Dtype::F32,
            &[("big", broken), ("small", values(2, 7))],
        );
        let error = tensor_cosines_bytes(&c, &b).unwrap_err();
        assert!(
            matches!(error, IoError::NonFinite { ref name, index } if name == "big" && index == big - 3),
            "{error}"
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
                fitted: None,
            };
            // The copy (uid 1) commits after the original (uid 0); uid 2 is unrelated.
            let copies = find_copies(
                &[
                    candidate(1, 20, &b),
                    candidate(2, 5, &c),
                    candidate(0, 10, &a),
                ],
                &rules(),
            );
            assert_eq!(copy_map(&copies), BTreeMap::from([(1, 0)]));
            assert!(
                matches!(copies[&1].1, CopyEvidence::Weights { min_cosine } if min_cosine > 0.999)
            );

            // An earlier commit of the perturbed weights makes the other one the copy.
            let copies = find_copies(&[candidate(1, 5, &b), candidate(0, 10, &a)], &rules());
            assert_eq!(copy_map(&copies), BTreeMap::from([(0, 1)]));

            // A competition on a pretrained base compares no weights (its honest fine-tunes are
            // all this close): without fitted evaluations nothing is a copy.
            let by_function_only = CopyRules {
                weight_cosine: None,
                ..rules()
            };
            let copies = find_copies(
                &[candidate(1, 20, &b), candidate(0, 10, &a)],
                &by_function_only,
            );
            assert!(copies.is_empty(), "{copies:?}");
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
            let cosines = tensor_cosines(&original_weights, &noisy, u64::MAX).unwrap();
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
            let cosines =
                tensor_cosines(&original_weights, &other.join(WEIGHTS_FILE), u64::MAX).unwrap();
            assert!(!is_near_copy(&cosines, 0.999));
            assert!(original_sketch.surely_apart(&sketch_of(&other.join(WEIGHTS_FILE)), 0.999));
        }
    }

    #[test]
    fn half_precision_files_sketch_like_their_f32_values() {
        let values: Vec<f32> = (0..1000)
            .map(|i| half::bf16::from_f32((i as f32 * 0.37).sin()).to_f32())
            .collect();
        let file = |dtype: safetensors::Dtype, bytes: Vec<u8>| {
            let view = safetensors::tensor::TensorView::new(dtype, vec![10, 100], &bytes).unwrap();
            let bytes = safetensors::serialize([("w", view)], None).unwrap();
            WeightSketch::from_safetensors(&bytes).unwrap()
        };
        let f32_bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bf16_bytes = values
            .iter()
            .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
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

    /// `model` with the units of its MLP in reverse order: the same function, other weights.
    fn permuted(model: &Llama<Cpu>) -> Vec<u8> {
        let inter = tiny_config().intermediate_size;
        edited_bytes(model, |name, values| {
            let old = values.clone();
            if name.ends_with("gate_proj.weight") || name.ends_with("up_proj.weight") {
                let width = old.len() / inter;
                for unit in 0..inter {
                    values[unit * width..(unit + 1) * width]
                        .copy_from_slice(&old[(inter - 1 - unit) * width..(inter - unit) * width]);
                }
            } else if name.ends_with("down_proj.weight") {
                for (row, chunk) in values.chunks_mut(inter).enumerate() {
                    for unit in 0..inter {
                        chunk[unit] = old[row * inter + inter - 1 - unit];
                    }
                }
            }
        })
    }

    /// Samples whose completions `model` wrote at temperature 1, so its best β is near 1.
    fn samples_of(model: &Llama<Cpu>) -> Vec<Sample> {
        (0..24u64)
            .map(|seed| {
                let prompt = vec![256, (seed * 7 % 256) as u32, (seed * 13 % 256) as u32];
                let options = crate::generate::GenerateOptions {
                    max_new_tokens: 8,
                    temperature: 1.0,
                    seed,
                    stop_token: None,
                };
                let completion = crate::generate::generate(model, &prompt, &options).unwrap();
                Sample {
                    input_ids: [prompt, completion].concat(),
                    completion_start: 3,
                }
            })
            .collect()
    }

    #[test]
    fn a_functional_copy_is_found_whatever_its_weights_and_an_independent_model_is_not() {
        let device = Default::default();
        let reload = |bytes: &[u8]| load_weights::<Cpu>(&tiny_config(), bytes, &device).unwrap();
        // Freshly initialised models are close to uniform; sharpen them like trained ones.
        let peaked = |model: &Llama<Cpu>| {
            reload(&edited_bytes(model, |name, values| {
                if name == "model.norm.weight" {
                    values.iter_mut().for_each(|v| *v *= 20.0);
                }
            }))
        };
        let original = peaked(&tiny_config().init_seeded::<Cpu>(&device, 801));
        let samples = samples_of(&original);
        let fitted = |model: &Llama<Cpu>| Arc::new(evaluate_fitted(model, &samples, 8).unwrap());
        let permuted_bytes = permuted(&original);
        let permuted = reload(&permuted_bytes);
        // logits scaled by 1.3 through the final norm: the fitted temperature undoes it
        let sharpened = reload(&edited_bytes(&original, |name, values| {
            if name == "model.norm.weight" {
                values.iter_mut().for_each(|v| *v *= 1.3);
            }
        }));
        let independent = peaked(&tiny_config().init_seeded::<Cpu>(&device, 812));

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("permuted"), &permuted_bytes).unwrap();
        let cosines = tensor_cosines(
            &{
                let path = dir.path().join("original");
                std::fs::write(&path, edited_bytes(&original, |_, _| {})).unwrap();
                path
            },
            &dir.path().join("permuted"),
            u64::MAX,
        )
        .unwrap();
        assert!(
            !is_near_copy(&cosines, 0.999),
            "the weights alone do not tell"
        );

        let candidate = |uid: u16, model: &Llama<Cpu>| CopyCandidate {
            uid,
            commit_block: u64::from(uid),
            manifest_sha256: format!("{uid}"),
            // a different config does not hide a functional copy
            config: LlamaConfig {
                max_position_embeddings: 32 + usize::from(uid),
                ..tiny_config()
            },
            weights: dir.path().join("absent"),
            sketch: None,
            fitted: Some(fitted(model)),
        };
        let field = [
            candidate(0, &original),
            candidate(1, &permuted),
            candidate(2, &sharpened),
            candidate(3, &independent),
        ];
        let copies = find_copies(&field, &rules());
        assert_eq!(copy_map(&copies), BTreeMap::from([(1, 0), (2, 0)]));
        for uid in [1, 2] {
            let CopyEvidence::Function { divergence } = copies[&uid].1 else {
                panic!("uid {uid}: {:?}", copies[&uid]);
            };
            assert!(divergence < 1e-3, "uid {uid}: {divergence}");
        }
        let apart = divergence(
            field[0].fitted.as_ref().unwrap(),
            field[3].fitted.as_ref().unwrap(),
        )
        .unwrap();
        assert!(apart > 10.0 * rules().max_divergence, "{apart}");
    }

    #[test]
    fn a_close_model_that_beats_its_original_by_the_margin_is_no_copy() {
        let eval = |loss: f64, lp: f32| {
            Arc::new(FittedEval {
                losses: (0..8)
                    .map(|i| crate::eval::SampleLoss {
                        loss: loss + 0.01 * f64::from(i),
                        tokens: 1,
                    })
                    .collect(),
                inverse_temperature: 1.0,
                token_log_probs: vec![vec![lp]; 8],
                unfitted: Vec::new(),
            })
        };
        let candidate = |uid: u16, fitted| CopyCandidate {
            uid,
            commit_block: u64::from(uid),
            manifest_sha256: format!("{uid}"),
            config: tiny_config(),
            weights: PathBuf::from("absent"),
            sketch: None,
            fitted: Some(fitted),
        };
        let rules = CopyRules {
            max_divergence: 0.1,
            ..rules()
        };
        // 0.05 nats per token apart: close enough to be a copy unless it is clearly better
        let same = [
            candidate(0, eval(2.0, -2.0)),
            candidate(1, eval(2.0, -2.05)),
        ];
        assert_eq!(
            copy_map(&find_copies(&same, &rules)),
            BTreeMap::from([(1, 0)])
        );
        let better = [
            candidate(0, eval(2.0, -2.0)),
            candidate(1, eval(1.9, -1.95)),
        ];
        assert!(find_copies(&better, &rules).is_empty());
    }

    #[test]
    fn divergence_needs_the_same_tokens() {
        let eval = |lps: Vec<Vec<f32>>| FittedEval {
            losses: Vec::new(),
            inverse_temperature: 1.0,
            token_log_probs: lps,
            unfitted: Vec::new(),
        };
        let a = eval(vec![vec![-1.0, -2.0], vec![-0.5]]);
        let b = eval(vec![vec![-1.5, -2.0], vec![-0.2]]);
        let d = divergence(&a, &b).unwrap();
        assert!((d - 0.8 / 3.0).abs() < 1e-6, "{d}");
        assert_eq!(divergence(&a, &a), Some(0.0));
        assert_eq!(divergence(&a, &eval(vec![vec![-1.0, -2.0]])), None);
        assert_eq!(divergence(&a, &eval(vec![vec![-1.0], vec![-0.5]])), None);
        assert_eq!(divergence(&eval(vec![]), &eval(vec![])), None);
    }
}
