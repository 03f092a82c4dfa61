-- The corps rows: one per configured corp and per suite tenant (handlers.store.corps).

-- name: upsert_corp
-- $1 name, $2 platform, $3 type, $4 platform corp id, $5 suite auth name, $6 title, $7 root department id
-- (NULL: keep the stored one). No row when nothing changed.
INSERT INTO corps (name, platform, type, corp_id, auth_name, title, root_dept_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (name) DO UPDATE
SET platform = EXCLUDED.platform, type = EXCLUDED.type, corp_id = EXCLUDED.corp_id,
    auth_name = EXCLUDED.auth_name, title = EXCLUDED.title,
    root_dept_id = coalesce(EXCLUDED.root_dept_id, corps.root_dept_id),  -- unset in config: keep what sync found
    updated_at = now()
WHERE (corps.platform, corps.type, corps.corp_id, corps.auth_name, corps.title, corps.root_dept_id)
      IS DISTINCT FROM (EXCLUDED.platform, EXCLUDED.type, EXCLUDED.corp_id, EXCLUDED.auth_name,
                        EXCLUDED.title, coalesce(EXCLUDED.root_dept_id, corps.root_dept_id))
RETURNING id;

-- name: corp_id_by_name
-- $1 name
SELECT id FROM corps WHERE name = $1;

-- name: corp_by_name
-- $1 name
SELECT id, name, platform, type, corp_id, auth_name, title, status, disabled_at, root_dept_id,
       sync_requested_at, sync_request_reason
FROM corps WHERE name = $1;

-- name: set_corp_status
-- $1 corps row id, $2 status ('active' | 'disabled')
UPDATE corps SET status = $2,
       disabled_at = CASE WHEN $2 = 'disabled' THEN coalesce(disabled_at, now()) ELSE NULL END,
       updated_at = now()
WHERE id = $1;

-- name: request_sync
-- $1 corps row id, $2 reason, $3 urgent (the reason runs at once: it replaces an open request of another reason)
-- Debounced: an open request keeps its first time and reason, and its row is not rewritten.
UPDATE corps SET sync_requested_at = now(), sync_request_reason = $2
WHERE id = $1 AND (sync_requested_at IS NULL OR ($3::boolean AND sync_request_reason IS DISTINCT FROM $2))
RETURNING sync_requested_at;

-- name: active_tenants_of
-- $1 the configured suite auth names, $2 the configured corp names
-- Suite tenants authorized at run time (corps rows of a configured auth that the app dir does not name).
SELECT name, corp_id, title, auth_name FROM corps
WHERE auth_name = ANY($1::text[]) AND status = 'active' AND NOT (name = ANY($2::text[]))
ORDER BY name;

-- name: corp_by_id
-- $1 corps row id
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps WHERE id = $1;

-- name: corp_for_tenant
-- $1 suite auth name, $2 the tenant's platform corp id
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps
WHERE auth_name = $1 AND corp_id = $2 ORDER BY id LIMIT 1;

-- name: active_corps
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id FROM corps
WHERE status = 'active' ORDER BY id;
