//! The storage layer against a real Postgres (a fresh migrated database per test).

use sqlx::PgPool;
use subnet_validator::db::{
    self, EpochRecord, EpochResults, MinerRecord, ModelEvalRecord, Saved, ScoreRecord,
    WeightCommitRecord, WeightUpdate,
};

fn results(epoch: i64, ema: f64) -> EpochResults {
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
        weights: WeightCommitRecord {
            netuid: 1,
            epoch,
            uids: vec![3],
            weights: vec![65535],
            salt: vec![1, 2, 3, 4, 5, 6, 7, 8],
            version_key: 0,
            mode: "commit_reveal".into(),
            commit_hash: Some("12".repeat(32)),
            status: "pending".into(),
            commit_tx: None,
            commit_block: None,
            reveal_tx: None,
            reveal_block: None,
            error: None,
        },
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
    assert_eq!(open[0].status, "pending");
    assert_eq!(open[0].salt, vec![1, 2, 3, 4, 5, 6, 7, 8]);
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
        tx: "aa".into(),
        block: 30,
    };
    assert!(
        !db::update_weights(&pool, 1, 4, &reveal)
            .await
            .expect("update"),
        "reveal before commit must not apply"
    );
    let commit = WeightUpdate::Committed {
        tx: "bb".into(),
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
    bad.weights.mode = "carrier-pigeon".into(); // violates the CHECK constraint, after the other inserts
    assert!(db::save_epoch(&pool, &bad).await.is_err());
    assert!(!db::epoch_stored(&pool, 1, 6).await.expect("query"));
    assert_eq!(
        db::save_epoch(&pool, &results(6, 0.1)).await.expect("save"),
        Saved::New
    );
}

#[test]
fn passwords_are_redacted_from_urls() {
    assert_eq!(
        db::redact("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(db::redact("postgres://u@h/db"), "postgres://u@h/db");
}
