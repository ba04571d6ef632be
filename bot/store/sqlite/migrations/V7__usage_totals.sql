-- Running totals of the ledger, so a budget check reads a few rows instead of the period's.
--
-- Until now every admission summed the member's and the server's ledger rows of the period,
-- each row checked against the resets: ~0.5 ms per thousand rows, three times a request (the
-- screen, the reservation, the member's acknowledgement). A server with 20,000 jobs in a
-- month paid ~85 ms of the store's one writer per request, and a burst queued behind it.
--
-- Now triggers keep, per UTC day, the credits a member (usage_member_days) and the whole
-- server (usage_server_days) have reserved and committed, counting exactly the rows the sums
-- counted: a row stops counting for a member when a reset of that member or of the server
-- comes after it (a larger mark) in its window, and for the server when a reset of the
-- server does. Periods are whole UTC days (a day, an ISO week, a month), so a period's totals
-- are the sum of its days (at most 31 rows).
--
-- A reset zeroes the days of its window from its start: every row there was written before
-- it. A row moved or settled later is taken out of (and put into) the totals only while it
-- counts, the same test as the sums'. Deleting a reset (only when a member is forgotten)
-- recounts that member's days from the ledger.

CREATE TABLE usage_member_days (
    guild_id  INTEGER NOT NULL,
    member_id INTEGER NOT NULL,
    day       TEXT    NOT NULL,
    basis     TEXT    NOT NULL,
    state     TEXT    NOT NULL,
    credits   INTEGER NOT NULL,
    PRIMARY KEY (guild_id, member_id, day, basis, state)
) WITHOUT ROWID;

CREATE TABLE usage_server_days (
    guild_id INTEGER NOT NULL,
    day      TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    credits  INTEGER NOT NULL,
    PRIMARY KEY (guild_id, day, state)
) WITHOUT ROWID;

INSERT INTO usage_member_days (guild_id, member_id, day, basis, state, credits)
SELECT l.guild_id, l.member_id, substr(l.created_at, 1, 10), l.basis, l.state, SUM(l.credits)
FROM usage_ledger AS l
WHERE l.state IN ('reserved', 'committed')
  AND NOT EXISTS (
      SELECT 1 FROM usage_resets AS r
      WHERE r.guild_id = l.guild_id AND (r.member_id = l.member_id OR r.member_id IS NULL)
        AND l.mark < r.mark AND l.created_at >= r.window_start)
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO usage_server_days (guild_id, day, state, credits)
SELECT l.guild_id, substr(l.created_at, 1, 10), l.state, SUM(l.credits)
FROM usage_ledger AS l
WHERE l.state IN ('reserved', 'committed')
  AND NOT EXISTS (
      SELECT 1 FROM usage_resets AS r
      WHERE r.guild_id = l.guild_id AND r.member_id IS NULL
        AND l.mark < r.mark AND l.created_at >= r.window_start)
GROUP BY 1, 2, 3;

CREATE TRIGGER usage_ledger_counted AFTER INSERT ON usage_ledger
WHEN NEW.state IN ('reserved', 'committed')
BEGIN
    INSERT INTO usage_member_days (guild_id, member_id, day, basis, state, credits)
    SELECT NEW.guild_id, NEW.member_id, substr(NEW.created_at, 1, 10), NEW.basis, NEW.state,
           NEW.credits
    WHERE NOT EXISTS (
        SELECT 1 FROM usage_resets AS r
        WHERE r.guild_id = NEW.guild_id AND (r.member_id = NEW.member_id OR r.member_id IS NULL)
          AND NEW.mark < r.mark AND NEW.created_at >= r.window_start)
    ON CONFLICT (guild_id, member_id, day, basis, state)
    DO UPDATE SET credits = credits + excluded.credits;

    INSERT INTO usage_server_days (guild_id, day, state, credits)
    SELECT NEW.guild_id, substr(NEW.created_at, 1, 10), NEW.state, NEW.credits
    WHERE NOT EXISTS (
        SELECT 1 FROM usage_resets AS r
        WHERE r.guild_id = NEW.guild_id AND r.member_id IS NULL
          AND NEW.mark < r.mark AND NEW.created_at >= r.window_start)
    ON CONFLICT (guild_id, day, state) DO UPDATE SET credits = credits + excluded.credits;
END;

CREATE TRIGGER usage_ledger_uncounted AFTER DELETE ON usage_ledger
WHEN OLD.state IN ('reserved', 'committed')
BEGIN
    UPDATE usage_member_days SET credits = credits - OLD.credits
    WHERE guild_id = OLD.guild_id AND member_id = OLD.member_id
      AND day = substr(OLD.created_at, 1, 10) AND basis = OLD.basis AND state = OLD.state
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = OLD.guild_id AND (r.member_id = OLD.member_id OR r.member_id IS NULL)
            AND OLD.mark < r.mark AND OLD.created_at >= r.window_start);

    UPDATE usage_server_days SET credits = credits - OLD.credits
    WHERE guild_id = OLD.guild_id AND day = substr(OLD.created_at, 1, 10) AND state = OLD.state
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = OLD.guild_id AND r.member_id IS NULL
            AND OLD.mark < r.mark AND OLD.created_at >= r.window_start);
END;

-- An update is the old row taken out and the new one put in, each only while it counts.
CREATE TRIGGER usage_ledger_recounted
AFTER UPDATE OF guild_id, member_id, credits, state, basis, created_at, mark ON usage_ledger
BEGIN
    UPDATE usage_member_days SET credits = credits - OLD.credits
    WHERE OLD.state IN ('reserved', 'committed')
      AND guild_id = OLD.guild_id AND member_id = OLD.member_id
      AND day = substr(OLD.created_at, 1, 10) AND basis = OLD.basis AND state = OLD.state
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = OLD.guild_id AND (r.member_id = OLD.member_id OR r.member_id IS NULL)
            AND OLD.mark < r.mark AND OLD.created_at >= r.window_start);

    UPDATE usage_server_days SET credits = credits - OLD.credits
    WHERE OLD.state IN ('reserved', 'committed')
      AND guild_id = OLD.guild_id AND day = substr(OLD.created_at, 1, 10) AND state = OLD.state
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = OLD.guild_id AND r.member_id IS NULL
            AND OLD.mark < r.mark AND OLD.created_at >= r.window_start);

    INSERT INTO usage_member_days (guild_id, member_id, day, basis, state, credits)
    SELECT NEW.guild_id, NEW.member_id, substr(NEW.created_at, 1, 10), NEW.basis, NEW.state,
           NEW.credits
    WHERE NEW.state IN ('reserved', 'committed')
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = NEW.guild_id AND (r.member_id = NEW.member_id OR r.member_id IS NULL)
            AND NEW.mark < r.mark AND NEW.created_at >= r.window_start)
    ON CONFLICT (guild_id, member_id, day, basis, state)
    DO UPDATE SET credits = credits + excluded.credits;

    INSERT INTO usage_server_days (guild_id, day, state, credits)
    SELECT NEW.guild_id, substr(NEW.created_at, 1, 10), NEW.state, NEW.credits
    WHERE NEW.state IN ('reserved', 'committed')
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = NEW.guild_id AND r.member_id IS NULL
            AND NEW.mark < r.mark AND NEW.created_at >= r.window_start)
    ON CONFLICT (guild_id, day, state) DO UPDATE SET credits = credits + excluded.credits;
END;

-- Every row of the reset's window was written before it: its days start again from nothing.
CREATE TRIGGER usage_reset_zeroes AFTER INSERT ON usage_resets
BEGIN
    UPDATE usage_member_days SET credits = 0
    WHERE guild_id = NEW.guild_id AND (NEW.member_id IS NULL OR member_id = NEW.member_id)
      AND day >= substr(NEW.window_start, 1, 10);

    UPDATE usage_server_days SET credits = 0
    WHERE NEW.member_id IS NULL AND guild_id = NEW.guild_id
      AND day >= substr(NEW.window_start, 1, 10);
END;

CREATE TRIGGER usage_reset_removed AFTER DELETE ON usage_resets
WHEN OLD.member_id IS NOT NULL
BEGIN
    DELETE FROM usage_member_days WHERE guild_id = OLD.guild_id AND member_id = OLD.member_id;

    INSERT INTO usage_member_days (guild_id, member_id, day, basis, state, credits)
    SELECT l.guild_id, l.member_id, substr(l.created_at, 1, 10), l.basis, l.state,
           SUM(l.credits)
    FROM usage_ledger AS l
    WHERE l.guild_id = OLD.guild_id AND l.member_id = OLD.member_id
      AND l.state IN ('reserved', 'committed')
      AND NOT EXISTS (
          SELECT 1 FROM usage_resets AS r
          WHERE r.guild_id = l.guild_id AND (r.member_id = l.member_id OR r.member_id IS NULL)
            AND l.mark < r.mark AND l.created_at >= r.window_start)
    GROUP BY 1, 2, 3, 4, 5;
END;
