-- The label track's sequential noise test (tracks::labels::score::NoiseTest): a miner whose
-- decisive known answers over the window look like noise is flagged and scores 0. Rows stored
-- before the test were never flagged.
ALTER TABLE label_batches ADD COLUMN noise BOOLEAN NOT NULL DEFAULT FALSE;
