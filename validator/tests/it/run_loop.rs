//! `validator run`'s epoch loop ([`subnet_validator::service`]) against an in-process dev chain
//! (real node, RPC and block production) and real in-process miners: weights land on chain and
//! the chain's epoch ranks the better model first; a crash anywhere between scoring and the
//! commit's inclusion resumes without a second commit. The last test runs both sides as real
//! processes (the `devchain` binary, built on first use, and the `validator` binary) and kills the
//! validator with SIGKILL between an epoch's commit and its reveal.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use subnet_chain::dev::dev_genesis;
use subnet_chain::node::{Chain, Node, unix_millis};
use subnet_chain::rpc::{self, RpcConfig};
use subnet_common::btauth::SignedClient;
use subnet_common::chain::client::{ChainClient, DevChainClient};
use subnet_common::chain::rpc::H256;
use subnet_common::chain::types::{Call, NeuronInfo, SignedExtrinsic};
use subnet_common::keys::Keypair;
use subnet_common::protocol::ModelCommitment;
use subnet_model::backend::{Cpu, CpuTrain, DeviceChoice, select};
use subnet_model::competition::CompetitionFile;
use subnet_model::io::{WEIGHTS_FILE, save_artifact};
use subnet_model::tasks::{TaskMix, generate, to_sample};
use subnet_model::tokenizer::Tokenizer;
use subnet_model::train::{TrainConfig, train};
use subnet_validator::artifacts::Limits;
use subnet_validator::db::{self, RecordedTx, WeightCommitRecord, WeightMode, WeightStatus};
use subnet_validator::service::clock::ChainClock;
use subnet_validator::service::schedule::EpochSchedule;
use subnet_validator::service::{Failpoint, LabelSetup, Service, ServiceConfig, ServiceError};
use subnet_validator::tracks::labels::prompts::PromptPool;
use subnet_validator::tracks::labels::{LabelSettings, LabelTrack};
use subnet_validator::tracks::model::{ModelTrack, TrackSettings};

use super::localnet::{COMPETITION, manifest_sha256, serve_miner, tiny_config};

const NETUID: u16 = 1;
/// Blocks per epoch of the test chain: 1.1 s epochs at 100 ms blocks.
const TEMPO: u16 = 10;
const BLOCK_TIME: Duration = Duration::from_millis(100);

/// A dev chain producing a block every [`BLOCK_TIME`], served on a loopback port.
struct TestChain {
    client: Arc<DevChainClient>,
    _shutdown: tokio::sync::watch::Sender<bool>,
}

/// The commit–reveal version of the test chain: 4 (timelocked, the default) or 2 (hash commits).
async fn spawn_chain(dir: &Path, commit_reveal_version: u16) -> TestChain {
    let mut genesis = dev_genesis(TEMPO, unix_millis()).expect("genesis");
    genesis.subnets[0].hyperparameters.commit_reveal_version = commit_reveal_version;
    let (chain, _) = Chain::open(&genesis, dir).expect("open chain");
    let node = Node::new(chain);
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    let router = rpc::router(Arc::clone(&node), RpcConfig::default(), shutdown_rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut stop = shutdown_rx.clone();
    tokio::spawn(rpc::serve(listener, router, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    let mut stop = shutdown_rx;
    tokio::spawn(node.run_block_production(BLOCK_TIME, async move {
        let _ = stop.wait_for(|s| *s).await;
    }));
    TestChain {
        client: Arc::new(DevChainClient::new(&url).expect("client")),
        _shutdown: shutdown_tx,
    }
}

/// Submits `call` signed by `signer` and waits for its inclusion.
async fn submit<C: ChainClient>(chain: &C, call: Call, signer: &Keypair) -> u64 {
    let name = call.name();
    let tx = chain.submit(call, signer).await.expect(name);
    chain
        .wait_for_inclusion(tx, Duration::from_secs(20))
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .block
}

/// The default competition with few, short samples and a 2-block commitment delay.
fn competition_text() -> String {
    subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML
        .replace("samples = 256", "samples = 16")
        .replace("max_seq_len = 128", "max_seq_len = 48")
        .replace("block_delay = 10", "block_delay = 2")
        // Random-initialised models all predict almost uniformly, 0.02 nats apart.
        .replace("max_divergence = 0.1", "max_divergence = 0.001")
}

fn competition() -> CompetitionFile {
    CompetitionFile::from_bytes(competition_text().as_bytes()).expect("competition")
}

fn random_model(dir: &Path, seed: u64) {
    let model = tiny_config().init_seeded::<Cpu>(&Default::default(), seed);
    save_artifact(&model, &tiny_config(), dir).expect("save");
}

/// `random_model(seed)` fine-tuned on generated tasks (not the epoch's samples); only the
/// servable files end up in `dir` (training also writes checkpoints next to them).
fn trained_model(dir: &Path, seed: u64) {
    let work = dir.with_extension("training");
    train_into(&work, seed);
    std::fs::create_dir_all(dir).expect("mkdir");
    for name in ["config.json", WEIGHTS_FILE] {
        std::fs::copy(work.join(name), dir.join(name)).expect("copy");
    }
}

fn train_into(dir: &Path, seed: u64) {
    let model = tiny_config().init_seeded::<CpuTrain>(&Default::default(), seed);
    let tokenizer = Tokenizer::bytes();
    let samples: Vec<_> = generate([42; 32], &TaskMix::uniform(), 256)
        .iter()
        .map(|e| to_sample(&tokenizer, e, 48).expect("sample"))
        .collect();
    let config = TrainConfig {
        steps: 30,
        batch_size: 16,
        learning_rate: 1e-2,
        warmup_steps: 3,
        checkpoint_every: 0,
        ..TrainConfig::default()
    };
    train(
        model,
        &tiny_config(),
        &samples,
        &config,
        dir,
        false,
        &mut |_| {},
    )
    .expect("train");
}

/// Starts a real miner serving the model in `dir`, registers it, publishes its axon and commits
/// its model. Returns its uid and a handle that stops it when dropped.
async fn start_miner<C: ChainClient>(
    chain: &C,
    uri: &str,
    dir: &Path,
) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let key = Keypair::from_uri(uri).expect("key");
    let (port, stop) = serve_miner(&key, dir).await;
    let hotkey = key.account_id();
    submit(
        chain,
        Call::Register {
            netuid: NETUID,
            hotkey,
        },
        &key,
    )
    .await;
    let call = Call::ServeAxon {
        netuid: NETUID,
        version: 1,
        ip: u128::from(u32::from(Ipv4Addr::LOCALHOST)),
        port,
        ip_type: 4,
        protocol: 0,
    };
    submit(chain, call, &key).await;
    let data = ModelCommitment::bind(COMPETITION, &hotkey, &manifest_sha256(dir))
        .expect("commitment")
        .encode();
    submit(
        chain,
        Call::SetCommitment {
            netuid: NETUID,
            data,
        },
        &key,
    )
    .await;
    let uid = own_neuron(chain, &key).await.expect("registered").uid;
    (uid, stop)
}

async fn own_neuron<C: ChainClient>(chain: &C, key: &Keypair) -> Option<NeuronInfo> {
    let metagraph = chain.metagraph(NETUID).await.expect("metagraph");
    metagraph
        .neurons
        .into_iter()
        .find(|n| n.hotkey == key.account_id())
}

fn alice() -> Keypair {
    Keypair::from_uri("//Alice").expect("key")
}

/// The loop as `validator run` builds it, validating with //Alice (the subnet owner).
fn service(
    chain: &TestChain,
    pool: &PgPool,
    cache: &Path,
    failpoint: Option<Failpoint>,
) -> Service<DevChainClient, ChainClock<DevChainClient>> {
    service_with_label_window(chain, pool, cache, failpoint, None)
}

/// [`service`] with `--labels.deadline-blocks`.
fn service_with_label_window(
    chain: &TestChain,
    pool: &PgPool,
    cache: &Path,
    failpoint: Option<Failpoint>,
    label_deadline_blocks: Option<u64>,
) -> Service<DevChainClient, ChainClock<DevChainClient>> {
    let settings = TrackSettings {
        fetch: Limits {
            request_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
        ..TrackSettings::default()
    };
    let track = ModelTrack::new(
        SignedClient::new(reqwest::Client::new(), alice()),
        cache.to_path_buf(),
        select(DeviceChoice::Cpu).expect("cpu"),
        settings,
    );
    let config = ServiceConfig {
        inclusion_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        failpoint,
        label_deadline_blocks,
        ..ServiceConfig::new(NETUID)
    };
    let labels = LabelSetup {
        prompts: PromptPool::starter(),
        track: LabelTrack::new(
            SignedClient::new(reqwest::Client::new(), alice()),
            LabelSettings::default(),
        ),
        cache_dir: cache.to_path_buf(),
        device: select(DeviceChoice::Cpu).expect("cpu"),
        // Generating answers with a debug build takes longer than the test chain's 1.1-second
        // epochs: no model answers, so there are no tasks (`no_tasks`); sending and collecting
        // are tested in `labels`.
        answer_models: 0,
        answers: Default::default(),
    };
    service_on(Arc::clone(&chain.client), pool, track, config).with_labels(labels)
}

/// The loop on any chain, validating with //Alice.
fn service_on<C: ChainClient + 'static>(
    chain: Arc<C>,
    pool: &PgPool,
    track: ModelTrack,
    config: ServiceConfig,
) -> Service<C, ChainClock<C>> {
    Service::new(
        Arc::clone(&chain),
        ChainClock::new(chain, Duration::from_millis(20)),
        pool.clone(),
        alice(),
        track,
        competition(),
        None,
        config,
    )
}

/// Every call //Alice's hotkey got included, in block order.
async fn alice_calls(chain: &DevChainClient) -> Vec<Call> {
    let head = chain.head().await.expect("head").number;
    let me = alice().account_id();
    let mut calls = Vec::new();
    for number in 1..=head {
        let block = chain.block(number).await.expect("block").expect("exists");
        for hex_ext in &block.extrinsics {
            let bytes = hex::decode(hex_ext.trim_start_matches("0x")).expect("hex");
            let ext = SignedExtrinsic::decode_bytes(&bytes).expect("decode");
            if ext.signer == me {
                calls.push(ext.call);
            }
        }
    }
    calls
}

/// How many weight commits (`commit_weights` or `commit_timelocked_weights`) //Alice got
/// included up to `block`.
async fn commits_until(chain: &DevChainClient, block: u64) -> usize {
    let me = alice().account_id();
    let mut commits = 0;
    for number in 1..=block {
        let block = chain.block(number).await.expect("block").expect("exists");
        for hex_ext in &block.extrinsics {
            let bytes = hex::decode(hex_ext.trim_start_matches("0x")).expect("hex");
            let ext = SignedExtrinsic::decode_bytes(&bytes).expect("decode");
            if ext.signer == me
                && matches!(
                    ext.call,
                    Call::CommitWeights { .. } | Call::CommitTimelockedWeights { .. }
                )
            {
                commits += 1;
            }
        }
    }
    commits
}

/// How many `commit_weights` on chain carry the hash of `row`.
async fn commits_of(chain: &DevChainClient, row: &WeightCommitRecord) -> usize {
    let wanted = row.commit_hash().expect("commit_reveal row");
    alice_calls(chain)
        .await
        .iter()
        .filter(|c| matches!(c, Call::CommitWeights { commit_hash, .. } if *commit_hash == wanted))
        .count()
}

async fn weight_row(pool: &PgPool, epoch: i64) -> WeightCommitRecord {
    sqlx::query_as::<_, WeightCommitRecord>(
        "SELECT netuid, epoch, uids, weights, salt, version_key, mode, commit_hash, status, commit_tx,
                commit_block, reveal_tx, reveal_block, error
         FROM weight_commits WHERE netuid = $1 AND epoch = $2",
    )
    .bind(i32::from(NETUID))
    .bind(epoch)
    .fetch_one(pool)
    .await
    .expect("weight row")
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `limit` naming `what`.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn weights_land_on_chain_and_the_chain_ranks_the_better_model_first(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 4).await;
    trained_model(&root.path().join("good"), 1);
    random_model(&root.path().join("weak"), 2);
    // Stake on //Alice so she holds a validator permit from the first epoch on.
    let stake = Call::AddStake {
        hotkey: alice().account_id(),
        netuid: NETUID,
        amount: 1_000 * 1_000_000_000,
    };
    submit(&*chain.client, stake, &alice()).await;
    let (good, _good) = start_miner(&*chain.client, "//Miner1", &root.path().join("good")).await;
    let (weak, _weak) = start_miner(&*chain.client, "//Miner2", &root.path().join("weak")).await;

    let service = service(&chain, &pool, &root.path().join("cache"), None);
    let (alice_row, incentive) = run_until(&service, async {
        // Wait for an epoch in which both models were scored and whose weights were revealed.
        let epoch: i64 = eventually(
            "a revealed epoch scoring both miners",
            Duration::from_secs(240),
            || async {
                sqlx::query_as::<_, (i64,)>(
                    "SELECT w.epoch FROM weight_commits w
             WHERE w.netuid = 1 AND w.status = 'revealed'
               AND (SELECT count(*) FROM model_evals m
                    WHERE m.netuid = w.netuid AND m.epoch = w.epoch AND m.outcome = 'ok') = 2
             ORDER BY w.epoch LIMIT 1",
                )
                .fetch_optional(&pool)
                .await
                .expect("query")
                .map(|(e,)| e)
            },
        )
        .await;
        let row = weight_row(&pool, epoch).await;
        // Commit–reveal v4 (the dev chain's default): one timelocked commit, opened by the chain.
        assert_eq!(row.mode, WeightMode::Timelocked);
        assert_eq!(row.reveal_tx, None);
        // Every commit on chain up to this one is one stored epoch's: none was sent twice.
        let commit_block = row.commit_block.expect("committed");
        let (committed_rows,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM weight_commits WHERE commit_block IS NOT NULL AND commit_block <= $1",
        )
        .bind(i64::try_from(commit_block).expect("block"))
        .fetch_one(&pool)
        .await
        .expect("count");
        assert_eq!(
            commits_until(&chain.client, commit_block).await,
            usize::try_from(committed_rows).expect("count")
        );
        let weight_of = |uid: u16| {
            row.uids
                .iter()
                .position(|&u| u == uid)
                .map_or(0, |i| row.weights[i])
        };
        assert_eq!(weight_of(good), 65_535, "{row:?}");
        assert!(weight_of(weak) < 65_535, "{row:?}");
        // The label track ran in the same epoch: no model answered its prompts (answer_models
        // is 0), so each miner has a stored, unsent batch and a label score of 0.
        let label_rows: Vec<(String, String, f64)> = sqlx::query_as(
            "SELECT outcome, reason, score FROM label_batches WHERE netuid = 1 AND epoch = $1 ORDER BY uid",
        )
        .bind(epoch)
        .fetch_all(&pool)
        .await
        .expect("label rows");
        assert_eq!(label_rows.len(), 2, "{label_rows:?}");
        for (outcome, reason, score) in &label_rows {
            assert_eq!(outcome, "no_tasks", "{label_rows:?}");
            assert!(reason.contains("no model answered"), "{label_rows:?}");
            assert_eq!(*score, 0.0, "{label_rows:?}");
        }

        // The chain holds the revealed row as //Alice's weights, and the first epoch the chain
        // runs after the reveal (until then its incentive is the last epoch's) ranks good first.
        let reveal_block = row.reveal_block.expect("revealed");
        let yuma_block = EpochSchedule::new(NETUID, TEMPO)
            .next_epoch_start(reveal_block)
            .expect("tempo > 0");
        let (alice_row, incentive) = eventually(
            "incentive from the revealed weights",
            Duration::from_secs(60),
            || async {
                let metagraph = chain.client.metagraph(NETUID).await.expect("metagraph");
                if metagraph.block <= yuma_block {
                    return None;
                }
                let alice_row = metagraph.neurons[0].weights.clone();
                let incentive: Vec<u16> = metagraph.neurons.iter().map(|n| n.incentive).collect();
                (!alice_row.is_empty() && incentive[usize::from(good)] > 0)
                    .then_some((alice_row, incentive))
            },
        )
        .await;
        (alice_row, incentive)
    })
    .await;
    let on_chain = |uid: u16| {
        alice_row
            .iter()
            .find(|(u, _)| *u == uid)
            .map_or(0, |(_, w)| *w)
    };
    assert!(on_chain(good) > on_chain(weak), "{alice_row:?}");
    assert!(
        incentive[usize::from(good)] > incentive[usize::from(weak)],
        "incentive {incentive:?} from //Alice's weights {alice_row:?}"
    );
}

/// Runs the loop on this task beside `until`, shuts it down when `until` completes and returns
/// its value.
async fn run_until<T, C: ChainClient + 'static>(
    service: &Service<C, ChainClock<C>>,
    until: impl std::future::Future<Output = T>,
) -> T {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = service.run(async {
        let _ = stopped.await;
    });
    let checks = async {
        let value = until.await;
        let _ = stop.send(());
        value
    };
    let (result, value) = tokio::join!(running, checks);
    result.expect("the loop ends cleanly on shutdown");
    value
}

/// Runs the loop with `failpoint` until it stops there; returns the epoch it stored.
async fn crash_at(chain: &TestChain, pool: &PgPool, cache: &Path, failpoint: Failpoint) -> i64 {
    let crashed = service(chain, pool, cache, Some(failpoint))
        .run(std::future::pending())
        .await;
    assert!(
        matches!(crashed, Err(ServiceError::Stopped(p)) if p == failpoint),
        "{crashed:?}"
    );
    let rows = db::open_weight_commits(pool, i32::from(NETUID))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].status, WeightStatus::Pending);
    rows[0].epoch
}

/// Restarts the loop and runs it until the weights of `epoch` are revealed.
async fn restart_until_revealed(chain: &TestChain, pool: &PgPool, cache: &Path, epoch: i64) {
    let service = service(chain, pool, cache, None);
    run_until(&service, async {
        eventually(
            "the resumed commit revealed",
            Duration::from_secs(60),
            || async {
                let row = weight_row(pool, epoch).await;
                (row.status == WeightStatus::Revealed).then_some(())
            },
        )
        .await;
    })
    .await;
}

/// `--labels.deadline-blocks` of two epochs and a bit: the batches sent in epoch e are kept in
/// `label_pending` across a crash, not sent again by the restarted loop, and collected, stored
/// and paid as epoch e + 2's.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn label_batches_of_a_window_spanning_epochs_survive_a_crash_and_are_collected_later(
    pool: PgPool,
) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 4).await;
    let cache = root.path().join("cache");
    random_model(&root.path().join("weak"), 2);
    let (_weak, _serving) =
        start_miner(&*chain.client, "//Miner2", &root.path().join("weak")).await;
    let window = Some(2 * (u64::from(TEMPO) + 1) + 3);
    let crashed =
        service_with_label_window(&chain, &pool, &cache, Some(Failpoint::AfterSave), window)
            .run(std::future::pending())
            .await;
    assert!(
        matches!(crashed, Err(ServiceError::Stopped(_))),
        "{crashed:?}"
    );
    let pending: Vec<(i64, String)> = sqlx::query_as(
        "SELECT epoch, batches->>'track_seed' FROM label_pending WHERE netuid = 1 ORDER BY epoch",
    )
    .fetch_all(&pool)
    .await
    .expect("pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    let (sent_epoch, track_seed) = pending[0].clone();
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM label_batches")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 0, "nothing is due in the first epoch");

    let service = service_with_label_window(&chain, &pool, &cache, None, window);
    let (epoch, seed) = run_until(&service, async {
        eventually(
            "the crashed epoch's batches collected",
            Duration::from_secs(60),
            || async {
                sqlx::query_as::<_, (i64, String)>(
                    "SELECT epoch, track_seed FROM label_batches WHERE netuid = 1 AND sent_epoch = $1 LIMIT 1",
                )
                .bind(sent_epoch)
                .fetch_optional(&pool)
                .await
                .expect("query")
            },
        )
        .await
    })
    .await;
    assert_eq!(epoch, sent_epoch + 2, "collected two epochs later");
    assert_eq!(
        seed, track_seed,
        "the batches sent before the crash, not new ones"
    );
    let (left,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM label_pending WHERE netuid = 1 AND epoch = $1")
            .bind(sent_epoch)
            .fetch_one(&pool)
            .await
            .expect("count");
    assert_eq!(left, 0, "collected batches are no longer pending");
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_crash_after_sending_the_commit_resumes_without_a_second_commit(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 2).await;
    let cache = root.path().join("cache");
    let epoch = crash_at(&chain, &pool, &cache, Failpoint::AfterSend).await;
    let row = weight_row(&pool, epoch).await;
    assert!(
        row.commit_tx.is_some(),
        "the hash is recorded before sending"
    );

    restart_until_revealed(&chain, &pool, &cache, epoch).await;
    let row = weight_row(&pool, epoch).await;
    assert_eq!(commits_of(&chain.client, &row).await, 1);
    assert!(row.reveal_block > row.commit_block, "{row:?}");
    // The epoch was not scored a second time.
    let (evals,): (i64,) = sqlx::query_as("SELECT count(*) FROM epochs WHERE epoch = $1")
        .bind(epoch)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(evals, 1);
}

/// The same crash on a commit–reveal v4 chain: the timelocked commit sent before the crash is
/// found again after the restart, none is sent twice, and the chain opens it.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_crash_after_sending_a_timelocked_commit_resumes_without_a_second_commit(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 4).await;
    let cache = root.path().join("cache");
    let epoch = crash_at(&chain, &pool, &cache, Failpoint::AfterSend).await;
    assert!(weight_row(&pool, epoch).await.commit_tx.is_some());

    restart_until_revealed(&chain, &pool, &cache, epoch).await;
    let row = weight_row(&pool, epoch).await;
    assert_eq!(row.mode, WeightMode::Timelocked);
    let commit_block = row.commit_block.expect("committed");
    assert_eq!(
        commits_until(&chain.client, commit_block).await,
        1,
        "{row:?}"
    );
    // The chain applied //Alice's weights from it.
    let weights = eventually("the chain's reveal", Duration::from_secs(30), || async {
        let metagraph = chain.client.metagraph(NETUID).await.expect("metagraph");
        let row = metagraph.neurons[0].weights.clone();
        (!row.is_empty()).then_some(row)
    })
    .await;
    assert!(!weights.is_empty());
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_crash_between_saving_and_sending_commits_once_after_the_restart(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 2).await;
    let cache = root.path().join("cache");
    let epoch = crash_at(&chain, &pool, &cache, Failpoint::AfterSave).await;
    assert!(weight_row(&pool, epoch).await.commit_tx.is_none());
    // Nothing was sent yet.
    assert!(alice_calls(&chain.client).await.is_empty());

    restart_until_revealed(&chain, &pool, &cache, epoch).await;
    let row = weight_row(&pool, epoch).await;
    assert_eq!(commits_of(&chain.client, &row).await, 1);
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn a_commit_whose_hash_was_lost_is_found_by_the_validators_last_update(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_chain(&root.path().join("chain"), 2).await;
    let cache = root.path().join("cache");
    let epoch = crash_at(&chain, &pool, &cache, Failpoint::AfterSend).await;
    // Pretend the recorded hash belongs to another extrinsic (as if a retry overwrote it after an
    // earlier attempt had in fact been included): the chain does not know it.
    let fake = H256([0xab; 32]);
    let recorded = db::record_submission(
        &pool,
        i32::from(NETUID),
        epoch,
        db::Submission::Commit,
        fake,
        0,
    )
    .await
    .expect("record");
    assert!(recorded);
    // Let the real commit be included before the restart looks.
    let sent = eventually("the commit included", Duration::from_secs(20), || async {
        let calls = alice_calls(&chain.client).await;
        calls
            .iter()
            .any(|c| matches!(c, Call::CommitWeights { .. }))
            .then_some(())
    })
    .await;
    let () = sent;

    restart_until_revealed(&chain, &pool, &cache, epoch).await;
    let row = weight_row(&pool, epoch).await;
    assert_eq!(commits_of(&chain.client, &row).await, 1);
    assert_eq!(row.commit_tx, Some(RecordedTx::Unknown));
}

/// A child process killed (SIGKILL) and reaped when dropped, so a failing test leaves none behind.
struct Killed(std::process::Child);

impl Killed {
    /// SIGKILL now; returns once the process is gone.
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The folder of the workspace's debug binaries, with `devchain` built into it (once per test
/// process, as `devnet/tests/it` builds its siblings).
fn devchain_binary() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--bins", "-p", "subnet-chain"])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "building devchain failed");
            let dir = Path::new(env!("CARGO_BIN_EXE_validator"))
                .parent()
                .expect("a folder");
            let devchain = dir.join(format!("devchain{}", std::env::consts::EXE_SUFFIX));
            assert!(devchain.exists(), "{} was not built", devchain.display());
            devchain
        })
        .clone()
}

/// The real `devchain node` as a process (dev genesis, tempo [`TEMPO`], a block every
/// [`BLOCK_TIME`], RPC on a free loopback port); killed when dropped.
struct ChainProcess {
    url: String,
    client: DevChainClient,
    /// Its stderr (the node's log), for failure messages.
    log: PathBuf,
    _process: Killed,
}

fn spawn_devchain(dir: &Path) -> ChainProcess {
    let devchain = devchain_binary();
    std::fs::create_dir_all(dir).expect("mkdir");
    let genesis = dir.join("genesis.json");
    let status = std::process::Command::new(&devchain)
        .args(["genesis", "--dev", "--tempo", &TEMPO.to_string(), "--out"])
        .arg(&genesis)
        .status()
        .expect("devchain genesis runs");
    assert!(status.success(), "devchain genesis failed");
    // The kill test below follows hash commits and their reveals: commit–reveal v2.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&genesis).expect("read genesis")).expect("json");
    json["subnets"][0]["hyperparameters"]["commit_reveal_version"] = 2.into();
    std::fs::write(&genesis, serde_json::to_vec_pretty(&json).expect("json")).expect("write");
    let log = dir.join("devchain.log");
    let mut child = std::process::Command::new(&devchain)
        .arg("node")
        .arg("--genesis")
        .arg(&genesis)
        .arg("--data")
        .arg(dir.join("data"))
        .args(["--rpc.addr", "127.0.0.1:0", "--rpc.rate-limit", "0"])
        .args(["--block-time", &BLOCK_TIME.as_millis().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start devchain");
    let stdout = child.stdout.take().expect("piped stdout");
    let process = Killed(child);
    // `node` prints `rpc listening on http://ADDR` once it serves; keep draining stdout after.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = line.strip_prefix("rpc listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "devchain did not say where it listens:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    ChainProcess {
        client: DevChainClient::new(&url).expect("client"),
        url,
        log,
        _process: process,
    }
}

/// Starts the real `validator run` binary validating with //Alice (wallet under `dir`) against
/// the chain at `chain_url`; its log goes to `dir/validator-<n>.log`. Killed when dropped.
fn spawn_validator(chain_url: &str, db_url: &str, dir: &Path, n: u32) -> Killed {
    let wallets = dir.join("wallets");
    subnet_common::wallet::Wallet::new(&wallets, "default", "default")
        .set_hotkey(&alice(), subnet_common::wallet::Protection::Plain, true)
        .expect("write hotkey");
    let competition = dir.join("competition.toml");
    std::fs::write(&competition, competition_text()).expect("write competition");
    let log = std::fs::File::create(dir.join(format!("validator-{n}.log"))).expect("log file");
    Killed(
        std::process::Command::new(env!("CARGO_BIN_EXE_validator"))
            .args([
                "run",
                "--netuid",
                "1",
                "--device",
                "cpu",
                "--chain.poll-ms",
                "20",
            ])
            .arg("--wallet.path")
            .arg(&wallets)
            .args(["--chain.url", chain_url, "--db.url", db_url])
            .arg("--competition")
            .arg(&competition)
            .arg("--cache.dir")
            .arg(dir.join("cache"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start validator"),
    )
}

/// The first epoch after `after` whose commit hash is recorded but not yet revealed, and its
/// status (`pending`: maybe sent, not known to be included; `committed`: included).
async fn unrevealed_commit(pool: &PgPool, after: i64) -> Option<(i64, String)> {
    sqlx::query_as::<_, (i64, String)>(
        "SELECT epoch, status FROM weight_commits
         WHERE commit_tx IS NOT NULL AND status <> 'revealed' AND epoch > $1
         ORDER BY epoch LIMIT 1",
    )
    .bind(after)
    .fetch_optional(pool)
    .await
    .expect("query")
}

async fn all_weight_rows(pool: &PgPool) -> Vec<WeightCommitRecord> {
    sqlx::query_as(
        "SELECT netuid, epoch, uids, weights, salt, version_key, mode, commit_hash, status, commit_tx,
                commit_block, reveal_tx, reveal_block, error
         FROM weight_commits ORDER BY epoch",
    )
    .fetch_all(pool)
    .await
    .expect("rows")
}

#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn the_validator_binary_killed_mid_commit_resumes_without_a_second_commit(pool: PgPool) {
    let root = tempfile::tempdir().expect("tempdir");
    let chain = spawn_devchain(&root.path().join("chain"));
    let db_url = crate::pg::database_url(&pool);

    // SIGKILL the validator once an epoch's commit hash is recorded and its reveal is not. Should
    // the reveal land between the look and the kill, try the next epoch (a few times at most).
    let mut run = 0;
    let mut after = -1;
    let (epoch, status) = loop {
        run += 1;
        assert!(run <= 4, "never killed between a commit and its reveal");
        let mut validator = spawn_validator(&chain.url, &db_url, root.path(), run);
        let (epoch, _) = eventually(
            "a recorded, unrevealed commit",
            Duration::from_secs(120),
            || unrevealed_commit(&pool, after),
        )
        .await;
        validator.kill();
        let status = weight_row(&pool, epoch).await.status;
        if status != WeightStatus::Revealed {
            break (epoch, status);
        }
        after = epoch;
    };
    eprintln!("killed with the commit of epoch {epoch} {status}");

    let mut restarted = spawn_validator(&chain.url, &db_url, root.path(), run + 1);
    let revealed = eventually(
        "the interrupted epoch's commit revealed after the restart",
        Duration::from_secs(90),
        || async {
            let row = weight_row(&pool, epoch).await;
            (row.status == WeightStatus::Revealed).then_some(row)
        },
    )
    .await;
    restarted.kill();
    assert!(
        revealed.reveal_block > revealed.commit_block,
        "{revealed:?}\n{}",
        std::fs::read_to_string(&chain.log).unwrap_or_default()
    );

    // Every commit on chain belongs to exactly one stored epoch, and none was sent twice: an
    // epoch scored again after the kill would have committed a hash under a fresh salt.
    let rows = all_weight_rows(&pool).await;
    let calls = alice_calls(&chain.client).await;
    let mut commits_per_epoch: std::collections::BTreeMap<i64, usize> = Default::default();
    for call in &calls {
        if let Call::CommitWeights { commit_hash, .. } = call {
            let row = rows
                .iter()
                .find(|r| r.commit_hash() == Some(*commit_hash))
                .unwrap_or_else(|| {
                    panic!(
                        "commit {} on chain matches no stored epoch",
                        hex::encode(commit_hash)
                    )
                });
            *commits_per_epoch.entry(row.epoch).or_default() += 1;
        }
    }
    assert_eq!(
        commits_per_epoch.get(&epoch),
        Some(&1),
        "{commits_per_epoch:?}"
    );
    assert!(
        commits_per_epoch.values().all(|&n| n == 1),
        "{commits_per_epoch:?}"
    );
    // The interrupted epoch's reveal is on chain, once, with the salt stored before the kill.
    let WeightMode::CommitReveal { salt, .. } = &revealed.mode else {
        panic!("a commit-reveal row: {revealed:?}");
    };
    let reveals = calls
        .iter()
        .filter(|c| matches!(c, Call::RevealWeights { salt: s, .. } if s == salt))
        .count();
    assert_eq!(reveals, 1, "{revealed:?}");
    // No epoch stored twice.
    let duplicated: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT epoch, count(*) FROM epochs GROUP BY netuid, epoch HAVING count(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .expect("query");
    assert!(duplicated.is_empty(), "{duplicated:?}");
    let stored: Vec<(i64,)> = sqlx::query_as("SELECT epoch FROM epochs WHERE epoch = $1")
        .bind(epoch)
        .fetch_all(&pool)
        .await
        .expect("query");
    assert_eq!(stored.len(), 1, "the interrupted epoch is stored once");
}

/// `validator`'s epoch loop against a Subtensor node (the test node over the SDK's recorded
/// chain, commit–reveal v4 as Subtensor defaults): a miner registers, serves and commits through
/// the Subtensor client, the loop scores its model and sends the epoch's weights as one
/// `commit_timelocked_weights` signed by the validator's hotkey, which the node checks.
#[sqlx::test(migrator = "subnet_validator::db::MIGRATOR")]
async fn an_epoch_on_a_subtensor_node_scores_the_miner_and_commits_timelocked_weights(
    pool: PgPool,
) {
    use subnet_common::chain::ClientOptions;
    use subnet_subtensor::AnyChain;
    use subnet_subtensor::testnode::{TestNode, recorded_chain};
    let root = tempfile::tempdir().expect("tempdir");
    let node = TestNode::start(&recorded_chain(), BLOCK_TIME).await;
    node.set_hyperparameter("tempo", u128::from(TEMPO));
    node.set_hyperparameter("weights_rate_limit", 0);
    // //Alice validates with a permit.
    node.add_neuron(&alice().account_id(), &alice().account_id(), true);
    let chain = Arc::new(
        AnyChain::connect(node.url(), ClientOptions::default())
            .await
            .expect("connect"),
    );
    trained_model(&root.path().join("good"), 1);
    let (uid, _miner) = start_miner(&*chain, "//Miner1", &root.path().join("good")).await;

    let cache = root.path().join("cache");
    let track = ModelTrack::new(
        SignedClient::new(reqwest::Client::new(), alice()),
        cache.clone(),
        select(DeviceChoice::Cpu).expect("cpu"),
        TrackSettings::default(),
    );
    let config = ServiceConfig {
        inclusion_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..ServiceConfig::new(NETUID)
    };
    let service = service_on(Arc::clone(&chain), &pool, track, config);
    let row = run_until(&service, async {
        eventually(
            "a committed epoch that scored the miner",
            Duration::from_secs(240),
            || async {
                let epoch: Option<(i64,)> = sqlx::query_as(
                    "SELECT w.epoch FROM weight_commits w
                     WHERE w.netuid = 1 AND w.status IN ('committed', 'revealed')
                       AND EXISTS (SELECT 1 FROM model_evals m WHERE m.netuid = 1
                                   AND m.epoch = w.epoch AND m.outcome = 'ok')
                     ORDER BY w.epoch LIMIT 1",
                )
                .fetch_optional(&pool)
                .await
                .expect("query");
                match epoch {
                    Some((epoch,)) => Some(weight_row(&pool, epoch).await),
                    None => None,
                }
            },
        )
        .await
    })
    .await;
    assert_eq!(row.mode, WeightMode::Timelocked);
    let weight_of = |u: u16| {
        row.uids
            .iter()
            .position(|&x| x == u)
            .map_or(0, |i| row.weights[i])
    };
    assert_eq!(weight_of(uid), 65_535, "{row:?}");
    let commits: Vec<_> = node
        .applied()
        .into_iter()
        .filter(|a| a.call == "SubtensorModule.commit_timelocked_weights")
        .collect();
    assert!(!commits.is_empty());
    assert!(
        commits
            .iter()
            .all(|c| c.signer == alice().account_id() && c.error.is_none()),
        "{commits:?}"
    );
    // The row's commit is one the node sealed, and it is the only one in its block.
    let in_its_block = commits
        .iter()
        .filter(|c| Some(c.block) == row.commit_block)
        .count();
    assert_eq!(in_its_block, 1, "{row:?} {commits:?}");

    assert!(node.refused().is_empty(), "{:?}", node.refused());
    assert!(node.unknown().is_empty(), "{:?}", node.unknown());
}
