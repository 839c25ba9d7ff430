//! `validator query` against a server that verifies with the real bittensor 11.3.0 SDK.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use serde_json::Value;

const VALIDATOR: &str = env!("CARGO_BIN_EXE_validator");
/// SS58 of the SDK-written hotkey in `../shared/vectors/wallet` (wallet `vec`, hotkey `miner1`).
const SIGNER_SS58: &str = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";
/// `//Bob`, the receiver the Python server verifies for.
const BOB: &str = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    let py = std::env::var("SUBNET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "Python with bittensor 11.3.0 not found at {}: run scripts/setup-python.sh",
        py.display()
    );
    py
}

fn wallet_path() -> String {
    std::env::var("SUBNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("../shared"))
        .join("vectors/wallet")
        .display()
        .to_string()
}

/// The Python reference server; killed on drop.
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start(self_hotkey: &str) -> Self {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/python/btauth_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(self_hotkey)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("python server printed {line:?}"));
        Self { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn query(args: &[&str]) -> std::process::Output {
    Command::new(VALIDATOR)
        .args([
            "query",
            "--wallet.path",
            &wallet_path(),
            "--wallet.name",
            "vec",
            "--wallet.hotkey",
            "miner1",
        ])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run validator query")
}

#[test]
fn signed_get_with_query_string_is_accepted_by_the_python_sdk() {
    let server = PyServer::start(BOB);
    let url = format!(
        "http://127.0.0.1:{}/v1/model?format=safetensors&x=1",
        server.port
    );
    let out = query(&[&url, "--receiver", BOB]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json body");
    assert_eq!(v["caller"], SIGNER_SS58);
}

#[test]
fn signed_post_with_json_body_is_accepted_by_the_python_sdk() {
    let server = PyServer::start(BOB);
    let url = format!("http://127.0.0.1:{}/v1/generate", server.port);
    let out = query(&[
        &url,
        "--receiver",
        BOB,
        "--data",
        r#"{"prompt": "hi", "max_new_tokens": 4}"#,
    ]);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json body");
    assert_eq!(v["caller"], SIGNER_SS58);
    assert_eq!(v["body"], r#"{"prompt": "hi", "max_new_tokens": 4}"#);
}

#[test]
fn request_bound_to_another_receiver_is_refused_by_the_sdk_and_reported() {
    let server = PyServer::start(BOB);
    let alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    let out = query(&[
        &format!("http://127.0.0.1:{}/x", server.port),
        "--receiver",
        alice,
    ]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("json body");
    assert_eq!(v["error"], "WrongReceiver");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
}

#[test]
fn bad_flags_are_named() {
    let out = query(&["http://127.0.0.1:1/x", "--receiver", "not-an-address"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--receiver"));
    let out = query(&[
        "http://127.0.0.1:1/x",
        "--receiver",
        BOB,
        "--data",
        "{not json",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));
}
