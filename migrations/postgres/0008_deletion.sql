-- PostgreSQL form of migrations/sqlite/0008_deletion.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- Deleting environments and sites (issue 13): sites and environments gain the statuses
-- `deleting` and `deleted` and a nullable `deleted_at`; a slug is unique only among rows not
-- deleted (partial unique indexes instead of the table-level UNIQUE constraints). SQLite
-- rebuilds both tables for this; PostgreSQL alters them.
ALTER TABLE sites DROP CONSTRAINT sites_status_check;
ALTER TABLE sites ADD CONSTRAINT sites_status_check
    CHECK (status IN ('active', 'cloning', 'deploying', 'restoring', 'failed', 'deleting', 'deleted'));
ALTER TABLE sites DROP CONSTRAINT sites_slug_key;
ALTER TABLE sites ADD COLUMN deleted_at TEXT COLLATE "C";
ALTER TABLE sites ADD CHECK ((status = 'deleted') = (deleted_at IS NOT NULL));
CREATE UNIQUE INDEX sites_slug_live ON sites(slug) WHERE status <> 'deleted';

ALTER TABLE environments DROP CONSTRAINT environments_status_check;
ALTER TABLE environments ADD CONSTRAINT environments_status_check
    CHECK (status IN ('active', 'cloning', 'deploying', 'restoring', 'failed', 'deleting', 'deleted'));
ALTER TABLE environments DROP CONSTRAINT environments_site_id_slug_key;
ALTER TABLE environments ADD COLUMN deleted_at TEXT COLLATE "C";
ALTER TABLE environments ADD CHECK ((status = 'deleted') = (deleted_at IS NOT NULL));
CREATE UNIQUE INDEX environments_site_slug_live ON environments(site_id, slug)
  WHERE status <> 'deleted';
