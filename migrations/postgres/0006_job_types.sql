-- PostgreSQL form of migrations/sqlite/0006_job_types.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- jobs.job_type loses its CHECK: the JobType enum is the one list of job types (SQLite
-- rebuilds the table for this; PostgreSQL drops the constraint).
ALTER TABLE jobs DROP CONSTRAINT jobs_job_type_check;
