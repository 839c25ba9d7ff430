//! The `selective` miner of `--roster adversarial`: a proxy on the miner's published address that
//! forwards the requests of the validators it chose and refuses the others (503), as a miner
//! would that shows its model to the validators it hopes will pay for it and to no one else.
//!
//! Each validator scores only what it receives, so the validators it serves score the model and
//! the others record a failed fetch. Whether that pays is Yuma Consensus's call: a weight counts
//! only as far as κ of the stake backs it (docs/scoring.md, "Serving one validator only").

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use subnet_common::btauth::HEADER_HOTKEY;

/// Largest request body forwarded (the miner's own limits are smaller).
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// How long a forwarded request may take, artifact downloads included.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(300);

/// A running proxy; stops when dropped.
pub struct SelectiveProxy {
    state: Arc<Proxy>,
    task: tokio::task::JoinHandle<()>,
}

impl SelectiveProxy {
    /// Listens on `listen` and forwards to the miner at `upstream` every request except those
    /// signed by a hotkey (SS58) in `refused`.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        refused: BTreeSet<String>,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("while binding the selective proxy to {listen}"))?;
        let client = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("while building the selective proxy's client")?;
        let state = Arc::new(Proxy {
            upstream,
            refused,
            client,
            refusals: AtomicU64::new(0),
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("devnet: the selective proxy stopped: {e}");
            }
        });
        Ok(Self { state, task })
    }

    /// Requests refused so far.
    pub fn refusals(&self) -> u64 {
        self.state.refusals.load(Ordering::Relaxed)
    }
}

impl Drop for SelectiveProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Proxy {
    upstream: SocketAddr,
    refused: BTreeSet<String>,
    client: reqwest::Client,
    refusals: AtomicU64,
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let caller = request
        .headers()
        .get(HEADER_HOTKEY)
        .and_then(|value| value.to_str().ok());
    if caller.is_some_and(|hotkey| proxy.refused.contains(hotkey)) {
        proxy.refusals.fetch_add(1, Ordering::Relaxed);
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "busy");
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return refusal(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let target = parts.uri.path_and_query().map_or("/", |path| path.as_str());
    let mut headers = parts.headers;
    headers.remove(header::HOST);
    let sent = proxy
        .client
        .request(parts.method, format!("http://{}{target}", proxy.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(headers) = response.headers_mut() {
                headers.extend(
                    answer
                        .headers()
                        .iter()
                        .map(|(name, value)| (name.clone(), value.clone())),
                );
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap_or_else(|_| refusal(StatusCode::BAD_GATEWAY, "bad upstream answer"))
        }
        Err(e) => refusal(StatusCode::BAD_GATEWAY, &format!("miner unreachable: {e}")),
    }
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    async fn free_addr() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[tokio::test]
    async fn forwards_others_and_refuses_the_listed_hotkeys() {
        // The miner: echoes the path and a header, like an artifact route would serve a file.
        let miner = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = miner.local_addr().unwrap();
        let app = Router::new().route(
            "/v1/model/{file}",
            get(
                |axum::extract::Path(file): axum::extract::Path<String>,
                 headers: axum::http::HeaderMap| async move {
                    let hotkey = headers
                        .get(HEADER_HOTKEY)
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    ([("x-served", "yes")], format!("{file} for {hotkey}"))
                },
            ),
        );
        tokio::spawn(async move { axum::serve(miner, app).await.unwrap() });

        let listen = free_addr().await;
        let proxy = SelectiveProxy::start(listen, upstream, BTreeSet::from(["5Refused".into()]))
            .await
            .unwrap();
        let client = reqwest::Client::new();
        let get = |hotkey: &'static str| {
            client
                .get(format!("http://{listen}/v1/model/config.json?x=1"))
                .header(HEADER_HOTKEY, hotkey)
                .send()
        };

        let served = get("5Served").await.unwrap();
        assert_eq!(served.status(), 200);
        assert_eq!(served.headers()["x-served"], "yes");
        assert_eq!(served.text().await.unwrap(), "config.json for 5Served");

        let refused = get("5Refused").await.unwrap();
        assert_eq!(refused.status(), 503);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "busy");
        assert_eq!(proxy.refusals(), 1);

        // Unsigned requests (the devnet's own health check) go through.
        let health = client
            .get(format!("http://{listen}/v1/model/tokenizer.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(proxy.refusals(), 1);
    }

    #[tokio::test]
    async fn a_miner_that_is_down_is_a_502_with_the_reason() {
        let upstream = free_addr().await;
        let listen = free_addr().await;
        let _proxy = SelectiveProxy::start(listen, upstream, BTreeSet::new())
            .await
            .unwrap();
        let answer = reqwest::get(format!("http://{listen}/health"))
            .await
            .unwrap();
        assert_eq!(answer.status(), 502);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("miner unreachable")
        );
    }
}
