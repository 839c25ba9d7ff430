//! The calls the subnet's binaries send to Subtensor, typed (`../shared/spec/subtensor-client.md`
//! §3), and the dynamic form the runtime's metadata encodes: field names and types come from the
//! metadata, so a runtime that renumbers pallets or calls changes nothing here.

use subnet_common::keys::AccountId;
use subxt_core::ext::scale_value::{Composite, Value};

/// Most bytes one `Data::Raw` field of a commitment holds.
pub const MAX_COMMITMENT_BYTES: usize = 128;

/// A call to Subtensor, as the miner and the validator send them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubtensorCall {
    /// `SubtensorModule.burned_register`: register `hotkey` on `netuid`, the signing coldkey
    /// paying the burn.
    BurnedRegister {
        /// Subnet.
        netuid: u16,
        /// The hotkey to register.
        hotkey: AccountId,
    },
    /// `SubtensorModule.serve_axon`: publish the signing hotkey's axon.
    ServeAxon {
        /// Subnet.
        netuid: u16,
        /// The software version.
        version: u32,
        /// IPv4 (or IPv6) address as an integer.
        ip: u128,
        /// Port.
        port: u16,
        /// 4 or 6.
        ip_type: u8,
        /// Protocol number (4 as the SDK sends).
        protocol: u8,
    },
    /// `SubtensorModule.set_weights`, for subnets with commit–reveal off.
    SetWeights {
        /// Subnet.
        netuid: u16,
        /// Uids.
        dests: Vec<u16>,
        /// u16 weights, one per uid.
        weights: Vec<u16>,
        /// The validator's version key.
        version_key: u64,
    },
    /// `SubtensorModule.commit_weights`: commit–reveal v2's hash.
    CommitWeights {
        /// Subnet.
        netuid: u16,
        /// `blake2_256(SCALE(hotkey, netuid, uids, values, salt, version_key))`.
        commit_hash: [u8; 32],
    },
    /// `SubtensorModule.reveal_weights`: commit–reveal v2's reveal.
    RevealWeights {
        /// Subnet.
        netuid: u16,
        /// Uids.
        uids: Vec<u16>,
        /// Weights.
        values: Vec<u16>,
        /// The salt committed with them.
        salt: Vec<u16>,
        /// The validator's version key.
        version_key: u64,
    },
    /// `SubtensorModule.commit_timelocked_weights`: commit–reveal v4 (drand timelock).
    CommitTimelockedWeights {
        /// Subnet.
        netuid: u16,
        /// The encrypted payload.
        commit: Vec<u8>,
        /// The drand round whose signature decrypts it.
        reveal_round: u64,
        /// The chain's `CommitRevealWeightsVersion` (4).
        commit_reveal_version: u16,
    },
    /// `Commitments.set_commitment` with one `Data::Raw` field: the miner's model commitment.
    SetCommitment {
        /// Subnet.
        netuid: u16,
        /// Up to [`MAX_COMMITMENT_BYTES`] bytes.
        data: Vec<u8>,
    },
}

impl SubtensorCall {
    /// `(pallet, call)` as the metadata names them.
    pub fn name(&self) -> (&'static str, &'static str) {
        let call = match self {
            Self::BurnedRegister { .. } => "burned_register",
            Self::ServeAxon { .. } => "serve_axon",
            Self::SetWeights { .. } => "set_weights",
            Self::CommitWeights { .. } => "commit_weights",
            Self::RevealWeights { .. } => "reveal_weights",
            Self::CommitTimelockedWeights { .. } => "commit_timelocked_weights",
            Self::SetCommitment { .. } => return ("Commitments", "set_commitment"),
        };
        ("SubtensorModule", call)
    }

    /// The call's parameters by name, for the metadata to encode.
    pub(crate) fn fields(&self) -> Composite<()> {
        fn u(value: impl Into<u128>) -> Value {
            Value::u128(value.into())
        }
        fn u16s(values: &[u16]) -> Value {
            Value::unnamed_composite(values.iter().map(|&v| u(v)))
        }
        let fields: Vec<(&str, Value)> = match self {
            Self::BurnedRegister { netuid, hotkey } => vec![
                ("netuid", u(*netuid)),
                ("hotkey", Value::from_bytes(hotkey.as_bytes())),
            ],
            Self::ServeAxon {
                netuid,
                version,
                ip,
                port,
                ip_type,
                protocol,
            } => vec![
                ("netuid", u(*netuid)),
                ("version", u(*version)),
                ("ip", u(*ip)),
                ("port", u(*port)),
                ("ip_type", u(*ip_type)),
                ("protocol", u(*protocol)),
                ("placeholder1", u(0u8)),
                ("placeholder2", u(0u8)),
            ],
            Self::SetWeights {
                netuid,
                dests,
                weights,
                version_key,
            } => vec![
                ("netuid", u(*netuid)),
                ("dests", u16s(dests)),
                ("weights", u16s(weights)),
                ("version_key", u(*version_key)),
            ],
            Self::CommitWeights {
                netuid,
                commit_hash,
            } => vec![
                ("netuid", u(*netuid)),
                ("commit_hash", Value::from_bytes(commit_hash)),
            ],
            Self::RevealWeights {
                netuid,
                uids,
                values,
                salt,
                version_key,
            } => vec![
                ("netuid", u(*netuid)),
                ("uids", u16s(uids)),
                ("values", u16s(values)),
                ("salt", u16s(salt)),
                ("version_key", u(*version_key)),
            ],
            Self::CommitTimelockedWeights {
                netuid,
                commit,
                reveal_round,
                commit_reveal_version,
            } => vec![
                ("netuid", u(*netuid)),
                ("commit", Value::from_bytes(commit)),
                ("reveal_round", u(*reveal_round)),
                ("commit_reveal_version", u(*commit_reveal_version)),
            ],
            Self::SetCommitment { netuid, data } => {
                // `Data::Raw{n}` holds exactly n bytes; `info.fields` is a bounded vector of them.
                let raw =
                    Value::unnamed_variant(format!("Raw{}", data.len()), [Value::from_bytes(data)]);
                vec![
                    ("netuid", u(*netuid)),
                    (
                        "info",
                        Value::named_composite([(
                            "fields",
                            Value::unnamed_composite([Value::unnamed_composite([raw])]),
                        )]),
                    ),
                ]
            }
        };
        Composite::named(
            fields
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value)),
        )
    }
}
