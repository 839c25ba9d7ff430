//! What the node remembers of past states: each subnet's commitments after every block that
//! changed them, so a reader can ask for the commitments *at* a block (as Substrate answers a
//! storage read at a block hash). Validators read them at the epoch's seed block, so two honest
//! validators agree whatever the head was when each read.
//!
//! Not part of the consensus state (no state root covers it): it is rebuilt by replay on start.

use std::collections::{BTreeMap, VecDeque};

use subnet_common::chain::rpc::H256;
use subnet_common::chain::types::{Commitment, NetUid};

use crate::state::State;

/// How many changes of one subnet's commitments are kept; reads before the oldest kept change
/// are refused. Commitments change at most once per hotkey per rate-limit window, so this spans
/// many epochs.
pub const MAX_SNAPSHOTS_PER_SUBNET: usize = 512;

/// Why commitments at a block cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// No block has this hash.
    #[error("no block has hash {0}")]
    UnknownBlock(H256),
    /// No such subnet at that block.
    #[error("subnet {netuid} does not exist at block {block}")]
    UnknownSubnet {
        /// The subnet.
        netuid: NetUid,
        /// The block asked for.
        block: u64,
    },
    /// The block is older than what is kept.
    #[error(
        "the commitments of subnet {netuid} at block {block} are no longer kept (kept from block {oldest})"
    )]
    Pruned {
        /// The subnet.
        netuid: NetUid,
        /// The block asked for.
        block: u64,
        /// The oldest block whose commitments are known.
        oldest: u64,
    },
}

/// Per subnet: `(block, commitments from that block on)`, oldest first.
#[derive(Debug, Default, Clone)]
pub struct CommitmentHistory {
    subnets: BTreeMap<NetUid, Snapshots>,
}

#[derive(Debug, Default, Clone)]
struct Snapshots {
    /// `(block, commitments)` after each block that changed them, oldest first.
    changes: VecDeque<(u64, Vec<Commitment>)>,
    /// True once a change was dropped: blocks before the oldest kept change are unknown.
    pruned: bool,
}

impl CommitmentHistory {
    /// Records the commitments of every subnet of `state`, the state after `block`, where they
    /// differ from the last recorded ones.
    pub fn record(&mut self, block: u64, state: &State) {
        for netuid in state.netuids() {
            let Some(now) = state.commitments(netuid) else {
                continue;
            };
            let snapshots = self.subnets.entry(netuid).or_default();
            if snapshots.changes.back().map(|(_, c)| c) == Some(&now) {
                continue;
            }
            snapshots.changes.push_back((block, now));
            if snapshots.changes.len() > MAX_SNAPSHOTS_PER_SUBNET {
                snapshots.changes.pop_front();
                snapshots.pruned = true;
            }
        }
    }

    /// The commitments of `netuid` in the state after `block`.
    pub fn at(&self, netuid: NetUid, block: u64) -> Result<Vec<Commitment>, HistoryError> {
        let unknown = HistoryError::UnknownSubnet { netuid, block };
        let snapshots = self.subnets.get(&netuid).ok_or(unknown.clone())?;
        let kept_from = snapshots.changes.partition_point(|(b, _)| *b <= block);
        match kept_from.checked_sub(1) {
            Some(index) => Ok(snapshots.changes[index].1.clone()),
            None if snapshots.pruned => Err(HistoryError::Pruned {
                netuid,
                block,
                oldest: snapshots.changes.front().map_or(block, |(b, _)| *b),
            }),
            // Before the subnet's first recorded state: it did not exist yet.
            None => Err(unknown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use subnet_common::keys::AccountId;

    fn commitment(byte: u8, block: u64) -> Vec<Commitment> {
        vec![Commitment {
            hotkey: AccountId([byte; 32]),
            uid: 0,
            block,
            data: vec![byte],
        }]
    }

    fn history(changes: &[(u64, Vec<Commitment>)], pruned: bool) -> CommitmentHistory {
        let mut history = CommitmentHistory::default();
        history.subnets.insert(
            1,
            Snapshots {
                changes: changes.iter().cloned().collect(),
                pruned,
            },
        );
        history
    }

    #[test]
    fn a_read_at_a_block_sees_the_last_change_at_or_before_it() {
        let h = history(
            &[(0, vec![]), (5, commitment(1, 5)), (9, commitment(2, 9))],
            false,
        );
        assert_eq!(h.at(1, 0), Ok(vec![]));
        assert_eq!(h.at(1, 4), Ok(vec![]));
        assert_eq!(h.at(1, 5), Ok(commitment(1, 5)));
        assert_eq!(h.at(1, 8), Ok(commitment(1, 5)));
        assert_eq!(h.at(1, 100), Ok(commitment(2, 9)));
        assert!(matches!(
            h.at(2, 5),
            Err(HistoryError::UnknownSubnet { netuid: 2, .. })
        ));
    }

    #[test]
    fn a_read_before_the_kept_changes_is_refused_once_some_were_dropped() {
        let h = history(&[(5, commitment(1, 5))], true);
        assert_eq!(
            h.at(1, 4),
            Err(HistoryError::Pruned {
                netuid: 1,
                block: 4,
                oldest: 5
            })
        );
        let h = history(&[(5, commitment(1, 5))], false);
        assert!(matches!(
            h.at(1, 4),
            Err(HistoryError::UnknownSubnet { .. })
        ));
    }
}
