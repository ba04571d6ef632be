-- Resets no longer rely on the order of ledger ids. Until now a reset forgave the rows of its
-- period with an id up to the ledger's largest id at the time; but a request asked in an
-- earlier period and approved after the reset moves into the current period with its old,
-- smaller id, and was forgiven although it was charged after the reset.
--
-- Now every ledger row and every reset takes a mark from one counter (usage_marks) when it
-- is written, and a row moved into another period takes a fresh one, as PostgreSQL's
-- usage_marks sequence does; a reset forgives the rows of its period with a smaller mark.
-- Marks need not be unique, only ordered: the store takes them inside its write
-- transaction, one writer at a time.
--
-- The existing history keeps its meaning, and the moves made after a reset are repaired: a
-- row counts as written after a reset when its id is past the reset's old ledger_mark, or
-- when it is dated after the reset (only a move dates a row after a later write). Resets get
-- the even marks 2, 4, ... in id order; each row the odd mark just past the resets it follows.

ALTER TABLE usage_ledger ADD COLUMN mark INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_resets ADD COLUMN mark INTEGER NOT NULL DEFAULT 0;

UPDATE usage_resets
SET mark = 2 * (SELECT COUNT(*) FROM usage_resets AS earlier WHERE earlier.id <= usage_resets.id);

UPDATE usage_ledger
SET mark = 1 + 2 * (
    SELECT COUNT(*) FROM usage_resets AS r
    WHERE usage_ledger.id > r.ledger_mark OR usage_ledger.created_at > r.created_at
);

-- One row: the last mark handed out.
CREATE TABLE usage_marks (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last INTEGER NOT NULL
);

INSERT INTO usage_marks (id, last)
VALUES (1, 1 + 2 * (SELECT COUNT(*) FROM usage_resets));

DROP INDEX usage_resets_target;
ALTER TABLE usage_resets DROP COLUMN ledger_mark;
CREATE INDEX usage_resets_target ON usage_resets (guild_id, member_id, mark);
