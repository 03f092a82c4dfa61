-- DingTalk Stream connections: per corp and process, the last moment that process's connection was known live.
-- The newest live_at of a corp tells how long no process had a connection (blind time, a drift gap); the times
-- come from the processes' clocks (handlers.sync.drift.stream_connected).
CREATE TABLE stream_links (
    corp     bigint NOT NULL REFERENCES corps (id) ON DELETE CASCADE,
    process  text NOT NULL,
    live_at  timestamptz NOT NULL,
    PRIMARY KEY (corp, process)
);
