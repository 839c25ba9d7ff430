//! sr25519 keys, Substrate URIs, mnemonics and SS58 addresses.
//!
//! Compatible byte for byte with `sp_core::sr25519` as used by the bittensor SDK: signatures use the
//! schnorrkel signing context `b"substrate"`, mini secrets expand with `ExpansionMode::Ed25519`,
//! mnemonics follow substrate-bip39 and addresses are SS58 with prefix 42.
//!
//! | submodule | what |
//! |---|---|
//! | [`ss58`] | SS58 encoding and decoding |
//! | [`uri`] | secret URIs, derivation junctions, mnemonic → mini secret |

pub mod ss58;
pub mod uri;

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use schnorrkel::derive::{ChainCode, Derivation};
use schnorrkel::{ExpansionMode, MiniSecretKey, PublicKey, SecretKey};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

pub use ss58::SUBSTRATE_PREFIX;
pub use uri::{DEV_PHRASE, DeriveJunction};

/// The schnorrkel signing context of Substrate sr25519 signatures.
pub const SIGNING_CONTEXT: &[u8] = b"substrate";

/// Why a key, address, signature, URI or mnemonic was rejected.
///
/// Messages never include secret input (phrases, seeds, URIs).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The SS58 address holds characters outside the base58 alphabet.
    #[error("SS58 address is not valid base58: {reason}")]
    InvalidBase58 {
        /// What the base58 decoder reported.
        reason: String,
    },
    /// The decoded SS58 address has the wrong number of bytes.
    #[error("SS58 address decodes to {length} bytes, expected 35 (prefix, 32-byte key, checksum)")]
    InvalidSs58Length {
        /// Decoded length in bytes.
        length: usize,
    },
    /// The SS58 checksum does not match the address.
    #[error("SS58 address checksum does not match (mistyped address?)")]
    BadSs58Checksum,
    /// The SS58 address uses a network prefix other than 42.
    #[error("SS58 address has network prefix {prefix}, expected {SUBSTRATE_PREFIX}")]
    UnsupportedSs58Prefix {
        /// The prefix found in the address.
        prefix: u16,
    },
    /// A hex string did not decode.
    #[error("{what} is not valid hex: {reason}")]
    InvalidHex {
        /// What was being decoded (e.g. "signature").
        what: &'static str,
        /// What the hex decoder reported.
        reason: String,
    },
    /// A byte string has the wrong length.
    #[error("{what} must be {expected} bytes, got {actual}")]
    InvalidLength {
        /// What was being decoded.
        what: &'static str,
        /// Required length in bytes.
        expected: usize,
        /// Length found.
        actual: usize,
    },
    /// The mnemonic is not a valid BIP39 English phrase.
    #[error("invalid mnemonic: {reason}")]
    InvalidMnemonic {
        /// What is wrong with it (never the words themselves).
        reason: String,
    },
    /// The secret URI does not follow `phrase//hard/soft///password` or `0x<seed>`.
    #[error("invalid secret URI: {reason}")]
    InvalidUri {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The 64-byte secret key is not a canonical schnorrkel secret key.
    #[error("invalid sr25519 secret key: {reason}")]
    InvalidSecretKey {
        /// What schnorrkel reported.
        reason: String,
    },
}

/// A 32-byte sr25519 public key, used as the account id. Displays and parses as SS58 (prefix 42).
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    parity_scale_codec::Encode,
    parity_scale_codec::Decode,
)]
pub struct AccountId(pub [u8; 32]);

impl AccountId {
    /// The SS58 address with prefix 42 (`5…`, 48 characters).
    pub fn to_ss58(&self) -> String {
        ss58::encode(SUBSTRATE_PREFIX, &self.0)
    }

    /// The SS58 address with another one-byte network prefix (0–63).
    pub fn to_ss58_with_prefix(&self, prefix: u8) -> Result<String, KeyError> {
        ss58::encode_checked(prefix, &self.0)
    }

    /// Parses an SS58 address, checking the checksum and that the prefix is 42.
    pub fn from_ss58(s: &str) -> Result<Self, KeyError> {
        let (prefix, public) = ss58::decode(s)?;
        if prefix != SUBSTRATE_PREFIX {
            return Err(KeyError::UnsupportedSs58Prefix {
                prefix: u16::from(prefix),
            });
        }
        Ok(Self(public))
    }

    /// Parses `0x`-prefixed (or bare) hex of 32 bytes, the keyfile `publicKey` form.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        decode_hex_array("public key", s).map(Self)
    }

    /// `0x` followed by the lowercase hex of the key.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// The raw public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Verifies an sr25519 signature over `message` with signing context `b"substrate"`.
    ///
    /// False for bad signatures and for bytes that are not a valid public key.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        let Ok(public) = PublicKey::from_bytes(&self.0) else {
            return false;
        };
        let Ok(signature) = schnorrkel::Signature::from_bytes(&signature.0) else {
            return false;
        };
        public
            .verify_simple(SIGNING_CONTEXT, message, &signature)
            .is_ok()
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_ss58())
    }
}

impl FromStr for AccountId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_ss58(s)
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_ss58())
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_ss58(&s).map_err(serde::de::Error::custom)
    }
}

/// A 64-byte sr25519 signature. Serializes as `0x`-prefixed hex.
#[derive(Clone, Copy, PartialEq, Eq, parity_scale_codec::Encode, parity_scale_codec::Decode)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    /// `0x` followed by the lowercase hex of the 64 bytes.
    pub fn to_hex(&self) -> String {
        format!("0x{}", hex::encode(self.0))
    }

    /// Parses 64 bytes of hex, with or without `0x`.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        decode_hex_array("signature", s).map(Self)
    }

    /// The raw signature bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// Decodes hex (optional `0x`) into exactly `N` bytes.
pub(crate) fn decode_hex_array<const N: usize>(
    what: &'static str,
    s: &str,
) -> Result<[u8; N], KeyError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let bytes = Zeroizing::new(hex::decode(digits).map_err(|e| KeyError::InvalidHex {
        what,
        reason: e.to_string(),
    })?);
    let actual = bytes.len();
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| KeyError::InvalidLength {
        what,
        expected: N,
        actual,
    })
}

/// An sr25519 key pair. Its `Debug` shows only the public SS58 address.
///
/// Besides the schnorrkel key it remembers, when known, the 32-byte mini secret it was expanded
/// from and the mnemonic it came from, so a wallet can write them to a keyfile.
#[derive(Clone)]
pub struct Keypair {
    inner: schnorrkel::Keypair,
    /// Mini secret (`secretSeed` in keyfiles); lost by soft derivation, as in sp-core.
    seed: Option<Zeroizing<[u8; 32]>>,
    /// BIP39 phrase (`secretPhrase`); only for keys made straight from a phrase.
    mnemonic: Option<SecretString>,
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("account_id", &self.account_id().to_ss58())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// Expands a 32-byte mini secret (`ExpansionMode::Ed25519`, as sp-core does).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            inner: expand(seed),
            seed: Some(Zeroizing::new(*seed)),
            mnemonic: None,
        }
    }

    /// The key of a BIP39 English mnemonic with an optional password (substrate-bip39).
    /// [`Keypair::mnemonic`] returns the phrase only when no password was used.
    pub fn from_mnemonic(phrase: &str, password: Option<&str>) -> Result<Self, KeyError> {
        let seed = uri::mini_secret_from_phrase(phrase, password)?;
        let mut pair = Self::from_seed(&seed);
        // Keyfiles store the phrase without its password, so only a password-less phrase is
        // kept; with a password the seed still identifies the key.
        if password.is_none_or(str::is_empty) {
            pair.mnemonic = Some(SecretString::from(normalize_phrase(phrase)));
        }
        Ok(pair)
    }

    /// Parses a Substrate secret URI like `sp_core::Pair::from_string`:
    /// `//Alice` (dev phrase + junctions), `<mnemonic>//hard/soft///password`, or
    /// `0x<32-byte seed hex>` optionally followed by junctions.
    pub fn from_uri(uri: &str) -> Result<Self, KeyError> {
        let parsed = uri::parse(uri)?;
        let root = match parsed.root {
            // `derive` drops the phrase once junctions apply.
            uri::Root::Phrase(phrase) => Self::from_mnemonic(phrase, parsed.password)?,
            uri::Root::HexSeed(hex) => {
                let seed = Zeroizing::new(decode_hex_array::<32>("seed", hex)?);
                Self::from_seed(&seed)
            }
        };
        Ok(root.derive(&parsed.junctions))
    }

    /// Follows a derivation path: hard junctions derive a new mini secret, soft ones derive the
    /// secret key directly (and forget the mini secret).
    pub fn derive(&self, junctions: &[DeriveJunction]) -> Self {
        let mut secret = self.inner.secret.clone();
        let mut seed = self.seed.clone();
        for junction in junctions {
            match junction {
                DeriveJunction::Soft(cc) => {
                    secret = secret.derived_key_simple(ChainCode(*cc), []).0;
                    seed = None;
                }
                DeriveJunction::Hard(cc) => {
                    let mini = secret
                        .hard_derive_mini_secret_key(Some(ChainCode(*cc)), b"")
                        .0;
                    secret = mini.expand(ExpansionMode::Ed25519);
                    seed = Some(Zeroizing::new(mini.to_bytes()));
                }
            }
        }
        let mnemonic = if junctions.is_empty() {
            self.mnemonic.clone()
        } else {
            None
        };
        Self {
            inner: secret.to_keypair(),
            seed,
            mnemonic,
        }
    }

    /// Loads the 64-byte schnorrkel secret key (`scalar ‖ nonce`), the keyfile `privateKey` form.
    pub fn from_secret_key_bytes(bytes: &[u8; 64]) -> Result<Self, KeyError> {
        let secret = SecretKey::from_bytes(bytes).map_err(|e| KeyError::InvalidSecretKey {
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: secret.to_keypair(),
            seed: None,
            mnemonic: None,
        })
    }

    /// The 64-byte schnorrkel secret key (`scalar ‖ nonce`), as keyfiles store `privateKey`.
    pub fn to_secret_key_bytes(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.inner.secret.to_bytes())
    }

    /// A fresh key from a new random 12-word mnemonic; returns the key and the phrase.
    pub fn generate() -> (Self, String) {
        let mut entropy = Zeroizing::new([0u8; 16]);
        rand::rngs::OsRng.fill_bytes(entropy.as_mut_slice());
        // 16 bytes is a valid BIP39 entropy length and a fresh phrase always parses: an
        // invariant of the bip39 crate, not an input error.
        let mnemonic = bip39::Mnemonic::from_entropy(entropy.as_slice())
            .expect("16 bytes is a valid BIP39 entropy length");
        let phrase = mnemonic.to_string();
        let pair = Self::from_mnemonic(&phrase, None).expect("a fresh mnemonic parses");
        (pair, phrase)
    }

    /// The public key as an account id.
    pub fn account_id(&self) -> AccountId {
        AccountId(self.inner.public.to_bytes())
    }

    /// Signs `message` with signing context `b"substrate"`. Signatures are randomized.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.inner.sign_simple(SIGNING_CONTEXT, message).to_bytes())
    }

    /// The 32-byte mini secret this key was expanded from, when known (secret!).
    pub fn seed(&self) -> Option<&[u8; 32]> {
        self.seed.as_deref()
    }

    /// The mnemonic this key was made from, when it was made straight from one (secret!).
    pub fn mnemonic(&self) -> Option<&str> {
        self.mnemonic.as_ref().map(|m| m.expose_secret())
    }
}

fn expand(seed: &[u8; 32]) -> schnorrkel::Keypair {
    // A 32-byte slice is always a valid mini secret: `from_bytes` only checks the length.
    match MiniSecretKey::from_bytes(seed) {
        Ok(mini) => mini.expand_to_keypair(ExpansionMode::Ed25519),
        Err(_) => unreachable!("MiniSecretKey::from_bytes accepts every 32-byte input"),
    }
}

/// Collapses runs of whitespace so a stored phrase is the canonical single-spaced form.
fn normalize_phrase(phrase: &str) -> String {
    phrase.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alice_uri_gives_the_well_known_address() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        assert_eq!(
            alice.account_id().to_ss58(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message_and_key() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        let bob = Keypair::from_uri("//Bob").unwrap();
        let sig = alice.sign(b"hello");
        assert!(alice.account_id().verify(b"hello", &sig));
        assert!(!alice.account_id().verify(b"hellp", &sig));
        assert!(!bob.account_id().verify(b"hello", &sig));
    }

    #[test]
    fn debug_output_holds_no_secret() {
        let (pair, phrase) = Keypair::generate();
        let debug = format!("{pair:?}");
        assert!(debug.contains(&pair.account_id().to_ss58()));
        assert!(!debug.contains(phrase.split(' ').next().unwrap_or("")));
        assert!(!debug.contains(&hex::encode(&pair.to_secret_key_bytes()[..8])));
    }

    #[test]
    fn generated_keys_round_trip_through_their_mnemonic() {
        let (pair, phrase) = Keypair::generate();
        assert_eq!(phrase.split(' ').count(), 12);
        let again = Keypair::from_mnemonic(&phrase, None).unwrap();
        assert_eq!(pair.account_id(), again.account_id());
        assert_eq!(pair.mnemonic(), Some(phrase.as_str()));
    }

    #[test]
    fn a_password_protected_mnemonic_is_not_kept_as_a_plain_phrase() {
        let (_, phrase) = Keypair::generate();
        let with_password = Keypair::from_mnemonic(&phrase, Some("pw")).unwrap();
        assert_eq!(with_password.mnemonic(), None);
        assert!(with_password.seed().is_some());
        let seed = *with_password.seed().unwrap();
        assert_eq!(
            Keypair::from_seed(&seed).account_id(),
            with_password.account_id()
        );
        assert_ne!(
            with_password.account_id(),
            Keypair::from_mnemonic(&phrase, None).unwrap().account_id()
        );
    }

    #[test]
    fn secret_key_bytes_round_trip() {
        let pair = Keypair::from_uri("//Bob").unwrap();
        let back = Keypair::from_secret_key_bytes(&pair.to_secret_key_bytes()).unwrap();
        assert_eq!(pair.account_id(), back.account_id());
        assert!(back.account_id().verify(b"m", &back.sign(b"m")));
    }

    #[test]
    fn account_id_serializes_as_ss58_and_signature_as_hex() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        let json = serde_json::to_string(&alice.account_id()).unwrap();
        assert_eq!(json, "\"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\"");
        let back: AccountId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, alice.account_id());
        let sig = alice.sign(b"x");
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<Signature>(&json).unwrap(), sig);
    }

    #[test]
    fn rejects_an_address_with_another_prefix() {
        let alice = Keypair::from_uri("//Alice").unwrap().account_id();
        let polkadot = alice.to_ss58_with_prefix(0).unwrap();
        assert!(matches!(
            AccountId::from_ss58(&polkadot),
            Err(KeyError::UnsupportedSs58Prefix { prefix: 0 })
        ));
    }

    #[test]
    fn rejects_signature_hex_of_the_wrong_length() {
        assert!(matches!(
            Signature::from_hex("0xabcd"),
            Err(KeyError::InvalidLength {
                expected: 64,
                actual: 2,
                ..
            })
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            #[test]
            fn any_signature_verifies_for_its_key_and_message_only(
                seed in any::<[u8; 32]>(),
                message in proptest::collection::vec(any::<u8>(), 0..256),
                flip in any::<usize>(),
            ) {
                let pair = Keypair::from_seed(&seed);
                let sig = pair.sign(&message);
                prop_assert!(pair.account_id().verify(&message, &sig));
                let mut tampered = sig;
                tampered.0[flip % 64] ^= 1;
                prop_assert!(!pair.account_id().verify(&message, &tampered));
            }

            #[test]
            fn any_account_id_round_trips_through_ss58(bytes in any::<[u8; 32]>()) {
                let id = AccountId(bytes);
                let text = id.to_ss58();
                prop_assert_eq!(text.len(), 48);
                prop_assert_eq!(AccountId::from_ss58(&text).unwrap(), id);
            }

            #[test]
            fn any_soft_path_derives_from_the_public_key_alone(
                seed in any::<[u8; 32]>(),
                name in "[a-z0-9]{1,40}",
            ) {
                // Soft derivation of the secret and of the public key agree.
                let pair = Keypair::from_seed(&seed);
                let junction = DeriveJunction::new(&name, false);
                let derived = pair.derive(&[junction]);
                let DeriveJunction::Soft(cc) = junction else { unreachable!() };
                let public = pair.inner.public.derived_key_simple(ChainCode(cc), []).0;
                prop_assert_eq!(derived.account_id().0, public.to_bytes());
            }
        }
    }
}
