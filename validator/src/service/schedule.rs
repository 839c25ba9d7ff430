//! When epochs start (pure): Subtensor's legacy schedule (`spec/subtensor.md` §1.9), which the
//! dev chain follows and the commit–reveal epoch index still uses.
//!
//! Subnet `netuid` runs its epoch at block `b` when `(b + netuid + 1) % (tempo + 1) == 0`; the
//! epoch index of a block is `(b + netuid + 1) / (tempo + 1)`. So epoch `e ≥ 1` starts at block
//! `e · (tempo + 1) − (netuid + 1)`, exactly where the chain ran Yuma Consensus, and epoch 0 is the
//! stretch from genesis to the first such block.

/// The epoch schedule of one subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSchedule {
    /// The subnet.
    pub netuid: u16,
    /// Blocks per epoch (the chain's `tempo`); 0 means epochs never run.
    pub tempo: u16,
}

impl EpochSchedule {
    /// The schedule of `netuid` with `tempo` blocks per epoch.
    pub fn new(netuid: u16, tempo: u16) -> Self {
        Self { netuid, tempo }
    }

    fn period(self) -> u64 {
        u64::from(self.tempo) + 1
    }

    fn offset(self) -> u64 {
        u64::from(self.netuid) + 1
    }

    /// The legacy epoch index of `block`. With tempo 0 every block is in epoch 0.
    pub fn epoch_of(self, block: u64) -> u64 {
        if self.tempo == 0 {
            return 0;
        }
        (block + self.offset()) / self.period()
    }

    /// The first block of `epoch` (0 for epoch 0 and for tempo 0).
    pub fn first_block(self, epoch: u64) -> u64 {
        if self.tempo == 0 {
            return 0;
        }
        (epoch.saturating_mul(self.period())).saturating_sub(self.offset())
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

    fn start_of(netuid: u16, tempo: u16, epoch: u64) -> u64 {
        EpochSchedule::new(netuid, tempo).first_block(epoch)
    }
}
