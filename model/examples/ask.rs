//! What a model answers: greedy answers of model directories to a competition's tasks (with
//! exact-match accuracy by the tasks' own checker) and to open questions, side by side.
//!
//! ```sh
//! cargo run --release -p subnet-model --example ask -- \
//!     --competition competitions/smollm2-135m.toml --tasks 32 --seed 1 \
//!     --ask "Why should we wash our hands?" models/smollm2-135m /tmp/finetuned
//! ```
//!
//! Options: `--competition FILE` (required: its task mix and chat format), `--tasks N` tasks
//! drawn from `--seed S` (a number; default 0 tasks), `--ask TEXT` (repeatable), `--new N` most
//! new tokens per answer (default 48), `--open N` open instructions (`tasks::open`) drawn from the
//! same seed, answered within `--open-new N` tokens (default 128) and scored by the share of their
//! constraints kept. Prints each answer, then per model the share of tasks answered exactly right
//! (`TaskKind::check`) by kind, and the open instructions' mean score and time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use subnet_model::competition::Competition;
use subnet_model::follow::{self, follow};
use subnet_model::io::load_artifact;
use subnet_model::tasks::{self, TaskKind};
use subnet_model::tokenizer::Tokenizer;

type B = subnet_model::backend::Cpu;

fn main() -> anyhow::Result<()> {
    let (mut competition, mut n_tasks, mut seed, mut new) = (None, 0usize, 0u64, 48usize);
    let (mut n_open, mut open_new) = (0usize, 128usize);
    let (mut questions, mut models) = (Vec::new(), Vec::new());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--competition" => competition = Some(PathBuf::from(value()?)),
            "--tasks" => n_tasks = value()?.parse().context("--tasks")?,
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--ask" => questions.push(value()?),
            "--new" => new = value()?.parse().context("--new")?,
            "--open" => n_open = value()?.parse().context("--open")?,
            "--open-new" => open_new = value()?.parse().context("--open-new")?,
            flag if flag.starts_with("--") => bail!("unknown option `{flag}`"),
            dir => models.push(PathBuf::from(dir)),
        }
    }
    let path = competition.context("--competition FILE is required")?;
    let competition = Competition::from_toml(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )?;
    if models.is_empty() {
        bail!("name at least one model directory");
    }
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let examples = tasks::generate(seed_bytes, &competition.tasks, n_tasks);
    let open_tasks = tasks::open::generate(seed_bytes, n_open);
    let mut open_tally: Vec<(f64, usize, usize, f64)> = Vec::new();
    let device = Default::default();
    let mut tally: Vec<BTreeMap<TaskKind, (usize, usize)>> = Vec::new();
    for dir in &models {
        let (_, model) = load_artifact::<B>(dir, u64::MAX, &device)?;
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        let answer = |prompt: &str| -> anyhow::Result<String> {
            Ok(follow::answer(&model, &tokenizer, &competition, prompt, new)?.text)
        };
        println!("== {}", dir.display());
        for question in &questions {
            println!("Q: {question}\nA: {}\n", answer(question)?);
        }
        let mut counts: BTreeMap<TaskKind, (usize, usize)> = BTreeMap::new();
        for example in &examples {
            let got = answer(&example.prompt)?;
            let right = example.kind.check(&example.prompt, &got);
            let entry = counts.entry(example.kind).or_default();
            entry.0 += usize::from(right);
            entry.1 += 1;
            println!(
                "[{}] {}\n  expected: {}\n  got:      {got}",
                if right { "ok" } else { "--" },
                example.prompt,
                example.completion
            );
        }
        tally.push(counts);
        let started = Instant::now();
        let followed = follow(&model, &tokenizer, &competition, &open_tasks, open_new)?;
        let secs = started.elapsed().as_secs_f64();
        for (task, answer) in open_tasks.iter().zip(&followed) {
            println!(
                "[{:.2}{}] {}\n  {}",
                answer.score,
                if answer.finished { "" } else { ", cut off" },
                task.prompt,
                answer.answer.replace('\n', "\n  ")
            );
        }
        let total: f64 = followed.iter().map(|f| f.score).sum();
        let all_kept = followed.iter().filter(|f| f.score == 1.0).count();
        let tokens: usize = followed.iter().map(|f| f.tokens).sum();
        open_tally.push((total, all_kept, tokens, secs));
    }
    println!("\nexact match by kind:");
    for (dir, counts) in models.iter().zip(&tally) {
        let (right, all) = counts
            .values()
            .fold((0, 0), |(r, a), (cr, ca)| (r + cr, a + ca));
        let by_kind: Vec<String> = counts
            .iter()
            .map(|(kind, (r, a))| format!("{kind} {r}/{a}"))
            .collect();
        println!("{}: {right}/{all} ({})", dir.display(), by_kind.join(", "));
    }
    if n_open > 0 {
        println!("\nopen instructions ({n_open}, at most {open_new} new tokens each):");
        for (dir, (total, all_kept, tokens, secs)) in models.iter().zip(&open_tally) {
            println!(
                "{}: mean score {:.3}, every constraint kept {all_kept}/{n_open}, {tokens} tokens \
                 in {secs:.1} s",
                dir.display(),
                total / n_open as f64
            );
        }
    }
    Ok(())
}
