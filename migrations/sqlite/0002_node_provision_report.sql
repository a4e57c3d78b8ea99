-- What the last successful node_provision found about the node's firewall, so the node page can
-- warn when the kernel refused it (never a silent pass). NULL until a provision reported.
ALTER TABLE nodes ADD COLUMN firewall_status TEXT
    CHECK (firewall_status IS NULL OR firewall_status IN ('active', 'unavailable', 'skipped'));
-- Plain sentences from the last provisioning run worth an operator's attention (firewall or
-- Fail2Ban unavailable); NULL when there is nothing to say.
ALTER TABLE nodes ADD COLUMN provision_warning TEXT;
