//! Greedy generation throughput of the burn decoder, on the CPU (burn-flex) or a CUDA GPU: with the
//! key/value cache (what `generate` does) against rerunning the whole sequence for every token
//! (what it did).
//!
//! ```sh
//! cargo run --release -p subnet-model --example bench_generate                 # 6 × 256 model
//! cargo run --release -p subnet-model --example bench_generate -- 5            # runs (default 3)
//! cargo run --release -p subnet-model --example bench_generate -- 3 DIR        # a model directory
//! cargo run --release -p subnet-model --example bench_generate -- 3 --shape smollm2  # its shapes, random
//! cargo run --release -p subnet-model --features cuda --example bench_generate -- 3 --device cuda
//!
//! cargo run --release -p subnet-model --example bench_generate -- 3 --shape smollm2 --batch 16
//! ```
//!
//! Prompt of 64 tokens, 64 new tokens, greedy. Prints one row per run of each path (the spread,
//! not the best) and checks that both paths produce the same tokens. With `--batch N` (default
//! 16; 0 skips it) it also generates for N prompts of 49 to 64 tokens: once one after the other
//! (`generate`, as `follow` did) and `RUNS` times together (`greedy_batch`, as `follow` does),
//! and counts the rows whose tokens differ (near-ties broken the other way).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use subnet_model::backend::{BackendTask, DeviceChoice, select};
use subnet_model::config::LlamaConfig;
use subnet_model::generate::{GenerateOptions, generate, greedy_batch};
use subnet_model::llama::Llama;

const PROMPT: usize = 64;
const NEW: usize = 64;

fn main() -> anyhow::Result<()> {
    let mut runs = 3;
    let mut dir = None;
    let mut device = DeviceChoice::Cpu;
    let mut shape = "6x256".to_string();
    let mut batch = 16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--device" => device = args.next().context("--device needs a value")?.parse()?,
            "--shape" => shape = args.next().context("--shape needs a value")?,
            "--batch" => {
                batch = args
                    .next()
                    .context("--batch needs a value")?
                    .parse()
                    .context("--batch")?
            }
            other if other.starts_with("--") => {
                bail!("unknown option `{other}` (expected --device, --shape or --batch)")
            }
            other => match other.parse() {
                Ok(n) => runs = n,
                Err(_) => dir = Some(PathBuf::from(other)),
            },
        }
    }
    let selected = select(device)?;
    let device_name = selected.name();
    selected.run(Bench {
        runs,
        dir,
        shape,
        batch,
        device_name,
    })
}

struct Bench {
    runs: usize,
    dir: Option<PathBuf>,
    shape: String,
    batch: usize,
    device_name: String,
}

impl BackendTask for Bench {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let runs = self.runs;
        let (model, name): (Llama<B>, String) = match &self.dir {
            Some(dir) => (
                subnet_model::io::load_artifact::<B>(dir, u64::MAX, &device)?.1,
                dir.display().to_string(),
            ),
            None => {
                let config = match self.shape.as_str() {
                    "6x256" => LlamaConfig::bench_6x256(),
                    "smollm2" => LlamaConfig::smollm2_135m(),
                    other => bail!("unknown --shape `{other}` (expected 6x256 or smollm2)"),
                };
                (
                    config.init_seeded::<B>(&device, 0),
                    format!("random {}", self.shape),
                )
            }
        };
        let [vocab, _] = model.embed_tokens.weight.dims();
        let prompt: Vec<u32> = (0..PROMPT)
            .map(|i| (i * 31 % vocab.min(256)) as u32)
            .collect();
        let options = GenerateOptions {
            max_new_tokens: NEW,
            temperature: 0.0,
            seed: 0,
            stop_token: None,
        };
        println!(
            "burn 0.21 f32 on {} | {name} | prompt {PROMPT} tokens, {NEW} new, greedy, {runs} runs",
            self.device_name
        );
        println!("| path | seconds | new tokens / s |");
        println!("|---|---|---|");
        let row = |path: &str, seconds: f64| {
            println!("| {path} | {seconds:.3} | {:.1} |", NEW as f64 / seconds);
        };
        let cached = generate(&model, &prompt, &options)?; // warm-up
        for _ in 0..runs {
            let start = Instant::now();
            let out = generate(&model, &prompt, &options)?;
            row("key/value cache", start.elapsed().as_secs_f64());
            assert_eq!(out, cached);
        }
        for _ in 0..runs {
            let start = Instant::now();
            let out = full_recompute(&model, &prompt, &device);
            row("whole sequence every token", start.elapsed().as_secs_f64());
            assert_eq!(out, cached, "both paths give the same tokens");
        }
        if self.batch > 0 {
            let prompts: Vec<Vec<u32>> = (0..self.batch)
                .map(|row| {
                    let len = PROMPT - row % 16;
                    (0..len)
                        .map(|i| ((i * 31 + row * 7) % vocab.min(256)) as u32)
                        .collect()
                })
                .collect();
            let tokens = (self.batch * NEW) as f64;
            let rate = |path: &str, seconds: f64| {
                println!("| {path} | {seconds:.3} | {:.1} |", tokens / seconds);
            };
            let start = Instant::now();
            let alone = prompts
                .iter()
                .map(|prompt| generate(&model, prompt, &options))
                .collect::<Result<Vec<_>, _>>()?;
            rate(
                &format!("{} prompts one after the other", self.batch),
                start.elapsed().as_secs_f64(),
            );
            for _ in 0..runs {
                let start = Instant::now();
                let together = greedy_batch(&model, &prompts, NEW, None)?;
                rate(
                    &format!("{} prompts in one batch", self.batch),
                    start.elapsed().as_secs_f64(),
                );
                let differ = alone.iter().zip(&together).filter(|(a, b)| a != b).count();
                if differ > 0 {
                    println!("  ({differ} of {} rows differ from alone)", self.batch);
                }
            }
        }
        Ok(())
    }
}

/// Greedy decoding that reruns the whole sequence for each token.
fn full_recompute<Bk: Backend>(model: &Llama<Bk>, prompt: &[u32], device: &Bk::Device) -> Vec<u32> {
    let mut sequence = prompt.to_vec();
    for _ in 0..NEW {
        let ids: Vec<i64> = sequence.iter().map(|&t| i64::from(t)).collect();
        let len = ids.len();
        let ids = Tensor::<Bk, 2, Int>::from_data(TensorData::new(ids, [1, len]), device);
        let logits = model
            .forward(ids)
            .narrow(1, len - 1, 1)
            .into_data()
            .to_vec::<f32>()
            .expect("f32 logits");
        let mut best = 0;
        for (i, &v) in logits.iter().enumerate() {
            if v > logits[best] {
                best = i;
            }
        }
        sequence.push(best as u32);
    }
    sequence.split_off(prompt.len())
}

/// As in the `validator` and `miner` binaries.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
