-- Webhook subscribers as the app dir declares them, in the database, so that every serve process fans out and
-- delivers the same way whatever app dir it read: the last app dir loaded (serve's start, `corpsync changes`)
-- writes each subscriber's filters and marks those it no longer declares removed.

-- The declared filters: event type patterns as written (member.*), corp names, personal fields; NULL events or
-- corps: every one. removed_at: no longer in the app dir (no fan-out, no delivery; pending rows dropped).
ALTER TABLE feed_subscribers
    ADD COLUMN events text[],
    ADD COLUMN corps text[],
    ADD COLUMN personal_fields text[] NOT NULL DEFAULT '{}',
    ADD COLUMN removed_at timestamptz;
