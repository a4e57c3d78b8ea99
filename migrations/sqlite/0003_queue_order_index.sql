-- The claim walks queued jobs in queue order (jobs.md §3) and stops at the first eligible one;
-- this index gives it that order without sorting every queued row on each claim.
CREATE INDEX idx_jobs_queue_order ON jobs (status, (COALESCE(run_after, created_at)), created_at);
