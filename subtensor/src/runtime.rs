//! One runtime of a Subtensor chain: its metadata, genesis hash and versions, as a node reports
//! them (`Metadata_metadata_at_version`, `chain_getBlockHash(0)`, `state_getRuntimeVersion`).
//! A client builds a new one after a runtime upgrade (a new `spec_version`).

use subxt_core::config::SubstrateConfig;
use subxt_core::tx::{ClientState, RuntimeVersion};
use subxt_core::utils::H256;

/// Why a runtime or something built from it cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// `Metadata_metadata_at_version` answered `None`: the node has no metadata of that version.
    #[error("the node has no metadata of the version asked for")]
    NoMetadata,
    /// The metadata bytes do not decode.
    #[error("the runtime metadata does not decode: {0}")]
    Metadata(String),
    /// The metadata has no such call, or the values do not fit its parameters.
    #[error("{pallet}.{call}: {reason}")]
    Call {
        /// The pallet.
        pallet: &'static str,
        /// The call.
        call: &'static str,
        /// What the metadata said.
        reason: String,
    },
    /// A storage entry or runtime API the metadata does not have, or bytes that do not decode
    /// as its type.
    #[error("{what}: {reason}")]
    Read {
        /// `Pallet.Entry` or `Api.method`.
        what: String,
        /// What went wrong.
        reason: String,
    },
    /// The runtime declares a signed extension this client does not know and that carries data.
    #[error("building the signed extensions: {0}")]
    Extensions(String),
}

/// The runtime a client talks to: metadata, genesis hash and versions.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) state: ClientState<SubstrateConfig>,
}

impl Runtime {
    /// A runtime from raw `MetadataVersioned` bytes (magic `meta`, version, body: what
    /// `state_getMetadata` returns, or the bytes inside `Metadata_metadata_at_version`'s answer,
    /// see [`Runtime::opaque_metadata`]), the chain's genesis hash and the runtime version.
    pub fn new(
        metadata: &[u8],
        genesis_hash: [u8; 32],
        spec_version: u32,
        transaction_version: u32,
    ) -> Result<Self, RuntimeError> {
        let metadata = subxt_core::metadata::decode_from(metadata)
            .map_err(|e| RuntimeError::Metadata(e.to_string()))?;
        Ok(Self {
            state: ClientState {
                genesis_hash: H256(genesis_hash),
                runtime_version: RuntimeVersion {
                    spec_version,
                    transaction_version,
                },
                metadata,
            },
        })
    }

    /// The metadata bytes inside `Metadata_metadata_at_version`'s answer (an
    /// `Option<OpaqueMetadata>`: `01`, a compact length, the bytes).
    pub fn opaque_metadata(answer: &[u8]) -> Result<&[u8], RuntimeError> {
        use subxt_core::ext::codec::{Compact, Decode};
        let (&tag, mut rest) = answer.split_first().ok_or(RuntimeError::NoMetadata)?;
        if tag != 1 {
            return Err(RuntimeError::NoMetadata);
        }
        let len = Compact::<u32>::decode(&mut rest)
            .map_err(|e| RuntimeError::Metadata(format!("opaque metadata length: {e}")))?;
        match rest.len() == len.0 as usize {
            true => Ok(rest),
            false => Err(RuntimeError::Metadata(format!(
                "opaque metadata says {} bytes, {} follow",
                len.0,
                rest.len()
            ))),
        }
    }

    /// The runtime's `spec_version`.
    pub fn spec_version(&self) -> u32 {
        self.state.runtime_version.spec_version
    }

    /// The runtime's `transaction_version`.
    pub fn transaction_version(&self) -> u32 {
        self.state.runtime_version.transaction_version
    }

    /// The chain's genesis hash.
    pub fn genesis_hash(&self) -> [u8; 32] {
        self.state.genesis_hash.0
    }

    /// The signed extensions the runtime declares, in the order extrinsics carry them.
    pub fn signed_extensions(&self) -> Vec<String> {
        self.state
            .metadata
            .extrinsic()
            .transaction_extensions_to_use_for_encoding()
            .map(|e| e.identifier().to_owned())
            .collect()
    }
}
