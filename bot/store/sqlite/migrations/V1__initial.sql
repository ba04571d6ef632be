-- Jobs and the usage ledger. Times are UTC ISO-8601 text ("2026-11-20T12:34:56.000000+00:00"),
-- which sorts in time order. Discord snowflakes fit SQLite's signed 64-bit INTEGER.

-- AUTOINCREMENT: job ids end up in persistent button custom_ids, so an id must never be reused.
CREATE TABLE jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          INTEGER NOT NULL,
    channel_id        INTEGER NOT NULL,
    member_id         INTEGER NOT NULL,
    prompt            TEXT    NOT NULL,
    image_url         TEXT    NOT NULL,
    last_frame_url    TEXT,
    resolution        TEXT    NOT NULL,
    duration          INTEGER NOT NULL CHECK (duration > 0),
    credits           INTEGER NOT NULL CHECK (credits >= 0),
    state             TEXT    NOT NULL CHECK (state IN (
                          'accepted', 'submitting', 'queued', 'running', 'delivering',
                          'delivered', 'failed', 'cancelled', 'timed_out', 'unknown_submission'
                      )),
    request_id        TEXT,
    status_url        TEXT,
    result_url        TEXT,
    cancel_url        TEXT,
    queue_position    INTEGER,
    status_message_id INTEGER,
    result_message_id INTEGER,
    video_url         TEXT,
    error             TEXT,
    period_key        TEXT    NOT NULL,
    created_at        TEXT    NOT NULL,
    submitted_at      TEXT,
    started_at        TEXT,
    finished_at       TEXT,
    updated_at        TEXT    NOT NULL
);

-- Open (non-terminal) jobs: concurrency caps and resume on start. The WHERE clause must stay
-- word for word the one the store queries with, or SQLite will not use this partial index.
CREATE INDEX jobs_open ON jobs (guild_id, member_id)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out');

CREATE INDEX jobs_member_recent ON jobs (guild_id, member_id, id);

CREATE INDEX jobs_state ON jobs (state);

CREATE INDEX jobs_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;

-- Run times of delivered jobs feed the ETA.
CREATE INDEX jobs_delivered_runs ON jobs (resolution, duration, finished_at)
    WHERE state = 'delivered';

-- One row per job: credits reserved at acceptance, then committed on delivery or released on
-- any failure. Budgets count reserved + committed rows of the period.
CREATE TABLE usage_ledger (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL UNIQUE REFERENCES jobs (id),
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    credits    INTEGER NOT NULL CHECK (credits >= 0),
    state      TEXT    NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    period_key TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    settled_at TEXT,
    CHECK ((state = 'reserved') = (settled_at IS NULL))
);

-- Both include credits so the budget sums are answered from the index alone.
CREATE INDEX usage_ledger_guild_period ON usage_ledger (guild_id, period_key, state, credits);

CREATE INDEX usage_ledger_member_period
    ON usage_ledger (guild_id, member_id, period_key, state, credits);

-- Small facts about the installation itself, such as the hash of the last command sync.
CREATE TABLE meta (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
