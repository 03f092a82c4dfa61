-- Bounded data (issue 17). An applied inbox row loses its raw body and decrypted message after
-- CORPSYNC_RETAIN_PAYLOADS (NULL: purged) and is deleted after CORPSYNC_RETAIN_INBOX; change_log and sync_runs
-- rows are deleted after their own periods. Dropping NOT NULL only changes the catalog: no table rewrite.
ALTER TABLE inbox ALTER COLUMN body DROP NOT NULL, ALTER COLUMN plaintext DROP NOT NULL;

-- How far each purge pass has walked its table in id order, so a pass never walks the rows the passes before it
-- settled (at 300 callbacks/s a week of stripped rows is 180 million): 'inbox_strip', 'inbox_delete'.
CREATE TABLE purge_marks (
    name        text PRIMARY KEY,
    last_id     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
