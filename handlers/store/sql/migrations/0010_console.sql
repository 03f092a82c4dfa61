-- The web console (receiver/console): what its pages read and its operator actions write.
-- A quarantined run whose held removals the operator discarded (the console's Discard): it no longer waits for
-- a decision; a later run with the guard off does not mark it confirmed.
ALTER TABLE sync_runs ADD COLUMN discarded_at timestamptz;
-- The dead letters, newest first, and each corp's count of them: only dead rows are in this index, so the
-- intake (which inserts pending rows) never writes to it.
CREATE INDEX inbox_dead ON inbox (id) WHERE status = 'dead';
-- A member's change history (the console's member page) without reading the corp's whole change_log.
CREATE INDEX change_log_entity ON change_log (corp, entity, entity_id, id);
