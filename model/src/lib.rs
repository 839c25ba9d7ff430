//! The subnet's model track core: a Llama-style decoder in burn, and the data it is judged on.
//!
//! | module | what |
//! |---|---|
//! | [`competition`] | the competition file (bounds, task mix, ε schedule, shares), its sha256, the eval seed |
//! | [`score`] | model-track scoring: ε-adjusted pairwise win rates, duplicates, softmax |
//! | [`tasks`] | seeded prompt → completion generators, checkers, near-misses, encoding to token ids |
//! | [`tokenizer`] | built-in byte-level tokenizer and `tokenizer.json` through `tokenizers` |

pub mod competition;
pub mod score;
pub mod tasks;
pub mod tokenizer;
