//! The block log survives kill -9, cuts a torn tail, and refuses corruption by block number.

use std::io::Write;
use std::time::Duration;

use subnet_common::chain::types::Call;
use subnet_common::chain::{ChainClient, ChainClientError};

use crate::support::{ChainDir, key, records};

#[tokio::test]
async fn kill_9_and_restart_brings_back_every_committed_block() {
    let dir = ChainDir::new();
    let node = dir.start();
    let miner = key("//Miner1");
    let tx = node
        .client
        .submit(
            Call::Register {
                netuid: 1,
                hotkey: miner.account_id(),
            },
            &miner,
        )
        .await
        .unwrap();
    let included = node
        .client
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .unwrap();
    let head = node.wait_for_block(included.block + 3).await;
    let before = node.hashes(head).await;
    node.kill_9();

    let node = dir.start();
    let after = node.hashes(head).await;
    assert_eq!(
        before, after,
        "every block announced before the kill is back, same hashes"
    );
    let status = node.client.tx_status(tx).await.unwrap();
    assert!(
        matches!(status, subnet_common::chain::TxStatus::InBlock { block, .. } if block == included.block),
        "{status:?}"
    );
    let metagraph = node.client.metagraph(1).await.unwrap();
    assert!(
        metagraph
            .neurons
            .iter()
            .any(|n| n.hotkey == miner.account_id())
    );
    // And the chain goes on from there.
    node.wait_for_block(head + 2).await;
    assert_eq!(
        node.client.block_hash(head).await.unwrap(),
        Some(before[head as usize])
    );
}

#[tokio::test]
async fn a_torn_last_record_is_cut_with_a_warning() {
    let dir = ChainDir::new();
    let node = dir.start();
    let head = node.wait_for_block(5).await;
    node.kill_9();
    let last = records(&dir.log_file()).last().copied().expect("records");
    let stored = last.0;
    assert!(stored >= head);

    // A record header promising 500 bytes, followed by only 7: a crash mid-append.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.log_file())
        .unwrap();
    let mut torn = 500u32.to_le_bytes().to_vec();
    torn.extend_from_slice(&(!500u32).to_le_bytes());
    torn.extend_from_slice(&[0xAB; 39]);
    file.write_all(&torn).unwrap();
    drop(file);

    let node = dir.start();
    let logs = node.logs();
    assert!(
        logs.contains("torn last record cut"),
        "no warning in:\n{logs}"
    );
    assert!(logs.contains("WARN"), "not a warning:\n{logs}");
    assert!(node.client.block_hash(stored).await.unwrap().is_some());
    node.wait_for_block(stored + 2).await;
    // The cut happened: the log is well-formed again after the new blocks.
    let after = records(&dir.log_file());
    assert!(after.len() as u64 >= stored + 2);
}

#[tokio::test]
async fn a_flipped_byte_in_the_middle_stops_the_node_naming_the_block() {
    let dir = ChainDir::new();
    let node = dir.start();
    node.wait_for_block(6).await;
    node.kill_9();
    let recs = records(&dir.log_file());
    let (block, _, payload, end) = recs[recs.len() / 2];
    let mut bytes = std::fs::read(dir.log_file()).unwrap();
    bytes[(payload + end) / 2] ^= 0x01;
    std::fs::write(dir.log_file(), &bytes).unwrap();

    let (status, logs) = dir.start_expecting_failure();
    assert!(!status.success());
    assert!(
        logs.contains(&format!("block {block} ")),
        "block {block} not named in:\n{logs}"
    );
    assert!(logs.contains("corrupt"), "{logs}");
}

#[tokio::test]
async fn a_log_from_another_genesis_is_refused() {
    let dir = ChainDir::new();
    let node = dir.start();
    node.wait_for_block(1).await;
    drop(node);
    // New genesis (new timestamp) → new genesis hash.
    std::thread::sleep(Duration::from_millis(5));
    let status = crate::support::devchain()
        .args(["genesis", "--dev", "--out"])
        .arg(dir.genesis())
        .status()
        .unwrap();
    assert!(status.success());
    let (status, logs) = dir.start_expecting_failure();
    assert!(!status.success());
    assert!(logs.contains("belongs to genesis"), "{logs}");
}

#[tokio::test]
async fn a_failed_extrinsic_is_reported_and_not_included() {
    let dir = ChainDir::new();
    let node = dir.start();
    let stranger = key("//Miner7");
    let before = node.client.account(&stranger.account_id()).await.unwrap();
    let call = Call::SetCommitment {
        netuid: 1,
        data: b"not registered".to_vec(),
    };
    let tx = node.client.submit(call, &stranger).await.unwrap();
    let err = node
        .client
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .unwrap_err();
    let ChainClientError::ExtrinsicFailed { error, block, .. } = &err else {
        panic!("expected a failed extrinsic, got {err}");
    };
    assert!(error.to_lowercase().contains("not registered"), "{error}");
    let block = node.client.block(*block).await.unwrap().unwrap();
    assert!(
        !block.tx_hashes.contains(&tx),
        "a failed extrinsic is not included"
    );
    let after = node.client.account(&stranger.account_id()).await.unwrap();
    assert_eq!(after.nonce, before.nonce, "its nonce was not used");
}
