//! The dashboard's routes against a real Postgres filled with stored epochs
//! (`tower::ServiceExt::oneshot`, no socket).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::PgPool;
use subnet_validator::db::{
    self, EpochRecord, EpochResults, MinerRecord, ModelEvalRecord, ScoreRecord, WeightCommitRecord,
    WeightMode,
};
use subnet_validator::web::{self, ChainStatus, DashboardState};
use tokio::sync::watch;
use tower::ServiceExt;

const NETUID: u16 = 2;
/// The model's reason of uid 2: must reach the page escaped.
const HOSTILE: &str = "<script>alert('pwned')</script>";

fn hotkey(uid: i32) -> String {
    format!("5HotkeyOfUid{uid:02}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
}

/// One epoch of three miners: uid 1 best, uid 0 second, uid 2 failed with a hostile reason.
fn epoch_results(epoch: i64, shift: f64) -> EpochResults {
    let netuid = i32::from(NETUID);
    let miner = |uid: i32, loss: Option<f64>, score: f64, ema: f64, weight: f64| {
        let failed = loss.is_none();
        (
            MinerRecord {
                hotkey: hotkey(uid),
                uid,
                coldkey: format!("5Cold{uid}"),
                block_at_registration: 3,
            },
            ModelEvalRecord {
                hotkey: hotkey(uid),
                uid,
                manifest_sha256: Some(format!("{uid:02}").repeat(32)),
                commit_block: Some(10),
                outcome: if failed { "bad_model" } else { "ok" }.into(),
                reason: if failed {
                    HOSTILE.into()
                } else {
                    String::new()
                },
                mean_loss: loss,
                win_rate: (!failed).then_some(score),
                score,
                sample_losses: loss.map(|l| vec![l, l]).unwrap_or_default(),
                sample_tokens: if failed { vec![] } else { vec![4, 4] },
            },
            ScoreRecord {
                hotkey: hotkey(uid),
                uid,
                model_score: score,
                label_score: 0.0,
                combined: 0.7 * score,
                ema,
                weight,
            },
        )
    };
    let rows = [
        miner(0, Some(2.0 + shift), 0.3, 0.2, 0.25),
        miner(1, Some(1.5 + shift), 0.7, 0.6, 0.75),
        miner(2, None, 0.0, 0.0, 0.0),
    ];
    EpochResults {
        epoch: EpochRecord {
            netuid,
            epoch,
            start_block: epoch * 11,
            block_hash: "ab".repeat(32),
            seed: "cd".repeat(32),
            competition_sha256: "ef".repeat(32),
            scored_block: epoch * 11 + 1,
            duration_ms: 900,
            base_losses: None,
            tempo: Some(10),
        },
        miners: rows.iter().map(|r| r.0.clone()).collect(),
        model_evals: rows.iter().map(|r| r.1.clone()).collect(),
        scores: rows.iter().map(|r| r.2.clone()).collect(),
        weights: WeightCommitRecord::pending(
            NETUID,
            u64::try_from(epoch).expect("epoch"),
            vec![0, 1],
            vec![21845, 65535],
            0,
            WeightMode::CommitReveal {
                commit_hash: [u8::try_from(epoch).expect("epoch"); 32],
                salt: vec![9; 8],
            },
        ),
    }
}

async fn app(pool: &PgPool) -> axum::Router {
    for epoch in [5, 6] {
        db::save_epoch(pool, &epoch_results(epoch, -0.1 * (epoch as f64 - 5.0)))
            .await
            .expect("save");
    }
    db::update_weights(
        pool,
        i32::from(NETUID),
        5,
        &db::WeightUpdate::Committed {
            tx: db::RecordedTx::Hash(subnet_common::chain::rpc::H256([0xfe; 32])),
            block: 57,
        },
    )
    .await
    .expect("update");
    empty_app(pool)
}

fn empty_app(pool: &PgPool) -> axum::Router {
    app_with(pool, chain_status())
}

/// The chain as a healthy validator with a permit sees it.
fn chain_status() -> ChainStatus {
    ChainStatus {
        netuid: NETUID,
        connected: true,
        head: 77,
        head_hash: Some("0x77".into()),
        head_timestamp_ms: 1,
        head_lag_secs: 1.5,
        last_epoch: Some(6),
        chain_epoch: Some(7),
        next_epoch_block: Some(88),
        validator_hotkey: Some("5Validator".into()),
        validator_permit: Some(true),
        emissions_rao: [(hotkey(1), 2_500_000_000)].into_iter().collect(),
        updated_at_ms: 2,
        error: None,
    }
}

/// The dashboard over `pool`, the chain read as `status`.
fn app_with(pool: &PgPool, status: ChainStatus) -> axum::Router {
    let (_tx, rx) = watch::channel(status);
    web::router(DashboardState {
        pool: pool.clone(),
        netuid: NETUID,
        chain: rx,
        metrics: Some(subnet_validator::metrics::install().expect("metrics")),
    })
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, String, String) {
    let response = app
        .clone()
        .oneshot(Request::get(path).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

async fn get_json(app: &axum::Router, path: &str) -> (StatusCode, Value) {
    let (status, content_type, body) = get(app, path).await;
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {content_type}"
    );
    (status, serde_json::from_str(&body).expect("json"))
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn leaderboard_lists_the_latest_epoch_in_rank_order_and_escapes_stored_text(pool: PgPool) {
    let app = app(&pool).await;
    let (status, content_type, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(html.contains("epoch 6"), "{html}");
    let positions: Vec<usize> = [1, 0, 2]
        .iter()
        .map(|uid| {
            html.find(&format!("title=\"{}\"", hotkey(*uid)))
                .expect("row")
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "rank order: {positions:?}"
    );
    assert!(!html.contains(HOSTILE), "the reason must be escaped");
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    // Uid 1's emission from the chain status, in TAO.
    assert!(html.contains("2.500000000 τ"), "{html}");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn json_endpoints_return_the_stored_values(pool: PgPool) {
    let app = app(&pool).await;

    let (status, board) = get_json(&app, "/api/leaderboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(board["epoch"]["epoch"], 6);
    let rows = board["rows"].as_array().expect("rows");
    let uids: Vec<i64> = rows
        .iter()
        .map(|r| r["uid"].as_i64().expect("uid"))
        .collect();
    assert_eq!(uids, [1, 0, 2]);
    assert_eq!(rows[0]["rank"], 1);
    assert_eq!(rows[0]["ema"], 0.6);
    assert_eq!(rows[0]["weight"], 0.75);
    assert_eq!(rows[0]["mean_loss"], 1.4);
    assert_eq!(rows[0]["last_emission_rao"], 2_500_000_000u64);
    assert_eq!(rows[2]["outcome"], "bad_model");
    assert_eq!(rows[2]["reason"], HOSTILE);
    assert_eq!(rows[2]["mean_loss"], Value::Null);

    let (_, weights) = get_json(&app, "/api/weights").await;
    let commits = weights["commits"].as_array().expect("commits");
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[0]["epoch"], 6);
    assert_eq!(commits[0]["status"], "pending");
    assert_eq!(commits[1]["status"], "committed");
    assert_eq!(commits[1]["commit_block"], 57);
    assert_eq!(commits[1]["weights"], serde_json::json!([21845, 65535]));

    let (_, epochs) = get_json(&app, "/api/epochs").await;
    let numbers: Vec<i64> = epochs["epochs"]
        .as_array()
        .expect("epochs")
        .iter()
        .map(|e| e["epoch"].as_i64().expect("epoch"))
        .collect();
    assert_eq!(numbers, [6, 5]);

    let (status, miner) = get_json(&app, &format!("/api/miners/{}", hotkey(0))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(miner["miner"]["coldkey"], "5Cold0");
    let history = miner["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0]["epoch"].clone(), history[1]["epoch"].clone()),
        (5.into(), 6.into())
    );
    assert_eq!(history[0]["mean_loss"], 2.0);

    let (_, chain) = get_json(&app, "/api/chain").await;
    assert_eq!(chain["head"], 77);
    assert_eq!(chain["next_epoch_block"], 88);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn miner_page_draws_svg_charts_and_unknown_things_are_404(pool: PgPool) {
    let app = app(&pool).await;
    let (status, _, html) = get(&app, &format!("/miner/{}", hotkey(1))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("<svg").count(), 3, "{html}");
    assert!(html.contains("5Cold1"));

    let (status, content_type, html) = get(&app, "/miner/5Nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("text/html"));
    assert!(html.contains("5Nobody"));

    let (status, body) = get_json(&app, "/api/miners/5Nobody").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");

    let (status, body) = get_json(&app, "/api/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");

    let (status, content_type, _) = get(&app, "/no-such-page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("text/html"));
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn weights_chain_metrics_and_health_render(pool: PgPool) {
    let app = app(&pool).await;
    let (status, _, html) = get(&app, "/weights").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("committed") && html.contains("pending"),
        "{html}"
    );
    assert!(html.contains("0:21845 1:65535"), "{html}");
    assert!(html.contains(&"06".repeat(32)), "full hash in the title");

    let (status, _, html) = get(&app, "/chain").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("5Validator") && html.contains("88"));

    subnet_validator::metrics::record_weight_commit("committed");
    let (status, content_type, text) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"));
    assert!(text.contains("validator_weight_commits_total"), "{text}");

    let (status, health) = get_json(&app, "/health").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_empty_database_shows_an_empty_leaderboard(pool: PgPool) {
    let app = empty_app(&pool);
    let (status, _, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("No epoch has been scored yet"), "{html}");
    let (_, board) = get_json(&app, "/api/leaderboard").await;
    assert_eq!(board["epoch"], Value::Null);
    assert_eq!(board["rows"], serde_json::json!([]));
}

/// Kills the child when the test ends, pass or fail.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_dashboard_command_serves_the_stored_epochs(pool: PgPool) {
    for epoch in [5, 6] {
        db::save_epoch(&pool, &epoch_results(epoch, 0.0))
            .await
            .expect("save");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_validator"))
            .args(["dashboard", "--netuid", "2", "--db.url"])
            .arg(crate::pg::database_url(&pool))
            .args(["--http.port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn validator dashboard"),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut health = None;
    for _ in 0..100 {
        if let Ok(r) = client.get(format!("{base}/health")).send().await {
            health = Some(r.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        health,
        Some(reqwest::StatusCode::OK),
        "dashboard did not start"
    );
    let board: Value = client
        .get(format!("{base}/api/leaderboard"))
        .send()
        .await
        .expect("leaderboard")
        .json()
        .await
        .expect("json");
    assert_eq!(board["epoch"]["epoch"], 6);
    assert_eq!(board["rows"].as_array().map(Vec::len), Some(3));
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), reqwest::StatusCode::OK);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_leaderboard_shows_each_label_miners_estimated_accuracy_and_outcome(pool: PgPool) {
    use subnet_validator::tracks::labels::batch::MinerBatch;
    use subnet_validator::tracks::labels::collect::LabelOutcome;
    use subnet_validator::tracks::labels::score::Components;
    use subnet_validator::tracks::labels::{LabelMinerResult, LabelTrackResult};
    let app = app(&pool).await;
    let labels = LabelTrackResult {
        netuid: NETUID,
        epoch: 6,
        sent_epoch: 6,
        track_seed: "ab".repeat(32),
        deadline_block: 70,
        params: Default::default(),
        miners: vec![
            LabelMinerResult {
                uid: 0,
                hotkey: hotkey(0),
                outcome: LabelOutcome::Ok,
                reason: String::new(),
                batch: MinerBatch {
                    batch_id: "e6-0".into(),
                    deadline_block: 70,
                    tasks: Vec::new(),
                },
                labels: Vec::new(),
                dropped_labels: 0,
                components: Components {
                    accuracy: 0.86,
                    ..Components::default()
                },
            },
            LabelMinerResult {
                uid: 2,
                hotkey: hotkey(2),
                outcome: LabelOutcome::BadStatus,
                reason: "HTTP 404 from the miner".into(),
                batch: MinerBatch {
                    batch_id: "e6-2".into(),
                    deadline_block: 70,
                    tasks: Vec::new(),
                },
                labels: Vec::new(),
                dropped_labels: 0,
                components: Components::default(),
            },
        ],
        history: Default::default(),
    };
    db::save_label_track(&pool, &labels).await.expect("save");

    let (_, board) = get_json(&app, "/api/leaderboard").await;
    let rows = board["rows"].as_array().expect("rows");
    let accuracy =
        |uid: i64| rows.iter().find(|r| r["uid"] == uid).expect("row")["label_accuracy"].clone();
    assert_eq!(accuracy(0), 0.86);
    assert_eq!(accuracy(1), Value::Null, "no label batch");
    let field =
        |uid: i64, name: &str| rows.iter().find(|r| r["uid"] == uid).expect("row")[name].clone();
    assert_eq!(field(0, "label_outcome"), "ok");
    assert_eq!(field(2, "label_outcome"), "bad_status");
    assert_eq!(field(2, "label_reason"), "HTTP 404 from the miner");
    assert_eq!(field(1, "label_outcome"), Value::Null);
    let (status, _, html) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("label accuracy") && html.contains("0.860"),
        "{html}"
    );
    assert!(
        html.contains("label outcome") && html.contains("HTTP 404 from the miner"),
        "{html}"
    );
}

/// The `code` of each alert of a `/health` answer, in order.
fn alert_codes(health: &Value) -> Vec<&str> {
    health["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["code"].as_str().expect("code"))
        .collect()
}

/// Records that the chain refused (or expired) the weights of `epoch`.
async fn refuse_weights(pool: &PgPool, epoch: i64, error: &str, expired: bool) {
    let update = db::WeightUpdate::Failed {
        error: error.into(),
        expired,
    };
    db::update_weights(pool, i32::from(NETUID), epoch, &update)
        .await
        .expect("update");
}

/// `/health` and the leaderboard name what needs the operator — the chain refused the latest
/// weights, the cache disk is full, no permit, the chain unreachable — with what to do, and
/// say `ok` again once the cause is gone.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn health_and_the_leaderboard_name_what_needs_the_operator(pool: PgPool) {
    let app = app(&pool).await;
    let (_, health) = get_json(&app, "/health").await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["alerts"], serde_json::json!([]));
    let (_, _, html) = get(&app, "/").await;
    assert!(
        !html.contains("role=\"alert\""),
        "no banner when all is well"
    );

    // The chain refuses epoch 6's weights; epoch 7 scores a model 0 on a full disk.
    refuse_weights(&pool, 6, "reveal too early", false).await;
    let mut seventh = epoch_results(7, 0.0);
    seventh.model_evals[0].outcome = "internal_error".into();
    seventh.model_evals[0].reason =
        "caching the artifact: No space left on device (os error 28)".into();
    db::save_epoch(&pool, &seventh).await.expect("save");
    let (_, health) = get_json(&app, "/health").await;
    assert_eq!(health["status"], "warn");
    let codes = alert_codes(&health);
    assert_eq!(
        codes,
        ["cache_disk_full"],
        "epoch 7's weights are pending: {health}"
    );
    assert!(
        health["alerts"][0]["hint"]
            .as_str()
            .is_some_and(|h| h.contains("--cache.dir")),
        "{health}"
    );

    // Epoch 7's weights fail too; the chain is down and the hotkey lost its permit.
    refuse_weights(&pool, 7, "commit expired", true).await;
    let troubled = app_with(
        &pool,
        ChainStatus {
            connected: false,
            error: Some("connection refused".into()),
            validator_permit: Some(false),
            chain_epoch: Some(4),
            ..chain_status()
        },
    );
    let (status, health) = get_json(&troubled, "/health").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "alive, so a liveness probe keeps it"
    );
    let codes = alert_codes(&health);
    assert_eq!(
        codes,
        [
            "chain_unreachable",
            "no_permit",
            "epoch_index_behind",
            "weights_not_set",
            "cache_disk_full"
        ]
    );
    let (_, _, html) = get(&troubled, "/").await;
    assert!(html.contains("role=\"alert\""), "{html}");
    for words in [
        "connection refused",
        "holds no validator permit",
        "the chain is in epoch 4, behind epoch 6 already scored",
        "the weights of epoch 7 were not set (expired): commit expired",
        "the disk of the artifact cache is full",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
}
