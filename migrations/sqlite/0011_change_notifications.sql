-- Change notifications (issue 17): on PostgreSQL, triggers NOTIFY the replicas when jobs or
-- resources change (migrations/postgres/0011_change_notifications.sql). SQLite has one process
-- per database file and wakes its workers and change feed in process, so this version changes
-- nothing here; it exists so both backends share their version numbers.
SELECT 1;
