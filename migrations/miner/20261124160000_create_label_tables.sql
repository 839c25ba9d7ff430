-- The miner's RLHF label track: task batches sent by validators, the operator's labelers,
-- their browser sessions and one-time form tokens, and the labels (one per task and labeler).

CREATE TABLE batches (
    id             BIGSERIAL PRIMARY KEY,
    -- SS58 hotkey of the validator that sent the batch; only it may read the labels back.
    validator      TEXT        NOT NULL,
    batch_id       TEXT        NOT NULL,
    deadline_block BIGINT      NOT NULL CHECK (deadline_block >= 0),
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (validator, batch_id)
);

CREATE TABLE tasks (
    id       BIGSERIAL PRIMARY KEY,
    batch    BIGINT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    -- Order within the batch, so labelers see tasks in the order they were sent.
    position INT    NOT NULL,
    task_id  TEXT   NOT NULL,
    prompt   TEXT   NOT NULL,
    a        TEXT   NOT NULL,
    b        TEXT   NOT NULL,
    UNIQUE (batch, task_id),
    UNIQUE (batch, position)
);

CREATE TABLE labelers (
    id               BIGSERIAL PRIMARY KEY,
    name             TEXT        NOT NULL UNIQUE,
    -- sha256 (hex) of the pending one-time sign-in token; NULL once used.
    token_hash       TEXT UNIQUE,
    token_expires_at TIMESTAMPTZ,
    disabled         BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sessions (
    -- sha256 (hex) of the cookie value; the value itself is never stored.
    id_hash    TEXT PRIMARY KEY,
    labeler    BIGINT      NOT NULL REFERENCES labelers (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

-- One row per rendered answer form: the CSRF token (one use, bound to its session), the task
-- shown and when (a labeler's seconds are measured from the first showing).
CREATE TABLE form_tokens (
    token_hash TEXT PRIMARY KEY,
    session    TEXT        NOT NULL REFERENCES sessions (id_hash) ON DELETE CASCADE,
    task       BIGINT      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    shown_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at    TIMESTAMPTZ
);
CREATE INDEX form_tokens_task ON form_tokens (task);

CREATE TABLE labels (
    id         BIGSERIAL PRIMARY KEY,
    task       BIGINT      NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    labeler    BIGINT      NOT NULL REFERENCES labelers (id) ON DELETE CASCADE,
    choice     TEXT        NOT NULL CHECK (choice IN ('a', 'b', 'tie')),
    note       TEXT        NOT NULL DEFAULT '',
    seconds    DOUBLE PRECISION NOT NULL CHECK (seconds >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (task, labeler)
);
