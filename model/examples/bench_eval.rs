//! Evaluation throughput of the burn decoder on the CPU backend.
//!
//! ```sh
//! cargo run --release -p subnet-model --example bench_eval            # 6 × 256, batch 8 × 256
//! cargo run --release -p subnet-model --example bench_eval -- 5       # iterations (default 3)
//! /tmp/hfvenv/bin/python model/scripts/bench_torch.py                 # the same in PyTorch
//! ```
//!
//! Prints one table row per measurement: the plain forward pass (logits for every position),
//! [`subnet_model::eval::evaluate`] (forward, log-softmax, gather, per-sample losses) and
//! [`subnet_model::eval::evaluate_fitted`] (the validator's: only completion positions through
//! the output layer, 25 inverse temperatures, the fit).

use std::time::Instant;

use burn::backend::NdArray;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use subnet_model::config::LlamaConfig;
use subnet_model::eval::{Sample, evaluate, evaluate_fitted};

type B = NdArray<f32>;

const BATCH: usize = 8;
const SEQ: usize = 256;

fn main() {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let config = LlamaConfig {
        hidden_size: 256,
        intermediate_size: 688,
        num_hidden_layers: 6,
        num_attention_heads: 8,
        num_key_value_heads: 4,
        vocab_size: 262,
        max_position_embeddings: 512,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        tie_word_embeddings: false,
        bos_token_id: None,
        eos_token_id: None,
        pad_token_id: None,
    };
    let device = Default::default();
    B::seed(&device, 0);
    let model = config.init::<B>(&device);
    let ids: Vec<u32> = (0..BATCH * SEQ).map(|i| (i * 31 % 256) as u32).collect();
    let samples: Vec<Sample> = ids
        .chunks(SEQ)
        .map(|chunk| Sample {
            input_ids: chunk.to_vec(),
            completion_start: SEQ / 2,
        })
        .collect();
    let input = || {
        let flat: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [BATCH, SEQ]), &device)
    };

    println!(
        "burn 0.21 NdArray f32 | {} layers, hidden {}, {} heads / {} kv, {} params | batch {BATCH} x {SEQ} tokens, {iterations} iterations",
        config.num_hidden_layers,
        config.hidden_size,
        config.num_attention_heads,
        config.num_key_value_heads,
        config.num_parameters()
    );
    println!("| what | seconds / batch | tokens / s |");
    println!("|---|---|---|");
    let time = |name: &str, run: &mut dyn FnMut()| {
        run(); // warm-up
        let start = Instant::now();
        for _ in 0..iterations {
            run();
        }
        let per_batch = start.elapsed().as_secs_f64() / iterations as f64;
        println!(
            "| {name} | {per_batch:.3} | {:.0} |",
            (BATCH * SEQ) as f64 / per_batch
        );
    };
    time("forward (logits)", &mut || {
        let logits = model.forward(input());
        let _ = logits.into_data();
    });
    time("evaluate (per-sample loss)", &mut || {
        let losses = evaluate(&model, &samples, BATCH);
        assert!(losses.is_ok_and(|l| l.len() == BATCH));
    });
    time("evaluate_fitted (25 temperatures)", &mut || {
        let fitted = evaluate_fitted(&model, &samples, BATCH);
        assert!(fitted.is_ok_and(|f| f.losses.len() == BATCH));
    });
}
