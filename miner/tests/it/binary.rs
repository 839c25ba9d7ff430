//! The real `miner` binary as a child process: flags, wallet loading, warnings, shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use crate::helpers::workspace_root;

const MINER: &str = env!("CARGO_BIN_EXE_miner");
/// The hotkey keyfile written by the bittensor 11.3.0 SDK (`../shared/vectors/wallet`).
const VECTOR_SS58: &str = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";

fn vector_wallet_path() -> String {
    let dir = std::env::var("SUBNET_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("../shared"));
    dir.join("vectors/wallet").display().to_string()
}

fn miner(args: &[&str]) -> Command {
    let mut cmd = Command::new(MINER);
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env("BT_WALLET_PATH", vector_wallet_path());
    cmd
}

/// Starts `miner serve` on a free port; returns the child, its address and the JSON log lines seen
/// up to the "serving" line.
fn start_serving(extra: &[&str]) -> (Child, String, Vec<Value>) {
    let mut args = vec![
        "serve",
        "--log.format",
        "json",
        "--wallet.name",
        "vec",
        "--wallet.hotkey",
        "miner1",
        "--axon.ip",
        "127.0.0.1",
        "--axon.port",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut child = miner(&args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn miner");
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("read stderr");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let serving = v["fields"]["message"] == "miner serving";
        lines.push(v);
        if serving {
            let addr = lines
                .last()
                .and_then(|v| v["fields"]["addr"].as_str())
                .expect("addr")
                .to_string();
            return (child, addr, lines);
        }
    }
    let status = child.wait().expect("wait for miner");
    panic!("miner exited ({status}) before serving: {lines:?}");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("miner did not stop within 5 s of SIGTERM");
}

#[test]
fn serves_an_sdk_written_hotkey_and_stops_cleanly_on_sigterm() {
    let (mut child, addr, lines) = start_serving(&["--insecure-no-chain"]);
    assert!(
        lines.iter().any(|v| v["level"] == "WARN"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("--insecure-no-chain"))),
        "expected a warning about --insecure-no-chain in {lines:?}"
    );
    let health: Value = reqwest::blocking_get(&format!("http://{addr}/health"));
    assert_eq!(health["hotkey"], VECTOR_SS58);
    let status = terminate(&mut child);
    assert!(status.success(), "miner exited with {status}");
}

#[test]
fn serve_without_chain_or_insecure_flag_names_both_flags() {
    let out = miner(&[
        "serve",
        "--wallet.name",
        "vec",
        "--wallet.hotkey",
        "miner1",
        "--axon.port",
        "0",
    ])
    .output()
    .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--chain.url") && err.contains("--insecure-no-chain"),
        "{err}"
    );
}

#[test]
fn missing_hotkey_file_is_named_in_the_error() {
    let out = miner(&[
        "serve",
        "--wallet.name",
        "vec",
        "--wallet.hotkey",
        "nope",
        "--insecure-no-chain",
    ])
    .output()
    .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hotkeys/nope"), "{err}");
}

#[test]
fn unknown_flag_is_refused_by_name() {
    let out = miner(&["serve", "--axon.prot", "1"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--axon.prot"));
}

#[test]
fn dump_config_shows_flags_env_and_defaults() {
    let out = miner(&["serve", "--dump-config", "--axon.port", "9000"])
        .env("BT_NETUID", "7")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["axon_port"], 9000);
    assert_eq!(v["netuid"], 7);
    assert_eq!(v["axon_ip"], "0.0.0.0");
}

/// Tiny blocking GET for a test that runs outside a runtime.
mod reqwest {
    pub fn blocking_get(url: &str) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            ::reqwest::get(url)
                .await
                .expect("request")
                .json()
                .await
                .expect("json")
        })
    }
}

#[test]
fn keys_takes_wallet_flags_before_or_after_its_subcommand() {
    let before = miner(&[
        "keys",
        "--wallet.name",
        "vec",
        "--wallet.hotkey",
        "miner1",
        "show",
    ])
    .output()
    .expect("run");
    let after = miner(&[
        "keys",
        "show",
        "--wallet.name",
        "vec",
        "--wallet.hotkey",
        "miner1",
    ])
    .output()
    .expect("run");
    for out in [&before, &after] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(VECTOR_SS58));
    }
    assert_eq!(before.stdout, after.stdout);
}

/// `keys new-coldkey` through the binary, as a user without btcli registers: the password comes
/// from the SDK's `BT_PW_<path>` variable (no terminal here), the keyfile is `$NACL`-encrypted
/// with it, and `keys show` then names the coldkey. Without a password and without a terminal
/// it writes nothing and names the variable.
#[test]
fn new_coldkey_encrypts_with_the_sdk_password_variable_and_show_names_it() {
    use secrecy::SecretString;
    use subnet_common::wallet::{PasswordSource, Wallet, password};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().display().to_string();
    let wallet = Wallet::new(dir.path(), "cold", "default");
    let keys = |args: &[&str]| {
        let mut cmd = miner(&["keys", "--wallet.path", &path, "--wallet.name", "cold"]);
        cmd.args(args).stdin(Stdio::null());
        cmd
    };

    let refused = keys(&["new-coldkey"]).output().expect("run");
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&password::env_var_name(&wallet.coldkey_path()))
            && err.contains("--no-password"),
        "{err}"
    );
    assert!(!wallet.coldkey_path().exists());

    let secret = SecretString::from("binary-pass");
    let env_var = password::env_var_name(&wallet.coldkey_path());
    let created = keys(&["new-coldkey"])
        .env(&env_var, password::env_value(&env_var, &secret))
        .output()
        .expect("run");
    let out = String::from_utf8_lossy(&created.stdout);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let pair = wallet
        .load_coldkey(&PasswordSource::given(secret))
        .expect("decrypts with the password from the variable");
    let ss58 = pair.account_id().to_ss58();
    assert!(
        out.contains(&ss58) && out.contains("encrypted:    yes"),
        "{out}"
    );
    assert!(!out.contains("binary-pass"), "{out}");

    let hotkey = keys(&["new-hotkey"]).output().expect("run");
    assert!(hotkey.status.success());
    let shown = keys(&["show"]).output().expect("run");
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains(&format!("coldkey:      {ss58}")),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
}
