-- Commit–reveal v4: a weight row may be a timelocked commit, which the chain reveals by itself at
-- the reveal epoch (no salt, no hash, no reveal extrinsic; reveal_tx stays NULL).
ALTER TABLE weight_commits DROP CONSTRAINT weight_commits_mode_check;
ALTER TABLE weight_commits ADD CONSTRAINT weight_commits_mode_check
    CHECK (mode IN ('commit_reveal', 'set_weights', 'timelocked'));
