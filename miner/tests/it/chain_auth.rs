//! Caller authorization against a real dev chain (in-process node on port 0): registered
//! hotkeys are served, others get 403, and new registrations are picked up, periodically and at
//! once when a caller would otherwise be refused.

use std::{sync::Arc, time::Duration};

use crate::helpers::spawn_chain;
use reqwest::StatusCode;
use serde_json::Value;
use subnet_common::{
    btauth::SignedClient,
    chain::{
        client::{ChainClient, DevChainClient},
        types::Call,
    },
    keys::Keypair,
};
use subnet_miner::{
    chain_auth::RegisteredCallers,
    startup::{Application, ServerConfig},
};

async fn spawn_miner(chain_url: &str, refresh: Duration) -> (String, Keypair) {
    let miner = Keypair::from_uri("//Bob").expect("key");
    let chain = Arc::new(DevChainClient::new(chain_url).expect("client"));
    let callers = RegisteredCallers::start(chain, 1, refresh)
        .await
        .expect("metagraph");
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 16,
        auth_max_age: Duration::from_secs(10),
        model: None,
    };
    let app = Application::build(&config, miner.clone(), callers)
        .await
        .expect("build");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    (format!("http://{addr}"), miner)
}

async fn identity_as(base: &str, miner: &Keypair, caller: &str) -> (StatusCode, Value) {
    let client = SignedClient::new(
        reqwest::Client::new(),
        Keypair::from_uri(caller).expect("key"),
    );
    let url = reqwest::Url::parse(&format!("{base}/v1/identity")).expect("url");
    let res = client
        .get(url, &miner.account_id())
        .send()
        .await
        .expect("send");
    (res.status(), res.json().await.expect("json"))
}

#[tokio::test]
async fn only_registered_hotkeys_are_served_and_new_registrations_are_picked_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_url = spawn_chain(dir.path()).await;
    let (base, miner) = spawn_miner(&chain_url, Duration::from_millis(200)).await;

    // //Alice owns subnet 1 and its hotkey is registered at genesis.
    let (status, _) = identity_as(&base, &miner, "//Alice").await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = identity_as(&base, &miner, "//Charlie").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not registered")),
        "{body}"
    );

    // Register //Charlie (its own coldkey pays the burn); the miner sees it after a refresh.
    register(&chain_url, "//Charlie").await;
    let mut last = StatusCode::FORBIDDEN;
    // Up to 15 s: a block, then a refresh; a loaded machine (the whole suite at once) is slow.
    for _ in 0..150 {
        last = identity_as(&base, &miner, "//Charlie").await.0;
        if last == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, StatusCode::OK, "registration never picked up");
}

/// Registers `uri`'s hotkey on subnet 1 (its own coldkey pays the burn) and waits for inclusion.
async fn register(chain_url: &str, uri: &str) {
    let chain = DevChainClient::new(chain_url).expect("client");
    let key = Keypair::from_uri(uri).expect("key");
    let tx = chain
        .submit(
            Call::Register {
                netuid: 1,
                hotkey: key.account_id(),
            },
            &key,
        )
        .await
        .expect("submit register");
    chain
        .wait_for_inclusion(tx, Duration::from_secs(10))
        .await
        .expect("included");
}

#[tokio::test]
async fn a_caller_about_to_be_refused_triggers_a_refresh_instead_of_waiting_for_the_next() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain_url = spawn_chain(dir.path()).await;
    // The periodic refresh never comes during the test.
    let (base, miner) = spawn_miner(&chain_url, Duration::from_secs(3600)).await;

    let (status, body) = identity_as(&base, &miner, "//Dave").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    register(&chain_url, "//Dave").await;
    // The first request after the registration is served: its refusal asked for a fresh snapshot.
    let (status, body) = identity_as(&base, &miner, "//Dave").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, _) = identity_as(&base, &miner, "//Eve").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// A miner started before its chain waits for it instead of exiting: the caller registry comes
/// up once the chain does (it used to fail at once with "connection refused").
#[tokio::test]
async fn a_miner_started_before_its_chain_waits_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A free port with nothing on it yet: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let chain = Arc::new(DevChainClient::new(&url).expect("client"));
    let waiting = tokio::spawn(RegisteredCallers::start(chain, 1, Duration::from_secs(60)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "it waits while the chain is down");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is still free");
    crate::helpers::spawn_chain_on(listener, dir.path(), 20);
    tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("started once the chain answered")
        .expect("task")
        .expect("the metagraph, read from the chain that came up");
}
