//! Spawning `devchain node` on a free port with a temporary data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use subnet_common::chain::{ChainClient, DevChainClient, H256};
use subnet_common::keys::Keypair;

/// Block time of test nodes.
pub const BLOCK_TIME_MS: u64 = 100;

/// The devchain binary built by cargo for this test run.
pub fn devchain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_devchain"))
}

/// A dev keypair.
pub fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev URI")
}

/// A temporary chain directory: `genesis.json` (the dev genesis, tempo 10) and `data/`.
pub struct ChainDir {
    pub dir: tempfile::TempDir,
}

impl ChainDir {
    /// Writes the dev genesis with `devchain genesis --dev`.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = devchain()
            .args(["genesis", "--dev", "--tempo", "10", "--out"])
            .arg(dir.path().join("genesis.json"))
            .status()
            .expect("run devchain genesis");
        assert!(status.success(), "devchain genesis failed");
        Self { dir }
    }

    pub fn genesis(&self) -> PathBuf {
        self.dir.path().join("genesis.json")
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_file(&self) -> PathBuf {
        self.data().join("blocks.log")
    }

    /// Starts a node on this directory; its stderr goes to `node-<n>.log`.
    pub fn start(&self) -> TestNode {
        self.start_with(&[])
    }

    /// Starts a node with extra flags.
    pub fn start_with(&self, extra: &[&str]) -> TestNode {
        let (mut child, stderr) = self.spawn(extra);
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(url) = line.trim().strip_prefix("rpc listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "node did not start (stdout {line:?}); stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        };
        let client = DevChainClient::new(url).expect("client");
        TestNode {
            child,
            url: url.to_owned(),
            client,
            stderr,
        }
    }

    /// Runs a node that is expected to fail at start; returns its exit status and stderr.
    pub fn start_expecting_failure(&self) -> (ExitStatus, String) {
        let (mut child, stderr) = self.spawn(&[]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return (status, std::fs::read_to_string(&stderr).unwrap_or_default());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("node kept running on a corrupt log");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn spawn(&self, extra: &[&str]) -> (Child, PathBuf) {
        let n = std::fs::read_dir(self.dir.path()).map_or(0, Iterator::count);
        let stderr = self.dir.path().join(format!("node-{n}.log"));
        let child = devchain()
            .arg("--log.format")
            .arg("json")
            .arg("node")
            .arg("--genesis")
            .arg(self.genesis())
            .arg("--data")
            .arg(self.data())
            .args(["--rpc.addr", "127.0.0.1:0", "--block-time"])
            .arg(BLOCK_TIME_MS.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("spawn devchain node");
        (child, stderr)
    }
}

/// A running node; killed on drop.
pub struct TestNode {
    pub child: Child,
    pub url: String,
    pub client: DevChainClient,
    pub stderr: PathBuf,
}

impl TestNode {
    /// SIGKILL, no chance to clean up.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// What the node logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits until the head is at least `number`.
    pub async fn wait_for_block(&self, number: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let head = self.client.head().await.expect("head").number;
            if head >= number {
                return head;
            }
            assert!(
                Instant::now() < deadline,
                "head stuck at {head}, waiting for {number}"
            );
            tokio::time::sleep(Duration::from_millis(BLOCK_TIME_MS / 2)).await;
        }
    }

    /// Hashes of blocks 0..=up_to.
    pub async fn hashes(&self, up_to: u64) -> Vec<H256> {
        let mut hashes = Vec::new();
        for n in 0..=up_to {
            hashes.push(
                self.client
                    .block_hash(n)
                    .await
                    .expect("block_hash")
                    .expect("block exists"),
            );
        }
        hashes
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Byte ranges of each record in a block log: `(block number, record start, payload start, end)`.
pub fn records(log: &Path) -> Vec<(u64, usize, usize, usize)> {
    let bytes = std::fs::read(log).expect("read log");
    let mut at = 40;
    let mut out = Vec::new();
    while at + 40 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + 40 + len;
        if end > bytes.len() {
            break;
        }
        out.push((out.len() as u64 + 1, at, at + 40, end));
        at = end;
    }
    out
}
