//! Commit–reveal v4 payloads: weights encrypted to a future drand quicknet round
//! (`../shared/spec/subtensor-client.md` §6). Boneh–Franklin IBE on BLS12-381 (`TinyBLS381`,
//! signatures on G1) wraps an AES-GCM key; the identity of round `r` is
//! `sha256(r as u64 big-endian)`; the ciphertext is serialized compressed. When the round's
//! beacon signature is published, anyone (the chain at the reveal epoch) decrypts with it.
//!
//! `timelock =0.0.1` + `w3f-bls =0.1.4` are byte-compatible with the `tle` Subtensor and the
//! SDK's `bittensor-drand` use (tests/it/timelock.rs decrypts each side's ciphertexts with the
//! other and with real quicknet signatures); later `timelock` versions changed the layout.

use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::Encode;
use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
use subnet_common::keys::AccountId;
use timelock::curves::drand::TinyBLS381;
use timelock::ibe::fullident::Identity;
use timelock::stream_ciphers::AESGCMStreamCipherProvider;
use timelock::tlock::{TLECiphertext, tld, tle};
use w3f_bls::EngineBLS;

/// drand quicknet's public key (G2, compressed), the beacon Subtensor's `pallet_drand` follows.
pub const QUICKNET_PUBLIC_KEY: &str = "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a";

/// Unix time of quicknet's round 1.
pub const QUICKNET_GENESIS: u64 = 1_692_803_367;

/// Seconds between quicknet rounds.
pub const QUICKNET_PERIOD: u64 = 3;

/// Why a timelock operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TimelockError {
    /// The beacon public key does not decode as a G2 point.
    #[error("the beacon public key is not a compressed BLS12-381 G2 point")]
    PublicKey,
    /// The signature does not decode as a G1 point.
    #[error("the round signature is not a compressed BLS12-381 G1 point")]
    Signature,
    /// The ciphertext does not decode.
    #[error("the ciphertext does not decode: {0}")]
    Ciphertext(String),
    /// Encryption failed.
    #[error("encryption failed: {0}")]
    Encrypt(String),
    /// The signature is not the one of the round the ciphertext was encrypted to (or the
    /// ciphertext was altered).
    #[error("decryption failed: wrong round signature or altered ciphertext")]
    Decrypt,
}

/// What Subtensor decrypts at the reveal epoch and applies as the hotkey's weights.
#[derive(Debug, Clone, PartialEq, Eq, Encode, parity_scale_codec::Decode)]
pub struct WeightsTlockPayload {
    /// The committing hotkey's public key bytes (checked against the commit's signer).
    pub hotkey: Vec<u8>,
    /// Uids.
    pub uids: Vec<u16>,
    /// u16 weights.
    pub values: Vec<u16>,
    /// The validator's version key.
    pub version_key: u64,
}

impl WeightsTlockPayload {
    /// The payload of `hotkey`'s weights.
    pub fn new(hotkey: &AccountId, uids: Vec<u16>, values: Vec<u16>, version_key: u64) -> Self {
        Self {
            hotkey: hotkey.as_bytes().to_vec(),
            uids,
            values,
            version_key,
        }
    }
}

/// The IBE identity of drand round `round`: `sha256(round as u64 big-endian)`.
fn identity(round: u64) -> Identity {
    Identity::new(b"", vec![Sha256::digest(round.to_be_bytes()).to_vec()])
}

/// `message` encrypted to `round` of the beacon with `public_key` (compressed G2 bytes), with
/// fresh randomness; the compressed ciphertext.
pub fn encrypt(message: &[u8], round: u64, public_key: &[u8]) -> Result<Vec<u8>, TimelockError> {
    let public_key = <TinyBLS381 as EngineBLS>::PublicKeyGroup::deserialize_compressed(public_key)
        .map_err(|_| TimelockError::PublicKey)?;
    let mut secret = [0u8; 32];
    OsRng.fill_bytes(&mut secret);
    let ciphertext = tle::<TinyBLS381, AESGCMStreamCipherProvider, OsRng>(
        public_key,
        secret,
        message,
        identity(round),
        OsRng,
    )
    .map_err(|e| TimelockError::Encrypt(format!("{e:?}")))?;
    let mut bytes = Vec::new();
    ciphertext
        .serialize_compressed(&mut bytes)
        .map_err(|e| TimelockError::Encrypt(e.to_string()))?;
    Ok(bytes)
}

/// `message` encrypted to quicknet round `round`.
pub fn encrypt_to_quicknet(message: &[u8], round: u64) -> Result<Vec<u8>, TimelockError> {
    let public_key = hex::decode(QUICKNET_PUBLIC_KEY).map_err(|_| TimelockError::PublicKey)?;
    encrypt(message, round, &public_key)
}

/// The plaintext of `ciphertext`, given the beacon's signature (compressed G1) of the round it
/// was encrypted to.
pub fn decrypt(ciphertext: &[u8], signature: &[u8]) -> Result<Vec<u8>, TimelockError> {
    let ciphertext = TLECiphertext::<TinyBLS381>::deserialize_compressed(ciphertext)
        .map_err(|e| TimelockError::Ciphertext(e.to_string()))?;
    let signature = <TinyBLS381 as EngineBLS>::SignatureGroup::deserialize_compressed(signature)
        .map_err(|_| TimelockError::Signature)?;
    tld::<TinyBLS381, AESGCMStreamCipherProvider>(ciphertext, signature)
        .map_err(|_| TimelockError::Decrypt)
}

/// `hotkey`'s weights encrypted to quicknet round `reveal_round`: the `commit` of
/// [`crate::SubtensorCall::CommitTimelockedWeights`].
pub fn encrypt_weights(
    payload: &WeightsTlockPayload,
    reveal_round: u64,
) -> Result<Vec<u8>, TimelockError> {
    encrypt_to_quicknet(&payload.encode(), reveal_round)
}

/// A subnet's epoch schedule as the chain stores it at the head (`LastEpochBlock`,
/// `PendingEpochAt`, `SubnetEpochIndex`, `Tempo`, `BlocksSinceLastStep`) and the head's number:
/// what predicting a commit's reveal block needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSchedule {
    /// Block of the subnet's last epoch.
    pub last_epoch_block: u64,
    /// A pending owner-triggered epoch's block (0: none).
    pub pending_epoch_at: u64,
    /// The subnet's epoch counter.
    pub subnet_epoch_index: u64,
    /// Blocks per epoch (0: the subnet runs no epochs).
    pub tempo: u16,
    /// Blocks since the subnet's last step.
    pub blocks_since_last_step: u64,
    /// The head's number.
    pub current_block: u64,
}

/// Why no reveal block can be predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Tempo 0: the subnet runs no epochs, so nothing is ever revealed.
    #[error("the subnet's tempo is 0: it runs no epochs")]
    NoEpochs,
    /// No block within the search bound reaches the reveal epoch.
    #[error("no reveal block within {0} blocks")]
    OutOfBound(u64),
}

/// The chain's largest tempo; a subnet this many blocks past its last step runs an epoch anyway.
const MAX_TEMPO: u64 = 50_400;

/// A commit lands in the block after the head it was built against.
const INCLUSION_DELAY: u64 = 1;

/// Blocks past the reveal block whose beacon pulse the reveal round aims at, so the pulse is
/// already on chain when the reveal runs.
const PULSE_MARGIN_BLOCKS: u64 = 3;

impl EpochSchedule {
    /// Whether the subnet's epoch runs at `block`.
    fn epoch_runs_at(&self, block: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        (self.pending_epoch_at > 0 && block >= self.pending_epoch_at)
            || self.blocks_since_last_step > MAX_TEMPO
            || block.saturating_sub(self.last_epoch_block) >= u64::from(self.tempo)
    }

    /// The epoch index reveals see at `block` (they run before the block's epoch step).
    fn index_seen_at(&self, block: u64) -> u64 {
        self.subnet_epoch_index + u64::from(self.epoch_runs_at(block))
    }

    /// The schedule after the chain's step at `block`.
    fn step(mut self, block: u64) -> Self {
        self.blocks_since_last_step += 1;
        self.current_block = block;
        if self.epoch_runs_at(block) {
            self.last_epoch_block = block;
            self.pending_epoch_at = 0;
            self.subnet_epoch_index += 1;
            self.blocks_since_last_step = 0;
        }
        self
    }

    /// The first block at which the chain reveals a commit built against this head, with the
    /// subnet's reveal period of `reveal_epochs` epochs: the commit lands in the next block, in
    /// the epoch the chain's reveals see there, and is revealed at the first block whose reveals
    /// see `reveal_epochs` epochs more.
    pub fn first_reveal_block(&self, reveal_epochs: u64) -> Result<u64, ScheduleError> {
        if self.tempo == 0 {
            return Err(ScheduleError::NoEpochs);
        }
        let landed = self.current_block + INCLUSION_DELAY;
        let mut state = *self;
        for block in self.current_block + 1..landed {
            state = state.step(block);
        }
        let target = state.index_seen_at(landed) + reveal_epochs;
        let bound = reveal_epochs
            .saturating_mul(MAX_TEMPO)
            .saturating_add(MAX_TEMPO);
        for block in landed..=landed.saturating_add(bound) {
            if state.index_seen_at(block) == target {
                return Ok(block);
            }
            state = state.step(block);
        }
        Err(ScheduleError::OutOfBound(bound))
    }

    /// The quicknet round to encrypt a commit to, as the SDK picks it: the round current
    /// [`PULSE_MARGIN_BLOCKS`] after the reveal block, with blocks of `block_secs` seconds
    /// counted from `now_unix_secs`.
    pub fn reveal_round(
        &self,
        reveal_epochs: u64,
        block_secs: f64,
        now_unix_secs: f64,
    ) -> Result<u64, ScheduleError> {
        let reveal = self.first_reveal_block(reveal_epochs)?;
        let blocks = (reveal + PULSE_MARGIN_BLOCKS).saturating_sub(self.current_block);
        let at = now_unix_secs + blocks as f64 * block_secs;
        let round = ((at - QUICKNET_GENESIS as f64) / QUICKNET_PERIOD as f64).floor();
        Ok((round as u64).max(1))
    }
}
