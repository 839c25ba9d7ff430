//! Evaluation throughput of the burn decoder, on the CPU (burn-flex) or a CUDA GPU.
//!
//! ```sh
//! cargo run --release -p subnet-model --example bench_eval                    # 6 × 256, CPU, 3 iterations
//! cargo run --release -p subnet-model --example bench_eval -- 5               # 5 iterations
//! cargo run --release -p subnet-model --example bench_eval -- 3 --shape smollm2
//! cargo run --release -p subnet-model --example bench_eval -- 3 --model DIR   # a model directory
//! cargo run --release -p subnet-model --features cuda --example bench_eval -- 3 --device cuda
//! python3 model/scripts/bench_torch.py                                        # the same in PyTorch
//! ```
//!
//! Options: `--device auto|cpu|cuda` (default cpu), `--shape 6x256|smollm2` (random weights of
//! that shape, seed 0; default 6x256), `--model DIR` (weights from an artifact directory instead),
//! `--batch N` (default 8), `--seq N` (tokens per sample, default 256), `--losses-out FILE`
//! (writes the per-sample losses of [`evaluate`] as JSON, for `bench_torch.py --compare`),
//! `--only forward|evaluate|fitted` (that measurement alone, e.g. under `perf record`).
//!
//! Prints one table row per measurement: the plain forward pass (logits for every position,
//! summed to one number as `bench_torch.py` does, so no backend copies them to the host),
//! [`subnet_model::eval::evaluate`] (forward, log-softmax, gather, per-sample losses) and
//! [`subnet_model::eval::evaluate_fitted`] (the validator's: only completion positions through
//! the output layer, 25 inverse temperatures, the fit). Token ids are `(i · 31) mod 256`, the
//! completion is each sample's second half: the same batch `bench_torch.py` builds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use subnet_model::backend::{BackendTask, DeviceChoice, select};
use subnet_model::config::LlamaConfig;
use subnet_model::eval::{Sample, evaluate, evaluate_fitted};
use subnet_model::llama::Llama;

struct Options {
    iterations: usize,
    device: DeviceChoice,
    shape: String,
    model: Option<PathBuf>,
    batch: usize,
    seq: usize,
    losses_out: Option<PathBuf>,
    only: Option<Measurement>,
}

/// One row of the table.
#[derive(Clone, Copy, PartialEq)]
enum Measurement {
    Forward,
    Evaluate,
    Fitted,
}

impl std::str::FromStr for Measurement {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "forward" => Ok(Self::Forward),
            "evaluate" => Ok(Self::Evaluate),
            "fitted" => Ok(Self::Fitted),
            other => bail!("unknown --only `{other}` (expected forward, evaluate or fitted)"),
        }
    }
}

fn parse() -> anyhow::Result<Options> {
    let mut options = Options {
        iterations: 3,
        device: DeviceChoice::Cpu,
        shape: "6x256".into(),
        model: None,
        batch: 8,
        seq: 256,
        losses_out: None,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--device" => options.device = value()?.parse()?,
            "--shape" => options.shape = value()?,
            "--model" => options.model = Some(value()?.into()),
            "--batch" => options.batch = value()?.parse().context("--batch")?,
            "--seq" => options.seq = value()?.parse().context("--seq")?,
            "--losses-out" => options.losses_out = Some(value()?.into()),
            "--only" => options.only = Some(value()?.parse()?),
            other => match other.parse() {
                Ok(n) => options.iterations = n,
                Err(_) => bail!(
                    "unknown argument `{other}` (expected ITERATIONS, --device, --shape, --model, --batch, --seq, --losses-out or --only)"
                ),
            },
        }
    }
    if options.losses_out.is_some() && options.only.is_some_and(|m| m != Measurement::Evaluate) {
        bail!("--losses-out writes the losses of `evaluate`: drop --only or use --only evaluate");
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = parse()?;
    let selected = select(options.device)?;
    let device_name = selected.name();
    selected.run(Bench {
        options,
        device_name,
    })
}

struct Bench {
    options: Options,
    device_name: String,
}

impl BackendTask for Bench {
    type Output = anyhow::Result<()>;

    fn run<B: Backend>(self, device: B::Device) -> anyhow::Result<()> {
        let Options {
            iterations,
            batch,
            seq,
            ..
        } = self.options;
        let (config, model, name): (LlamaConfig, Llama<B>, String) = match &self.options.model {
            Some(dir) => {
                let (config, model) = subnet_model::io::load_artifact::<B>(dir, u64::MAX, &device)
                    .with_context(|| format!("loading {}", dir.display()))?;
                (config, model, dir.display().to_string())
            }
            None => {
                let config = match self.options.shape.as_str() {
                    "6x256" => LlamaConfig::bench_6x256(),
                    "smollm2" => LlamaConfig::smollm2_135m(),
                    other => bail!("unknown --shape `{other}` (expected 6x256 or smollm2)"),
                };
                let model = config.init_seeded::<B>(&device, 0);
                (config, model, format!("random {}", self.options.shape))
            }
        };
        let ids: Vec<u32> = (0..batch * seq).map(|i| (i * 31 % 256) as u32).collect();
        let samples: Vec<Sample> = ids
            .chunks(seq)
            .map(|chunk| Sample {
                input_ids: chunk.to_vec(),
                completion_start: seq / 2,
            })
            .collect();
        let input = || {
            let flat: Vec<i64> = ids.iter().map(|&t| i64::from(t)).collect();
            Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [batch, seq]), &device)
        };

        println!(
            "burn 0.21 f32 on {} | {name}: {} layers, hidden {}, {} heads / {} kv, vocab {}, {} params | batch {batch} x {seq} tokens, {iterations} iterations",
            self.device_name,
            config.num_hidden_layers,
            config.hidden_size,
            config.num_attention_heads,
            config.num_key_value_heads,
            config.vocab_size,
            config.num_parameters()
        );
        println!("| what | seconds / batch | tokens / s |");
        println!("|---|---|---|");
        let only = self.options.only;
        let time = |measurement: Measurement, name: &str, run: &mut dyn FnMut()| {
            if only.is_some_and(|only| only != measurement) {
                return;
            }
            run(); // warm-up (and, on a GPU, kernel compilation and autotuning)
            let start = Instant::now();
            for _ in 0..iterations {
                run();
            }
            let per_batch = start.elapsed().as_secs_f64() / iterations as f64;
            println!(
                "| {name} | {per_batch:.4} | {:.0} |",
                (batch * seq) as f64 / per_batch
            );
        };
        time(
            Measurement::Forward,
            "forward (logits, summed)",
            &mut || {
                let total = model.forward(input()).sum().into_data();
                assert_eq!(total.num_elements(), 1);
            },
        );
        let mut losses = Vec::new();
        time(
            Measurement::Evaluate,
            "evaluate (per-sample loss)",
            &mut || {
                losses = evaluate(&model, &samples, batch).expect("evaluate");
                assert_eq!(losses.len(), batch);
            },
        );
        time(
            Measurement::Fitted,
            "evaluate_fitted (25 temperatures)",
            &mut || {
                let fitted = evaluate_fitted(&model, &samples, batch).expect("evaluate_fitted");
                assert_eq!(fitted.losses.len(), batch);
            },
        );
        if let Some(path) = &self.options.losses_out {
            let losses: Vec<f64> = losses.iter().map(|l| l.loss).collect();
            let json = serde_json::json!({ "device": self.device_name, "losses": losses });
            std::fs::write(path, json.to_string())
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

/// As in the `validator` and `miner` binaries.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
