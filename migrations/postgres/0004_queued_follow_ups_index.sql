-- PostgreSQL form of migrations/sqlite/0004_queued_follow_ups_index.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- The claim first looks for queued follow-ups (health_check, release_rollback); this index
-- finds them without walking every queued job.
CREATE INDEX idx_jobs_status_type ON jobs (status, job_type);
