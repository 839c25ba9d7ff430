-- The chain head when the first extrinsic of a weight row's commit (or set_weights) was signed.
-- After a crash, a weight update of the validator's uid at or after this block means one of the
-- attempts landed, so no second commit is sent (see validator/src/service/submit.rs).
ALTER TABLE weight_commits ADD COLUMN submit_guard_block BIGINT;
