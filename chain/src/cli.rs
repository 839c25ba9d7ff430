//! The `devchain` command line: `node`, `genesis`, `tx`, `metagraph`, `simulate`.
//!
//! The node's flags and `--uri` can also come from `DEVCHAIN_*` environment variables;
//! `--subtensor.chain_endpoint` (`--chain.url`) from `BT_SUBTENSOR_CHAIN_ENDPOINT` and
//! `--log.format` from `BT_LOG_FORMAT`, as in `miner` and `validator`; the wallet flags from the
//! SDK's `BT_WALLET_*` (flags win; see
//! `devchain node --dump-config`). `node` prints one line `rpc listening on http://ADDR` to stdout
//! once it serves, so callers that pass `--rpc.addr 127.0.0.1:0` learn the port; logs go to stderr.
//!
//! `tx` signs with `--uri` when given, else with the bittensor wallet named by `--wallet.*`: the
//! coldkey for register, add-stake, remove-stake, transfer and set-hyperparameter, the hotkey for
//! serve-axon, commit and the weight calls. It waits for inclusion unless `--no-wait`.
//! `set-weights` only works with commit–reveal off; otherwise `commit-weights` prints the salt and
//! `reveal-weights --salt …` reveals after the reveal period.
//!
//! Amounts are for people in τ: `tx` prints the amount (and a registration's burn) it sends and,
//! once included, the signer's free balance (and a stake call's stake on the hotkey); the chain's
//! refusals say τ too. `--amount` is τ. JSON keeps rao in keys that say so: `metagraph --json`
//! has `stake_rao` and `emission_rao`, `simulate` has `emission_rao`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use subnet_common::chain::types::{Call, Hyperparameter, Metagraph, NetUid, Uid, commit_hash};
use subnet_common::chain::{ChainClient, ChainClientError, DevChainClient};
use subnet_common::cli::WalletArgs;
use subnet_common::keys::{AccountId, Keypair};

use crate::dev;
use crate::rpc::{RateLimit, RpcConfig};
use crate::startup::{Application, NodeConfig};
use crate::state::Genesis;
use crate::tx::{axon_ip, display_ip, format_tao, parse_tao, weights_to_u16};

/// `devchain`: a local chain that follows Subtensor's rules.
#[derive(Debug, Parser)]
#[command(name = "devchain", version, about)]
pub struct Cli {
    /// `--log.format`, `--logging.debug`, `--logging.trace`.
    #[command(flatten)]
    pub log: subnet_common::cli::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: produce blocks, keep the block log, serve JSON-RPC.
    Node(NodeArgs),
    /// Write a genesis file.
    Genesis(GenesisArgs),
    /// Sign and submit an extrinsic.
    Tx(TxArgs),
    /// Print a subnet's metagraph.
    Metagraph(MetagraphArgs),
    /// Run Yuma Consensus on the inputs in a JSON file and print the result as JSON.
    Simulate(SimulateArgs),
}

/// Flags of `devchain node`.
#[derive(Debug, Args, serde::Serialize)]
pub struct NodeArgs {
    /// Genesis JSON file (see `devchain genesis --dev`).
    #[arg(long, env = "DEVCHAIN_GENESIS")]
    pub genesis: PathBuf,
    /// Data directory holding the block log; created if missing.
    #[arg(long, env = "DEVCHAIN_DATA")]
    pub data: PathBuf,
    /// Address of the JSON-RPC server (port 0 picks a free port).
    #[arg(
        long = "rpc.addr",
        env = "DEVCHAIN_RPC_ADDR",
        default_value = "127.0.0.1:9944"
    )]
    pub rpc_addr: SocketAddr,
    /// Milliseconds between blocks.
    #[arg(long = "block-time", env = "DEVCHAIN_BLOCK_TIME", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub block_time_ms: u64,
    /// Requests per second allowed per client IP (0 = no limit).
    #[arg(long = "rpc.rate-limit", env = "DEVCHAIN_RPC_RATE_LIMIT", default_value_t = RateLimit::default().per_second)]
    pub rate_limit: u32,
    /// Burst size of the per-IP rate limit.
    #[arg(long = "rpc.burst", env = "DEVCHAIN_RPC_BURST", default_value_t = RateLimit::default().burst)]
    pub burst: u32,
    /// Print the resolved settings (flags over environment over defaults) as JSON and exit.
    #[arg(long)]
    #[serde(skip)]
    pub dump_config: bool,
}

/// Flags of `devchain genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// Write the development genesis (funded //Alice … //Ferdie and //Miner1 … //Miner12, subnet 1
    /// owned by //Alice, commit–reveal on).
    #[arg(long, required = true)]
    pub dev: bool,
    /// Blocks per epoch of subnet 1.
    #[arg(long, default_value_t = dev::DEV_TEMPO, value_parser = clap::value_parser!(u16).range(1..))]
    pub tempo: u16,
    /// Output file (stdout when absent).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Where the chain is.
#[derive(Debug, Args)]
pub struct ChainArgs {
    /// URL of the dev chain's JSON-RPC (`--chain.url` is the older name).
    #[arg(
        long = "subtensor.chain_endpoint",
        visible_alias = "chain.url",
        env = "BT_SUBTENSOR_CHAIN_ENDPOINT",
        default_value = "http://127.0.0.1:9944",
        global = true
    )]
    pub url: String,
}

/// Who signs: a dev/secret URI, or a bittensor wallet (coldkey or hotkey, by call).
///
/// These flags are global to `tx`, so they may follow the subcommand; subcommand flags therefore
/// use other argument ids (`target_hotkey`, `param_name`) than the wallet's `hotkey` and `name`.
#[derive(Debug, Args)]
#[command(mut_args(|arg| arg.global(true)))]
pub struct SignerArgs {
    /// Secret URI of the signing key (`//Alice`, a mnemonic, `0x` seed); overrides the wallet.
    #[arg(long, env = "DEVCHAIN_URI")]
    pub uri: Option<String>,
    /// The bittensor wallet used without `--uri`: its coldkey signs register, add-stake,
    /// remove-stake, transfer and set-hyperparameter; its hotkey signs the rest.
    #[command(flatten)]
    pub wallet: WalletArgs,
}

/// Flags of `devchain tx`.
#[derive(Debug, Args)]
pub struct TxArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// The signer.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Return after submitting instead of waiting for the block.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Seconds to wait for inclusion.
    #[arg(long, default_value_t = 30, global = true)]
    pub wait_secs: u64,
    /// The extrinsic.
    #[command(subcommand)]
    pub call: TxCommand,
}

/// The extrinsics `devchain tx` can send.
#[derive(Debug, Subcommand)]
pub enum TxCommand {
    /// Register a hotkey on a subnet, paying the burn (signed by the coldkey).
    Register {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// Hotkey to register (SS58); defaults to the wallet's hotkey, or with `--uri` to the
        /// signer's own account.
        #[arg(long = "hotkey", id = "target_hotkey")]
        hotkey: Option<AccountId>,
    },
    /// Stake TAO on a hotkey (signed by the coldkey).
    AddStake {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// Hotkey to stake on (SS58).
        #[arg(long = "hotkey", id = "target_hotkey")]
        hotkey: AccountId,
        /// Amount in TAO (e.g. 10.5).
        #[arg(long, value_parser = parse_tao)]
        amount: u64,
    },
    /// Unstake TAO from a hotkey (signed by the coldkey).
    RemoveStake {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// Hotkey staked on (SS58).
        #[arg(long = "hotkey", id = "target_hotkey")]
        hotkey: AccountId,
        /// Amount in TAO.
        #[arg(long, value_parser = parse_tao)]
        amount: u64,
    },
    /// Send TAO (signed by the coldkey).
    Transfer {
        /// Receiver (SS58).
        #[arg(long)]
        dest: AccountId,
        /// Amount in TAO.
        #[arg(long, value_parser = parse_tao)]
        amount: u64,
    },
    /// Publish the hotkey's axon endpoint (signed by the hotkey).
    ServeAxon {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// IP address (v4 or v6; loopback is allowed on the dev chain).
        #[arg(long)]
        ip: IpAddr,
        /// TCP port.
        #[arg(long)]
        port: u16,
        /// Axon software version.
        #[arg(long, default_value_t = 0)]
        version: u32,
        /// Protocol tag.
        #[arg(long, default_value_t = 0)]
        protocol: u8,
    },
    /// Store a commitment for the hotkey (signed by the hotkey).
    Commit {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// The bytes, as `0x` hex or plain text.
        #[arg(long)]
        data: String,
    },
    /// Set weights directly, for subnets with commit–reveal off (signed by the hotkey).
    SetWeights(WeightArgs),
    /// Commit weights (commit–reveal on); prints the salt to reveal with (signed by the hotkey).
    CommitWeights(WeightArgs),
    /// Reveal weights committed earlier (signed by the hotkey).
    RevealWeights {
        /// The committed weights.
        #[command(flatten)]
        weights: WeightArgs,
        /// Salt printed by `commit-weights` (comma-separated u16).
        #[arg(long, value_delimiter = ',', required = true)]
        salt: Vec<u16>,
    },
    /// Change a hyperparameter (subnet owner's coldkey).
    SetHyperparameter {
        /// Subnet.
        #[arg(long)]
        netuid: NetUid,
        /// Name, e.g. tempo, commit_reveal_weights_enabled.
        #[arg(long = "name", id = "param_name")]
        name: Hyperparameter,
        /// New value (booleans 0 or 1).
        #[arg(long)]
        value: u64,
    },
}

/// Uids and float weights, converted like the SDK (§2.3).
#[derive(Debug, Clone, Args)]
pub struct WeightArgs {
    /// Subnet.
    #[arg(long)]
    pub netuid: NetUid,
    /// Destination uids, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub uids: Vec<Uid>,
    /// Weights, comma-separated floats (normalized by their max).
    #[arg(long, value_delimiter = ',', required = true)]
    pub weights: Vec<f64>,
    /// Version key.
    #[arg(long, default_value_t = 0)]
    pub version_key: u64,
}

/// Flags of `devchain metagraph`.
#[derive(Debug, Args)]
pub struct MetagraphArgs {
    /// The chain.
    #[command(flatten)]
    pub chain: ChainArgs,
    /// Subnet.
    #[arg(long)]
    pub netuid: NetUid,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `devchain simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// JSON input file (format in the `simulate` module docs).
    pub file: PathBuf,
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Node(args) => run_node(args).await,
        Command::Genesis(args) => write_genesis(&args),
        Command::Tx(args) => run_tx(args).await,
        Command::Metagraph(args) => print_metagraph(args).await,
        Command::Simulate(args) => simulate(&args.file),
    }
}

/// Reads and parses a genesis file.
pub fn read_genesis(path: &Path) -> anyhow::Result<Genesis> {
    let json = std::fs::read_to_string(path).with_context(|| {
        format!(
            "while reading the genesis file {} (--genesis)",
            path.display()
        )
    })?;
    Genesis::from_json(&json)
        .with_context(|| format!("while parsing the genesis file {}", path.display()))
}

impl NodeArgs {
    /// The node's settings: the genesis file read and parsed, the rest as given.
    pub fn resolve(&self) -> anyhow::Result<NodeConfig> {
        Ok(NodeConfig {
            genesis: read_genesis(&self.genesis)?,
            data_dir: self.data.clone(),
            rpc_addr: self.rpc_addr,
            block_time: Duration::from_millis(self.block_time_ms),
            rpc: RpcConfig {
                rate_limit: RateLimit {
                    per_second: self.rate_limit,
                    burst: self.burst,
                },
                ..RpcConfig::default()
            },
        })
    }
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    if args.dump_config {
        let json = serde_json::to_string_pretty(&args).context("while encoding the settings")?;
        println!("{json}");
        return Ok(());
    }
    let app = Application::build(args.resolve()?).await?;
    // Callers that pass `--rpc.addr 127.0.0.1:0` read the port from this line.
    println!("rpc listening on http://{}", app.local_addr());
    app.run_until(subnet_common::serve::shutdown_signal()).await
}

fn write_genesis(args: &GenesisArgs) -> anyhow::Result<()> {
    let genesis = dev::dev_genesis(args.tempo, crate::node::unix_millis())
        .context("while deriving dev keys")?;
    let json = serde_json::to_string_pretty(&genesis).context("while encoding the genesis")?;
    match &args.out {
        Some(path) => std::fs::write(path, json + "\n").with_context(|| {
            format!("while writing the genesis file {} (--out)", path.display())
        })?,
        None => println!("{json}"),
    }
    Ok(())
}

/// What failed, at `url`, with a hint when nothing answered there: the common case is a node
/// that is not running, or a command pointed at the wrong address.
fn at_chain(what: &str, url: &str, error: &ChainClientError) -> String {
    if matches!(error, ChainClientError::Transport { .. }) {
        format!(
            "{what} at {url}: nothing answered (is `devchain node` running there? \
             --subtensor.chain_endpoint names the node)"
        )
    } else {
        format!("{what} at {url}")
    }
}

async fn run_tx(args: TxArgs) -> anyhow::Result<()> {
    let client = DevChainClient::new(&args.chain.url).context("--chain.url")?;
    let signer = signer(&args.signer, &args.call)?;
    let call = build_call(&args.call, &args.signer, &signer, &client).await?;
    let name = call.name();
    // The burn a registration pays, to show it; the chain checks the balance either way.
    let burn = match &call {
        Call::Register { netuid, .. } => client.hyperparameters(*netuid).await.ok().map(|h| h.burn),
        _ => None,
    };
    let summary = call_summary(&call, burn);
    let tx = client.submit(call.clone(), &signer).await.map_err(|e| {
        let context = at_chain(&format!("while submitting {name}"), &args.chain.url, &e);
        anyhow::Error::new(e).context(context)
    })?;
    println!("submitted {summary}: {tx}");
    if args.no_wait {
        return Ok(());
    }
    let inclusion = client
        .wait_for_inclusion(tx, Duration::from_secs(args.wait_secs))
        .await
        .with_context(|| format!("while waiting for {name} {tx}"))?;
    println!(
        "included in block {} ({}) at index {}",
        inclusion.block, inclusion.block_hash, inclusion.index
    );
    print_balances_after(&client, &call, &signer.account_id()).await;
    Ok(())
}

/// The call as people read it: its name, and for money its amounts in τ (`burn`: a
/// registration's burn, when known).
fn call_summary(call: &Call, burn: Option<u64>) -> String {
    let name = call.name();
    match call {
        Call::Transfer { dest, amount } => format!("{name} of {} τ to {dest}", format_tao(*amount)),
        Call::AddStake {
            hotkey,
            netuid,
            amount,
        } => format!(
            "{name} of {} τ on {hotkey} in subnet {netuid}",
            format_tao(*amount)
        ),
        Call::RemoveStake {
            hotkey,
            netuid,
            amount,
        } => format!(
            "{name} of {} τ from {hotkey} in subnet {netuid}",
            format_tao(*amount)
        ),
        Call::Register { netuid, hotkey } => match burn {
            Some(burn) => format!(
                "{name} of {hotkey} on subnet {netuid}, burning {} τ",
                format_tao(burn)
            ),
            None => format!("{name} of {hotkey} on subnet {netuid}"),
        },
        _ => name.to_owned(),
    }
}

/// After a call that moved money: the signer's free balance and, for stake calls, the hotkey's
/// stake, in τ. Best effort: a failed read prints nothing (the call itself is included).
async fn print_balances_after(client: &DevChainClient, call: &Call, signer: &AccountId) {
    let staked = match call {
        Call::AddStake { hotkey, netuid, .. } | Call::RemoveStake { hotkey, netuid, .. } => {
            Some((*hotkey, *netuid))
        }
        Call::Transfer { .. } | Call::Register { .. } => None,
        _ => return,
    };
    if let Ok(account) = client.account(signer).await {
        println!("free balance of {signer}: {} τ", format_tao(account.free));
    }
    if let Some((hotkey, netuid)) = staked
        && let Ok(metagraph) = client.metagraph(netuid).await
        && let Some(neuron) = metagraph.neurons.iter().find(|n| n.hotkey == hotkey)
    {
        println!(
            "stake on {hotkey} in subnet {netuid}: {} τ",
            format_tao(neuron.stake)
        );
    }
}

/// Which key of a wallet signs a call.
fn signs_with_coldkey(command: &TxCommand) -> bool {
    matches!(
        command,
        TxCommand::Register { .. }
            | TxCommand::AddStake { .. }
            | TxCommand::RemoveStake { .. }
            | TxCommand::Transfer { .. }
            | TxCommand::SetHyperparameter { .. }
    )
}

fn signer(args: &SignerArgs, command: &TxCommand) -> anyhow::Result<Keypair> {
    if let Some(uri) = &args.uri {
        return Keypair::from_uri(uri).context("--uri is not a valid secret URI");
    }
    let wallet = &args.wallet;
    if signs_with_coldkey(command) {
        wallet.load_coldkey().with_context(|| {
            format!("while loading the coldkey of wallet {:?} (--wallet.name, --wallet.path; or pass --uri)", wallet.name)
        })
    } else {
        wallet.load_hotkey().with_context(|| {
            format!(
                "while loading hotkey {:?} of wallet {:?} (--wallet.hotkey, --wallet.name, --wallet.path; or pass --uri)",
                wallet.hotkey, wallet.name
            )
        })
    }
}

async fn build_call(
    command: &TxCommand,
    signer_args: &SignerArgs,
    signer: &Keypair,
    client: &DevChainClient,
) -> anyhow::Result<Call> {
    Ok(match command {
        TxCommand::Register { netuid, hotkey } => {
            let hotkey = match (hotkey, &signer_args.uri) {
                (Some(hotkey), _) => *hotkey,
                (None, Some(_)) => signer.account_id(),
                (None, None) => signer_args.wallet.hotkey_account().with_context(|| {
                    format!(
                        "while reading hotkey {:?} of the wallet (--wallet.hotkey)",
                        signer_args.wallet.hotkey
                    )
                })?,
            };
            Call::Register {
                netuid: *netuid,
                hotkey,
            }
        }
        TxCommand::AddStake {
            netuid,
            hotkey,
            amount,
        } => Call::AddStake {
            hotkey: *hotkey,
            netuid: *netuid,
            amount: *amount,
        },
        TxCommand::RemoveStake {
            netuid,
            hotkey,
            amount,
        } => Call::RemoveStake {
            hotkey: *hotkey,
            netuid: *netuid,
            amount: *amount,
        },
        TxCommand::Transfer { dest, amount } => Call::Transfer {
            dest: *dest,
            amount: *amount,
        },
        TxCommand::ServeAxon {
            netuid,
            ip,
            port,
            version,
            protocol,
        } => {
            let (ip, ip_type) = axon_ip(*ip);
            Call::ServeAxon {
                netuid: *netuid,
                version: *version,
                ip,
                port: *port,
                ip_type,
                protocol: *protocol,
            }
        }
        TxCommand::Commit { netuid, data } => {
            let bytes = match data.strip_prefix("0x") {
                Some(digits) => {
                    hex::decode(digits).context("--data starts with 0x but is not hex")?
                }
                None => data.as_bytes().to_vec(),
            };
            Call::SetCommitment {
                netuid: *netuid,
                data: bytes,
            }
        }
        TxCommand::SetWeights(w) => {
            let (dests, weights) =
                weights_to_u16(&w.uids, &w.weights).context("--uids/--weights")?;
            Call::SetWeights {
                netuid: w.netuid,
                dests,
                weights,
                version_key: w.version_key,
            }
        }
        TxCommand::CommitWeights(w) => {
            let (uids, values) = weights_to_u16(&w.uids, &w.weights).context("--uids/--weights")?;
            let salt: Vec<u16> = (0..8).map(|_| rand::random::<u16>()).collect();
            let hash = commit_hash(
                &signer.account_id(),
                w.netuid,
                &uids,
                &values,
                &salt,
                w.version_key,
            );
            let hyper = client
                .hyperparameters(w.netuid)
                .await
                .context("while reading hyperparameters")?;
            let salt_text: Vec<String> = salt.iter().map(u16::to_string).collect();
            println!(
                "salt {} — reveal after {} epoch(s) with: devchain tx reveal-weights --netuid {} --uids {} --weights {} --version-key {} --salt {}",
                salt_text.join(","),
                hyper.commit_reveal_period,
                w.netuid,
                join(&w.uids),
                join(&w.weights),
                w.version_key,
                salt_text.join(","),
            );
            Call::CommitWeights {
                netuid: w.netuid,
                commit_hash: hash,
            }
        }
        TxCommand::RevealWeights { weights: w, salt } => {
            let (uids, values) = weights_to_u16(&w.uids, &w.weights).context("--uids/--weights")?;
            Call::RevealWeights {
                netuid: w.netuid,
                uids,
                values,
                salt: salt.clone(),
                version_key: w.version_key,
            }
        }
        TxCommand::SetHyperparameter {
            netuid,
            name,
            value,
        } => Call::SetHyperparameter {
            netuid: *netuid,
            param: *name,
            value: *value,
        },
    })
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

async fn print_metagraph(args: MetagraphArgs) -> anyhow::Result<()> {
    let client = DevChainClient::new(&args.chain.url).context("--chain.url")?;
    let metagraph = client.metagraph(args.netuid).await.map_err(|e| {
        let what = format!("while reading the metagraph of subnet {}", args.netuid);
        let context = at_chain(&what, &args.chain.url, &e);
        anyhow::Error::new(e).context(context)
    })?;
    if args.json {
        let json = metagraph_json(&metagraph).context("while encoding the metagraph")?;
        println!("{json:#}");
    } else {
        print!("{}", metagraph_table(&metagraph));
    }
    Ok(())
}

/// The metagraph as JSON for scripts: the RPC's shape, with the amounts' keys saying their unit
/// (`stake_rao`, `emission_rao`; 1 τ = 10⁹ rao).
pub fn metagraph_json(metagraph: &Metagraph) -> serde_json::Result<serde_json::Value> {
    let mut json = serde_json::to_value(metagraph)?;
    if let Some(neurons) = json
        .get_mut("neurons")
        .and_then(serde_json::Value::as_array_mut)
    {
        for neuron in neurons
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            for key in ["stake", "emission"] {
                if let Some(rao) = neuron.remove(key) {
                    neuron.insert(format!("{key}_rao"), rao);
                }
            }
        }
    }
    Ok(json)
}

/// The metagraph as a btcli-style table.
pub fn metagraph_table(metagraph: &Metagraph) -> String {
    let header = [
        "UID",
        "HOTKEY",
        "STAKE(τ)",
        "INCENTIVE",
        "DIVIDENDS",
        "EMISSION(τ)",
        "VTRUST",
        "VPERMIT",
        "AXON",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for n in &metagraph.neurons {
        let axon = if n.axon_info.ip == 0 {
            "-".to_owned()
        } else {
            format!(
                "{}:{}",
                display_ip(n.axon_info.ip, n.axon_info.ip_type),
                n.axon_info.port
            )
        };
        rows.push(vec![
            n.uid.to_string(),
            short_ss58(&n.hotkey),
            format_tao(n.stake),
            proportion(n.incentive),
            proportion(n.dividends),
            format_tao(n.emission),
            proportion(n.validator_trust),
            if n.validator_permit { "*" } else { "" }.to_owned(),
            axon,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|col| {
            rows.iter()
                .map(|r| r[col].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "subnet {} at block {}: {} neurons\n",
        metagraph.netuid,
        metagraph.block,
        metagraph.neurons.len()
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `5Grw…utQY`.
fn short_ss58(id: &AccountId) -> String {
    let s = id.to_ss58();
    let chars: Vec<char> = s.chars().collect();
    let head: String = chars.iter().take(4).collect();
    let tail: String = chars.iter().skip(chars.len().saturating_sub(4)).collect();
    format!("{head}…{tail}")
}

/// A u16 proportion as a decimal with 5 places.
fn proportion(x: u16) -> String {
    format!("{:.5}", f64::from(x) / 65535.0)
}

fn simulate(file: &Path) -> anyhow::Result<()> {
    let json = std::fs::read_to_string(file)
        .with_context(|| format!("while reading the simulation input {}", file.display()))?;
    let output = crate::simulate::run(&json)
        .with_context(|| format!("while simulating {}", file.display()))?;
    let text =
        serde_json::to_string_pretty(&output).context("while encoding the simulation output")?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wallet_flags_may_follow_the_subcommand_beside_a_hotkey_flag() {
        let bob = Keypair::from_uri("//Bob").unwrap().account_id().to_ss58();
        let cli = Cli::try_parse_from([
            "devchain",
            "tx",
            "register",
            "--netuid",
            "1",
            "--hotkey",
            &bob,
            "--wallet.hotkey",
            "h1",
            "--wallet.name",
            "w1",
        ])
        .unwrap();
        let Command::Tx(tx) = cli.command else {
            panic!("not tx")
        };
        assert_eq!(tx.signer.wallet.hotkey, "h1");
        assert_eq!(tx.signer.wallet.name, "w1");
        let TxCommand::Register {
            netuid: 1,
            hotkey: Some(hotkey),
        } = tx.call
        else {
            panic!("{:?}", tx.call)
        };
        assert_eq!(hotkey.to_ss58(), bob);
    }

    #[test]
    fn coldkey_signs_money_and_registration_hotkey_signs_the_rest() {
        let register = TxCommand::Register {
            netuid: 1,
            hotkey: None,
        };
        let commit = TxCommand::Commit {
            netuid: 1,
            data: "x".into(),
        };
        assert!(signs_with_coldkey(&register));
        assert!(!signs_with_coldkey(&commit));
    }

    #[test]
    fn money_calls_are_summarized_in_tao() {
        let bob = Keypair::from_uri("//Bob").unwrap().account_id();
        let transfer = Call::Transfer {
            dest: bob,
            amount: 2_500_000_000,
        };
        assert_eq!(
            call_summary(&transfer, None),
            format!("transfer of 2.5 τ to {bob}")
        );
        let stake = Call::AddStake {
            hotkey: bob,
            netuid: 1,
            amount: 10_000_000_000,
        };
        assert_eq!(
            call_summary(&stake, None),
            format!("add_stake of 10 τ on {bob} in subnet 1")
        );
        let register = Call::Register {
            netuid: 1,
            hotkey: bob,
        };
        assert_eq!(
            call_summary(&register, Some(1_000_000_000)),
            format!("register of {bob} on subnet 1, burning 1 τ")
        );
        let commit = Call::SetCommitment {
            netuid: 1,
            data: vec![],
        };
        assert_eq!(call_summary(&commit, None), commit.name());
    }

    #[test]
    fn metagraph_table_has_one_row_per_uid_with_axon() {
        use subnet_common::chain::types::{AxonInfo, NeuronInfo};
        let hotkey = Keypair::from_uri("//Alice").unwrap().account_id();
        let axon = AxonInfo {
            block: 3,
            version: 1,
            ip: 0x0A00_0001,
            port: 8091,
            ip_type: 4,
            protocol: 0,
        };
        let neuron = NeuronInfo {
            stake: 1_500_000_000,
            incentive: 65535,
            validator_permit: true,
            ..NeuronInfo::registered(1, 0, hotkey, hotkey, axon)
        };
        let metagraph = Metagraph {
            netuid: 1,
            block: 9,
            neurons: vec![neuron],
        };
        let json = metagraph_json(&metagraph).unwrap();
        assert_eq!(json["neurons"][0]["stake_rao"], 1_500_000_000u64);
        assert_eq!(json["neurons"][0]["emission_rao"], 0);
        assert!(json["neurons"][0].get("stake").is_none(), "{json}");
        let table = metagraph_table(&metagraph);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        assert!(lines[2].starts_with("0 "), "{table}");
        for cell in ["5Grw…utQY", "1.5", "1.00000", "*", "10.0.0.1:8091"] {
            assert!(lines[2].contains(cell), "{cell} missing in {table}");
        }
    }
}
