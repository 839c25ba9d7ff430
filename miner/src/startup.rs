//! Building and running the miner's HTTP server.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{Router, middleware, routing::get};
use subnet_common::{
    btauth::{Guard, Verifier, VerifierConfig},
    keys::Keypair,
};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::{error, routes};

/// Everything a request handler may need. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The miner's hotkey (never logged; only its public half is served).
    pub keypair: Arc<Keypair>,
}

/// Settings of the HTTP server, resolved from the CLI.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind (port 0 picks a free port).
    pub addr: SocketAddr,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// btauth/1 freshness window.
    pub auth_max_age: Duration,
}

/// A bound, not yet running, miner server.
pub struct Application {
    listener: TcpListener,
    router: Router,
}

impl Application {
    /// Binds the listener and builds the router. Who may call signed routes is decided by
    /// `authorizer` (registration on the subnet, or any signer with `--insecure-no-chain`).
    pub async fn build(
        config: &ServerConfig,
        keypair: Keypair,
        guard_authorizer: impl subnet_common::btauth::Authorize,
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
        let state = AppState {
            keypair: Arc::new(keypair),
        };
        Ok(Self {
            listener,
            router: router(state, guard),
        })
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
        axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("while serving HTTP")
    }
}

/// The miner's routes: public ones, then the btauth-protected API.
pub fn router(state: AppState, guard: Guard) -> Router {
    let signed = Router::new()
        .route("/v1/identity", get(routes::identity::identity))
        .route_layer(middleware::from_fn_with_state(
            guard,
            subnet_common::btauth::require,
        ));
    Router::new()
        .route("/health", get(routes::health::health))
        .merge(signed)
        .fallback(routes::not_found)
        .layer(middleware::from_fn(error::json_errors))
        .layer(TraceLayer::new_for_http().make_span_with(routes::make_span))
        .with_state(state)
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
