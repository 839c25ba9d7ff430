-- The label track (validator/src/tracks/labels): every batch sent with its hidden truth, every
-- label collected and every score component, so an epoch's label scores can be recomputed and
-- the majority-labelled pairs exported as a preference dataset. Rows are written in one
-- transaction per epoch (db::save_label_track) and never updated. No foreign key to `epochs`:
-- the label track may be stored before or after the rest of its epoch.

-- One row per label miner per epoch: its batch, how the exchange went, the score components.
CREATE TABLE label_batches (
    netuid          INTEGER          NOT NULL,
    epoch           BIGINT           NOT NULL,
    hotkey          TEXT             NOT NULL,
    uid             INTEGER          NOT NULL,
    batch_id        TEXT             NOT NULL,
    deadline_block  BIGINT           NOT NULL,
    -- sha256(derive_seed(epoch seed, "labels") || validator secret), hex: rebuilds the batches.
    track_seed      TEXT             NOT NULL,
    -- ok, not_serving, unreachable, bad_status, timeout, malformed, too_large, no_labels
    outcome         TEXT             NOT NULL,
    reason          TEXT             NOT NULL DEFAULT '',
    dropped_labels  INTEGER          NOT NULL DEFAULT 0,
    -- Scoring parameters (JSON of ScoreParams) and the components they gave.
    params          JSONB            NOT NULL,
    sent            INTEGER          NOT NULL,
    answered        INTEGER          NOT NULL,
    known_sent      INTEGER          NOT NULL,
    known_answered  INTEGER          NOT NULL,
    known_correct   INTEGER          NOT NULL,
    known_wrong     INTEGER          NOT NULL,
    compared        INTEGER          NOT NULL,
    agreed          INTEGER          NOT NULL,
    accuracy        DOUBLE PRECISION NOT NULL,
    coverage        DOUBLE PRECISION NOT NULL,
    agreement       DOUBLE PRECISION NOT NULL,
    raw_score       DOUBLE PRECISION NOT NULL,
    score           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (netuid, epoch, hotkey)
);

-- Every task of every batch, as sent, with the truth the miner never saw.
CREATE TABLE label_tasks (
    netuid    INTEGER NOT NULL,
    epoch     BIGINT  NOT NULL,
    hotkey    TEXT    NOT NULL,
    task_id   TEXT    NOT NULL,
    -- Place in the batch as sent.
    position  INTEGER NOT NULL,
    -- The pair behind the task, shared by the miners of the epoch (k* known, o* open).
    pair_id   TEXT    NOT NULL,
    prompt    TEXT    NOT NULL,
    a         TEXT    NOT NULL,
    b         TEXT    NOT NULL,
    known     BOOLEAN NOT NULL,
    -- True when the pair's first answer (the correct one of a known pair) was shown as B.
    swapped   BOOLEAN NOT NULL,
    PRIMARY KEY (netuid, epoch, hotkey, task_id),
    FOREIGN KEY (netuid, epoch, hotkey) REFERENCES label_batches (netuid, epoch, hotkey) ON DELETE CASCADE
);

-- The labels accepted from each miner (one per task and labeler).
CREATE TABLE labels (
    netuid   INTEGER          NOT NULL,
    epoch    BIGINT           NOT NULL,
    hotkey   TEXT             NOT NULL,
    task_id  TEXT             NOT NULL,
    labeler  TEXT             NOT NULL,
    choice   TEXT             NOT NULL CHECK (choice IN ('a', 'b', 'tie')),
    seconds  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (netuid, epoch, hotkey, task_id, labeler),
    FOREIGN KEY (netuid, epoch, hotkey, task_id)
        REFERENCES label_tasks (netuid, epoch, hotkey, task_id) ON DELETE CASCADE
);

CREATE INDEX label_batches_by_hotkey ON label_batches (netuid, hotkey, epoch DESC);
CREATE INDEX label_tasks_open_pairs ON label_tasks (netuid, epoch, pair_id) WHERE NOT known;
