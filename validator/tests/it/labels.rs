//! The label track over real HTTP with btauth/1: tiny axum label miners (honest, lying,
//! always-"a", garbage, slow, silent) built in the test, the track sending batches and collecting
//! labels, then storage in Postgres, recomputation and the preference export.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use sqlx::PgPool;
use subnet_common::btauth::{
    self, Caller, Forbidden, Guard, SignedClient, VerifiedCaller, Verifier,
};
use subnet_common::keys::{AccountId, Keypair};
use subnet_common::protocol::{
    Choice, Label, LabelsRequest, LabelsResponse, RlhfTask, RlhfTaskBatch,
};
use subnet_validator::db::{self, Saved};
use subnet_validator::export::{self, Preference};
use subnet_validator::tracks::labels::batch::AnswerSource;
use subnet_validator::tracks::labels::collect::{ExchangeLimits, LabelOutcome};
use subnet_validator::tracks::labels::prompts::PromptPool;
use subnet_validator::tracks::labels::score::KnownHistory;
use subnet_validator::tracks::labels::{
    LabelEpochInput, LabelMiner, LabelSettings, LabelTrack, LabelTrackResult, rescore,
};

/// How a test miner labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Picks the real answer of a known pair, A on open pairs (two labelers agreeing).
    Honest,
    /// Picks the other answer.
    Liar,
    /// Always "a".
    AlwaysA,
    /// Answers the labels request with something that is not JSON.
    Garbage,
    /// Takes longer than the validator waits for labels.
    Slow,
    /// Accepts tasks, answers with an empty label list.
    Silent,
}

#[derive(Clone)]
struct MinerState {
    behaviour: Behaviour,
    batches: Arc<Mutex<BTreeMap<String, RlhfTaskBatch>>>,
    callers: Arc<Mutex<Vec<AccountId>>>,
}

fn validator_key() -> Keypair {
    Keypair::from_uri("//Alice").expect("dev key")
}

/// The side that is one of the answer source's answers to the prompt, when only one is: what a
/// person who sees the corruption picks.
fn correct_side(task: &RlhfTask) -> Option<Choice> {
    let real = two_models(&task.prompt);
    match (real.contains(&task.a), real.contains(&task.b)) {
        (true, false) => Some(Choice::A),
        (false, true) => Some(Choice::B),
        _ => None,
    }
}

async fn tasks(
    State(state): State<MinerState>,
    VerifiedCaller(caller): VerifiedCaller,
    Json(batch): Json<RlhfTaskBatch>,
) -> StatusCode {
    state.callers.lock().expect("lock").push(caller);
    state
        .batches
        .lock()
        .expect("lock")
        .insert(batch.batch_id.clone(), batch);
    StatusCode::ACCEPTED
}

async fn labels(State(state): State<MinerState>, Json(request): Json<LabelsRequest>) -> Response {
    let batch = state
        .batches
        .lock()
        .expect("lock")
        .get(&request.batch_id)
        .cloned();
    let Some(batch) = batch else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let choose = |task: &RlhfTask| -> Choice {
        let correct = correct_side(task);
        match state.behaviour {
            Behaviour::Honest => correct.unwrap_or(Choice::A),
            Behaviour::Liar => match correct {
                Some(Choice::A) => Choice::B,
                _ => Choice::A,
            },
            _ => Choice::A,
        }
    };
    match state.behaviour {
        Behaviour::Garbage => return "<html>not json</html>".into_response(),
        Behaviour::Slow => tokio::time::sleep(Duration::from_secs(5)).await,
        _ => {}
    }
    let mut labels = Vec::new();
    if state.behaviour != Behaviour::Silent {
        for task in &batch.tasks {
            for labeler in ["ann", "bob"] {
                labels.push(Label {
                    task_id: task.task_id.clone(),
                    choice: choose(task),
                    labeler: labeler.into(),
                    seconds: 3.5,
                });
            }
        }
        // A label for a task that was never sent is dropped, not trusted.
        labels.push(Label {
            task_id: "not-a-task".into(),
            choice: Choice::A,
            labeler: "ann".into(),
            seconds: 1.0,
        });
    }
    Json(LabelsResponse { labels }).into_response()
}

/// A label miner on a random port, accepting only requests signed by the validator (as the
/// real miner only lets validators with a permit in).
async fn spawn_miner(behaviour: Behaviour, key: &Keypair) -> (SocketAddr, MinerState) {
    let state = MinerState {
        behaviour,
        batches: Arc::default(),
        callers: Arc::default(),
    };
    let validator = validator_key().account_id();
    let guard = Guard::new(Verifier::new(key.account_id())).with_authorizer(
        move |caller: &Caller, _: &axum::http::Method, _: &str| {
            if caller.hotkey == validator {
                Ok(())
            } else {
                Err(Forbidden::new("validators only"))
            }
        },
    );
    let app = Router::new()
        .route("/v1/rlhf/tasks", post(tasks))
        .route("/v1/rlhf/labels", post(labels))
        .route_layer(from_fn_with_state(guard, btauth::require))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

fn url(addr: SocketAddr) -> reqwest::Url {
    format!("http://{addr}/").parse().expect("url")
}

/// Two different answers per prompt, as two top models might write them.
fn two_models(prompt: &str) -> Vec<String> {
    vec![
        format!("One way to answer {prompt:?} is with these few words"),
        format!("Another answer to that, 42 words long, would say more about {prompt:?}"),
    ]
}

/// The starter set and 200 more prompts, so that every miner gets a whole batch.
fn prompt_pool() -> PromptPool {
    let mut pool = PromptPool::starter();
    let more: Vec<String> = (0..200)
        .map(|i| {
            serde_json::json!({ "prompt": format!("Test question {i}: why {i}?") }).to_string()
        })
        .collect();
    pool.add_jsonl("test", &more.join("\n")).expect("prompts");
    pool
}

struct Epoch {
    result: LabelTrackResult,
    states: Vec<MinerState>,
    hotkeys: Vec<AccountId>,
}

/// One epoch against honest, liar, always-a, garbage, slow and silent miners, one without an
/// axon and one nobody listens on.
async fn run_epoch(epoch: u64) -> Epoch {
    let behaviours = [
        Behaviour::Honest,
        Behaviour::Liar,
        Behaviour::AlwaysA,
        Behaviour::Garbage,
        Behaviour::Slow,
        Behaviour::Silent,
    ];
    let mut miners = Vec::new();
    let mut states = Vec::new();
    let mut hotkeys = Vec::new();
    for (uid, behaviour) in behaviours.into_iter().enumerate() {
        let key = Keypair::from_uri(&format!("//Miner{uid}")).expect("key");
        let (addr, state) = spawn_miner(behaviour, &key).await;
        miners.push(LabelMiner {
            uid: uid as u16,
            hotkey: key.account_id(),
            base_url: Some(url(addr)),
            probe: false,
        });
        hotkeys.push(key.account_id());
        states.push(state);
    }
    let no_axon = Keypair::from_uri("//NoAxon").expect("key").account_id();
    miners.push(LabelMiner {
        uid: 6,
        hotkey: no_axon,
        base_url: None,
        probe: false,
    });
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    miners.push(LabelMiner {
        uid: 7,
        hotkey: Keypair::from_uri("//Gone").expect("key").account_id(),
        base_url: Some(url(closed)),
        probe: false,
    });

    let client = SignedClient::new(reqwest::Client::new(), validator_key());
    let mut settings = LabelSettings {
        limits: ExchangeLimits {
            timeout: Duration::from_millis(1500),
            ..ExchangeLimits::default()
        },
        ..LabelSettings::default()
    };
    // A generation budget for whole batches (the default, 64 prompts, is shared by all miners).
    settings.batch.max_prompts = 1000;
    let track = LabelTrack::new(client, settings);
    let answers: Arc<dyn AnswerSource> = Arc::new(two_models);
    // Spawned, as the epoch loop may: the track's future must be Send.
    let result = tokio::spawn(async move {
        let prompts = prompt_pool();
        let input = LabelEpochInput {
            netuid: 1,
            epoch,
            seed: [epoch as u8; 32],
            secret: [42; 32],
            deadline_block: epoch * 100 + 90,
            miners: &miners,
            prompts: &prompts,
        };
        track
            .run_epoch(&input, answers, async {}, KnownHistory::new())
            .await
    })
    .await
    .expect("the label track ran");
    Epoch {
        result,
        states,
        hotkeys,
    }
}

#[tokio::test]
async fn honest_labelers_win_and_misbehaving_miners_are_recorded() {
    let Epoch {
        result,
        states,
        hotkeys,
    } = run_epoch(3).await;
    let by_uid: BTreeMap<u16, _> = result.miners.iter().map(|m| (m.uid, m)).collect();
    let outcome = |uid: u16| by_uid[&uid].outcome;
    assert_eq!(outcome(0), LabelOutcome::Ok);
    assert_eq!(outcome(1), LabelOutcome::Ok);
    assert_eq!(outcome(2), LabelOutcome::Ok);
    assert_eq!(outcome(3), LabelOutcome::Malformed);
    assert_eq!(outcome(4), LabelOutcome::Timeout);
    assert_eq!(outcome(5), LabelOutcome::NoLabels);
    assert_eq!(outcome(6), LabelOutcome::NotServing);
    assert_eq!(outcome(7), LabelOutcome::Unreachable);

    // Every batch arrived signed by the validator, with the configured size and deadline.
    for (state, hotkey) in states.iter().zip(&hotkeys) {
        assert_eq!(
            *state.callers.lock().expect("lock"),
            [validator_key().account_id()],
            "{hotkey}"
        );
        let batches = state.batches.lock().expect("lock");
        let batch = batches.values().next().expect("a batch");
        assert_eq!(batch.tasks.len(), 20);
        assert_eq!(batch.deadline_block, 390);
    }

    let honest = &by_uid[&0].components;
    assert_eq!((honest.known_sent, honest.known_correct), (6, 6));
    assert_eq!(honest.coverage, 1.0);
    assert_eq!(by_uid[&0].labels.len(), 40, "two labelers per task");
    assert_eq!(by_uid[&0].dropped_labels, 1);
    let liar = &by_uid[&1].components;
    assert_eq!((liar.known_correct, liar.known_wrong), (0, 6));
    let scores = result.scores();
    // Always-"a" and the liar carry no information: the honest miner takes the pool.
    assert!(scores[&0] > 0.0, "{scores:?}");
    for uid in 1..=7 {
        assert_eq!(scores[&uid], 0.0, "uid {uid}: {scores:?}");
    }
    let sum: f64 = scores.values().sum();
    assert!((sum - 1.0).abs() < 1e-12);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_stored_epoch_recomputes_to_the_same_scores(pool: PgPool) {
    let Epoch { result, .. } = run_epoch(5).await;
    assert_eq!(
        db::save_label_track(&pool, &result).await.expect("save"),
        Saved::New
    );
    assert_eq!(
        db::save_label_track(&pool, &result).await.expect("save"),
        Saved::AlreadyStored
    );
    let mut loaded = db::load_label_track(&pool, 1, 5)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(loaded, result);
    for miner in &mut loaded.miners {
        miner.components = Default::default();
    }
    rescore(&mut loaded);
    assert_eq!(loaded, result);
    assert!(
        db::load_label_track(&pool, 1, 6)
            .await
            .expect("load")
            .is_none()
    );
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_export_holds_the_majority_of_open_pairs_only(pool: PgPool) {
    let Epoch { result, .. } = run_epoch(7).await;
    db::save_label_track(&pool, &result).await.expect("save");
    let Epoch { result, .. } = run_epoch(8).await;
    db::save_label_track(&pool, &result).await.expect("save");

    let mut out = Vec::new();
    let count = export::export(&pool, 1, 8, 1, &mut out)
        .await
        .expect("export");
    let lines: Vec<Preference> = std::str::from_utf8(&out)
        .expect("utf8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a preference line"))
        .collect();
    assert_eq!(lines.len(), count);
    assert!(count > 0);
    // Each line is an open pair of epoch 8 (never a known-answer pair), as shown to miners.
    let pairs = |known: bool| -> Vec<(String, String, String)> {
        result
            .miners
            .iter()
            .flat_map(|m| &m.batch.tasks)
            .filter(|t| t.known == known)
            .map(|t| {
                let (x, y) = (t.task.a.clone(), t.task.b.clone());
                let (lo, hi) = if x < y { (x, y) } else { (y, x) };
                (t.task.prompt.clone(), lo, hi)
            })
            .collect()
    };
    let (open, known) = (pairs(false), pairs(true));
    for p in &lines {
        let (lo, hi) = if p.chosen < p.rejected {
            (p.chosen.clone(), p.rejected.clone())
        } else {
            (p.rejected.clone(), p.chosen.clone())
        };
        let key = (p.prompt.clone(), lo, hi);
        assert!(open.contains(&key), "{p:?}");
        assert!(!known.contains(&key), "{p:?}");
        assert_eq!(p.epoch, 8, "--since-epoch 8 leaves epoch 7 out");
        assert!(p.votes >= 1, "{p:?}");
        assert!(p.agreement > 0.5 && p.agreement <= 1.0, "{p:?}");
    }
    // Every pair is one miner's own, so every exported vote is unanimous; both sides are the
    // models' real answers.
    assert!(lines.iter().all(|p| p.agreement == 1.0));
    for p in &lines {
        let real = two_models(&p.prompt);
        assert!(
            real.contains(&p.chosen) && real.contains(&p.rejected),
            "{p:?}"
        );
    }

    let with_min = {
        let mut out = Vec::new();
        export::export(&pool, 1, 0, 3, &mut out)
            .await
            .expect("export");
        out
    };
    for line in std::str::from_utf8(&with_min).expect("utf8").lines() {
        let p: Preference = serde_json::from_str(line).expect("line");
        assert!(p.votes >= 3);
    }
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn export_preferences_writes_the_file_through_the_binary(pool: PgPool) {
    let Epoch { result, .. } = run_epoch(9).await;
    db::save_label_track(&pool, &result).await.expect("save");
    let mut expected = Vec::new();
    export::export(&pool, 1, 0, 1, &mut expected)
        .await
        .expect("export");
    assert!(!expected.is_empty());

    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("prefs.jsonl");
    let url = crate::pg::database_url(&pool);
    let run = |since: &'static str| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_validator"))
            .args(["export-preferences", "--since-epoch", since, "--out"])
            .arg(&out)
            .args(["--db.url", &url])
            .env_remove("DATABASE_URL")
            .env_remove("RUST_LOG")
            .output()
    };
    let output = run("9").await.expect("run validator");
    assert!(output.status.success(), "{output:?}");
    // The database is migrated already: Postgres' "relation _sqlx_migrations already exists"
    // notice is sqlx's business, not the operator's.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("already exists"), "{stderr}");
    // Not a terminal: plain text, no colour codes.
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
    assert!(stderr.contains("INFO"), "it did log: {stderr}");
    assert_eq!(std::fs::read(&out).expect("the file"), expected);
    // A later epoch has no labels: the file is replaced by an empty one.
    let output = run("10").await.expect("run validator");
    assert!(output.status.success(), "{output:?}");
    assert!(std::fs::read(&out).expect("the file").is_empty());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["prefs.jsonl"], "no temporary file left behind");
}

/// A window spanning epochs: the batches sent in epoch 4 are kept in `label_pending`, come back
/// from Postgres as they were sent, follow their miners to their current uid and axon (a
/// deregistered hotkey is left out), are collected as epoch 6's and leave `label_pending` in the
/// transaction that stores them.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn batches_sent_in_one_epoch_are_collected_and_paid_in_a_later_one(pool: PgPool) {
    let honest = Keypair::from_uri("//Miner0").expect("key");
    let gone = Keypair::from_uri("//Miner1").expect("key");
    let (addr, _honest_state) = spawn_miner(Behaviour::Honest, &honest).await;
    let (gone_addr, _gone_state) = spawn_miner(Behaviour::Honest, &gone).await;
    let miners = vec![
        LabelMiner {
            uid: 0,
            hotkey: honest.account_id(),
            base_url: Some(url(addr)),
            probe: false,
        },
        LabelMiner {
            uid: 1,
            hotkey: gone.account_id(),
            base_url: Some(url(gone_addr)),
            probe: false,
        },
    ];
    let mut settings = LabelSettings::default();
    settings.batch.max_prompts = 1000;
    let track = LabelTrack::new(
        SignedClient::new(reqwest::Client::new(), validator_key()),
        settings,
    );
    let prompts = prompt_pool();
    let input = LabelEpochInput {
        netuid: 1,
        epoch: 4,
        seed: [4; 32],
        secret: [42; 32],
        deadline_block: 130,
        miners: &miners,
        prompts: &prompts,
    };
    let answers: Arc<dyn AnswerSource> = Arc::new(two_models);
    let sent = track.send(&input, answers).await;
    assert_eq!(
        db::save_label_pending(&pool, &sent).await.expect("save"),
        Saved::New
    );
    assert_eq!(
        db::save_label_pending(&pool, &sent).await.expect("save"),
        Saved::AlreadyStored,
        "a restart does not send again"
    );
    assert!(db::label_batches_sent(&pool, 1, 4).await.expect("query"));
    assert!(!db::label_batches_sent(&pool, 1, 5).await.expect("query"));
    assert!(
        db::label_pending_due(&pool, 1, 129)
            .await
            .expect("due")
            .is_empty(),
        "not due before its deadline's epoch"
    );
    let mut due = db::label_pending_due(&pool, 1, 135).await.expect("due");
    assert_eq!(due.len(), 1);
    let mut loaded = due.pop().expect("one");
    assert_eq!(loaded.epoch(), 4);
    assert_eq!(loaded.deadline_block(), 130);
    let batches = |s: &subnet_validator::tracks::labels::SentEpoch| -> Vec<(u16, String)> {
        s.batches()
            .map(|(uid, b)| (uid, serde_json::to_string(b).expect("json")))
            .collect()
    };
    assert_eq!(
        batches(&loaded),
        batches(&sent),
        "stored as sent, truth included"
    );

    // By epoch 6 the honest miner moved to uid 3 and the other one deregistered.
    let now = vec![LabelMiner {
        uid: 3,
        ..miners[0].clone()
    }];
    assert_eq!(loaded.follow(&now), 1);
    let result = track.collect(loaded, 6, KnownHistory::new()).await;
    assert_eq!((result.epoch, result.sent_epoch), (6, 4));
    assert_eq!(result.miners.len(), 1);
    assert_eq!(result.miners[0].uid, 3);
    assert_eq!(result.miners[0].outcome, LabelOutcome::Ok);
    assert!(result.scores()[&3] > 0.0);
    assert_eq!(
        db::save_label_track(&pool, &result).await.expect("save"),
        Saved::New
    );
    assert!(
        db::label_pending_due(&pool, 1, 1_000)
            .await
            .expect("due")
            .is_empty(),
        "collected batches are no longer pending"
    );
    assert!(db::label_batches_sent(&pool, 1, 4).await.expect("query"));
    let stored = db::load_label_track(&pool, 1, 6)
        .await
        .expect("load")
        .expect("stored");
    assert_eq!(stored.sent_epoch, 4);
    assert_eq!(stored.scores(), result.scores());
}
