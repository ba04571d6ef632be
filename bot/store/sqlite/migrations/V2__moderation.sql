-- Moderated shared quotas: per-server settings, role limits, grants, resets, bans, allowed
-- channels, the prompt blocklist, the approval queue and an audit trail of moderator actions.
--
-- jobs and usage_ledger are rebuilt (SQLite cannot alter a CHECK or a NOT NULL in place):
-- jobs learns the state 'pending_approval'; the ledger learns which budget a charge counts
-- against (basis), and keeps its credits when a forgotten member's job is deleted (job_id
-- becomes NULL, member_id 0). Both copies keep every id and the AUTOINCREMENT counters, so an
-- id is never handed out twice.

CREATE TABLE jobs_v2 (
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
                          'delivered', 'failed', 'cancelled', 'timed_out', 'unknown_submission',
                          'pending_approval'
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

INSERT INTO jobs_v2 (
    id, guild_id, channel_id, member_id, prompt, image_url, last_frame_url, resolution,
    duration, credits, state, request_id, status_url, result_url, cancel_url, queue_position,
    status_message_id, result_message_id, video_url, error, period_key, created_at,
    submitted_at, started_at, finished_at, updated_at
)
SELECT
    id, guild_id, channel_id, member_id, prompt, image_url, last_frame_url, resolution,
    duration, credits, state, request_id, status_url, result_url, cancel_url, queue_position,
    status_message_id, result_message_id, video_url, error, period_key, created_at,
    submitted_at, started_at, finished_at, updated_at
FROM jobs;

DELETE FROM sqlite_sequence WHERE name = 'jobs_v2';
INSERT INTO sqlite_sequence (name, seq) SELECT 'jobs_v2', seq FROM sqlite_sequence WHERE name = 'jobs';

-- basis: 'cap' counts against the member's cap and the pool; 'pending' (waiting for a
-- moderator) and 'approved' (a moderator let it past the cap) count against the pool only.
-- member_id 0 means the member asked to be forgotten; the credits still count for the pool.
CREATE TABLE usage_ledger_v2 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER UNIQUE REFERENCES jobs_v2 (id) ON DELETE SET NULL,
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    credits    INTEGER NOT NULL CHECK (credits >= 0),
    state      TEXT    NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    basis      TEXT    NOT NULL DEFAULT 'cap' CHECK (basis IN ('cap', 'pending', 'approved')),
    period_key TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    settled_at TEXT,
    CHECK ((state = 'reserved') = (settled_at IS NULL))
);

INSERT INTO usage_ledger_v2 (
    id, job_id, guild_id, member_id, credits, state, basis, period_key, created_at, settled_at
)
SELECT id, job_id, guild_id, member_id, credits, state, 'cap', period_key, created_at, settled_at
FROM usage_ledger;

DELETE FROM sqlite_sequence WHERE name = 'usage_ledger_v2';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'usage_ledger_v2', seq FROM sqlite_sequence WHERE name = 'usage_ledger';

-- The child first, so dropping the parent finds no row pointing at it.
DROP TABLE usage_ledger;
DROP TABLE jobs;
-- Renaming also rewrites usage_ledger_v2's REFERENCES jobs_v2 to jobs.
ALTER TABLE jobs_v2 RENAME TO jobs;
ALTER TABLE usage_ledger_v2 RENAME TO usage_ledger;

-- The indexes of V1, recreated on the new tables. jobs_open's WHERE clause must stay word for
-- word the one the store queries with (rows.OPEN), or SQLite will not use the index.
CREATE INDEX jobs_open ON jobs (guild_id, member_id)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out');

CREATE INDEX jobs_member_recent ON jobs (guild_id, member_id, id);

CREATE INDEX jobs_state ON jobs (state);

CREATE INDEX jobs_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;

CREATE INDEX jobs_delivered_runs ON jobs (resolution, duration, finished_at)
    WHERE state = 'delivered';

-- Budgets count the rows reserved in the period's time range (not by period_key, so a server
-- that switches from a daily to a weekly pool still sees what it spent today). Both indexes
-- cover the sums.
CREATE INDEX usage_ledger_guild_time ON usage_ledger (guild_id, created_at, state, credits);

CREATE INDEX usage_ledger_member_time
    ON usage_ledger (guild_id, member_id, created_at, state, basis, credits);

-- One row per server that changed anything. A NULL budget column means "the config default",
-- so an operator's new default still reaches servers that never set that value themselves.
CREATE TABLE guild_settings (
    guild_id          INTEGER PRIMARY KEY,
    period            TEXT    CHECK (period IN ('day', 'week', 'month')),
    server_credits    INTEGER CHECK (server_credits >= 0),
    member_credits    INTEGER CHECK (member_credits >= 0),
    member_concurrent INTEGER CHECK (member_concurrent >= 1),
    server_concurrent INTEGER CHECK (server_concurrent >= 1),
    approvals         INTEGER NOT NULL DEFAULT 0 CHECK (approvals IN (0, 1)),
    paused            INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
    modlog_channel_id INTEGER,
    updated_at        TEXT    NOT NULL
);

-- No rows for a server: every channel is allowed.
CREATE TABLE allowed_channels (
    guild_id   INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    added_by   INTEGER NOT NULL,
    added_at   TEXT    NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
) WITHOUT ROWID;

CREATE TABLE banned_members (
    guild_id  INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    reason    TEXT,
    banned_by INTEGER NOT NULL,
    banned_at TEXT    NOT NULL,
    PRIMARY KEY (guild_id, member_id)
) WITHOUT ROWID;

-- A member's cap is the larger of the server's default and their roles' limits.
CREATE TABLE role_limits (
    guild_id       INTEGER NOT NULL,
    role_id        INTEGER NOT NULL,
    member_credits INTEGER NOT NULL CHECK (member_credits >= 0),
    set_by         INTEGER NOT NULL,
    set_at         TEXT    NOT NULL,
    PRIMARY KEY (guild_id, role_id)
) WITHOUT ROWID;

-- Extra credits (or, negative, fewer) for one member in the period containing created_at.
CREATE TABLE credit_grants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    member_id  INTEGER NOT NULL,
    credits    INTEGER NOT NULL CHECK (credits <> 0),
    period_key TEXT    NOT NULL,
    reason     TEXT,
    granted_by INTEGER NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX credit_grants_member ON credit_grants (guild_id, member_id, created_at, credits);

-- A reset stops the ledger rows of its period written before it (id up to ledger_mark,
-- created_at from window_start on) from counting: for one member's cap, or (member_id NULL)
-- for the whole server, pool included. The ledger itself is never changed, so the history
-- stays; forgiven is what the reset took off, for the audit trail.
CREATE TABLE usage_resets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id     INTEGER NOT NULL,
    member_id    INTEGER,
    ledger_mark  INTEGER NOT NULL,
    window_start TEXT    NOT NULL,
    forgiven     INTEGER NOT NULL,
    period_key   TEXT    NOT NULL,
    reset_by     INTEGER NOT NULL,
    created_at   TEXT    NOT NULL
);

CREATE INDEX usage_resets_target ON usage_resets (guild_id, member_id, ledger_mark);

-- Words are stored normalised (lower case, single spaces); regexes as typed.
CREATE TABLE block_rules (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id INTEGER NOT NULL,
    kind     TEXT    NOT NULL CHECK (kind IN ('word', 'regex')),
    pattern  TEXT    NOT NULL,
    added_by INTEGER NOT NULL,
    added_at TEXT    NOT NULL,
    UNIQUE (guild_id, kind, pattern)
);

-- One row per request that went to the moderators; decision NULL while it waits.
CREATE TABLE approvals (
    job_id       INTEGER PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    guild_id     INTEGER NOT NULL,
    requested_at TEXT    NOT NULL,
    message_id   INTEGER,
    decision     TEXT    CHECK (decision IN ('approved', 'denied', 'withdrawn', 'expired')),
    decided_by   INTEGER,
    reason       TEXT,
    decided_at   TEXT,
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);

CREATE INDEX approvals_waiting ON approvals (guild_id, requested_at) WHERE decision IS NULL;

-- Every moderator change, newest last. target_id is the member, role or channel acted on.
CREATE TABLE mod_actions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   INTEGER NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT    NOT NULL,
    target_id  INTEGER,
    detail     TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);

CREATE INDEX mod_actions_guild ON mod_actions (guild_id, id);
