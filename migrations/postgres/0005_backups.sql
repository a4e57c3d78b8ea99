-- PostgreSQL form of migrations/sqlite/0005_backups.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- Backups (issue 11): what Verify found, why a backup failed or could not be cleaned up, and a
-- state_version/updated_at pair so backups join the live resource feed like sites and nodes.
ALTER TABLE backups ADD COLUMN verified_at TEXT COLLATE "C";
ALTER TABLE backups ADD COLUMN verify_status TEXT COLLATE "C"
    CHECK (verify_status IS NULL OR verify_status IN ('ok', 'mismatch'));
ALTER TABLE backups ADD COLUMN error_code TEXT COLLATE "C";
ALTER TABLE backups ADD COLUMN state_version BIGINT NOT NULL DEFAULT 1 CHECK (state_version >= 1);
ALTER TABLE backups ADD COLUMN updated_at TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE backups SET updated_at = COALESCE(completed_at, created_at);
CREATE INDEX idx_backups_updated_at ON backups(updated_at);
CREATE INDEX idx_backups_status_retention ON backups(status, retention_until);
