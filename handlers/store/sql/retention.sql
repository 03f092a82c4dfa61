-- Bounded data: inbox payloads stripped, then inbox, change_log and sync_runs rows deleted once older than their
-- retention (handlers.store.retention); corpsync forget; the table sizes /metrics reports. Every pass takes a
-- small batch in id order, in a transaction of its own, so the intake never waits long behind it.

-- name: retention_mark
-- $1 mark name
SELECT last_id FROM purge_marks WHERE name = $1;

-- name: retention_set_mark
-- $1 mark name, $2 the last id settled (a mark only moves forward)
INSERT INTO purge_marks (name, last_id) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET last_id = greatest(purge_marks.last_id, excluded.last_id), updated_at = now();

-- name: retention_strip_inbox
-- $1 the mark (last id settled), $2 cutoff: rows received before it, $3 batch size, $4 seconds a pending row may
-- hold the mark
-- The next rows past the mark lose body and plaintext when applied (done, ignored) and received before the
-- cutoff. A dead letter keeps them (it may be retried), a pending row too. The new mark stops before the first
-- row received after the cutoff, or still pending and received within $4 seconds (it will settle, then be
-- stripped by a later pass: passing it would keep its payload forever); rows further on wait for a later pass. A
-- row pending for longer is stuck and does not hold the purge back.
WITH batch AS (
    SELECT id, received_at >= $2 OR (status = 'pending' AND received_at >= now() - make_interval(secs => $4)) AS held
    FROM inbox WHERE id > $1 ORDER BY id LIMIT $3
), stripped AS (
    UPDATE inbox i SET body = NULL, plaintext = NULL
    FROM batch b
    WHERE i.id = b.id AND i.received_at < $2 AND i.status IN ('done', 'ignored') AND i.plaintext IS NOT NULL
    RETURNING i.id
)
SELECT coalesce((SELECT min(id) - 1 FROM batch WHERE held), (SELECT max(id) FROM batch), $1) AS mark,
       (SELECT count(*) FROM stripped)::int AS purged,
       (SELECT count(*) FROM batch)::int AS seen,
       EXISTS (SELECT FROM batch WHERE held) AS reached_cutoff;

-- name: retention_delete_inbox
-- $1 the mark, $2 cutoff, $3 batch size, $4 seconds a pending row may hold the mark (as retention_strip_inbox)
-- The next rows past the mark are deleted when received before the cutoff and settled (done, ignored, dead).
WITH batch AS (
    SELECT id, received_at >= $2 OR (status = 'pending' AND received_at >= now() - make_interval(secs => $4)) AS held
    FROM inbox WHERE id > $1 ORDER BY id LIMIT $3
), deleted AS (
    DELETE FROM inbox i USING batch b
    WHERE i.id = b.id AND i.received_at < $2 AND i.status <> 'pending'
    RETURNING i.id
)
SELECT coalesce((SELECT min(id) - 1 FROM batch WHERE held), (SELECT max(id) FROM batch), $1) AS mark,
       (SELECT count(*) FROM deleted)::int AS purged,
       (SELECT count(*) FROM batch)::int AS seen,
       EXISTS (SELECT FROM batch WHERE held) AS reached_cutoff;

-- name: retention_delete_change_log
-- $1 cutoff, $2 batch size
-- The oldest change_log rows, by id, that were written before the cutoff: by id and age only, whoever reads it.
WITH batch AS (
    SELECT id, at FROM change_log ORDER BY id LIMIT $2
), deleted AS (
    DELETE FROM change_log c USING batch b WHERE c.id = b.id AND b.at < $1 RETURNING c.id
)
SELECT (SELECT count(*) FROM deleted)::int AS purged, (SELECT count(*) FROM batch)::int AS seen,
       EXISTS (SELECT FROM batch WHERE at >= $1) AS reached_cutoff;

-- name: retention_delete_sync_runs
-- $1 cutoff, $2 batch size
-- Finished runs older than the cutoff, except each corp's newest finished run and newest good one (what /readyz,
-- /metrics and the scheduler read).
WITH keep AS (
    SELECT (SELECT id FROM sync_runs r WHERE r.corp = c.id AND r.finished_at IS NOT NULL
            ORDER BY started_at DESC LIMIT 1) AS last_id,
           (SELECT id FROM sync_runs r WHERE r.corp = c.id AND r.status IN ('succeeded', 'quarantined')
            ORDER BY started_at DESC LIMIT 1) AS good_id
    FROM corps c
), batch AS (
    SELECT id FROM sync_runs
    WHERE status <> 'running' AND finished_at < $1
      AND id NOT IN (SELECT last_id FROM keep WHERE last_id IS NOT NULL)
      AND id NOT IN (SELECT good_id FROM keep WHERE good_id IS NOT NULL)
    ORDER BY id LIMIT $2
), deleted AS (
    DELETE FROM sync_runs s USING batch b WHERE s.id = b.id RETURNING s.id
)
SELECT (SELECT count(*) FROM deleted)::int AS purged, (SELECT count(*) FROM batch)::int AS seen,
       false AS reached_cutoff;

-- name: retention_count_inbox_payloads
-- $1 the strip mark, $2 cutoff: what retention_strip_inbox would strip now
SELECT count(*)::bigint FROM inbox
WHERE id > $1 AND received_at < $2 AND status IN ('done', 'ignored') AND plaintext IS NOT NULL;

-- name: retention_count_inbox_rows
-- $1 the delete mark, $2 cutoff: what retention_delete_inbox would delete now
SELECT count(*)::bigint FROM inbox WHERE id > $1 AND received_at < $2 AND status <> 'pending';

-- name: retention_count_change_log
-- $1 cutoff
SELECT count(*)::bigint FROM change_log WHERE at < $1;

-- name: retention_count_sync_runs
-- $1 cutoff
WITH keep AS (
    SELECT (SELECT id FROM sync_runs r WHERE r.corp = c.id AND r.finished_at IS NOT NULL
            ORDER BY started_at DESC LIMIT 1) AS last_id,
           (SELECT id FROM sync_runs r WHERE r.corp = c.id AND r.status IN ('succeeded', 'quarantined')
            ORDER BY started_at DESC LIMIT 1) AS good_id
    FROM corps c
)
SELECT count(*)::bigint FROM sync_runs
WHERE status <> 'running' AND finished_at < $1
  AND id NOT IN (SELECT last_id FROM keep WHERE last_id IS NOT NULL)
  AND id NOT IN (SELECT good_id FROM keep WHERE good_id IS NOT NULL);

-- name: retention_table_stats
-- For /metrics: the on-disk size (with indexes and TOAST) of the tables that grow with traffic, and the age in
-- seconds of each one's oldest row (the head of its id order: one index probe each); inbox_payload is the oldest
-- inbox row past the strip mark that still holds its payload.
WITH stats (name, oldest) AS (
    VALUES ('inbox', (SELECT received_at FROM inbox ORDER BY id LIMIT 1)),
           ('change_log', (SELECT at FROM change_log ORDER BY id LIMIT 1)),
           ('sync_runs', (SELECT started_at FROM sync_runs ORDER BY id LIMIT 1)),
           ('members', NULL::timestamptz),
           ('departments', NULL::timestamptz),
           ('member_departments', NULL::timestamptz)
)
SELECT name, pg_total_relation_size(name::regclass)::bigint AS bytes,
       extract(epoch FROM now() - oldest)::float8 AS oldest_age
FROM stats
UNION ALL
SELECT 'inbox_payload', NULL::bigint, extract(epoch FROM now() - (
    SELECT received_at FROM inbox
    WHERE id > coalesce((SELECT last_id FROM purge_marks WHERE name = 'inbox_strip'), 0) AND plaintext IS NOT NULL
    ORDER BY id LIMIT 1))::float8;

-- name: forget_member
-- $1 corps row id, $2 user id
-- Erase an offline member's personal fields, signature and the before/after values of their change_log rows,
-- leaving one change_log row that says so. Returns the
-- member's status, or no row for an unknown member; an active member is left as it is.
WITH target AS (
    SELECT id, status FROM members WHERE corp = $1 AND user_id = $2 FOR UPDATE
), erased AS (
    UPDATE members m
    SET union_id = NULL, open_user_id = NULL, name = NULL, alias = NULL, position = NULL, mobile = NULL,
        email = NULL, biz_mail = NULL, telephone = NULL, gender = NULL, avatar = NULL, job_number = NULL,
        work_place = NULL, hired_date = NULL, direct_leaders = NULL, extattr = NULL, updated_at = now()
    FROM target t WHERE m.id = t.id AND t.status = 'offline'
    RETURNING m.id
), signature AS (
    DELETE FROM signatures s USING erased e WHERE s.member = e.id RETURNING s.member
), history AS (
    -- The change feed's before/after values of the member's earlier changes hold the same personal fields.
    UPDATE change_log SET changes = NULL
    WHERE corp = $1 AND entity IN ('member', 'signature') AND entity_id = $2 AND changes IS NOT NULL
      AND EXISTS (SELECT FROM erased)
    RETURNING id
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source)
    SELECT $1, 'member', $2, 'erase',
           ARRAY['unionId', 'openUserId', 'name', 'alias', 'position', 'mobile', 'email', 'bizMail', 'telephone',
                 'gender', 'avatar', 'jobNumber', 'workPlace', 'hiredDate', 'directLeaders', 'extattr', 'signature'],
           'api'
    FROM erased
    RETURNING id
)
SELECT t.status, (SELECT count(*) FROM logged)::int AS erased FROM target t;

-- name: forget_events
-- $1 corps row id, $2 the last id looked at, $3 the member id as it appears in a message, $4 a regular
-- expression that finds it as a whole value, $5 batch size
-- The corp's settled inbox rows past $2 whose plaintext names the member lose body and plaintext (a dead letter
-- says why in last_error). Returns the last id looked at (NULL: none left) and how many were erased.
WITH batch AS (
    SELECT id FROM inbox WHERE id > $2 ORDER BY id LIMIT $5
), erased AS (
    UPDATE inbox i
    SET body = NULL, plaintext = NULL,
        last_error = CASE WHEN i.status = 'dead' THEN 'payload erased by corpsync forget' ELSE i.last_error END
    FROM batch b
    WHERE i.id = b.id AND i.corp = $1 AND i.status <> 'pending' AND i.plaintext IS NOT NULL
      AND strpos(i.plaintext, $3) > 0 AND i.plaintext ~ $4
    RETURNING i.id
)
SELECT (SELECT max(id) FROM batch) AS mark, (SELECT count(*) FROM erased)::int AS erased;

-- name: forget_pending_events
-- $1 corps row id, $2 the member id, $3 the regular expression: pending rows that name the member (kept)
SELECT count(*)::bigint FROM inbox
WHERE corp = $1 AND status = 'pending' AND strpos(plaintext, $2) > 0 AND plaintext ~ $3;

-- name: retention_clock
-- The database's clock: every cutoff is measured on the clock that stamped the rows.
SELECT clock_timestamp();
