-- DingTalk Stream connections (table stream_links): when each process's connection was last known live.

-- name: stream_link_connected
-- $1 corps row id, $2 process name, $3 now (seconds since the epoch, the process's clock).
-- Seconds since any process's connection of the corp was last live (NULL: never one), read before this
-- process's row is set live now; rows of other processes older than a week go.
WITH last AS MATERIALIZED (
    SELECT max(live_at) AS live_at FROM stream_links WHERE corp = $1
),
pruned AS (
    DELETE FROM stream_links WHERE corp = $1 AND process <> $2 AND live_at < to_timestamp($3) - interval '7 days'
),
marked AS (
    INSERT INTO stream_links (corp, process, live_at) VALUES ($1, $2, to_timestamp($3))
    ON CONFLICT (corp, process) DO UPDATE SET live_at = EXCLUDED.live_at
)
SELECT extract(epoch FROM to_timestamp($3) - live_at)::float8 AS blind FROM last;

-- name: stream_link_live
-- $1 corps row id, $2 process name, $3 now (seconds since the epoch, the process's clock)
UPDATE stream_links SET live_at = greatest(live_at, to_timestamp($3)) WHERE corp = $1 AND process = $2;
