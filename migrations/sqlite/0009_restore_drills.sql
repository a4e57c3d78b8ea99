-- Restore drills (issue 14, item 4; beyond the spec): a per-site schedule and one row per
-- drill. A drill restores the site's latest completed production backup into a temporary
-- environment (an `environments` row of type `clone`, deleted when the drill's job ends),
-- runs the health checks there and records the outcome. `jobs.job_type` has no CHECK since
-- 0006 (the JobType enum is the list), so `restore_drill` needs no table rebuild.
-- Portable SQL: TEXT timestamps, CHECK constraints, no SQLite-only syntax.
ALTER TABLE sites ADD COLUMN drill_schedule TEXT NOT NULL DEFAULT 'off'
    CHECK (drill_schedule IN ('off', 'weekly', 'monthly'));

CREATE TABLE restore_drills (
    id              TEXT PRIMARY KEY,
    site_id         TEXT NOT NULL REFERENCES sites(id),
    -- The temporary environment the backup is restored into.
    environment_id  TEXT NOT NULL REFERENCES environments(id),
    backup_id       TEXT NOT NULL REFERENCES backups(id),
    -- Deferred: the drill row is inserted in the transaction that enqueues its job.
    job_id          TEXT NOT NULL REFERENCES jobs(id) DEFERRABLE INITIALLY DEFERRED,
    status          TEXT NOT NULL CHECK (status IN ('running', 'passed', 'failed')),
    -- Why a drill failed (the job's error message), or NULL.
    reason          TEXT,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    duration_ms     INTEGER CHECK (duration_ms IS NULL OR duration_ms >= 0),
    -- How long each step took on the node (JSON object of milliseconds), once reported.
    timings_json    TEXT,
    state_version   INTEGER NOT NULL DEFAULT 1 CHECK (state_version >= 1),
    updated_at      TEXT NOT NULL,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX idx_restore_drills_site_started ON restore_drills(site_id, started_at);
CREATE INDEX idx_restore_drills_job ON restore_drills(job_id);
