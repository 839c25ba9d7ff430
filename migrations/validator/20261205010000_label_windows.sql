-- Label windows may span epochs (`validator run --labels.deadline-blocks` above the tempo): the
-- batches built and sent in one epoch are collected, and paid, in the epoch their deadline falls
-- in. `label_batches.epoch` is that collection epoch, whose weights the scores feed; `sent_epoch`
-- is the epoch the batches were sent in (NULL in rows stored before: the same epoch).
ALTER TABLE label_batches ADD COLUMN sent_epoch BIGINT;

-- Batches sent and not collected yet, with their hidden truth (JSON of
-- tracks::labels::StoredSent), so that a restart collects them instead of sending new ones. The
-- row is deleted in the transaction that stores the collected labels (db::save_label_track).
CREATE TABLE label_pending (
    netuid          INTEGER     NOT NULL,
    -- The epoch the batches were sent in.
    epoch           BIGINT      NOT NULL,
    deadline_block  BIGINT      NOT NULL,
    batches         JSONB       NOT NULL,
    stored_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (netuid, epoch)
);
