//! Signed requests/s and latency of `GET /v1/identity`: our miner vs the Python reference server
//! (FastAPI + uvicorn + `bittensor.http_auth.verify`), with the same load generator, and the raw
//! sr25519-verify bound on one core. Prints a table.
//!
//! Run with `scripts/bench/http.sh` (installs FastAPI + uvicorn into `.venv`, then
//! `cargo bench -p subnet-miner --bench identity_http`). The load generator signs every request
//! with a fresh nonce; each run lasts `BENCH_SECS` (default 10) at `BENCH_CONNS` (default 32)
//! concurrent connections. With `BENCH_SERVER_CPUS=1` the servers run under `taskset -c 1`
//! (run the bench itself under `taskset -c 0`), so client signing and server verification do
//! not share a core.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use subnet_common::{btauth::SignedClient, keys::Keypair};

const MINER_SS58: &str = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("parent")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The command, under `taskset -c $BENCH_SERVER_CPUS` when that is set.
fn pinned(program: impl AsRef<std::ffi::OsStr>) -> Command {
    match std::env::var("BENCH_SERVER_CPUS") {
        Ok(cpus) if !cpus.is_empty() => {
            let mut cmd = Command::new("taskset");
            cmd.arg("-c").arg(cpus).arg(program);
            cmd
        }
        _ => Command::new(program),
    }
}

fn start_miner(port: u16) -> Server {
    let wallet = std::env::var("SUBNET_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("../shared"));
    let mut child = pinned(env!("CARGO_BIN_EXE_miner"))
        .args([
            "serve",
            "--insecure-no-chain",
            "--log.format",
            "json",
            "--axon.ip",
            "127.0.0.1",
        ])
        .args([
            "--axon.port",
            &port.to_string(),
            "--wallet.name",
            "vec",
            "--wallet.hotkey",
            "miner1",
        ])
        .env("BT_WALLET_PATH", wallet.join("vectors/wallet"))
        .env("RUST_LOG", "warn,subnet_miner=info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn miner");
    let stderr = child.stderr.take().expect("stderr");
    for line in BufReader::new(stderr).lines() {
        if line.expect("line").contains("miner serving") {
            break;
        }
    }
    Server(child)
}

fn start_python(port: u16) -> Server {
    let py = std::env::var("SUBNET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".venv/bin/python"));
    let child = pinned(py)
        .arg(root().join("scripts/bench/btauth_fastapi.py"))
        .args([MINER_SS58, &port.to_string()])
        .spawn()
        .expect("spawn python server (run scripts/bench/http.sh)");
    Server(child)
}

async fn wait_ready(url: &str) {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(url).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {url} never answered");
}

struct Stats {
    ok: usize,
    failed: usize,
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

async fn load(url: &str, conns: usize, secs: u64) -> Stats {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .expect("client");
    let client = Arc::new(SignedClient::new(
        http,
        Keypair::from_uri("//Alice").expect("key"),
    ));
    let receiver = subnet_common::keys::AccountId::from_ss58(MINER_SS58).expect("ss58");
    let url = reqwest::Url::parse(url).expect("url");
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let t = Instant::now();
                match client.get(url.clone(), &receiver).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        let (lat, f) = t.await.expect("join");
        all.extend(lat);
        failed += f;
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p) as usize)
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
    };
    Stats {
        ok: all.len(),
        failed,
        rps: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
    }
}

fn raw_verify_per_sec() -> f64 {
    let kp = Keypair::from_uri("//Alice").expect("key");
    let msg = b"btauth/1 benchmark payload of a typical length, about two hundred bytes ..............................";
    let sig = kp.sign(msg);
    let id = kp.account_id();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(2) {
        for _ in 0..100 {
            assert!(id.verify(msg, &sig));
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let conns: usize = std::env::var("BENCH_CONNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let verify = raw_verify_per_sec();

    let rust_port = free_port();
    let _miner = start_miner(rust_port);
    let rust_url = format!("http://127.0.0.1:{rust_port}/v1/identity");
    let rust = rt.block_on(async {
        wait_ready(&format!("http://127.0.0.1:{rust_port}/health")).await;
        load(&rust_url, conns, secs).await
    });
    drop(_miner);

    let py_port = free_port();
    let _py = start_python(py_port);
    let py_url = format!("http://127.0.0.1:{py_port}/v1/identity");
    let py = rt.block_on(async {
        wait_ready(&py_url).await;
        load(&py_url, conns, secs).await
    });

    println!(
        "\nGET /v1/identity, every request signed with a fresh nonce; {conns} connections, {secs} s each"
    );
    println!("| server | ok | failed | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, s) in [
        ("miner (Rust, axum)", &rust),
        ("Python FastAPI + bittensor.http_auth", &py),
    ] {
        println!(
            "| {name} | {} | {} | {:.0} | {:.2} | {:.2} |",
            s.ok, s.failed, s.rps, s.p50_ms, s.p99_ms
        );
    }
    println!("\nraw sr25519 verify on one core: {verify:.0}/s");
    println!("Rust / Python throughput: {:.1}x", rust.rps / py.rps);
    println!(
        "Rust throughput / raw verify bound: {:.2}",
        rust.rps / verify
    );
}
