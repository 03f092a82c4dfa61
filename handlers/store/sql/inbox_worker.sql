-- The worker's side of the inbox: find streams with due work, own one stream at a time (session advisory
-- lock), read its pending rows in id order, mark each row in the transaction that applied it. Also the
-- export of inbox rows (corpsync export-events).

-- name: worker_due_streams
-- $1 how many streams at most
-- The head (oldest pending row) of every stream that has one; due = it may be tried now. A failing head blocks its
-- stream. A skip scan of the partial pending index: one probe per stream with pending rows, however many streams
-- exist: a suite provider has one stream per tenant, nearly all of them idle at any time.
WITH RECURSIVE heads AS (
    (SELECT stream, next_attempt_at FROM inbox WHERE status = 'pending' ORDER BY stream, id LIMIT 1)
    UNION ALL
    SELECT n.stream, n.next_attempt_at
    FROM heads h
    CROSS JOIN LATERAL (
        SELECT i.stream, i.next_attempt_at FROM inbox i
        WHERE i.status = 'pending' AND i.stream > h.stream
        ORDER BY i.stream, i.id LIMIT 1
    ) n
)
SELECT stream, next_attempt_at <= now() AS due,
       greatest(extract(epoch FROM next_attempt_at - now()), 0)::float8 AS wait_seconds
FROM heads
ORDER BY next_attempt_at
LIMIT $1;

-- name: worker_adopt_streams
-- Streams with pending rows but no inbox_streams row (written by an older or foreign intake).
INSERT INTO inbox_streams (stream)
SELECT DISTINCT stream FROM inbox WHERE status = 'pending'
ON CONFLICT DO NOTHING;

-- name: worker_batch
-- $1 stream, $2 how many rows at most, $3 the last id this drain settled, so the scan starts past the
-- (not yet vacuumed) rows it just marked.
SELECT id, stream, platform, route, corp, event_type, plaintext, attempts, next_attempt_at,
       next_attempt_at <= now() AS due
FROM inbox WHERE stream = $1 AND status = 'pending' AND id > $3
ORDER BY id LIMIT $2;

-- name: worker_mark_done
-- $1 inbox id, $2 outcome ('done' | 'ignored'), $3 event type (kept when the row has one)
UPDATE inbox SET status = $2, applied_at = clock_timestamp(), event_type = coalesce(event_type, $3)
WHERE id = $1 AND status = 'pending'
RETURNING id, extract(epoch FROM applied_at - received_at)::float8 AS waited;

-- name: worker_mark_failed
-- $1 inbox id, $2 error (no payload), $3 max attempts, $4 delay (s) before the next try, $5 permanent (dead at once).
UPDATE inbox SET attempts = attempts + 1, last_error = $2,
       status = CASE WHEN $5::boolean OR attempts + 1 >= $3 THEN 'dead' ELSE 'pending' END,
       next_attempt_at = now() + make_interval(secs => $4::float8),
       applied_at = CASE WHEN $5::boolean OR attempts + 1 >= $3 THEN now() ELSE applied_at END
WHERE id = $1 AND status = 'pending'
RETURNING status, attempts;

-- name: replay_export
-- $1 corp or stream name (NULL: all), $2 received since (NULL: all), $3 the last id exported, $4 the limit.
-- Inbox rows for export, oldest first; rows whose payload the retention purge (or forget) erased are left out.
SELECT i.id, i.stream, i.platform, i.route, c.name AS corp_name, c.auth_name, i.dedupe_key, i.event_type,
       i.received_at, i.query, i.body, i.plaintext, i.status
FROM inbox i LEFT JOIN corps c ON c.id = i.corp
WHERE ($1::text IS NULL OR c.name = $1 OR i.stream = $1)
  AND ($2::timestamptz IS NULL OR i.received_at >= $2)
  AND i.id > $3
  AND i.plaintext IS NOT NULL
ORDER BY i.id
LIMIT $4;

-- name: worker_mark_done_many
-- $1 inbox ids, $2 their outcomes, $3 their event types (arrays aligned)
UPDATE inbox i SET status = u.status, applied_at = clock_timestamp(), event_type = coalesce(i.event_type, u.event_type)
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u (id, status, event_type)
WHERE i.id = u.id AND i.status = 'pending'
RETURNING i.id, extract(epoch FROM i.applied_at - i.received_at)::float8 AS waited;

-- name: inbox_pending_count
SELECT count(*) FROM inbox WHERE status = 'pending';

-- name: worker_own_stream
-- $1 the lock key STREAM_LOCK, $2 stream, $3 whether commits return before their WAL reaches the disk (a lost commit
-- leaves its rows pending). True when this session now owns the stream. The lock and the setting are the session's
-- until the pool resets the connection, as it goes back to the pool after the drain.
SELECT pg_try_advisory_lock($1::int, hashtext($2)) AS owned,
       CASE WHEN $3::boolean THEN set_config('synchronous_commit', 'off', false) END AS synchronous_commit;

-- name: worker_sync_commit_local
-- For the rest of the transaction: its commit waits for the WAL on disk.
SET LOCAL synchronous_commit TO on;
