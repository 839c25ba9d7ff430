-- Whether a task's pair came from the epoch's shared pool (other miners may have been sent it) or
-- was the miner's own (`x…` pair ids). Batches stored before own pairs existed were all shared.
ALTER TABLE label_tasks ADD COLUMN shared BOOLEAN NOT NULL DEFAULT TRUE;
