//! Prometheus metrics of the miner, through the `metrics` facade.
//!
//! `miner serve --metrics.addr 127.0.0.1:9101` installs the recorder ([`install`]) and serves
//! `GET /metrics` on that address only ([`MetricsServer`]), never on the axon's public port:
//! the text names routes, refusal reasons and labeler activity, which is the operator's
//! business. Without the flag nothing is recorded (the `record_*` helpers are no-ops until a
//! recorder is installed). Names follow `miner_*` with unit suffixes:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `miner_http_requests_total` | counter | `route` (the matched route, `<unmatched>`), `status` |
//! | `miner_http_request_duration_seconds` | histogram | `route` |
//! | `miner_auth_refused_total` | counter | `reason`: `not_registered`, `no_permit`, and btauth's codes (`bad_signature`, `stale_request`, `replayed_request`, `malformed_auth`, `wrong_receiver`, `unsupported_crypto`) |
//! | `miner_artifact_bytes_served_total` | counter | – |
//! | `miner_generate_requests_total` | counter | `outcome` (`ok`, `busy`, `bad_request`, `error`) |
//! | `miner_generate_tokens_total` | counter | – |
//! | `miner_generate_seconds` | histogram | – |
//! | `miner_rlhf_batches_received_total` | counter | `new` (`true`, `false` for a re-sent batch) |
//! | `miner_rlhf_tasks_received_total` | counter | – |
//! | `miner_rlhf_labels_returned_total` | counter | – |
//! | `miner_label_answers_total` | counter | `outcome` (`stored`, `token_used`, `token_unknown`, `already_labeled`, `deadline_passed`) |
//! | `miner_model_commitment_matches` | gauge | – (1 while the hotkey's on-chain commitment is the served model's, 0 while not; absent without a chain or a model) |

use std::{
    net::SocketAddr,
    pin::Pin,
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    Router,
    body::Body,
    extract::{MatchedPath, State},
    http::{Request, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::{io::AsyncRead, net::TcpListener};

/// Requests answered, by route and status.
pub const HTTP_REQUESTS: &str = "miner_http_requests_total";
/// Time to answer a request (to the response's head; bodies stream after), by route.
pub const HTTP_DURATION: &str = "miner_http_request_duration_seconds";
/// Signed requests refused, by reason.
pub const AUTH_REFUSED: &str = "miner_auth_refused_total";
/// Bytes of model files sent to validators.
pub const ARTIFACT_BYTES: &str = "miner_artifact_bytes_served_total";
/// `/v1/generate` requests, by outcome.
pub const GENERATE_REQUESTS: &str = "miner_generate_requests_total";
/// Tokens generated for `/v1/generate`.
pub const GENERATE_TOKENS: &str = "miner_generate_tokens_total";
/// Wall time of one generation, queue wait included.
pub const GENERATE_SECONDS: &str = "miner_generate_seconds";
/// RLHF task batches received from validators.
pub const RLHF_BATCHES: &str = "miner_rlhf_batches_received_total";
/// RLHF tasks in the batches received (re-sent batches not counted again).
pub const RLHF_TASKS: &str = "miner_rlhf_tasks_received_total";
/// Labels sent back to validators.
pub const RLHF_LABELS: &str = "miner_rlhf_labels_returned_total";
/// Answers labelers submitted in the form, by outcome.
pub const LABEL_ANSWERS: &str = "miner_label_answers_total";

/// 1 while the on-chain commitment is the served model's.
pub const COMMITMENT_MATCHES: &str = "miner_model_commitment_matches";

/// Buckets of the request and generation times: 1 ms to 5 minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

pub use subnet_common::telemetry::MetricsError;

/// Installs the Prometheus recorder for this process (once; later calls return the same handle)
/// and describes the miner's metrics.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    subnet_common::telemetry::install_prometheus(
        &[
            (HTTP_DURATION, SECONDS_BUCKETS),
            (GENERATE_SECONDS, SECONDS_BUCKETS),
        ],
        describe,
    )
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "Requests answered, by route and status");
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer a request (to the response head), by route"
    );
    describe_counter!(AUTH_REFUSED, "Signed requests refused, by reason");
    describe_counter!(
        ARTIFACT_BYTES,
        Unit::Bytes,
        "Bytes of model files sent to validators"
    );
    describe_counter!(GENERATE_REQUESTS, "/v1/generate requests, by outcome");
    describe_counter!(GENERATE_TOKENS, "Tokens generated for /v1/generate");
    describe_histogram!(
        GENERATE_SECONDS,
        Unit::Seconds,
        "Wall time of one generation, queue wait included"
    );
    describe_counter!(
        RLHF_BATCHES,
        "RLHF task batches received from validators (new=false: a re-sent batch)"
    );
    describe_counter!(RLHF_TASKS, "RLHF tasks in newly received batches");
    describe_counter!(RLHF_LABELS, "Labels sent back to validators");
    describe_counter!(
        LABEL_ANSWERS,
        "Answers labelers submitted in the form, by outcome"
    );
    describe_gauge!(
        COMMITMENT_MATCHES,
        "1 while the hotkey's on-chain commitment is the served model's, 0 while not"
    );
}

/// Whether the hotkey's on-chain commitment is the served model's.
pub fn set_commitment_matches(matches: bool) {
    gauge!(COMMITMENT_MATCHES).set(if matches { 1.0 } else { 0.0 });
}

/// A signed request was refused for `reason` (`not_registered`, `no_permit`, a btauth code).
pub fn record_auth_refused(reason: &'static str) {
    counter!(AUTH_REFUSED, "reason" => reason).increment(1);
}

/// A generation ended with `outcome` after `elapsed`, having produced `tokens` tokens.
pub fn record_generate(outcome: &'static str, tokens: usize, elapsed: Duration) {
    counter!(GENERATE_REQUESTS, "outcome" => outcome).increment(1);
    counter!(GENERATE_TOKENS).increment(tokens as u64);
    histogram!(GENERATE_SECONDS).record(elapsed.as_secs_f64());
}

/// A validator sent a batch of `tasks` tasks (`new`: not a re-send of a stored batch).
pub fn record_rlhf_batch(new: bool, tasks: usize) {
    counter!(RLHF_BATCHES, "new" => if new { "true" } else { "false" }).increment(1);
    if new {
        counter!(RLHF_TASKS).increment(tasks as u64);
    }
}

/// `labels` labels were sent to a validator.
pub fn record_rlhf_labels(labels: usize) {
    counter!(RLHF_LABELS).increment(labels as u64);
}

/// A labeler's answer ended with `outcome`.
pub fn record_label_answer(outcome: &'static str) {
    counter!(LABEL_ANSWERS, "outcome" => outcome).increment(1);
}

/// Middleware on every route: counts the request by matched route and status, and times it.
/// Unmatched paths share one label, so a scanner cannot grow the series without bound.
pub async fn track_requests(request: Request<Body>, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    histogram!(HTTP_DURATION, "route" => route.clone()).record(started.elapsed().as_secs_f64());
    counter!(HTTP_REQUESTS, "route" => route, "status" => status).increment(1);
    response
}

/// Middleware around btauth's `require`: counts its 401 refusals by their JSON error code
/// (`bad_signature`, `stale_request`, …). The 403s are counted where they are decided
/// ([`crate::chain_auth`]), with the reason.
pub async fn track_auth_refusals(request: Request<Body>, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::UNAUTHORIZED {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4096).await else {
        return (parts.status, "unauthorized").into_response();
    };
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"].as_str().map(auth_reason));
    record_auth_refused(code.unwrap_or("other"));
    Response::from_parts(parts, Body::from(bytes))
}

/// btauth's refusal codes as static label values (anything else is `other`).
fn auth_reason(code: &str) -> &'static str {
    subnet_common::btauth::AuthErrorKind::ALL
        .into_iter()
        .map(subnet_common::btauth::AuthErrorKind::code)
        .find(|known| *known == code)
        .unwrap_or("other")
}

/// An [`AsyncRead`] that counts the bytes it yields into [`ARTIFACT_BYTES`] (what was read
/// for the response body; a download cut short counts what was sent so far).
pub struct CountServed<R> {
    inner: R,
}

impl<R> CountServed<R> {
    /// Counts what `inner` yields.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CountServed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = buf.filled().len().saturating_sub(before);
            if read > 0 {
                counter!(ARTIFACT_BYTES).increment(read as u64);
            }
        }
        polled
    }
}

/// `GET /metrics` on its own listener (`--metrics.addr`), apart from the public axon.
pub struct MetricsServer {
    listener: TcpListener,
    handle: PrometheusHandle,
}

impl MetricsServer {
    /// Installs the recorder and binds `addr`.
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let handle = install().context("while installing the metrics recorder")?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("while binding --metrics.addr {addr}"))?;
        Ok(Self { listener, handle })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `/metrics` until `shutdown` resolves.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = Router::new()
            .route("/metrics", get(render))
            .with_state(self.handle);
        subnet_common::serve::serve(
            self.listener,
            router,
            subnet_common::serve::ServeLimits::default(),
            shutdown,
        )
        .await
        .context("while serving /metrics")
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn render(State(handle): State<PrometheusHandle>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btauth_codes_become_their_own_labels_and_others_one() {
        assert_eq!(auth_reason("bad_signature"), "bad_signature");
        assert_eq!(auth_reason("stale_request"), "stale_request");
        assert_eq!(auth_reason("x\"}"), "other");
    }
}
