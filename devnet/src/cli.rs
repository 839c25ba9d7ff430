//! Command line of the `devnet` binary. Every flag can also come from an environment variable.

use std::path::PathBuf;

use clap::Parser;

use crate::competition::CompetitionChoice;
use crate::roster::{ExtraLabeler, ExtraModel, RosterKind};

/// A whole local subnet in one command: a throwaway Postgres, a dev chain, miners (strong, weak,
/// a copier, a broken commitment, label miners with simulated labelers) and validators. Prints who
/// earned what each epoch, then stops everything.
///
/// It runs the sibling binaries `devchain`, `miner` and `validator` found next to its own
/// executable: build them first with `cargo build --release --bins`.
#[derive(Debug, Clone, Parser)]
#[command(name = "devnet", version, about)]
pub struct Cli {
    /// Model-track miners, taken in this order: strong, weak, copier (re-commits the strong
    /// model later), broken (commits an artifact it does not serve).
    /// Default: 4, or 2 with a real model (`--competition smollm2-135m`).
    #[arg(long, env = "DEVNET_MINERS",
          value_parser = clap::value_parser!(u8).range(0..=4))]
    pub miners: Option<u8>,

    /// Which miners: `standard` (`--miners` of strong, weak, copier, broken) or `adversarial`
    /// (a front-runner of the strong miner's commitment, strong, weak, four copies of the strong
    /// model made the ways attackers make them, and one model on three hotkeys; `--miners` is
    /// ignored).
    #[arg(long, env = "DEVNET_ROSTER", value_enum, default_value_t = RosterKind::Standard)]
    pub roster: RosterKind,
    /// A model directory of your own (`config.json`, `model.safetensors`) served and committed
    /// by one more miner named NAME, after the strong model; repeat the flag for more. It is
    /// judged by the devnet's `--competition`.
    #[arg(long = "extra-model", env = "DEVNET_EXTRA_MODELS", value_name = "NAME=DIR",
          value_delimiter = ',', value_parser = ExtraModel::parse)]
    pub extra_models: Vec<ExtraModel>,

    /// The competition miners enter and validators judge: `default` (byte-level toy models,
    /// base `miner init-base --preset tiny --seed 7`), `smollm2-135m` (fine-tunes of
    /// SmolLM2-135M-Instruct; base from `--base-model`; wants release builds and slower epochs,
    /// see the README), or the path of a competition .toml file.
    #[arg(long, env = "DEVNET_COMPETITION", default_value = "default",
          value_parser = CompetitionChoice::parse)]
    pub competition: CompetitionChoice,

    /// The base model the miners fine-tune (`config.json`, `model.safetensors`, tokenizer files).
    /// Default: `models/smollm2-135m` for `--competition smollm2-135m`, as
    /// `scripts/fetch-base-model.sh` writes it; a random byte-level model for competitions
    /// that pin no tokenizer.
    #[arg(long = "base-model", env = "DEVNET_BASE_MODEL", value_name = "DIR")]
    pub base_model: Option<PathBuf>,

    /// Label-track miners, each with a simulated labeler: accurate (95%), then inaccurate (55%).
    /// At most 1 with `--roster adversarial`.
    #[arg(long = "label-miners", env = "DEVNET_LABEL_MINERS", default_value_t = 2,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub label_miners: u8,

    /// One more label miner named NAME whose labeler is a program: `miner labelers simulate
    /// --answer-with CMD` (each task as JSON on its stdin, it prints a, b or tie), to see what
    /// the validators pay a bot; repeat the flag for more.
    #[arg(long = "extra-labeler", env = "DEVNET_EXTRA_LABELERS", value_name = "NAME=CMD",
          value_parser = ExtraLabeler::parse)]
    pub extra_labelers: Vec<ExtraLabeler>,

    /// Seconds a label batch stays open, so that a person (the sign-in link the devnet prints)
    /// can label one: the validators' label windows then span epochs, and each epoch's batches
    /// are collected, and paid, that many seconds later. 0: within each epoch (three quarters
    /// of it), as fast as simulated labelers allow.
    #[arg(
        long = "label-window-secs",
        env = "DEVNET_LABEL_WINDOW_SECS",
        default_value_t = 120
    )]
    pub label_window_secs: u64,

    /// Validators (staked by //Bob, //Charlie, //Dave, //Eve). Default: 2 (3 with `--roster
    /// adversarial`), or 1 with a real model.
    #[arg(long, env = "DEVNET_VALIDATORS",
          value_parser = clap::value_parser!(u8).range(1..=4))]
    pub validators: Option<u8>,

    /// Epochs to run once the validators are up (Ctrl-C stops earlier). The default lets the
    /// first label windows (`--label-window-secs`) close and be paid.
    #[arg(long, env = "DEVNET_EPOCHS", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub epochs: u32,

    /// Blocks per epoch of the dev subnet.
    #[arg(long, env = "DEVNET_TEMPO", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(5..))]
    pub tempo: u16,

    /// Milliseconds between blocks. Default: 500, or 8000 with a real model (epochs of about
    /// three minutes, time for its evaluation and label answers on 2 cores).
    #[arg(long = "block-time-ms", env = "DEVNET_BLOCK_TIME_MS",
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub block_time_ms: Option<u64>,

    /// Fine-tuning steps of the strong miner (default: 150 for byte-level models, 8 for a real
    /// model such as SmolLM2, batch 8 at a learning rate of 1e-4).
    #[arg(long = "strong-steps", env = "DEVNET_STRONG_STEPS")]
    pub strong_steps: Option<usize>,

    /// Fine-tuning steps of the weak miner (default: 5 for byte-level models, 1 for a real one).
    #[arg(long = "weak-steps", env = "DEVNET_WEAK_STEPS")]
    pub weak_steps: Option<usize>,

    /// Samples each validator evaluates every model on per epoch (default: the competition's
    /// `eval.samples`, 256 in the default one; 16 with a real model). Fewer make epochs cheaper, e.g. with debug builds.
    #[arg(long = "eval-samples", env = "DEVNET_EVAL_SAMPLES",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub eval_samples: Option<u32>,

    /// Open instructions each validator has every model answer per epoch, in a competition that
    /// scores them (`[open]`; default: the competition's `open.samples`, 16 in `smollm2-135m`:
    /// each costs every validator up to 96 generated tokens per model, 16 answered at once).
    #[arg(long = "open-samples", env = "DEVNET_OPEN_SAMPLES",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub open_samples: Option<u32>,

    /// Postgres server to use (a superuser URL: the devnet creates and drops its own
    /// databases there). Without it a throwaway cluster is started with the local PostgreSQL.
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: Option<String>,

    /// Keep the run directory (chain data, wallets, models, logs, summary.json) and, with
    /// `--db.url`, the databases.
    #[arg(long, env = "DEVNET_KEEP")]
    pub keep: bool,

    /// Directory for this run (default: a new temporary directory).
    #[arg(long = "run-dir", env = "DEVNET_RUN_DIR")]
    pub run_dir: Option<PathBuf>,

    /// Write the final summary (the last metagraph with roles and scores) as JSON here
    /// (default: `summary.json` in the run directory when it is kept: `--keep`, `--run-dir`).
    #[arg(long, env = "DEVNET_SUMMARY")]
    pub summary: Option<PathBuf>,

    /// Where `devchain`, `miner` and `validator` are (default: beside this executable).
    #[arg(long = "bin-dir", env = "DEVNET_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_describe_the_full_roster() {
        let cli = Cli::try_parse_from(["devnet"]).unwrap();
        assert_eq!(cli.label_miners, 2);
        assert!(!cli.keep);
    }

    #[test]
    fn extra_models_are_named_directories() {
        let cli = Cli::try_parse_from([
            "devnet",
            "--extra-model",
            "mine=/tmp/a",
            "--extra-model",
            "other=/tmp/b",
        ])
        .unwrap();
        let names: Vec<&str> = cli.extra_models.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["mine", "other"]);
        assert_eq!(cli.extra_models[1].dir, PathBuf::from("/tmp/b"));
        for bad in ["/tmp/a", "=/tmp/a", "mine=", "Mine=/tmp/a", "strong=/tmp/a"] {
            let err = Cli::try_parse_from(["devnet", "--extra-model", bad]).unwrap_err();
            assert!(err.to_string().contains("--extra-model"), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_more_miners_than_roles() {
        assert!(Cli::try_parse_from(["devnet", "--miners", "5"]).is_err());
        assert!(Cli::try_parse_from(["devnet", "--validators", "0"]).is_err());
    }
}
