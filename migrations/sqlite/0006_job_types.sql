-- jobs.job_type loses its CHECK: the JobType enum is the one list of job types (every write
-- goes through it and a read of an unknown value is a column error), and SQLite cannot alter a
-- constraint, so each new type (backup_verify here; env_delete, site_delete, restore_drill in
-- later issues) would otherwise rebuild this table. SQLite's documented rebuild: create the
-- new table, copy, drop the old, rename; migrations run with foreign keys off and checked
-- afterwards (Store::migrate), and the references of releases, audit_logs and jobs itself name
-- `jobs` throughout.
CREATE TABLE jobs_rebuilt (
    id                  TEXT PRIMARY KEY,
    job_type            TEXT NOT NULL,
    status              TEXT NOT NULL
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    site_id             TEXT REFERENCES sites(id),
    environment_id      TEXT REFERENCES environments(id),
    node_id             TEXT NOT NULL REFERENCES nodes(id),
    payload_json        TEXT NOT NULL,
    attempt_count       INTEGER NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    max_attempts        INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after           TEXT,
    locked_at           TEXT,
    locked_by           TEXT,
    started_at          TEXT,
    finished_at         TEXT,
    error_code          TEXT,
    error_message       TEXT,
    heartbeat_at        TEXT,
    cancel_requested_at TEXT,
    parent_job_id       TEXT REFERENCES jobs(id),
    output_tail         TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
INSERT INTO jobs_rebuilt SELECT id, job_type, status, site_id, environment_id, node_id,
    payload_json, attempt_count, max_attempts, run_after, locked_at, locked_by, started_at,
    finished_at, error_code, error_message, heartbeat_at, cancel_requested_at, parent_job_id,
    output_tail, created_at, updated_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_rebuilt RENAME TO jobs;
CREATE INDEX idx_jobs_status_run_after ON jobs(status, run_after);
CREATE INDEX idx_jobs_site_status ON jobs(site_id, status);
CREATE INDEX idx_jobs_node_status ON jobs(node_id, status);
CREATE INDEX idx_jobs_environment_created ON jobs(environment_id, created_at);
CREATE INDEX idx_jobs_created_at ON jobs(created_at);
CREATE INDEX idx_jobs_updated_at ON jobs(updated_at);
CREATE INDEX idx_jobs_parent_job_id ON jobs(parent_job_id);
CREATE INDEX idx_jobs_queue_order ON jobs (status, (COALESCE(run_after, created_at)), created_at);
CREATE INDEX idx_jobs_status_type ON jobs (status, job_type);
