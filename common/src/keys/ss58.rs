//! SS58 addresses: `base58(prefix ‖ public key ‖ blake2b-512("SS58PRE" ‖ prefix ‖ public key)[..2])`.
//!
//! Only the one-byte prefix form (prefixes 0–63) is implemented; the subnet uses prefix 42.

use blake2::{Blake2b512, Digest};

use super::KeyError;

/// The SS58 prefix of Bittensor (and generic Substrate) addresses.
pub const SUBSTRATE_PREFIX: u8 = 42;

/// Largest prefix that fits the one-byte SS58 form.
const MAX_SIMPLE_PREFIX: u8 = 63;

/// Length of a decoded one-byte-prefix address: prefix, 32-byte key, 2-byte checksum.
const DECODED_LEN: usize = 1 + 32 + 2;

fn checksum(payload: &[u8]) -> [u8; 2] {
    let mut hasher = Blake2b512::new();
    hasher.update(b"SS58PRE");
    hasher.update(payload);
    let hash = hasher.finalize();
    [hash[0], hash[1]]
}

/// Encodes a 32-byte public key with a one-byte prefix. Callers pass a prefix below 64
/// (a constant, or one checked by [`encode_checked`]); higher bits are masked off.
pub(crate) fn encode(prefix: u8, public: &[u8; 32]) -> String {
    let mut data = Vec::with_capacity(DECODED_LEN);
    data.push(prefix & MAX_SIMPLE_PREFIX);
    data.extend_from_slice(public);
    let sum = checksum(&data);
    data.extend_from_slice(&sum);
    bs58::encode(data).into_string()
}

/// Encodes with a caller-chosen prefix, rejecting prefixes that need the two-byte form.
pub(crate) fn encode_checked(prefix: u8, public: &[u8; 32]) -> Result<String, KeyError> {
    if prefix > MAX_SIMPLE_PREFIX {
        return Err(KeyError::UnsupportedSs58Prefix {
            prefix: u16::from(prefix),
        });
    }
    Ok(encode(prefix, public))
}

/// Decodes an SS58 address into its prefix and 32-byte public key, validating the checksum.
pub(crate) fn decode(address: &str) -> Result<(u8, [u8; 32]), KeyError> {
    let data = bs58::decode(address)
        .into_vec()
        .map_err(|e| KeyError::InvalidBase58 {
            reason: e.to_string(),
        })?;
    let Some(&first) = data.first() else {
        return Err(KeyError::InvalidSs58Length { length: 0 });
    };
    if first > MAX_SIMPLE_PREFIX {
        // Two-byte prefix form (64..16383): decode the prefix only to name it in the error.
        let prefix = match data.get(1) {
            Some(&second) => {
                let lower = (u16::from(first) << 2) | (u16::from(second) >> 6);
                let upper = u16::from(second & 0b0011_1111);
                (lower & 0b0000_0000_1111_1111) | (upper << 8)
            }
            None => u16::from(first),
        };
        return Err(KeyError::UnsupportedSs58Prefix { prefix });
    }
    if data.len() != DECODED_LEN {
        return Err(KeyError::InvalidSs58Length { length: data.len() });
    }
    let (payload, sum) = data.split_at(1 + 32);
    if checksum(payload) != sum {
        return Err(KeyError::BadSs58Checksum);
    }
    let mut public = [0u8; 32];
    public.copy_from_slice(&payload[1..]);
    Ok((first, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

    #[test]
    fn decodes_alice_with_the_checksum_from_the_spec() {
        let raw = bs58::decode(ALICE).into_vec().unwrap();
        assert_eq!(raw.len(), 35);
        assert_eq!(raw[0], 42);
        assert_eq!(&raw[33..], &[0x1d, 0x21]);
        let (prefix, public) = decode(ALICE).unwrap();
        assert_eq!(prefix, 42);
        assert_eq!(encode(42, &public), ALICE);
    }

    #[test]
    fn rejects_a_flipped_checksum_byte() {
        let mut raw = bs58::decode(ALICE).into_vec().unwrap();
        raw[34] ^= 1;
        let bad = bs58::encode(raw).into_string();
        assert!(matches!(decode(&bad), Err(KeyError::BadSs58Checksum)));
    }

    #[test]
    fn rejects_non_base58_characters() {
        assert!(matches!(
            decode("0OIl"),
            Err(KeyError::InvalidBase58 { .. })
        ));
    }

    #[test]
    fn rejects_a_wrong_length() {
        let raw = bs58::decode(ALICE).into_vec().unwrap();
        let short = bs58::encode(&raw[..34]).into_string();
        assert!(matches!(
            decode(&short),
            Err(KeyError::InvalidSs58Length { length: 34 })
        ));
        assert!(matches!(
            decode(""),
            Err(KeyError::InvalidSs58Length { length: 0 })
        ));
    }

    #[test]
    fn names_a_two_byte_prefix_as_unsupported() {
        assert!(matches!(
            encode_checked(64, &[0; 32]),
            Err(KeyError::UnsupportedSs58Prefix { prefix: 64 })
        ));
        let mut data = vec![0b0100_0000 | 0x10, 0x40];
        data.extend_from_slice(&[0u8; 34]);
        let address = bs58::encode(data).into_string();
        assert!(matches!(
            decode(&address),
            Err(KeyError::UnsupportedSs58Prefix { .. })
        ));
    }
}
