-- The local user pool (handlers.store.users): one person per platform identity, members linked to it.

-- name: users_register
-- $1 corps row id, $2 user ids (NULL: every member of the corp)
-- bulkRegister / full sync / a member's creation: the person of every chosen member not linked yet is made
-- unless it exists (identity: member_identity, migration 0009). Only unlinked members are read (members_unlinked):
-- a linked member keeps its person. Returns how many people were made; users_link then links the members.
WITH corp AS (
    SELECT platform, type, corp_id, auth_name FROM corps WHERE id = $1
), chosen AS (
    SELECT m.id, c.platform,
           member_identity(c.platform, c.type, c.auth_name, c.corp_id, m.user_id, m.union_id, m.open_user_id)
               AS identity
    FROM members m CROSS JOIN corp c
    WHERE m.corp = $1 AND m.local_user IS NULL AND ($2::text[] IS NULL OR m.user_id = ANY($2::text[]))
), created AS (
    INSERT INTO local_users (platform, identity)
    SELECT DISTINCT platform, identity FROM chosen
    ON CONFLICT (platform, identity) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM created;

-- name: users_link
-- $1 corps row id, $2 user ids (NULL: every member of the corp)
-- After users_register (whose rows a later statement sees): links each chosen unlinked member to the person of
-- its identity. Returns how many members were linked.
WITH corp AS (
    SELECT platform, type, corp_id, auth_name FROM corps WHERE id = $1
), chosen AS (
    SELECT m.id, c.platform,
           member_identity(c.platform, c.type, c.auth_name, c.corp_id, m.user_id, m.union_id, m.open_user_id)
               AS identity
    FROM members m CROSS JOIN corp c
    WHERE m.corp = $1 AND m.local_user IS NULL AND ($2::text[] IS NULL OR m.user_id = ANY($2::text[]))
), linked AS (
    UPDATE members m SET local_user = u.id
    FROM chosen c JOIN local_users u ON u.platform = c.platform AND u.identity = c.identity
    WHERE m.id = c.id
    RETURNING 1
)
SELECT count(*) FROM linked;

-- name: users_follow_rename
-- $1 corps row id, $2 the old user id, $3 the new one (the member has it now)
-- A person whose identity is made of the member's old userid takes the new one: the old userid may be given to
-- someone else later, who must not become this person. Kept when another person has that identity already.
UPDATE local_users u SET identity = 'userId:' || c.corp_id || ':' || $3
FROM members m JOIN corps c ON c.id = m.corp
WHERE m.corp = $1 AND m.user_id = $3 AND u.id = m.local_user
  AND u.identity = 'userId:' || c.corp_id || ':' || $2
  AND NOT EXISTS (SELECT 1 FROM local_users x WHERE x.platform = u.platform AND x.identity = 'userId:' || c.corp_id || ':' || $3)
RETURNING u.id;

-- name: users_of_corp
-- $1 corps row id
-- getLocalCorpData's user pool: the people the corp's members are linked to, each with its members' user ids and
-- the name of the newest of them.
SELECT u.id, u.platform, u.identity, u.created_at,
       (array_agg(m.name ORDER BY m.id DESC))[1] AS name,
       array_agg(m.user_id ORDER BY m.id) AS member_ids
FROM local_users u JOIN members m ON m.local_user = u.id
WHERE m.corp = $1
GROUP BY u.id
ORDER BY u.id;
