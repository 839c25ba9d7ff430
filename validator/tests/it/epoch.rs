//! `validator run`'s loop on a local subnet ([`super::localnet`]): what one epoch stores per
//! sample, the metrics it records on the way and the phase timings it reports; and what a tempo
//! change does to the epochs and commits that follow.

use std::time::Duration;

use sqlx::PgPool;
use subnet_common::chain::client::ChainClient;
use subnet_common::chain::types::{Call, Hyperparameter};
use subnet_model::tokenizer::Tokenizer;
use subnet_validator::artifacts::Limits;
use subnet_validator::tracks::model::TrackSettings;

use subnet_validator::service::clock::BlockClock;
use subnet_validator::service::schedule::EpochSchedule;

use super::localnet::{Localnet, LocalnetOptions, NETUID, alice, competition, tiny_config};

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

/// Sets one hyperparameter of the subnet as its owner (//Alice) and waits for its inclusion.
async fn set_hyperparameter(net: &Localnet, param: Hyperparameter, value: u64) -> u64 {
    let call = Call::SetHyperparameter {
        netuid: NETUID,
        param,
        value,
    };
    let tx = net.chain.submit(call, &alice()).await.expect("submit");
    net.chain
        .wait_for_inclusion(tx, Duration::from_secs(30))
        .await
        .expect("included")
        .block
}

/// The status and error of the weight row of `epoch`.
async fn weight_row(pool: &PgPool, epoch: u64) -> (String, Option<String>) {
    sqlx::query_as("SELECT status, error FROM weight_commits WHERE netuid = $1 AND epoch = $2")
        .bind(i32::from(NETUID))
        .bind(epoch as i64)
        .fetch_one(pool)
        .await
        .expect("weight row")
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_tempo_change_neither_stops_scoring_nor_strands_a_commit(pool: PgPool) {
    // The README's `set-hyperparameter --name tempo` on a running subnet moved the chain's epoch
    // index back (41 → 29): the validator scored nothing and set no weights for ~400 blocks, and
    // the commit made before the change expired unrevealed.
    let net = Localnet::start(&LocalnetOptions {
        miners: 1,
        tempo: 10,
        block_time: Duration::from_millis(100),
        model: tiny_config(),
        competition: competition(4, 32, 2),
    })
    .await;
    // Commit–reveal v2, where the validator reveals by itself.
    set_hyperparameter(&net, Hyperparameter::CommitRevealVersion, 2).await;
    let service = net.service(&pool, TrackSettings::default());
    net.wait_for_eligible_epoch().await;
    // Far enough in for the new tempo's index to fall two epochs behind.
    let clock = net.clock();
    let fast = EpochSchedule::new(NETUID, 10);
    clock.wait_until(fast.first_block(3)).await.expect("wait");
    let first = service.run_once().await.expect("turn");
    assert!(first.scored, "{first:?}");
    assert_eq!(first.epoch, first.chain_epoch, "no tempo change yet");
    assert_eq!(weight_row(&pool, first.epoch).await.0, "committed");

    // Within the same epoch, the tempo triples: the chain's index falls below the epoch scored.
    let changed_at = set_hyperparameter(&net, Hyperparameter::Tempo, 30).await;
    let slow = EpochSchedule::new(NETUID, 30);
    assert!(
        slow.epoch_of(changed_at) < first.epoch,
        "the index went back: {} at block {changed_at}",
        slow.epoch_of(changed_at)
    );
    // The turn in the same (renumbered) epoch scores nothing and gives up the stranded commit.
    let same = service.run_once().await.expect("turn");
    if !same.scored {
        assert_eq!(same.epoch, first.epoch, "{same:?}");
    }
    let (status, error) = weight_row(&pool, first.epoch).await;
    assert_eq!(status, "failed", "{error:?}");
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("tempo changed from 10 to 30")),
        "{error:?}"
    );

    // The next epoch under the new tempo is scored at once, numbered after the last one.
    clock.wait_until(same.next_epoch_start).await.expect("wait");
    let next = service.run_once().await.expect("turn");
    assert!(next.scored, "{next:?}");
    assert!(next.epoch > first.epoch, "{next:?} after {first:?}");
    assert!(next.chain_epoch < first.epoch, "{next:?}");
    let (start_block, tempo): (i64, Option<i32>) =
        sqlx::query_as("SELECT start_block, tempo FROM epochs WHERE netuid = $1 AND epoch = $2")
            .bind(i32::from(NETUID))
            .bind(next.epoch as i64)
            .fetch_one(&pool)
            .await
            .expect("epoch row");
    assert_eq!(start_block as u64, slow.first_block(next.chain_epoch));
    assert_eq!(tempo, Some(30));
    assert_eq!(weight_row(&pool, next.epoch).await.0, "committed");

    // Its commit is revealed in the next epoch of the new tempo.
    clock.wait_until(next.next_epoch_start).await.expect("wait");
    let after = service.run_once().await.expect("turn");
    assert!(after.scored, "{after:?}");
    let (status, error) = weight_row(&pool, next.epoch).await;
    assert_eq!(status, "revealed", "{error:?}");
}
