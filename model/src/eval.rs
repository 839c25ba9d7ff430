//! Scoring a model on samples: the mean cross-entropy over each sample's completion tokens.
//!
//! A [`Sample`] is a token sequence with the index where its completion starts; the loss is
//! `mean over t in completion_start..len of −log p(ids[t] | ids[..t])`, exactly what
//! transformers gives with labels set to −100 on the prompt. Samples are batched with right
//! padding (longest first, to waste little padding); each sample's result does not depend on
//! which others it was batched with, and results come back in input order.

use burn::tensor::activation::log_softmax;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::llama::Llama;

/// One evaluation sample: a prompt followed by the completion the model is judged on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Token ids, prompt then completion.
    pub input_ids: Vec<u32>,
    /// Index in `input_ids` of the first completion token; at least 1 (something must predict
    /// it) and below `input_ids.len()` (at least one completion token).
    pub completion_start: usize,
}

/// One sample's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleLoss {
    /// Mean cross-entropy (nats) over the completion tokens.
    pub loss: f64,
    /// Number of completion tokens averaged over.
    pub tokens: usize,
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
    use burn::backend::NdArray;

    type B = NdArray<f32>;

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
        config.init::<B>(&Default::default())
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
