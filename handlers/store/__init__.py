"""The store: every SQL statement and advisory-lock key of corpsync, behind typed functions.

pool         the asyncpg pool, migrations, DB_ERRORS
queries      the named SQL blocks of ``sql/*.sql`` and the numbered migrations
inbox        callbacks as they are received, and the statement that stores a group of them
directory    idempotent directory writes, each real change with its change_log row
credentials  cached tokens, suite tickets, permanent codes and suite tenants
corps        the ``corps`` rows: one per configured corp and per suite tenant
"""
