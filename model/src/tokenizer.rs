//! Tokenizers: built-in byte-level, and `tokenizer.json` files.
