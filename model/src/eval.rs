//! Scoring a model on samples: the mean cross-entropy over each sample's completion tokens.
//!
//! A [`Sample`] is a token sequence with the index where its completion starts; the loss is
//! `mean over t in completion_start..len of −log p(ids[t] | ids[..t])`, exactly what
//! transformers gives with labels set to −100 on the prompt. Samples are batched with right
//! padding (longest first, to waste little padding); each sample's result does not depend on
//! which others it was batched with, and results come back in input order.
//!
//! [`evaluate`] scores the model as it is (temperature 1); it is what `validator eval` prints and
//! what matches transformers. [`evaluate_fitted`] first gives the model its best temperature on
//! the samples, so that scaling the output logits (sharpening or blunting a copy) changes
//! nothing: the loss of `softmax(β·z)` is minimised over the inverse temperature `β`, on a
//! grid of `2^(k/8)` for `k` in `-FIT_STEPS..=FIT_STEPS` computed on the device in one pass,
//! refined on the host by the vertex of the parabola through the best grid point and its two
//! neighbours. The validator scores fitted losses.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::grid::DoublingGrid;
use crate::llama::Llama;

/// One evaluation sample: a prompt followed by the completion the model is judged on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// Token ids, prompt then completion.
    pub input_ids: Vec<u32>,
    /// Index in `input_ids` of the first completion token; at least 1 (something must predict
    /// it) and below `input_ids.len()` (at least one completion token).
    pub completion_start: usize,
}

/// One sample's result.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleLoss {
    /// Mean cross-entropy (nats) over the completion tokens.
    pub loss: f64,
    /// Number of completion tokens averaged over.
    pub tokens: usize,
}

/// [`evaluate_fitted`]'s result: per-sample losses at the model's best temperature.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FittedEval {
    /// Per-sample losses at the fitted inverse temperature, in input order.
    pub losses: Vec<SampleLoss>,
    /// The fitted inverse temperature `β` (the logits are multiplied by it); 1 when there are
    /// no samples.
    pub inverse_temperature: f64,
    /// Per sample (input order), the log-probability of each completion token at `β`.
    pub token_log_probs: Vec<Vec<f32>>,
    /// Per-sample losses at temperature 1 (what [`evaluate`] gives), in input order.
    pub unfitted: Vec<SampleLoss>,
}

/// The grid [`evaluate_fitted`] searches: `β = 2^(k/8)` for `k` in `-FIT_STEPS..=FIT_STEPS`,
/// so β from about 0.35 to 2.8. A model outside that range keeps the edge's loss: it can only lose.
pub const FIT_STEPS: i32 = 12;

/// Grid points per doubling of β: the `8` of `2^(k/8)`.
const FIT_PER_DOUBLING: usize = 8;

/// The grid's inverse temperatures (each exactly twice the one [`FIT_PER_DOUBLING`] points
/// before it, which the CPU's fused kernel uses; [`crate::grid::DoublingGrid`]).
fn fit_grid() -> DoublingGrid {
    DoublingGrid::powers_of_two(FIT_STEPS.unsigned_abs(), FIT_PER_DOUBLING)
}

/// Why an evaluation could not run. Samples are checked before any model work starts.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// `completion_start` leaves no prompt token or no completion token.
    #[error("sample {index}: completion_start {completion_start} must be in 1..{len} (its length)")]
    BadCompletionStart {
        /// Position of the sample in the input.
        index: usize,
        /// The sample's `completion_start`.
        completion_start: usize,
        /// The sample's length.
        len: usize,
    },
    /// The sample is longer than the model's `max_position_embeddings`.
    #[error("sample {index}: {len} tokens exceed the model's limit of {max}")]
    TooLong {
        /// Position of the sample in the input.
        index: usize,
        /// The sample's length.
        len: usize,
        /// The model's limit.
        max: usize,
    },
    /// A token id is not in the model's vocabulary.
    #[error("sample {index}: token id {token} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// Position of the sample in the input.
        index: usize,
        /// The offending id.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// `batch_size` was zero.
    #[error("batch size must be at least 1")]
    ZeroBatchSize,
    /// Reading results back from the backend failed.
    #[error("reading losses from the backend: {0}")]
    Backend(String),
}

/// Checks `samples` against the model's vocabulary and length limit.
pub fn check_samples(samples: &[Sample], vocab: usize, max_len: usize) -> Result<(), EvalError> {
    for (index, sample) in samples.iter().enumerate() {
        let len = sample.input_ids.len();
        if sample.completion_start == 0 || sample.completion_start >= len {
            return Err(EvalError::BadCompletionStart {
                index,
                completion_start: sample.completion_start,
                len,
            });
        }
        if len > max_len {
            return Err(EvalError::TooLong {
                index,
                len,
                max: max_len,
            });
        }
        if let Some(&token) = sample.input_ids.iter().find(|&&t| t as usize >= vocab) {
            return Err(EvalError::TokenOutOfRange {
                index,
                token,
                vocab,
            });
        }
    }
    Ok(())
}

/// Per-sample completion loss, in input order, computed `batch_size` samples at a time.
pub fn evaluate<B: Backend>(
    model: &Llama<B>,
    samples: &[Sample],
    batch_size: usize,
) -> Result<Vec<SampleLoss>, EvalError> {
    if batch_size == 0 {
        return Err(EvalError::ZeroBatchSize);
    }
    let [vocab, _] = model.embed_tokens.weight.dims();
    check_samples(samples, vocab, model.max_position_embeddings)?;

    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(samples[i].input_ids.len()));
    let mut results = vec![
        SampleLoss {
            loss: 0.0,
            tokens: 0
        };
        samples.len()
    ];
    for chunk in order.chunks(batch_size) {
        let batch: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
        let token_log_probs = completion_log_probs(model, &batch)?;
        for (&i, log_probs) in chunk.iter().zip(token_log_probs) {
            let tokens = log_probs.len();
            let total: f64 = log_probs.iter().map(|&lp| f64::from(lp)).sum();
            results[i] = SampleLoss {
                loss: -total / tokens as f64,
                tokens,
            };
        }
    }
    Ok(results)
}

/// Per-sample completion loss at the inverse temperature that minimises the mean loss over
/// `samples` (see the module documentation), computed `batch_size` samples at a time.
pub fn evaluate_fitted<B: Backend>(
    model: &Llama<B>,
    samples: &[Sample],
    batch_size: usize,
) -> Result<FittedEval, EvalError> {
    if batch_size == 0 {
        return Err(EvalError::ZeroBatchSize);
    }
    let [vocab, _] = model.embed_tokens.weight.dims();
    check_samples(samples, vocab, model.max_position_embeddings)?;
    let temperatures = fit_grid();

    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(samples[i].input_ids.len()));
    // per sample, token-major: grid[t * temperatures.len() + k] = log p_β_k(token t)
    let mut grids = vec![Vec::new(); samples.len()];
    for chunk in order.chunks(batch_size) {
        let batch: Vec<&Sample> = chunk.iter().map(|&i| &samples[i]).collect();
        for (&i, grid) in chunk
            .iter()
            .zip(completion_log_probs_grid(model, &batch, &temperatures)?)
        {
            grids[i] = grid;
        }
    }
    Ok(fit_temperature(&grids, temperatures.len()))
}

/// Picks the grid point with the lowest mean per-sample loss, refines it by the parabola
/// through it and its neighbours (in `log β`, where the grid is even), and interpolates every
/// token's log-probability there the same way. `grids` as built by [`evaluate_fitted`].
fn fit_temperature(grids: &[Vec<f32>], points: usize) -> FittedEval {
    let at = |grid: &[f32], t: usize, k: usize| f64::from(grid[t * points + k]);
    let tokens = |grid: &[f32]| grid.len() / points;
    let mean_loss = |k: usize| {
        let total: f64 = grids
            .iter()
            .map(|grid| {
                -(0..tokens(grid)).map(|t| at(grid, t, k)).sum::<f64>() / tokens(grid) as f64
            })
            .sum();
        total / grids.len().max(1) as f64
    };
    let losses: Vec<f64> = (0..points).map(mean_loss).collect();
    let mut best = points / 2;
    if !grids.is_empty() {
        for (k, &loss) in losses.iter().enumerate() {
            if loss < losses[best] || losses[best].is_nan() {
                best = k;
            }
        }
    }
    // Vertex offset in grid steps, within [-1/2, 1/2] when `best` is an interior minimum.
    let offset = if best > 0 && best + 1 < points {
        let (before, here, after) = (losses[best - 1], losses[best], losses[best + 1]);
        let curvature = before - 2.0 * here + after;
        if curvature > 0.0 {
            ((before - after) / (2.0 * curvature)).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    } else {
        0.0
    };
    let interpolate = |grid: &[f32], t: usize| {
        let here = at(grid, t, best);
        if offset == 0.0 {
            return here;
        }
        let (before, after) = (at(grid, t, best - 1), at(grid, t, best + 1));
        here + offset * (after - before) / 2.0
            + offset * offset * (after - 2.0 * here + before) / 2.0
    };
    let token_log_probs: Vec<Vec<f32>> = grids
        .iter()
        .map(|grid| {
            (0..tokens(grid))
                .map(|t| interpolate(grid, t) as f32)
                .collect()
        })
        .collect();
    let losses = grids
        .iter()
        .map(|grid| {
            let n = tokens(grid);
            SampleLoss {
                loss: -(0..n).map(|t| interpolate(grid, t)).sum::<f64>() / n as f64,
                tokens: n,
            }
        })
        .collect();
    let unfitted = grids
        .iter()
        .map(|grid| {
            let n = tokens(grid);
            SampleLoss {
                loss: -(0..n).map(|t| at(grid, t, points / 2)).sum::<f64>() / n as f64,
                tokens: n,
            }
        })
        .collect();
    let k = best as f64 - f64::from(FIT_STEPS) + offset;
    FittedEval {
        losses,
        unfitted,
        inverse_temperature: if grids.is_empty() {
            1.0
        } else {
            (k / FIT_PER_DOUBLING as f64).exp2()
        },
        token_log_probs,
    }
}

/// For one batch of checked samples, the log-probability of each completion token under
/// `softmax(β·logits)` for every `β` of `grid`: per sample, token-major (`tokens × grid.len()`).
/// Only the completion positions go through the output projection.
fn completion_log_probs_grid<B: Backend>(
    model: &Llama<B>,
    batch: &[&Sample],
    grid: &DoublingGrid,
) -> Result<Vec<Vec<f32>>, EvalError> {
    // On the CPU the grid runs its fused host kernel ([`crate::grid`]); a GPU keeps the logits
    // on the device and runs it as tensor ops.
    grid_of_batch(model, batch, grid, crate::backend::is_cpu::<B>())
}

/// Scored positions whose logits the CPU computes at once in the fitted evaluation.
const GRID_ROWS: usize = 128;

/// [`completion_log_probs_grid`], on the host's fused kernel or as tensor ops on the device.
fn grid_of_batch<B: Backend>(
    model: &Llama<B>,
    batch: &[&Sample],
    grid: &DoublingGrid,
    fused_on_host: bool,
) -> Result<Vec<Vec<f32>>, EvalError> {
    let device = model.embed_tokens.weight.val().device();
    let betas = grid.betas();
    let (input_ids, _, lengths) = pad_batch::<B>(batch, &device);
    let [rows, seq] = input_ids.dims();
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    for (row, sample) in batch.iter().enumerate() {
        // position p predicts token p + 1
        for p in sample.completion_start - 1..sample.input_ids.len() - 1 {
            positions.push((row * seq + p) as i64);
            targets.push(i64::from(sample.input_ids[p + 1]));
        }
    }
    let n = positions.len();
    let hidden = model.hidden_states(input_ids, &lengths);
    let [_, _, width] = hidden.dims();
    let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [n]), &device);
    // [n, width]
    let hidden = hidden.reshape([rows * seq, width]).select(0, positions);
    let values = if fused_on_host {
        // Fused on the host: one pass per β over each row while it is in cache (crate::grid),
        // the output projection taken a few rows at a time so that the logits never exist for
        // the whole batch at once (SmolLM2: 25 MB a chunk instead of 200 MB per batch, which
        // also spares faulting in a fresh 200 MB buffer every batch).
        let targets: Vec<usize> = targets.iter().map(|&t| t as usize).collect();
        let mut values = Vec::with_capacity(n * betas.len());
        for start in (0..n).step_by(GRID_ROWS) {
            let len = GRID_ROWS.min(n - start);
            // [len, vocab]
            let logits = model.output_logits(hidden.clone().narrow(0, start, len));
            let [_, vocab] = logits.dims();
            let logits = logits.into_data().convert::<f32>();
            let logits = logits
                .as_slice::<f32>()
                .map_err(|e| EvalError::Backend(format!("{e:?}")))?;
            values.extend(crate::grid::log_probs_grid(
                logits,
                vocab,
                &targets[start..start + len],
                grid,
            ));
        }
        values
    } else {
        // [n, vocab]
        let logits = model.output_logits(hidden);
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [n, 1]), &device);
        // shifted so that the largest logit of each row is 0; `logits` is moved in, so the
        // backend may subtract in place
        let max = logits.clone().max_dim(1);
        let shifted = logits - max;
        let target = shifted.clone().gather(1, targets);
        let columns: Vec<Tensor<B, 2>> = betas
            .iter()
            .map(|&beta| {
                let log_norm = shifted.clone().mul_scalar(beta).exp().sum_dim(1).log();
                target.clone().mul_scalar(beta) - log_norm
            })
            .collect();
        Tensor::cat(columns, 1)
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| EvalError::Backend(format!("{e:?}")))?
    };
    let mut rest = values.as_slice();
    Ok(batch
        .iter()
        .map(|sample| {
            let (mine, others) =
                rest.split_at((sample.input_ids.len() - sample.completion_start) * betas.len());
            rest = others;
            mine.to_vec()
        })
        .collect())
}

/// Log-probability of each completion token of each sample of one batch (checked samples).
fn completion_log_probs<B: Backend>(
    model: &Llama<B>,
    batch: &[&Sample],
) -> Result<Vec<Vec<f32>>, EvalError> {
    let device = model.embed_tokens.weight.val().device();
    let (input_ids, targets, lengths) = pad_batch::<B>(batch, &device);
    let [rows, seq] = input_ids.dims();
    // [rows, seq, vocab] → log p(next token) at each position, [rows, seq]
    let logits = model.forward_padded(input_ids, &lengths);
    let picked = log_softmax(logits, 2)
        .gather(2, targets.unsqueeze_dim::<3>(2))
        .reshape([rows, seq]);
    let values = picked
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| EvalError::Backend(format!("{e:?}")))?;
    Ok(batch
        .iter()
        .enumerate()
        .map(|(row, sample)| {
            // position p predicts token p + 1
            let from = row * seq + sample.completion_start - 1;
            let to = row * seq + sample.input_ids.len() - 1;
            values[from..to].to_vec()
        })
        .collect())
}

/// Right-pads a batch with id 0. Returns the inputs and the next-token targets (both
/// `[rows, longest]`, targets padded with 0 past each sample's end) and each sample's length.
pub(crate) fn pad_batch<B: Backend>(
    batch: &[&Sample],
    device: &B::Device,
) -> (Tensor<B, 2, Int>, Tensor<B, 2, Int>, Vec<usize>) {
    let longest = batch.iter().map(|s| s.input_ids.len()).max().unwrap_or(1);
    let mut inputs = Vec::with_capacity(batch.len() * longest);
    let mut targets = Vec::with_capacity(batch.len() * longest);
    for sample in batch {
        let ids = &sample.input_ids;
        inputs.extend(ids.iter().map(|&t| i64::from(t)));
        inputs.extend(std::iter::repeat_n(0, longest - ids.len()));
        targets.extend(ids.iter().skip(1).map(|&t| i64::from(t)));
        targets.extend(std::iter::repeat_n(0, longest + 1 - ids.len()));
    }
    let shape = [batch.len(), longest];
    let lengths = batch.iter().map(|s| s.input_ids.len()).collect();
    (
        Tensor::from_data(TensorData::new(inputs, shape), device),
        Tensor::from_data(TensorData::new(targets, shape), device),
        lengths,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LlamaConfig;

    type B = crate::backend::Cpu;

    fn model() -> Llama<B> {
        let config = LlamaConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            vocab_size: 20,
            max_position_embeddings: 32,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: false,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        };
        config.init_seeded::<B>(&Default::default(), 561)
    }

    fn samples() -> Vec<Sample> {
        [
            (vec![1, 2, 3, 4, 5], 3),
            (vec![7, 8], 1),
            (vec![9, 3, 1, 4, 1, 5, 9, 2, 6], 4),
            (vec![0, 19, 18], 2),
            (vec![5, 5, 5, 5, 5, 5, 5], 1),
        ]
        .into_iter()
        .map(|(input_ids, completion_start)| Sample {
            input_ids,
            completion_start,
        })
        .collect()
    }

    #[test]
    fn results_do_not_depend_on_batching() {
        let model = model();
        let samples = samples();
        let alone = evaluate(&model, &samples, 1).unwrap();
        for batch_size in [2, 3, 5, 8] {
            let batched = evaluate(&model, &samples, batch_size).unwrap();
            for (a, b) in alone.iter().zip(&batched) {
                assert_eq!(a.tokens, b.tokens);
                assert!(
                    (a.loss - b.loss).abs() <= 1e-6 * a.loss.abs(),
                    "batch {batch_size}: {a:?} vs {b:?}"
                );
            }
        }
        let tokens: Vec<usize> = alone.iter().map(|l| l.tokens).collect();
        assert_eq!(tokens, vec![2, 1, 5, 1, 6]);
    }

    #[test]
    fn loss_is_the_mean_cross_entropy_of_the_completion() {
        let model = model();
        let sample = Sample {
            input_ids: vec![3, 1, 4, 1, 5],
            completion_start: 2,
        };
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![3i64, 1, 4, 1, 5], [1, 5]),
            &Default::default(),
        );
        let logits = model.forward(ids).into_data().to_vec::<f32>().unwrap();
        let vocab = 20;
        let mut total = 0.0;
        for pos in 1..4 {
            let row: Vec<f64> = logits[pos * vocab..(pos + 1) * vocab]
                .iter()
                .map(|&v| f64::from(v))
                .collect();
            let log_sum = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            total += log_sum - row[sample.input_ids[pos + 1] as usize];
        }
        let got = evaluate(&model, &[sample], 4).unwrap()[0];
        assert_eq!(got.tokens, 3);
        assert!(
            (got.loss - total / 3.0).abs() < 1e-5,
            "{got:?} vs {}",
            total / 3.0
        );
    }

    /// `model` with its output projection multiplied by `factor` (a sharpened or blunted copy).
    fn scaled(model: &Llama<B>, factor: f32) -> Llama<B> {
        let mut copy = model.clone();
        let head = copy.lm_head.as_mut().expect("the test model is untied");
        head.weight = burn::module::Param::from_tensor(head.weight.val().mul_scalar(factor));
        copy
    }

    /// A peaked model and samples whose completions it generated at temperature 1, so that its
    /// best inverse temperature on them is close to 1.
    fn model_and_own_samples() -> (Llama<B>, Vec<Sample>) {
        let model = scaled(&model(), 40.0);
        let samples = (0..48u64)
            .map(|seed| {
                let prompt = vec![(seed % 20) as u32, ((seed * 7 + 3) % 20) as u32];
                let options = crate::generate::GenerateOptions {
                    max_new_tokens: 8,
                    temperature: 1.0,
                    seed,
                    stop_token: None,
                };
                let completion = crate::generate::generate(&model, &prompt, &options).unwrap();
                Sample {
                    input_ids: [prompt, completion].concat(),
                    completion_start: 2,
                }
            })
            .collect();
        (model, samples)
    }

    fn mean_loss(losses: &[SampleLoss]) -> f64 {
        losses.iter().map(|l| l.loss).sum::<f64>() / losses.len() as f64
    }

    #[test]
    fn the_grid_at_temperature_one_is_the_plain_loss() {
        let model = model();
        let samples = samples();
        let batch: Vec<&Sample> = samples.iter().collect();
        let grid = fit_grid();
        let betas = grid.betas();
        let grids = completion_log_probs_grid(&model, &batch, &grid).unwrap();
        let plain = completion_log_probs(&model, &batch).unwrap();
        for (grid, plain) in grids.iter().zip(&plain) {
            assert_eq!(grid.len(), plain.len() * betas.len());
            for (t, &lp) in plain.iter().enumerate() {
                let at_one = grid[t * betas.len() + FIT_STEPS as usize];
                assert!((at_one - lp).abs() < 1e-5, "{at_one} vs {lp}");
            }
        }
        // the fit can only lower the mean loss
        let fitted = evaluate_fitted(&model, &samples, 2).unwrap();
        let plain = evaluate(&model, &samples, 2).unwrap();
        assert!(mean_loss(&fitted.losses) <= mean_loss(&plain) + 1e-6);
        for (a, b) in fitted.unfitted.iter().zip(&plain) {
            assert_eq!(a.tokens, b.tokens);
            assert!((a.loss - b.loss).abs() < 1e-5, "{a:?} vs {b:?}");
        }
        assert_eq!(
            fitted.losses.iter().map(|l| l.tokens).collect::<Vec<_>>(),
            vec![2, 1, 5, 1, 6]
        );
        for (lps, loss) in fitted.token_log_probs.iter().zip(&fitted.losses) {
            let mean = -lps.iter().map(|&lp| f64::from(lp)).sum::<f64>() / lps.len() as f64;
            assert!((mean - loss.loss).abs() < 1e-5);
        }
    }

    #[test]
    fn the_fused_host_grid_matches_the_device_grid() {
        // The CPU runs crate::grid; a GPU the tensor ops. Both, here on the CPU.
        let (model, samples) = model_and_own_samples();
        let batch: Vec<&Sample> = samples.iter().take(24).collect();
        // More scored positions than the host takes logits of at once.
        let scored: usize = batch
            .iter()
            .map(|s| s.input_ids.len() - s.completion_start)
            .sum();
        assert!(scored > GRID_ROWS, "{scored}");
        let grid = fit_grid();
        let fused = grid_of_batch(&model, &batch, &grid, true).unwrap();
        let tensor_ops = grid_of_batch(&model, &batch, &grid, false).unwrap();
        assert_eq!(fused.len(), tensor_ops.len());
        for (a, b) in fused.iter().zip(&tensor_ops) {
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(b) {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
    }

    #[test]
    fn scaling_the_logits_gains_nothing_after_the_fit() {
        let (model, samples) = model_and_own_samples();
        let honest = evaluate_fitted(&model, &samples, 8).unwrap();
        assert!(
            (honest.inverse_temperature - 1.0).abs() < 0.2,
            "own samples: β = {}",
            honest.inverse_temperature
        );
        for factor in [0.7f32, 1.1, 1.25, 1.6] {
            let copy = scaled(&model, factor);
            let fitted = evaluate_fitted(&copy, &samples, 8).unwrap();
            let ratio = fitted.inverse_temperature * f64::from(factor) / honest.inverse_temperature;
            assert!((ratio - 1.0).abs() < 0.02, "×{factor}: β ratio {ratio}");
            let gap = mean_loss(&fitted.losses) - mean_loss(&honest.losses);
            assert!(
                gap.abs() < 1e-4 * mean_loss(&honest.losses),
                "×{factor}: fitted mean loss differs by {gap}"
            );
            for (a, b) in fitted.losses.iter().zip(&honest.losses) {
                assert!((a.loss - b.loss).abs() < 2e-3, "×{factor}: {a:?} vs {b:?}");
            }
            // Without the fit the larger rescalings change the loss: the fit is what levels them.
            // (Near β = 1 the loss is flat, so ×1.1 may change it little.)
            if !(0.8..1.2).contains(&factor) {
                let unfitted = mean_loss(&evaluate(&copy, &samples, 8).unwrap());
                let honest_unfitted = mean_loss(&evaluate(&model, &samples, 8).unwrap());
                assert!(
                    (unfitted - honest_unfitted).abs() > 10.0 * gap.abs().max(1e-6),
                    "×{factor}: {unfitted} vs {honest_unfitted}"
                );
            }
        }
    }

    #[test]
    fn fitted_results_do_not_depend_on_batching() {
        let (model, samples) = model_and_own_samples();
        let alone = evaluate_fitted(&model, &samples[..12], 1).unwrap();
        for batch_size in [3, 5, 12] {
            let batched = evaluate_fitted(&model, &samples[..12], batch_size).unwrap();
            assert!((alone.inverse_temperature - batched.inverse_temperature).abs() < 1e-6);
            for (a, b) in alone.losses.iter().zip(&batched.losses) {
                assert_eq!(a.tokens, b.tokens);
                assert!(
                    (a.loss - b.loss).abs() <= 1e-5,
                    "batch {batch_size}: {a:?} vs {b:?}"
                );
            }
        }
        let empty = evaluate_fitted(&model, &[], 4).unwrap();
        assert!(empty.losses.is_empty() && empty.inverse_temperature == 1.0);
    }

    #[test]
    fn rejects_bad_samples_before_running_the_model() {
        let model = model();
        let bad = |input_ids: Vec<u32>, completion_start| {
            evaluate(
                &model,
                &[
                    samples()[0].clone(),
                    Sample {
                        input_ids,
                        completion_start,
                    },
                ],
                2,
            )
            .unwrap_err()
        };
        assert!(matches!(
            bad(vec![1, 2], 0),
            EvalError::BadCompletionStart { index: 1, .. }
        ));
        assert!(matches!(
            bad(vec![1, 2], 2),
            EvalError::BadCompletionStart { index: 1, .. }
        ));
        assert!(matches!(
            bad(vec![], 0),
            EvalError::BadCompletionStart { len: 0, .. }
        ));
        assert!(matches!(
            bad(vec![1, 20], 1),
            EvalError::TokenOutOfRange {
                token: 20,
                vocab: 20,
                ..
            }
        ));
        assert!(matches!(
            bad(vec![1; 33], 1),
            EvalError::TooLong {
                len: 33,
                max: 32,
                ..
            }
        ));
        assert!(matches!(
            evaluate(&model, &samples(), 0),
            Err(EvalError::ZeroBatchSize)
        ));
        assert!(evaluate(&model, &[], 4).unwrap().is_empty());
    }
}
