"""One captured-event case: its data file and sidecar, the simulator and app dir it needs, and its seeded state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg

from handlers.config import AppConfig, CorpConfig, DingTalkCorp, WecomInnerCorp, WecomProxyCorp
from handlers.events.parse import parse_dingtalk
from handlers.model import Department, Member, Membership
from handlers.store import credentials
from handlers.store.corps import ensure_corp
from handlers.store.directory import Directory, Source
from receiver.testing import (
    SimDept,
    SimMember,
    SimOrg,
    SimRole,
    SimRoleGroup,
    SimTag,
    Simulator,
    write_dingtalk_corp,
    write_proxy_corp,
    write_suite,
    write_wecom_corp,
)
from receiver.testing.harness import callback_keys
from tests.support.paths import CAPTURED

CASES = sorted(p for p in CAPTURED.glob("*/*") if p.suffix in {".xml", ".json"} and not p.name.endswith(".expect.json"))
SUITE_ID = "ww4asffe99e54c0f4c"
WECOM_CORP = "ww5f3a9c2e7b1d4086"
DINGTALK_CORP = "dingb3c0d8e4f7a2965c"
AUTH = "Suite"


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how the platform would push this case: URL path, keys of the app dir, envelope receive-id."""

    path: str
    platform: Literal["wecom", "dingtalk"]
    token: str
    aes_key: str
    receive_id: str


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
    """One data file and its sidecar, set up in the simulator, an app dir and the database."""

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
            return parse_dingtalk(self.plaintext).corp_id or DINGTALK_CORP
        return WECOM_CORP

    def configure(self, sim: Simulator, root: Path) -> None:
        """Register the upstream side with the simulator and write the app dir (callback keys, apiBase) to ``root``."""
        platform = self.spec.get("platform", {})
        if self.platform_name == "dingtalk":
            app = sim.add_dingtalk_app(_sim_org(self._corp_id(), platform), corp_id=self._corp_id())
            write_dingtalk_corp(root, "Sales", corp_id=app.corp_id, app_key=app.app_key, app_secret=app.app_secret,
                                api_base=sim.dingtalk_api_base, token=app.token, aes_key=app.aes_key)  # fmt: skip
            return
        if self.route == "wecom":
            wc = sim.add_wecom_corp(_sim_org(WECOM_CORP, platform), corp_id=WECOM_CORP)
            write_wecom_corp(root, "HQ", corp_id=WECOM_CORP, secret=wc.secret, contact_secret=wc.contact_secret,
                             api_base=sim.wecom_api_base, token=wc.token, aes_key=wc.aes_key,
                             agent_id=str(wc.agent_id))  # fmt: skip
            return
        suite_id = self.spec.get("suite", {}).get("suite_id", SUITE_ID)
        suite = sim.add_wecom_suite(suite_id)
        write_suite(root, AUTH, suite_id=suite_id, suite_secret=suite.suite_secret,
                    provider_corp_id=suite.provider_corp_id, api_base=sim.wecom_api_base, token=suite.token,
                    aes_key=suite.aes_key)  # fmt: skip
        tenants = {t["corp_id"]: t for t in self.spec.get("given", {}).get("tenants", [])}
        for code, grant in self.spec.get("suite_grants", {}).items():
            org = _sim_org(grant["corp_id"], platform, grant.get("corp_name", "模拟企业"))
            permanent = tenants.get(grant["corp_id"], {}).get("permanent_code")
            sim.add_suite_tenant(suite_id, org, corp_id=grant["corp_id"], permanent_code=permanent, agent_id=1000042)
            suite.auth_codes[code] = (grant["corp_id"], sim.clock() + 600)
        tenant_id = self.spec.get("corp", {}).get("corp_id") if self.spec.get("corp") else None
        if tenant_id is not None and tenant_id not in suite.tenants:
            code = tenants.get(tenant_id, {}).get("permanent_code", "pc-default")
            tenants.setdefault(tenant_id, {"corp_id": tenant_id, "permanent_code": code})
            sim.add_suite_tenant(suite_id, _sim_org(tenant_id, platform), corp_id=tenant_id, permanent_code=code,
                                 agent_id=1000042)  # fmt: skip
        self.spec.setdefault("given", {})["tenants"] = list(tenants.values())
        for tenant in self.spec.get("configured_tenants", []):
            write_proxy_corp(root, tenant["name"], corp_id=tenant["corp_id"], auth=AUTH)

    def corp(self, config: AppConfig) -> CorpConfig | None:
        """The config of the corp the event is for: the app dir's, or a suite tenant registered at run time."""
        if self.platform_name == "dingtalk":
            return config.corps["Sales"]
        if self.route == "wecom":
            return config.corps["HQ"]
        spec = self.spec.get("corp")
        if not spec:
            return None
        return WecomProxyCorp(name=spec["name"], title=spec["name"], corp_id=spec["corp_id"], auth=config.auths[AUTH])

    def target(self, config: AppConfig) -> Target:
        """The callback URL of the case's route and the keys the app dir holds for it."""
        if self.platform_name == "dingtalk":
            ding = config.corps["Sales"]
            assert isinstance(ding, DingTalkCorp)
            keys = callback_keys(ding)
            return Target(
                "/callback/dingtalk/Sales", "dingtalk", keys.token.reveal(), keys.aes_key.reveal(), ding.app_key
            )
        if self.route == "wecom":
            inner = config.corps["HQ"]
            assert isinstance(inner, WecomInnerCorp)
            keys = callback_keys(inner)
            return Target("/callback/wecom/HQ", "wecom", keys.token.reveal(), keys.aes_key.reveal(), inner.corp_id)
        auth = config.auths[AUTH]
        token, aes_key = auth.token.reveal(), auth.aes_key.reveal()
        if self.route == "wecom-suite-data":  # a 代开发 app's callback URL: receive-id is the authorized corp
            return Target(f"/callback/wecom-suite/{AUTH}/data", "wecom", token, aes_key, self.spec["corp"]["corp_id"])
        return Target(f"/callback/wecom-suite/{AUTH}", "wecom", token, aes_key, auth.suite_id)

    async def seed(self, pool: asyncpg.Pool, corp: CorpConfig | None, sim: Simulator) -> None:
        given = self.spec.get("given", {})
        async with pool.acquire() as conn, conn.transaction():
            if corp is not None:
                self.corp_row = await ensure_corp(conn, corp)
            for row in given.get("tenants", []):
                await conn.execute(
                    "INSERT INTO suite_tenants (auth_name, corp_id, permanent_code) VALUES ($1, $2, $3)",
                    AUTH, row["corp_id"], row.get("permanent_code"),
                )  # fmt: skip
            for cred in given.get("credentials", []):
                expires = credentials.utcnow() + timedelta(seconds=cred.get("expires_in_seconds", 3600))
                await credentials.store_credential(conn, cred["key"], cred["value"], expires)
            if b"suite_ticket" not in self.plaintext:  # the suite token needs the newest ticket (pushed every 10 min)
                for suite in sim.suites.values():
                    await credentials.store_suite_ticket(conn, suite.suite_id, suite.ticket or "", credentials.utcnow())
            if self.corp_row is not None:
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
