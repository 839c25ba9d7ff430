//! The node: the state machine, the block log and the queue of pending extrinsics, kept in step.
//!
//! [`Chain`] is synchronous and owns everything; [`Node`] wraps it for the async world (a mutex,
//! the block-production timer and the broadcast of new heads).
//!
//! **Extrinsic life cycle.** `author_submitExtrinsic` decodes the bytes and checks the signature
//! (which covers the genesis hash) and the nonce at once — the expected nonce is the account's
//! nonce plus the signer's extrinsics already queued — and answers with an error straight away if
//! any check fails. Accepted extrinsics wait in arrival order. When a block is produced each is
//! applied in turn; one whose dispatch fails (e.g. weights from an unregistered hotkey) is **not
//! included**: the state is untouched, its nonce is not used, and its status becomes
//! [`TxStatus::Failed`] with the chain's error until the node restarts. Blocks therefore hold
//! only extrinsics that succeeded, and replaying the log must re-apply every one of them.
//!
//! **Durability.** A block is appended to the log and fsynced before it becomes the head, is
//! served or is announced. On start the log is replayed from genesis: each block's extrinsics are
//! re-applied and its extrinsics root, state root and hash are checked.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use subnet_common::chain::rpc::{BlockView, H256, HeaderView, TxStatus};
use subnet_common::chain::types::{Commitment, Event, ExtrinsicError, NetUid, SignedExtrinsic};
use subnet_common::keys::AccountId;
use tokio::sync::broadcast;

use crate::block::{Block, Hash32, Header, extrinsics_root, sha256, tx_hash};
use crate::history::{CommitmentHistory, HistoryError};
use crate::metrics;
use crate::state::{Genesis, GenesisError, State};
use crate::store::{BlockLog, StoreError, TornTail};

/// Most extrinsics waiting for a block; more are refused with [`SubmitError::PoolFull`].
pub const MAX_PENDING: usize = 4096;
/// Most failed-extrinsic statuses remembered; the oldest are forgotten first.
pub const MAX_FAILED_STATUSES: usize = 10_000;

/// Why the node could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The genesis file does not describe a valid state.
    #[error("invalid genesis: {0}")]
    Genesis(#[from] GenesisError),
    /// The block log failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The block-production task panicked or was cancelled.
    #[error("block production stopped: {reason}")]
    Producer {
        /// The task's panic or cancellation message.
        reason: String,
    },
    /// A stored block does not replay to the header it claims.
    #[error("block {block} does not replay: {reason}")]
    Replay {
        /// The block that failed.
        block: u64,
        /// What check failed.
        reason: String,
    },
}

/// Why a submitted extrinsic was refused before queueing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The bytes are not an extrinsic.
    #[error(transparent)]
    Invalid(#[from] ExtrinsicError),
    /// The signature does not verify for this chain.
    #[error("bad signature from {signer} (or signed for a chain with another genesis hash)")]
    BadSignature {
        /// The claimed signer.
        signer: AccountId,
    },
    /// The nonce is not the signer's next one.
    #[error("bad nonce for {signer}: expected {expected}, got {got}")]
    BadNonce {
        /// The signer.
        signer: AccountId,
        /// Its next nonce, counting queued extrinsics.
        expected: u64,
        /// The extrinsic's nonce.
        got: u64,
    },
    /// The same bytes were already submitted.
    #[error("extrinsic {tx} is already queued or included")]
    AlreadyKnown {
        /// Its hash.
        tx: H256,
    },
    /// The queue is full.
    #[error("{MAX_PENDING} extrinsics are already queued; retry after the next block")]
    PoolFull,
}

/// An accepted extrinsic waiting for a block.
#[derive(Debug, Clone)]
struct Pending {
    hash: Hash32,
    bytes: Vec<u8>,
    extrinsic: SignedExtrinsic,
}

/// The chain: state, blocks, log, queue and extrinsic statuses. Not thread-safe by itself.
#[derive(Debug)]
pub struct Chain {
    genesis_hash: Hash32,
    state: State,
    /// Every block, index = number (block 0 is genesis).
    blocks: Vec<Block>,
    /// Hash of each block, index = number.
    hashes: Vec<Hash32>,
    by_hash: HashMap<Hash32, u64>,
    /// Included and failed extrinsics by hash.
    statuses: HashMap<Hash32, TxStatus>,
    /// Failed extrinsics in the order they failed, to bound how many are remembered.
    failed: VecDeque<Hash32>,
    pending: VecDeque<Pending>,
    log: BlockLog,
    /// Each subnet's commitments after every block that changed them.
    commitments: CommitmentHistory,
}

impl Chain {
    /// Builds genesis, opens the log in `data_dir` and replays it. Returns the chain and the torn
    /// tail that was cut, if any (the caller logs it).
    pub fn open(genesis: &Genesis, data_dir: &Path) -> Result<(Self, Option<TornTail>), NodeError> {
        let mut state = State::from_genesis(genesis)?;
        let genesis_block = genesis_block(genesis, &state);
        let genesis_hash = genesis_block.hash();
        let opened = BlockLog::open(data_dir, genesis_hash)?;

        let mut chain_blocks = vec![genesis_block];
        let mut hashes = vec![genesis_hash];
        let mut by_hash = HashMap::from([(genesis_hash, 0)]);
        let mut statuses = HashMap::new();
        let mut commitments = CommitmentHistory::default();
        commitments.record(0, &state);
        for block in opened.blocks {
            let number = block.header.number;
            let replay = |reason: String| NodeError::Replay {
                block: number,
                reason,
            };
            if block.header.extrinsics_root != extrinsics_root(&block.extrinsics) {
                return Err(replay(
                    "extrinsics root does not match its extrinsics".into(),
                ));
            }
            let hash = block.hash();
            check_block_number(&state, number)?;
            for (index, bytes) in block.extrinsics.iter().enumerate() {
                let extrinsic = SignedExtrinsic::decode_bytes(bytes)
                    .map_err(|e| replay(format!("extrinsic {index} does not decode: {e}")))?;
                state
                    .apply_extrinsic(&extrinsic, &genesis_hash)
                    .map_err(|e| {
                        replay(format!(
                            "extrinsic {index} ({}) fails: {e}",
                            extrinsic.call.name()
                        ))
                    })?;
                statuses.insert(
                    tx_hash(bytes),
                    TxStatus::InBlock {
                        block: number,
                        block_hash: H256(hash),
                        index: index as u32,
                    },
                );
            }
            state.end_block();
            if state_root(&state) != block.header.state_root {
                return Err(replay("state root differs from the replayed state".into()));
            }
            commitments.record(number, &state);
            by_hash.insert(hash, number);
            hashes.push(hash);
            chain_blocks.push(block);
        }
        let chain = Self {
            genesis_hash,
            state,
            blocks: chain_blocks,
            hashes,
            by_hash,
            statuses,
            failed: VecDeque::new(),
            pending: VecDeque::new(),
            log: opened.log,
            commitments,
        };
        Ok((chain, opened.torn))
    }

    /// The commitments of `netuid` in the state after the block `hash` (Substrate's storage read
    /// at that block).
    pub fn commitments_at(
        &self,
        netuid: NetUid,
        hash: &Hash32,
    ) -> Result<Vec<Commitment>, HistoryError> {
        let number = self
            .block_number(hash)
            .ok_or(HistoryError::UnknownBlock(H256(*hash)))?;
        self.commitments.at(netuid, number)
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    /// The state after the best block.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The best block's number.
    pub fn head_number(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    /// The best block's header.
    pub fn head(&self) -> HeaderView {
        self.header_view(self.head_number())
            .unwrap_or_else(unreachable_head)
    }

    /// Hash of block `number`.
    pub fn block_hash(&self, number: u64) -> Option<Hash32> {
        self.hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// Number of the block with `hash`.
    pub fn block_number(&self, hash: &Hash32) -> Option<u64> {
        self.by_hash.get(hash).copied()
    }

    /// The header of block `number` with its hash.
    pub fn header_view(&self, number: u64) -> Option<HeaderView> {
        let index = usize::try_from(number).ok()?;
        let block = self.blocks.get(index)?;
        Some(header_view(block, self.hashes[index]))
    }

    /// Block `number` as served over RPC.
    pub fn block_view(&self, number: u64) -> Option<BlockView> {
        let index = usize::try_from(number).ok()?;
        let block = self.blocks.get(index)?;
        Some(BlockView {
            header: header_view(block, self.hashes[index]),
            extrinsics: block
                .extrinsics
                .iter()
                .map(|x| format!("0x{}", hex::encode(x)))
                .collect(),
            tx_hashes: block.extrinsics.iter().map(|x| H256(tx_hash(x))).collect(),
        })
    }

    /// Where extrinsic `tx` is.
    pub fn tx_status(&self, tx: &Hash32) -> TxStatus {
        if self.pending.iter().any(|p| p.hash == *tx) {
            return TxStatus::Pending;
        }
        self.statuses.get(tx).cloned().unwrap_or(TxStatus::Unknown)
    }

    /// The nonce `account`'s next extrinsic must carry, counting queued ones.
    pub fn next_nonce(&self, account: &AccountId) -> u64 {
        let queued = self
            .pending
            .iter()
            .filter(|p| p.extrinsic.signer == *account)
            .count() as u64;
        self.state.account(account).nonce + queued
    }

    /// Number of extrinsics waiting for a block.
    pub fn pending_count(&self) -> usize {
        self.pending.len()
    }

    /// Checks `bytes` and queues them for the next block; returns the extrinsic hash.
    pub fn submit(&mut self, bytes: &[u8]) -> Result<H256, SubmitError> {
        let extrinsic = SignedExtrinsic::decode_bytes(bytes)?;
        let hash = tx_hash(bytes);
        if self.pending.iter().any(|p| p.hash == hash)
            || matches!(self.statuses.get(&hash), Some(TxStatus::InBlock { .. }))
        {
            return Err(SubmitError::AlreadyKnown { tx: H256(hash) });
        }
        if !extrinsic.verify(&self.genesis_hash) {
            return Err(SubmitError::BadSignature {
                signer: extrinsic.signer,
            });
        }
        let expected = self.next_nonce(&extrinsic.signer);
        if extrinsic.nonce != expected {
            return Err(SubmitError::BadNonce {
                signer: extrinsic.signer,
                expected,
                got: extrinsic.nonce,
            });
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(SubmitError::PoolFull);
        }
        // A resubmission of a previously failed extrinsic starts over.
        self.statuses.remove(&hash);
        self.pending.push_back(Pending {
            hash,
            bytes: bytes.to_vec(),
            extrinsic,
        });
        metrics::set_pending_extrinsics(self.pending.len());
        Ok(H256(hash))
    }

    /// Builds the next block from the queue, appends it to the log (fsynced) and makes it the
    /// head. `now_ms` is the wall clock; the timestamp never goes below the parent's.
    ///
    /// On a log error the in-memory chain is ahead of the disk: the caller must stop the node.
    pub fn produce_block(&mut self, now_ms: u64) -> Result<HeaderView, NodeError> {
        let parent = self.head_number();
        let number = parent + 1;
        let parent_hash = self.hashes[parent as usize];
        let timestamp = now_ms.max(self.blocks[parent as usize].header.timestamp);

        check_block_number(&self.state, number)?;
        let mut included = Vec::new();
        let mut applied = Vec::new();
        let mut failed = 0;
        for pending in std::mem::take(&mut self.pending) {
            match self
                .state
                .apply_extrinsic(&pending.extrinsic, &self.genesis_hash)
            {
                Ok(_events) => {
                    applied.push(pending.hash);
                    included.push(pending.bytes);
                }
                Err(error) => {
                    tracing::info!(
                        block = number,
                        tx = %H256(pending.hash),
                        call = pending.extrinsic.call.name(),
                        signer = %pending.extrinsic.signer,
                        %error,
                        "extrinsic failed; not included"
                    );
                    let status = TxStatus::Failed {
                        block: number,
                        error: error.to_string(),
                    };
                    self.remember_failure(pending.hash, status);
                    failed += 1;
                }
            }
        }
        let epochs: Vec<NetUid> = self
            .state
            .end_block()
            .into_iter()
            .filter_map(|event| match event {
                Event::EpochRun { netuid, .. } => Some(netuid),
                _ => None,
            })
            .collect();

        let header = Header {
            number,
            parent_hash,
            extrinsics_root: extrinsics_root(&included),
            state_root: state_root(&self.state),
            timestamp,
        };
        let block = Block {
            header,
            extrinsics: included,
        };
        self.log.append(&block)?;
        metrics::record_extrinsics_in_block(applied.len(), failed);
        metrics::set_pending_extrinsics(self.pending.len());
        for netuid in epochs {
            metrics::record_epoch(netuid);
        }

        let hash = block.hash();
        for (index, tx) in applied.into_iter().enumerate() {
            let status = TxStatus::InBlock {
                block: number,
                block_hash: H256(hash),
                index: index as u32,
            };
            self.statuses.insert(tx, status);
        }
        self.by_hash.insert(hash, number);
        self.hashes.push(hash);
        self.commitments.record(number, &self.state);
        let view = header_view(&block, hash);
        self.blocks.push(block);
        Ok(view)
    }
}

impl Chain {
    /// Records a failed extrinsic, forgetting the oldest failure beyond [`MAX_FAILED_STATUSES`].
    fn remember_failure(&mut self, tx: Hash32, status: TxStatus) {
        self.statuses.insert(tx, status);
        self.failed.push_back(tx);
        while self.failed.len() > MAX_FAILED_STATUSES {
            if let Some(old) = self.failed.pop_front()
                && matches!(self.statuses.get(&old), Some(TxStatus::Failed { .. }))
            {
                self.statuses.remove(&old);
            }
        }
    }
}

/// The state machine builds blocks in order; a mismatch means the log and state disagree.
fn check_block_number(state: &State, number: u64) -> Result<(), NodeError> {
    let building = state.current_block();
    if building == number {
        Ok(())
    } else {
        Err(NodeError::Replay {
            block: number,
            reason: format!("the state is building block {building}"),
        })
    }
}

/// sha256 of the SCALE-encoded state.
pub fn state_root(state: &State) -> Hash32 {
    sha256(&state.encode())
}

/// Block 0: no extrinsics, the genesis state and the genesis timestamp. Its `parent_hash` is
/// sha256 of the genesis `seed`, so two genesis files that differ only in their seed give two
/// chains with different genesis hashes.
pub fn genesis_block(genesis: &Genesis, state: &State) -> Block {
    let header = Header {
        number: 0,
        parent_hash: sha256(genesis.seed.as_bytes()),
        extrinsics_root: extrinsics_root(&[]),
        state_root: state_root(state),
        timestamp: genesis.timestamp_ms,
    };
    Block {
        header,
        extrinsics: Vec::new(),
    }
}

fn header_view(block: &Block, hash: Hash32) -> HeaderView {
    HeaderView {
        number: block.header.number,
        hash: H256(hash),
        parent_hash: H256(block.header.parent_hash),
        extrinsics_root: H256(block.header.extrinsics_root),
        state_root: H256(block.header.state_root),
        timestamp: block.header.timestamp,
        extrinsic_count: block.extrinsics.len() as u32,
    }
}

#[cold]
fn unreachable_head() -> HeaderView {
    // `blocks` always holds at least the genesis block.
    HeaderView {
        number: 0,
        hash: H256::default(),
        parent_hash: H256::default(),
        extrinsics_root: H256::default(),
        state_root: H256::default(),
        timestamp: 0,
        extrinsic_count: 0,
    }
}

/// How many new-head announcements a slow SSE subscriber may fall behind before skipping.
const HEAD_CHANNEL_CAPACITY: usize = 64;

/// The chain shared between the RPC server and the block producer.
#[derive(Debug)]
pub struct Node {
    chain: Mutex<Chain>,
    heads: broadcast::Sender<HeaderView>,
    genesis_hash: Hash32,
}

impl Node {
    /// Wraps an opened chain.
    pub fn new(chain: Chain) -> Arc<Self> {
        let (heads, _) = broadcast::channel(HEAD_CHANNEL_CAPACITY);
        let genesis_hash = chain.genesis_hash();
        Arc::new(Self {
            chain: Mutex::new(chain),
            heads,
            genesis_hash,
        })
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    /// Locks the chain. A panic while holding the lock cannot leave a half-applied block visible
    /// (blocks become the head only after their append), so a poisoned lock is recovered.
    pub fn chain(&self) -> MutexGuard<'_, Chain> {
        self.chain
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// New heads, announced after each block is durable.
    pub fn subscribe(&self) -> broadcast::Receiver<HeaderView> {
        self.heads.subscribe()
    }

    /// Produces one block now and announces it.
    pub fn produce_block(&self, now_ms: u64) -> Result<HeaderView, NodeError> {
        let mut chain = self.chain();
        let started = Instant::now();
        let head = chain.produce_block(now_ms)?;
        metrics::record_block(head.number, started.elapsed());
        drop(chain);
        // No subscribers is fine.
        let _ = self.heads.send(head.clone());
        Ok(head)
    }

    /// Produces a block every `block_time` until `shutdown` resolves or a block fails.
    pub async fn run_block_production(
        self: Arc<Self>,
        block_time: Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(block_time);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                _ = ticker.tick() => {}
            }
            let node = Arc::clone(&self);
            let produced =
                tokio::task::spawn_blocking(move || node.produce_block(unix_millis())).await;
            match produced {
                Ok(Ok(head)) => tracing::info!(
                    number = head.number,
                    hash = %head.hash,
                    extrinsics = head.extrinsic_count,
                    "block"
                ),
                Ok(Err(error)) => return Err(error),
                Err(join) => {
                    return Err(NodeError::Producer {
                        reason: join.to_string(),
                    });
                }
            }
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use parity_scale_codec::Encode;
    use subnet_common::chain::types::Call;
    use subnet_common::keys::Keypair;

    use super::*;
    use crate::store::{LOG_FILE_NAME, RECORD_HEADER_LEN};

    fn genesis() -> Genesis {
        crate::dev::dev_genesis(10, 1_000).unwrap()
    }

    fn key(uri: &str) -> Keypair {
        Keypair::from_uri(uri).unwrap()
    }

    fn transfer(chain: &Chain, from: &str, nonce: u64) -> Vec<u8> {
        let call = Call::Transfer {
            dest: key("//Bob").account_id(),
            amount: 7,
        };
        SignedExtrinsic::sign(call, nonce, &chain.genesis_hash(), &key(from)).encode()
    }

    #[test]
    fn the_genesis_hash_depends_on_timestamp_and_seed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, _) = Chain::open(&genesis(), &dir.path().join("a")).unwrap();
        let mut later = genesis();
        later.timestamp_ms += 1;
        let (b, _) = Chain::open(&later, &dir.path().join("b")).unwrap();
        let mut seeded = genesis();
        seeded.seed = "other".into();
        let (c, _) = Chain::open(&seeded, &dir.path().join("c")).unwrap();
        assert_ne!(a.genesis_hash(), b.genesis_hash());
        assert_ne!(a.genesis_hash(), c.genesis_hash());
        assert_eq!(a.block_hash(0), Some(a.genesis_hash()));
    }

    #[test]
    fn produced_blocks_include_applied_extrinsics_and_replay_to_the_same_head() {
        let dir = tempfile::tempdir().unwrap();
        let (mut chain, _) = Chain::open(&genesis(), dir.path()).unwrap();
        let first = chain.submit(&transfer(&chain, "//Alice", 0)).unwrap();
        let second = chain.submit(&transfer(&chain, "//Alice", 1)).unwrap();
        let head = chain.produce_block(5_000).unwrap();
        assert_eq!(head.number, 1);
        assert_eq!(head.extrinsic_count, 2);
        assert!(matches!(
            chain.tx_status(&first.0),
            TxStatus::InBlock {
                block: 1,
                index: 0,
                ..
            }
        ));
        assert!(matches!(
            chain.tx_status(&second.0),
            TxStatus::InBlock {
                block: 1,
                index: 1,
                ..
            }
        ));
        // The timestamp never goes backwards.
        assert_eq!(chain.produce_block(10).unwrap().timestamp, 5_000);
        let head = chain.head();
        let state = chain.state().clone();
        drop(chain);

        let (replayed, torn) = Chain::open(&genesis(), dir.path()).unwrap();
        assert!(torn.is_none());
        assert_eq!(replayed.head(), head);
        assert_eq!(replayed.state(), &state);
        assert!(matches!(
            replayed.tx_status(&second.0),
            TxStatus::InBlock { block: 1, .. }
        ));
    }

    #[test]
    fn submit_counts_queued_extrinsics_in_the_expected_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let (mut chain, _) = Chain::open(&genesis(), dir.path()).unwrap();
        let alice = key("//Alice").account_id();
        let first = transfer(&chain, "//Alice", 0);
        chain.submit(&first).unwrap();
        assert_eq!(chain.next_nonce(&alice), 1);
        let err = chain.submit(&first).unwrap_err();
        assert!(matches!(err, SubmitError::AlreadyKnown { .. }), "{err}");
        // sr25519 signatures are randomized: a re-signed copy is new bytes with a stale nonce.
        let err = chain.submit(&transfer(&chain, "//Alice", 0)).unwrap_err();
        assert!(
            matches!(
                err,
                SubmitError::BadNonce {
                    expected: 1,
                    got: 0,
                    ..
                }
            ),
            "{err}"
        );
        let err = chain.submit(&first).unwrap_err();
        assert!(matches!(err, SubmitError::AlreadyKnown { .. }), "{err}");
        let err = chain.submit(&transfer(&chain, "//Alice", 2)).unwrap_err();
        assert!(
            matches!(
                err,
                SubmitError::BadNonce {
                    expected: 1,
                    got: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(chain.pending_count(), 1);
    }

    #[test]
    fn a_failing_extrinsic_is_left_out_and_marked_failed() {
        let dir = tempfile::tempdir().unwrap();
        let (mut chain, _) = Chain::open(&genesis(), dir.path()).unwrap();
        let stranger = key("//Miner5");
        let call = Call::SetCommitment {
            netuid: 1,
            data: vec![1],
        };
        let bytes = SignedExtrinsic::sign(call, 0, &chain.genesis_hash(), &stranger).encode();
        let tx = chain.submit(&bytes).unwrap();
        let head = chain.produce_block(2_000).unwrap();
        assert_eq!(head.extrinsic_count, 0);
        let TxStatus::Failed { block: 1, error } = chain.tx_status(&tx.0) else {
            panic!("{:?}", chain.tx_status(&tx.0))
        };
        assert!(error.contains("not registered"), "{error}");
        assert_eq!(chain.state().account(&stranger.account_id()).nonce, 0);
    }

    #[test]
    fn a_block_whose_state_root_does_not_replay_stops_the_start_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let (mut chain, _) = Chain::open(&genesis(), dir.path()).unwrap();
        chain.submit(&transfer(&chain, "//Alice", 0)).unwrap();
        chain.produce_block(2_000).unwrap();
        // Block 2 claims a state root the state machine does not produce; checksums are intact.
        let parent_hash = chain.block_hash(1).unwrap();
        drop(chain);
        let extrinsics: Vec<Vec<u8>> = Vec::new();
        let header = Header {
            number: 2,
            parent_hash,
            extrinsics_root: extrinsics_root(&extrinsics),
            state_root: [0xEE; 32],
            timestamp: 3_000,
        };
        let payload = Block { header, extrinsics }.encode();
        let mut record = (payload.len() as u32).to_le_bytes().to_vec();
        record.extend_from_slice(&(!(payload.len() as u32)).to_le_bytes());
        record.extend_from_slice(&sha256(&payload));
        record.extend_from_slice(&payload);
        assert_eq!(
            record.len() as u64,
            RECORD_HEADER_LEN + payload.len() as u64
        );
        let path = dir.path().join(LOG_FILE_NAME);
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .write_all(&record)
            .unwrap();

        let err = Chain::open(&genesis(), dir.path()).unwrap_err();
        assert!(matches!(err, NodeError::Replay { block: 2, .. }), "{err}");
        assert!(err.to_string().contains("state root"), "{err}");
    }

    #[test]
    fn new_heads_are_announced_after_the_block_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let (chain, _) = Chain::open(&genesis(), dir.path()).unwrap();
        let node = Node::new(chain);
        let mut heads = node.subscribe();
        let produced = node.produce_block(2_000).unwrap();
        assert_eq!(heads.try_recv().unwrap(), produced);
        assert_eq!(node.chain().head(), produced);
    }
}
