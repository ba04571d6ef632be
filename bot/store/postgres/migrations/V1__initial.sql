-- The whole schema of the SQLite store's V1..V3, in PostgreSQL's own terms: Discord ids are
-- BIGINT, times are timestamptz (UTC in, UTC out), switches are boolean. The store applies
-- each migration in one transaction under an advisory lock, so processes starting together
-- on a fresh database take turns.

-- Identity ids are never handed out twice (a sequence never goes back), so a job id in a
-- persistent button custom_id always names the same job.
CREATE TABLE jobs (
    id                BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id          BIGINT      NOT NULL,
    channel_id        BIGINT      NOT NULL,
    member_id         BIGINT      NOT NULL,
    prompt            TEXT        NOT NULL,
    image_url         TEXT        NOT NULL,
    last_frame_url    TEXT,
    resolution        TEXT        NOT NULL,
    duration          INTEGER     NOT NULL CHECK (duration > 0),
    credits           INTEGER     NOT NULL CHECK (credits >= 0),
    state             TEXT        NOT NULL CHECK (state IN (
                          'accepted', 'submitting', 'queued', 'running', 'delivering',
                          'delivered', 'failed', 'cancelled', 'timed_out', 'unknown_submission',
                          'pending_approval'
                      )),
    request_id        TEXT,
    status_url        TEXT,
    result_url        TEXT,
    cancel_url        TEXT,
    queue_position    INTEGER,
    status_message_id BIGINT,
    result_message_id BIGINT,
    video_url         TEXT,
    error             TEXT,
    period_key        TEXT        NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    submitted_at      TIMESTAMPTZ,
    started_at        TIMESTAMPTZ,
    finished_at       TIMESTAMPTZ,
    updated_at        TIMESTAMPTZ NOT NULL,
    -- Who drives the job and until when; any process may claim a job whose lease ran out.
    owner             TEXT,
    lease_until       TIMESTAMPTZ,
    -- Runs of the job that ended in an unforeseen error.
    attempts          INTEGER     NOT NULL DEFAULT 0,
    -- When posting the video started, so a restart looks for the post before posting again.
    posting_at        TIMESTAMPTZ
);

-- Open jobs: concurrency caps, sweeps. The WHERE clause is the store's OPEN, word for word.
CREATE INDEX jobs_open ON jobs (guild_id, member_id)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out');

CREATE INDEX jobs_member_recent ON jobs (guild_id, member_id, id);

CREATE INDEX jobs_state ON jobs (state);

CREATE INDEX jobs_request_id ON jobs (request_id) WHERE request_id IS NOT NULL;

-- Run times of delivered jobs feed the ETA.
CREATE INDEX jobs_delivered_runs ON jobs (resolution, duration, finished_at)
    WHERE state = 'delivered';

-- Open jobs by lease: what a sweeper looks at.
CREATE INDEX jobs_lease ON jobs (lease_until)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out');

-- The order in which charges and resets happened in each server. CACHE 1 (the default, said
-- aloud): values are handed out in call order across connections, and every call that takes
-- one for a server holds that server's advisory lock, so within a server a smaller mark was
-- written first. A reset forgives the rows with a smaller mark than its own.
CREATE SEQUENCE usage_marks AS BIGINT CACHE 1;

-- One row per job: credits reserved at acceptance, then committed on delivery or released on
-- any failure. basis: 'cap' counts against the member's cap and the pool; 'pending' (waiting
-- for a moderator) and 'approved' (let past the cap) against the pool only. member_id 0 means
-- the member asked to be forgotten; the credits still count for the pool.
CREATE TABLE usage_ledger (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     BIGINT      UNIQUE REFERENCES jobs (id) ON DELETE SET NULL,
    guild_id   BIGINT      NOT NULL,
    member_id  BIGINT      NOT NULL,
    credits    INTEGER     NOT NULL CHECK (credits >= 0),
    state      TEXT        NOT NULL CHECK (state IN ('reserved', 'committed', 'released')),
    basis      TEXT        NOT NULL DEFAULT 'cap' CHECK (basis IN ('cap', 'pending', 'approved')),
    period_key TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    settled_at TIMESTAMPTZ,
    mark       BIGINT      NOT NULL DEFAULT nextval('usage_marks'),
    CHECK ((state = 'reserved') = (settled_at IS NULL))
);

-- Budgets count the rows reserved in the period's time range; both indexes cover the sums.
CREATE INDEX usage_ledger_guild_time ON usage_ledger (guild_id, created_at, state, credits);

CREATE INDEX usage_ledger_member_time
    ON usage_ledger (guild_id, member_id, created_at, state, basis, credits);

-- Small facts about the installation itself, such as the hash of the last command sync.
CREATE TABLE meta (
    key        TEXT        PRIMARY KEY,
    value      TEXT        NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One row per server that changed anything. A NULL budget column means "the config default".
CREATE TABLE guild_settings (
    guild_id          BIGINT      PRIMARY KEY,
    period            TEXT        CHECK (period IN ('day', 'week', 'month')),
    server_credits    INTEGER     CHECK (server_credits >= 0),
    member_credits    INTEGER     CHECK (member_credits >= 0),
    member_concurrent INTEGER     CHECK (member_concurrent >= 1),
    server_concurrent INTEGER     CHECK (server_concurrent >= 1),
    approvals         BOOLEAN     NOT NULL DEFAULT FALSE,
    paused            BOOLEAN     NOT NULL DEFAULT FALSE,
    modlog_channel_id BIGINT,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- No rows for a server: every channel is allowed.
CREATE TABLE allowed_channels (
    guild_id   BIGINT      NOT NULL,
    channel_id BIGINT      NOT NULL,
    added_by   BIGINT      NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE banned_members (
    guild_id  BIGINT      NOT NULL,
    member_id BIGINT      NOT NULL,
    reason    TEXT,
    banned_by BIGINT      NOT NULL,
    banned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);

-- A member's cap is the larger of the server's default and their roles' limits.
CREATE TABLE role_limits (
    guild_id       BIGINT      NOT NULL,
    role_id        BIGINT      NOT NULL,
    member_credits INTEGER     NOT NULL CHECK (member_credits >= 0),
    set_by         BIGINT      NOT NULL,
    set_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

-- Extra credits (or, negative, fewer) for one member in the period containing created_at.
CREATE TABLE credit_grants (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id   BIGINT      NOT NULL,
    member_id  BIGINT      NOT NULL,
    credits    INTEGER     NOT NULL CHECK (credits <> 0),
    period_key TEXT        NOT NULL,
    reason     TEXT,
    granted_by BIGINT      NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX credit_grants_member ON credit_grants (guild_id, member_id, created_at, credits);

-- A reset stops the ledger rows of its period written before it (a smaller mark, created_at
-- from window_start on) from counting: for one member's cap, or (member_id NULL) for the
-- whole server, pool included. The ledger itself is never changed.
CREATE TABLE usage_resets (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id     BIGINT      NOT NULL,
    member_id    BIGINT,
    mark         BIGINT      NOT NULL DEFAULT nextval('usage_marks'),
    window_start TIMESTAMPTZ NOT NULL,
    forgiven     INTEGER     NOT NULL,
    period_key   TEXT        NOT NULL,
    reset_by     BIGINT      NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX usage_resets_target ON usage_resets (guild_id, member_id, mark);

-- Words are stored normalised (lower case, single spaces); regexes as typed.
CREATE TABLE block_rules (
    id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id BIGINT      NOT NULL,
    kind     TEXT        NOT NULL CHECK (kind IN ('word', 'regex')),
    pattern  TEXT        NOT NULL,
    added_by BIGINT      NOT NULL,
    added_at TIMESTAMPTZ NOT NULL,
    UNIQUE (guild_id, kind, pattern)
);

-- One row per request that went to the moderators; decision NULL while it waits.
CREATE TABLE approvals (
    job_id       BIGINT      PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    guild_id     BIGINT      NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL,
    message_id   BIGINT,
    decision     TEXT        CHECK (decision IN ('approved', 'denied', 'withdrawn', 'expired')),
    decided_by   BIGINT,
    reason       TEXT,
    decided_at   TIMESTAMPTZ,
    CHECK ((decision IS NULL) = (decided_at IS NULL))
);

CREATE INDEX approvals_waiting ON approvals (guild_id, requested_at) WHERE decision IS NULL;

-- Every moderator change, newest last. target_id is the member, role or channel acted on.
CREATE TABLE mod_actions (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guild_id   BIGINT      NOT NULL,
    actor_id   BIGINT      NOT NULL,
    action     TEXT        NOT NULL,
    target_id  BIGINT,
    detail     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX mod_actions_guild ON mod_actions (guild_id, id);
