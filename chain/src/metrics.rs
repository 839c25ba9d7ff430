//! Prometheus metrics of the dev chain node, through the `metrics` facade.
//!
//! [`install`] sets the process-wide recorder once (later calls, e.g. a second node built in the
//! same test process, get the same handle) and [`crate::startup::Application::build`] calls it;
//! the RPC server renders the handle at `GET /metrics`. The `record_*` helpers are no-ops until a
//! recorder is installed, so a [`crate::node::Chain`] used on its own (benches, unit tests) records
//! nothing. Names follow `devchain_*` with unit suffixes:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `devchain_block_height` | gauge | – (the head's number; set at start and after each block) |
//! | `devchain_blocks_total` | counter | – (blocks produced by this process, not replayed ones) |
//! | `devchain_block_production_seconds` | histogram | – (building, applying and fsyncing one block) |
//! | `devchain_extrinsics_total` | counter | `outcome`: `applied` (in a block), `failed` (dispatch failed at block time, left out), `rejected` (refused at submission) |
//! | `devchain_pending_extrinsics` | gauge | – (queued for the next block) |
//! | `devchain_epochs_total` | counter | `netuid` |
//! | `devchain_rpc_requests_total` | counter | `method` (a known method's name, `unknown`, or `invalid` for a call that is not a JSON-RPC request) |
//! | `devchain_rpc_errors_total` | counter | `method` (as above; calls answered with a JSON-RPC error) |
//! | `devchain_rpc_rate_limited_total` | counter | – (HTTP 429 answers) |
//! | `devchain_sse_subscribers` | gauge | – (open `/events` streams) |
//!
//! The accept loop ([`subnet_common::serve`]) adds `http_connections_refused_total{limit}`.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::PrometheusHandle;
use subnet_common::chain::rpc::method;
use subnet_common::chain::types::NetUid;

/// The best block's number.
pub const BLOCK_HEIGHT: &str = "devchain_block_height";
/// Blocks produced by this process.
pub const BLOCKS: &str = "devchain_blocks_total";
/// Wall time of producing one block (apply, append, fsync).
pub const BLOCK_PRODUCTION: &str = "devchain_block_production_seconds";
/// Extrinsics by outcome.
pub const EXTRINSICS: &str = "devchain_extrinsics_total";
/// Extrinsics waiting for a block.
pub const PENDING_EXTRINSICS: &str = "devchain_pending_extrinsics";
/// Epochs run, by subnet.
pub const EPOCHS: &str = "devchain_epochs_total";
/// JSON-RPC calls, by method.
pub const RPC_REQUESTS: &str = "devchain_rpc_requests_total";
/// JSON-RPC calls answered with an error, by method.
pub const RPC_ERRORS: &str = "devchain_rpc_errors_total";
/// Requests refused by the per-IP rate limit.
pub const RPC_RATE_LIMITED: &str = "devchain_rpc_rate_limited_total";
/// Open `/events` streams.
pub const SSE_SUBSCRIBERS: &str = "devchain_sse_subscribers";

/// Buckets of `devchain_block_production_seconds`: 100 µs to 5 s (an fsync on a slow disk).
const BLOCK_PRODUCTION_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Every method the node answers; other names are counted as `unknown` so that a client cannot
/// grow the label set.
const METHODS: &[&str] = &[
    method::GENESIS_HASH,
    method::HEAD,
    method::BLOCK_HASH,
    method::BLOCK,
    method::SUBMIT,
    method::EXTRINSIC_STATUS,
    method::ACCOUNT_NEXT_INDEX,
    method::ACCOUNT_INFO,
    method::METAGRAPH,
    method::HYPERPARAMETERS,
    method::COMMITMENTS,
    method::COMMITMENTS_AT,
    method::BEACON,
];

pub use subnet_common::telemetry::MetricsError;

/// Installs the Prometheus recorder for this process (once; later calls return the same handle)
/// and describes the node's metrics.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    subnet_common::telemetry::install_prometheus(
        &[(BLOCK_PRODUCTION, BLOCK_PRODUCTION_BUCKETS)],
        describe,
    )
}

/// The installed recorder's handle, if [`install`] (or another binary's in this process)
/// succeeded.
pub fn handle() -> Option<PrometheusHandle> {
    subnet_common::telemetry::prometheus_handle()
}

fn describe() {
    describe_gauge!(BLOCK_HEIGHT, "Number of the best block");
    describe_counter!(BLOCKS, "Blocks produced by this process");
    describe_histogram!(
        BLOCK_PRODUCTION,
        Unit::Seconds,
        "Wall time of producing one block: applying its extrinsics, the epochs, the fsynced append"
    );
    describe_counter!(
        EXTRINSICS,
        "Extrinsics by outcome: applied (included), failed (dispatch failed, left out), rejected (refused at submission)"
    );
    describe_gauge!(PENDING_EXTRINSICS, "Extrinsics queued for the next block");
    describe_counter!(EPOCHS, "Epochs (Yuma Consensus runs) by subnet");
    describe_counter!(RPC_REQUESTS, "JSON-RPC calls by method");
    describe_counter!(
        RPC_ERRORS,
        "JSON-RPC calls answered with an error, by method"
    );
    describe_counter!(
        RPC_RATE_LIMITED,
        "Requests refused with HTTP 429 by the per-IP rate limit"
    );
    describe_gauge!(SSE_SUBSCRIBERS, "Open /events streams");
}

/// A block was produced and became the head.
pub fn record_block(number: u64, elapsed: Duration) {
    counter!(BLOCKS).increment(1);
    gauge!(BLOCK_HEIGHT).set(number as f64);
    histogram!(BLOCK_PRODUCTION).record(elapsed.as_secs_f64());
}

/// The head is `number` (at start, after replaying the log).
pub fn set_block_height(number: u64) {
    gauge!(BLOCK_HEIGHT).set(number as f64);
}

/// A block applied `applied` extrinsics and left out `failed` ones.
pub fn record_extrinsics_in_block(applied: usize, failed: usize) {
    counter!(EXTRINSICS, "outcome" => "applied").increment(applied as u64);
    counter!(EXTRINSICS, "outcome" => "failed").increment(failed as u64);
}

/// An extrinsic was refused at submission.
pub fn record_extrinsic_rejected() {
    counter!(EXTRINSICS, "outcome" => "rejected").increment(1);
}

/// `count` extrinsics are queued.
pub fn set_pending_extrinsics(count: usize) {
    gauge!(PENDING_EXTRINSICS).set(count as f64);
}

/// Subnet `netuid` ran an epoch.
pub fn record_epoch(netuid: NetUid) {
    counter!(EPOCHS, "netuid" => netuid.to_string()).increment(1);
}

/// A JSON-RPC call named `name` (`None`: not a JSON-RPC request) was answered, with an error or
/// not.
pub fn record_rpc_call(name: Option<&str>, error: bool) {
    let label = method_label(name);
    counter!(RPC_REQUESTS, "method" => label).increment(1);
    if error {
        counter!(RPC_ERRORS, "method" => label).increment(1);
    }
}

/// A request was refused by the rate limit.
pub fn record_rate_limited() {
    counter!(RPC_RATE_LIMITED).increment(1);
}

/// The `method` label of a call: the method's own name when the node knows it.
fn method_label(name: Option<&str>) -> &'static str {
    match name {
        None => "invalid",
        Some(name) => METHODS
            .iter()
            .find(|known| **known == name)
            .copied()
            .unwrap_or("unknown"),
    }
}

/// One open `/events` stream: counted in `devchain_sse_subscribers` while it lives.
#[derive(Debug)]
pub struct SseSubscriber(());

impl SseSubscriber {
    /// Counts a new stream.
    pub fn open() -> Self {
        gauge!(SSE_SUBSCRIBERS).increment(1.0);
        Self(())
    }
}

impl Drop for SseSubscriber {
    fn drop(&mut self) {
        gauge!(SSE_SUBSCRIBERS).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_method_names_share_one_label() {
        assert_eq!(method_label(Some(method::SUBMIT)), "author_submitExtrinsic");
        assert_eq!(method_label(Some("x_whatever_1")), "unknown");
        assert_eq!(method_label(None), "invalid");
    }

    #[test]
    fn install_is_idempotent_and_renders_recorded_values() {
        let first = install().unwrap();
        let again = install().unwrap();
        record_rpc_call(Some("not_a_method"), true);
        record_extrinsic_rejected();
        let subscriber = SseSubscriber::open();
        let text = again.render();
        drop(subscriber);
        assert!(
            text.contains("devchain_rpc_requests_total{method=\"unknown\"}"),
            "{text}"
        );
        assert!(
            text.contains("devchain_rpc_errors_total{method=\"unknown\"}"),
            "{text}"
        );
        assert!(
            text.contains("devchain_extrinsics_total{outcome=\"rejected\"}"),
            "{text}"
        );
        assert!(text.contains("devchain_sse_subscribers"), "{text}");
        assert!(
            first
                .render()
                .contains("# HELP devchain_rpc_requests_total")
        );
    }
}
