-- name: upsert_corp
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
SELECT id FROM corps WHERE name = $1;

-- name: corp_by_name
SELECT id, name, platform, type, corp_id, auth_name, title, status, disabled_at, root_dept_id,
       sync_requested_at, sync_request_reason
FROM corps WHERE name = $1;

-- name: corp_ids
SELECT id, name FROM corps ORDER BY name;

-- name: set_corp_status
UPDATE corps SET status = $2,
       disabled_at = CASE WHEN $2 = 'disabled' THEN coalesce(disabled_at, now()) ELSE NULL END,
       updated_at = now()
WHERE id = $1;

-- name: request_sync
-- Debounced: an open request keeps its first time and reason, and its row is not rewritten.
UPDATE corps SET sync_requested_at = now(), sync_request_reason = $2
WHERE id = $1 AND sync_requested_at IS NULL
RETURNING sync_requested_at;

-- name: clear_sync_request
UPDATE corps SET sync_requested_at = NULL, sync_request_reason = NULL
WHERE id = $1 AND sync_requested_at <= $2;

-- name: corps_wanting_sync
SELECT id, name, sync_request_reason FROM corps
WHERE sync_requested_at IS NOT NULL AND status = 'active' ORDER BY sync_requested_at;

-- name: active_tenants_of
-- Suite tenants authorized at run time (corps rows of a configured auth that the app dir does not name).
SELECT name, corp_id, title, auth_name FROM corps
WHERE auth_name = ANY($1::text[]) AND status = 'active' AND NOT (name = ANY($2::text[]))
ORDER BY name;
