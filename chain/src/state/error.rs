//! Why the chain refused an extrinsic. Variant names follow Subtensor's pallet errors where one
//! exists, so a client that knows Subtensor recognizes them.

use subnet_common::chain::types::{ExtrinsicError, Hyperparameter, NetUid, Uid};
use subnet_common::keys::AccountId;

// Amounts in messages are for people: τ, not rao (the fields keep rao).
use crate::tx::format_tao as tao;

/// An extrinsic the state machine refused. A refused extrinsic changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    // --- envelope ---
    /// The signature does not match signer, call, nonce and genesis hash. An extrinsic signed for
    /// another chain lands here too: the genesis hash is signed, not sent.
    #[error(
        "bad signature from {signer}: not signed by this key for this call, nonce and chain (genesis hash)"
    )]
    BadSignature {
        /// The claimed signer.
        signer: AccountId,
    },
    /// The nonce is not the signer's account nonce.
    #[error("bad nonce: expected {expected}, got {got}")]
    BadNonce {
        /// The account's nonce.
        expected: u64,
        /// The extrinsic's nonce.
        got: u64,
    },
    /// The call index names no call.
    #[error("unknown call index {index}")]
    UnknownCall {
        /// The index byte.
        index: u8,
    },
    /// The encoded extrinsic is over the size limit.
    #[error("extrinsic is {size} bytes, the limit is {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a well-formed extrinsic.
    #[error("malformed extrinsic: {reason}")]
    Malformed {
        /// What the decoder reported.
        reason: String,
    },

    // --- balances and stake ---
    /// The free balance does not cover a transfer.
    #[error("insufficient balance: {} τ free, {} τ needed", tao(*.available), tao(*.needed))]
    InsufficientBalance {
        /// Free balance.
        available: u64,
        /// Amount asked for.
        needed: u64,
    },
    /// The free balance does not cover the stake.
    #[error("not enough balance to stake: {} τ free, {} τ needed", tao(*.available), tao(*.needed))]
    NotEnoughBalanceToStake {
        /// Free balance.
        available: u64,
        /// Amount asked for.
        needed: u64,
    },
    /// The stake does not cover the withdrawal.
    #[error("not enough stake to withdraw: {} τ staked, {} τ asked", tao(*.available), tao(*.needed))]
    NotEnoughStakeToWithdraw {
        /// Stake of this coldkey on this hotkey and subnet.
        available: u64,
        /// Amount asked for.
        needed: u64,
    },
    /// A zero stake amount.
    #[error("amount must be greater than zero")]
    AmountTooLow,
    /// The hotkey has never been registered, so it has no owner to stake to.
    #[error("hotkey {hotkey} does not exist")]
    HotKeyAccountNotExists {
        /// The hotkey.
        hotkey: AccountId,
    },
    /// An amount would overflow u64.
    #[error("balance overflow")]
    BalanceOverflow,

    // --- subnets and registration ---
    /// No subnet has this netuid.
    #[error("subnet {netuid} does not exist")]
    SubnetNotExists {
        /// Subnet.
        netuid: NetUid,
    },
    /// The subnet owner turned registration off.
    #[error("registration is disabled on subnet {netuid}")]
    SubNetRegistrationDisabled {
        /// Subnet.
        netuid: NetUid,
    },
    /// The hotkey already has a uid on the subnet.
    #[error("hotkey {hotkey} is already registered on subnet {netuid}")]
    HotKeyAlreadyRegisteredInSubNet {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// The free balance does not cover the burn.
    #[error("not enough balance to register: {} τ free, the burn is {} τ", tao(*.available), tao(*.burn))]
    NotEnoughBalanceToPayRegistration {
        /// Free balance.
        available: u64,
        /// The burn.
        burn: u64,
    },
    /// The hotkey is owned by another coldkey.
    #[error("hotkey {hotkey} is owned by another coldkey")]
    NonAssociatedColdKey {
        /// Hotkey.
        hotkey: AccountId,
    },
    /// The subnet is full and every uid is protected.
    #[error("subnet {netuid} is full and no uid can be pruned")]
    NoNeuronIdAvailable {
        /// Subnet.
        netuid: NetUid,
    },
    /// The signer is not the subnet owner's coldkey.
    #[error("only the owner of subnet {netuid} may do this")]
    NotSubnetOwner {
        /// Subnet.
        netuid: NetUid,
    },
    /// The hyperparameter value is out of range.
    #[error("invalid value {value} for {param}: {reason}")]
    InvalidHyperparameterValue {
        /// Which one.
        param: Hyperparameter,
        /// The value given.
        value: u64,
        /// The allowed range.
        reason: &'static str,
    },

    // --- axon and commitments ---
    /// The hotkey has no uid on the subnet (serve_axon, commitments).
    #[error("hotkey {hotkey} is not registered on subnet {netuid}")]
    HotKeyNotRegisteredInNetwork {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// ip_type is neither 4 nor 6.
    #[error("invalid ip type {ip_type}")]
    InvalidIpType {
        /// The value given.
        ip_type: u8,
    },
    /// The ip does not fit its ip_type.
    #[error("invalid ip address {ip} for ip type {ip_type}")]
    InvalidIpAddress {
        /// The value given.
        ip: u128,
        /// Its ip_type.
        ip_type: u8,
    },
    /// Port 0.
    #[error("invalid port 0")]
    InvalidPort,
    /// serve_axon again before `serving_rate_limit` blocks passed.
    #[error("serve_axon rate limit: last served at block {last}, limit {limit} blocks")]
    ServingRateLimitExceeded {
        /// Block of the last serve.
        last: u64,
        /// The rate limit.
        limit: u64,
    },
    /// Commitment over the size limit.
    #[error("commitment is {len} bytes, the limit is {max}")]
    CommitmentTooLarge {
        /// Size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// set_commitment again before `commitment_rate_limit` blocks passed.
    #[error("commitment rate limit: last set at block {last}, limit {limit} blocks")]
    CommitmentSetRateLimitExceeded {
        /// Block of the last commitment.
        last: u64,
        /// The rate limit.
        limit: u64,
    },

    // --- weights (spec §2.2, §2.4) ---
    /// Weights on the root subnet.
    #[error("cannot set weights on the root subnet")]
    CanNotSetRootNetworkWeights,
    /// dests and weights differ in length.
    #[error("{uids} uids but {values} weights")]
    WeightVecNotEqualSize {
        /// Number of uids.
        uids: usize,
        /// Number of values.
        values: usize,
    },
    /// More uids than the subnet has.
    #[error("{len} uids given, subnet has {n}")]
    UidsLengthExceedUidsInSubNet {
        /// Number of uids.
        len: usize,
        /// Subnet size.
        n: u16,
    },
    /// The hotkey has no uid on the subnet (weights).
    #[error("hotkey {hotkey} is not registered on subnet {netuid}")]
    HotKeyNotRegisteredInSubNet {
        /// Subnet.
        netuid: NetUid,
        /// Hotkey.
        hotkey: AccountId,
    },
    /// Stake under `stake_threshold`.
    #[error("stake {} τ is under the threshold {} τ", tao(*.stake), tao(*.threshold))]
    NotEnoughStakeToSetWeights {
        /// The hotkey's stake.
        stake: u64,
        /// The threshold.
        threshold: u64,
    },
    /// version_key under the subnet's `weights_version_key`.
    #[error("version key {got} is older than the required {required}")]
    IncorrectWeightVersionKey {
        /// Required minimum.
        required: u64,
        /// The one given.
        got: u64,
    },
    /// Weights again before `weights_set_rate_limit` blocks passed.
    #[error("setting weights too fast: last update at block {last_update}, limit {limit} blocks")]
    SettingWeightsTooFast {
        /// Block of the last update.
        last_update: u64,
        /// The rate limit.
        limit: u64,
    },
    /// Non-self weights without a validator permit.
    #[error("uid {uid} has no validator permit")]
    NeuronNoValidatorPermit {
        /// The caller's uid.
        uid: Uid,
    },
    /// A uid appears twice.
    #[error("duplicate uids in the weight vector")]
    DuplicateUids,
    /// A uid is not in the subnet.
    #[error("uid {uid} is not in the subnet")]
    UidVecContainInvalidOne {
        /// The bad uid.
        uid: Uid,
    },
    /// Fewer weights than `min(n, min_allowed_weights)`.
    #[error("{len} weights given, at least {min} required")]
    WeightVecLengthIsLow {
        /// Number given.
        len: usize,
        /// Required minimum.
        min: usize,
    },
    /// The largest normalized weight is over `max_weight_limit`.
    #[error("largest normalized weight {max} is over the limit {limit} (/65535)")]
    MaxWeightExceeded {
        /// Largest normalized weight, /65535.
        max: u64,
        /// The limit.
        limit: u16,
    },
    /// set_weights while commit–reveal is on.
    #[error("commit-reveal is enabled on subnet {netuid}: commit then reveal")]
    CommitRevealEnabled {
        /// Subnet.
        netuid: NetUid,
    },
    /// commit_timelocked_weights with a version other than the subnet's (or on a v2 subnet).
    #[error(
        "commit-reveal version {given} does not match subnet {netuid}'s version {expected} \
         (timelocked commits need version 4)"
    )]
    IncorrectCommitRevealVersion {
        /// Subnet.
        netuid: NetUid,
        /// The version the call carried.
        given: u16,
        /// The subnet's.
        expected: u16,
    },
    /// A timelocked commit to a beacon round already published.
    #[error("reveal round {round} is already published (the chain is at block {block})")]
    InvalidRevealRound {
        /// The round given.
        round: u64,
        /// The current block.
        block: u64,
    },
    /// commit/reveal while commit–reveal is off.
    #[error("commit-reveal is disabled on subnet {netuid}: use set_weights")]
    CommitRevealDisabled {
        /// Subnet.
        netuid: NetUid,
    },
    /// Ten unrevealed, unexpired commits already.
    #[error("too many unrevealed commits (limit {limit})")]
    TooManyUnrevealedCommits {
        /// The queue limit.
        limit: usize,
    },
    /// Reveal without any commit.
    #[error("no weight commit found")]
    NoWeightsCommitFound,
    /// The reveal's hash matches no queued commit.
    #[error("revealed weights do not match any commit")]
    InvalidRevealCommitHashNotMatch,
    /// The matching commit's reveal epoch has not come yet.
    #[error(
        "reveal too early: commit of epoch {commit_epoch} reveals in epoch {reveal_epoch}, now {current_epoch}"
    )]
    RevealTooEarly {
        /// Epoch of the commit.
        commit_epoch: u64,
        /// Epoch its reveal is due.
        reveal_epoch: u64,
        /// The current epoch.
        current_epoch: u64,
    },
    /// The matching commit expired.
    #[error("the matching weight commit expired")]
    ExpiredWeightCommit,
}

impl From<ExtrinsicError> for ChainError {
    fn from(e: ExtrinsicError) -> Self {
        match e {
            ExtrinsicError::TooLarge { size, max } => Self::TooLarge { size, max },
            ExtrinsicError::UnknownCall { index } => Self::UnknownCall { index },
            ExtrinsicError::Malformed { reason } => Self::Malformed { reason },
            ExtrinsicError::TrailingBytes { extra } => Self::Malformed {
                reason: format!("{extra} trailing bytes"),
            },
        }
    }
}
