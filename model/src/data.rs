//! JSONL datasets: `{"prompt", "completion"}`, `{"messages": [{"role", "content"}, ...]}` or
//! `{"input_ids", "completion_start"}` per line.
//!
//! [`Dataset::load`] reads a file under [`Limits`] (file size, line length, record count), and
//! every error names the 1-based line it found. Blank lines are skipped; unknown fields are refused
//! so a typo never silently drops a field. [`Dataset::sample`] picks records by seed with the same
//! ChaCha20 draws as the task generators, so every validator picks the same lines.
//!
//! Preference files (`validator export-preferences`, `{"prompt", "chosen", "rejected", ...}` per
//! line) load with [`load_preferences`] under the same limits, for DPO fine-tuning.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::chat::Message;
use crate::eval::Sample;
use crate::tasks::{TaskError, encode_chat, encode_pair, fit, seeded_rng, uniform_below};
use crate::tokenizer::Tokenizer;

/// What can go wrong reading a dataset.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("reading dataset {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`Limits::max_file_bytes`].
    #[error("dataset is {bytes} bytes, more than the limit of {max}")]
    FileTooLarge {
        /// Size found (at least; reading stops past the limit).
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// A line is longer than [`Limits::max_line_bytes`].
    #[error("line {line}: {bytes} bytes, more than the limit of {max}")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The line's length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// More records than [`Limits::max_records`].
    #[error("line {line}: more than {max} records")]
    TooManyRecords {
        /// 1-based line number of the first record over the limit.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// A line is not UTF-8.
    #[error("line {line}: not valid UTF-8")]
    InvalidUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A line is not a JSON object of the known fields.
    #[error("line {line}: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's message, with the column.
        source: serde_json::Error,
    },
    /// A line parses but is not a usable record.
    #[error("line {line}: {reason}")]
    Shape {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file is not the one the competition pinned.
    #[error("dataset {path} has sha256 {actual}, expected {expected}")]
    HashMismatch {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The file's hash.
        actual: String,
    },
    /// The file has no records.
    #[error("dataset has no records")]
    Empty,
}

/// Bounds on what a dataset file may contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file, in bytes.
    pub max_file_bytes: u64,
    /// Longest line, in bytes (without its newline).
    pub max_line_bytes: usize,
    /// Most records.
    pub max_records: usize,
}

impl Default for Limits {
    /// 256 MiB files, 1 MiB lines, a million records.
    fn default() -> Self {
        Limits {
            max_file_bytes: 256 << 20,
            max_line_bytes: 1 << 20,
            max_records: 1_000_000,
        }
    }
}

/// One dataset line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Text, tokenized by the model's tokenizer at evaluation time.
    Text {
        /// The text the model is given.
        prompt: String,
        /// The continuation whose tokens are scored; not empty.
        completion: String,
    },
    /// A conversation, rendered with the model's chat template; the last message is the
    /// assistant's answer that is scored ([`crate::tasks::encode_chat`]).
    Chat {
        /// The messages, the answer last.
        messages: Vec<Message>,
    },
    /// Token ids already, for a known tokenizer.
    Tokens {
        /// Prompt then completion ids.
        input_ids: Vec<u32>,
        /// Index of the first completion id; in `1..input_ids.len()`.
        completion_start: usize,
    },
}

impl Record {
    /// The evaluation sample of this record: text goes through [`encode_pair`] (BOS, EOS and
    /// truncation included); token records are used as given, truncated the same way.
    pub fn to_sample(&self, tokenizer: &Tokenizer, max_len: usize) -> Result<Sample, TaskError> {
        let (input_ids, completion_start) = match self {
            Record::Text { prompt, completion } => {
                encode_pair(tokenizer, prompt, completion, max_len)?
            }
            Record::Chat { messages } => encode_chat(tokenizer, messages, max_len)?,
            Record::Tokens {
                input_ids,
                completion_start,
            } => {
                let split = (*completion_start).min(input_ids.len());
                fit(
                    input_ids[..split].to_vec(),
                    input_ids[split..].to_vec(),
                    max_len,
                )?
            }
        };
        Ok(Sample {
            input_ids,
            completion_start,
        })
    }
}

/// A line as written, before deciding which record it is.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLine {
    messages: Option<Vec<Message>>,
    prompt: Option<String>,
    completion: Option<String>,
    input_ids: Option<Vec<u32>>,
    completion_start: Option<usize>,
}

/// A parsed dataset; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Records in file order.
    records: Vec<Record>,
}

impl Dataset {
    /// Reads and parses a JSONL file, refusing it before reading when it is over the size limit.
    pub fn load(path: &Path, limits: &Limits) -> Result<Self, DataError> {
        Self::parse(&read_limited(path, limits)?, limits)
    }

    /// [`Dataset::load`], refusing a file whose sha256 is not `sha256`.
    pub fn load_pinned(path: &Path, sha256: [u8; 32], limits: &Limits) -> Result<Self, DataError> {
        let bytes = read_limited(path, limits)?;
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != sha256 {
            return Err(DataError::HashMismatch {
                path: path.to_path_buf(),
                expected: hex::encode(sha256),
                actual: hex::encode(actual),
            });
        }
        Self::parse(&bytes, limits)
    }

    /// Parses JSONL bytes.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Self, DataError> {
        let records = parse_jsonl(bytes, limits, |line, raw: RawLine| {
            record(raw).map_err(|reason| DataError::Shape { line, reason })
        })?;
        Ok(Dataset { records })
    }

    /// The records, in file order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Number of records (at least 1).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Always false: a dataset holds at least one record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// `n` records picked by `seed`: distinct records when `n <= len`, otherwise whole shuffled
    /// passes over the dataset, then a partial one. The first `k` picks of `sample(seed, n)` are
    /// `sample(seed, k)` when both `n, k <= len`.
    pub fn sample(&self, seed: [u8; 32], n: usize) -> Vec<&Record> {
        let mut rng = seeded_rng(seed);
        let len = self.records.len();
        let mut picks = Vec::with_capacity(n);
        while picks.len() < n {
            // One pass: a partial Fisher–Yates shuffle, stopped after the picks still needed.
            let take = (n - picks.len()).min(len);
            let mut order: Vec<usize> = (0..len).collect();
            for i in 0..take {
                // i < len, so the range below is at least 1 wide.
                let j = i + uniform_below(&mut rng, (len - i) as u64) as usize;
                order.swap(i, j);
                picks.push(&self.records[order[i]]);
            }
        }
        picks
    }
}

/// The non-blank lines of JSONL `bytes` under `limits`, each parsed as `T` and turned into a
/// record by `make` (given its 1-based line number); never empty.
fn parse_jsonl<T: serde::de::DeserializeOwned, R>(
    bytes: &[u8],
    limits: &Limits,
    make: impl Fn(usize, T) -> Result<R, DataError>,
) -> Result<Vec<R>, DataError> {
    let len = bytes.len() as u64;
    if len > limits.max_file_bytes {
        return Err(DataError::FileTooLarge {
            bytes: len,
            max: limits.max_file_bytes,
        });
    }
    let mut records = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.len() > limits.max_line_bytes {
            return Err(DataError::LineTooLong {
                line,
                bytes: raw.len(),
                max: limits.max_line_bytes,
            });
        }
        let text = std::str::from_utf8(raw).map_err(|_| DataError::InvalidUtf8 { line })?;
        if text.trim().is_empty() {
            continue;
        }
        if records.len() == limits.max_records {
            return Err(DataError::TooManyRecords {
                line,
                max: limits.max_records,
            });
        }
        let parsed: T =
            serde_json::from_str(text).map_err(|source| DataError::Json { line, source })?;
        records.push(make(line, parsed)?);
    }
    if records.is_empty() {
        return Err(DataError::Empty);
    }
    Ok(records)
}

/// One preference: a prompt, the preferred answer and the other one. Lines of
/// `validator export-preferences` carry more fields (votes, agreement, reliability, epoch); they
/// are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PreferenceRecord {
    /// The prompt.
    pub prompt: String,
    /// The preferred answer.
    pub chosen: String,
    /// The other answer.
    pub rejected: String,
}

impl PreferenceRecord {
    /// The pair as two samples sharing the prompt: rendered with the tokenizer's chat template
    /// (the prompt as the user's message, the answer as the assistant's) when it has one, as
    /// plain text otherwise, like the records of a dataset.
    pub fn to_samples(
        &self,
        tokenizer: &Tokenizer,
        max_len: usize,
    ) -> Result<(Sample, Sample), TaskError> {
        let record = |answer: &str| match tokenizer.chat_template() {
            Some(_) => Record::Chat {
                messages: vec![
                    Message::new("user", &self.prompt),
                    Message::new("assistant", answer),
                ],
            },
            None => Record::Text {
                prompt: self.prompt.clone(),
                completion: answer.to_string(),
            },
        };
        Ok((
            record(&self.chosen).to_sample(tokenizer, max_len)?,
            record(&self.rejected).to_sample(tokenizer, max_len)?,
        ))
    }
}

/// Reads a preference JSONL file under `limits`: every line needs a prompt and two different,
/// non-empty answers.
pub fn load_preferences(path: &Path, limits: &Limits) -> Result<Vec<PreferenceRecord>, DataError> {
    parse_preferences(&read_limited(path, limits)?, limits)
}

/// [`load_preferences`] of bytes.
pub fn parse_preferences(
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<PreferenceRecord>, DataError> {
    parse_jsonl(bytes, limits, |line, record: PreferenceRecord| {
        let shape = |reason: &str| {
            Err(DataError::Shape {
                line,
                reason: reason.to_string(),
            })
        };
        if record.chosen.is_empty() || record.rejected.is_empty() {
            return shape("chosen and rejected must not be empty");
        }
        if record.chosen == record.rejected {
            return shape("chosen and rejected are the same answer");
        }
        Ok(record)
    })
}

/// The bytes of `path`, refused before reading when the file is over the size limit.
fn read_limited(path: &Path, limits: &Limits) -> Result<Vec<u8>, DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limits.max_file_bytes {
        return Err(DataError::FileTooLarge {
            bytes: size,
            max: limits.max_file_bytes,
        });
    }
    // The file may grow between the check and the read: read at most one byte past the limit,
    // which `Dataset::parse` then refuses.
    let mut bytes = Vec::new();
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// Which record a line is, or why it is neither.
fn record(raw: RawLine) -> Result<Record, String> {
    match raw {
        RawLine {
            messages: Some(messages),
            prompt: None,
            completion: None,
            input_ids: None,
            completion_start: None,
        } => {
            let Some(last) = messages.last() else {
                return Err("messages is empty".into());
            };
            if last.role != "assistant" || last.content.is_empty() {
                return Err(
                    "the last message is the scored answer: role \"assistant\", not empty".into(),
                );
            }
            Ok(Record::Chat { messages })
        }
        RawLine {
            messages: None,
            prompt: Some(prompt),
            completion: Some(completion),
            input_ids: None,
            completion_start: None,
        } => {
            if completion.is_empty() {
                return Err("completion is empty".into());
            }
            Ok(Record::Text { prompt, completion })
        }
        RawLine {
            messages: None,
            prompt: None,
            completion: None,
            input_ids: Some(input_ids),
            completion_start: Some(completion_start),
        } => {
            if completion_start == 0 || completion_start >= input_ids.len() {
                return Err(format!(
                    "completion_start {completion_start} must be in 1..{} (input_ids length)",
                    input_ids.len()
                ));
            }
            Ok(Record::Tokens {
                input_ids,
                completion_start,
            })
        }
        _ => Err(
            "needs exactly {prompt, completion}, {messages} or {input_ids, completion_start}"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = concat!(
        r#"{"prompt": "2+2=", "completion": "4"}"#,
        "\n\n",
        r#"{"input_ids": [256, 104, 105, 33], "completion_start": 3}"#,
        "\r\n",
        r#"{"prompt": "", "completion": "hello"}"#,
        "\n",
    );

    fn parse(text: &str) -> Result<Dataset, DataError> {
        Dataset::parse(text.as_bytes(), &Limits::default())
    }

    fn numbered(n: usize) -> Dataset {
        let text: String = (0..n)
            .map(|i| format!("{{\"prompt\": \"{i}\", \"completion\": \"x\"}}\n"))
            .collect();
        parse(&text).unwrap()
    }

    #[test]
    fn parses_both_record_shapes_and_skips_blank_lines() {
        let data = parse(GOOD).unwrap();
        assert_eq!(data.len(), 3);
        assert_eq!(
            data.records()[1],
            Record::Tokens {
                input_ids: vec![256, 104, 105, 33],
                completion_start: 3
            }
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad_json = format!("{GOOD}{{\"prompt\": 1}}\n");
        assert!(matches!(
            parse(&bad_json),
            Err(DataError::Json { line: 5, .. })
        ));
        let mixed = r#"{"prompt": "a", "input_ids": [1, 2], "completion_start": 1}"#;
        assert!(matches!(
            parse(mixed),
            Err(DataError::Shape { line: 1, .. })
        ));
        let bad_start = "\n{\"input_ids\": [1, 2], \"completion_start\": 2}";
        assert!(matches!(
            parse(bad_start),
            Err(DataError::Shape { line: 2, .. })
        ));
        let typo = r#"{"prompt": "a", "completoin": "b"}"#;
        assert!(matches!(parse(typo), Err(DataError::Json { line: 1, .. })));
        let empty_completion = r#"{"prompt": "a", "completion": ""}"#;
        assert!(matches!(
            parse(empty_completion),
            Err(DataError::Shape { line: 1, .. })
        ));
        let latin1 = b"{\"prompt\": \"a\", \"completion\": \"b\"}\n\xff\n";
        assert!(matches!(
            Dataset::parse(latin1, &Limits::default()),
            Err(DataError::InvalidUtf8 { line: 2 })
        ));
        assert!(matches!(parse("\n  \n"), Err(DataError::Empty)));
    }

    #[test]
    fn a_conversation_row_ends_with_the_scored_assistant_answer() {
        let chat = r#"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}"#;
        assert_eq!(
            parse(chat).unwrap().records()[0],
            Record::Chat {
                messages: vec![Message::new("user", "2+2?"), Message::new("assistant", "4")]
            }
        );
        for bad in [
            r#"{"messages": []}"#,
            r#"{"messages": [{"role": "user", "content": "2+2?"}]}"#,
            r#"{"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": ""}]}"#,
            r#"{"messages": [{"role": "assistant", "content": "4"}], "prompt": "x"}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(DataError::Shape { line: 1, .. })),
                "{bad}"
            );
        }
        let typo = r#"{"messages": [{"role": "assistant", "text": "4"}]}"#;
        assert!(matches!(parse(typo), Err(DataError::Json { line: 1, .. })));
        // The byte-level tokenizer has no chat template: the row cannot be scored by it.
        let data = parse(chat).unwrap();
        assert!(matches!(
            data.records()[0].to_sample(&Tokenizer::bytes(), 64),
            Err(TaskError::NoChatTemplate)
        ));
    }

    #[test]
    fn limits_are_enforced() {
        let tight = Limits {
            max_file_bytes: 1000,
            max_line_bytes: 40,
            max_records: 2,
        };
        assert!(matches!(
            Dataset::parse(
                GOOD.as_bytes(),
                &Limits {
                    max_line_bytes: 1000,
                    ..tight
                }
            ),
            Err(DataError::TooManyRecords { line: 4, max: 2 })
        ));
        assert!(matches!(
            Dataset::parse(
                GOOD.as_bytes(),
                &Limits {
                    max_records: 10,
                    ..tight
                }
            ),
            Err(DataError::LineTooLong {
                line: 3,
                max: 40,
                ..
            })
        ));
        assert!(matches!(
            Dataset::parse(
                GOOD.as_bytes(),
                &Limits {
                    max_file_bytes: 10,
                    ..Limits::default()
                }
            ),
            Err(DataError::FileTooLarge { max: 10, .. })
        ));
    }

    #[test]
    fn load_checks_the_file_size_and_names_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.jsonl");
        std::fs::write(&path, GOOD).unwrap();
        assert_eq!(
            Dataset::load(&path, &Limits::default()).unwrap(),
            parse(GOOD).unwrap()
        );
        let small = Limits {
            max_file_bytes: 5,
            ..Limits::default()
        };
        assert!(matches!(
            Dataset::load(&path, &small),
            Err(DataError::FileTooLarge { bytes, max: 5 }) if bytes == GOOD.len() as u64
        ));
        let missing = dir.path().join("none.jsonl");
        assert!(
            matches!(Dataset::load(&missing, &Limits::default()), Err(DataError::Io { path, .. }) if path == missing)
        );
    }

    #[test]
    fn records_become_samples() {
        let data = parse(GOOD).unwrap();
        let tok = Tokenizer::bytes();
        let text = data.records()[0].to_sample(&tok, 16).unwrap();
        assert_eq!(text.input_ids, vec![256, 50, 43, 50, 61, 52, 257]);
        assert_eq!(text.completion_start, 5);
        let tokens = data.records()[1].to_sample(&tok, 16).unwrap();
        assert_eq!(
            (tokens.input_ids, tokens.completion_start),
            (vec![256, 104, 105, 33], 3)
        );
        let cut = data.records()[1].to_sample(&tok, 3).unwrap();
        assert_eq!(
            (cut.input_ids, cut.completion_start),
            (vec![256, 105, 33], 2)
        );
    }

    #[test]
    fn sampling_is_deterministic_and_depends_on_the_seed() {
        let data = numbered(50);
        assert_eq!(data.sample([1; 32], 10), data.sample([1; 32], 10));
        assert_ne!(data.sample([1; 32], 10), data.sample([2; 32], 10));
    }

    #[test]
    fn oversampling_uses_every_record_before_repeating_any() {
        let data = numbered(4);
        let picks = data.sample([3; 32], 10);
        assert_eq!(picks.len(), 10);
        for pass in [&picks[0..4], &picks[4..8]] {
            for record in data.records() {
                assert_eq!(pass.iter().filter(|&&p| p == record).count(), 1);
            }
        }
    }

    #[test]
    fn preference_lines_of_the_export_parse_and_bad_ones_name_their_line() {
        let text = concat!(
            r#"{"prompt":"Why?","chosen":"Because.","rejected":"No.","votes":3,"agreement":0.75,"reliability":0.9,"epoch":4}"#,
            "\n\n",
            r#"{"prompt":"","chosen":"a","rejected":"b"}"#,
            "\n",
        );
        let records = parse_preferences(text.as_bytes(), &Limits::default()).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].chosen, "Because.");
        let bad = |line: &str| parse_preferences(line.as_bytes(), &Limits::default());
        assert!(matches!(
            bad(r#"{"prompt":"p","chosen":"same","rejected":"same"}"#),
            Err(DataError::Shape { line: 1, .. })
        ));
        assert!(matches!(
            bad("\n{\"prompt\":\"p\",\"chosen\":\"\",\"rejected\":\"x\"}"),
            Err(DataError::Shape { line: 2, .. })
        ));
        assert!(matches!(
            bad(r#"{"prompt":"p","chosen":"x"}"#),
            Err(DataError::Json { line: 1, .. })
        ));
        assert!(matches!(bad(""), Err(DataError::Empty)));
        // Plain text without a chat template: the prompt, then each answer as the completion.
        let (chosen, rejected) = records[0].to_samples(&Tokenizer::bytes(), 64).unwrap();
        assert_eq!(
            chosen.input_ids[..chosen.completion_start],
            rejected.input_ids[..rejected.completion_start]
        );
        assert_ne!(chosen.input_ids, rejected.input_ids);
    }

    proptest! {
        #[test]
        fn sampling_without_replacement_gives_distinct_records(
            seed in any::<[u8; 32]>(), len in 1usize..40, n in 0usize..40,
        ) {
            let data = numbered(len);
            let n = n.min(len);
            let picks = data.sample(seed, n);
            prop_assert_eq!(picks.len(), n);
            for (i, a) in picks.iter().enumerate() {
                prop_assert!(picks[i + 1..].iter().all(|b| b != a));
            }
        }

        #[test]
        fn shorter_samples_are_prefixes(seed in any::<[u8; 32]>(), len in 1usize..30, k in 0usize..30) {
            let data = numbered(len);
            let k = k.min(len);
            let all = data.sample(seed, len);
            prop_assert_eq!(data.sample(seed, k), all[..k].to_vec());
        }
    }
}
