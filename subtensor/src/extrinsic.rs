//! Signed v4 extrinsics for a [`Runtime`]: the signed extensions the metadata declares, in its
//! order (`../shared/spec/subtensor-client.md` §4; the runtime's own extensions that carry no
//! data encode to nothing), a mortal or immortal era, the nonce and a tip; a signing payload over
//! 256 bytes is signed as its blake2-256. The extrinsic hash is the blake2-256 of its bytes.

use subnet_common::keys::{AccountId, Keypair};
use subxt_core::config::{DefaultExtrinsicParamsBuilder, SubstrateConfig};
use subxt_core::tx::PartialTransactionV4;
use subxt_core::utils::{AccountId32, H256, MultiSignature};

use crate::calls::{MAX_COMMITMENT_BYTES, SubtensorCall};
use crate::runtime::{Runtime, RuntimeError};

/// How long a transaction stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Valid forever (replayable once its nonce is reused: only for tests and tools).
    Immortal,
    /// Valid for about `period` blocks (a power of two, 4..=65536) from block `from_block`,
    /// whose hash is `from_hash`; a transaction not included by then is dead.
    Mortal {
        /// Blocks of validity.
        period: u64,
        /// The block the era starts at (usually the head when signing).
        from_block: u64,
        /// That block's hash.
        from_hash: [u8; 32],
    },
}

/// A call ready to be signed: what the signer signs.
pub struct Prepared {
    partial: PartialTransactionV4<SubstrateConfig>,
}

impl Prepared {
    /// The call data: pallet index, call index, parameters.
    pub fn call_data(&self) -> &[u8] {
        self.partial.call_data()
    }

    /// The bytes the signer signs (the blake2-256 of the payload when it is over 256 bytes).
    pub fn signing_payload(&self) -> Vec<u8> {
        self.partial.signer_payload()
    }

    /// The signed extrinsic for `signer`'s signature over [`Prepared::signing_payload`].
    pub fn sign(&self, signer: &Keypair) -> SignedExtrinsic {
        let signature = signer.sign(&self.signing_payload());
        self.with_signature(&signer.account_id(), signature.as_bytes())
    }

    /// The signed extrinsic with a signature made elsewhere (an sr25519 signature, 64 bytes).
    pub fn with_signature(&self, account: &AccountId, signature: &[u8; 64]) -> SignedExtrinsic {
        let tx = self.partial.sign_with_account_and_signature(
            AccountId32(*account.as_bytes()),
            &MultiSignature::Sr25519(*signature),
        );
        let bytes = tx.into_encoded();
        SignedExtrinsic {
            hash: blake2_256(&bytes),
            bytes,
        }
    }
}

/// A signed extrinsic: the bytes `author_submitExtrinsic` takes, and the hash blocks know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedExtrinsic {
    /// SCALE bytes (with their compact length prefix).
    pub bytes: Vec<u8>,
    /// blake2-256 of `bytes`.
    pub hash: [u8; 32],
}

fn blake2_256(bytes: &[u8]) -> [u8; 32] {
    use subxt_core::config::Hasher;
    let H256(hash) = subxt_core::config::substrate::BlakeTwo256.hash(bytes);
    hash
}

impl Runtime {
    /// `call`'s call data under this runtime's metadata.
    pub fn call_data(&self, call: &SubtensorCall) -> Result<Vec<u8>, RuntimeError> {
        self.check(call)?;
        let (pallet, name) = call.name();
        let payload = subxt_core::dynamic::tx(pallet, name, call.fields());
        subxt_core::tx::call_data(&payload, &self.state.metadata).map_err(|e| RuntimeError::Call {
            pallet,
            call: name,
            reason: e.to_string(),
        })
    }

    /// `call` from an account at `nonce`, with `tip` and `era`, ready to be signed.
    pub fn prepare(
        &self,
        call: &SubtensorCall,
        nonce: u64,
        tip: u128,
        era: Era,
    ) -> Result<Prepared, RuntimeError> {
        self.check(call)?;
        let (pallet, name) = call.name();
        let payload = subxt_core::dynamic::tx(pallet, name, call.fields());
        let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
            .nonce(nonce)
            .tip(tip);
        let params = match era {
            Era::Immortal => params.immortal(),
            Era::Mortal {
                period,
                from_block,
                from_hash,
            } => params.mortal_from_unchecked(period, from_block, H256(from_hash)),
        };
        let partial = subxt_core::tx::create_v4_signed(&payload, &self.state, params.build())
            .map_err(|e| match e {
                subxt_core::Error::Extrinsic(e) => RuntimeError::Extensions(e.to_string()),
                e => RuntimeError::Call {
                    pallet,
                    call: name,
                    reason: e.to_string(),
                },
            })?;
        Ok(Prepared { partial })
    }

    /// What the metadata cannot say about a call: a commitment field holds at most 128 bytes.
    fn check(&self, call: &SubtensorCall) -> Result<(), RuntimeError> {
        if let SubtensorCall::SetCommitment { data, .. } = call
            && data.len() > MAX_COMMITMENT_BYTES
        {
            let (pallet, call) = call.name();
            return Err(RuntimeError::Call {
                pallet,
                call,
                reason: format!(
                    "a commitment holds at most {MAX_COMMITMENT_BYTES} bytes, not {}",
                    data.len()
                ),
            });
        }
        Ok(())
    }
}
