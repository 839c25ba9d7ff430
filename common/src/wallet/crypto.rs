//! `$NACL` keyfile encryption, byte-compatible with btwallet and the bittensor SDK.
//!
//! `b"$NACL" ‖ nonce (24) ‖ secretbox(plaintext)` where secretbox is XSalsa20-Poly1305 with the
//! tag in front (NaCl's combined form), and the key is libsodium's
//! `crypto_pwhash_argon2i` (Argon2i v1.3, `OPSLIMIT_SENSITIVE` = 8 passes,
//! `MEMLIMIT_SENSITIVE` = 512 MiB, one lane) of the password with btwallet's fixed salt.
//! Deriving the key takes about a second and half a gigabyte of memory, by design.

use argon2::{Algorithm, Argon2, Params, Version};
use crypto_secretbox::aead::{Aead, AeadCore, KeyInit, OsRng};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

/// Prefix of NaCl-encrypted keyfiles.
pub const NACL_PREFIX: &[u8] = b"$NACL";
/// Prefix of legacy Ansible-vault keyfiles (read by old SDKs only).
const ANSIBLE_PREFIX: &[u8] = b"$ANSIBLE_VAULT";
/// Prefix of legacy Fernet keyfiles.
const FERNET_PREFIX: &[u8] = b"gAAAAA";

/// btwallet's `NACL_SALT` (`src/keyfile.rs`).
const NACL_SALT: &[u8; 16] = b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1";
/// libsodium `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
const OPSLIMIT_SENSITIVE: u32 = 8;
/// libsodium `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE` (512 MiB), in KiB as argon2 counts.
const MEMLIMIT_SENSITIVE_KIB: u32 = 512 * 1024;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why sealing or opening a `$NACL` keyfile failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The password is wrong (or the file was altered): the authentication tag does not match.
    #[error("wrong password (or the keyfile was altered)")]
    WrongPassword,
    /// The data does not start with `$NACL`.
    #[error("not a $NACL keyfile")]
    NotNacl,
    /// Too short to hold a nonce and a tag.
    #[error("$NACL keyfile is truncated ({length} bytes)")]
    Truncated {
        /// Total length of the data.
        length: usize,
    },
    /// Key derivation or the cipher failed.
    #[error("{reason}")]
    Internal {
        /// What failed.
        reason: String,
    },
}

/// How a keyfile's bytes are protected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encryption {
    /// Plain JSON.
    None,
    /// `$NACL` (current SDKs).
    Nacl,
    /// `$ANSIBLE_VAULT` (very old SDKs; not supported here).
    AnsibleVault,
    /// Fernet `gAAAAA…` (old SDKs; not supported here).
    Fernet,
}

impl Encryption {
    /// Detects the scheme from the first bytes of a keyfile.
    pub fn detect(data: &[u8]) -> Self {
        if data.starts_with(NACL_PREFIX) {
            Self::Nacl
        } else if data.starts_with(ANSIBLE_PREFIX) {
            Self::AnsibleVault
        } else if data.starts_with(FERNET_PREFIX) {
            Self::Fernet
        } else {
            Self::None
        }
    }
}

fn derive_key(password: &SecretString) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let params =
        Params::new(MEMLIMIT_SENSITIVE_KIB, OPSLIMIT_SENSITIVE, 1, Some(32)).map_err(|e| {
            CryptoError::Internal {
                reason: format!("argon2 parameters: {e}"),
            }
        })?;
    let argon = Argon2::new(Algorithm::Argon2i, Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(
            password.expose_secret().as_bytes(),
            NACL_SALT,
            key.as_mut_slice(),
        )
        .map_err(|e| CryptoError::Internal {
            reason: format!("argon2: {e}"),
        })?;
    Ok(key)
}

/// Encrypts keyfile bytes into the `$NACL` form with a fresh random nonce.
pub fn encrypt(plaintext: &[u8], password: &SecretString) -> Result<Vec<u8>, CryptoError> {
    let key = derive_key(password)?;
    let cipher = XSalsa20Poly1305::new(key.as_slice().into());
    let nonce = XSalsa20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, plaintext)
        .map_err(|_| CryptoError::Internal {
            reason: "secretbox encryption failed".to_owned(),
        })?;
    let mut out = Vec::with_capacity(NACL_PREFIX.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(NACL_PREFIX);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts `$NACL` keyfile bytes. A wrong password is [`CryptoError::WrongPassword`].
pub fn decrypt(data: &[u8], password: &SecretString) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let body = data.strip_prefix(NACL_PREFIX).ok_or(CryptoError::NotNacl)?;
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Truncated { length: data.len() });
    }
    let (nonce, sealed) = body.split_at(NONCE_LEN);
    let key = derive_key(password)?;
    let cipher = XSalsa20Poly1305::new(key.as_slice().into());
    cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::WrongPassword)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `encrypt_keyfile_data(b'{"a":1}', 'pw')` from the bittensor 11.3.0 SDK.
    const SDK_SEALED: &str = "244e41434cc530ec9c36b456a5f5e18b0b4077ae435bb93171bb31e261081b3312ca33e19b26dadf1febde63c3f5346f9dd39ccd";

    #[test]
    fn decrypts_data_sealed_by_the_sdk_and_rejects_a_wrong_password() {
        let sealed = hex::decode(SDK_SEALED).unwrap();
        assert_eq!(Encryption::detect(&sealed), Encryption::Nacl);
        let plain = decrypt(&sealed, &SecretString::from("pw")).unwrap();
        assert_eq!(plain.as_slice(), br#"{"a":1}"#);
        assert!(matches!(
            decrypt(&sealed, &SecretString::from("pw2")),
            Err(CryptoError::WrongPassword)
        ));
    }

    #[test]
    fn encrypt_then_decrypt_round_trips() {
        let password = SecretString::from("correct horse");
        let sealed = encrypt(b"secret json", &password).unwrap();
        assert!(sealed.starts_with(NACL_PREFIX));
        assert_eq!(sealed.len(), 5 + 24 + 16 + 11);
        assert_eq!(
            decrypt(&sealed, &password).unwrap().as_slice(),
            b"secret json"
        );
    }

    #[test]
    fn detects_legacy_and_plain_keyfiles() {
        assert_eq!(
            Encryption::detect(b"$ANSIBLE_VAULT;1.1"),
            Encryption::AnsibleVault
        );
        assert_eq!(Encryption::detect(b"gAAAAABk"), Encryption::Fernet);
        assert_eq!(Encryption::detect(b"{\"accountId\":1}"), Encryption::None);
    }

    #[test]
    fn rejects_a_truncated_nacl_file() {
        assert!(matches!(
            decrypt(b"$NACLshort", &SecretString::from("pw")),
            Err(CryptoError::Truncated { length: 10 })
        ));
    }
}
