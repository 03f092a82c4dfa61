"""The /api routes through the real app (create_app) on real PostgreSQL; the platform is the simulator."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from handlers.config import Secret
from handlers.model import Admin, Department, Member, Membership, Role, Snapshot
from handlers.store import credentials
from handlers.store.locks import FULL_SYNC_LOCK
from receiver.api import get_corp
from receiver.api.openapi import SPEC
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import POOL
from receiver.settings import Settings
from receiver.testing import SimOrg, Simulator, generate_org, run_simulator

TOKEN = "s3cret-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AES = "b" * 43

ClientFactory = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]

ORG = Snapshot(
    root_dept_id="100",
    departments=(Department("100", "0", "Root"), Department("1", "100", "One"), Department("2", "100", "Two")),
    members=tuple(
        Member(f"u{i}", name=f"User {i}", departments=(Membership("1" if i % 2 else "2"),)) for i in range(1, 6)
    ),
    roles=(Role("r-platform", "Platform"),),
    role_members=(("r-platform", "u1"),),
    admins=(Admin("u1", 1),),
)


def write(root: Path, rel: str, doc: dict[str, Any]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc), encoding="utf-8")


def app_dir(root: Path, sim: Simulator, org: SimOrg) -> Path:
    account = sim.add_wecom_corp(org, contact_new_ip=False, privacy=False)
    write(root, "corps/HQ/e.json", {"title": "HQ", "type": "corps.QywxInnerType"})
    write(root, "corps/HQ/HQ.json", {
        "corpId": account.corp_id, "agentId": str(account.agent_id), "secret": account.secret,
        "contactSecret": account.contact_secret, "apiBase": sim.wecom_api_base,
        "callback": {"token": account.token, "encodingAESKey": account.aes_key},
    })  # fmt: skip
    write(root, "corps/Sales/e.json", {"title": "Sales", "type": "corps.DDInnerType"})
    write(root, "corps/Sales/Sales.json", {
        "authConfig": {"corpId": "dingSales", "agentId": "2001", "appKey": "dingkey", "appSecret": "sales-secret-xyz"},
        "callback": {"token": "tok", "aesKey": AES},
    })  # fmt: skip
    write(root, "auths/Suite/e.json", {"title": "Suite", "type": "auths.loginTypes.QywxProxyType"})
    write(root, "auths/Suite/Suite.json", {
        "suiteId": "dk0001", "suiteSecret": "suite-secret-xyz", "token": "tok", "encodingAESKey": AES,
    })  # fmt: skip
    write(root, "corps/T1/e.json", {"title": "T1", "type": "corps.QywxProxyType"})
    write(root, "corps/T1/T1.json", {"corpId": "wwT1", "authFullName": "auths.Suite"})
    return root


@dataclass
class Rig:
    client: TestClient[Any, Any]
    app: web.Application
    sim: Simulator
    org: SimOrg

    @property
    def pool(self) -> asyncpg.Pool:
        return self.app[POOL]

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        response = await self.client.get(path, headers=kwargs.pop("headers", AUTH), **kwargs)
        return response.status, await response.json()

    async def send(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        response = await self.client.request(method, path, data=data, headers=kwargs.pop("headers", AUTH), **kwargs)
        return response.status, await response.json()


@web.middleware
async def peer_from_header(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Tests only: act as if the TCP peer were X-Test-Peer."""
    peer = request.headers.get("X-Test-Peer")
    return await handler(request.clone(remote=peer) if peer else request)


async def make_rig(aiohttp_client: ClientFactory, tmp_path: Path, db_url: str, token: str | None) -> AsyncIterator[Rig]:
    sim = Simulator(seed=11)
    org = generate_org(11, members=9, departments=3, depth=2, tags=1)
    async with run_simulator(sim):
        config = load_app_dir(app_dir(tmp_path, sim, org), {})
        settings = Settings(admin_token=Secret(token) if token else None, run_scheduler=False, run_worker=False)
        app = create_app(settings, config, db_url)
        app.middlewares.append(peer_from_header)
        client = await aiohttp_client(app)
        yield Rig(client, app, sim, org)
        await client.close()


@pytest.fixture
async def rig(aiohttp_client: ClientFactory, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    async for made in make_rig(aiohttp_client, tmp_path, db_url, TOKEN):
        yield made


@pytest.fixture
async def loaded(rig: Rig) -> Rig:
    await (await get_corp(rig.app, "HQ")).bulk_register(ORG)
    return rig


# -- authorization ---------------------------------------------------------------------------------

ROUTES = sorted((method.upper(), path) for path, ops in SPEC["paths"].items() for method in ops)


def concrete(path: str) -> str:
    return path.format(corp="HQ", deptId="1", memberId="u1", runId="1", name="Hook")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_wants_the_bearer_token(rig: Rig, method: str, path: str) -> None:
    status, body = await rig.send(method, concrete(path), headers={})
    assert (status, body["error"]) == (401, "missing bearer token")
    status, body = await rig.send(method, concrete(path), headers={"Authorization": "Bearer nope"})
    assert (status, body["error"]) == (401, "wrong bearer token")


async def test_a_wrong_scheme_is_refused_with_a_challenge(rig: Rig) -> None:
    response = await rig.client.get("/api/corps", headers={"Authorization": f"Basic {TOKEN}"})
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_token_that_is_not_utf8_is_refused_not_an_error(rig: Rig) -> None:
    # aiohttp's client writes headers as UTF-8: the bytes go on a connection of our own
    reader, writer = await asyncio.open_connection(rig.client.host, rig.client.port)
    writer.write(
        b"GET /api/corps HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    assert answer.split(b"\r\n", 1)[0] == b"HTTP/1.1 401 Unauthorized"
    assert b"wrong bearer token" in answer


async def test_the_right_token_opens_the_api_from_anywhere(rig: Rig) -> None:
    status, _ = await rig.get("/api/corps", headers={**AUTH, "X-Test-Peer": "203.0.113.9"})
    assert status == 200


async def test_without_a_token_only_loopback_is_answered(
    aiohttp_client: ClientFactory, tmp_path: Path, db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corpsync.api")
    async for rig in make_rig(aiohttp_client, tmp_path, db_url, None):
        assert [r for r in caplog.records if getattr(r, "action", None) == "api_loopback_only"] != []
        assert (await rig.get("/api/corps", headers={}))[0] == 200
        assert (await rig.get("/api/corps", headers={"X-Test-Peer": "::1"}))[0] == 200
        assert (await rig.get("/api/corps", headers={"X-Test-Peer": "::ffff:127.0.0.1"}))[0] == 200
        status, body = await rig.get("/api/corps", headers={"X-Test-Peer": "192.0.2.7"})
        assert status == 403
        assert "CORPSYNC_ADMIN_TOKEN" in body["error"]
        assert (await rig.get("/api/corps", headers={"X-Forwarded-For": "192.0.2.7"}))[0] == 403
    assert len([r for r in caplog.records if getattr(r, "action", None) == "api_loopback_only"]) == 1


@pytest.fixture
async def open_rig(aiohttp_client: ClientFactory, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    """The API without a token: it trusts loopback callers."""
    async for made in make_rig(aiohttp_client, tmp_path, db_url, None):
        await (await get_corp(made.app, "HQ")).bulk_register(ORG)
        yield made


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "evil.example"},
        {"Host": "evil.example:8080"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_without_a_token_a_browser_page_of_another_site_is_refused(
    open_rig: Rig, headers: dict[str, str]
) -> None:
    status, body = await open_rig.get("/api/corps/HQ/members/u2", headers=headers)
    assert status == 403 and "error" in body
    status, _ = await open_rig.send("POST", "/api/corps/HQ/members/u2/offline", "{}", headers={**JSON, **headers})
    assert status == 403
    status, member = await open_rig.get("/api/corps/HQ/members/u2", headers={})
    assert (status, member["status"]) == (200, "active")


async def test_without_a_token_a_write_needs_a_json_body(open_rig: Rig) -> None:
    for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
        status, body = await open_rig.send("POST", "/api/corps/HQ/sync", '{"allowDeletes": true}', headers=headers)
        assert (status, body["error"]) == (415, "a write needs Content-Type: application/json")
    status, _ = await open_rig.send("POST", "/api/corps/HQ/members/u2/offline", headers={})
    assert status == 415
    status, member = await open_rig.get("/api/corps/HQ/members/u2", headers={})
    assert member["status"] == "active"
    status, member = await open_rig.send("POST", "/api/corps/HQ/members/u2/offline", headers=JSON)
    assert (status, member["status"]) == (200, "offline")


async def test_without_a_token_same_origin_and_loopback_names_are_answered(open_rig: Rig) -> None:
    port = open_rig.client.port
    for headers in (
        {"Host": f"localhost:{port}"},
        {"Host": f"[::1]:{port}"},
        {"Origin": f"http://127.0.0.1:{port}"},
        {"Sec-Fetch-Site": "same-origin"},
    ):
        assert (await open_rig.get("/api/corps", headers=headers))[0] == 200


async def test_a_configured_token_is_logged_nowhere_and_loopback_needs_it_too(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    assert (await rig.get("/api/corps", headers={}))[0] == 401
    assert not [r for r in caplog.records if getattr(r, "action", None) == "api_loopback_only"]
    assert TOKEN not in caplog.text


# -- corps -----------------------------------------------------------------------------------------


async def test_corps_list_pages_through_configured_corps_and_tenants(rig: Rig) -> None:
    await rig.pool.execute(
        "INSERT INTO corps (name, platform, type, corp_id, auth_name, title) "
        "VALUES ('Suite/wxT2', 'wecom', 'corps.QywxProxyType', 'wxT2', 'Suite', 'Tenant 2')"
    )
    names: list[str] = []
    cursor = None
    while True:
        status, body = await rig.get("/api/corps", params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        assert (status, body["total"]) == (200, 4)
        names += [c["name"] for c in body["items"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert names == ["HQ", "Sales", "Suite/wxT2", "T1"]
    status, body = await rig.get("/api/corps/Suite%2FwxT2")
    assert (status, body["fullName"], body["authFullName"]) == (200, "corps.Suite/wxT2", "auths.Suite")


async def test_corp_info_masks_secrets(rig: Rig) -> None:
    status, body = await rig.get("/api/corps/Sales")
    assert (status, body["platform"], body["type"]) == (200, "dingtalk", "corps.DDInnerType")
    assert body["authConfig"] == {"corpId": "dingSales", "agentId": "2001", "appKey": "dingkey", "appSecret": "***",
                                  "apiBase": "https://oapi.dingtalk.com"}  # fmt: skip
    assert "secret-xyz" not in json.dumps(body)


@pytest.mark.parametrize("path", ["/api/corps/Nope", "/api/corps/Nope/depts", "/api/corps/Nope/members/u1"])
async def test_an_unknown_corp_is_a_json_404(rig: Rig, path: str) -> None:
    status, body = await rig.get(path)
    assert (status, body) == (404, {"error": "unknown corp", "corp": "Nope"})


async def test_what_no_api_route_takes_is_a_json_404_or_405(rig: Rig) -> None:
    status, body = await rig.get("/api/no/such/route")
    assert (status, body) == (404, {"error": "not found"})
    response = await rig.client.delete("/api/corps", headers=AUTH)
    assert (response.status, await response.json()) == (405, {"error": "method not allowed"})
    assert set(response.headers["Allow"].split(",")) >= {"GET"}
    assert "DELETE" not in response.headers["Allow"]


# aiohttp's client advises against a large raw-bytes body; this one is large on purpose.
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_an_oversized_api_body_is_a_json_413(rig: Rig) -> None:
    status, body = await rig.send("PUT", "/api/corps/HQ/members/u1/roles", b"[" + b" " * (2 * 1024 * 1024) + b"]")
    assert (status, body) == (413, {"error": "request entity too large"})


# -- departments -----------------------------------------------------------------------------------


async def test_root_dept_and_departments(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/root-dept")
    assert (status, body["deptId"], body["corpFullName"]) == (200, "100", "corps.HQ")
    status, first = await loaded.get("/api/corps/HQ/depts", params={"limit": 2})
    assert ([d["deptId"] for d in first["items"]], first["total"]) == (["1", "2"], 3)
    status, rest = await loaded.get("/api/corps/HQ/depts", params={"limit": 2, "cursor": first["nextCursor"]})
    assert ([d["deptId"] for d in rest["items"]], rest["nextCursor"]) == (["100"], None)
    status, body = await loaded.get("/api/corps/HQ/depts/2")
    assert (status, body["parentId"]) == (200, "100")
    status, body = await loaded.get("/api/corps/HQ/depts/404")
    assert (status, body) == (404, {"error": "unknown department", "ids": ["404"]})


async def test_root_dept_of_a_never_synced_corp_whose_platform_cannot_answer_is_404_saying_why(rig: Rig) -> None:
    status, body = await rig.get("/api/corps/Sales/root-dept")
    assert (status, body["ids"]) == (404, ["root"])
    assert body["error"].startswith("no root department: none is stored yet and the platform could not give it (")


# -- members ---------------------------------------------------------------------------------------


async def test_members_page_across_cursors_and_filter(loaded: Rig) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        status, body = await loaded.get("/api/corps/HQ/members", params=params)
        assert (status, body["total"]) == (200, 5)
        seen += [m["memberId"] for m in body["items"]]
        if body["nextCursor"] is None:
            break
        params["cursor"] = body["nextCursor"]
    assert seen == ["u1", "u2", "u3", "u4", "u5"]
    status, body = await loaded.get("/api/corps/HQ/members", params={"deptId": "2"})
    assert [m["memberId"] for m in body["items"]] == ["u2", "u4"]
    await loaded.send("POST", "/api/corps/HQ/members/u3/offline")
    status, body = await loaded.get("/api/corps/HQ/members", params={"status": "offline"})
    assert ([m["memberId"] for m in body["items"]], body["total"]) == (["u3"], 1)
    status, body = await loaded.get("/api/corps/HQ/members", params={"status": "active", "deptId": "1"})
    assert [m["memberId"] for m in body["items"]] == ["u1", "u5"]


async def test_members_updated_since(loaded: Rig) -> None:
    await loaded.pool.execute("UPDATE members SET updated_at = '2020-01-01T00:00:00Z' WHERE user_id <> 'u2'")
    status, body = await loaded.get("/api/corps/HQ/members", params={"updatedSince": "2021-06-01T00:00:00Z"})
    assert (status, [m["memberId"] for m in body["items"]]) == (200, ["u2"])
    status, body = await loaded.get("/api/corps/HQ/members", params={"updatedSince": "2019-12-31T23:00:00+08:00"})
    assert body["total"] == 5
    status, body = await loaded.get("/api/corps/HQ/members?updatedSince=2020-01-01T08:00:01+08:00")  # + unencoded
    assert (status, body["total"]) == (200, 1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"cursor": ""}, "cursor"),
        ({"status": "left"}, "status"),
        ({"deptId": ""}, "deptId"),
        ({"updatedSince": "yesterday"}, "updatedSince"),
        ({"state": "active"}, "state"),
    ],
)
async def test_bad_member_query_is_a_400_naming_the_field(loaded: Rig, params: dict[str, str], field: str) -> None:
    status, body = await loaded.get("/api/corps/HQ/members", params=params)
    assert (status, body["field"]) == (400, field)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/corps/HQ/members/u%001", {}),
        ("/api/corps/HQ/depts/1%00", {}),
        ("/api/corps/HQ/members/u%001/roles", {}),
        ("/api/corps/HQ/members", {"deptId": "1\x00"}),
        ("/api/corps/HQ/members", {"cursor": "a\x00b"}),
        ("/api/corps/HQ/sync-runs", {"cursor": "\x00"}),
    ],
)
async def test_a_nul_in_any_id_cursor_or_filter_is_a_400(loaded: Rig, path: str, params: dict[str, str]) -> None:
    status, body = await loaded.get(path, params=params)
    assert status == 400 and "error" in body


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
async def test_an_updated_since_beyond_what_the_database_holds_is_a_400(loaded: Rig, since: str) -> None:
    status, body = await loaded.get("/api/corps/HQ/members", params={"updatedSince": since})
    assert (status, body["field"]) == (400, "updatedSince")


async def test_an_id_list_is_bounded_and_checked_in_one_pass(loaded: Rig) -> None:
    too_many = [f"u{i}" for i in range(10_001)]
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIds": too_many})
    assert (status, body["field"]) == (400, "memberIds")
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIds": ["u3", "u\x004"]})
    assert (status, body["field"]) == (400, "memberIds")
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIds": ["u3"] * 10_000})
    assert (status, [a["memberId"] for a in body["items"]]) == (200, ["u1", "u3"])


async def test_a_limit_of_a_thousand_is_allowed(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/depts", params={"limit": "1000"})
    assert (status, body["nextCursor"]) == (200, None)


async def test_a_cursor_of_another_list_is_refused(loaded: Rig) -> None:
    _, depts = await loaded.get("/api/corps/HQ/depts", params={"limit": 1})
    status, body = await loaded.get("/api/corps/HQ/members", params={"cursor": depts["nextCursor"]})
    assert (status, body["field"]) == (400, "cursor")


async def test_member_by_id(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/members/u2")
    assert (status, body["memberId"], body["deptIds"], body["status"]) == (200, "u2", ["2"], "active")
    status, body = await loaded.get("/api/corps/HQ/members/ghost")
    assert (status, body) == (404, {"error": "unknown member", "ids": ["ghost"]})


# -- writes ----------------------------------------------------------------------------------------


async def test_offline_member_is_local_and_logged_as_api(loaded: Rig) -> None:
    calls = sum(loaded.sim.calls.values())
    status, body = await loaded.send("POST", "/api/corps/HQ/members/u2/offline")
    assert (status, body["status"], body["offlineReason"]) == (200, "offline", "operator")
    assert sum(loaded.sim.calls.values()) == calls  # the platform was not called
    row = await loaded.pool.fetchrow("SELECT entity, entity_id, op, source FROM change_log WHERE source = 'api'")
    assert tuple(row) == ("member", "u2", "offline", "api")
    status, body = await loaded.send("POST", "/api/corps/HQ/members/ghost/offline")
    assert status == 404
    status, body = await loaded.send("POST", "/api/corps/HQ/members/u2/offline", {"why": "x"})
    assert (status, body["field"]) == (400, "why")


async def test_roles_are_replaced_and_read_back(loaded: Rig) -> None:
    status, body = await loaded.send("PUT", "/api/corps/HQ/members/u1/roles", {"roleIds": ["editor"]})
    assert status == 200
    assert [(r["roleId"], r["source"]) for r in body["items"]] == [("editor", "local")]  # the roles it set
    assert (body["total"], body["nextCursor"]) == (1, None)
    status, got = await loaded.get("/api/corps/HQ/members/u1/roles")
    assert status == 200
    assert [(r["roleId"], r["source"]) for r in got["items"]] == [("editor", "local"), ("r-platform", "platform")]
    assert got["items"][0] == body["items"][0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ("", "body"),
        ([], "body"),
        ({}, "roleIds"),
        ({"roleIds": "editor"}, "roleIds"),
        ({"roleIds": [1]}, "roleIds"),
        ({"roleIds": ["r-platform"]}, "roleIds"),
        ({"roleIds": [], "extra": 1}, "extra"),
    ],
)
async def test_bad_role_bodies_are_a_400_naming_the_field(loaded: Rig, body: Any, field: str) -> None:
    status, answer = await loaded.send("PUT", "/api/corps/HQ/members/u1/roles", body)
    assert (status, answer["field"]) == (400, field)


async def test_admins_are_replaced_with_put(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/admins")
    assert [(a["memberId"], a["source"]) for a in body["items"]] == [("u1", "platform")]
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIds": ["u3", "u4"]})
    assert (status, [(a["memberId"], a["source"]) for a in body["items"]]) == (
        200, [("u1", "platform"), ("u3", "local"), ("u4", "local")],
    )  # fmt: skip
    status, first = await loaded.get("/api/corps/HQ/admins", params={"limit": 2})
    assert (first["total"], len(first["items"])) == (3, 2)
    status, rest = await loaded.get("/api/corps/HQ/admins", params={"limit": 2, "cursor": first["nextCursor"]})
    assert [a["memberId"] for a in rest["items"]] == ["u4"]
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"memberIds": ["u3", "ghost"]})
    assert (status, body["ids"]) == (404, ["ghost"])
    status, body = await loaded.send("PUT", "/api/corps/HQ/admins", {"members": []})
    assert (status, body["field"]) == (400, "members")


async def test_signature_round_trip(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/members/u2/signature")
    assert (status, body) == (200, {"memberId": "u2", "signature": None, "updatedAt": None})
    url = "https://example.com/u2.png"
    status, body = await loaded.send("PUT", "/api/corps/HQ/members/u2/signature", {"signature": url})
    assert (status, body["signature"]) == (200, url)
    assert (await loaded.get("/api/corps/HQ/members/u2/signature"))[1]["signature"] == url
    status, body = await loaded.send("PUT", "/api/corps/HQ/members/u2/signature", {"signature": 5})
    assert (status, body["field"]) == (400, "signature")
    assert (await loaded.get("/api/corps/HQ/members/ghost/signature"))[0] == 404


async def test_local_data_holds_the_whole_directory(loaded: Rig) -> None:
    status, body = await loaded.get("/api/corps/HQ/local-data")
    assert status == 200
    assert (body["corpFullName"], body["rootDeptId"], len(body["userList"]), len(body["deptList"])) == (
        "corps.HQ", "100", 5, 3,
    )  # fmt: skip
    assert [r["roleId"] for r in body["roleList"]] == ["r-platform"]


# -- full sync -------------------------------------------------------------------------------------


async def wait_finished(rig: Rig, run_id: str) -> dict[str, Any]:
    for _ in range(400):
        status, run = await rig.get(f"/api/corps/HQ/sync-runs/{run_id}")
        assert status == 200
        if run["status"] != "running":
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError("the sync did not finish")


async def test_post_sync_starts_a_run_and_sync_runs_record_it(rig: Rig) -> None:
    response = await rig.client.post("/api/corps/HQ/sync", headers=AUTH)
    body = await response.json()
    assert (response.status, body["alreadyRunning"]) == (202, False)
    assert response.headers["Location"] == f"/api/corps/HQ/sync-runs/{body['runId']}"
    assert body["run"]["trigger"] == "api"
    run = await wait_finished(rig, body["runId"])
    assert run["status"] == "succeeded"
    assert run["counts"]["members"]["created"] == len(rig.org.members)
    _, members = await rig.get("/api/corps/HQ/members")
    assert members["total"] == len(rig.org.members)
    status, runs = await rig.get("/api/corps/HQ/sync-runs")
    assert (status, [r["runId"] for r in runs["items"]], runs["total"]) == (200, [body["runId"]], 1)


async def test_two_posts_share_one_run(rig: Rig) -> None:
    rig.sim.latency = 0.2
    first, second = await asyncio.gather(
        rig.send("POST", "/api/corps/HQ/sync", {"allowDeletes": False}), rig.send("POST", "/api/corps/HQ/sync")
    )
    assert first[0] == second[0] == 202
    assert first[1]["runId"] == second[1]["runId"]
    assert sorted([first[1]["alreadyRunning"], second[1]["alreadyRunning"]]) == [False, True]
    rig.sim.latency = 0.0
    await wait_finished(rig, first[1]["runId"])


async def test_concurrent_posts_over_three_processes_share_one_run(
    rig: Rig, aiohttp_client: ClientFactory, tmp_path: Path, db_url: str
) -> None:
    settings = Settings(admin_token=Secret(TOKEN), run_scheduler=False, run_worker=False)
    config = load_app_dir(tmp_path, {})
    others = [await aiohttp_client(create_app(settings, config, db_url)) for _ in range(2)]
    rig.sim.latency = 0.3  # the sync takes a while: every post arrives while it runs

    async def post(client: TestClient[Any, Any]) -> tuple[int, Any]:
        response = await client.post("/api/corps/HQ/sync", json={}, headers=AUTH)
        return response.status, await response.json()

    answers = await asyncio.gather(*(post(c) for c in (rig.client, *others) for _ in range(10)))
    assert [status for status, _ in answers] == [202] * 30
    assert {body["runId"] for _, body in answers} == {answers[0][1]["runId"]} != {None}
    assert sorted(body["alreadyRunning"] for _, body in answers) == [False] + [True] * 29
    rig.sim.latency = 0.0
    await wait_finished(rig, answers[0][1]["runId"])


async def test_a_sync_running_elsewhere_is_answered_with_that_run(rig: Rig, db_url: str) -> None:
    row = await rig.pool.fetchval("SELECT id FROM corps WHERE name = 'HQ'")
    other = await asyncpg.connect(db_url)  # another process, holding the corp's sync lock
    try:
        await other.execute("SELECT pg_advisory_lock($1::int, $2::int)", FULL_SYNC_LOCK, row)
        run_id = await other.fetchval("INSERT INTO sync_runs (corp, trigger) VALUES ($1, 'schedule') RETURNING id", row)
        status, body = await rig.send("POST", "/api/corps/HQ/sync", {"allowDeletes": True})
        assert (status, body["runId"], body["alreadyRunning"]) == (202, str(run_id), True)
        assert body["run"]["trigger"] == "schedule"
    finally:
        await other.close()


async def test_sync_input_and_unknown_runs(rig: Rig) -> None:
    status, body = await rig.send("POST", "/api/corps/HQ/sync", {"allowDeletes": "yes"})
    assert (status, body["field"]) == (400, "allowDeletes")
    assert (await rig.get("/api/corps/HQ/sync-runs/12345"))[1] == {"error": "unknown sync run", "ids": ["12345"]}
    assert (await rig.get("/api/corps/HQ/sync-runs/abc"))[0] == 404
    status, body = await rig.get("/api/corps/HQ/sync-runs", params={"limit": "5000"})
    assert (status, body["field"]) == (400, "limit")


# -- the OpenAPI document ----------------------------------------------------------------------------


def registered(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path.startswith("/api") and route.method != "HEAD":
            found.append((route.method, path))
    return sorted(found)


def test_every_api_route_is_in_the_openapi_document_and_back(tmp_path: Path) -> None:
    config = load_app_dir(tmp_path, {})
    app = create_app(Settings(run_scheduler=False, run_worker=False), config, "postgresql://unused")
    assert registered(app) == ROUTES
    assert SPEC["openapi"] == "3.1.0"


def resolve(ref: str) -> dict[str, Any]:
    node: Any = SPEC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def test_every_reference_resolves_and_every_path_parameter_is_declared() -> None:
    text = json.dumps(SPEC)
    for ref in {chunk.split('"')[0] for chunk in text.split('"$ref": "')[1:]}:
        resolve(ref)
    for path, ops in SPEC["paths"].items():
        wanted = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for operation in ops.values():
            declared = {
                resolve(p["$ref"])["name"] for p in operation["parameters"] if resolve(p["$ref"])["in"] == "path"
            }
            assert declared == wanted, path


JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}


def conforms(schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """A small JSON-Schema check (the keywords this document uses)."""
    if "$ref" in schema:
        return conforms(resolve(schema["$ref"]), value, where)
    if "oneOf" in schema:
        passing = 0
        for option in schema["oneOf"]:
            try:
                conforms(option, value, where)
                passing += 1
            except AssertionError:
                pass
        assert passing == 1, where
        return None
    kind = "null" if value is None else JSON_TYPES[type(value)]
    allowed = schema.get("type")
    if allowed is not None:
        allowed = [allowed] if isinstance(allowed, str) else allowed
        assert kind in allowed or (kind == "integer" and "number" in allowed), f"{where}: {kind} not in {allowed}"
    if "enum" in schema:
        assert value in schema["enum"], where
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{where}: missing {key}"
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in schema.get("properties", {}):
                conforms(schema["properties"][key], item, f"{where}.{key}")
            elif isinstance(extra, dict):
                conforms(extra, item, f"{where}.{key}")
            else:
                assert extra is not False, f"{where}: unexpected {key}"
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            conforms(schema["items"], item, f"{where}[{i}]")
    return None


async def test_answers_match_the_documented_schemas(loaded: Rig) -> None:
    await loaded.send("PUT", "/api/corps/HQ/members/u1/roles", {"roleIds": ["editor"]})
    await loaded.send("PUT", "/api/corps/HQ/members/u1/signature", {"signature": "https://example.com/s.png"})
    await loaded.send("POST", "/api/corps/HQ/members/u2/offline")
    _, started = await loaded.send("POST", "/api/corps/HQ/sync")
    await wait_finished(loaded, started["runId"])
    await credentials.store_tenant(loaded.pool, "Suite", "wwT1", Secret("perm"), "1000009", {})
    queries = {"/api/agent-id": {"corpId": "wwT1", "suiteId": "dk0001"}}
    for method, path in ROUTES:
        if method != "GET":
            continue
        url = path.format(corp="HQ", deptId="1", memberId="u1", runId=started["runId"])
        status, body = await loaded.get(url, params=queries.get(path, {}))
        assert status == 200, url
        if path != "/api/openapi.json":
            conforms(SPEC["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"], body, url)
    status, body = await loaded.get("/api/corps/HQ/members/ghost")
    conforms(resolve("#/components/schemas/Error"), body)
    conforms(resolve("#/components/schemas/SyncStarted"), started)
    chosen = sorted(loaded.org.members)[:1]
    _, registered = await loaded.send("POST", "/api/corps/HQ/bulk-register", {"memberIdList": chosen})
    conforms(resolve("#/components/schemas/BulkRegistered"), registered)
    _, offlined = await loaded.send("POST", "/api/corps/HQ/offline", {"memberIdList": ["u3"]})
    conforms(resolve("#/components/schemas/MemberList"), offlined)


def test_every_operation_is_filed_under_one_declared_tag_and_every_tag_is_used() -> None:
    declared = [tag["name"] for tag in SPEC["tags"]]
    assert len(declared) == len(set(declared)) and all(tag["description"] for tag in SPEC["tags"])
    used = set()
    for path, ops in SPEC["paths"].items():
        for method, operation in ops.items():
            assert len(operation["tags"]) == 1 and operation["tags"][0] in declared, (method, path)
            used.add(operation["tags"][0])
    assert used == set(declared)
    members = SPEC["paths"]["/api/corps/{corp}/members/{memberId}/roles"]
    assert members["put"]["tags"] == ["members"]
    assert SPEC["paths"]["/api/corps/{corp}/sync-runs"]["get"]["tags"] == ["sync"]
