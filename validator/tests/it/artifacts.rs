//! `artifacts::fetch_artifact` against the real miner server, lying servers and silent ones.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::{Path as UrlPath, State},
    routing::get,
};
use sha2::{Digest, Sha256};
use subnet_common::{
    btauth::{AllowAnySigner, SignedClient},
    keys::{AccountId, Keypair},
    protocol::{Manifest, ManifestFile, ModelCommitment},
};
use subnet_miner::startup::{Application, ModelConfig, ServerConfig};
use subnet_validator::artifacts::{FetchError, Limits, fetch_artifact};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    task::JoinHandle,
};

fn client() -> SignedClient {
    SignedClient::new(
        reqwest::Client::new(),
        Keypair::from_uri("//Alice").expect("dev key"),
    )
}

fn bob() -> AccountId {
    Keypair::from_uri("//Bob").expect("dev key").account_id()
}

/// The binding Bob's commitment makes for `manifest_sha256`.
fn bound(manifest_sha256: &str) -> String {
    ModelCommitment::binding_of(&bob(), manifest_sha256).expect("a manifest hash")
}

fn url(addr: SocketAddr) -> reqwest::Url {
    reqwest::Url::parse(&format!("http://{addr}")).expect("url")
}

/// Short timeouts so failing tests fail fast.
fn limits() -> Limits {
    Limits {
        request_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        deadline: Duration::from_secs(20),
        ..Limits::default()
    }
}

/// Names of everything in `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The real miner (hotkey `//Bob`, any signer accepted) serving a model directory.
struct RealMiner {
    addr: SocketAddr,
    manifest_sha256: String,
    weights: Vec<u8>,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl RealMiner {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.json"), br#"{"hidden_size":8}"#).expect("write");
        let weights: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        std::fs::write(dir.path().join("model.safetensors"), &weights).expect("write");
        let config = ServerConfig {
            addr: "127.0.0.1:0".parse().expect("addr"),
            max_body_bytes: 1 << 16,
            auth_max_age: Duration::from_secs(10),
            model: Some(ModelConfig {
                dir: dir.path().to_path_buf(),
                competition: "tiny-v1".into(),
                device: None,
            }),
        };
        let keypair = Keypair::from_uri("//Bob").expect("dev key");
        let app = Application::build(&config, keypair, AllowAnySigner)
            .await
            .expect("build miner");
        let addr = app.local_addr().expect("addr");
        let (shutdown, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async {
            let _ = rx.await;
        }));
        let manifest: Manifest = client()
            .get(url(addr).join("/v1/model/manifest").expect("url"), &bob())
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("manifest");
        Self {
            addr,
            manifest_sha256: manifest.manifest_sha256,
            weights,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// Stops the server and waits until it no longer serves.
    async fn stop(self) {
        let _ = self.shutdown.send(());
        self.task.await.expect("join").expect("miner ran");
    }
}

#[tokio::test]
async fn a_fetch_fills_the_cache_the_next_one_asks_only_for_the_manifest_and_a_gone_miner_is_unreachable()
 {
    let miner = RealMiner::start().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let hash = miner.manifest_sha256.clone();
    let got = fetch_artifact(
        &client(),
        &url(miner.addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect("fetch");
    assert!(!got.from_cache);
    assert_eq!(got.dir, cache.path().join(&hash));
    let weights = std::fs::read(got.file_path("model.safetensors").expect("listed")).expect("read");
    assert_eq!(weights, miner.weights);
    assert_eq!(
        entries(cache.path()),
        vec![hash.clone()],
        "no staging directory left"
    );

    // The miner still serves it: only the manifest is asked for, the files come from the cache.
    let again = fetch_artifact(
        &client(),
        &url(miner.addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect("from the cache");
    assert!(again.from_cache);
    assert_eq!(again.manifest, got.manifest);

    // A miner that stopped serving is unreachable for the epoch, however complete our copy is.
    let addr = miner.addr;
    miner.stop().await;
    let gone = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("the miner is gone");
    assert_eq!(gone.outcome(), "unreachable", "{gone}");
    assert_eq!(entries(cache.path()), vec![hash], "the cached copy is kept");
}

#[tokio::test]
async fn a_manifest_other_than_the_commitment_is_a_mismatch_and_caches_nothing() {
    let miner = RealMiner::start().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let committed = "0".repeat(64);
    let err = fetch_artifact(
        &client(),
        &url(miner.addr),
        &bob(),
        &bound(&committed),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("mismatch");
    assert!(matches!(err, FetchError::HashMismatch { .. }), "{err}");
    assert_eq!(err.outcome(), "hash_mismatch");
    assert!(entries(cache.path()).is_empty());

    // A front-runner: Bob serves the model whose commitment Alice made, and committed Alice's
    // bytes verbatim. They bind that manifest to Alice, not to Bob.
    let alice = Keypair::from_uri("//Alice").expect("dev key").account_id();
    let alices = ModelCommitment::binding_of(&alice, &miner.manifest_sha256).expect("hash");
    let err = fetch_artifact(
        &client(),
        &url(miner.addr),
        &bob(),
        &alices,
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("front-run");
    assert_eq!(err.outcome(), "hash_mismatch", "{err}");
    assert!(err.to_string().contains("binding"), "{err}");
    assert!(entries(cache.path()).is_empty());
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_before_downloading() {
    let miner = RealMiner::start().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let small = Limits {
        max_file_bytes: 1000,
        ..limits()
    };
    let err = fetch_artifact(
        &client(),
        &url(miner.addr),
        &bob(),
        &bound(&miner.manifest_sha256),
        &small,
        cache.path(),
    )
    .await
    .expect_err("too large");
    assert!(
        matches!(
            err,
            FetchError::TooLarge {
                size: 200_000,
                limit: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(entries(cache.path()).is_empty());
}

#[tokio::test]
async fn a_miner_without_a_model_is_a_bad_status() {
    let cache = tempfile::tempdir().expect("tempdir");
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 16,
        auth_max_age: Duration::from_secs(10),
        model: None,
    };
    let app = Application::build(
        &config,
        Keypair::from_uri("//Bob").expect("key"),
        AllowAnySigner,
    )
    .await
    .expect("build");
    let addr = app.local_addr().expect("addr");
    tokio::spawn(app.run_until(std::future::pending()));
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &"a".repeat(64),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("no model");
    assert!(
        matches!(err, FetchError::BadStatus { status: 404, .. }),
        "{err}"
    );
}

/// A server that ignores signatures and serves whatever manifest and bytes it was given,
/// counting file requests.
#[derive(Clone)]
struct Liar {
    manifest: Manifest,
    files: Arc<Vec<(String, Vec<u8>)>>,
    file_requests: Arc<AtomicUsize>,
}

impl Liar {
    /// Declares `declared` for each file but serves `served`.
    fn new(declared: &[(&str, &[u8])], served: &[(&str, &[u8])]) -> Self {
        let files = declared
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: (*name).into(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(bytes)),
            })
            .collect();
        Self {
            manifest: Manifest::new("tiny-v1", files),
            files: Arc::new(
                served
                    .iter()
                    .map(|(n, b)| ((*n).to_string(), b.to_vec()))
                    .collect(),
            ),
            file_requests: Arc::default(),
        }
    }

    async fn spawn(self) -> SocketAddr {
        async fn manifest(State(liar): State<Liar>) -> Json<Manifest> {
            Json(liar.manifest)
        }
        async fn file(State(liar): State<Liar>, UrlPath(name): UrlPath<String>) -> Vec<u8> {
            liar.file_requests.fetch_add(1, Ordering::SeqCst);
            liar.files
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, b)| b.clone())
                .unwrap_or_default()
        }
        let router = Router::new()
            .route("/v1/model/manifest", get(manifest))
            .route("/v1/model/files/{name}", get(file))
            .with_state(self);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }
}

const CONFIG: &[u8] = br#"{"hidden_size":8}"#;

#[tokio::test]
async fn a_miner_sending_more_than_declared_is_cut_off_as_too_large() {
    let big = vec![1u8; 100_000];
    let liar = Liar::new(
        &[("config.json", CONFIG), ("model.safetensors", b"tiny")],
        &[("config.json", CONFIG), ("model.safetensors", &big)],
    );
    let hash = liar.manifest.manifest_sha256.clone();
    let addr = liar.spawn().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("too large");
    assert_eq!(err.outcome(), "too_large", "{err}");
    assert!(entries(cache.path()).is_empty());
}

#[tokio::test]
async fn a_miner_sending_other_bytes_of_the_declared_size_is_a_mismatch() {
    let liar = Liar::new(
        &[
            ("config.json", CONFIG),
            ("model.safetensors", b"good weights"),
        ],
        &[
            ("config.json", CONFIG),
            ("model.safetensors", b"evil weights"),
        ],
    );
    let hash = liar.manifest.manifest_sha256.clone();
    let addr = liar.spawn().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("mismatch");
    assert!(
        matches!(&err, FetchError::HashMismatch { what, .. } if what.contains("model.safetensors")),
        "{err}"
    );
    assert!(entries(cache.path()).is_empty());
}

#[tokio::test]
async fn a_declared_size_over_the_limit_downloads_nothing() {
    let mut liar = Liar::new(&[], &[]);
    let files = vec![
        ManifestFile {
            name: "config.json".into(),
            size: 17,
            sha256: "a".repeat(64),
        },
        ManifestFile {
            name: "model.safetensors".into(),
            size: 1 << 40,
            sha256: "b".repeat(64),
        },
    ];
    liar.manifest = Manifest::new("tiny-v1", files);
    let hash = liar.manifest.manifest_sha256.clone();
    let requests = liar.file_requests.clone();
    let addr = liar.spawn().await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("too large");
    assert_eq!(err.outcome(), "too_large", "{err}");
    assert_eq!(requests.load(Ordering::SeqCst), 0, "no file was requested");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_limit() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let quick = Limits {
        request_timeout: Duration::from_millis(300),
        ..limits()
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &"a".repeat(64),
        &quick,
        cache.path(),
    )
    .await
    .expect_err("timeout");
    assert_eq!(err.outcome(), "timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_body_that_stalls_times_out_on_the_read_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            // Read the request (one small GET), answer the head and one byte of the body.
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{";
            let _ = socket.write_all(head.as_bytes()).await;
            held.push(socket);
        }
    });
    let quick = Limits {
        read_timeout: Duration::from_millis(300),
        ..limits()
    };
    let cache = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &"a".repeat(64),
        &quick,
        cache.path(),
    )
    .await
    .expect_err("timeout");
    assert_eq!(err.outcome(), "timeout", "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn nobody_listening_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &"a".repeat(64),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("unreachable");
    assert_eq!(err.outcome(), "unreachable", "{err}");
}

/// A raw HTTP/1.1 server: the manifest with a `Content-Length`, every file as an endless chunked
/// body (no length announced), counting the body bytes it manages to write.
async fn endless_chunked_server(manifest: Manifest) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let manifest = serde_json::to_string(&manifest).expect("json");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let manifest = manifest.clone();
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).into_owned();
                if request.starts_with("GET /v1/model/manifest ") {
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{manifest}",
                        manifest.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    return;
                }
                let head =
                    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b'x', 0x10000));
                chunk.extend_from_slice(b"\r\n");
                // Up to 1 GiB, stopping when the client hangs up.
                for _ in 0..(1 << 14) {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    counter.fetch_add(0x10000, Ordering::SeqCst);
                }
            });
        }
    });
    (addr, written)
}

#[tokio::test]
async fn an_endless_body_without_length_is_cut_off_just_past_the_declared_size() {
    let liar = Liar::new(&[("config.json", CONFIG), ("model.safetensors", b"w")], &[]);
    let hash = liar.manifest.manifest_sha256.clone();
    let (addr, written) = endless_chunked_server(liar.manifest).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("too large");
    assert!(
        matches!(&err, FetchError::TooLarge { what, limit: 17, .. } if what.contains("config.json")),
        "{err}"
    );
    // What the server got out before the hang-up is what the socket buffers held, not 1 GiB.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let sent = written.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "{sent} bytes were sent");
    assert!(entries(cache.path()).is_empty());
}

/// How [`flaky_server`] treats the weights file.
#[derive(Clone, Copy, PartialEq)]
enum Flaky {
    /// Cuts every whole-file answer halfway; honours `Range` with 206.
    CutsThenResumes,
    /// Cuts every answer halfway, ranges included: progress each time, never the end.
    AlwaysCuts,
    /// Cuts the first answer halfway; then ignores `Range` and sends the whole file with 200.
    CutsThenSendsWhole,
}

/// A raw HTTP/1.1 server (one request per connection) serving a manifest and files, breaking the
/// weights download as `mode` says. Returns its address and the `Range` headers it saw.
async fn flaky_server(
    manifest: Manifest,
    files: Vec<(String, Vec<u8>)>,
    mode: Flaky,
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let ranges = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = ranges.clone();
    let manifest = serde_json::to_vec(&manifest).expect("json");
    let weights_requests = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = vec![0u8; 8192];
            let n = socket.read(&mut request).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&request[..n]).to_ascii_lowercase();
            let range_start = request.lines().find_map(|l| {
                l.strip_prefix("range: bytes=")
                    .and_then(|r| r.trim().trim_end_matches('-').parse::<usize>().ok())
            });
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, head_extra, body, cut): (&str, String, Vec<u8>, bool) =
                if path == "/v1/model/manifest" {
                    ("200 OK", String::new(), manifest.clone(), false)
                } else {
                    let name = path.trim_start_matches("/v1/model/files/");
                    let Some((_, bytes)) = files.iter().find(|(n, _)| n == name) else {
                        continue;
                    };
                    if name != "model.safetensors" {
                        ("200 OK", String::new(), bytes.clone(), false)
                    } else {
                        let nth = weights_requests.fetch_add(1, Ordering::SeqCst);
                        if let Some(start) = range_start {
                            seen.lock().expect("lock").push(format!("bytes={start}-"));
                        }
                        match (mode, range_start) {
                            (Flaky::CutsThenResumes | Flaky::AlwaysCuts, Some(start)) => (
                                "206 Partial Content",
                                format!(
                                    "content-range: bytes {start}-{}/{}\r\n",
                                    bytes.len() - 1,
                                    bytes.len()
                                ),
                                bytes[start..].to_vec(),
                                mode == Flaky::AlwaysCuts,
                            ),
                            (Flaky::CutsThenSendsWhole, _) if nth > 0 => {
                                ("200 OK", String::new(), bytes.clone(), false)
                            }
                            _ => ("200 OK", String::new(), bytes.clone(), true),
                        }
                    }
                };
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{head_extra}\r\n",
                body.len()
            );
            let sent = if cut {
                &body[..body.len() / 2]
            } else {
                &body[..]
            };
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(sent).await;
            let _ = socket.shutdown().await;
        }
    });
    (addr, ranges)
}

fn flaky_artifact() -> (Manifest, Vec<(String, Vec<u8>)>) {
    let weights: Vec<u8> = (0..100_000u32).map(|i| (i * 13 % 256) as u8).collect();
    let liar = Liar::new(
        &[("config.json", CONFIG), ("model.safetensors", &weights)],
        &[],
    );
    let files = vec![
        ("config.json".to_string(), CONFIG.to_vec()),
        ("model.safetensors".to_string(), weights),
    ];
    (liar.manifest, files)
}

#[tokio::test]
async fn a_broken_download_resumes_with_a_range_request() {
    let (manifest, files) = flaky_artifact();
    let hash = manifest.manifest_sha256.clone();
    let weights = files[1].1.clone();
    let (addr, ranges) = flaky_server(manifest, files, Flaky::CutsThenResumes).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let got = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect("resumed fetch");
    let on_disk = std::fs::read(got.file_path("model.safetensors").expect("listed")).expect("read");
    assert_eq!(on_disk, weights);
    assert_eq!(*ranges.lock().expect("lock"), ["bytes=50000-"]);
}

#[tokio::test]
async fn a_miner_ignoring_the_range_is_followed_from_the_start() {
    let (manifest, files) = flaky_artifact();
    let hash = manifest.manifest_sha256.clone();
    let weights = files[1].1.clone();
    let (addr, ranges) = flaky_server(manifest, files, Flaky::CutsThenSendsWhole).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let got = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect("fetch");
    let on_disk = std::fs::read(got.file_path("model.safetensors").expect("listed")).expect("read");
    assert_eq!(on_disk, weights);
    assert_eq!(ranges.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn resumes_are_bounded() {
    let (manifest, files) = flaky_artifact();
    let hash = manifest.manifest_sha256.clone();
    let (addr, ranges) = flaky_server(manifest, files, Flaky::AlwaysCuts).await;
    let cache = tempfile::tempdir().expect("tempdir");
    let err = fetch_artifact(
        &client(),
        &url(addr),
        &bob(),
        &bound(&hash),
        &limits(),
        cache.path(),
    )
    .await
    .expect_err("gives up");
    assert_eq!(err.outcome(), "unreachable", "{err}");
    assert_eq!(
        *ranges.lock().expect("lock"),
        ["bytes=50000-", "bytes=75000-", "bytes=87500-"],
        "max_resumes (3) range requests, each after progress"
    );
    assert!(entries(cache.path()).is_empty());
}
