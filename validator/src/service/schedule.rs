//! When epochs start (pure): Subtensor's legacy schedule (`spec/subtensor.md` §1.9), which the
//! dev chain follows and the commit–reveal epoch index still uses.
//!
//! Subnet `netuid` runs its epoch at block `b` when `(b + netuid + 1) % (tempo + 1) == 0`; the
//! epoch index of a block is `(b + netuid + 1) / (tempo + 1)`. So epoch `e ≥ 1` starts at block
//! `e · (tempo + 1) − (netuid + 1)`, exactly where the chain ran Yuma Consensus, and epoch 0 is the
//! stretch from genesis to the first such block.
//!
//! That index is not monotone: a smaller tempo moves it forward, a larger one back (41 → 29 after
//! `tempo 10 → 30`). The validator stores its epochs under its own number, which only grows
//! ([`EpochSchedule::numbered`]): the chain's index plus an offset that is 0 until the index goes
//! back below an epoch already stored, and then numbers the chain's epochs on from it.

/// The epoch schedule of one subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSchedule {
    /// The subnet.
    pub netuid: u16,
    /// Blocks per epoch (the chain's `tempo`); 0 means epochs never run.
    pub tempo: u16,
    /// Added to the chain's epoch index to give the validator's epoch number (0: the chain's
    /// index itself; see [`EpochSchedule::numbered`]).
    pub offset: u64,
}

/// The latest epoch the validator stored: its number and first block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredEpoch {
    /// The validator's number of the epoch.
    pub epoch: u64,
    /// Its first block.
    pub start_block: u64,
}

impl EpochSchedule {
    /// The schedule of `netuid` with `tempo` blocks per epoch, numbered by the chain's index.
    pub fn new(netuid: u16, tempo: u16) -> Self {
        Self {
            netuid,
            tempo,
            offset: 0,
        }
    }

    /// The schedule numbered on from `latest`, the last epoch stored, so that numbers only grow
    /// whatever the tempo did. The chain epoch holding `latest`'s first block keeps `latest`'s
    /// number, and each later chain epoch one more, unless the chain's own index is higher (it
    /// is, without tempo changes: the offset stays 0, or returns to it once the index passes
    /// the numbers used). With tempo 0 (no epochs) the chain's schedule.
    pub fn numbered(netuid: u16, tempo: u16, latest: Option<StoredEpoch>, head: u64) -> Self {
        let chain = Self::new(netuid, tempo);
        let Some(latest) = latest else {
            return chain;
        };
        if tempo == 0 {
            return chain;
        }
        let index = chain.epoch_of(head);
        // The chain epoch holding the latest stored epoch's first block, under today's tempo.
        let base = chain.epoch_of(latest.start_block);
        let number = match index.checked_sub(base) {
            // The head is still in it (or, after a reorg, before it): that number.
            Some(0) | None => latest.epoch,
            Some(since) => index.max(latest.epoch.saturating_add(since)),
        };
        Self {
            offset: number.saturating_sub(index),
            ..chain
        }
    }

    fn period(self) -> u64 {
        u64::from(self.tempo) + 1
    }

    fn netuid_offset(self) -> u64 {
        u64::from(self.netuid) + 1
    }

    /// The epoch number of `block`: the legacy epoch index plus [`offset`](Self::offset). With
    /// tempo 0 every block is in epoch 0.
    pub fn epoch_of(self, block: u64) -> u64 {
        if self.tempo == 0 {
            return 0;
        }
        (block + self.netuid_offset()) / self.period() + self.offset
    }

    /// The chain's own epoch index of `block` (the offset left out).
    pub fn chain_epoch_of(self, block: u64) -> u64 {
        Self { offset: 0, ..self }.epoch_of(block)
    }

    /// The first block of epoch number `epoch` (0 for epoch 0, for tempo 0, and for numbers
    /// below the offset).
    pub fn first_block(self, epoch: u64) -> u64 {
        if self.tempo == 0 {
            return 0;
        }
        let index = epoch.saturating_sub(self.offset);
        (index.saturating_mul(self.period())).saturating_sub(self.netuid_offset())
    }

    /// The first block of the epoch after the one holding `block`; `None` with tempo 0.
    pub fn next_epoch_start(self, block: u64) -> Option<u64> {
        (self.tempo != 0).then(|| self.first_block(self.epoch_of(block) + 1))
    }

    /// The last block of `epoch`.
    pub fn last_block(self, epoch: u64) -> u64 {
        self.first_block(epoch + 1)
            .saturating_sub(1)
            .max(self.first_block(epoch))
    }

    /// The deadline of the label batches sent in `epoch`: `blocks` after its first block
    /// (default: half the tempo, at least 1). More blocks than the tempo make the window span
    /// epochs: the batches are then collected, and paid, in the epoch the deadline falls in.
    pub fn label_deadline(self, epoch: u64, blocks: Option<u64>) -> u64 {
        let blocks = blocks.unwrap_or(u64::from(self.tempo) / 2).max(1);
        self.first_block(epoch).saturating_add(blocks)
    }

    /// The deadline of label batches of `epoch` sent at block `head`: the planned
    /// [`label_deadline`](Self::label_deadline) while at least half its window (the blocks from
    /// the epoch's first block to it) is left; later (a turn that started late, slow answers),
    /// the whole window counted from `head` but ending before the last block of the epoch the
    /// planned deadline is in (the labels are collected once the deadline block is over), so
    /// labelers still get time and the collecting turn ends in its epoch (the next one then
    /// starts on time instead of late again); at least the block after `head`.
    pub fn label_deadline_sent_at(self, epoch: u64, blocks: Option<u64>, head: u64) -> u64 {
        let planned = self.label_deadline(epoch, blocks);
        let window = planned.saturating_sub(self.first_block(epoch)).max(1);
        if head.saturating_add(window / 2) <= planned {
            return planned;
        }
        let last = self.last_block(self.epoch_of(planned)).saturating_sub(1);
        head.saturating_add(window)
            .min(last)
            .max(planned)
            .max(head.saturating_add(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_index_matches_the_chain_formula() {
        // Subtensor's formula, and the dev chain's own test: netuid 1, tempo 9 → blocks 0..=7
        // are epoch 0, block 8 starts epoch 1.
        let s = EpochSchedule::new(1, 9);
        assert_eq!(s.epoch_of(0), 0);
        assert_eq!(s.epoch_of(7), 0);
        assert_eq!(s.epoch_of(8), 1);
        assert_eq!(s.epoch_of(17), 1);
        assert_eq!(s.epoch_of(18), 2);
    }

    #[test]
    fn first_block_is_where_the_chain_runs_the_epoch() {
        for (netuid, tempo) in [(1u16, 20u16), (3, 10), (0, 360), (7, 1)] {
            let s = EpochSchedule::new(netuid, tempo);
            // Epochs that would start before genesis all map to block 0; start after them.
            for epoch in s.epoch_of(0) + 1..50 {
                let first = s.first_block(epoch);
                // The chain's "epoch runs at b" rule.
                assert_eq!(
                    (first + u64::from(netuid) + 1) % (u64::from(tempo) + 1),
                    0,
                    "netuid {netuid} tempo {tempo} epoch {epoch}"
                );
                assert_eq!(s.epoch_of(first), epoch);
                assert_eq!(s.epoch_of(first - 1), epoch - 1);
            }
        }
        assert_eq!(EpochSchedule::new(1, 20).first_block(0), 0);
        assert_eq!(EpochSchedule::new(1, 20).first_block(1), 19);
    }

    #[test]
    fn next_epoch_start_is_strictly_after_the_block() {
        let s = EpochSchedule::new(1, 20);
        assert_eq!(s.next_epoch_start(0), Some(19));
        assert_eq!(s.next_epoch_start(18), Some(19));
        assert_eq!(s.next_epoch_start(19), Some(40));
        assert_eq!(EpochSchedule::new(1, 0).next_epoch_start(5), None);
    }

    #[test]
    fn the_label_deadline_is_half_the_tempo_in_or_the_blocks_asked_for() {
        let schedule = EpochSchedule::new(1, 10);
        let start = schedule.first_block(5);
        let last = schedule.first_block(6) - 1;
        assert_eq!(schedule.label_deadline(5, None), start + 5);
        assert_eq!(schedule.label_deadline(5, Some(3)), start + 3);
        assert_eq!(schedule.label_deadline(5, Some(0)), start + 1);
        // More blocks than the tempo: the window spans epochs.
        assert_eq!(schedule.label_deadline(5, Some(1_000)), start + 1_000);
        assert_eq!(schedule.last_block(5), last);
        assert_eq!(
            EpochSchedule::new(1, 1).label_deadline(5, None),
            start_of(1, 1, 5) + 1
        );
    }

    #[test]
    fn late_label_batches_get_what_is_left_of_the_window_inside_the_epoch() {
        let schedule = EpochSchedule::new(1, 20);
        let start = schedule.first_block(7);
        let last = schedule.first_block(8) - 1;
        let planned = schedule.label_deadline(7, None);
        assert_eq!(planned, start + 10);
        // Sent at the start or with half the window left: the planned deadline.
        assert_eq!(schedule.label_deadline_sent_at(7, None, start), planned);
        assert_eq!(schedule.label_deadline_sent_at(7, None, start + 5), planned);
        // Later: ten blocks from then, but ending before the epoch's last block, where the
        // labels are collected.
        assert_eq!(
            schedule.label_deadline_sent_at(7, None, start + 6),
            start + 16
        );
        assert_eq!(
            schedule.label_deadline_sent_at(7, None, start + 15),
            last - 1
        );
        assert_eq!(schedule.label_deadline_sent_at(7, None, last), last + 1);
        // Sent after the epoch (the answers took that long): the next block.
        assert_eq!(
            schedule.label_deadline_sent_at(7, None, start + 30),
            start + 31
        );
        // A one-block window is kept until its block.
        let one = schedule.label_deadline(7, Some(1));
        assert_eq!(schedule.label_deadline_sent_at(7, Some(1), start), one);
        assert_eq!(schedule.label_deadline_sent_at(7, Some(1), one), one);
        assert_eq!(
            schedule.label_deadline_sent_at(7, Some(1), one + 1),
            one + 2
        );
    }

    #[test]
    fn a_window_spanning_epochs_sent_late_still_ends_in_its_collecting_epoch() {
        let schedule = EpochSchedule::new(1, 20);
        let start = schedule.first_block(7);
        let planned = schedule.label_deadline(7, Some(50));
        assert_eq!(planned, start + 50);
        assert_eq!(schedule.epoch_of(planned), 9, "collected two epochs later");
        assert_eq!(
            schedule.label_deadline_sent_at(7, Some(50), start + 25),
            planned
        );
        // Half the window gone: fifty blocks from then, but ending before epoch 9's last block.
        assert_eq!(
            schedule.label_deadline_sent_at(7, Some(50), start + 30),
            schedule.last_block(9) - 1
        );
    }

    #[test]
    fn a_validator_that_starts_late_is_back_on_time_the_next_epoch() {
        // The label window is where a turn spends its time: a turn of epoch e that starts late
        // ends by e's last block, so the turn of e + 1 starts at e + 1's first block and keeps
        // the planned deadline.
        let schedule = EpochSchedule::new(1, 20);
        for late in 0..=20 {
            let head = schedule.first_block(7) + late;
            let deadline = schedule.label_deadline_sent_at(7, None, head);
            let next = schedule.first_block(8);
            assert!(
                deadline <= next,
                "started {late} blocks in: deadline {deadline}"
            );
            assert_eq!(
                schedule.label_deadline_sent_at(8, None, next.max(deadline)),
                schedule.label_deadline(8, None),
                "started {late} blocks in"
            );
        }
    }

    #[test]
    fn epoch_numbers_only_grow_whatever_the_tempo_does() {
        let netuid = 1;
        // Scored with tempo 10 up to epoch 41 (the README's devnet, then `tempo 30`).
        let old = EpochSchedule::new(netuid, 10);
        let latest = StoredEpoch {
            epoch: 41,
            start_block: old.first_block(41),
        };
        assert_eq!(latest.start_block, 449);
        // Still in it: the same number, so it is not scored again.
        let same = EpochSchedule::numbered(netuid, 10, Some(latest), 455);
        assert_eq!((same.offset, same.epoch_of(455)), (0, 41));
        // The tempo becomes 30: the chain's index of block 460 is 14, below 41.
        let chain = EpochSchedule::new(netuid, 30);
        assert_eq!(chain.epoch_of(460), 14);
        assert_eq!(
            chain.epoch_of(latest.start_block),
            14,
            "449 and 460 share an epoch"
        );
        // The chain epoch holding the last scored block keeps its number...
        let numbered = EpochSchedule::numbered(netuid, 30, Some(latest), 460);
        assert_eq!(numbered.epoch_of(460), 41);
        // ... and the next ones follow it, at the chain's new boundaries.
        let next = chain.next_epoch_start(460).expect("tempo > 0");
        assert_eq!(next, 463);
        let numbered = EpochSchedule::numbered(netuid, 30, Some(latest), next);
        assert_eq!(numbered.epoch_of(next), 42);
        assert_eq!(numbered.first_block(42), next);
        assert_eq!(numbered.last_block(42), next + 30);
        assert_eq!(numbered.chain_epoch_of(next), 15);
        // A validator that was down for three epochs skips three numbers.
        let later = chain.first_block(18) + 3;
        let numbered = EpochSchedule::numbered(netuid, 30, Some(latest), later);
        assert_eq!(numbered.epoch_of(later), 45);
        // Numbering from epoch 42 on keeps the same offset.
        let stored = StoredEpoch {
            epoch: 42,
            start_block: next,
        };
        let again = EpochSchedule::numbered(netuid, 30, Some(stored), later);
        assert_eq!(again.epoch_of(later), 45);
        // The tempo drops to 5: the index (near 90) passes the numbers used; they follow it.
        let fast = EpochSchedule::new(netuid, 5);
        let head = later + 20;
        let numbered = EpochSchedule::numbered(netuid, 5, Some(stored), head);
        assert_eq!(numbered.offset, 0);
        assert_eq!(numbered.epoch_of(head), fast.epoch_of(head));
        assert!(fast.epoch_of(head) > 45);
        // Nothing stored, or tempo 0: the chain's index.
        assert_eq!(EpochSchedule::numbered(netuid, 30, None, 460), chain);
        assert_eq!(
            EpochSchedule::numbered(netuid, 0, Some(latest), 460),
            EpochSchedule::new(netuid, 0)
        );
    }

    fn start_of(netuid: u16, tempo: u16, epoch: u64) -> u64 {
        EpochSchedule::new(netuid, tempo).first_block(epoch)
    }
}
