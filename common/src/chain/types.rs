//! Calls (extrinsics) and query results shared by the dev chain and its clients.
//!
//! Extrinsics are SCALE-encoded (`parity-scale-codec`): `signer ‖ nonce (u64 LE) ‖ call ‖ signature`.
//! The signature is sr25519 (context `substrate`) over `SCALE((call, nonce, genesis_hash))`
//! (DESIGN.md §3), so a signed extrinsic is valid on exactly one chain and at exactly one nonce.
//! Query results mirror the fields of Subtensor's `NeuronInfo` (`spec/subtensor.md` §5.1).

use std::fmt;
use std::str::FromStr;

use blake2::Blake2b;
use blake2::Digest;
use blake2::digest::consts::U32;
use parity_scale_codec::{Decode, Encode};
use serde::{Deserialize, Serialize};

use crate::keys::{AccountId, Keypair, Signature};

/// Subnet identifier (Subtensor's `NetUid`).
pub type NetUid = u16;
/// Neuron identifier inside one subnet.
pub type Uid = u16;
/// An amount in rao (1 TAO = 10⁹ rao).
pub type Balance = u64;
/// Rao per TAO (τ).
pub const RAO_PER_TAO: Balance = 1_000_000_000;

/// `rao` as TAO with up to 9 decimals, trailing zeros trimmed: `1.5`, `0`, `1000`,
/// `0.000000001` (exact; no float). The caller adds the `τ`.
pub fn format_tao(rao: Balance) -> String {
    let (whole, frac) = (rao / RAO_PER_TAO, rao % RAO_PER_TAO);
    if frac == 0 {
        return whole.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}
/// The 32-byte hash of the chain's genesis; every signature commits to it.
pub type GenesisHash = [u8; 32];

/// The largest SCALE-encoded extrinsic the chain accepts, in bytes.
pub const MAX_EXTRINSIC_SIZE: usize = 64 * 1024;
/// The largest commitment (`SetCommitment::data`) in bytes.
pub const MAX_COMMITMENT_SIZE: usize = 128;
/// Offset of the call index byte inside an encoded extrinsic (after signer and nonce).
const CALL_INDEX_OFFSET: usize = 32 + 8;

/// One hyperparameter a subnet owner may change with [`Call::SetHyperparameter`].
///
/// Serializes as its snake_case name, the same name as the field of [`Hyperparameters`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Hyperparameter {
    /// Blocks per epoch.
    Tempo,
    /// Consensus majority, /65535.
    Kappa,
    /// Bonds EMA, α = 1 − x/10⁶.
    BondsMovingAverage,
    /// Bonds penalty β, /65535.
    BondsPenalty,
    /// Liquid alpha on (1) or off (0).
    LiquidAlphaEnabled,
    /// Liquid alpha lower bound, /65535.
    AlphaLow,
    /// Liquid alpha upper bound, /65535.
    AlphaHigh,
    /// Liquid alpha sigmoid steepness.
    AlphaSigmoidSteepness,
    /// Yuma 3 bonds (1) or legacy bonds (0).
    Yuma3Enabled,
    /// Largest number of UIDs.
    MaxAllowedUids,
    /// Number of validator permits.
    MaxAllowedValidators,
    /// Smallest weight vector length (capped at n).
    MinAllowedWeights,
    /// Largest normalized weight, /65535 (65535 = no limit).
    MaxWeightLimit,
    /// Blocks a new registration cannot be pruned.
    ImmunityPeriod,
    /// Blocks without a weight update before a validator is inactive.
    ActivityCutoff,
    /// Blocks between two `set_weights` / `commit_weights` of one hotkey.
    WeightsSetRateLimit,
    /// Smallest accepted `version_key` (0 = any).
    WeightsVersionKey,
    /// Commit–reveal on (1) or off (0).
    CommitRevealWeightsEnabled,
    /// Epochs between a commit and its reveal.
    CommitRevealPeriod,
    /// Smallest stake that counts for weights.
    StakeThreshold,
    /// Blocks between two `serve_axon` of one hotkey.
    ServingRateLimit,
    /// Blocks between two `set_commitment` of one hotkey.
    CommitmentRateLimit,
    /// Registration on (1) or off (0).
    RegistrationAllowed,
    /// Registration burn in rao.
    Burn,
    /// Commit–reveal version: 4 (timelocked commits the chain reveals) or 2 (hash commits the
    /// validator reveals).
    CommitRevealVersion,
}

impl Hyperparameter {
    /// Every hyperparameter, in declaration order.
    pub const ALL: [Hyperparameter; 25] = [
        Self::Tempo,
        Self::Kappa,
        Self::BondsMovingAverage,
        Self::BondsPenalty,
        Self::LiquidAlphaEnabled,
        Self::AlphaLow,
        Self::AlphaHigh,
        Self::AlphaSigmoidSteepness,
        Self::Yuma3Enabled,
        Self::MaxAllowedUids,
        Self::MaxAllowedValidators,
        Self::MinAllowedWeights,
        Self::MaxWeightLimit,
        Self::ImmunityPeriod,
        Self::ActivityCutoff,
        Self::WeightsSetRateLimit,
        Self::WeightsVersionKey,
        Self::CommitRevealWeightsEnabled,
        Self::CommitRevealPeriod,
        Self::StakeThreshold,
        Self::ServingRateLimit,
        Self::CommitmentRateLimit,
        Self::RegistrationAllowed,
        Self::Burn,
        Self::CommitRevealVersion,
    ];

    /// The snake_case name, as in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tempo => "tempo",
            Self::Kappa => "kappa",
            Self::BondsMovingAverage => "bonds_moving_average",
            Self::BondsPenalty => "bonds_penalty",
            Self::LiquidAlphaEnabled => "liquid_alpha_enabled",
            Self::AlphaLow => "alpha_low",
            Self::AlphaHigh => "alpha_high",
            Self::AlphaSigmoidSteepness => "alpha_sigmoid_steepness",
            Self::Yuma3Enabled => "yuma3_enabled",
            Self::MaxAllowedUids => "max_allowed_uids",
            Self::MaxAllowedValidators => "max_allowed_validators",
            Self::MinAllowedWeights => "min_allowed_weights",
            Self::MaxWeightLimit => "max_weight_limit",
            Self::ImmunityPeriod => "immunity_period",
            Self::ActivityCutoff => "activity_cutoff",
            Self::WeightsSetRateLimit => "weights_set_rate_limit",
            Self::WeightsVersionKey => "weights_version_key",
            Self::CommitRevealWeightsEnabled => "commit_reveal_weights_enabled",
            Self::CommitRevealPeriod => "commit_reveal_period",
            Self::CommitRevealVersion => "commit_reveal_version",
            Self::StakeThreshold => "stake_threshold",
            Self::ServingRateLimit => "serving_rate_limit",
            Self::CommitmentRateLimit => "commitment_rate_limit",
            Self::RegistrationAllowed => "registration_allowed",
            Self::Burn => "burn",
        }
    }
}

impl fmt::Display for Hyperparameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a [`Hyperparameter`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown hyperparameter {name:?}")]
pub struct UnknownHyperparameter {
    /// The name given.
    pub name: String,
}

impl FromStr for Hyperparameter {
    type Err = UnknownHyperparameter;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownHyperparameter { name: s.to_owned() })
    }
}

/// A subnet's hyperparameters (`spec/subtensor.md` §1.10). [`Default`] gives the values Subtensor
/// forces on a new subnet, except where a field says otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Hyperparameters {
    /// Blocks per epoch; the epoch of subnet `netuid` runs at block b when
    /// `(b + netuid + 1) % (tempo + 1) == 0`. 0 = never.
    pub tempo: u16,
    /// Consensus majority κ, /65535.
    pub kappa: u16,
    /// Bonds EMA: α = 1 − bonds_moving_average/10⁶.
    pub bonds_moving_average: u64,
    /// Bonds penalty β, /65535.
    pub bonds_penalty: u16,
    /// Per-(validator, miner) α from the liquid-alpha sigmoid (Yuma 3 only).
    pub liquid_alpha_enabled: bool,
    /// Liquid-alpha lower bound, /65535.
    pub alpha_low: u16,
    /// Liquid-alpha upper bound, /65535.
    pub alpha_high: u16,
    /// Liquid-alpha sigmoid steepness (divided by 100 inside the sigmoid).
    pub alpha_sigmoid_steepness: i16,
    /// Yuma 3 bonds (true, the new-subnet default) or legacy bonds (false).
    pub yuma3_enabled: bool,
    /// Largest number of UIDs; registration prunes one when full.
    pub max_allowed_uids: u16,
    /// Number of validator permits (top-k stake).
    pub max_allowed_validators: u16,
    /// Smallest weight vector length; the effective minimum is `min(n, value)`.
    pub min_allowed_weights: u16,
    /// Largest normalized weight, /65535; 65535 = no limit.
    pub max_weight_limit: u16,
    /// Blocks after registration during which a UID cannot be pruned.
    pub immunity_period: u16,
    /// Blocks since the last weight update after which a validator is inactive. The dev chain keeps
    /// the plain block count of older chains, not the per-tempo factor.
    pub activity_cutoff: u16,
    /// Blocks between two weight updates (set or commit) of one hotkey; 0 = no limit.
    pub weights_set_rate_limit: u64,
    /// Smallest accepted `version_key`; 0 accepts any.
    pub weights_version_key: u64,
    /// Commit–reveal v2: `set_weights` is refused, weights go through commit then reveal.
    pub commit_reveal_weights_enabled: bool,
    /// Epochs between a commit and its reveal (1..=100).
    pub commit_reveal_period: u64,
    /// Commit–reveal version (Subtensor's `CommitRevealWeightsVersion`, per subnet here): 4 takes
    /// `commit_timelocked_weights`, revealed by the chain with its beacon's round signature; 2
    /// takes `commit_weights` then `reveal_weights` only.
    pub commit_reveal_version: u16,
    /// Smallest stake (rao) that counts in the epoch and may set weights (owner exempt).
    pub stake_threshold: u64,
    /// Blocks between two `serve_axon` calls of one hotkey; 0 = no limit.
    pub serving_rate_limit: u64,
    /// Blocks between two `set_commitment` calls of one hotkey; 0 = no limit.
    pub commitment_rate_limit: u64,
    /// Whether `register` is open.
    pub registration_allowed: bool,
    /// Registration burn in rao; fixed on the dev chain (no difficulty adjustment).
    pub burn: u64,
    /// Owner cut of each epoch's emission, /65535 (11796 ≈ 18%). Set at genesis only.
    pub subnet_owner_cut: u16,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            tempo: 360,
            kappa: 32_767,
            bonds_moving_average: 900_000,
            bonds_penalty: 65_535,
            liquid_alpha_enabled: false,
            alpha_low: 45_875,
            alpha_high: 58_982,
            alpha_sigmoid_steepness: 1_000,
            yuma3_enabled: true,
            max_allowed_uids: 256,
            max_allowed_validators: 64,
            min_allowed_weights: 1,
            max_weight_limit: 65_535,
            immunity_period: 5_000,
            activity_cutoff: 5_000,
            weights_set_rate_limit: 100,
            weights_version_key: 0,
            commit_reveal_weights_enabled: true,
            commit_reveal_period: 1,
            commit_reveal_version: 4,
            stake_threshold: 0,
            serving_rate_limit: 50,
            commitment_rate_limit: 100,
            registration_allowed: true,
            burn: 1_000_000_000,
            subnet_owner_cut: 11_796,
        }
    }
}

/// A dispatchable call. The SCALE index of each variant is fixed (`#[codec(index)]`).
///
/// The signer is the coldkey for `Register`, `AddStake`, `RemoveStake`, `Transfer` and
/// `SetHyperparameter`, and the hotkey for every other call.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// `burned_register`: the coldkey pays the burn and registers `hotkey` on `netuid`.
    #[codec(index = 0)]
    Register {
        /// Subnet to join.
        netuid: NetUid,
        /// Hotkey to register; owned by the signing coldkey from now on.
        hotkey: AccountId,
    },
    /// Publishes the hotkey's axon endpoint.
    #[codec(index = 1)]
    ServeAxon {
        /// Subnet the hotkey is registered on.
        netuid: NetUid,
        /// Software version of the axon.
        version: u32,
        /// IPv4 as its 32-bit big-endian value, or IPv6 as 128 bits.
        ip: u128,
        /// TCP port, not 0.
        port: u16,
        /// 4 or 6.
        ip_type: u8,
        /// Protocol tag (0 = HTTP).
        protocol: u8,
    },
    /// Stores up to [`MAX_COMMITMENT_SIZE`] bytes for the hotkey (e.g. a model manifest hash).
    #[codec(index = 2)]
    SetCommitment {
        /// Subnet the hotkey is registered on.
        netuid: NetUid,
        /// The commitment bytes.
        data: Vec<u8>,
    },
    /// Sets the hotkey's weights directly (commit–reveal off).
    #[codec(index = 3)]
    SetWeights {
        /// Subnet.
        netuid: NetUid,
        /// Destination uids.
        dests: Vec<Uid>,
        /// One weight per destination; max-upscaled to 65535 on chain.
        weights: Vec<u16>,
        /// Validator software version; must be ≥ the subnet's `weights_version_key`.
        version_key: u64,
    },
    /// Commits to weights revealed `commit_reveal_period` epochs later (see [`commit_hash`]).
    #[codec(index = 4)]
    CommitWeights {
        /// Subnet.
        netuid: NetUid,
        /// blake2b-256 of the reveal's SCALE preimage.
        commit_hash: [u8; 32],
    },
    /// Reveals committed weights.
    #[codec(index = 5)]
    RevealWeights {
        /// Subnet.
        netuid: NetUid,
        /// Destination uids, as committed.
        uids: Vec<Uid>,
        /// Weights, as committed.
        values: Vec<u16>,
        /// Salt, as committed.
        salt: Vec<u16>,
        /// Version key, as committed.
        version_key: u64,
    },
    /// Moves `amount` from the coldkey's free balance to its stake on `hotkey` in `netuid`.
    #[codec(index = 6)]
    AddStake {
        /// Hotkey to stake on.
        hotkey: AccountId,
        /// Subnet of the stake.
        netuid: NetUid,
        /// Rao to stake.
        amount: Balance,
    },
    /// Moves `amount` of the coldkey's stake on `hotkey` in `netuid` back to its free balance.
    #[codec(index = 7)]
    RemoveStake {
        /// Hotkey staked on.
        hotkey: AccountId,
        /// Subnet of the stake.
        netuid: NetUid,
        /// Rao to unstake.
        amount: Balance,
    },
    /// Sends free balance to another account.
    #[codec(index = 8)]
    Transfer {
        /// Receiver.
        dest: AccountId,
        /// Rao to send.
        amount: Balance,
    },
    /// Subnet owner (coldkey) only: changes one hyperparameter.
    #[codec(index = 9)]
    SetHyperparameter {
        /// Subnet.
        netuid: NetUid,
        /// Which hyperparameter.
        param: Hyperparameter,
        /// New value; booleans are 0 or 1.
        value: u64,
    },
    /// Commit–reveal v4: weights encrypted to a drand round (`reveal_round`), which the chain
    /// decrypts and applies by itself at the reveal epoch; no reveal extrinsic follows.
    #[codec(index = 10)]
    CommitTimelockedWeights {
        /// Subnet.
        netuid: NetUid,
        /// The encrypted `WeightsTlockPayload` (hotkey, uids, values, version key).
        commit: Vec<u8>,
        /// The beacon round whose signature decrypts it.
        reveal_round: u64,
        /// The chain's commit–reveal version (4).
        commit_reveal_version: u16,
    },
}

/// The number of call variants; SCALE indices are `0..CALL_COUNT`.
pub const CALL_COUNT: u8 = 11;

impl Call {
    /// The call's snake_case name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register { .. } => "register",
            Self::ServeAxon { .. } => "serve_axon",
            Self::SetCommitment { .. } => "set_commitment",
            Self::SetWeights { .. } => "set_weights",
            Self::CommitWeights { .. } => "commit_weights",
            Self::RevealWeights { .. } => "reveal_weights",
            Self::AddStake { .. } => "add_stake",
            Self::RemoveStake { .. } => "remove_stake",
            Self::Transfer { .. } => "transfer",
            Self::SetHyperparameter { .. } => "set_hyperparameter",
            Self::CommitTimelockedWeights { .. } => "commit_timelocked_weights",
        }
    }
}

/// Why bytes are not a well-formed extrinsic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtrinsicError {
    /// Over [`MAX_EXTRINSIC_SIZE`].
    #[error("extrinsic is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The call index names no call.
    #[error("unknown call index {index}")]
    UnknownCall {
        /// The index byte found.
        index: u8,
    },
    /// SCALE decoding failed.
    #[error("malformed extrinsic: {reason}")]
    Malformed {
        /// What the decoder reported.
        reason: String,
    },
    /// Bytes left over after the extrinsic.
    #[error("{extra} trailing bytes after the extrinsic")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// The bytes a signer signs: `SCALE((call, nonce, genesis_hash))`.
pub fn signing_payload(call: &Call, nonce: u64, genesis_hash: &GenesisHash) -> Vec<u8> {
    (call, nonce, genesis_hash).encode()
}

/// A call signed by an account, ready to submit.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct SignedExtrinsic {
    /// The signing account (coldkey or hotkey, depending on the call).
    pub signer: AccountId,
    /// Must equal the signer's account nonce.
    pub nonce: u64,
    /// What to do.
    pub call: Call,
    /// sr25519 over [`signing_payload`].
    pub signature: Signature,
}

impl SignedExtrinsic {
    /// Signs `call` at `nonce` for the chain with `genesis_hash`.
    pub fn sign(call: Call, nonce: u64, genesis_hash: &GenesisHash, keypair: &Keypair) -> Self {
        let signature = keypair.sign(&signing_payload(&call, nonce, genesis_hash));
        Self {
            signer: keypair.account_id(),
            nonce,
            call,
            signature,
        }
    }

    /// Whether the signature is the signer's, over this call and nonce on this chain.
    pub fn verify(&self, genesis_hash: &GenesisHash) -> bool {
        self.signer.verify(
            &signing_payload(&self.call, self.nonce, genesis_hash),
            &self.signature,
        )
    }

    /// Decodes one extrinsic, refusing oversized input, unknown calls and trailing bytes.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, ExtrinsicError> {
        if bytes.len() > MAX_EXTRINSIC_SIZE {
            return Err(ExtrinsicError::TooLarge {
                size: bytes.len(),
                max: MAX_EXTRINSIC_SIZE,
            });
        }
        if let Some(&index) = bytes.get(CALL_INDEX_OFFSET)
            && index >= CALL_COUNT
        {
            return Err(ExtrinsicError::UnknownCall { index });
        }
        let mut input = bytes;
        let ext = Self::decode(&mut input).map_err(|e| ExtrinsicError::Malformed {
            reason: e.to_string(),
        })?;
        if !input.is_empty() {
            return Err(ExtrinsicError::TrailingBytes { extra: input.len() });
        }
        Ok(ext)
    }
}

/// The commit–reveal v2 hash (`spec/subtensor.md` §2.4): blake2b-256 of
/// `SCALE((hotkey, netuid, uids, values, salt, version_key))`, as Subtensor's `get_commit_hash` and
/// the SDK's `generate_weight_hash` compute it.
pub fn commit_hash(
    hotkey: &AccountId,
    netuid: NetUid,
    uids: &[Uid],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let preimage = (hotkey, netuid, uids, values, salt, version_key).encode();
    Blake2b::<U32>::digest(preimage).into()
}

/// Something that happened while applying an extrinsic or finishing a block.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// Free balance moved between accounts.
    Transfer {
        /// Sender.
        from: AccountId,
        /// Receiver.
        to: AccountId,
        /// Rao.
        amount: Balance,
    },
    /// A hotkey took a uid; `replaced` is the pruned hotkey when the subnet was full.
    NeuronRegistered {
        /// Subnet.
        netuid: NetUid,
        /// The uid taken.
        uid: Uid,
        /// The new hotkey.
        hotkey: AccountId,
        /// The hotkey pruned to make room, if any.
        replaced: Option<AccountId>,
        /// Rao burned.
        burn: Balance,
    },
    /// A hotkey published its axon.
    AxonServed {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// A hotkey stored a commitment.
    CommitmentSet {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// Weights stored for a uid (by `set_weights` or a reveal).
    WeightsSet {
        /// Subnet.
        netuid: NetUid,
        /// The uid whose row changed.
        uid: Uid,
    },
    /// A weight commit was queued.
    WeightsCommitted {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
        /// The committed hash.
        commit_hash: [u8; 32],
    },
    /// A commit was revealed (followed by [`Event::WeightsSet`]).
    WeightsRevealed {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// Stake added.
    StakeAdded {
        /// Paying coldkey.
        coldkey: AccountId,
        /// Hotkey staked on.
        hotkey: AccountId,
        /// Subnet.
        netuid: NetUid,
        /// Rao.
        amount: Balance,
    },
    /// Stake removed.
    StakeRemoved {
        /// Receiving coldkey.
        coldkey: AccountId,
        /// Hotkey unstaked from.
        hotkey: AccountId,
        /// Subnet.
        netuid: NetUid,
        /// Rao.
        amount: Balance,
    },
    /// The subnet owner changed a hyperparameter.
    HyperparameterSet {
        /// Subnet.
        netuid: NetUid,
        /// Which one.
        param: Hyperparameter,
        /// New value.
        value: u64,
    },
    /// Yuma Consensus ran for a subnet and its emission was paid.
    EpochRun {
        /// Subnet.
        netuid: NetUid,
        /// Block of the epoch.
        block: u64,
        /// Rao distributed in total (owner cut included).
        emission: Balance,
        /// Rao of it paid to the subnet owner.
        owner_cut: Balance,
    },
    /// A timelocked weight commit was queued for the chain's reveal.
    TimelockedWeightsCommitted {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
        /// The beacon round that opens it.
        reveal_round: u64,
    },
    /// A timelocked commit could not be applied at its reveal and was dropped.
    TimelockedWeightsDropped {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
        /// Why (undecryptable, another hotkey's payload, invalid weights, round never reached).
        reason: String,
    },
}

/// A neuron's published endpoint (`spec/subtensor.md` §5.1 `axon_info`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct AxonInfo {
    /// Block of the last `serve_axon`; 0 = never served.
    pub block: u64,
    /// Software version.
    pub version: u32,
    /// IPv4 (32-bit big-endian value) or IPv6; 0 = not serving.
    pub ip: u128,
    /// TCP port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
    /// Protocol tag.
    pub protocol: u8,
}

impl AxonInfo {
    /// An endpoint at an IPv4 address (`ip_type` 4, `protocol` 4; block and version 0).
    pub fn ipv4(ip: std::net::Ipv4Addr, port: u16) -> Self {
        Self {
            ip: u128::from(u32::from(ip)),
            port,
            ip_type: 4,
            protocol: 4,
            ..Self::default()
        }
    }
}

/// One uid of a subnet's metagraph (`spec/subtensor.md` §5.1). Proportions are u16 (/65535).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct NeuronInfo {
    /// The uid's hotkey.
    pub hotkey: AccountId,
    /// The hotkey's owner.
    pub coldkey: AccountId,
    /// Uid.
    pub uid: Uid,
    /// Subnet.
    pub netuid: NetUid,
    /// Active at the last epoch.
    pub active: bool,
    /// Published endpoint.
    pub axon_info: AxonInfo,
    /// Total stake on the hotkey in this subnet, rao.
    pub stake: Balance,
    /// Emission at the last epoch, rao.
    pub emission: Balance,
    /// Incentive I.
    pub incentive: u16,
    /// Consensus C.
    pub consensus: u16,
    /// Validator trust Tv.
    pub validator_trust: u16,
    /// Dividends D.
    pub dividends: u16,
    /// Legacy, always 0.
    pub rank: u16,
    /// Legacy, always 0.
    pub trust: u16,
    /// Legacy, always 0.
    pub pruning_score: u16,
    /// Block of the last weight update (set or commit).
    pub last_update: u64,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Weight row `(dest, w)`, max-upscaled.
    pub weights: Vec<(Uid, u16)>,
    /// Bond row `(dest, b)`.
    pub bonds: Vec<(Uid, u16)>,
    /// Block of the most recent (re)registration.
    pub block_at_registration: u64,
}

impl NeuronInfo {
    /// A uid as it stands when it has just registered: active, serving `axon_info`, with no
    /// stake, no permit, no weights or bonds and nothing earned (what tests, simulations and
    /// benches build metagraphs from).
    pub fn registered(
        netuid: NetUid,
        uid: Uid,
        hotkey: AccountId,
        coldkey: AccountId,
        axon_info: AxonInfo,
    ) -> Self {
        Self {
            hotkey,
            coldkey,
            uid,
            netuid,
            active: true,
            axon_info,
            stake: 0,
            emission: 0,
            incentive: 0,
            consensus: 0,
            validator_trust: 0,
            dividends: 0,
            rank: 0,
            trust: 0,
            pruning_score: 0,
            last_update: 0,
            validator_permit: false,
            weights: Vec::new(),
            bonds: Vec::new(),
            block_at_registration: 0,
        }
    }
}

/// A subnet's metagraph at a block.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Metagraph {
    /// Subnet.
    pub netuid: NetUid,
    /// Block the view was taken at.
    pub block: u64,
    /// One entry per uid, in uid order.
    pub neurons: Vec<NeuronInfo>,
}

/// A hotkey's stored commitment.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct Commitment {
    /// The committing hotkey.
    pub hotkey: AccountId,
    /// Its uid.
    pub uid: Uid,
    /// Block the commitment was stored at.
    pub block: u64,
    /// The bytes, `0x` hex in JSON.
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

/// An account's free balance and nonce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Encode, Decode, Serialize, Deserialize)]
pub struct AccountInfo {
    /// Spendable rao.
    pub free: Balance,
    /// Number of extrinsics applied from this account; the next one must carry it.
    pub nonce: u64,
}

/// Serde for bytes as `0x`-prefixed hex.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("0x{}", hex::encode(bytes)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        hex::decode(s.strip_prefix("0x").unwrap_or(&s)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENESIS: GenesisHash = [7; 32];

    fn alice() -> Keypair {
        Keypair::from_uri("//Alice").unwrap()
    }

    #[test]
    fn tao_amounts_are_exact_with_trailing_zeros_trimmed() {
        assert_eq!(format_tao(0), "0");
        assert_eq!(format_tao(RAO_PER_TAO), "1");
        assert_eq!(format_tao(1_500_000_000), "1.5");
        assert_eq!(format_tao(1), "0.000000001");
        assert_eq!(format_tao(1_000 * RAO_PER_TAO + 250_000_000), "1000.25");
        assert_eq!(format_tao(u64::MAX), "18446744073.709551615");
    }

    #[test]
    fn commit_hash_matches_the_spec_vector_byte_for_byte() {
        let hotkey =
            AccountId::from_hex("d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d")
                .unwrap();
        let salt: Vec<u16> = (1..=8).collect();
        let preimage = (
            &hotkey,
            1u16,
            &[0u16, 1, 2][..],
            &[65535u16, 32768, 0][..],
            &salt[..],
            0u64,
        )
            .encode();
        assert_eq!(
            hex::encode(&preimage),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d\
             0100\
             0c000001000200\
             0cffff00800000\
             2001000200030004000500060007000800\
             0000000000000000"
        );
        let hash = commit_hash(&hotkey, 1, &[0, 1, 2], &[65535, 32768, 0], &salt, 0);
        assert_eq!(
            hex::encode(hash),
            "488e53be58838493ed9af84425262bf229cb06294551346ebc32eb200f685d80"
        );
    }

    #[test]
    fn signed_extrinsic_round_trips_and_verifies() {
        let call = Call::Transfer {
            dest: Keypair::from_uri("//Bob").unwrap().account_id(),
            amount: 5,
        };
        let ext = SignedExtrinsic::sign(call, 3, &GENESIS, &alice());
        assert!(ext.verify(&GENESIS));
        let decoded = SignedExtrinsic::decode_bytes(&ext.encode()).unwrap();
        assert_eq!(decoded, ext);
        assert!(decoded.verify(&GENESIS));
    }

    #[test]
    fn signature_does_not_verify_on_another_chain_or_nonce() {
        let call = Call::SetCommitment {
            netuid: 1,
            data: vec![1, 2, 3],
        };
        let mut ext = SignedExtrinsic::sign(call, 0, &GENESIS, &alice());
        assert!(!ext.verify(&[8; 32]));
        ext.nonce = 1;
        assert!(!ext.verify(&GENESIS));
    }

    #[test]
    fn decoding_refuses_unknown_call_index() {
        let ext = SignedExtrinsic::sign(
            Call::Transfer {
                dest: alice().account_id(),
                amount: 1,
            },
            0,
            &GENESIS,
            &alice(),
        );
        let mut bytes = ext.encode();
        bytes[CALL_INDEX_OFFSET] = CALL_COUNT;
        assert_eq!(
            SignedExtrinsic::decode_bytes(&bytes),
            Err(ExtrinsicError::UnknownCall { index: CALL_COUNT })
        );
    }

    #[test]
    fn decoding_refuses_oversized_truncated_and_padded_input() {
        let big = vec![0u8; MAX_EXTRINSIC_SIZE + 1];
        assert!(matches!(
            SignedExtrinsic::decode_bytes(&big),
            Err(ExtrinsicError::TooLarge { .. })
        ));
        let ext = SignedExtrinsic::sign(
            Call::Transfer {
                dest: alice().account_id(),
                amount: 1,
            },
            0,
            &GENESIS,
            &alice(),
        );
        let bytes = ext.encode();
        assert!(matches!(
            SignedExtrinsic::decode_bytes(&bytes[..bytes.len() - 1]),
            Err(ExtrinsicError::Malformed { .. })
        ));
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(
            SignedExtrinsic::decode_bytes(&padded),
            Err(ExtrinsicError::TrailingBytes { extra: 1 })
        );
    }

    #[test]
    fn hyperparameter_names_parse_back_and_match_the_struct_fields() {
        let fields = serde_json::to_value(Hyperparameters::default()).unwrap();
        for param in Hyperparameter::ALL {
            assert_eq!(param.name().parse::<Hyperparameter>().unwrap(), param);
            assert_eq!(
                serde_json::to_value(param).unwrap(),
                serde_json::Value::from(param.name())
            );
            assert!(fields.get(param.name()).is_some(), "{param} is not a field");
        }
        assert!("nope".parse::<Hyperparameter>().is_err());
    }

    #[test]
    fn hyperparameters_reject_unknown_fields() {
        let err = serde_json::from_str::<Hyperparameters>(r#"{"tempo": 10, "tempoo": 1}"#);
        assert!(err.is_err());
        let ok: Hyperparameters = serde_json::from_str(r#"{"tempo": 10}"#).unwrap();
        assert_eq!(ok.tempo, 10);
        assert_eq!(ok.kappa, 32_767);
    }

    #[test]
    fn call_json_uses_snake_case_names() {
        let call = Call::SetHyperparameter {
            netuid: 1,
            param: Hyperparameter::Tempo,
            value: 10,
        };
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["set_hyperparameter"]["param"], "tempo");
        let back: Call = serde_json::from_value(json).unwrap();
        assert_eq!(back, call);
    }

    #[test]
    fn commitment_data_serializes_as_hex() {
        let c = Commitment {
            hotkey: alice().account_id(),
            uid: 0,
            block: 4,
            data: vec![0xab, 0x01],
        };
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["data"], "0xab01");
        assert_eq!(serde_json::from_value::<Commitment>(json).unwrap(), c);
    }
}
