-- name: credential_get
-- $1 key
SELECT value, expires_at, updated_at FROM credentials WHERE key = $1;

-- name: credential_put
-- $1 key, $2 value, $3 expires at (NULL: never)
INSERT INTO credentials (key, value, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, updated_at = now();

-- name: credential_put_if_newer
-- $1 key, $2 value, $3 expires at
-- Keeps the newest value by expires_at: a late, older push never replaces a newer one.
INSERT INTO credentials (key, value, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, updated_at = now()
WHERE credentials.expires_at IS NULL OR EXCLUDED.expires_at >= credentials.expires_at
RETURNING key;

-- name: credential_delete
-- $1 key
DELETE FROM credentials WHERE key = $1;

-- name: credential_delete_if_value
-- $1 key, $2 the value it must still hold
-- Drop a rejected token, but only if no other process has replaced it meanwhile.
DELETE FROM credentials WHERE key = $1 AND value = $2;

-- name: credentials_with_prefix
-- $1 key prefix
SELECT key, value, expires_at FROM credentials
WHERE starts_with(key, $1) AND (expires_at IS NULL OR expires_at > now())
ORDER BY updated_at;

-- name: tenant_get
-- $1 suite auth name, $2 tenant corp id
SELECT auth_name, corp_id, permanent_code, agent_id, auth_info, status, updated_at
FROM suite_tenants WHERE auth_name = $1 AND corp_id = $2;

-- name: tenant_put_permanent_code
-- $1 suite auth name, $2 tenant corp id, $3 permanent code, $4 agent id, $5 auth info (no secret in it)
INSERT INTO suite_tenants (auth_name, corp_id, permanent_code, agent_id, auth_info, status)
VALUES ($1, $2, $3, $4, $5, 'active')
ON CONFLICT (auth_name, corp_id) DO UPDATE
SET permanent_code = EXCLUDED.permanent_code, agent_id = EXCLUDED.agent_id, auth_info = EXCLUDED.auth_info,
    status = 'active', auth_code = NULL, auth_code_at = NULL, updated_at = now();

-- name: tenant_put_auth_info
-- $1 suite auth name, $2 tenant corp id, $3 auth info, $4 agent id (NULL: keep the stored one)
UPDATE suite_tenants SET auth_info = $3, agent_id = coalesce($4, agent_id), updated_at = now()
WHERE auth_name = $1 AND corp_id = $2;

-- name: tenant_set_status
-- $1 suite auth name, $2 tenant corp id, $3 status
UPDATE suite_tenants SET status = $3, updated_at = now() WHERE auth_name = $1 AND corp_id = $2;

-- name: tenant_is_active
-- $1 suite auth name, $2 tenant corp id
SELECT 1 FROM suite_tenants WHERE auth_name = $1 AND corp_id = $2 AND status = 'active';

-- name: tenants_active_of
-- $1 suite auth names
-- Every tenant ``tenant_is_active`` says yes for, at once.
SELECT auth_name, corp_id FROM suite_tenants WHERE auth_name = ANY($1::text[]) AND status = 'active';

-- name: tenants_active
-- $1 suite auth name
SELECT corp_id, agent_id FROM suite_tenants
WHERE auth_name = $1 AND status = 'active' AND permanent_code IS NOT NULL ORDER BY corp_id;
