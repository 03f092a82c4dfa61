-- Inbox rows stay inline and uncompressed up to a page (8160 bytes) instead of the default ~2 KB.
-- A typical callback row (raw body, plaintext, query) is just over 2 KB, so by default PostgreSQL tried to
-- compress every one on the intake's hot path: pglz spent about a fifth of the backend's CPU failing to
-- shrink the base64 body. Rows written before this keep their storage; larger rows are still toasted.
ALTER TABLE inbox SET (toast_tuple_target = 8160);
