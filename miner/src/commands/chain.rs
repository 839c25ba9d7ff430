//! The miner's extrinsics: `miner register` (the coldkey pays the burn for the hotkey's uid),
//! `miner commit` (the model commitment, signed by the hotkey) and the axon publication that
//! `miner serve --chain.url` does at start.
//!
//! Each submits one extrinsic and waits for its block, so the operator sees where it landed or
//! the chain's own reason for refusing it (rate limit, not registered, balance too low, ...).
//! Each first reads the chain and does nothing when the state is already what was asked for.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;
use subnet_common::{
    chain::{
        client::{ChainClient, ChainClientError, ClientOptions, Inclusion},
        types::{AxonInfo, Balance, Call, NetUid, NeuronInfo, Uid, format_tao},
    },
    cli::{ChainArgs, WalletArgs},
    keys::{AccountId, Keypair},
    protocol::{CommitmentError, ModelCommitment},
};

use subnet_subtensor::AnyChain;

use crate::artifact::{Artifact, DEFAULT_COMPETITION};

/// The axon's protocol tag on chain (0 = HTTP).
pub const AXON_PROTOCOL_HTTP: u8 = 0;

/// Where the chain is and how long to wait for a block.
#[derive(Debug, Clone, Args)]
pub struct ChainTxArgs {
    #[command(flatten)]
    pub chain: ChainArgs,

    /// Seconds to wait for the extrinsic to be included in a block.
    #[arg(
        long = "chain.wait-secs",
        env = "BT_CHAIN_WAIT_SECS",
        default_value_t = 60
    )]
    pub wait_secs: u64,
}

impl ChainTxArgs {
    /// A client for the chain the flags name (the dev chain or a Subtensor node).
    pub async fn client(&self) -> anyhow::Result<AnyChain> {
        connect(&self.chain).await
    }

    /// The subnet.
    pub fn netuid(&self) -> NetUid {
        self.chain.netuid
    }

    fn wait(&self) -> Duration {
        Duration::from_secs(self.wait_secs)
    }
}

/// Connects to the chain `args` name; the error names the endpoint and the flag.
pub async fn connect(args: &ChainArgs) -> anyhow::Result<AnyChain> {
    report(
        args,
        AnyChain::connect(args.endpoint(), ClientOptions::default()).await,
    )
}

/// Like [`connect`], waiting for a chain that does not answer yet (see
/// [`AnyChain::connect_waiting`]).
pub async fn connect_waiting(args: &ChainArgs) -> anyhow::Result<AnyChain> {
    report(
        args,
        AnyChain::connect_waiting(args.endpoint(), ClientOptions::default()).await,
    )
}

fn report(
    args: &ChainArgs,
    connected: Result<AnyChain, ChainClientError>,
) -> anyhow::Result<AnyChain> {
    let (endpoint, flag) = (args.endpoint(), args.flag());
    let chain = match connected {
        Ok(chain) => chain,
        Err(error @ ChainClientError::BadUrl { .. }) => bail!("{flag} {endpoint:?}: {error}"),
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "cannot use the chain at {endpoint:?} ({flag}): is the node running and is it \
                 the dev chain or a Subtensor node?"
            )));
        }
    };
    tracing::info!(
        endpoint,
        url = chain.url(),
        kind = chain.kind(),
        "chain connected"
    );
    Ok(chain)
}

/// `miner register`.
#[derive(Debug, Clone, Args)]
pub struct RegisterArgs {
    #[command(flatten)]
    pub wallet: WalletArgs,

    #[command(flatten)]
    pub chain: ChainTxArgs,

    /// Pay with the coldkey of this Substrate URI (e.g. `//Alice` on a dev chain) instead of the
    /// wallet's coldkey. The URI is a secret: use it for dev keys only.
    #[arg(long = "coldkey-uri", env = "BT_COLDKEY_URI")]
    pub coldkey_uri: Option<String>,
}

/// `miner commit`.
#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    #[command(flatten)]
    pub wallet: WalletArgs,

    #[command(flatten)]
    pub chain: ChainTxArgs,

    /// The HF-style model directory to commit (hashed exactly as `miner serve` hashes it).
    #[arg(long = "model.dir", env = "MINER_MODEL_DIR")]
    pub model_dir: PathBuf,

    /// Competition the model is entered in.
    #[arg(long = "competition", env = "MINER_COMPETITION", default_value = DEFAULT_COMPETITION)]
    pub competition: String,

    /// Print the commitment this hotkey would store for the model, and store nothing (no chain
    /// is contacted).
    #[arg(long = "dry-run")]
    pub dry_run: bool,
}

/// The hotkey's uid after `miner register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The uid on the subnet.
    pub uid: Uid,
    /// The registration burn the coldkey paid, in rao (0 when the hotkey was registered
    /// already).
    pub burn: Balance,
    /// Where the registration was included; `None` when the hotkey was registered already.
    pub inclusion: Option<Inclusion>,
}

/// The commitment after `miner commit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// What is on chain.
    pub commitment: ModelCommitment,
    /// Block the commitment is stored at.
    pub block: u64,
    /// Where the extrinsic was included; `None` when the same commitment was on chain already.
    pub inclusion: Option<Inclusion>,
}

/// Runs `miner register` and prints the uid and block.
pub async fn run_register(
    args: &RegisterArgs,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    let chain = args.chain.client().await?;
    let hotkey = args
        .wallet
        .hotkey_account()
        .context("while reading the hotkey to register (--wallet.*)")?;
    let coldkey = match &args.coldkey_uri {
        Some(uri) => Keypair::from_uri(uri).context("--coldkey-uri: not a valid Substrate URI")?,
        None => args
            .wallet
            .load_coldkey()
            .context("while loading the coldkey that pays the burn (or pass --coldkey-uri)")?,
    };
    let registration = register(
        &chain,
        &coldkey,
        &hotkey,
        args.chain.netuid(),
        args.chain.wait(),
    )
    .await?;
    let netuid = args.chain.netuid();
    match registration.inclusion {
        Some(inclusion) => writeln!(
            out,
            "registered hotkey {hotkey} on subnet {netuid} as uid {} in block {} ({}), paid by coldkey {}: burned {} τ, balance now {} τ",
            registration.uid,
            inclusion.block,
            inclusion.block_hash,
            coldkey.account_id(),
            format_tao(registration.burn),
            format_tao(
                chain
                    .account(&coldkey.account_id())
                    .await
                    .context("while reading the coldkey's balance")?
                    .free
            ),
        ),
        None => writeln!(
            out,
            "hotkey {hotkey} is already registered on subnet {netuid} as uid {}",
            registration.uid
        ),
    }
    .context("while printing the result")
}

/// Registers `hotkey` on `netuid`, `coldkey` paying the burn; a registered hotkey is left as is.
pub async fn register<C: ChainClient>(
    chain: &C,
    coldkey: &Keypair,
    hotkey: &AccountId,
    netuid: NetUid,
    wait: Duration,
) -> anyhow::Result<Registration> {
    if let Some(neuron) = find_neuron(chain, netuid, hotkey).await? {
        return Ok(Registration {
            uid: neuron.uid,
            burn: 0,
            inclusion: None,
        });
    }
    let burn = chain
        .hyperparameters(netuid)
        .await
        .with_context(|| format!("while reading subnet {netuid}'s registration burn"))?
        .burn;
    let payer = coldkey.account_id();
    let balance = chain
        .account(&payer)
        .await
        .with_context(|| format!("while reading the balance of coldkey {payer}"))?
        .free;
    // Said, not enforced: the chain decides (and a node that keeps no balances, such as the
    // Subtensor test node, reads 0 here).
    if balance < burn {
        tracing::warn!(
            "coldkey {payer} has {} τ; registering on subnet {netuid} burns {} τ: the chain will \
             likely refuse it (fund the coldkey or pay with another, --coldkey-uri)",
            format_tao(balance),
            format_tao(burn)
        );
    }
    tracing::info!(
        %hotkey,
        netuid,
        burn = format!("{} τ", format_tao(burn)),
        balance = format!("{} τ", format_tao(balance)),
        coldkey = %payer,
        "registering"
    );
    let call = Call::Register {
        netuid,
        hotkey: *hotkey,
    };
    let inclusion = submit_and_wait(chain, call, coldkey, wait)
        .await
        .with_context(|| format!("while registering {hotkey} on subnet {netuid}"))?;
    let neuron = find_neuron(chain, netuid, hotkey).await?.with_context(|| {
        format!(
            "the registration was included in block {} but {hotkey} has no uid on subnet {netuid}",
            inclusion.block
        )
    })?;
    Ok(Registration {
        uid: neuron.uid,
        burn,
        inclusion: Some(inclusion),
    })
}

/// Runs `miner commit` and prints the commitment, block and hash.
pub async fn run_commit(args: &CommitArgs, out: &mut impl std::io::Write) -> anyhow::Result<()> {
    let artifact = Artifact::load(&args.model_dir, &args.competition)
        .await
        .with_context(|| format!("--model.dir {}", args.model_dir.display()))?;
    let hotkey = args
        .wallet
        .load_hotkey()
        .context("while loading the hotkey that signs the commitment (--wallet.*)")?;
    let commitment = artifact.commitment(&hotkey.account_id());
    if args.dry_run {
        let text = String::from_utf8_lossy(&commitment.encode()).into_owned();
        return writeln!(
            out,
            "{text} (manifest {}) is what hotkey {} would commit; nothing was stored (--dry-run)",
            artifact.manifest().manifest_sha256,
            hotkey.account_id(),
        )
        .context("while printing the result");
    }
    let chain = args.chain.client().await?;
    let netuid = args.chain.netuid();
    let committed = commit(&chain, &hotkey, netuid, commitment, args.chain.wait()).await?;
    let text = String::from_utf8_lossy(&committed.commitment.encode()).into_owned();
    match committed.inclusion {
        Some(inclusion) => writeln!(
            out,
            "committed {text} for hotkey {} on subnet {netuid} in block {} ({})",
            hotkey.account_id(),
            inclusion.block,
            inclusion.block_hash
        ),
        None => writeln!(
            out,
            "{text} is already the commitment of hotkey {} on subnet {netuid} (since block {})",
            hotkey.account_id(),
            committed.block
        ),
    }
    .context("while printing the result")
}

/// Stores `commitment` for `hotkey` on `netuid`; the same commitment already there is left as is.
pub async fn commit<C: ChainClient>(
    chain: &C,
    hotkey: &Keypair,
    netuid: NetUid,
    commitment: ModelCommitment,
    wait: Duration,
) -> anyhow::Result<Committed> {
    let account = hotkey.account_id();
    if find_neuron(chain, netuid, &account).await?.is_none() {
        bail!("hotkey {account} is not registered on subnet {netuid}: run `miner register` first");
    }
    let data = commitment.encode();
    let existing = chain
        .commitments(netuid)
        .await
        .with_context(|| format!("while reading subnet {netuid}'s commitments"))?
        .into_iter()
        .find(|c| c.hotkey == account && c.data == data);
    if let Some(existing) = existing {
        return Ok(Committed {
            commitment,
            block: existing.block,
            inclusion: None,
        });
    }
    let call = Call::SetCommitment { netuid, data };
    let inclusion = submit_and_wait(chain, call, hotkey, wait)
        .await
        .with_context(|| format!("while committing the model to subnet {netuid}"))?;
    Ok(Committed {
        commitment,
        block: inclusion.block,
        inclusion: Some(inclusion),
    })
}

/// What [`publish_axon`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AxonPublication {
    /// The chain already had this endpoint.
    Unchanged,
    /// `serve_axon` was included in this block.
    Published(Inclusion),
}

/// Publishes `endpoint` as `hotkey`'s axon on `netuid` unless the chain already has it.
pub async fn publish_axon<C: ChainClient>(
    chain: &C,
    hotkey: &Keypair,
    netuid: NetUid,
    endpoint: SocketAddr,
    wait: Duration,
) -> anyhow::Result<AxonPublication> {
    let account = hotkey.account_id();
    let neuron = find_neuron(chain, netuid, &account)
        .await?
        .with_context(|| {
            format!(
                "hotkey {account} is not registered on subnet {netuid}: run `miner register` first"
            )
        })?;
    let wanted = axon_info(endpoint);
    let current = &neuron.axon_info;
    if (
        current.ip,
        current.port,
        current.ip_type,
        current.protocol,
        current.version,
    ) == (
        wanted.ip,
        wanted.port,
        wanted.ip_type,
        wanted.protocol,
        wanted.version,
    ) {
        return Ok(AxonPublication::Unchanged);
    }
    let call = Call::ServeAxon {
        netuid,
        version: wanted.version,
        ip: wanted.ip,
        port: wanted.port,
        ip_type: wanted.ip_type,
        protocol: wanted.protocol,
    };
    let inclusion = submit_and_wait(chain, call, hotkey, wait).await?;
    Ok(AxonPublication::Published(inclusion))
}

/// The on-chain form of `endpoint` (block left 0; the chain sets it).
pub fn axon_info(endpoint: SocketAddr) -> AxonInfo {
    let (ip, ip_type) = match endpoint.ip() {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 4),
        IpAddr::V6(v6) => (u128::from(v6), 6),
    };
    AxonInfo {
        block: 0,
        version: version_as_int(env!("CARGO_PKG_VERSION")),
        ip,
        port: endpoint.port(),
        ip_type,
        protocol: AXON_PROTOCOL_HTTP,
    }
}

/// bittensor's `version_as_int`: `100·major + 10·minor + patch` (0 for parts that do not parse).
pub fn version_as_int(version: &str) -> u32 {
    let mut parts = version
        .split(['.', '-', '+'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let mut next = || parts.next().unwrap_or(0);
    let (major, minor, patch) = (next(), next(), next());
    100 * major + 10 * minor + patch
}

/// The IP to publish: `--axon.external-ip`, else the bind IP unless it is unspecified
/// (`0.0.0.0`, `::`), else loopback.
pub fn external_ip(explicit: Option<IpAddr>, bind: IpAddr) -> IpAddr {
    match explicit {
        Some(ip) => ip,
        None if !bind.is_unspecified() => bind,
        None => IpAddr::from([127, 0, 0, 1]),
    }
}

/// What to tell the operator when the published address cannot be reached from another machine:
/// a loopback IP published while listening on every interface (no `--axon.external-ip` given).
/// Serving on loopback on purpose (a local devnet) gets no warning.
pub fn loopback_warning(published: IpAddr, bind: IpAddr) -> Option<String> {
    (published.is_loopback() && bind.is_unspecified()).then(|| {
        format!(
            "publishing {published} on chain while listening on {bind}: validators on other \
             machines cannot reach this miner; pass --axon.external-ip <this machine's public IP>"
        )
    })
}

/// The served model, as [`commitment_warning`] names it.
#[derive(Debug, Clone)]
pub struct ServedModel<'a> {
    /// The commitment the hotkey should have on chain for it.
    pub commitment: &'a ModelCommitment,
    /// Its manifest hash (what the binding binds).
    pub manifest_sha256: &'a str,
    /// `--model.dir`, for the fix.
    pub dir: &'a std::path::Path,
}

/// What `miner serve` warns about the hotkey's on-chain commitment (`on_chain`, its bytes when
/// it has one) for the model it serves: `None` when they agree. The warning names both
/// commitments, the served manifest hash and the `miner commit` that fixes it. Validators skip
/// or zero a model whose commitment is missing, unbound or another's.
pub fn commitment_warning(
    on_chain: Option<&[u8]>,
    served: &ServedModel<'_>,
    netuid: NetUid,
) -> Option<String> {
    let served_text = String::from_utf8_lossy(&served.commitment.encode()).into_owned();
    let competition = if served.commitment.competition == DEFAULT_COMPETITION {
        String::new()
    } else {
        format!(" --competition {}", served.commitment.competition)
    };
    let fix = format!(
        "the served model's is {served_text} (manifest {}); run `miner commit --model.dir {}{competition} \
         --netuid {netuid}` with this miner's --wallet.* and chain flags",
        served.manifest_sha256,
        served.dir.display(),
    );
    let Some(bytes) = on_chain else {
        return Some(format!(
            "this hotkey has no model commitment on subnet {netuid}: validators do not evaluate \
             the served model; {fix}"
        ));
    };
    let on_chain_text = String::from_utf8_lossy(bytes);
    match ModelCommitment::decode(bytes) {
        Ok(committed) if committed == *served.commitment => None,
        Ok(committed) if committed.competition != served.commitment.competition => Some(format!(
            "the on-chain commitment {on_chain_text} is for competition {:?}, the served model \
             for {:?}; {fix}",
            committed.competition, served.commitment.competition
        )),
        Ok(_) => Some(format!(
            "the on-chain commitment {on_chain_text} names another model than the one served: \
             validators record a hash mismatch; {fix}"
        )),
        Err(CommitmentError::Unbound) => Some(format!(
            "the on-chain commitment {on_chain_text} is the old unbound `model:` form, which \
             validators refuse; {fix}"
        )),
        Err(error) => Some(format!(
            "the on-chain commitment {on_chain_text:?} is not a model commitment ({error}); {fix}"
        )),
    }
}

async fn find_neuron<C: ChainClient>(
    chain: &C,
    netuid: NetUid,
    hotkey: &AccountId,
) -> anyhow::Result<Option<NeuronInfo>> {
    let metagraph = chain
        .metagraph(netuid)
        .await
        .with_context(|| format!("while reading subnet {netuid}'s metagraph"))?;
    Ok(metagraph.neurons.into_iter().find(|n| n.hotkey == *hotkey))
}

async fn submit_and_wait<C: ChainClient>(
    chain: &C,
    call: Call,
    signer: &Keypair,
    wait: Duration,
) -> anyhow::Result<Inclusion> {
    let name = call.name();
    let tx = chain
        .submit(call, signer)
        .await
        .with_context(|| format!("the chain refused the {name} extrinsic"))?;
    chain
        .wait_for_inclusion(tx, wait)
        .await
        .with_context(|| format!("{name} extrinsic {tx} was not applied"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loopback_address_published_from_an_open_bind_is_warned_about() {
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let published = external_ip(None, any);
        let warning = loopback_warning(published, any).expect("a warning");
        assert!(warning.contains("--axon.external-ip"), "{warning}");
        assert_eq!(loopback_warning(external_ip(Some(public), any), any), None);
        // A miner bound to loopback on purpose (a local devnet) is not warned.
        assert_eq!(
            loopback_warning(external_ip(None, loopback), loopback),
            None
        );
        assert_eq!(loopback_warning(public, public), None);
    }

    #[test]
    fn axon_info_encodes_ipv4_as_its_32_bit_value_and_ipv6_as_128() {
        let v4 = axon_info("10.0.0.2:8091".parse().unwrap());
        assert_eq!((v4.ip, v4.ip_type, v4.port), (0x0a00_0002, 4, 8091));
        let v6 = axon_info("[::1]:9000".parse().unwrap());
        assert_eq!((v6.ip, v6.ip_type), (1, 6));
        assert_eq!(v4.protocol, AXON_PROTOCOL_HTTP);
    }

    #[test]
    fn version_as_int_matches_bittensor() {
        assert_eq!(version_as_int("0.1.0"), 10);
        assert_eq!(version_as_int("9.12.2"), 1022);
        assert_eq!(version_as_int("1.2.3-rc1"), 123);
        assert_eq!(version_as_int("x"), 0);
    }

    #[test]
    fn external_ip_prefers_the_flag_then_a_specific_bind_ip_then_loopback() {
        let flag: IpAddr = "203.0.113.7".parse().unwrap();
        let bind: IpAddr = "192.168.1.5".parse().unwrap();
        assert_eq!(external_ip(Some(flag), bind), flag);
        assert_eq!(external_ip(None, bind), bind);
        assert_eq!(
            external_ip(None, "0.0.0.0".parse().unwrap()).to_string(),
            "127.0.0.1"
        );
        assert_eq!(
            external_ip(None, "::".parse().unwrap()).to_string(),
            "127.0.0.1"
        );
    }

    #[test]
    fn serve_warns_unless_the_on_chain_commitment_is_the_served_model_bound_to_the_hotkey() {
        use subnet_common::keys::AccountId;
        let (hotkey, other) = (AccountId([1; 32]), AccountId([2; 32]));
        let manifest = "ab".repeat(32);
        let commitment = ModelCommitment::bind("tiny", &hotkey, &manifest).unwrap();
        let served = ServedModel {
            commitment: &commitment,
            manifest_sha256: &manifest,
            dir: std::path::Path::new("/models/mine"),
        };
        assert_eq!(
            commitment_warning(Some(&commitment.encode()), &served, 1),
            None
        );
        let another = ModelCommitment::bind("tiny", &other, &manifest).unwrap();
        let cases: [(Option<Vec<u8>>, &str); 5] = [
            (None, "no model commitment on subnet 1"),
            (
                Some(format!("model:tiny:{manifest}").into_bytes()),
                "old unbound `model:` form",
            ),
            (Some(another.encode()), "names another model"),
            (
                Some(
                    ModelCommitment::bind("big", &hotkey, &manifest)
                        .unwrap()
                        .encode(),
                ),
                "competition \"big\"",
            ),
            (Some(b"hello".to_vec()), "not a model commitment"),
        ];
        let served_text = format!("model2:tiny:{}", commitment.binding);
        for (bytes, needle) in cases {
            let warning = commitment_warning(bytes.as_deref(), &served, 1).expect("a warning");
            assert!(warning.contains(needle), "{warning}");
            assert!(
                warning.contains(&format!(
                    "the served model's is {served_text} (manifest {manifest})"
                )),
                "names the served commitment and manifest: {warning}"
            );
            assert!(
                warning.contains(
                    "`miner commit --model.dir /models/mine --competition tiny --netuid 1`"
                ),
                "{warning}"
            );
            if let Some(bytes) = &bytes {
                assert!(
                    warning.contains(&String::from_utf8_lossy(bytes).into_owned()),
                    "names the on-chain commitment: {warning}"
                );
            }
        }
    }
}
