//! `validator eval`: score one local model directory the way the model track would.
//!
//! The model is loaded with the same checks as a miner's artifact ([`load_checked`]: config,
//! architecture bounds, size, shapes, dtypes, finite values). Samples come from a JSONL file
//! (`--data`, lines of `{prompt, completion}` or `{input_ids, completion_start}`) or from an epoch
//! seed (`--seed`, the competition's task mix, and its pinned dataset when it names one). The
//! result goes to stdout: a short summary, or with `--json` exactly one JSON object
//! `{"mean_loss": f, "fitted_mean_loss": f, "inverse_temperature": f, "samples": [{"loss": f,
//! "fitted_loss": f, "tokens": n}, ...]}` in sample order. `loss` is at temperature 1 (what
//! transformers gives); `fitted_loss` at the model's best temperature on these samples, which is
//! what the model track scores (see `docs/scoring.md`). Logs go to stderr.
//!
//! [`load_checked`]: crate::tracks::model::compute::load_checked

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use subnet_model::backend::select;
use subnet_model::competition::CompetitionFile;
use subnet_model::config::{CONFIG_FILE, LlamaConfig};
use subnet_model::data::{Dataset, Limits};
use subnet_model::eval::FittedEval;
use subnet_model::follow::judged_scores;
use subnet_model::tokenizer::{TOKENIZER_CONFIG_JSON, TOKENIZER_JSON, Tokenizer};

use crate::cli::EvalArgs;
use crate::tracks::model::base::BaseModel;
use crate::tracks::model::compute::{EvalJob, JudgeJob};
use crate::tracks::model::outcome::mean;

/// The competition file at `path` (`--competition`), or the built-in default, with the folder
/// its relative paths (a pinned dataset) are read from.
pub fn competition_file(path: Option<&Path>) -> anyhow::Result<(CompetitionFile, PathBuf)> {
    Ok(match path {
        Some(path) => (
            CompetitionFile::load(path)
                .with_context(|| format!("--competition {}", path.display()))?,
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => (
            CompetitionFile::from_bytes(DEFAULT_COMPETITION_TOML.as_bytes())
                .context("the built-in default competition")?,
            PathBuf::from("."),
        ),
    })
}

/// The default competition's file, built in so `validator eval` works from any directory.
pub use subnet_model::competition::DEFAULT_COMPETITION_TOML;

/// The `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Mean of the per-sample losses at temperature 1 (nats).
    pub mean_loss: f64,
    /// Mean of the per-sample losses at the fitted temperature (nats), what the track scores.
    pub fitted_mean_loss: f64,
    /// The fitted inverse temperature (the factor the logits are multiplied by).
    pub inverse_temperature: f64,
    /// One entry per sample, in input order.
    pub samples: Vec<SampleReport>,
    /// The answers to the competition's open instructions (`[open]`, with `--seed`), in task
    /// order; empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub following: Vec<FollowReport>,
}

/// One open instruction's result in [`EvalReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FollowReport {
    /// The instruction.
    pub prompt: String,
    /// The model's greedy answer.
    pub answer: String,
    /// Whether the answer ended within the token budget.
    pub finished: bool,
    /// The share of the instruction's constraints the answer kept (0 when cut off, off topic, or
    /// above the competition's `max_base_loss` under the base).
    pub score: f64,
    /// The answer's mean token loss under the base model (`--base`), when it was judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_loss: Option<f64>,
}

/// One sample's result in [`EvalReport`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleReport {
    /// Mean cross-entropy over the completion tokens at temperature 1 (nats).
    pub loss: f64,
    /// The same at the fitted temperature.
    pub fitted_loss: f64,
    /// Completion tokens scored.
    pub tokens: usize,
}

/// Parses a 32-byte seed written as 64 hex digits, with or without `0x`.
pub fn parse_seed(text: &str) -> anyhow::Result<[u8; 32]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let bytes = hex::decode(digits)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok());
    bytes.with_context(|| {
        format!(
            "--seed {text:?}: expected 64 hex digits (32 bytes), e.g. the eval seed of an epoch"
        )
    })
}

/// Runs `validator eval`, writing the result to `out`.
pub fn run(args: &EvalArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let model_dir = &args.model;
    if !model_dir.is_dir() {
        bail!("--model {}: no such directory", model_dir.display());
    }
    let config = LlamaConfig::from_file(&model_dir.join(CONFIG_FILE))
        .with_context(|| format!("--model {}: bad {CONFIG_FILE}", model_dir.display()))?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let (competition, competition_dir) = competition_file(args.competition.as_deref())?;
    let mut rules = competition.competition;
    // The judge's base, checked against the pin before any model work.
    let judge = match (rules.open.and_then(|open| open.max_base_loss), &args.base) {
        (Some(max_loss), Some(dir)) => {
            BaseModel::for_competition(&rules, Some(dir))
                .with_context(|| format!("--base {}", dir.display()))?;
            Some((max_loss, dir.clone()))
        }
        (None, Some(dir)) => {
            tracing::warn!(base = %dir.display(), "the competition does not judge open answers; --base is not used");
            None
        }
        // With `--data` there are no open instructions to judge.
        (Some(_), None) if args.data.is_none() => {
            tracing::warn!(
                "the competition's base model judges the open answers (max_base_loss): pass \
                 --base DIR to judge them as validators do; the following shares are not judged"
            );
            None
        }
        _ => None,
    };
    // Samples longer than the model's context would be refused; a local run truncates instead.
    rules.eval.max_seq_len = rules.eval.max_seq_len.min(config.max_position_embeddings);
    let tokenizer = Tokenizer::from_model_dir(model_dir)
        .with_context(|| format!("--model {}: tokenizer", model_dir.display()))?;
    // A local run scores any model; say so when validators would refuse it for its tokenizer.
    let file_sha256 = |name: &str| {
        std::fs::read(model_dir.join(name))
            .ok()
            .map(|bytes| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)))
    };
    if let Err(reason) = rules.check_tokenizer(
        file_sha256(TOKENIZER_JSON).as_deref(),
        file_sha256(TOKENIZER_CONFIG_JSON).as_deref(),
    ) {
        tracing::warn!(%reason, "validators of this competition would score this model 0 (bad_model)");
    }

    let mut open_tasks = Vec::new();
    let samples = match (&args.data, &args.seed) {
        (Some(path), None) => {
            let dataset = Dataset::load(path, &Limits::default())
                .with_context(|| format!("--data {}", path.display()))?;
            let mut samples = Vec::with_capacity(dataset.len());
            for (line, record) in dataset.records().iter().enumerate() {
                let sample = record
                    .to_sample(&tokenizer, rules.eval.max_seq_len)
                    .with_context(|| format!("--data {}: record {}", path.display(), line + 1))?;
                samples.push(sample);
            }
            samples
        }
        (None, Some(seed)) => {
            let seed = parse_seed(seed)?;
            if let Some(n) = args.samples {
                if n == 0 {
                    bail!("--samples must be at least 1");
                }
                rules.eval.samples = n;
            }
            let dataset = match &rules.dataset {
                Some(spec) => Some(
                    spec.load(&competition_dir, &Limits::default())
                        .context("the competition's dataset")?,
                ),
                None => None,
            };
            open_tasks = rules.open_tasks(seed);
            rules
                .eval_samples(seed, &tokenizer, dataset.as_ref())
                .context("building the seeded samples")?
        }
        _ => bail!("give exactly one of --data FILE or --seed HEX"),
    };

    let device = select(args.device).with_context(|| format!("--device {}", args.device))?;
    tracing::info!(
        model = %model_dir.display(),
        device = %device.name(),
        samples = samples.len(),
        params = config.num_parameters(),
        "evaluating"
    );
    let started = std::time::Instant::now();
    let job = EvalJob {
        dir: model_dir.clone(),
        competition: Arc::new(rules.clone()),
        samples: Arc::new(samples),
        batch_size: args.batch,
        skip_eval: false,
        spot: None,
        open: (!open_tasks.is_empty()).then(|| Arc::new(open_tasks.clone())),
    };
    let output = device
        .run(job)
        .with_context(|| format!("--model {}", model_dir.display()))?;
    let fitted = output.fitted.context("the evaluation returned no losses")?;
    let following = output.following.unwrap_or_default();
    // The base judges the answers that score, as the validators' model track does.
    let (scores, base_losses) = match judge {
        Some((max_loss, base_dir)) if !following.is_empty() => {
            let job = JudgeJob::for_answers(
                base_dir.clone(),
                Arc::default(),
                Arc::new(rules.clone()),
                Arc::new(open_tasks.clone()),
                &following,
                args.batch,
            );
            let losses = device
                .run(job)
                .with_context(|| format!("--base {}: judging the answers", base_dir.display()))?;
            (judged_scores(&following, &losses, max_loss), losses)
        }
        _ => (following.iter().map(|a| a.score).collect(), Vec::new()),
    };
    let elapsed = started.elapsed();
    let mut report = report(&fitted);
    report.following = open_tasks
        .iter()
        .zip(following)
        .enumerate()
        .map(|(i, (task, answer))| FollowReport {
            prompt: task.prompt.clone(),
            answer: answer.answer,
            finished: answer.finished,
            score: scores[i],
            base_loss: base_losses.get(i).copied().flatten(),
        })
        .collect();
    if args.json {
        serde_json::to_writer(&mut *out, &report).context("writing the JSON report")?;
        writeln!(out)?;
    } else {
        write_summary(out, model_dir, &device.name(), &report, elapsed)?;
    }
    Ok(())
}

/// The report of a fitted evaluation.
pub fn report(fitted: &FittedEval) -> EvalReport {
    let mean_of = |losses: &[subnet_model::eval::SampleLoss]| {
        mean(&losses.iter().map(|l| l.loss).collect::<Vec<_>>()).unwrap_or(f64::NAN)
    };
    EvalReport {
        mean_loss: mean_of(&fitted.unfitted),
        fitted_mean_loss: mean_of(&fitted.losses),
        inverse_temperature: fitted.inverse_temperature,
        following: Vec::new(),
        samples: fitted
            .unfitted
            .iter()
            .zip(&fitted.losses)
            .map(|(plain, fit)| SampleReport {
                loss: plain.loss,
                fitted_loss: fit.loss,
                tokens: plain.tokens,
            })
            .collect(),
    }
}

fn write_summary(
    out: &mut impl Write,
    model_dir: &Path,
    device: &str,
    report: &EvalReport,
    elapsed: std::time::Duration,
) -> std::io::Result<()> {
    let tokens: usize = report.samples.iter().map(|s| s.tokens).sum();
    let (min, max) = report
        .samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), s| {
            (lo.min(s.loss), hi.max(s.loss))
        });
    writeln!(out, "model      {}", model_dir.display())?;
    writeln!(out, "device     {device}")?;
    writeln!(
        out,
        "samples    {} ({tokens} completion tokens)",
        report.samples.len()
    )?;
    writeln!(out, "mean loss  {:.6} nats", report.mean_loss)?;
    writeln!(
        out,
        "fitted     {:.6} nats at inverse temperature {:.4} (what the model track scores)",
        report.fitted_mean_loss, report.inverse_temperature
    )?;
    writeln!(out, "min / max  {min:.6} / {max:.6}")?;
    if !report.following.is_empty() {
        let n = report.following.len();
        let mean = report.following.iter().map(|f| f.score).sum::<f64>() / n as f64;
        let all = report.following.iter().filter(|f| f.score == 1.0).count();
        let cut = report.following.iter().filter(|f| !f.finished).count();
        writeln!(
            out,
            "following  {mean:.3} of the constraints kept on average over {n} open instructions \
             ({all} kept them all, {cut} cut off by the token budget{})",
            if report.following.iter().any(|f| f.base_loss.is_some()) {
                ", judged by the base model"
            } else {
                ""
            }
        )?;
    }
    writeln!(out, "time       {:.2} s", elapsed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_with_or_without_0x_and_name_the_flag_otherwise() {
        let hex64 = "ab".repeat(32);
        assert_eq!(parse_seed(&hex64).unwrap(), [0xab; 32]);
        assert_eq!(parse_seed(&format!("0x{hex64}")).unwrap(), [0xab; 32]);
        for bad in ["", "zz", &"ab".repeat(31), &"ab".repeat(33)] {
            let error = parse_seed(bad).unwrap_err().to_string();
            assert!(error.contains("--seed"), "{error}");
        }
    }

    #[test]
    fn the_report_keeps_sample_order_and_averages() {
        use subnet_model::eval::SampleLoss;
        let loss = |loss, tokens| SampleLoss { loss, tokens };
        let fitted = FittedEval {
            losses: vec![loss(0.5, 3), loss(2.5, 1)],
            inverse_temperature: 0.75,
            token_log_probs: vec![vec![-0.5; 3], vec![-2.5]],
            unfitted: vec![loss(1.0, 3), loss(3.0, 1)],
        };
        let report = report(&fitted);
        assert_eq!(report.mean_loss, 2.0);
        assert_eq!(
            serde_json::to_value(&report).unwrap(),
            serde_json::json!({
                "mean_loss": 2.0,
                "fitted_mean_loss": 1.5,
                "inverse_temperature": 0.75,
                "samples": [
                    {"loss": 1.0, "fitted_loss": 0.5, "tokens": 3},
                    {"loss": 3.0, "fitted_loss": 2.5, "tokens": 1}
                ]
            })
        );
    }

    #[test]
    fn the_built_in_competition_is_the_default_file() {
        let file = CompetitionFile::from_bytes(DEFAULT_COMPETITION_TOML.as_bytes()).unwrap();
        assert_eq!(file.competition.id, "byte-llama-v1");
    }
}
