//! `validator doctor`, the dashboard's chain status and `validator run`'s start-up against a real
//! in-process dev chain.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use sqlx::PgPool;
use subnet_chain::dev::dev_genesis;
use subnet_chain::node::{Chain, Node, unix_millis};
use subnet_chain::rpc::{self, RpcConfig};
use subnet_common::chain::client::DevChainClient;
use subnet_common::keys::Keypair;
use subnet_common::wallet::{Protection, Wallet};
use subnet_validator::web::{self, ChainStatus};

use crate::pg::database_url;

/// Serves a dev chain (subnet 1, `//Alice` at uid 0) producing a block every 100 ms; returns its
/// URL and the sender that stops it when dropped.
async fn spawn_chain(dir: &Path) -> (String, tokio::sync::watch::Sender<bool>) {
    let genesis = dev_genesis(10, unix_millis()).expect("genesis");
    let (chain, _) = Chain::open(&genesis, dir).expect("open chain");
    let node = Node::new(chain);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let router = rpc::router(Arc::clone(&node), RpcConfig::default(), shutdown_rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut stop = shutdown_rx.clone();
    tokio::spawn(rpc::serve(listener, router, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    let mut stop = shutdown_rx;
    tokio::spawn(
        node.run_block_production(Duration::from_millis(100), async move {
            let _ = stop.wait_for(|s| *s).await;
        }),
    );
    (url, shutdown_tx)
}

/// A wallet folder under `dir` whose default hotkey is //Alice (the dev subnet's owner).
pub(super) fn alice_wallet(dir: &Path) -> std::path::PathBuf {
    let wallets = dir.join("wallets");
    Wallet::new(&wallets, "default", "default")
        .set_hotkey(
            &Keypair::from_uri("//Alice").expect("key"),
            Protection::Plain,
            false,
        )
        .expect("write hotkey");
    wallets
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn doctor_passes_for_the_subnet_owner_on_a_live_chain(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _stop) = spawn_chain(&dir.path().join("chain")).await;
    let wallets = alice_wallet(dir.path());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let db_url = database_url(&pool);
    let wallet_path = wallets.to_str().expect("path").to_string();
    let cache = dir.path().to_str().expect("path").to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_validator"))
            .args(["doctor", "--netuid", "1", "--wallet.path", &wallet_path])
            .args([
                "--chain.url",
                &url,
                "--db.url",
                &db_url,
                "--cache.dir",
                &cache,
            ])
            .args(["--device", "cpu", "--min-free-gib", "0"])
            .output()
            .expect("run validator")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["wallet", "chain", "clock", "database"] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"));
        assert!(line.starts_with('✓'), "{stdout}");
    }
    // Uid 0; the permit comes with stake at an epoch, so a warning or a pass.
    assert!(stdout.contains("uid 0 on subnet 1"), "{stdout}");
    assert!(stdout.contains("all critical checks passed"), "{stdout}");
}

#[tokio::test]
async fn chain_status_reads_head_lag_and_emissions_and_survives_an_outage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, stop) = spawn_chain(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = DevChainClient::new(&url).expect("client");
    let status = web::read_chain_status(&client, 1, &ChainStatus::default()).await;
    assert!(status.connected, "{status:?}");
    assert!(status.head >= 1, "{status:?}");
    assert!(status.head_lag_secs.abs() < 30.0, "{status:?}");
    let alice = Keypair::from_uri("//Alice")
        .expect("key")
        .account_id()
        .to_ss58();
    assert!(status.emissions_rao.contains_key(&alice), "{status:?}");

    stop.send(true).expect("stop");
    drop(stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = web::read_chain_status(&client, 1, &status).await;
    assert!(!after.connected);
    assert!(after.error.is_some());
    assert_eq!(after.head, status.head, "the last known head is kept");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_dashboard_beside_the_loop_shows_the_live_chain(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _stop) = spawn_chain(dir.path()).await;
    let client = Arc::new(DevChainClient::new(&url).expect("client"));
    let dashboard = web::bind(
        pool,
        client,
        1,
        Some("5Validator".into()),
        "127.0.0.1:0".parse().expect("addr"),
        Duration::from_millis(100),
    )
    .await
    .expect("bind");
    let addr = dashboard.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(dashboard.serve_until(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let mut status = serde_json::Value::Null;
    for _ in 0..50 {
        status = http
            .get(format!("http://{addr}/api/chain"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if status["connected"] == true && status["next_epoch_block"].is_u64() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["connected"], true, "{status}");
    assert_eq!(status["validator_hotkey"], "5Validator");
    // Tempo 10 on netuid 1: epochs start where (block + 2) % 11 == 0.
    let next = status["next_epoch_block"].as_u64().expect("next epoch");
    assert!(next > status["head"].as_u64().expect("head"), "{status}");
    assert_eq!((next + 2) % 11, 0, "{status}");
    let metrics = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("validator_chain_head_lag_seconds"),
        "{metrics}"
    );

    // It stops when told, and the port with it.
    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("stops")
        .expect("task")
        .expect("served");
    assert!(
        http.get(format!("http://{addr}/health"))
            .send()
            .await
            .is_err()
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn validator_run_builds_then_runs_the_loop_and_dashboard_until_shutdown(pool: PgPool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (url, _stop) = spawn_chain(&dir.path().join("chain")).await;
    let wallets = alice_wallet(dir.path());
    let db_url = database_url(&pool);
    let cli = subnet_validator::cli::Cli::try_parse_from([
        "validator",
        "run",
        "--netuid",
        "1",
        "--wallet.path",
        wallets.to_str().expect("path"),
        "--chain.url",
        &url,
        "--db.url",
        &db_url,
        "--cache.dir",
        dir.path().join("cache").to_str().expect("path"),
        "--device",
        "cpu",
        "--http.port",
        "0",
    ])
    .expect("flags");
    let subnet_validator::cli::Command::Run(args) = cli.command else {
        panic!("not `run`");
    };
    let app = subnet_validator::startup::Application::build(&args)
        .await
        .expect("build");
    let addr = app
        .dashboard_addr()
        .expect("--http.port asks for the dashboard");
    assert_ne!(addr.port(), 0, "port 0 resolved at build");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let health = http
        .get(format!("http://127.0.0.1:{}/health", addr.port()))
        .send()
        .await
        .expect("the dashboard serves while the loop runs");
    assert!(health.status().is_success(), "{}", health.status());

    stop.send(()).expect("stop");
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("stops on shutdown")
        .expect("task")
        .expect("a clean stop");
    assert!(
        http.get(format!("http://127.0.0.1:{}/health", addr.port()))
            .send()
            .await
            .is_err(),
        "the dashboard stopped with the loop"
    );
}
