-- PostgreSQL form of migrations/sqlite/0003_queue_order_index.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- The claim walks queued jobs in queue order (jobs.md §3) and stops at the first eligible one;
-- this index gives it that order without sorting every queued row on each claim.
CREATE INDEX idx_jobs_queue_order ON jobs (status, (COALESCE(run_after, created_at)), created_at);
