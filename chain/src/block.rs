//! Blocks and their hashes.
//!
//! A block is a [`Header`] plus the SCALE bytes of the extrinsics it includes, in order. The block
//! hash is `sha256(SCALE(header))`; the header commits to the extrinsics through
//! [`extrinsics_root`] and to the state after the block through its `state_root`
//! (`sha256(SCALE(state))`). Block 0 is built from the genesis file alone, so its hash — the genesis
//! hash — identifies the chain and is signed into every extrinsic.

use parity_scale_codec::{Decode, Encode};
use sha2::{Digest, Sha256};

/// A 32-byte sha256 digest: block hashes, transaction hashes and roots.
pub type Hash32 = [u8; 32];

/// sha256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash32 {
    Sha256::digest(bytes).into()
}

/// The part of a block that is hashed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Header {
    /// Height; the genesis block is 0.
    pub number: u64,
    /// Hash of the previous block (all zeros for block 0).
    pub parent_hash: Hash32,
    /// [`extrinsics_root`] of the included extrinsics.
    pub extrinsics_root: Hash32,
    /// sha256 of the SCALE-encoded state after this block.
    pub state_root: Hash32,
    /// Unix time in milliseconds when the block was produced (0 for genesis).
    pub timestamp: u64,
}

impl Header {
    /// The block hash: sha256 of the SCALE-encoded header.
    pub fn hash(&self) -> Hash32 {
        sha256(&self.encode())
    }
}

/// A block as it is stored in the log and served over RPC.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The hashed header.
    pub header: Header,
    /// SCALE bytes of each included (successfully applied) extrinsic, in order of application.
    pub extrinsics: Vec<Vec<u8>>,
}

impl Block {
    /// The block hash (see [`Header::hash`]).
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }
}

/// Root of a list of extrinsics: sha256 of the SCALE encoding of the list of their bytes.
pub fn extrinsics_root(extrinsics: &[Vec<u8>]) -> Hash32 {
    sha256(&extrinsics.encode())
}

/// The hash that identifies one extrinsic: sha256 of its SCALE bytes.
pub fn tx_hash(extrinsic: &[u8]) -> Hash32 {
    sha256(extrinsic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            number: 7,
            parent_hash: [1; 32],
            extrinsics_root: extrinsics_root(&[]),
            state_root: [2; 32],
            timestamp: 1_700_000_000_000,
        }
    }

    #[test]
    fn block_hash_is_sha256_of_scale_header() {
        let h = header();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&7u64.to_le_bytes());
        bytes.extend_from_slice(&[1; 32]);
        bytes.extend_from_slice(&extrinsics_root(&[]));
        bytes.extend_from_slice(&[2; 32]);
        bytes.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
        assert_eq!(h.encode(), bytes);
        assert_eq!(h.hash(), sha256(&bytes));
    }

    #[test]
    fn every_header_field_changes_the_hash() {
        let base = header().hash();
        let mut h = header();
        h.number += 1;
        assert_ne!(h.hash(), base);
        let mut h = header();
        h.parent_hash[0] ^= 1;
        assert_ne!(h.hash(), base);
        let mut h = header();
        h.extrinsics_root[31] ^= 1;
        assert_ne!(h.hash(), base);
        let mut h = header();
        h.state_root[5] ^= 1;
        assert_ne!(h.hash(), base);
        let mut h = header();
        h.timestamp += 1;
        assert_ne!(h.hash(), base);
    }

    #[test]
    fn extrinsics_root_depends_on_order_and_boundaries() {
        let a = extrinsics_root(&[vec![1, 2], vec![3]]);
        assert_ne!(a, extrinsics_root(&[vec![3], vec![1, 2]]));
        assert_ne!(a, extrinsics_root(&[vec![1], vec![2, 3]]));
    }

    #[test]
    fn block_round_trips_through_scale() {
        let block = Block {
            header: header(),
            extrinsics: vec![vec![9; 10], vec![]],
        };
        let decoded = Block::decode(&mut &block.encode()[..]).unwrap();
        assert_eq!(decoded, block);
    }
}
