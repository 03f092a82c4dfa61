-- Idempotent directory writes for the incremental path (and anyone else who wants them).
-- A NULL argument means "unknown / not in the event": the stored value is kept. Upserts return a row
-- only when something really changed (IS DISTINCT FROM), with the names of the changed columns.

-- name: dir_upsert_department
-- $1 corps row id, $2 dept id, $3 parent id, $4 name, $5 English name, $6 order, $7 leaders' user ids,
-- $8 change-log source, $9 inbox id, $10 sync run id
-- Returns a row only when something changed, and logs that change in the same statement.
WITH old AS (
    SELECT parent_id, name, name_en, "order", leaders FROM departments WHERE corp = $1 AND dept_id = $2
), up AS (
    INSERT INTO departments AS d (corp, dept_id, parent_id, name, name_en, "order", leaders)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (corp, dept_id) DO UPDATE
    SET parent_id = coalesce(EXCLUDED.parent_id, d.parent_id),
        name = coalesce(EXCLUDED.name, d.name),
        name_en = coalesce(EXCLUDED.name_en, d.name_en),
        "order" = coalesce(EXCLUDED."order", d."order"),
        leaders = coalesce(EXCLUDED.leaders, d.leaders),
        updated_at = now()
    WHERE (d.parent_id, d.name, d.name_en, d."order", d.leaders) IS DISTINCT FROM
          (coalesce(EXCLUDED.parent_id, d.parent_id), coalesce(EXCLUDED.name, d.name),
           coalesce(EXCLUDED.name_en, d.name_en), coalesce(EXCLUDED."order", d."order"),
           coalesce(EXCLUDED.leaders, d.leaders))
    RETURNING parent_id, name, name_en, "order", leaders
), changed AS (
    SELECT NOT EXISTS (SELECT 1 FROM old) AS created,
           array_remove(ARRAY[
               CASE WHEN o.parent_id IS DISTINCT FROM u.parent_id THEN 'parent_id' END,
               CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END,
               CASE WHEN o.name_en IS DISTINCT FROM u.name_en THEN 'name_en' END,
               CASE WHEN o."order" IS DISTINCT FROM u."order" THEN 'order' END,
               CASE WHEN o.leaders IS DISTINCT FROM u.leaders THEN 'leaders' END
           ], NULL) AS fields,
           to_jsonb(o) AS before, to_jsonb(u) AS after
    FROM up u LEFT JOIN old o ON true
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
    SELECT $1, 'department', $2, CASE WHEN c.created THEN 'create' ELSE 'update' END, nullif(c.fields, '{}'),
           $8, $9, $10, feed_changes(c.before, c.after, c.fields)
    FROM changed c
    RETURNING 1
)
SELECT created, fields FROM changed;

-- name: dir_delete_department
-- $1 corps row id, $2 dept id
-- Removes the department and every link to it; reports the members who lost the membership (with their
-- departments before), the tags that lost it and how many local sub-departments still point at it.
WITH gone AS (
    DELETE FROM departments WHERE corp = $1 AND dept_id = $2 RETURNING dept_id
), md AS (
    DELETE FROM member_departments WHERE corp = $1 AND dept_id = $2 RETURNING member
), td AS (
    DELETE FROM tag_departments WHERE corp = $1 AND dept_id = $2 RETURNING tag_id
)
SELECT EXISTS (SELECT 1 FROM gone) AS deleted,
       (SELECT count(*) FROM departments WHERE corp = $1 AND parent_id = $2) AS children,
       ARRAY(SELECT m.user_id FROM md JOIN members m ON m.id = md.member ORDER BY m.user_id) AS members,
       (SELECT jsonb_object_agg(m.user_id, ARRAY(SELECT x.dept_id FROM member_departments x WHERE x.member = m.id
                                                 ORDER BY x.dept_id))
        FROM md JOIN members m ON m.id = md.member)::text AS departments_before,
       ARRAY(SELECT DISTINCT tag_id FROM td ORDER BY tag_id) AS tags;

-- name: dir_unknown_departments
-- $1 corps row id, $2 dept ids: those that are not (yet) departments of the corp.
SELECT array_agg(x.dept_id ORDER BY x.dept_id) AS unknown
FROM (SELECT DISTINCT unnest($2::text[]) AS dept_id) x
WHERE NOT EXISTS (SELECT 1 FROM departments d WHERE d.corp = $1 AND d.dept_id = x.dept_id);

-- name: dir_adopt_union
-- $1 corps row id, $2 user id, $3 union id, $4 change-log source, $5 inbox id, $6 sync run id
-- One person per unionid: a userid not stored yet whose unionid is the stored member's of another userid is that
-- person back under a new userid (DingTalk gives a returning employee a new one). The member row takes the new
-- userid, keeping members.id (localId) and with it its person, roles, admin rights and signature. Only a single
-- match is taken. Returns the old userid when a member was adopted.
WITH taken AS (
    SELECT 1 FROM members WHERE corp = $1 AND user_id = $2
), candidates AS (
    SELECT id, user_id FROM members
    WHERE corp = $1 AND union_id = $3 AND user_id <> $2 AND NOT EXISTS (SELECT 1 FROM taken)
), one AS (
    SELECT id, user_id FROM candidates WHERE (SELECT count(*) FROM candidates) = 1
), adopted AS (
    UPDATE members m SET user_id = $2, updated_at = now() FROM one WHERE m.id = one.id
    RETURNING m.id, one.user_id AS old_user_id
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
    SELECT $1, 'member', $2, 'rename', ARRAY['user_id'], $4, $5, $6,
           jsonb_build_object('user_id', jsonb_build_object('before', old_user_id, 'after', $2::text))
    FROM adopted
    RETURNING 1
)
SELECT old_user_id FROM adopted;

-- name: dir_upsert_member
-- $1 corps row id, $2 user id, $3..$20 the member's fields in the INSERT's column order.
-- $21 reactivate: 'join' (a new join: active again whatever the reason), 'confirmed' (the platform
-- confirmed the member: reactivate unless an operator took them offline), 'no'.
-- $22 department ids (NULL: unknown, memberships kept), $23 is_leader / $24 order aligned with them.
-- $25 change-log source, $26 inbox id, $27 sync run id.
-- One statement: the member, its memberships, its change-log row when something changed, and which of
-- its departments are not known locally. Returns op NULL when nothing changed.
-- A member inserted by someone else since this statement's snapshot (a full sync that committed while this
-- statement waited for its insert) is not in old: the statement then writes nothing and returns id NULL, and the
-- caller runs it again (its next snapshot has the member, and so its values before).
-- The memberships are logged as three fields, each only when it changed: 'departments' (the dept ids),
-- 'leader_dept_ids' (those it leads), 'dept_orders' ({dept id: order} where the order is known); a created member
-- lists the first two when not empty. The memberships after are the ones given, each with the flag and order given
-- or, where NULL, kept (none is logged when $22 is NULL).
WITH old AS (
    SELECT * FROM members WHERE corp = $1 AND user_id = $2
), old_md AS (
    SELECT md.dept_id, md.is_leader, md."order" FROM member_departments md JOIN old ON md.member = old.id
), up AS (
    INSERT INTO members AS m (corp, user_id, union_id, open_user_id, name, alias, position, mobile, email,
                              biz_mail, telephone, gender, avatar, job_number, work_place, hired_date,
                              direct_leaders, platform_status, extattr, main_dept_id)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
    ON CONFLICT (corp, user_id) DO UPDATE
    SET union_id = coalesce(EXCLUDED.union_id, m.union_id),
        open_user_id = coalesce(EXCLUDED.open_user_id, m.open_user_id),
        name = coalesce(EXCLUDED.name, m.name),
        alias = coalesce(EXCLUDED.alias, m.alias),
        position = coalesce(EXCLUDED.position, m.position),
        mobile = coalesce(EXCLUDED.mobile, m.mobile),
        email = coalesce(EXCLUDED.email, m.email),
        biz_mail = coalesce(EXCLUDED.biz_mail, m.biz_mail),
        telephone = coalesce(EXCLUDED.telephone, m.telephone),
        gender = coalesce(EXCLUDED.gender, m.gender),
        avatar = coalesce(EXCLUDED.avatar, m.avatar),
        job_number = coalesce(EXCLUDED.job_number, m.job_number),
        work_place = coalesce(EXCLUDED.work_place, m.work_place),
        hired_date = coalesce(EXCLUDED.hired_date, m.hired_date),
        direct_leaders = coalesce(EXCLUDED.direct_leaders, m.direct_leaders),
        platform_status = coalesce(EXCLUDED.platform_status, m.platform_status),
        extattr = coalesce(EXCLUDED.extattr, m.extattr),
        main_dept_id = coalesce(EXCLUDED.main_dept_id, m.main_dept_id),
        status = CASE WHEN $21::text = 'join' OR ($21::text = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                      THEN 'active' ELSE m.status END,
        offline_reason = CASE WHEN $21::text = 'join' OR ($21::text = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                              THEN NULL ELSE m.offline_reason END,
        offline_at = CASE WHEN $21::text = 'join' OR ($21::text = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                          THEN NULL ELSE m.offline_at END,
        updated_at = now()
    WHERE EXISTS (SELECT 1 FROM old)
      AND (m.union_id, m.open_user_id, m.name, m.alias, m.position, m.mobile, m.email, m.biz_mail, m.telephone,
           m.gender, m.avatar, m.job_number, m.work_place, m.hired_date, m.direct_leaders, m.platform_status,
           m.extattr, m.main_dept_id, m.status) IS DISTINCT FROM
          (coalesce(EXCLUDED.union_id, m.union_id),
           coalesce(EXCLUDED.open_user_id, m.open_user_id),
           coalesce(EXCLUDED.name, m.name),
           coalesce(EXCLUDED.alias, m.alias),
           coalesce(EXCLUDED.position, m.position),
           coalesce(EXCLUDED.mobile, m.mobile),
           coalesce(EXCLUDED.email, m.email),
           coalesce(EXCLUDED.biz_mail, m.biz_mail),
           coalesce(EXCLUDED.telephone, m.telephone),
           coalesce(EXCLUDED.gender, m.gender),
           coalesce(EXCLUDED.avatar, m.avatar),
           coalesce(EXCLUDED.job_number, m.job_number),
           coalesce(EXCLUDED.work_place, m.work_place),
           coalesce(EXCLUDED.hired_date, m.hired_date),
           coalesce(EXCLUDED.direct_leaders, m.direct_leaders),
           coalesce(EXCLUDED.platform_status, m.platform_status),
           coalesce(EXCLUDED.extattr, m.extattr),
           coalesce(EXCLUDED.main_dept_id, m.main_dept_id),
           CASE WHEN $21::text = 'join' OR ($21::text = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                THEN 'active' ELSE m.status END)
    RETURNING *
), m AS (
    SELECT coalesce((SELECT id FROM up), (SELECT id FROM old)) AS id
), want AS (
    SELECT * FROM unnest($22::text[], $23::boolean[], $24::bigint[]) AS w (dept_id, is_leader, "order")
), del AS (
    DELETE FROM member_departments md USING m
    WHERE $22::text[] IS NOT NULL AND md.member = m.id
      AND NOT EXISTS (SELECT 1 FROM want w WHERE w.dept_id = md.dept_id)
    RETURNING 1
), ins AS (
    INSERT INTO member_departments AS md (corp, member, dept_id, is_leader, "order")
    SELECT $1, m.id, w.dept_id, w.is_leader, w."order" FROM want w CROSS JOIN m
    WHERE m.id IS NOT NULL
    ON CONFLICT (member, dept_id) DO UPDATE
    SET is_leader = coalesce(EXCLUDED.is_leader, md.is_leader), "order" = coalesce(EXCLUDED."order", md."order")
    WHERE (md.is_leader, md."order") IS DISTINCT FROM
          (coalesce(EXCLUDED.is_leader, md.is_leader), coalesce(EXCLUDED."order", md."order"))
    RETURNING 1
), new_md AS (
    SELECT w.dept_id, coalesce(w.is_leader, o.is_leader) AS is_leader, coalesce(w."order", o."order") AS "order"
    FROM want w LEFT JOIN old_md o ON o.dept_id = w.dept_id
), md AS (
    SELECT coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE NOT after), '{}') AS ids_before,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE NOT after AND is_leader), '{}') AS leads_before,
           coalesce(jsonb_object_agg(dept_id, "order") FILTER (WHERE NOT after AND "order" IS NOT NULL), '{}')
               AS orders_before,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE after), '{}') AS ids_after,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE after AND is_leader), '{}') AS leads_after,
           coalesce(jsonb_object_agg(dept_id, "order") FILTER (WHERE after AND "order" IS NOT NULL), '{}')
               AS orders_after
    FROM (SELECT false AS after, * FROM old_md UNION ALL SELECT true, * FROM new_md) x
), result AS (
    SELECT m.id,
           CASE WHEN $22::text[] IS NULL THEN '{}'::text[] ELSE array_remove(ARRAY[
               CASE WHEN d.ids_before IS DISTINCT FROM d.ids_after THEN 'departments' END,
               CASE WHEN d.leads_before IS DISTINCT FROM d.leads_after THEN 'leader_dept_ids' END,
               CASE WHEN o.id IS NOT NULL AND d.orders_before IS DISTINCT FROM d.orders_after THEN 'dept_orders' END
           ], NULL) END AS membership_fields,
           ARRAY(SELECT w.dept_id FROM want w
                 WHERE w.dept_id NOT IN ('', '0')
                   AND NOT EXISTS (SELECT 1 FROM departments d WHERE d.corp = $1 AND d.dept_id = w.dept_id)
                 ORDER BY w.dept_id) AS unknown_departments,
           o.id IS NULL AS created,
           coalesce(o.status = 'offline' AND u.status = 'active', false) AS reactivated,
           CASE WHEN u.id IS NULL THEN '{}'::text[] ELSE array_remove(ARRAY[
               CASE WHEN o.union_id IS DISTINCT FROM u.union_id THEN 'union_id' END,
               CASE WHEN o.open_user_id IS DISTINCT FROM u.open_user_id THEN 'open_user_id' END,
               CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END,
               CASE WHEN o.alias IS DISTINCT FROM u.alias THEN 'alias' END,
               CASE WHEN o.position IS DISTINCT FROM u.position THEN 'position' END,
               CASE WHEN o.mobile IS DISTINCT FROM u.mobile THEN 'mobile' END,
               CASE WHEN o.email IS DISTINCT FROM u.email THEN 'email' END,
               CASE WHEN o.biz_mail IS DISTINCT FROM u.biz_mail THEN 'biz_mail' END,
               CASE WHEN o.telephone IS DISTINCT FROM u.telephone THEN 'telephone' END,
               CASE WHEN o.gender IS DISTINCT FROM u.gender THEN 'gender' END,
               CASE WHEN o.avatar IS DISTINCT FROM u.avatar THEN 'avatar' END,
               CASE WHEN o.job_number IS DISTINCT FROM u.job_number THEN 'job_number' END,
               CASE WHEN o.work_place IS DISTINCT FROM u.work_place THEN 'work_place' END,
               CASE WHEN o.hired_date IS DISTINCT FROM u.hired_date THEN 'hired_date' END,
               CASE WHEN o.direct_leaders IS DISTINCT FROM u.direct_leaders THEN 'direct_leaders' END,
               CASE WHEN o.platform_status IS DISTINCT FROM u.platform_status THEN 'platform_status' END,
               CASE WHEN o.extattr IS DISTINCT FROM u.extattr THEN 'extattr' END,
               CASE WHEN o.main_dept_id IS DISTINCT FROM u.main_dept_id THEN 'main_dept_id' END,
               CASE WHEN o.id IS NOT NULL AND o.status IS DISTINCT FROM u.status THEN 'status' END
           ], NULL) END AS fields,
           coalesce(to_jsonb(o), '{}') || CASE WHEN o.id IS NULL THEN '{}' ELSE jsonb_build_object(
               'departments', d.ids_before, 'leader_dept_ids', d.leads_before, 'dept_orders', d.orders_before) END
               AS before,
           coalesce(to_jsonb(u), '{}') || jsonb_build_object(
               'departments', d.ids_after, 'leader_dept_ids', d.leads_after, 'dept_orders', d.orders_after) AS after
    FROM m CROSS JOIN md d LEFT JOIN old o ON true LEFT JOIN up u ON true
), final AS (
    SELECT r.id, r.unknown_departments, r.before, r.after, r.fields || r.membership_fields AS fields,
           CASE WHEN r.id IS NULL THEN NULL WHEN r.created THEN 'create' WHEN r.reactivated THEN 'reactivate'
                WHEN cardinality(r.fields) > 0 OR cardinality(r.membership_fields) > 0 THEN 'update' END AS op
    FROM result r
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
    SELECT $1, 'member', $2, f.op, nullif(f.fields, '{}'), $25, $26, $27, feed_changes(f.before, f.after, f.fields)
    FROM final f WHERE f.op IS NOT NULL
    RETURNING 1
), touched AS (
    -- Only the memberships changed: the member row was not rewritten above, but it did change
    -- (updatedSince readers must see it). A row is never modified twice in one statement.
    UPDATE members SET updated_at = now()
    WHERE id = (SELECT id FROM final WHERE op IS NOT NULL) AND NOT EXISTS (SELECT 1 FROM up)
    RETURNING 1
)
SELECT id, op, fields, unknown_departments FROM final;

-- name: dir_upsert_members
-- $1 corps row id; $2..$20 one array each, aligned, one element a member: its user id, then its fields in
-- dir_upsert_member's order ($17 direct leaders and $19 extattr as JSON text: an array / an object, or NULL);
-- $21 each member's reactivate (as in dir_upsert_member), $22 whether its departments are known (false: its
-- memberships are kept), $23 the inbox id its change is logged with; $24..$27 the memberships, aligned: the
-- member's position in $2 (from 1), dept id, is_leader, order; $28 change-log source, $29 sync run id. An array
-- other than $2, $24 and $25 may be NULL when none of its elements is known: unnest pads it with NULLs.
-- dir_upsert_member for several members with distinct user ids, in one statement: one row per member, in
-- their order, with the same id / op / fields / unknown_departments, and the change-log rows in their order; a
-- new member is inserted linked to its person (handlers.store.users.register's work, done in the same write).
-- A member inserted by someone else since this statement's snapshot comes back with id NULL (nothing of it
-- was written): the caller rolls back and writes the members one by one. Members are found by key (LATERAL
-- ... OFFSET 0, `= ANY (ARRAY(...))`), so that the planner does not join the input with a scan of the whole
-- corp; memberships to keep are a hashed NOT IN; unknown departments are found once. The memberships are logged
-- as in dir_upsert_member.
WITH input AS (
    SELECT i.*, CASE WHEN i.leaders_json IS NOT NULL
                     THEN ARRAY(SELECT jsonb_array_elements_text(i.leaders_json::jsonb)) END AS direct_leaders,
           i.extattr_json::jsonb AS extattr
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                $10::text[], $11::text[], $12::smallint[], $13::text[], $14::text[], $15::text[], $16::bigint[],
                $17::text[], $18::smallint[], $19::text[], $20::text[], $21::text[], $22::boolean[], $23::bigint[])
         WITH ORDINALITY AS i (user_id, union_id, open_user_id, name, alias, position, mobile, email, biz_mail,
                               telephone, gender, avatar, job_number, work_place, hired_date, leaders_json,
                               platform_status, extattr_json, main_dept_id, reactivate, departments_known, inbox_id,
                               ord)
), old AS (
    SELECT i.ord, m.* FROM input i
    CROSS JOIN LATERAL (SELECT * FROM members m WHERE m.corp = $1 AND m.user_id = i.user_id OFFSET 0) m
), old_md AS (
    SELECT o.ord, md.dept_id, md.is_leader, md."order" FROM old o JOIN member_departments md ON md.member = o.id
), updated AS (
    UPDATE members AS m
    SET union_id = coalesce(i.union_id, m.union_id),
        open_user_id = coalesce(i.open_user_id, m.open_user_id),
        name = coalesce(i.name, m.name),
        alias = coalesce(i.alias, m.alias),
        position = coalesce(i.position, m.position),
        mobile = coalesce(i.mobile, m.mobile),
        email = coalesce(i.email, m.email),
        biz_mail = coalesce(i.biz_mail, m.biz_mail),
        telephone = coalesce(i.telephone, m.telephone),
        gender = coalesce(i.gender, m.gender),
        avatar = coalesce(i.avatar, m.avatar),
        job_number = coalesce(i.job_number, m.job_number),
        work_place = coalesce(i.work_place, m.work_place),
        hired_date = coalesce(i.hired_date, m.hired_date),
        direct_leaders = coalesce(i.direct_leaders, m.direct_leaders),
        platform_status = coalesce(i.platform_status, m.platform_status),
        extattr = coalesce(i.extattr, m.extattr),
        main_dept_id = coalesce(i.main_dept_id, m.main_dept_id),
        status = CASE WHEN i.reactivate = 'join' OR (i.reactivate = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                      THEN 'active' ELSE m.status END,
        offline_reason = CASE WHEN i.reactivate = 'join' OR (i.reactivate = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                              THEN NULL ELSE m.offline_reason END,
        offline_at = CASE WHEN i.reactivate = 'join' OR (i.reactivate = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                          THEN NULL ELSE m.offline_at END,
        updated_at = now()
    FROM old o JOIN input i ON i.ord = o.ord
    WHERE m.id = ANY (ARRAY(SELECT id FROM old)) AND m.id = o.id
      AND (m.union_id, m.open_user_id, m.name, m.alias, m.position, m.mobile, m.email, m.biz_mail, m.telephone,
           m.gender, m.avatar, m.job_number, m.work_place, m.hired_date, m.direct_leaders, m.platform_status,
           m.extattr, m.main_dept_id, m.status) IS DISTINCT FROM
          (coalesce(i.union_id, m.union_id),
           coalesce(i.open_user_id, m.open_user_id),
           coalesce(i.name, m.name),
           coalesce(i.alias, m.alias),
           coalesce(i.position, m.position),
           coalesce(i.mobile, m.mobile),
           coalesce(i.email, m.email),
           coalesce(i.biz_mail, m.biz_mail),
           coalesce(i.telephone, m.telephone),
           coalesce(i.gender, m.gender),
           coalesce(i.avatar, m.avatar),
           coalesce(i.job_number, m.job_number),
           coalesce(i.work_place, m.work_place),
           coalesce(i.hired_date, m.hired_date),
           coalesce(i.direct_leaders, m.direct_leaders),
           coalesce(i.platform_status, m.platform_status),
           coalesce(i.extattr, m.extattr),
           coalesce(i.main_dept_id, m.main_dept_id),
           CASE WHEN i.reactivate = 'join' OR (i.reactivate = 'confirmed' AND m.offline_reason IS DISTINCT FROM 'operator')
                THEN 'active' ELSE m.status END)
    RETURNING i.ord, m.*
), new_members AS (
    SELECT i.*, c.platform,
           member_identity(c.platform, c.type, c.auth_name, c.corp_id, i.user_id, i.union_id, i.open_user_id)
               AS identity
    FROM input i CROSS JOIN corps c
    WHERE c.id = $1 AND NOT EXISTS (SELECT 1 FROM old o WHERE o.ord = i.ord)
), people AS (
    -- A new member is written once, linked to its person in the local user pool, who is made unless they exist
    -- (as fs_insert_members does; an existing person comes back through a no-op update of their row).
    INSERT INTO local_users (platform, identity)
    SELECT DISTINCT platform, identity FROM new_members
    ON CONFLICT (platform, identity) DO UPDATE SET identity = EXCLUDED.identity
    RETURNING id, identity
), inserted AS (
    INSERT INTO members (corp, user_id, union_id, open_user_id, name, alias, position, mobile, email, biz_mail,
                         telephone, gender, avatar, job_number, work_place, hired_date, direct_leaders,
                         platform_status, extattr, main_dept_id, local_user)
    SELECT $1, i.user_id, i.union_id, i.open_user_id, i.name, i.alias, i.position, i.mobile, i.email, i.biz_mail,
           i.telephone, i.gender, i.avatar, i.job_number, i.work_place, i.hired_date, i.direct_leaders,
           i.platform_status, i.extattr, i.main_dept_id, p.id
    FROM new_members i JOIN people p ON p.identity = i.identity
    ORDER BY i.ord
    ON CONFLICT (corp, user_id) DO NOTHING
    RETURNING *
), up AS (
    SELECT * FROM updated
    UNION ALL
    SELECT i.ord, n.* FROM inserted n JOIN input i ON i.user_id = n.user_id
), ids AS (
    SELECT i.ord, coalesce(u.id, o.id) AS id, i.departments_known
    FROM input i LEFT JOIN up u ON u.ord = i.ord LEFT JOIN old o ON o.ord = i.ord
), want AS (
    SELECT * FROM unnest($24::bigint[], $25::text[], $26::boolean[], $27::bigint[]) AS w (ord, dept_id, is_leader, "order")
), del AS (
    DELETE FROM member_departments md USING ids
    WHERE md.member = ANY (ARRAY(SELECT id FROM ids WHERE departments_known)) AND md.member = ids.id
      AND (ids.ord, md.dept_id) NOT IN (SELECT w.ord, w.dept_id FROM want w)
    RETURNING md.member
), ins AS (
    INSERT INTO member_departments AS md (corp, member, dept_id, is_leader, "order")
    SELECT $1, ids.id, w.dept_id, w.is_leader, w."order" FROM want w JOIN ids ON ids.ord = w.ord
    WHERE ids.id IS NOT NULL
    ON CONFLICT (member, dept_id) DO UPDATE
    SET is_leader = coalesce(EXCLUDED.is_leader, md.is_leader), "order" = coalesce(EXCLUDED."order", md."order")
    WHERE (md.is_leader, md."order") IS DISTINCT FROM
          (coalesce(EXCLUDED.is_leader, md.is_leader), coalesce(EXCLUDED."order", md."order"))
    RETURNING md.member
), new_md AS (
    SELECT w.ord, w.dept_id, coalesce(w.is_leader, o.is_leader) AS is_leader, coalesce(w."order", o."order") AS "order"
    FROM want w LEFT JOIN old_md o ON o.ord = w.ord AND o.dept_id = w.dept_id
), md AS (
    SELECT x.ord,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE NOT after), '{}') AS ids_before,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE NOT after AND is_leader), '{}') AS leads_before,
           coalesce(jsonb_object_agg(dept_id, "order") FILTER (WHERE NOT after AND "order" IS NOT NULL), '{}')
               AS orders_before,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE after), '{}') AS ids_after,
           coalesce(array_agg(dept_id ORDER BY dept_id) FILTER (WHERE after AND is_leader), '{}') AS leads_after,
           coalesce(jsonb_object_agg(dept_id, "order") FILTER (WHERE after AND "order" IS NOT NULL), '{}')
               AS orders_after
    FROM (SELECT false AS after, * FROM old_md UNION ALL SELECT true, * FROM new_md) x
    GROUP BY x.ord
), unknown AS (
    SELECT w.ord, array_agg(w.dept_id ORDER BY w.dept_id) AS dept_ids FROM want w
    WHERE w.dept_id NOT IN ('', '0')
      AND NOT EXISTS (SELECT 1 FROM departments d WHERE d.corp = $1 AND d.dept_id = w.dept_id)
    GROUP BY w.ord
), result AS (
    SELECT ids.ord, ids.id, i.user_id, i.inbox_id,
           CASE WHEN NOT i.departments_known THEN '{}'::text[] ELSE array_remove(ARRAY[
               CASE WHEN d.ids_before IS DISTINCT FROM d.ids_after THEN 'departments' END,
               CASE WHEN d.leads_before IS DISTINCT FROM d.leads_after THEN 'leader_dept_ids' END,
               CASE WHEN o.id IS NOT NULL AND d.orders_before IS DISTINCT FROM d.orders_after THEN 'dept_orders' END
           ], NULL) END AS membership_fields,
           coalesce(un.dept_ids, '{}') AS unknown_departments,
           o.id IS NULL AS created,
           u.id IS NOT NULL AS rewritten,
           coalesce(o.status = 'offline' AND u.status = 'active', false) AS reactivated,
           CASE WHEN u.id IS NULL THEN '{}'::text[] ELSE array_remove(ARRAY[
               CASE WHEN o.union_id IS DISTINCT FROM u.union_id THEN 'union_id' END,
               CASE WHEN o.open_user_id IS DISTINCT FROM u.open_user_id THEN 'open_user_id' END,
               CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END,
               CASE WHEN o.alias IS DISTINCT FROM u.alias THEN 'alias' END,
               CASE WHEN o.position IS DISTINCT FROM u.position THEN 'position' END,
               CASE WHEN o.mobile IS DISTINCT FROM u.mobile THEN 'mobile' END,
               CASE WHEN o.email IS DISTINCT FROM u.email THEN 'email' END,
               CASE WHEN o.biz_mail IS DISTINCT FROM u.biz_mail THEN 'biz_mail' END,
               CASE WHEN o.telephone IS DISTINCT FROM u.telephone THEN 'telephone' END,
               CASE WHEN o.gender IS DISTINCT FROM u.gender THEN 'gender' END,
               CASE WHEN o.avatar IS DISTINCT FROM u.avatar THEN 'avatar' END,
               CASE WHEN o.job_number IS DISTINCT FROM u.job_number THEN 'job_number' END,
               CASE WHEN o.work_place IS DISTINCT FROM u.work_place THEN 'work_place' END,
               CASE WHEN o.hired_date IS DISTINCT FROM u.hired_date THEN 'hired_date' END,
               CASE WHEN o.direct_leaders IS DISTINCT FROM u.direct_leaders THEN 'direct_leaders' END,
               CASE WHEN o.platform_status IS DISTINCT FROM u.platform_status THEN 'platform_status' END,
               CASE WHEN o.extattr IS DISTINCT FROM u.extattr THEN 'extattr' END,
               CASE WHEN o.main_dept_id IS DISTINCT FROM u.main_dept_id THEN 'main_dept_id' END,
               CASE WHEN o.id IS NOT NULL AND o.status IS DISTINCT FROM u.status THEN 'status' END
           ], NULL) END AS fields,
           (coalesce(to_jsonb(o), '{}') - 'ord') || CASE WHEN o.id IS NULL THEN '{}' ELSE jsonb_build_object(
               'departments', d.ids_before, 'leader_dept_ids', d.leads_before, 'dept_orders', d.orders_before) END
               AS before,
           (coalesce(to_jsonb(u), '{}') - 'ord') || jsonb_build_object(
               'departments', d.ids_after, 'leader_dept_ids', d.leads_after, 'dept_orders', d.orders_after) AS after
    FROM ids JOIN input i ON i.ord = ids.ord LEFT JOIN old o ON o.ord = ids.ord LEFT JOIN up u ON u.ord = ids.ord
         LEFT JOIN md d ON d.ord = ids.ord LEFT JOIN unknown un ON un.ord = ids.ord
), final AS (
    SELECT r.ord, r.id, r.user_id, r.inbox_id, r.rewritten, r.unknown_departments, r.before, r.after,
           r.fields || r.membership_fields AS fields,
           CASE WHEN r.id IS NULL THEN NULL WHEN r.created THEN 'create' WHEN r.reactivated THEN 'reactivate'
                WHEN cardinality(r.fields) > 0 OR cardinality(r.membership_fields) > 0 THEN 'update' END AS op
    FROM result r
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
    SELECT $1, 'member', f.user_id, f.op, nullif(f.fields, '{}'), $28, f.inbox_id, $29,
           feed_changes(f.before, f.after, f.fields)
    FROM final f WHERE f.op IS NOT NULL
    ORDER BY f.ord
    RETURNING 1
), touched AS (
    -- Only the memberships changed: see dir_upsert_member.
    UPDATE members SET updated_at = now()
    WHERE id = ANY (ARRAY(SELECT f.id FROM final f WHERE f.op IS NOT NULL AND NOT f.rewritten))
    RETURNING 1
)
SELECT id, op, fields, unknown_departments FROM final ORDER BY ord;

-- name: dir_offline_member
-- $1 corps row id, $2 user id, $3 offline reason, $4 change-log source, $5 inbox id, $6 sync run id
-- Takes an active member offline and logs it in the same statement; no row when there was none to take.
WITH gone AS (
    UPDATE members SET status = 'offline', offline_reason = $3, offline_at = now(), updated_at = now()
    WHERE corp = $1 AND user_id = $2 AND status = 'active'
    RETURNING id, offline_at
), logged AS (
    INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
    SELECT $1, 'member', $2, 'offline', ARRAY['status', 'offline_reason', 'offline_at'], $4, $5, $6,
           feed_offline_changes($3::text, offline_at)
    FROM gone
    RETURNING 1
)
SELECT id FROM gone;

-- name: dir_rename_member
-- $1 corps row id, $2 old user id, $3 new user id
-- Keeps members.id (and so every link); refuses when the new user id is already taken.
UPDATE members SET user_id = $3, updated_at = now()
WHERE corp = $1 AND user_id = $2
  AND NOT EXISTS (SELECT 1 FROM members WHERE corp = $1 AND user_id = $3)
RETURNING id;

-- name: dir_member_states
-- $1 corps row id, $2 user ids
SELECT user_id, id, status, offline_reason FROM members WHERE corp = $1 AND user_id = ANY($2::text[]);

-- name: dir_active_member_count
-- $1 corps row id
SELECT count(*) FROM members WHERE corp = $1 AND status = 'active';

-- name: dir_upsert_tag
-- $1 corps row id, $2 tag id, $3 name
WITH old AS (
    SELECT name FROM tags WHERE corp = $1 AND tag_id = $2
), up AS (
    INSERT INTO tags AS t (corp, tag_id, name) VALUES ($1, $2, $3)
    ON CONFLICT (corp, tag_id) DO UPDATE SET name = coalesce(EXCLUDED.name, t.name), updated_at = now()
    WHERE t.name IS DISTINCT FROM coalesce(EXCLUDED.name, t.name)
    RETURNING name
)
SELECT NOT EXISTS (SELECT 1 FROM old) AS created,
       array_remove(ARRAY[CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END], NULL) AS fields,
       feed_changes(to_jsonb(o), to_jsonb(u),
                    array_remove(ARRAY[CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END], NULL)) AS changes
FROM up u LEFT JOIN old o ON true;

-- name: dir_tag_add_members
-- $1 corps row id, $2 tag id, $3 user ids: the user ids added
WITH added AS (
    INSERT INTO tag_members (corp, tag_id, member)
    SELECT $1, $2, m.id FROM members m WHERE m.corp = $1 AND m.user_id = ANY($3::text[])
    ON CONFLICT DO NOTHING
    RETURNING member
)
SELECT m.user_id FROM added a JOIN members m ON m.id = a.member;

-- name: dir_tag_remove_members
-- $1 corps row id, $2 tag id, $3 user ids: the user ids removed
DELETE FROM tag_members tm USING members m
WHERE tm.corp = $1 AND tm.tag_id = $2 AND tm.member = m.id AND m.user_id = ANY($3::text[])
RETURNING m.user_id;

-- name: dir_tag_add_departments
-- $1 corps row id, $2 tag id, $3 dept ids: the dept ids added
INSERT INTO tag_departments (corp, tag_id, dept_id)
SELECT $1, $2, d FROM unnest($3::text[]) AS d
ON CONFLICT DO NOTHING
RETURNING dept_id;

-- name: dir_tag_remove_departments
-- $1 corps row id, $2 tag id, $3 dept ids
DELETE FROM tag_departments WHERE corp = $1 AND tag_id = $2 AND dept_id = ANY($3::text[])
RETURNING dept_id;

-- name: dir_upsert_role
-- $1 corps row id, $2 role id, $3 name, $4 group name
WITH old AS (
    SELECT name, group_name FROM roles WHERE corp = $1 AND role_id = $2
), up AS (
    INSERT INTO roles AS r (corp, role_id, name, group_name, source) VALUES ($1, $2, $3, $4, 'platform')
    ON CONFLICT (corp, role_id) DO UPDATE
    SET name = coalesce(EXCLUDED.name, r.name), group_name = coalesce(EXCLUDED.group_name, r.group_name),
        updated_at = now()
    WHERE (r.name, r.group_name) IS DISTINCT FROM
          (coalesce(EXCLUDED.name, r.name), coalesce(EXCLUDED.group_name, r.group_name))
    RETURNING name, group_name
)
SELECT NOT EXISTS (SELECT 1 FROM old) AS created,
       array_remove(ARRAY[
           CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END,
           CASE WHEN o.group_name IS DISTINCT FROM u.group_name THEN 'group_name' END
       ], NULL) AS fields,
       feed_changes(to_jsonb(o), to_jsonb(u), array_remove(ARRAY[
           CASE WHEN o.name IS DISTINCT FROM u.name THEN 'name' END,
           CASE WHEN o.group_name IS DISTINCT FROM u.group_name THEN 'group_name' END
       ], NULL)) AS changes
FROM up u LEFT JOIN old o ON true;

-- name: dir_delete_role
-- $1 corps row id, $2 role id
-- Only platform roles: a role set up locally (setUserRole) is not the platform's to remove.
WITH gone AS (
    DELETE FROM roles WHERE corp = $1 AND role_id = $2 AND source = 'platform' RETURNING role_id
), links AS (
    DELETE FROM role_members WHERE corp = $1 AND role_id IN (SELECT role_id FROM gone) RETURNING member
)
SELECT EXISTS (SELECT 1 FROM gone) AS deleted, (SELECT count(*) FROM links) AS members;

-- name: dir_role_add_members
-- $1 corps row id, $2 role id, $3 user ids: the user ids added
WITH added AS (
    INSERT INTO role_members (corp, role_id, member)
    SELECT $1, $2, m.id FROM members m WHERE m.corp = $1 AND m.user_id = ANY($3::text[])
    ON CONFLICT DO NOTHING
    RETURNING member
)
SELECT m.user_id FROM added a JOIN members m ON m.id = a.member;

-- name: dir_role_remove_members
-- $1 corps row id, $2 role id, $3 user ids: the user ids removed
DELETE FROM role_members rm USING members m
WHERE rm.corp = $1 AND rm.role_id = $2 AND rm.member = m.id AND m.user_id = ANY($3::text[])
RETURNING m.user_id;

-- name: dir_add_admin
-- $1 corps row id, $2 user id, $3 level: a row (the member, its level) when the admin is new
INSERT INTO admins (corp, member, level, source)
SELECT $1, m.id, $3, 'platform' FROM members m WHERE m.corp = $1 AND m.user_id = $2
ON CONFLICT (corp, member) DO NOTHING
RETURNING member, level;

-- name: dir_remove_admin
-- $1 corps row id, $2 user id: a row (the member, the level it had) when an admin was removed
DELETE FROM admins a USING members m
WHERE a.corp = $1 AND a.member = m.id AND m.user_id = $2 AND a.source = 'platform'
RETURNING a.member, a.level;

-- name: dir_log_change
-- $1 corps row id, $2 entity, $3 entity id, $4 op, $5 changed fields, $6 source kind, $7 inbox id, $8 sync run id,
-- $9 the changed values ({"<field>": {"before", "after"}}) or NULL
INSERT INTO change_log (corp, entity, entity_id, op, fields, source, inbox_id, sync_run_id, changes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb);
