"""Test helpers for the incremental path: corps, inbox rows, a platform stand-in, and directory reads."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from handlers.clients import PlatformClient, Progress
from handlers.config import Secret, SuiteAuth
from handlers.errors import UpstreamError
from handlers.events import CorpRef, Services
from handlers.events.parse import dedupe_key
from handlers.model import Admin, Department, Member, Role, Snapshot, Tag
from handlers.store.inbox import InboxRecord, ensure_streams, inbox_values_of, insert_inbox_rows
from handlers.worker.loop import Worker, WorkerSettings

FAST = WorkerSettings(backoff_base=0.0, backoff_cap=0.0, max_attempts=3, async_commit=False, count_check_interval=0)


async def make_corp(
    pool: asyncpg.Pool,
    name: str = "HQ",
    *,
    platform: str = "wecom",
    type_: str | None = None,
    corp_id: str = "ww5f3a9c2e7b1d4086",
    auth_name: str | None = None,
    root_dept_id: str | None = None,
) -> int:
    kind = type_ or ("corps.DDInnerType" if platform == "dingtalk" else "corps.QywxInnerType")
    row_id: int = await pool.fetchval(
        "INSERT INTO corps (name, platform, type, corp_id, auth_name, root_dept_id) VALUES ($1, $2, $3, $4, $5, $6)"
        " RETURNING id",
        name,
        platform,
        kind,
        corp_id,
        auth_name,
        root_dept_id,
    )
    return row_id


async def push(
    pool: asyncpg.Pool,
    plaintext: str | bytes,
    *,
    stream: str = "HQ",
    platform: str = "wecom",
    route: str | None = None,
    corp: int | None = None,
    query: Mapping[str, str] | None = None,
    body: str = "<xml/>",
) -> int | None:
    """Commit one callback to the inbox as the intake would; None for a duplicate."""
    raw = plaintext.encode() if isinstance(plaintext, str) else plaintext
    async with pool.acquire() as conn, conn.transaction():
        await ensure_streams(conn, [stream])
        record = InboxRecord(
            stream=stream,
            platform=platform,
            route=route or platform,
            corp=corp,
            dedupe_key=dedupe_key(platform, raw),
            event_type=None,
            query=dict(query or {}),
            body=body.encode(),
            plaintext=raw,
        )
        rows = await insert_inbox_rows(conn, inbox_values_of([record]))
    return rows[0]["id"] if rows else None


@dataclass
class StubPlatform:
    """Stands in for a platform API (the network edge) until the simulator-backed clients are wired."""

    members: dict[str, Member] = field(default_factory=dict)
    departments: dict[str, Department] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)
    count: int | None = None
    failing: set[str] = field(default_factory=set)  # ids whose read raises UpstreamError
    reads: list[tuple[str, str]] = field(default_factory=list)

    def _check(self, kind: str, key: str) -> None:
        self.reads.append((kind, key))
        if key in self.failing:
            raise UpstreamError(f"{kind}/get", -1, "system busy")

    async def member(self, user_id: str) -> Member | None:
        self._check("member", user_id)
        return self.members.get(user_id)

    async def department(self, dept_id: str) -> Department | None:
        self._check("department", dept_id)
        return self.departments.get(dept_id)

    async def tag(self, tag_id: str) -> Tag | None:
        self._check("tag", tag_id)
        return self.tags.get(tag_id)

    async def role(self, role_id: str) -> Role | None:
        self._check("role", role_id)
        return self.roles.get(role_id)

    async def member_count(self) -> int | None:
        return self.count

    async def admins(self) -> tuple[Admin, ...] | None:
        return None

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot:
        raise NotImplementedError("the event tests never take a snapshot")

    @property
    def api_calls(self) -> int:
        return len(self.reads)


@dataclass
class Clients:
    """A ClientSource giving the same stand-in for every corp (or none)."""

    platform: PlatformClient | None

    async def client(self, corp: CorpRef) -> PlatformClient | None:
        return self.platform


def worker(
    pool: asyncpg.Pool,
    platform: PlatformClient | None = None,
    *,
    settings: WorkerSettings = FAST,
    **services: Any,
) -> Worker:
    return Worker(pool, Services(clients=Clients(platform), pool=pool, **services), settings)


async def member(pool: asyncpg.Pool, corp: int, user_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT m.*, ARRAY(SELECT dept_id FROM member_departments md WHERE md.member = m.id ORDER BY dept_id)"
        " AS dept_ids FROM members m WHERE corp = $1 AND user_id = $2",
        corp,
        user_id,
    )
    return row


async def department(pool: asyncpg.Pool, corp: int, dept_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await pool.fetchrow(
        "SELECT * FROM departments WHERE corp = $1 AND dept_id = $2", corp, dept_id
    )
    return row


async def changes(pool: asyncpg.Pool, corp: int) -> list[tuple[str, str, str]]:
    rows = await pool.fetch("SELECT entity, entity_id, op FROM change_log WHERE corp = $1 ORDER BY id", corp)
    return [(r["entity"], r["entity_id"], r["op"]) for r in rows]


async def sync_reason(pool: asyncpg.Pool, corp: int) -> str | None:
    reason: str | None = await pool.fetchval("SELECT sync_request_reason FROM corps WHERE id = $1", corp)
    return reason


async def inbox(pool: asyncpg.Pool, inbox_id: int) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow("SELECT * FROM inbox WHERE id = $1", inbox_id)
    return row


def wecom_xml(change_type: str, corp_id: str = "ww5f3a9c2e7b1d4086", created: int = 1700000000, **fields: Any) -> str:
    """A self-built change_contact plaintext with the given fields (lists become comma lists)."""
    body = "".join(
        f"<{k}><![CDATA[{','.join(map(str, v)) if isinstance(v, list | tuple) else v}]]></{k}>"
        for k, v in fields.items()
    )
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{created}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>{change_type}</ChangeType>{body}</xml>"
    )


def ding_json(
    event_type: str, *, event_id: str | None = None, corp_id: str = "dingb3c0d8e4f7a2965c", **fields: Any
) -> str:
    doc: dict[str, Any] = {"EventType": event_type, "CorpId": corp_id, "EventTime": 1700000000000}
    if event_id is not None:
        doc["eventId"] = event_id
    doc.update(fields)
    return orjson.dumps(doc).decode()


def ids(rows: Iterable[asyncpg.Record], key: str = "user_id") -> list[str]:
    return sorted(r[key] for r in rows)


async def until(check: Callable[[], Awaitable[bool]], within: float = 2.0) -> float:
    """Poll ``check`` until it holds and return the seconds that took; fail after ``within`` seconds."""
    started = time.perf_counter()
    for _ in itertools.count():
        if await check():
            return time.perf_counter() - started
        if time.perf_counter() - started > within:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.003)
    raise AssertionError("unreachable")


# -- suites ----------------------------------------------------------------------------------------

SUITE = SuiteAuth(
    name="Suite",
    title="Suite",
    suite_id="ww4asffe99e54c0f4c",
    suite_secret=Secret("suite-secret"),
    token=Secret("token"),
    aes_key=Secret("a" * 43),
    provider_corp_id="wwprovider0000001",
)
