//! The HTTP API of a running miner.

use reqwest::StatusCode;
use serde_json::Value;
use subnet_common::{keys::Keypair, protocol::Identity};

use crate::helpers::{python, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_is_public_and_names_the_hotkey() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/health")).await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["hotkey"], app.miner.account_id().to_ss58());
}

#[tokio::test]
async fn identity_returns_miner_and_verified_caller() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/v1/identity"), &app.miner.account_id())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::OK);
    let id: Identity = res.json().await.expect("json");
    assert_eq!(id.hotkey, app.miner.account_id());
    assert_eq!(
        id.caller,
        Keypair::from_uri("//Alice").expect("key").account_id()
    );
}

#[tokio::test]
async fn unsigned_identity_is_401_json() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/v1/identity"))
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "malformed_auth");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn request_signed_for_another_receiver_is_401_wrong_receiver() {
    let app = spawn_app().await;
    let other = Keypair::from_uri("//Charlie").expect("key").account_id();
    let res = app
        .client
        .get(app.url("/v1/identity"), &other)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "wrong_receiver");
}

#[tokio::test]
async fn replayed_request_is_refused() {
    let app = spawn_app().await;
    let first = app
        .client
        .get(app.url("/v1/identity"), &app.miner.account_id())
        .build()
        .expect("build");
    let again = first.try_clone().expect("clonable GET");
    let http = app.client.http();
    assert_eq!(
        http.execute(first).await.expect("send").status(),
        StatusCode::OK
    );
    let res = http.execute(again).await.expect("send");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "replayed_request");
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let app = spawn_app().await;
    let res = reqwest::get(app.url("/nope")).await.expect("request");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "not_found");
}

#[tokio::test]
async fn wrong_method_is_405_json() {
    let app = spawn_app().await;
    let res = reqwest::Client::new()
        .post(app.url("/health"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "method_not_allowed");
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let app = spawn_app_with(1024).await;
    let res = app
        .client
        .request(
            reqwest::Method::POST,
            app.url("/v1/identity"),
            &app.miner.account_id(),
            vec![b'x'; 4096],
        )
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["error"], "payload_too_large");
}

/// The real bittensor 11.3.0 SDK signs; our server accepts it, and refuses a tampered copy.
#[tokio::test]
async fn requests_signed_by_the_python_sdk_are_served() {
    let app = spawn_app().await;
    let script = r#"
import json, sys, urllib.request, urllib.error
from bittensor.sp_core import Keypair
from bittensor.http_auth import sign
base, receiver = sys.argv[1], sys.argv[2]
kp = Keypair.create_from_uri("//Alice")
def call(tamper):
    path = "/v1/identity?probe=1"
    headers = sign(kp, method="GET", path=path, body=b"", receiver_ss58=receiver)
    sent = path.replace("probe=1", "probe=2") if tamper else path
    req = urllib.request.Request(base + sent, headers=dict(headers), method="GET")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
ok = call(False)
bad = call(True)
print(json.dumps({"ok": ok, "bad": bad}))
"#;
    let base = format!("http://{}", app.addr);
    let receiver = app.miner.account_id().to_ss58();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .args(["-c", script, &base, &receiver])
            .output()
            .expect("run python")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json from python");
    assert_eq!(v["ok"][0], 200, "{v}");
    assert_eq!(
        v["ok"][1]["caller"],
        Keypair::from_uri("//Alice")
            .expect("key")
            .account_id()
            .to_ss58()
    );
    assert_eq!(v["bad"][0], 401, "{v}");
    assert_eq!(v["bad"][1]["error"], "bad_signature");
}
