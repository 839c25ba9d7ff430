//! The prompts of the label track: open-ended requests a person can judge answers to, never a
//! generator's task a program can solve.
//!
//! The pool is the [starter set](STARTER_JSONL) written for this project (`validator/prompts/
//! starter.jsonl`) plus the operator's own JSONL files (`--label-prompts FILE`, repeatable), one
//! object per line with a `"prompt"` string (other fields are ignored, so datasets with ids or
//! sources load as they are). Each epoch the validator draws its prompts from the pool with the
//! track seed (which holds its secret), its top models answer them, and the pairs are built from
//! those answers ([`super::batch`]): the prompts may be public, the answers are fresh samples
//! nobody can look up.

use std::collections::BTreeSet;
use std::path::Path;

use subnet_model::tasks::{seeded_rng, shuffle};

/// The starter set, one `{"prompt": …}` per line.
pub const STARTER_JSONL: &str = include_str!("../../../prompts/starter.jsonl");

/// Longest prompt kept, in characters: a labeler reads it, and a model must answer it within its
/// context.
pub const MAX_PROMPT_CHARS: usize = 1000;

/// Largest prompt file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a prompt file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Over [`MAX_FILE_BYTES`].
    #[error("{path}: {bytes} bytes, more than the {max} a prompt file may have")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A line is not a JSON object with a non-empty `prompt` string of at most
    /// [`MAX_PROMPT_CHARS`] characters.
    #[error("{source_name} line {line}: {reason} (each line is {{\"prompt\": \"...\"}})")]
    Line {
        /// The file (or `starter`).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// No prompt at all.
    #[error("{0}: no prompt in it")]
    Empty(String),
}

/// The prompts the label track draws from: distinct, in the order first read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPool {
    prompts: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Line {
    prompt: String,
}

impl PromptPool {
    /// The starter set alone.
    pub fn starter() -> Self {
        let mut pool = Self {
            prompts: Vec::new(),
        };
        pool.add_jsonl("starter", STARTER_JSONL)
            .expect("the starter set is valid (tested)");
        pool
    }

    /// The starter set and the prompts of `files`, in that order.
    pub fn with_files(files: &[impl AsRef<Path>]) -> Result<Self, PromptError> {
        let mut pool = Self::starter();
        for file in files {
            pool.add_file(file.as_ref())?;
        }
        Ok(pool)
    }

    /// Adds the prompts of a JSONL file.
    pub fn add_file(&mut self, path: &Path) -> Result<(), PromptError> {
        let name = path.display().to_string();
        let read_error = |source| PromptError::Read {
            path: name.clone(),
            source,
        };
        let bytes = std::fs::metadata(path).map_err(read_error)?.len();
        if bytes > MAX_FILE_BYTES {
            return Err(PromptError::TooLarge {
                path: name,
                bytes,
                max: MAX_FILE_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let added = self.add_jsonl(&name, &text)?;
        if added == 0 && !text.lines().any(|l| !l.trim().is_empty()) {
            return Err(PromptError::Empty(name));
        }
        Ok(())
    }

    /// Adds the prompts of JSONL `text` (blank lines skipped); returns how many were new.
    pub fn add_jsonl(&mut self, source_name: &str, text: &str) -> Result<usize, PromptError> {
        let mut seen: BTreeSet<String> = self.prompts.iter().cloned().collect();
        let mut added = 0;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let error = |reason: String| PromptError::Line {
                source_name: source_name.to_owned(),
                line: index + 1,
                reason,
            };
            let parsed: Line = serde_json::from_str(line).map_err(|e| error(e.to_string()))?;
            let prompt = parsed.prompt.trim().to_owned();
            if prompt.is_empty() {
                return Err(error("the prompt is empty".into()));
            }
            let chars = prompt.chars().count();
            if chars > MAX_PROMPT_CHARS {
                return Err(error(format!(
                    "the prompt has {chars} characters, more than {MAX_PROMPT_CHARS}"
                )));
            }
            if prompt.chars().any(|c| c.is_control() && c != '\n') {
                return Err(error("the prompt has control characters".into()));
            }
            if seen.insert(prompt.clone()) {
                self.prompts.push(prompt);
                added += 1;
            }
        }
        Ok(added)
    }

    /// How many prompts.
    pub fn len(&self) -> usize {
        self.prompts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.prompts.is_empty()
    }

    /// All prompts.
    pub fn prompts(&self) -> &[String] {
        &self.prompts
    }

    /// `n` distinct prompts drawn with `seed` (all of them, shuffled, when the pool is smaller).
    pub fn draw(&self, seed: [u8; 32], n: usize) -> Vec<String> {
        let mut rng = seeded_rng(seed);
        let mut all = self.prompts.clone();
        shuffle(&mut all, &mut rng);
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_set_is_open_ended_prompts_no_generator_task() {
        let pool = PromptPool::starter();
        assert!(pool.len() >= 60, "{}", pool.len());
        for prompt in pool.prompts() {
            assert!(
                subnet_model::tasks::TaskKind::ALL
                    .iter()
                    .all(|k| k.solve(prompt).is_none()),
                "{prompt:?} is a generator task"
            );
            assert!(prompt.chars().count() <= 200, "{prompt:?} is long");
        }
    }

    #[test]
    fn draws_are_seeded_distinct_and_bounded_by_the_pool() {
        let pool = PromptPool::starter();
        let a = pool.draw([1; 32], 10);
        assert_eq!(a, pool.draw([1; 32], 10));
        assert_ne!(a, pool.draw([2; 32], 10));
        assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 10);
        assert_eq!(pool.draw([1; 32], 10_000).len(), pool.len());
    }

    #[test]
    fn operator_files_add_prompts_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("mine.jsonl");
        std::fs::write(
            &good,
            "{\"prompt\": \"Why is the sea salty?\", \"id\": 7}\n\n\
             {\"prompt\": \"Why do cats purr?\"}\n",
        )
        .expect("write");
        let pool = PromptPool::with_files(&[&good]).expect("loads");
        assert_eq!(
            pool.len(),
            PromptPool::starter().len() + 1,
            "the starter prompt is not added twice"
        );
        assert!(
            pool.prompts()
                .contains(&"Why is the sea salty?".to_string())
        );

        for (text, needle) in [
            ("{\"prompt\": \"ok\"}\nnot json\n", "line 2"),
            (
                "{\"text\": \"no prompt field\"}\n",
                "missing field `prompt`",
            ),
            ("{\"prompt\": \"   \"}\n", "empty"),
            ("\n\n", "no prompt"),
        ] {
            let bad = dir.path().join("bad.jsonl");
            std::fs::write(&bad, text).expect("write");
            let error = PromptPool::with_files(&[&bad]).expect_err(text).to_string();
            assert!(error.contains(needle), "{error}");
            assert!(error.contains("bad.jsonl"), "{error}");
        }
        let long = dir.path().join("long.jsonl");
        let prompt = "x".repeat(MAX_PROMPT_CHARS + 1);
        std::fs::write(&long, format!("{{\"prompt\": \"{prompt}\"}}\n")).expect("write");
        assert!(
            PromptPool::with_files(&[&long])
                .expect_err("too long")
                .to_string()
                .contains("more than 1000")
        );
        let missing = PromptPool::with_files(&[dir.path().join("missing.jsonl")])
            .expect_err("missing")
            .to_string();
        assert!(missing.contains("missing.jsonl"), "{missing}");
    }
}
