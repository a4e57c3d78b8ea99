-- PostgreSQL form of migrations/sqlite/0012_queued_priority_index.sql: same version, same meaning.
-- The claim holds a site for its queued follow-up or retry ("a site with a queued follow-up or
-- retry runs only that", jobs.md §3) through a NOT EXISTS over exactly these rows. That NOT
-- EXISTS sits under an OR, so PostgreSQL evaluates it as a hashed subplan over every matching
-- row: without this index a sequential scan of the whole jobs table per claim (5–8 ms of a
-- 7–15 ms claim with 10,000 queued jobs, docs/benchmarks.md, Queue). The predicate is the
-- claim's own, word for word (a partial index is used only when the query implies it); the
-- follow-up list is the job-kind registry's, kept the same by a unit test.
CREATE INDEX idx_jobs_queued_priority ON jobs (site_id)
  WHERE status = 'queued' AND (attempt_count > 0 OR job_type IN ('health_check', 'release_rollback'));
