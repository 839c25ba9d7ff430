//! `validator run`: [`Application::build`] wires the epoch loop ([`crate::service`]) and, with
//! `--http.port`, the dashboard from the command line (every slow or failing step of start-up
//! happens there: hotkey, chain, database, competition, base model, device, the dashboard's port);
//! [`Application::run_until`] runs both until a shutdown future resolves (`validator run` passes
//! Ctrl-C or SIGTERM), then stops the dashboard. The miner and the dev chain node start the same
//! way.
//!
//! Setting weights needs the validator's hotkey registered on the subnet and, for weights on
//! other uids, a validator permit: the subnet owner's hotkey is exempt; any other hotkey needs
//! stake (`add_stake` from its coldkey) high enough to be among the top `max_allowed_validators`
//! at an epoch, and at least `stake_threshold`. On the dev chain (`devchain --dev`), `//Alice`
//! owns subnet 1 and can validate at once.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use subnet_common::btauth::SignedClient;
use subnet_common::chain::client::ClientOptions;
use subnet_model::competition::CompetitionFile;
use subnet_model::data::Limits;
use subnet_subtensor::AnyChain;

use crate::cli::RunArgs;
use crate::db;
use crate::service::clock::ChainClock;
use crate::service::{ANSWER_MODELS, LabelSetup, Service, ServiceConfig};
use crate::tracks::labels::answers::AnswerOptions;
use crate::tracks::labels::batch::BatchSettings;
use crate::tracks::labels::prompts::PromptPool;
use crate::tracks::labels::{LabelSettings, LabelTrack};
use crate::tracks::model::base::BaseModel;
use crate::tracks::model::{ModelTrack, TrackSettings};
use crate::web::Dashboard;

/// The resolved configuration, as `--dump-config` prints it (the database password redacted).
pub fn config_json(args: &RunArgs) -> serde_json::Value {
    serde_json::json!({
        "netuid": args.chain.netuid,
        "wallet": {
            "path": args.wallet.path,
            "name": args.wallet.name,
            "hotkey": args.wallet.hotkey,
        },
        "chain": { "endpoint": args.chain.endpoint(), "poll_ms": args.chain_poll_ms },
        "db": { "url": db::redact(&args.db_url) },
        "device": args.models.device.to_string(),
        "competition": args.competition,
        "cache": { "dir": args.models.cache_dir },
        "http": { "port": args.http_port },
        "scores": { "ema_alpha": args.ema_alpha },
        "model": { "fetch_budget_secs": args.model_fetch_budget_secs },
        "workers": {
            "enabled": args.workers_enabled,
            "timeout_secs": args.workers_timeout_secs,
        },
        "weights": { "version_key": args.version_key },
        "labels": {
            "enabled": args.labels_enabled,
            "deadline_blocks": args.labels_deadline_blocks,
            "prompts": args.labels_prompts,
            "max_prompts": args.labels_max_prompts,
            "known_share": args.labels_known_share,
            "answer_tokens": args.labels_answer_tokens,
            "samples": args.labels_samples,
            "truth_dir": args.labels_truth_dir,
        },
    })
}

/// Loads the competition file (or the built-in default) and its pinned dataset.
fn load_competition(
    path: Option<&Path>,
) -> anyhow::Result<(CompetitionFile, Option<subnet_model::data::Dataset>)> {
    let (file, dir) = crate::eval_cmd::competition_file(path)?;
    let dataset = match &file.competition.dataset {
        Some(spec) => Some(
            spec.load(&dir, &Limits::default())
                .context("while loading the competition's dataset")?,
        ),
        None => None,
    };
    Ok((file, dataset))
}

/// `validator run`: prints the configuration with `--dump-config`, else builds the validator and
/// runs it until Ctrl-C or SIGTERM.
pub async fn run(args: &RunArgs) -> anyhow::Result<()> {
    if args.dump_config {
        println!("{}", serde_json::to_string_pretty(&config_json(args))?);
        return Ok(());
    }
    Application::build(args)
        .await?
        .run_until(subnet_common::serve::shutdown_signal())
        .await
}

/// A validator ready to run: the epoch loop built and, when asked for, the dashboard's port bound.
pub struct Application {
    service: Service<AnyChain, ChainClock<AnyChain>>,
    dashboard: Option<Dashboard>,
}

impl Application {
    /// Checks the flags, loads the hotkey, connects to the chain (waiting for it to come up) and
    /// the database, loads the competition and the base model, picks the device and binds the
    /// dashboard's port: every start-up error is returned here, before anything runs.
    pub async fn build(args: &RunArgs) -> anyhow::Result<Self> {
        if !(args.ema_alpha > 0.0 && args.ema_alpha <= 1.0) {
            bail!(
                "--scores.ema-alpha must be in (0, 1], got {}",
                args.ema_alpha
            );
        }
        // Before anything slow: a bad prompt file is a typo to fix, not a wait.
        let prompts = match args.labels_enabled {
            true => Some(PromptPool::with_files(&args.labels_prompts).context("--labels.prompts")?),
            false => None,
        };
        let hotkey = args
            .wallet
            .load_hotkey()
            .context("while loading the hotkey")?;
        let chain = Arc::new(
            AnyChain::connect_waiting(args.chain.endpoint(), ClientOptions::default())
                .await
                .with_context(|| format!("the chain at {:?}", args.chain.endpoint()))?,
        );
        let pool = db::connect(&args.db_url)
            .await
            .context("while connecting to Postgres")?;
        let (competition, dataset) = load_competition(args.competition.as_deref())?;
        let base = BaseModel::for_competition(&competition.competition, args.model_base.as_deref())
            .context("while checking the base model (--model.base)")?;
        let device = args.models.open()?;
        let http =
            crate::artifacts::miner_http_client().context("while building the HTTP client")?;
        let labels = prompts.map(|prompts| LabelSetup {
            track: LabelTrack::new(
                SignedClient::new(http.clone(), hotkey.clone()),
                LabelSettings {
                    truth_dir: args.labels_truth_dir.clone(),
                    batch: BatchSettings {
                        max_prompts: args.labels_max_prompts,
                        known_share: args.labels_known_share,
                        ..BatchSettings::default()
                    },
                    ..LabelSettings::default()
                },
            ),
            prompts,
            cache_dir: args.models.cache_dir.clone(),
            device: device.clone(),
            answer_models: ANSWER_MODELS,
            answers: AnswerOptions {
                max_new_tokens: args.labels_answer_tokens,
                sampled: args.labels_samples,
                ..AnswerOptions::default()
            },
        });
        let track = ModelTrack::new(
            SignedClient::new(http, hotkey.clone()),
            args.models.cache_dir.clone(),
            device,
            TrackSettings {
                fetch_budget: Duration::from_secs(args.model_fetch_budget_secs),
                ..TrackSettings::default()
            },
        )
        .with_base(base);
        let track = match args.workers_enabled {
            true => track.with_queue(
                crate::workers::Queue::open(
                    pool.clone(),
                    args.chain.netuid,
                    crate::workers::QueueSettings {
                        timeout: Duration::from_secs(args.workers_timeout_secs),
                        ..crate::workers::QueueSettings::default()
                    },
                )
                .await
                .context("while opening the evaluation queue (--workers.enabled)")?,
            ),
            false => track,
        };
        let clock = ChainClock::new(
            Arc::clone(&chain),
            Duration::from_millis(args.chain_poll_ms.max(10)),
        );
        let mut config = ServiceConfig::new(args.chain.netuid);
        config.ema_alpha = args.ema_alpha;
        if let Some(key) = args.version_key {
            config.version_key = key;
        }
        config.label_deadline_blocks = args.labels_deadline_blocks;
        let dashboard = match args.http_port {
            Some(port) => Some(
                crate::web::bind(
                    pool.clone(),
                    Arc::clone(&chain),
                    args.chain.netuid,
                    Some(hotkey.account_id().to_ss58()),
                    SocketAddr::from(([0, 0, 0, 0], port)),
                    Duration::from_secs(6),
                )
                .await
                .with_context(|| format!("while starting the dashboard on --http.port {port}"))?,
            ),
            None => None,
        };
        tracing::info!(
            netuid = args.chain.netuid,
            hotkey = %hotkey.account_id(),
            chain = chain.url(),
            chain_kind = chain.kind(),
            competition = %competition.competition.id,
            labels = labels.is_some(),
            workers = args.workers_enabled,
            dashboard = ?dashboard.as_ref().map(Dashboard::local_addr),
            "validator starting"
        );
        let mut service = Service::new(
            chain,
            clock,
            pool,
            hotkey,
            track,
            competition,
            dataset,
            config,
        );
        if let Some(labels) = labels {
            service = service.with_labels(labels);
        }
        Ok(Self { service, dashboard })
    }

    /// Where the dashboard listens, when it was asked for (`--http.port`; port 0 picks one).
    pub fn dashboard_addr(&self) -> Option<SocketAddr> {
        self.dashboard.as_ref().map(Dashboard::local_addr)
    }

    /// Runs the epoch loop and the dashboard until `shutdown` resolves, then stops the
    /// dashboard (in-flight requests finish).
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let dashboard = self.dashboard.map(|dashboard| {
            let mut stopped = stopped.clone();
            tokio::spawn(dashboard.serve_until(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }))
        });
        let result = self
            .service
            .run(shutdown)
            .await
            .context("the epoch loop stopped");
        let _ = stop.send(true);
        if let Some(dashboard) = dashboard {
            match dashboard.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "the dashboard stopped"),
                Err(error) => tracing::error!(%error, "the dashboard's task failed"),
            }
        }
        result?;
        tracing::info!("validator stopped");
        Ok(())
    }
}
