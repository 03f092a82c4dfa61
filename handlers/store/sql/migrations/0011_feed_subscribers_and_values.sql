-- The change feed, continued (migration 0006). Webhook subscribers as the app dir declares them, in the database,
-- so that every serve process fans out and delivers the same way whatever app dir it read: the last serve started
-- writes each subscriber's filters and marks those its app dir no longer declares removed.
-- And helpers that give every changed field of a change_log row its values.

-- The declared filters: event type patterns as written (member.*), corp names, personal fields; NULL events or
-- corps: every one. removed_at: no longer in the app dir (no fan-out, no delivery; pending rows dropped).
ALTER TABLE feed_subscribers
    ADD COLUMN events text[],
    ADD COLUMN corps text[],
    ADD COLUMN personal_fields text[] NOT NULL DEFAULT '{}',
    ADD COLUMN removed_at timestamptz;

-- The changes of a membership list (a tag's members or departments, a role's members): only the ids that changed,
-- each list sorted: {"<field>": {"before": [ids that left], "after": [ids that joined]}}.
CREATE FUNCTION feed_link_changes(field text, left_ids text[], joined_ids text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object(field, jsonb_build_object(
        'before', to_jsonb(ARRAY(SELECT DISTINCT x FROM unnest(left_ids) x ORDER BY x)),
        'after', to_jsonb(ARRAY(SELECT DISTINCT x FROM unnest(joined_ids) x ORDER BY x))))
$$;

-- The changes of an active member taken offline for ``reason`` at ``at``.
CREATE FUNCTION feed_offline_changes(reason text, at timestamptz) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_build_object('status', jsonb_build_object('before', 'active', 'after', 'offline'),
                              'offline_reason', jsonb_build_object('before', NULL, 'after', reason),
                              'offline_at', jsonb_build_object('before', NULL, 'after', at))
$$;
