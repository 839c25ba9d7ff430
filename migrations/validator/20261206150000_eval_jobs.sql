-- Evaluation jobs for `validator worker` processes (validator/src/workers.rs): Postgres is the
-- queue. The epoch loop inserts one row per model to evaluate; a worker takes the oldest open
-- row with `FOR UPDATE SKIP LOCKED`, holds it under a lease it renews while it works, and writes
-- its result only while its attempt is the row's latest (`attempts`), so a worker whose lease
-- ran out (killed, paused, cut off) can neither lose the job (another worker takes it) nor
-- count it twice. The loop deletes a row when it reads its result or gives it up. Payloads and
-- results are CBOR (floats exact, NaN included: a model's losses may be NaN).
CREATE TABLE eval_jobs (
    id BIGSERIAL PRIMARY KEY,
    netuid INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    payload BYTEA NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'running', 'done')),
    attempts INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    lease_until TIMESTAMPTZ,
    result BYTEA,
    queued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX eval_jobs_open ON eval_jobs (id) WHERE state <> 'done';
