//! `miner register`, `miner commit` and the axon publication of `miner serve`, through the real
//! binary against an in-process dev chain.

use std::{path::Path, process::Stdio, time::Duration};

use subnet_common::{
    chain::{
        client::{ChainClient, DevChainClient},
        types::{Call, NeuronInfo, format_tao},
    },
    keys::{AccountId, Keypair},
    protocol::ModelCommitment,
    wallet::{Protection, Wallet},
};
use subnet_miner::artifact::{Artifact, DEFAULT_COMPETITION};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::helpers::spawn_chain_with_tempo;

const MINER: &str = env!("CARGO_BIN_EXE_miner");
/// Epoch length of the test chain: the commitment rate limit is half of it (100 blocks = 10 s),
/// long enough that a second commit right after the first is always too early.
const TEMPO: u16 = 200;

/// A wallet under `dir` named `op` whose hotkey is `hotkey_uri` and, when given, whose plain
/// coldkey is `coldkey_uri`. Returns the `--wallet.*` flags.
fn wallet(dir: &Path, hotkey_uri: &str, coldkey_uri: Option<&str>) -> Vec<String> {
    let wallet = Wallet::new(dir, "op", "default");
    let hotkey = Keypair::from_uri(hotkey_uri).unwrap();
    wallet
        .set_hotkey(&hotkey, Protection::Plain, false)
        .unwrap();
    if let Some(uri) = coldkey_uri {
        let coldkey = Keypair::from_uri(uri).unwrap();
        wallet
            .set_coldkey(&coldkey, Protection::Plain, false)
            .unwrap();
    }
    vec![
        "--wallet.path".into(),
        dir.display().to_string(),
        "--wallet.name".into(),
        "op".into(),
        "--wallet.hotkey".into(),
        "default".into(),
    ]
}

/// Runs the miner binary to completion: (success, stdout, stderr).
async fn miner(args: &[String]) -> (bool, String, String) {
    let out = Command::new(MINER)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .await
        .expect("run miner");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(parts: &[&str], wallet: &[String]) -> Vec<String> {
    parts
        .iter()
        .map(|s| s.to_string())
        .chain(wallet.iter().cloned())
        .collect()
}

async fn neuron(chain: &DevChainClient, hotkey: &AccountId) -> Option<NeuronInfo> {
    let metagraph = chain.metagraph(1).await.expect("metagraph");
    metagraph.neurons.into_iter().find(|n| n.hotkey == *hotkey)
}

async fn init_base(dir: &Path, seed: &str) {
    let out = std::process::Command::new(MINER)
        .args([
            "init-base",
            "--preset",
            "tiny",
            "--force",
            "--seed",
            seed,
            "--out",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_commit_binds_the_served_manifest_hash_to_the_hotkey_on_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let url = spawn_chain_with_tempo(&tmp.path().join("chain"), TEMPO).await;
    let chain = DevChainClient::new(&url).unwrap();
    let wallet = wallet(&tmp.path().join("wallets"), "//Miner1", Some("//Miner1"));
    let hotkey = Keypair::from_uri("//Miner1").unwrap().account_id();
    let chain_flags = ["--chain.url", url.as_str(), "--netuid", "1"];

    // Committing before registering says what to do.
    let model = tmp.path().join("model");
    init_base(&model, "1").await;
    let commit_args = args(
        &[
            &["commit", "--model.dir", model.to_str().unwrap()],
            &chain_flags[..],
        ]
        .concat(),
        &wallet,
    );
    let (ok, _, err) = miner(&commit_args).await;
    assert!(!ok && err.contains("miner register"), "{err}");

    // Register with the wallet's coldkey; a second run is a no-op.
    let register_args = args(&[&["register"], &chain_flags[..]].concat(), &wallet);
    let (ok, out, err) = miner(&register_args).await;
    assert!(ok, "{err}");
    let registered = neuron(&chain, &hotkey).await.expect("registered");
    assert!(
        out.contains(&format!("as uid {} in block", registered.uid)),
        "{out}"
    );
    // Amounts in τ: the dev subnet burns 1 τ of the coldkey's million.
    let balance = chain.account(&hotkey).await.unwrap().free;
    assert!(
        out.contains(&format!(
            "burned 1 τ, balance now {} τ",
            format_tao(balance)
        )) && !out.contains("rao"),
        "{out}"
    );
    assert_eq!(registered.coldkey, hotkey);
    let (ok, out, err) = miner(&register_args).await;
    assert!(ok && out.contains("already registered"), "{out}{err}");

    // Serving the model before committing it: the miner says validators will not evaluate it,
    // which commitment and manifest it serves, and the command that fixes it.
    let model_flag = ["--model.dir", model.to_str().unwrap()];
    let first = Artifact::load(&model, DEFAULT_COMPETITION).await.unwrap();
    let first_text = String::from_utf8_lossy(&first.commitment(&hotkey).encode()).into_owned();
    let fix = format!("`miner commit --model.dir {} --netuid 1`", model.display());
    let (mut child, mut logs) = serve_with(&url, &wallet, &model_flag);
    let warning = log_line(&mut logs, "no model commitment on subnet 1").await;
    let message = warning["fields"]["message"].as_str().unwrap();
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        message.contains(&format!(
            "the served model's is {first_text} (manifest {})",
            first.manifest().manifest_sha256
        )) && message.contains(&fix),
        "{message}"
    );
    child.kill().await.unwrap();

    // A dry run prints the commitment and stores nothing.
    let dry_run = [&commit_args[..], &["--dry-run".to_string()][..]].concat();
    let (ok, dry, err) = miner(&dry_run).await;
    assert!(ok && dry.contains("nothing was stored"), "{dry}{err}");
    assert!(
        !chain
            .commitments(1)
            .await
            .unwrap()
            .iter()
            .any(|c| c.hotkey == hotkey)
    );

    // Commit: the chain holds model2:<competition>:<the binding of the hash `serve` computes to
    // this hotkey>, as the dry run said.
    let (ok, out, err) = miner(&commit_args).await;
    assert!(ok, "{err}");
    let served = Artifact::load(&model, DEFAULT_COMPETITION).await.unwrap();
    let hash = served.manifest().manifest_sha256.clone();
    let stored = chain
        .commitments(1)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.hotkey == hotkey)
        .expect("commitment stored");
    let decoded = ModelCommitment::decode(&stored.data).expect("a model commitment");
    assert_eq!(decoded.competition, DEFAULT_COMPETITION);
    assert!(decoded.binds(&hotkey, &hash));
    let text = format!("model2:{DEFAULT_COMPETITION}:{}", decoded.binding);
    assert!(dry.contains(&format!("{text} (manifest {hash})")), "{dry}");
    assert!(
        out.contains(&text) && out.contains(&format!("in block {}", stored.block)),
        "{out}"
    );

    // Serving the committed model: no warning.
    let (mut child, mut logs) = serve_with(&url, &wallet, &model_flag);
    log_line(&mut logs, "the on-chain commitment is the served model's").await;
    child.kill().await.unwrap();

    // The same commitment again is a no-op; a new model this early hits the rate limit.
    let (ok, out, _) = miner(&commit_args).await;
    assert!(ok && out.contains("already the commitment"), "{out}");
    init_base(&model, "2").await;
    let (ok, _, err) = miner(&commit_args).await;
    assert!(
        !ok && err.contains("commitment rate limit"),
        "the chain's reason is shown: {err}"
    );

    // Serving the new model while the chain holds the first one's commitment: the warning names
    // both commitments, the served manifest and the fix.
    let second = Artifact::load(&model, DEFAULT_COMPETITION).await.unwrap();
    let second_text = String::from_utf8_lossy(&second.commitment(&hotkey).encode()).into_owned();
    let (mut child, mut logs) = serve_with(&url, &wallet, &model_flag);
    let warning = log_line(&mut logs, "names another model than the one served").await;
    let message = warning["fields"]["message"].as_str().unwrap();
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(
        message.contains(&format!(
            "the on-chain commitment {text} names another model"
        )) && message.contains(&format!(
            "the served model's is {second_text} (manifest {})",
            second.manifest().manifest_sha256
        )) && message.contains(&fix),
        "{message}"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dev_coldkey_uri_pays_for_a_wallet_without_coldkey() {
    let tmp = tempfile::tempdir().unwrap();
    let url = spawn_chain_with_tempo(&tmp.path().join("chain"), TEMPO).await;
    let chain = DevChainClient::new(&url).unwrap();
    let wallet = wallet(&tmp.path().join("wallets"), "//Miner2", None);
    let chain_flags = ["--chain.url", url.as_str()];

    let (ok, _, err) = miner(&args(&[&["register"], &chain_flags[..]].concat(), &wallet)).await;
    assert!(!ok && err.contains("--coldkey-uri"), "{err}");

    let with_uri = [&["register", "--coldkey-uri", "//Alice"], &chain_flags[..]].concat();
    let (ok, _, err) = miner(&args(&with_uri, &wallet)).await;
    assert!(ok, "{err}");
    let hotkey = Keypair::from_uri("//Miner2").unwrap().account_id();
    let alice = Keypair::from_uri("//Alice").unwrap().account_id();
    assert_eq!(
        neuron(&chain, &hotkey).await.expect("registered").coldkey,
        alice
    );

    let (ok, _, err) = miner(&args(&["register", "--chain.url", "ftp://nope"], &wallet)).await;
    assert!(!ok && err.contains("--chain.url"), "{err}");

    // A coldkey without funds: a warning says what it has and what the burn is, in τ, and the
    // chain's refusal says it too.
    let poor = [&["register", "--coldkey-uri", "//Nobody"], &chain_flags[..]].concat();
    let wallet6 = self::wallet(&tmp.path().join("w6"), "//Miner6", None);
    let (ok, _, err) = miner(&args(&poor, &wallet6)).await;
    let nobody = Keypair::from_uri("//Nobody").unwrap().account_id();
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!(
            "coldkey {nobody} has 0 τ; registering on subnet 1 burns 1 τ"
        )) && err.contains("0 τ free, the burn is 1 τ"),
        "{err}"
    );
}

/// Starts `miner serve` and returns it with a channel of its JSON log messages.
fn serve(
    url: &str,
    wallet: &[String],
) -> (
    tokio::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    serve_with(url, wallet, &[])
}

/// [`serve`] with `extra` flags.
fn serve_with(
    url: &str,
    wallet: &[String],
    extra: &[&str],
) -> (
    tokio::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) {
    let mut child = Command::new(MINER)
        .args([
            "serve",
            "--log.format",
            "json",
            "--axon.ip",
            "127.0.0.1",
            "--axon.port",
            "0",
            "--chain.url",
            url,
        ])
        .args(wallet)
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn miner");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    (child, rx)
}

/// The first log line whose message contains `needle`, within 20 s.
async fn log_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
    needle: &str,
) -> serde_json::Value {
    let wait = async {
        while let Some(v) = rx.recv().await {
            if v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
            {
                return v;
            }
        }
        panic!("miner exited before logging {needle:?}");
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .unwrap_or_else(|_| panic!("no {needle:?} log line within 20 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_publishes_its_axon_and_an_unregistered_hotkey_still_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let url = spawn_chain_with_tempo(&tmp.path().join("chain"), TEMPO).await;
    let chain = DevChainClient::new(&url).unwrap();
    let miner3 = Keypair::from_uri("//Miner3").unwrap();
    let tx = chain
        .submit(
            Call::Register {
                netuid: 1,
                hotkey: miner3.account_id(),
            },
            &miner3,
        )
        .await
        .unwrap();
    chain
        .wait_for_inclusion(tx, Duration::from_secs(10))
        .await
        .unwrap();

    let wallet3 = wallet(&tmp.path().join("w3"), "//Miner3", None);
    let (mut child, mut logs) = serve(&url, &wallet3);
    let serving = log_line(&mut logs, "miner serving").await;
    let addr: std::net::SocketAddr = serving["fields"]["addr"].as_str().unwrap().parse().unwrap();
    let published = log_line(&mut logs, "axon published").await;
    let block = published["fields"]["block"].as_u64().unwrap();
    let axon = neuron(&chain, &miner3.account_id())
        .await
        .unwrap()
        .axon_info;
    assert_eq!(
        axon.ip,
        u128::from(u32::from(std::net::Ipv4Addr::LOCALHOST))
    );
    assert_eq!(
        (axon.port, axon.ip_type, axon.block),
        (addr.port(), 4, block)
    );
    child.kill().await.unwrap();

    // //Miner4 is not registered: the miner says why the axon is not published and serves.
    let wallet4 = wallet(&tmp.path().join("w4"), "//Miner4", None);
    let (mut child, mut logs) = serve(&url, &wallet4);
    let serving = log_line(&mut logs, "miner serving").await;
    let refused = log_line(&mut logs, "axon not published").await;
    assert!(
        refused["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not registered")),
        "{refused}"
    );
    let addr = serving["fields"]["addr"].as_str().unwrap();
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert!(health.status().is_success());
    child.kill().await.unwrap();
}

/// The same commands against a Subtensor node (the test node over the SDK's recorded chain),
/// named as btcli names it: `miner register` pays with `--coldkey-uri`, `miner commit` stores the
/// model commitment, and `miner serve --chain.url ws://…` publishes the axon; the node checks the
/// signature, nonce and era of each extrinsic and applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_commit_and_serve_reach_a_subtensor_node() {
    use subnet_subtensor::testnode::{TestNode, recorded_chain};
    let tmp = tempfile::tempdir().unwrap();
    let node = TestNode::start(&recorded_chain(), Duration::from_millis(100)).await;
    let wallet = wallet(&tmp.path().join("wallets"), "//SubMiner", None);
    let hotkey = Keypair::from_uri("//SubMiner").unwrap().account_id();
    let alice = Keypair::from_uri("//Alice").unwrap().account_id();
    let chain_flags = ["--subtensor.chain_endpoint", node.url(), "--netuid", "1"];

    let register = [&["register", "--coldkey-uri", "//Alice"], &chain_flags[..]].concat();
    let (ok, out, err) = miner(&args(&register, &wallet)).await;
    assert!(ok, "{err}");
    assert!(out.contains("as uid 1 in block"), "{out}");
    let applied = node.applied();
    assert_eq!(
        (
            applied[0].call.as_str(),
            applied[0].signer,
            &applied[0].error
        ),
        ("SubtensorModule.burned_register", alice, &None)
    );

    let model = tmp.path().join("model");
    init_base(&model, "5").await;
    let commit = [
        &["commit", "--model.dir", model.to_str().unwrap()],
        &chain_flags[..],
    ]
    .concat();
    let (ok, out, err) = miner(&args(&commit, &wallet)).await;
    assert!(ok, "{err}");
    let served = Artifact::load(&model, DEFAULT_COMPETITION).await.unwrap();
    let stored = node.commitment(&hotkey).expect("committed");
    let decoded = ModelCommitment::decode(&stored).expect("a model commitment");
    assert!(decoded.binds(&hotkey, &served.manifest().manifest_sha256));
    assert!(
        out.contains(&format!("model2:{DEFAULT_COMPETITION}")),
        "{out}"
    );
    // The same commitment again is found on chain and not sent.
    let (ok, out, _) = miner(&args(&commit, &wallet)).await;
    assert!(ok && out.contains("already the commitment"), "{out}");

    // `--chain.url` is the older name of the endpoint; a ws:// URL is a Subtensor node's.
    let (mut child, mut logs) = serve(node.url(), &wallet);
    let serving = log_line(&mut logs, "miner serving").await;
    let addr: std::net::SocketAddr = serving["fields"]["addr"].as_str().unwrap().parse().unwrap();
    log_line(&mut logs, "axon published").await;
    assert_eq!(
        node.axon(&hotkey),
        Some((
            u128::from(u32::from(std::net::Ipv4Addr::LOCALHOST)),
            addr.port()
        ))
    );
    child.kill().await.unwrap();
    let calls: Vec<String> = node.applied().into_iter().map(|a| a.call).collect();
    assert_eq!(
        calls,
        [
            "SubtensorModule.burned_register",
            "Commitments.set_commitment",
            "SubtensorModule.serve_axon"
        ]
    );
    assert!(node.refused().is_empty(), "{:?}", node.refused());
    assert!(node.unknown().is_empty(), "{:?}", node.unknown());
}

/// A loopback URL with nothing listening on it yet (connections are refused), and its port.
fn unused_url() -> (String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    (format!("http://127.0.0.1:{port}"), port)
}

/// `miner serve` started before its chain says it waits, and serves once the chain is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_started_before_its_chain_waits_and_serves_once_it_is_up() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, port) = unused_url();
    let wallet = wallet(&tmp.path().join("w"), "//Miner5", None);
    let (mut child, mut logs) = serve_with(&url, &wallet, &[]);
    let waiting = log_line(&mut logs, "waiting for the chain").await;
    assert_eq!(waiting["level"], "WARN", "{waiting}");
    assert!(
        waiting["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("up to 600 s") && m.contains("Ctrl-C")),
        "{waiting}"
    );
    assert!(child.try_wait().unwrap().is_none(), "it waits, not exits");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the port is still free");
    crate::helpers::spawn_chain_on(listener, &tmp.path().join("chain"), TEMPO);
    let serving = log_line(&mut logs, "miner serving").await;
    let addr = serving["fields"]["addr"].as_str().unwrap();
    let health = reqwest::get(format!("http://{addr}/health")).await.unwrap();
    assert!(health.status().is_success());
    child.kill().await.unwrap();
}

/// A chain that never comes: `serve` gives up after `--chain.start-wait-secs` with an error
/// naming the endpoint and the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_gives_up_on_a_chain_that_never_comes_after_the_start_wait() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = unused_url();
    let wallet = wallet(&tmp.path().join("w"), "//Miner5", None);
    let started = std::time::Instant::now();
    let (ok, _, err) = miner(&args(
        &[
            "serve",
            "--axon.ip",
            "127.0.0.1",
            "--axon.port",
            "0",
            "--chain.url",
            &url,
            "--chain.start-wait-secs",
            "2",
        ],
        &wallet,
    ))
    .await;
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!("the chain at {url:?} did not answer within 2 s"))
            && err.contains("--chain.start-wait-secs")
            && err.contains("--chain.url"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(15), "gave up late");
}

/// Ctrl-C or SIGTERM while waiting for the chain stops `serve` cleanly (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stops_cleanly_on_sigterm_while_waiting_for_its_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let (url, _) = unused_url();
    let wallet = wallet(&tmp.path().join("w"), "//Miner5", None);
    for signal in ["-TERM", "-INT"] {
        let (mut child, mut logs) = serve_with(&url, &wallet, &[]);
        log_line(&mut logs, "waiting for the chain").await;
        let pid = child.id().expect("pid").to_string();
        let sent = Command::new("kill")
            .args([signal, &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("stopped within 10 s")
            .unwrap();
        assert!(status.success(), "{signal}: {status}");
        log_line(&mut logs, "stopped while waiting for the chain").await;
    }
}
