//! `spawn_app`: the real miner server on a free port, and a signed client.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use subnet_common::{btauth::SignedClient, keys::Keypair};
use subnet_miner::startup::{Application, ModelConfig, ServerConfig};

/// A running miner and what a test needs to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub miner: Keypair,
    pub client: SignedClient,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}{}", self.addr, path)).expect("valid url")
    }
}

/// Starts the miner (hotkey `//Bob`) accepting any signer; the client signs as `//Alice`.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(1 << 16).await
}

/// Like [`spawn_app`] with a given body limit.
pub async fn spawn_app_with(max_body_bytes: usize) -> TestApp {
    spawn_app_config(max_body_bytes, None).await
}

/// Like [`spawn_app`], serving the files of the model directory `dir` for competition `tiny-v1`
/// (not loaded for generation, so any bytes will do).
pub async fn spawn_app_with_model(dir: &Path) -> TestApp {
    let model = ModelConfig {
        dir: dir.to_path_buf(),
        competition: "tiny-v1".into(),
        device: None,
    };
    spawn_app_config(1 << 16, Some(model)).await
}

/// Like [`spawn_app_with_model`], also loading the model on the CPU for `/v1/generate`.
pub async fn spawn_app_generating(dir: &Path) -> TestApp {
    let model = ModelConfig {
        dir: dir.to_path_buf(),
        competition: "tiny-v1".into(),
        device: Some(subnet_model::backend::DeviceChoice::Cpu),
    };
    spawn_app_config(1 << 16, Some(model)).await
}

async fn spawn_app_config(max_body_bytes: usize, model: Option<ModelConfig>) -> TestApp {
    let miner = Keypair::from_uri("//Bob").expect("dev key");
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes,
        auth_max_age: Duration::from_secs(10),
        model,
    };
    let app = Application::build(
        &config,
        miner.clone(),
        subnet_common::btauth::AllowAnySigner,
    )
    .await
    .expect("build app");
    let addr = app.local_addr().expect("local addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let client = SignedClient::new(http, Keypair::from_uri("//Alice").expect("dev key"));
    TestApp {
        addr,
        miner,
        client,
        _shutdown: tx,
    }
}

/// A dev chain (`dev_genesis` with `tempo` blocks per epoch) producing a block every 100 ms,
/// serving JSON-RPC on a free port; it runs until the test's runtime stops. Returns its URL.
pub async fn spawn_chain_with_tempo(dir: &Path, tempo: u16) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    spawn_chain_on(listener, dir, tempo)
}

/// [`spawn_chain_with_tempo`] serving on `listener`.
pub fn spawn_chain_on(listener: tokio::net::TcpListener, dir: &Path, tempo: u16) -> String {
    use subnet_chain::{
        dev::dev_genesis,
        node::{Chain, Node, unix_millis},
        rpc::{self, RpcConfig},
    };
    let genesis = dev_genesis(tempo, unix_millis()).expect("genesis");
    let (chain, _) = Chain::open(&genesis, dir).expect("open chain");
    let node = Node::new(chain);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let router = rpc::router(
        std::sync::Arc::clone(&node),
        RpcConfig::default(),
        shutdown_rx,
    );
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(rpc::serve(listener, router, std::future::pending()));
    tokio::spawn(node.run_block_production(Duration::from_millis(100), std::future::pending()));
    // The RPC router stops its event streams when the sender drops; keep it for the test's life.
    std::mem::forget(shutdown_tx);
    format!("http://{addr}")
}

/// [`spawn_chain_with_tempo`] with the dev tempo of 20 blocks.
pub async fn spawn_chain(dir: &Path) -> String {
    spawn_chain_with_tempo(dir, 20).await
}

/// Workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("parent")
        .to_path_buf()
}

/// Python with bittensor 11.3.0 (`$SUBNET_PYTHON` or `.venv/bin/python`); fails with the fix.
pub fn python() -> PathBuf {
    let py = std::env::var("SUBNET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "Python with bittensor 11.3.0 not found at {}: run scripts/setup-python.sh or set SUBNET_PYTHON",
        py.display()
    );
    py
}
