//! A whole subnet in one process, for tests and the epoch bench (`benches/epoch.rs` includes
//! this file): an in-process dev chain (real node, JSON-RPC and block production), `n` real
//! miners on loopback port 0, each serving its own tiny, differently seeded model (so none is a
//! duplicate or near-copy of another), registered at genesis with their axons and model
//! commitments on chain, and `validator run`'s epoch loop ([`Service`]) validating as //Alice.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use subnet_chain::dev::dev_genesis;
use subnet_chain::node::{Chain, Node, unix_millis};
use subnet_chain::rpc::{self, RateLimit, RpcConfig};
use subnet_chain::state::GenesisNeuron;
use subnet_common::btauth::{AllowAnySigner, SignedClient};
use subnet_common::chain::client::{ChainClient, DevChainClient};
use subnet_common::chain::types::Call;
use subnet_common::keys::Keypair;
use subnet_common::protocol::{Manifest, ModelCommitment};
use subnet_miner::startup::{Application, ModelConfig, ServerConfig};
use subnet_model::backend::{Cpu, DeviceChoice, select};
use subnet_model::competition::CompetitionFile;
use subnet_model::config::LlamaConfig;
use subnet_model::io::save_artifact;
use subnet_validator::service::clock::{BlockClock, ChainClock};
use subnet_validator::service::schedule::EpochSchedule;
use subnet_validator::service::{Service, ServiceConfig};
use subnet_validator::tracks::model::{ModelTrack, TrackSettings};

/// The competition every miner enters.
pub const COMPETITION: &str = "byte-llama-v1";
/// The dev subnet.
pub const NETUID: u16 = 1;

/// The shape of a local subnet.
#[derive(Debug, Clone)]
pub struct LocalnetOptions {
    /// Miners, each with its own model (uids 1..=miners; //Alice holds uid 0).
    pub miners: usize,
    /// Blocks per epoch.
    pub tempo: u16,
    /// Time between blocks.
    pub block_time: Duration,
    /// Every miner's architecture (weights seeded by the miner's index).
    pub model: LlamaConfig,
    /// The rules the validator judges by.
    pub competition: CompetitionFile,
}

/// The default competition with `samples` samples of at most `max_seq_len` tokens, evaluating
/// commitments `block_delay` blocks old.
pub fn competition(samples: usize, max_seq_len: usize, block_delay: u64) -> CompetitionFile {
    let text = subnet_validator::eval_cmd::DEFAULT_COMPETITION_TOML
        .replace("samples = 256", &format!("samples = {samples}"))
        .replace("max_seq_len = 128", &format!("max_seq_len = {max_seq_len}"))
        .replace("block_delay = 10", &format!("block_delay = {block_delay}"))
        // Random-initialised models all predict almost uniformly, 0.02 nats apart: only a
        // copy that computes the same function is one here.
        .replace("max_divergence = 0.1", "max_divergence = 0.001");
    CompetitionFile::from_bytes(text.as_bytes()).expect("competition")
}

/// A running local subnet; dropping it stops the chain and the miners.
pub struct Localnet {
    /// A client of the chain's RPC.
    pub chain: Arc<DevChainClient>,
    /// The rules, as given.
    pub competition: CompetitionFile,
    /// Block in which the last model commitment was included.
    pub committed_at: u64,
    /// Holds the chain's block log, the models and the validator's cache.
    pub root: tempfile::TempDir,
    _chain: tokio::sync::watch::Sender<bool>,
    _miners: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// The hotkey of miner `index`.
pub fn miner_key(index: usize) -> Keypair {
    Keypair::from_uri(&format!("//LocalMiner{index}")).expect("key")
}

/// //Alice: the subnet owner, validating.
pub fn alice() -> Keypair {
    Keypair::from_uri("//Alice").expect("key")
}

impl Localnet {
    /// Starts the chain with every miner registered at genesis, writes and serves the models,
    /// stakes on //Alice (a validator permit from the first epoch on), and publishes each
    /// miner's axon and model commitment, waiting until all are included.
    pub async fn start(options: &LocalnetOptions) -> Localnet {
        let root = tempfile::tempdir().expect("tempdir");
        let keys: Vec<Keypair> = (0..options.miners).map(miner_key).collect();
        let mut genesis = dev_genesis(options.tempo, unix_millis()).expect("genesis");
        let subnet = &mut genesis.subnets[0];
        assert!(
            options.miners < usize::from(subnet.hyperparameters.max_allowed_uids),
            "{} miners do not fit the subnet's {} uids",
            options.miners,
            subnet.hyperparameters.max_allowed_uids
        );
        subnet.neurons = keys
            .iter()
            .map(|key| GenesisNeuron {
                hotkey: key.account_id(),
                coldkey: key.account_id(),
                stake: 0,
            })
            .collect();
        let (chain, _) = Chain::open(&genesis, &root.path().join("chain")).expect("open chain");
        let node = Node::new(chain);
        let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
        // Every miner and the validator share 127.0.0.1: no per-IP rate limit.
        let config = RpcConfig {
            rate_limit: RateLimit {
                per_second: 0,
                burst: 0,
            },
            ..RpcConfig::default()
        };
        let router = rpc::router(Arc::clone(&node), config, shutdown_rx.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut stop = shutdown_rx.clone();
        tokio::spawn(rpc::serve(listener, router, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        let mut stop = shutdown_rx;
        tokio::spawn(node.run_block_production(options.block_time, async move {
            let _ = stop.wait_for(|s| *s).await;
        }));
        let chain = Arc::new(DevChainClient::new(&url).expect("client"));

        let stake = Call::AddStake {
            hotkey: alice().account_id(),
            netuid: NETUID,
            amount: 1_000 * 1_000_000_000,
        };
        let staked = chain.submit(stake, &alice()).await.expect("add_stake");

        let mut stops = Vec::with_capacity(keys.len());
        let mut published = Vec::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            let dir = root.path().join("models").join(index.to_string());
            write_model(&dir, &options.model, index as u64 + 1);
            let manifest = manifest_sha256(&dir);
            let (port, stop) = serve_miner(key, &dir).await;
            stops.push(stop);
            published.push(publish(Arc::clone(&chain), key.clone(), port, manifest));
        }
        let mut txs = futures::future::join_all(published)
            .await
            .into_iter()
            .flatten()
            .collect::<Vec<_>>();
        txs.push(staked);
        let mut committed_at = 0;
        for tx in txs {
            let inclusion = chain
                .wait_for_inclusion(tx, Duration::from_secs(60))
                .await
                .expect("included");
            committed_at = committed_at.max(inclusion.block);
        }
        Localnet {
            chain,
            competition: options.competition.clone(),
            committed_at,
            root,
            _chain: shutdown,
            _miners: stops,
        }
    }

    /// The loop as `validator run` builds it (label track off), validating with //Alice, its
    /// artifact cache under the local subnet's root.
    pub fn service(
        &self,
        pool: &PgPool,
        settings: TrackSettings,
    ) -> Service<DevChainClient, ChainClock<DevChainClient>> {
        let track = ModelTrack::new(
            SignedClient::new(
                reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .build()
                    .expect("client"),
                alice(),
            ),
            self.root.path().join("cache"),
            select(DeviceChoice::Cpu).expect("cpu"),
            settings,
        );
        let config = ServiceConfig {
            inclusion_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            ..ServiceConfig::new(NETUID)
        };
        Service::new(
            Arc::clone(&self.chain),
            self.clock(),
            pool.clone(),
            alice(),
            track,
            self.competition.clone(),
            None,
            config,
        )
    }

    /// A clock following the chain.
    pub fn clock(&self) -> ChainClock<DevChainClient> {
        ChainClock::new(Arc::clone(&self.chain), Duration::from_millis(20))
    }

    /// Waits until the head is in an epoch whose seed block is at least `block_delay` blocks
    /// after every commitment, so that every miner is evaluated.
    pub async fn wait_for_eligible_epoch(&self) {
        let clock = self.clock();
        let hp = self.chain.hyperparameters(NETUID).await.expect("hp");
        let schedule = EpochSchedule::new(NETUID, hp.tempo);
        let eligible_from = self.committed_at + self.competition.competition.eval.block_delay;
        loop {
            let head = clock.current_block().await.expect("head");
            if schedule.first_block(schedule.epoch_of(head)) >= eligible_from {
                return;
            }
            let next = schedule.next_epoch_start(head).expect("tempo > 0");
            clock.wait_until(next).await.expect("wait");
        }
    }
}

/// A model of `config` with weights drawn from `seed`, saved to `dir`.
pub fn write_model(dir: &Path, config: &LlamaConfig, seed: u64) {
    let model = config.init_seeded::<Cpu>(&Default::default(), seed);
    save_artifact(&model, config, dir).expect("save");
}

/// The manifest of the artifact in `dir`, as the miner serves it.
pub fn manifest_of(dir: &Path) -> Manifest {
    subnet_common::protocol::manifest_of_dir(COMPETITION, dir).expect("a model directory")
}

/// The manifest hash of the artifact in `dir`, as the miner serves it.
pub fn manifest_sha256(dir: &Path) -> String {
    manifest_of(dir).manifest_sha256
}

/// The tests' smallest model: one layer, hidden 32.
pub fn tiny_config() -> LlamaConfig {
    LlamaConfig {
        hidden_size: 32,
        intermediate_size: 48,
        ..LlamaConfig::tiny()
    }
}

/// Starts a real miner serving `dir` (its model loaded for `/v1/generate`); returns its port and
/// a handle that stops it when dropped.
pub async fn serve_miner(key: &Keypair, dir: &Path) -> (u16, tokio::sync::oneshot::Sender<()>) {
    let config = ServerConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        max_body_bytes: 1 << 16,
        auth_max_age: Duration::from_secs(30),
        model: Some(ModelConfig {
            dir: dir.to_path_buf(),
            competition: COMPETITION.into(),
            device: Some(DeviceChoice::Cpu),
        }),
    };
    let app = Application::build(&config, key.clone(), AllowAnySigner)
        .await
        .expect("miner");
    let port = app.local_addr().expect("addr").port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (port, stop)
}

/// Submits the miner's axon and its model commitment; returns both extrinsics.
async fn publish(
    chain: Arc<DevChainClient>,
    key: Keypair,
    port: u16,
    manifest: String,
) -> Vec<subnet_common::chain::rpc::H256> {
    let axon = Call::ServeAxon {
        netuid: NETUID,
        version: 1,
        ip: u128::from(u32::from(Ipv4Addr::LOCALHOST)),
        port,
        ip_type: 4,
        protocol: 0,
    };
    let commitment = Call::SetCommitment {
        netuid: NETUID,
        data: ModelCommitment::bind(COMPETITION, &key.account_id(), &manifest)
            .expect("commitment")
            .encode(),
    };
    let mut txs = Vec::new();
    for call in [axon, commitment] {
        txs.push(chain.submit(call, &key).await.expect("submit"));
    }
    txs
}
