-- name: console_corps
-- $1 configured corp names, $2 configured suite auth names, $3 the last name of the previous page, $4 the limit
-- The overview of the corps the app serves: type, status, drift request, last and last good full sync, the
-- pending inbox (through the partial pending index), dead letters (through inbox_dead), runs awaiting a decision.
SELECT c.id, c.name, c.platform, c.type, c.status, c.title, c.sync_requested_at, c.sync_request_reason,
       last.status AS last_status, last.finished_at AS last_finished_at,
       good.finished_at AS good_at, extract(epoch FROM now() - good.finished_at)::float8 AS good_age,
       (SELECT count(*) FROM inbox WHERE stream = c.name AND status = 'pending') AS pending,
       (SELECT count(*) FROM inbox WHERE status = 'dead' AND corp = c.id) AS dead,
       (SELECT count(*) FROM sync_runs
        WHERE corp = c.id AND status = 'quarantined' AND confirmed_at IS NULL AND discarded_at IS NULL) AS awaiting
FROM corps c
LEFT JOIN LATERAL (
    SELECT status, finished_at FROM sync_runs
    WHERE corp = c.id AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT finished_at FROM sync_runs
    WHERE corp = c.id AND status IN ('succeeded', 'quarantined') ORDER BY started_at DESC LIMIT 1
) good ON true
WHERE (c.name = ANY($1::text[]) OR c.auth_name = ANY($2::text[])) AND ($3::text IS NULL OR c.name > $3)
ORDER BY c.name
LIMIT $4;

-- name: console_dept_children
-- $1 corps row id, $2 parent department id, $3 the limit, $4 how many to skip (a page of one department's
-- children: a few hundred at most, so an offset is fine). With each child's count of active members.
SELECT d.dept_id, d.name,
       (SELECT count(*) FROM member_departments md JOIN members m ON m.id = md.member
        WHERE md.corp = $1 AND md.dept_id = d.dept_id AND m.status = 'active') AS members
FROM departments d
WHERE d.corp = $1 AND d.parent_id = $2
ORDER BY d."order" NULLS LAST, length(d.dept_id), d.dept_id
LIMIT $3 OFFSET $4;

-- name: console_dept_path
-- $1 corps row id, $2 department id
-- The department and its ancestors, root first (at most 64 levels: a parent loop cannot run away).
WITH RECURSIVE up AS (
    SELECT dept_id, parent_id, name, 0 AS depth FROM departments WHERE corp = $1 AND dept_id = $2
    UNION ALL
    SELECT d.dept_id, d.parent_id, d.name, up.depth + 1
    FROM departments d JOIN up ON d.corp = $1 AND d.dept_id = up.parent_id
    WHERE up.depth < 63
)
SELECT dept_id, name FROM up ORDER BY depth DESC;

-- name: console_member_search
-- $1 corps row id, $2 a LIKE pattern (wildcards in the operator's text escaped), $3 the last user id of the
-- previous page, $4 the limit. By user id, name or alias.
SELECT user_id, name, alias, position, status, main_dept_id
FROM members
WHERE corp = $1 AND (user_id ILIKE $2 OR name ILIKE $2 OR alias ILIKE $2) AND ($3::text IS NULL OR user_id > $3)
ORDER BY user_id
LIMIT $4;

-- name: console_member_history
-- $1 corps row id, $2 user id, $3 the last change id of the previous page (newest first), $4 the limit
SELECT id, at, op, fields, source, inbox_id, sync_run_id
FROM change_log
WHERE corp = $1 AND entity = 'member' AND entity_id = $2 AND ($3::bigint IS NULL OR id < $3)
ORDER BY id DESC
LIMIT $4;

-- name: console_sync_run
-- $1 corps row id, $2 run id: the run with the sizes of what it held (not the lists: see console_held_*).
SELECT id, trigger, status, started_at, finished_at, counts, api_calls, error, confirmed_at, discarded_at,
       held->>'reason' AS held_reason,
       coalesce(jsonb_array_length(held->'members'), 0) AS held_members,
       coalesce(jsonb_array_length(held->'departments'), 0) AS held_departments,
       coalesce(jsonb_array_length(held->'failed_departments'), 0) AS failed_departments
FROM sync_runs WHERE corp = $1 AND id = $2;

-- name: console_held_members
-- $1 corps row id, $2 run id, $3 the position after which the page starts, $4 the limit
-- The members a quarantined run held back from going offline, in its order, with their current name and status.
SELECT h.n AS position, h.user_id, m.name, m.status
FROM sync_runs r
CROSS JOIN LATERAL jsonb_array_elements_text(r.held->'members') WITH ORDINALITY AS h(user_id, n)
LEFT JOIN members m ON m.corp = r.corp AND m.user_id = h.user_id
WHERE r.corp = $1 AND r.id = $2 AND h.n > $3
ORDER BY h.n
LIMIT $4;

-- name: console_held_departments
-- $1 corps row id, $2 run id, $3 the position after which the page starts, $4 the limit
SELECT h.n AS position, h.dept_id, d.name
FROM sync_runs r
CROSS JOIN LATERAL jsonb_array_elements_text(r.held->'departments') WITH ORDINALITY AS h(dept_id, n)
LEFT JOIN departments d ON d.corp = r.corp AND d.dept_id = h.dept_id
WHERE r.corp = $1 AND r.id = $2 AND h.n > $3
ORDER BY h.n
LIMIT $4;

-- name: console_discard_run
-- $1 corps row id, $2 run id: set aside the removals a quarantined run held; NULL when it awaits no decision.
UPDATE sync_runs SET discarded_at = now()
WHERE corp = $1 AND id = $2 AND status = 'quarantined' AND confirmed_at IS NULL AND discarded_at IS NULL
RETURNING id;

-- name: console_dead_letters
-- $1 the last inbox id of the previous page (newest first), $2 the limit. Metadata and the error only.
SELECT i.id, i.stream, i.platform, i.route, i.event_type, i.received_at, i.attempts, i.last_error, c.name AS corp
FROM inbox i LEFT JOIN corps c ON c.id = i.corp
WHERE i.status = 'dead' AND ($1::bigint IS NULL OR i.id < $1)
ORDER BY i.id DESC
LIMIT $2;

-- name: console_dead_count
SELECT count(*) FROM inbox WHERE status = 'dead';

-- name: console_retry_dead
-- $1 inbox id: a dead letter back to pending with fresh attempts; its stream (to wake), NULL if not dead.
UPDATE inbox SET status = 'pending', attempts = 0, next_attempt_at = now(), applied_at = NULL
WHERE id = $1 AND status = 'dead'
RETURNING stream;

-- name: console_discard_dead
-- $1 inbox id: a dead letter settled without applying it (status 'ignored', its error kept); NULL if not dead.
UPDATE inbox SET status = 'ignored', applied_at = now()
WHERE id = $1 AND status = 'dead'
RETURNING id;

-- name: console_recent_callbacks
-- $1 the last inbox id of the previous page (newest first), $2 the limit. Metadata only: never body or plaintext.
SELECT i.id, i.stream, i.platform, i.route, i.event_type, i.received_at, i.status, i.attempts, i.applied_at,
       c.name AS corp
FROM inbox i LEFT JOIN corps c ON c.id = i.corp
WHERE $1::bigint IS NULL OR i.id < $1
ORDER BY i.id DESC
LIMIT $2;

-- name: console_sign_out
-- $1 the session's nonce, $2 when the session would end anyway (epoch seconds), $3 now (epoch seconds).
-- Every process refuses the session from now on; sign-outs of sessions already ended are dropped.
WITH ended AS (
    DELETE FROM console_signouts WHERE expires_at <= to_timestamp($3)
)
INSERT INTO console_signouts (nonce, expires_at) VALUES ($1, to_timestamp($2))
ON CONFLICT (nonce) DO NOTHING;

-- name: console_signed_out
-- $1 a session's nonce
SELECT EXISTS (SELECT FROM console_signouts WHERE nonce = $1);

-- name: console_sign_in_failed
-- $1 now (epoch seconds), $2 seconds a failure counts. Failures older than that are dropped.
WITH old AS (
    DELETE FROM console_sign_in_failures WHERE at <= to_timestamp($1) - make_interval(secs => $2)
)
INSERT INTO console_sign_in_failures (at) VALUES (to_timestamp($1));

-- name: console_sign_in_failures
-- $1 now (epoch seconds), $2 the window in seconds: wrong tokens given to any process within it.
SELECT count(*)::int FROM console_sign_in_failures WHERE at > to_timestamp($1) - make_interval(secs => $2);
