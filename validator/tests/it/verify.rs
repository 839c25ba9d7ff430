//! `validator verify`: epochs stored the way the loop stores them verify; tampered ones do not.

use std::collections::BTreeMap;
use std::process::Command;

use sqlx::PgPool;
use subnet_common::chain::types::commit_hash;
use subnet_common::keys::{AccountId, Keypair};
use subnet_common::protocol::{Choice, Label, RlhfTask};
use subnet_model::competition::CompetitionFile;
use subnet_model::score::ScoreParams;
use subnet_validator::db::{
    self, EpochRecord, EpochResults, MinerRecord, ModelEvalRecord, ScoreRecord, WeightCommitRecord,
    WeightMode,
};
use subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML;
use subnet_validator::service::weights::{self, Neuron, PreviousEma, TrackScores};
use subnet_validator::tracks::labels::batch::{MinerBatch, SentTask};
use subnet_validator::tracks::labels::collect::LabelOutcome;
use subnet_validator::tracks::labels::score::{KnownHistory, ScoreParams as LabelScoreParams};
use subnet_validator::tracks::labels::{LabelMinerResult, LabelTrackResult, rescore};
use subnet_validator::tracks::model::outcome::{self, Committed, MinerEval, Outcome, Stage};
use subnet_validator::verify::verify_epoch;

use crate::pg::database_url;

const NETUID: u16 = 1;
const ALPHA: f64 = 0.3;

fn competition() -> CompetitionFile {
    CompetitionFile::from_bytes(DEFAULT_COMPETITION_TOML.as_bytes()).expect("competition")
}

fn validator_key() -> Keypair {
    Keypair::from_uri("//Alice").expect("dev key")
}

fn miner_hotkey(uid: u16) -> String {
    Keypair::from_uri(&format!("//Miner{uid}"))
        .expect("dev key")
        .account_id()
        .to_ss58()
}

/// The model-track inputs of one epoch: uids 0–2 evaluated (uid 2 duplicates uid 0's manifest),
/// uid 3 without a commitment. `shift` changes the losses from epoch to epoch. Uid 0 keeps more
/// of the open instructions' constraints than uid 1 (which displaces it on loss): each wins one
/// contest, so a verify that ignored the stored following shares would differ.
fn miner_evals(shift: f64) -> Vec<MinerEval> {
    let high = vec![1.0, 1.0, 1.0, 0.5, 1.0, 1.0];
    let low = vec![0.0, 0.5, 0.0, 0.0, 0.5, 0.0];
    let evaluated = |uid: u16, manifest: char, block: u64, losses: Vec<f64>| MinerEval {
        uid,
        hotkey: miner_hotkey(uid),
        commitment: Some(Committed {
            block,
            manifest_sha256: Some(manifest.to_string().repeat(64)),
        }),
        stage: Stage::Evaluated {
            losses,
            cached: false,
            copy_of: None,
            following: Some(if uid == 1 { low.clone() } else { high.clone() }),
            spot_check: None,
        },
    };
    let base = [1.0, 2.0, 0.5, 1.5, 0.8, 1.2, 0.9, 1.1];
    let first: Vec<f64> = base.iter().map(|l| l + shift).collect();
    // About 10% better than uid 0 on every sample: it displaces uid 0 significantly.
    let second: Vec<f64> = base
        .iter()
        .enumerate()
        .map(|(i, l)| l * (0.88 + 0.01 * (i % 3) as f64))
        .collect();
    vec![
        evaluated(0, 'a', 100, first),
        evaluated(1, 'b', 150, second),
        evaluated(2, 'a', 180, base.to_vec()),
        MinerEval {
            uid: 3,
            hotkey: miner_hotkey(3),
            commitment: None,
            stage: Stage::Skipped {
                outcome: Outcome::NoCommitment,
                reason: "no model commitment".into(),
            },
        },
    ]
}

/// Where the pair's first answer (the correct one of a known pair) was shown.
fn first_side(task: &SentTask) -> Choice {
    if task.swapped { Choice::B } else { Choice::A }
}

fn other_side(choice: Choice) -> Choice {
    match choice {
        Choice::A => Choice::B,
        _ => Choice::A,
    }
}

/// How a label miner's labelers answer a task: `None` leaves it unanswered.
type Labeler = fn(&SentTask, usize) -> Option<Choice>;

/// The label track of `epoch`, scored by the loop's function: uid 0's batch timed out; uid 1
/// labels every task right (two labelers); uid 2 gets one known answer wrong and agrees on the
/// open pairs; uid 3 answers only half and says A on everything.
fn label_track(epoch: i64, history: KnownHistory) -> LabelTrackResult {
    let labelers: [(u16, LabelOutcome, Labeler); 4] = [
        (0, LabelOutcome::Timeout, |_, _| None),
        (1, LabelOutcome::Ok, |t, _| Some(first_side(t))),
        (2, LabelOutcome::Ok, |t, i| {
            Some(if i == 0 {
                other_side(first_side(t))
            } else {
                first_side(t)
            })
        }),
        (3, LabelOutcome::Ok, |_, i| {
            (i % 2 == 0).then_some(Choice::A)
        }),
    ];
    let miners = labelers
        .iter()
        .map(|&(uid, outcome, choose)| {
            let tasks: Vec<SentTask> = (0..8)
                .map(|i| {
                    // The known pairs are each miner's own (paid), the open ones shared (compared).
                    let known = i < 3;
                    let pair_id = if known {
                        format!("x{uid}-k{i}")
                    } else {
                        format!("o{i}")
                    };
                    SentTask {
                        task: RlhfTask {
                            task_id: format!("t{uid}-{i}"),
                            prompt: format!("prompt {i}"),
                            a: format!("a{i}"),
                            b: format!("b{i}"),
                        },
                        pair_id,
                        known,
                        swapped: (i + usize::from(uid)) % 2 == 1,
                        shared: !known,
                    }
                })
                .collect();
            let labelers = if uid == 1 { 2 } else { 1 };
            let labels: Vec<Label> = if outcome == LabelOutcome::Ok {
                tasks
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| Some((t, choose(t, i)?)))
                    .flat_map(|(t, choice)| {
                        (0..labelers).map(move |l| Label {
                            task_id: t.task.task_id.clone(),
                            choice,
                            labeler: format!("labeler{l}"),
                            seconds: 3.5,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            LabelMinerResult {
                uid,
                hotkey: miner_hotkey(uid),
                outcome,
                reason: String::new(),
                batch: MinerBatch {
                    batch_id: format!("batch-{epoch}-{uid}"),
                    deadline_block: 300,
                    tasks,
                },
                labels,
                dropped_labels: 0,
                components: Default::default(),
            }
        })
        .collect();
    let mut result = LabelTrackResult {
        netuid: NETUID,
        epoch: epoch as u64,
        sent_epoch: epoch as u64,
        track_seed: "ef".repeat(32),
        deadline_block: 300,
        params: Default::default(),
        miners,
        history,
    };
    rescore(&mut result);
    result
}

/// Scores `epoch` with the loop's pure functions and stores it as the loop does, with the label
/// track of [`label_track`] when `with_labels`.
async fn store_epoch(pool: &PgPool, epoch: i64, shift: f64, with_labels: bool) {
    store_epoch_over(pool, epoch, shift, with_labels, None).await;
}

/// [`store_epoch`] in a competition whose base model had the losses `base`.
async fn store_epoch_over(
    pool: &PgPool,
    epoch: i64,
    shift: f64,
    with_labels: bool,
    base: Option<Vec<f64>>,
) {
    let labels = if with_labels {
        let window = LabelScoreParams::default().window_epochs;
        let history = db::known_history(pool, i32::from(NETUID), epoch, window)
            .await
            .expect("history");
        Some(label_track(epoch, history))
    } else {
        None
    };
    if let Some(labels) = &labels {
        db::save_label_track(pool, labels)
            .await
            .expect("save labels");
    }
    let competition = competition();
    let scored_block = 200 + epoch as u64 * 10;
    let evals = miner_evals(shift);
    let results = outcome::assemble(
        &evals,
        base.as_deref(),
        &ScoreParams::new(&competition.competition),
    )
    .expect("scores");
    let neurons: Vec<Neuron> = evals
        .iter()
        .map(|e| Neuron {
            uid: e.uid,
            hotkey: e.hotkey.clone(),
            block_at_registration: 5,
        })
        .collect();
    let previous: BTreeMap<String, PreviousEma> = db::latest_ema_state(pool, i32::from(NETUID))
        .await
        .expect("ema")
        .into_iter()
        .map(|s| {
            let p = PreviousEma {
                uid: s.uid as u16,
                block_at_registration: s.block_at_registration as u64,
                ema: s.ema,
            };
            (s.hotkey, p)
        })
        .collect();
    let scores = TrackScores {
        model: results.iter().map(|r| (r.uid, r.score)).collect(),
        labels: labels.map(|l| l.scores()).unwrap_or_default(),
    };
    let rows = weights::weight_rows(
        &neurons,
        &scores,
        &competition.competition.shares,
        ALPHA,
        &previous,
    );
    let pairs: Vec<(u16, f64)> = rows.iter().map(|r| (r.uid, r.weight)).collect();
    let (uids, values) = weights::to_u16_weights(&pairs).expect("u16");
    let salt = [7u16, 1, 2, 3, 4, 5, 6, 8];
    let hash = commit_hash(
        &validator_key().account_id(),
        NETUID,
        &uids,
        &values,
        &salt,
        1000,
    );
    let stored = EpochResults {
        epoch: EpochRecord {
            netuid: i32::from(NETUID),
            epoch,
            start_block: 190 + epoch * 10,
            block_hash: "ab".repeat(32),
            seed: "cd".repeat(32),
            competition_sha256: competition.sha256_hex(),
            scored_block: scored_block as i64,
            duration_ms: 10,
            base_losses: base,
            tempo: Some(10),
        },
        miners: neurons
            .iter()
            .map(|n| MinerRecord {
                hotkey: n.hotkey.clone(),
                uid: i32::from(n.uid),
                coldkey: n.hotkey.clone(),
                block_at_registration: 5,
            })
            .collect(),
        model_evals: results
            .iter()
            .map(|m| ModelEvalRecord {
                hotkey: m.hotkey.clone(),
                uid: i32::from(m.uid),
                manifest_sha256: m.manifest_sha256.clone(),
                commit_block: m.commit_block.map(|b| b as i64),
                outcome: m.outcome.code().into(),
                reason: m.reason.clone(),
                mean_loss: m.mean_loss,
                win_rate: (m.outcome == Outcome::Ok).then_some(m.win_rate),
                score: m.score,
                sample_losses: m.losses.clone(),
                sample_tokens: Vec::new(),
                following: m.following.clone(),
            })
            .collect(),
        scores: rows
            .iter()
            .map(|r| ScoreRecord {
                hotkey: r.hotkey.clone(),
                uid: i32::from(r.uid),
                model_score: r.model_score,
                label_score: r.label_score,
                combined: r.combined,
                ema: r.ema,
                weight: r.weight,
            })
            .collect(),
        weights: WeightCommitRecord::pending(
            NETUID,
            u64::try_from(epoch).expect("epoch"),
            uids,
            values,
            1000,
            WeightMode::CommitReveal {
                commit_hash: hash,
                salt: salt.to_vec(),
            },
        ),
    };
    db::save_epoch(pool, &stored).await.expect("save");
}

async fn two_epochs(pool: &PgPool) {
    store_epoch(pool, 1, 0.0, true).await;
    store_epoch(pool, 2, 0.2, true).await;
}

fn alice() -> AccountId {
    validator_key().account_id()
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_epoch_stored_by_the_loop_verifies_including_ema_and_commit_hash(pool: PgPool) {
    two_epochs(&pool).await;
    for epoch in [1, 2] {
        let report = verify_epoch(&pool, NETUID, epoch, &competition(), ALPHA, Some(&alice()))
            .await
            .expect("verify");
        assert!(
            report.is_consistent(),
            "epoch {epoch}: {:?}",
            report.differences
        );
        assert!(report.hash_checked);
        assert_eq!(report.miners, 4);
    }
    // A different EMA factor than the loop's changes EMAs of epoch 2 (warm-started from 1).
    let report = verify_epoch(&pool, NETUID, 2, &competition(), 0.5, None)
        .await
        .expect("verify");
    assert!(
        report.differences.iter().any(|d| d.what.ends_with(" ema")),
        "{report:?}"
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_tampered_loss_or_weight_is_reported(pool: PgPool) {
    two_epochs(&pool).await;
    // uid 1 loses sample 0 by a lot now: it no longer displaces uid 0, so its losses no longer
    // give the stored scores.
    sqlx::query(
        "UPDATE model_evals SET sample_losses[1] = 5.0 WHERE netuid = 1 AND epoch = 2 AND uid = 1",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let report = verify_epoch(&pool, NETUID, 2, &competition(), ALPHA, None)
        .await
        .expect("verify");
    assert!(!report.is_consistent());
    let what: Vec<&str> = report.differences.iter().map(|d| d.what.as_str()).collect();
    assert!(what.contains(&"uid 1 mean_loss"), "{what:?}");
    assert!(what.contains(&"uid 1 model score"), "{what:?}");

    // Epoch 1 untouched, but its committed weights edited.
    sqlx::query(
        "UPDATE weight_commits SET weights[1] = weights[1] - 1 WHERE netuid = 1 AND epoch = 1",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let report = verify_epoch(&pool, NETUID, 1, &competition(), ALPHA, Some(&alice()))
        .await
        .expect("verify");
    let what: Vec<&str> = report.differences.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(what, ["weights values"], "{report:?}");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_base_gate_is_decided_again_from_the_stored_base_losses(pool: PgPool) {
    // A base 5% better than uid 0 (uid 1 is about 10% better than uid 0): uid 0 and its
    // duplicate are not better than the base, uid 1 is.
    let base: Vec<f64> = [1.0, 2.0, 0.5, 1.5, 0.8, 1.2, 0.9, 1.1]
        .iter()
        .map(|l| l * 0.95)
        .collect();
    store_epoch_over(&pool, 1, 0.0, false, Some(base)).await;
    let outcomes: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM model_evals WHERE netuid = 1 AND epoch = 1 ORDER BY uid",
    )
    .fetch_all(&pool)
    .await
    .expect("outcomes");
    assert_eq!(
        outcomes,
        ["not_better_than_base", "ok", "duplicate", "no_commitment"]
    );
    let report = verify_epoch(&pool, NETUID, 1, &competition(), ALPHA, Some(&alice()))
        .await
        .expect("verify");
    assert!(report.is_consistent(), "{:?}", report.differences);

    // Without the base's losses uid 0 would have been scored: verify says so.
    sqlx::query("UPDATE epochs SET base_losses = NULL WHERE netuid = 1 AND epoch = 1")
        .execute(&pool)
        .await
        .expect("tamper");
    let report = verify_epoch(&pool, NETUID, 1, &competition(), ALPHA, None)
        .await
        .expect("verify");
    let what: Vec<&str> = report.differences.iter().map(|d| d.what.as_str()).collect();
    assert!(what.contains(&"uid 0 outcome"), "{what:?}");
    assert!(what.contains(&"uid 0 model score"), "{what:?}");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_epoch_with_label_miners_recomputes_its_label_scores(pool: PgPool) {
    two_epochs(&pool).await;
    // The fixture is what it says: uid 1 (every task right, in both epochs) has a label score;
    // uid 2 (one known answer in three wrong) and uid 3 (always "a") carry no information.
    let stored = db::scores(&pool, 1, 2).await.expect("scores");
    let label = |uid: i32| {
        stored
            .iter()
            .find(|s| s.uid == uid)
            .expect("row")
            .label_score
    };
    assert_eq!(
        (label(0), label(1), label(2), label(3)),
        (0.0, 1.0, 0.0, 0.0),
        "{stored:?}"
    );
    // … the accuracy takes in epoch 1's known answers (6 of 6 right: (6 + 2) / (6 + 4)), and
    // agreement is recorded: uid 3 disagrees with the others' majority.
    let track = db::load_label_track(&pool, 1, 2)
        .await
        .expect("load")
        .expect("stored");
    let c = |uid: u16| {
        track
            .miners
            .iter()
            .find(|m| m.uid == uid)
            .expect("miner")
            .components
    };
    assert!((c(1).accuracy - 0.8).abs() < 1e-12, "{track:?}");
    assert!(c(1).agreed > 0 && c(3).compared > c(3).agreed, "{track:?}");
    let report = verify_epoch(&pool, NETUID, 2, &competition(), ALPHA, Some(&alice()))
        .await
        .expect("verify");
    assert!(report.is_consistent(), "{:?}", report.differences);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_tampered_label_or_known_answer_is_reported_as_a_label_score_difference(pool: PgPool) {
    two_epochs(&pool).await;
    // uid 1's first (known) task: its labels now pick the near-miss.
    let tampered = sqlx::query(
        "UPDATE labels l SET choice = CASE WHEN t.swapped THEN 'a' ELSE 'b' END
         FROM label_tasks t
         WHERE l.netuid = t.netuid AND l.epoch = t.epoch AND l.hotkey = t.hotkey
           AND l.task_id = t.task_id AND t.netuid = 1 AND t.epoch = 2 AND t.task_id = 't1-0'",
    )
    .execute(&pool)
    .await
    .expect("tamper")
    .rows_affected();
    assert_eq!(tampered, 2, "both labelers' labels");
    let report = verify_epoch(&pool, NETUID, 2, &competition(), ALPHA, None)
        .await
        .expect("verify");
    let what: Vec<&str> = report.differences.iter().map(|d| d.what.as_str()).collect();
    for expected in [
        "uid 1 label known_correct",
        "uid 1 label known_wrong",
        "uid 1 label score",
        "uid 1 label_score",
    ] {
        assert!(what.contains(&expected), "{expected}: {what:?}");
    }
    let known_correct = report
        .differences
        .iter()
        .find(|d| d.what == "uid 1 label known_correct")
        .expect("difference");
    assert_eq!(
        (
            known_correct.stored.as_str(),
            known_correct.recomputed.as_str()
        ),
        ("3", "2")
    );
    // Nothing of the model track moved.
    assert!(!what.iter().any(|w| w.contains("model")), "{what:?}");

    // Put it back, then flip which side of uid 1's second known task was correct.
    sqlx::query(
        "UPDATE labels l SET choice = CASE WHEN t.swapped THEN 'b' ELSE 'a' END
         FROM label_tasks t
         WHERE l.netuid = t.netuid AND l.epoch = t.epoch AND l.hotkey = t.hotkey
           AND l.task_id = t.task_id AND t.netuid = 1 AND t.epoch = 2 AND t.task_id = 't1-0'",
    )
    .execute(&pool)
    .await
    .expect("restore");
    let report = verify_epoch(&pool, NETUID, 2, &competition(), ALPHA, None)
        .await
        .expect("verify");
    assert!(report.is_consistent(), "{:?}", report.differences);
    sqlx::query(
        "UPDATE label_tasks SET swapped = NOT swapped
         WHERE netuid = 1 AND epoch = 2 AND task_id = 't1-1'",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let report = verify_epoch(&pool, NETUID, 2, &competition(), ALPHA, None)
        .await
        .expect("verify");
    let what: Vec<&str> = report.differences.iter().map(|d| d.what.as_str()).collect();
    assert!(what.contains(&"uid 1 label known_wrong"), "{what:?}");
    assert!(what.contains(&"uid 1 label_score"), "{what:?}");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_binary_exits_zero_when_consistent_and_one_with_a_diff(pool: PgPool) {
    two_epochs(&pool).await;
    let url = database_url(&pool);
    let verify = |epoch: &str| {
        Command::new(env!("CARGO_BIN_EXE_validator"))
            .args([
                "verify", "--epoch", epoch, "--netuid", "1", "--db.url", &url,
            ])
            .args(["--hotkey", &alice().to_ss58()])
            .output()
            .expect("run validator")
    };
    let ok = verify("2");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("✓ epoch 2 of subnet 1 verifies"),
        "{stdout}"
    );

    sqlx::query("UPDATE scores SET ema = ema + 0.01 WHERE netuid = 1 AND epoch = 2 AND uid = 0")
        .execute(&pool)
        .await
        .expect("tamper");
    let bad = verify("2");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("uid 0 ema: stored"), "{stdout}");

    // A label that is not the one scored shows as label differences of its miner.
    sqlx::query(
        "UPDATE labels l SET choice = CASE WHEN t.swapped THEN 'a' ELSE 'b' END
         FROM label_tasks t
         WHERE l.netuid = t.netuid AND l.epoch = t.epoch AND l.hotkey = t.hotkey
           AND l.task_id = t.task_id AND t.netuid = 1 AND t.epoch = 2 AND t.task_id = 't1-0'",
    )
    .execute(&pool)
    .await
    .expect("tamper");
    let bad = verify("2");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("uid 1 label known_correct: stored 3 ≠ recomputed 2"),
        "{stdout}"
    );
    assert!(stdout.contains("uid 1 label_score: stored"), "{stdout}");

    let missing = verify("9");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("epoch 9 of subnet 1 is not stored"));
}
