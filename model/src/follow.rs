//! Instruction following by generation: a model answers each [`OpenTask`] greedily, within a
//! token budget, and the answer is checked against the task's constraints.
//!
//! Greedy decoding makes the answer a function of the model and the prompt alone, so scaling the
//! logits changes nothing here (the argmax is the same), and two validators holding the same
//! model and tasks get the same answers on machines whose logits agree.

use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::competition::Competition;
use crate::generate::{GenerateError, GenerateOptions, generate};
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
    /// The answer's ids could not be decoded.
    #[error("decoding the answer: {0}")]
    Decode(#[from] TokenizerError),
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

/// Answers every task greedily with at most `max_new_tokens` tokens each, prompts put in the
/// competition's format (its chat template) with `tokenizer` (the competition's), and scores
/// each answer. An answer ends at the tokenizer's end-of-sequence token; one that does not end
/// within the budget, or within the model's context, scores 0 (a prompt that fills the context
/// gets an empty, unfinished answer: a model that cannot hold the instruction cannot follow it).
pub fn follow<B: Backend>(
    model: &Llama<B>,
    tokenizer: &Tokenizer,
    competition: &Competition,
    tasks: &[OpenTask],
    max_new_tokens: usize,
) -> Result<Vec<Followed>, FollowError> {
    let eos = tokenizer.eos_id();
    let options = GenerateOptions {
        max_new_tokens,
        temperature: 0.0,
        seed: 0,
        stop_token: eos,
    };
    tasks
        .iter()
        .map(|task| {
            let prompt = competition.prompt_ids(tokenizer, &task.prompt)?;
            if prompt.len() >= model.max_position_embeddings {
                return Ok(Followed {
                    answer: String::new(),
                    finished: false,
                    tokens: 0,
                    score: 0.0,
                });
            }
            let mut ids = generate(model, &prompt, &options)?;
            let tokens = ids.len();
            let finished = eos.is_some() && ids.last().copied() == eos;
            if finished {
                ids.pop();
            }
            let answer = tokenizer.decode(&ids)?;
            let score = task.score(&answer, finished);
            Ok(Followed {
                answer,
                finished,
                tokens,
                score,
            })
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

    #[test]
    fn a_random_model_answers_every_task_within_the_budget_and_is_scored() {
        let config = LlamaConfig {
            max_position_embeddings: 512,
            ..LlamaConfig::tiny()
        };
        let model = config.init_seeded::<Cpu>(&Default::default(), 5);
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
        // Greedy: the same answers again.
        assert_eq!(
            followed,
            follow(&model, &tokenizer, &competition(), &tasks, 6).unwrap()
        );
    }

    #[test]
    fn a_prompt_the_context_cannot_hold_is_an_unfinished_empty_answer() {
        let config = LlamaConfig {
            max_position_embeddings: 16,
            ..LlamaConfig::tiny()
        };
        let model = config.init_seeded::<Cpu>(&Default::default(), 5);
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
