//! Substrate secret URIs (`//Alice`, `<mnemonic>//hard/soft///password`, `0x<seed>`), derivation
//! junctions and the substrate-bip39 mnemonic-to-seed rule, as `sp_core::Pair::from_string` does them.

use bip39::{Language, Mnemonic};
use blake2::Blake2b;
use blake2::digest::{Digest, consts::U32};
use parity_scale_codec::Encode;
use pbkdf2::pbkdf2_hmac;
use sha2::Sha512;
use zeroize::Zeroizing;

use super::KeyError;

/// Substrate's well-known development phrase; `//Alice` is this phrase with the junction `//Alice`.
pub const DEV_PHRASE: &str =
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk";

/// Length of a junction id (a schnorrkel chain code).
const JUNCTION_ID_LEN: usize = 32;

/// One step of a derivation path.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeriveJunction {
    /// `/name`: soft derivation; the public key can be derived from the parent public key.
    Soft([u8; JUNCTION_ID_LEN]),
    /// `//name`: hard derivation; needs the parent secret.
    Hard([u8; JUNCTION_ID_LEN]),
}

impl DeriveJunction {
    /// The junction for one path segment (without its slashes).
    ///
    /// A segment that parses as a `u64` is its 8 little-endian bytes; any other text is its SCALE
    /// encoding (compact length ‖ UTF-8). Ids up to 32 bytes are zero-padded, longer ones are
    /// replaced by their blake2b-256 hash.
    pub fn new(segment: &str, hard: bool) -> Self {
        let encoded = match segment.parse::<u64>() {
            Ok(n) => n.encode(),
            Err(_) => segment.encode(),
        };
        let mut id = [0u8; JUNCTION_ID_LEN];
        if encoded.len() > JUNCTION_ID_LEN {
            id.copy_from_slice(&Blake2b::<U32>::digest(&encoded));
        } else {
            id[..encoded.len()].copy_from_slice(&encoded);
        }
        if hard { Self::Hard(id) } else { Self::Soft(id) }
    }
}

/// Where the root secret of a URI comes from.
#[derive(PartialEq, Eq, Debug)]
pub(crate) enum Root<'a> {
    /// A BIP39 phrase (the dev phrase when the URI starts with `/`).
    Phrase(&'a str),
    /// `0x` followed by hex: a 32-byte mini secret.
    HexSeed(&'a str),
}

/// A parsed secret URI. Holds borrowed slices of the caller's string only.
#[derive(PartialEq, Eq, Debug)]
pub(crate) struct SecretUri<'a> {
    pub root: Root<'a>,
    pub junctions: Vec<DeriveJunction>,
    pub password: Option<&'a str>,
}

/// Splits a URI into its root, junctions and password.
///
/// Grammar (sp-core): `phrase? ("/" "/"? segment)* ("///" password)?` where a segment holds no `/`
/// and the phrase holds letters, digits, `_` and spaces (the regex `[\d\w ]+`). Error messages never repeat the input,
/// since it is secret.
pub(crate) fn parse(uri: &str) -> Result<SecretUri<'_>, KeyError> {
    let (rest, password) = match uri.find("///") {
        Some(i) => (&uri[..i], Some(&uri[i + 3..])),
        None => (uri, None),
    };
    let phrase_end = rest.find('/').unwrap_or(rest.len());
    let (phrase, mut path) = rest.split_at(phrase_end);
    if !phrase
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == ' ')
    {
        return Err(KeyError::InvalidUri {
            reason: "the phrase part may hold only letters, digits, `_` and spaces",
        });
    }
    let root = if phrase.is_empty() {
        if path.is_empty() && password.is_none() {
            return Err(KeyError::InvalidUri {
                reason: "the URI is empty",
            });
        }
        Root::Phrase(DEV_PHRASE)
    } else if let Some(hex) = phrase.strip_prefix("0x") {
        Root::HexSeed(hex)
    } else {
        Root::Phrase(phrase)
    };
    let mut junctions = Vec::new();
    while !path.is_empty() {
        // `path` starts with '/' here: it was cut at a '/' or after a segment.
        let (hard, after) = match path.strip_prefix("//") {
            Some(after) => (true, after),
            None => (false, &path[1..]),
        };
        let end = after.find('/').unwrap_or(after.len());
        let segment = &after[..end];
        if segment.is_empty() {
            return Err(KeyError::InvalidUri {
                reason: "a derivation junction is empty",
            });
        }
        junctions.push(DeriveJunction::new(segment, hard));
        path = &after[end..];
    }
    Ok(SecretUri {
        root,
        junctions,
        password,
    })
}

/// substrate-bip39: the 32-byte mini secret of a BIP39 English phrase and optional password.
///
/// `PBKDF2-HMAC-SHA512(entropy, "mnemonic" ‖ password, 2048)[..32]`, where `entropy` is the
/// phrase's BIP39 entropy (not the standard BIP39 seed).
pub(crate) fn mini_secret_from_phrase(
    phrase: &str,
    password: Option<&str>,
) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mnemonic =
        Mnemonic::parse_in(Language::English, phrase).map_err(|e| KeyError::InvalidMnemonic {
            reason: e.to_string(),
        })?;
    let entropy = Zeroizing::new(mnemonic.to_entropy());
    if !(16..=32).contains(&entropy.len()) || entropy.len() % 4 != 0 {
        return Err(KeyError::InvalidMnemonic {
            reason: format!("unsupported entropy length {} bytes", entropy.len()),
        });
    }
    let salt = Zeroizing::new(format!("mnemonic{}", password.unwrap_or("")));
    let mut seed = Zeroizing::new([0u8; 64]);
    pbkdf2_hmac::<Sha512>(&entropy, salt.as_bytes(), 2048, seed.as_mut_slice());
    let mut mini = Zeroizing::new([0u8; 32]);
    mini.copy_from_slice(&seed[..32]);
    Ok(mini)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soft(id: &[u8]) -> DeriveJunction {
        let mut cc = [0u8; 32];
        cc[..id.len()].copy_from_slice(id);
        DeriveJunction::Soft(cc)
    }

    #[test]
    fn numeric_junctions_are_little_endian_u64() {
        assert_eq!(
            DeriveJunction::new("1", false),
            soft(&[1, 0, 0, 0, 0, 0, 0, 0])
        );
    }

    #[test]
    fn text_junctions_are_scale_encoded_strings() {
        assert_eq!(DeriveJunction::new("Alice", false), soft(b"\x14Alice"));
    }

    #[test]
    fn long_junctions_are_hashed() {
        let long = "PathNameLongerThan32BytesWhichShouldBeHashed";
        let DeriveJunction::Hard(id) = DeriveJunction::new(long, true) else {
            panic!("expected a hard junction");
        };
        assert_eq!(
            id.as_slice(),
            Blake2b::<U32>::digest(long.encode()).as_slice()
        );
    }

    #[test]
    fn a_leading_slash_means_the_dev_phrase() {
        let uri = parse("//Alice/0///pw").unwrap();
        assert_eq!(uri.root, Root::Phrase(DEV_PHRASE));
        assert_eq!(
            uri.junctions,
            vec![
                DeriveJunction::new("Alice", true),
                DeriveJunction::new("0", false)
            ]
        );
        assert_eq!(uri.password, Some("pw"));
    }

    #[test]
    fn a_hex_root_is_recognised() {
        let uri = parse("0xabcd//x").unwrap();
        assert_eq!(uri.root, Root::HexSeed("abcd"));
        assert_eq!(uri.junctions.len(), 1);
    }

    #[test]
    fn rejects_empty_input_and_empty_junctions() {
        assert!(parse("").is_err());
        assert!(parse("word/").is_err());
        assert!(parse("bad-phrase").is_err());
    }

    #[test]
    fn rejects_a_bad_mnemonic_without_echoing_it() {
        let err = mini_secret_from_phrase("secret words that are wrong", None).unwrap_err();
        assert!(!err.to_string().contains("secret words"));
    }
}
