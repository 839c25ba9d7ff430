//! The bittensor wallet layout and keyfiles (plain and `$NACL`-encrypted).
//!
//! ```text
//! <path>/<name>/coldkey              secret keyfile, normally encrypted
//! <path>/<name>/coldkeypub.txt       public keyfile
//! <path>/<name>/hotkeys/<hotkey>     secret keyfile, normally plain
//! <path>/<name>/hotkeys/<hotkey>pub.txt
//! ```
//! A wallet made by `btcli` or the bittensor SDK loads unchanged, and the SDK loads ours.
//!
//! | submodule | what |
//! |---|---|
//! | [`keyfile`] | keyfile JSON, reading, writing with mode 0600 |
//! | [`crypto`] | `$NACL` encryption (Argon2i + XSalsa20-Poly1305) |
//! | [`password`] | password from the caller, `BT_PW_<PATH>` or a prompt |

pub mod crypto;
pub mod keyfile;
pub mod password;

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use crate::keys::{AccountId, Keypair};
pub use crypto::CryptoError;
pub use keyfile::{KeyfileError, KeyfileKey};
pub use password::PasswordSource;

/// Default wallet folder, before `~` expansion.
pub const DEFAULT_WALLET_PATH: &str = "~/.bittensor/wallets";
/// Default wallet and hotkey name.
pub const DEFAULT_NAME: &str = "default";

/// Why a wallet operation failed. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The keyfile does not exist.
    #[error("keyfile {path} does not exist")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// The keyfile could not be read.
    #[error("cannot read keyfile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The keyfile (or its folder) could not be written.
    #[error("cannot write keyfile {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Refused to replace an existing keyfile.
    #[error(
        "keyfile {path} already exists; refusing to overwrite it (ask for overwrite explicitly)"
    )]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The keyfile content is not a usable key.
    #[error("keyfile {path} {source}")]
    Keyfile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: KeyfileError,
    },
    /// The keyfile holds only a public key where a secret key is needed.
    #[error("keyfile {path} holds only a public key, a secret key is needed")]
    PublicOnly {
        /// The file.
        path: PathBuf,
    },
    /// Decrypting failed (most often: wrong password).
    #[error("cannot decrypt keyfile {path}: {source}")]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CryptoError,
    },
    /// Encrypting failed.
    #[error("cannot encrypt keyfile {path}: {source}")]
    Encrypt {
        /// The file.
        path: PathBuf,
        /// Why.
        source: CryptoError,
    },
    /// The keyfile uses an old encryption this crate does not read.
    #[error("keyfile {path} uses legacy {scheme} encryption; re-encrypt it with a current btcli")]
    LegacyEncryption {
        /// The file.
        path: PathBuf,
        /// The scheme found.
        scheme: &'static str,
    },
    /// The keyfile is encrypted and no password was available.
    #[error(
        "keyfile {path} is encrypted: a password is needed (terminal prompt, or the {env_var} variable as the bittensor SDK sets it)"
    )]
    PasswordRequired {
        /// The file.
        path: PathBuf,
        /// The environment variable that would have supplied it.
        env_var: String,
    },
    /// The password variable is set but is not in the SDK's format.
    #[error(
        "environment variable {env_var} is not a password in the bittensor SDK format (base64 of the password XOR the variable name)"
    )]
    BadPasswordEnv {
        /// The variable.
        env_var: String,
    },
    /// A wallet or hotkey name that is not a plain file name.
    #[error(
        "invalid {kind} name {name:?}: it must be a plain, non-empty file name (no `/`, not `.` or `..`)"
    )]
    InvalidName {
        /// "wallet" or "hotkey".
        kind: &'static str,
        /// The rejected name.
        name: String,
    },
    /// A mnemonic or key given to regenerate a key is invalid.
    #[error("{source}")]
    Key {
        /// Why it was rejected.
        #[from]
        source: crate::keys::KeyError,
    },
}

impl WalletError {
    /// The keyfile this error is about, when it concerns one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::NotFound { path }
            | Self::Read { path, .. }
            | Self::Write { path, .. }
            | Self::AlreadyExists { path }
            | Self::Keyfile { path, .. }
            | Self::PublicOnly { path }
            | Self::Decrypt { path, .. }
            | Self::Encrypt { path, .. }
            | Self::LegacyEncryption { path, .. }
            | Self::PasswordRequired { path, .. } => Some(path),
            Self::BadPasswordEnv { .. } | Self::Key { .. } | Self::InvalidName { .. } => None,
        }
    }

    /// Whether this is a failed decryption because of a wrong password.
    pub fn is_wrong_password(&self) -> bool {
        matches!(
            self,
            Self::Decrypt {
                source: CryptoError::WrongPassword,
                ..
            }
        )
    }
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_tilde(path: &Path) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path.to_path_buf();
    };
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(rest),
        None => path.to_path_buf(),
    }
}

/// How a secret keyfile is written.
#[derive(Clone, Copy, Debug)]
pub enum Protection<'a> {
    /// Plain JSON (the usual choice for hotkeys).
    Plain,
    /// `$NACL`-encrypted with this password (the usual choice for coldkeys).
    Encrypted(&'a SecretString),
}

/// A named wallet: one coldkey and any number of hotkeys under `<path>/<name>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wallet {
    /// Folder holding all wallets (`~` already expanded).
    pub path: PathBuf,
    /// Wallet name: the folder under [`Wallet::path`].
    pub name: String,
    /// Hotkey name: the file under `hotkeys/`.
    pub hotkey: String,
}

impl Wallet {
    /// A wallet handle; nothing is read until a key is loaded. A leading `~` in `path` is expanded.
    pub fn new(path: impl AsRef<Path>, name: impl Into<String>, hotkey: impl Into<String>) -> Self {
        Self {
            path: expand_tilde(path.as_ref()),
            name: name.into(),
            hotkey: hotkey.into(),
        }
    }

    /// Checks that the wallet and hotkey names are plain file names, so no keyfile lands
    /// outside `<path>/<name>/`. Every load and write calls it.
    pub fn check_names(&self) -> Result<(), WalletError> {
        for (kind, name) in [("wallet", &self.name), ("hotkey", &self.hotkey)] {
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains(['/', '\\', '\0']);
            if !plain {
                return Err(WalletError::InvalidName {
                    kind,
                    name: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// `<path>/<name>`.
    pub fn dir(&self) -> PathBuf {
        self.path.join(&self.name)
    }

    /// `<path>/<name>/hotkeys/<hotkey>`.
    pub fn hotkey_path(&self) -> PathBuf {
        self.dir().join("hotkeys").join(&self.hotkey)
    }

    /// `<path>/<name>/hotkeys/<hotkey>pub.txt`.
    pub fn hotkeypub_path(&self) -> PathBuf {
        self.dir()
            .join("hotkeys")
            .join(format!("{}pub.txt", self.hotkey))
    }

    /// `<path>/<name>/coldkey`.
    pub fn coldkey_path(&self) -> PathBuf {
        self.dir().join("coldkey")
    }

    /// `<path>/<name>/coldkeypub.txt`.
    pub fn coldkeypub_path(&self) -> PathBuf {
        self.dir().join("coldkeypub.txt")
    }

    /// Loads the hotkey pair; an encrypted hotkey gets its password from `password`.
    pub fn load_hotkey(&self, password: &PasswordSource) -> Result<Keypair, WalletError> {
        self.check_names()?;
        load_pair(&self.hotkey_path(), password)
    }

    /// The hotkey's public key: from `<hotkey>pub.txt` when present, else from the hotkey file.
    pub fn hotkey_account(&self) -> Result<AccountId, WalletError> {
        self.check_names()?;
        load_public(&self.hotkeypub_path(), &self.hotkey_path())
    }

    /// Loads the coldkey pair; an encrypted coldkey gets its password from `password`.
    pub fn load_coldkey(&self, password: &PasswordSource) -> Result<Keypair, WalletError> {
        self.check_names()?;
        load_pair(&self.coldkey_path(), password)
    }

    /// The coldkey's public key: from `coldkeypub.txt` when present, else from the coldkey file.
    pub fn coldkey_account(&self) -> Result<AccountId, WalletError> {
        self.check_names()?;
        load_public(&self.coldkeypub_path(), &self.coldkey_path())
    }

    /// Creates a new plain hotkey from a fresh 12-word mnemonic; returns it and the mnemonic.
    pub fn create_hotkey(&self, overwrite: bool) -> Result<(Keypair, String), WalletError> {
        let (pair, phrase) = Keypair::generate();
        self.set_hotkey(&pair, Protection::Plain, overwrite)?;
        Ok((pair, phrase))
    }

    /// Re-creates the hotkey from its mnemonic (plain keyfile).
    pub fn regenerate_hotkey(
        &self,
        mnemonic: &str,
        overwrite: bool,
    ) -> Result<Keypair, WalletError> {
        let pair = Keypair::from_mnemonic(mnemonic, None)?;
        self.set_hotkey(&pair, Protection::Plain, overwrite)?;
        Ok(pair)
    }

    /// Writes the hotkey file and `<hotkey>pub.txt`.
    pub fn set_hotkey(
        &self,
        pair: &Keypair,
        protection: Protection<'_>,
        overwrite: bool,
    ) -> Result<(), WalletError> {
        self.check_names()?;
        write_pair(
            &self.hotkey_path(),
            &self.hotkeypub_path(),
            pair,
            protection,
            overwrite,
        )
    }

    /// Creates a new coldkey from a fresh 12-word mnemonic; returns it and the mnemonic.
    pub fn create_coldkey(
        &self,
        protection: Protection<'_>,
        overwrite: bool,
    ) -> Result<(Keypair, String), WalletError> {
        let (pair, phrase) = Keypair::generate();
        self.set_coldkey(&pair, protection, overwrite)?;
        Ok((pair, phrase))
    }

    /// Writes the coldkey file and `coldkeypub.txt`.
    pub fn set_coldkey(
        &self,
        pair: &Keypair,
        protection: Protection<'_>,
        overwrite: bool,
    ) -> Result<(), WalletError> {
        self.check_names()?;
        write_pair(
            &self.coldkey_path(),
            &self.coldkeypub_path(),
            pair,
            protection,
            overwrite,
        )
    }
}

fn load_pair(path: &Path, password: &PasswordSource) -> Result<Keypair, WalletError> {
    match keyfile::read_keyfile(path, password)? {
        KeyfileKey::Pair(pair) => Ok(*pair),
        KeyfileKey::Public(_) => Err(WalletError::PublicOnly {
            path: path.to_path_buf(),
        }),
    }
}

fn load_public(pub_path: &Path, secret_path: &Path) -> Result<AccountId, WalletError> {
    if pub_path.exists() {
        return keyfile::read_keyfile(pub_path, &PasswordSource::default()).map(|k| k.account_id());
    }
    keyfile::read_keyfile(secret_path, &PasswordSource::non_interactive()).map(|k| k.account_id())
}

fn write_pair(
    path: &Path,
    pub_path: &Path,
    pair: &Keypair,
    protection: Protection<'_>,
    overwrite: bool,
) -> Result<(), WalletError> {
    if !overwrite {
        // Check both first so a refusal never leaves a half-written pair behind.
        for existing in [path, pub_path] {
            if existing.exists() {
                return Err(WalletError::AlreadyExists {
                    path: existing.to_path_buf(),
                });
            }
        }
    }
    let json = keyfile::keypair_to_json(pair);
    let data = match protection {
        Protection::Plain => json.to_vec(),
        Protection::Encrypted(password) => {
            crypto::encrypt(&json, password).map_err(|source| WalletError::Encrypt {
                path: path.to_path_buf(),
                source,
            })?
        }
    };
    let data = zeroize::Zeroizing::new(data);
    keyfile::write_keyfile(path, &data, overwrite)?;
    keyfile::write_keyfile(
        pub_path,
        &keyfile::public_to_json(&pair.account_id()),
        overwrite,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_bittensor_layout() {
        let wallet = Wallet::new("/w", "cold", "hot");
        assert_eq!(wallet.hotkey_path(), Path::new("/w/cold/hotkeys/hot"));
        assert_eq!(
            wallet.hotkeypub_path(),
            Path::new("/w/cold/hotkeys/hotpub.txt")
        );
        assert_eq!(wallet.coldkey_path(), Path::new("/w/cold/coldkey"));
        assert_eq!(
            wallet.coldkeypub_path(),
            Path::new("/w/cold/coldkeypub.txt")
        );
    }

    #[test]
    fn names_that_would_escape_the_wallet_folder_are_rejected() {
        for (name, hotkey) in [("..", "h"), ("w", "../h"), ("", "h"), ("w", ".")] {
            let wallet = Wallet::new("/w", name, hotkey);
            assert!(matches!(
                wallet.load_hotkey(&PasswordSource::default()),
                Err(WalletError::InvalidName { .. })
            ));
            assert!(matches!(
                wallet.create_hotkey(false),
                Err(WalletError::InvalidName { .. })
            ));
        }
        assert!(
            Wallet::new("/w", "my-wallet", "miner_1.b")
                .check_names()
                .is_ok()
        );
    }

    #[test]
    fn a_leading_tilde_is_the_home_folder() {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap();
        assert_eq!(
            expand_tilde(Path::new("~/.bittensor")),
            home.join(".bittensor")
        );
        assert_eq!(expand_tilde(Path::new("/abs/~x")), Path::new("/abs/~x"));
    }

    #[test]
    fn a_created_hotkey_loads_back_with_its_mnemonic() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path(), "w", "h");
        let (pair, phrase) = wallet.create_hotkey(false).unwrap();
        let loaded = wallet.load_hotkey(&PasswordSource::default()).unwrap();
        assert_eq!(loaded.account_id(), pair.account_id());
        assert_eq!(loaded.mnemonic(), Some(phrase.as_str()));
        assert_eq!(wallet.hotkey_account().unwrap(), pair.account_id());
        assert!(matches!(
            wallet.create_hotkey(false),
            Err(WalletError::AlreadyExists { .. })
        ));
        let again = wallet.regenerate_hotkey(&phrase, true).unwrap();
        assert_eq!(again.account_id(), pair.account_id());
    }

    #[test]
    fn a_public_only_file_is_not_a_secret_key() {
        let dir = tempfile::tempdir().unwrap();
        let wallet = Wallet::new(dir.path(), "w", "h");
        let id = Keypair::from_uri("//Alice").unwrap().account_id();
        keyfile::write_keyfile(&wallet.hotkey_path(), &keyfile::public_to_json(&id), false)
            .unwrap();
        assert!(matches!(
            wallet.load_hotkey(&PasswordSource::default()),
            Err(WalletError::PublicOnly { .. })
        ));
        assert_eq!(wallet.hotkey_account().unwrap(), id);
    }
}
