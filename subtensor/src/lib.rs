//! Talking to a real Subtensor node (`../shared/spec/subtensor-client.md`).
//!
//! Everything a Subtensor node accepts is described by its runtime's metadata, so nothing here
//! hard-codes a pallet index, a call index or the list of signed extensions: a [`Runtime`] is
//! built from the node's metadata, genesis hash and runtime version, and encodes the calls the
//! miner and the validator send ([`SubtensorCall`]) into call data, signing payloads and signed
//! v4 extrinsics. The bytes are the bittensor 11.3.0 SDK's, byte for byte, on its recorded
//! spec-461 metadata (`tests/it/parity.rs` runs the SDK's `RuntimeCodec` beside this crate).
//!
//! | module | what |
//! |---|---|
//! | [`runtime`] | a runtime: metadata (from `Metadata_metadata_at_version`'s answer), genesis, versions |
//! | [`client`] | [`SubtensorClient`]: JSON-RPC to a node, reads pinned to a block, submission |
//! | [`chain`] | the client as the binaries' `ChainClient`; [`AnyChain`]: the dev chain or Subtensor, probed |
//! | [`calls`] | the calls the subnet's binaries send, typed, and their dynamic form |
//! | [`extrinsic`] | signing payloads, signed extrinsics and their hashes; the mortal era |
//! | [`reads`] | storage keys and values, runtime API calls and answers, a block's events |
//! | [`timelock`] | commit–reveal v4: weights encrypted to a drand quicknet round |
//! | `testnode` | (feature `test-node`) a Subtensor node for tests, over the SDK's recorded chain |
//!
//! This crate compiles no burn and no database; [`subnet_common`] gives it keys and accounts.

pub mod calls;
pub mod chain;
pub mod client;
pub mod extrinsic;
pub mod reads;
pub mod runtime;
#[cfg(feature = "test-node")]
pub mod testnode;
pub mod timelock;

pub use calls::SubtensorCall;
pub use chain::AnyChain;
pub use client::{SubtensorClient, SubtensorError, endpoint_url};
pub use extrinsic::{Era, Prepared, SignedExtrinsic};
pub use runtime::{Runtime, RuntimeError};
