-- Deploys (issue 12): releases change after they are built (health_status, appended notes), so
-- they get the state_version/updated_at pair the live resource feed follows, like backups.
ALTER TABLE releases ADD COLUMN state_version INTEGER NOT NULL DEFAULT 1 CHECK (state_version >= 1);
ALTER TABLE releases ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
UPDATE releases SET updated_at = created_at;
CREATE INDEX idx_releases_updated_at ON releases(updated_at);
