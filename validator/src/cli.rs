//! Command line of the `validator` binary. Every flag can also come from an environment variable.

use clap::{Args, Parser, Subcommand};
use subnet_common::{
    cli::{ChainArgs, WalletArgs},
    keys::AccountId,
};

/// A validator of the subnet: scores miners and sets weights on chain.
#[derive(Debug, Parser)]
#[command(name = "validator", version, about)]
pub struct Cli {
    /// `--log.format`, `--logging.debug`, `--logging.trace`.
    #[command(flatten)]
    pub log: subnet_common::cli::LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What the validator does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send one btauth/1-signed request with the validator's hotkey and print the response body.
    Query(QueryArgs),
    /// Manage the validator's hotkey and its wallet's coldkey (bittensor wallet layout).
    #[command(mut_args(|arg| arg.global(true)))]
    Keys {
        #[command(flatten)]
        wallet: WalletArgs,
        #[command(subcommand)]
        command: subnet_common::cli::KeysCommand,
    },
    /// Evaluate a local model directory as the model track would (per-sample completion loss).
    Eval(EvalArgs),
    /// Follow the chain: score every epoch, store it in Postgres, set weights (commit-reveal).
    Run(Box<RunArgs>),
    /// Write the label track's majority-labelled pairs as a JSONL preference dataset.
    ExportPreferences(ExportPreferencesArgs),
    /// Serve the dashboard (leaderboard, miner history, weights, chain, `/metrics`) from the
    /// database, without running the epoch loop.
    Dashboard(DashboardArgs),
    /// Recompute an epoch's scores, EMAs and weights from its stored raw data and compare.
    Verify(VerifyArgs),
    /// Check wallet, chain, registration, database, disk, device and clock; exit 1 on a failure.
    Doctor(DoctorArgs),
    /// Evaluate models for a `validator run --workers.enabled true` through its database, on
    /// this machine's device; run as many as there are machines or GPUs.
    Worker(WorkerArgs),
}

/// `validator run`: the epoch loop.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub wallet: WalletArgs,

    /// The chain: `--subtensor.network`, `--subtensor.chain_endpoint` (or `--chain.url`) and
    /// `--netuid`, the subnet to validate.
    #[command(flatten)]
    pub chain: ChainArgs,

    /// How often the chain head is polled while waiting for a block, in milliseconds.
    #[arg(
        long = "chain.poll-ms",
        env = "BT_CHAIN_POLL_MS",
        default_value_t = 500
    )]
    pub chain_poll_ms: u64,

    /// Postgres URL (migrations are applied at start).
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,

    /// `--device` and `--cache.dir`.
    #[command(flatten)]
    pub models: ModelPlaceArgs,

    /// Competition file (default: the built-in `competitions/default.toml`).
    #[arg(long, env = "BT_COMPETITION", value_name = "FILE")]
    pub competition: Option<std::path::PathBuf>,

    /// Port of the dashboard and `/metrics` (not served when absent).
    #[arg(long = "http.port", env = "BT_HTTP_PORT")]
    pub http_port: Option<u16>,

    /// EMA smoothing factor of the combined score, in (0, 1].
    #[arg(
        long = "scores.ema-alpha",
        env = "BT_SCORES_EMA_ALPHA",
        default_value_t = 0.3
    )]
    pub ema_alpha: f64,

    /// `version_key` sent with the weights (default: this validator's version as the SDK's
    /// `major·10⁶ + minor·10³ + patch`).
    #[arg(long = "weights.version-key", env = "BT_WEIGHTS_VERSION_KEY")]
    pub version_key: Option<u64>,

    /// Run the RLHF label track each epoch (`false`: off, every label score is 0).
    #[arg(
        long = "labels.enabled",
        env = "BT_LABELS_ENABLED",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub labels_enabled: bool,

    /// Seconds each epoch's model track waits for miners' artifacts and spot-checks; a miner not
    /// done by then is recorded as `timeout` and scored 0 for the epoch.
    #[arg(
        long = "model.fetch-budget-secs",
        env = "BT_MODEL_FETCH_BUDGET_SECS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub model_fetch_budget_secs: u64,

    /// The competition's base model directory (`scripts/fetch-base-model.sh` writes it). Required
    /// when the competition pins a base (`[base]`): its files must hash to the pin, and every
    /// entry must beat it to score.
    #[arg(long = "model.base", env = "BT_MODEL_BASE", value_name = "DIR")]
    pub model_base: Option<std::path::PathBuf>,

    /// Blocks after an epoch's first block by which the labels of the batches sent in it are
    /// collected (default: half the tempo). More than the tempo gives people a window spanning
    /// epochs (a fast dev chain): the batches are then collected, and paid, in the epoch the
    /// deadline falls in, while each epoch sends new ones.
    #[arg(long = "labels.deadline-blocks", env = "BT_LABELS_DEADLINE_BLOCKS")]
    pub labels_deadline_blocks: Option<u64>,

    /// A JSONL file of label-track prompts (`{"prompt": "..."}` per line), added to the built-in
    /// starter set; repeat the flag for more files.
    #[arg(long = "labels.prompts", value_name = "FILE")]
    pub labels_prompts: Vec<std::path::PathBuf>,

    /// Most prompts the top models answer per epoch for the label track (each gives one task to
    /// one miner): the generation budget, shared by all label miners.
    #[arg(
        long = "labels.max-prompts",
        env = "BT_LABELS_MAX_PROMPTS",
        default_value_t = crate::tracks::labels::batch::DEFAULT_MAX_PROMPTS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=100_000)
    )]
    pub labels_max_prompts: usize,

    /// Share of known-answer tasks in each label batch, in [0, 1] (the rest are open pairs, the
    /// preference data).
    #[arg(
        long = "labels.known-share",
        env = "BT_LABELS_KNOWN_SHARE",
        default_value_t = crate::tracks::labels::batch::DEFAULT_KNOWN_SHARE,
        value_parser = subnet_common::cli::parse_fraction
    )]
    pub labels_known_share: f64,

    /// Most new tokens of each answer the top models write for the label track.
    #[arg(
        long = "labels.answer-tokens",
        env = "BT_LABELS_ANSWER_TOKENS",
        default_value_t = 24,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=256)
    )]
    pub labels_answer_tokens: usize,

    /// Sampled answers each top model writes per label prompt.
    #[arg(
        long = "labels.samples",
        env = "BT_LABELS_SAMPLES",
        default_value_t = 2,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=8)
    )]
    pub labels_samples: usize,

    /// Simulations only: write each label batch's hidden truth to DIR/<batch_id>.json before
    /// sending it, for simulated labelers (`miner labelers simulate --truth-dir DIR`). It gives
    /// the known answers away: never where miners can read it.
    #[arg(long = "labels.truth-dir", value_name = "DIR")]
    pub labels_truth_dir: Option<std::path::PathBuf>,

    /// Evaluate miners' models on `validator worker` processes (this machine or others, sharing
    /// this database) instead of this process's device; the base model stays here.
    #[arg(
        long = "workers.enabled",
        env = "BT_WORKERS_ENABLED",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub workers_enabled: bool,

    /// Seconds the epoch waits with no model coming back from any worker before it gives up the
    /// models still queued (recorded as `internal_error`, not the miners' fault).
    #[arg(
        long = "workers.timeout-secs",
        env = "BT_WORKERS_TIMEOUT_SECS",
        default_value_t = 1800,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub workers_timeout_secs: u64,

    /// Print the resolved configuration as JSON and exit.
    #[arg(long = "dump-config")]
    pub dump_config: bool,
}

/// `validator worker`: evaluation jobs from the epoch loop's database.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The validator's wallet: the worker signs artifact downloads with its hotkey, as the loop
    /// does.
    #[command(flatten)]
    pub wallet: WalletArgs,

    /// The validator's Postgres URL (the one `validator run` uses).
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,

    /// `--device` and `--cache.dir` (the loop's `--cache.dir` when this machine shares it: then
    /// nothing is downloaded twice).
    #[command(flatten)]
    pub models: ModelPlaceArgs,

    /// This worker's name in the queue and logs (default: host name and process id).
    #[arg(long = "worker.name", env = "BT_WORKER_NAME")]
    pub worker_name: Option<String>,

    /// Seconds a job stays this worker's without a renewal (renewed every third of it); a
    /// worker that dies loses its job to another this long after.
    #[arg(
        long = "worker.lease-secs",
        env = "BT_WORKER_LEASE_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(3..)
    )]
    pub lease_secs: u64,
}

/// Where a validator process keeps and evaluates models: `run`, `worker` and `doctor`.
#[derive(Debug, Clone, Args)]
pub struct ModelPlaceArgs {
    /// Where to evaluate: auto (CUDA when built with it and a GPU answers), cpu or cuda.
    #[arg(long, env = "BT_DEVICE", default_value = "auto")]
    pub device: subnet_model::backend::DeviceChoice,

    /// Where downloaded model artifacts are cached (by manifest hash).
    #[arg(
        long = "cache.dir",
        env = "BT_CACHE_DIR",
        default_value = "validator-cache",
        value_name = "DIR"
    )]
    pub cache_dir: std::path::PathBuf,
}

impl ModelPlaceArgs {
    /// The device picked (`--device`), with the cache directory created (`--cache.dir`); each
    /// error names its flag.
    pub fn open(&self) -> anyhow::Result<subnet_model::backend::Selected> {
        use anyhow::Context;
        let device = subnet_model::backend::select(self.device)
            .with_context(|| format!("--device {}", self.device))?;
        std::fs::create_dir_all(&self.cache_dir)
            .with_context(|| format!("while creating --cache.dir {}", self.cache_dir.display()))?;
        Ok(device)
    }
}

/// `validator query`: an operator's signed curl.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Full URL, e.g. `http://127.0.0.1:8091/v1/identity`.
    pub url: reqwest::Url,

    /// SS58 hotkey of the server (the btauth receiver). `GET /health` on a miner shows it.
    #[arg(long)]
    pub receiver: AccountId,

    /// HTTP method. Defaults to POST when --data is given, GET otherwise.
    #[arg(long, short = 'X')]
    pub method: Option<String>,

    /// JSON request body (sent as `application/json`; must parse as JSON).
    #[arg(long, short = 'd')]
    pub data: Option<String>,

    /// Give up after this many seconds.
    #[arg(long = "timeout-secs", default_value_t = 30)]
    pub timeout_secs: u64,

    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// `validator eval`: score a local model on a JSONL file or on an epoch seed's samples.
#[derive(Debug, Clone, Args)]
#[command(group(clap::ArgGroup::new("samples_from").required(true).args(["data", "seed"])))]
pub struct EvalArgs {
    /// The model directory (`config.json`, `model.safetensors`, optional `tokenizer.json`).
    #[arg(long)]
    pub model: std::path::PathBuf,

    /// JSONL samples: lines of `{"prompt", "completion"}` or `{"input_ids", "completion_start"}`.
    #[arg(long, value_name = "FILE.jsonl")]
    pub data: Option<std::path::PathBuf>,

    /// Epoch seed (64 hex digits): samples drawn from the competition's task mix.
    #[arg(long, value_name = "HEX")]
    pub seed: Option<String>,

    /// Number of seeded samples (default: the competition's `eval.samples`). Only with --seed.
    #[arg(long, requires = "seed")]
    pub samples: Option<usize>,

    /// Competition file (default: the built-in `competitions/default.toml`).
    #[arg(long, value_name = "FILE")]
    pub competition: Option<std::path::PathBuf>,

    /// The competition's pinned base model, to judge the open answers as validators do
    /// (`[open] max_base_loss`). Only with --seed.
    #[arg(long, value_name = "DIR", requires = "seed")]
    pub base: Option<std::path::PathBuf>,

    /// Where to evaluate: auto (CUDA when built with it and a GPU answers), cpu or cuda.
    #[arg(long, env = "BT_DEVICE", default_value = "auto")]
    pub device: subnet_model::backend::DeviceChoice,

    /// Samples per forward pass.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,

    /// Print exactly one JSON object `{"mean_loss", "samples": [{"loss", "tokens"}]}`.
    #[arg(long)]
    pub json: bool,
}

/// `validator export-preferences`: `{prompt, chosen, rejected, votes, agreement, epoch}` lines.
#[derive(Debug, Clone, Args)]
pub struct ExportPreferencesArgs {
    /// Subnet whose labels are exported.
    #[arg(long, env = "BT_NETUID", default_value_t = 1)]
    pub netuid: u16,

    /// First epoch exported.
    #[arg(long = "since-epoch", default_value_t = 0)]
    pub since_epoch: u64,

    /// The JSONL file to write (replaced atomically).
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: std::path::PathBuf,

    /// Fewest label-miner votes for the preferred answer.
    #[arg(long = "min-votes", default_value_t = 1)]
    pub min_votes: u32,

    /// Postgres URL.
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,
}

/// `validator dashboard`: the dashboard alone, on a database the epoch loop fills.
#[derive(Debug, Clone, Args)]
pub struct DashboardArgs {
    /// The chain to show head, lag and emissions from (none shown without a chain flag), and
    /// `--netuid`, the subnet shown.
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Postgres URL (migrations are applied at start).
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,

    /// Address to listen on.
    #[arg(long = "http.ip", env = "BT_HTTP_IP", default_value = "127.0.0.1")]
    pub http_ip: std::net::IpAddr,

    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long = "http.port", env = "BT_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,

    /// Seconds between two reads of the chain.
    #[arg(long = "chain.poll-secs", default_value_t = 6)]
    pub chain_poll_secs: u64,
}

/// `validator verify`: recompute one stored epoch.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// The epoch to verify.
    #[arg(long)]
    pub epoch: i64,

    /// Subnet.
    #[arg(long, env = "BT_NETUID", default_value_t = 1)]
    pub netuid: u16,

    /// Postgres URL.
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,

    /// Competition file the epoch was judged by (default: the built-in one); its sha256 must
    /// match the stored one.
    #[arg(long, env = "BT_COMPETITION", value_name = "FILE")]
    pub competition: Option<std::path::PathBuf>,

    /// The EMA factor the loop ran with (`validator run --scores.ema-alpha`).
    #[arg(
        long = "scores.ema-alpha",
        env = "BT_SCORES_EMA_ALPHA",
        default_value_t = 0.3
    )]
    pub ema_alpha: f64,

    /// The validator's hotkey (SS58), to recompute the commit–reveal hash too.
    #[arg(long)]
    pub hotkey: Option<AccountId>,
}

/// `validator doctor`: everything a validator needs, checked once.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub wallet: WalletArgs,

    /// The chain and subnet to check.
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Postgres URL.
    #[arg(long = "db.url", env = "DATABASE_URL")]
    pub db_url: String,

    /// The `--device` and `--cache.dir` to check.
    #[command(flatten)]
    pub models: ModelPlaceArgs,

    /// Largest tolerated head lag and clock skew, in seconds.
    #[arg(long = "max-lag-secs", default_value_t = 60)]
    pub max_lag_secs: u64,

    /// Smallest free space in the cache dir, in GiB.
    #[arg(long = "min-free-gib", default_value_t = 2)]
    pub min_free_gib: u64,
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_subcommand_s_flags_are_consistent() {
        // clap checks duplicate names, bad defaults and conflicting groups only when a
        // subcommand is parsed: this checks them all at once.
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
