//! Writes burn-saved models and their burn logits for `scripts/check_roundtrip.py`, which loads
//! them in transformers and compares.
//!
//! ```sh
//! cargo run -p subnet-model --example export_roundtrip -- /tmp/roundtrip
//! /tmp/hfvenv/bin/python model/scripts/check_roundtrip.py /tmp/roundtrip
//! ```
//!
//! For each variant (`untied`, `tied`) it writes `DIR/<variant>/` with `config.json` and
//! `model.safetensors` (saved by [`subnet_model::io::save_artifact`]), `inputs.json` (a list of
//! id sequences) and `burn_logits.safetensors` (`logits.<i>`: `[len_i, vocab]` f32).

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::{Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, TensorView};
use subnet_model::config::LlamaConfig;
use subnet_model::io::{load_weights, save_artifact};

type B = subnet_model::backend::Cpu;

fn config(tied: bool) -> LlamaConfig {
    LlamaConfig {
        hidden_size: 64,
        intermediate_size: 96,
        num_hidden_layers: 2,
        num_attention_heads: 8,
        num_key_value_heads: 2,
        vocab_size: 262,
        max_position_embeddings: 128,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        tie_word_embeddings: tied,
        bos_token_id: Some(256),
        eos_token_id: Some(257),
        pad_token_id: Some(258),
    }
}

/// Random weights with clearly non-uniform logits (std 0.3, norms around 1), as safetensors.
fn random_weights(config: &LlamaConfig, seed: u64) -> anyhow::Result<Vec<u8>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = config
        .expected_tensors()
        .into_iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let norm = name.ends_with("norm.weight");
            let bytes = (0..n)
                .flat_map(|_| {
                    let u: f32 = rng.r#gen::<f32>() * 2.0 - 1.0;
                    let v = if norm { 1.0 + 0.3 * u } else { 0.5 * u };
                    v.to_le_bytes()
                })
                .collect();
            (name, shape, bytes)
        })
        .collect();
    let mut views = Vec::new();
    for (name, shape, bytes) in &tensors {
        views.push((
            name.as_str(),
            TensorView::new(Dtype::F32, shape.clone(), bytes)?,
        ));
    }
    Ok(safetensors::serialize(views, None)?)
}

fn main() -> anyhow::Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .context("usage: export_roundtrip OUT_DIR")?,
    );
    let inputs: Vec<Vec<u32>> = vec![
        b"\x0012+34=46".iter().map(|&b| u32::from(b)).collect(),
        std::iter::once(256)
            .chain(
                b"the quick brown fox jumps over the lazy dog"
                    .iter()
                    .map(|&b| u32::from(b)),
            )
            .chain([257])
            .collect(),
        (0..100).map(|i| (i * 37 % 262) as u32).collect(),
    ];
    let device = Default::default();
    for (variant, tied, seed) in [("untied", false, 11), ("tied", true, 12)] {
        let config = config(tied);
        let dir = out.join(variant);
        let model = load_weights::<B>(&config, &random_weights(&config, seed)?, &device)?;
        save_artifact(&model, &config, &dir)?;

        let mut logits = Vec::new();
        for ids in &inputs {
            let flat: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
            let tensor =
                Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [1, ids.len()]), &device);
            let values = model
                .forward(tensor)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            logits.push((ids.len(), bytes));
        }
        let mut views = Vec::new();
        for (i, (len, bytes)) in logits.iter().enumerate() {
            views.push((
                format!("logits.{i}"),
                TensorView::new(Dtype::F32, vec![*len, config.vocab_size], bytes)?,
            ));
        }
        let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
        std::fs::write(
            dir.join("burn_logits.safetensors"),
            safetensors::serialize(views, Some(metadata))?,
        )?;
        std::fs::write(dir.join("inputs.json"), serde_json::to_string(&inputs)?)?;
        println!("{}", dir.display());
    }
    Ok(())
}
