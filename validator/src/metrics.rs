//! Prometheus metrics of the validator, through the `metrics` facade.
//!
//! [`install`] sets the process-wide recorder once and returns a [`PrometheusHandle`] the
//! dashboard renders at `/metrics`; the epoch loop calls the `record_*` helpers, which are no-ops
//! until a recorder is installed. Names follow `validator_*` with unit suffixes:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `validator_epoch_duration_seconds` | histogram | – |
//! | `validator_epoch_phase_seconds` | histogram | `phase` (`chain`, `model_fetch`, `model_eval`, `save`, `submit`, …; see [`crate::service::EpochTimings::phases`]) |
//! | `validator_miners_queried_total` | counter | `outcome` (`ok`, `timeout`, `hash_mismatch`, …) |
//! | `validator_eval_seconds` | histogram | – |
//! | `validator_download_bytes_total` | counter | – |
//! | `validator_weight_commits_total` | counter | `result` (`committed`, `revealed`, `set`, `failed`, …) |
//! | `validator_chain_head_lag_seconds` | gauge | – |
//! | `validator_eval_jobs_open` | gauge | – (jobs queued for `validator worker`s, not yet back) |
//! | `validator_eval_jobs_total` | counter | `result` (`done`, `failed`, `given_up`) |

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::PrometheusHandle;

/// Wall time of one epoch's work.
pub const EPOCH_DURATION: &str = "validator_epoch_duration_seconds";
/// Wall time of each phase of a scored epoch's turn.
pub const EPOCH_PHASE: &str = "validator_epoch_phase_seconds";
/// Miners asked for their model, by outcome.
pub const MINERS_QUERIED: &str = "validator_miners_queried_total";
/// Wall time of one model evaluation.
pub const EVAL_SECONDS: &str = "validator_eval_seconds";
/// Artifact bytes downloaded from miners.
pub const DOWNLOAD_BYTES: &str = "validator_download_bytes_total";
/// Weight extrinsics, by result.
pub const WEIGHT_COMMITS: &str = "validator_weight_commits_total";
/// Seconds between now and the chain head's timestamp.
pub const CHAIN_HEAD_LAG: &str = "validator_chain_head_lag_seconds";
/// 1 while the validator's hotkey holds a validator permit, 0 while it does not.
pub const VALIDATOR_PERMIT: &str = "validator_permit";
/// Evaluation jobs queued for workers and not yet back.
pub const EVAL_JOBS_OPEN: &str = "validator_eval_jobs_open";
/// Evaluation jobs that came back from workers or were given up, by result.
pub const EVAL_JOBS: &str = "validator_eval_jobs_total";

/// Buckets of `validator_epoch_duration_seconds`: a second to an hour.
const EPOCH_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Buckets of `validator_eval_seconds`: 10 ms to 10 minutes.
const EVAL_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
];

pub use subnet_common::telemetry::MetricsError;

/// Installs the Prometheus recorder for this process (once; later calls return the same handle)
/// and describes the validator's metrics.
pub fn install() -> Result<PrometheusHandle, MetricsError> {
    subnet_common::telemetry::install_prometheus(
        &[
            (EPOCH_DURATION, EPOCH_BUCKETS),
            (EVAL_SECONDS, EVAL_BUCKETS),
            (EPOCH_PHASE, EVAL_BUCKETS),
        ],
        describe,
    )
}

fn describe() {
    describe_histogram!(
        EPOCH_DURATION,
        Unit::Seconds,
        "Wall time of one epoch's work"
    );
    describe_histogram!(
        EPOCH_PHASE,
        Unit::Seconds,
        "Wall time of each phase of a scored epoch's turn"
    );
    describe_counter!(MINERS_QUERIED, "Miners asked for their model, by outcome");
    describe_histogram!(
        EVAL_SECONDS,
        Unit::Seconds,
        "Wall time of one model evaluation"
    );
    describe_counter!(
        DOWNLOAD_BYTES,
        Unit::Bytes,
        "Artifact bytes downloaded from miners"
    );
    describe_counter!(
        WEIGHT_COMMITS,
        "Weight extrinsics (commit, reveal, set), by result"
    );
    describe_gauge!(
        CHAIN_HEAD_LAG,
        Unit::Seconds,
        "Now minus the chain head's timestamp"
    );
    describe_gauge!(
        EVAL_JOBS_OPEN,
        "Evaluation jobs queued for validator workers and not yet back"
    );
    describe_counter!(
        EVAL_JOBS,
        "Evaluation jobs back from validator workers (done, failed) or given up"
    );
    describe_gauge!(
        VALIDATOR_PERMIT,
        "1 while this hotkey holds a validator permit (its weights count), 0 while it does not"
    );
}

/// One epoch's work took `elapsed`.
pub fn record_epoch_duration(elapsed: Duration) {
    histogram!(EPOCH_DURATION).record(elapsed.as_secs_f64());
}

/// One phase of a scored epoch's turn took `elapsed`.
pub fn record_epoch_phase(phase: &'static str, elapsed: Duration) {
    histogram!(EPOCH_PHASE, "phase" => phase).record(elapsed.as_secs_f64());
}

/// A miner was queried; `outcome` is its outcome code (`ok`, `timeout`, …).
pub fn record_miner_queried(outcome: &str) {
    counter!(MINERS_QUERIED, "outcome" => outcome.to_string()).increment(1);
}

/// One model's evaluation job (load, checks, forward passes, spot-check) took `elapsed`.
pub fn record_eval(elapsed: Duration) {
    histogram!(EVAL_SECONDS).record(elapsed.as_secs_f64());
}

/// `bytes` of artifacts were downloaded.
pub fn record_download_bytes(bytes: u64) {
    counter!(DOWNLOAD_BYTES).increment(bytes);
}

/// A weight extrinsic ended with `result` (`committed`, `revealed`, `set`, `failed`, `expired`).
pub fn record_weight_commit(result: &str) {
    counter!(WEIGHT_COMMITS, "result" => result.to_string()).increment(1);
}

/// The chain head is `lag_secs` old (negative when the chain's clock is ahead of ours).
pub fn set_chain_head_lag(lag_secs: f64) {
    gauge!(CHAIN_HEAD_LAG).set(lag_secs);
}

/// Whether the hotkey holds a validator permit.
pub fn set_validator_permit(permit: bool) {
    gauge!(VALIDATOR_PERMIT).set(if permit { 1.0 } else { 0.0 });
}

/// An evaluation job queued for the workers: counted in `validator_eval_jobs_open` until
/// dropped.
#[derive(Debug)]
pub struct OpenEvalJob(());

impl OpenEvalJob {
    /// Counts one more open job.
    pub fn open() -> Self {
        gauge!(EVAL_JOBS_OPEN).increment(1.0);
        Self(())
    }

    /// The job ended with `result` (`done`, `failed` or `given_up`).
    pub fn close(self, result: &'static str) {
        counter!(EVAL_JOBS, "result" => result).increment(1);
    }
}

impl Drop for OpenEvalJob {
    fn drop(&mut self) {
        gauge!(EVAL_JOBS_OPEN).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_renders_recorded_values() {
        install().unwrap();
        let again = install().unwrap();
        record_miner_queried("timeout");
        record_download_bytes(1234);
        record_epoch_duration(Duration::from_millis(2500));
        record_weight_commit("committed");
        record_eval(Duration::from_millis(40));
        record_epoch_phase("model_fetch", Duration::from_millis(7));
        set_chain_head_lag(3.5);
        let job = OpenEvalJob::open();
        assert!(again.render().contains("validator_eval_jobs_open 1"));
        job.close("given_up");
        let text = again.render();
        assert!(text.contains("validator_eval_jobs_open 0"), "{text}");
        assert!(
            text.contains("validator_eval_jobs_total{result=\"given_up\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("validator_miners_queried_total{outcome=\"timeout\"}"),
            "{text}"
        );
        assert!(text.contains("validator_download_bytes_total"), "{text}");
        assert!(
            text.contains("validator_epoch_duration_seconds_bucket"),
            "{text}"
        );
        assert!(
            text.contains("validator_weight_commits_total{result=\"committed\"}"),
            "{text}"
        );
        assert!(
            text.contains("validator_chain_head_lag_seconds 3.5"),
            "{text}"
        );
        assert!(text.contains("validator_eval_seconds_bucket"), "{text}");
        assert!(
            text.contains("validator_epoch_phase_seconds_count{phase=\"model_fetch\"}"),
            "{text}"
        );
    }
}
