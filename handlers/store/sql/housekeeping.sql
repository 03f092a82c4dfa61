-- Housekeeping the worker does sooner than autovacuum would (handlers.store.housekeeping).

-- name: housekeeping_tables
-- Tables whose statistics lag far behind their growth (a fresh database: autovacuum looks once a minute,
-- and plans made on empty tables scan whole corps), and an inbox full of dead rows (the pending index
-- then walks them on every look-up) or a change_log the retention purge thinned: VACUUM makes their space
-- reusable, so they stop growing at a steady rate also where autovacuum is off or slow (bench/soak.py).
SELECT c.relname::text AS relname,
       s.n_mod_since_analyze > greatest(500, c.reltuples::bigint) AS analyze,
       c.relname IN ('inbox', 'change_log') AND s.n_dead_tup > greatest(5000, c.reltuples::bigint / 5) AS vacuum
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE s.schemaname = current_schema()
  AND c.relname IN ('inbox', 'members', 'member_departments', 'departments', 'change_log', 'tags', 'tag_members',
                    'roles', 'role_members', 'admins')
  AND (s.n_mod_since_analyze > greatest(500, c.reltuples::bigint)
       OR (c.relname IN ('inbox', 'change_log') AND s.n_dead_tup > greatest(5000, c.reltuples::bigint / 5)));

-- name: housekeeping_lock_timeout
-- For the session: give up on a table another transaction holds locked rather than queue behind it.
SET lock_timeout = '100ms';

-- name: housekeeping_reset_lock_timeout
RESET lock_timeout;
