-- The subnet's tempo when each epoch was scored (NULL for epochs stored before this column).
-- `epoch` is the validator's own epoch number: the chain's legacy index while the tempo never
-- changed, numbered on from the last stored epoch once a tempo change moved the index back
-- (validator/src/service/schedule.rs). A commit made under another tempo than today's is
-- re-planned (validator/src/service/submit.rs).
ALTER TABLE epochs ADD COLUMN tempo INTEGER;
