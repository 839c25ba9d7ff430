//! The node built in-process, as `devchain node` builds it: `Application::build` on port 0, then
//! `run_until` a shutdown the test controls.

use std::time::Duration;

use subnet_chain::rpc::RpcConfig;
use subnet_chain::startup::{Application, NodeConfig};
use subnet_common::chain::types::Call;
use subnet_common::chain::{ChainClient, DevChainClient, TxStatus};

use crate::support::key;

fn config(data_dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        genesis: subnet_chain::dev::dev_genesis(10, 1_000).expect("dev genesis"),
        data_dir: data_dir.to_owned(),
        rpc_addr: "127.0.0.1:0".parse().expect("address"),
        block_time: Duration::from_millis(50),
        rpc: RpcConfig::default(),
    }
}

/// A built node running on a task; `stop` ends it, `task` says how it ended.
struct Running {
    client: DevChainClient,
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(data_dir: &std::path::Path) -> Running {
    let app = Application::build(config(data_dir)).await.expect("build");
    assert_ne!(app.port(), 0, "port 0 is resolved to the bound port");
    assert_eq!(app.local_addr().port(), app.port());
    let url = format!("http://{}", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Running {
        client: DevChainClient::new(&url).expect("client"),
        url,
        stop,
        task,
    }
}

impl Running {
    async fn shut_down(self) {
        self.stop.send(()).expect("node still running");
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("run_until returns promptly after shutdown")
            .expect("task")
            .expect("a clean stop");
    }
}

#[tokio::test]
async fn a_built_node_produces_serves_stops_cleanly_and_resumes_from_its_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = start(dir.path()).await;
    // An open event stream must not hold the shutdown up.
    let events = reqwest::get(format!("{}/events", node.url))
        .await
        .expect("events");
    assert!(events.status().is_success());
    let alice = key("//Alice");
    let tx = node
        .client
        .submit(
            Call::Transfer {
                dest: key("//Bob").account_id(),
                amount: 5,
            },
            &alice,
        )
        .await
        .expect("submit");
    let included = node
        .client
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .expect("included");
    let head = node.client.head().await.expect("head");
    assert!(head.number >= included.block);
    let metrics = reqwest::get(format!("{}/metrics", node.url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    // The recorder is process-wide: this node's numbers mix with other in-process nodes'.
    assert!(metrics.contains("devchain_blocks_total"), "{metrics}");
    assert!(
        metrics.contains("devchain_extrinsics_total{outcome=\"applied\"}"),
        "{metrics}"
    );
    node.shut_down().await;
    drop(events);

    // The same data directory: the chain comes back from the log and goes on.
    let node = start(dir.path()).await;
    let status = node.client.tx_status(tx).await.expect("status");
    assert!(
        matches!(status, TxStatus::InBlock { block, .. } if block == included.block),
        "{status:?}"
    );
    let resumed = node.client.head().await.expect("head");
    assert!(resumed.number >= head.number, "{resumed:?} vs {head:?}");
    node.shut_down().await;
}

#[tokio::test]
async fn build_names_the_address_it_cannot_bind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = config(dir.path());
    config.rpc_addr = taken.local_addr().expect("addr");
    let Err(error) = Application::build(config).await else {
        panic!("a taken port was bound twice")
    };
    let text = format!("{error:#}");
    assert!(text.contains("--rpc.addr"), "{text}");
}

#[cfg(unix)]
#[tokio::test]
async fn devchain_node_exits_0_on_sigterm() {
    let dir = crate::support::ChainDir::new();
    let mut node = dir.start();
    node.wait_for_block(1).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = node.child.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exit.success(), "{exit:?}; logs:\n{}", node.logs());
    assert!(node.logs().contains("shutting down"), "{}", node.logs());
}
