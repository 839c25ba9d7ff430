//! Tokenizers: the built-in byte-level one, and `tokenizer.json` files through the `tokenizers` crate.
//!
//! A model directory that holds a `tokenizer.json` is read with it; any other directory gets the
//! byte-level tokenizer, whose ids are the UTF-8 bytes `0..=255` followed by [`BOS`], [`EOS`] and
//! [`PAD`]. Callers hold a [`Tokenizer`] and never ask which one it is: both encode text without
//! special tokens and report the ids of the special tokens they have, so a sequence is always built
//! the same way (see [`crate::tasks::to_sample`]).

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::chat::ChatTemplate;

/// Beginning-of-sequence id of the byte-level tokenizer.
pub const BOS: u32 = 256;
/// End-of-sequence id of the byte-level tokenizer.
pub const EOS: u32 = 257;
/// Padding id of the byte-level tokenizer.
pub const PAD: u32 = 258;
/// Number of ids the byte-level tokenizer uses; a model using it needs `vocab_size >= 259`.
pub const BYTE_VOCAB_SIZE: usize = 259;

/// File name of a Hugging Face tokenizer inside a model directory.
pub const TOKENIZER_JSON: &str = "tokenizer.json";
/// Optional companion file naming the special tokens (`bos_token`, `eos_token`, `pad_token`).
pub const TOKENIZER_CONFIG_JSON: &str = "tokenizer_config.json";

/// Token names tried, in order, when `tokenizer_config.json` names no BOS token.
const BOS_CANDIDATES: &[&str] = &["<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"];
/// Token names tried, in order, when `tokenizer_config.json` names no EOS token.
const EOS_CANDIDATES: &[&str] = &["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"];
/// Token names tried, in order, when `tokenizer_config.json` names no PAD token.
const PAD_CANDIDATES: &[&str] = &["<pad>", "<|pad|>", "[PAD]"];

/// What can go wrong loading or using a tokenizer.
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// A tokenizer file exists but could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `tokenizer.json` could not be parsed by the `tokenizers` crate.
    #[error("parsing {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The `tokenizers` crate's message.
        message: String,
    },
    /// `tokenizer_config.json` is not valid JSON.
    #[error("parsing {path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// `tokenizer_config.json` names a special token that the vocabulary lacks.
    #[error("special token {role} = {token:?} is not in the vocabulary")]
    UnknownSpecialToken {
        /// `bos_token`, `eos_token` or `pad_token`.
        role: &'static str,
        /// The token's text.
        token: String,
    },
    /// `tokenizer_config.json`'s chat template is unusable.
    #[error("chat template: {0}")]
    Chat(#[from] crate::chat::ChatError),
    /// The `tokenizers` crate failed to encode a text.
    #[error("encoding failed: {message}")]
    Encode {
        /// The `tokenizers` crate's message.
        message: String,
    },
    /// The `tokenizers` crate failed to decode ids.
    #[error("decoding failed: {message}")]
    Decode {
        /// The `tokenizers` crate's message.
        message: String,
    },
}

/// The built-in byte-level tokenizer: one id per UTF-8 byte, then [`BOS`], [`EOS`], [`PAD`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteTokenizer;

impl ByteTokenizer {
    /// The UTF-8 bytes of `text` as ids `0..=255`.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    /// The text of the byte ids in `ids`; special and out-of-range ids are skipped and invalid
    /// UTF-8 becomes U+FFFD, so any model output decodes.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().filter_map(|&id| u8::try_from(id).ok()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// A `tokenizer.json` tokenizer with the ids of its special tokens.
#[derive(Clone)]
pub struct HfTokenizer {
    /// The loaded tokenizer.
    inner: Box<tokenizers::Tokenizer>,
    /// Beginning-of-sequence id, if the vocabulary has one.
    bos: Option<u32>,
    /// End-of-sequence id, if the vocabulary has one.
    eos: Option<u32>,
    /// Padding id, if the vocabulary has one.
    pad: Option<u32>,
    /// `tokenizer_config.json`'s chat template, if it has one.
    chat: Option<Box<ChatTemplate>>,
}

impl fmt::Debug for HfTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HfTokenizer")
            .field("vocab_size", &self.inner.get_vocab_size(true))
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .field("chat_template", &self.chat.is_some())
            .finish()
    }
}

/// A tokenizer, whichever kind the model directory asked for.
#[derive(Debug, Clone)]
pub enum Tokenizer {
    /// The built-in byte-level tokenizer.
    Bytes(ByteTokenizer),
    /// A `tokenizer.json` read through the `tokenizers` crate.
    Hf(HfTokenizer),
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer::Bytes(ByteTokenizer)
    }
}

impl Tokenizer {
    /// The built-in byte-level tokenizer.
    pub fn bytes() -> Self {
        Tokenizer::Bytes(ByteTokenizer)
    }

    /// The tokenizer of a model directory: its `tokenizer.json` when present (special tokens from
    /// `tokenizer_config.json`, else well-known names such as `<s>` / `</s>`), otherwise byte-level.
    pub fn from_model_dir(dir: &Path) -> Result<Self, TokenizerError> {
        let json_path = dir.join(TOKENIZER_JSON);
        if !json_path.is_file() {
            return Ok(Self::bytes());
        }
        let json = read(&json_path)?;
        let config_path = dir.join(TOKENIZER_CONFIG_JSON);
        let config = if config_path.is_file() {
            Some(read(&config_path)?)
        } else {
            None
        };
        Self::from_hf_bytes(&json, config.as_deref()).map_err(|err| match err {
            TokenizerError::Parse { message, .. } => TokenizerError::Parse {
                path: json_path,
                message,
            },
            TokenizerError::Config { source, .. } => TokenizerError::Config {
                path: config_path,
                source,
            },
            other => other,
        })
    }

    /// A `tokenizer.json` given as bytes, with an optional `tokenizer_config.json`.
    pub fn from_hf_bytes(
        tokenizer_json: &[u8],
        tokenizer_config_json: Option<&[u8]>,
    ) -> Result<Self, TokenizerError> {
        let inner = tokenizers::Tokenizer::from_bytes(tokenizer_json).map_err(|err| {
            TokenizerError::Parse {
                path: PathBuf::from(TOKENIZER_JSON),
                message: err.to_string(),
            }
        })?;
        let config: serde_json::Value = match tokenizer_config_json {
            Some(bytes) => {
                serde_json::from_slice(bytes).map_err(|source| TokenizerError::Config {
                    path: PathBuf::from(TOKENIZER_CONFIG_JSON),
                    source,
                })?
            }
            None => serde_json::Value::Null,
        };
        let special = |role: &'static str, candidates: &[&str]| -> Result<Option<u32>, _> {
            match configured_token(&config, role) {
                Some(token) => match inner.token_to_id(&token) {
                    Some(id) => Ok(Some(id)),
                    None => Err(TokenizerError::UnknownSpecialToken { role, token }),
                },
                None => Ok(candidates.iter().find_map(|name| inner.token_to_id(name))),
            }
        };
        let bos = special("bos_token", BOS_CANDIDATES)?;
        let eos = special("eos_token", EOS_CANDIDATES)?;
        let pad = special("pad_token", PAD_CANDIDATES)?;
        let chat = ChatTemplate::from_tokenizer_config(&config)?.map(Box::new);
        Ok(Tokenizer::Hf(HfTokenizer {
            inner: Box::new(inner),
            bos,
            eos,
            pad,
            chat,
        }))
    }

    /// The ids of `text`, without any special tokens.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        match self {
            Tokenizer::Bytes(bytes) => Ok(bytes.encode(text)),
            Tokenizer::Hf(hf) => hf
                .inner
                .encode(text, false)
                .map(|encoding| encoding.get_ids().to_vec())
                .map_err(|err| TokenizerError::Encode {
                    message: err.to_string(),
                }),
        }
    }

    /// The text of `ids`, skipping special tokens. The byte-level tokenizer never fails (invalid
    /// UTF-8 becomes U+FFFD); a `tokenizer.json` one fails on ids outside its vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        match self {
            Tokenizer::Bytes(bytes) => Ok(bytes.decode(ids)),
            Tokenizer::Hf(hf) => {
                let vocab = hf.inner.get_vocab_size(true);
                if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(TokenizerError::Decode {
                        message: format!("id {bad} is outside the vocabulary of {vocab}"),
                    });
                }
                hf.inner
                    .decode(ids, true)
                    .map_err(|err| TokenizerError::Decode {
                        message: err.to_string(),
                    })
            }
        }
    }

    /// Number of ids this tokenizer can produce; a model's `vocab_size` must be at least this.
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes(_) => BYTE_VOCAB_SIZE,
            Tokenizer::Hf(hf) => hf.inner.get_vocab_size(true),
        }
    }

    /// Beginning-of-sequence id, if this tokenizer has one.
    pub fn bos_id(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes(_) => Some(BOS),
            Tokenizer::Hf(hf) => hf.bos,
        }
    }

    /// End-of-sequence id, if this tokenizer has one.
    pub fn eos_id(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes(_) => Some(EOS),
            Tokenizer::Hf(hf) => hf.eos,
        }
    }

    /// Padding id, if this tokenizer has one.
    pub fn pad_id(&self) -> Option<u32> {
        match self {
            Tokenizer::Bytes(_) => Some(PAD),
            Tokenizer::Hf(hf) => hf.pad,
        }
    }

    /// The model's chat template (`tokenizer_config.json`'s `chat_template`), if it has one.
    pub fn chat_template(&self) -> Option<&ChatTemplate> {
        match self {
            Tokenizer::Bytes(_) => None,
            Tokenizer::Hf(hf) => hf.chat.as_deref(),
        }
    }

    /// `"bytes"` or `"tokenizer.json"`, for logs and eval records.
    pub fn kind(&self) -> &'static str {
        match self {
            Tokenizer::Bytes(_) => "bytes",
            Tokenizer::Hf(_) => TOKENIZER_JSON,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TokenizerError> {
    std::fs::read(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The special token `role` as `tokenizer_config.json` writes it: a string, or `{"content": ...}`.
fn configured_token(config: &serde_json::Value, role: &str) -> Option<String> {
    match config.get(role)? {
        serde_json::Value::String(token) => Some(token.clone()),
        serde_json::Value::Object(fields) => fields
            .get("content")
            .and_then(|content| content.as_str())
            .map(str::to_owned),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A small word-level `tokenizer.json` with a whitespace pre-tokenizer (exercises the regex engine).
    pub(crate) const WORD_LEVEL_JSON: &str = r#"{
      "version": "1.0",
      "truncation": null,
      "padding": null,
      "added_tokens": [
        {"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 1, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
        {"id": 2, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
      ],
      "normalizer": null,
      "pre_tokenizer": {"type": "Whitespace"},
      "post_processor": null,
      "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"<s>": 0, "</s>": 1, "<unk>": 2, "hello": 3, "world": 4, "!": 5, "<end>": 6}, "unk_token": "<unk>"}
    }"#;

    #[test]
    fn byte_tokenizer_encodes_utf8_bytes() {
        let tok = Tokenizer::bytes();
        assert_eq!(tok.encode("hé").unwrap(), vec![104, 195, 169]);
        assert_eq!(tok.vocab_size(), 259);
        assert_eq!(
            (tok.bos_id(), tok.eos_id(), tok.pad_id()),
            (Some(256), Some(257), Some(258))
        );
    }

    #[test]
    fn byte_decode_skips_special_ids_and_replaces_invalid_utf8() {
        let tok = Tokenizer::bytes();
        assert_eq!(tok.decode(&[BOS, 104, 105, EOS, PAD]).unwrap(), "hi");
        assert_eq!(tok.decode(&[104, 0xff, 105]).unwrap(), "h\u{fffd}i");
        assert_eq!(tok.decode(&[104, 195]).unwrap(), "h\u{fffd}");
    }

    #[test]
    fn model_dir_without_tokenizer_json_uses_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let tok = Tokenizer::from_model_dir(dir.path()).unwrap();
        assert_eq!(tok.kind(), "bytes");
    }

    #[test]
    fn model_dir_with_tokenizer_json_uses_it_and_finds_special_tokens() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKENIZER_JSON), WORD_LEVEL_JSON).unwrap();
        let tok = Tokenizer::from_model_dir(dir.path()).unwrap();
        assert_eq!(tok.kind(), "tokenizer.json");
        assert_eq!(tok.encode("hello world!").unwrap(), vec![3, 4, 5]);
        assert_eq!(tok.encode("hello moon").unwrap(), vec![3, 2]);
        assert_eq!(tok.decode(&[0, 3, 4, 1]).unwrap(), "hello world");
        assert_eq!(
            (tok.bos_id(), tok.eos_id(), tok.pad_id()),
            (Some(0), Some(1), None)
        );
        assert_eq!(tok.vocab_size(), 7);
    }

    #[test]
    fn tokenizer_config_overrides_special_token_names() {
        let config = br#"{"bos_token": "<s>", "eos_token": {"content": "<end>", "special": true}}"#;
        let tok = Tokenizer::from_hf_bytes(WORD_LEVEL_JSON.as_bytes(), Some(config)).unwrap();
        assert_eq!((tok.bos_id(), tok.eos_id()), (Some(0), Some(6)));
    }

    #[test]
    fn tokenizer_config_naming_a_missing_token_is_an_error() {
        let config = br#"{"eos_token": "<|nope|>"}"#;
        let err = Tokenizer::from_hf_bytes(WORD_LEVEL_JSON.as_bytes(), Some(config)).unwrap_err();
        assert!(matches!(
            err,
            TokenizerError::UnknownSpecialToken { role: "eos_token", ref token } if token == "<|nope|>"
        ));
    }

    #[test]
    fn broken_tokenizer_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TOKENIZER_JSON), "{not json").unwrap();
        let err = Tokenizer::from_model_dir(dir.path()).unwrap_err();
        assert!(
            matches!(&err, TokenizerError::Parse { path, .. } if path == &dir.path().join(TOKENIZER_JSON)),
            "{err}"
        );
    }

    #[test]
    fn hf_decode_rejects_ids_outside_the_vocabulary() {
        let tok = Tokenizer::from_hf_bytes(WORD_LEVEL_JSON.as_bytes(), None).unwrap();
        assert!(matches!(
            tok.decode(&[3, 99]),
            Err(TokenizerError::Decode { .. })
        ));
    }

    /// A GPT-2-style byte-level BPE (the pre-tokenizer regex needs look-ahead, so this exercises
    /// the fancy-regex build) with the ids Python's `tokenizers` 0.23 gives; see its `make.py`.
    #[test]
    fn byte_level_bpe_matches_python_tokenizers() {
        const DIR: &str = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tokenizer-bytelevel-bpe"
        );
        let tok = Tokenizer::from_model_dir(Path::new(DIR)).unwrap();
        let expected: serde_json::Value =
            serde_json::from_slice(&std::fs::read(Path::new(DIR).join("expected.json")).unwrap())
                .unwrap();
        assert_eq!(
            tok.vocab_size() as u64,
            expected["vocab_size"].as_u64().unwrap()
        );
        assert_eq!(tok.bos_id(), Some(0), "<|begin_of_text|>");
        assert_eq!(tok.eos_id(), Some(1), "<|end_of_text|>");
        let cases = expected["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 5);
        for case in cases {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tok.encode(text).unwrap(), ids, "{text:?}");
            assert_eq!(tok.decode(&ids).unwrap(), case["decoded"].as_str().unwrap());
        }
    }

    proptest! {
        #[test]
        fn byte_tokenizer_round_trips_any_text(text in any::<String>()) {
            let tok = Tokenizer::bytes();
            let ids = tok.encode(&text).unwrap();
            prop_assert!(ids.iter().all(|&id| id < 256));
            prop_assert_eq!(tok.decode(&ids).unwrap(), text);
        }

        #[test]
        fn byte_decode_never_fails(ids in proptest::collection::vec(0u32..300, 0..64)) {
            prop_assert!(Tokenizer::bytes().decode(&ids).is_ok());
        }
    }
}
