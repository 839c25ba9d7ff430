//! What a client reads from a Subtensor node, built and decoded from the runtime's metadata:
//! storage keys and values, runtime API calls (`state_call`) and their answers, and a block's
//! `System.Events` (how a client learns whether its extrinsic succeeded).
//!
//! Values decode by type from the metadata into this module's structs, matched by field name
//! (`scale-decode`), so a runtime that adds a field or reorders them still decodes; compact and
//! plain integers are the same to them.

use subnet_common::chain::types::{AxonInfo, NeuronInfo};
use subnet_common::keys::AccountId;
use subxt_core::config::SubstrateConfig;
use subxt_core::ext::scale_decode::{self, DecodeAsType};
use subxt_core::ext::scale_value::{Composite, Primitive, Value, ValueDef};
use subxt_core::utils::AccountId32;

use crate::runtime::{Runtime, RuntimeError};

/// An axon as `NeuronInfoRuntimeApi` reports it.
#[derive(Debug, Clone, PartialEq, Eq, DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
pub struct Axon {
    /// Block of the last `serve_axon`.
    pub block: u64,
    /// Software version.
    pub version: u32,
    /// Address as an integer.
    pub ip: u128,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol.
    pub protocol: u8,
}

/// One neuron as `NeuronInfoRuntimeApi_get_neurons_lite` reports it (no weights or bonds).
#[derive(Debug, Clone, PartialEq, Eq, DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
pub struct NeuronLite {
    /// Hotkey.
    pub hotkey: AccountId32,
    /// Coldkey.
    pub coldkey: AccountId32,
    /// Uid.
    pub uid: u16,
    /// Subnet.
    pub netuid: u16,
    /// Active in the last epoch.
    pub active: bool,
    /// Published axon.
    pub axon_info: Axon,
    /// Stake by coldkey (rao).
    pub stake: Vec<(AccountId32, u64)>,
    /// Rank (u16 fixed point).
    pub rank: u16,
    /// Emission in the last epoch (rao).
    pub emission: u64,
    /// Incentive (u16 fixed point).
    pub incentive: u16,
    /// Consensus (u16 fixed point).
    pub consensus: u16,
    /// Trust (u16 fixed point).
    pub trust: u16,
    /// Validator trust (u16 fixed point).
    pub validator_trust: u16,
    /// Dividends (u16 fixed point).
    pub dividends: u16,
    /// Block of the last weights set.
    pub last_update: u64,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Pruning score (u16 fixed point).
    pub pruning_score: u16,
}

impl NeuronLite {
    /// The project's [`NeuronInfo`]; weights, bonds and the registration block are not in the
    /// lite answer: the caller reads them from storage (`Weights`, `Bonds`,
    /// `BlockAtRegistration`) and fills them in.
    pub fn into_neuron_info(self) -> NeuronInfo {
        let stake = self.stake.iter().map(|(_, rao)| rao).sum();
        NeuronInfo {
            hotkey: AccountId(self.hotkey.0),
            coldkey: AccountId(self.coldkey.0),
            uid: self.uid,
            netuid: self.netuid,
            active: self.active,
            axon_info: AxonInfo {
                block: self.axon_info.block,
                version: self.axon_info.version,
                ip: self.axon_info.ip,
                port: self.axon_info.port,
                ip_type: self.axon_info.ip_type,
                protocol: self.axon_info.protocol,
            },
            stake,
            emission: self.emission,
            incentive: self.incentive,
            consensus: self.consensus,
            validator_trust: self.validator_trust,
            dividends: self.dividends,
            rank: self.rank,
            trust: self.trust,
            pruning_score: self.pruning_score,
            last_update: self.last_update,
            validator_permit: self.validator_permit,
            weights: Vec::new(),
            bonds: Vec::new(),
            block_at_registration: 0,
        }
    }
}

/// A subnet's hyperparameters as `SubnetInfoRuntimeApi_get_subnet_hyperparams` reports them
/// (those the validator and miner act on; the answer has more).
#[derive(Debug, Clone, PartialEq, Eq, DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
pub struct SubnetHyperparams {
    /// Consensus majority κ, /65535.
    pub kappa: u16,
    /// Blocks after registration during which a uid cannot be pruned.
    pub immunity_period: u16,
    /// Smallest weight vector length.
    pub min_allowed_weights: u16,
    /// Largest normalized weight, /65535.
    pub max_weights_limit: u16,
    /// Blocks per epoch.
    pub tempo: u16,
    /// Smallest accepted `version_key`.
    pub weights_version: u64,
    /// Blocks between two weight updates of one hotkey.
    pub weights_rate_limit: u64,
    /// Blocks without weights after which a validator is inactive.
    pub activity_cutoff: u16,
    /// Whether `burned_register` is open.
    pub registration_allowed: bool,
    /// Bonds EMA: α = 1 − bonds_moving_avg/10⁶.
    pub bonds_moving_avg: u64,
    /// Number of validator permits.
    pub max_validators: u16,
    /// Blocks between two `serve_axon` calls of one hotkey.
    pub serving_rate_limit: u64,
    /// Epochs between a commit and its reveal.
    pub commit_reveal_period: u64,
    /// Whether weights go through commit–reveal.
    pub commit_reveal_weights_enabled: bool,
    /// Liquid-alpha bounds, /65535, and whether it is on.
    pub alpha_high: u16,
    /// Lower bound, /65535.
    pub alpha_low: u16,
    /// Whether liquid alpha is on.
    pub liquid_alpha_enabled: bool,
}

/// A commitment as `Commitments.CommitmentOf(netuid, hotkey)` stores it: the block it was set
/// at and its `Data::Raw` fields (other kinds of field, hashes or timelocked data, are skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommitment {
    /// Block of the `set_commitment`.
    pub block: u64,
    /// The raw fields, in order.
    pub fields: Vec<Vec<u8>>,
}

impl StoredCommitment {
    /// The raw fields joined: what one `set_commitment` of the subnet's binaries stored.
    pub fn data(&self) -> Vec<u8> {
        self.fields.concat()
    }
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
struct Registration {
    block: u64,
    info: CommitmentInfo,
}

#[derive(DecodeAsType)]
#[decode_as_type(crate_path = "subxt_core::ext::scale_decode")]
struct CommitmentInfo {
    fields: Vec<Value>,
}

/// The bytes of a `Data::Raw{n}` value; `None` for any other kind of field.
fn raw_bytes(field: &Value) -> Option<Vec<u8>> {
    let ValueDef::Variant(variant) = &field.value else {
        return None;
    };
    variant.name.strip_prefix("Raw")?.parse::<usize>().ok()?;
    let inner = match &variant.values {
        Composite::Unnamed(values) => values.first()?,
        Composite::Named(values) => &values.first()?.1,
    };
    let ValueDef::Composite(bytes) = &inner.value else {
        return None;
    };
    bytes
        .values()
        .map(|b| match b.value {
            ValueDef::Primitive(Primitive::U128(byte)) => u8::try_from(byte).ok(),
            _ => None,
        })
        .collect()
}

/// One record of a block's `System.Events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// The extrinsic whose application emitted it (`None`: block initialization or finalization).
    pub extrinsic_index: Option<u32>,
    /// The pallet, as the metadata names it.
    pub pallet: String,
    /// The event, as the metadata names it.
    pub name: String,
    /// For `System.ExtrinsicFailed`: the dispatch error, as `Pallet.Error` for a module's error
    /// (`SubtensorModule.SettingWeightsTooFast`) or the variant's name otherwise (`BadOrigin`).
    pub error: Option<String>,
}

/// How an extrinsic of a block ended, from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `System.ExtrinsicSuccess`.
    Success,
    /// `System.ExtrinsicFailed`, with the dispatch error.
    Failed {
        /// The chain's reason ([`EventRecord::error`]).
        error: String,
    },
}

/// How the extrinsic at `index` ended, from its block's events; `None` when neither event is
/// there (not an extrinsic of that block).
pub fn outcome_of(events: &[EventRecord], index: u32) -> Option<Outcome> {
    events
        .iter()
        .filter(|e| e.extrinsic_index == Some(index) && e.pallet == "System")
        .find_map(|e| match e.name.as_str() {
            "ExtrinsicSuccess" => Some(Outcome::Success),
            "ExtrinsicFailed" => Some(Outcome::Failed {
                error: e
                    .error
                    .clone()
                    .unwrap_or_else(|| "unknown dispatch error".into()),
            }),
            _ => None,
        })
}

impl Runtime {
    /// The key of `pallet.entry` at `keys` (none for a plain value; a map's keys in order),
    /// hashed as the metadata says.
    pub fn storage_key(
        &self,
        pallet: &str,
        entry: &str,
        keys: Vec<Value>,
    ) -> Result<Vec<u8>, RuntimeError> {
        let address = subxt_core::dynamic::storage(pallet, entry, keys);
        subxt_core::storage::get_address_bytes(&address, &self.state.metadata)
            .map_err(|e| read_error(pallet, entry, e))
    }

    /// The prefix of every key of the map `pallet.entry` (for `state_getKeysPaged`).
    pub fn storage_prefix(&self, pallet: &str, entry: &str) -> Vec<u8> {
        let address = subxt_core::dynamic::storage(pallet, entry, Vec::<Value>::new());
        subxt_core::storage::get_address_root_bytes(&address)
    }

    /// A stored value of `pallet.entry`, decoded as `T`: `Some(bytes)` as the node answered,
    /// `None` (nothing stored) as the entry's default from the metadata, as the runtime itself
    /// reads it.
    pub fn decode_storage<T: DecodeAsType>(
        &self,
        pallet: &str,
        entry: &str,
        bytes: Option<&[u8]>,
    ) -> Result<T, RuntimeError> {
        let metadata = &self.state.metadata;
        let found = metadata
            .pallet_by_name(pallet)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(entry))
            .ok_or_else(|| read_error(pallet, entry, "no such storage entry"))?;
        let ty = match found.entry_type() {
            subxt_metadata::StorageEntryType::Plain(ty) => *ty,
            subxt_metadata::StorageEntryType::Map { value_ty, .. } => *value_ty,
        };
        let bytes = bytes.unwrap_or_else(|| found.default_bytes());
        decode_all(bytes, ty, metadata).map_err(|e| read_error(pallet, entry, e))
    }

    /// The runtime constant `pallet.name` (a `Config` value the metadata carries), as `T`.
    pub fn constant<T: DecodeAsType>(&self, pallet: &str, name: &str) -> Result<T, RuntimeError> {
        let metadata = &self.state.metadata;
        let constant = metadata
            .pallet_by_name(pallet)
            .and_then(|p| p.constant_by_name(name))
            .ok_or_else(|| read_error(pallet, name, "no such constant"))?;
        decode_all(constant.value(), constant.ty(), metadata)
            .map_err(|e| read_error(pallet, name, e))
    }

    /// `state_call`'s method name (`Api_method`) and SCALE arguments for a runtime API call.
    pub fn runtime_api_call(
        &self,
        api: &str,
        method: &str,
        args: Vec<Value>,
    ) -> Result<(String, Vec<u8>), RuntimeError> {
        let payload = subxt_core::dynamic::runtime_api_call(api, method, args);
        let bytes = subxt_core::runtime_api::call_args(&payload, &self.state.metadata)
            .map_err(|e| read_error(api, method, e))?;
        Ok((format!("{api}_{method}"), bytes))
    }

    /// A runtime API call's answer, decoded as `T`.
    pub fn decode_runtime_api<T: DecodeAsType>(
        &self,
        api: &str,
        method: &str,
        bytes: &[u8],
    ) -> Result<T, RuntimeError> {
        let metadata = &self.state.metadata;
        let ty = metadata
            .runtime_api_trait_by_name(api)
            .and_then(|t| t.method_by_name(method))
            .map(|m| m.output_ty())
            .ok_or_else(|| read_error(api, method, "no such runtime API method"))?;
        decode_all(bytes, ty, metadata).map_err(|e| read_error(api, method, e))
    }

    /// The key of `Commitments.CommitmentOf(netuid, hotkey)`.
    pub fn commitment_key(&self, netuid: u16, hotkey: &AccountId) -> Result<Vec<u8>, RuntimeError> {
        self.storage_key(
            "Commitments",
            "CommitmentOf",
            vec![
                Value::u128(u128::from(netuid)),
                Value::from_bytes(hotkey.as_bytes()),
            ],
        )
    }

    /// The prefix of every `Commitments.CommitmentOf(netuid, _)` key (for paging through a
    /// subnet's commitments).
    pub fn commitments_prefix(&self, netuid: u16) -> Result<Vec<u8>, RuntimeError> {
        self.storage_key(
            "Commitments",
            "CommitmentOf",
            vec![Value::u128(u128::from(netuid))],
        )
    }

    /// The hotkey a `Commitments.CommitmentOf(netuid, hotkey)` key ends with (the second key is
    /// hashed with `Twox64Concat`, which keeps it); `None` for a key of another shape.
    pub fn hotkey_of_commitment_key(&self, netuid: u16, key: &[u8]) -> Option<AccountId> {
        let prefix = self.commitments_prefix(netuid).ok()?;
        let rest = key.strip_prefix(prefix.as_slice())?;
        // twox64 (8 bytes) then the account itself
        let account: [u8; 32] = (rest.len() == 8 + 32).then(|| rest[8..].try_into().ok())??;
        Some(AccountId(account))
    }

    /// A stored `Commitments.CommitmentOf` value.
    pub fn decode_commitment(&self, bytes: &[u8]) -> Result<StoredCommitment, RuntimeError> {
        let registration: Registration =
            self.decode_storage("Commitments", "CommitmentOf", Some(bytes))?;
        Ok(StoredCommitment {
            block: registration.block,
            fields: registration
                .info
                .fields
                .iter()
                .filter_map(raw_bytes)
                .collect(),
        })
    }

    /// A block's `System.Events` value, as records.
    pub fn decode_events(&self, bytes: &[u8]) -> Result<Vec<EventRecord>, RuntimeError> {
        let events = subxt_core::events::decode_from::<SubstrateConfig>(
            bytes.to_vec(),
            self.state.metadata.clone(),
        );
        events
            .iter()
            .map(|event| {
                let event = event.map_err(|e| read_error("System", "Events", e))?;
                let error = (event.pallet_name() == "System"
                    && event.variant_name() == "ExtrinsicFailed")
                    .then(|| {
                        let fields = event
                            .field_values()
                            .map_err(|e| read_error("System", "Events", e))?;
                        Ok::<_, RuntimeError>(self.dispatch_error(&fields))
                    })
                    .transpose()?;
                Ok(EventRecord {
                    extrinsic_index: match event.phase() {
                        subxt_core::events::Phase::ApplyExtrinsic(index) => Some(index),
                        _ => None,
                    },
                    pallet: event.pallet_name().to_owned(),
                    name: event.variant_name().to_owned(),
                    error,
                })
            })
            .collect()
    }

    /// The name of `ExtrinsicFailed`'s dispatch error: `Pallet.Error` for `Module { index,
    /// error }` (looked up in the metadata), else the variant's own name.
    fn dispatch_error(&self, fields: &Composite<u32>) -> String {
        let Some(ValueDef::Variant(variant)) = fields.values().next().map(|v| &v.value) else {
            return "unreadable dispatch error".into();
        };
        if variant.name != "Module" {
            return variant.name.clone();
        }
        let byte = |value: &Value<u32>| match &value.value {
            ValueDef::Primitive(Primitive::U128(b)) => u8::try_from(*b).ok(),
            _ => None,
        };
        let module = variant.values.values().next().and_then(|m| match &m.value {
            ValueDef::Composite(c) => {
                let mut parts = c.values();
                let index = parts.next().and_then(byte)?;
                let error = match &parts.next()?.value {
                    ValueDef::Composite(bytes) => bytes.values().next().and_then(byte)?,
                    _ => return None,
                };
                Some((index, error))
            }
            _ => None,
        });
        let Some((index, error)) = module else {
            return "Module".into();
        };
        let metadata = &self.state.metadata;
        match metadata.pallet_by_index(index) {
            Some(pallet) => match pallet.error_variant_by_index(error) {
                Some(variant) => format!("{}.{}", pallet.name(), variant.name),
                None => format!("{}.error#{error}", pallet.name()),
            },
            None => format!("pallet#{index}.error#{error}"),
        }
    }
}

/// Decodes `bytes` as type `ty` into `T`, refusing bytes left over.
fn decode_all<T: DecodeAsType>(
    bytes: &[u8],
    ty: u32,
    metadata: &subxt_core::Metadata,
) -> Result<T, String> {
    let mut rest = bytes;
    let value = T::decode_as_type(&mut rest, ty, metadata.types())
        .map_err(|e: scale_decode::Error| e.to_string())?;
    match rest.is_empty() {
        true => Ok(value),
        false => Err(format!("{} bytes left over", rest.len())),
    }
}

fn read_error(pallet: &str, entry: &str, reason: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Read {
        what: format!("{pallet}.{entry}"),
        reason: reason.to_string(),
    }
}
