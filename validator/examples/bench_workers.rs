//! Epoch evaluation time with the model track on the loop's own device against 1, 2, 4…
//! `validator worker` processes on loopback (issue 16 item 4), printed as a table.
//!
//! ```sh
//! cargo build --release -p subnet-validator --bin validator --example bench_workers
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   target/release/examples/bench_workers [--models 8] [--samples 64] [--runs 3] [--workers 0,1,2,4]
//! ```
//!
//! Each miner serves its own random 6-layer, 256-wide model (`LlamaConfig::bench_6x256`) from an
//! in-process real miner; spot-checks are off, so the time is fetching plus evaluation. For each
//! worker count (0: the loop evaluates on its own CPU) and run: a fresh database, fresh caches
//! (the workers share the loop's, as on one machine), the workers started and waiting, then one
//! epoch timed from the first request to the scores. The `validator` binary is taken from beside
//! this example's directory (`target/release/`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sqlx::Connection;
use subnet_common::btauth::{AllowAnySigner, SignedClient};
use subnet_common::chain::types::{AxonInfo, Commitment, Metagraph, NeuronInfo};
use subnet_common::keys::Keypair;
use subnet_common::protocol::{ModelCommitment, manifest_of_dir};
use subnet_common::wallet::{Protection, Wallet};
use subnet_miner::startup::{Application, ModelConfig, ServerConfig};
use subnet_model::backend::{Cpu, DeviceChoice, select};
use subnet_model::competition::{CompetitionFile, eval_seed};
use subnet_model::config::LlamaConfig;
use subnet_model::io::save_artifact;
use subnet_validator::tracks::model::spot::SpotSettings;
use subnet_validator::tracks::model::{EpochInput, ModelTrack, TrackSettings};
use subnet_validator::workers::{Queue, QueueSettings};

const COMPETITION_ID: &str = "byte-llama-v1";

struct Options {
    models: usize,
    samples: usize,
    runs: usize,
    workers: Vec<usize>,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        models: 8,
        samples: 64,
        runs: 3,
        workers: vec![0, 1, 2, 4],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--models" => options.models = value.parse().context("--models")?,
            "--samples" => options.samples = value.parse().context("--samples")?,
            "--runs" => options.runs = value.parse().context("--runs")?,
            "--workers" => {
                options.workers = value
                    .split(',')
                    .map(|n| n.trim().parse())
                    .collect::<Result<_, _>>()
                    .context("--workers: numbers separated by commas")?;
            }
            other => bail!("unknown flag {other} (--models, --samples, --runs, --workers)"),
        }
    }
    Ok(options)
}

/// `DATABASE_URL` with the database name replaced by `name`.
fn url_of(base: &str, name: &str) -> String {
    let authority = base.find("://").map_or(0, |i| i + 3);
    let base = base.split('?').next().unwrap_or(base);
    match base[authority..].find('/') {
        Some(slash) => format!("{}/{name}", &base[..authority + slash]),
        None => format!("{base}/{name}"),
    }
}

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_workers(
    count: usize,
    binary: &Path,
    db_url: &str,
    wallets: &Path,
    cache: &Path,
) -> anyhow::Result<Workers> {
    let mut children = Vec::new();
    for i in 0..count {
        let child = Command::new(binary)
            .args(["worker", "--device", "cpu", "--db.url", db_url])
            .args(["--worker.name", &format!("bench{i}")])
            .arg("--wallet.path")
            .arg(wallets)
            .arg("--cache.dir")
            .arg(cache)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        children.push(child);
    }
    Ok(Workers(children))
}

fn neuron(uid: u16, hotkey: subnet_common::keys::AccountId, port: u16) -> NeuronInfo {
    let axon = AxonInfo::ipv4(std::net::Ipv4Addr::LOCALHOST, port);
    NeuronInfo::registered(1, uid, hotkey, hotkey, axon)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let options = options()?;
    let base_url = std::env::var("DATABASE_URL")
        .context("DATABASE_URL (scripts/setup-postgres.sh prints one)")?;
    let binary = std::env::current_exe()?
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("validator"))
        .context("the example's directory")?;
    if !binary.is_file() {
        bail!(
            "{} not found: cargo build --release -p subnet-validator --bin validator",
            binary.display()
        );
    }
    let root = tempfile::tempdir()?;
    let wallets = root.path().join("wallets");
    Wallet::new(&wallets, "default", "default").set_hotkey(
        &Keypair::from_uri("//Alice")?,
        Protection::Plain,
        false,
    )?;
    let text = subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML
        .replace("samples = 256", &format!("samples = {}", options.samples));
    let competition = CompetitionFile::from_bytes(text.as_bytes())?;

    // The miners, each with its own random model.
    let config = LlamaConfig::bench_6x256();
    let mut neurons = Vec::new();
    let mut commitments = Vec::new();
    let mut servers = Vec::new();
    for uid in 0..options.models as u16 {
        let dir = root.path().join(format!("model{uid}"));
        std::fs::create_dir_all(&dir)?;
        save_artifact(
            &config.init_seeded::<Cpu>(&Default::default(), u64::from(uid)),
            &config,
            &dir,
        )?;
        let hotkey = Keypair::from_uri(&format!("//BenchMiner{uid}"))?;
        let server = ServerConfig {
            addr: "127.0.0.1:0".parse()?,
            max_body_bytes: 1 << 16,
            auth_max_age: Duration::from_secs(10),
            model: Some(ModelConfig {
                dir: dir.clone(),
                competition: COMPETITION_ID.into(),
                device: None,
            }),
        };
        let app = Application::build(&server, hotkey.clone(), AllowAnySigner).await?;
        let port = app.local_addr()?.port();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        servers.push(stop);
        let manifest = manifest_of_dir(COMPETITION_ID, &dir)?;
        let account = hotkey.account_id();
        neurons.push(neuron(uid, account, port));
        commitments.push(Commitment {
            hotkey: account,
            uid,
            block: 50,
            data: ModelCommitment::bind(COMPETITION_ID, &account, &manifest.manifest_sha256)?
                .encode(),
        });
    }
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };
    let settings = TrackSettings {
        spot: SpotSettings {
            per_epoch: 0,
            ..SpotSettings::default()
        },
        ..TrackSettings::default()
    };

    println!(
        "{} models ({} layers, hidden {}), {} samples each, {} run(s) per row, {} CPUs",
        options.models,
        config.num_hidden_layers,
        config.hidden_size,
        options.samples,
        options.runs,
        std::thread::available_parallelism().map_or(0, usize::from),
    );
    println!("| evaluated by | epoch seconds (runs) | mean | vs the loop alone |");
    println!("|---|---|---|---|");
    let mut alone = None;
    let mut admin = sqlx::PgConnection::connect(&base_url).await?;
    for &count in &options.workers {
        let mut times = Vec::new();
        for run in 0..options.runs {
            let name = format!("bench_workers_{}_{count}_{run}", std::process::id());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut admin)
                .await?;
            let db_url = url_of(&base_url, &name);
            let pool = subnet_validator::db::connect(&db_url).await?;
            let cache = root.path().join(format!("cache-{count}-{run}"));
            std::fs::create_dir_all(&cache)?;
            let client = SignedClient::new(
                subnet_validator::artifacts::miner_http_client()?,
                Keypair::from_uri("//Alice")?,
            );
            let mut track = ModelTrack::new(
                client,
                cache.clone(),
                select(DeviceChoice::Cpu)?,
                settings.clone(),
            );
            let workers = if count > 0 {
                let queue = Queue::open(
                    pool.clone(),
                    1,
                    QueueSettings {
                        poll: Duration::from_millis(50),
                        ..QueueSettings::default()
                    },
                )
                .await?;
                track = track.with_queue(queue);
                let workers = start_workers(count, &binary, &db_url, &wallets, &cache)?;
                // Started and connected: idle workers poll every 0.5 s.
                tokio::time::sleep(Duration::from_secs(2)).await;
                Some(workers)
            } else {
                None
            };
            let input = EpochInput {
                netuid: 1,
                seed: eval_seed([run as u8; 32], 1),
                seed_block: 100,
                current_block: 110,
                metagraph: &metagraph,
                commitments: &commitments,
                competition: &competition,
                dataset: None,
            };
            let started = Instant::now();
            let result = track.score_epoch(&input).await?;
            times.push(started.elapsed().as_secs_f64());
            let scored = result
                .miners
                .iter()
                .filter(|m| m.outcome.code() == "ok")
                .count();
            if scored != options.models {
                bail!("only {scored} of {} models were scored", options.models);
            }
            drop(workers);
            pool.close().await;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await?;
        }
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        let who = match count {
            0 => "the loop's own CPU".to_string(),
            1 => "1 worker".to_string(),
            n => format!("{n} workers"),
        };
        let ratio = match alone {
            None if count == 0 => {
                alone = Some(mean);
                "1.00×".to_string()
            }
            Some(base) => format!("{:.2}×", base / mean),
            None => "–".to_string(),
        };
        let runs: Vec<String> = times.iter().map(|t| format!("{t:.1}")).collect();
        println!("| {who} | {} | {mean:.1} | {ratio} |", runs.join(", "));
    }
    drop(servers);
    Ok(())
}
