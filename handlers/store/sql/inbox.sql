-- name: inbox_insert_rows
-- One statement for a group of callbacks; duplicates (same stream + dedupe key) are skipped.
-- As written it stores one row; handlers.inbox.insert_sql repeats the VALUES row for each row of a group
-- (parameters $10..$18 the second, and so on), and handlers.inbox.insert_inbox_rows passes the fields of
-- each InboxRow in order.
-- The worker applies a stream in id order and reads on from the last id it applied, so a stream's ids
-- must become visible in order: each stream's transaction-level advisory lock is taken (in sorted order,
-- so groups never deadlock) before any id is drawn, and held until this statement's transaction commits.
-- Concurrent groups of one stream, in this process or another, therefore commit one after the other.
WITH rows (stream, platform, route, corp, dedupe_key, event_type, query, body, plaintext) AS MATERIALIZED (
    VALUES ($1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::text, $8::bytea, $9::bytea)
),
locks AS MATERIALIZED (
    SELECT pg_advisory_xact_lock(1667825665, hashtext(stream))  -- 0x63690001: corpsync inbox streams
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
INSERT INTO inbox_streams (stream) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING;
