//! [`SubtensorClient`]: a Subtensor node's JSON-RPC, read and written through its own runtime's
//! metadata. Over HTTP(S): a Substrate node serves JSON-RPC over HTTP and WebSocket on the same
//! port, so `ws://` and `wss://` endpoints (what btcli and the SDK are given) are reached as
//! `http://` and `https://`. Every call has a timeout and a size limit ([`ClientOptions`]).
//!
//! At connect the client reads the genesis hash, the runtime version and the metadata (V15
//! through `Metadata_metadata_at_version`, else V14 through `state_getMetadata`);
//! [`SubtensorClient::refresh_runtime`] reads them again when the runtime was upgraded. Reads
//! take the block hash they are pinned to, so a set of reads sees one state.

use std::sync::{Arc, Mutex, RwLock};

use serde::Deserialize;
use serde_json::{Value as Json, json};
use subnet_common::chain::types::Metagraph;
use subnet_common::chain::{ChainClientError, ClientOptions, H256, JsonRpcHttp};
use subnet_common::keys::AccountId;
use subxt_core::ext::scale_decode::DecodeAsType;
use subxt_core::ext::scale_value::Value;

use crate::chain::Inclusions;
use crate::extrinsic::SignedExtrinsic;
use crate::reads::{EventRecord, NeuronLite, StoredCommitment, SubnetHyperparams};
use crate::runtime::{Runtime, RuntimeError};

/// Keys asked for per `state_getKeysPaged` page.
pub const KEYS_PER_PAGE: u32 = 1000;

/// Most commitments read for one subnet (a subnet has at most a few thousand uids; more keys
/// than this is a node misbehaving).
pub const MAX_COMMITMENTS: usize = 65_536;

/// The endpoints the named networks resolve to, as the SDK names them.
pub const NETWORKS: [(&str, &str); 3] = [
    ("finney", "wss://entrypoint-finney.opentensor.ai:443"),
    ("test", "wss://test.finney.opentensor.ai:443"),
    ("local", "ws://127.0.0.1:9944"),
];

/// Why a Subtensor request failed.
#[derive(Debug, thiserror::Error)]
pub enum SubtensorError {
    /// The network or transport: unreachable, timeout, HTTP or JSON-RPC error.
    #[error(transparent)]
    Chain(#[from] ChainClientError),
    /// The runtime's metadata cannot encode or decode what was asked.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The node answered something this client cannot read.
    #[error("{method}: {reason}")]
    Unexpected {
        /// The JSON-RPC method.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// The JSON-RPC URL of `network`: a named network ([`NETWORKS`]) or a `ws://`, `wss://`,
/// `http://` or `https://` endpoint; WebSocket schemes map to their HTTP twins.
pub fn endpoint_url(network: &str) -> Result<String, ChainClientError> {
    let url = NETWORKS
        .iter()
        .find(|(name, _)| *name == network)
        .map_or(network, |(_, url)| url);
    let bad = |reason: String| ChainClientError::BadUrl {
        url: network.to_owned(),
        reason,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("use finney, test, local or a ws://, wss://, http(s):// URL".into()))?;
    let scheme = match scheme {
        "ws" | "http" => "http",
        "wss" | "https" => "https",
        other => {
            return Err(bad(format!(
                "scheme {other:?} is not ws, wss, http or https"
            )));
        }
    };
    Ok(format!("{scheme}://{rest}"))
}

/// A client of one Subtensor node.
#[derive(Debug)]
pub struct SubtensorClient {
    rpc: JsonRpcHttp,
    runtime: RwLock<Arc<Runtime>>,
    /// What the inclusion search has read and is looking for (`crate::chain`).
    inclusions: Mutex<Inclusions>,
}

/// `state_getRuntimeVersion`'s answer, as far as the client needs it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuntimeVersion {
    spec_version: u32,
    transaction_version: u32,
}

/// One block's entry in `state_queryStorageAt`'s answer: `[key, value or null]` pairs.
#[derive(Debug, Deserialize)]
struct ChangeSet {
    changes: Vec<(String, Option<String>)>,
}

/// `chain_getHeader`'s answer, as far as the client needs it.
#[derive(Debug, Deserialize)]
struct Header {
    /// `0x`-prefixed hex.
    number: String,
}

mod method {
    pub const BLOCK_HASH: &str = "chain_getBlockHash";
    pub const HEADER: &str = "chain_getHeader";
    pub const RUNTIME_VERSION: &str = "state_getRuntimeVersion";
    pub const CALL: &str = "state_call";
    pub const METADATA: &str = "state_getMetadata";
    pub const STORAGE: &str = "state_getStorage";
    pub const KEYS_PAGED: &str = "state_getKeysPaged";
    pub const QUERY_STORAGE_AT: &str = "state_queryStorageAt";
    pub const NEXT_INDEX: &str = "system_accountNextIndex";
    pub const SUBMIT: &str = "author_submitExtrinsic";
}

fn hex_param(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn unhex(method: &'static str, text: &str) -> Result<Vec<u8>, SubtensorError> {
    hex::decode(text.trim_start_matches("0x")).map_err(|e| SubtensorError::Unexpected {
        method,
        reason: format!("not hex: {e}"),
    })
}

impl SubtensorClient {
    /// Connects to `network` ([`endpoint_url`]) and reads its runtime.
    pub async fn connect(network: &str, options: ClientOptions) -> Result<Self, SubtensorError> {
        let rpc = JsonRpcHttp::new(&endpoint_url(network)?, options)?;
        let runtime = load_runtime(&rpc).await?;
        Ok(Self {
            rpc,
            runtime: RwLock::new(Arc::new(runtime)),
            inclusions: Mutex::new(Inclusions::default()),
        })
    }

    /// The JSON-RPC transport.
    pub(crate) fn rpc(&self) -> &JsonRpcHttp {
        &self.rpc
    }

    /// The inclusion search's state.
    pub(crate) fn inclusion_state(&self) -> &Mutex<Inclusions> {
        &self.inclusions
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        self.rpc.url()
    }

    /// The runtime the client encodes and decodes with.
    pub fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Reads the runtime version and, when the runtime was upgraded, its new metadata; true
    /// when it changed.
    pub async fn refresh_runtime(&self) -> Result<bool, SubtensorError> {
        let version: RuntimeVersion = self.rpc.call(method::RUNTIME_VERSION, json!([])).await?;
        let current = self.runtime();
        if version.spec_version == current.spec_version()
            && version.transaction_version == current.transaction_version()
        {
            return Ok(false);
        }
        let runtime = load_runtime(&self.rpc).await?;
        *self
            .runtime
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(runtime);
        Ok(true)
    }

    /// The best block: its number and hash.
    pub async fn head(&self) -> Result<(u64, H256), SubtensorError> {
        let number = self.best_number().await?;
        let hash = self
            .block_hash(number)
            .await?
            .ok_or_else(|| SubtensorError::Unexpected {
                method: method::BLOCK_HASH,
                reason: format!("no hash for the head, block {number}"),
            })?;
        Ok((number, hash))
    }

    /// The best block's number.
    pub async fn best_number(&self) -> Result<u64, SubtensorError> {
        let header: Header = self.rpc.call(method::HEADER, json!([])).await?;
        u64::from_str_radix(header.number.trim_start_matches("0x"), 16).map_err(|e| {
            SubtensorError::Unexpected {
                method: method::HEADER,
                reason: format!("block number {:?}: {e}", header.number),
            }
        })
    }

    /// The hash of block `number`, `None` when the node has no such block.
    pub async fn block_hash(&self, number: u64) -> Result<Option<H256>, SubtensorError> {
        Ok(self.rpc.call(method::BLOCK_HASH, json!([number])).await?)
    }

    /// `pallet.entry` at `keys`, at block `at`, decoded as `T` (the entry's default when
    /// nothing is stored).
    pub async fn storage<T: DecodeAsType>(
        &self,
        pallet: &str,
        entry: &str,
        keys: Vec<Value>,
        at: H256,
    ) -> Result<T, SubtensorError> {
        let runtime = self.runtime();
        let bytes = self
            .raw_storage(&runtime.storage_key(pallet, entry, keys)?, at)
            .await?;
        Ok(runtime.decode_storage(pallet, entry, bytes.as_deref())?)
    }

    /// The bytes stored under `key` at block `at` (`None`: nothing stored).
    async fn raw_storage(&self, key: &[u8], at: H256) -> Result<Option<Vec<u8>>, SubtensorError> {
        let answer: Option<String> = self
            .rpc
            .call(method::STORAGE, json!([hex_param(key), at]))
            .await?;
        answer.map(|a| unhex(method::STORAGE, &a)).transpose()
    }

    /// A runtime API call at block `at`, its answer decoded as `T`.
    pub async fn runtime_api<T: DecodeAsType>(
        &self,
        api: &str,
        method: &str,
        args: Vec<Value>,
        at: H256,
    ) -> Result<T, SubtensorError> {
        let runtime = self.runtime();
        let (name, args) = runtime.runtime_api_call(api, method, args)?;
        let answer: String = self
            .rpc
            .call(method::CALL, json!([name, hex_param(&args), at]))
            .await?;
        let bytes = unhex(method::CALL, &answer)?;
        Ok(runtime.decode_runtime_api(api, method, &bytes)?)
    }

    /// The subnet's neurons at block `at` (`NeuronInfoRuntimeApi_get_neurons_lite`).
    pub async fn neurons_lite(
        &self,
        netuid: u16,
        at: H256,
    ) -> Result<Vec<NeuronLite>, SubtensorError> {
        self.runtime_api(
            "NeuronInfoRuntimeApi",
            "get_neurons_lite",
            vec![Value::u128(u128::from(netuid))],
            at,
        )
        .await
    }

    /// The subnet's metagraph at block `at` (number `block`): the neurons, and each one's weight
    /// and bond rows and registration block from storage, read in one `state_queryStorageAt`
    /// per [`KEYS_PER_PAGE`] keys.
    pub async fn metagraph(
        &self,
        netuid: u16,
        block: u64,
        at: H256,
    ) -> Result<Metagraph, SubtensorError> {
        let runtime = self.runtime();
        let mut neurons: Vec<_> = self
            .neurons_lite(netuid, at)
            .await?
            .into_iter()
            .map(NeuronLite::into_neuron_info)
            .collect();
        neurons.sort_by_key(|n| n.uid);
        const ENTRIES: [&str; 3] = ["Weights", "Bonds", "BlockAtRegistration"];
        let mut keys = Vec::with_capacity(neurons.len() * ENTRIES.len());
        for neuron in &neurons {
            for entry in ENTRIES {
                let key = runtime.storage_key(
                    "SubtensorModule",
                    entry,
                    vec![
                        Value::u128(u128::from(netuid)),
                        Value::u128(u128::from(neuron.uid)),
                    ],
                )?;
                keys.push(hex_param(&key));
            }
        }
        let values = self.storage_values(&keys, at).await?;
        for (neuron, values) in neurons.iter_mut().zip(values.chunks(ENTRIES.len())) {
            let [weights, bonds, registered] = values else {
                continue;
            };
            neuron.weights =
                runtime.decode_storage("SubtensorModule", "Weights", weights.as_deref())?;
            neuron.bonds = runtime.decode_storage("SubtensorModule", "Bonds", bonds.as_deref())?;
            neuron.block_at_registration = runtime.decode_storage(
                "SubtensorModule",
                "BlockAtRegistration",
                registered.as_deref(),
            )?;
        }
        Ok(Metagraph {
            netuid,
            block,
            neurons,
        })
    }

    /// The values of `keys` (hex) at block `at`, in their order (`None`: nothing stored).
    async fn storage_values(
        &self,
        keys: &[String],
        at: H256,
    ) -> Result<Vec<Option<Vec<u8>>>, SubtensorError> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_PAGE as usize) {
            let sets: Vec<ChangeSet> = self
                .rpc
                .call(method::QUERY_STORAGE_AT, json!([chunk, at]))
                .await?;
            let changes: std::collections::HashMap<String, Option<String>> =
                sets.into_iter().flat_map(|set| set.changes).collect();
            for key in chunk {
                let value = changes.get(key).cloned().flatten();
                values.push(
                    value
                        .map(|v| unhex(method::QUERY_STORAGE_AT, &v))
                        .transpose()?,
                );
            }
        }
        Ok(values)
    }

    /// The subnet's hyperparameters at block `at` (`None`: no such subnet).
    pub async fn hyperparams(
        &self,
        netuid: u16,
        at: H256,
    ) -> Result<Option<SubnetHyperparams>, SubtensorError> {
        self.runtime_api(
            "SubnetInfoRuntimeApi",
            "get_subnet_hyperparams",
            vec![Value::u128(u128::from(netuid))],
            at,
        )
        .await
    }

    /// The next nonce of `account`, counting its extrinsics still in the node's pool.
    pub async fn next_nonce(&self, account: &AccountId) -> Result<u64, SubtensorError> {
        Ok(self
            .rpc
            .call(method::NEXT_INDEX, json!([account.to_ss58()]))
            .await?)
    }

    /// Submits a signed extrinsic; the node's answer must be the extrinsic's own hash.
    pub async fn submit(&self, extrinsic: &SignedExtrinsic) -> Result<H256, SubtensorError> {
        let answer: H256 = self
            .rpc
            .call(method::SUBMIT, json!([hex_param(&extrinsic.bytes)]))
            .await?;
        if answer.0 != extrinsic.hash {
            return Err(SubtensorError::Unexpected {
                method: method::SUBMIT,
                reason: format!(
                    "the node answered hash {answer}, the extrinsic hashes to 0x{}",
                    hex::encode(extrinsic.hash)
                ),
            });
        }
        Ok(answer)
    }

    /// Every hotkey's commitment on `netuid` at block `at` (`Commitments.CommitmentOf`), paged
    /// through with `state_getKeysPaged` and read with `state_queryStorageAt`.
    pub async fn commitments(
        &self,
        netuid: u16,
        at: H256,
    ) -> Result<Vec<(AccountId, StoredCommitment)>, SubtensorError> {
        let runtime = self.runtime();
        let prefix = hex_param(&runtime.commitments_prefix(netuid)?);
        let mut keys: Vec<String> = Vec::new();
        loop {
            let start = keys.last().cloned();
            let page: Vec<String> = self
                .rpc
                .call(
                    method::KEYS_PAGED,
                    json!([prefix, KEYS_PER_PAGE, start, at]),
                )
                .await?;
            let full = page.len() == KEYS_PER_PAGE as usize;
            keys.extend(page);
            if keys.len() > MAX_COMMITMENTS {
                return Err(SubtensorError::Unexpected {
                    method: method::KEYS_PAGED,
                    reason: format!("more than {MAX_COMMITMENTS} commitments on subnet {netuid}"),
                });
            }
            if !full {
                break;
            }
        }
        let values = self.storage_values(&keys, at).await?;
        let mut commitments = Vec::with_capacity(keys.len());
        for (key, value) in keys.iter().zip(values) {
            let Some(value) = value else { continue };
            let key = unhex(method::KEYS_PAGED, key)?;
            let hotkey = runtime
                .hotkey_of_commitment_key(netuid, &key)
                .ok_or_else(|| SubtensorError::Unexpected {
                    method: method::KEYS_PAGED,
                    reason: format!(
                        "key 0x{} is not a commitment of subnet {netuid}",
                        hex::encode(&key)
                    ),
                })?;
            commitments.push((hotkey, runtime.decode_commitment(&value)?));
        }
        Ok(commitments)
    }

    /// Block `at`'s events (`System.Events`).
    pub async fn events(&self, at: H256) -> Result<Vec<EventRecord>, SubtensorError> {
        let runtime = self.runtime();
        let key = runtime.storage_key("System", "Events", Vec::new())?;
        match self.raw_storage(&key, at).await? {
            Some(bytes) => Ok(runtime.decode_events(&bytes)?),
            None => Ok(Vec::new()),
        }
    }
}

/// Reads the node's genesis hash, runtime version and metadata.
async fn load_runtime(rpc: &JsonRpcHttp) -> Result<Runtime, SubtensorError> {
    let genesis: Option<H256> = rpc.call(method::BLOCK_HASH, json!([0])).await?;
    let genesis = genesis.ok_or(SubtensorError::Unexpected {
        method: method::BLOCK_HASH,
        reason: "the node has no block 0".into(),
    })?;
    let version: RuntimeVersion = rpc.call(method::RUNTIME_VERSION, json!([])).await?;
    // V15 where the runtime offers it (15u32 little-endian), else V14.
    let v15: Result<String, _> = rpc
        .call(
            method::CALL,
            json!(["Metadata_metadata_at_version", "0x0f000000"]),
        )
        .await;
    let metadata = match v15 {
        Ok(answer) => {
            let answer = unhex(method::CALL, &answer)?;
            match Runtime::opaque_metadata(&answer) {
                Ok(bytes) => bytes.to_vec(),
                Err(RuntimeError::NoMetadata) => v14(rpc).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ChainClientError::Rpc { .. }) => v14(rpc).await?,
        Err(e) => return Err(e.into()),
    };
    Ok(Runtime::new(
        &metadata,
        genesis.0,
        version.spec_version,
        version.transaction_version,
    )?)
}

async fn v14(rpc: &JsonRpcHttp) -> Result<Vec<u8>, SubtensorError> {
    let answer: Json = rpc.call(method::METADATA, json!([])).await?;
    let text = answer.as_str().ok_or(SubtensorError::Unexpected {
        method: method::METADATA,
        reason: "not a hex string".into(),
    })?;
    unhex(method::METADATA, text)
}
