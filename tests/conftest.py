"""Real PostgreSQL for every test: one migrated template database per session, cloned per test.

The server is CORPSYNC_TEST_DATABASE_URL when set (any database on it: we create our own beside it),
otherwise the embedded one under a shared temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from handlers.store import pool as db
from tests.support.databases import Clones


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A URL of a database on the server the tests may create databases on."""
    url = os.environ.get("CORPSYNC_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from receiver.embedded import start_embedded

    # One embedded server for every test process of this user; it keeps running between sessions.
    embedded = start_embedded(Path(tempfile.gettempdir()) / "corpsync-tests", keep_running=True)
    yield embedded.url


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(pg_server_url: str) -> Iterator[str]:
    """The name of a freshly migrated database that each test clones."""
    name = f"corpsync_tpl_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    async def build() -> None:
        await _admin(pg_server_url, f'CREATE DATABASE "{name}"')
        conn = await db.connect(_with_database(pg_server_url, name))
        try:
            await db.migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    yield name
    asyncio.run(_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def clones(pg_server_url: str, template_db: str) -> Iterator[Clones]:
    made = Clones(pg_server_url, template_db, lambda name: _with_database(pg_server_url, name))
    yield made
    made.close()


@pytest.fixture
def db_url(clones: Clones) -> Iterator[str]:
    """A private, migrated database for one test."""
    url = clones.take()
    yield url
    clones.give_back(url)


@pytest.fixture
def empty_db_url(pg_server_url: str) -> Iterator[str]:
    """A private database with no schema at all (for migration tests)."""
    name = f"corpsync_e_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_server_url, f'CREATE DATABASE "{name}"'))
    yield _with_database(pg_server_url, name)
    asyncio.run(_admin(pg_server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.asynccontextmanager
async def _pool_on(db_url: str, max_size: int) -> AsyncIterator[asyncpg.Pool]:
    p = await db.create_pool(db_url, min_size=1, max_size=max_size)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with _pool_on(db_url, 10) as p:
        yield p


@pytest.fixture
async def one_connection(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection: every acquire gets the same session."""
    async with _pool_on(db_url, 1) as p:
        yield p
