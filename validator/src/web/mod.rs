//! The operator's dashboard: server-rendered HTML pages, the same data as JSON under `/api/`,
//! Prometheus `/metrics` and `/health`.
//!
//! | route | what |
//! |---|---|
//! | `GET /` · `/api/leaderboard` | the latest epoch's miners, best EMA first |
//! | `GET /miner/{hotkey}` · `/api/miners/{hotkey}` | a miner's history (SVG charts of loss, score, EMA) |
//! | `GET /weights` · `/api/weights` | weight commits with status, blocks and hash |
//! | `GET /chain` · `/api/chain` | chain status as the epoch loop last saw it |
//! | `GET /api/status` | the header of every page: epochs, last weights on chain, permit, alerts |
//! | `GET /api/epochs` | stored epochs, newest first |
//! | `GET /metrics` · `/health` | Prometheus text; liveness |
//!
//! Data comes from Postgres (through [`crate::db`]) and from a [`ChainStatus`] the epoch loop
//! (or [`follow_chain`] in `validator dashboard`) publishes on a `watch` channel.
//!
//! | module | what |
//! |---|---|
//! | [`views`] | the data of each page, shared by HTML and JSON |
//! | [`pages`] | askama templates (`validator/templates/`) and the HTML handlers |
//! | [`api`] | JSON handlers |
//! | [`charts`] | plotters line charts as inline SVG |
//! | [`error`] | `ApiError` (JSON) and the HTML 404 page |

pub mod alerts;
pub mod api;
pub mod charts;
pub mod error;
pub mod pages;
pub mod views;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::http::{Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sqlx::PgPool;
use subnet_common::chain::client::ChainClient;
use tokio::sync::watch;
use tower_http::trace::TraceLayer;

/// The chain as the validator last saw it; the epoch loop updates it through a `watch` channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChainStatus {
    /// The subnet followed.
    pub netuid: u16,
    /// Whether the last read of the chain succeeded.
    pub connected: bool,
    /// Best block number.
    pub head: u64,
    /// Its hash, hex.
    pub head_hash: Option<String>,
    /// Its timestamp, Unix milliseconds.
    pub head_timestamp_ms: u64,
    /// Seconds between the head's timestamp and our clock when it was read.
    pub head_lag_secs: f64,
    /// The last epoch scored and stored.
    pub last_epoch: Option<u64>,
    /// The chain's epoch index at the head (from its tempo), when known.
    pub chain_epoch: Option<u64>,
    /// The subnet's tempo at the last read, when known.
    pub tempo: Option<u16>,
    /// First block of the next epoch, when known.
    pub next_epoch_block: Option<u64>,
    /// The validator's hotkey (SS58), when the loop runs with one.
    pub validator_hotkey: Option<String>,
    /// Whether that hotkey's neuron holds a validator permit, from the last metagraph read
    /// (`None`: no hotkey, not registered, or not read yet).
    pub validator_permit: Option<bool>,
    /// Emission of each hotkey at the chain's last epoch (rao), from the last metagraph read.
    pub emissions_rao: BTreeMap<String, u64>,
    /// Every neuron of the subnet, in uid order, from the last metagraph read: stake, emission
    /// and the consensus fractions the leaderboard shows beside each uid.
    pub neurons: Vec<NeuronStatus>,
    /// Milliseconds per block, measured between the last two head reads that saw the head move
    /// (`None` until two reads did): turns "N blocks ago" into a time.
    pub block_time_ms: Option<u64>,
    /// When this status was taken, Unix milliseconds (0: never).
    pub updated_at_ms: u64,
    /// The last error reading the chain, if the last read failed.
    pub error: Option<String>,
}

impl ChainStatus {
    /// Whether anything was ever read from the chain.
    pub fn is_known(&self) -> bool {
        self.updated_at_ms != 0
    }

    /// The neuron holding `hotkey` at the last metagraph read.
    pub fn neuron(&self, hotkey: &str) -> Option<&NeuronStatus> {
        self.neurons.iter().find(|n| n.hotkey == hotkey)
    }
}

/// One uid of the subnet as the last metagraph read showed it. Fractions are the chain's u16
/// values (`x / 65535`); [`NeuronStatus::percent`] turns one into a percentage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NeuronStatus {
    /// Uid.
    pub uid: u16,
    /// SS58 hotkey.
    pub hotkey: String,
    /// SS58 coldkey.
    pub coldkey: String,
    /// Stake on the hotkey in this subnet, rao.
    pub stake_rao: u64,
    /// Emission at the chain's last epoch, rao.
    pub emission_rao: u64,
    /// Incentive (a miner's share of the miners' emission), u16 fraction.
    pub incentive: u16,
    /// Dividends (a validator's share of the validators' emission), u16 fraction.
    pub dividends: u16,
    /// Trust, u16 fraction (legacy on current Subtensor, where it stays 0).
    pub trust: u16,
    /// Consensus, u16 fraction.
    pub consensus: u16,
    /// Validator trust, u16 fraction.
    pub validator_trust: u16,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Publishes an axon (an IP and port on chain).
    pub serving: bool,
}

impl NeuronStatus {
    /// A chain u16 fraction as a percentage (`65535` → `100.0`).
    pub fn percent(fraction: u16) -> f64 {
        f64::from(fraction) * 100.0 / f64::from(u16::MAX)
    }
}

/// What the dashboard's handlers share.
#[derive(Debug, Clone)]
pub struct DashboardState {
    /// The validator's database.
    pub pool: PgPool,
    /// The subnet shown.
    pub netuid: u16,
    /// Latest chain status.
    pub chain: watch::Receiver<ChainStatus>,
    /// Rendered at `/metrics`; `None` answers 404 there.
    pub metrics: Option<PrometheusHandle>,
}

/// Failures starting the dashboard server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server stopped with an IO error.
    #[error("dashboard server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The dashboard's routes.
pub fn router(state: DashboardState) -> Router {
    Router::new()
        .route("/", get(pages::leaderboard))
        .route("/miner/{hotkey}", get(pages::miner))
        .route("/weights", get(pages::weights))
        .route("/chain", get(pages::chain))
        .route("/api/leaderboard", get(api::leaderboard))
        .route("/api/miners/{hotkey}", get(api::miner))
        .route("/api/weights", get(api::weights))
        .route("/api/epochs", get(api::epochs))
        .route("/api/chain", get(api::chain))
        .route("/api/status", get(api::status))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("-", MatchedPath::as_str);
                tracing::debug_span!("http", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

/// Serves the dashboard on an already bound listener (port 0 in tests) until `shutdown`.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    state: DashboardState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WebError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "dashboard listening");
    }
    subnet_common::serve::serve(
        listener,
        router(state),
        subnet_common::serve::ServeLimits::default(),
        shutdown,
    )
    .await
    .map_err(WebError::Serve)
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(state): State<DashboardState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => error::ApiError::NotFound("metrics are not enabled".into()).into_response(),
    }
}

/// `GET /health`.
/// `GET /health`: 200 while the server answers, `"status": "ok"`, or `"warn"` with the
/// [`alerts`] an operator should act on (the process is alive either way, so a liveness probe
/// keeps it; a monitor alerts on `"warn"`). A database it cannot read is a 503.
async fn health(State(state): State<DashboardState>) -> Response {
    let chain = views::chain(&state);
    match alerts::current(&state.pool, state.netuid, &chain).await {
        Ok(alerts) => axum::Json(serde_json::json!({
            "status": if alerts.is_empty() { "ok" } else { "warn" },
            "version": env!("CARGO_PKG_VERSION"),
            "alerts": alerts,
        }))
        .into_response(),
        Err(error) => {
            tracing::error!(%error, "health: the database cannot be read");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({
                    "status": "error",
                    "version": env!("CARGO_PKG_VERSION"),
                    "error": "the database cannot be read (the validator's log has the cause)",
                })),
            )
                .into_response()
        }
    }
}

/// Unknown paths: JSON under `/api/`, an HTML page elsewhere.
async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        error::ApiError::NotFound(format!("no route {}", uri.path())).into_response()
    } else {
        pages::not_found_page(StatusCode::NOT_FOUND, "Page not found")
    }
}

/// Milliseconds since the Unix epoch by the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads the chain's head and the subnet's metagraph into a [`ChainStatus`] (keeping
/// `last_epoch` and `validator_hotkey` of `previous`). A failed read keeps the last known head
/// and sets `connected = false` and `error`.
pub async fn read_chain_status<C: ChainClient>(
    chain: &C,
    netuid: u16,
    previous: &ChainStatus,
) -> ChainStatus {
    let mut status = ChainStatus {
        netuid,
        ..previous.clone()
    };
    status.updated_at_ms = now_ms();
    match chain.head().await {
        Ok(head) => {
            if head.number > previous.head
                && previous.head_timestamp_ms != 0
                && head.timestamp > previous.head_timestamp_ms
            {
                status.block_time_ms = Some(
                    (head.timestamp - previous.head_timestamp_ms) / (head.number - previous.head),
                );
            }
            status.connected = true;
            status.error = None;
            status.head = head.number;
            status.head_hash = Some(head.hash.to_string());
            status.head_timestamp_ms = head.timestamp;
            status.head_lag_secs = (status.updated_at_ms as f64 - head.timestamp as f64) / 1000.0;
            crate::metrics::set_chain_head_lag(status.head_lag_secs);
        }
        Err(e) => {
            status.connected = false;
            status.error = Some(e.to_string());
            return status;
        }
    }
    match chain.hyperparameters(netuid).await {
        Ok(hp) => {
            let schedule = crate::service::schedule::EpochSchedule::new(netuid, hp.tempo);
            status.next_epoch_block = schedule.next_epoch_start(status.head);
            status.chain_epoch = (hp.tempo != 0).then(|| schedule.epoch_of(status.head));
            status.tempo = Some(hp.tempo);
        }
        Err(e) => status.error = Some(e.to_string()),
    }
    match chain.metagraph(netuid).await {
        Ok(metagraph) => {
            status.emissions_rao = metagraph
                .neurons
                .iter()
                .map(|n| (n.hotkey.to_string(), n.emission))
                .collect();
            status.neurons = metagraph
                .neurons
                .iter()
                .map(|n| NeuronStatus {
                    uid: n.uid,
                    hotkey: n.hotkey.to_string(),
                    coldkey: n.coldkey.to_string(),
                    stake_rao: n.stake,
                    emission_rao: n.emission,
                    incentive: n.incentive,
                    dividends: n.dividends,
                    trust: n.trust,
                    consensus: n.consensus,
                    validator_trust: n.validator_trust,
                    validator_permit: n.validator_permit,
                    serving: n.axon_info.ip != 0 && n.axon_info.port != 0,
                })
                .collect();
            status.neurons.sort_by_key(|n| n.uid);
            status.validator_permit = status.validator_hotkey.as_ref().and_then(|hotkey| {
                metagraph
                    .neurons
                    .iter()
                    .find(|n| n.hotkey.to_string() == *hotkey)
                    .map(|n| n.validator_permit)
            });
        }
        Err(e) => status.error = Some(e.to_string()),
    }
    status
}

/// Polls the chain every `interval` and publishes the status on `sender` until every receiver is
/// gone. `validator dashboard --chain.url` runs this; the epoch loop may run it too.
pub async fn follow_chain<C: ChainClient>(
    chain: Arc<C>,
    netuid: u16,
    interval: Duration,
    sender: watch::Sender<ChainStatus>,
) {
    loop {
        let previous = sender.borrow().clone();
        let status = read_chain_status(chain.as_ref(), netuid, &previous).await;
        if sender.send(status).is_err() {
            return;
        }
        tokio::time::sleep(interval).await;
    }
}

/// The dashboard beside the epoch loop, its port bound, not serving yet ([`bind`]).
pub struct Dashboard {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: DashboardState,
    /// Follows the chain while the dashboard serves; stopped with it.
    follower: tokio::task::JoinHandle<()>,
}

impl Dashboard {
    /// The bound address (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` resolves (in-flight requests finish), then stops following the
    /// chain.
    pub async fn serve_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WebError> {
        let result = serve_listener(self.listener, self.state, shutdown).await;
        self.follower.abort();
        result
    }
}

/// The dashboard beside the epoch loop: binds `addr` (so a taken port fails at start-up),
/// installs the metrics recorder and follows the chain every `poll` (head, lag, next epoch,
/// emissions; the last stored epoch from the database); [`Dashboard::serve_until`] serves it.
pub async fn bind<C: ChainClient + 'static>(
    pool: PgPool,
    chain: Arc<C>,
    netuid: u16,
    validator_hotkey: Option<String>,
    addr: SocketAddr,
    poll: Duration,
) -> Result<Dashboard, WebError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| WebError::Bind { addr, source })?;
    let metrics = match crate::metrics::install() {
        Ok(handle) => Some(handle),
        Err(error) => {
            tracing::warn!(%error, "serving the dashboard without /metrics");
            None
        }
    };
    let (sender, receiver) = watch::channel(ChainStatus {
        netuid,
        validator_hotkey,
        ..ChainStatus::default()
    });
    let poll_pool = pool.clone();
    let follower = tokio::spawn(async move {
        loop {
            let previous = sender.borrow().clone();
            let mut status = read_chain_status(chain.as_ref(), netuid, &previous).await;
            if let Ok(Some(epoch)) = crate::db::latest_epoch(&poll_pool, i32::from(netuid)).await {
                status.last_epoch = u64::try_from(epoch.epoch).ok();
            }
            if sender.send(status).is_err() {
                return;
            }
            tokio::time::sleep(poll).await;
        }
    });
    Ok(Dashboard {
        listener,
        addr: bound,
        state: DashboardState {
            pool,
            netuid,
            chain: receiver,
            metrics,
        },
        follower,
    })
}

/// `validator dashboard`: serves the dashboard from the database until Ctrl-C, following the
/// chain when `--chain.url` is given.
pub async fn run(args: &crate::cli::DashboardArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    Dashboard::build(args)
        .await?
        .serve_until(subnet_common::serve::shutdown_signal())
        .await
        .context("while serving the dashboard")
}

impl Dashboard {
    /// `validator dashboard`'s start-up: the database, the metrics recorder, the chain when
    /// `--subtensor.chain_endpoint` is given (followed every `--chain.poll-secs`), the port bound.
    pub async fn build(args: &crate::cli::DashboardArgs) -> anyhow::Result<Self> {
        use anyhow::Context;
        let pool = crate::db::connect(&args.db_url)
            .await
            .context("while connecting to the database")?;
        let metrics = crate::metrics::install().context("while installing the metrics recorder")?;
        let (sender, chain) = watch::channel(ChainStatus {
            netuid: args.chain.netuid,
            ..ChainStatus::default()
        });
        let follower = if args.chain.is_given() {
            let endpoint = args.chain.endpoint();
            let client = subnet_subtensor::AnyChain::connect_waiting(
                endpoint,
                subnet_common::chain::ClientOptions::default(),
            )
            .await
            .with_context(|| format!("while connecting to the chain at {endpoint:?}"))?;
            tokio::spawn(follow_chain(
                Arc::new(client),
                args.chain.netuid,
                Duration::from_secs(args.chain_poll_secs.max(1)),
                sender,
            ))
        } else {
            // Nothing to follow; the status says the chain was never read.
            tokio::spawn(async move { drop(sender) })
        };
        let addr = SocketAddr::new(args.http_ip, args.http_port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind { addr, source })
            .context("--http.ip/--http.port")?;
        let addr = listener
            .local_addr()
            .map_err(|source| WebError::Bind { addr, source })?;
        Ok(Self {
            listener,
            addr,
            state: DashboardState {
                pool,
                netuid: args.chain.netuid,
                chain,
                metrics: Some(metrics),
            },
            follower,
        })
    }
}
