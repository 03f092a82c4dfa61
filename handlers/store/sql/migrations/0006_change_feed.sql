-- The change feed (handlers.feed): change_log rows become events for pull consumers, webhook subscribers and
-- LISTEN-ers. What every event needs is kept here, so that the pull feed, the outbox and replay read one source.

-- Each changed field's value before and after: {"<column>": {"before": ..., "after": ...}}; NULL where the
-- writer does not know the values (then the event names the fields with null values).
ALTER TABLE change_log ADD COLUMN changes jsonb;
CREATE INDEX change_log_at ON change_log USING brin (at);

-- {"<field>": {"before": before -> field, "after": after -> field}} for each of ``fields``; NULL when none.
CREATE FUNCTION feed_changes(before jsonb, after jsonb, fields text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_object_agg(f, jsonb_build_object('before', before -> f, 'after', after -> f))
    FROM unnest(fields) AS f
$$;

-- The event type of a change_log row: <entity>.<what happened>. A member whose departments changed has moved, so
-- has a department whose parent changed; a rename (a WeCom userid changed) is an update.
CREATE FUNCTION feed_type(entity text, op text, fields text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN entity = 'signature' THEN 'member.updated'
        WHEN op = 'create' THEN entity || '.created'
        WHEN op = 'delete' THEN entity || '.deleted'
        WHEN op = 'offline' THEN entity || '.offlined'
        WHEN op = 'reactivate' THEN entity || '.reactivated'
        WHEN op = 'enable' THEN entity || '.enabled'
        WHEN op = 'disable' THEN entity || '.disabled'
        WHEN entity = 'member' AND 'departments' = ANY (fields) THEN 'member.moved'
        WHEN entity = 'department' AND 'parent_id' = ANY (fields) THEN 'department.moved'
        ELSE entity || '.updated'
    END
$$;

-- Commit order. change_log ids come from a sequence, so a transaction may commit ids below those of one that
-- committed before it. Before its first change_log row, every transaction burns one id and holds a shared
-- advisory lock keyed by it (the bigint form, objsubid 1 in pg_locks) until it ends; ``feed_horizon`` gives the
-- least id no reader may pass yet: below every such lock still held and above every id handed out before.
CREATE FUNCTION change_log_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('corpsync.feed_hold', true), '') = '' THEN
        PERFORM pg_advisory_xact_lock_shared(nextval('change_log_id_seq'));
        PERFORM set_config('corpsync.feed_hold', 'held', true);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER change_log_hold BEFORE INSERT ON change_log FOR EACH STATEMENT EXECUTE FUNCTION change_log_hold();

-- Read the sequence first, then the locks: an id handed out before the sequence was read belongs to a transaction
-- whose lock was taken before, so it is either still in pg_locks or over (and visible to the next statement).
-- Keys at or above 2^62 are other advisory locks (handlers.store.locks.MIGRATE_LOCK).
CREATE FUNCTION feed_horizon() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    handed bigint;
    held bigint;
BEGIN
    SELECT last_value + 1 INTO handed FROM change_log_id_seq;
    SELECT min((l.classid::bigint << 32) | l.objid::bigint) INTO held
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) < 4611686018427387904;
    RETURN least(handed, held);
END
$$;

-- In-database consumers: LISTEN corpsync_changes. PostgreSQL delivers a notification at commit, never before;
-- the payload is the largest change id the statement wrote.
CREATE FUNCTION change_log_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last bigint;
BEGIN
    SELECT max(id) INTO last FROM added;
    IF last IS NOT NULL THEN
        PERFORM pg_notify('corpsync_changes', last::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER change_log_notify AFTER INSERT ON change_log REFERENCING NEW TABLE AS added
FOR EACH STATEMENT EXECUTE FUNCTION change_log_notify();

-- Webhook subscribers (subscribers/<Name> in the app dir): their delivery state, shared by every process.
CREATE TABLE feed_subscribers (
    name            text PRIMARY KEY,
    failing_since   timestamptz,                    -- first failure since the last success
    disabled_at     timestamptz,                    -- failing too long; an operator enables it again
    disabled_reason text,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One stream per (subscriber, corp): events go out one at a time in outbox id order; next_at is the backoff.
CREATE TABLE feed_streams (
    subscriber  text NOT NULL REFERENCES feed_subscribers (name) ON DELETE CASCADE,
    corp        bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    next_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscriber, corp)
);

-- The outbox: one row per event and subscriber, kept after delivery for the retention time.
CREATE TABLE feed_outbox (
    id           bigserial PRIMARY KEY,
    subscriber   text NOT NULL REFERENCES feed_subscribers (name) ON DELETE CASCADE,
    corp         bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    change_id    bigint NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX feed_outbox_pending ON feed_outbox (subscriber, corp, id) WHERE delivered_at IS NULL;
CREATE INDEX feed_outbox_delivered ON feed_outbox (delivered_at) WHERE delivered_at IS NOT NULL;

-- How far the fan-out (change_log → outbox) has gone: the last change id it has seen.
CREATE TABLE feed_fanout (
    one       boolean PRIMARY KEY DEFAULT true CHECK (one),
    change_id bigint NOT NULL
);
INSERT INTO feed_fanout (change_id) SELECT coalesce(max(id), 0) FROM change_log;
