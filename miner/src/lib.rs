//! The miner: serves its model and RLHF labels to validators over btauth/1-signed HTTP.
//!
//! | module | what |
//! |---|---|
//! | [`cli`] | the command line (clap), every flag also from an env var |
//! | [`startup`] | [`startup::Application`]: binds, builds the router, serves until shutdown |
//! | [`state`] | [`state::AppState`], what every handler may use |
//! | [`routes`] | HTTP handlers, the labeler form's included |
//! | [`artifact`] | the served model directory, hashed into its manifest at start |
//! | [`inference`] | the served model loaded for `/v1/generate`, one request at a time |
//! | [`error`] | [`error::ApiError`] and the JSON error shape for every 4xx/5xx |
//! | [`chain_auth`] | who may call: registered hotkeys, validator permits for `/v1/rlhf/*` |
//! | [`commands`] | `init-base`, `finetune`, `register`, `commit`; the axon publication of `serve` |
//! | [`metrics`] | Prometheus `miner_*` metrics, served on `--metrics.addr` apart from the axon |
//! | [`db`] | Postgres: RLHF batches, labelers, sessions, labels (all the miner's SQL) |
//! | [`labeling`] | the RLHF label track: sessions and tokens, the form's pages, `miner labelers`, the simulated labeler |

pub mod artifact;
pub mod chain_auth;
pub mod cli;
pub mod commands;
pub mod db;
pub mod error;
pub mod inference;
pub mod labeling;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod state;

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use subnet_common::btauth::AllowAnySigner;

/// `miner serve`: load the hotkey, bind, serve until SIGINT/SIGTERM.
pub async fn serve(args: cli::ServeArgs) -> anyhow::Result<()> {
    if args.dump_config {
        println!(
            "{}",
            serde_json::to_string_pretty(&args).context("while printing the config")?
        );
        return Ok(());
    }
    let keypair = args.wallet.load_hotkey()?;
    // One listener for Ctrl-C / SIGTERM from here on: it stops the wait for the chain as well as
    // the server.
    let stop = Stop::listen();
    if let Some(addr) = args.metrics_addr {
        let metrics = metrics::MetricsServer::bind(addr).await?;
        let bound = metrics
            .local_addr()
            .context("while reading the metrics address")?;
        tracing::info!(addr = %bound, "metrics at http://{bound}/metrics");
        tokio::spawn(async move {
            if let Err(error) = metrics.run_until(std::future::pending()).await {
                tracing::error!(error = format!("{error:#}"), "the /metrics server stopped");
            }
        });
    }
    let config = startup::ServerConfig {
        addr: SocketAddr::new(args.axon_ip, args.axon_port),
        max_body_bytes: args.max_body_bytes,
        auth_max_age: Duration::from_secs(args.auth_max_age_secs),
        model: args.model_dir.clone().map(|dir| startup::ModelConfig {
            dir,
            competition: args.competition.clone(),
            device: Some(args.device),
        }),
    };
    let hotkey = keypair.account_id();
    let axon_signer = keypair.clone();
    let (app, chain) = if args.insecure_no_chain {
        tracing::warn!(
            "--insecure-no-chain: registration is NOT checked; any correctly signed caller is served. Use only for local tests."
        );
        if args.chain.is_given() {
            tracing::warn!(
                endpoint = args.chain.endpoint(),
                "--insecure-no-chain: the chain named by --subtensor.* (or its variable) is not used"
            );
        }
        let labeling = connect_labeling(&args, std::sync::Arc::new(labeling::NoChain)).await?;
        let app =
            startup::Application::build_with_labeling(&config, keypair, AllowAnySigner, labeling)
                .await?;
        (app, None)
    } else {
        if !args.chain.is_given() {
            anyhow::bail!(
                "no chain to check callers against: pass --subtensor.network <finney|test|local|URL> \
                 or --subtensor.chain_endpoint <URL> (--chain.url <URL>), or, for local tests \
                 only, --insecure-no-chain"
            );
        }
        let Some((chain, callers)) = wait_for_chain(&args, &stop).await? else {
            tracing::info!("stopped while waiting for the chain");
            return Ok(());
        };
        if !callers.snapshot().registered.contains(&hotkey) {
            tracing::warn!(hotkey = %hotkey, netuid = args.chain.netuid, "this miner's hotkey is not registered on the subnet yet");
        }
        let labeling = connect_labeling(&args, std::sync::Arc::new(callers.clone())).await?;
        let app =
            startup::Application::build_with_labeling(&config, keypair, callers, labeling).await?;
        (app, Some(chain))
    };
    let addr = app
        .local_addr()
        .context("while reading the bound address")?;
    tracing::info!(%addr, hotkey = %hotkey, netuid = args.chain.netuid, "miner serving");
    if let Some(chain) = chain {
        let ip = commands::chain::external_ip(args.axon_external_ip, args.axon_ip);
        if let Some(warning) = commands::chain::loopback_warning(ip, args.axon_ip) {
            tracing::warn!("{warning}");
        }
        if let (Some(artifact), Some(dir)) = (app.model(), &args.model_dir) {
            spawn_commitment_check(
                std::sync::Arc::clone(&chain),
                std::sync::Arc::clone(artifact),
                dir.clone(),
                hotkey,
                args.chain.netuid,
            );
        }
        spawn_axon_publication(
            chain,
            axon_signer,
            args.chain.netuid,
            SocketAddr::new(ip, addr.port()),
        );
    }
    app.run_until(stop.stopped()).await
}

/// Ctrl-C or SIGTERM, listened for once and awaited by every phase of `serve`.
#[derive(Clone)]
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// Starts listening (common's `shutdown_signal`).
    fn listen() -> Self {
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            subnet_common::serve::shutdown_signal().await;
            let _ = tx.send(true);
        });
        Self(rx)
    }

    /// Resolves once a signal came.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// The chain and the caller registry read from it, waiting for a chain that does not answer
/// yet: up to `--chain.start-wait-secs` (0: without end), or `None` when Ctrl-C or SIGTERM
/// came first. A chain that answers with an error (no such subnet) fails at once.
async fn wait_for_chain(
    args: &cli::ServeArgs,
    stop: &Stop,
) -> anyhow::Result<
    Option<(
        std::sync::Arc<subnet_subtensor::AnyChain>,
        chain_auth::RegisteredCallers,
    )>,
> {
    let netuid = args.chain.netuid;
    let endpoint = args.chain.endpoint();
    let connect = async {
        let chain = std::sync::Arc::new(commands::chain::connect_waiting(&args.chain).await?);
        let url = chain.url().to_owned();
        let callers = chain_auth::RegisteredCallers::start(
            std::sync::Arc::clone(&chain),
            netuid,
            chain_auth::REFRESH_INTERVAL,
        )
        .await
        .with_context(|| format!("while reading subnet {netuid} from the chain at {url}"))?;
        anyhow::Ok((chain, callers))
    };
    let wait = args.chain_start_wait();
    let bounded = async {
        match wait {
            Some(wait) => tokio::time::timeout(wait, connect).await.map_err(|_| {
                anyhow::anyhow!(
                    "the chain at {endpoint:?} did not answer within {} s \
                     (--chain.start-wait-secs; 0 waits without end): is the node running, and \
                     is {} right?",
                    wait.as_secs(),
                    args.chain.flag()
                )
            })?,
            None => connect.await,
        }
    };
    tokio::pin!(bounded);
    // Say once what is going on when the chain does not answer at once.
    let notice = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(notice);
    let mut noticed = false;
    loop {
        tokio::select! {
            connected = &mut bounded => return connected.map(Some),
            () = stop.stopped() => return Ok(None),
            () = &mut notice, if !noticed => {
                noticed = true;
                let limit = wait.map_or_else(|| "without end".to_owned(), |w| format!("up to {} s", w.as_secs()));
                tracing::warn!(
                    endpoint,
                    "waiting for the chain ({limit}, --chain.start-wait-secs); Ctrl-C stops"
                );
            }
        }
    }
}

/// The label track when `--db.url` is given (connects and migrates), else `None`.
async fn connect_labeling(
    args: &cli::ServeArgs,
    clock: std::sync::Arc<dyn labeling::BlockClock>,
) -> anyhow::Result<Option<std::sync::Arc<labeling::Labeling>>> {
    let Some(url) = &args.db_url else {
        tracing::info!("no --db.url: this miner collects no RLHF labels");
        return Ok(None);
    };
    let pool = db::connect(url)
        .await
        .context("while opening the labels database (--db.url)")?;
    tracing::info!(db = %db::redact(url), "collecting RLHF labels; labeler form at /label");
    Ok(Some(std::sync::Arc::new(labeling::Labeling {
        pool,
        clock,
        config: labeling::LabelingConfig {
            reading_speed: args.label_reading_speed,
            ..labeling::LabelingConfig::default()
        },
    })))
}

/// How often `serve` reads the hotkey's commitment again (a commit made, or replaced by another
/// tool, while it serves).
pub const COMMITMENT_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// Reads the hotkey's commitment at start and every [`COMMITMENT_CHECK_INTERVAL`], and warns
/// while it is not the served model's ([`commands::chain::commitment_warning`]: both
/// commitments, the manifest hash and the fix); `miner_model_commitment_matches` says the same.
fn spawn_commitment_check<C>(
    chain: std::sync::Arc<C>,
    artifact: std::sync::Arc<artifact::Artifact>,
    dir: std::path::PathBuf,
    hotkey: subnet_common::keys::AccountId,
    netuid: u16,
) where
    C: subnet_common::chain::client::ChainClient + 'static,
{
    tokio::spawn(async move {
        let commitment = artifact.commitment(&hotkey);
        let served = commands::chain::ServedModel {
            commitment: &commitment,
            manifest_sha256: &artifact.manifest().manifest_sha256,
            dir: &dir,
        };
        let mut matched = None;
        let mut ticker = tokio::time::interval(COMMITMENT_CHECK_INTERVAL);
        loop {
            ticker.tick().await;
            match chain.commitments(netuid).await {
                Ok(commitments) => {
                    let on_chain = commitments.iter().find(|c| c.hotkey == hotkey);
                    let bytes = on_chain.map(|c| c.data.as_slice());
                    let warning = commands::chain::commitment_warning(bytes, &served, netuid);
                    let matches = warning.is_none();
                    metrics::set_commitment_matches(matches);
                    match warning {
                        Some(warning) => tracing::warn!(netuid, "{warning}"),
                        None if matched != Some(true) => {
                            tracing::info!(netuid, "the on-chain commitment is the served model's");
                        }
                        None => {}
                    }
                    matched = Some(matches);
                }
                Err(e) => {
                    tracing::warn!(
                        netuid,
                        error = format!("{e:#}"),
                        "could not read the commitments to check the served model's"
                    );
                }
            }
        }
    });
}

/// Publishes the axon endpoint on chain in the background when it differs from the one there.
/// A refusal is logged with the chain's reason and never stops the server.
fn spawn_axon_publication<C>(
    chain: std::sync::Arc<C>,
    hotkey: subnet_common::keys::Keypair,
    netuid: u16,
    endpoint: SocketAddr,
) where
    C: subnet_common::chain::client::ChainClient + 'static,
{
    tokio::spawn(async move {
        let wait = Duration::from_secs(60);
        match commands::chain::publish_axon(&*chain, &hotkey, netuid, endpoint, wait).await {
            Ok(commands::chain::AxonPublication::Unchanged) => {
                tracing::info!(%endpoint, netuid, "axon already published on chain");
            }
            Ok(commands::chain::AxonPublication::Published(inclusion)) => {
                tracing::info!(%endpoint, netuid, block = inclusion.block, "axon published on chain");
            }
            Err(e) => {
                tracing::warn!(%endpoint, netuid, error = format!("{e:#}"), "axon not published; serving anyway");
            }
        }
    });
}
