//! Keyfiles: the SDK's JSON form, reading (decrypting when needed) and writing with mode 0600.
//!
//! JSON fields, as bittensor 11.3.0 writes them: `accountId` and `publicKey` (`0x` + hex public
//! key), `ss58Address`, `cryptoType` (1 = sr25519), and for secret keyfiles `privateKey` (`0x` + the
//! 64-byte schnorrkel secret key), `secretSeed` (`0x` + 32-byte mini secret) and `secretPhrase`
//! (mnemonic), each only when known. Loading prefers `secretPhrase`, then `secretSeed`, then
//! `privateKey`; a file with none of them is public-only.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::WalletError;
use super::crypto::{self, Encryption};
use super::password::PasswordSource;
use crate::keys::{AccountId, KeyError, Keypair, decode_hex_array};

/// `cryptoType` of sr25519 keys in the SDK (`CRYPTO_SR25519`).
pub const CRYPTO_SR25519: u8 = 1;

/// What a keyfile holds.
#[derive(Clone, Debug)]
pub enum KeyfileKey {
    /// A full key pair (hotkey or coldkey file).
    Pair(Box<Keypair>),
    /// Only the public key (`…pub.txt`, or a secret-less file).
    Public(AccountId),
}

impl KeyfileKey {
    /// The public key either way.
    pub fn account_id(&self) -> AccountId {
        match self {
            Self::Pair(pair) => pair.account_id(),
            Self::Public(id) => *id,
        }
    }
}

/// Why keyfile bytes could not be turned into a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyfileError {
    /// Not UTF-8 JSON of the expected shape.
    #[error("not a keyfile JSON object: {reason}")]
    Malformed {
        /// What the JSON parser reported.
        reason: String,
    },
    /// A field holds an invalid key, seed, phrase or address.
    #[error("field {field}: {source}")]
    BadField {
        /// The JSON field name.
        field: &'static str,
        /// Why its value was rejected.
        source: KeyError,
    },
    /// The key is not sr25519.
    #[error("crypto type {crypto_type} is not supported (only sr25519 = 1)")]
    UnsupportedCryptoType {
        /// The `cryptoType` found (0 = ed25519 in the SDK).
        crypto_type: u64,
    },
    /// No secret and no public key at all.
    #[error("holds no key (no secretPhrase, secretSeed, privateKey, publicKey or ss58Address)")]
    Empty,
    /// The stored public key or address is not the one of the stored secret.
    #[error("its public key or address does not match its secret ({expected} vs {found})")]
    Inconsistent {
        /// Address of the secret.
        expected: AccountId,
        /// Address written in the file.
        found: AccountId,
    },
}

/// The JSON object as stored; secret fields are wiped on drop.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct KeyfileJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_phrase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ss58_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    crypto_type: Option<serde_json::Value>,
}

impl Drop for KeyfileJson {
    fn drop(&mut self) {
        self.private_key.zeroize();
        self.secret_phrase.zeroize();
        self.secret_seed.zeroize();
    }
}

fn public_fields(id: &AccountId) -> KeyfileJson {
    let mut json = KeyfileJson::default();
    json.account_id = Some(id.to_hex());
    json.public_key = Some(id.to_hex());
    json.ss58_address = Some(id.to_ss58());
    json.crypto_type = Some(serde_json::Value::from(CRYPTO_SR25519));
    json
}

fn to_json_bytes(json: &KeyfileJson) -> Zeroizing<Vec<u8>> {
    // Serializing a struct of strings into a Vec cannot fail.
    Zeroizing::new(serde_json::to_vec(json).unwrap_or_default())
}

/// The secret keyfile JSON of a key pair, as the SDK writes it.
pub fn keypair_to_json(pair: &Keypair) -> Zeroizing<Vec<u8>> {
    let mut json = public_fields(&pair.account_id());
    json.private_key = Some(format!("0x{}", hex::encode(*pair.to_secret_key_bytes())));
    json.secret_seed = pair.seed().map(|seed| format!("0x{}", hex::encode(seed)));
    json.secret_phrase = pair.mnemonic().map(str::to_owned);
    to_json_bytes(&json)
}

/// The public keyfile JSON (`…pub.txt`) of an account.
pub fn public_to_json(id: &AccountId) -> Vec<u8> {
    to_json_bytes(&public_fields(id)).to_vec()
}

/// Parses plain (decrypted) keyfile JSON.
pub fn parse_json(data: &[u8]) -> Result<KeyfileKey, KeyfileError> {
    let json: KeyfileJson = serde_json::from_slice(data).map_err(|e| KeyfileError::Malformed {
        // serde_json's messages name a position, never the content.
        reason: e.to_string(),
    })?;
    if let Some(value) = &json.crypto_type {
        let crypto_type = value.as_u64().ok_or_else(|| KeyfileError::Malformed {
            reason: "cryptoType is not a number".to_owned(),
        })?;
        if crypto_type != u64::from(CRYPTO_SR25519) {
            return Err(KeyfileError::UnsupportedCryptoType { crypto_type });
        }
    }
    let bad = |field: &'static str| move |source| KeyfileError::BadField { field, source };
    let pair = if let Some(phrase) = &json.secret_phrase {
        Some(Keypair::from_mnemonic(phrase, None).map_err(bad("secretPhrase"))?)
    } else if let Some(seed) = &json.secret_seed {
        let seed =
            Zeroizing::new(decode_hex_array::<32>("secretSeed", seed).map_err(bad("secretSeed"))?);
        Some(Keypair::from_seed(&seed))
    } else if let Some(private) = &json.private_key {
        Some(private_key_to_pair(private).map_err(bad("privateKey"))?)
    } else {
        None
    };
    let stated = stated_account(&json)?;
    match (pair, stated) {
        (Some(pair), Some(found)) if pair.account_id() != found => {
            Err(KeyfileError::Inconsistent {
                expected: pair.account_id(),
                found,
            })
        }
        (Some(pair), _) => Ok(KeyfileKey::Pair(Box::new(pair))),
        (None, Some(id)) => Ok(KeyfileKey::Public(id)),
        (None, None) => Err(KeyfileError::Empty),
    }
}

/// `privateKey`: 64 bytes are a schnorrkel secret key, 32 bytes a mini secret (sp-core's
/// `from_seed_slice`).
fn private_key_to_pair(hex_key: &str) -> Result<Keypair, KeyError> {
    let digits = hex_key.strip_prefix("0x").unwrap_or(hex_key);
    if digits.len() == 64 {
        let seed = Zeroizing::new(decode_hex_array::<32>("privateKey", digits)?);
        Ok(Keypair::from_seed(&seed))
    } else {
        let secret = Zeroizing::new(decode_hex_array::<64>("privateKey", digits)?);
        Keypair::from_secret_key_bytes(&secret)
    }
}

/// The public key the file states, from `publicKey`, `accountId` or `ss58Address`, which must
/// agree with each other.
fn stated_account(json: &KeyfileJson) -> Result<Option<AccountId>, KeyfileError> {
    let mut stated: Option<AccountId> = None;
    let candidates = [
        ("publicKey", json.public_key.as_deref(), false),
        ("accountId", json.account_id.as_deref(), false),
        ("ss58Address", json.ss58_address.as_deref(), true),
    ];
    for (field, value, is_ss58) in candidates {
        let Some(value) = value else { continue };
        let id = if is_ss58 {
            AccountId::from_ss58(value)
        } else {
            AccountId::from_hex(value)
        }
        .map_err(|source| KeyfileError::BadField { field, source })?;
        match stated {
            Some(previous) if previous != id => {
                return Err(KeyfileError::Inconsistent {
                    expected: previous,
                    found: id,
                });
            }
            _ => stated = Some(id),
        }
    }
    Ok(stated)
}

/// Reads a keyfile, decrypting `$NACL` files with a password from `password`.
pub fn read_keyfile(path: &Path, password: &PasswordSource) -> Result<KeyfileKey, WalletError> {
    let data = Zeroizing::new(fs::read(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => WalletError::NotFound {
            path: path.to_path_buf(),
        },
        _ => WalletError::Read {
            path: path.to_path_buf(),
            source,
        },
    })?);
    let plain = match Encryption::detect(&data) {
        Encryption::None => data,
        Encryption::Nacl => {
            let password = password.resolve(path, "unlock key")?;
            crypto::decrypt(&data, &password).map_err(|source| WalletError::Decrypt {
                path: path.to_path_buf(),
                source,
            })?
        }
        Encryption::AnsibleVault => {
            return Err(WalletError::LegacyEncryption {
                path: path.to_path_buf(),
                scheme: "Ansible Vault",
            });
        }
        Encryption::Fernet => {
            return Err(WalletError::LegacyEncryption {
                path: path.to_path_buf(),
                scheme: "Fernet",
            });
        }
    };
    parse_json(&plain).map_err(|source| WalletError::Keyfile {
        path: path.to_path_buf(),
        source,
    })
}

/// Whether the file at `path` is an encrypted keyfile (false when it is missing or unreadable).
pub fn is_encrypted(path: &Path) -> bool {
    let mut head = [0u8; 16];
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    let read = io::Read::read(&mut file, &mut head).unwrap_or(0);
    Encryption::detect(&head[..read]) != Encryption::None
}

/// Writes keyfile bytes: parent directories are created (mode 0700), the file is created with
/// mode 0600 under a temporary name, synced, then moved into place, so a crash never leaves a
/// half-written keyfile. Without `overwrite`, an existing file is an error and stays untouched.
pub fn write_keyfile(path: &Path, data: &[u8], overwrite: bool) -> Result<(), WalletError> {
    let write_err = |source| WalletError::Write {
        path: path.to_path_buf(),
        source,
    };
    if !overwrite && path.exists() {
        return Err(WalletError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(write_err)?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        if overwrite {
            fs::rename(&tmp, path)
        } else {
            // A hard link fails if `path` appeared meanwhile: no silent overwrite.
            fs::hard_link(&tmp, path).and_then(|()| fs::remove_file(&tmp))
        }
    })();
    if let Err(source) = result {
        // Best effort: the temporary file may not exist if opening failed.
        let _ = fs::remove_file(&tmp);
        return Err(if source.kind() == io::ErrorKind::AlreadyExists {
            WalletError::AlreadyExists {
                path: path.to_path_buf(),
            }
        } else {
            write_err(source)
        });
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(
        ".tmp.{}.{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const MINER1: &str = r#"{"accountId":"0x58e12601cb28e1f184d065e818aa7a1c0e975b86b78286654fb5664c6f31d368","ss58Address":"5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM","secretPhrase":"truly fashion tired review pond ask upon burden gauge unaware shed rent","cryptoType":1,"publicKey":"0x58e12601cb28e1f184d065e818aa7a1c0e975b86b78286654fb5664c6f31d368","privateKey":"0xd3cf1a701dbf2bd4433f33003b67cbd56e6e9c74681e0183bec6be0baafe0d0f73ffd61eb88ace794e740492843316a71596bac556797f9dde4bc8b83671d03a","secretSeed":"0x415cc7d0ef6193e6986860f0ef0e833a23dc7d1b3ed83d19b20ffd90d86b857a"}"#;
    const MINER1_SS58: &str = "5E5ExHmtNK4oWtmYJyJA2HC2KD3ueHTAq2oEAxZ72jsT9cPM";

    fn without(field: &str) -> String {
        let mut value: serde_json::Value = serde_json::from_str(MINER1).unwrap();
        value.as_object_mut().unwrap().remove(field);
        value.to_string()
    }

    #[test]
    fn each_secret_field_alone_loads_the_same_key() {
        for keep in ["secretPhrase", "secretSeed", "privateKey"] {
            let mut value: serde_json::Value = serde_json::from_str(MINER1).unwrap();
            let object = value.as_object_mut().unwrap();
            for drop in ["secretPhrase", "secretSeed", "privateKey"] {
                if drop != keep {
                    object.remove(drop);
                }
            }
            let KeyfileKey::Pair(pair) = parse_json(value.to_string().as_bytes()).unwrap() else {
                panic!("{keep}: expected a key pair");
            };
            assert_eq!(pair.account_id().to_ss58(), MINER1_SS58, "{keep}");
        }
    }

    #[test]
    fn the_phrase_wins_over_a_conflicting_seed() {
        let mut value: serde_json::Value = serde_json::from_str(MINER1).unwrap();
        value["secretSeed"] = serde_json::Value::from(format!("0x{}", "11".repeat(32)));
        let key = parse_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(key.account_id().to_ss58(), MINER1_SS58);
    }

    #[test]
    fn the_sdk_json_round_trips_field_for_field() {
        let KeyfileKey::Pair(pair) = parse_json(MINER1.as_bytes()).unwrap() else {
            panic!("expected a key pair");
        };
        let ours: serde_json::Value = serde_json::from_slice(&keypair_to_json(&pair)).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(MINER1).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn public_files_load_as_account_ids() {
        let id = AccountId::from_ss58(MINER1_SS58).unwrap();
        let json = public_to_json(&id);
        assert!(matches!(parse_json(&json).unwrap(), KeyfileKey::Public(found) if found == id));
        let only_address = format!(r#"{{"ss58Address":"{MINER1_SS58}"}}"#);
        assert_eq!(
            parse_json(only_address.as_bytes()).unwrap().account_id(),
            id
        );
    }

    #[test]
    fn rejects_mismatched_ed25519_empty_and_garbage_files() {
        let other = Keypair::from_uri("//Alice").unwrap().account_id();
        let mut value: serde_json::Value = serde_json::from_str(&without("ss58Address")).unwrap();
        value["publicKey"] = serde_json::Value::from(other.to_hex());
        value["accountId"] = serde_json::Value::from(other.to_hex());
        assert!(matches!(
            parse_json(value.to_string().as_bytes()),
            Err(KeyfileError::Inconsistent { .. })
        ));
        assert!(matches!(
            parse_json(br#"{"cryptoType":0,"ss58Address":"x"}"#),
            Err(KeyfileError::UnsupportedCryptoType { crypto_type: 0 })
        ));
        assert!(matches!(parse_json(b"{}"), Err(KeyfileError::Empty)));
        assert!(matches!(
            parse_json(b"\xff"),
            Err(KeyfileError::Malformed { .. })
        ));
    }

    #[test]
    fn errors_never_echo_the_secret_phrase() {
        let json = r#"{"secretPhrase":"truly fashion tired review pond ask upon burden gauge unaware shed zoo"}"#;
        let err = parse_json(json.as_bytes()).unwrap_err();
        assert!(!err.to_string().contains("truly"), "{err}");
    }

    #[test]
    fn new_keyfiles_are_0600_in_new_directories_and_never_silently_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w/hotkeys/h");
        write_keyfile(&path, b"one", false).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let parent_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(parent_mode & 0o777, 0o700);
        assert!(matches!(
            write_keyfile(&path, b"two", false),
            Err(WalletError::AlreadyExists { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_keyfile(&path, b"three", true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no temp files left"
        );
    }

    #[test]
    fn reading_a_missing_file_names_it() {
        let err =
            read_keyfile(Path::new("/nonexistent/key"), &PasswordSource::default()).unwrap_err();
        assert!(matches!(err, WalletError::NotFound { .. }));
        assert!(err.to_string().contains("/nonexistent/key"));
    }
}
