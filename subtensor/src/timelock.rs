//! The reveal round of a commit–reveal v4 commit on Subtensor: [`EpochSchedule`] predicts the
//! block at which the chain reveals a commit and the drand quicknet round to encrypt it to, as
//! the SDK does. The payload and its encryption are [`subnet_common::timelock`]'s, re-exported.

pub use subnet_common::timelock::*;

/// A subnet's epoch schedule as the chain stores it at the head (`LastEpochBlock`,
/// `PendingEpochAt`, `SubnetEpochIndex`, `Tempo`, `BlocksSinceLastStep`) and the head's number:
/// what predicting a commit's reveal block needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSchedule {
    /// Block of the subnet's last epoch.
    pub last_epoch_block: u64,
    /// A pending owner-triggered epoch's block (0: none).
    pub pending_epoch_at: u64,
    /// The subnet's epoch counter.
    pub subnet_epoch_index: u64,
    /// Blocks per epoch (0: the subnet runs no epochs).
    pub tempo: u16,
    /// Blocks since the subnet's last step.
    pub blocks_since_last_step: u64,
    /// The head's number.
    pub current_block: u64,
}

/// Why no reveal block can be predicted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Tempo 0: the subnet runs no epochs, so nothing is ever revealed.
    #[error("the subnet's tempo is 0: it runs no epochs")]
    NoEpochs,
    /// No block within the search bound reaches the reveal epoch.
    #[error("no reveal block within {0} blocks")]
    OutOfBound(u64),
}

/// The chain's largest tempo; a subnet this many blocks past its last step runs an epoch anyway.
const MAX_TEMPO: u64 = 50_400;

/// A commit lands in the block after the head it was built against.
const INCLUSION_DELAY: u64 = 1;

/// Blocks past the reveal block whose beacon pulse the reveal round aims at, so the pulse is
/// already on chain when the reveal runs.
const PULSE_MARGIN_BLOCKS: u64 = 3;

impl EpochSchedule {
    /// Whether the subnet's epoch runs at `block`.
    fn epoch_runs_at(&self, block: u64) -> bool {
        if self.tempo == 0 {
            return false;
        }
        (self.pending_epoch_at > 0 && block >= self.pending_epoch_at)
            || self.blocks_since_last_step > MAX_TEMPO
            || block.saturating_sub(self.last_epoch_block) >= u64::from(self.tempo)
    }

    /// The epoch index reveals see at `block` (they run before the block's epoch step).
    fn index_seen_at(&self, block: u64) -> u64 {
        self.subnet_epoch_index + u64::from(self.epoch_runs_at(block))
    }

    /// The schedule after the chain's step at `block`.
    fn step(mut self, block: u64) -> Self {
        self.blocks_since_last_step += 1;
        self.current_block = block;
        if self.epoch_runs_at(block) {
            self.last_epoch_block = block;
            self.pending_epoch_at = 0;
            self.subnet_epoch_index += 1;
            self.blocks_since_last_step = 0;
        }
        self
    }

    /// The first block at which the chain reveals a commit built against this head, with the
    /// subnet's reveal period of `reveal_epochs` epochs: the commit lands in the next block, in
    /// the epoch the chain's reveals see there, and is revealed at the first block whose reveals
    /// see `reveal_epochs` epochs more.
    pub fn first_reveal_block(&self, reveal_epochs: u64) -> Result<u64, ScheduleError> {
        if self.tempo == 0 {
            return Err(ScheduleError::NoEpochs);
        }
        let landed = self.current_block + INCLUSION_DELAY;
        let mut state = *self;
        for block in self.current_block + 1..landed {
            state = state.step(block);
        }
        let target = state.index_seen_at(landed) + reveal_epochs;
        let bound = reveal_epochs
            .saturating_mul(MAX_TEMPO)
            .saturating_add(MAX_TEMPO);
        for block in landed..=landed.saturating_add(bound) {
            if state.index_seen_at(block) == target {
                return Ok(block);
            }
            state = state.step(block);
        }
        Err(ScheduleError::OutOfBound(bound))
    }

    /// The quicknet round to encrypt a commit to, as the SDK picks it: the round current
    /// [`PULSE_MARGIN_BLOCKS`] after the reveal block, with blocks of `block_secs` seconds
    /// counted from `now_unix_secs`.
    pub fn reveal_round(
        &self,
        reveal_epochs: u64,
        block_secs: f64,
        now_unix_secs: f64,
    ) -> Result<u64, ScheduleError> {
        let reveal = self.first_reveal_block(reveal_epochs)?;
        let blocks = (reveal + PULSE_MARGIN_BLOCKS).saturating_sub(self.current_block);
        let at = now_unix_secs + blocks as f64 * block_secs;
        let round = ((at - QUICKNET_GENESIS as f64) / QUICKNET_PERIOD as f64).floor();
        Ok((round as u64).max(1))
    }
}
