-- Change notifications (issue 17): every replica LISTENs on `pressluft_changes`; these
-- triggers NOTIFY it when a transaction inserted or changed jobs (payload `jobs`: idle workers
-- look for work, the live feed reads) or resources (payload `resources`: the live feed reads).
-- PostgreSQL delivers a notification at commit and folds duplicates within a transaction.
-- A heartbeat (which leaves `updated_at` alone) notifies nobody.
CREATE FUNCTION pressluft_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pressluft_changes', TG_ARGV[0]);
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_inserted_notify AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('jobs');
CREATE TRIGGER jobs_changed_notify AFTER UPDATE ON jobs
    FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION pressluft_notify_change('jobs');

CREATE TRIGGER sites_notify AFTER INSERT OR UPDATE ON sites
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
CREATE TRIGGER environments_notify AFTER INSERT OR UPDATE ON environments
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
CREATE TRIGGER nodes_notify AFTER INSERT OR UPDATE ON nodes
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
CREATE TRIGGER releases_notify AFTER INSERT OR UPDATE ON releases
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
CREATE TRIGGER backups_notify AFTER INSERT OR UPDATE ON backups
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
CREATE TRIGGER domains_notify AFTER INSERT OR UPDATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION pressluft_notify_change('resources');
