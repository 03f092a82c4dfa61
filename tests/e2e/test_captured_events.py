"""Every captured payload in ``tests/events/<platform>/<event>__<case>.(xml|json)``, pushed through the whole app
as the platform would (encrypted and signed with the keys of an app dir, POSTed to the case's callback URL) and
applied by the app's worker with real platform clients against the upstream simulator, then checked against its
sidecar ``<name>.expect.json``. Adding a case needs no Python.

Sidecar keys (all optional but ``expect``):
  ``route``     callback route: ``wecom`` (``/callback/wecom/HQ``; the default for WeCom), ``wecom-suite`` (the
                suite instruction URL, receive-id the suite id), ``wecom-suite-data`` (a 代开发 app's callback URL,
                receive-id the tenant's corpid), ``dingtalk`` (``/callback/dingtalk/Sales``; the default for DingTalk)
  ``corp``      the suite tenant the event is for (null: none, as for suite instructions); ``suite``: ``{"suite_id"}``
                of the configured auth
  ``given``     local state before: departments, members (with departments, status, offline_reason),
                tags (users, departments), roles (users), admins, credentials, tenants
  ``platform``  what the platform holds: members, departments, tags, roles (the simulator serves them)
  ``suite_grants``  auth codes the simulator accepts: {code: {corp_id, corp_name}}
  ``configured_tenants``  proxy corps configured in the app dir: [{name, corp_id}]
  ``expect``    ``stored`` (default true; false: the route answers the callback itself and writes no inbox row),
                status of the inbox row; members / departments / tags / roles (subset of columns; a member's
                ``dept_ids``; ``same_id_as``: same members.id as that given member), absent_*, tag_members,
                tag_departments, role_members, admins, corps, absent_corps, tenants, credentials,
                sync_requested (reason or null), changes ([entity, id, op] of source 'event', in order)
Whatever the sidecar says, every changed field of every change event must carry its before and after values, and
they must differ.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import POOL, WORKER
from receiver.settings import Settings
from receiver.testing import Simulator, run_simulator
from tests.support.captured import CASES, Case
from tests.support.eventkit import member
from tests.support.feed import unchanged_fields


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator() as running:
        yield running


async def _check(pool: asyncpg.Pool, case: Case, sim: Simulator) -> None:
    expect, corp = case.spec["expect"], case.corp_row
    rows = await pool.fetch("SELECT route, status, last_error FROM inbox")
    if expect.get("stored", True):
        assert [tuple(r) for r in rows] == [(case.route, expect.get("status", "done"), None)]
    else:
        assert rows == []
    if corp is not None:
        await _check_directory(pool, case, corp, expect)
        if "sync_requested" in expect:
            reason = await pool.fetchval("SELECT sync_request_reason FROM corps WHERE id = $1", corp)
            assert reason == expect["sync_requested"]
        if "changes" in expect:
            rows = await pool.fetch(
                "SELECT entity, entity_id, op FROM change_log WHERE corp = $1 AND source = 'event' ORDER BY id", corp
            )
            assert [[r["entity"], r["entity_id"], r["op"]] for r in rows] == expect["changes"]
    for want in expect.get("corps", []):
        got = await pool.fetchrow(
            "SELECT *, sync_request_reason AS sync_requested FROM corps WHERE name = $1", want["name"]
        )
        assert got is not None, want["name"]
        assert {k: got[k] for k in want} == want
    for name in expect.get("absent_corps", []):
        assert await pool.fetchval("SELECT count(*) FROM corps WHERE name = $1", name) == 0
    for want in expect.get("tenants", []):
        got = await pool.fetchrow("SELECT * FROM suite_tenants WHERE corp_id = $1", want["corp_id"])
        assert got is not None
        for key, value in want.items():
            if value == "$upstream":
                value = next(
                    t for s in sim.suites.values() for t in s.tenants.values() if t.corp_id == want["corp_id"]
                ).permanent_code
            assert got[key] == value, key
    for key, value in expect.get("credentials", {}).items():
        assert await pool.fetchval("SELECT value FROM credentials WHERE key = $1", key) == value
    assert await unchanged_fields(pool) == []  # every changed field of every event says a different before and after


async def _check_directory(pool: asyncpg.Pool, case: Case, corp: int, expect: dict[str, Any]) -> None:
    for want in expect.get("members", []):
        got = await member(pool, corp, want["user_id"])
        assert got is not None, want["user_id"]
        for key, value in want.items():
            if key == "same_id_as":
                assert got["id"] == case.given_ids[value]
            else:
                assert got[key] == value, key
    for user_id in expect.get("absent_members", []):
        assert await member(pool, corp, user_id) is None, user_id
    for want in expect.get("departments", []):
        got = await pool.fetchrow("SELECT * FROM departments WHERE corp = $1 AND dept_id = $2", corp, want["dept_id"])
        assert got is not None and {k: got[k] for k in want} == want
    for dept_id in expect.get("absent_departments", []):
        assert (
            await pool.fetchval("SELECT count(*) FROM departments WHERE corp = $1 AND dept_id = $2", corp, dept_id) == 0
        )
    for table, key, value_sql in (
        ("tag_members", "tag_id", "(SELECT user_id FROM members WHERE id = member)"),
        ("tag_departments", "tag_id", "dept_id"),
        ("role_members", "role_id", "(SELECT user_id FROM members WHERE id = member)"),
    ):
        for owner, values in expect.get(table, {}).items():
            rows = await pool.fetch(f"SELECT {value_sql} AS v FROM {table} WHERE corp = $1 AND {key} = $2", corp, owner)  # noqa: S608 - fixed names
            assert sorted(r["v"] for r in rows) == sorted(values), (table, owner)
    for table, key in (("tags", "tag_id"), ("roles", "role_id")):
        for want in expect.get(table, []):
            got = await pool.fetchrow(f"SELECT * FROM {table} WHERE corp = $1 AND {key} = $2", corp, want[key])  # noqa: S608
            assert got is not None and {k: got[k] for k in want} == want
        for absent in expect.get(f"absent_{table}", []):
            sql = f"SELECT count(*) FROM {table} WHERE corp = $1 AND {key} = $2"  # noqa: S608 - fixed names
            assert await pool.fetchval(sql, corp, absent) == 0
    if "admins" in expect:
        rows = await pool.fetch(
            "SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member WHERE a.corp = $1", corp
        )
        assert sorted(r["user_id"] for r in rows) == sorted(expect["admins"])


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_captured_event(
    path: Path, tmp_path: Path, db_url: str, sim: Simulator, aiohttp_client: Callable[..., Any]
) -> None:
    case = Case(path)
    case.configure(sim, tmp_path)
    config = load_app_dir(tmp_path, {})
    settings = Settings(app_dir=tmp_path, run_worker=False, run_scheduler=False)  # the test drives the worker
    client: TestClient[Any, Any] = await aiohttp_client(create_app(settings, config, db_url))
    app = client.app
    await case.seed(app[POOL], case.corp(config), sim)
    target = case.target(config)
    pushed = await sim.push(
        str(client.make_url(target.path)), case.plaintext, platform=target.platform, token=target.token,
        aes_key=target.aes_key, receive_id=target.receive_id, session=client.session, record_failure=False,
    )  # fmt: skip
    assert (pushed.status, pushed.delivered) == (200, True), pushed.body
    await app[WORKER].run_until_idle()
    await _check(app[POOL], case, sim)


def test_every_case_has_a_sidecar_and_a_known_shape() -> None:
    assert len(CASES) >= 50
    for path in CASES:
        spec = json.loads(path.with_suffix(".expect.json").read_text())
        assert "expect" in spec, path.name
        assert "__" in path.stem, path.name
        assert spec.get("route", path.parent.name) in {"wecom", "wecom-suite", "wecom-suite-data", "dingtalk"}
