//! burn against transformers: the fixtures under `tests/fixtures/` were written by
//! `scripts/make_hf_fixture.py` (a random tiny `LlamaForCausalLM`, reference logits and losses
//! computed by transformers); loading them here must reproduce both.

use std::path::{Path, PathBuf};

use burn::backend::NdArray;
use burn::tensor::{Int, Tensor, TensorData};
use safetensors::SafeTensors;
use serde::Deserialize;
use subnet_model::eval::{Sample, evaluate};
use subnet_model::io::{load_artifact, read_weights_file};

type B = NdArray<f32>;

#[derive(Deserialize)]
struct Reference {
    samples: Vec<ReferenceSample>,
}

#[derive(Deserialize)]
struct ReferenceSample {
    input_ids: Vec<u32>,
    completion_start: usize,
    loss: f64,
    tokens: usize,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn check_fixture(name: &str) {
    let dir = fixture(name);
    let device = Default::default();
    let (config, model) = load_artifact::<B>(&dir, 1 << 20, &device).unwrap();
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let logits_bytes =
        read_weights_file(&dir.join("reference_logits.safetensors"), 1 << 20).unwrap();
    let logits_file = SafeTensors::deserialize(&logits_bytes).unwrap();

    let mut worst = 0f32;
    for (i, sample) in reference.samples.iter().enumerate() {
        let len = sample.input_ids.len();
        let ids: Vec<i64> = sample.input_ids.iter().map(|&t| i64::from(t)).collect();
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(ids, [1, len]), &device);
        let ours = model.forward(ids).into_data().to_vec::<f32>().unwrap();

        let view = logits_file.tensor(&format!("logits.{i}")).unwrap();
        assert_eq!(view.shape(), &[len, config.vocab_size]);
        let theirs: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            worst = worst.max((a - b).abs());
        }
    }
    eprintln!("{name}: max abs logit difference {worst:e}");
    assert!(worst <= 1e-4, "{name}: max abs logit difference {worst}");

    let samples: Vec<Sample> = reference
        .samples
        .iter()
        .map(|s| Sample {
            input_ids: s.input_ids.clone(),
            completion_start: s.completion_start,
        })
        .collect();
    for batch_size in [1, 3] {
        let losses = evaluate(&model, &samples, batch_size).unwrap();
        for (ours, theirs) in losses.iter().zip(&reference.samples) {
            assert_eq!(ours.tokens, theirs.tokens);
            let relative = (ours.loss - theirs.loss).abs() / theirs.loss.abs();
            eprintln!("{name}: loss relative difference {relative:e}");
            assert!(
                relative <= 1e-5,
                "{name}: loss {} vs transformers {} (relative {relative:e})",
                ours.loss,
                theirs.loss
            );
        }
    }
}

#[test]
fn bf16_gqa_model_from_transformers_gives_the_same_logits_and_losses() {
    check_fixture("hf-tiny");
}

#[test]
fn tied_f16_model_from_transformers_gives_the_same_logits_and_losses() {
    check_fixture("hf-tiny-tied");
}
