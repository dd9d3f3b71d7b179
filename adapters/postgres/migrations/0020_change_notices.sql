-- +goose Up
-- +goose StatementBegin
-- 0020: a commit that adds to the change log (0005) notifies the caches of
-- this schema, which read the log at once instead of at their next tick
-- (cache.reconcile). Writers that tell no cache themselves are the ones
-- this serves: `credgate import` in another process, a replica without
-- Redis, SQL. The notice carries no data, only the schema whose log grew:
-- channels are per database, and stores of several schemas may share one.
-- What changed is read from the log, as before; a notice lost (a cache
-- reconnecting) costs at most the tick.
--
-- NOTIFY is delivered at commit, once per transaction for equal payloads,
-- and one per statement here (statement triggers): a bulk load notifies
-- once. Both tables count: rows added to subject_changes, and the pruned
-- mark raised (a bulk load that marks everything changed, or a pruning).
-- Replicas of the previous release do not listen; their writes notify the
-- others all the same.
CREATE FUNCTION notify_subject_changes() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_notify('credgate_subject_changes', current_schema());
    RETURN NULL;
END;
$$;

CREATE TRIGGER subject_changes_notify AFTER INSERT ON subject_changes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_subject_changes();
CREATE TRIGGER subject_changes_pruned_notify AFTER UPDATE ON subject_changes_pruned
    FOR EACH STATEMENT EXECUTE FUNCTION notify_subject_changes();
-- +goose StatementEnd
