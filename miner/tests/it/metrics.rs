//! `miner serve --metrics.addr`: the `miner_*` Prometheus series, read over HTTP from the real
//! binary after real requests (signed, refused, downloads, generation, RLHF, the labeler form).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use subnet_common::{
    btauth::{next_nonce_ns, sign_headers},
    keys::{AccountId, Keypair},
};
use subnet_miner::{db, labeling};

use crate::{
    helpers::{spawn_chain, workspace_root},
    labels::{Browser, batch, signed_client},
};

const MINER: &str = env!("CARGO_BIN_EXE_miner");
/// The SDK-written hotkey of `../shared/vectors/wallet` (`vec` / `miner1`).
const MINER_SS58: &str = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";

fn wallet_path() -> std::path::PathBuf {
    std::env::var("SUBNET_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("../shared"))
        .join("vectors/wallet")
}

/// A running `miner serve`, killed when dropped.
struct Served {
    child: Child,
    /// The axon (`http://ip:port`).
    base: String,
    /// `http://ip:port/metrics`, when `--metrics.addr` was given.
    metrics: Option<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `miner serve` with `extra` flags and `envs`, and reads its log to the "miner serving"
/// line (and the metrics address before it).
fn serve(extra: &[&str], envs: &[(&str, &str)]) -> Served {
    let mut child = Command::new(MINER)
        .args([
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
        ])
        .args(extra)
        .env("BT_WALLET_PATH", wallet_path())
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn miner");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut metrics = None;
    let mut seen = Vec::new();
    let base = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            panic!("miner exited before serving: {seen:#?}");
        };
        let line = line.expect("read stderr");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let message = v["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("metrics at") {
            let addr = v["fields"]["addr"].as_str().expect("metrics addr");
            metrics = Some(format!("http://{addr}/metrics"));
        }
        if message == "miner serving" {
            break format!("http://{}", v["fields"]["addr"].as_str().expect("addr"));
        }
        seen.push(v);
    };
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        base,
        metrics,
    }
}

fn init_tiny_model(dir: &std::path::Path) {
    let out = Command::new(MINER)
        .args(["init-base", "--preset", "tiny", "--seed", "1", "--out"])
        .arg(dir)
        .output()
        .expect("init-base");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `GET url` as text.
async fn text(url: &str) -> (StatusCode, String) {
    let res = reqwest::get(url).await.expect("request");
    (res.status(), res.text().await.expect("body"))
}

/// A request to `base` + `path` carrying btauth headers signed by `signer` over `signed_body`
/// with `nonce`, sending `sent_body`.
async fn raw_signed(
    base: &str,
    path: &str,
    signer: &str,
    nonce: u64,
    signed_body: &[u8],
    sent_body: &[u8],
) -> (StatusCode, Value) {
    let receiver: AccountId = MINER_SS58.parse().expect("ss58");
    let key = Keypair::from_uri(signer).expect("key");
    let headers = sign_headers(&key, "POST", path, signed_body, Some(&receiver), nonce);
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(sent_body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let res = request.send().await.expect("send");
    (res.status(), res.json().await.expect("json"))
}

#[sqlx::test(migrator = "subnet_miner::db::MIGRATOR")]
async fn the_metrics_address_serves_miner_series_after_real_requests(pool: PgPool) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = tmp.path().join("model");
    init_tiny_model(&model);
    let db_url = crate::labels::database_url(&pool).await;
    let served = serve(
        &[
            "--insecure-no-chain",
            "--label.reading-speed",
            "0",
            "--model.dir",
            model.to_str().expect("utf-8"),
            "--device",
            "cpu",
            "--metrics.addr",
            "127.0.0.1:0",
        ],
        &[("MINER_DB_URL", &db_url)],
    );
    let base = served.base.clone();
    let metrics = served.metrics.clone().expect("a 'metrics at' log line");
    let receiver: AccountId = MINER_SS58.parse().expect("ss58");
    let alice = signed_client("//Alice");
    let url = |path: &str| reqwest::Url::parse(&format!("{base}{path}")).expect("url");

    // The axon's port does not serve the metrics.
    assert_eq!(
        text(&format!("{base}/metrics")).await.0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(text(&format!("{base}/health")).await.0, StatusCode::OK);
    let res = alice
        .get(url("/v1/identity"), &receiver)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let res = alice
        .get(url("/v1/model/files/config.json"), &receiver)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let config_bytes = res.bytes().await.expect("body").len();
    let res = alice
        .post_json(
            url("/v1/generate"),
            &receiver,
            &json!({"prompt": "1+1=", "max_new_tokens": 4}),
        )
        .expect("json")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);

    // Refusals: no headers, a stale nonce, a signature over another body.
    assert_eq!(
        text(&format!("{base}/v1/identity")).await.0,
        StatusCode::UNAUTHORIZED
    );
    let hour_ago = next_nonce_ns() - 3_600_000_000_000;
    let (status, body) =
        raw_signed(&base, "/v1/rlhf/labels", "//Alice", hour_ago, b"{}", b"{}").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("stale_request"))
    );
    let (status, body) = raw_signed(
        &base,
        "/v1/rlhf/labels",
        "//Alice",
        next_nonce_ns(),
        b"{\"batch_id\":\"a\"}",
        b"{\"batch_id\":\"b\"}",
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_signature"))
    );

    // The label track: a batch in, one labeler's answer, the label out.
    let res = alice
        .post_json(url("/v1/rlhf/tasks"), &receiver, &batch("m1", 1_000, 2))
        .expect("json")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let token = labeling::new_secret();
    db::add_labeler(&pool, "ann", &db::hash_secret(&token), 3600)
        .await
        .expect("add labeler");
    let mut browser = Browser::new(&base);
    browser.sign_in(&labeling::login_link(&base, &token)).await;
    let (csrf, _, _) = browser.open_task().await;
    assert_eq!(
        browser.answer(&csrf, "a").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        browser.answer(&csrf, "a").await.status,
        StatusCode::CONFLICT
    );
    let res = alice
        .post_json(
            url("/v1/rlhf/labels"),
            &receiver,
            &json!({"batch_id": "m1"}),
        )
        .expect("json")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);

    let (status, body) = text(&metrics).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for series in [
        "miner_http_requests_total{route=\"/health\",status=\"200\"} 1",
        "miner_http_requests_total{route=\"/v1/identity\",status=\"200\"} 1",
        "miner_http_requests_total{route=\"/v1/identity\",status=\"401\"} 1",
        "miner_http_requests_total{route=\"/v1/model/files/{name}\",status=\"200\"} 1",
        "miner_http_requests_total{route=\"/label/answer\",status=\"303\"} 1",
        "miner_http_requests_total{route=\"<unmatched>\",status=\"404\"} 1",
        "miner_http_request_duration_seconds_bucket{route=\"/v1/generate\"",
        "miner_auth_refused_total{reason=\"malformed_auth\"} 1",
        "miner_auth_refused_total{reason=\"stale_request\"} 1",
        "miner_auth_refused_total{reason=\"bad_signature\"} 1",
        &format!("miner_artifact_bytes_served_total {config_bytes}"),
        "miner_generate_requests_total{outcome=\"ok\"} 1",
        "miner_generate_tokens_total ",
        "miner_generate_seconds_count 1",
        "miner_rlhf_batches_received_total{new=\"true\"} 1",
        "miner_rlhf_tasks_received_total 2",
        "miner_rlhf_labels_returned_total 1",
        "miner_label_answers_total{outcome=\"stored\"} 1",
        "miner_label_answers_total{outcome=\"token_used\"} 1",
    ] {
        assert!(body.contains(series), "no {series:?} in:\n{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unregistered_caller_is_counted_as_not_registered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(dir.path()).await;
    let served = serve(
        &["--chain.url", &chain, "--metrics.addr", "127.0.0.1:0"],
        &[],
    );
    let receiver: AccountId = MINER_SS58.parse().expect("ss58");
    let eve = signed_client("//Eve");
    let url = reqwest::Url::parse(&format!("{}/v1/identity", served.base)).expect("url");
    let res = eve.get(url, &receiver).send().await.expect("send");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, body) = text(served.metrics.as_deref().expect("metrics")).await;
    assert!(
        body.contains("miner_auth_refused_total{reason=\"not_registered\"} 1"),
        "{body}"
    );
}

#[test]
fn without_the_flag_no_metrics_are_served() {
    let served = serve(&["--insecure-no-chain"], &[]);
    assert!(served.metrics.is_none());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (status, _) = rt.block_on(text(&format!("{}/metrics", served.base)));
    assert_eq!(status, StatusCode::NOT_FOUND);
}
