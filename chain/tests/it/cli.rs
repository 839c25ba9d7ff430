//! The `devchain` subcommands other than `node`, against a running node.

use std::process::Output;

use subnet_common::chain::ChainClient;

use crate::support::{ChainDir, devchain, key};

fn run(args: &[&str]) -> Output {
    devchain().args(args).output().expect("run devchain")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn tx_register_and_serve_axon_then_metagraph_prints_them() {
    let dir = ChainDir::new();
    let node = dir.start();
    let url = node.url.as_str();
    let out = run(&[
        "tx",
        "--chain.url",
        url,
        "--uri",
        "//Miner2",
        "register",
        "--netuid",
        "1",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("included in block"),
        "{}",
        stdout(&out)
    );

    let args = [
        "tx",
        "--chain.url",
        url,
        "--uri",
        "//Miner2",
        "serve-axon",
        "--netuid",
        "1",
    ];
    let out = run(&[&args[..], &["--ip", "10.1.2.3", "--port", "8091"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));

    let out = run(&["metagraph", "--chain.url", url, "--netuid", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    assert!(table.contains("UID") && table.contains("VTRUST"), "{table}");
    assert!(table.contains("10.1.2.3:8091"), "{table}");

    let out = run(&["metagraph", "--chain.url", url, "--netuid", "1", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metagraph JSON");
    assert_eq!(
        json["neurons"][1]["hotkey"],
        key("//Miner2").account_id().to_ss58()
    );
}

#[tokio::test]
async fn tx_transfer_moves_tao() {
    let dir = ChainDir::new();
    let node = dir.start();
    let ferdie = key("//Ferdie").account_id();
    let before = node.client.account(&ferdie).await.unwrap().free;
    let dest = ferdie.to_ss58();
    let out = run(&[
        "tx",
        "--chain.url",
        &node.url,
        "--uri",
        "//Eve",
        "transfer",
        "--dest",
        &dest,
        "--amount",
        "2.5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = node.client.account(&ferdie).await.unwrap().free;
    assert_eq!(after - before, 2_500_000_000);
}

#[test]
fn errors_name_the_flag_or_file() {
    let out = run(&[
        "node",
        "--genesis",
        "/nonexistent/genesis.json",
        "--data",
        "/tmp/x",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent/genesis.json"),
        "{}",
        stderr(&out)
    );

    let out = run(&[
        "tx", "--uri", "//Alice", "transfer", "--dest", "5Grw", "--amount", "1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--dest"), "{}", stderr(&out));

    let out = run(&[
        "tx",
        "--uri",
        "//Alice",
        "add-stake",
        "--netuid",
        "1",
        "--hotkey",
        &key("//Bob").account_id().to_ss58(),
        "--amount",
        "1.2.3",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--amount"), "{}", stderr(&out));

    let out = run(&[
        "tx",
        "--chain.url",
        "http://127.0.0.1:9",
        "transfer",
        "--dest",
        &key("//Bob").account_id().to_ss58(),
        "--amount",
        "1",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--uri"), "{}", stderr(&out));
}
