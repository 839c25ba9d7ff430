//! `GET /metrics` of a real `devchain node` (its own process, so the counters are its own).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use subnet_common::chain::types::{Call, SignedExtrinsic};
use subnet_common::chain::{ChainClient, TxStatus};

use crate::support::{ChainDir, TestNode, key};

/// The node's metrics as `name{labels}` → value (comments and histogram buckets included).
async fn scrape(node: &TestNode) -> HashMap<String, f64> {
    let response = reqwest::get(format!("{}/metrics", node.url))
        .await
        .expect("GET /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("body");
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(metrics: &HashMap<String, f64>, series: &str) -> f64 {
    *metrics
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {metrics:#?}"))
}

/// Polls until `tx` leaves the queue.
async fn settled(node: &TestNode, tx: subnet_common::chain::H256) -> TxStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = node.client.tx_status(tx).await.expect("status");
        if !matches!(status, TxStatus::Pending) {
            return status;
        }
        assert!(Instant::now() < deadline, "{tx} still pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn metrics_count_blocks_extrinsics_epochs_rpc_calls_and_event_streams() {
    let dir = ChainDir::new();
    let node = dir.start();
    let events = reqwest::get(format!("{}/events", node.url))
        .await
        .expect("events");
    assert!(events.status().is_success());

    // Applied: a transfer. Failed at block time: a commitment from an unregistered hotkey.
    // Rejected at submission: a nonce from the future.
    let applied = node
        .client
        .submit(
            Call::Transfer {
                dest: key("//Bob").account_id(),
                amount: 1,
            },
            &key("//Alice"),
        )
        .await
        .expect("submit transfer");
    let failed = node
        .client
        .submit(
            Call::SetCommitment {
                netuid: 1,
                data: vec![1],
            },
            &key("//Miner7"),
        )
        .await
        .expect("submit commitment");
    let genesis = node.client.genesis_hash().await.expect("genesis");
    let future_nonce = SignedExtrinsic::sign(
        Call::Transfer {
            dest: key("//Bob").account_id(),
            amount: 1,
        },
        99,
        &genesis.0,
        &key("//Charlie"),
    );
    node.client
        .submit_raw(&future_nonce.encode())
        .await
        .expect_err("a bad nonce is refused");
    assert!(matches!(
        settled(&node, applied).await,
        TxStatus::InBlock { .. }
    ));
    assert!(matches!(
        settled(&node, failed).await,
        TxStatus::Failed { .. }
    ));
    // Tempo 10: subnet 1 has run an epoch by block 12.
    node.wait_for_block(12).await;

    let before = node.client.head().await.expect("head").number;
    let metrics = scrape(&node).await;
    let after = node.client.head().await.expect("head").number;
    let height = value(&metrics, "devchain_block_height");
    assert!(
        (before as f64..=after as f64).contains(&height),
        "height {height} outside {before}..={after}"
    );
    // A fresh chain: every block was produced by this process (one may land mid-render).
    let blocks = value(&metrics, "devchain_blocks_total");
    assert!(
        (blocks - height).abs() <= 1.0,
        "{blocks} blocks at height {height}"
    );
    let timed = value(&metrics, "devchain_block_production_seconds_count");
    assert!(
        (timed - blocks).abs() <= 1.0,
        "{timed} timings for {blocks} blocks"
    );
    assert!(value(&metrics, "devchain_block_production_seconds_sum") > 0.0);
    assert!(metrics.contains_key("devchain_block_production_seconds_bucket{le=\"0.01\"}"));
    for (outcome, expected) in [("applied", 1.0), ("failed", 1.0), ("rejected", 1.0)] {
        let series = format!("devchain_extrinsics_total{{outcome=\"{outcome}\"}}");
        assert_eq!(value(&metrics, &series), expected, "{series}");
    }
    assert_eq!(value(&metrics, "devchain_pending_extrinsics"), 0.0);
    assert!(value(&metrics, "devchain_epochs_total{netuid=\"1\"}") >= 1.0);
    let submits = "devchain_rpc_requests_total{method=\"author_submitExtrinsic\"}";
    assert_eq!(value(&metrics, submits), 3.0);
    let refused = "devchain_rpc_errors_total{method=\"author_submitExtrinsic\"}";
    assert_eq!(value(&metrics, refused), 1.0);
    assert!(
        value(
            &metrics,
            "devchain_rpc_requests_total{method=\"chain_getHead\"}"
        ) >= 1.0
    );
    assert_eq!(value(&metrics, "devchain_sse_subscribers"), 1.0);

    // A closed stream is no longer counted.
    drop(events);
    let deadline = Instant::now() + Duration::from_secs(10);
    while value(&scrape(&node).await, "devchain_sse_subscribers") != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the closed stream is still counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Restarted on the same log: the height counts the replayed blocks, `blocks_total` does not.
    node.kill_9();
    let node = dir.start();
    let metrics = scrape(&node).await;
    let head = node.client.head().await.expect("head").number;
    let height = value(&metrics, "devchain_block_height");
    assert!(
        (after as f64..=head as f64).contains(&height),
        "height {height} outside {after}..={head}"
    );
    let produced = metrics.get("devchain_blocks_total").copied().unwrap_or(0.0);
    assert!(
        produced <= height - after as f64 + 1.0,
        "{produced} blocks produced since the restart at height {height}, replayed {after}"
    );
}
