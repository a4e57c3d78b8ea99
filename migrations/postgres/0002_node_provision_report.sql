-- PostgreSQL form of migrations/sqlite/0002_node_provision_report.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- What the last successful node_provision found about the node's firewall, so the node page can
-- warn when the kernel refused it (never a silent pass). NULL until a provision reported.
ALTER TABLE nodes ADD COLUMN firewall_status TEXT COLLATE "C"
    CHECK (firewall_status IS NULL OR firewall_status IN ('active', 'unavailable', 'skipped'));
-- Plain sentences from the last provisioning run worth an operator's attention (firewall or
-- Fail2Ban unavailable); NULL when there is nothing to say.
ALTER TABLE nodes ADD COLUMN provision_warning TEXT COLLATE "C";
