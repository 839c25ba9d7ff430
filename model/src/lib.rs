//! The subnet's model track core: a Llama-style decoder in burn, and the data it is judged on.
//!
//! | module | what |
//! |---|---|
//! | [`tasks`] | seeded prompt → completion generators and JSONL datasets |
//! | [`tokenizer`] | built-in byte-level tokenizer and `tokenizer.json` through `tokenizers` |

pub mod tasks;
pub mod tokenizer;
