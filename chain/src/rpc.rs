//! The node's HTTP face: JSON-RPC 2.0 at `POST /`, server-sent events at `GET /events`,
//! `GET /health`, and Prometheus text at `GET /metrics` ([`crate::metrics`]). The methods and
//! error codes are documented in [`subnet_common::chain::rpc`], shared with the client.
//!
//! Limits: request bodies over [`RpcConfig::max_body_bytes`] get HTTP 413; batches hold at most
//! [`MAX_BATCH`] calls; each client IP has a token bucket of [`RateLimit::burst`] requests refilled
//! at [`RateLimit::per_second`] (0 turns it off), and an empty bucket gets HTTP 429 with a
//! JSON-RPC error ([`code::RATE_LIMITED`]) and `Retry-After: 1`. JSON-RPC errors other than these
//! two are answered with HTTP 200, as JSON-RPC over HTTP expects.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use subnet_common::chain::rpc::{self as wire, ErrorObject, H256, code, method};
use subnet_common::chain::types::{MAX_EXTRINSIC_SIZE, NetUid};
use subnet_common::keys::AccountId;
use tokio::sync::{broadcast, watch};

use crate::history::HistoryError;
use crate::node::{Node, SubmitError};

/// Most calls in one JSON-RPC batch.
pub const MAX_BATCH: usize = 64;

/// Per-client-IP request rate limit (token bucket).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second; 0 disables the limit.
    pub per_second: u32,
    /// Bucket size: the most requests allowed in a burst.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 500 requests/s with bursts of 1000: generous, since a devnet's miners and validators all
    /// share 127.0.0.1.
    fn default() -> Self {
        Self {
            per_second: 500,
            burst: 1000,
        }
    }
}

/// Settings of the RPC server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RpcConfig {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Per-IP rate limit.
    pub rate_limit: RateLimit,
}

impl Default for RpcConfig {
    fn default() -> Self {
        // A maximal extrinsic as hex plus the JSON envelope fits.
        Self {
            max_body_bytes: 4 * MAX_EXTRINSIC_SIZE,
            rate_limit: RateLimit::default(),
        }
    }
}

/// Shared by every handler.
#[derive(Debug, Clone)]
struct App {
    node: Arc<Node>,
    limiter: Arc<RateLimiter>,
    /// Flips to `true` at shutdown so open event streams end.
    shutdown: watch::Receiver<bool>,
}

/// Builds the router. `shutdown` ends open `/events` streams when it becomes `true`.
pub fn router(node: Arc<Node>, config: RpcConfig, shutdown: watch::Receiver<bool>) -> Router {
    let limiter = Arc::new(RateLimiter::new(config.rate_limit));
    let app = App {
        node,
        limiter,
        shutdown,
    };
    Router::new()
        .route("/", post(rpc))
        .route("/events", get(events))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(app.clone(), rate_limit))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// Serves `router` on `listener` until `shutdown` resolves, under the public servers' limits
/// ([`subnet_common::serve`]: header-read timeout, connection caps); client IPs reach the rate
/// limiter as `ConnectInfo`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    subnet_common::serve::serve(
        listener,
        router,
        subnet_common::serve::ServeLimits::default(),
        shutdown,
    )
    .await
}

async fn health(State(app): State<App>) -> impl IntoResponse {
    let chain = app.node.chain();
    axum::Json(
        json!({"status": "ok", "head": chain.head_number(), "pending": chain.pending_count()}),
    )
}

/// `GET /metrics`: Prometheus text ([`crate::metrics`]); 404 when no recorder is installed.
async fn metrics() -> Response {
    match crate::metrics::handle() {
        Some(handle) => {
            handle.run_upkeep();
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                handle.render(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are not enabled\n").into_response(),
    }
}

async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Counted while the stream lives (it is dropped when the client goes or at shutdown).
    let subscriber = crate::metrics::SseSubscriber::open();
    let receiver = app.node.subscribe();
    let first = app.node.chain().head();
    // The current head first, then each new one. A head announced between `subscribe` and
    // reading the current head would arrive twice; `last` drops such repeats.
    let stream = futures::stream::unfold(
        (Some(first), None::<u64>, receiver, app.shutdown, subscriber),
        |(mut first, mut last, mut receiver, mut shutdown, subscriber)| async move {
            if let Some(head) = first.take() {
                let event = head_event(&head);
                let state = (None, Some(head.number), receiver, shutdown, subscriber);
                return Some((Ok(event), state));
            }
            loop {
                if *shutdown.borrow() {
                    return None;
                }
                tokio::select! {
                    changed = shutdown.changed() => if changed.is_err() { return None },
                    next = receiver.recv() => match next {
                        Ok(head) if last.is_some_and(|n| head.number <= n) => {}
                        Ok(head) => {
                            last = Some(head.number);
                            let state = (None, last, receiver, shutdown, subscriber);
                            return Some((Ok(head_event(&head)), state));
                        }
                        // A slow reader skips heads it missed; the next one still arrives.
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return None,
                    },
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn head_event(head: &wire::HeaderView) -> Event {
    Event::default()
        .event("newHead")
        .id(head.number.to_string())
        .json_data(head)
        .unwrap_or_else(|_| Event::default().comment("head did not encode"))
}

async fn rpc(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            crate::metrics::record_rpc_call(None, true);
            let status = rejection.status();
            let error = rpc_error(
                code::INVALID_REQUEST,
                format!("request body rejected: {}", rejection.body_text()),
            );
            return (status, axum::Json(wire::Response::err(Value::Null, error))).into_response();
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            crate::metrics::record_rpc_call(None, true);
            let error = rpc_error(code::PARSE_ERROR, format!("body is not JSON: {e}"));
            return axum::Json(wire::Response::err(Value::Null, error)).into_response();
        }
    };
    match value {
        Value::Array(calls) if calls.is_empty() || calls.len() > MAX_BATCH => {
            crate::metrics::record_rpc_call(None, true);
            let error = rpc_error(
                code::INVALID_REQUEST,
                format!("a batch holds 1 to {MAX_BATCH} calls"),
            );
            axum::Json(wire::Response::err(Value::Null, error)).into_response()
        }
        Value::Array(calls) => {
            let responses: Vec<_> = calls
                .into_iter()
                .map(|call| handle_one(&app.node, call))
                .collect();
            axum::Json(responses).into_response()
        }
        call => axum::Json(handle_one(&app.node, call)).into_response(),
    }
}

fn handle_one(node: &Node, call: Value) -> wire::Response {
    let request: wire::Request = match serde_json::from_value(call) {
        Ok(request) => request,
        Err(e) => {
            crate::metrics::record_rpc_call(None, true);
            return wire::Response::err(
                Value::Null,
                rpc_error(code::INVALID_REQUEST, e.to_string()),
            );
        }
    };
    if request.jsonrpc != "2.0" {
        crate::metrics::record_rpc_call(None, true);
        let error = rpc_error(code::INVALID_REQUEST, "jsonrpc must be \"2.0\"".into());
        return wire::Response::err(request.id, error);
    }
    let answer = dispatch(node, &request.method, request.params);
    crate::metrics::record_rpc_call(Some(&request.method), answer.is_err());
    match answer {
        Ok(result) => wire::Response::ok(request.id, result),
        Err(error) => {
            tracing::debug!(
                method = request.method,
                code = error.code,
                message = error.message,
                "rpc error"
            );
            wire::Response::err(request.id, error)
        }
    }
}

/// A block named by number or by hash.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum BlockId {
    Number(u64),
    Hash(H256),
}

fn dispatch(node: &Node, name: &str, params: Value) -> Result<Value, ErrorObject> {
    match name {
        method::GENESIS_HASH => {
            no_params(params)?;
            to_json(H256(node.genesis_hash()))
        }
        method::HEAD => {
            no_params(params)?;
            to_json(node.chain().head())
        }
        method::BLOCK_HASH => {
            let (number,): (u64,) = parse_params(params)?;
            to_json(node.chain().block_hash(number).map(H256))
        }
        method::BLOCK => {
            let (id,): (BlockId,) = parse_params(params)?;
            let chain = node.chain();
            let number = match id {
                BlockId::Number(number) => Some(number),
                BlockId::Hash(hash) => chain.block_number(&hash.0),
            };
            to_json(number.and_then(|n| chain.block_view(n)))
        }
        method::SUBMIT => {
            let submitted = submit(node, params);
            if submitted.is_err() {
                crate::metrics::record_extrinsic_rejected();
            }
            submitted
        }
        method::EXTRINSIC_STATUS => {
            let (tx,): (H256,) = parse_params(params)?;
            to_json(node.chain().tx_status(&tx.0))
        }
        method::ACCOUNT_NEXT_INDEX => {
            let (account,): (AccountId,) = parse_params(params)?;
            to_json(node.chain().next_nonce(&account))
        }
        method::ACCOUNT_INFO => {
            let (account,): (AccountId,) = parse_params(params)?;
            to_json(node.chain().state().account(&account))
        }
        method::METAGRAPH => {
            let (netuid,): (NetUid,) = parse_params(params)?;
            let metagraph = node.chain().state().metagraph(netuid);
            to_json(metagraph.ok_or_else(|| unknown_subnet(netuid))?)
        }
        method::HYPERPARAMETERS => {
            let (netuid,): (NetUid,) = parse_params(params)?;
            let params = node.chain().state().hyperparameters(netuid);
            to_json(params.ok_or_else(|| unknown_subnet(netuid))?)
        }
        method::COMMITMENTS => {
            let (netuid,): (NetUid,) = parse_params(params)?;
            let commitments = node.chain().state().commitments(netuid);
            to_json(commitments.ok_or_else(|| unknown_subnet(netuid))?)
        }
        method::COMMITMENTS_AT => {
            let (netuid, at): (NetUid, H256) = parse_params(params)?;
            let commitments = node.chain().commitments_at(netuid, &at.0);
            to_json(commitments.map_err(|error| {
                let code = match error {
                    HistoryError::UnknownBlock(_) => code::UNKNOWN_BLOCK,
                    HistoryError::UnknownSubnet { .. } => code::UNKNOWN_SUBNET,
                    HistoryError::Pruned { .. } => code::STATE_DISCARDED,
                };
                rpc_error(code, error.to_string())
            })?)
        }
        method::BEACON => {
            no_params(params)?;
            let public_key = node.chain().state().beacon().public_key();
            Ok(serde_json::json!({ "public_key": format!("0x{}", hex::encode(public_key)) }))
        }
        other => Err(rpc_error(
            code::METHOD_NOT_FOUND,
            format!("no method {other:?}"),
        )),
    }
}

/// `author_submitExtrinsic`: hex bytes checked and queued; the extrinsic hash.
fn submit(node: &Node, params: Value) -> Result<Value, ErrorObject> {
    let (hex,): (String,) = parse_params(params)?;
    let digits = hex.strip_prefix("0x").unwrap_or(&hex);
    if digits.len() > 2 * MAX_EXTRINSIC_SIZE {
        let message = format!("extrinsic is over the {MAX_EXTRINSIC_SIZE}-byte limit");
        return Err(rpc_error(code::INVALID_EXTRINSIC, message));
    }
    let bytes = hex::decode(digits).map_err(|e| {
        rpc_error(
            code::INVALID_EXTRINSIC,
            format!("extrinsic is not hex: {e}"),
        )
    })?;
    let tx = node.chain().submit(&bytes).map_err(submit_error)?;
    tracing::debug!(%tx, "extrinsic queued");
    to_json(tx)
}

fn rpc_error(code: i64, message: String) -> ErrorObject {
    ErrorObject {
        code,
        message,
        data: None,
    }
}

fn unknown_subnet(netuid: NetUid) -> ErrorObject {
    rpc_error(
        code::UNKNOWN_SUBNET,
        format!("subnet {netuid} does not exist"),
    )
}

fn submit_error(error: SubmitError) -> ErrorObject {
    let message = error.to_string();
    match error {
        SubmitError::Invalid(_) => rpc_error(code::INVALID_EXTRINSIC, message),
        SubmitError::BadSignature { .. } => rpc_error(code::BAD_SIGNATURE, message),
        SubmitError::BadNonce { expected, got, .. } => ErrorObject {
            code: code::BAD_NONCE,
            message,
            data: Some(json!({"expected": expected, "got": got})),
        },
        SubmitError::AlreadyKnown { .. } => rpc_error(code::ALREADY_KNOWN, message),
        SubmitError::PoolFull => rpc_error(code::POOL_FULL, message),
    }
}

fn no_params(params: Value) -> Result<(), ErrorObject> {
    match params {
        Value::Null => Ok(()),
        Value::Array(items) if items.is_empty() => Ok(()),
        _ => Err(rpc_error(
            code::INVALID_PARAMS,
            "this method takes no params".into(),
        )),
    }
}

fn parse_params<T: DeserializeOwned>(params: Value) -> Result<T, ErrorObject> {
    serde_json::from_value(params)
        .map_err(|e| rpc_error(code::INVALID_PARAMS, format!("invalid params: {e}")))
}

fn to_json<T: serde::Serialize>(value: T) -> Result<Value, ErrorObject> {
    serde_json::to_value(value).map_err(|e| {
        tracing::error!(error = %e, "result did not serialize");
        rpc_error(code::INTERNAL_ERROR, "internal error".into())
    })
}

async fn rate_limit(State(app): State<App>, request: Request, next: Next) -> Response {
    // Present when served through [`serve`] (or mocked in router tests); without it, no limit.
    let (mut parts, body) = request.into_parts();
    let ip = ConnectInfo::<SocketAddr>::from_request_parts(&mut parts, &app)
        .await
        .ok()
        .map(|ConnectInfo(addr)| addr.ip());
    let request = Request::from_parts(parts, body);
    if let Some(ip) = ip
        && !app.limiter.allow(ip, Instant::now())
    {
        crate::metrics::record_rate_limited();
        let error = rpc_error(
            code::RATE_LIMITED,
            format!("too many requests from {ip}; slow down"),
        );
        let mut response = (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(wire::Response::err(Value::Null, error)),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    next.run(request).await
}

/// Token buckets per client IP.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Above this many tracked IPs, buckets that have refilled completely are forgotten.
const MAX_TRACKED_IPS: usize = 10_000;

impl RateLimiter {
    /// A limiter with `limit`.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token from `ip`'s bucket at time `now`; `false` when it is empty.
    pub fn allow(&self, ip: IpAddr, now: Instant) -> bool {
        if self.limit.per_second == 0 {
            return true;
        }
        let rate = f64::from(self.limit.per_second);
        let burst = f64::from(self.limit.burst.max(1));
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= MAX_TRACKED_IPS {
            let refill = Duration::from_secs_f64(burst / rate);
            buckets.retain(|_, b| now.saturating_duration_since(b.updated) < refill);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::extract::connect_info::MockConnectInfo;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::node::Chain;

    fn app(dir: &std::path::Path, rate_limit: RateLimit) -> Router {
        let genesis = crate::dev::dev_genesis(10, 1_000).unwrap();
        let (chain, _) = Chain::open(&genesis, dir).unwrap();
        let config = RpcConfig {
            rate_limit,
            ..RpcConfig::default()
        };
        let (_stop, stop_rx) = watch::channel(false);
        router(Node::new(chain), config, stop_rx)
            .layer(MockConnectInfo(SocketAddr::from(([10, 0, 0, 9], 5000))))
    }

    async fn post(app: &Router, body: &str) -> (StatusCode, Value) {
        let request = Request::post("/")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn a_batch_gets_one_answer_per_call_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), RateLimit::default());
        let (status, body) = post(
            &app,
            r#"[{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[0]},
                {"jsonrpc":"2.0","id":"two","method":"nope"},
                {"jsonrpc":"1.0","id":3,"method":"chain_getHead"}]"#,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let answers = body.as_array().unwrap();
        assert_eq!(answers.len(), 3);
        assert_eq!(answers[0]["id"], 1);
        assert!(answers[0]["result"].as_str().unwrap().starts_with("0x"));
        assert_eq!(answers[1]["id"], "two");
        assert_eq!(answers[1]["error"]["code"], code::METHOD_NOT_FOUND);
        assert_eq!(answers[2]["error"]["code"], code::INVALID_REQUEST);
        let (_, empty) = post(&app, "[]").await;
        assert_eq!(empty["error"]["code"], code::INVALID_REQUEST);
    }

    #[tokio::test]
    async fn an_empty_bucket_answers_429_with_retry_after() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(
            dir.path(),
            RateLimit {
                per_second: 1,
                burst: 2,
            },
        );
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"chain_getHead"}"#;
        assert_eq!(post(&app, call).await.0, StatusCode::OK);
        assert_eq!(post(&app, call).await.0, StatusCode::OK);
        let request = Request::post("/").body(Body::from(call)).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], code::RATE_LIMITED);
    }

    #[tokio::test]
    async fn bad_nonce_errors_carry_the_expected_nonce_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let app = app(dir.path(), RateLimit::default());
        let (_, genesis) = post(
            &app,
            r#"{"jsonrpc":"2.0","id":1,"method":"system_genesisHash"}"#,
        )
        .await;
        let genesis: H256 = serde_json::from_value(genesis["result"].clone()).unwrap();
        let alice = subnet_common::keys::Keypair::from_uri("//Alice").unwrap();
        let call = subnet_common::chain::types::Call::Transfer {
            dest: alice.account_id(),
            amount: 1,
        };
        let ext = subnet_common::chain::types::SignedExtrinsic::sign(call, 3, &genesis.0, &alice);
        let hex = format!(
            "0x{}",
            hex::encode(parity_scale_codec::Encode::encode(&ext))
        );
        let body = json!({"jsonrpc":"2.0","id":1,"method":"author_submitExtrinsic","params":[hex]});
        let (_, answer) = post(&app, &body.to_string()).await;
        assert_eq!(answer["error"]["code"], code::BAD_NONCE);
        assert_eq!(answer["error"]["data"], json!({"expected": 0, "got": 3}));
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn bucket_allows_a_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let t0 = Instant::now();
        assert!((0..3).all(|_| limiter.allow(ip(1), t0)));
        assert!(!limiter.allow(ip(1), t0));
        // Another client has its own bucket.
        assert!(limiter.allow(ip(2), t0));
        // 100 ms at 10/s refills one token.
        let t1 = t0 + Duration::from_millis(100);
        assert!(limiter.allow(ip(1), t1));
        assert!(!limiter.allow(ip(1), t1));
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert!((0..3).all(|_| limiter.allow(ip(1), t2)));
        assert!(!limiter.allow(ip(1), t2));
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0,
            burst: 0,
        });
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.allow(ip(1), now)));
    }
}
