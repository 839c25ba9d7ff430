//! Building and running a dev chain node: [`Application::build`] opens the block log (replaying
//! it), installs the Prometheus recorder ([`crate::metrics`]) and binds the RPC listener; [`Application::run_until`] produces blocks and serves JSON-RPC
//! until a shutdown future resolves, then stops both cleanly. `devchain node` is a thin caller
//! (resolve [`NodeConfig`] from the flags, build, print the address, run until Ctrl-C/SIGTERM);
//! tests build the same [`Application`] in-process on port 0.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::node::{Chain, Node};
use crate::rpc::{self, RpcConfig};
use crate::state::Genesis;

/// Settings of a node, resolved from the command line (or written by a test).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The chain's genesis; every node of one chain must start from the same one.
    pub genesis: Genesis,
    /// Directory of the block log; created if missing.
    pub data_dir: PathBuf,
    /// Address of the JSON-RPC server; port 0 picks a free port ([`Application::local_addr`]).
    pub rpc_addr: SocketAddr,
    /// Time between blocks.
    pub block_time: Duration,
    /// Limits of the RPC server (body size, per-IP rate limit).
    pub rpc: RpcConfig,
}

/// A node whose chain is open and whose RPC listener is bound, not yet producing or serving.
pub struct Application {
    /// The chain, shared by the block producer and the RPC handlers.
    node: Arc<Node>,
    /// The bound RPC listener; bound in `build` so callers learn the port before `run_until`.
    listener: TcpListener,
    /// What `listener` is bound to (the real port when port 0 was asked for).
    local_addr: SocketAddr,
    /// The RPC routes, wired to `node` and to `stop`.
    router: Router,
    /// Time between blocks.
    block_time: Duration,
    /// Flipped to `true` at shutdown: ends open `/events` streams, the server and the producer.
    stop: watch::Sender<bool>,
}

impl Application {
    /// Opens (or creates) the block log in `config.data_dir`, replays it against
    /// `config.genesis`, and binds `config.rpc_addr`.
    pub async fn build(config: NodeConfig) -> anyhow::Result<Self> {
        let NodeConfig {
            genesis,
            data_dir,
            rpc_addr,
            block_time,
            rpc: rpc_config,
        } = config;
        std::fs::create_dir_all(&data_dir).with_context(|| {
            format!(
                "while creating the data directory {} (--data)",
                data_dir.display()
            )
        })?;
        let dir = data_dir.clone();
        let (chain, torn) = tokio::task::spawn_blocking(move || Chain::open(&genesis, &dir))
            .await
            .context("while opening the chain")?
            .with_context(|| format!("while opening the chain in {}", data_dir.display()))?;
        if let Some(torn) = torn {
            tracing::warn!(
                block = torn.block,
                offset = torn.offset,
                bytes_cut = torn.bytes_cut,
                "torn last record cut from the block log (a crash during an append); that block was never announced"
            );
        }
        let head = chain.head();
        tracing::info!(
            genesis = %subnet_common::chain::H256(chain.genesis_hash()),
            head = head.number,
            hash = %head.hash,
            data = %data_dir.display(),
            "chain opened"
        );
        // Process-wide and installed once: a second node in the same process shares it.
        if let Err(error) = crate::metrics::install() {
            tracing::warn!(%error, "no Prometheus metrics; GET /metrics answers 404");
        }
        crate::metrics::set_block_height(head.number);
        let node = Node::new(chain);

        let listener = TcpListener::bind(rpc_addr)
            .await
            .with_context(|| format!("while binding --rpc.addr {rpc_addr}"))?;
        let local_addr = listener
            .local_addr()
            .context("while reading the bound RPC address")?;
        let (stop, stop_rx) = watch::channel(false);
        let router = rpc::router(Arc::clone(&node), rpc_config, stop_rx);
        Ok(Self {
            node,
            listener,
            local_addr,
            router,
            block_time,
            stop,
        })
    }

    /// The address the RPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The RPC server's port (the one picked when port 0 was asked for).
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The chain, e.g. for a test to read the head or produce a block by hand.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Produces a block every block time and serves JSON-RPC until `shutdown` resolves or block
    /// production fails (a block-log write error: the node must stop, see
    /// [`Chain::produce_block`]). Then open event streams end, in-flight requests drain and the
    /// server returns. The error says which of the two failed.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            node,
            listener,
            local_addr,
            router,
            block_time,
            stop,
        } = self;
        tracing::info!(addr = %local_addr, block_time_ms = block_time.as_millis() as u64, "serving JSON-RPC");
        let mut server = tokio::spawn(rpc::serve(listener, router, stopped(stop.subscribe())));
        let producer = node.run_block_production(block_time, stopped(stop.subscribe()));
        tokio::pin!(shutdown);
        let result = tokio::select! {
            produced = producer => produced.context("block production failed; the node stopped"),
            served = &mut server => {
                let _ = stop.send(true);
                return match served {
                    Ok(Ok(())) => Err(anyhow::anyhow!("the RPC server stopped on its own")),
                    Ok(Err(error)) => Err(error).context("the RPC server failed"),
                    Err(join) => Err(join).context("the RPC server task failed"),
                };
            }
            () = &mut shutdown => Ok(()),
        };
        let _ = stop.send(true);
        server
            .await
            .context("while stopping the RPC server")?
            .context("the RPC server failed")?;
        result
    }
}

/// Resolves once `stop` turns `true` (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
