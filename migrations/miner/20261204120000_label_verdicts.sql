-- A labeler may also answer "both bad" (sent to validators as a tie) or "skip" (stored so the
-- task is not shown again, never sent): miner/src/db `Verdict`.
ALTER TABLE labels DROP CONSTRAINT labels_choice_check;
ALTER TABLE labels ADD CONSTRAINT labels_choice_check
    CHECK (choice IN ('a', 'b', 'tie', 'both_bad', 'skip'));
