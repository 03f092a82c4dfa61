-- Advisory locks. Every key lives in handlers.store.locks; a lock is PostgreSQL's two int4 keys: the lock's
-- key ($1) and the thing locked ($2), a corps row id or a name hashed with hashtext.

-- name: try_lock_name
-- $1 lock key, $2 the name locked. Session-level: held until unlock_name or the connection closes.
SELECT pg_try_advisory_lock($1::int, hashtext($2));

-- name: unlock_name
-- $1 lock key, $2 the name locked
SELECT pg_advisory_unlock($1::int, hashtext($2));

-- name: try_lock_row
-- $1 lock key, $2 the row id locked. Session-level: held until unlock_row or the connection closes.
SELECT pg_try_advisory_lock($1::int, $2::int);

-- name: unlock_row
-- $1 lock key, $2 the row id locked
SELECT pg_advisory_unlock($1::int, $2::int);

-- name: xact_lock_row
-- $1 lock key, $2 the row id locked. Waits; held until the transaction ends.
SELECT pg_advisory_xact_lock($1::int, $2::int);

-- name: xact_lock_name
-- $1 lock key, $2 the name locked. Waits; held until the transaction ends.
SELECT pg_advisory_xact_lock($1::int, hashtext($2));

-- name: xact_try_lock_row
-- $1 lock key, $2 the row id locked. Does not wait; held until the transaction ends.
SELECT pg_try_advisory_xact_lock($1::int, $2::int);
