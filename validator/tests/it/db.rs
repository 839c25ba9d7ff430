//! The storage layer against a real Postgres (a fresh migrated database per test).

use sqlx::PgPool;
use subnet_common::chain::rpc::H256;
use subnet_validator::db::{
    self, EpochRecord, EpochResults, MinerRecord, ModelEvalRecord, RecordedTx, Saved, ScoreRecord,
    WeightCommitRecord, WeightMode, WeightStatus, WeightUpdate,
};

/// One stored epoch of subnet 1 scoring one miner (uid 3), its weights a commit–reveal row.
pub(crate) fn results(epoch: i64, ema: f64) -> EpochResults {
    let hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty".to_string();
    EpochResults {
        epoch: EpochRecord {
            netuid: 1,
            epoch,
            start_block: epoch * 21,
            block_hash: "ab".repeat(32),
            seed: "cd".repeat(32),
            competition_sha256: "ef".repeat(32),
            scored_block: epoch * 21 + 1,
            duration_ms: 1234,
            base_losses: None,
            tempo: Some(10),
        },
        miners: vec![MinerRecord {
            hotkey: hotkey.clone(),
            uid: 3,
            coldkey: hotkey.clone(),
            block_at_registration: 5,
        }],
        model_evals: vec![ModelEvalRecord {
            hotkey: hotkey.clone(),
            uid: 3,
            manifest_sha256: Some("0f".repeat(32)),
            commit_block: Some(7),
            outcome: "ok".into(),
            reason: String::new(),
            mean_loss: Some(1.5),
            win_rate: Some(0.75),
            score: 0.9,
            sample_losses: vec![1.0, 2.0],
            sample_tokens: vec![3, 4],
            following: vec![0.5, 1.0],
        }],
        scores: vec![ScoreRecord {
            hotkey,
            uid: 3,
            model_score: 0.9,
            label_score: 0.0,
            combined: 0.63,
            ema,
            weight: 1.0,
        }],
        weights: WeightCommitRecord::pending(
            1,
            u64::try_from(epoch).expect("epoch"),
            vec![3],
            vec![65535],
            0,
            WeightMode::CommitReveal {
                commit_hash: [0x12; 32],
                salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
            },
        ),
    }
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_epoch_is_stored_once_and_a_replay_changes_nothing(pool: PgPool) {
    assert_eq!(
        db::save_epoch(&pool, &results(4, 0.1)).await.expect("save"),
        Saved::New
    );
    assert!(db::epoch_stored(&pool, 1, 4).await.expect("query"));
    // A restart replaying the epoch with different numbers stores nothing.
    assert_eq!(
        db::save_epoch(&pool, &results(4, 0.9)).await.expect("save"),
        Saved::AlreadyStored
    );
    let ema = db::latest_ema(&pool, 1).await.expect("ema");
    assert_eq!(ema.values().copied().collect::<Vec<_>>(), vec![0.1]);
    let open = db::open_weight_commits(&pool, 1).await.expect("open");
    assert_eq!(open.len(), 1);
    // The row reads back as it was written, typed.
    assert_eq!(open[0], results(4, 0.1).weights);
    assert_eq!(open[0].status, WeightStatus::Pending);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn warm_start_takes_each_hotkeys_latest_ema(pool: PgPool) {
    db::save_epoch(&pool, &results(4, 0.1)).await.expect("save");
    db::save_epoch(&pool, &results(5, 0.2)).await.expect("save");
    let ema = db::latest_ema(&pool, 1).await.expect("ema");
    assert_eq!(ema.values().copied().collect::<Vec<_>>(), vec![0.2]);
    assert!(db::latest_ema(&pool, 2).await.expect("ema").is_empty());
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn weight_rows_only_move_forward(pool: PgPool) {
    db::save_epoch(&pool, &results(4, 0.1)).await.expect("save");
    let reveal = WeightUpdate::Revealed {
        tx: Some(H256([0xaa; 32])),
        block: 30,
    };
    assert!(
        !db::update_weights(&pool, 1, 4, &reveal)
            .await
            .expect("update"),
        "reveal before commit must not apply"
    );
    let commit = WeightUpdate::Committed {
        tx: RecordedTx::Hash(H256([0xbb; 32])),
        block: 22,
    };
    assert!(
        db::update_weights(&pool, 1, 4, &commit)
            .await
            .expect("update")
    );
    assert!(
        !db::update_weights(&pool, 1, 4, &commit)
            .await
            .expect("update"),
        "a second commit must not apply"
    );
    assert!(
        db::update_weights(&pool, 1, 4, &reveal)
            .await
            .expect("update")
    );
    assert!(
        db::open_weight_commits(&pool, 1)
            .await
            .expect("open")
            .is_empty()
    );
    let row = db::weight_commit(&pool, 1, 4)
        .await
        .expect("row")
        .expect("stored");
    assert_eq!(row.status, WeightStatus::Revealed);
    assert_eq!(row.commit_tx, Some(RecordedTx::Hash(H256([0xbb; 32]))));
    assert_eq!((row.commit_block, row.reveal_block), (Some(22), Some(30)));
    assert_eq!(row.reveal_tx, Some(H256([0xaa; 32])));
    let failed = WeightUpdate::Failed {
        error: "late".into(),
        expired: true,
    };
    assert!(
        !db::update_weights(&pool, 1, 4, &failed)
            .await
            .expect("update"),
        "a revealed row stays revealed"
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_failed_save_leaves_nothing_behind(pool: PgPool) {
    let mut bad = results(6, 0.1);
    bad.weights.epoch = 7; // no such epoch: the foreign key refuses it, after the other inserts
    assert!(db::save_epoch(&pool, &bad).await.is_err());
    assert!(!db::epoch_stored(&pool, 1, 6).await.expect("query"));
    assert_eq!(
        db::save_epoch(&pool, &results(6, 0.1)).await.expect("save"),
        Saved::New
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_weight_row_that_does_not_decode_is_an_error_naming_the_column(pool: PgPool) {
    db::save_epoch(&pool, &results(4, 0.1)).await.expect("save");
    sqlx::query("UPDATE weight_commits SET uids = '{70000}' WHERE epoch = 4")
        .execute(&pool)
        .await
        .expect("update");
    let error = db::open_weight_commits(&pool, 1).await.unwrap_err();
    assert!(error.to_string().contains("uids"), "{error}");
    sqlx::query("UPDATE weight_commits SET uids = '{3}', commit_hash = 'xyz' WHERE epoch = 4")
        .execute(&pool)
        .await
        .expect("update");
    let error = db::weight_commit(&pool, 1, 4).await.unwrap_err();
    assert!(error.to_string().contains("commit_hash"), "{error}");
}

#[test]
fn passwords_are_redacted_from_urls() {
    assert_eq!(
        db::redact("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(db::redact("postgres://u@h/db"), "postgres://u@h/db");
}

/// The label track probes a miner whose last two stored batches both say it labels nothing
/// (404, unreachable, no axon, redirect); a timeout, an empty answer or a success in them, or
/// fewer than two batches, keeps it a full recipient; an epoch it was sent nothing in
/// (`no_tasks`) is skipped.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn hotkeys_labelling_nothing_are_those_whose_recent_batches_all_failed_so(pool: PgPool) {
    use subnet_validator::tracks::labels::batch::MinerBatch;
    use subnet_validator::tracks::labels::collect::LabelOutcome::{self, *};
    use subnet_validator::tracks::labels::{LabelMinerResult, LabelTrackResult};
    // Per hotkey: its outcomes in epochs 1, 2, 3.
    let history: [(&str, [Option<LabelOutcome>; 3]); 7] = [
        (
            "model-only",
            [Some(BadStatus), Some(BadStatus), Some(BadStatus)],
        ),
        ("gone", [Some(Ok), Some(Unreachable), Some(NotServing)]),
        (
            "answered-last",
            [Some(BadStatus), Some(BadStatus), Some(Ok)],
        ),
        ("slow", [Some(BadStatus), Some(Timeout), Some(BadStatus)]),
        ("quiet", [Some(Redirect), Some(NoLabels), Some(NoLabels)]),
        ("new", [None, None, Some(BadStatus)]),
        ("probed", [Some(BadStatus), Some(BadStatus), Some(NoTasks)]),
    ];
    for epoch in 1..=3u64 {
        let miners = history
            .iter()
            .enumerate()
            .filter_map(|(uid, (hotkey, outcomes))| {
                let outcome = outcomes[epoch as usize - 1]?;
                Some(LabelMinerResult {
                    uid: uid as u16,
                    hotkey: (*hotkey).into(),
                    outcome,
                    reason: String::new(),
                    batch: MinerBatch {
                        batch_id: format!("b{epoch}-{uid}"),
                        deadline_block: 300,
                        tasks: Vec::new(),
                    },
                    labels: Vec::new(),
                    dropped_labels: 0,
                    components: Default::default(),
                })
            })
            .collect();
        let track = LabelTrackResult {
            netuid: 1,
            epoch,
            sent_epoch: epoch,
            track_seed: "ef".repeat(32),
            deadline_block: 300,
            params: Default::default(),
            miners,
            history: Default::default(),
        };
        db::save_label_track(&pool, &track).await.expect("save");
    }
    let probed = |epoch| db::hotkeys_labelling_nothing(&pool, 1, epoch, 2);
    let now: Vec<String> = probed(4).await.expect("query").into_iter().collect();
    assert_eq!(
        now,
        ["gone", "model-only", "probed"],
        "no_tasks does not count"
    );
    // Before epoch 3 was stored: "answered-last" had failed twice, "gone" not yet.
    let before: Vec<String> = probed(3).await.expect("query").into_iter().collect();
    assert_eq!(before, ["answered-last", "model-only", "probed"]);
    assert!(
        db::hotkeys_labelling_nothing(&pool, 2, 4, 2)
            .await
            .expect("query")
            .is_empty()
    );
}
