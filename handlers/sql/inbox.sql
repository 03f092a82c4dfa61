-- name: inbox_insert_batch
-- One statement for a whole group of callbacks; duplicates (same stream + dedupe key) are skipped.
INSERT INTO inbox (stream, platform, route, corp, dedupe_key, event_type, query, body, plaintext)
SELECT s, p, r, c, d, e, qs::jsonb, b, t
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::text[]) AS u (s, p, r, c, d, e, qs, b, t)
ON CONFLICT (stream, dedupe_key) DO NOTHING
RETURNING id, stream, dedupe_key;

-- name: inbox_ensure_streams
INSERT INTO inbox_streams (stream) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING;
