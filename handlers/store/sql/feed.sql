-- The change feed (migration 0006): change_log read as events in commit order, the webhook outbox, subscribers.
-- Read feed_horizon in its own statement first: a change id below it belongs to a transaction that is over, so
-- the next statement (a new snapshot) sees it if it committed.

-- name: feed_horizon
SELECT feed_horizon();

-- name: feed_page
-- $1 after (exclusive), $2 horizon (exclusive), $3 corp name or NULL, $4 type patterns (LIKE) or NULL, $5 limit
SELECT c.id, k.name AS corp, feed_type(c.entity, c.op, c.fields) AS type, c.entity_id, c.fields, c.changes,
       c.source, c.at, c.inbox_id, c.sync_run_id
FROM change_log c JOIN corps k ON k.id = c.corp
WHERE c.id > $1 AND c.id < $2
  AND ($3::text IS NULL OR k.name = $3)
  AND ($4::text[] IS NULL OR feed_type(c.entity, c.op, c.fields) LIKE ANY ($4::text[]))
ORDER BY c.id
LIMIT $5;

-- name: feed_corp_exists
-- $1 corp name
SELECT EXISTS (SELECT 1 FROM corps WHERE name = $1);

-- name: feed_declare_subscribers
-- $1 subscribers as the app dir declares them, a JSON array of {"name", "events", "corps", "personalFields"}
-- (events and corps null: all), $2 whether that is all of them: then every other subscriber is removed (its
-- pending outbox rows and streams dropped). A declared subscriber takes its filters and is no longer removed.
-- Returns the names removed now.
WITH declared AS (
    SELECT * FROM jsonb_to_recordset($1::text::jsonb) AS d (name text, events text[], corps text[], "personalFields" text[])
), written AS (
    INSERT INTO feed_subscribers AS s (name, events, corps, personal_fields)
    SELECT name, events, corps, coalesce("personalFields", '{}') FROM declared
    ON CONFLICT (name) DO UPDATE
    SET events = EXCLUDED.events, corps = EXCLUDED.corps, personal_fields = EXCLUDED.personal_fields,
        removed_at = NULL, updated_at = now()
    WHERE (s.events, s.corps, s.personal_fields, s.removed_at) IS DISTINCT FROM
          (EXCLUDED.events, EXCLUDED.corps, EXCLUDED.personal_fields, NULL::timestamptz)
), removed AS (
    UPDATE feed_subscribers s SET removed_at = now(), updated_at = now()
    WHERE $2 AND s.removed_at IS NULL AND s.name NOT IN (SELECT name FROM declared)
    RETURNING name
), dropped AS (
    DELETE FROM feed_outbox o USING removed r WHERE o.subscriber = r.name AND o.delivered_at IS NULL
), streams AS (
    DELETE FROM feed_streams f USING removed r WHERE f.subscriber = r.name
)
SELECT name FROM removed ORDER BY name;

-- name: feed_fanout
-- $1 horizon (exclusive), $2 at most this many changes. One outbox row per change and subscriber (not removed)
-- whose stored filters want it, in change order; the fan-out position moves past every change read.
WITH batch AS (
    SELECT c.id, c.corp, feed_type(c.entity, c.op, c.fields) AS type, k.name AS corp_name
    FROM change_log c JOIN corps k ON k.id = c.corp
    WHERE c.id > (SELECT change_id FROM feed_fanout) AND c.id < $1
    ORDER BY c.id
    LIMIT $2
), subs AS (
    SELECT name, events IS NULL AS every_type, ARRAY(SELECT replace(p, '*', '%') FROM unnest(events) p) AS types, corps
    FROM feed_subscribers WHERE removed_at IS NULL
), queued AS (
    INSERT INTO feed_outbox (subscriber, corp, change_id)
    SELECT s.name, b.corp, b.id FROM batch b CROSS JOIN subs s
    WHERE (s.every_type OR b.type LIKE ANY (s.types))
      AND (s.corps IS NULL OR b.corp_name = ANY (s.corps))
    ORDER BY b.id, s.name
    RETURNING subscriber, corp
), streams AS (
    INSERT INTO feed_streams (subscriber, corp) SELECT DISTINCT subscriber, corp FROM queued
    ON CONFLICT DO NOTHING
), moved AS (
    UPDATE feed_fanout SET change_id = (SELECT max(id) FROM batch) WHERE EXISTS (SELECT 1 FROM batch)
)
SELECT (SELECT count(*) FROM batch) AS seen, (SELECT count(*) FROM queued) AS queued;

-- name: feed_due_streams
-- $1 subscriber names this process can send to, $2 at most this many streams; disabled and removed ones wait
SELECT s.subscriber, s.corp FROM feed_streams s JOIN feed_subscribers f ON f.name = s.subscriber
WHERE s.subscriber = ANY ($1::text[]) AND f.disabled_at IS NULL AND f.removed_at IS NULL AND s.next_at <= now()
  AND EXISTS (
      SELECT 1 FROM feed_outbox o WHERE o.subscriber = s.subscriber AND o.corp = s.corp AND o.delivered_at IS NULL
  )
ORDER BY s.next_at
LIMIT $2;

-- name: feed_stream_head
-- $1 subscriber, $2 corps row id, $3 at most this many: the stream's next events, in order, with the personal
-- fields the subscriber's row allows
SELECT o.id AS outbox_id, o.attempts, c.id, k.name AS corp, feed_type(c.entity, c.op, c.fields) AS type,
       c.entity_id, c.fields, c.changes, c.source, c.at, c.inbox_id, c.sync_run_id, f.personal_fields
FROM feed_outbox o JOIN change_log c ON c.id = o.change_id JOIN corps k ON k.id = o.corp
     JOIN feed_subscribers f ON f.name = o.subscriber
WHERE o.subscriber = $1 AND o.corp = $2 AND o.delivered_at IS NULL
ORDER BY o.id
LIMIT $3;

-- name: feed_delivered
-- $1 outbox ids delivered, $2 subscriber: its failing time ends
WITH done AS (
    UPDATE feed_outbox SET delivered_at = now(), attempts = attempts + 1
    WHERE id = ANY ($1::bigint[]) AND delivered_at IS NULL
)
UPDATE feed_subscribers SET failing_since = NULL, last_error = NULL, updated_at = now()
WHERE name = $2 AND failing_since IS NOT NULL;

-- name: feed_failed
-- $1 outbox id, $2 subscriber, $3 corps row id, $4 seconds until the next attempt, $5 what went wrong
WITH attempt AS (
    UPDATE feed_outbox SET attempts = attempts + 1, last_error = $5 WHERE id = $1
), stream AS (
    UPDATE feed_streams SET next_at = now() + make_interval(secs => $4) WHERE subscriber = $2 AND corp = $3
)
UPDATE feed_subscribers SET failing_since = coalesce(failing_since, now()), last_error = $5, updated_at = now()
WHERE name = $2;

-- name: feed_disable_failing
-- $1 seconds: subscribers failing for longer are disabled
UPDATE feed_subscribers
SET disabled_at = now(), updated_at = now(),
    disabled_reason = 'failing since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
WHERE disabled_at IS NULL AND failing_since <= now() - make_interval(secs => $1)
RETURNING name;

-- name: feed_enable
-- $1 subscriber: enabled again, its streams due now
WITH enabled AS (
    UPDATE feed_subscribers
    SET disabled_at = NULL, disabled_reason = NULL, failing_since = NULL, updated_at = now()
    WHERE name = $1
    RETURNING name
), streams AS (
    UPDATE feed_streams SET next_at = now() WHERE subscriber IN (SELECT name FROM enabled)
)
SELECT count(*) FROM enabled;

-- name: feed_disabled
-- $1 subscriber names
SELECT name FROM feed_subscribers
WHERE name = ANY ($1::text[]) AND disabled_at IS NOT NULL AND removed_at IS NULL
ORDER BY name;

-- name: feed_subscriber_states
-- $1 subscriber names, $2 whether removed subscribers come too: state, stored filters, pending events and the age
-- of the oldest pending change
SELECT s.name, s.disabled_at, s.disabled_reason, s.failing_since, s.last_error, s.removed_at, s.events, s.corps,
       s.personal_fields,
       (SELECT count(*) FROM feed_outbox o WHERE o.subscriber = s.name AND o.delivered_at IS NULL) AS pending,
       (SELECT extract(epoch FROM now() - min(c.at))::float8
        FROM feed_outbox o JOIN change_log c ON c.id = o.change_id
        WHERE o.subscriber = s.name AND o.delivered_at IS NULL) AS lag_seconds
FROM feed_subscribers s
WHERE s.name = ANY ($1::text[]) OR ($2 AND s.removed_at IS NOT NULL)
ORDER BY s.name;

-- name: feed_replay
-- $1 subscriber (not removed: its stored filters apply), $2 after change id or NULL, $3 since or NULL, $4 until or
-- NULL, $5 horizon (exclusive), $6 only this corp or NULL, $7 at most this many. The changes queued again, at the
-- end of their streams.
WITH sub AS (
    SELECT events IS NULL AS every_type, ARRAY(SELECT replace(p, '*', '%') FROM unnest(events) p) AS types, corps
    FROM feed_subscribers WHERE name = $1 AND removed_at IS NULL
), picked AS (
    SELECT c.id, c.corp FROM change_log c JOIN corps k ON k.id = c.corp CROSS JOIN sub s
    WHERE c.id < $5
      AND ($2::bigint IS NULL OR c.id > $2)
      AND ($3::timestamptz IS NULL OR c.at >= $3)
      AND ($4::timestamptz IS NULL OR c.at < $4)
      AND (s.every_type OR feed_type(c.entity, c.op, c.fields) LIKE ANY (s.types))
      AND (s.corps IS NULL OR k.name = ANY (s.corps))
      AND ($6::text IS NULL OR k.name = $6)
    ORDER BY c.id
    LIMIT $7
), queued AS (
    INSERT INTO feed_outbox (subscriber, corp, change_id) SELECT $1, corp, id FROM picked ORDER BY id
    RETURNING corp
), streams AS (
    INSERT INTO feed_streams (subscriber, corp) SELECT DISTINCT $1::text, corp FROM queued
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM queued;

-- name: feed_prune
-- $1 seconds delivered rows (and removed subscribers) are kept, $2 at most this many rows go
WITH forgotten AS (
    DELETE FROM feed_subscribers WHERE removed_at < now() - make_interval(secs => $1)
), gone AS (
    DELETE FROM feed_outbox
    WHERE id IN (
        SELECT id FROM feed_outbox WHERE delivered_at < now() - make_interval(secs => $1) ORDER BY delivered_at LIMIT $2
    )
    RETURNING 1
)
SELECT count(*) FROM gone;

-- name: feed_prune_orphans
-- Pending outbox rows whose change the change_log retention deleted (a subscriber disabled longer than
-- CORPSYNC_RETAIN_CHANGE_LOG): nothing is left to send. Returns how many went, per subscriber.
WITH gone AS (
    DELETE FROM feed_outbox o
    WHERE o.delivered_at IS NULL AND o.change_id < (SELECT coalesce(min(id), 9223372036854775807) FROM change_log)
      AND NOT EXISTS (SELECT 1 FROM change_log c WHERE c.id = o.change_id)
    RETURNING o.subscriber
)
SELECT subscriber, count(*) AS n FROM gone GROUP BY subscriber ORDER BY subscriber;

-- name: feed_outbox_pending
-- Outbox rows not delivered yet, every subscriber
SELECT count(*) FROM feed_outbox WHERE delivered_at IS NULL;
