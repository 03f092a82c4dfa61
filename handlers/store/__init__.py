"""The store: every SQL statement and advisory-lock key of corpsync, behind typed functions.

Callers pass the connection (or pool) they own, and with it the transaction. Each module reads its named
blocks from ``sql/<module>.sql`` unless noted.

pool          the asyncpg pool, migrations, DB_ERRORS / DB_UNAVAILABLE
queries       the named SQL blocks of ``sql/*.sql`` and the numbered migrations
locks         every advisory-lock key, and the statements that take them
inbox         callbacks as they are received, and the worker's side of the inbox (also ``inbox_worker.sql``)
corps         the ``corps`` rows: one per configured corp and per suite tenant
credentials   cached tokens, suite tickets, permanent codes and suite tenants
directory     idempotent directory writes, each real change with its change_log row
sync_runs     the sync_runs record of each full sync, and the scheduler's view of them
merge         a full sync's snapshot staged with COPY and merged set-based into the directory
users         the local user pool: one person per platform identity, each member linked to its person
reads         the directory API's reads (``api.sql``)
operator      the operator's writes through the API (``api.sql``)
drift         receivers' heartbeats and the member-count check
stream        when each process's DingTalk Stream connection of a corp was last live (blind time)
health        what /readyz and /metrics read
housekeeping  early ANALYZE / VACUUM of the tables a fresh database grows from empty
rows          frozen dataclasses built from rows, field by column name
"""
