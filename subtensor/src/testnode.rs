//! A Subtensor node for tests (feature `test-node`): the JSON-RPC a real node serves, over the
//! state the bittensor SDK recorded from a Subtensor test chain (`golden.json`, spec 461, see
//! `scripts/fetch-subtensor-fixtures.sh`), made to move: it checks every extrinsic it is sent as a
//! node would (signed v4, the signing payload rebuilt from the spec's layout — call, era, nonce,
//! tip, metadata-hash mode, then spec and transaction versions, genesis and the era's block hash —
//! and the sr25519 signature verified, nonce in order), applies the calls the subnet's binaries
//! send, and seals a block every tick with the extrinsics and `System.Events` saying how each
//! ended.
//!
//! What it applies, as Subtensor does for these calls: `burned_register` adds a neuron (the
//! recorded one is the template), `serve_axon` sets the neuron's axon, `set_commitment` stores a
//! `Commitments.CommitmentOf`, and the weight calls (`set_weights`, `commit_weights`,
//! `reveal_weights`, `commit_timelocked_weights`) move the neuron's `last_update`. A call by a
//! hotkey that is not registered fails in its block with Subtensor's error. What it is sent is
//! kept ([`TestNode::applied`]) for the test to check; what it cannot answer is kept too
//! ([`TestNode::unknown`]).
//!
//! It is a test double of a Subtensor node, not one: no fees, stake, consensus or emissions.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::{Json, Router, extract::State, routing::post};
use serde_json::{Value as Json_, json};
use subnet_common::keys::{AccountId, Signature};
use subxt_core::config::SubstrateConfig;
use subxt_core::ext::codec::{Compact, Decode, Encode};
use subxt_core::ext::scale_value::{self, Composite, Primitive, Value, ValueDef};

use crate::runtime::Runtime;

/// The SDK's recorded chain: `$SUBNET_SUBTENSOR_GOLDEN`, else where
/// `scripts/fetch-subtensor-fixtures.sh` keeps it (`$SUBNET_CACHE_DIR`, `$XDG_CACHE_HOME/subnet`
/// or `~/.cache/subnet`). Panics (never skips) with the command that fetches it.
pub fn recorded_chain() -> std::path::PathBuf {
    use std::path::PathBuf;
    let path = std::env::var_os("SUBNET_SUBTENSOR_GOLDEN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("SUBNET_CACHE_DIR")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("subnet"))
                })
                .or_else(|| {
                    std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/subnet"))
                })
                .expect("HOME is set");
            cache.join("bittensor-sdist/bittensor-11.3.0/tests/fixtures/golden.json")
        });
    assert!(
        path.is_file(),
        "{} is missing: run `scripts/fetch-subtensor-fixtures.sh` (or set SUBNET_SUBTENSOR_GOLDEN)",
        path.display()
    );
    path
}

/// The block the SDK recorded its state at.
const RECORDED_BLOCK: u64 = 67;

/// Subnet whose state the node keeps (the recorded subnet).
pub const NETUID: u16 = 1;

/// What [`TestNode`] was sent and applied: one per accepted extrinsic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The signer.
    pub signer: AccountId,
    /// `Pallet.call`, as the metadata names them.
    pub call: String,
    /// The call's fields, decoded.
    pub fields: Value<()>,
    /// Block it was sealed in.
    pub block: u64,
    /// `None` when it succeeded, else the dispatch error (`Pallet.Error`).
    pub error: Option<String>,
}

impl Applied {
    /// The numeric field `name` of the call, when it has one.
    pub fn number(&self, name: &str) -> Option<u128> {
        as_u128(field(&self.fields, name)?)
    }

    /// The bytes field `name` of the call, when it has one.
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        as_bytes(field(&self.fields, name)?)
    }
}

/// A block the node sealed.
#[derive(Debug, Clone)]
struct Block {
    hash: [u8; 32],
    parent: [u8; 32],
    extrinsics: Vec<Vec<u8>>,
    /// SCALE `System.Events`.
    events: Vec<u8>,
    /// Unix milliseconds.
    timestamp: u64,
}

#[derive(Debug)]
struct Chain {
    runtime: Runtime,
    golden: Json_,
    blocks: BTreeMap<u64, Block>,
    /// Hex storage key → hex value, as of the head.
    storage: BTreeMap<String, String>,
    /// The subnet's neurons as `NeuronInfoLite` values.
    neurons: Vec<Value<()>>,
    /// `SubnetHyperparams` of the subnet.
    hyperparams: Value<()>,
    nonces: BTreeMap<AccountId, u64>,
    /// Extrinsics accepted and not yet sealed, decoded.
    pool: Vec<(Vec<u8>, Pending)>,
    applied: Vec<Applied>,
    unknown: Vec<String>,
    /// Extrinsics refused at submission, with the reason.
    refused: Vec<String>,
}

#[derive(Debug, Clone)]
struct Pending {
    signer: AccountId,
    pallet: String,
    call: String,
    fields: Value<()>,
}

/// A running test node; dropped, it stops sealing blocks (its listener lives with the runtime).
#[derive(Debug, Clone)]
pub struct TestNode {
    chain: Arc<Mutex<Chain>>,
    url: String,
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.trim_start_matches("0x")).unwrap_or_default()
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn blake2_256(bytes: &[u8]) -> [u8; 32] {
    use subxt_core::config::Hasher;
    subxt_core::config::substrate::BlakeTwo256.hash(bytes).0
}

/// A named field of a composite value.
fn field<'a, T>(value: &'a Value<T>, name: &str) -> Option<&'a Value<T>> {
    match &value.value {
        ValueDef::Composite(Composite::Named(fields)) => {
            fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
        }
        _ => None,
    }
}

/// Sets a named field of a composite value.
fn set_field(value: &mut Value<()>, name: &str, new: Value<()>) {
    if let ValueDef::Composite(Composite::Named(fields)) = &mut value.value
        && let Some((_, slot)) = fields.iter_mut().find(|(n, _)| n == name)
    {
        *slot = new;
    }
}

fn as_u128<T>(value: &Value<T>) -> Option<u128> {
    match &value.value {
        ValueDef::Primitive(Primitive::U128(v)) => Some(*v),
        ValueDef::Composite(c) if c.len() == 1 => as_u128(c.values().next()?),
        _ => None,
    }
}

fn as_bytes<T>(value: &Value<T>) -> Option<Vec<u8>> {
    match &value.value {
        ValueDef::Composite(c) => {
            let values: Vec<&Value<T>> = c.values().collect();
            // A newtype around the bytes (AccountId32) or the bytes themselves.
            if let [inner] = values.as_slice()
                && let ValueDef::Composite(_) = inner.value
            {
                return as_bytes(inner);
            }
            values
                .iter()
                .map(|v| as_u128(v).and_then(|b| u8::try_from(b).ok()))
                .collect()
        }
        _ => None,
    }
}

fn account(value: &Value<()>) -> Option<AccountId> {
    let bytes: [u8; 32] = as_bytes(value)?.try_into().ok()?;
    Some(AccountId(bytes))
}

impl Chain {
    fn head(&self) -> u64 {
        *self.blocks.keys().next_back().expect("a block")
    }

    fn metadata(&self) -> &subxt_core::Metadata {
        &self.runtime.state.metadata
    }

    fn encode(&self, value: &Value<()>, ty: u32) -> Vec<u8> {
        let mut out = Vec::new();
        scale_value::scale::encode_as_type(value, ty, self.metadata().types(), &mut out)
            .unwrap_or_else(|e| panic!("the test node encodes {value}: {e}"));
        out
    }

    fn storage_type(&self, pallet: &str, entry: &str) -> u32 {
        let entry = self
            .metadata()
            .pallet_by_name(pallet)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(entry))
            .unwrap_or_else(|| panic!("{pallet}.{entry} in the metadata"));
        match entry.entry_type() {
            subxt_metadata::StorageEntryType::Plain(ty) => *ty,
            subxt_metadata::StorageEntryType::Map { value_ty, .. } => *value_ty,
        }
    }

    fn api_output_type(&self, api: &str, method: &str) -> u32 {
        self.metadata()
            .runtime_api_trait_by_name(api)
            .and_then(|t| t.method_by_name(method))
            .map(|m| m.output_ty())
            .unwrap_or_else(|| panic!("{api}_{method} in the metadata"))
    }

    fn neuron_index(&self, hotkey: &AccountId) -> Option<usize> {
        self.neurons
            .iter()
            .position(|n| field(n, "hotkey").and_then(account) == Some(*hotkey))
    }

    /// `Module { index, error }` for `pallet`'s error `name`.
    fn module_error(&self, pallet: &str, name: &str) -> Value<()> {
        let pallet = self.metadata().pallet_by_name(pallet).expect("pallet");
        let index = pallet
            .error_variants()
            .and_then(|v| v.iter().find(|v| v.name == name))
            .map(|v| v.index)
            .unwrap_or_else(|| panic!("error {name}"));
        Value::unnamed_variant(
            "Module",
            [Value::named_composite([
                ("index", Value::u128(u128::from(pallet.index()))),
                ("error", Value::from_bytes([index, 0, 0, 0])),
            ])],
        )
    }

    /// Checks a submitted extrinsic as a node's pool would; the decoded call when it is good.
    fn check(&self, bytes: &[u8]) -> Result<Pending, String> {
        let extrinsics = subxt_core::blocks::decode_from::<SubstrateConfig>(
            vec![bytes.to_vec()],
            self.metadata().clone(),
        )
        .map_err(|e| format!("not an extrinsic: {e}"))?;
        let ext = extrinsics.iter().next().ok_or("no extrinsic")?;
        let address = ext.address_bytes().ok_or("unsigned")?;
        let signer: [u8; 32] = match address {
            [0, key @ ..] => key.try_into().map_err(|_| "address is not 32 bytes")?,
            _ => return Err("address is not MultiAddress::Id".into()),
        };
        let signer = AccountId(signer);
        let signature: [u8; 64] = match ext.signature_bytes().ok_or("unsigned")? {
            [1, sig @ ..] => sig.try_into().map_err(|_| "signature is not 64 bytes")?,
            _ => return Err("signature is not MultiSignature::Sr25519".into()),
        };
        // Extra: era, compact nonce, compact tip, metadata-hash mode (spec §4).
        let extra = ext.transaction_extensions_bytes().ok_or("unsigned")?;
        let mut rest = extra;
        let (period, phase) = match rest.first() {
            Some(0) => {
                rest = &rest[1..];
                (0, 0)
            }
            Some(_) if rest.len() >= 2 => {
                let encoded = u64::from(u16::from_le_bytes([rest[0], rest[1]]));
                rest = &rest[2..];
                let period = 2u64 << (encoded % 16);
                let quantize = (period >> 12).max(1);
                (period, (encoded >> 4) * quantize)
            }
            _ => return Err("no era".into()),
        };
        let nonce = Compact::<u64>::decode(&mut rest)
            .map_err(|e| format!("nonce: {e}"))?
            .0;
        let _tip = Compact::<u128>::decode(&mut rest).map_err(|e| format!("tip: {e}"))?;
        if rest != [0] {
            return Err(format!(
                "extensions end with {rest:02x?}, not the metadata-hash mode 00"
            ));
        }
        // The era's birth as Substrate computes it from the best block: the latest block at
        // or before it whose number is the era's phase modulo its period. A transaction signed
        // more than a period ago names another block's hash and its signature fails.
        let head = self.head();
        let birth = match period {
            0 => 0,
            _ => (head.max(phase) - phase) / period * period + phase,
        };
        let birth_hash = match birth {
            0 => unhex(
                self.golden["network"]["genesis_hash"]
                    .as_str()
                    .unwrap_or(""),
            ),
            n => self
                .blocks
                .get(&n)
                .map(|b| b.hash.to_vec())
                .ok_or_else(|| format!("era birth block {n} is not a block of this chain"))?,
        };
        let mut payload = ext.call_bytes().to_vec();
        payload.extend_from_slice(extra);
        payload.extend_from_slice(&self.runtime.spec_version().to_le_bytes());
        payload.extend_from_slice(&self.runtime.transaction_version().to_le_bytes());
        payload.extend_from_slice(&self.runtime.genesis_hash());
        payload.extend_from_slice(&birth_hash);
        payload.push(0);
        if payload.len() > 256 {
            payload = blake2_256(&payload).to_vec();
        }
        if !signer.verify(&payload, &Signature(signature)) {
            return Err("Invalid Transaction: Transaction has a bad signature".into());
        }
        let queued = self.pool.iter().filter(|(_, p)| p.signer == signer).count() as u64;
        let expected = self.nonces.get(&signer).copied().unwrap_or(0) + queued;
        if nonce != expected {
            return Err(format!(
                "Invalid Transaction: nonce {nonce}, the account's next is {expected}"
            ));
        }
        let fields = ext.field_values().map_err(|e| format!("call: {e}"))?;
        Ok(Pending {
            signer,
            pallet: ext.pallet_name().map_err(|e| e.to_string())?.to_owned(),
            call: ext.variant_name().map_err(|e| e.to_string())?.to_owned(),
            fields: Value {
                value: ValueDef::Composite(fields),
                context: 0u32,
            }
            .remove_context(),
        })
    }

    /// Applies one call in block `block`; `Err` is the dispatch error's name.
    fn apply(&mut self, call: &Pending, block: u64) -> Result<(), &'static str> {
        let get = |name: &str| field(&call.fields, name).cloned();
        let netuid = get("netuid").as_ref().and_then(as_u128);
        if netuid.is_some() && netuid != Some(u128::from(NETUID)) {
            return Err("SubnetNotExists");
        }
        match (call.pallet.as_str(), call.call.as_str()) {
            ("SubtensorModule", "burned_register") => {
                let hotkey = get("hotkey")
                    .as_ref()
                    .and_then(account)
                    .ok_or("BadOrigin")?;
                if self.neuron_index(&hotkey).is_some() {
                    return Err("HotKeyAlreadyRegisteredInSubNet");
                }
                let mut neuron = self.neurons[0].clone();
                let uid = self.neurons.len() as u128;
                set_field(&mut neuron, "hotkey", Value::from_bytes(hotkey.as_bytes()));
                set_field(
                    &mut neuron,
                    "coldkey",
                    Value::from_bytes(call.signer.as_bytes()),
                );
                set_field(&mut neuron, "uid", Value::u128(uid));
                set_field(&mut neuron, "validator_permit", Value::bool(false));
                set_field(&mut neuron, "last_update", Value::u128(0));
                self.neurons.push(neuron);
                Ok(())
            }
            ("SubtensorModule", "serve_axon") => {
                let index = self
                    .neuron_index(&call.signer)
                    .ok_or("HotKeyNotRegisteredInNetwork")?;
                let mut axon = field(&self.neurons[index], "axon_info")
                    .cloned()
                    .ok_or("BadOrigin")?;
                set_field(&mut axon, "block", Value::u128(u128::from(block)));
                for name in ["version", "ip", "port", "ip_type", "protocol"] {
                    if let Some(value) = get(name) {
                        set_field(&mut axon, name, value);
                    }
                }
                set_field(&mut self.neurons[index], "axon_info", axon);
                Ok(())
            }
            ("Commitments", "set_commitment") => {
                self.neuron_index(&call.signer)
                    .ok_or("HotKeyNotRegisteredInNetwork")?;
                let info = get("info").ok_or("BadOrigin")?;
                let key = self
                    .runtime
                    .commitment_key(NETUID, &call.signer)
                    .map_err(|_| "BadOrigin")?;
                let registration = Value::named_composite([
                    ("deposit", Value::u128(0)),
                    ("block", Value::u128(u128::from(block))),
                    ("info", info),
                ]);
                let value = self.encode(
                    &registration,
                    self.storage_type("Commitments", "CommitmentOf"),
                );
                self.storage.insert(hex0x(&key), hex0x(&value));
                Ok(())
            }
            (
                "SubtensorModule",
                "set_weights" | "commit_weights" | "reveal_weights" | "commit_timelocked_weights",
            ) => {
                let index = self
                    .neuron_index(&call.signer)
                    .ok_or("HotKeyNotRegisteredInNetwork")?;
                set_field(
                    &mut self.neurons[index],
                    "last_update",
                    Value::u128(u128::from(block)),
                );
                Ok(())
            }
            _ => Err("CallNotAvailable"),
        }
    }

    /// Seals the next block with the pool's extrinsics.
    fn seal(&mut self) {
        let number = self.head() + 1;
        let parent = self.blocks[&(number - 1)].hash;
        let pool = std::mem::take(&mut self.pool);
        let info = Value::named_composite([
            (
                "weight",
                Value::named_composite([
                    ("ref_time", Value::u128(0)),
                    ("proof_size", Value::u128(0)),
                ]),
            ),
            ("class", Value::unnamed_variant("Normal", [])),
            ("pays_fee", Value::unnamed_variant("Yes", [])),
        ]);
        let mut events = Vec::new();
        let mut extrinsics = Vec::new();
        for (index, (bytes, call)) in pool.into_iter().enumerate() {
            let outcome = self.apply(&call, number);
            *self.nonces.entry(call.signer).or_default() += 1;
            let event = match outcome {
                Ok(()) => {
                    Value::named_variant("ExtrinsicSuccess", [("dispatch_info", info.clone())])
                }
                Err(error) => Value::named_variant(
                    "ExtrinsicFailed",
                    [
                        (
                            "dispatch_error",
                            self.module_error("SubtensorModule", error),
                        ),
                        ("dispatch_info", info.clone()),
                    ],
                ),
            };
            events.push(Value::named_composite([
                (
                    "phase",
                    Value::unnamed_variant("ApplyExtrinsic", [Value::u128(index as u128)]),
                ),
                ("event", Value::unnamed_variant("System", [event])),
                ("topics", Value::unnamed_composite([])),
            ]));
            self.applied.push(Applied {
                signer: call.signer,
                call: format!("{}.{}", call.pallet, call.call),
                fields: call.fields,
                block: number,
                error: outcome.err().map(|e| format!("SubtensorModule.{e}")),
            });
            extrinsics.push(bytes);
        }
        let events = self.encode(
            &Value::unnamed_composite(events),
            self.storage_type("System", "Events"),
        );
        let timestamp = self.blocks[&(number - 1)].timestamp + 12_000;
        let hash = blake2_256(&(number, parent).encode());
        self.blocks.insert(
            number,
            Block {
                hash,
                parent,
                extrinsics,
                events,
                timestamp,
            },
        );
    }

    fn block_by_hash(&self, hash: &Json_) -> Option<(u64, &Block)> {
        let hash = unhex(hash.as_str()?);
        self.blocks
            .iter()
            .find(|(_, b)| b.hash[..] == hash[..])
            .map(|(n, b)| (*n, b))
    }

    fn answer(&mut self, method: &str, params: &[Json_]) -> Result<Json_, (i64, String)> {
        let text = |i: usize| params.get(i).and_then(Json_::as_str).unwrap_or_default();
        let not_recorded = || (-32601, format!("{method}: not recorded"));
        Ok(match method {
            "chain_getBlockHash" => {
                let number = params
                    .first()
                    .and_then(Json_::as_u64)
                    .unwrap_or_else(|| self.head());
                match number {
                    0 => self.golden["network"]["genesis_hash"].clone(),
                    n => self
                        .blocks
                        .get(&n)
                        .map_or(Json_::Null, |b| json!(hex0x(&b.hash))),
                }
            }
            "chain_getHeader" => json!({ "number": format!("{:#x}", self.head()) }),
            "chain_getBlock" => {
                let Some((number, block)) = params.first().and_then(|h| self.block_by_hash(h))
                else {
                    return Ok(Json_::Null);
                };
                if number == RECORDED_BLOCK {
                    return Ok(self.golden["block"]["raw"].clone());
                }
                json!({
                    "block": {
                        "header": {
                            "parentHash": hex0x(&block.parent),
                            "number": format!("{number:#x}"),
                            "stateRoot": hex0x(&[0; 32]),
                            "extrinsicsRoot": hex0x(&[0; 32]),
                            "digest": { "logs": [] },
                        },
                        // As submitted: each with its compact length prefix.
                        "extrinsics": block.extrinsics.iter().map(|x| hex0x(x)).collect::<Vec<_>>(),
                    },
                    "justifications": null,
                })
            }
            "state_getRuntimeVersion" => json!({
                "specName": "node-subtensor",
                "specVersion": self.runtime.spec_version(),
                "transactionVersion": self.runtime.transaction_version(),
            }),
            "state_call" => match text(0) {
                "Metadata_metadata_at_version" if text(1) == "0x0f000000" => {
                    self.golden["metadata"]["v15_hex"].clone()
                }
                "NeuronInfoRuntimeApi_get_neurons_lite" => {
                    let netuid =
                        u16::decode(&mut &unhex(text(1))[..]).map_err(|_| not_recorded())?;
                    let neurons = match netuid {
                        NETUID => self.neurons.clone(),
                        _ => Vec::new(),
                    };
                    let ty = self.api_output_type("NeuronInfoRuntimeApi", "get_neurons_lite");
                    json!(hex0x(&self.encode(&Value::unnamed_composite(neurons), ty)))
                }
                "SubnetInfoRuntimeApi_get_subnet_hyperparams" => {
                    let netuid =
                        u16::decode(&mut &unhex(text(1))[..]).map_err(|_| not_recorded())?;
                    let answer = match netuid {
                        NETUID => Value::unnamed_variant("Some", [self.hyperparams.clone()]),
                        _ => Value::unnamed_variant("None", []),
                    };
                    let ty = self.api_output_type("SubnetInfoRuntimeApi", "get_subnet_hyperparams");
                    json!(hex0x(&self.encode(&answer, ty)))
                }
                _ => return Err(not_recorded()),
            },
            "state_getStorage" => {
                let key = text(0).to_owned();
                let at = params.get(1).cloned().unwrap_or(Json_::Null);
                let block = self.block_by_hash(&at).map(|(n, b)| (n, b.clone()));
                let events_key = hex0x(
                    &self
                        .runtime
                        .storage_key("System", "Events", vec![])
                        .expect("key"),
                );
                let now_key = hex0x(
                    &self
                        .runtime
                        .storage_key("Timestamp", "Now", vec![])
                        .expect("key"),
                );
                match block {
                    Some((RECORDED_BLOCK, _)) if key != events_key => self
                        .storage
                        .get(&key)
                        .map(|v| json!(v))
                        .or_else(|| {
                            self.golden["storage_values"]
                                .as_array()?
                                .iter()
                                .find(|r| r["key_hex"] == key.as_str())
                                .map(|r| r["raw_hex"].clone())
                        })
                        .unwrap_or(Json_::Null),
                    Some((RECORDED_BLOCK, _)) => self.golden["events"]["raw_hex"].clone(),
                    Some((_, block)) if key == events_key => json!(hex0x(&block.events)),
                    Some((_, block)) if key == now_key => json!(hex0x(&block.timestamp.encode())),
                    _ => self.storage.get(&key).map_or(Json_::Null, |v| json!(v)),
                }
            }
            "state_getKeysPaged" => {
                let (prefix, start) = (text(0), text(2));
                let count = params.get(1).and_then(Json_::as_u64).unwrap_or(0) as usize;
                let keys: Vec<&String> = self
                    .storage
                    .keys()
                    .filter(|k| k.starts_with(prefix) && k.as_str() > start)
                    .take(count)
                    .collect();
                json!(keys)
            }
            "state_queryStorageAt" => {
                let changes: Vec<Json_> = params
                    .first()
                    .and_then(Json_::as_array)
                    .ok_or_else(not_recorded)?
                    .iter()
                    .map(|k| json!([k, k.as_str().and_then(|k| self.storage.get(k))]))
                    .collect();
                json!([{ "block": params.get(1), "changes": changes }])
            }
            "system_accountNextIndex" => {
                let account = AccountId::from_ss58(text(0)).map_err(|e| (-32602, e.to_string()))?;
                let queued = self
                    .pool
                    .iter()
                    .filter(|(_, p)| p.signer == account)
                    .count() as u64;
                json!(self.nonces.get(&account).copied().unwrap_or(0) + queued)
            }
            "author_submitExtrinsic" => {
                let bytes = unhex(text(0));
                let call = match self.check(&bytes) {
                    Ok(call) => call,
                    Err(reason) => {
                        self.refused.push(reason.clone());
                        return Err((1010, reason));
                    }
                };
                let hash = blake2_256(&bytes);
                self.pool.push((bytes, call));
                json!(hex0x(&hash))
            }
            _ => return Err(not_recorded()),
        })
    }
}

async fn rpc(State(chain): State<Arc<Mutex<Chain>>>, Json(request): Json<Json_>) -> Json<Json_> {
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    let params = request["params"].as_array().cloned().unwrap_or_default();
    let id = request["id"].clone();
    let mut chain = chain.lock().unwrap_or_else(PoisonError::into_inner);
    Json(match chain.answer(&method, &params) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => {
            if code == -32601 {
                chain.unknown.push(format!("{method} {params:?}"));
            }
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
        }
    })
}

impl TestNode {
    /// Starts a node on a free loopback port over the recorded chain at `golden` (the SDK's
    /// `golden.json`), sealing a block every `block_time`.
    pub async fn start(golden: &Path, block_time: Duration) -> Self {
        let golden: Json_ = serde_json::from_slice(
            &std::fs::read(golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display())),
        )
        .expect("golden.json is JSON");
        let network = &golden["network"];
        let metadata = unhex(golden["metadata"]["v15_hex"].as_str().expect("v15"));
        let genesis: [u8; 32] = unhex(network["genesis_hash"].as_str().expect("genesis"))
            .try_into()
            .expect("32 bytes");
        let runtime = Runtime::new(
            Runtime::opaque_metadata(&metadata).expect("metadata"),
            genesis,
            network["spec_version"].as_u64().expect("spec") as u32,
            network["transaction_version"].as_u64().expect("tx") as u32,
        )
        .expect("runtime");
        let recorded = |method: &str| {
            golden["runtime_calls"]
                .as_array()
                .and_then(|calls| calls.iter().find(|c| c["method"] == method))
                .map(|c| unhex(c["raw_hex"].as_str().unwrap_or("")))
                .expect("recorded runtime call")
        };
        let mut chain = Chain {
            runtime,
            golden: Json_::Null,
            blocks: BTreeMap::new(),
            storage: BTreeMap::new(),
            neurons: Vec::new(),
            hyperparams: Value::unnamed_composite([]),
            nonces: BTreeMap::new(),
            pool: Vec::new(),
            applied: Vec::new(),
            unknown: Vec::new(),
            refused: Vec::new(),
        };
        let decode = |chain: &Chain, bytes: &[u8], ty: u32| {
            scale_value::scale::decode_as_type(&mut &bytes[..], ty, chain.metadata().types())
                .expect("recorded answer decodes")
                .remove_context()
        };
        let neurons = decode(
            &chain,
            &recorded("get_neurons_lite"),
            chain.api_output_type("NeuronInfoRuntimeApi", "get_neurons_lite"),
        );
        chain.neurons = match neurons.value {
            ValueDef::Composite(c) => c.into_values().collect(),
            _ => panic!("neurons are a list"),
        };
        let hyperparams = decode(
            &chain,
            &recorded("get_subnet_hyperparams"),
            chain.api_output_type("SubnetInfoRuntimeApi", "get_subnet_hyperparams"),
        );
        chain.hyperparams = match hyperparams.value {
            ValueDef::Variant(v) => v.values.into_values().next().expect("Some(params)"),
            _ => panic!("hyperparams are an Option"),
        };
        let block_hash: [u8; 32] = unhex(golden["block"]["block_hash"].as_str().expect("hash"))
            .try_into()
            .expect("32 bytes");
        let parent: [u8; 32] = unhex(
            golden["block"]["raw"]["block"]["header"]["parentHash"]
                .as_str()
                .expect("parent"),
        )
        .try_into()
        .expect("32 bytes");
        // Blocks 1 to 66 were not recorded: empty blocks stand in for them, 12 s apart, so that
        // every number up to the head has a hash, as on a node.
        let recorded_at = 1_789_516_218_750;
        let empty_events = Compact(0u32).encode();
        let mut previous = blake2_256(b"recorded chain genesis");
        for number in 1..RECORDED_BLOCK {
            let hash = blake2_256(&(number, previous, "before the recorded block").encode());
            chain.blocks.insert(
                number,
                Block {
                    hash,
                    parent: previous,
                    extrinsics: Vec::new(),
                    events: empty_events.clone(),
                    timestamp: recorded_at - (RECORDED_BLOCK - number) * 12_000,
                },
            );
            previous = hash;
        }
        chain.blocks.insert(
            RECORDED_BLOCK,
            Block {
                hash: block_hash,
                parent,
                extrinsics: Vec::new(),
                events: Vec::new(),
                timestamp: recorded_at,
            },
        );
        chain.golden = golden;
        let chain = Arc::new(Mutex::new(chain));
        let app = Router::new()
            .route("/", post(rpc))
            .with_state(Arc::clone(&chain));
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let sealer = Arc::downgrade(&chain);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(block_time);
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(chain) = sealer.upgrade() else {
                    return;
                };
                chain.lock().unwrap_or_else(PoisonError::into_inner).seal();
            }
        });
        Self {
            chain,
            url: format!("ws://127.0.0.1:{port}"),
        }
    }

    fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node's endpoint, as btcli users give it (`ws://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The best block's number.
    pub fn head(&self) -> u64 {
        self.chain().head()
    }

    /// Every extrinsic sealed so far, in order.
    pub fn applied(&self) -> Vec<Applied> {
        self.chain().applied.clone()
    }

    /// The extrinsics of the blocks the node sealed, in order, as `0x` hex.
    pub fn sealed_extrinsics(&self) -> Vec<String> {
        self.chain()
            .blocks
            .values()
            .flat_map(|b| b.extrinsics.iter().map(|x| hex0x(x)))
            .collect()
    }

    /// Requests the node had no answer for.
    pub fn unknown(&self) -> Vec<String> {
        self.chain().unknown.clone()
    }

    /// Extrinsics refused at submission, with the reason.
    pub fn refused(&self) -> Vec<String> {
        self.chain().refused.clone()
    }

    /// Registers `hotkey` owned by `coldkey` directly (genesis-style), with a validator permit
    /// when `permit`; returns its uid.
    pub fn add_neuron(&self, hotkey: &AccountId, coldkey: &AccountId, permit: bool) -> u16 {
        let mut chain = self.chain();
        let mut neuron = chain.neurons[0].clone();
        let uid = chain.neurons.len();
        set_field(&mut neuron, "hotkey", Value::from_bytes(hotkey.as_bytes()));
        set_field(
            &mut neuron,
            "coldkey",
            Value::from_bytes(coldkey.as_bytes()),
        );
        set_field(&mut neuron, "uid", Value::u128(uid as u128));
        set_field(&mut neuron, "validator_permit", Value::bool(permit));
        chain.neurons.push(neuron);
        uid as u16
    }

    /// Sets one of the subnet's hyperparameters (a `SubnetHyperparams` field, e.g. `tempo`, or
    /// `commit_reveal_weights_enabled` with 0 or 1).
    pub fn set_hyperparameter(&self, name: &str, value: u128) {
        let mut chain = self.chain();
        let current =
            field(&chain.hyperparams, name).unwrap_or_else(|| panic!("no hyperparameter {name}"));
        let value = match current.value {
            ValueDef::Primitive(Primitive::Bool(_)) => Value::bool(value != 0),
            _ => Value::u128(value),
        };
        set_field(&mut chain.hyperparams, name, value);
    }

    /// A runtime upgrade: from now on the node runs `spec_version` (same metadata), and an
    /// extrinsic signed for the old version fails its signature check, as on a node.
    pub fn upgrade_runtime(&self, spec_version: u32) {
        let mut chain = self.chain();
        let metadata = unhex(chain.golden["metadata"]["v15_hex"].as_str().expect("v15"));
        let runtime = Runtime::new(
            Runtime::opaque_metadata(&metadata).expect("metadata"),
            chain.runtime.genesis_hash(),
            spec_version,
            chain.runtime.transaction_version(),
        )
        .expect("runtime");
        chain.runtime = runtime;
    }

    /// The raw fields of `hotkey`'s commitment on the subnet, when it has one.
    pub fn commitment(&self, hotkey: &AccountId) -> Option<Vec<u8>> {
        let chain = self.chain();
        let key = hex0x(&chain.runtime.commitment_key(NETUID, hotkey).ok()?);
        let value = unhex(chain.storage.get(&key)?);
        Some(chain.runtime.decode_commitment(&value).ok()?.data())
    }

    /// The axon `(ip, port)` of `hotkey`'s neuron.
    pub fn axon(&self, hotkey: &AccountId) -> Option<(u128, u16)> {
        let chain = self.chain();
        let neuron = &chain.neurons[chain.neuron_index(hotkey)?];
        let axon = field(neuron, "axon_info")?;
        Some((
            as_u128(field(axon, "ip")?)?,
            u16::try_from(as_u128(field(axon, "port")?)?).ok()?,
        ))
    }
}
