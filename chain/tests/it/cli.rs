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
    let printed = stdout(&out);
    assert!(printed.contains("included in block"), "{printed}");
    // The burn and the balance left are for people: τ.
    assert!(printed.contains("burning 1 τ"), "{printed}");
    assert!(printed.contains("free balance of "), "{printed}");

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
    assert!(json["neurons"][1]["stake_rao"].is_u64(), "{json}");
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
    let printed = stdout(&out);
    assert!(
        printed.contains(&format!("transfer of 2.5 τ to {dest}")),
        "{printed}"
    );
    let eve = key("//Eve").account_id();
    let left = node.client.account(&eve).await.unwrap().free;
    let expected = format!(
        "free balance of {eve}: {} τ",
        subnet_chain::tx::format_tao(left)
    );
    assert!(printed.contains(&expected), "{expected} not in {printed}");

    // What the chain refuses is said in τ too.
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
        "1000000000",
    ]);
    assert!(!out.status.success());
    let error = stderr(&out);
    assert!(error.contains("τ free, 1000000000 τ needed"), "{error}");
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

    let wallets = tempfile::tempdir().unwrap();
    let out = run(&[
        "tx",
        "--wallet.path",
        wallets.path().to_str().unwrap(),
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

    // A node that is not running: one line naming the address, the likely cause and the flag.
    for args in [
        &[
            "metagraph",
            "--netuid",
            "1",
            "--chain.url",
            "http://127.0.0.1:9",
        ][..],
        &[
            "tx",
            "--uri",
            "//Alice",
            "--chain.url",
            "http://127.0.0.1:9",
            "transfer",
            "--dest",
            &key("//Bob").account_id().to_ss58(),
            "--amount",
            "1",
        ][..],
    ] {
        let out = run(args);
        assert!(!out.status.success());
        let error = stderr(&out);
        assert_eq!(error.trim_end().lines().count(), 1, "{error}");
        assert!(error.contains("http://127.0.0.1:9"), "{error}");
        assert!(
            error.contains("is `devchain node` running there? --subtensor.chain_endpoint"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn tx_signs_with_a_bittensor_wallet_coldkey_or_hotkey_by_call() {
    use secrecy::SecretString;
    use subnet_common::wallet::{Protection, Wallet, password};

    let dir = ChainDir::new();
    let node = dir.start();
    let wallets = tempfile::tempdir().unwrap();
    let wallet = Wallet::new(wallets.path(), "miner", "hot");
    let coldkey = key("//Miner3");
    let hotkey = key("//Miner3//hot");
    let secret = SecretString::from("correct horse".to_owned());
    wallet
        .set_coldkey(&coldkey, Protection::Encrypted(&secret), false)
        .unwrap();
    wallet
        .set_hotkey(&hotkey, Protection::Plain, false)
        .unwrap();
    // The SDK's password variable, so no prompt is needed.
    let var = password::env_var_name(&wallet.coldkey_path());
    let value = password::env_value(&var, &secret);

    let flags = [
        "--chain.url",
        node.url.as_str(),
        "--wallet.path",
        wallets.path().to_str().unwrap(),
        "--wallet.name",
        "miner",
        "--wallet.hotkey",
        "hot",
    ];
    let register = devchain()
        .args(["tx", "register", "--netuid", "1"])
        .args(flags)
        .env(&var, &value)
        .output()
        .unwrap();
    assert!(register.status.success(), "{}", stderr(&register));
    let commit = run(&[
        &["tx", "commit", "--netuid", "1", "--data", "0xc0ffee"][..],
        &flags,
    ]
    .concat());
    assert!(commit.status.success(), "{}", stderr(&commit));

    let metagraph = node.client.metagraph(1).await.unwrap();
    let neuron = metagraph
        .neurons
        .iter()
        .find(|n| n.hotkey == hotkey.account_id())
        .expect("the wallet's hotkey is registered");
    assert_eq!(
        neuron.coldkey,
        coldkey.account_id(),
        "registered by the wallet's coldkey"
    );
    let commitments = node.client.commitments(1).await.unwrap();
    assert!(
        commitments
            .iter()
            .any(|c| c.hotkey == hotkey.account_id() && c.data == [0xc0, 0xff, 0xee]),
        "{commitments:?}"
    );
}

#[test]
fn simulate_prints_json_and_names_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sim.json");
    std::fs::write(
        &input,
        r#"{"n": 3, "stakes": [10, 0, 0], "epochs": [{"weights": [[0, [[1, 65535], [2, 0]]]]}]}"#,
    )
    .unwrap();
    let out = run(&["simulate", input.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let incentive = json["epochs"][0]["incentive"]
        .as_array()
        .expect("incentive per uid");
    assert_eq!(incentive.len(), 3, "{json}");
    assert!(
        incentive[1].as_f64().unwrap() > 0.9,
        "the only weighted miner earns: {json}"
    );

    let missing = run(&["simulate", "/nonexistent/sim.json"]);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("/nonexistent/sim.json"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn dump_config_shows_flags_over_environment_over_defaults() {
    let out = devchain()
        .args([
            "node",
            "--dump-config",
            "--genesis",
            "g.json",
            "--data",
            "d",
            "--rpc.burst",
            "7",
        ])
        .env("DEVCHAIN_BLOCK_TIME", "250")
        .env("DEVCHAIN_RPC_BURST", "99")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON settings");
    assert_eq!(
        config["block_time_ms"], 250,
        "environment beats the default"
    );
    assert_eq!(config["burst"], 7, "the flag beats the environment");
    assert_eq!(config["rpc_addr"], "127.0.0.1:9944", "default");
    assert_eq!(config["genesis"], "g.json");
}
