//! Where a keyfile password comes from: given by the caller, an environment variable, or a prompt.
//!
//! The environment variable follows the bittensor SDK (`Keyfile.env_var_name`): for a keyfile at
//! `/root/.bittensor/wallets/w/coldkey` it is `BT_PW__ROOT__BITTENSOR_WALLETS_W_COLDKEY` (path
//! separators and dots become `_`, then upper case). Its value is the SDK's light obfuscation:
//! base64 of the password bytes XOR-ed with the variable name repeated. [`env_value`] builds it.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::WalletError;

/// How to obtain the password of an encrypted keyfile.
#[derive(Clone, Debug, Default)]
pub struct PasswordSource {
    /// A password given up front (from a flag, a secret store, a test).
    pub password: Option<SecretString>,
    /// Whether to read `BT_PW_<PATH>` (the SDK's variable) when no password is given.
    pub use_env: bool,
    /// Whether to ask on the terminal as a last resort.
    pub allow_prompt: bool,
}

impl PasswordSource {
    /// Environment variable, then the terminal: what an interactive CLI wants.
    pub fn interactive() -> Self {
        Self {
            password: None,
            use_env: true,
            allow_prompt: true,
        }
    }

    /// Environment variable only: for services that must never block on a prompt.
    pub fn non_interactive() -> Self {
        Self {
            password: None,
            use_env: true,
            allow_prompt: false,
        }
    }

    /// Exactly this password.
    pub fn given(password: SecretString) -> Self {
        Self {
            password: Some(password),
            use_env: false,
            allow_prompt: false,
        }
    }

    /// Resolves the password to unlock (or encrypt) the keyfile at `path`.
    pub(crate) fn resolve(&self, path: &Path, purpose: &str) -> Result<SecretString, WalletError> {
        if let Some(password) = &self.password {
            return Ok(password.clone());
        }
        if self.use_env {
            let name = env_var_name(path);
            if let Ok(value) = std::env::var(&name) {
                return decode_env_value(&name, &value);
            }
        }
        if self.allow_prompt {
            let prompt = format!("Enter password to {purpose} {}: ", path.display());
            // No terminal (a service, CI) reads as "no password available" below.
            if let Ok(typed) = rpassword::prompt_password(prompt)
                && !typed.is_empty()
            {
                return Ok(SecretString::from(typed));
            }
        }
        Err(WalletError::PasswordRequired {
            path: path.to_path_buf(),
            env_var: env_var_name(path),
        })
    }
}

/// The SDK's password variable for a keyfile path: `BT_PW_` + the path with `/` and `.` as `_`,
/// upper-cased.
pub fn env_var_name(path: &Path) -> String {
    let flat = path
        .to_string_lossy()
        .replace([std::path::MAIN_SEPARATOR, '.'], "_");
    format!("BT_PW_{}", flat.to_uppercase())
}

/// The value to put in [`env_var_name`] so the SDK and this crate read `password` from it.
pub fn env_value(env_var: &str, password: &SecretString) -> String {
    let xored = Zeroizing::new(xor_with_name(password.expose_secret().as_bytes(), env_var));
    STANDARD.encode(xored.as_slice())
}

fn decode_env_value(env_var: &str, value: &str) -> Result<SecretString, WalletError> {
    let bad = || WalletError::BadPasswordEnv {
        env_var: env_var.to_owned(),
    };
    let raw = Zeroizing::new(STANDARD.decode(value.trim()).map_err(|_| bad())?);
    let plain = Zeroizing::new(xor_with_name(&raw, env_var));
    let text = std::str::from_utf8(&plain).map_err(|_| bad())?;
    Ok(SecretString::from(text.to_owned()))
}

fn xor_with_name(data: &[u8], env_var: &str) -> Vec<u8> {
    let key = env_var.as_bytes();
    data.iter()
        .zip(key.iter().cycle())
        .map(|(byte, k)| byte ^ k)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_name_follows_the_sdk() {
        let path = Path::new("/root/.bittensor/wallets/w1/coldkey");
        assert_eq!(
            env_var_name(path),
            "BT_PW__ROOT__BITTENSOR_WALLETS_W1_COLDKEY"
        );
    }

    #[test]
    fn env_values_round_trip_and_match_the_sdk_obfuscation() {
        // base64(b"hunter2" XOR b"BT_PW_TEST"), as the SDK's save_password_to_environment writes.
        let value = env_value("BT_PW_TEST", &SecretString::from("hunter2"));
        assert_eq!(value, "KiExJDItZg==");
        let back = decode_env_value("BT_PW_TEST", &value).unwrap();
        assert_eq!(back.expose_secret(), "hunter2");
    }

    #[test]
    fn a_plain_text_env_value_is_rejected_without_echoing_it() {
        let err = decode_env_value("BT_PW_X", "not base64 !!").unwrap_err();
        assert!(!err.to_string().contains("not base64"));
    }

    #[test]
    fn without_password_env_or_prompt_the_error_names_the_variable() {
        let source = PasswordSource {
            password: None,
            use_env: false,
            allow_prompt: false,
        };
        let err = source
            .resolve(Path::new("/nowhere/coldkey"), "unlock key")
            .unwrap_err();
        assert!(err.to_string().contains("BT_PW__NOWHERE_COLDKEY"), "{err}");
    }
}
