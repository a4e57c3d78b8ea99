-- PostgreSQL form of migrations/sqlite/0010_safe_updates.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- Safe automatic updates (issue 16; beyond the spec): a per-site schedule and check settings,
-- and one row per safe-update run. A run (`safe_update` job) checks production for updates,
-- clones production into a temporary environment (an `environments` row of type `clone`,
-- deleted when the run's job ends), screenshots the check pages before and after applying the
-- updates there, compares, and either applies the same versions to production (`applied`) or
-- waits for a person (`held` → `approved` / `dismissed`). `jobs.job_type` has no CHECK since
-- 0006, so `safe_update` needs no table rebuild.
-- Portable SQL: TEXT timestamps, JSON as TEXT, CHECK constraints, no SQLite-only syntax.
ALTER TABLE sites ADD COLUMN safe_updates_schedule TEXT COLLATE "C" NOT NULL DEFAULT 'off'
    CHECK (safe_updates_schedule IN ('off', 'daily', 'weekly'));
-- `HH:MM-HH:MM` (UTC) the scheduled runs start in, or NULL: any time.
ALTER TABLE sites ADD COLUMN safe_updates_window TEXT COLLATE "C";
-- JSON array of the check pages' paths (empty: the home page plus the main menu's paths).
ALTER TABLE sites ADD COLUMN safe_updates_paths TEXT COLLATE "C" NOT NULL DEFAULT '[]';
-- The most a page may change (percent of its pixels) and still pass.
ALTER TABLE sites ADD COLUMN safe_updates_threshold DOUBLE PRECISION NOT NULL DEFAULT 0.5
    CHECK (safe_updates_threshold >= 0 AND safe_updates_threshold <= 100);
-- JSON object: path → array of {x, y, width, height} regions the comparison ignores.
ALTER TABLE sites ADD COLUMN safe_updates_masks TEXT COLLATE "C" NOT NULL DEFAULT '{}';

CREATE TABLE safe_update_runs (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    site_id             TEXT COLLATE "C" NOT NULL REFERENCES sites(id),
    -- Deferred: the run row is inserted in the transaction that enqueues its job.
    job_id              TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) DEFERRABLE INITIALLY DEFERRED,
    run_trigger         TEXT COLLATE "C" NOT NULL CHECK (run_trigger IN ('manual', 'schedule')),
    outcome             TEXT COLLATE "C" NOT NULL CHECK (outcome IN ('running', 'no_updates', 'applied',
                            'held', 'approved', 'dismissed', 'failed')),
    -- JSON array of {kind, id, from, to}: the updates found (and tried).
    updates_json        TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    -- JSON array of the pages' verdicts (path, statuses, changed percent, reasons, …).
    pages_json          TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    -- JSON array of PHP fatal error lines found after the update.
    fatals_json         TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    -- Why a failed run failed (the job's error), or NULL.
    reason              TEXT COLLATE "C",
    -- The temporary environment (set when the job starts; `deleted` when it ends).
    temp_environment_id TEXT COLLATE "C" REFERENCES environments(id),
    -- The `env_update` of production (applied automatically or approved); deferred: the
    -- approval records it in the transaction that enqueues it.
    apply_job_id        TEXT COLLATE "C" REFERENCES jobs(id) DEFERRABLE INITIALLY DEFERRED,
    -- The pre-update backup the automatic apply would use (its data key is prepared before the
    -- run, since the job's hooks cannot write secrets); internal.
    apply_backup_id     TEXT COLLATE "C",
    decided_by          TEXT COLLATE "C" REFERENCES users(id),
    decided_at          TEXT COLLATE "C",
    created_at          TEXT COLLATE "C" NOT NULL,
    finished_at         TEXT COLLATE "C",
    state_version       BIGINT NOT NULL DEFAULT 1 CHECK (state_version >= 1),
    updated_at          TEXT COLLATE "C" NOT NULL,
    CHECK ((outcome = 'running') = (finished_at IS NULL))
);
CREATE INDEX idx_safe_update_runs_site_created ON safe_update_runs(site_id, created_at);
CREATE INDEX idx_safe_update_runs_job ON safe_update_runs(job_id);
CREATE INDEX idx_safe_update_runs_outcome ON safe_update_runs(outcome);
