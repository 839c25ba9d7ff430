//! Text generation for `/v1/generate` and the validator's spot-check: greedy at temperature 0,
//! otherwise sampling from `softmax(logits / temperature)` with a seeded ChaCha RNG, so the same
//! model, prompt, temperature and seed give the same tokens on every machine whose logits agree.
//!
//! The prompt is fed once and each new token once more, through a key/value cache
//! ([`Llama::forward_cached`]): a step costs one position, not the whole sequence. The logits
//! equal a full forward pass's up to f32 rounding, which [`verify_greedy`]'s tolerance absorbs.
//!
//! [`verify_greedy`] checks the other side: whether a server's answer is what greedy decoding of
//! a given model can produce (the validator's spot-check of a miner against its artifact).

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::llama::Llama;

/// How to continue a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// Most tokens to add (fewer when a stop token appears or the context is full).
    pub max_new_tokens: usize,
    /// 0 for greedy decoding; otherwise the softmax temperature (at most 100).
    pub temperature: f64,
    /// Seed of the sampling RNG (unused when greedy).
    pub seed: u64,
    /// Generation ends after this token is produced (it is included in the output).
    pub stop_token: Option<u32>,
}

/// Why generation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The prompt has no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// The prompt fills the model's context already.
    #[error("prompt of {len} tokens leaves no room in the model's context of {max}")]
    PromptTooLong {
        /// Prompt length.
        len: usize,
        /// The model's `max_position_embeddings`.
        max: usize,
    },
    /// A prompt token is outside the vocabulary.
    #[error("prompt token id {token} is outside the vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The offending id.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// The temperature is negative, not finite or above 100.
    #[error("temperature {0} must be in [0, 100]")]
    BadTemperature(f64),
    /// Reading logits back from the backend failed.
    #[error("reading logits from the backend: {0}")]
    Backend(String),
}

/// Checks that `prompt` can be fed to `model`: not empty, shorter than its context, ids inside
/// its vocabulary.
fn check_prompt<B: Backend>(model: &Llama<B>, prompt: &[u32]) -> Result<(), GenerateError> {
    let [vocab, _] = model.embed_tokens.weight.dims();
    let max = model.max_position_embeddings;
    if prompt.is_empty() {
        return Err(GenerateError::EmptyPrompt);
    }
    if prompt.len() >= max {
        return Err(GenerateError::PromptTooLong {
            len: prompt.len(),
            max,
        });
    }
    if let Some(&token) = prompt.iter().find(|&&t| t as usize >= vocab) {
        return Err(GenerateError::TokenOutOfRange { token, vocab });
    }
    Ok(())
}

/// The backend's logits as host `f32`s.
fn host_logits<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
) -> Result<Vec<f32>, GenerateError> {
    logits
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| GenerateError::Backend(format!("{e:?}")))
}

/// The tokens generated after `prompt` (the prompt itself is not repeated).
pub fn generate<B: Backend>(
    model: &Llama<B>,
    prompt: &[u32],
    options: &GenerateOptions,
) -> Result<Vec<u32>, GenerateError> {
    check_prompt(model, prompt)?;
    let temperature = options.temperature;
    if !(0.0..=100.0).contains(&temperature) {
        return Err(GenerateError::BadTemperature(temperature));
    }

    let device = model.embed_tokens.weight.val().device();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut cache = model.new_cache();
    let mut output = Vec::new();
    let room = model.max_position_embeddings - prompt.len();
    let mut feed = prompt.to_vec();
    for _ in 0..options.max_new_tokens.min(room) {
        let ids: Vec<i64> = feed.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, feed.len()]), &device);
        let logits = host_logits(model.forward_cached(ids, &mut cache))?;
        let next = if temperature == 0.0 {
            argmax(&logits)
        } else {
            sample(&logits, temperature, &mut rng)
        };
        output.push(next);
        if options.stop_token == Some(next) {
            break;
        }
        feed = vec![next];
    }
    Ok(output)
}

/// Greedy continuations of several prompts at once: what [`generate`] at temperature 0 gives
/// each prompt, up to f32 rounding (a near-tie may break the other way), for a fraction of the
/// cost: each step is one matrix product over every unfinished row instead of one per row.
///
/// The prompts are left-padded to the longest and fed together; a row leaves the batch when it
/// ends (`stop_token`, `max_new_tokens` or its context), so the others run on. The answers do
/// not depend on the thread count, only on the prompts and their order.
pub fn greedy_batch<B: Backend, P: AsRef<[u32]>>(
    model: &Llama<B>,
    prompts: &[P],
    max_new_tokens: usize,
    stop_token: Option<u32>,
) -> Result<Vec<Vec<u32>>, GenerateError> {
    let prompts: Vec<&[u32]> = prompts.iter().map(AsRef::as_ref).collect();
    for prompt in &prompts {
        check_prompt(model, prompt)?;
    }
    let mut outputs = vec![Vec::new(); prompts.len()];
    let longest = prompts.iter().map(|prompt| prompt.len()).max().unwrap_or(0);
    if prompts.is_empty() || max_new_tokens == 0 {
        return Ok(outputs);
    }
    let device = model.embed_tokens.weight.val().device();
    let [vocab, _] = model.embed_tokens.weight.dims();
    let budgets: Vec<usize> = prompts
        .iter()
        .map(|prompt| max_new_tokens.min(model.max_position_embeddings - prompt.len()))
        .collect();
    let pads = prompts
        .iter()
        .map(|prompt| longest - prompt.len())
        .collect();
    let mut cache = model.new_batch_cache(pads);
    // Padding slots take the row's first token: any valid id does, none is read.
    let mut feed: Vec<i64> = prompts
        .iter()
        .flat_map(|prompt| {
            std::iter::repeat_n(prompt[0], longest - prompt.len())
                .chain(prompt.iter().copied())
                .map(i64::from)
        })
        .collect();
    let mut width = longest;
    // `active[i]`: the prompt index of the cache's row i.
    let mut active: Vec<usize> = (0..prompts.len()).collect();
    while !active.is_empty() {
        let ids =
            Tensor::<B, 2, Int>::from_data(TensorData::new(feed, [active.len(), width]), &device);
        let logits = host_logits(model.forward_cached_batch(ids, &mut cache))?;
        let mut keep = Vec::with_capacity(active.len());
        feed = Vec::with_capacity(active.len());
        for (row, (&prompt, logits)) in active.iter().zip(logits.chunks_exact(vocab)).enumerate() {
            let next = argmax(logits);
            let output = &mut outputs[prompt];
            output.push(next);
            if stop_token != Some(next) && output.len() < budgets[prompt] {
                keep.push(row);
                feed.push(i64::from(next));
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < active.len() {
            active = keep.iter().map(|&row| active[row]).collect();
            cache.retain(&keep);
        }
        width = 1;
    }
    Ok(outputs)
}

/// Index of the largest logit; the lowest index wins ties, NaN never wins.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] || logits[best].is_nan() {
            best = i;
        }
    }
    best as u32
}

/// Draws from `softmax(logits / temperature)`, computed in f64.
fn sample(logits: &[f32], temperature: f64, rng: &mut ChaCha8Rng) -> u32 {
    let scaled: Vec<f64> = logits.iter().map(|&v| f64::from(v) / temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scaled
        .iter()
        .map(|&v| if v.is_finite() { (v - max).exp() } else { 0.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return argmax(logits);
    }
    let mut draw = rng.r#gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if draw < *w {
            return i as u32;
        }
        draw -= w;
    }
    // Rounding left `draw` just above the last weight: take the last token with any weight.
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0) as u32
}

/// How far below the best logit an answered token may be and still count as the greedy choice
/// ([`verify_greedy`]): absolute slack for numeric differences between devices (CPU vs GPU, f32 summation
/// order), far below the gap between two genuinely different choices.
pub const GREEDY_LOGIT_TOLERANCE: f32 = 1e-3;

/// What a server (a miner's `/v1/generate`) answered for a greedy request, to verify against the
/// model it claims to run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GreedyAnswer {
    /// The prompt ids sent.
    pub prompt: Vec<u32>,
    /// `max_new_tokens` sent.
    pub max_new_tokens: usize,
    /// The ids the miner answered.
    pub output: Vec<u32>,
}

/// Whether an answer is what the model produces greedily.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum GreedyVerdict {
    /// Every token is the committed model's greedy choice (within [`GREEDY_LOGIT_TOLERANCE`]).
    Match,
    /// The answer cannot come from greedy decoding of the committed model; why.
    Mismatch(String),
}

/// Checks `answer` against `model` by teacher forcing: one forward pass over prompt + answer
/// gives the logits at every generated position, and each answered token must be the argmax
/// there (up to [`GREEDY_LOGIT_TOLERANCE`], so an honest miner on other hardware passes). An answer
/// shorter than asked must end with one of `stop_tokens` (or fill the context); a longer one
/// fails.
///
/// This accepts exactly what greedy decoding of the committed model can produce, and unlike a
/// token-for-token comparison with a local generation it does not fail an honest miner on a
/// near-tie that its hardware breaks the other way.
pub fn verify_greedy<B: Backend>(
    model: &Llama<B>,
    answer: &GreedyAnswer,
    stop_tokens: &[u32],
) -> Result<GreedyVerdict, GenerateError> {
    let [vocab, _] = model.embed_tokens.weight.dims();
    let max = model.max_position_embeddings;
    let (prompt, output) = (&answer.prompt, &answer.output);
    let room = max.saturating_sub(prompt.len());
    let expected_len = answer.max_new_tokens.min(room);
    let mismatch = |reason: String| Ok(GreedyVerdict::Mismatch(reason));
    if output.len() > expected_len {
        return mismatch(format!(
            "{} tokens answered, at most {expected_len} asked",
            output.len()
        ));
    }
    if output.is_empty() {
        return mismatch(format!("no tokens answered, {expected_len} asked"));
    }
    if let Some(&token) = output.iter().find(|&&t| t as usize >= vocab) {
        return mismatch(format!(
            "token id {token} is outside the vocabulary of {vocab}"
        ));
    }
    if output.len() < expected_len && !output.last().is_some_and(|t| stop_tokens.contains(t)) {
        return mismatch(format!(
            "answer stops after {} of {expected_len} tokens without the end-of-sequence token",
            output.len()
        ));
    }
    // Positions prompt.len() - 1 .. prompt.len() + output.len() - 1 predict the output tokens.
    let mut sequence = prompt.clone();
    sequence.extend_from_slice(&output[..output.len() - 1]);
    let len = sequence.len();
    let device = model.embed_tokens.weight.val().device();
    let ids: Vec<i64> = sequence.iter().map(|&t| i64::from(t)).collect();
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
    // [1, len, vocab] → the rows of the generated positions, [output.len(), vocab]
    let start = prompt.len() - 1;
    let logits = model
        .forward(ids)
        .narrow(1, start, output.len())
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| GenerateError::Backend(format!("{e:?}")))?;
    for (position, (row, &token)) in logits.chunks_exact(vocab).zip(output).enumerate() {
        let (best, best_logit) =
            row.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |acc, (i, v)| {
                        if v > acc.1 { (i, v) } else { acc }
                    },
                );
        let got = row[token as usize];
        // Written so that a NaN logit fails the check.
        let is_greedy = got >= best_logit - GREEDY_LOGIT_TOLERANCE;
        if !is_greedy {
            return mismatch(format!(
                "token {position}: the miner sent id {token}, the committed model's greedy choice is id {best} (logit gap {:.4})",
                best_logit - got
            ));
        }
    }
    Ok(GreedyVerdict::Match)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LlamaConfig;

    type B = crate::backend::Cpu;

    fn model() -> Llama<B> {
        LlamaConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            vocab_size: 12,
            max_position_embeddings: 10,
            rms_norm_eps: 1e-5,
            rope_theta: 10_000.0,
            tie_word_embeddings: true,
            bos_token_id: None,
            eos_token_id: None,
            pad_token_id: None,
        }
        .init_seeded::<B>(&Default::default(), 463)
    }

    fn options(max_new_tokens: usize, temperature: f64, seed: u64) -> GenerateOptions {
        GenerateOptions {
            max_new_tokens,
            temperature,
            seed,
            stop_token: None,
        }
    }

    #[test]
    fn greedy_decoding_follows_the_argmax_of_the_logits() {
        let model = model();
        let out = generate(&model, &[1, 2], &options(3, 0.0, 0)).unwrap();
        assert_eq!(out.len(), 3);
        let ids = Tensor::<B, 2, Int>::from_data(
            TensorData::new(vec![1i64, 2], [1, 2]),
            &Default::default(),
        );
        let logits = model.forward(ids).into_data().to_vec::<f32>().unwrap();
        assert_eq!(out[0], argmax(&logits[12..]));
    }

    #[test]
    fn the_cache_gives_the_tokens_a_full_forward_at_every_step_gives() {
        let model = model();
        let prompt = [1u32, 5, 2];
        let cached = generate(&model, &prompt, &options(12, 0.0, 0)).unwrap();
        // The reference: rerun the whole sequence for every token, up to the context of 10.
        let mut sequence = prompt.to_vec();
        for _ in 0..7 {
            let ids: Vec<i64> = sequence.iter().map(|&t| i64::from(t)).collect();
            let len = ids.len();
            let ids =
                Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &Default::default());
            let logits = model
                .forward(ids)
                .narrow(1, len - 1, 1)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            sequence.push(argmax(&logits));
        }
        assert_eq!(cached, sequence[prompt.len()..]);
    }

    #[test]
    fn a_batch_of_prompts_gets_what_each_prompt_gets_alone() {
        let model = model();
        // Lengths 1 to 9 (the context is 10): rows end at different steps, by budget or context.
        let prompts: Vec<Vec<u32>> = vec![
            vec![1, 5, 2],
            vec![7],
            vec![3, 3, 9, 4, 0, 11, 2],
            vec![8, 1],
            vec![2, 4, 6, 8, 10, 1, 3, 5, 7],
        ];
        for max_new_tokens in [0, 1, 4, 12] {
            let batch = greedy_batch(&model, &prompts, max_new_tokens, None).unwrap();
            let alone: Vec<Vec<u32>> = prompts
                .iter()
                .map(|prompt| generate(&model, prompt, &options(max_new_tokens, 0.0, 0)).unwrap())
                .collect();
            assert_eq!(batch, alone, "max_new_tokens {max_new_tokens}");
        }
        // With a stop token some rows end early and leave the batch; the others run on.
        let stop = greedy_batch(&model, &prompts, 12, None).unwrap()[0][1];
        let batch = greedy_batch(&model, &prompts, 12, Some(stop)).unwrap();
        for (prompt, got) in prompts.iter().zip(&batch) {
            let mut options = options(12, 0.0, 0);
            options.stop_token = Some(stop);
            assert_eq!(got, &generate(&model, prompt, &options).unwrap());
        }
        assert!(batch.iter().any(|out| out.last() == Some(&stop)));
        assert!(
            greedy_batch::<_, Vec<u32>>(&model, &[], 4, None)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_batch_rejects_any_bad_prompt() {
        let model = model();
        let bad = [vec![], vec![0; 10], vec![1, 12]];
        for prompt in bad {
            assert!(greedy_batch(&model, &[vec![1, 2], prompt], 3, None).is_err());
        }
    }

    #[test]
    fn sampling_is_reproducible_by_seed_and_stops_at_the_context() {
        let model = model();
        let a = generate(&model, &[3], &options(20, 1.5, 7)).unwrap();
        let b = generate(&model, &[3], &options(20, 1.5, 7)).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.len(),
            9,
            "context of 10 holds the prompt and 9 new tokens"
        );
        assert!(a.iter().all(|&t| t < 12));
        let seeds: std::collections::BTreeSet<Vec<u32>> = (0..8)
            .map(|s| generate(&model, &[3], &options(9, 5.0, s)).unwrap())
            .collect();
        assert!(
            seeds.len() > 1,
            "different seeds should give different samples"
        );
    }

    #[test]
    fn stops_after_the_stop_token() {
        let model = model();
        let greedy = generate(&model, &[4], &options(5, 0.0, 0)).unwrap();
        let stop = GenerateOptions {
            stop_token: Some(greedy[1]),
            ..options(5, 0.0, 0)
        };
        let out = generate(&model, &[4], &stop).unwrap();
        let first = greedy.iter().position(|&t| t == greedy[1]).unwrap();
        assert_eq!(out, greedy[..=first].to_vec());
    }

    #[test]
    fn rejects_bad_requests() {
        let model = model();
        assert!(matches!(
            generate(&model, &[], &options(1, 0.0, 0)),
            Err(GenerateError::EmptyPrompt)
        ));
        assert!(matches!(
            generate(&model, &[1; 10], &options(1, 0.0, 0)),
            Err(GenerateError::PromptTooLong { len: 10, max: 10 })
        ));
        assert!(matches!(
            generate(&model, &[12], &options(1, 0.0, 0)),
            Err(GenerateError::TokenOutOfRange {
                token: 12,
                vocab: 12
            })
        ));
        for t in [-1.0, f64::NAN, 1000.0] {
            assert!(matches!(
                generate(&model, &[1], &options(1, t, 0)),
                Err(GenerateError::BadTemperature(_))
            ));
        }
    }

    #[test]
    fn argmax_prefers_the_lowest_index_and_ignores_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, -1.0]), 1);
    }

    #[test]
    fn the_models_own_greedy_output_passes_and_anything_else_fails() {
        let device = Default::default();
        let model = LlamaConfig {
            max_position_embeddings: 32,
            ..LlamaConfig::tiny()
        }
        .init_seeded::<B>(&device, 5);
        let prompt = vec![256, 40, 41, 42];
        let options = GenerateOptions {
            max_new_tokens: 6,
            temperature: 0.0,
            seed: 0,
            stop_token: Some(257),
        };
        let output = generate(&model, &prompt, &options).unwrap();
        let answer = |output: Vec<u32>| GreedyAnswer {
            prompt: prompt.clone(),
            max_new_tokens: 6,
            output,
        };
        let verdict = |output| verify_greedy(&model, &answer(output), &[257]).unwrap();
        assert_eq!(verdict(output.clone()), GreedyVerdict::Match);

        // The last token replaced by the one with the lowest logit there: far below the greedy
        // choice whatever the random weights (a neighbouring token id can be a near-tie, within
        // GREEDY_LOGIT_TOLERANCE of the best, and rightly pass).
        let mut wrong = output.clone();
        let last = wrong.len() - 1;
        let context: Vec<i64> = prompt
            .iter()
            .chain(&output[..last])
            .map(|&t| i64::from(t))
            .collect();
        let len = context.len();
        let logits = model
            .forward(Tensor::<B, 2, Int>::from_data(
                TensorData::new(context, [1, len]),
                &device,
            ))
            .narrow(1, len - 1, 1)
            .into_data()
            .to_vec::<f32>()
            .unwrap();
        let worst = (0..256)
            .min_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap();
        wrong[last] = worst as u32;
        assert!(
            matches!(verdict(wrong), GreedyVerdict::Mismatch(r) if r.contains(&format!("token {last}")))
        );
        if output.len() == 6 && output[5] != 257 {
            assert!(
                matches!(verdict(output[..3].to_vec()), GreedyVerdict::Mismatch(r) if r.contains("stops after 3"))
            );
        }
        let mut long = output.clone();
        long.resize(7, 0);
        assert!(matches!(verdict(long), GreedyVerdict::Mismatch(_)));
        assert!(matches!(verdict(vec![]), GreedyVerdict::Mismatch(_)));
        assert!(
            matches!(verdict(vec![9999]), GreedyVerdict::Mismatch(r) if r.contains("vocabulary"))
        );
    }
}
