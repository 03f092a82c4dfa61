-- inbox.received_at grows with the table (a row's default is its transaction's start time), and the only query
-- that filters on it is replay's export ("received since"). A BRIN index answers that range from a summary
-- per block range, and costs the intake's hot path next to nothing; the btree it replaces took an index
-- insertion (and its WAL) for every callback.
DROP INDEX inbox_received;
CREATE INDEX inbox_received ON inbox USING brin (received_at);
