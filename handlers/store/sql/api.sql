-- The directory API (handlers.api): reads with keyset pages (handlers.store.reads), and the operator's writes
-- (handlers.store.operator). A NULL page key starts at the beginning; a NULL limit means "all".
-- Departments are listed in natural id order (length, then text: '2' before '10'), members by local id.

-- name: api_corp_row
-- $1 corp name
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id, created_at, updated_at
FROM corps WHERE name = $1;

-- name: api_corps_page
-- $1 configured corp names, $2 configured suite auth names, $3 the last name of the previous page, $4 the limit
-- The corps the app serves: the configured corps and the tenants of its suite auths.
SELECT id, name, platform, type, corp_id, auth_name, title, status, root_dept_id, created_at, updated_at
FROM corps
WHERE (name = ANY($1::text[]) OR auth_name = ANY($2::text[])) AND ($3::text IS NULL OR name > $3)
ORDER BY name
LIMIT $4;

-- name: api_corps_count
-- $1 configured corp names, $2 configured suite auth names
SELECT count(*) FROM corps WHERE name = ANY($1::text[]) OR auth_name = ANY($2::text[]);

-- name: api_corp_stats
-- $1 corps row id
SELECT (SELECT count(*) FROM departments WHERE corp = $1) AS departments,
       (SELECT count(*) FROM members WHERE corp = $1 AND status = 'active') AS active_members,
       (SELECT count(*) FROM members WHERE corp = $1 AND status = 'offline') AS offline_members,
       (SELECT max(finished_at) FROM sync_runs WHERE corp = $1 AND status IN ('succeeded', 'quarantined'))
           AS last_good_sync_at;

-- name: api_depts_page
-- $1 corps row id, $2 the last dept id of the previous page, $3 the limit
SELECT dept_id, parent_id, name, name_en, "order", leaders, created_at, updated_at
FROM departments
WHERE corp = $1 AND ($2::text IS NULL OR (length(dept_id), dept_id) > (length($2::text), $2::text))
ORDER BY length(dept_id), dept_id
LIMIT $3;

-- name: api_depts_count
-- $1 corps row id
SELECT count(*) FROM departments WHERE corp = $1;

-- name: api_dept
-- $1 corps row id, $2 dept id
SELECT dept_id, parent_id, name, name_en, "order", leaders, created_at, updated_at
FROM departments WHERE corp = $1 AND dept_id = $2;

-- name: api_root_dept
-- $1 corps row id
-- corps.root_dept_id when that department is stored, else the top of the stored tree: a department whose
-- parent is not a department of the corp. Several tops (a partial visible scope, or an orphan whose
-- parent was removed): the one with the largest subtree, then the lowest id.
WITH RECURSIVE tops AS (
    SELECT d.dept_id FROM departments d
    WHERE d.corp = $1
      AND NOT EXISTS (SELECT 1 FROM departments p WHERE p.corp = $1 AND p.dept_id = d.parent_id)
), tree AS (
    SELECT dept_id AS top, dept_id FROM tops
    UNION
    SELECT t.top, c.dept_id FROM tree t JOIN departments c ON c.corp = $1 AND c.parent_id = t.dept_id
), pick AS (
    SELECT c.root_dept_id AS dept_id, 0 AS rank, 0::bigint AS size
    FROM corps c JOIN departments d ON d.corp = c.id AND d.dept_id = c.root_dept_id
    WHERE c.id = $1
    UNION ALL
    SELECT top, 1, count(*) FROM tree GROUP BY top
)
SELECT d.dept_id, d.parent_id, d.name, d.name_en, d."order", d.leaders, d.created_at, d.updated_at
FROM pick p JOIN departments d ON d.corp = $1 AND d.dept_id = p.dept_id
ORDER BY p.rank, p.size DESC, length(p.dept_id), p.dept_id
LIMIT 1;

-- name: api_members_page
-- $1 corps row id; filters, skipped when NULL: $2 status, $3 direct department, $4 updated since; $5 the last
-- local id of the previous page, $6 the limit.
SELECT m.id, m.local_user::text AS local_user_id, m.user_id, m.name, m.status, m.offline_reason, m.offline_at,
       m.main_dept_id, m.union_id,
       m.open_user_id, m.alias, m.position, m.mobile, m.email, m.biz_mail, m.telephone, m.gender, m.avatar,
       m.job_number, m.work_place, m.hired_date, m.direct_leaders, m.platform_status, m.extattr,
       m.created_at, m.updated_at,
       coalesce(md.dept_ids, '{}') AS dept_ids, coalesce(md.leader_dept_ids, '{}') AS leader_dept_ids
FROM members m
LEFT JOIN LATERAL (
    SELECT array_agg(dept_id ORDER BY length(dept_id), dept_id) AS dept_ids,
           array_agg(dept_id ORDER BY length(dept_id), dept_id) FILTER (WHERE is_leader) AS leader_dept_ids
    FROM member_departments WHERE member = m.id
) md ON true
WHERE m.corp = $1
  AND ($2::text IS NULL OR m.status = $2::text)
  AND ($3::text IS NULL OR EXISTS (
      SELECT 1 FROM member_departments x WHERE x.member = m.id AND x.dept_id = $3::text))
  AND ($4::timestamptz IS NULL OR m.updated_at >= $4::timestamptz)
  AND ($5::bigint IS NULL OR m.id > $5::bigint)
ORDER BY m.id
LIMIT $6;

-- name: api_members_count
-- $1 corps row id; filters, skipped when NULL: $2 status, $3 direct department, $4 updated since
SELECT count(*) FROM members m
WHERE m.corp = $1
  AND ($2::text IS NULL OR m.status = $2::text)
  AND ($3::text IS NULL OR EXISTS (
      SELECT 1 FROM member_departments x WHERE x.member = m.id AND x.dept_id = $3::text))
  AND ($4::timestamptz IS NULL OR m.updated_at >= $4::timestamptz);

-- name: api_members_by_user_ids
-- $1 corps row id, $2 user ids
SELECT m.id, m.local_user::text AS local_user_id, m.user_id, m.name, m.status, m.offline_reason, m.offline_at,
       m.main_dept_id, m.union_id,
       m.open_user_id, m.alias, m.position, m.mobile, m.email, m.biz_mail, m.telephone, m.gender, m.avatar,
       m.job_number, m.work_place, m.hired_date, m.direct_leaders, m.platform_status, m.extattr,
       m.created_at, m.updated_at,
       coalesce(md.dept_ids, '{}') AS dept_ids, coalesce(md.leader_dept_ids, '{}') AS leader_dept_ids
FROM members m
LEFT JOIN LATERAL (
    SELECT array_agg(dept_id ORDER BY length(dept_id), dept_id) AS dept_ids,
           array_agg(dept_id ORDER BY length(dept_id), dept_id) FILTER (WHERE is_leader) AS leader_dept_ids
    FROM member_departments WHERE member = m.id
) md ON true
WHERE m.corp = $1 AND m.user_id = ANY($2::text[])
ORDER BY m.id;

-- name: api_member_keys
-- $1 corps row id, $2 user ids
-- Local ids of the given user ids (the caller reports the ones missing).
SELECT user_id, id FROM members WHERE corp = $1 AND user_id = ANY($2::text[]);

-- name: api_offline_members
-- $1 corps row id, $2 user ids
-- offlineMember: active members, and members offline for a platform reason, become offline by the operator
-- (so no full sync or update re-activates them, only a new join does). Returns each one changed, its status before,
-- the fields that changed and their values.
WITH old AS (
    SELECT id, user_id, status, offline_reason, offline_at FROM members
    WHERE corp = $1 AND user_id = ANY($2::text[])
      AND (status = 'active' OR offline_reason IS DISTINCT FROM 'operator')
    FOR UPDATE
), up AS (
    UPDATE members m
    SET status = 'offline', offline_reason = 'operator',
        offline_at = CASE WHEN m.status = 'active' THEN now() ELSE coalesce(m.offline_at, now()) END,
        updated_at = now()
    FROM old o WHERE m.id = o.id
    RETURNING m.id, m.status, m.offline_reason, m.offline_at
), diff AS (
    SELECT o.user_id, o.status AS was, to_jsonb(o) AS before, to_jsonb(u) AS after,
           array_remove(ARRAY[
               CASE WHEN o.status IS DISTINCT FROM u.status THEN 'status' END,
               CASE WHEN o.offline_reason IS DISTINCT FROM u.offline_reason THEN 'offline_reason' END,
               CASE WHEN o.offline_at IS DISTINCT FROM u.offline_at THEN 'offline_at' END
           ], NULL) AS fields
    FROM old o JOIN up u ON u.id = o.id
)
SELECT user_id, was, fields, feed_changes(before, after, fields)::text AS changes FROM diff ORDER BY user_id;

-- name: api_member_roles
-- $1 corps row id, $2 the member's local id
SELECT rm.role_id, r.name, r.group_name, coalesce(r.source, 'local') AS source, rm.created_at
FROM role_members rm
LEFT JOIN roles r ON r.corp = rm.corp AND r.role_id = rm.role_id
WHERE rm.corp = $1 AND rm.member = $2
ORDER BY rm.role_id;

-- name: api_platform_roles_among
-- $1 corps row id, $2 role ids
SELECT role_id FROM roles WHERE corp = $1 AND source = 'platform' AND role_id = ANY($2::text[]) ORDER BY role_id;

-- name: api_create_local_roles
-- $1 corps row id, $2 role ids
INSERT INTO roles (corp, role_id, source)
SELECT $1, r, 'local' FROM unnest($2::text[]) AS r
ON CONFLICT (corp, role_id) DO NOTHING
RETURNING role_id;

-- name: api_set_member_local_roles
-- $1 corps row id, $2 the member's local id, $3 role ids
-- setUserRole: the member's memberships in local roles become exactly the roles given (platform roles are left alone:
-- their members follow the platform). Returns the roles whose member list changed, and whether the member joined.
WITH removed AS (
    DELETE FROM role_members rm
    WHERE rm.corp = $1 AND rm.member = $2 AND rm.role_id <> ALL($3::text[])
      AND NOT EXISTS (SELECT 1 FROM roles r WHERE r.corp = $1 AND r.role_id = rm.role_id AND r.source = 'platform')
    RETURNING rm.role_id
), added AS (
    INSERT INTO role_members (corp, role_id, member)
    SELECT $1, r, $2 FROM unnest($3::text[]) AS r
    ON CONFLICT DO NOTHING
    RETURNING role_id
)
SELECT role_id, false AS joined FROM removed UNION ALL SELECT role_id, true FROM added ORDER BY joined DESC, role_id;

-- name: api_admins_page
-- $1 corps row id, $2 the last local member id of the previous page, $3 the limit
SELECT a.member, m.user_id, m.name, m.status, a.level, a.source, a.created_at
FROM admins a JOIN members m ON m.id = a.member
WHERE a.corp = $1 AND ($2::bigint IS NULL OR a.member > $2::bigint)
ORDER BY a.member
LIMIT $3;

-- name: api_admins_count
-- $1 corps row id
SELECT count(*) FROM admins WHERE corp = $1;

-- name: api_set_local_admins
-- $1 corps row id, $2 local member ids
-- setAdmin: the local admins become exactly the members given, platform admins are left alone.
WITH removed AS (
    DELETE FROM admins a WHERE a.corp = $1 AND a.source = 'local' AND a.member <> ALL($2::bigint[])
    RETURNING a.member
), added AS (
    INSERT INTO admins (corp, member, source)
    SELECT $1, x, 'local' FROM unnest($2::bigint[]) AS x
    ON CONFLICT (corp, member) DO NOTHING
    RETURNING member
)
SELECT m.user_id, 'delete' AS op FROM removed r JOIN members m ON m.id = r.member
UNION ALL
SELECT m.user_id, 'create' FROM added a JOIN members m ON m.id = a.member
ORDER BY 1;

-- name: api_signature
-- $1 corps row id, $2 the member's local id
SELECT signature, updated_at FROM signatures WHERE corp = $1 AND member = $2;

-- name: api_save_signature
-- $1 corps row id, $2 the member's local id, $3 signature
-- Writes only a different signature, and returns whether the row is new and the signature before (no row when
-- unchanged).
WITH old AS (
    SELECT signature FROM signatures WHERE corp = $1 AND member = $2
), up AS (
    INSERT INTO signatures AS s (corp, member, signature) VALUES ($1, $2, $3)
    ON CONFLICT (corp, member) DO UPDATE SET signature = EXCLUDED.signature, updated_at = now()
    WHERE s.signature IS DISTINCT FROM EXCLUDED.signature
    RETURNING 1
)
SELECT NOT EXISTS (SELECT 1 FROM old) AS created, (SELECT signature FROM old) AS before FROM up;

-- name: api_roles_all
-- $1 corps row id
SELECT r.role_id, r.name, r.group_name, r.source,
       ARRAY(SELECT m.user_id FROM role_members rm JOIN members m ON m.id = rm.member
             WHERE rm.corp = $1 AND rm.role_id = r.role_id ORDER BY m.user_id) AS member_ids
FROM roles r WHERE r.corp = $1
ORDER BY r.role_id;

-- name: api_tags_all
-- $1 corps row id
SELECT t.tag_id, t.name,
       ARRAY(SELECT m.user_id FROM tag_members tm JOIN members m ON m.id = tm.member
             WHERE tm.corp = $1 AND tm.tag_id = t.tag_id ORDER BY m.user_id) AS member_ids,
       ARRAY(SELECT td.dept_id FROM tag_departments td
             WHERE td.corp = $1 AND td.tag_id = t.tag_id ORDER BY length(td.dept_id), td.dept_id) AS dept_ids
FROM tags t WHERE t.corp = $1
ORDER BY length(t.tag_id), t.tag_id;

-- name: api_sync_runs_page
-- $1 corps row id, $2 the last run id of the previous page, $3 the limit. Newest first.
SELECT id, trigger, status, started_at, finished_at, counts, api_calls, error, held, confirmed_at
FROM sync_runs
WHERE corp = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
ORDER BY id DESC
LIMIT $3;

-- name: api_sync_runs_count
-- $1 corps row id
SELECT count(*) FROM sync_runs WHERE corp = $1;

-- name: api_sync_run
-- $1 corps row id, $2 run id
SELECT id, trigger, status, started_at, finished_at, counts, api_calls, error, held, confirmed_at
FROM sync_runs WHERE corp = $1 AND id = $2;

-- name: api_last_sync_run_id
-- $1 corps row id
SELECT coalesce(max(id), 0) FROM sync_runs WHERE corp = $1;

-- name: api_running_sync_run
-- $1 corps row id, $2 a run id: the newest running run of the corp with an id above it.
SELECT id FROM sync_runs WHERE corp = $1 AND status = 'running' AND id > $2 ORDER BY id DESC LIMIT 1;

-- name: api_has_good_sync
-- $1 corps row id
SELECT EXISTS (SELECT 1 FROM sync_runs WHERE corp = $1 AND status IN ('succeeded', 'quarantined'));

-- name: api_lock_member
-- $1 corps row id, $2 user id
-- Serializes the API's writes to one member (roles, signature) until the transaction ends.
SELECT id FROM members WHERE corp = $1 AND user_id = $2 FOR UPDATE;
