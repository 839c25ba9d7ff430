//! Command line of the `miner` binary. Every flag can also come from an environment variable.

use std::{net::IpAddr, path::PathBuf};

use clap::{Args, Parser, Subcommand};
use subnet_common::cli::WalletArgs;

/// A miner of the subnet: serves its fine-tuned model and RLHF labels to validators.
#[derive(Debug, Parser)]
#[command(name = "miner", version, about)]
pub struct Cli {
    /// `--log.format`, `--logging.debug`, `--logging.trace`.
    #[command(flatten)]
    pub log: subnet_common::cli::LogArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// What the miner does.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the miner's HTTP API (axon) until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Create a randomly initialised base model within the competition's architecture bounds.
    InitBase(crate::commands::init_base::InitBaseArgs),
    /// Fine-tune a model on the competition's tasks or a JSONL dataset (resumes a checkpoint).
    Finetune(crate::commands::finetune::FinetuneArgs),
    /// Register the hotkey on the subnet (burned registration; the coldkey pays).
    Register(crate::commands::chain::RegisterArgs),
    /// Commit a model directory's manifest hash on chain, signed by the hotkey.
    Commit(crate::commands::chain::CommitArgs),
    /// Manage the people who label RLHF tasks (sign-in links), or run a simulated labeler.
    Labelers(crate::labeling::cli::LabelersArgs),
    /// Manage the miner's hotkey and its wallet's coldkey (bittensor wallet layout).
    #[command(mut_args(|arg| arg.global(true)))]
    Keys {
        #[command(flatten)]
        wallet: WalletArgs,
        #[command(subcommand)]
        command: subnet_common::cli::KeysCommand,
    },
}

/// `miner serve`.
#[derive(Debug, Clone, Args, serde::Serialize)]
pub struct ServeArgs {
    #[command(flatten)]
    #[serde(serialize_with = "serialize_wallet")]
    pub wallet: WalletArgs,

    /// Address to listen on.
    #[arg(long = "axon.ip", env = "BT_AXON_IP", default_value = "0.0.0.0")]
    pub axon_ip: IpAddr,

    /// Port to listen on (0 picks a free one and logs it).
    #[arg(long = "axon.port", env = "BT_AXON_PORT", default_value_t = 8091)]
    pub axon_port: u16,

    /// IP published on chain as the axon's address (default: `--axon.ip` unless it is
    /// 0.0.0.0 or ::, else 127.0.0.1). Published at start with `--chain.url`.
    #[arg(long = "axon.external-ip", env = "BT_AXON_EXTERNAL_IP")]
    pub axon_external_ip: Option<IpAddr>,

    /// The chain callers are checked against (registration, validator permits), where the
    /// axon is published and the commitment checked.
    #[command(flatten)]
    #[serde(flatten)]
    pub chain: subnet_common::cli::ChainArgs,

    /// Seconds `serve` waits at start for a chain that does not answer yet (a node starting, a
    /// devnet), retrying with back-off, before it gives up with an error; 0 waits without end.
    /// Ctrl-C or SIGTERM stops the wait.
    #[arg(
        long = "chain.start-wait-secs",
        env = "MINER_CHAIN_START_WAIT_SECS",
        default_value_t = 600
    )]
    pub chain_start_wait_secs: u64,

    /// Serve without a chain: any caller with a valid signature is accepted, and a chain named
    /// by the other flags or their variables is not used. For local tests only.
    #[arg(long = "insecure-no-chain", env = "MINER_INSECURE_NO_CHAIN")]
    pub insecure_no_chain: bool,

    /// Largest request body accepted, in bytes (larger ones get 413).
    #[arg(long = "http.max-body-bytes", env = "MINER_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,

    /// btauth/1 freshness window in seconds (requests older than this are stale).
    #[arg(
        long = "auth.max-age-secs",
        env = "MINER_AUTH_MAX_AGE_SECS",
        default_value_t = 10
    )]
    pub auth_max_age_secs: u64,

    /// HF-style model directory to serve (`config.json`, `model.safetensors`, optionally
    /// `tokenizer.json`, `tokenizer_config.json`, `generation_config.json`). Without it the model
    /// routes answer 404.
    #[arg(long = "model.dir", env = "MINER_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,

    /// Competition the served model is entered in (its id goes into the manifest).
    #[arg(
        long = "competition",
        env = "MINER_COMPETITION",
        default_value = crate::artifact::DEFAULT_COMPETITION
    )]
    pub competition: String,

    /// Device for `/v1/generate`: `auto` (CUDA when built with it and a GPU answers), `cpu`, `cuda`.
    #[arg(long = "device", env = "MINER_DEVICE", default_value = "auto")]
    #[serde(serialize_with = "serialize_display")]
    pub device: subnet_model::backend::DeviceChoice,

    /// Postgres URL for the RLHF label track (batches, labelers, labels). Without it the miner
    /// serves its model only and the label routes answer 404. Not `DATABASE_URL`: a validator on
    /// the same host must not share the miner's migrations.
    #[arg(long = "db.url", env = "MINER_DB_URL")]
    #[serde(serialize_with = "serialize_db_url")]
    pub db_url: Option<String>,

    /// Characters a second a person reads at most: labels given faster than the prompt and both
    /// answers can be read at this speed are kept but not sent to validators (0: no floor, for
    /// simulated labelers).
    #[arg(
        long = "label.reading-speed",
        env = "MINER_LABEL_READING_SPEED",
        default_value_t = crate::labeling::DEFAULT_READING_SPEED,
        value_parser = parse_reading_speed
    )]
    pub label_reading_speed: f64,

    /// Serve Prometheus metrics (`miner_*`) at `http://<this address>/metrics`, on a listener of
    /// its own: keep it on loopback (`127.0.0.1:9101`) or a private interface, not the public
    /// axon. Not served when absent.
    #[arg(long = "metrics.addr", env = "MINER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    /// Print the resolved configuration as JSON and exit.
    #[arg(long = "dump-config")]
    #[serde(skip)]
    pub dump_config: bool,
}

impl ServeArgs {
    /// `--chain.start-wait-secs` as a bound; `None` for 0 (no bound).
    pub fn chain_start_wait(&self) -> Option<std::time::Duration> {
        (self.chain_start_wait_secs > 0)
            .then(|| std::time::Duration::from_secs(self.chain_start_wait_secs))
    }
}

fn parse_reading_speed(s: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(format!(
            "{x} is not a speed (characters a second, 0 or more)"
        ))
    }
}

/// `--dump-config` shows a value by its `Display` form.
fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// `--dump-config` shows the database URL without its password.
fn serialize_db_url<S: serde::Serializer>(url: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match url {
        Some(url) => s.serialize_some(&crate::db::redact(url)),
        None => s.serialize_none(),
    }
}

/// `--dump-config` shows the wallet flags as `{"path", "name", "hotkey"}`.
fn serialize_wallet<S: serde::Serializer>(wallet: &WalletArgs, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut st = s.serialize_struct("wallet", 3)?;
    st.serialize_field("path", &wallet.path)?;
    st.serialize_field("name", &wallet.name)?;
    st.serialize_field("hotkey", &wallet.hotkey)?;
    st.end()
}
