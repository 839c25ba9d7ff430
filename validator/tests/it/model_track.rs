//! The model track end to end against real miners started in-process: a fine-tuned model, a
//! random one, an exact copy, a near-copy, NaN weights, a miner serving another model than it
//! committed, and the chain-side reasons a uid is skipped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::{Json, Router, extract::Path as UrlPath, extract::State, routing::get, routing::post};
use subnet_common::btauth::{AllowAnySigner, SignedClient};
use subnet_common::chain::types::{AxonInfo, Commitment, Metagraph, NeuronInfo};
use subnet_common::keys::{AccountId, Keypair};
use subnet_common::protocol::{GenerateRequest, GenerateResponse, Manifest, ModelCommitment};
use subnet_miner::startup::{Application, ModelConfig, ServerConfig};
use subnet_model::backend::{Cpu, CpuTrain, DeviceChoice, select};
use subnet_model::competition::{CompetitionFile, eval_seed};
use subnet_model::io::{WEIGHTS_FILE, hf_state_dict, load_artifact, save_artifact};
use subnet_model::tasks::{TaskMix, generate, to_sample};
use subnet_model::tokenizer::Tokenizer;
use subnet_model::train::{TrainConfig, train};
use subnet_validator::artifacts::Limits;
use subnet_validator::tracks::model::base::BaseModel;
use subnet_validator::tracks::model::outcome::{MinerResult, Outcome, SpotStatus};
use subnet_validator::tracks::model::spot::SpotSettings;
use subnet_validator::tracks::model::{EpochInput, ModelTrack, TrackSettings};

use super::localnet::{COMPETITION, manifest_of, tiny_config};

/// The default competition with few, short samples.
pub(super) fn competition() -> CompetitionFile {
    CompetitionFile::from_bytes(&competition_bytes()).expect("competition")
}

/// The text of [`competition`].
fn competition_bytes() -> Vec<u8> {
    subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML
        .replace("samples = 256", "samples = 24")
        .replace("max_seq_len = 128", "max_seq_len = 48")
        // Random-initialised models all predict almost uniformly, 0.02 nats apart: only a
        // copy that computes the same function is one here.
        .replace("max_divergence = 0.1", "max_divergence = 0.001")
        .into_bytes()
}

/// The epoch the tests score: seed block 100 (seed from block hash `[9; 32]`), head 110.
pub(super) fn epoch_input<'a>(
    metagraph: &'a Metagraph,
    commitments: &'a [Commitment],
    competition: &'a CompetitionFile,
) -> EpochInput<'a> {
    EpochInput {
        netuid: 1,
        seed: eval_seed([9; 32], 1),
        seed_block: 100,
        current_block: 110,
        metagraph,
        commitments,
        competition,
        dataset: None,
    }
}

/// A randomly initialised model saved to `dir`.
pub(super) fn random_model(dir: &Path, seed: u64) {
    let model = tiny_config().init_seeded::<Cpu>(&Default::default(), seed);
    save_artifact(&model, &tiny_config(), dir).expect("save");
}

/// `random_model(seed)` fine-tuned on generated tasks (other seeds than the epoch's), saved to
/// `dir` (the trainer's checkpoint stays in `dir/../train`).
fn trained_model(dir: &Path, seed: u64) -> Duration {
    let started = Instant::now();
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
    let out = dir.with_file_name("train");
    train(
        model,
        &tiny_config(),
        &samples,
        &config,
        &out,
        false,
        &mut |_| {},
    )
    .expect("train");
    copy_dir(&out, dir);
    started.elapsed()
}

/// Writes the weights of the model in `from` to `to/model.safetensors`, each value passed through
/// `edit`, and copies its config.
fn edited_copy(from: &Path, to: &Path, edit: impl Fn(usize, f32) -> f32) {
    let (config, model) = load_artifact::<Cpu>(from, u64::MAX, &Default::default()).expect("load");
    std::fs::create_dir_all(to).expect("mkdir");
    let mut raw = Vec::new();
    for (name, (values, shape)) in hf_state_dict(&model).expect("state dict") {
        let bytes: Vec<u8> = values
            .iter()
            .enumerate()
            .flat_map(|(i, &v)| edit(i, v).to_le_bytes())
            .collect();
        raw.push((name, bytes, shape));
    }
    let views: Vec<_> = raw
        .iter()
        .map(|(name, bytes, shape)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("view");
            (name.as_str(), view)
        })
        .collect();
    std::fs::write(
        to.join(WEIGHTS_FILE),
        safetensors::serialize(views, None).expect("ser"),
    )
    .expect("write");
    config.save(to).expect("config");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for name in ["config.json", WEIGHTS_FILE] {
        std::fs::copy(from.join(name), to.join(name)).expect("copy");
    }
}

/// A running real miner.
pub(super) struct Miner {
    pub(super) hotkey: Keypair,
    pub(super) port: u16,
    pub(super) manifest_sha256: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// Starts a real miner serving `dir`; with `generate`, its model is loaded for `/v1/generate`
/// (a miner refuses to load weights that validators would refuse).
pub(super) async fn start_miner(uri: &str, dir: &Path, generate: bool) -> Miner {
    let hotkey = Keypair::from_uri(uri).expect("key");
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 16,
        auth_max_age: Duration::from_secs(10),
        model: Some(ModelConfig {
            dir: dir.to_path_buf(),
            competition: COMPETITION.into(),
            device: generate.then_some(DeviceChoice::Cpu),
        }),
    };
    let app = Application::build(&config, hotkey.clone(), AllowAnySigner)
        .await
        .expect("miner");
    let port = app.local_addr().expect("addr").port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    Miner {
        hotkey,
        port,
        manifest_sha256: manifest_of(dir).manifest_sha256,
        _shutdown: tx,
    }
}

/// A dishonest miner: serves its committed artifact, but answers `/v1/generate` with fixed
/// tokens instead of its model's output (as a miner running another model would).
async fn start_liar(dir: PathBuf) -> (u16, String) {
    let manifest = manifest_of(&dir);
    let hash = manifest.manifest_sha256.clone();
    let state = Arc::new((dir, manifest));
    let app = Router::new()
        .route(
            "/v1/model/manifest",
            get(|State(s): State<Arc<(PathBuf, Manifest)>>| async move { Json(s.1.clone()) }),
        )
        .route(
            "/v1/model/files/{name}",
            get(
                |State(s): State<Arc<(PathBuf, Manifest)>>, UrlPath(name): UrlPath<String>| async move {
                    std::fs::read(s.0.join(name)).unwrap_or_default()
                },
            ),
        )
        .route(
            "/v1/generate",
            post(|Json(request): Json<GenerateRequest>| async move {
                Json(GenerateResponse {
                    output_ids: vec![b'7'.into(); request.max_new_tokens as usize],
                    text: "7".repeat(request.max_new_tokens as usize),
                })
            }),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, hash)
}

pub(super) fn neuron(uid: u16, hotkey: AccountId, port: u16) -> NeuronInfo {
    NeuronInfo::registered(
        1,
        uid,
        hotkey,
        hotkey,
        AxonInfo::ipv4(Ipv4Addr::LOCALHOST, port),
    )
}

pub(super) fn commitment(hotkey: AccountId, uid: u16, block: u64, manifest: &str) -> Commitment {
    Commitment {
        hotkey,
        uid,
        block,
        data: ModelCommitment::bind(COMPETITION, &hotkey, manifest)
            .expect("commitment")
            .encode(),
    }
}

fn closed_port() -> u16 {
    let listener =
        std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranks_real_miners_good_over_weak_and_zeroes_copies_broken_and_liars() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| root.path().join(name);
    let trained_in = trained_model(&dir("good"), 1);
    random_model(&dir("weak"), 2);
    copy_dir(&dir("good"), &dir("exact"));
    edited_copy(&dir("good"), &dir("near"), |i, v| {
        v + if i % 2 == 0 { 1e-5 } else { -1e-5 }
    });
    edited_copy(
        &dir("weak"),
        &dir("nan"),
        |i, v| if i == 5 { f32::NAN } else { v },
    );
    random_model(&dir("lied"), 3);
    eprintln!("fine-tuning the good model took {trained_in:?}");

    // uid: (model, commit block)
    let good = start_miner("//Good", &dir("good"), true).await; // 0 @ 50
    let weak = start_miner("//Weak", &dir("weak"), true).await; // 1 @ 60
    let exact = start_miner("//Exact", &dir("exact"), true).await; // 2 @ 70
    let near = start_miner("//Near", &dir("near"), true).await; // 3 @ 80
    let nan = start_miner("//Nan", &dir("nan"), false).await; // 4 @ 55
    let (liar_port, liar_hash) = start_liar(dir("lied")).await; // 5 @ 65
    let liar = Keypair::from_uri("//Liar").expect("key").account_id();
    let [silent, late, bare] = ["//Silent", "//Late", "//Bare"]
        .map(|uri| Keypair::from_uri(uri).expect("key").account_id());

    let miners = [&good, &weak, &exact, &near, &nan];
    let blocks = [50, 60, 70, 80, 55];
    let mut neurons: Vec<NeuronInfo> = miners
        .iter()
        .enumerate()
        .map(|(uid, m)| neuron(uid as u16, m.hotkey.account_id(), m.port))
        .collect();
    let mut commitments: Vec<Commitment> = miners
        .iter()
        .enumerate()
        .map(|(uid, m)| {
            commitment(
                m.hotkey.account_id(),
                uid as u16,
                blocks[uid],
                &m.manifest_sha256,
            )
        })
        .collect();
    neurons.push(neuron(5, liar, liar_port));
    commitments.push(commitment(liar, 5, 65, &liar_hash));
    neurons.push(neuron(6, silent, closed_port())); // unreachable
    commitments.push(commitment(silent, 6, 50, &"ab".repeat(32)));
    neurons.push(neuron(7, late, good.port)); // too recent
    commitments.push(commitment(late, 7, 95, &weak.manifest_sha256));
    neurons.push(neuron(8, bare, good.port)); // no commitment
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };

    let cache = tempfile::tempdir().expect("cache");
    let client = SignedClient::new(
        reqwest::Client::new(),
        Keypair::from_uri("//Alice").expect("key"),
    );
    let settings = TrackSettings {
        fetch: Limits {
            request_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            deadline: Duration::from_secs(30),
            ..Limits::default()
        },
        spot: SpotSettings {
            per_epoch: 100,
            max_new_tokens: 8,
            timeout: Duration::from_secs(20),
            ..SpotSettings::default()
        },
        ..TrackSettings::default()
    };
    let device = select(DeviceChoice::Cpu).expect("cpu");
    let track = ModelTrack::new(client, cache.path().to_path_buf(), device, settings);
    let competition = competition();
    let input = epoch_input(&metagraph, &commitments, &competition);

    let started = Instant::now();
    let result = track.score_epoch(&input).await.expect("epoch");
    eprintln!("first epoch: {:?}", started.elapsed());
    let by_uid = |uid: usize| -> &MinerResult { &result.miners[uid] };
    for miner in &result.miners {
        eprintln!(
            "uid {} {:?} {:?} mean {:?} score {:.4} spot {:?}",
            miner.uid, miner.outcome, miner.reason, miner.mean_loss, miner.score, miner.spot_check
        );
    }
    let outcomes: Vec<Outcome> = result.miners.iter().map(|m| m.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Duplicate,
            Outcome::Copy,
            Outcome::BadModel,
            Outcome::SpotCheckFailed,
            Outcome::Unreachable,
            Outcome::TooRecent,
            Outcome::NoCommitment,
        ]
    );
    assert_eq!(result.samples, 24);
    let (good_r, weak_r) = (by_uid(0), by_uid(1));
    assert_eq!(good_r.losses.len(), 24);
    // Each loss comes with the number of completion tokens it averages over.
    assert_eq!(good_r.sample_tokens.len(), 24);
    assert!(good_r.sample_tokens.iter().all(|&t| t > 0));
    assert_eq!(weak_r.sample_tokens, good_r.sample_tokens, "same samples");
    for miner in &result.miners {
        assert_eq!(
            miner.sample_tokens.len(),
            miner.losses.len(),
            "uid {}",
            miner.uid
        );
    }
    assert!(
        by_uid(4).sample_tokens.is_empty(),
        "a model that failed to load"
    );
    assert!(
        good_r.mean_loss < weak_r.mean_loss,
        "fine-tuning lowers the loss"
    );
    assert!(good_r.score > weak_r.score && weak_r.score > 0.0);
    assert!((good_r.score + weak_r.score - 1.0).abs() < 1e-12);
    assert!(result.miners[2..].iter().all(|m| m.score == 0.0));
    assert!(by_uid(2).reason.contains("uid 0"));
    assert!(by_uid(3).reason.contains("uid 0"));
    assert!(
        by_uid(4).reason.contains("non-finite"),
        "{}",
        by_uid(4).reason
    );
    assert!(
        by_uid(5).reason.contains("greedy choice"),
        "{}",
        by_uid(5).reason
    );
    // Honest real miners answer /v1/generate with their model's greedy output.
    for uid in [0, 1] {
        let spot = by_uid(uid)
            .spot_check
            .as_ref()
            .expect("every candidate is checked");
        assert_eq!(
            spot.status,
            SpotStatus::Passed,
            "uid {uid}: {}",
            spot.detail
        );
    }

    // The same epoch again: artifacts from the disk cache, losses from the evaluation cache.
    let started = Instant::now();
    let again = track.score_epoch(&input).await.expect("epoch");
    eprintln!("second epoch (cached): {:?}", started.elapsed());
    assert!(again.miners[..2].iter().all(|m| m.cached));
    // The evaluation cache keeps the token counts with the losses.
    assert_eq!(
        again.miners[0].sample_tokens,
        result.miners[0].sample_tokens
    );
    let scores = |r: &subnet_validator::tracks::model::ModelTrackResult| -> Vec<(Outcome, f64)> {
        r.miners.iter().map(|m| (m.outcome, m.score)).collect()
    };
    assert_eq!(scores(&again), scores(&result));
}

/// The competition with `[base]` pinning the model in `base`.
fn competition_over(base: &Path) -> CompetitionFile {
    let text = format!(
        "{}\n[base]\nmanifest_sha256 = \"{}\"\n",
        std::str::from_utf8(&competition_bytes()).expect("utf-8"),
        manifest_of(base).manifest_sha256
    );
    CompetitionFile::from_bytes(text.as_bytes()).expect("competition")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_models_that_beat_the_pinned_base_score() {
    let root = tempfile::tempdir().expect("tempdir");
    let dir = |name: &str| root.path().join(name);
    random_model(&dir("base"), 2);
    copy_dir(&dir("base"), &dir("upload"));
    edited_copy(&dir("base"), &dir("noisy"), |i, v| {
        v * if i % 2 == 0 { 1.02 } else { 0.98 }
    });
    trained_model(&dir("good"), 1);

    // uid: (model, commit block): the uploaded base first, then a perturbed base, then a model
    // trained to do the tasks.
    let upload = start_miner("//Upload", &dir("upload"), false).await; // 0 @ 50
    let noisy = start_miner("//Noisy", &dir("noisy"), false).await; // 1 @ 55
    let good = start_miner("//Good", &dir("good"), false).await; // 2 @ 60
    let miners = [&upload, &noisy, &good];
    let neurons = miners
        .iter()
        .enumerate()
        .map(|(uid, m)| neuron(uid as u16, m.hotkey.account_id(), m.port))
        .collect();
    let commitments: Vec<Commitment> = miners
        .iter()
        .zip([50, 55, 60])
        .enumerate()
        .map(|(uid, (m, block))| {
            commitment(m.hotkey.account_id(), uid as u16, block, &m.manifest_sha256)
        })
        .collect();
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };
    let competition = competition_over(&dir("base"));
    let input = epoch_input(&metagraph, &commitments, &competition);
    let cache = tempfile::tempdir().expect("cache");
    let track = |base| {
        let client = SignedClient::new(
            reqwest::Client::new(),
            Keypair::from_uri("//Alice").expect("key"),
        );
        let settings = TrackSettings {
            spot: SpotSettings {
                per_epoch: 0,
                ..SpotSettings::default()
            },
            ..TrackSettings::default()
        };
        let device = select(DeviceChoice::Cpu).expect("cpu");
        ModelTrack::new(client, cache.path().to_path_buf(), device, settings).with_base(base)
    };

    // A validator without the base cannot score the competition, and says which flag is missing.
    let error = track(None).score_epoch(&input).await.unwrap_err();
    assert!(error.to_string().contains("--model.base"), "{error}");

    let base = BaseModel::for_competition(&competition.competition, Some(&dir("base")))
        .expect("the pinned base");
    let result = track(base).score_epoch(&input).await.expect("epoch");
    for miner in &result.miners {
        eprintln!(
            "uid {} {:?} {:?} mean {:?} score {:.4}",
            miner.uid, miner.outcome, miner.reason, miner.mean_loss, miner.score
        );
    }
    let base = result.base.as_ref().expect("the base was evaluated");
    assert_eq!(base.losses.len(), 24);
    assert_eq!(base.manifest_sha256, upload.manifest_sha256);
    // The upload of the base: its losses are the base's, and it earns nothing.
    assert_eq!(result.miners[0].outcome, Outcome::NotBetterThanBase);
    assert_eq!(result.miners[0].losses, base.losses);
    // The perturbed base (also a copy of the upload by function): not better than the base.
    assert_eq!(result.miners[1].outcome, Outcome::NotBetterThanBase);
    assert_eq!((result.miners[0].score, result.miners[1].score), (0.0, 0.0));
    // The trained model takes the whole track.
    assert_eq!(result.miners[2].outcome, Outcome::Ok);
    assert_eq!(result.miners[2].score, 1.0);
    assert!(result.miners[2].mean_loss.expect("evaluated") < base.mean_loss);
}

/// A miner that answers every request with a large declared body and then sends one byte every
/// `every` (each under the read timeout, so only the throughput floor or the cut-off stops it).
async fn start_trickler(every: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 8192];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                            content-length: 100000\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(every).await;
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A miner that redirects every request to `target`; returns its port.
async fn start_redirector(target: SocketAddr) -> u16 {
    let location = format!("http://{target}/v1/model/manifest");
    let app = Router::new().fallback(move || {
        let location = location.clone();
        async move {
            (
                axum::http::StatusCode::TEMPORARY_REDIRECT,
                [(axum::http::header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// A server that counts the requests it gets (a redirect's target).
async fn start_counter() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = Router::new().fallback(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async { "secret" }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// Uids 0..n-1 are hostile (ports given), uid n is an honest real miner; returns the epoch input
/// parts.
/// A subnet of `miners`, uid = index, each committed at block 50, read at block 110.
pub(super) fn subnet_of(miners: &[&Miner]) -> (Metagraph, Vec<Commitment>) {
    let mut neurons = Vec::new();
    let mut commitments = Vec::new();
    for (uid, miner) in miners.iter().enumerate() {
        let hotkey = miner.hotkey.account_id();
        neurons.push(neuron(uid as u16, hotkey, miner.port));
        commitments.push(commitment(hotkey, uid as u16, 50, &miner.manifest_sha256));
    }
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };
    (metagraph, commitments)
}

/// The default settings without spot-checks (for miners that serve no `/v1/generate`).
pub(super) fn without_spot_checks() -> TrackSettings {
    TrackSettings {
        spot: SpotSettings {
            per_epoch: 0,
            ..SpotSettings::default()
        },
        ..TrackSettings::default()
    }
}

fn hostile_subnet(hostile: &[(u16, &str)], honest: &Miner) -> (Metagraph, Vec<Commitment>) {
    let mut neurons = Vec::new();
    let mut commitments = Vec::new();
    for (uid, (port, uri)) in hostile.iter().enumerate() {
        let hotkey = Keypair::from_uri(uri).expect("key").account_id();
        neurons.push(neuron(uid as u16, hotkey, *port));
        let fake_hash = format!("{:02x}", uid + 1).repeat(32);
        commitments.push(commitment(hotkey, uid as u16, 50, &fake_hash));
    }
    let uid = hostile.len() as u16;
    let hotkey = honest.hotkey.account_id();
    neurons.push(neuron(uid, hotkey, honest.port));
    commitments.push(commitment(hotkey, uid, 50, &honest.manifest_sha256));
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };
    (metagraph, commitments)
}

async fn score_hostile(
    settings: TrackSettings,
    metagraph: &Metagraph,
    commitments: &[Commitment],
) -> (subnet_validator::tracks::model::ModelTrackResult, Duration) {
    score_at(settings, metagraph, commitments, 110).await
}

/// One epoch seeded at block 100, scored by a validator that read the chain at `current_block`.
async fn score_at(
    settings: TrackSettings,
    metagraph: &Metagraph,
    commitments: &[Commitment],
    current_block: u64,
) -> (subnet_validator::tracks::model::ModelTrackResult, Duration) {
    score_in(
        &competition(),
        settings,
        metagraph,
        commitments,
        current_block,
    )
    .await
}

/// [`score_at`] in `competition`.
async fn score_in(
    competition: &CompetitionFile,
    settings: TrackSettings,
    metagraph: &Metagraph,
    commitments: &[Commitment],
    current_block: u64,
) -> (subnet_validator::tracks::model::ModelTrackResult, Duration) {
    let cache = tempfile::tempdir().expect("cache");
    // The validator's own client: no redirects.
    let http = subnet_validator::artifacts::miner_http_client().expect("client");
    let client = SignedClient::new(http, Keypair::from_uri("//Alice").expect("key"));
    let device = select(DeviceChoice::Cpu).expect("cpu");
    let track = ModelTrack::new(client, cache.path().to_path_buf(), device, settings);
    let input = EpochInput {
        netuid: 1,
        seed: eval_seed([9; 32], 1),
        seed_block: 100,
        current_block,
        metagraph,
        commitments,
        competition,
        dataset: None,
    };
    let started = Instant::now();
    let result = track.score_epoch(&input).await.expect("epoch");
    let took = started.elapsed();
    for miner in &result.miners {
        eprintln!("uid {} {:?} {}", miner.uid, miner.outcome, miner.reason);
    }
    (result, took)
}

/// More tricklers than fetch slots and a redirecting miner cannot keep the honest miner (last
/// in the queue) from being scored within seconds, far inside the 10-minute fetch deadline; the
/// redirect is recorded and its target never contacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tricklers_and_redirects_leave_the_honest_miner_scored_on_time() {
    let root = tempfile::tempdir().expect("tempdir");
    random_model(&root.path().join("honest"), 4);
    let honest = start_miner("//Honest", &root.path().join("honest"), false).await;
    let every = Duration::from_millis(200);
    let (target, hits) = start_counter().await;
    let hostile = [
        (start_trickler(every).await, "//Trickle1"),
        (start_trickler(every).await, "//Trickle2"),
        (start_trickler(every).await, "//Trickle3"),
        (start_redirector(target).await, "//Redirect"),
    ];
    let (metagraph, commitments) = hostile_subnet(&hostile, &honest);
    let settings = TrackSettings {
        fetch: Limits {
            throughput_grace: Duration::from_secs(1),
            min_bytes_per_sec: 64 << 10,
            ..Limits::default()
        },
        fetch_concurrency: 2,
        spot: SpotSettings {
            per_epoch: 0,
            ..SpotSettings::default()
        },
        ..TrackSettings::default()
    };
    let (result, took) = score_hostile(settings, &metagraph, &commitments).await;
    let outcomes: Vec<Outcome> = result.miners.iter().map(|m| m.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Timeout,
            Outcome::Timeout,
            Outcome::Timeout,
            Outcome::Redirect,
            Outcome::Ok
        ]
    );
    for trickler in &result.miners[..3] {
        assert!(trickler.reason.contains("too slow"), "{}", trickler.reason);
    }
    assert!(result.miners[4].score > 0.0);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    let redirect = &result.miners[3].reason;
    assert!(
        !redirect.contains(&target.port().to_string()),
        "the target is not recorded: {redirect}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// Without a throughput floor, the epoch's cut-off still ends a trickler's fetch: the honest
/// miner is scored and the trickler recorded as `timeout` at the cut-off, not the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_epoch_cut_off_ends_a_trickle_the_floor_lets_through() {
    let root = tempfile::tempdir().expect("tempdir");
    random_model(&root.path().join("honest"), 5);
    let honest = start_miner("//Honest2", &root.path().join("honest"), false).await;
    let hostile = [(
        start_trickler(Duration::from_millis(100)).await,
        "//Trickle4",
    )];
    let (metagraph, commitments) = hostile_subnet(&hostile, &honest);
    let settings = TrackSettings {
        fetch: Limits {
            min_bytes_per_sec: 0,
            ..Limits::default()
        },
        fetch_budget: Duration::from_secs(3),
        spot: SpotSettings {
            per_epoch: 0,
            ..SpotSettings::default()
        },
        ..TrackSettings::default()
    };
    let (result, took) = score_hostile(settings, &metagraph, &commitments).await;
    assert_eq!(result.miners[0].outcome, Outcome::Timeout);
    assert!(
        result.miners[0].reason.contains("cut-off"),
        "{}",
        result.miners[0].reason
    );
    assert_eq!(result.miners[1].outcome, Outcome::Ok);
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(15),
        "{took:?}"
    );
}

/// A miner's own tokenizer is refused: in a byte-level competition no artifact may carry a
/// `tokenizer.json` (its normalizer could pad every completion with predictable tokens and lower
/// the mean loss of any model), so the padded artifact scores 0 as `bad_model` while the honest
/// miner is scored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_with_its_own_tokenizer_is_refused_in_a_byte_level_competition() {
    let root = tempfile::tempdir().expect("tempdir");
    random_model(&root.path().join("honest"), 6);
    random_model(&root.path().join("padded"), 6);
    // Any tokenizer at all: it is refused by its presence, before it is read.
    std::fs::write(root.path().join("padded/tokenizer.json"), b"{}").expect("write");
    let honest = start_miner("//Honest3", &root.path().join("honest"), false).await;
    let padded = start_miner("//Padded", &root.path().join("padded"), false).await;
    let (metagraph, commitments) = subnet_of(&[&padded, &honest]);
    let settings = without_spot_checks();
    let (result, _) = score_hostile(settings, &metagraph, &commitments).await;
    assert_eq!(result.miners[0].outcome, Outcome::BadModel);
    assert!(
        result.miners[0].reason.contains("byte-level"),
        "{}",
        result.miners[0].reason
    );
    assert_eq!(result.miners[0].score, 0.0);
    assert_eq!(result.miners[1].outcome, Outcome::Ok);
    assert!(result.miners[1].score > 0.0);
}

/// A chat competition: the fixture byte-level BPE tokenizer (355 ids) with a small chat
/// template, pinned by sha256; each task is a conversation rendered with it, and three open
/// instructions are answered in at most 6 tokens. Same id as the default, so that the
/// in-process miners' manifests name it.
fn chat_competition(tokenizer: &[u8], config: &[u8]) -> CompetitionFile {
    use sha2::{Digest, Sha256};
    let text = format!(
        "{}\n[tokenizer]\nsha256 = \"{}\"\nconfig_sha256 = \"{}\"\n\
         [open]\nsamples = 3\nmax_new_tokens = 6\nmargin = 0.05\n",
        subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML
            .replace("samples = 256", "samples = 12")
            .replace("max_seq_len = 128", "max_seq_len = 48")
            .replace("block_delay = 10", "block_delay = 10\nchat = true")
            // Random models: see `competition`.
            .replace("max_divergence = 0.1", "max_divergence = 0.001"),
        hex::encode(Sha256::digest(tokenizer)),
        hex::encode(Sha256::digest(config)),
    );
    CompetitionFile::from_bytes(text.as_bytes()).expect("chat competition")
}

/// A random model for [`chat_competition`]'s tokenizer, with its tokenizer files, in `dir`.
fn random_chat_model(dir: &Path, seed: u64, tokenizer: &[u8], config: &[u8]) {
    let config_json = subnet_model::config::LlamaConfig {
        vocab_size: 360,
        bos_token_id: Some(0),
        eos_token_id: Some(1),
        // Room for the open instructions' prompts (about 110 tokens) and their answers.
        max_position_embeddings: 160,
        ..tiny_config()
    };
    let model = config_json.init_seeded::<Cpu>(&Default::default(), seed);
    save_artifact(&model, &config_json, dir).expect("save");
    std::fs::write(dir.join("tokenizer.json"), tokenizer).expect("write");
    std::fs::write(dir.join("tokenizer_config.json"), config).expect("write");
}

/// In a chat competition every model brings the pinned tokenizer and its chat template, and is
/// scored on conversations rendered with it; a model without a tokenizer is `bad_model`. The
/// epoch used to fail as a whole, building byte-level samples a conversation cannot have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_competition_scores_models_on_their_own_chat_template() {
    let tokenizer = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../model/tests/fixtures/tokenizer-bytelevel-bpe/tokenizer.json"
    ))
    .expect("fixture tokenizer");
    let config = serde_json::to_vec(&serde_json::json!({
        "bos_token": "<|begin_of_text|>",
        "eos_token": "<|end_of_text|>",
        "chat_template": "{% for m in messages %}<|begin_of_text|>{{ m.role }}\n{{ m.content }}<|end_of_text|>\n{% endfor %}{% if add_generation_prompt %}<|begin_of_text|>assistant\n{% endif %}",
    }))
    .expect("json");
    let competition = chat_competition(&tokenizer, &config);
    let root = tempfile::tempdir().expect("tempdir");
    random_chat_model(&root.path().join("one"), 21, &tokenizer, &config);
    random_chat_model(&root.path().join("two"), 22, &tokenizer, &config);
    random_model(&root.path().join("bytes"), 23);
    let one = start_miner("//ChatOne", &root.path().join("one"), false).await;
    let two = start_miner("//ChatTwo", &root.path().join("two"), false).await;
    let bytes = start_miner("//ChatBytes", &root.path().join("bytes"), false).await;
    let (metagraph, commitments) = subnet_of(&[&one, &two, &bytes]);
    let settings = without_spot_checks();
    let (result, _) = score_in(&competition, settings, &metagraph, &commitments, 110).await;
    assert_eq!(result.samples, 12);
    for miner in &result.miners[..2] {
        assert_eq!(miner.outcome, Outcome::Ok, "{}", miner.reason);
        assert_eq!(miner.losses.len(), 12);
        assert!(miner.losses.iter().all(|l| l.is_finite() && *l > 0.0));
    }
    assert_ne!(result.miners[0].losses, result.miners[1].losses);
    // Each answered the open instructions: one share of constraints kept per instruction.
    for miner in &result.miners[..2] {
        assert_eq!(miner.following.len(), 3, "{miner:?}");
        assert!(miner.following.iter().all(|f| (0.0..=1.0).contains(f)));
    }
    assert!(result.miners[2].following.is_empty());
    assert_eq!(result.miners[2].outcome, Outcome::BadModel);
    assert!(
        result.miners[2].reason.contains("tokenizer"),
        "{}",
        result.miners[2].reason
    );
}

/// The spot-check is mandatory by default: a miner that serves its artifact but no
/// `/v1/generate` scores 0 for the epoch as `spot_check_failed`, with the reason recorded, while
/// the miner that answers is scored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_does_not_answer_the_spot_check_scores_zero_by_default() {
    let root = tempfile::tempdir().expect("tempdir");
    random_model(&root.path().join("serving"), 11);
    random_model(&root.path().join("silent"), 12);
    let serving = start_miner("//Serving", &root.path().join("serving"), true).await;
    let silent = start_miner("//Silent", &root.path().join("silent"), false).await;
    let (metagraph, commitments) = subnet_of(&[&serving, &silent]);
    let settings = TrackSettings::default();
    assert!(settings.spot.required && settings.spot.per_epoch >= 2);
    let (result, _) = score_hostile(settings, &metagraph, &commitments).await;
    assert_eq!(
        result.miners[0].outcome,
        Outcome::Ok,
        "{:?}",
        result.miners[0]
    );
    assert_eq!(result.miners[0].score, 1.0);
    let silent = &result.miners[1];
    assert_eq!(silent.outcome, Outcome::SpotCheckFailed, "{silent:?}");
    assert_eq!(silent.score, 0.0);
    let detail = &silent.spot_check.as_ref().expect("recorded").detail;
    assert!(detail.contains("/v1/generate"), "{detail}");
}

/// Two honest validators that read the chain at different heads score the epoch identically:
/// nothing in the scoring depends on the head (the fitted temperatures, the contests, the copy
/// checks and the spot-checks' verdicts are functions of the samples and the artifacts), even
/// though each validator draws its own spot-check secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_reading_different_heads_give_bit_identical_scores() {
    let root = tempfile::tempdir().expect("tempdir");
    random_model(&root.path().join("early"), 7);
    random_model(&root.path().join("late"), 8);
    let early = start_miner("//Early", &root.path().join("early"), true).await;
    let late = start_miner("//Late2", &root.path().join("late"), true).await;
    let mut neurons = Vec::new();
    let mut commitments = Vec::new();
    for (uid, (miner, block)) in [(&early, 20), (&late, 85)].into_iter().enumerate() {
        let hotkey = miner.hotkey.account_id();
        neurons.push(neuron(uid as u16, hotkey, miner.port));
        commitments.push(commitment(
            hotkey,
            uid as u16,
            block,
            &miner.manifest_sha256,
        ));
    }
    let metagraph = Metagraph {
        netuid: 1,
        block: 110,
        neurons,
    };
    let settings = TrackSettings::default;
    let (soon, _) = score_at(settings(), &metagraph, &commitments, 101).await;
    // Thousands of blocks later: the head must not matter.
    let (later, _) = score_at(settings(), &metagraph, &commitments, 9_000).await;
    assert!(
        soon.miners.iter().all(|m| m.outcome == Outcome::Ok),
        "{soon:?}"
    );
    for (a, b) in soon.miners.iter().zip(&later.miners) {
        let passed = |m: &MinerResult| {
            m.spot_check
                .as_ref()
                .is_some_and(|c| c.status == SpotStatus::Passed)
        };
        assert!(passed(a) && passed(b), "{a:?} {b:?}");
        assert_eq!(a.score.to_bits(), b.score.to_bits(), "uid {}", a.uid);
        assert_eq!(a.win_rate.to_bits(), b.win_rate.to_bits(), "uid {}", a.uid);
    }
}
