-- When a settled job's status message was seen showing how the job ended (as SQLite's V5). A
-- job that settled while its status could not be edited (its process stopped between the end
-- and the edit, or Discord kept failing the edit) has none yet: a start or a sweep of any
-- process shows its ending again. Jobs settled before this version count as shown.

ALTER TABLE jobs ADD COLUMN final_shown_at TIMESTAMPTZ;
UPDATE jobs SET final_shown_at = finished_at WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_unshown ON jobs (finished_at)
    WHERE final_shown_at IS NULL AND finished_at IS NOT NULL;
