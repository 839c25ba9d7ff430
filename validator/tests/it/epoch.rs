//! One epoch of `validator run`'s loop on a local subnet ([`super::localnet`]): what it stores
//! per sample, the metrics it records on the way, and the phase timings it reports.

use std::time::Duration;

use sqlx::PgPool;
use subnet_model::tokenizer::Tokenizer;
use subnet_validator::artifacts::Limits;
use subnet_validator::tracks::model::TrackSettings;

use super::localnet::{Localnet, LocalnetOptions, NETUID, competition, tiny_config};

/// The value of the sample line `series` (name and labels exactly as rendered) in a Prometheus
/// text exposition.
fn sample_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_scored_epoch_stores_tokens_per_sample_and_records_eval_download_and_lag_metrics(
    pool: PgPool,
) {
    let metrics = subnet_validator::metrics::install().expect("recorder");
    // A lag no real head has, so the run's own reading shows.
    subnet_validator::metrics::set_chain_head_lag(-1e9);
    let before = metrics.render();
    let count_before = |series: &str| sample_value(&before, series).unwrap_or(0.0);
    let (evals_before, bytes_before) = (
        count_before("validator_eval_seconds_count"),
        count_before("validator_download_bytes_total"),
    );

    let net = Localnet::start(&LocalnetOptions {
        miners: 2,
        tempo: 10,
        block_time: Duration::from_millis(100),
        model: tiny_config(),
        competition: competition(8, 48, 2),
    })
    .await;
    let settings = TrackSettings {
        fetch: Limits {
            request_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
        ..TrackSettings::default()
    };
    let service = net.service(&pool, settings);
    net.wait_for_eligible_epoch().await;
    let turn = service.run_once().await.expect("turn");
    assert!(turn.scored, "{turn:?}");
    let timings = turn.timings.expect("a scored turn reports its timings");
    assert_eq!(timings.model.evaluated, 2, "{timings:?}");
    assert!(timings.model.eval > Duration::ZERO, "{timings:?}");
    assert!(timings.total >= timings.model.device, "{timings:?}");

    // Stored per-sample token counts: one positive count per loss, each the number of
    // completion tokens of that sample as the epoch's seed draws it.
    let (seed,): (String,) =
        sqlx::query_as("SELECT seed FROM epochs WHERE netuid = $1 AND epoch = $2")
            .bind(i32::from(NETUID))
            .bind(turn.epoch as i64)
            .fetch_one(&pool)
            .await
            .expect("epoch row");
    let seed: [u8; 32] = hex::decode(seed)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let samples = net
        .competition
        .competition
        .eval_samples(seed, &Tokenizer::bytes(), None)
        .expect("samples");
    let expected: Vec<i32> = samples
        .iter()
        .map(|s| (s.input_ids.len() - s.completion_start) as i32)
        .collect();
    let rows: Vec<(i32, String, Vec<f64>, Vec<i32>)> = sqlx::query_as(
        "SELECT uid, outcome, sample_losses, sample_tokens FROM model_evals
         WHERE netuid = $1 AND epoch = $2 ORDER BY uid",
    )
    .bind(i32::from(NETUID))
    .bind(turn.epoch as i64)
    .fetch_all(&pool)
    .await
    .expect("model_evals");
    let evaluated: Vec<_> = rows.iter().filter(|r| r.1 == "ok").collect();
    assert_eq!(evaluated.len(), 2, "{rows:?}");
    for (uid, _, losses, tokens) in evaluated {
        assert_eq!(losses.len(), 8, "uid {uid}");
        assert_eq!(tokens.len(), losses.len(), "uid {uid}: {tokens:?}");
        assert!(tokens.iter().all(|&t| t > 0), "uid {uid}: {tokens:?}");
        assert_eq!(tokens, &expected, "uid {uid}");
    }
    // Rows of uids that were not evaluated (//Alice commits no model) store no counts.
    for (uid, outcome, losses, tokens) in rows.iter().filter(|r| r.1 != "ok") {
        assert!(
            losses.is_empty() && tokens.is_empty(),
            "uid {uid} {outcome}"
        );
    }

    // The metrics of the real paths: two evaluations, the artifacts' bytes, the head's lag, and
    // each phase of the turn.
    let text = metrics.render();
    let value = |series: &str| sample_value(&text, series);
    let evals = value("validator_eval_seconds_count").expect("validator_eval_seconds_count");
    assert!(evals - evals_before >= 2.0, "{text}");
    let bytes = value("validator_download_bytes_total").expect("validator_download_bytes_total");
    let artifact_bytes: u64 = ["config.json", "model.safetensors"]
        .iter()
        .map(|name| {
            std::fs::metadata(net.root.path().join("models/0").join(name))
                .expect("model file")
                .len()
        })
        .sum();
    assert!(
        bytes - bytes_before >= 2.0 * artifact_bytes as f64,
        "{bytes} - {bytes_before} bytes for two artifacts of {artifact_bytes}: {text}"
    );
    let lag = value("validator_chain_head_lag_seconds").expect("validator_chain_head_lag_seconds");
    assert!(
        lag.abs() < 60.0,
        "the clock did not record the head's lag: {lag}"
    );
    for phase in ["model_fetch", "model_eval", "save", "submit", "total"] {
        let series = format!("validator_epoch_phase_seconds_count{{phase=\"{phase}\"}}");
        assert!(value(&series).is_some_and(|n| n >= 1.0), "{series}: {text}");
    }
}
