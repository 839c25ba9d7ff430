//! Talking to a chain: call and query types shared with the dev chain, the JSON-RPC wire protocol,
//! and the [`ChainClient`] trait with its dev-chain implementation.
//!
//! | submodule | what |
//! |---|---|
//! | [`types`] | calls, signed extrinsics, events, metagraph and other query results |
//! | [`rpc`] | the dev chain's JSON-RPC 2.0 methods, error codes and response shapes |
//! | [`client`] | the [`ChainClient`] trait, [`DevChainClient`], and [`JsonRpcHttp`] (HTTP, timeouts, size limits) under both chains' clients |

pub mod client;
pub mod rpc;
pub mod types;

pub use client::{
    ChainClient, ChainClientError, ClientOptions, DevChainClient, Inclusion, JsonRpcHttp,
    PreparedTx, TimelockedCommit,
};
pub use rpc::{H256, HeaderView, TxStatus};
