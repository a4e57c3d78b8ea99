-- The claim holds a site for its queued follow-up or retry ("a site with a queued follow-up or
-- retry runs only that", jobs.md §3) through a NOT EXISTS over exactly these rows. They are
-- few (usually none), so a partial index of them answers it without reading the queue; on
-- PostgreSQL it replaces a scan of the whole jobs table per claim (docs/benchmarks.md, Queue).
-- The predicate is the claim's own, word for word: a planner uses a partial index only when the
-- query's condition implies its predicate. The follow-up list is the job-kind registry's
-- (`jobs::kinds::follow_up_sql_list`); a unit test keeps the two the same.
CREATE INDEX idx_jobs_queued_priority ON jobs (site_id)
  WHERE status = 'queued' AND (attempt_count > 0 OR job_type IN ('health_check', 'release_rollback'));
