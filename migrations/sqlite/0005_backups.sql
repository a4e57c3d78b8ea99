-- Backups (issue 11): what Verify found, why a backup failed or could not be cleaned up, and a
-- state_version/updated_at pair so backups join the live resource feed like sites and nodes.
ALTER TABLE backups ADD COLUMN verified_at TEXT;
ALTER TABLE backups ADD COLUMN verify_status TEXT
    CHECK (verify_status IS NULL OR verify_status IN ('ok', 'mismatch'));
ALTER TABLE backups ADD COLUMN error_code TEXT;
ALTER TABLE backups ADD COLUMN state_version INTEGER NOT NULL DEFAULT 1 CHECK (state_version >= 1);
ALTER TABLE backups ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
UPDATE backups SET updated_at = COALESCE(completed_at, created_at);
CREATE INDEX idx_backups_updated_at ON backups(updated_at);
CREATE INDEX idx_backups_status_retention ON backups(status, retention_until);
