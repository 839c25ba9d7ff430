//! Measures [`subnet_model::similarity::divergence`] between models, and between the first model
//! and copies an attacker would make of it, to choose the competition's `[copies] max_divergence`.
//!
//! ```sh
//! cargo run --release -p subnet-model --example copy_divergence -- \
//!     competitions/default.toml 256 STRONG_DIR OTHER_DIR...
//! ```
//!
//! The samples are the competition's for a fixed seed (the first `N` of them). The copies of the
//! first model: its MLP hidden units permuted (the same function), its output scaled by 1.25 (the
//! final norm's weight), and 2% / 6% / 15% Gaussian noise (σ = that fraction of each tensor's
//! RMS). Prints each model's fitted mean loss and β, then the divergence of every pair.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use subnet_model::competition::CompetitionFile;
use subnet_model::config::{CONFIG_FILE, LlamaConfig};
use subnet_model::eval::{FittedEval, evaluate_fitted};
use subnet_model::io::{WEIGHTS_FILE, load_weights};
use subnet_model::similarity::divergence;
use subnet_model::tokenizer::Tokenizer;

type B = subnet_model::backend::Cpu;

/// A model's tensors in HF layout: name → (shape, values).
type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn read(bytes: &[u8]) -> Tensors {
    let file = SafeTensors::deserialize(bytes).expect("safetensors");
    let mut names: Vec<String> = file.names().into_iter().map(String::from).collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let view = file.tensor(&name).unwrap();
            assert_eq!(view.dtype(), Dtype::F32, "{name}: only f32 artifacts");
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, view.shape().to_vec(), values)
        })
        .collect()
}

fn write(tensors: &Tensors) -> Vec<u8> {
    let raw: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = tensors
        .iter()
        .zip(&raw)
        .map(|((name, shape, _), raw)| {
            (
                name.as_str(),
                TensorView::new(Dtype::F32, shape.clone(), raw).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// The same function with each layer's MLP units in another order.
fn permuted(tensors: &Tensors, config: &LlamaConfig) -> Tensors {
    let inter = config.intermediate_size;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut out = tensors.clone();
    for layer in 0..config.num_hidden_layers {
        let mut order: Vec<usize> = (0..inter).collect();
        for i in (1..inter).rev() {
            order.swap(i, rng.gen_range(0..=i));
        }
        let prefix = format!("model.layers.{layer}.mlp.");
        for (name, shape, values) in &mut out {
            let Some(part) = name.strip_prefix(&prefix) else {
                continue;
            };
            let old = values.clone();
            match part {
                // [inter, hidden]: rows are units
                "gate_proj.weight" | "up_proj.weight" => {
                    let width = shape[1];
                    for (new, &from) in order.iter().enumerate() {
                        values[new * width..(new + 1) * width]
                            .copy_from_slice(&old[from * width..(from + 1) * width]);
                    }
                }
                // [hidden, inter]: columns are units
                "down_proj.weight" => {
                    for row in 0..shape[0] {
                        for (new, &from) in order.iter().enumerate() {
                            values[row * inter + new] = old[row * inter + from];
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn noisy(tensors: &Tensors, fraction: f32, seed: u64) -> Tensors {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    tensors
        .iter()
        .map(|(name, shape, values)| {
            let rms = (values.iter().map(|v| v * v).sum::<f32>() / values.len() as f32).sqrt();
            let noise = |rng: &mut ChaCha8Rng| {
                // Box–Muller
                let (u, v): (f32, f32) = (rng.r#gen::<f32>().max(1e-12), rng.r#gen());
                (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
            };
            let values = values
                .iter()
                .map(|x| x + fraction * rms * noise(&mut rng))
                .collect();
            (name.clone(), shape.clone(), values)
        })
        .collect()
}

fn scaled_output(tensors: &Tensors, factor: f32) -> Tensors {
    let mut out = tensors.clone();
    for (name, _, values) in &mut out {
        if name == "model.norm.weight" {
            values.iter_mut().for_each(|v| *v *= factor);
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    assert!(
        args.len() >= 3,
        "usage: copy_divergence COMPETITION.toml SAMPLES MODEL_DIR [MODEL_DIR...]"
    );
    let competition = CompetitionFile::load(&PathBuf::from(&args[0]))
        .expect("competition")
        .competition;
    let count: usize = args[1].parse().expect("SAMPLES");
    let dirs: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
    let device = Default::default();
    let tokenizer = Tokenizer::from_model_dir(&dirs[0]).expect("tokenizer");
    let mut samples = competition
        .eval_samples([0x5a; 32], &tokenizer, None)
        .expect("samples");
    samples.truncate(count);

    let config = LlamaConfig::from_file(&dirs[0].join(CONFIG_FILE)).expect("config");
    let first = read(&std::fs::read(dirs[0].join(WEIGHTS_FILE)).expect("weights"));
    let mut models: Vec<(String, LlamaConfig, Vec<u8>)> = dirs
        .iter()
        .map(|dir| {
            let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE)).expect("config");
            let bytes = std::fs::read(dir.join(WEIGHTS_FILE)).expect("weights");
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (name, config, bytes)
        })
        .collect();
    models.push((
        "permuted".into(),
        config.clone(),
        write(&permuted(&first, &config)),
    ));
    models.push((
        "scaled1.25".into(),
        config.clone(),
        write(&scaled_output(&first, 1.25)),
    ));
    for (fraction, seed) in [(0.02, 1), (0.06, 2), (0.15, 3)] {
        let name = format!("noise{}%", (fraction * 100.0) as u32);
        models.push((name, config.clone(), write(&noisy(&first, fraction, seed))));
    }

    let evals: Vec<(String, FittedEval)> = models
        .iter()
        .map(|(name, config, bytes)| {
            let model = load_weights::<B>(config, bytes, &device).expect("load");
            let fitted = evaluate_fitted(&model, &samples, 16).expect("eval");
            let mean = fitted.losses.iter().map(|l| l.loss).sum::<f64>() / samples.len() as f64;
            println!(
                "{name:<14} fitted mean loss {mean:.5}  β {:.4}",
                fitted.inverse_temperature
            );
            (name.clone(), fitted)
        })
        .collect();
    println!();
    print!("{:<14}", "divergence");
    for (name, _) in &evals {
        print!(" {name:>11}");
    }
    println!();
    for (a, fa) in &evals {
        print!("{a:<14}");
        for (_, fb) in &evals {
            print!(" {:>11.5}", divergence(fa, fb).unwrap());
        }
        println!();
    }
}
