//! Seeded prompt → completion generators with checkable answers.
//!
//! [`generate`] draws `n` [`Example`]s from a 32-byte seed: a [`TaskMix`] of integer weights picks
//! the [`TaskKind`] of each sample, then that kind's generator writes the prompt and its one correct
//! completion. Every draw goes through [`uniform_below`] on a ChaCha20 stream, whose output is fixed
//! by the seed alone, so the same seed yields the same samples on every machine and every build
//! (no floats, no hash-map order, nothing from `rand`'s version-dependent distributions).
//!
//! Prompt formats (completions in parentheses):
//!
//! | kind | prompt | completion |
//! |---|---|---|
//! | arithmetic | `12+7=`, `31-45=`, `6*9=` | `19`, `-14`, `54` |
//! | reverse | `reverse(abcde)=` | `edcba` |
//! | sort | `sort(52913)=`, `sort(pear fig)=` | `12359`, `fig pear` |
//! | copy | `copy(x7kq)=` | `x7kq` |
//! | count | `count(a,banana)=` | `3` |
//! | successor | `next(199)=` | `200` |
//!
//! Those six are the synthetic kinds of the tiny byte-level competition. Chat competitions use
//! tasks people ask of an assistant, put as a conversation (prompt = user message, completion =
//! the assistant's answer):
//!
//! | kind | prompt (one of several templates) | completion |
//! |---|---|---|
//! | word_problem | `Each box holds 12 cards. How many cards are in 4 boxes?` | `12 * 4 = 48. There are 48 cards in 4 boxes.` |
//! | instruction | `Write the number 342 in words.` | `three hundred forty-two` |
//!
//! ([`word_problems`] and [`instructions`] list them all.)
//!
//! [`TaskKind::check`] recomputes the answer from the prompt alone. [`to_sample`] turns an
//! example into the token ids the evaluator scores.

use std::collections::BTreeMap;
use std::fmt;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::eval::Sample;
use crate::tokenizer::{Tokenizer, TokenizerError};

pub mod instructions;
pub mod open;
pub mod template;
pub mod word_problems;
mod words;

/// What can go wrong building a task mix or encoding an example.
#[derive(Debug, Error)]
pub enum TaskError {
    /// Every weight of a task mix is zero: nothing could be drawn.
    #[error("task mix has no positive weight")]
    EmptyMix,
    /// The tokenizer failed on the example's text.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The completion encodes to no tokens, so there is nothing to score.
    #[error("completion {completion:?} encodes to no tokens")]
    EmptyCompletion {
        /// The completion text.
        completion: String,
    },
    /// `max_len` cannot hold one prompt token and one completion token.
    #[error("max_len {max_len} is too short: a sample needs at least 2 tokens")]
    MaxLenTooShort {
        /// The requested maximum sequence length.
        max_len: usize,
    },
    /// The sequence has no prompt token to predict the first completion token from.
    #[error("sample has no prompt token (empty prompt and no BOS token)")]
    NoPromptToken,
    /// A conversation was given to a model without a chat template.
    #[error(
        "a chat sample needs a model with a chat template (tokenizer_config.json's chat_template)"
    )]
    NoChatTemplate,
    /// The chat template could not render or split the conversation.
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
}

/// The kinds of generated task. Names in files and logs are the snake_case variant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `a+b=`, `a-b=` (may be negative) or `a*b=`.
    Arithmetic,
    /// A short lowercase word written backwards.
    Reverse,
    /// Digits sorted ascending, or space-separated words sorted alphabetically.
    Sort,
    /// A short alphanumeric string repeated verbatim.
    Copy,
    /// How many times a letter occurs in a string.
    Count,
    /// The number after `n`.
    Successor,
    /// A maths word problem; the completion works it out and states the result.
    WordProblem,
    /// An instruction with a verifiable constraint and one correct answer (IFEval-style).
    Instruction,
}

/// Lowercase letters, the alphabet of reversal strings.
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
/// Letters and digits, the alphabet of copy strings.
const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// The small alphabet of counting strings, so that counts above one are common.
const COUNT_ALPHABET: &[u8] = b"abcd";
/// Words the word-sorting task draws from.
const WORDS: &[&str] = &[
    "apple", "bird", "cake", "dog", "egg", "fig", "goat", "hat", "ink", "jam", "kite", "lamp",
    "moon", "nut", "owl", "pear", "quiz", "rose", "sun", "tree", "urn", "vine", "wolf", "yak",
    "zoo", "ant", "bee", "cat", "day", "elk", "fox", "gum",
];

impl TaskKind {
    /// Every kind, in their canonical order.
    pub const ALL: [TaskKind; 8] = [
        TaskKind::Arithmetic,
        TaskKind::Reverse,
        TaskKind::Sort,
        TaskKind::Copy,
        TaskKind::Count,
        TaskKind::Successor,
        TaskKind::WordProblem,
        TaskKind::Instruction,
    ];

    /// The synthetic kinds of the byte-level competition (short prompts over tiny answer spaces).
    pub const SYNTHETIC: [TaskKind; 6] = [
        TaskKind::Arithmetic,
        TaskKind::Reverse,
        TaskKind::Sort,
        TaskKind::Copy,
        TaskKind::Count,
        TaskKind::Successor,
    ];

    /// The snake_case name used in competition files and logs.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Arithmetic => "arithmetic",
            TaskKind::Reverse => "reverse",
            TaskKind::Sort => "sort",
            TaskKind::Copy => "copy",
            TaskKind::Count => "count",
            TaskKind::Successor => "successor",
            TaskKind::WordProblem => "word_problem",
            TaskKind::Instruction => "instruction",
        }
    }

    /// The correct completion of `prompt`, or `None` when the prompt is not of this kind.
    pub fn solve(self, prompt: &str) -> Option<String> {
        match self {
            TaskKind::Arithmetic => solve_arithmetic(prompt),
            TaskKind::Reverse => call_arg(prompt, "reverse").map(|s| s.chars().rev().collect()),
            TaskKind::Sort => call_arg(prompt, "sort").map(sort_answer),
            TaskKind::Copy => call_arg(prompt, "copy").map(str::to_owned),
            TaskKind::Count => {
                let (needle, haystack) = call_arg(prompt, "count")?.split_once(',')?;
                let mut needle_chars = needle.chars();
                let letter = needle_chars.next()?;
                if needle_chars.next().is_some() {
                    return None;
                }
                Some(
                    haystack
                        .chars()
                        .filter(|&c| c == letter)
                        .count()
                        .to_string(),
                )
            }
            TaskKind::Successor => {
                let n = parse_unsigned(call_arg(prompt, "next")?)?;
                Some(n.checked_add(1)?.to_string())
            }
            TaskKind::WordProblem => word_problems::solve(prompt),
            TaskKind::Instruction => instructions::solve(prompt),
        }
    }

    /// Whether `answer` (surrounding whitespace ignored) is a correct answer to `prompt`: the
    /// completion itself or, where other wordings are as right, a word problem's answer whose
    /// first `=` is followed by the result (`14 * 14 = 196. 196 stamps …`) and an instruction's
    /// JSON with the same value (any spacing or line breaks).
    pub fn check(self, prompt: &str, answer: &str) -> bool {
        let Some(expected) = self.solve(prompt) else {
            return false;
        };
        let answer = answer.trim();
        expected == answer
            || match self {
                TaskKind::WordProblem => word_problems::states_result(&expected, answer),
                TaskKind::Instruction => instructions::same_json(&expected, answer),
                _ => false,
            }
    }

    /// One example of this kind drawn from `rng`.
    fn draw(self, rng: &mut dyn RngCore) -> Example {
        let (prompt, completion) = match self {
            TaskKind::WordProblem => word_problems::draw(rng),
            TaskKind::Instruction => instructions::draw(rng),
            synthetic => {
                let prompt = synthetic.draw_synthetic(rng);
                let completion = synthetic.solve(&prompt).unwrap_or_default();
                (prompt, completion)
            }
        };
        Example {
            prompt,
            completion,
            kind: self,
        }
    }

    /// The prompt of one synthetic example (its completion is [`TaskKind::solve`]'s).
    fn draw_synthetic(self, rng: &mut dyn RngCore) -> String {
        match self {
            TaskKind::Arithmetic => {
                let (op, max) = [('+', 999), ('-', 999), ('*', 99)][index(rng, 3)];
                let a = uniform_below(rng, max + 1);
                let b = uniform_below(rng, max + 1);
                format!("{a}{op}{b}=")
            }
            TaskKind::Reverse => format!("reverse({})=", random_string(rng, LETTERS, 3, 10)),
            TaskKind::Sort => {
                let arg = if uniform_below(rng, 2) == 0 {
                    random_string(rng, b"0123456789", 3, 10)
                } else {
                    let count = 2 + index(rng, 4);
                    let words: Vec<&str> =
                        (0..count).map(|_| WORDS[index(rng, WORDS.len())]).collect();
                    words.join(" ")
                };
                format!("sort({arg})=")
            }
            TaskKind::Copy => format!("copy({})=", random_string(rng, ALPHANUMERIC, 3, 12)),
            TaskKind::Count => {
                let letter = char::from(COUNT_ALPHABET[index(rng, COUNT_ALPHABET.len())]);
                let haystack = random_string(rng, COUNT_ALPHABET, 5, 12);
                format!("count({letter},{haystack})=")
            }
            TaskKind::Successor => format!("next({})=", uniform_below(rng, 10_000)),
            TaskKind::WordProblem | TaskKind::Instruction => String::new(),
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One prompt with its correct completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    /// The text the model is given.
    pub prompt: String,
    /// The one correct continuation; its tokens are the ones scored.
    pub completion: String,
    /// The generator that wrote it, which also knows how to check answers.
    pub kind: TaskKind,
}

/// Integer weights deciding which [`TaskKind`] each generated sample is.
///
/// Written in a competition file as a table of kind name → weight, e.g. `arithmetic = 3`.
/// Kinds left out or given weight 0 are never drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BTreeMap<TaskKind, u32>", into = "BTreeMap<TaskKind, u32>")]
pub struct TaskMix {
    /// Positive weights only, in [`TaskKind`] order (a `BTreeMap`, so iteration is deterministic).
    weights: BTreeMap<TaskKind, u32>,
    /// Sum of the weights; never zero.
    total: u64,
}

impl TaskMix {
    /// A mix from weights; zero weights are dropped, and at least one must be positive.
    pub fn new(weights: BTreeMap<TaskKind, u32>) -> Result<Self, TaskError> {
        let weights: BTreeMap<TaskKind, u32> =
            weights.into_iter().filter(|&(_, w)| w > 0).collect();
        let total = weights.values().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return Err(TaskError::EmptyMix);
        }
        Ok(TaskMix { weights, total })
    }

    /// Every synthetic kind ([`TaskKind::SYNTHETIC`]) with weight 1.
    pub fn uniform() -> Self {
        let weights: BTreeMap<TaskKind, u32> =
            TaskKind::SYNTHETIC.iter().map(|&k| (k, 1)).collect();
        TaskMix {
            total: weights.len() as u64,
            weights,
        }
    }

    /// Only `kind`.
    pub fn only(kind: TaskKind) -> Self {
        TaskMix {
            weights: BTreeMap::from([(kind, 1)]),
            total: 1,
        }
    }

    /// The weight of `kind` (0 when it is never drawn).
    pub fn weight(&self, kind: TaskKind) -> u32 {
        self.weights.get(&kind).copied().unwrap_or(0)
    }

    /// The positive weights, in [`TaskKind`] order.
    pub fn weights(&self) -> &BTreeMap<TaskKind, u32> {
        &self.weights
    }

    /// Draws a kind with probability weight / total.
    fn pick<R: RngCore + ?Sized>(&self, rng: &mut R) -> TaskKind {
        let mut ticket = uniform_below(rng, self.total);
        for (&kind, &weight) in &self.weights {
            if ticket < u64::from(weight) {
                return kind;
            }
            ticket -= u64::from(weight);
        }
        // Unreachable: ticket < total = sum of weights. Fall back to the last kind to stay total.
        self.weights
            .keys()
            .next_back()
            .copied()
            .unwrap_or(TaskKind::Copy)
    }
}

impl TryFrom<BTreeMap<TaskKind, u32>> for TaskMix {
    type Error = TaskError;

    fn try_from(weights: BTreeMap<TaskKind, u32>) -> Result<Self, Self::Error> {
        TaskMix::new(weights)
    }
}

impl From<TaskMix> for BTreeMap<TaskKind, u32> {
    fn from(mix: TaskMix) -> Self {
        mix.weights
    }
}

/// The ChaCha20 stream every seeded draw in this crate starts from.
pub fn seeded_rng(seed: [u8; 32]) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(seed)
}

/// `n` examples drawn from `seed`: the same seed and mix give the same examples everywhere, and
/// the first `k` examples of `generate(seed, mix, n)` are `generate(seed, mix, k)`.
pub fn generate(seed: [u8; 32], mix: &TaskMix, n: usize) -> Vec<Example> {
    let mut rng = seeded_rng(seed);
    (0..n)
        .map(|_| {
            let kind = mix.pick(&mut rng);
            kind.draw(&mut rng)
        })
        .collect()
}

/// The evaluation sample of `example`: [`encode_example`]'s ids and completion start.
pub fn to_sample(
    tokenizer: &Tokenizer,
    example: &Example,
    max_len: usize,
) -> Result<Sample, TaskError> {
    let (input_ids, completion_start) = encode_example(tokenizer, example, max_len)?;
    Ok(Sample {
        input_ids,
        completion_start,
    })
}

/// Token ids of one example and where its completion starts.
///
/// The sequence is `BOS? + prompt + completion + EOS?` (special tokens when the tokenizer has them);
/// the returned index is the position of the first completion token. When the sequence is longer
/// than `max_len`, prompt tokens are dropped from the front (keeping the first token, the BOS),
/// then completion tokens from the end (the EOS first), so at least one prompt and one completion
/// token always remain.
pub fn encode_example(
    tokenizer: &Tokenizer,
    example: &Example,
    max_len: usize,
) -> Result<(Vec<u32>, usize), TaskError> {
    encode_pair(tokenizer, &example.prompt, &example.completion, max_len)
}

/// [`encode_example`] for a bare prompt and completion (e.g. a JSONL record).
pub fn encode_pair(
    tokenizer: &Tokenizer,
    prompt: &str,
    completion: &str,
    max_len: usize,
) -> Result<(Vec<u32>, usize), TaskError> {
    let mut prefix: Vec<u32> = tokenizer.bos_id().into_iter().collect();
    prefix.extend(tokenizer.encode(prompt)?);
    let mut completion_ids = tokenizer.encode(completion)?;
    if completion_ids.is_empty() {
        return Err(TaskError::EmptyCompletion {
            completion: completion.to_owned(),
        });
    }
    completion_ids.extend(tokenizer.eos_id());
    fit(prefix, completion_ids, max_len)
}

/// Token ids of a conversation whose last message is the assistant's answer, rendered with the
/// tokenizer's chat template ([`crate::chat::ChatTemplate::split`]): the prompt is the rendered
/// context with the generation prompt, the completion the answer and its end-of-turn token. The
/// template writes every special token itself, so no BOS or EOS is added; truncation is
/// [`encode_example`]'s.
pub fn encode_chat(
    tokenizer: &Tokenizer,
    messages: &[crate::chat::Message],
    max_len: usize,
) -> Result<(Vec<u32>, usize), TaskError> {
    let template = tokenizer.chat_template().ok_or(TaskError::NoChatTemplate)?;
    let (prompt, completion) = template.split(messages)?;
    let prefix = tokenizer.encode(&prompt)?;
    let completion_ids = tokenizer.encode(&completion)?;
    if completion_ids.is_empty() {
        return Err(TaskError::EmptyCompletion { completion });
    }
    fit(prefix, completion_ids, max_len)
}

/// Joins `prefix` and `completion` into at most `max_len` tokens (see [`encode_example`]).
pub(crate) fn fit(
    mut prefix: Vec<u32>,
    mut completion: Vec<u32>,
    max_len: usize,
) -> Result<(Vec<u32>, usize), TaskError> {
    if max_len < 2 {
        return Err(TaskError::MaxLenTooShort { max_len });
    }
    if prefix.is_empty() {
        return Err(TaskError::NoPromptToken);
    }
    let excess = (prefix.len() + completion.len()).saturating_sub(max_len);
    let from_prompt = excess.min(prefix.len() - 1);
    prefix.drain(1..1 + from_prompt);
    completion.truncate(max_len - prefix.len());
    let start = prefix.len();
    prefix.extend(completion);
    Ok((prefix, start))
}

/// A uniform integer in `0..n` (0 when `n` is 0) from raw `next_u64` draws by rejection, so the
/// result depends only on the generator's stream, not on `rand`'s distribution code.
pub fn uniform_below<R: RngCore + ?Sized>(rng: &mut R, n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // Accept draws below the largest multiple of n that fits; that range splits evenly.
    let accept_below = u64::MAX - u64::MAX % n;
    loop {
        let draw = rng.next_u64();
        if draw < accept_below {
            return draw % n;
        }
    }
}

/// A uniform index into a collection of `len` items.
fn index<R: RngCore + ?Sized>(rng: &mut R, len: usize) -> usize {
    // usize fits in u64 on every supported target, and the result is below len.
    uniform_below(rng, len as u64) as usize
}

/// Shuffles `items` in place (Fisher–Yates on [`uniform_below`]).
pub fn shuffle<T, R: RngCore + ?Sized>(items: &mut [T], rng: &mut R) {
    for i in (1..items.len()).rev() {
        let j = index(rng, i + 1);
        items.swap(i, j);
    }
}

/// A string of `min..=max` characters drawn from `alphabet`.
fn random_string<R: RngCore + ?Sized>(
    rng: &mut R,
    alphabet: &[u8],
    min: usize,
    max: usize,
) -> String {
    let len = min + index(rng, max - min + 1);
    (0..len)
        .map(|_| char::from(alphabet[index(rng, alphabet.len())]))
        .collect()
}

/// The argument of `name(arg)=`.
fn call_arg<'p>(prompt: &'p str, name: &str) -> Option<&'p str> {
    prompt
        .strip_prefix(name)?
        .strip_prefix('(')?
        .strip_suffix(")=")
}

/// Digits only (no sign, no spaces), as a number.
fn parse_unsigned(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `a op b=` with unsigned decimal `a`, `b` and op one of `+ - *`.
fn solve_arithmetic(prompt: &str) -> Option<String> {
    let body = prompt.strip_suffix('=')?;
    let op_at = body.find(['+', '-', '*'])?;
    let a = i64::try_from(parse_unsigned(&body[..op_at])?).ok()?;
    let b = i64::try_from(parse_unsigned(&body[op_at + 1..])?).ok()?;
    let value = match &body[op_at..op_at + 1] {
        "+" => a.checked_add(b)?,
        "-" => a.checked_sub(b)?,
        _ => a.checked_mul(b)?,
    };
    Some(value.to_string())
}

/// Words (if the argument has spaces) or characters, sorted ascending.
fn sort_answer(arg: &str) -> String {
    if arg.contains(' ') {
        let mut words: Vec<&str> = arg.split(' ').collect();
        words.sort_unstable();
        words.join(" ")
    } else {
        let mut chars: Vec<char> = arg.chars().collect();
        chars.sort_unstable();
        chars.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seed(byte: u8) -> [u8; 32] {
        [byte; 32]
    }

    #[test]
    fn solves_each_prompt_format() {
        let cases = [
            (TaskKind::Arithmetic, "12+7=", "19"),
            (TaskKind::Arithmetic, "31-45=", "-14"),
            (TaskKind::Arithmetic, "6*9=", "54"),
            (TaskKind::Reverse, "reverse(abcde)=", "edcba"),
            (TaskKind::Sort, "sort(52913)=", "12359"),
            (TaskKind::Sort, "sort(pear fig apple)=", "apple fig pear"),
            (TaskKind::Copy, "copy(x7kq)=", "x7kq"),
            (TaskKind::Count, "count(a,banana)=", "3"),
            (TaskKind::Count, "count(z,banana)=", "0"),
            (TaskKind::Successor, "next(199)=", "200"),
        ];
        for (kind, prompt, answer) in cases {
            assert_eq!(
                kind.solve(prompt).as_deref(),
                Some(answer),
                "{kind} {prompt}"
            );
            assert!(kind.check(prompt, answer));
            assert!(
                kind.check(prompt, &format!(" {answer}\n")),
                "whitespace is ignored"
            );
        }
    }

    #[test]
    fn check_rejects_wrong_answers_and_foreign_prompts() {
        assert!(!TaskKind::Arithmetic.check("12+7=", "18"));
        assert!(!TaskKind::Arithmetic.check("12+-7=", "5"));
        assert!(!TaskKind::Arithmetic.check("12+7", "19"));
        assert!(!TaskKind::Reverse.check("copy(abc)=", "abc"));
        assert!(!TaskKind::Count.check("count(ab,banana)=", "0"));
        assert!(!TaskKind::Successor.check("next(-1)=", "0"));
        assert!(!TaskKind::Sort.check("sort(321)=", "321"));
    }

    #[test]
    fn same_seed_gives_same_examples_and_other_seeds_differ() {
        let mix = TaskMix::uniform();
        assert_eq!(generate(seed(1), &mix, 50), generate(seed(1), &mix, 50));
        assert_ne!(generate(seed(1), &mix, 50), generate(seed(2), &mix, 50));
    }

    #[test]
    fn generation_is_pinned_to_the_chacha20_stream() {
        // Golden values: if these change, every validator's samples change. Update only on purpose.
        // The first draw is the first 8 bytes of the RFC 7539 all-zero ChaCha20 keystream,
        // 0x903df1a0ade0b876, which is 0 mod 6: the first kind is `arithmetic`.
        assert_eq!(
            pairs(&generate([0; 32], &TaskMix::uniform(), 4)),
            GOLDEN_ZERO_SEED
        );
    }

    /// Each example as `(prompt, completion)`.
    fn pairs(examples: &[Example]) -> Vec<(&str, &str)> {
        examples
            .iter()
            .map(|e| (e.prompt.as_str(), e.completion.as_str()))
            .collect()
    }

    const GOLDEN_ZERO_SEED: [(&str, &str); 4] = [
        ("77*40=", "3080"),
        ("count(d,ddadcbb)=", "3"),
        ("copy(foku3)=", "foku3"),
        ("439-91=", "348"),
    ];

    #[test]
    fn chat_generation_is_pinned_too() {
        let mix =
            TaskMix::new([(TaskKind::WordProblem, 1), (TaskKind::Instruction, 1)].into()).unwrap();
        assert_eq!(pairs(&generate([0; 32], &mix, 3)), GOLDEN_CHAT_ZERO_SEED);
    }

    const GOLDEN_CHAT_ZERO_SEED: [(&str, &str); 3] = [
        (
            "Carla buys 7 packs of candles with 3 in each pack and uses 12 of them. How many \
             candles are left?",
            "7 * 3 - 12 = 9. 9 candles are left.",
        ),
        (
            "Sort these words alphabetically and answer with them separated by commas: ladder, \
             fence, helmet",
            "fence, helmet, ladder",
        ),
        (
            "Rewrite this sentence in capital letters only: Jonas noticed the tall boat at the \
             market.",
            "JONAS NOTICED THE TALL BOAT AT THE MARKET.",
        ),
    ];

    #[test]
    fn shorter_runs_are_prefixes_of_longer_ones() {
        let mix = TaskMix::uniform();
        let long = generate(seed(3), &mix, 40);
        assert_eq!(generate(seed(3), &mix, 15), long[..15].to_vec());
    }

    #[test]
    fn mix_draws_kinds_in_proportion_to_weights() {
        let mix = TaskMix::new(BTreeMap::from([
            (TaskKind::Arithmetic, 3),
            (TaskKind::Copy, 1),
            (TaskKind::Sort, 0),
        ]))
        .unwrap();
        let examples = generate(seed(4), &mix, 4000);
        let arithmetic = examples
            .iter()
            .filter(|e| e.kind == TaskKind::Arithmetic)
            .count();
        let copy = examples.iter().filter(|e| e.kind == TaskKind::Copy).count();
        assert_eq!(arithmetic + copy, 4000, "zero-weight kinds are never drawn");
        assert!(
            (2850..=3150).contains(&arithmetic),
            "{arithmetic} of 4000 at weight 3/4"
        );
    }

    #[test]
    fn mix_with_only_zero_weights_is_rejected() {
        let err = TaskMix::new(BTreeMap::from([(TaskKind::Copy, 0)])).unwrap_err();
        assert!(matches!(err, TaskError::EmptyMix));
    }

    #[test]
    fn mix_reads_from_a_table_of_names() {
        let mix: TaskMix = toml::from_str("arithmetic = 2\nsuccessor = 1\n").unwrap();
        assert_eq!(mix.weight(TaskKind::Arithmetic), 2);
        assert_eq!(mix.weight(TaskKind::Reverse), 0);
        assert!(toml::from_str::<TaskMix>("copy = 0\n").is_err());
        assert!(toml::from_str::<TaskMix>("juggling = 1\n").is_err());
    }

    #[test]
    fn a_single_kind_mix_draws_only_that_kind() {
        let examples = generate(seed(8), &TaskMix::only(TaskKind::Reverse), 20);
        assert!(examples.iter().all(|e| e.kind == TaskKind::Reverse));
    }

    #[test]
    fn examples_serialize_with_snake_case_kinds() {
        let example = Example {
            prompt: "next(1)=".into(),
            completion: "2".into(),
            kind: TaskKind::Successor,
        };
        let json = serde_json::to_string(&example).unwrap();
        assert_eq!(
            json,
            r#"{"prompt":"next(1)=","completion":"2","kind":"successor"}"#
        );
    }

    #[test]
    fn every_kind_appears_under_the_uniform_mix() {
        let examples = generate(seed(5), &TaskMix::uniform(), 300);
        for kind in TaskKind::SYNTHETIC {
            assert!(examples.iter().any(|e| e.kind == kind), "{kind} missing");
        }
    }

    #[test]
    fn encodes_bos_prompt_completion_eos_with_the_completion_start() {
        let example = Example {
            prompt: "1+1=".into(),
            completion: "2".into(),
            kind: TaskKind::Arithmetic,
        };
        let (ids, start) = encode_example(&Tokenizer::bytes(), &example, 64).unwrap();
        assert_eq!(
            ids,
            vec![
                256,
                b'1'.into(),
                b'+'.into(),
                b'1'.into(),
                b'='.into(),
                b'2'.into(),
                257
            ]
        );
        assert_eq!(start, 5);
    }

    #[test]
    fn to_sample_carries_the_ids_and_completion_start() {
        let example = Example {
            prompt: "next(9)=".into(),
            completion: "10".into(),
            kind: TaskKind::Successor,
        };
        let sample = to_sample(&Tokenizer::bytes(), &example, 64).unwrap();
        assert_eq!(
            (sample.input_ids, sample.completion_start),
            encode_example(&Tokenizer::bytes(), &example, 64).unwrap()
        );
    }

    #[test]
    fn long_sequences_lose_old_prompt_tokens_then_the_completion_tail() {
        let tok = Tokenizer::bytes();
        let (ids, start) = encode_pair(&tok, "abcdef", "xyz", 6).unwrap();
        assert_eq!(
            ids,
            vec![256, b'f'.into(), b'x'.into(), b'y'.into(), b'z'.into(), 257]
        );
        assert_eq!(start, 2);
        let (ids, start) = encode_pair(&tok, "abcdef", "xyz", 3).unwrap();
        assert_eq!(ids, vec![256, b'x'.into(), b'y'.into()]);
        assert_eq!(start, 1);
        assert!(matches!(
            encode_pair(&tok, "a", "b", 1),
            Err(TaskError::MaxLenTooShort { max_len: 1 })
        ));
        assert!(matches!(
            encode_pair(&tok, "a", "", 8),
            Err(TaskError::EmptyCompletion { .. })
        ));
    }

    #[test]
    fn uniform_below_stays_in_range() {
        let mut rng = seeded_rng(seed(6));
        for n in [1, 2, 3, 7, 1000, u64::MAX] {
            for _ in 0..100 {
                assert!(uniform_below(&mut rng, n) < n);
            }
        }
        assert_eq!(uniform_below(&mut rng, 0), 0);
    }

    proptest! {
        #[test]
        fn generated_completions_pass_their_checker(bytes in any::<[u8; 32]>()) {
            for example in generate(bytes, &TaskMix::uniform(), 30) {
                prop_assert!(example.kind.check(&example.prompt, &example.completion), "{:?}", example);
                prop_assert!(!example.completion.is_empty());
            }
        }

        #[test]
        fn chat_kinds_read_back_their_completions(bytes in any::<[u8; 32]>()) {
            let mix = TaskMix::new([(TaskKind::WordProblem, 1), (TaskKind::Instruction, 1)].into()).unwrap();
            for example in generate(bytes, &mix, 30) {
                prop_assert!(example.kind.check(&example.prompt, &example.completion), "{:?}", example);
                prop_assert!(!example.completion.is_empty());
                let others = TaskKind::ALL.iter().filter(|&&k| k != example.kind);
                for other in others {
                    prop_assert!(other.solve(&example.prompt).is_none(), "{other} solves {:?}", example);
                }
            }
        }

        #[test]
        fn encoded_samples_fit_and_keep_a_completion_token(
            bytes in any::<[u8; 32]>(), max_len in 2usize..40,
        ) {
            for example in generate(bytes, &TaskMix::uniform(), 10) {
                let (ids, start) = encode_example(&Tokenizer::bytes(), &example, max_len).unwrap();
                prop_assert!(ids.len() <= max_len);
                prop_assert!(start >= 1 && start < ids.len());
                prop_assert_eq!(ids[0], crate::tokenizer::BOS);
            }
        }

        #[test]
        fn shuffle_is_a_permutation(bytes in any::<[u8; 32]>(), len in 0usize..50) {
            let mut items: Vec<usize> = (0..len).collect();
            shuffle(&mut items, &mut seeded_rng(bytes));
            items.sort_unstable();
            prop_assert_eq!(items, (0..len).collect::<Vec<_>>());
        }
    }
}
