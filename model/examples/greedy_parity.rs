//! Does a miner generating on one device pass a validator's greedy spot-check computed on the
//! CPU? Generates greedily on `--device` (a GPU multiplies in TF32), then checks every answer
//! with [`verify_greedy`] on the CPU, as a CPU validator does.
//!
//! ```sh
//! cargo run --release -p subnet-model --features cuda --example greedy_parity -- --device cuda
//! cargo run --release -p subnet-model --example greedy_parity -- --model DIR --prompts 64
//! ```
//!
//! Options: `--model DIR` (default the transformers-written `tests/fixtures/hf-tiny`, whose
//! logits reach about 9), `--device auto|cpu|cuda` (default cpu), `--prompts N` (default 64),
//! `--new N` new tokens per prompt (default 24). Prompts are 8 token ids from a fixed seed.
//! Prints how many answers equal the CPU's own greedy tokens and how many pass the check.

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::backend::Backend;
use rand::{Rng, SeedableRng};
use subnet_model::backend::{BackendTask, DeviceChoice, select};
use subnet_model::generate::{
    GenerateOptions, GreedyAnswer, GreedyVerdict, generate, verify_greedy,
};
use subnet_model::io::load_artifact;

fn main() -> anyhow::Result<()> {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny");
    let (mut device, mut prompts, mut new) = (DeviceChoice::Cpu, 64usize, 24usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--model" => dir = value()?.into(),
            "--device" => device = value()?.parse()?,
            "--prompts" => prompts = value()?.parse().context("--prompts")?,
            "--new" => new = value()?.parse().context("--new")?,
            other => {
                bail!("unknown argument `{other}` (expected --model, --device, --prompts or --new)")
            }
        }
    }
    let cpu = Default::default();
    let (config, reference) = load_artifact::<subnet_model::backend::Cpu>(&dir, u64::MAX, &cpu)
        .with_context(|| format!("loading {}", dir.display()))?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(17);
    let inputs: Vec<Vec<u32>> = (0..prompts)
        .map(|_| {
            (0..8)
                .map(|_| rng.gen_range(0..config.vocab_size.min(256)) as u32)
                .collect()
        })
        .collect();
    let options = GenerateOptions {
        max_new_tokens: new,
        temperature: 0.0,
        seed: 0,
        stop_token: None,
    };
    let selected = select(device)?;
    let name = selected.name();
    let answers = selected.run(Generate {
        dir: dir.clone(),
        inputs: inputs.clone(),
        options: options.clone(),
    })?;
    let (mut equal, mut passed, mut tokens_differing) = (0, 0, 0);
    for (prompt, output) in inputs.iter().zip(answers) {
        let own = generate(&reference, prompt, &options)?;
        equal += usize::from(own == output);
        tokens_differing += own.iter().zip(&output).filter(|(a, b)| a != b).count();
        let answer = GreedyAnswer {
            prompt: prompt.clone(),
            max_new_tokens: new,
            output,
        };
        match verify_greedy(&reference, &answer, &[])? {
            GreedyVerdict::Match => passed += 1,
            GreedyVerdict::Mismatch(reason) => eprintln!("fails the CPU check: {reason}"),
        }
    }
    println!(
        "{} generated on {name}, checked on the CPU: {prompts} prompts x {new} tokens; \
         {equal}/{prompts} answers equal the CPU's greedy tokens ({tokens_differing} tokens differ \
         in all); {passed}/{prompts} pass verify_greedy",
        dir.display()
    );
    Ok(())
}

struct Generate {
    dir: PathBuf,
    inputs: Vec<Vec<u32>>,
    options: GenerateOptions,
}

impl BackendTask for Generate {
    type Output = anyhow::Result<Vec<Vec<u32>>>;

    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let (_, model) = load_artifact::<B>(&self.dir, u64::MAX, &device)?;
        self.inputs
            .iter()
            .map(|prompt| Ok(generate(&model, prompt, &self.options)?))
            .collect()
    }
}
