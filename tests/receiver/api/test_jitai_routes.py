"""HTTP parity with the JitAI elements: initCorp, getThirdCorpData, bulkRegister and getAgentId have routes, and
offline / roles / admins take the seeds' list keys (memberIdList, roleIdList) as well as today's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from handlers.config import Secret
from handlers.store import credentials
from receiver.api import get_corp
from tests.receiver.api.test_routes import ORG, ClientFactory, Rig, make_rig, wait_finished


@pytest.fixture
async def rig(aiohttp_client: ClientFactory, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    async for made in make_rig(aiohttp_client, tmp_path, db_url, "s3cret-admin-token"):
        yield made


@pytest.fixture
async def loaded(rig: Rig) -> Rig:
    await (await get_corp(rig.app, "HQ")).bulk_register(ORG)
    return rig


async def test_offline_takes_a_list_under_either_key(loaded: Rig) -> None:
    status, body = await loaded.send("POST", "/api/corps/HQ/offline", {"memberIdList": ["u2", "u3"]})
    assert status == 200
    assert [(m["memberId"], m["status"], m["offlineReason"]) for m in body["items"]] == [
        ("u2", "offline", "operator"),
        ("u3", "offline", "operator"),
    ]
    assert (body["total"], body["nextCursor"]) == (2, None)
    status, body = await loaded.send("POST", "/api/corps/HQ/offline", {"memberIds": ["u4"]})
    assert (status, [m["memberId"] for m in body["items"]]) == (200, ["u4"])
    status, body = await loaded.send("POST", "/api/corps/HQ/offline", {"memberIds": ["u5"], "memberIdList": ["u5"]})
    assert (status, body["field"]) == (400, "memberIdList")
    status, body = await loaded.send("POST", "/api/corps/HQ/offline", {})
    assert (status, body["field"]) == (400, "memberIds")
    status, body = await loaded.send("POST", "/api/corps/HQ/offline", {"memberIdList": ["u5", "ghost"]})
    assert (status, body["ids"]) == (404, ["ghost"])
    assert (await loaded.get("/api/corps/HQ/members/u5"))[1]["status"] == "active"  # nothing changed


async def test_roles_and_admins_take_the_seeds_keys(loaded: Rig) -> None:
    status, body = await loaded.send("PUT", "/api/corps/HQ/members/u2/roles", {"roleIdList": ["editor", "viewer"]})
    assert (status, [r["roleId"] for r in body["items"]]) == (200, ["editor", "viewer"])
    status, body = await loaded.send("PUT", "/api/corps/HQ/members/u2/roles", {"roleIds": [], "roleIdList": []})
    assert (status, body["field"]) == (400, "roleIdList")
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIdList": ["u3"]})
    assert (status, [(a["memberId"], a["source"]) for a in body["items"]]) == (
        200, [("u1", "platform"), ("u3", "local")],
    )  # fmt: skip
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIdList": "u3"})
    assert (status, body["field"]) == (400, "memberIdList")


async def test_init_starts_the_first_sync_then_another(rig: Rig) -> None:
    status, started = await rig.send("POST", "/api/corps/HQ/init")
    assert status == 202
    first = await wait_finished(rig, started["runId"])
    assert (first["trigger"], first["status"]) == ("first", "succeeded")
    assert len((await rig.get("/api/corps/HQ/members"))[1]["items"]) == len(rig.org.members)
    status, again = await rig.send("POST", "/api/corps/HQ/init")
    assert status == 202
    assert (await wait_finished(rig, again["runId"]))["trigger"] == "api"
    status, body = await rig.send("POST", "/api/corps/HQ/init", {"allowDeletes": True})
    assert (status, body["field"]) == (400, "allowDeletes")


async def test_third_data_reads_the_platform_and_stores_nothing(rig: Rig) -> None:
    status, data = await rig.get("/api/corps/HQ/third-data")
    assert status == 200
    assert sorted(u["memberId"] for u in data["userList"]) == sorted(rig.org.members)
    assert data["rootDeptId"] == str(rig.org.visible_root)
    assert await rig.pool.fetchval("SELECT count(*) FROM members") == 0


async def test_bulk_register_writes_the_members_listed_or_the_whole_directory(rig: Rig) -> None:
    chosen = sorted(rig.org.members)[:2]
    status, body = await rig.send("POST", "/api/corps/HQ/bulk-register", {"memberIdList": chosen})
    assert status == 200, body
    assert (body["runId"], body["status"], body["counts"]["members"]["created"]) == (None, "succeeded", 2)
    stored = await rig.pool.fetch("SELECT user_id, local_user FROM members ORDER BY user_id")
    assert [r["user_id"] for r in stored] == chosen
    assert all(r["local_user"] is not None for r in stored)  # registered into the local user pool
    status, body = await rig.send("POST", "/api/corps/HQ/bulk-register")
    assert (status, body["status"]) == (200, "succeeded")
    assert body["runId"] is not None and body["counts"]["members"]["created"] == len(rig.org.members) - 2
    status, body = await rig.send("POST", "/api/corps/HQ/bulk-register", {"memberIds": ["x"], "allowDeletes": True})
    assert (status, body["field"]) == (400, "allowDeletes")
    status, body = await rig.send("POST", "/api/corps/HQ/bulk-register", {"memberIdList": ["ghost"]})
    assert (status, body["ids"]) == (404, ["ghost"])


@pytest.mark.parametrize(
    ("query", "status", "expected"),
    [
        ({"corpId": "wwT1", "suiteId": "dk0001"}, 200, {"corpId": "wwT1", "suiteId": "dk0001", "agentId": "1000009"}),
        ({"corpId": "wwOther", "suiteId": "dk0001"}, 404, {"error": "unknown corp", "ids": ["wwOther"]}),
        ({"corpId": "wwT1", "suiteId": "dk-unknown"}, 404, {"error": "unknown suite", "ids": ["dk-unknown"]}),
        ({"suiteId": "dk0001"}, 400, {"error": "required", "field": "corpId"}),
        ({"corpId": "", "suiteId": "dk0001"}, 400, {"error": "must not be empty", "field": "corpId"}),
    ],
)
async def test_agent_id_of_a_suite_tenant(rig: Rig, query: dict[str, str], status: int, expected: Any) -> None:
    await credentials.store_tenant(rig.pool, "Suite", "wwT1", Secret("perm"), "1000009", {})
    assert await rig.get("/api/agent-id", params=query) == (status, expected)
