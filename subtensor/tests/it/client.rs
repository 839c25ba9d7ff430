//! [`SubtensorClient`] against a JSON-RPC server that replays what the SDK recorded from a
//! Subtensor test chain (golden.json) and checks what it is sent: the client reads the runtime,
//! the head, storage, runtime API answers and events pinned to the recorded block, and submits
//! an extrinsic the server checks byte for byte.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::{Json, Router, extract::State, routing::post};
use blake2::Digest;
use serde_json::{Value as JsonValue, json};
use subnet_common::chain::types::Call;
use subnet_common::chain::{ChainClient, ChainClientError, ClientOptions, H256, TxStatus};
use subnet_common::keys::Keypair;
use subnet_subtensor::reads::{Outcome, outcome_of};
use subnet_subtensor::{AnyChain, Era, SubtensorCall, SubtensorClient, endpoint_url};
use subxt_core::ext::scale_value::Value;

use crate::parity::{golden_json, unhex};

/// What the replaying node knows and what it was sent.
struct Node {
    golden: JsonValue,
    /// Every extrinsic submitted.
    submitted: Mutex<Vec<Vec<u8>>>,
    /// Requests it had no recorded answer for.
    unknown: Mutex<Vec<String>>,
    /// Storage keys and values (hex) it serves besides the recorded data.
    storage: Vec<(String, String)>,
    /// The best block's number (the recorded block, 67, unless a test moves it).
    head: AtomicU64,
}

impl Node {
    fn recorded(&self, name: &str) -> &Vec<JsonValue> {
        self.golden[name].as_array().expect("a list")
    }

    /// The answer to one request, or `None` when nothing was recorded for it.
    fn answer(&self, method: &str, params: &[JsonValue]) -> Option<JsonValue> {
        let network = &self.golden["network"];
        let block = &self.golden["block"];
        let text = |i: usize| {
            params
                .get(i)
                .and_then(JsonValue::as_str)
                .unwrap_or_default()
        };
        match method {
            "chain_getBlockHash" => match params.first().and_then(JsonValue::as_u64) {
                Some(0) => Some(network["genesis_hash"].clone()),
                Some(67) => Some(block["block_hash"].clone()),
                Some(_) => Some(JsonValue::Null),
                None => None,
            },
            "chain_getHeader" => {
                Some(json!({"number": format!("{:#x}", self.head.load(Ordering::SeqCst))}))
            }
            "chain_getBlock" if params.first() == Some(&block["block_hash"]) => {
                Some(block["raw"].clone())
            }
            "state_getRuntimeVersion" => Some(json!({
                "specName": "node-subtensor",
                "specVersion": network["spec_version"],
                "transactionVersion": network["transaction_version"],
            })),
            "state_call"
                if text(0) == "Metadata_metadata_at_version" && text(1) == "0x0f000000" =>
            {
                Some(self.golden["metadata"]["v15_hex"].clone())
            }
            "state_call" => self
                .recorded("runtime_calls")
                .iter()
                .find(|r| {
                    format!(
                        "{}_{}",
                        r["api"].as_str().unwrap_or(""),
                        r["method"].as_str().unwrap_or("")
                    ) == text(0)
                        && format!("0x{}", r["encoded_params_hex"].as_str().unwrap_or(""))
                            == text(1)
                        && r["block_hash"] == params[2]
                })
                .map(|r| r["raw_hex"].clone()),
            "state_getStorage" => {
                if text(0) == events_key() && params[1] == self.golden["events"]["block_hash"] {
                    return Some(self.golden["events"]["raw_hex"].clone());
                }
                // Nothing recorded is nothing stored, as a node answers.
                Some(
                    self.recorded("storage_values")
                        .iter()
                        .find(|r| r["key_hex"] == params[0] && r["block_hash"] == params[1])
                        .map_or(JsonValue::Null, |r| r["raw_hex"].clone()),
                )
            }
            "system_accountNextIndex" => Some(json!(7)),
            "state_getKeysPaged" => {
                let (prefix, start) = (text(0), text(2));
                let mut keys: Vec<&String> = self
                    .storage
                    .iter()
                    .map(|(k, _)| k)
                    .filter(|k| k.starts_with(prefix) && k.as_str() > start)
                    .collect();
                keys.sort();
                keys.truncate(params[1].as_u64()? as usize);
                Some(json!(keys))
            }
            "state_queryStorageAt" => {
                let changes: Vec<JsonValue> = params[0]
                    .as_array()?
                    .iter()
                    .map(|k| {
                        let value = self.storage.iter().find(|(key, _)| k == key.as_str());
                        json!([k, value.map(|(_, v)| v)])
                    })
                    .collect();
                Some(json!([{"block": params[1], "changes": changes}]))
            }
            "author_submitExtrinsic" => {
                let bytes = unhex(text(0));
                let hash: [u8; 32] =
                    blake2::Blake2b::<blake2::digest::consts::U32>::digest(&bytes).into();
                self.submitted.lock().unwrap().push(bytes);
                Some(json!(format!("0x{}", hex::encode(hash))))
            }
            _ => None,
        }
    }
}

/// `twox128("System") ‖ twox128("Events")`.
fn events_key() -> &'static str {
    "0x26aa394eea5630e07c48ae0c9558cef780d41e5e16056765bc8461851072c9d7"
}

async fn rpc(State(node): State<Arc<Node>>, Json(request): Json<JsonValue>) -> Json<JsonValue> {
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    let params = request["params"].as_array().cloned().unwrap_or_default();
    let id = request["id"].clone();
    Json(match node.answer(&method, &params) {
        Some(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        None => {
            node.unknown
                .lock()
                .unwrap()
                .push(format!("{method} {params:?}"));
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "not recorded"}})
        }
    })
}

async fn start() -> (String, Arc<Node>) {
    start_with(Vec::new()).await
}

async fn start_with(storage: Vec<(String, String)>) -> (String, Arc<Node>) {
    let node = Arc::new(Node {
        golden: golden_json(),
        submitted: Mutex::new(Vec::new()),
        unknown: Mutex::new(Vec::new()),
        storage,
        head: AtomicU64::new(67),
    });
    let app = Router::new().route("/", post(rpc)).with_state(node.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("ws://127.0.0.1:{port}"), node)
}

#[tokio::test]
async fn reads_and_submits_against_a_node_replaying_recorded_chain_data() {
    let (url, node) = start().await;
    // Given as btcli users give it: a ws:// endpoint.
    let client = SubtensorClient::connect(&url, ClientOptions::default())
        .await
        .expect("connect");
    let runtime = client.runtime();
    assert_eq!(
        (runtime.spec_version(), runtime.transaction_version()),
        (461, 1)
    );
    assert_eq!(
        format!("0x{}", hex::encode(runtime.genesis_hash())),
        node.golden["network"]["genesis_hash"]
    );
    assert!(
        !client.refresh_runtime().await.expect("refresh"),
        "same runtime"
    );

    let (number, hash) = client.head().await.expect("head");
    assert_eq!(number, 67);
    assert_eq!(json!(hash), node.golden["block"]["block_hash"]);

    // Reads pinned to the block the SDK recorded them at.
    let at: H256 = serde_json::from_value(node.recorded("storage_values")[1]["block_hash"].clone())
        .expect("hash");
    let tempo: u16 = client
        .storage("SubtensorModule", "Tempo", vec![Value::u128(1)], at)
        .await
        .expect("tempo");
    assert_eq!(tempo, 100);
    // Nothing stored: the entry's default.
    let added: bool = client
        .storage(
            "SubtensorModule",
            "NetworksAdded",
            vec![Value::u128(9999)],
            at,
        )
        .await
        .expect("networks added");
    assert!(!added);
    let params = client.hyperparams(1, at).await.expect("hyperparams");
    assert_eq!(
        params.map(|p| (p.tempo, p.commit_reveal_weights_enabled)),
        Some((100, true))
    );
    let neurons = client.neurons_lite(1, at).await.expect("neurons");
    assert_eq!(neurons.len(), 1);
    assert_eq!(neurons[0].pruning_score, 65535);

    let events_at: H256 =
        serde_json::from_value(node.golden["events"]["block_hash"].clone()).expect("hash");
    let events = client.events(events_at).await.expect("events");
    assert_eq!(outcome_of(&events, 2), Some(Outcome::Success));

    // A signed extrinsic goes out as the bytes the runtime built, and its hash comes back.
    let alice = Keypair::from_uri("//Alice").expect("key");
    let nonce = client.next_nonce(&alice.account_id()).await.expect("nonce");
    assert_eq!(nonce, 7);
    let call = SubtensorCall::SetWeights {
        netuid: 1,
        dests: vec![0],
        weights: vec![65535],
        version_key: 0,
    };
    let extrinsic = runtime
        .prepare(
            &call,
            nonce,
            0,
            Era::Mortal {
                period: 64,
                from_block: number,
                from_hash: hash.0,
            },
        )
        .expect("prepare")
        .sign(&alice);
    let submitted = client.submit(&extrinsic).await.expect("submit");
    assert_eq!(submitted.0, extrinsic.hash);
    assert_eq!(
        *node.submitted.lock().unwrap(),
        std::slice::from_ref(&extrinsic.bytes)
    );

    assert!(
        node.unknown.lock().unwrap().is_empty(),
        "requests with no recorded answer: {:?}",
        node.unknown.lock().unwrap()
    );
}

#[tokio::test]
async fn a_node_that_cannot_be_reached_or_read_is_an_error_naming_it() {
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = SubtensorClient::connect(&format!("ws://127.0.0.1:{port}"), ClientOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("chain_getBlockHash"), "{err}");
    // A name that is no network and no URL.
    let err = endpoint_url("mainnet").unwrap_err();
    assert!(err.to_string().contains("finney, test, local"), "{err}");
    assert_eq!(
        endpoint_url("finney").unwrap(),
        "https://entrypoint-finney.opentensor.ai:443"
    );
    assert_eq!(
        endpoint_url("ws://10.0.0.1:9944").unwrap(),
        "http://10.0.0.1:9944"
    );
    assert!(endpoint_url("ftp://x").is_err());
}

#[tokio::test]
async fn a_subnets_commitments_are_paged_through_and_decoded() {
    let keys: Vec<Keypair> = ["//Alice", "//Bob", "//Charlie"]
        .iter()
        .map(|uri| Keypair::from_uri(uri).expect("key"))
        .collect();
    let mut served = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let data = format!("commitment {i}").into_bytes();
        let registration = json!({
            "deposit": 0,
            "block": 100 + i,
            "info": {"fields": [[{ format!("Raw{}", data.len()): format!("0x{}", hex::encode(&data)) }]]},
        });
        // Subnet 2 for the first two, 3 for the last: only subnet 2's are read.
        let netuid = if i < 2 { 2 } else { 3 };
        let (key, value) =
            crate::reads::sdk_commitment(netuid, &key.account_id().to_ss58(), &registration);
        served.push((
            format!("0x{}", hex::encode(key)),
            format!("0x{}", hex::encode(value)),
        ));
    }
    let (url, node) = start_with(served).await;
    let client = SubtensorClient::connect(&url, ClientOptions::default())
        .await
        .expect("connect");
    let (_, at) = client.head().await.expect("head");
    let mut commitments = client.commitments(2, at).await.expect("commitments");
    commitments.sort_by_key(|(_, c)| c.block);
    let read: Vec<(String, u64, Vec<u8>)> = commitments
        .into_iter()
        .map(|(hotkey, c)| (hotkey.to_ss58(), c.block, c.data()))
        .collect();
    assert_eq!(
        read,
        [
            (
                keys[0].account_id().to_ss58(),
                100,
                b"commitment 0".to_vec()
            ),
            (
                keys[1].account_id().to_ss58(),
                101,
                b"commitment 1".to_vec()
            ),
        ]
    );
    assert!(client.commitments(9, at).await.expect("none").is_empty());
    assert!(
        node.unknown.lock().unwrap().is_empty(),
        "{:?}",
        node.unknown.lock().unwrap()
    );
}

#[tokio::test]
async fn the_metagraph_joins_neurons_with_their_weights_bonds_and_registration() {
    let hex = |bytes: Vec<u8>| format!("0x{}", hex::encode(bytes));
    let stored = |entry: &str, value: JsonValue| {
        let (key, value) =
            crate::reads::sdk_storage("SubtensorModule", entry, json!([1, 0]), &value);
        (hex(key), hex(value))
    };
    // Uid 0 of subnet 1 (the recorded neuron) with a weight row, a bond row and its block.
    let (url, node) = start_with(vec![
        stored("Weights", json!([[0, 65535], [3, 7]])),
        stored("Bonds", json!([[0, 12]])),
        stored("BlockAtRegistration", json!(42)),
    ])
    .await;
    let client = SubtensorClient::connect(&url, ClientOptions::default())
        .await
        .expect("connect");
    let at: H256 = serde_json::from_value(node.recorded("runtime_calls")[0]["block_hash"].clone())
        .expect("hash");
    let metagraph = client.metagraph(1, 66, at).await.expect("metagraph");
    assert_eq!((metagraph.netuid, metagraph.block), (1, 66));
    let [neuron] = metagraph.neurons.as_slice() else {
        panic!("one neuron recorded, got {}", metagraph.neurons.len());
    };
    assert_eq!(neuron.uid, 0);
    assert_eq!(neuron.weights, [(0, 65535), (3, 7)]);
    assert_eq!(neuron.bonds, [(0, 12)]);
    assert_eq!(neuron.block_at_registration, 42);
    assert_eq!(neuron.stake, 1_000_000_000);
    assert!(
        node.unknown.lock().unwrap().is_empty(),
        "{:?}",
        node.unknown.lock().unwrap()
    );
}

/// What the miner and validator see of a Subtensor node through `ChainClient`: the endpoint is
/// recognised as Subtensor, the head carries the recorded block's timestamp and extrinsic count,
/// accounts and hyperparameters read from the recorded state, a recorded extrinsic is found in
/// its block with its outcome, and one the client prepared is pending until its era ends.
#[tokio::test]
async fn the_chain_client_of_a_subtensor_node_reads_state_and_follows_extrinsics() {
    let (url, node) = start().await;
    let chain = AnyChain::connect(&url, ClientOptions::default())
        .await
        .expect("connect");
    assert_eq!(chain.kind(), "Subtensor");
    let block = &node.golden["block"];

    let head = ChainClient::head(&chain).await.expect("head");
    assert_eq!(head.number, 67);
    assert_eq!(json!(head.hash), block["block_hash"]);
    assert_eq!(
        json!(head.parent_hash),
        block["raw"]["block"]["header"]["parentHash"]
    );
    assert_eq!(
        head.timestamp, 1_789_516_218_750,
        "Timestamp.Now as recorded"
    );
    assert_eq!(head.extrinsic_count, 3);

    let hp = chain.hyperparameters(1).await.expect("hyperparameters");
    assert_eq!((hp.tempo, hp.commit_reveal_weights_enabled), (100, true));
    let alice = Keypair::from_uri("//Alice").expect("key");
    let account = chain.account(&alice.account_id()).await.expect("account");
    assert_eq!((account.nonce, account.free), (1, 999_998_999_833_753));

    // The recorded transfer: third extrinsic of block 67, which succeeded.
    let transfer: H256 =
        serde_json::from_value(block["decoded_extrinsics"][2]["extrinsic_hash"].clone())
            .expect("hash");
    assert_eq!(
        chain.tx_status(transfer).await.expect("status"),
        TxStatus::InBlock {
            block: 67,
            block_hash: head.hash,
            index: 2
        }
    );

    // An extrinsic the client prepares is mortal from the head: pending while its era lasts,
    // unknown once no block of its era holds it.
    let bob = Keypair::from_uri("//Bob").expect("key");
    let prepared = chain
        .prepare(
            Call::Register {
                netuid: 1,
                hotkey: bob.account_id(),
            },
            &alice,
        )
        .await
        .expect("prepare");
    assert_eq!((prepared.call, prepared.nonce), ("register", 7));
    let sent = chain.submit_prepared(&prepared).await.expect("submit");
    assert_eq!(sent, prepared.hash);
    assert_eq!(
        *node.submitted.lock().unwrap(),
        std::slice::from_ref(&prepared.bytes)
    );
    assert_eq!(
        chain.tx_status(prepared.hash).await.expect("status"),
        TxStatus::Pending
    );
    node.head.store(67 + 65, Ordering::SeqCst);
    assert_eq!(
        chain.tx_status(prepared.hash).await.expect("status"),
        TxStatus::Unknown
    );

    // Dev-chain administration is btcli's on a real network.
    let err = chain
        .prepare(
            Call::Transfer {
                dest: bob.account_id(),
                amount: 1,
            },
            &alice,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChainClientError::Unsupported {
                call: "transfer",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        node.unknown.lock().unwrap().is_empty(),
        "{:?}",
        node.unknown.lock().unwrap()
    );
}
