//! Commit–reveal v4 payloads: weights encrypted to a future drand quicknet round
//! (`../shared/spec/subtensor-client.md` §6). Boneh–Franklin IBE on BLS12-381 (`TinyBLS381`,
//! signatures on G1) wraps an AES-GCM key; the identity of round `r` is
//! `sha256(r as u64 big-endian)`; the ciphertext is serialized compressed. When the round's
//! beacon signature is published, anyone (the chain at the reveal epoch) decrypts with it.
//!
//! A [`Beacon`] is a beacon of one's own (the dev chain's): a BLS key publishing one signature
//! per round, with which the same ciphertexts open.
//!
//! `timelock =0.0.1` + `w3f-bls =0.1.4` are byte-compatible with the `tle` Subtensor and the
//! SDK's `bittensor-drand` use (tests/it/timelock.rs decrypts each side's ciphertexts with the
//! other and with real quicknet signatures); later `timelock` versions changed the layout.

use crate::keys::AccountId;
use ark_ec::Group;
use ark_ff::PrimeField;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::Encode;
use rand::{RngCore, rngs::OsRng};
use sha2::{Digest, Sha256};
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

/// A randomness beacon of one's own, drand-quicknet style: a BLS12-381 secret key whose
/// signature of round `r` (on G1, over the identity `sha256(r as u64 big-endian)`) is what
/// opens the ciphertexts [`encrypt`] made for `r` with its [`Beacon::public_key`]. The dev chain
/// runs one so commit–reveal v4 works offline.
#[derive(Clone)]
pub struct Beacon {
    secret: <TinyBLS381 as EngineBLS>::Scalar,
}

impl std::fmt::Debug for Beacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Beacon").finish_non_exhaustive()
    }
}

impl Beacon {
    /// The beacon whose secret is derived from `seed` (the same seed, the same beacon).
    pub fn from_seed(seed: &[u8]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"subnet beacon v1")
            .chain_update(seed)
            .finalize();
        Self {
            secret: <TinyBLS381 as EngineBLS>::Scalar::from_le_bytes_mod_order(&digest),
        }
    }

    /// The public key (compressed G2) ciphertexts are encrypted to.
    pub fn public_key(&self) -> Vec<u8> {
        let public = <TinyBLS381 as EngineBLS>::PublicKeyGroup::generator() * self.secret;
        let mut bytes = Vec::new();
        public
            .serialize_compressed(&mut bytes)
            .expect("a G2 point serializes");
        bytes
    }

    /// The signature of round `round` (compressed G1): what [`decrypt`] takes.
    pub fn signature(&self, round: u64) -> Vec<u8> {
        let signature = identity(round).extract::<TinyBLS381>(self.secret).0;
        let mut bytes = Vec::new();
        signature
            .serialize_compressed(&mut bytes)
            .expect("a G1 point serializes");
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beacons_round_signature_opens_what_was_encrypted_to_its_round_and_no_other() {
        let beacon = Beacon::from_seed(b"test chain");
        let message = b"weights".to_vec();
        let sealed = encrypt(&message, 42, &beacon.public_key()).expect("encrypt");
        assert_eq!(
            decrypt(&sealed, &beacon.signature(42)).expect("open"),
            message
        );
        assert!(matches!(
            decrypt(&sealed, &beacon.signature(43)),
            Err(TimelockError::Decrypt)
        ));
        // Another seed is another beacon.
        let other = Beacon::from_seed(b"other chain");
        assert_ne!(other.public_key(), beacon.public_key());
        assert!(decrypt(&sealed, &other.signature(42)).is_err());
        assert_eq!(
            Beacon::from_seed(b"test chain").public_key(),
            beacon.public_key()
        );
    }
}
