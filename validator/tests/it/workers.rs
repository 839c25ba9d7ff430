//! `validator worker` processes evaluating through the validator's Postgres (issue 16 item 4):
//! the queue's fencing at the SQL level, an epoch scored by two real worker processes exactly as
//! the loop scores it on its own device, and a worker killed in the middle of a job.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::routing::get;
use axum::{Json, Router};
use sqlx::PgPool;
use subnet_common::btauth::SignedClient;
use subnet_common::chain::types::{Commitment, Metagraph};
use subnet_common::keys::Keypair;
use subnet_common::protocol::{Manifest, ModelCommitment};
use subnet_model::backend::{DeviceChoice, select};
use subnet_model::eval::Sample;
use subnet_validator::db::{self, JobState};
use subnet_validator::tracks::model::outcome::Outcome;
use subnet_validator::tracks::model::{ModelTrack, ModelTrackResult, TrackSettings};
use subnet_validator::workers::{
    ArtifactSource, Queue, QueueSettings, QueuedEval, Worker, WorkerResult, WorkerSettings,
};

use super::doctor_chain::alice_wallet;
use super::localnet::manifest_of;
use super::model_track::{
    commitment, competition, epoch_input, neuron, random_model, start_miner, subnet_of,
    without_spot_checks,
};
use super::pg::database_url;

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_queue_hands_each_job_to_one_worker_and_takes_results_only_from_its_latest_attempt(
    pool: PgPool,
) {
    let lease = Duration::from_millis(400);
    let first = db::enqueue_job(&pool, 1, 3, "aa", &"job one")
        .await
        .unwrap();
    let second = db::enqueue_job(&pool, 1, 4, "bb", &"job two")
        .await
        .unwrap();

    // Two workers take two different jobs, oldest first; a third finds nothing open.
    let a = db::take_job::<String>(&pool, "a", lease, 3)
        .await
        .unwrap()
        .unwrap();
    let b = db::take_job::<String>(&pool, "b", lease, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.id, a.attempt, a.payload.as_str()), (first, 1, "job one"));
    assert_eq!((b.id, b.attempt), (second, 1));
    assert!(
        db::take_job::<String>(&pool, "c", lease, 3)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db::poll_job::<String>(&pool, first).await.unwrap(),
        JobState::Open
    );

    // b finishes in time; a stalls past its lease and its job goes to c.
    assert!(
        db::renew_job_lease(&pool, b.id, b.attempt, lease)
            .await
            .unwrap()
    );
    assert!(
        db::finish_job(&pool, b.id, b.attempt, &"b's result")
            .await
            .unwrap()
    );
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    assert_eq!(
        db::poll_job::<String>(&pool, first).await.unwrap(),
        JobState::Abandoned { attempts: 1 }
    );
    let c = db::take_job::<String>(&pool, "c", lease, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.id, c.attempt), (first, 2));

    // a wakes up: it can neither renew nor write; c's result is the one read, once.
    assert!(
        !db::renew_job_lease(&pool, a.id, a.attempt, lease)
            .await
            .unwrap()
    );
    assert!(
        !db::finish_job(&pool, a.id, a.attempt, &"a's late result")
            .await
            .unwrap()
    );
    assert!(
        db::finish_job(&pool, c.id, c.attempt, &"c's result")
            .await
            .unwrap()
    );
    assert!(
        !db::finish_job(&pool, c.id, c.attempt, &"again")
            .await
            .unwrap()
    );
    assert_eq!(
        db::poll_job::<String>(&pool, first).await.unwrap(),
        JobState::Done("c's result".to_string())
    );
    assert_eq!(
        db::poll_job::<String>(&pool, first).await.unwrap(),
        JobState::Missing
    );
    assert_eq!(
        db::poll_job::<String>(&pool, second).await.unwrap(),
        JobState::Done("b's result".to_string())
    );

    // A job every worker dies on is taken at most `max_attempts` times, then left to the loop.
    let doomed = db::enqueue_job(&pool, 1, 5, "cc", &"doomed").await.unwrap();
    for attempt in 1..=2 {
        let taken = db::take_job::<String>(&pool, "d", Duration::from_millis(50), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((taken.id, taken.attempt), (doomed, attempt));
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    assert!(
        db::take_job::<String>(&pool, "d", lease, 2)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db::poll_job::<String>(&pool, doomed).await.unwrap(),
        JobState::Abandoned { attempts: 2 }
    );
    // A cancelled job cannot be finished, and a new loop clears what an old one left.
    db::cancel_job(&pool, doomed).await.unwrap();
    assert!(!db::finish_job(&pool, doomed, 2, &"late").await.unwrap());
    // A worker stopping puts its job back: the next worker takes it at once, as attempt 2, and
    // the stopped worker's attempt can no longer write.
    let released = db::enqueue_job(&pool, 1, 7, "ee", &"released")
        .await
        .unwrap();
    let e = db::take_job::<String>(&pool, "e", lease, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((e.id, e.attempt), (released, 1));
    assert!(db::release_job(&pool, e.id, e.attempt).await.unwrap());
    assert!(!db::release_job(&pool, e.id, e.attempt).await.unwrap());
    let f = db::take_job::<String>(&pool, "f", lease, 3)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((f.id, f.attempt), (released, 2));
    assert!(
        !db::finish_job(&pool, e.id, e.attempt, &"stopped")
            .await
            .unwrap()
    );
    db::cancel_job(&pool, released).await.unwrap();

    db::enqueue_job(&pool, 1, 6, "dd", &"left over")
        .await
        .unwrap();
    assert_eq!(db::clear_jobs(&pool, 1).await.unwrap(), 1);
}

/// A `validator worker` child process; killed when dropped. Its log goes to `log`.
struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    /// Starts a worker signing with the wallets under `dir` ([`alice_wallet`]).
    fn start(pool: &PgPool, dir: &Path, name: &str, cache: &Path, lease_secs: u64) -> Self {
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_validator"))
            .args(["worker", "--device", "cpu", "--worker.name", name])
            .args(["--worker.lease-secs", &lease_secs.to_string()])
            .arg("--wallet.path")
            .arg(dir.join("wallets"))
            .arg("--cache.dir")
            .arg(cache)
            .args(["--db.url", &database_url(pool)])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start validator worker");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One epoch (seed block 100, head 110) of `metagraph` scored by a fresh track: on this
/// process's CPU, or through `queue`.
async fn score(
    settings: TrackSettings,
    metagraph: &Metagraph,
    commitments: &[Commitment],
    queue: Option<Queue>,
) -> ModelTrackResult {
    let cache = tempfile::tempdir().expect("cache");
    let http = subnet_validator::artifacts::miner_http_client().expect("client");
    let client = SignedClient::new(http, Keypair::from_uri("//Alice").expect("key"));
    let device = select(DeviceChoice::Cpu).expect("cpu");
    let mut track = ModelTrack::new(client, cache.path().to_path_buf(), device, settings);
    if let Some(queue) = queue {
        track = track.with_queue(queue);
    }
    let competition = competition();
    let input = epoch_input(metagraph, commitments, &competition);
    let result = track.score_epoch(&input).await.expect("epoch");
    for miner in &result.miners {
        eprintln!("uid {} {:?} {}", miner.uid, miner.outcome, miner.reason);
    }
    result
}

fn fast_queue() -> QueueSettings {
    QueueSettings {
        timeout: Duration::from_secs(300),
        poll: Duration::from_millis(50),
        ..QueueSettings::default()
    }
}

/// Three real miners, spot-checked: two worker processes with their own artifact cache give the
/// loop the same results, bit for bit, as its own device.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn two_worker_processes_score_an_epoch_exactly_as_the_loop_does_alone(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let models: Vec<PathBuf> = (0..3).map(|i| root.path().join(format!("m{i}"))).collect();
    for (i, dir) in models.iter().enumerate() {
        std::fs::create_dir_all(dir).expect("dir");
        random_model(dir, 40 + i as u64);
    }
    let mut miners = Vec::new();
    for (i, dir) in models.iter().enumerate() {
        miners.push(start_miner(&format!("//Worker{i}"), dir, true).await);
    }
    let (metagraph, commitments) = subnet_of(&miners.iter().collect::<Vec<_>>());
    let alone = score(TrackSettings::default(), &metagraph, &commitments, None).await;

    let cache = root.path().join("worker-cache");
    alice_wallet(root.path());
    let workers = [
        WorkerProcess::start(&pool, root.path(), "w1", &cache, 30),
        WorkerProcess::start(&pool, root.path(), "w2", &cache, 30),
    ];
    let queue = Queue::open(pool.clone(), 1, fast_queue())
        .await
        .expect("queue");
    let queued = score(
        TrackSettings::default(),
        &metagraph,
        &commitments,
        Some(queue),
    )
    .await;

    assert_eq!(
        queued.miners, alone.miners,
        "workers must score as the loop does"
    );
    assert!(
        alone.miners.iter().all(|m| m.outcome.code() == "ok"),
        "every model is scored: {:?}",
        alone.miners
    );
    let done: usize = workers
        .iter()
        .map(|w| w.log().matches("job done").count())
        .sum();
    assert_eq!(done, 3, "one job per model: {}", workers[0].log());
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM eval_jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "every result was read and its row deleted");
}

/// A miner that serves its artifact without btauth and holds each download of the weights whose
/// number (from 0) is `free` or more until `free` is raised; counts the downloads.
async fn start_gated_miner(dir: PathBuf, free: usize) -> (u16, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    #[derive(Clone)]
    struct Gate {
        dir: PathBuf,
        manifest: Manifest,
        downloads: Arc<AtomicUsize>,
        free: Arc<AtomicUsize>,
    }
    let downloads = Arc::new(AtomicUsize::new(0));
    let free = Arc::new(AtomicUsize::new(free));
    let gate = Gate {
        manifest: manifest_of(&dir),
        dir,
        downloads: downloads.clone(),
        free: free.clone(),
    };
    let app = Router::new()
        .route(
            "/v1/model/manifest",
            get(|State(g): State<Gate>| async move { Json(g.manifest.clone()) }),
        )
        .route(
            "/v1/model/files/{name}",
            get(
                |State(g): State<Gate>, UrlPath(name): UrlPath<String>| async move {
                    if name.ends_with(".safetensors") {
                        let number = g.downloads.fetch_add(1, Ordering::SeqCst);
                        while number >= g.free.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    std::fs::read(g.dir.join(name)).unwrap_or_default()
                },
            ),
        )
        .with_state(gate);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, downloads, free)
}

/// A worker killed while it holds a job loses nothing: once its lease runs out another worker
/// takes the job (its second attempt) and the epoch gets the result the loop computes alone.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_worker_killed_mid_job_loses_nothing(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let model = root.path().join("model");
    std::fs::create_dir_all(&model).expect("dir");
    random_model(&model, 7);
    // Downloads 1 and 2 are the loop's (alone, then queued); the first worker's is held.
    let (port, downloads, free) = start_gated_miner(model.clone(), 2).await;
    let hotkey = Keypair::from_uri("//Gated").expect("key").account_id();
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons: vec![neuron(0, hotkey, port)],
    };
    let commitments = vec![commitment(
        hotkey,
        0,
        50,
        &manifest_of(&model).manifest_sha256,
    )];
    let alone = score(without_spot_checks(), &metagraph, &commitments, None).await;
    assert_eq!(alone.miners[0].outcome.code(), "ok", "{:?}", alone.miners);

    let queue = Queue::open(pool.clone(), 1, fast_queue())
        .await
        .expect("queue");
    let scoring = {
        let (metagraph, commitments) = (metagraph.clone(), commitments.clone());
        tokio::spawn(async move {
            score(without_spot_checks(), &metagraph, &commitments, Some(queue)).await
        })
    };
    let lease_secs = 3;
    alice_wallet(root.path());
    let mut first = WorkerProcess::start(
        &pool,
        root.path(),
        "first",
        &root.path().join("c1"),
        lease_secs,
    );
    let started = Instant::now();
    loop {
        let holder: Option<(Option<String>, String)> =
            sqlx::query_as("SELECT worker, state FROM eval_jobs")
                .fetch_optional(&pool)
                .await
                .unwrap();
        if downloads.load(Ordering::SeqCst) >= 3
            && holder == Some((Some("first".into()), "running".into()))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the first worker never took the job: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.child.kill().expect("kill");
    first.child.wait().expect("wait");
    free.store(usize::MAX, Ordering::SeqCst);
    let second = WorkerProcess::start(
        &pool,
        root.path(),
        "second",
        &root.path().join("c2"),
        lease_secs,
    );
    let queued = tokio::time::timeout(Duration::from_secs(120), scoring)
        .await
        .expect("the epoch finishes")
        .expect("scoring task");
    assert_eq!(queued.miners, alone.miners);
    assert!(!first.log().contains("job done"), "{}", first.log());
    let log = second.log();
    assert!(
        log.contains("attempt=2") && log.contains("job done"),
        "{log}"
    );
}

/// A worker told to stop while it holds a job puts the job back in the queue at once (no wait
/// for its lease), for the next worker.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_worker_stopped_mid_job_puts_it_back_at_once(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let model = root.path().join("model");
    std::fs::create_dir_all(&model).expect("dir");
    random_model(&model, 8);
    // Every download of the weights is held: the worker is in the middle of its job.
    let (port, downloads, _free) = start_gated_miner(model.clone(), 0).await;
    let hotkey = Keypair::from_uri("//Stopped").expect("key").account_id();
    let manifest = manifest_of(&model).manifest_sha256;
    let job = QueuedEval {
        source: ArtifactSource {
            base_url: format!("http://127.0.0.1:{port}/"),
            hotkey: hotkey.to_ss58(),
            binding: ModelCommitment::binding_of(&hotkey, &manifest).expect("binding"),
            manifest_sha256: manifest.clone(),
        },
        competition: competition().competition,
        samples: vec![Sample {
            input_ids: vec![1, 2, 3, 4],
            completion_start: 2,
        }],
        batch_size: 4,
        skip_eval: false,
        spot: None,
        open: None,
    };
    let id = db::enqueue_job(&pool, 1, 0, &manifest, &job)
        .await
        .expect("enqueue");
    let worker = Worker::new(
        pool.clone(),
        SignedClient::new(
            subnet_validator::artifacts::miner_http_client().expect("client"),
            Keypair::from_uri("//Alice").expect("key"),
        ),
        select(DeviceChoice::Cpu).expect("cpu"),
        WorkerSettings {
            name: "stopping".into(),
            lease: Duration::from_secs(600),
            idle_poll: Duration::from_millis(50),
            cache_dir: root.path().join("cache"),
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        worker
            .run_until(async {
                let _ = stopped.await;
            })
            .await
    });
    let started = Instant::now();
    while downloads.load(Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the worker never started the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).expect("stop");
    assert_eq!(running.await.expect("worker"), 0, "nothing finished");
    let row: (String, Option<String>, i32) =
        sqlx::query_as("SELECT state, worker, attempts FROM eval_jobs WHERE id = $1")
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("row");
    assert_eq!(row, ("queued".to_string(), None, 1));
    let next = db::take_job::<QueuedEval>(&pool, "next", Duration::from_secs(5), 3)
        .await
        .expect("take")
        .expect("the job is open again at once");
    assert_eq!((next.id, next.attempt), (id, 2));
}

/// A job whose content does not matter (the test itself plays the worker).
fn placeholder_job(uid: u16) -> QueuedEval {
    QueuedEval {
        source: ArtifactSource {
            base_url: "http://127.0.0.1:9/".into(),
            hotkey: Keypair::from_uri("//Placeholder")
                .expect("key")
                .account_id()
                .to_ss58(),
            binding: "ab".repeat(32),
            manifest_sha256: format!("{uid:02x}").repeat(32),
        },
        competition: competition().competition,
        samples: Vec::new(),
        batch_size: 1,
        skip_eval: false,
        spot: None,
        open: None,
    }
}

/// The timeout measures a queue that stopped moving, not a long one: with one slow worker
/// answering a job every 0.8 s, the fourth answer comes 3.2 s after all four were queued, past
/// the 2 s timeout, and nothing is given up; with no worker at all, a job is given up.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_long_queue_worked_through_steadily_never_times_out(pool: PgPool) {
    let queue = Queue::open(
        pool.clone(),
        1,
        QueueSettings {
            timeout: Duration::from_secs(2),
            poll: Duration::from_millis(50),
            ..QueueSettings::default()
        },
    )
    .await
    .expect("queue");
    let waiting: Vec<_> = (0..4u16)
        .map(|uid| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.evaluate(uid, placeholder_job(uid)).await })
        })
        .collect();
    let mut answered = 0;
    while answered < 4 {
        let taken = db::take_job::<QueuedEval>(&pool, "slow", Duration::from_secs(30), 3)
            .await
            .expect("take");
        let Some(job) = taken else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        tokio::time::sleep(Duration::from_millis(800)).await;
        let result = WorkerResult::Failed {
            outcome: Outcome::BadModel,
            reason: format!("answer for {}", job.payload.source.manifest_sha256),
        };
        assert!(
            db::finish_job(&pool, job.id, job.attempt, &result)
                .await
                .expect("finish")
        );
        answered += 1;
    }
    for (uid, waiting) in waiting.into_iter().enumerate() {
        let (outcome, reason) = waiting.await.expect("task").unwrap_err();
        assert_eq!(outcome, Outcome::BadModel, "uid {uid}: {reason}");
    }

    let (outcome, reason) = queue.evaluate(9, placeholder_job(9)).await.unwrap_err();
    assert_eq!(outcome, Outcome::InternalError);
    assert!(reason.contains("no `validator worker`"), "{reason}");
}
