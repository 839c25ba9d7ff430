//! Building and running the miner's HTTP server.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{
    Router, middleware,
    routing::{get, post},
};
use subnet_common::{
    btauth::{Guard, Verifier, VerifierConfig},
    keys::Keypair,
};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::{
    artifact::Artifact,
    error,
    inference::{GenerateLimits, Inference},
    labeling::Labeling,
    metrics, routes,
    state::AppState,
};

/// Settings of the HTTP server, resolved from the CLI.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// btauth/1 freshness window.
    pub auth_max_age: Duration,
    /// The model to serve, if any.
    pub model: Option<ModelConfig>,
}

/// Where the served model lives and which competition it is entered in.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// The HF-style artifact directory (`--model.dir`).
    pub dir: PathBuf,
    /// Competition id put in the manifest (`--competition`).
    pub competition: String,
    /// Device to load the model on for `/v1/generate` (`--device`); `None` serves the files only
    /// and answers `/v1/generate` with 404.
    pub device: Option<subnet_model::backend::DeviceChoice>,
}

/// A bound, not yet running, miner server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    model: Option<Arc<Artifact>>,
}

impl Application {
    /// Binds the listener and builds the router. Who may call signed routes is decided by
    /// `authorizer` (registration on the subnet, or any signer with `--insecure-no-chain`).
    pub async fn build(
        config: &ServerConfig,
        keypair: Keypair,
        guard_authorizer: impl subnet_common::btauth::Authorize,
    ) -> anyhow::Result<Self> {
        Self::build_with_labeling(config, keypair, guard_authorizer, None).await
    }

    /// [`Application::build`] that also collects RLHF labels when `labeling` is given.
    pub async fn build_with_labeling(
        config: &ServerConfig,
        keypair: Keypair,
        guard_authorizer: impl subnet_common::btauth::Authorize,
        labeling: Option<Arc<Labeling>>,
    ) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("while binding the axon to {}", config.addr))?;
        let verifier = Verifier::with_config(
            keypair.account_id(),
            VerifierConfig {
                max_age: config.auth_max_age,
                ..VerifierConfig::default()
            },
        );
        let guard = Guard::new(verifier)
            .with_authorizer(guard_authorizer)
            .with_body_limit(config.max_body_bytes);
        let model = match &config.model {
            Some(model) => {
                let artifact = Artifact::load(&model.dir, &model.competition)
                    .await
                    .with_context(|| {
                        format!("while loading the model directory {}", model.dir.display())
                    })?;
                let commitment =
                    String::from_utf8_lossy(&artifact.commitment(&keypair.account_id()).encode())
                        .into_owned();
                tracing::info!(
                    dir = %model.dir.display(),
                    files = artifact.manifest().files.len(),
                    %commitment,
                    "serving model"
                );
                Some((Arc::new(artifact), model))
            }
            None => None,
        };
        let inference = match &model {
            Some((artifact, config)) => match config.device {
                Some(device) => Some(load_inference(artifact, config, device).await?),
                None => None,
            },
            None => None,
        };
        let model = model.map(|(artifact, _)| artifact);
        let state = AppState {
            keypair: Arc::new(keypair),
            model: model.clone(),
            inference,
            labeling,
        };
        Ok(Self {
            listener,
            router: router(state, guard),
            model,
        })
    }

    /// The served model's artifact, when one is served.
    pub fn model(&self) -> Option<&Arc<Artifact>> {
        self.model.as_ref()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        subnet_common::serve::serve(
            self.listener,
            self.router,
            subnet_common::serve::ServeLimits::default(),
            shutdown,
        )
        .await
        .context("while serving HTTP")
    }
}

/// Loads the served artifact onto `device` for `/v1/generate` (on a blocking thread).
async fn load_inference(
    artifact: &Artifact,
    config: &ModelConfig,
    device: subnet_model::backend::DeviceChoice,
) -> anyhow::Result<Arc<Inference>> {
    let weights_bytes = artifact
        .manifest()
        .files
        .iter()
        .find(|f| f.name == subnet_model::io::WEIGHTS_FILE)
        .map_or(0, |f| f.size);
    let dir = config.dir.clone();
    let inference = tokio::task::spawn_blocking(move || {
        let device = subnet_model::backend::select(device)?;
        Inference::load(&dir, &device, weights_bytes, GenerateLimits::default())
    })
    .await
    .context("while loading the model for generation")?
    .with_context(|| {
        format!(
            "while loading {} for /v1/generate (validators load it the same way)",
            config.dir.display()
        )
    })?;
    tracing::info!(device = inference.device(), "model loaded for generation");
    Ok(Arc::new(inference))
}

/// The miner's routes: public ones, then the btauth-protected API.
pub fn router(state: AppState, guard: Guard) -> Router {
    let signed = Router::new()
        .route("/v1/identity", get(routes::identity::identity))
        .route("/v1/model/manifest", get(routes::model::manifest))
        .route("/v1/model/files/{name}", get(routes::model::file))
        .route("/v1/generate", post(routes::generate::generate))
        .route("/v1/rlhf/tasks", post(routes::rlhf::tasks))
        .route("/v1/rlhf/labels", post(routes::rlhf::labels))
        .route_layer(middleware::from_fn_with_state(
            guard,
            subnet_common::btauth::require,
        ))
        .route_layer(middleware::from_fn(metrics::track_auth_refusals));
    Router::new()
        .route("/health", get(routes::health::health))
        .merge(signed)
        .fallback(routes::not_found)
        .layer(middleware::from_fn(error::json_errors))
        // The labeler form answers HTML pages, also for its errors: outside `json_errors`.
        .merge(label_form())
        .layer(middleware::from_fn(metrics::track_requests))
        .layer(TraceLayer::new_for_http().make_span_with(routes::make_span))
        .with_state(state)
}

/// `/label`: the labeler web form (public; its own cookie sessions and CSRF tokens).
fn label_form() -> Router<AppState> {
    Router::new()
        .route("/label", get(routes::label::task_page))
        .route(
            "/label/login",
            get(routes::label::login_page).post(routes::label::login),
        )
        .route("/label/answer", post(routes::label::answer))
}
