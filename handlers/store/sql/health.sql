-- name: health_streams
-- For /readyz and /metrics, one cheap read: each active corp, and each inbox stream with pending rows that
-- is no active corp's (a suite's instruction URL, ``suite:<auth>``); the newest finished full sync and the
-- newest good one (succeeded or quarantined); the pending inbox: count, and the age of the stream's head (the
-- oldest pending row, the one the worker applies next). Per stream through the partial pending index, never a
-- scan of the whole inbox: probes call this every few seconds, also while a burst is being drained. Every
-- writer of the inbox registers its streams (as the worker, which reads them the same way). Ages in seconds
-- on the database clock.
WITH pending AS (
    SELECT s.stream, n.pending, head.received_at AS oldest
    FROM inbox_streams s
    CROSS JOIN LATERAL (
        SELECT received_at FROM inbox WHERE stream = s.stream AND status = 'pending' ORDER BY id LIMIT 1
    ) head
    CROSS JOIN LATERAL (SELECT count(*) AS pending FROM inbox WHERE stream = s.stream AND status = 'pending') n
), corp AS (
    SELECT c.name, last.status, last.finished_at, good.finished_at AS good_at
    FROM corps c
    LEFT JOIN LATERAL (
        SELECT status, finished_at FROM sync_runs
        WHERE corp = c.id AND finished_at IS NOT NULL ORDER BY started_at DESC LIMIT 1
    ) last ON true
    LEFT JOIN LATERAL (
        SELECT finished_at FROM sync_runs
        WHERE corp = c.id AND status IN ('succeeded', 'quarantined') ORDER BY started_at DESC LIMIT 1
    ) good ON true
    WHERE c.status = 'active'
)
SELECT coalesce(c.name, p.stream) AS name, c.name IS NOT NULL AS is_corp,
       c.status AS last_sync_status,
       extract(epoch FROM now() - c.finished_at)::float8 AS last_sync_age,
       extract(epoch FROM now() - c.good_at)::float8 AS good_sync_age,
       coalesce(p.pending, 0)::bigint AS pending,
       extract(epoch FROM now() - p.oldest)::float8 AS oldest_pending_age
FROM corp c FULL JOIN pending p ON p.stream = c.name
ORDER BY 1;

-- name: health_sync_runs
-- $1 the duration histogram's upper bounds, ascending (seconds)
-- For /metrics: every finished full sync of every corp in the database, whichever process ran it, counted per
-- corp, status and duration bucket (bucket k: the first k bounds are below its duration; k = the number of
-- bounds means above them all), with the sum of their durations. Finished runs only: a running one has no
-- duration yet. A scan of sync_runs, which holds one row per run (a few per corp and day).
WITH runs AS (
    SELECT c.name, r.status, greatest(extract(epoch FROM r.finished_at - r.started_at)::float8, 0) AS seconds
    FROM sync_runs r JOIN corps c ON c.id = r.corp
    WHERE r.finished_at IS NOT NULL AND r.status <> 'running'
)
SELECT name, status, (SELECT count(*) FROM unnest($1::float8[]) b WHERE b < seconds)::int AS bucket,
       count(*)::bigint AS runs, sum(seconds)::float8 AS seconds
FROM runs
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;
