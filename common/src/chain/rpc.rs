//! The dev chain's JSON-RPC 2.0 wire protocol, shared by the node and [`super::client`].
//!
//! Requests are `POST /` with `{"jsonrpc":"2.0","id":…,"method":…,"params":[…]}`; params are
//! positional. Hashes and bytes are `0x`-prefixed hex, accounts SS58.
//!
//! | method | params | result |
//! |---|---|---|
//! | `system_genesisHash` | – | hash |
//! | `chain_getHead` | – | [`HeaderView`] of the best block |
//! | `chain_getBlockHash` | number | hash or `null` |
//! | `chain_getBlock` | number or hash | [`BlockView`] or `null` |
//! | `author_submitExtrinsic` | hex SCALE extrinsic | tx hash |
//! | `author_extrinsicStatus` | tx hash | [`TxStatus`] |
//! | `system_accountNextIndex` | SS58 | next nonce, counting queued extrinsics |
//! | `account_info` | SS58 | [`super::types::AccountInfo`] |
//! | `subnet_metagraph` | netuid | [`super::types::Metagraph`] |
//! | `subnet_hyperparameters` | netuid | [`super::types::Hyperparameters`] |
//! | `subnet_commitments` | netuid | list of [`super::types::Commitment`] |
//! | `subnet_commitmentsAt` | netuid, block hash | that list in the state after the block |
//!
//! Errors are JSON-RPC error objects; the codes are the constants in [`code`].
//! `GET /events` streams server-sent events named `newHead` whose data is a [`HeaderView`];
//! `GET /health` answers `{"status":"ok","head":N}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Method names.
pub mod method {
    /// Genesis hash.
    pub const GENESIS_HASH: &str = "system_genesisHash";
    /// Best block header.
    pub const HEAD: &str = "chain_getHead";
    /// Hash of a block by number.
    pub const BLOCK_HASH: &str = "chain_getBlockHash";
    /// Block by number or hash.
    pub const BLOCK: &str = "chain_getBlock";
    /// Submit a signed extrinsic.
    pub const SUBMIT: &str = "author_submitExtrinsic";
    /// Inclusion status of a submitted extrinsic.
    pub const EXTRINSIC_STATUS: &str = "author_extrinsicStatus";
    /// Next nonce of an account, counting queued extrinsics.
    pub const ACCOUNT_NEXT_INDEX: &str = "system_accountNextIndex";
    /// Balance and nonce of an account.
    pub const ACCOUNT_INFO: &str = "account_info";
    /// A subnet's metagraph.
    pub const METAGRAPH: &str = "subnet_metagraph";
    /// A subnet's hyperparameters.
    pub const HYPERPARAMETERS: &str = "subnet_hyperparameters";
    /// A subnet's commitments.
    pub const COMMITMENTS: &str = "subnet_commitments";
    /// A subnet's commitments in the state after a given block.
    pub const COMMITMENTS_AT: &str = "subnet_commitmentsAt";
    /// The chain's beacon: `{"public_key": "0x…"}`; round `r` is published at block `r`.
    pub const BEACON: &str = "subnet_beacon";
}

/// JSON-RPC error codes. The negative ones are JSON-RPC 2.0's own.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a JSON-RPC 2.0 request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Wrong number or type of params.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The node failed; details are in its log.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Too many requests from this client IP (HTTP 429).
    pub const RATE_LIMITED: i64 = -32005;
    /// The extrinsic bytes do not decode (malformed, unknown call, too large).
    pub const INVALID_EXTRINSIC: i64 = 1010;
    /// The signature is not the signer's over this call, nonce and genesis.
    pub const BAD_SIGNATURE: i64 = 1011;
    /// The nonce is not the signer's next one (`data` holds `{"expected":n}`).
    pub const BAD_NONCE: i64 = 1012;
    /// The extrinsic was already submitted and is queued or included.
    pub const ALREADY_KNOWN: i64 = 1013;
    /// The queue of pending extrinsics is full; retry later.
    pub const POOL_FULL: i64 = 1014;
    /// The queried subnet does not exist.
    pub const UNKNOWN_SUBNET: i64 = 2001;
    /// No block has the given hash.
    pub const UNKNOWN_BLOCK: i64 = 2002;
    /// The state at the given block is no longer kept.
    pub const STATE_DISCARDED: i64 = 2003;
}

/// A 32-byte hash (block, extrinsic, genesis); `0x`-prefixed hex in JSON and in `Display`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct H256(pub [u8; 32]);

impl fmt::Display for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl fmt::Debug for H256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A string that is not 32 bytes of hex.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 32-byte hex hash: {input:?}")]
pub struct BadHash {
    /// The rejected input (truncated to 80 characters).
    pub input: String,
}

impl FromStr for H256 {
    type Err = BadHash;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadHash {
            input: s.chars().take(80).collect(),
        };
        let digits = s.strip_prefix("0x").unwrap_or(s);
        let bytes = hex::decode(digits).map_err(|_| bad())?;
        Ok(Self(bytes.try_into().map_err(|_| bad())?))
    }
}

impl Serialize for H256 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for H256 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A block header as served over RPC and SSE, with its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderView {
    /// Block number; genesis is 0.
    pub number: u64,
    /// sha256 of the SCALE-encoded header.
    pub hash: H256,
    /// Hash of the previous block (for block 0: sha256 of the genesis seed).
    pub parent_hash: H256,
    /// Commitment to the block's extrinsics.
    pub extrinsics_root: H256,
    /// sha256 of the SCALE-encoded state after the block.
    pub state_root: H256,
    /// Unix milliseconds when the block was produced.
    pub timestamp: u64,
    /// Number of extrinsics included.
    pub extrinsic_count: u32,
}

/// A block as served by `chain_getBlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// The header.
    pub header: HeaderView,
    /// Each included extrinsic as `0x` hex SCALE bytes, in order.
    pub extrinsics: Vec<String>,
    /// Hash of each included extrinsic, same order.
    pub tx_hashes: Vec<H256>,
}

/// Where a submitted extrinsic is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum TxStatus {
    /// Queued for the next block.
    Pending,
    /// Applied and included.
    InBlock {
        /// Block number.
        block: u64,
        /// Block hash.
        block_hash: H256,
        /// Position inside the block.
        index: u32,
    },
    /// Dispatch failed when the block was built; not included, nonce not used.
    Failed {
        /// Block whose production tried it.
        block: u64,
        /// Why it failed.
        error: String,
    },
    /// Never seen (or failed before the node last restarted).
    Unknown,
}

/// A JSON-RPC 2.0 request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Echoed in the response.
    #[serde(default)]
    pub id: serde_json::Value,
    /// Method name.
    pub method: String,
    /// Positional params.
    #[serde(default)]
    pub params: serde_json::Value,
}

/// A JSON-RPC 2.0 error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// One of [`code`].
    pub code: i64,
    /// Human-readable reason.
    pub message: String,
    /// Structured details, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// A JSON-RPC 2.0 response: exactly one of `result` and `error` is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The request's id.
    pub id: serde_json::Value,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl Response {
    /// A success response.
    pub fn ok(id: serde_json::Value, result: serde_json::Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    /// An error response.
    pub fn err(id: serde_json::Value, error: ErrorObject) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_round_trips_through_json_with_0x_prefix() {
        let h = H256([0xab; 32]);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"0x{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<H256>(&json).unwrap(), h);
        assert_eq!("ab".repeat(32).parse::<H256>().unwrap(), h);
    }

    #[test]
    fn rejects_hashes_of_the_wrong_length_or_alphabet() {
        assert!("0x1234".parse::<H256>().is_err());
        assert!(format!("0x{}", "zz".repeat(32)).parse::<H256>().is_err());
        assert!(serde_json::from_str::<H256>("\"0x00\"").is_err());
    }

    #[test]
    fn tx_status_is_tagged_by_status() {
        let s = TxStatus::InBlock {
            block: 3,
            block_hash: H256([1; 32]),
            index: 0,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["status"], "in_block");
        assert_eq!(json["block"], 3);
        assert_eq!(serde_json::from_value::<TxStatus>(json).unwrap(), s);
        let pending = serde_json::to_value(TxStatus::Pending).unwrap();
        assert_eq!(pending, serde_json::json!({"status": "pending"}));
    }

    #[test]
    fn response_has_result_or_error_not_both() {
        let ok = serde_json::to_value(Response::ok(1.into(), 5.into())).unwrap();
        assert_eq!(ok, serde_json::json!({"jsonrpc":"2.0","id":1,"result":5}));
        let err = Response::err(
            2.into(),
            ErrorObject {
                code: code::BAD_NONCE,
                message: "bad nonce".into(),
                data: None,
            },
        );
        let err = serde_json::to_value(err).unwrap();
        assert_eq!(
            err,
            serde_json::json!({"jsonrpc":"2.0","id":2,"error":{"code":1012,"message":"bad nonce"}})
        );
    }
}
