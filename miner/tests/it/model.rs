//! `/v1/model/*`: the manifest and file downloads of a running miner.

use reqwest::{StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subnet_common::protocol::Manifest;

use crate::helpers::{TestApp, spawn_app, spawn_app_with_model};

/// A model directory `<tmp>/model`: `config.json` and a 3000-byte `model.safetensors`.
struct ModelDir {
    root: tempfile::TempDir,
}

impl ModelDir {
    fn path(&self) -> std::path::PathBuf {
        self.root.path().join("model")
    }
}

fn model_dir() -> (ModelDir, Vec<u8>) {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = root.path().join("model");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("config.json"), br#"{"hidden_size":8}"#).expect("write");
    let weights: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("model.safetensors"), &weights).expect("write");
    (ModelDir { root }, weights)
}

async fn get(app: &TestApp, path: &str, range: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path), &app.miner.account_id());
    if let Some(range) = range {
        request = request.header(header::RANGE, range);
    }
    request.send().await.expect("send")
}

fn header_str(res: &reqwest::Response, name: header::HeaderName) -> &str {
    res.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii header")
}

#[tokio::test]
async fn manifest_lists_the_files_with_sizes_and_hashes() {
    let (dir, weights) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    let res = get(&app, "/v1/model/manifest", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let manifest: Manifest = res.json().await.expect("manifest json");
    assert_eq!(manifest.competition, "tiny-v1");
    assert!(manifest.is_consistent());
    let weights_entry = &manifest.files[1];
    assert_eq!(weights_entry.name, "model.safetensors");
    assert_eq!(weights_entry.size, 3000);
    assert_eq!(weights_entry.sha256, hex::encode(Sha256::digest(&weights)));
}

#[tokio::test]
async fn whole_file_comes_with_length_etag_and_accept_ranges() {
    let (dir, weights) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    let res = get(&app, "/v1/model/files/model.safetensors", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header_str(&res, header::CONTENT_LENGTH), "3000");
    assert_eq!(header_str(&res, header::ACCEPT_RANGES), "bytes");
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&weights)));
    assert_eq!(header_str(&res, header::ETAG), etag);
    assert_eq!(
        res.bytes().await.expect("body").as_ref(),
        weights.as_slice()
    );
}

#[tokio::test]
async fn each_range_form_answers_206_with_the_right_bytes() {
    let (dir, weights) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=2990-5000", 2990, 2999),
        ("bytes=2500-", 2500, 2999),
        ("bytes=-7", 2993, 2999),
    ] {
        let res = get(&app, "/v1/model/files/model.safetensors", Some(range)).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header_str(&res, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/3000"),
            "{range}"
        );
        assert_eq!(
            header_str(&res, header::CONTENT_LENGTH),
            (end - start + 1).to_string()
        );
        let body = res.bytes().await.expect("body");
        assert_eq!(body.as_ref(), &weights[start..=end], "{range}");
    }
}

#[tokio::test]
async fn range_past_the_end_is_416_with_the_size() {
    let (dir, _) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    let res = get(
        &app,
        "/v1/model/files/model.safetensors",
        Some("bytes=3000-"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header_str(&res, header::CONTENT_RANGE), "bytes */3000");
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "range_not_satisfiable");
}

#[tokio::test]
async fn several_ranges_get_the_whole_file() {
    let (dir, weights) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    let res = get(
        &app,
        "/v1/model/files/model.safetensors",
        Some("bytes=0-1,5-6"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.expect("body").len(), weights.len());
}

#[tokio::test]
async fn unknown_names_and_traversal_attempts_are_404() {
    let (dir, _) = model_dir();
    // A file next to the model directory that a traversal would reach.
    std::fs::write(dir.root.path().join("secret.txt"), b"secret").expect("write");
    let app = spawn_app_with_model(&dir.path()).await;
    for path in [
        "/v1/model/files/tokenizer.json",
        "/v1/model/files/..%2Fetc%2Fpasswd",
        "/v1/model/files/..%2Fsecret.txt",
        "/v1/model/files/%2E%2E",
    ] {
        let res = get(&app, path, None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["error"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn unsigned_requests_are_401() {
    let (dir, _) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    for path in ["/v1/model/manifest", "/v1/model/files/config.json"] {
        let res = reqwest::get(app.url(path)).await.expect("request");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn a_miner_without_a_model_says_so() {
    let app = spawn_app().await;
    for path in ["/v1/model/manifest", "/v1/model/files/config.json"] {
        let res = get(&app, path, None).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let body: Value = res.json().await.expect("json");
        assert_eq!(body["message"], "this miner serves no model", "{path}");
    }
}

#[tokio::test]
async fn a_file_changed_after_start_is_refused_not_served() {
    let (dir, _) = model_dir();
    let app = spawn_app_with_model(&dir.path()).await;
    let tmp = dir.path().join("config.tmp");
    std::fs::write(&tmp, br#"{"hidden_size":9}"#).expect("write");
    std::fs::rename(&tmp, dir.path().join("config.json")).expect("rename");
    let res = get(&app, "/v1/model/files/config.json", None).await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "internal");
    // The unchanged file is still served.
    let res = get(&app, "/v1/model/files/model.safetensors", None).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn dump_config_shows_the_model_flags() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_miner"))
        .args(["serve", "--dump-config", "--model.dir", "/models/m1"])
        .env("MINER_DEVICE", "cpu")
        .env_remove("MINER_COMPETITION")
        .output()
        .expect("run miner");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["model_dir"], "/models/m1");
    assert_eq!(
        v["competition"],
        subnet_miner::artifact::DEFAULT_COMPETITION
    );
    assert_eq!(v["device"], "cpu");
}
