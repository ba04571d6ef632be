-- What the provider really charged for a job, in USD, as its result reported it
-- (``include_cost=true``); NULL when it did not say (a job that never finished there, or an
-- answer without a cost). Kept on the job, and on its ledger row too, so a server's spend
-- stays counted when a forgotten member's jobs are deleted (their ledger rows stay, under
-- member 0, like their credits). The SQLite store's V4, in PostgreSQL's terms.

ALTER TABLE jobs ADD COLUMN cost_usd DOUBLE PRECISION
    CHECK (cost_usd IS NULL OR cost_usd >= 0);
ALTER TABLE usage_ledger ADD COLUMN cost_usd DOUBLE PRECISION
    CHECK (cost_usd IS NULL OR cost_usd >= 0);
