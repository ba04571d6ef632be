-- Every open job has an owner: the process that drives it, until its lease runs out.
--
-- owner/lease_until: who drives the job and until when; a live owner renews the lease, and any
-- process may claim a job whose lease has run out (or that has no owner). attempts: how many
-- times a run of the job ended in an unforeseen error; past a bound the job is ended plainly.
-- posting_at: when the video's post to Discord started, so a restart looks for the post before
-- posting again.

ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until TEXT;
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN posting_at TEXT;

-- Open jobs by lease: what a sweeper looks at.
CREATE INDEX jobs_lease ON jobs (lease_until)
    WHERE state NOT IN ('delivered', 'failed', 'cancelled', 'timed_out');
