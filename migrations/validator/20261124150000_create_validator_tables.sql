-- The validator's record of every epoch it scored: raw inputs, outcomes, scores and the
-- weights it committed, so `validator verify --epoch N` can recompute them and a restart
-- resumes instead of repeating work. Hotkeys are SS58 text; hashes are lowercase hex text.

CREATE TABLE epochs (
    netuid             INTEGER     NOT NULL,
    -- Legacy epoch index: (block + netuid + 1) / (tempo + 1) at the epoch's first block.
    epoch              BIGINT      NOT NULL,
    start_block        BIGINT      NOT NULL,
    block_hash         TEXT        NOT NULL,
    -- sha256(block_hash || netuid LE): every honest validator evaluates the same samples.
    seed               TEXT        NOT NULL,
    competition_sha256 TEXT        NOT NULL,
    -- Block of the chain head when scoring started (commitments at least eval_block_delay older count).
    scored_block       BIGINT      NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms        BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (netuid, epoch)
);

-- Every hotkey seen on the subnet; a re-registered uid gets a new hotkey row and starts from zero.
CREATE TABLE miners (
    netuid                INTEGER NOT NULL,
    hotkey                TEXT    NOT NULL,
    uid                   INTEGER NOT NULL,
    coldkey               TEXT    NOT NULL,
    block_at_registration BIGINT  NOT NULL,
    first_seen_epoch      BIGINT  NOT NULL,
    last_seen_epoch       BIGINT  NOT NULL,
    PRIMARY KEY (netuid, hotkey)
);

-- One row per miner per epoch of the model track: what was fetched, how it went, the losses.
CREATE TABLE model_evals (
    netuid          INTEGER          NOT NULL,
    epoch           BIGINT           NOT NULL,
    hotkey          TEXT             NOT NULL,
    uid             INTEGER          NOT NULL,
    manifest_sha256 TEXT,
    commit_block    BIGINT,
    -- ok, no_commitment, too_recent, timeout, hash_mismatch, too_large, bad_model, copy, ...
    outcome         TEXT             NOT NULL,
    reason          TEXT             NOT NULL DEFAULT '',
    mean_loss       DOUBLE PRECISION,
    win_rate        DOUBLE PRECISION,
    score           DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- Per-sample losses and completion token counts, in sample order (raw data for verify).
    sample_losses   DOUBLE PRECISION[] NOT NULL DEFAULT '{}',
    sample_tokens   INTEGER[]          NOT NULL DEFAULT '{}',
    PRIMARY KEY (netuid, epoch, hotkey),
    FOREIGN KEY (netuid, epoch) REFERENCES epochs (netuid, epoch) ON DELETE CASCADE
);

-- Scores per track, their combination and the EMA that becomes the weight.
CREATE TABLE scores (
    netuid      INTEGER          NOT NULL,
    epoch       BIGINT           NOT NULL,
    hotkey      TEXT             NOT NULL,
    uid         INTEGER          NOT NULL,
    model_score DOUBLE PRECISION NOT NULL,
    label_score DOUBLE PRECISION NOT NULL,
    combined    DOUBLE PRECISION NOT NULL,
    ema         DOUBLE PRECISION NOT NULL,
    weight      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (netuid, epoch, hotkey),
    FOREIGN KEY (netuid, epoch) REFERENCES epochs (netuid, epoch) ON DELETE CASCADE
);

-- The weights of an epoch and their way onto the chain. Inserted as 'pending' in the same
-- transaction as the scores, so a crash between scoring and committing resumes the commit
-- instead of scoring again; the unique key makes a second commit of an epoch impossible.
CREATE TABLE weight_commits (
    netuid       INTEGER   NOT NULL,
    epoch        BIGINT    NOT NULL,
    uids         INTEGER[] NOT NULL,
    weights      INTEGER[] NOT NULL,
    salt         INTEGER[] NOT NULL,
    version_key  BIGINT    NOT NULL,
    -- commit_reveal: commit_hash then reveal next epoch; set_weights: one plain call.
    mode         TEXT      NOT NULL CHECK (mode IN ('commit_reveal', 'set_weights')),
    commit_hash  TEXT,
    status       TEXT      NOT NULL CHECK (status IN ('pending', 'committed', 'revealed', 'set', 'failed', 'expired')),
    commit_tx    TEXT,
    commit_block BIGINT,
    reveal_tx    TEXT,
    reveal_block BIGINT,
    error        TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (netuid, epoch),
    FOREIGN KEY (netuid, epoch) REFERENCES epochs (netuid, epoch) ON DELETE CASCADE
);

CREATE INDEX weight_commits_open ON weight_commits (netuid, status) WHERE status IN ('pending', 'committed');
CREATE INDEX scores_by_hotkey ON scores (netuid, hotkey, epoch DESC);
CREATE INDEX model_evals_by_hotkey ON model_evals (netuid, hotkey, epoch DESC);
