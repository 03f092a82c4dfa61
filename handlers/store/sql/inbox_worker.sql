-- The worker's side of the inbox: find streams with due work, own one stream at a time (session advisory
-- lock), read its pending rows in id order, mark each row in the transaction that applied it.
-- Also the receivers' heartbeats and the corps the periodic checks visit.

-- name: worker_due_streams
-- Streams whose oldest pending row exists; due = that row may be tried now. A failing head blocks its stream.
SELECT s.stream, h.next_attempt_at <= now() AS due,
       greatest(extract(epoch FROM h.next_attempt_at - now()), 0)::float8 AS wait_seconds
FROM inbox_streams s
CROSS JOIN LATERAL (
    SELECT i.next_attempt_at FROM inbox i
    WHERE i.stream = s.stream AND i.status = 'pending'
    ORDER BY i.id LIMIT 1
) h
ORDER BY h.next_attempt_at
LIMIT $1;

-- name: worker_adopt_streams
-- Streams with pending rows but no inbox_streams row (written by an older or foreign intake).
INSERT INTO inbox_streams (stream)
SELECT DISTINCT stream FROM inbox WHERE status = 'pending'
ON CONFLICT DO NOTHING;

-- name: worker_batch
-- $3: the last id this drain settled, so the scan starts past the (not yet vacuumed) rows it just marked.
SELECT id, stream, platform, route, corp, event_type, plaintext, attempts, next_attempt_at,
       next_attempt_at <= now() AS due
FROM inbox WHERE stream = $1 AND status = 'pending' AND id > $3
ORDER BY id LIMIT $2;

-- name: worker_mark_done
UPDATE inbox SET status = $2, applied_at = clock_timestamp(), event_type = coalesce(event_type, $3)
WHERE id = $1 AND status = 'pending'
RETURNING id, extract(epoch FROM applied_at - received_at)::float8 AS waited;

-- name: worker_mark_failed
-- $3 max attempts, $4 delay (s) before the next try, $5 permanent (dead at once).
UPDATE inbox SET attempts = attempts + 1, last_error = $2,
       status = CASE WHEN $5::boolean OR attempts + 1 >= $3 THEN 'dead' ELSE 'pending' END,
       next_attempt_at = now() + make_interval(secs => $4::float8),
       applied_at = CASE WHEN $5::boolean OR attempts + 1 >= $3 THEN now() ELSE applied_at END
WHERE id = $1 AND status = 'pending'
RETURNING status, attempts;

-- name: worker_corp_by_id
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps WHERE id = $1;

-- name: worker_corp_for_tenant
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps
WHERE auth_name = $1 AND corp_id = $2 ORDER BY id LIMIT 1;

-- name: worker_active_corps
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps
WHERE status = 'active' ORDER BY id;

-- name: worker_count_check
SELECT (SELECT count(*) FROM members WHERE corp = $1 AND status = 'active') AS active,
       EXISTS (SELECT 1 FROM inbox WHERE status = 'pending' AND (stream = $2 OR corp = $1)) AS pending;

-- name: worker_since_last_beat
SELECT now() - max(beat_at) FROM heartbeats;

-- name: worker_beat
INSERT INTO heartbeats (process) VALUES ($1)
ON CONFLICT (process) DO UPDATE SET beat_at = now();

-- name: worker_forget_process
DELETE FROM heartbeats WHERE process = $1 OR beat_at < now() - interval '7 days';

-- name: replay_export
-- Inbox rows for export, oldest first; $1 corp name (NULL: all), $2 received since (NULL: all).
SELECT i.id, i.stream, i.platform, i.route, c.name AS corp_name, c.auth_name, i.dedupe_key, i.event_type,
       i.received_at, i.query, i.body, i.plaintext, i.status
FROM inbox i LEFT JOIN corps c ON c.id = i.corp
WHERE ($1::text IS NULL OR c.name = $1 OR i.stream = $1)
  AND ($2::timestamptz IS NULL OR i.received_at >= $2)
  AND i.id > $3
ORDER BY i.id
LIMIT $4;

-- name: worker_mark_done_many
UPDATE inbox i SET status = u.status, applied_at = clock_timestamp(), event_type = coalesce(i.event_type, u.event_type)
FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u (id, status, event_type)
WHERE i.id = u.id AND i.status = 'pending'
RETURNING i.id, extract(epoch FROM i.applied_at - i.received_at)::float8 AS waited;

-- name: worker_housekeeping
-- Tables whose statistics lag far behind their growth (a fresh database: autovacuum looks once a minute,
-- and plans made on empty tables scan whole corps), and an inbox full of dead rows (the pending index
-- then walks them on every look-up).
SELECT c.relname::text AS relname,
       s.n_mod_since_analyze > greatest(500, c.reltuples::bigint) AS analyze,
       c.relname = 'inbox' AND s.n_dead_tup > greatest(5000, c.reltuples::bigint / 5) AS vacuum
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND c.relname IN ('inbox', 'members', 'member_departments', 'departments', 'change_log', 'tags', 'tag_members',
                    'roles', 'role_members', 'admins')
  AND (s.n_mod_since_analyze > greatest(500, c.reltuples::bigint)
       OR (c.relname = 'inbox' AND s.n_dead_tup > greatest(5000, c.reltuples::bigint / 5)));
