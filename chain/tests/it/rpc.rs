//! JSON-RPC and SSE against a running node, through the client the miner and validator use.

use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use subnet_common::chain::rpc::code;
use subnet_common::chain::types::{Call, Hyperparameter, SignedExtrinsic};
use subnet_common::chain::{ChainClient, ChainClientError, H256};

use crate::support::{ChainDir, key};

/// Submits `call` signed by `uri` and waits for it to be included.
async fn include(node: &crate::support::TestNode, call: Call, uri: &str) -> u64 {
    let name = call.name();
    let tx = node
        .client
        .submit(call, &key(uri))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    node.client
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .block
}

#[tokio::test]
async fn register_serve_commit_and_set_weights_show_in_the_metagraph() {
    let dir = ChainDir::new();
    let node = dir.start();
    let miner = key("//Miner1");
    let hotkey = miner.account_id();

    // The owner turns commit–reveal off so plain set_weights is allowed.
    let off = Call::SetHyperparameter {
        netuid: 1,
        param: Hyperparameter::CommitRevealWeightsEnabled,
        value: 0,
    };
    include(&node, off, "//Alice").await;
    include(&node, Call::Register { netuid: 1, hotkey }, "//Miner1").await;
    let axon = Call::ServeAxon {
        netuid: 1,
        version: 7,
        ip: u128::from(u32::from(std::net::Ipv4Addr::LOCALHOST)),
        port: 8091,
        ip_type: 4,
        protocol: 0,
    };
    include(&node, axon, "//Miner1").await;
    let commitment = b"model:0123abcd".to_vec();
    let committed_at = include(
        &node,
        Call::SetCommitment {
            netuid: 1,
            data: commitment.clone(),
        },
        "//Miner1",
    )
    .await;

    // The owner (uid 0) has a validator permit after the first epoch (tempo 10).
    node.wait_for_block(12).await;
    let weights = Call::SetWeights {
        netuid: 1,
        dests: vec![1],
        weights: vec![65535],
        version_key: 0,
    };
    include(&node, weights, "//Alice").await;

    let metagraph = node.client.metagraph(1).await.unwrap();
    let neuron = metagraph
        .neurons
        .iter()
        .find(|n| n.hotkey == hotkey)
        .expect("miner registered");
    assert_eq!(neuron.uid, 1);
    assert_eq!(neuron.coldkey, hotkey);
    assert_eq!(neuron.axon_info.port, 8091);
    assert_eq!(neuron.axon_info.version, 7);
    assert_eq!(metagraph.neurons[0].weights, vec![(1, 65535)]);

    let commitments = node.client.commitments(1).await.unwrap();
    let stored = commitments
        .iter()
        .find(|c| c.hotkey == hotkey)
        .expect("commitment stored");
    assert_eq!(stored.data, commitment);
    assert_eq!(stored.block, committed_at);

    let hyper = node.client.hyperparameters(1).await.unwrap();
    assert!(!hyper.commit_reveal_weights_enabled);
    assert_eq!(hyper.tempo, 10);
}

#[tokio::test]
async fn bad_signature_wrong_genesis_and_bad_nonce_are_refused_at_once() {
    let dir = ChainDir::new();
    let node = dir.start();
    let alice = key("//Alice");
    let genesis = node.client.genesis_hash().await.unwrap();
    let call = Call::Transfer {
        dest: key("//Bob").account_id(),
        amount: 1,
    };

    let mut forged = SignedExtrinsic::sign(call.clone(), 0, &genesis.0, &alice);
    forged.signature.0[10] ^= 1;
    let err = node.client.submit_raw(&forged.encode()).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::BAD_SIGNATURE), "{err}");
    assert!(err.to_string().contains("bad signature"), "{err}");

    let other_chain = SignedExtrinsic::sign(call.clone(), 0, &[9; 32], &alice);
    let err = node
        .client
        .submit_raw(&other_chain.encode())
        .await
        .unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::BAD_SIGNATURE), "{err}");
    assert!(err.to_string().contains("genesis"), "{err}");

    let future = SignedExtrinsic::sign(call.clone(), 5, &genesis.0, &alice);
    let err = node.client.submit_raw(&future.encode()).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::BAD_NONCE), "{err}");
    assert!(err.to_string().contains("expected 0, got 5"), "{err}");

    let err = node.client.submit_raw(&[1, 2, 3]).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::INVALID_EXTRINSIC), "{err}");

    // A good one is accepted; the same bytes again are already known.
    let good = SignedExtrinsic::sign(call, 0, &genesis.0, &alice).encode();
    let tx = node.client.submit_raw(&good).await.unwrap();
    let err = node.client.submit_raw(&good).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::ALREADY_KNOWN), "{err}");
    node.client
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .unwrap();
    // Replaying it after inclusion is a stale nonce.
    let err = node.client.submit_raw(&good).await.unwrap_err();
    assert!(
        matches!(err.rpc_code(), Some(code::ALREADY_KNOWN | code::BAD_NONCE)),
        "{err}"
    );
}

#[tokio::test]
async fn queued_extrinsics_of_one_account_take_consecutive_nonces() {
    let dir = ChainDir::new();
    let node = dir.start();
    let bob = key("//Bob").account_id();
    let mut txs = Vec::new();
    for _ in 0..3 {
        txs.push(
            node.client
                .submit(
                    Call::Transfer {
                        dest: bob,
                        amount: 1_000,
                    },
                    &key("//Charlie"),
                )
                .await
                .unwrap(),
        );
    }
    for tx in txs {
        node.client
            .wait_for_inclusion(tx, Duration::from_secs(20))
            .await
            .unwrap();
    }
    let charlie = node
        .client
        .account(&key("//Charlie").account_id())
        .await
        .unwrap();
    assert_eq!(charlie.nonce, 3);
}

#[tokio::test]
async fn blocks_are_served_by_number_and_hash_and_link_up() {
    let dir = ChainDir::new();
    let node = dir.start();
    node.wait_for_block(3).await;
    let head = node.client.head().await.unwrap();
    let genesis = node.client.genesis_hash().await.unwrap();
    assert_eq!(node.client.block_hash(0).await.unwrap(), Some(genesis));
    assert_eq!(
        node.client.block_hash(head.number + 1_000).await.unwrap(),
        None
    );
    let block = node.client.block(2).await.unwrap().unwrap();
    assert_eq!(
        Some(block.header.hash),
        node.client.block_hash(2).await.unwrap()
    );
    assert_eq!(
        Some(block.header.parent_hash),
        node.client.block_hash(1).await.unwrap()
    );

    let by_hash = raw(
        &node.url,
        "chain_getBlock",
        serde_json::json!([block.header.hash]),
    )
    .await;
    assert_eq!(by_hash["result"]["header"]["number"], 2);
}

async fn raw(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn protocol_errors_carry_json_rpc_codes() {
    let dir = ChainDir::new();
    let node = dir.start();
    let unknown = raw(&node.url, "no_such_method", serde_json::json!([])).await;
    assert_eq!(unknown["error"]["code"], code::METHOD_NOT_FOUND);
    let bad_params = raw(&node.url, "subnet_metagraph", serde_json::json!(["one"])).await;
    assert_eq!(bad_params["error"]["code"], code::INVALID_PARAMS);
    let no_subnet = node.client.metagraph(42).await.unwrap_err();
    assert_eq!(
        no_subnet.rpc_code(),
        Some(code::UNKNOWN_SUBNET),
        "{no_subnet}"
    );

    let http = reqwest::Client::new();
    let not_json = http.post(&node.url).body("{oops").send().await.unwrap();
    let body: serde_json::Value = not_json.json().await.unwrap();
    assert_eq!(body["error"]["code"], code::PARSE_ERROR);

    // On its own connection: the server closes it after refusing the body.
    let huge = reqwest::Client::new()
        .post(&node.url)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    let health: serde_json::Value = http
        .get(format!("{}/health", node.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test]
async fn the_rate_limit_answers_429_with_a_json_rpc_error() {
    let dir = ChainDir::new();
    let node = dir.start_with(&["--rpc.rate-limit", "1", "--rpc.burst", "3"]);
    let mut limited = None;
    for _ in 0..10 {
        match node.client.head().await {
            Ok(_) => {}
            Err(err) => {
                limited = Some(err);
                break;
            }
        }
    }
    let err = limited.expect("a burst of 10 over a bucket of 3 is limited");
    assert!(
        matches!(
            err,
            ChainClientError::Rpc {
                code: code::RATE_LIMITED,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn server_sent_events_deliver_new_heads_in_order() {
    let dir = ChainDir::new();
    let node = dir.start();
    let mut response = reqwest::Client::new()
        .get(format!("{}/events", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut text = String::new();
    let mut numbers: Vec<u64> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while numbers.len() < 4 {
        assert!(Instant::now() < deadline, "only {numbers:?} in:\n{text}");
        let chunk = response.chunk().await.unwrap().expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        numbers = text
            .split("\n\n")
            .filter(|event| event.contains("event: newHead"))
            .filter_map(|event| event.lines().find_map(|l| l.strip_prefix("data: ")))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .filter_map(|head| head["number"].as_u64())
            .collect();
    }
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    let hash: H256 = {
        let last = text
            .split("\n\n")
            .filter(|e| e.contains("newHead"))
            .nth(3)
            .unwrap();
        let data = last.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        serde_json::from_value(
            serde_json::from_str::<serde_json::Value>(data).unwrap()["hash"].clone(),
        )
        .unwrap()
    };
    assert_eq!(
        node.client.block_hash(numbers[3]).await.unwrap(),
        Some(hash)
    );
}

#[tokio::test]
async fn commit_then_reveal_sets_weights_a_period_later() {
    use subnet_common::chain::types::commit_hash;

    let dir = ChainDir::new();
    let node = dir.start();
    include(
        &node,
        Call::Register {
            netuid: 1,
            hotkey: key("//Miner4").account_id(),
        },
        "//Miner4",
    )
    .await;
    // The owner (uid 0) has a validator permit after the first epoch (tempo 10).
    node.wait_for_block(12).await;
    let alice = key("//Alice");
    let (uids, values, salt) = (vec![1u16], vec![65535u16], vec![7u16, 8, 9]);
    let hash = commit_hash(&alice.account_id(), 1, &uids, &values, &salt, 0);
    let committed = include(
        &node,
        Call::CommitWeights {
            netuid: 1,
            commit_hash: hash,
        },
        "//Alice",
    )
    .await;

    let reveal = Call::RevealWeights {
        netuid: 1,
        uids,
        values,
        salt,
        version_key: 0,
    };
    let deadline = committed + 40;
    let revealed = loop {
        let tx = node.client.submit(reveal.clone(), &alice).await.unwrap();
        match node
            .client
            .wait_for_inclusion(tx, Duration::from_secs(20))
            .await
        {
            Ok(inclusion) => break inclusion.block,
            Err(ChainClientError::ExtrinsicFailed { error, block, .. }) => {
                assert!(
                    error.contains("early"),
                    "only too-early reveals may fail: {error}"
                );
                assert!(block < deadline, "still too early at block {block}");
                node.wait_for_block(block + 1).await;
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert!(revealed > committed);
    let metagraph = node.client.metagraph(1).await.unwrap();
    assert_eq!(metagraph.neurons[0].weights, vec![(1, 65535)]);
}

#[tokio::test]
async fn commitments_at_a_block_are_the_state_after_it_even_after_a_recommit_and_a_restart() {
    let dir = ChainDir::new();
    let node = dir.start();
    let hotkey = key("//Miner1").account_id();
    let no_limit = Call::SetHyperparameter {
        netuid: 1,
        param: Hyperparameter::CommitmentRateLimit,
        value: 0,
    };
    include(&node, no_limit, "//Alice").await;
    include(&node, Call::Register { netuid: 1, hotkey }, "//Miner1").await;
    let commit = |data: &[u8]| Call::SetCommitment {
        netuid: 1,
        data: data.to_vec(),
    };
    let first = include(&node, commit(b"first"), "//Miner1").await;
    let second = include(&node, commit(b"second"), "//Miner1").await;
    assert!(second > first);

    let expected = [
        (first - 1, None),
        (first, Some((first, b"first".to_vec()))),
        (second - 1, Some((first, b"first".to_vec()))),
        (second, Some((second, b"second".to_vec()))),
    ];
    for (number, want) in &expected {
        assert_eq!(
            &data_at(&node.client, hotkey, *number).await,
            want,
            "at block {number}"
        );
    }
    let head = node.client.commitments(1).await.unwrap();
    assert!(head.iter().any(|c| c.data == b"second"));

    let err = node
        .client
        .commitments_at(1, H256([7; 32]))
        .await
        .unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::UNKNOWN_BLOCK), "{err}");
    let genesis = node.client.block_hash(0).await.unwrap().expect("genesis");
    let err = node.client.commitments_at(9, genesis).await.unwrap_err();
    assert_eq!(err.rpc_code(), Some(code::UNKNOWN_SUBNET), "{err}");

    // The history is rebuilt by replay.
    drop(node);
    let node = dir.start();
    for (number, want) in &expected {
        assert_eq!(
            &data_at(&node.client, hotkey, *number).await,
            want,
            "after restart, at block {number}"
        );
    }
}

/// `(block, data)` of `hotkey`'s commitment in the state after block `number`.
async fn data_at(
    client: &subnet_common::chain::DevChainClient,
    hotkey: subnet_common::keys::AccountId,
    number: u64,
) -> Option<(u64, Vec<u8>)> {
    let hash = client.block_hash(number).await.unwrap().expect("block");
    let commitments = client.commitments_at(1, hash).await.unwrap();
    commitments
        .into_iter()
        .find(|c| c.hotkey == hotkey)
        .map(|c| (c.block, c.data))
}
