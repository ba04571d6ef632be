-- The provider's slots, shared by every process on the database: one row per accepted job
-- whose process asked for a slot. granted_at NULL: the job waits in the line; set: the job
-- holds a slot until it is sent (then its state says it is at the provider) or handed back.
-- A row counts only while its job is accepted and held by the row's owner under a live lease,
-- so the slots of a process that died come free when its leases run out. Rows go with their
-- job when a forgotten member's jobs are deleted.
CREATE TABLE provider_slots (
    job_id     BIGINT      PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    guild_id   BIGINT      NOT NULL,
    member_id  BIGINT      NOT NULL,
    owner      TEXT        NOT NULL,
    asked_at   TIMESTAMPTZ NOT NULL,
    granted_at TIMESTAMPTZ
);


-- When each server, and each member of a server, was last given a slot: the line goes round
-- them in that order (never served first, then the longest ago), as one process's in-memory
-- line turns round its servers and members.
CREATE TABLE slot_turns_guild (
    guild_id  BIGINT      PRIMARY KEY,
    served_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE slot_turns_member (
    guild_id  BIGINT      NOT NULL,
    member_id BIGINT      NOT NULL,
    served_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, member_id)
);
