//! [`SubtensorClient`] as the miner and validator see a chain: [`ChainClient`], the trait the
//! dev chain's client implements too, and [`AnyChain`], which of the two an endpoint is.
//!
//! What the trait asks for and how a Subtensor node gives it:
//!
//! | trait | Subtensor |
//! |---|---|
//! | head | `chain_getHeader`, `chain_getBlockHash`, `chain_getBlock`, `Timestamp.Now`, one block |
//! | metagraph | `NeuronInfoRuntimeApi_get_neurons_lite` + `Weights`/`Bonds`/`BlockAtRegistration` |
//! | hyperparameters | `SubnetInfoRuntimeApi_get_subnet_hyperparams` + the storage it leaves out (`Burn`, …) |
//! | commitments | `Commitments.CommitmentOf`, with each hotkey's uid from the neurons |
//! | prepare / submit | the [`Runtime`](crate::Runtime)'s signed extrinsic, mortal for [`ERA_PERIOD`] blocks, after reading the runtime version (metadata again after an upgrade; so do metagraph and hyperparameters) |
//! | timelocked commits | `CommitRevealWeightsVersion` 4 and commit–reveal on: the weights encrypted to the quicknet round `EpochSchedule` predicts |
//! | tx_status | the extrinsic's blake2 hash looked up in the blocks of its era, then `System.Events` |
//!
//! A node keeps no index of extrinsics by hash, so the client remembers the era of each extrinsic
//! it prepared and scans the blocks of that era. An extrinsic it did not prepare (a hash recorded
//! before a restart) may have been born up to [`ERA_PERIOD`] blocks before the first question:
//! its search starts there, and it is `Unknown` only once no block of any era it could have had
//! holds it.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use subnet_common::chain::client::{
    ChainClient, ChainClientError, ClientOptions, PreparedTx, TimelockedCommit,
};
use subnet_common::chain::rpc::{HeaderView, TxStatus, code};
use subnet_common::chain::types::{
    AccountInfo, Call, Commitment, Hyperparameters, Metagraph, NetUid,
};
use subnet_common::chain::{DevChainClient, H256, JsonRpcHttp};
use subnet_common::keys::{AccountId, Keypair};
use subxt_core::ext::scale_decode::DecodeAsType;
use subxt_core::ext::scale_value::Value;

use crate::calls::SubtensorCall;
use crate::client::{SubtensorClient, SubtensorError, endpoint_url};
use crate::extrinsic::Era;
use crate::reads::{Outcome, outcome_of};
use crate::timelock::{EpochSchedule, QUICKNET_PUBLIC_KEY, WeightsTlockPayload};

/// Blocks an extrinsic the client signs stays valid (about 13 minutes at 12 s a block), as the
/// SDK signs them.
pub const ERA_PERIOD: u64 = 64;

/// How often [`ChainClient::wait_for_inclusion`] asks a Subtensor node (blocks come every 12 s).
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The commit–reveal version whose commits are timelocked (`commit_timelocked_weights`).
pub const TIMELOCK_VERSION: u16 = 4;

/// Seconds per block the reveal round is predicted with, as the SDK predicts it.
pub const BLOCK_SECS: f64 = 12.0;

/// Most blocks the inclusion search keeps (their extrinsic hashes).
const MAX_SCANNED_BLOCKS: usize = 4 * ERA_PERIOD as usize;

/// Most extrinsics followed at once; the oldest are forgotten first.
const MAX_WATCHES: usize = 1024;

impl From<SubtensorError> for ChainClientError {
    fn from(error: SubtensorError) -> Self {
        match error {
            SubtensorError::Chain(error) => error,
            SubtensorError::Runtime(error) => Self::Decode {
                method: "metadata",
                reason: error.to_string(),
            },
            SubtensorError::Unexpected { method, reason } => Self::Decode { method, reason },
        }
    }
}

/// The dev chain's calls as Subtensor's. Dev-chain administration (stake, transfers,
/// hyperparameters) is for btcli on a real network.
pub fn subtensor_call(call: Call) -> Result<SubtensorCall, ChainClientError> {
    Ok(match call {
        Call::Register { netuid, hotkey } => SubtensorCall::BurnedRegister { netuid, hotkey },
        Call::ServeAxon {
            netuid,
            version,
            ip,
            port,
            ip_type,
            protocol,
        } => SubtensorCall::ServeAxon {
            netuid,
            version,
            ip,
            port,
            ip_type,
            protocol,
        },
        Call::SetCommitment { netuid, data } => SubtensorCall::SetCommitment { netuid, data },
        Call::SetWeights {
            netuid,
            dests,
            weights,
            version_key,
        } => SubtensorCall::SetWeights {
            netuid,
            dests,
            weights,
            version_key,
        },
        Call::CommitWeights {
            netuid,
            commit_hash,
        } => SubtensorCall::CommitWeights {
            netuid,
            commit_hash,
        },
        Call::RevealWeights {
            netuid,
            uids,
            values,
            salt,
            version_key,
        } => SubtensorCall::RevealWeights {
            netuid,
            uids,
            values,
            salt,
            version_key,
        },
        Call::CommitTimelockedWeights {
            netuid,
            commit,
            reveal_round,
            commit_reveal_version,
        } => SubtensorCall::CommitTimelockedWeights {
            netuid,
            commit,
            reveal_round,
            commit_reveal_version,
        },
        other @ (Call::AddStake { .. }
        | Call::RemoveStake { .. }
        | Call::Transfer { .. }
        | Call::SetHyperparameter { .. }) => {
            return Err(ChainClientError::Unsupported {
                call: other.name(),
                reason: "on a Subtensor network stake, transfers and hyperparameters are \
                         btcli's (`btcli stake add`, `btcli wallet transfer`, `btcli sudo set`)"
                    .into(),
            });
        }
    })
}

/// The blocks searched for extrinsics and the extrinsics searched for.
#[derive(Debug, Default)]
pub(crate) struct Inclusions {
    /// Block number → its hash and its extrinsics' hashes.
    blocks: BTreeMap<u64, (H256, Vec<[u8; 32]>)>,
    /// Extrinsic → the first block it can be in and the last.
    watches: HashMap<[u8; 32], (u64, u64)>,
    /// Insertion order of `watches`, to forget the oldest.
    order: Vec<[u8; 32]>,
}

impl Inclusions {
    pub(crate) fn watch(&mut self, tx: [u8; 32], first: u64, last: u64) {
        if self.watches.insert(tx, (first, last)).is_none() {
            self.order.push(tx);
        }
        if self.order.len() > MAX_WATCHES {
            let oldest = self.order.remove(0);
            self.watches.remove(&oldest);
        }
    }
}

/// `System.Account`'s value, as far as the client needs it.
#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
struct SystemAccount {
    nonce: u32,
    data: AccountData,
}

#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
struct AccountData {
    free: u64,
}

/// `chain_getBlock`'s answer.
#[derive(Debug, Deserialize)]
struct SignedBlock {
    block: Block,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Block {
    header: BlockHeader,
    extrinsics: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockHeader {
    parent_hash: H256,
    number: String,
    state_root: H256,
    extrinsics_root: H256,
}

fn unhex(method: &'static str, text: &str) -> Result<Vec<u8>, ChainClientError> {
    hex::decode(text.trim_start_matches("0x")).map_err(|e| ChainClientError::Decode {
        method,
        reason: format!("not hex: {e}"),
    })
}

fn blake2_256(bytes: &[u8]) -> [u8; 32] {
    use subxt_core::config::Hasher;
    subxt_core::config::substrate::BlakeTwo256.hash(bytes).0
}

fn netuid_key(netuid: NetUid) -> Vec<Value> {
    vec![Value::u128(u128::from(netuid))]
}

impl SubtensorClient {
    /// Block `hash`: its header fields and its extrinsics' hashes.
    async fn block(&self, hash: H256) -> Result<(Block, Vec<[u8; 32]>), ChainClientError> {
        let answer: Option<SignedBlock> = self.rpc().call("chain_getBlock", json!([hash])).await?;
        let block = answer
            .ok_or_else(|| ChainClientError::Decode {
                method: "chain_getBlock",
                reason: format!("the node has no block {hash}"),
            })?
            .block;
        let hashes = block
            .extrinsics
            .iter()
            .map(|x| Ok(blake2_256(&unhex("chain_getBlock", x)?)))
            .collect::<Result<_, ChainClientError>>()?;
        Ok((block, hashes))
    }

    /// The hashes of block `number`'s extrinsics, read once.
    async fn scanned(
        &self,
        number: u64,
    ) -> Result<Option<(H256, Vec<[u8; 32]>)>, ChainClientError> {
        if let Some(known) = self.inclusions().blocks.get(&number) {
            return Ok(Some(known.clone()));
        }
        let Some(hash) = self.block_hash(number).await? else {
            return Ok(None);
        };
        let (_, hashes) = self.block(hash).await?;
        let mut inclusions = self.inclusions();
        inclusions.blocks.insert(number, (hash, hashes.clone()));
        while inclusions.blocks.len() > MAX_SCANNED_BLOCKS {
            inclusions.blocks.pop_first();
        }
        Ok(Some((hash, hashes)))
    }

    fn inclusions(&self) -> std::sync::MutexGuard<'_, Inclusions> {
        self.inclusion_state()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Each neuron's hotkey and uid at block `at`.
    async fn uids(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<HashMap<AccountId, u16>, ChainClientError> {
        Ok(self
            .neurons_lite(netuid, at)
            .await?
            .into_iter()
            .map(|n| {
                let info = n.into_neuron_info();
                (info.hotkey, info.uid)
            })
            .collect())
    }

    async fn commitments_with_uids(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<Vec<Commitment>, ChainClientError> {
        let uids = self.uids(netuid, at).await?;
        let mut commitments: Vec<Commitment> = SubtensorClient::commitments(self, netuid, at)
            .await?
            .into_iter()
            .filter_map(|(hotkey, stored)| {
                // A hotkey no longer registered keeps its commitment in storage; the subnet's
                // commitments are its uids'.
                let uid = *uids.get(&hotkey)?;
                Some(Commitment {
                    hotkey,
                    uid,
                    block: stored.block,
                    data: stored.data(),
                })
            })
            .collect();
        commitments.sort_by_key(|c| c.uid);
        Ok(commitments)
    }
}

impl ChainClient for SubtensorClient {
    async fn genesis_hash(&self) -> Result<H256, ChainClientError> {
        Ok(H256(self.runtime().genesis_hash()))
    }

    async fn head(&self) -> Result<HeaderView, ChainClientError> {
        let (number, hash) = SubtensorClient::head(self).await?;
        let (block, _) = self.block(hash).await?;
        let timestamp: u64 = self.storage("Timestamp", "Now", Vec::new(), hash).await?;
        if block.header.number != format!("{number:#x}") {
            return Err(ChainClientError::Decode {
                method: "chain_getBlock",
                reason: format!(
                    "block {hash} is number {}, not {number}",
                    block.header.number
                ),
            });
        }
        Ok(HeaderView {
            number,
            hash,
            parent_hash: block.header.parent_hash,
            extrinsics_root: block.header.extrinsics_root,
            state_root: block.header.state_root,
            timestamp,
            extrinsic_count: u32::try_from(block.extrinsics.len()).unwrap_or(u32::MAX),
        })
    }

    async fn block_hash(&self, number: u64) -> Result<Option<H256>, ChainClientError> {
        Ok(SubtensorClient::block_hash(self, number).await?)
    }

    async fn metagraph(&self, netuid: NetUid) -> Result<Metagraph, ChainClientError> {
        // Read with the runtime the node runs now (a runtime upgrade changes the types).
        self.refresh_runtime().await?;
        let (number, hash) = SubtensorClient::head(self).await?;
        Ok(SubtensorClient::metagraph(self, netuid, number, hash).await?)
    }

    async fn hyperparameters(&self, netuid: NetUid) -> Result<Hyperparameters, ChainClientError> {
        self.refresh_runtime().await?;
        let (_, at) = SubtensorClient::head(self).await?;
        let hp = self
            .hyperparams(netuid, at)
            .await?
            .ok_or_else(|| unknown_subnet(netuid))?;
        let burn: u64 = self
            .storage("SubtensorModule", "Burn", netuid_key(netuid), at)
            .await?;
        let max_allowed_uids: u16 = self
            .storage("SubtensorModule", "MaxAllowedUids", netuid_key(netuid), at)
            .await?;
        let bonds_penalty: u16 = self
            .storage("SubtensorModule", "BondsPenalty", netuid_key(netuid), at)
            .await?;
        let yuma3_enabled: bool = self
            .storage("SubtensorModule", "Yuma3On", netuid_key(netuid), at)
            .await?;
        let stake_threshold: u64 = self
            .storage("SubtensorModule", "StakeThreshold", Vec::new(), at)
            .await?;
        let subnet_owner_cut: u16 = self
            .storage("SubtensorModule", "SubnetOwnerCut", Vec::new(), at)
            .await?;
        Ok(Hyperparameters {
            tempo: hp.tempo,
            kappa: hp.kappa,
            bonds_moving_average: hp.bonds_moving_avg,
            bonds_penalty,
            liquid_alpha_enabled: hp.liquid_alpha_enabled,
            alpha_low: hp.alpha_low,
            alpha_high: hp.alpha_high,
            yuma3_enabled,
            max_allowed_uids,
            max_allowed_validators: hp.max_validators,
            min_allowed_weights: hp.min_allowed_weights,
            max_weight_limit: hp.max_weights_limit,
            immunity_period: hp.immunity_period,
            activity_cutoff: hp.activity_cutoff,
            weights_set_rate_limit: hp.weights_rate_limit,
            weights_version_key: hp.weights_version,
            commit_reveal_weights_enabled: hp.commit_reveal_weights_enabled,
            commit_reveal_period: hp.commit_reveal_period,
            stake_threshold,
            serving_rate_limit: hp.serving_rate_limit,
            // Subtensor limits commitments by space used per interval
            // (`Commitments.UsedSpaceOf`), not by blocks between two of them.
            commitment_rate_limit: 0,
            registration_allowed: hp.registration_allowed,
            burn,
            subnet_owner_cut,
            ..Hyperparameters::default()
        })
    }

    async fn commitments(&self, netuid: NetUid) -> Result<Vec<Commitment>, ChainClientError> {
        let (_, at) = SubtensorClient::head(self).await?;
        self.commitments_with_uids(netuid, at).await
    }

    async fn commitments_at(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<Vec<Commitment>, ChainClientError> {
        self.commitments_with_uids(netuid, at).await
    }

    async fn account(&self, account: &AccountId) -> Result<AccountInfo, ChainClientError> {
        let (_, at) = SubtensorClient::head(self).await?;
        let info: SystemAccount = self
            .storage(
                "System",
                "Account",
                vec![Value::from_bytes(account.as_bytes())],
                at,
            )
            .await?;
        Ok(AccountInfo {
            free: info.data.free,
            nonce: u64::from(info.nonce),
        })
    }

    async fn prepare(&self, call: Call, signer: &Keypair) -> Result<PreparedTx, ChainClientError> {
        let name = call.name();
        let call = subtensor_call(call)?;
        // An extrinsic signed for a runtime the node no longer runs fails its signature check:
        // read the runtime version first, and the new metadata after an upgrade.
        if self.refresh_runtime().await? {
            tracing::info!(
                spec_version = self.runtime().spec_version(),
                "the node's runtime was upgraded; metadata read again"
            );
        }
        let nonce = self.next_nonce(&signer.account_id()).await?;
        let (number, hash) = SubtensorClient::head(self).await?;
        let era = Era::Mortal {
            period: ERA_PERIOD,
            from_block: number,
            from_hash: hash.0,
        };
        let runtime = self.runtime();
        let signed = runtime
            .prepare(&call, nonce, 0, era)
            .map_err(SubtensorError::from)?
            .sign(signer);
        self.inclusions()
            .watch(signed.hash, number + 1, number + ERA_PERIOD);
        Ok(PreparedTx {
            call: name,
            nonce,
            hash: H256(signed.hash),
            bytes: signed.bytes,
        })
    }

    async fn submit_prepared(&self, tx: &PreparedTx) -> Result<H256, ChainClientError> {
        Ok(self
            .submit(&crate::SignedExtrinsic {
                bytes: tx.bytes.clone(),
                hash: tx.hash.0,
            })
            .await?)
    }

    async fn tx_status(&self, tx: H256) -> Result<TxStatus, ChainClientError> {
        let head = SubtensorClient::best_number(self).await?;
        let (first, last) = {
            let mut inclusions = self.inclusions();
            match inclusions.watches.get(&tx.0) {
                Some(&span) => span,
                None => {
                    // Not prepared here: it may have been born an era ago, or just now.
                    let span = (head.saturating_sub(ERA_PERIOD), head + ERA_PERIOD);
                    inclusions.watch(tx.0, span.0, span.1);
                    span
                }
            }
        };
        for number in first..=head.min(last) {
            let Some((hash, hashes)) = self.scanned(number).await? else {
                continue;
            };
            let Some(index) = hashes.iter().position(|h| *h == tx.0) else {
                continue;
            };
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            let events = self.events(hash).await?;
            return match outcome_of(&events, index) {
                Some(Outcome::Success) => Ok(TxStatus::InBlock {
                    block: number,
                    block_hash: hash,
                    index,
                }),
                Some(Outcome::Failed { error }) => Ok(TxStatus::Failed {
                    block: number,
                    error,
                }),
                None => Err(ChainClientError::Decode {
                    method: "System.Events",
                    reason: format!("block {number} has no outcome for its extrinsic {index}"),
                }),
            };
        }
        Ok(if head > last {
            TxStatus::Unknown
        } else {
            TxStatus::Pending
        })
    }

    fn inclusion_poll_interval(&self) -> Duration {
        POLL_INTERVAL
    }

    async fn timelocked_weights(&self, netuid: NetUid) -> Result<bool, ChainClientError> {
        let (_, at) = SubtensorClient::head(self).await?;
        self.timelock_version(netuid, at).await.map(|v| v.is_some())
    }

    async fn timelocked_commit(
        &self,
        netuid: NetUid,
        hotkey: &AccountId,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<TimelockedCommit, ChainClientError> {
        let (number, at) = SubtensorClient::head(self).await?;
        let version = self.timelock_version(netuid, at).await?.ok_or_else(|| {
            ChainClientError::Unsupported {
                call: "commit_timelocked_weights",
                reason: format!(
                    "subnet {netuid} does not take timelocked commits now (commit-reveal off, or \
                     a CommitRevealWeightsVersion other than {TIMELOCK_VERSION})"
                ),
            }
        })?;
        let module = |entry: &'static str| {
            self.storage::<u64>("SubtensorModule", entry, netuid_key(netuid), at)
        };
        let tempo = self
            .hyperparams(netuid, at)
            .await?
            .ok_or_else(|| unknown_subnet(netuid))?
            .tempo;
        let schedule = EpochSchedule {
            last_epoch_block: module("LastEpochBlock").await?,
            pending_epoch_at: module("PendingEpochAt").await?,
            subnet_epoch_index: module("SubnetEpochIndex").await?,
            tempo,
            blocks_since_last_step: module("BlocksSinceLastStep").await?,
            current_block: number,
        };
        let reveal_epochs = module("RevealPeriodEpochs").await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let schedule_error = |e: crate::timelock::ScheduleError| ChainClientError::Unsupported {
            call: "commit_timelocked_weights",
            reason: e.to_string(),
        };
        let reveal_round = schedule
            .reveal_round(reveal_epochs, BLOCK_SECS, now)
            .map_err(schedule_error)?;
        let public_key =
            hex::decode(QUICKNET_PUBLIC_KEY).map_err(|e| ChainClientError::Decode {
                method: "timelock",
                reason: e.to_string(),
            })?;
        let payload =
            WeightsTlockPayload::new(hotkey, uids.to_vec(), weights.to_vec(), version_key);
        TimelockedCommit::seal(netuid, &payload, reveal_round, version, &public_key)
    }
}

impl SubtensorClient {
    /// The subnet's commit–reveal version at block `at` when it takes timelocked commits:
    /// commit–reveal on and `CommitRevealWeightsVersion` = [`TIMELOCK_VERSION`].
    async fn timelock_version(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<Option<u16>, ChainClientError> {
        let hp = self
            .hyperparams(netuid, at)
            .await?
            .ok_or_else(|| unknown_subnet(netuid))?;
        if !hp.commit_reveal_weights_enabled {
            return Ok(None);
        }
        let version: u16 = self
            .storage(
                "SubtensorModule",
                "CommitRevealWeightsVersion",
                Vec::new(),
                at,
            )
            .await?;
        Ok((version == TIMELOCK_VERSION).then_some(version))
    }
}

fn unknown_subnet(netuid: NetUid) -> ChainClientError {
    ChainClientError::Rpc {
        method: "SubnetInfoRuntimeApi_get_subnet_hyperparams",
        code: code::UNKNOWN_SUBNET,
        message: format!("subnet {netuid} does not exist"),
    }
}

/// The chain an endpoint serves: the project's dev chain or a Subtensor node. Both speak
/// JSON-RPC; only Subtensor answers `state_getRuntimeVersion`.
#[derive(Debug)]
pub enum AnyChain {
    /// The project's dev chain.
    Dev(DevChainClient),
    /// A Subtensor node.
    Subtensor(Box<SubtensorClient>),
}

impl AnyChain {
    /// Connects to `endpoint` (`finney`, `test`, `local` or a URL, see [`endpoint_url`]) and
    /// finds out which chain it serves.
    pub async fn connect(endpoint: &str, options: ClientOptions) -> Result<Self, ChainClientError> {
        let url = endpoint_url(endpoint)?;
        let probe = JsonRpcHttp::new(&url, options)?;
        match probe
            .call::<serde_json::Value>("state_getRuntimeVersion", json!([]))
            .await
        {
            Ok(_) => Ok(Self::Subtensor(Box::new(
                SubtensorClient::connect(endpoint, options).await?,
            ))),
            Err(ChainClientError::Rpc { code, .. }) if code == code::METHOD_NOT_FOUND => {
                Ok(Self::Dev(DevChainClient::with_options(&url, options)?))
            }
            Err(error) => Err(error),
        }
    }

    /// [`AnyChain::connect`], waiting for a node that does not answer yet (a devnet starting,
    /// a node restarting) with backoff up to 30 s and a warning each time; any other error is
    /// returned at once.
    pub async fn connect_waiting(
        endpoint: &str,
        options: ClientOptions,
    ) -> Result<Self, ChainClientError> {
        let mut retry_in = Duration::from_secs(1);
        loop {
            match Self::connect(endpoint, options).await {
                Err(error @ ChainClientError::Transport { .. }) => {
                    tracing::warn!(
                        %error,
                        ?retry_in,
                        "the chain is not answering yet (is the node running? check \
                         --subtensor.network / --subtensor.chain_endpoint); waiting for it"
                    );
                    tokio::time::sleep(retry_in).await;
                    retry_in = (retry_in * 2).min(Duration::from_secs(30));
                }
                other => return other,
            }
        }
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        match self {
            Self::Dev(chain) => chain.url(),
            Self::Subtensor(chain) => chain.url(),
        }
    }

    /// `"dev chain"` or `"Subtensor"`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dev(_) => "dev chain",
            Self::Subtensor(_) => "Subtensor",
        }
    }
}

macro_rules! either {
    ($self:ident, $chain:ident => $body:expr) => {
        match $self {
            AnyChain::Dev($chain) => $body,
            AnyChain::Subtensor($chain) => {
                let $chain = &**$chain;
                $body
            }
        }
    };
}

impl ChainClient for AnyChain {
    async fn genesis_hash(&self) -> Result<H256, ChainClientError> {
        either!(self, c => c.genesis_hash().await)
    }

    async fn head(&self) -> Result<HeaderView, ChainClientError> {
        either!(self, c => ChainClient::head(c).await)
    }

    async fn block_hash(&self, number: u64) -> Result<Option<H256>, ChainClientError> {
        either!(self, c => ChainClient::block_hash(c, number).await)
    }

    async fn metagraph(&self, netuid: NetUid) -> Result<Metagraph, ChainClientError> {
        either!(self, c => ChainClient::metagraph(c, netuid).await)
    }

    async fn hyperparameters(&self, netuid: NetUid) -> Result<Hyperparameters, ChainClientError> {
        either!(self, c => c.hyperparameters(netuid).await)
    }

    async fn commitments(&self, netuid: NetUid) -> Result<Vec<Commitment>, ChainClientError> {
        either!(self, c => ChainClient::commitments(c, netuid).await)
    }

    async fn commitments_at(
        &self,
        netuid: NetUid,
        at: H256,
    ) -> Result<Vec<Commitment>, ChainClientError> {
        either!(self, c => c.commitments_at(netuid, at).await)
    }

    async fn account(&self, account: &AccountId) -> Result<AccountInfo, ChainClientError> {
        either!(self, c => c.account(account).await)
    }

    async fn prepare(&self, call: Call, signer: &Keypair) -> Result<PreparedTx, ChainClientError> {
        either!(self, c => c.prepare(call, signer).await)
    }

    async fn submit_prepared(&self, tx: &PreparedTx) -> Result<H256, ChainClientError> {
        either!(self, c => c.submit_prepared(tx).await)
    }

    async fn tx_status(&self, tx: H256) -> Result<TxStatus, ChainClientError> {
        either!(self, c => c.tx_status(tx).await)
    }

    fn inclusion_poll_interval(&self) -> Duration {
        either!(self, c => c.inclusion_poll_interval())
    }

    async fn timelocked_weights(&self, netuid: NetUid) -> Result<bool, ChainClientError> {
        either!(self, c => c.timelocked_weights(netuid).await)
    }

    async fn timelocked_commit(
        &self,
        netuid: NetUid,
        hotkey: &AccountId,
        uids: &[u16],
        weights: &[u16],
        version_key: u64,
    ) -> Result<TimelockedCommit, ChainClientError> {
        either!(self, c => c.timelocked_commit(netuid, hotkey, uids, weights, version_key).await)
    }
}
