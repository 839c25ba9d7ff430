//! The subnet's model track core: a Llama-style decoder in burn, and the data it is judged on.
//!
//! | module | what |
//! |---|---|
//! | [`backend`] | the concrete backends (burn-flex CPU, `cuda` feature) and `--device auto|cpu|cuda` selection |
//! | [`chat`] | chat templates (`tokenizer_config.json`) rendered with minijinja as transformers does; prompt/completion split |
//! | [`competition`] | the competition file (bounds, task mix, dethrone rule, copy thresholds, shares), its sha256, the eval seed |
//! | [`config`] | [`LlamaConfig`](config::LlamaConfig): HF `config.json` read, validated and written |
//! | [`data`] | JSONL datasets (`{prompt, completion}` or `{input_ids, completion_start}`), limits, seeded sampling |
//! | [`eval`] | per-sample loss: mean cross-entropy over completion tokens, batched with right padding; temperature fitting |
//! | [`follow`] | instruction following by generation: greedy answers to open tasks, checked against their constraints |
//! | [`fused`] | the decoder's steps between matrix products as one host pass each, for the CPU backend |
//! | [`gguf`] | llama.cpp's GGUF container: header, metadata, tensor table (bounded), de-quantization to f32 |
//! | [`generate`] | greedy or seeded sampling continuation of a prompt (`/v1/generate`, spot-checks) |
//! | [`io`] | artifact directories: HF-named safetensors load (validated) and save |
//! | [`import`] | a pretrained base from GGUF into an artifact directory (config, f32 safetensors, tokenizer, chat template) |
//! | [`llama`] | [`Llama`](llama::Llama): the decoder (RMSNorm, RoPE, grouped-query attention, SwiGLU) |
//! | [`score`] | model-track scoring: pairwise contests won by significance, duplicates, softmax |
//! | [`similarity`] | copies by function (log-probability divergence) and by weights (cosines, sketches) |
//! | [`tasks`] | seeded prompt → completion generators, checkers, near-misses, encoding to token ids |
//! | [`tokenizer`] | built-in byte-level tokenizer and `tokenizer.json` through `tokenizers` |
//! | [`train`] | fine-tuning: AdamW on the completion loss, warmup, clipping, checkpoints and resume |

pub mod backend;
pub mod chat;
pub mod competition;
pub mod config;
pub mod data;
pub mod eval;
pub mod follow;
pub mod fused;
pub mod generate;
pub mod gguf;
pub mod grid;
pub mod import;
pub mod io;
pub mod llama;
pub mod score;
pub mod similarity;
pub mod tasks;
pub mod tokenizer;
pub mod train;
