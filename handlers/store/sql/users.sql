-- The local user pool (handlers.store.users): one person per platform identity, members linked to it.

-- name: users_register
-- $1 corps row id, $2 user ids (NULL: every member of the corp)
-- bulkRegister / full sync: every chosen member not yet linked gets its person, found by identity or created.
-- A member already linked keeps its person (so a userid change never makes a new one); its person's name follows,
-- and so does an identity made of the userid.
-- Identity: DingTalk unionid; WeCom open_userid for a 代开发 / suite tenant that has it, else the userid (both
-- under the corp's corpid). Returns how many people were created and how many were updated.
WITH corp AS (
    SELECT platform, type, corp_id, auth_name FROM corps WHERE id = $1
), chosen AS (
    SELECT m.id, m.name, m.local_user,
           CASE WHEN c.platform = 'dingtalk' AND m.union_id IS NOT NULL THEN 'unionId:' || m.union_id
                WHEN c.platform = 'wecom' AND (c.type = 'corps.QywxProxyType' OR c.auth_name IS NOT NULL)
                     AND m.open_user_id IS NOT NULL THEN 'openUserId:' || c.corp_id || ':' || m.open_user_id
                ELSE 'userId:' || c.corp_id || ':' || m.user_id END AS identity,
           c.platform
    FROM members m CROSS JOIN corp c
    WHERE m.corp = $1 AND ($2::text[] IS NULL OR m.user_id = ANY($2::text[]))
), created AS (
    INSERT INTO local_users (platform, identity, name)
    SELECT DISTINCT ON (identity) platform, identity, name FROM chosen WHERE local_user IS NULL
    ORDER BY identity, id
    ON CONFLICT (platform, identity) DO NOTHING
    RETURNING id
), linked AS (
    -- A linked member's person follows its name; and an identity made of a userid follows the userid (a WeCom
    -- userid may change, and the old one may be given to someone else later), unless another person has it.
    SELECT c.local_user, c.name,
           CASE WHEN u.identity LIKE 'userId:%' AND u.identity <> c.identity
                     AND NOT EXISTS (SELECT 1 FROM local_users x WHERE x.platform = u.platform AND x.identity = c.identity)
                THEN c.identity ELSE u.identity END AS identity
    FROM chosen c JOIN local_users u ON u.id = c.local_user
), updated AS (
    UPDATE local_users u SET name = coalesce(l.name, u.name), identity = l.identity, updated_at = now()
    FROM linked l
    WHERE u.id = l.local_user AND (u.name, u.identity) IS DISTINCT FROM (coalesce(l.name, u.name), l.identity)
    RETURNING u.id
)
SELECT (SELECT count(*) FROM created) AS created, (SELECT count(*) FROM updated) AS updated;

-- name: users_link
-- $1 corps row id, $2 user ids (NULL: every member of the corp)
-- Run after users_register (its rows are visible to a later statement): links each chosen unlinked member to the
-- person of its identity. Returns the members linked.
WITH corp AS (
    SELECT platform, type, corp_id, auth_name FROM corps WHERE id = $1
), chosen AS (
    SELECT m.id,
           CASE WHEN c.platform = 'dingtalk' AND m.union_id IS NOT NULL THEN 'unionId:' || m.union_id
                WHEN c.platform = 'wecom' AND (c.type = 'corps.QywxProxyType' OR c.auth_name IS NOT NULL)
                     AND m.open_user_id IS NOT NULL THEN 'openUserId:' || c.corp_id || ':' || m.open_user_id
                ELSE 'userId:' || c.corp_id || ':' || m.user_id END AS identity,
           c.platform
    FROM members m CROSS JOIN corp c
    WHERE m.corp = $1 AND m.local_user IS NULL AND ($2::text[] IS NULL OR m.user_id = ANY($2::text[]))
)
UPDATE members m SET local_user = u.id
FROM chosen c JOIN local_users u ON u.platform = c.platform AND u.identity = c.identity
WHERE m.id = c.id
RETURNING m.id;

-- name: users_of_corp
-- $1 corps row id
-- getLocalCorpData's user pool: the people the corp's members are linked to, each with its members' user ids.
SELECT u.id, u.platform, u.identity, u.name, u.created_at, u.updated_at,
       array_agg(m.user_id ORDER BY m.id) AS member_ids
FROM local_users u JOIN members m ON m.local_user = u.id
WHERE m.corp = $1
GROUP BY u.id
ORDER BY u.id;
