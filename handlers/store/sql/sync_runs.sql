-- Full-sync runs: the sync_runs record of each run, and the scheduler's view of every corp's runs.

-- name: fs_fail_interrupted_runs
-- $1 corps row id
-- Runs left 'running' by a process that died; only called while holding the corp's lock.
UPDATE sync_runs SET status = 'failed', finished_at = now(), error = 'interrupted: the syncing process stopped'
WHERE corp = $1 AND status = 'running';

-- name: fs_start_run
-- $1 corps row id, $2 trigger
INSERT INTO sync_runs (corp, trigger) VALUES ($1, $2) RETURNING id, started_at;

-- name: fs_running_run
-- $1 corps row id
SELECT id FROM sync_runs WHERE corp = $1 AND status = 'running' ORDER BY started_at DESC LIMIT 1;

-- name: fs_finish_run
-- $1 run id, $2 status, $3 counts, $4 API calls, $5 error, $6 held removals (NULL: none)
-- counts and held arrive as JSON text (independent of the connection's jsonb codec).
UPDATE sync_runs
SET status = $2, finished_at = now(), counts = $3::text::jsonb, api_calls = $4, error = $5, held = $6::text::jsonb
WHERE id = $1
RETURNING finished_at;

-- name: fs_confirm_quarantined
-- $1 corps row id, $2 the confirming run's id
-- A run with the guard off supersedes the removals earlier runs held (not those the operator discarded).
UPDATE sync_runs SET confirmed_at = now()
WHERE corp = $1 AND status = 'quarantined' AND confirmed_at IS NULL AND discarded_at IS NULL AND id < $2;

-- name: fs_clear_sync_request
-- $1 corps row id
UPDATE corps SET sync_requested_at = NULL, sync_request_reason = NULL
WHERE id = $1 AND sync_requested_at IS NOT NULL;

-- name: fs_sync_state
-- $1 corp names, $2 the full-sync lock key (FULL_SYNC_LOCK)
-- What the scheduler needs per corp, on the database clock: is a run holding the corp's lock, the newest
-- run, the newest good run, failed runs since, and the open request.
SELECT c.id, c.name, now() AS now, c.sync_requested_at, c.sync_request_reason,
       EXISTS (
           SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid = $2::int::oid AND l.objid = c.id::oid
       ) AS running,
       last.started_at AS last_started_at, last.status AS last_status,
       good.finished_at AS last_good_at,
       (SELECT count(*) FROM sync_runs f
        WHERE f.corp = c.id AND f.status = 'failed' AND f.started_at > coalesce(good.started_at, '-infinity')
       ) AS failures
FROM corps c
LEFT JOIN LATERAL (
    SELECT started_at, status FROM sync_runs WHERE corp = c.id ORDER BY started_at DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT started_at, finished_at FROM sync_runs
    WHERE corp = c.id AND status IN ('succeeded', 'quarantined') ORDER BY started_at DESC LIMIT 1
) good ON true
WHERE c.name = ANY($1::text[]) AND c.status = 'active';
