-- What drift detection keeps and reads: the receivers' heartbeats, and the local side of the member-count check.

-- name: heartbeat_since_last
-- How long ago any process last beat (NULL: no beat at all).
SELECT now() - max(beat_at) FROM heartbeats;

-- name: heartbeat_beat
-- $1 process name
INSERT INTO heartbeats (process) VALUES ($1)
ON CONFLICT (process) DO UPDATE SET beat_at = now();

-- name: heartbeat_forget
-- $1 process name; rows older than a week go too.
DELETE FROM heartbeats WHERE process = $1 OR beat_at < now() - interval '7 days';

-- name: drift_count_check
-- $1 corps row id, $2 its stream (the corp's name)
SELECT (SELECT count(*) FROM members WHERE corp = $1 AND status = 'active') AS active,
       EXISTS (SELECT 1 FROM inbox WHERE status = 'pending' AND (stream = $2 OR corp = $1)) AS pending;
