-- name: inbox_insert_rows
-- $1 the lock key INBOX_INSERT_LOCK; $2..$10 one row: stream, platform, route, corps row id, dedupe key,
-- event type, query as JSON text, raw body, decrypted message.
-- One statement for a group of callbacks; duplicates (same stream + dedupe key) are skipped.
-- As written it stores one row; handlers.store.inbox.insert_sql repeats the VALUES row for each row of a group
-- (parameters $11..$19 the second, and so on), and handlers.store.inbox.insert_inbox_rows passes the fields of
-- each InboxValues in order.
-- The worker applies a stream in id order and reads on from the last id it applied, so a stream's ids
-- must become visible in order: each stream's transaction-level advisory lock is taken (in sorted order,
-- so groups never deadlock) before any id is drawn, and held until this statement's transaction commits.
-- Concurrent groups of one stream, in this process or another, therefore commit one after the other.
WITH rows (stream, platform, route, corp, dedupe_key, event_type, query, body, plaintext) AS MATERIALIZED (
    VALUES ($2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::text, $9::bytea, $10::bytea)
),
locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock($1::int, hashtext(stream))
    FROM (SELECT DISTINCT stream FROM rows ORDER BY stream) AS streams
)
INSERT INTO inbox (stream, platform, route, corp, dedupe_key, event_type, query, body, plaintext)
SELECT stream, platform, route, corp, dedupe_key, event_type, query::jsonb,
       convert_from(body, 'UTF8'), convert_from(plaintext, 'UTF8')
FROM rows
WHERE (SELECT count(*) FROM locks) >= 0  -- an InitPlan: the locks are held before the first row is made
ON CONFLICT (stream, dedupe_key) DO NOTHING
RETURNING id, stream, dedupe_key;

-- name: inbox_ensure_streams
-- $1 stream names
INSERT INTO inbox_streams (stream) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING;
