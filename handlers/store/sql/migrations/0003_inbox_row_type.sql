-- The shape of one callback as the intake sends it: inbox_insert_batch takes a group as an array of these.
-- asyncpg sends an array of rows in PostgreSQL's binary format, which the server reads field by field;
-- the same group as a JSON document cost the server about a third more per row to parse (and as nine
-- parallel arrays, the client checked every element of each). ``query`` is JSON text, cast on insert; the
-- raw body and the decrypted message travel as the bytes they arrived as, and the server turns them into
-- text (checking that they are UTF-8 without NUL), so the client never decodes and re-encodes them.
CREATE TYPE inbox_row AS (
    stream      text,
    platform    text,
    route       text,
    corp        bigint,
    dedupe_key  text,
    event_type  text,
    query       text,
    body        bytea,
    plaintext   bytea
);
