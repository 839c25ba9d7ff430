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
                // Uid 0 answered two open instructions, keeping all and half of their
                // constraints.
                following: if uid == 0 { vec![1.0, 0.5] } else { Vec::new() },
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
            // The pinned base's losses: a mean of 2.5.
            base_losses: Some(vec![2.25, 2.75]),
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
        tempo: Some(10),
        next_epoch_block: Some(88),
        validator_hotkey: Some("5Validator".into()),
        validator_permit: Some(true),
        emissions_rao: [(hotkey(1), 2_500_000_000)].into_iter().collect(),
        neurons: Vec::new(),
        block_time_ms: None,
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
    assert!(html.contains("2.5 τ"), "{html}");
    // What every model had to beat.
    assert!(html.contains("base model loss 2.5000"), "{html}");
    // Uid 0's open instructions: the mean share of constraints kept.
    assert!(
        html.contains(">follow</th>") && html.contains(">0.750</td>"),
        "{html}"
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn json_endpoints_return_the_stored_values(pool: PgPool) {
    let app = app(&pool).await;

    let (status, board) = get_json(&app, "/api/leaderboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(board["epoch"]["epoch"], 6);
    assert_eq!(board["base_mean_loss"], 2.5);
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
    assert_eq!(rows[1]["following"], 0.75, "the mean of the stored shares");
    assert_eq!(
        rows[0]["following"],
        Value::Null,
        "no open instructions: none"
    );

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
    assert_eq!(history[0]["following"], 0.75);

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
    // Each uid's share of the row, not the u16 values.
    assert!(
        html.contains("uid 0") && html.contains("<b>25.0%</b>"),
        "{html}"
    );
    assert!(
        html.contains("uid 1") && html.contains("<b>75.0%</b>"),
        "{html}"
    );
    assert!(!html.contains("0:21845"), "{html}");
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
    let mut child = Child(
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

    // SIGTERM (a service manager's stop) ends it cleanly.
    let pid = child.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status}");
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
            // The epochs were scored under tempo 10.
            tempo: Some(30),
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
            "tempo_changed",
            "weights_not_set",
            "cache_disk_full"
        ]
    );
    let (_, _, html) = get(&troubled, "/").await;
    assert!(html.contains("role=\"alert\""), "{html}");
    for words in [
        "connection refused",
        "holds no validator permit",
        "tempo changed from 10 to 30 (from epoch 8 on)",
        "the weights of epoch 7 were not set (expired): commit expired",
        "the disk of the artifact cache is full",
    ] {
        assert!(html.contains(words), "{words}: {html}");
    }
}

/// A neuron of the operator fixture.
struct Neuron {
    uid: u16,
    /// Model outcome (`no_commitment` for none), with loss and win rate when `ok`.
    outcome: &'static str,
    reason: &'static str,
    loss: Option<f64>,
    model_score: f64,
    label_score: f64,
    /// Normalized weight (the column sums to 1).
    weight: f64,
    stake_rao: u64,
    emission_rao: u64,
    incentive: u16,
    dividends: u16,
    validator_trust: u16,
    permit: bool,
}

/// An SS58 hotkey of the operator fixture.
pub(crate) fn ss58(uid: u16) -> String {
    subnet_common::keys::Keypair::from_uri(&format!("//Neuron{uid}"))
        .expect("key")
        .account_id()
        .to_ss58()
}

/// The operator fixture's neurons: uid 0 is this validator (lots of stake, dividends), 1–3
/// model miners (3's model fails its hash check), 4 a label miner, 5 a second validator
/// (permit and stake, nothing else), 6 registered and idle (a permit, as every uid of a small
/// subnet has, but no stake).
fn neurons() -> Vec<Neuron> {
    let n = |uid, outcome, loss: Option<f64>, model_score, label_score, weight| Neuron {
        uid,
        outcome,
        reason: "",
        loss,
        model_score,
        label_score,
        weight,
        stake_rao: 0,
        emission_rao: 0,
        incentive: 0,
        dividends: 0,
        validator_trust: 0,
        permit: true,
    };
    vec![
        Neuron {
            stake_rao: 1_200_500_000_000,
            emission_rao: 250_000_000,
            dividends: 65535,
            validator_trust: 62_258,
            ..n(0, "no_commitment", None, 0.0, 0.0, 0.0)
        },
        Neuron {
            emission_rao: 1_500_000_000,
            incentive: 32_768,
            ..n(1, "ok", Some(1.42), 0.62, 0.0, 0.5)
        },
        Neuron {
            emission_rao: 900_000_000,
            incentive: 19_661,
            ..n(2, "ok", Some(1.57), 0.38, 0.0, 0.3)
        },
        Neuron {
            reason: "served file model.safetensors hashes to 9f3c…, committed 41aa…",
            ..n(3, "hash_mismatch", None, 0.0, 0.0, 0.0)
        },
        Neuron {
            emission_rao: 600_000_000,
            incentive: 13_107,
            ..n(4, "no_commitment", None, 0.0, 1.0, 0.2)
        },
        Neuron {
            stake_rao: 250_000_000_000,
            ..n(5, "no_commitment", None, 0.0, 0.0, 0.0)
        },
        n(6, "no_commitment", None, 0.0, 0.0, 0.0),
    ]
}

/// Epoch `epoch` of the operator fixture, its weights as the validator computed them.
fn operator_epoch(epoch: i64) -> EpochResults {
    let netuid = i32::from(NETUID);
    let neurons = neurons();
    let mut uids = Vec::new();
    let mut weights = Vec::new();
    let max = neurons.iter().map(|n| n.weight).fold(0.0, f64::max);
    for n in neurons.iter().filter(|n| n.weight > 0.0) {
        uids.push(n.uid);
        weights.push((n.weight / max * 65535.0).round() as u16);
    }
    EpochResults {
        epoch: EpochRecord {
            netuid,
            epoch,
            start_block: epoch * 11 - 3,
            block_hash: "ab".repeat(32),
            seed: "cd".repeat(32),
            competition_sha256: "ef".repeat(32),
            scored_block: epoch * 11,
            duration_ms: 4_200,
            base_losses: None,
            tempo: Some(10),
        },
        miners: neurons
            .iter()
            .map(|n| MinerRecord {
                hotkey: ss58(n.uid),
                uid: i32::from(n.uid),
                coldkey: ss58(100 + n.uid),
                block_at_registration: 2 + i64::from(n.uid),
            })
            .collect(),
        model_evals: neurons
            .iter()
            .map(|n| ModelEvalRecord {
                hotkey: ss58(n.uid),
                uid: i32::from(n.uid),
                manifest_sha256: n.loss.map(|_| format!("{:02}", n.uid).repeat(32)),
                commit_block: n.loss.map(|_| 40),
                outcome: n.outcome.into(),
                reason: if n.outcome == "no_commitment" {
                    "no commitment on chain".into()
                } else {
                    n.reason.into()
                },
                mean_loss: n.loss,
                win_rate: n.loss.map(|_| n.model_score),
                score: n.model_score,
                sample_losses: n.loss.map(|l| vec![l, l]).unwrap_or_default(),
                sample_tokens: n.loss.map(|_| vec![4, 4]).unwrap_or_default(),
                following: Vec::new(),
            })
            .collect(),
        scores: neurons
            .iter()
            .map(|n| ScoreRecord {
                hotkey: ss58(n.uid),
                uid: i32::from(n.uid),
                model_score: n.model_score,
                label_score: n.label_score,
                combined: 0.8 * n.model_score + 0.2 * n.label_score,
                ema: n.weight,
                weight: n.weight,
            })
            .collect(),
        weights: WeightCommitRecord::pending(
            NETUID,
            u64::try_from(epoch).expect("epoch"),
            uids,
            weights,
            0,
            WeightMode::CommitReveal {
                commit_hash: [u8::try_from(epoch).expect("epoch"); 32],
                salt: vec![9; 8],
            },
        ),
    }
}

/// The label track of `epoch`: uid 4 labels, the model miners answer 404, the second
/// validator publishes no axon, the idle neuron answers 404.
async fn operator_labels(pool: &PgPool, epoch: u64) {
    use subnet_validator::tracks::labels::batch::MinerBatch;
    use subnet_validator::tracks::labels::collect::LabelOutcome;
    use subnet_validator::tracks::labels::score::Components;
    use subnet_validator::tracks::labels::{LabelMinerResult, LabelTrackResult};
    let result = |uid: u16, outcome, reason: &str, accuracy| LabelMinerResult {
        uid,
        hotkey: ss58(uid),
        outcome,
        reason: reason.into(),
        batch: MinerBatch {
            batch_id: format!("e{epoch}-{uid}"),
            deadline_block: 130,
            tasks: Vec::new(),
        },
        labels: Vec::new(),
        dropped_labels: 0,
        components: Components {
            accuracy,
            ..Components::default()
        },
    };
    let not_found = "HTTP 404 Not Found from the miner";
    let labels = LabelTrackResult {
        netuid: NETUID,
        epoch,
        sent_epoch: epoch,
        track_seed: "ab".repeat(32),
        deadline_block: 130,
        params: Default::default(),
        miners: vec![
            result(1, LabelOutcome::BadStatus, not_found, 0.0),
            result(2, LabelOutcome::BadStatus, not_found, 0.0),
            result(3, LabelOutcome::BadStatus, not_found, 0.0),
            result(4, LabelOutcome::Ok, "", 0.91),
            result(5, LabelOutcome::NotServing, "no axon on chain", 0.0),
            result(6, LabelOutcome::BadStatus, not_found, 0.0),
        ],
        history: Default::default(),
    };
    db::save_label_track(pool, &labels)
        .await
        .expect("save labels");
}

/// The head of the operator fixture, 12 s blocks.
const OPERATOR_HEAD: u64 = 150;

/// Stores epochs 10 and 11 of a subnet of seven neurons (see [`neurons`]) with their label
/// tracks; epoch 10's weights were committed at block 112 and revealed at 123, epoch 11's
/// committed at 125. Returns [`operator_status`].
pub(crate) async fn operator_fixture(pool: &PgPool) -> ChainStatus {
    for epoch in [10, 11] {
        db::save_epoch(pool, &operator_epoch(epoch))
            .await
            .expect("save epoch");
        operator_labels(pool, u64::try_from(epoch).expect("epoch")).await;
    }
    let netuid = i32::from(NETUID);
    let tx = |b: u8| db::RecordedTx::Hash(subnet_common::chain::rpc::H256([b; 32]));
    for (epoch, update) in [
        (
            10,
            db::WeightUpdate::Committed {
                tx: tx(1),
                block: 112,
            },
        ),
        (
            10,
            db::WeightUpdate::Revealed {
                tx: tx(2).hash(),
                block: 123,
            },
        ),
        (
            11,
            db::WeightUpdate::Committed {
                tx: tx(3),
                block: 125,
            },
        ),
    ] {
        assert!(
            db::update_weights(pool, netuid, epoch, &update)
                .await
                .expect("update weights"),
            "{update:?}"
        );
    }
    operator_status()
}

/// The chain as the operator fixture's validator (uid 0) sees it at block 150: epoch 12 on
/// chain, the head read 2 s ago, 12 s blocks.
pub(crate) fn operator_status() -> ChainStatus {
    let neurons: Vec<web::NeuronStatus> = neurons()
        .iter()
        .map(|n| web::NeuronStatus {
            uid: n.uid,
            hotkey: ss58(n.uid),
            coldkey: ss58(100 + n.uid),
            stake_rao: n.stake_rao,
            emission_rao: n.emission_rao,
            incentive: n.incentive,
            dividends: n.dividends,
            trust: 0,
            consensus: n.incentive,
            validator_trust: n.validator_trust,
            validator_permit: n.permit,
            serving: matches!(n.uid, 1..=4),
        })
        .collect();
    ChainStatus {
        netuid: NETUID,
        connected: true,
        head: OPERATOR_HEAD,
        head_hash: Some(format!("0x{}", "5a".repeat(32))),
        head_timestamp_ms: web::now_ms() - 2_000,
        head_lag_secs: 2.0,
        last_epoch: Some(11),
        chain_epoch: Some(12),
        tempo: Some(10),
        next_epoch_block: Some(163),
        validator_hotkey: Some(ss58(0)),
        validator_permit: Some(true),
        emissions_rao: neurons
            .iter()
            .map(|n| (n.hotkey.clone(), n.emission_rao))
            .collect(),
        neurons,
        block_time_ms: Some(12_000),
        updated_at_ms: web::now_ms() - 1_000,
        error: None,
    }
}

/// The router over `pool` with the operator fixture stored.
pub(crate) async fn operator_app(pool: &PgPool) -> axum::Router {
    let status = operator_fixture(pool).await;
    app_with(pool, status)
}

/// Every page opens with the operator's header: the chain's epoch next to the last scored
/// one, when weights were last committed and revealed (block, blocks and time ago), the permit;
/// `/api/status` is its JSON.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn every_page_opens_with_epochs_last_weights_and_permit(pool: PgPool) {
    let app = operator_app(&pool).await;
    for path in ["/", "/weights", "/chain", &format!("/miner/{}", ss58(1))] {
        let (status, _, html) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("id=\"status\""), "{path}: {html}");
        assert!(
            html.contains("12 / 11"),
            "{path}: chain / scored epoch: {html}"
        );
        assert!(html.contains("next epoch at block 163"), "{path}: {html}");
        // Committed at 125 and revealed at 123, head 150, 12 s blocks, head read 2 s ago.
        assert!(html.contains("block 125"), "{path}: {html}");
        assert!(html.contains("25 blocks ago · 5 min ago"), "{path}: {html}");
        assert!(html.contains("epoch 11 · committed"), "{path}");
        assert!(html.contains("block 123"), "{path}: {html}");
        assert!(html.contains("27 blocks ago · 5 min ago"), "{path}: {html}");
        assert!(html.contains("epoch 10 · revealed"), "{path}");
        assert!(
            html.contains("(commit_reveal)"),
            "the mode in the box's title: {path}"
        );
        assert!(html.contains("permit held"), "{path}: {html}");
        assert!(html.contains("12.0 s/block"), "{path}: {html}");
        assert!(!html.contains("role=\"alert\""), "{path}: nothing is wrong");
    }

    let (status, header) = get_json(&app, "/api/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header["chain_epoch"], 12);
    assert_eq!(header["last_epoch"], 11);
    assert_eq!(header["head"], OPERATOR_HEAD);
    assert_eq!(header["permit"], "yes");
    assert_eq!(header["validator_hotkey"], ss58(0));
    assert_eq!(header["last_commit"]["block"], 125);
    assert_eq!(header["last_commit"]["epoch"], 11);
    assert_eq!(header["last_commit"]["status"], "committed");
    assert_eq!(header["last_commit"]["blocks_ago"], 25);
    let secs = header["last_commit"]["secs_ago"]
        .as_i64()
        .expect("secs_ago");
    assert!((302..310).contains(&secs), "{header}");
    assert_eq!(header["last_reveal"]["block"], 123);
    assert_eq!(header["last_reveal"]["status"], "revealed");
    assert_eq!(header["alerts"], serde_json::json!([]));

    // The alerts sit in the header of every page, not only the leaderboard's.
    let troubled = app_with(
        &pool,
        ChainStatus {
            validator_permit: Some(false),
            ..operator_status()
        },
    );
    for path in ["/", "/weights", "/chain"] {
        let (_, _, html) = get(&troubled, path).await;
        assert!(html.contains("role=\"alert\""), "{path}: {html}");
        assert!(html.contains("holds no validator permit"), "{path}");
        assert!(html.contains("no permit"), "{path}");
    }
}

/// The leaderboard says what each neuron is (validators and label miners are not failures),
/// shows stake and emission in τ, the consensus fractions and weights in percent, and keeps
/// red for real problems; the JSON carries the same.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_leaderboard_shows_roles_stake_and_percentages(pool: PgPool) {
    let app = operator_app(&pool).await;
    let (_, board) = get_json(&app, "/api/leaderboard").await;
    let rows = board["rows"].as_array().expect("rows");
    let row = |uid: u16| {
        rows.iter()
            .find(|r| r["uid"] == uid)
            .unwrap_or_else(|| panic!("no uid {uid}: {board}"))
    };
    let roles: Vec<(u16, &str)> = (0..7)
        .map(|uid| (uid, row(uid)["role"].as_str().expect("role")))
        .collect();
    assert_eq!(
        roles,
        [
            (0, "validator"),
            (1, "model_miner"),
            (2, "model_miner"),
            (3, "model_miner"),
            (4, "label_miner"),
            (5, "validator"),
            (6, "idle"),
        ]
    );
    assert_eq!(row(1)["weight"], 0.5);
    assert_eq!(row(1)["weight_percent"], 50.0);
    assert_eq!(row(0)["chain"]["stake_rao"], 1_200_500_000_000u64);
    assert_eq!(row(0)["chain"]["dividends_percent"], 100.0);
    assert_eq!(
        row(1)["chain"]["incentive_percent"],
        32_768.0 * 100.0 / 65_535.0
    );
    assert_eq!(row(1)["last_emission_rao"], 1_500_000_000u64);

    let (_, _, html) = get(&app, "/").await;
    let tr = |uid: u16| -> &str {
        let start = html
            .find(&format!("<tr data-uid=\"{uid}\""))
            .unwrap_or_else(|| panic!("no row for uid {uid}: {html}"));
        let end = start + html[start..].find("</tr>").expect("row end");
        &html[start..end]
    };
    assert!(
        tr(0).contains(">validator<") && tr(0).contains("1200.5 τ"),
        "{}",
        tr(0)
    );
    assert!(
        tr(0).contains("100.0%") && tr(0).contains("95.0%"),
        "dividends, vtrust: {}",
        tr(0)
    );
    assert!(
        tr(5).contains(">validator<") && tr(5).contains("250 τ"),
        "{}",
        tr(5)
    );
    assert!(
        tr(4).contains(">label miner<") && tr(4).contains("0.910"),
        "{}",
        tr(4)
    );
    assert!(tr(1).contains(">model miner<"), "{}", tr(1));
    assert!(
        tr(1).contains("50.0%") && tr(1).contains("1.5 τ"),
        "weight, emission: {}",
        tr(1)
    );
    assert!(tr(6).contains(">idle<"), "{}", tr(6));
    for uid in [0, 4, 5, 6] {
        let line = tr(uid);
        assert!(!line.contains("no_commitment"), "uid {uid}: {line}");
        assert!(line.contains("no model"), "uid {uid}: {line}");
        assert!(
            !line.contains("class=\"bad\""),
            "uid {uid} has no problem: {line}"
        );
    }
    // A model miner's 404 from the label routes only says it does not label.
    assert!(!tr(1).contains("class=\"bad\""), "{}", tr(1));
    // A served file that does not match the commitment is a problem.
    assert!(
        tr(3).contains("<span class=\"bad\">hash_mismatch</span>"),
        "{}",
        tr(3)
    );
    assert!(
        html.contains(
            "<th class=\"num c2\" title=\"stake on the hotkey in this subnet\">stake</th>"
        )
    );

    // Weights: each uid's share with its hotkey; the JSON keeps the u16 values and adds shares.
    let (_, _, html) = get(&app, "/weights").await;
    for (uid, share) in [(1, "50.0%"), (2, "30.0%"), (4, "20.0%")] {
        let hotkey = ss58(uid);
        let short = format!("{}…{}", &hotkey[..6], &hotkey[hotkey.len() - 4..]);
        assert!(
            html.contains(&format!(
                "uid {uid} <span class=\"mono muted\">{short}</span> <b>{share}</b>"
            )),
            "uid {uid} {share}: {html}"
        );
    }
    let (_, weights) = get_json(&app, "/api/weights").await;
    let newest = &weights["commits"][0];
    assert_eq!(newest["epoch"], 11);
    assert_eq!(newest["weights"], serde_json::json!([65535, 39321, 26214]));
    let shares = newest["shares"].as_array().expect("shares");
    assert_eq!(shares.len(), 3);
    assert_eq!(shares[0]["uid"], 1);
    assert_eq!(shares[0]["hotkey"], ss58(1));
    assert_eq!(shares[0]["weight"], 65535);
    let percents: Vec<f64> = shares
        .iter()
        .map(|s| s["percent"].as_f64().expect("percent"))
        .collect();
    assert!(
        (percents.iter().sum::<f64>() - 100.0).abs() < 1e-9,
        "{percents:?}"
    );
    assert!((percents[1] - 30.0).abs() < 1e-3, "{percents:?}");

    // The chain page lists the metagraph with stake in τ and fractions in percent.
    let (_, _, html) = get(&app, "/chain").await;
    assert!(
        html.contains("id=\"neurons\"") && html.contains("this validator"),
        "{html}"
    );
    assert!(
        html.contains("1200.5 τ") && html.contains("50.0%"),
        "{html}"
    );
    let (_, chain) = get_json(&app, "/api/chain").await;
    assert_eq!(chain["neurons"][1]["incentive"], 32_768);
    assert_eq!(chain["block_time_ms"], 12_000);
}
