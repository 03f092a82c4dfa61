"""Every captured payload in ``tests/events/<platform>/<event>__<case>.(xml|json)``, applied through the inbox
and the worker with real platform clients against the upstream simulator, then checked against its sidecar
``<name>.expect.json``. Adding a case needs no Python.

Sidecar keys (all optional but ``expect``):
  ``route``     inbox route (default ``wecom`` / ``dingtalk``); ``corp``: the corp the event is for
                (null: none, as for suite instructions); ``suite``: ``{"suite_id"}`` of the configured auth
  ``given``     local state before: departments, members (with departments, status, offline_reason),
                tags (users, departments), roles (users), admins, credentials, tenants
  ``platform``  what the platform holds: members, departments, tags, roles (the simulator serves them)
  ``suite_grants``  auth codes the simulator accepts: {code: {corp_id, corp_name}}
  ``configured_tenants``  proxy corps configured in the app dir: [{name, corp_id}]
  ``expect``    status of the inbox row; members / departments / tags / roles (subset of columns; a member's
                ``dept_ids``; ``same_id_as``: same members.id as that given member), absent_*, tag_members,
                tag_departments, role_members, admins, corps, absent_corps, tenants, credentials,
                sync_requested (reason or null), changes ([entity, id, op] of source 'event', in order)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from handlers import credentials
from handlers.corps import (
    AppConfig,
    CallbackKeys,
    CorpConfig,
    DingTalkCorp,
    Secret,
    SuiteAuth,
    WecomInnerCorp,
    WecomProxyCorp,
)
from handlers.directory import Directory, Source
from handlers.events.parse import parse_dingtalk
from handlers.model import Department, Member, Membership
from handlers.registry import ensure_corp
from receiver.testing import SimDept, SimMember, SimOrg, SimRole, SimRoleGroup, SimTag, Simulator, run_simulator
from receiver.worker import build_worker
from tests.handlers.eventkit import FAST, member, push

EVENTS = Path(__file__).resolve().parents[1] / "events"
CASES = sorted(p for p in EVENTS.glob("*/*") if p.suffix in {".xml", ".json"} and not p.name.endswith(".expect.json"))
SUITE_ID = "ww4asffe99e54c0f4c"
WECOM_CORP = "ww5f3a9c2e7b1d4086"
KEYS = CallbackKeys(Secret("token"), Secret("a" * 43), frozenset())


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator() as running:
        yield running


def _sim_org(corp_id: str, platform: dict[str, Any], name: str = "模拟企业") -> SimOrg:
    org = SimOrg(corp_id=corp_id, name=name)
    depts = {d["dept_id"]: d for d in platform.get("departments", [])}
    wanted = {"1"} | set(depts) | {p for d in depts.values() if (p := d.get("parent_id")) not in (None, "0")}
    wanted |= {d for m in platform.get("members", []) for d in m.get("departments", ["1"])}
    for dept_id in sorted(wanted, key=int):
        spec = depts.get(dept_id, {})
        parent = spec.get("parent_id") or ("0" if dept_id == "1" else "1")
        org.put_department(SimDept(int(dept_id), spec.get("name", f"部门{dept_id}"), int(parent), spec.get("order", 0)))
    for m in platform.get("members", []):
        depts_of = [int(d) for d in m.get("departments", ["1"])]
        org.put_member(SimMember(
            userid=m["user_id"], name=m.get("name", m["user_id"]), departments=depts_of, orders=[0] * len(depts_of),
            is_leader=[0] * len(depts_of), main_department=depts_of[0], position=m.get("position", ""),
            unionid=m.get("union_id", ""), job_number=m.get("job_number", ""), work_place=m.get("work_place", ""),
        ))  # fmt: skip
    for t in platform.get("tags", []):
        org.tags[int(t["tag_id"])] = SimTag(int(t["tag_id"]), t["name"])
    groups: dict[str, int] = {}
    for r in platform.get("roles", []):
        group = r.get("group_name", "默认")
        gid = groups.setdefault(group, 900 + len(groups))
        org.role_groups.setdefault(gid, SimRoleGroup(gid, group)).roles.append(int(r["role_id"]))
        org.roles[int(r["role_id"])] = SimRole(int(r["role_id"]), r["name"], gid)
    return org


class Case:
    """One data file and its sidecar, set up in the simulator and the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec: dict[str, Any] = json.loads(path.with_suffix(".expect.json").read_text())
        self.platform_name = path.parent.name
        self.route: str = self.spec.get("route", self.platform_name)
        self.plaintext = path.read_bytes()
        self.corp_row: int | None = None
        self.given_ids: dict[str, int] = {}

    def _corp_id(self) -> str:
        if self.platform_name == "dingtalk":
            return parse_dingtalk(self.plaintext).corp_id or "dingb3c0d8e4f7a2965c"
        return WECOM_CORP

    def configure(self, sim: Simulator) -> tuple[AppConfig, CorpConfig | None, str]:
        """Register the upstream side; return the app config, the event's corp config and the inbox stream."""
        platform = self.spec.get("platform", {})
        corp_spec = self.spec.get("corp", {}) if "corp" in self.spec else {}
        if self.platform_name == "dingtalk":
            app = sim.add_dingtalk_app(_sim_org(self._corp_id(), platform), corp_id=self._corp_id())
            corp: CorpConfig = DingTalkCorp(
                name="Sales", title="Sales", corp_id=app.corp_id, agent_id=str(app.agent_id), app_key=app.app_key,
                app_secret=Secret(app.app_secret), callback=KEYS, api_base=sim.dingtalk_api_base,
            )  # fmt: skip
            return AppConfig(".", {"Sales": corp}, {}), corp, "Sales"
        if self.route == "wecom":
            wc = sim.add_wecom_corp(_sim_org(WECOM_CORP, platform), corp_id=WECOM_CORP)
            corp = WecomInnerCorp(
                name="HQ", title="HQ", corp_id=WECOM_CORP, agent_id=str(wc.agent_id), secret=Secret(wc.secret),
                contact_secret=Secret(wc.contact_secret or ""), callback=KEYS, api_base=sim.wecom_api_base,
            )  # fmt: skip
            return AppConfig(".", {"HQ": corp}, {}), corp, "HQ"
        suite_id = self.spec.get("suite", {}).get("suite_id", SUITE_ID)
        suite = sim.add_wecom_suite(suite_id)
        auth = SuiteAuth(
            name="Suite", title="Suite", suite_id=suite_id, suite_secret=Secret(suite.suite_secret),
            token=Secret(suite.token), aes_key=Secret(suite.aes_key), provider_corp_id=suite.provider_corp_id,
            api_base=sim.wecom_api_base,
        )  # fmt: skip
        tenants = {t["corp_id"]: t for t in self.spec.get("given", {}).get("tenants", [])}
        for code, grant in self.spec.get("suite_grants", {}).items():
            org = _sim_org(grant["corp_id"], platform, grant.get("corp_name", "模拟企业"))
            permanent = tenants.get(grant["corp_id"], {}).get("permanent_code")
            sim.add_suite_tenant(suite_id, org, corp_id=grant["corp_id"], permanent_code=permanent, agent_id=1000042)
            suite.auth_codes[code] = (grant["corp_id"], sim.clock() + 600)
        tenant_corp = None
        if corp_spec:
            tenant_id = corp_spec["corp_id"]
            if tenant_id not in suite.tenants:
                code = tenants.get(tenant_id, {}).get("permanent_code", "pc-default")
                tenants.setdefault(tenant_id, {"corp_id": tenant_id, "permanent_code": code})
                sim.add_suite_tenant(suite_id, _sim_org(tenant_id, platform), corp_id=tenant_id, permanent_code=code,
                                     agent_id=1000042)  # fmt: skip
            tenant_corp = WecomProxyCorp(name=corp_spec["name"], title=corp_spec["name"], corp_id=tenant_id, auth=auth)
        self.spec.setdefault("given", {})["tenants"] = list(tenants.values())
        configured = {
            c["name"]: WecomProxyCorp(name=c["name"], title=c["name"], corp_id=c["corp_id"], auth=auth)
            for c in self.spec.get("configured_tenants", [])
        }
        return AppConfig(".", configured, {"Suite": auth}), tenant_corp, "suite:Suite"

    async def seed(self, pool: asyncpg.Pool, corp: CorpConfig | None, sim: Simulator) -> None:
        given = self.spec.get("given", {})
        async with pool.acquire() as conn, conn.transaction():
            if corp is not None:
                self.corp_row = await ensure_corp(conn, corp)
            for row in given.get("tenants", []):
                await conn.execute(
                    "INSERT INTO suite_tenants (auth_name, corp_id, permanent_code) VALUES ('Suite', $1, $2)",
                    row["corp_id"], row.get("permanent_code"),
                )  # fmt: skip
            for cred in given.get("credentials", []):
                expires = credentials.utcnow() + timedelta(seconds=cred.get("expires_in_seconds", 3600))
                await credentials.store_credential(conn, cred["key"], cred["value"], expires)
            if b"suite_ticket" not in self.plaintext:  # the suite token needs the newest ticket (pushed every 10 min)
                for suite in sim.suites.values():
                    await credentials.store_suite_ticket(conn, suite.suite_id, suite.ticket or "", credentials.utcnow())
            if self.corp_row is None:
                return
            await self._seed_directory(conn, self.corp_row, given)

    async def _seed_directory(self, conn: asyncpg.Connection, corp: int, given: dict[str, Any]) -> None:
        directory = Directory(conn, corp, Source("api"))
        for d in given.get("departments", []):
            await directory.upsert_department(Department(d["dept_id"], d.get("parent_id"), name=d.get("name")))
        for m in given.get("members", []):
            depts = m.get("departments")
            await directory.upsert_member(Member(
                m["user_id"], name=m.get("name"), email=m.get("email"), mobile=m.get("mobile"),
                main_dept_id=m.get("main_dept_id"), job_number=m.get("job_number"),
                departments=None if depts is None else tuple(Membership(x) for x in depts),
            ))  # fmt: skip
            if m.get("status") == "offline":
                await conn.execute(
                    "UPDATE members SET status = 'offline', offline_reason = $3, offline_at = now()"
                    " WHERE corp = $1 AND user_id = $2", corp, m["user_id"], m.get("offline_reason", "platform"),
                )  # fmt: skip
            self.given_ids[m["user_id"]] = await conn.fetchval(
                "SELECT id FROM members WHERE corp = $1 AND user_id = $2", corp, m["user_id"]
            )
        for t in given.get("tags", []):
            await directory.upsert_tag(t["tag_id"], t.get("name"))
            await directory.change_tag_links(
                t["tag_id"], add_users=t.get("users", []), add_depts=t.get("departments", [])
            )
        for r in given.get("roles", []):
            await directory.upsert_role(r["role_id"], r.get("name"))
            await directory.change_role_members(r["role_id"], add=r.get("users", []))
        for user_id in given.get("admins", []):
            await directory.add_admin(user_id)


async def _check(pool: asyncpg.Pool, case: Case, inbox_id: int, sim: Simulator) -> None:
    expect, corp = case.spec["expect"], case.corp_row
    row = await pool.fetchrow("SELECT status, last_error FROM inbox WHERE id = $1", inbox_id)
    assert (row["status"], row["last_error"]) == (expect.get("status", "done"), None)
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
async def test_captured_event(path: Path, pool: asyncpg.Pool, sim: Simulator) -> None:
    case = Case(path)
    config, corp, stream = case.configure(sim)
    await case.seed(pool, corp, sim)
    corp_row = case.corp_row if case.route != "wecom-suite" else None  # the intake leaves suite rows corp-less
    inbox_id = await push(pool, case.plaintext, stream=stream, platform="dingtalk" if case.platform_name == "dingtalk"
                          else "wecom", route=case.route, corp=corp_row)  # fmt: skip
    assert inbox_id is not None
    async with aiohttp.ClientSession() as session:
        await build_worker(pool, config, session, FAST).run_until_idle()
    await _check(pool, case, inbox_id, sim)


def test_every_case_has_a_sidecar_and_a_known_shape() -> None:
    assert len(CASES) >= 50
    for path in CASES:
        spec = json.loads(path.with_suffix(".expect.json").read_text())
        assert "expect" in spec, path.name
        assert "__" in path.stem, path.name
