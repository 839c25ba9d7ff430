//! Instruction following by generation: a model answers each [`OpenTask`] greedily, within a
//! token budget, and the answer is checked against the task's constraints.
//!
//! Greedy decoding makes the answer a function of the model and the prompt alone, so scaling the
//! logits changes nothing here (the argmax is the same). The tasks are generated
//! [`follow_batch_rows`] at a time, in their order, so two validators holding the same model and
//! tasks run the same batches and get the same answers on machines whose logits agree (a batch
//! rounds like a single run up to f32 rounding; a near-tie may break either way, the same way
//! for every validator).

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::competition::Competition;
use crate::eval::{EvalError, Sample, evaluate};
use crate::generate::{GenerateError, GenerateOptions, generate, greedy_batch};
use crate::llama::Llama;
use crate::tasks::TaskError;
use crate::tasks::open::OpenTask;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Why a model's answers could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// The prompt could not be put into the competition's format.
    #[error("prompt: {0}")]
    Prompt(#[from] TaskError),
    /// Generation failed (the prompt does not fit the model).
    #[error("generation: {0}")]
    Generate(#[from] GenerateError),
    /// The answer's ids could not be decoded (or an answer encoded, to be judged).
    #[error("the answer's tokens: {0}")]
    Decode(#[from] TokenizerError),
    /// The judge could not score the answers.
    #[error("judging the answers: {0}")]
    Judge(#[from] EvalError),
}

/// One task's answer and how well it kept the task's constraints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Followed {
    /// The answer, without its end-of-sequence token.
    pub answer: String,
    /// Whether the model ended its answer within the budget.
    pub finished: bool,
    /// Tokens generated (the end-of-sequence token included).
    pub tokens: usize,
    /// [`OpenTask::score`]: the share of constraints kept, 0 when cut off.
    pub score: f64,
}

/// A greedy answer to one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The answer, without its end-of-sequence token.
    pub text: String,
    /// Whether the model ended its answer within the budget.
    pub finished: bool,
    /// Tokens generated (the end-of-sequence token included).
    pub tokens: usize,
}

/// Answers `prompt` (put in the competition's format, its chat template, with `tokenizer`, the
/// competition's) greedily with at most `max_new_tokens` tokens. The answer ends at the
/// tokenizer's end-of-sequence token; a prompt that fills the model's context gets an empty,
/// unfinished answer.
pub fn answer<B: Backend>(
    model: &Llama<B>,
    tokenizer: &Tokenizer,
    competition: &Competition,
    prompt: &str,
    max_new_tokens: usize,
) -> Result<Answer, FollowError> {
    let prompt = competition.prompt_ids(tokenizer, prompt)?;
    if prompt.len() >= model.max_position_embeddings {
        return Ok(Answer {
            text: String::new(),
            finished: false,
            tokens: 0,
        });
    }
    let eos = tokenizer.eos_id();
    let options = GenerateOptions {
        max_new_tokens,
        temperature: 0.0,
        seed: 0,
        stop_token: eos,
    };
    finish(generate(model, &prompt, &options)?, tokenizer)
}

/// The [`Answer`] of generated `ids`: finished when they end with the tokenizer's
/// end-of-sequence token, which the text leaves out.
fn finish(mut ids: Vec<u32>, tokenizer: &Tokenizer) -> Result<Answer, FollowError> {
    let eos = tokenizer.eos_id();
    let tokens = ids.len();
    let finished = eos.is_some() && ids.last().copied() == eos;
    if finished {
        ids.pop();
    }
    Ok(Answer {
        text: tokenizer.decode(&ids)?,
        finished,
        tokens,
    })
}

/// The most rows [`follow`] generates together: enough for the matrix products to pay.
pub const FOLLOW_BATCH: usize = 16;

/// The keys and values a batch of [`follow`] may hold at its longest: SmolLM2 keeps 16 rows up
/// to 364 positions (prompt and answer), 5 at the competition cap of 1 024 new tokens (where 16
/// rows would hold 830 MB).
pub const FOLLOW_CACHE_BYTES: usize = 256 << 20;

/// Rows per batch of [`follow`] for sequences of up to `positions` positions: [`FOLLOW_BATCH`],
/// or fewer so that the batch's cache stays within [`FOLLOW_CACHE_BYTES`], and at least one. It
/// depends only on the model's shape and the tasks, never on the machine, so every validator
/// runs the same batches.
pub fn follow_batch_rows(bytes_per_position: usize, positions: usize) -> usize {
    let row = bytes_per_position.saturating_mul(positions).max(1);
    (FOLLOW_CACHE_BYTES / row).clamp(1, FOLLOW_BATCH)
}

/// Answers every task greedily with at most `max_new_tokens` tokens each, as [`answer`] does but
/// [`follow_batch_rows`] tasks at a time ([`greedy_batch`]), and scores each answer: one that does not
/// end within the budget, or within the model's context, scores 0 (a model that cannot hold the
/// instruction cannot follow it).
pub fn follow<B: Backend>(
    model: &Llama<B>,
    tokenizer: &Tokenizer,
    competition: &Competition,
    tasks: &[OpenTask],
    max_new_tokens: usize,
) -> Result<Vec<Followed>, FollowError> {
    let eos = tokenizer.eos_id();
    let prompts = tasks
        .iter()
        .map(|task| competition.prompt_ids(tokenizer, &task.prompt))
        .collect::<Result<Vec<_>, _>>()?;
    // The prompts that fit the context, generated in batches; the others answer nothing.
    let fits: Vec<usize> = (0..tasks.len())
        .filter(|&i| prompts[i].len() < model.max_position_embeddings)
        .collect();
    let longest = fits.iter().map(|&i| prompts[i].len()).max().unwrap_or(0);
    let rows = follow_batch_rows(
        model.cache_bytes_per_position(),
        (longest + max_new_tokens).min(model.max_position_embeddings),
    );
    let mut outputs: Vec<Option<Vec<u32>>> = vec![None; tasks.len()];
    for chunk in fits.chunks(rows) {
        let batch: Vec<&[u32]> = chunk.iter().map(|&i| prompts[i].as_slice()).collect();
        for (&i, output) in chunk
            .iter()
            .zip(greedy_batch(model, &batch, max_new_tokens, eos)?)
        {
            outputs[i] = Some(output);
        }
    }
    tasks
        .iter()
        .zip(outputs)
        .map(|(task, output)| {
            let Answer {
                text,
                finished,
                tokens,
            } = match output {
                Some(ids) => finish(ids, tokenizer)?,
                None => Answer {
                    text: String::new(),
                    finished: false,
                    tokens: 0,
                },
            };
            let score = task.score(&text, finished);
            Ok(Followed {
                answer: text,
                finished,
                tokens,
                score,
            })
        })
        .collect()
}

/// The mean loss (nats per token) of each answer under `judge` (the competition's pinned base
/// model) as the completion of its task's prompt in the competition's format, `batch_size`
/// answers per forward pass; `None` for an empty answer, or where the prompt alone fills the
/// judge's context (not judged). An answer too long for the judge's context is judged on the
/// part that fits. Answers and tasks pair up in order.
pub fn answer_losses<B: Backend>(
    judge: &Llama<B>,
    tokenizer: &Tokenizer,
    competition: &Competition,
    tasks: &[OpenTask],
    answers: &[&str],
    batch_size: usize,
) -> Result<Vec<Option<f64>>, FollowError> {
    let mut samples = Vec::new();
    let mut judged = Vec::new();
    for (i, (task, answer)) in tasks.iter().zip(answers).enumerate() {
        let mut input_ids = competition.prompt_ids(tokenizer, &task.prompt)?;
        let completion_start = input_ids.len();
        let room = judge
            .max_position_embeddings
            .saturating_sub(completion_start);
        input_ids.extend(tokenizer.encode(answer)?.into_iter().take(room));
        if completion_start > 0 && input_ids.len() > completion_start {
            samples.push(Sample {
                input_ids,
                completion_start,
            });
            judged.push(i);
        }
    }
    let mut losses = vec![None; answers.len().min(tasks.len())];
    for (i, loss) in judged
        .into_iter()
        .zip(evaluate(judge, &samples, batch_size)?)
    {
        losses[i] = Some(loss.loss);
    }
    Ok(losses)
}

/// The scores of `followed` after the judge: an answer whose loss under the base
/// ([`answer_losses`], in the same order) is above `max_loss` nats, or not a number, scores 0;
/// the others keep theirs.
pub fn judged_scores(followed: &[Followed], losses: &[Option<f64>], max_loss: f64) -> Vec<f64> {
    followed
        .iter()
        .enumerate()
        .map(|(i, answer)| match losses.get(i).copied().flatten() {
            Some(loss) if loss.is_nan() || loss > max_loss => 0.0,
            _ => answer.score,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use crate::config::LlamaConfig;
    use crate::tasks::open;

    fn competition() -> Competition {
        Competition::from_toml(include_str!("../../competitions/default.toml")).unwrap()
    }

    /// A tiny random model with a context of `positions`.
    fn model(positions: usize, seed: u64) -> Llama<Cpu> {
        let config = LlamaConfig {
            max_position_embeddings: positions,
            ..LlamaConfig::tiny()
        };
        config.init_seeded::<Cpu>(&Default::default(), seed)
    }

    #[test]
    fn a_random_model_answers_every_task_within_the_budget_and_is_scored() {
        let model = model(512, 5);
        let tasks = open::generate([1; 32], 3);
        let tokenizer = Tokenizer::bytes();
        let followed = follow(&model, &tokenizer, &competition(), &tasks, 6).unwrap();
        assert_eq!(followed.len(), 3);
        for (task, answer) in tasks.iter().zip(&followed) {
            assert!(answer.tokens <= 6 && answer.tokens > 0);
            assert_eq!(answer.score, task.score(&answer.answer, answer.finished));
            if !answer.finished {
                assert_eq!(answer.score, 0.0);
            }
        }
        // Batched: each answer is the one a single greedy run gives.
        for (task, followed) in tasks.iter().zip(&followed) {
            let alone = answer(&model, &tokenizer, &competition(), &task.prompt, 6).unwrap();
            assert_eq!(
                (&alone.text, alone.finished, alone.tokens),
                (&followed.answer, followed.finished, followed.tokens)
            );
        }
        // Greedy: the same answers again.
        assert_eq!(
            followed,
            follow(&model, &tokenizer, &competition(), &tasks, 6).unwrap()
        );
    }

    #[test]
    fn more_tasks_than_one_batch_are_answered_in_order() {
        let model = model(512, 9);
        let tasks = open::generate([2; 32], FOLLOW_BATCH + 2);
        let tokenizer = Tokenizer::bytes();
        let followed = follow(&model, &tokenizer, &competition(), &tasks, 2).unwrap();
        assert_eq!(followed.len(), tasks.len());
        for (task, followed) in tasks.iter().zip(&followed) {
            let alone = answer(&model, &tokenizer, &competition(), &task.prompt, 2).unwrap();
            assert_eq!(alone.text, followed.answer);
        }
    }

    #[test]
    fn the_judge_scores_each_answer_as_the_completion_of_its_prompt() {
        let judge = model(64, 3);
        let tokenizer = Tokenizer::bytes();
        let competition = competition();
        let tasks = open::generate([4; 32], 3);
        // Short prompts, so that an answer can be longer than the context's room.
        let tasks: Vec<OpenTask> = tasks
            .into_iter()
            .map(|task| OpenTask {
                prompt: task.subject[0].clone(),
                ..task
            })
            .collect();
        let long = "word ".repeat(40);
        let answers = ["a lamp, and more.", "", long.as_str()];
        let losses = answer_losses(&judge, &tokenizer, &competition, &tasks, &answers, 2).unwrap();
        assert_eq!(losses.len(), 3);
        // Not judged: nothing to judge.
        assert_eq!(losses[1], None);
        // The same loss as the evaluation of that completion after that prompt.
        for i in [0, 2] {
            let mut input_ids = competition
                .prompt_ids(&tokenizer, &tasks[i].prompt)
                .unwrap();
            let completion_start = input_ids.len();
            input_ids.extend(tokenizer.encode(answers[i]).unwrap());
            // The long answer is judged on what fits the judge's 64 positions.
            input_ids.truncate(64);
            let sample = Sample {
                input_ids,
                completion_start,
            };
            let expected = evaluate(&judge, &[sample], 1).unwrap()[0].loss;
            let got = losses[i].unwrap();
            assert!((got - expected).abs() < 1e-5, "{i}: {got} vs {expected}");
        }
    }

    #[test]
    fn answers_the_judge_finds_above_the_limit_score_zero_and_the_others_keep_theirs() {
        let followed: Vec<Followed> = [0.5, 1.0, 1.0, 0.0, 1.0]
            .into_iter()
            .map(|score| Followed {
                answer: "an answer".into(),
                finished: true,
                tokens: 3,
                score,
            })
            .collect();
        let losses = [Some(2.0), Some(6.0), None, Some(9.0), Some(f64::NAN)];
        assert_eq!(
            judged_scores(&followed, &losses, 5.5),
            vec![0.5, 0.0, 1.0, 0.0, 0.0]
        );
        // At the limit an answer passes.
        assert_eq!(judged_scores(&followed[..1], &[Some(5.5)], 5.5), vec![0.5]);
    }

    #[test]
    fn long_budgets_get_fewer_rows_so_the_cache_stays_bounded() {
        // SmolLM2-135M: 30 layers × (keys, values) × 3 heads × 64 wide × 4 bytes a position.
        let smollm2 = 30 * 2 * 3 * 64 * 4;
        assert_eq!(follow_batch_rows(smollm2, 100 + 96), FOLLOW_BATCH);
        assert_eq!(follow_batch_rows(smollm2, 364), 16);
        assert_eq!(follow_batch_rows(smollm2, 365), 15);
        assert_eq!(follow_batch_rows(smollm2, 100 + 1024), 5);
        for positions in [1, 365, 1124, 8192] {
            let rows = follow_batch_rows(smollm2, positions);
            assert!(rows == 1 || rows * smollm2 * positions <= FOLLOW_CACHE_BYTES);
        }
        // A cache too large for one row still answers, one row at a time.
        assert_eq!(follow_batch_rows(usize::MAX / 2, 4), 1);
        assert_eq!(follow_batch_rows(0, 0), FOLLOW_BATCH);
    }

    #[test]
    fn a_prompt_the_context_cannot_hold_is_an_unfinished_empty_answer() {
        let model = model(16, 5);
        let tasks = open::generate([1; 32], 2);
        let followed = follow(&model, &Tokenizer::bytes(), &competition(), &tasks, 6).unwrap();
        for answer in followed {
            assert_eq!(
                answer,
                Followed {
                    answer: String::new(),
                    finished: false,
                    tokens: 0,
                    score: 0.0,
                }
            );
        }
    }
}
