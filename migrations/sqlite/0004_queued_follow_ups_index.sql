-- The claim first looks for queued follow-ups (health_check, release_rollback); this index
-- finds them without walking every queued job.
CREATE INDEX idx_jobs_status_type ON jobs (status, job_type);
