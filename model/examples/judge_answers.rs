//! How the competition's base model judges answers to open instructions: for each answer its
//! mean token loss under the base (`follow::answer_losses`, raw and lowercased), its distinct-word
//! ratio and its self-repetition (`open::repeated_share`), next to its constraint score. The
//! answers come from model directories (greedy, as the validator generates them), from a JSON file
//! (an array of strings, one per task, in task order) and from built-in attacks.
//!
//! ```sh
//! cargo run --release -p subnet-model --example judge_answers -- \
//!     --competition competitions/smollm2-135m.toml --seed 11 --open 16 \
//!     --judge models/smollm2-135m --answers docs/data/honest-answers-seed11.json \
//!     --attacks models/smollm2-135m /tmp/ft8
//! ```
//!
//! Prints one line per answer and the time the base took to judge each source, then per source
//! the minimum, median and maximum of each measure.

use std::path::PathBuf;

use anyhow::{Context, bail};
use subnet_model::competition::Competition;
use subnet_model::follow::{answer_losses, follow};
use subnet_model::io::load_artifact;
use subnet_model::tasks::open::{self, OpenTask, repeated_share};
use subnet_model::tokenizer::Tokenizer;

type B = subnet_model::backend::Cpu;

/// Answers that keep the form and say nothing, per task.
fn attacks(task: &OpenTask) -> Vec<(&'static str, String)> {
    let subject = task.subject[0].clone();
    let cycle = format!("The {subject} is good. ").repeat(8);
    let list = [
        "red", "blue", "green", "small", "large", "old", "new", "warm", "cold", "bright", "dark",
        "soft", "hard", "quick", "slow", "quiet", "loud", "clean", "plain", "round",
    ];
    let salad = format!("{subject} {}", list.join(" "));
    let common = [
        "the", "of", "and", "to", "in", "a", "that", "for", "it", "as", "was", "with", "be", "by",
        "on", "not", "he", "this", "are", "or",
    ];
    let common = format!("{subject} {}", common.join(" "));
    vec![
        (
            "filler",
            format!("{subject} ").repeat(9).trim_end().to_string(),
        ),
        ("cycle", cycle.trim_end().to_string()),
        ("word list", salad),
        ("common words", common),
        (
            "nonsense",
            format!("The {subject} was damaged by a burst of light."),
        ),
    ]
}

fn ttr(text: &str) -> f64 {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    let distinct: std::collections::HashSet<&String> = words.iter().collect();
    distinct.len() as f64 / words.len().max(1) as f64
}

fn spread(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    values.sort_by(f64::total_cmp);
    format!(
        "{:.2} / {:.2} / {:.2}",
        values[0],
        values[values.len() / 2],
        values[values.len() - 1]
    )
}

fn main() -> anyhow::Result<()> {
    let (mut competition, mut seed, mut n_open, mut open_new) = (None, 0u64, 16usize, 96usize);
    let (mut judge, mut answer_files, mut models, mut with_attacks) =
        (None, Vec::new(), Vec::new(), false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--competition" => competition = Some(PathBuf::from(value()?)),
            "--seed" => seed = value()?.parse().context("--seed")?,
            "--open" => n_open = value()?.parse().context("--open")?,
            "--open-new" => open_new = value()?.parse().context("--open-new")?,
            "--judge" => judge = Some(PathBuf::from(value()?)),
            "--answers" => answer_files.push(PathBuf::from(value()?)),
            "--attacks" => with_attacks = true,
            flag if flag.starts_with("--") => bail!("unknown option `{flag}`"),
            dir => models.push(PathBuf::from(dir)),
        }
    }
    let path = competition.context("--competition FILE is required")?;
    let competition = Competition::from_toml(
        &std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?,
    )?;
    let judge_dir = judge.context("--judge DIR (the base model) is required")?;
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let tasks = open::generate(seed_bytes, n_open);
    for (i, task) in tasks.iter().enumerate() {
        println!("task {i:2}: {}", task.prompt);
    }
    let device = Default::default();

    // (source, per task: (answer, finished)).
    let mut sources: Vec<(String, Vec<(String, bool)>)> = Vec::new();
    for dir in &models {
        let (_, model) = load_artifact::<B>(dir, u64::MAX, &device)?;
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        let followed = follow(&model, &tokenizer, &competition, &tasks, open_new)?;
        sources.push((
            dir.display().to_string(),
            followed
                .into_iter()
                .map(|f| (f.answer, f.finished))
                .collect(),
        ));
    }
    for file in &answer_files {
        let answers: Vec<String> = serde_json::from_slice(
            &std::fs::read(file).with_context(|| format!("{}", file.display()))?,
        )
        .with_context(|| format!("{}: a JSON array of strings", file.display()))?;
        if answers.len() != tasks.len() {
            bail!(
                "{}: {} answers for {} tasks",
                file.display(),
                answers.len(),
                tasks.len()
            );
        }
        if with_attacks {
            // The same words backwards: every word-level constraint kept, no sense left.
            sources.push((
                format!("attack: {} reversed", file.display()),
                answers
                    .iter()
                    .map(|a| (a.split(' ').rev().collect::<Vec<_>>().join(" "), true))
                    .collect(),
            ));
        }
        sources.push((
            file.display().to_string(),
            answers.into_iter().map(|a| (a, true)).collect(),
        ));
    }
    if with_attacks {
        let names: Vec<&str> = attacks(&tasks[0]).iter().map(|(n, _)| *n).collect();
        for (k, name) in names.iter().enumerate() {
            sources.push((
                format!("attack: {name}"),
                tasks
                    .iter()
                    .map(|t| (attacks(t)[k].1.clone(), true))
                    .collect(),
            ));
        }
    }

    let (_, base) = load_artifact::<B>(&judge_dir, u64::MAX, &device)?;
    let tokenizer = Tokenizer::from_model_dir(&judge_dir)?;
    let mut summary = Vec::new();
    for (source, answers) in &sources {
        println!("== {source}");
        let texts: Vec<&str> = answers.iter().map(|(a, _)| a.as_str()).collect();
        let lowered: Vec<String> = texts.iter().map(|a| a.to_lowercase()).collect();
        let lowered: Vec<&str> = lowered.iter().map(String::as_str).collect();
        let started = std::time::Instant::now();
        let raw = answer_losses(&base, &tokenizer, &competition, &tasks, &texts, 8)?;
        println!(
            "judged {} answers in {:.2} s",
            texts.len(),
            started.elapsed().as_secs_f64()
        );
        let lower = answer_losses(&base, &tokenizer, &competition, &tasks, &lowered, 8)?;
        let mut columns: [Vec<f64>; 4] = Default::default();
        for (i, (task, (answer, finished))) in tasks.iter().zip(answers).enumerate() {
            let score = task.score(answer, *finished);
            let (ttr, rep) = (ttr(answer), repeated_share(answer));
            let fmt = |l: Option<f64>| l.map_or("-".into(), |l| format!("{l:.2}"));
            println!(
                "[{i:2}] score {score:.2} finished {finished} loss {} lower {} ttr {ttr:.2} \
                 repeated {rep:.2} | {}",
                fmt(raw[i]),
                fmt(lower[i]),
                answer.replace('\n', " / ")
            );
            // Only answers that could score: finished and on topic.
            if *finished && task.on_topic(answer) {
                columns[0].extend(raw[i]);
                columns[1].extend(lower[i]);
                columns[2].push(ttr);
                columns[3].push(rep);
            }
        }
        summary.push((source.clone(), columns));
    }
    println!("\nmin / median / max over the answers that could score (finished, on topic):");
    println!("source | n | base loss | lowercased | distinct-word ratio | repeated share");
    for (source, mut columns) in summary {
        let n = columns[2].len();
        let [a, b, c, d] = &mut columns;
        println!(
            "{source} | {n} | {} | {} | {} | {}",
            spread(a),
            spread(b),
            spread(c),
            spread(d)
        );
    }
    Ok(())
}
