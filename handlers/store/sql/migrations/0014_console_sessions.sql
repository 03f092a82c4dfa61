-- The console's sign-outs and wrong sign-in tokens, shared by every serve process on the database: a signed-out
-- session cookie is refused by all of them, and the sign-in throttle counts every process's failures.
-- A row outlives its use by at most one purge: the statements that write them delete expired rows first.
CREATE TABLE console_signouts (
    nonce text PRIMARY KEY,          -- the session's nonce (its cookie is HMAC-signed: the nonce alone forges nothing)
    expires_at timestamptz NOT NULL  -- no later than the session's own end; the row is useless after it
);
CREATE TABLE console_sign_in_failures (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL
);
CREATE INDEX console_sign_in_failures_at ON console_sign_in_failures (at);
