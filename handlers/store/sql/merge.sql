-- Full sync's merge: staging tables for a snapshot, and the set-based merge into the corp's directory.
-- $1 is always the corps row id; $2, where used, the sync_runs id (for change_log.sync_run_id).
-- Every merge writes only rows whose values differ (IS DISTINCT FROM), and logs exactly what it wrote.

-- name: fs_set_root
-- $1 corps row id, $2 the snapshot's root dept id
UPDATE corps SET root_dept_id = $2, updated_at = now()
WHERE id = $1 AND root_dept_id IS DISTINCT FROM $2;

-- name: fs_create_staging
-- Once per connection: the tables stay, and each run empties them before it commits (fs_clear_staging). Creating
-- and dropping them in every run wrote and unlinked their files (heap, indexes, TOAST) and catalog rows every
-- time; so did ON COMMIT DELETE ROWS, which truncates every such table at the commit of any transaction that
-- touched a temporary table.
CREATE TEMP TABLE IF NOT EXISTS fs_departments (
    dept_id text PRIMARY KEY, parent_id text, name text, name_en text, "order" bigint, leaders text[]
);
CREATE TEMP TABLE IF NOT EXISTS fs_members (
    user_id text PRIMARY KEY, union_id text, open_user_id text, name text, alias text, position text,
    mobile text, email text, biz_mail text, telephone text, gender smallint, avatar text, job_number text,
    work_place text, hired_date bigint, direct_leaders text[], platform_status smallint, extattr text,
    main_dept_id text, departments_known boolean NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS fs_member_departments (
    user_id text, dept_id text, is_leader boolean, "order" bigint, PRIMARY KEY (user_id, dept_id)
);
CREATE TEMP TABLE IF NOT EXISTS fs_member_diff (
    user_id text PRIMARY KEY, member bigint, op text, fields text[], changes jsonb
);
CREATE TEMP TABLE IF NOT EXISTS fs_tags (
    tag_id text PRIMARY KEY, name text, members_known boolean NOT NULL, departments_known boolean NOT NULL
);
CREATE TEMP TABLE IF NOT EXISTS fs_tag_members (
    tag_id text, user_id text, PRIMARY KEY (tag_id, user_id)
);
CREATE TEMP TABLE IF NOT EXISTS fs_tag_departments (
    tag_id text, dept_id text, PRIMARY KEY (tag_id, dept_id)
);
CREATE TEMP TABLE IF NOT EXISTS fs_roles (role_id text PRIMARY KEY, name text, group_name text);
CREATE TEMP TABLE IF NOT EXISTS fs_role_members (
    role_id text, user_id text, PRIMARY KEY (role_id, user_id)
);
CREATE TEMP TABLE IF NOT EXISTS fs_admins (user_id text PRIMARY KEY, level smallint);
CREATE TEMP TABLE IF NOT EXISTS fs_failed (dept_id text PRIMARY KEY);

-- name: fs_analyze_staging
-- Row counts, and the statistics of the columns the merge joins on: the staging tables are new to the planner at
-- every run. Statistics of every column were most of this statement's cost, and no plan reads them.
ANALYZE fs_departments (dept_id, parent_id), fs_members (user_id), fs_member_departments (user_id, dept_id);

-- name: fs_clear_staging
-- The run's last statement before its commit: the staging tables empty again. Their dead rows are space the next
-- runs on this connection reuse; handlers.store.merge truncates the tables instead every so many runs.
WITH d1 AS (DELETE FROM fs_departments), d2 AS (DELETE FROM fs_members), d3 AS (DELETE FROM fs_member_departments),
d4 AS (DELETE FROM fs_member_diff), d5 AS (DELETE FROM fs_tags), d6 AS (DELETE FROM fs_tag_members),
d7 AS (DELETE FROM fs_tag_departments), d8 AS (DELETE FROM fs_roles), d9 AS (DELETE FROM fs_role_members),
d10 AS (DELETE FROM fs_admins), d11 AS (DELETE FROM fs_failed)
SELECT 1;

-- name: fs_truncate_staging
TRUNCATE fs_departments, fs_members, fs_member_departments, fs_member_diff, fs_tags, fs_tag_members,
         fs_tag_departments, fs_roles, fs_role_members, fs_admins, fs_failed;

-- name: fs_local_size
-- $1 corps row id
SELECT (SELECT count(*) FROM departments WHERE corp = $1) AS departments,
       (SELECT count(*) FROM members WHERE corp = $1) AS members,
       (SELECT count(*) FROM members WHERE corp = $1 AND status = 'active') AS active;

-- name: fs_keep_unfetched_members
-- $1 corps row id, $2 the member columns no staged member has a value for. The API withheld them (e.g.
-- WeCom's privacy fields for newer apps), so the stored values stay; only the staging table is written.
UPDATE fs_members s SET
    union_id = CASE WHEN 'union_id' = ANY($2::text[]) THEN m.union_id ELSE s.union_id END,
    open_user_id = CASE WHEN 'open_user_id' = ANY($2::text[]) THEN m.open_user_id ELSE s.open_user_id END,
    name = CASE WHEN 'name' = ANY($2::text[]) THEN m.name ELSE s.name END,
    alias = CASE WHEN 'alias' = ANY($2::text[]) THEN m.alias ELSE s.alias END,
    position = CASE WHEN 'position' = ANY($2::text[]) THEN m.position ELSE s.position END,
    mobile = CASE WHEN 'mobile' = ANY($2::text[]) THEN m.mobile ELSE s.mobile END,
    email = CASE WHEN 'email' = ANY($2::text[]) THEN m.email ELSE s.email END,
    biz_mail = CASE WHEN 'biz_mail' = ANY($2::text[]) THEN m.biz_mail ELSE s.biz_mail END,
    telephone = CASE WHEN 'telephone' = ANY($2::text[]) THEN m.telephone ELSE s.telephone END,
    gender = CASE WHEN 'gender' = ANY($2::text[]) THEN m.gender ELSE s.gender END,
    avatar = CASE WHEN 'avatar' = ANY($2::text[]) THEN m.avatar ELSE s.avatar END,
    job_number = CASE WHEN 'job_number' = ANY($2::text[]) THEN m.job_number ELSE s.job_number END,
    work_place = CASE WHEN 'work_place' = ANY($2::text[]) THEN m.work_place ELSE s.work_place END,
    hired_date = CASE WHEN 'hired_date' = ANY($2::text[]) THEN m.hired_date ELSE s.hired_date END,
    direct_leaders = CASE WHEN 'direct_leaders' = ANY($2::text[]) THEN m.direct_leaders ELSE s.direct_leaders END,
    platform_status = CASE WHEN 'platform_status' = ANY($2::text[]) THEN m.platform_status ELSE s.platform_status END,
    extattr = CASE WHEN 'extattr' = ANY($2::text[]) THEN m.extattr::text ELSE s.extattr END,
    main_dept_id = CASE WHEN 'main_dept_id' = ANY($2::text[]) THEN m.main_dept_id ELSE s.main_dept_id END
FROM members m
WHERE m.corp = $1 AND m.user_id = s.user_id;

-- name: fs_keep_unfetched_departments
-- $1 corps row id, $2 the department columns no staged department has a value for
UPDATE fs_departments s SET
    name = CASE WHEN 'name' = ANY($2::text[]) THEN d.name ELSE s.name END,
    name_en = CASE WHEN 'name_en' = ANY($2::text[]) THEN d.name_en ELSE s.name_en END,
    "order" = CASE WHEN 'order' = ANY($2::text[]) THEN d."order" ELSE s."order" END,
    leaders = CASE WHEN 'leaders' = ANY($2::text[]) THEN d.leaders ELSE s.leaders END
FROM departments d
WHERE d.corp = $1 AND d.dept_id = s.dept_id;

-- name: fs_merge_departments
-- $1 corps row id, $2 sync run id
WITH diff AS (
    SELECT s.*, d.dept_id IS NULL AS is_new,
           array_remove(ARRAY[
               CASE WHEN d.parent_id IS DISTINCT FROM s.parent_id THEN 'parent_id' END,
               CASE WHEN d.name IS DISTINCT FROM s.name THEN 'name' END,
               CASE WHEN d.name_en IS DISTINCT FROM s.name_en THEN 'name_en' END,
               CASE WHEN d."order" IS DISTINCT FROM s."order" THEN 'order' END,
               CASE WHEN d.leaders IS DISTINCT FROM s.leaders THEN 'leaders' END
           ], NULL) AS fields,
           to_jsonb(d) AS before_row, to_jsonb(s) AS after_row
    FROM fs_departments s LEFT JOIN departments d ON d.corp = $1 AND d.dept_id = s.dept_id
), changed AS (
    SELECT * FROM diff WHERE is_new OR cardinality(fields) > 0
), written AS (
    INSERT INTO departments (corp, dept_id, parent_id, name, name_en, "order", leaders)
    SELECT $1, dept_id, parent_id, name, name_en, "order", leaders FROM changed
    ON CONFLICT (corp, dept_id) DO UPDATE
    SET parent_id = EXCLUDED.parent_id, name = EXCLUDED.name, name_en = EXCLUDED.name_en,
        "order" = EXCLUDED."order", leaders = EXCLUDED.leaders, updated_at = now()
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'department', dept_id, CASE WHEN is_new THEN 'create' ELSE 'update' END,
           CASE WHEN is_new THEN NULL ELSE fields END, 'full_sync', $2, feed_changes(before_row, after_row, fields)
    FROM changed
)
SELECT count(*) FILTER (WHERE is_new) AS created, count(*) FILTER (WHERE NOT is_new) AS updated FROM changed;

-- name: fs_removal_plan
-- $1 corps row id
-- Departments and active members the snapshot no longer has. "uncertain": in or under a department whose
-- fetch failed (known from the stored tree or the snapshot's), so its absence proves nothing.
WITH RECURSIVE tree AS (
    SELECT dept_id, parent_id FROM departments WHERE corp = $1
    UNION SELECT dept_id, parent_id FROM fs_departments
), failed AS (
    SELECT dept_id FROM fs_failed
    UNION SELECT t.dept_id FROM tree t JOIN failed f ON t.parent_id = f.dept_id
)
SELECT 'department' AS kind, d.dept_id AS id, d.dept_id IN (SELECT dept_id FROM failed) AS uncertain
FROM departments d
WHERE d.corp = $1 AND NOT EXISTS (SELECT 1 FROM fs_departments s WHERE s.dept_id = d.dept_id)
UNION ALL
SELECT 'member', m.user_id,
       EXISTS (SELECT 1 FROM member_departments md JOIN failed f ON f.dept_id = md.dept_id WHERE md.member = m.id)
FROM members m
WHERE m.corp = $1 AND m.status = 'active' AND NOT EXISTS (SELECT 1 FROM fs_members s WHERE s.user_id = m.user_id)
ORDER BY 1, 2;

-- name: fs_delete_departments
-- $1 corps row id, $2 sync run id, $3 dept ids
WITH gone AS (
    DELETE FROM departments WHERE corp = $1 AND dept_id = ANY($3::text[]) RETURNING dept_id
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, source, sync_run_id)
    SELECT $1, 'department', dept_id, 'delete', 'full_sync', $2 FROM gone
)
SELECT count(*) FROM gone;

-- name: fs_rename_members
-- $1 corps row id, $2 sync run id
-- A user listed under a new userid with the union_id or open_userid of a stored member the snapshot no
-- longer lists is that member renamed (a WeCom userid may change once): keep its members.id. Only
-- one-to-one matches are taken; anything ambiguous stays a create plus a removal.
WITH new_users AS (
    SELECT s.user_id, s.union_id, s.open_user_id FROM fs_members s
    WHERE NOT EXISTS (SELECT 1 FROM members x WHERE x.corp = $1 AND x.user_id = s.user_id)
), gone_users AS (
    SELECT m.id, m.user_id, m.union_id, m.open_user_id FROM members m
    WHERE m.corp = $1 AND NOT EXISTS (SELECT 1 FROM fs_members s WHERE s.user_id = m.user_id)
), candidates AS (
    SELECT g.id, n.user_id AS new_id FROM new_users n JOIN gone_users g ON g.union_id = n.union_id
    UNION
    SELECT g.id, n.user_id FROM new_users n JOIN gone_users g ON g.open_user_id = n.open_user_id
), pairs AS (
    SELECT id, new_id FROM (
        SELECT id, new_id, count(*) OVER (PARTITION BY id) AS per_old, count(*) OVER (PARTITION BY new_id) AS per_new
        FROM candidates
    ) c
    WHERE per_old = 1 AND per_new = 1
), renamed AS (
    UPDATE members m SET user_id = p.new_id, updated_at = now()
    FROM pairs p JOIN gone_users g ON g.id = p.id
    WHERE m.id = p.id
    RETURNING m.id, m.user_id, m.local_user, g.user_id AS old_id
), followed AS (
    -- The person's identity made of the old userid takes the new one (handlers.store.users.follow_rename).
    UPDATE local_users u SET identity = 'userId:' || c.corp_id || ':' || r.user_id
    FROM renamed r CROSS JOIN corps c
    WHERE c.id = $1 AND u.id = r.local_user AND u.identity = 'userId:' || c.corp_id || ':' || r.old_id
      AND NOT EXISTS (SELECT 1 FROM local_users x
                      WHERE x.platform = u.platform AND x.identity = 'userId:' || c.corp_id || ':' || r.user_id)
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'member', r.user_id, 'rename', ARRAY['user_id'], 'full_sync', $2,
           jsonb_build_object('user_id', jsonb_build_object('before', r.old_id, 'after', r.user_id))
    FROM renamed r
)
SELECT count(*) FROM renamed;

-- name: fs_diff_members
-- $1 corps row id
-- One row per staged member that needs a write: create, reactivate (offline for a platform reason), or
-- update (changed columns; the memberships as three fields, each only when it changed: 'departments' the dept
-- ids, 'leader_dept_ids' those it leads, 'dept_orders' {dept id: order} where the order is known).
-- Operator-offlined members are updated but stay offline.
-- A created member's changes are what feed_changes makes of its fields (every column it has a value for, before
-- null; its departments and those it leads when not empty), written as JSON text and parsed once: building them
-- as jsonb was most of a first sync's diff (bench/README.md, tenants). extattr is staged as JSON text already.
-- A stored member's memberships are read by its key: aggregated for the whole corp and joined, a planner without
-- statistics of a young member_departments aggregated them again for every member.
INSERT INTO fs_member_diff (user_id, member, op, fields, changes)
SELECT user_id, member, op, fields,
       CASE WHEN op = 'create' THEN nullif(created, '{}')::jsonb
            WHEN cardinality(fields) > 0 THEN feed_changes(before_row, after_row, fields) END
FROM (
    SELECT s.user_id, m.id AS member,
           CASE WHEN m.id IS NULL THEN 'create'
                WHEN m.status = 'offline' AND m.offline_reason IS DISTINCT FROM 'operator' THEN 'reactivate'
                ELSE 'update' END AS op,
           array_remove(ARRAY[
               CASE WHEN m.union_id IS DISTINCT FROM s.union_id THEN 'union_id' END,
               CASE WHEN m.open_user_id IS DISTINCT FROM s.open_user_id THEN 'open_user_id' END,
               CASE WHEN m.name IS DISTINCT FROM s.name THEN 'name' END,
               CASE WHEN m.alias IS DISTINCT FROM s.alias THEN 'alias' END,
               CASE WHEN m.position IS DISTINCT FROM s.position THEN 'position' END,
               CASE WHEN m.mobile IS DISTINCT FROM s.mobile THEN 'mobile' END,
               CASE WHEN m.email IS DISTINCT FROM s.email THEN 'email' END,
               CASE WHEN m.biz_mail IS DISTINCT FROM s.biz_mail THEN 'biz_mail' END,
               CASE WHEN m.telephone IS DISTINCT FROM s.telephone THEN 'telephone' END,
               CASE WHEN m.gender IS DISTINCT FROM s.gender THEN 'gender' END,
               CASE WHEN m.avatar IS DISTINCT FROM s.avatar THEN 'avatar' END,
               CASE WHEN m.job_number IS DISTINCT FROM s.job_number THEN 'job_number' END,
               CASE WHEN m.work_place IS DISTINCT FROM s.work_place THEN 'work_place' END,
               CASE WHEN m.hired_date IS DISTINCT FROM s.hired_date THEN 'hired_date' END,
               CASE WHEN m.direct_leaders IS DISTINCT FROM s.direct_leaders THEN 'direct_leaders' END,
               CASE WHEN m.platform_status IS DISTINCT FROM s.platform_status THEN 'platform_status' END,
               CASE WHEN m.extattr IS DISTINCT FROM s.extattr::jsonb THEN 'extattr' END,
               CASE WHEN m.main_dept_id IS DISTINCT FROM s.main_dept_id THEN 'main_dept_id' END,
               CASE WHEN s.departments_known AND l.ids IS DISTINCT FROM r.ids THEN 'departments' END,
               CASE WHEN s.departments_known AND l.leads IS DISTINCT FROM r.leads THEN 'leader_dept_ids' END,
               CASE WHEN s.departments_known AND l.orders IS DISTINCT FROM r.orders THEN 'dept_orders' END,
               CASE WHEN m.status = 'offline' AND m.offline_reason IS DISTINCT FROM 'operator' THEN 'status' END
           ], NULL) AS fields,
           to_jsonb(m) || jsonb_build_object('departments', coalesce(l.ids, '{}'),
                                             'leader_dept_ids', coalesce(l.leads, '{}'),
                                             'dept_orders', coalesce(l.orders, '{}')) AS before_row,
           to_jsonb(s) || jsonb_build_object('extattr', s.extattr::jsonb, 'departments', coalesce(r.ids, '{}'),
                                             'leader_dept_ids', coalesce(r.leads, '{}'),
                                             'dept_orders', coalesce(r.orders, '{}'), 'status', 'active')
               AS after_row,
           '{' || concat_ws(',',
               CASE WHEN s.union_id IS NOT NULL THEN '"union_id":{"before":null,"after":' || to_json(s.union_id) || '}' END,
               CASE WHEN s.open_user_id IS NOT NULL THEN '"open_user_id":{"before":null,"after":' || to_json(s.open_user_id) || '}' END,
               CASE WHEN s.name IS NOT NULL THEN '"name":{"before":null,"after":' || to_json(s.name) || '}' END,
               CASE WHEN s.alias IS NOT NULL THEN '"alias":{"before":null,"after":' || to_json(s.alias) || '}' END,
               CASE WHEN s.position IS NOT NULL THEN '"position":{"before":null,"after":' || to_json(s.position) || '}' END,
               CASE WHEN s.mobile IS NOT NULL THEN '"mobile":{"before":null,"after":' || to_json(s.mobile) || '}' END,
               CASE WHEN s.email IS NOT NULL THEN '"email":{"before":null,"after":' || to_json(s.email) || '}' END,
               CASE WHEN s.biz_mail IS NOT NULL THEN '"biz_mail":{"before":null,"after":' || to_json(s.biz_mail) || '}' END,
               CASE WHEN s.telephone IS NOT NULL THEN '"telephone":{"before":null,"after":' || to_json(s.telephone) || '}' END,
               CASE WHEN s.gender IS NOT NULL THEN '"gender":{"before":null,"after":' || to_json(s.gender) || '}' END,
               CASE WHEN s.avatar IS NOT NULL THEN '"avatar":{"before":null,"after":' || to_json(s.avatar) || '}' END,
               CASE WHEN s.job_number IS NOT NULL THEN '"job_number":{"before":null,"after":' || to_json(s.job_number) || '}' END,
               CASE WHEN s.work_place IS NOT NULL THEN '"work_place":{"before":null,"after":' || to_json(s.work_place) || '}' END,
               CASE WHEN s.hired_date IS NOT NULL THEN '"hired_date":{"before":null,"after":' || to_json(s.hired_date) || '}' END,
               CASE WHEN s.direct_leaders IS NOT NULL THEN '"direct_leaders":{"before":null,"after":' || to_json(s.direct_leaders) || '}' END,
               CASE WHEN s.platform_status IS NOT NULL THEN '"platform_status":{"before":null,"after":' || to_json(s.platform_status) || '}' END,
               CASE WHEN s.extattr IS NOT NULL THEN '"extattr":{"before":null,"after":' || s.extattr || '}' END,
               CASE WHEN s.main_dept_id IS NOT NULL THEN '"main_dept_id":{"before":null,"after":' || to_json(s.main_dept_id) || '}' END,
               CASE WHEN s.departments_known AND r.ids IS NOT NULL
                    THEN '"departments":{"before":null,"after":' || to_json(r.ids) || '}' END,
               CASE WHEN s.departments_known AND r.leads IS NOT NULL
                    THEN '"leader_dept_ids":{"before":null,"after":' || to_json(r.leads) || '}' END
           ) || '}' AS created
    FROM fs_members s
    LEFT JOIN members m ON m.corp = $1 AND m.user_id = s.user_id
    LEFT JOIN LATERAL (
        SELECT array_agg(dept_id ORDER BY dept_id) AS ids,
               array_agg(dept_id ORDER BY dept_id) FILTER (WHERE is_leader) AS leads,
               jsonb_object_agg(dept_id, "order") FILTER (WHERE "order" IS NOT NULL) AS orders
        FROM member_departments md WHERE md.member = m.id
    ) l ON true
    LEFT JOIN (
        SELECT user_id, array_agg(dept_id ORDER BY dept_id) AS ids,
               array_agg(dept_id ORDER BY dept_id) FILTER (WHERE is_leader) AS leads,
               jsonb_object_agg(dept_id, "order") FILTER (WHERE "order" IS NOT NULL) AS orders
        FROM fs_member_departments GROUP BY user_id
    ) r ON r.user_id = s.user_id
) x
WHERE op <> 'update' OR cardinality(fields) > 0;

-- name: fs_insert_members
-- $1 corps row id
-- Each new member is written once, linked to its person in the local user pool, who is made unless they exist (as
-- handlers.store.users.register does; an existing person is returned by a no-op update of their row).
WITH want AS (
    SELECT s.*, c.platform,
           member_identity(c.platform, c.type, c.auth_name, c.corp_id, s.user_id, s.union_id, s.open_user_id)
               AS identity
    FROM fs_members s JOIN fs_member_diff d ON d.user_id = s.user_id AND d.op = 'create'
    CROSS JOIN corps c
    WHERE c.id = $1
), people AS (
    INSERT INTO local_users (platform, identity)
    SELECT DISTINCT platform, identity FROM want
    ON CONFLICT (platform, identity) DO UPDATE SET identity = EXCLUDED.identity
    RETURNING id, identity
)
INSERT INTO members (corp, user_id, union_id, open_user_id, name, alias, position, mobile, email, biz_mail,
                     telephone, gender, avatar, job_number, work_place, hired_date, direct_leaders,
                     platform_status, extattr, main_dept_id, local_user)
SELECT $1, w.user_id, w.union_id, w.open_user_id, w.name, w.alias, w.position, w.mobile, w.email, w.biz_mail,
       w.telephone, w.gender, w.avatar, w.job_number, w.work_place, w.hired_date, w.direct_leaders,
       w.platform_status, w.extattr::jsonb, w.main_dept_id, p.id
FROM want w JOIN people p ON p.identity = w.identity;

-- name: fs_update_members
UPDATE members m
SET union_id = s.union_id, open_user_id = s.open_user_id, name = s.name, alias = s.alias,
    position = s.position, mobile = s.mobile, email = s.email, biz_mail = s.biz_mail, telephone = s.telephone,
    gender = s.gender, avatar = s.avatar, job_number = s.job_number, work_place = s.work_place,
    hired_date = s.hired_date, direct_leaders = s.direct_leaders, platform_status = s.platform_status,
    extattr = s.extattr::jsonb, main_dept_id = s.main_dept_id,
    status = CASE WHEN d.op = 'reactivate' THEN 'active' ELSE m.status END,
    offline_reason = CASE WHEN d.op = 'reactivate' THEN NULL ELSE m.offline_reason END,
    offline_at = CASE WHEN d.op = 'reactivate' THEN NULL ELSE m.offline_at END,
    updated_at = now()
FROM fs_member_diff d JOIN fs_members s ON s.user_id = d.user_id
WHERE m.id = d.member AND d.op <> 'create';

-- name: fs_replace_member_departments
-- $1 corps row id
-- Only members created now or whose memberships changed (any of the three fields); the rest are not touched. A
-- member created in this transaction has no rows to delete (nothing else can have written any yet): only the
-- others are looked up.
WITH target AS (
    SELECT m.id AS member, m.user_id, d.op
    FROM fs_member_diff d
    JOIN fs_members s ON s.user_id = d.user_id
    JOIN members m ON m.corp = $1 AND m.user_id = d.user_id
    WHERE s.departments_known
      AND (d.op = 'create' OR d.fields && ARRAY['departments', 'leader_dept_ids', 'dept_orders'])
), gone AS (
    DELETE FROM member_departments md USING target t
    WHERE md.member = t.member AND t.op <> 'create'
      AND NOT EXISTS (SELECT 1 FROM fs_member_departments r WHERE r.user_id = t.user_id AND r.dept_id = md.dept_id)
)
INSERT INTO member_departments (corp, member, dept_id, is_leader, "order")
SELECT $1, t.member, r.dept_id, r.is_leader, r."order" FROM target t JOIN fs_member_departments r USING (user_id)
ON CONFLICT (member, dept_id) DO UPDATE SET is_leader = EXCLUDED.is_leader, "order" = EXCLUDED."order"
WHERE (member_departments.is_leader, member_departments."order")
      IS DISTINCT FROM (EXCLUDED.is_leader, EXCLUDED."order");

-- name: fs_log_members
-- $1 corps row id, $2 sync run id
WITH logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'member', user_id, op, CASE WHEN op = 'create' THEN NULL ELSE fields END, 'full_sync', $2, changes
    FROM fs_member_diff
    RETURNING op
)
SELECT op, count(*) AS n FROM logged GROUP BY op;

-- name: fs_offline_members
-- $1 corps row id, $2 sync run id, $3 user ids
WITH gone AS (
    UPDATE members SET status = 'offline', offline_reason = 'platform', offline_at = now(), updated_at = now()
    WHERE corp = $1 AND status = 'active' AND user_id = ANY($3::text[])
    RETURNING user_id, offline_at
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'member', user_id, 'offline', ARRAY['status', 'offline_reason', 'offline_at'], 'full_sync', $2,
           feed_offline_changes('platform', offline_at)
    FROM gone
)
SELECT count(*) FROM gone;

-- name: fs_merge_tags
-- $1 corps row id, $2 sync run id
WITH diff AS (
    SELECT s.tag_id, s.name, t.tag_id IS NULL AS is_new, t.name AS old_name
    FROM fs_tags s LEFT JOIN tags t ON t.corp = $1 AND t.tag_id = s.tag_id
    WHERE t.tag_id IS NULL OR t.name IS DISTINCT FROM s.name
), written AS (
    INSERT INTO tags (corp, tag_id, name) SELECT $1, tag_id, name FROM diff
    ON CONFLICT (corp, tag_id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
), gone AS (
    DELETE FROM tags t WHERE t.corp = $1 AND NOT EXISTS (SELECT 1 FROM fs_tags s WHERE s.tag_id = t.tag_id)
    RETURNING t.tag_id
), gone_members AS (
    DELETE FROM tag_members x USING gone g WHERE x.corp = $1 AND x.tag_id = g.tag_id
), gone_departments AS (
    DELETE FROM tag_departments x USING gone g WHERE x.corp = $1 AND x.tag_id = g.tag_id
), changes AS (
    SELECT tag_id, CASE WHEN is_new THEN 'create' ELSE 'update' END AS op,
           CASE WHEN is_new THEN NULL ELSE ARRAY['name'] END AS fields,
           jsonb_build_object('name', jsonb_build_object('before', old_name, 'after', name)) AS changes
    FROM diff
    UNION ALL SELECT tag_id, 'delete', NULL, NULL FROM gone
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'tag', tag_id, op, fields, 'full_sync', $2, changes FROM changes
)
SELECT op, count(*) AS n FROM changes GROUP BY op;

-- name: fs_sync_tag_members
-- $1 corps row id, $2 sync run id
-- Tags whose member list the snapshot has: add and remove rows to match (users known locally only).
WITH want AS (
    SELECT w.tag_id, m.id AS member
    FROM fs_tag_members w
    JOIN fs_tags s ON s.tag_id = w.tag_id AND s.members_known
    JOIN members m ON m.corp = $1 AND m.user_id = w.user_id
), added AS (
    INSERT INTO tag_members (corp, tag_id, member)
    SELECT $1, w.tag_id, w.member FROM want w
    WHERE NOT EXISTS (SELECT 1 FROM tag_members x WHERE x.corp = $1 AND x.tag_id = w.tag_id AND x.member = w.member)
    RETURNING tag_id, member
), removed AS (
    DELETE FROM tag_members x USING fs_tags s
    WHERE x.corp = $1 AND s.tag_id = x.tag_id AND s.members_known
      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.tag_id = x.tag_id AND w.member = x.member)
    RETURNING x.tag_id, x.member
), touched AS (
    SELECT t.tag_id, 'members' AS field, m.user_id, t.joined
    FROM (SELECT tag_id, member, true AS joined FROM added UNION ALL SELECT tag_id, member, false FROM removed) t
    JOIN members m ON m.id = t.member
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'tag', tag_id, 'update', ARRAY['members'], 'full_sync', $2, feed_link_changes(field, array_agg(user_id) FILTER (WHERE NOT joined),
                                                         array_agg(user_id) FILTER (WHERE joined))
    FROM touched GROUP BY tag_id, field
)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM removed) AS removed;

-- name: fs_sync_tag_departments
-- $1 corps row id, $2 sync run id
WITH want AS (
    SELECT w.tag_id, w.dept_id FROM fs_tag_departments w JOIN fs_tags s ON s.tag_id = w.tag_id AND s.departments_known
), added AS (
    INSERT INTO tag_departments (corp, tag_id, dept_id)
    SELECT $1, w.tag_id, w.dept_id FROM want w
    WHERE NOT EXISTS (
        SELECT 1 FROM tag_departments x WHERE x.corp = $1 AND x.tag_id = w.tag_id AND x.dept_id = w.dept_id
    )
    RETURNING tag_id, dept_id
), removed AS (
    DELETE FROM tag_departments x USING fs_tags s
    WHERE x.corp = $1 AND s.tag_id = x.tag_id AND s.departments_known
      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.tag_id = x.tag_id AND w.dept_id = x.dept_id)
    RETURNING x.tag_id, x.dept_id
), touched AS (
    SELECT tag_id, 'departments' AS field, dept_id, true AS joined FROM added
    UNION ALL SELECT tag_id, 'departments', dept_id, false FROM removed
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'tag', tag_id, 'update', ARRAY['departments'], 'full_sync', $2, feed_link_changes(field, array_agg(dept_id) FILTER (WHERE NOT joined),
                                                         array_agg(dept_id) FILTER (WHERE joined))
    FROM touched GROUP BY tag_id, field
)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM removed) AS removed;

-- name: fs_merge_roles
-- $1 corps row id, $2 sync run id
-- Platform roles only: a local role (source 'local', set through the API) is never changed or removed.
WITH diff AS (
    SELECT s.role_id, s.name, s.group_name, r.role_id IS NULL AS is_new, to_jsonb(r) AS before_row, to_jsonb(s) AS after_row,
           array_remove(ARRAY[
               CASE WHEN r.name IS DISTINCT FROM s.name THEN 'name' END,
               CASE WHEN r.group_name IS DISTINCT FROM s.group_name THEN 'group_name' END
           ], NULL) AS fields
    FROM fs_roles s LEFT JOIN roles r ON r.corp = $1 AND r.role_id = s.role_id
    WHERE r.role_id IS NULL
       OR (r.source = 'platform' AND (r.name, r.group_name) IS DISTINCT FROM (s.name, s.group_name))
), written AS (
    INSERT INTO roles (corp, role_id, name, group_name, source)
    SELECT $1, role_id, name, group_name, 'platform' FROM diff
    ON CONFLICT (corp, role_id) DO UPDATE
    SET name = EXCLUDED.name, group_name = EXCLUDED.group_name, updated_at = now()
    WHERE roles.source = 'platform'
), gone AS (
    DELETE FROM roles r
    WHERE r.corp = $1 AND r.source = 'platform' AND NOT EXISTS (SELECT 1 FROM fs_roles s WHERE s.role_id = r.role_id)
    RETURNING r.role_id
), gone_members AS (
    DELETE FROM role_members x USING gone g WHERE x.corp = $1 AND x.role_id = g.role_id
), changes AS (
    SELECT role_id, CASE WHEN is_new THEN 'create' ELSE 'update' END AS op,
           CASE WHEN is_new THEN NULL ELSE fields END AS fields, feed_changes(before_row, after_row, fields) AS changes
    FROM diff
    UNION ALL SELECT role_id, 'delete', NULL, NULL FROM gone
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'role', role_id, op, fields, 'full_sync', $2, changes FROM changes
)
SELECT op, count(*) AS n FROM changes GROUP BY op;

-- name: fs_sync_role_members
-- $1 corps row id, $2 sync run id
-- Members of platform roles follow the snapshot; members of local roles are left alone.
WITH platform_roles AS (
    SELECT role_id FROM roles WHERE corp = $1 AND source = 'platform'
), want AS (
    SELECT w.role_id, m.id AS member
    FROM fs_role_members w
    JOIN platform_roles p ON p.role_id = w.role_id
    JOIN members m ON m.corp = $1 AND m.user_id = w.user_id
), added AS (
    INSERT INTO role_members (corp, role_id, member)
    SELECT $1, w.role_id, w.member FROM want w
    WHERE NOT EXISTS (SELECT 1 FROM role_members x WHERE x.corp = $1 AND x.role_id = w.role_id AND x.member = w.member)
    RETURNING role_id, member
), removed AS (
    DELETE FROM role_members x USING platform_roles p
    WHERE x.corp = $1 AND x.role_id = p.role_id
      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.role_id = x.role_id AND w.member = x.member)
    RETURNING x.role_id, x.member
), touched AS (
    SELECT t.role_id, 'members' AS field, m.user_id, t.joined
    FROM (SELECT role_id, member, true AS joined FROM added UNION ALL SELECT role_id, member, false FROM removed) t
    JOIN members m ON m.id = t.member
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'role', role_id, 'update', ARRAY['members'], 'full_sync', $2, feed_link_changes(field, array_agg(user_id) FILTER (WHERE NOT joined),
                                                         array_agg(user_id) FILTER (WHERE joined))
    FROM touched GROUP BY role_id, field
)
SELECT (SELECT count(*) FROM added) AS added, (SELECT count(*) FROM removed) AS removed;

-- name: fs_sync_admins
-- $1 corps row id, $2 sync run id
-- Platform admins follow the snapshot; admins set through the API (source 'local') are left alone.
WITH want AS (
    SELECT m.id AS member, a.level FROM fs_admins a JOIN members m ON m.corp = $1 AND m.user_id = a.user_id
), old AS (
    SELECT member, level FROM admins WHERE corp = $1 AND source = 'platform'
), created AS (
    INSERT INTO admins (corp, member, level, source)
    SELECT $1, w.member, w.level, 'platform' FROM want w
    WHERE NOT EXISTS (SELECT 1 FROM admins x WHERE x.corp = $1 AND x.member = w.member)
    RETURNING member, level
), updated AS (
    UPDATE admins x SET level = w.level FROM want w
    WHERE x.corp = $1 AND x.member = w.member AND x.source = 'platform' AND x.level IS DISTINCT FROM w.level
    RETURNING x.member, x.level
), removed AS (
    DELETE FROM admins x
    WHERE x.corp = $1 AND x.source = 'platform' AND NOT EXISTS (SELECT 1 FROM want w WHERE w.member = x.member)
    RETURNING x.member, x.level
), changes AS (
    SELECT member, 'create' AS op, NULL::text[] AS fields, NULL::smallint AS before, level AS after FROM created
    UNION ALL SELECT u.member, 'update', ARRAY['level'], o.level, u.level FROM updated u JOIN old o USING (member)
    UNION ALL SELECT member, 'delete', NULL, level, NULL FROM removed
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, sync_run_id, changes)
    SELECT $1, 'admin', m.user_id, c.op, c.fields, 'full_sync', $2,
           CASE WHEN (c.before, c.after) IS DISTINCT FROM (NULL, NULL)
                THEN jsonb_build_object('level', jsonb_build_object('before', c.before, 'after', c.after)) END
    FROM changes c JOIN members m ON m.id = c.member
)
SELECT op, count(*) AS n FROM changes GROUP BY op;
