"""Every Python example of the JitAI seeds (tests/data/jitai/examples: their code verbatim, with where it is from)
runs with ``app = App(...)`` as its only added line, against the simulator, and does what its text says.

The app dir is the seeds' config files as written plus ``apiBase`` (tests/support/jitai.py). Each test gets its own
database; the 代开发 tenants are authorized in it as their create_auth leaves them. The examples name members such
as ``user001`` and ``member123``: the simulated orgs hold them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from handlers.errors import UnknownRecord
from receiver.jitai import App, CorpData, CorpDept, CorpMember, CorpRoleMember, DDClient, QywxClient
from tests.support.jitai import (
    CORP_A,
    CORP_B,
    DD_CORP_ID,
    ENV,
    INNER_CORP_ID,
    MARKET_AGENT_ID,
    PROXY_CORP_ID,
    PROXY_CORP_NAME,
    SeedWorld,
    authorize_tenants,
    seed_world,
    sql,
)
from tests.support.paths import VENDOR

EXAMPLES_DIR = VENDOR / "jitai" / "examples"
SEEDS = {"jitai-wecom-selfbuilt-org": "selfbuilt", "jitai-wecom-proxy-org": "proxy",
         "jitai-dingtalk-selfbuilt-org": "dingtalk"}  # fmt: skip
ADDED_LINE = "app = App(app_dir, database_url=database_url)\n"

# "用户身份绑定" continues the block before it ("自动同步机制"), which gets nail_corp: they run as one.
CONTINUES = {("dingtalk", "identity"): "autoinit"}


@dataclass(frozen=True)
class Example:
    seed: str
    file: str
    id: str
    line: int
    title: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.file}:{self.id}"


def load_examples() -> list[Example]:
    found = []
    for path in sorted(EXAMPLES_DIR.glob("*.examples")):
        stem = path.name.removesuffix(".examples")
        seed = SEEDS[stem.rsplit(".", 1)[0]]
        for block in re.split(r"^### ", path.read_text(encoding="utf-8"), flags=re.M)[1:]:
            head, _, code = block.partition("\n")
            ident, line, title = (part.strip() for part in head.split("|", 2))
            found.append(Example(seed, stem, ident, int(line), title, code))
    return found


EXAMPLES = load_examples()
BY_KEY = {(e.file, e.id): e for e in EXAMPLES}


@dataclass
class Ran:
    """What an example left: its namespace, what it printed, and the database it wrote."""

    world: SeedWorld
    ns: dict[str, Any]
    out: str
    db_url: str

    @property
    def app(self) -> App:
        app: App = self.ns["app"]
        return app

    def rows(self, query: str, *args: Any) -> list[Any]:
        return [tuple(r) for r in sql(self.db_url, query, *args)]

    def runs(self, corp: str) -> list[tuple[str, str]]:
        """(trigger, status) of the corp's sync runs, oldest first."""
        return self.rows(
            "SELECT r.trigger, r.status FROM sync_runs r JOIN corps c ON c.id = r.corp WHERE c.name = $1 ORDER BY r.id",
            corp,
        )

    def member_status(self, corp: str, *user_ids: str) -> dict[str, tuple[str, str | None]]:
        rows = self.rows(
            "SELECT m.user_id, m.status, m.offline_reason FROM members m JOIN corps c ON c.id = m.corp "
            "WHERE c.name = $1 AND m.user_id = ANY($2)",
            corp,
            list(user_ids),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def local_roles(self, corp: str, user_id: str) -> list[str]:
        return [r[0] for r in self.rows(
            "SELECT r.role_id FROM role_members rm JOIN roles r ON (r.corp, r.role_id) = (rm.corp, rm.role_id) "
            "JOIN members m ON m.id = rm.member JOIN corps c ON c.id = m.corp "
            "WHERE c.name = $1 AND m.user_id = $2 AND r.source = 'local' ORDER BY 1",
            corp, user_id,
        )]  # fmt: skip


def active_upstream(org: Any) -> set[str]:
    return {m.userid for m in org.members.values() if m.active}


# -- what each example's text says it does ---------------------------------------------------------------------

Check = Callable[[Ran], None]
CHECKS: dict[tuple[str, str], Check] = {}


def check(seed: str, *ids: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        for ident in ids:
            CHECKS[(seed, ident)] = fn
        return fn

    return register


def first_sync_then(r: Ran, corp: str, *later: str) -> None:
    """getElement ran the corp's first sync (JitAI runs initCorp when the element is created), then ``later``."""
    assert r.runs(corp) == [("first", "succeeded"), *((t, "succeeded") for t in later)]


def local_members(r: Ran, corp: str) -> set[str]:
    rows = r.rows(
        "SELECT m.user_id FROM members m JOIN corps c ON c.id = m.corp WHERE c.name = $1 AND m.status = 'active'", corp
    )
    return {row[0] for row in rows}


LOCAL_ADMINS = "SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member WHERE a.source = 'local' ORDER BY 1"


@check("selfbuilt", "basic")
def _(r: Ran) -> None:
    first_sync_then(r, "MyQywxCorp", "manual")
    assert r.world.inner.departments[1].name in r.out
    assert set(r.ns["admin_list"]) == set(r.world.inner.admins)
    assert str(r.ns["admin_list"]) in r.out


@check("selfbuilt", "init")
@check("proxy", "init")
@check("dingtalk", "init")
def _(r: Ran) -> None:
    corp = r.ns.get("corp") or r.ns["nail_corp"]
    name = corp.fullName.removeprefix("corps.")
    first_sync_then(r, name, "manual")
    org = {"MyQywxCorp": r.world.inner, "MyQywxProxyCorp": r.world.proxy, "testNailDivision": r.world.dingtalk}[name]
    assert local_members(r, name) == active_upstream(org)


@check("selfbuilt", "sync", "autosync")
def _(r: Ran) -> None:
    first_sync_then(r, "MyQywxCorp", "manual")
    assert local_members(r, "MyQywxCorp") == active_upstream(r.world.inner)


@check("selfbuilt", "third")
def _(r: Ran) -> None:
    data = r.ns["corp_data"]
    assert isinstance(data, CorpData)
    assert set(data["userDict"]) == active_upstream(r.world.inner)
    assert r.out.rstrip().endswith(f": {len(active_upstream(r.world.inner))}")
    first_sync_then(r, "MyQywxCorp")  # reading the platform wrote nothing


@check("selfbuilt", "bulk")
@check("proxy", "bulk")
@check("dingtalk", "bulk")
def _(r: Ran) -> None:
    corp = r.ns.get("corp") or r.ns["nail_corp"]
    name = corp.fullName.removeprefix("corps.")
    first_sync_then(r, name, "bulk_register")
    assert set(r.ns["corp_data"].userDict) == local_members(r, name)


@check("selfbuilt", "local")
def _(r: Ran) -> None:
    data = r.ns["local_data"]
    assert f": {len(data['userList'])}\n" in r.out and f": {len(data['deptList'])}\n" in r.out
    assert len(data["userList"]) == len(active_upstream(r.world.inner))
    assert len(data["deptList"]) == len(r.world.inner.departments)


@check("selfbuilt", "root")
def _(r: Ran) -> None:
    assert isinstance(r.ns["root_dept"], CorpDept)
    lines = r.out.splitlines()
    assert lines[0].endswith(": 1") and lines[1].endswith(": " + r.world.inner.departments[1].name)


@check("selfbuilt", "role")
def _(r: Ran) -> None:
    result = r.ns["result"]
    assert all(isinstance(x, CorpRoleMember) for x in result)
    assert [(x.memberId.value, x.roleId.value) for x in result] == [("user001", "role001"), ("user001", "role002")]
    assert "role001" in r.out and "role002" in r.out
    assert r.local_roles("MyQywxCorp", "user001") == ["role001", "role002"]


@check("selfbuilt", "offline")
def _(r: Ran) -> None:
    statuses = r.member_status("MyQywxCorp", "user001", "user002", "admin001")
    assert statuses == {"user001": ("offline", "operator"), "user002": ("offline", "operator"),
                        "admin001": ("active", None)}  # fmt: skip


@check("selfbuilt", "sig_get")
@check("dingtalk", "sig_get")
def _(r: Ran) -> None:
    assert r.ns["signature_info"]["signature"] is None  # never saved
    assert r.out.rstrip().endswith(": None")


@check("selfbuilt", "sig_save")
@check("dingtalk", "sig_save")
def _(r: Ran) -> None:
    assert r.ns["result"]["signature"] == "https://example.com/signature.png"
    assert r.rows("SELECT signature FROM signatures") == [("https://example.com/signature.png",)]
    corp = r.ns.get("corp") or r.ns["nail_corp"]
    member = r.ns["result"]["memberId"]
    assert corp.getUserSignature(member)["signature"] == "https://example.com/signature.png"


@check("selfbuilt", "admin_set")
def _(r: Ran) -> None:
    local = r.rows(
        "SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member WHERE a.source = 'local' ORDER BY 1"
    )
    assert local == [("admin001",), ("admin002",)]
    assert set(r.ns["corp"].getAdmin()) == set(r.world.inner.admins) | {"admin001", "admin002"}


@check("selfbuilt", "admin_get")
@check("dingtalk", "admin_get")
def _(r: Ran) -> None:
    found = r.ns.get("admin_list") or r.ns["admin_ids"]
    org = r.world.inner if "corp" in r.ns else r.world.dingtalk
    assert isinstance(found, list) and set(found) == set(org.admins)
    assert str(found) in r.out


@check("selfbuilt", "info")
def _(r: Ran) -> None:
    assert r.out.splitlines()[0].endswith(": 我的企业微信组织")
    assert r.out.splitlines()[1].endswith(": corps.MyQywxCorp")


@check("selfbuilt", "client")
@check("proxy", "client")
def _(r: Ran) -> None:
    client = r.ns["client"]
    assert isinstance(client, QywxClient)
    org = r.world.inner if r.ns["corp"].fullName == "corps.MyQywxCorp" else r.world.proxy
    listed = r.ns.get("dept_list") or client.department.list()  # the en/zh selfbuilt example stops at the comment
    assert sorted(d["id"] for d in listed) == sorted(org.departments)
    assert client.user.get("member123" if org is r.world.proxy else "user001")["userid"] in org.members


@check("selfbuilt", "p_corpdata")
def _(r: Ran) -> None:
    assert "'fullName': 'corps.MyQywxCorp'" in r.out and "'secret': '***'" in r.out
    assert "your_secret_key_here" not in r.out


@check("selfbuilt", "p_title")
def _(r: Ran) -> None:
    assert r.out.rstrip().endswith(": 我的企业微信组织")


@check("selfbuilt", "p_fullname", "p_corpfullname")
def _(r: Ran) -> None:
    assert r.out.rstrip().endswith(": corps.MyQywxCorp")


@check("selfbuilt", "p_authconfig")
def _(r: Ran) -> None:
    lines = r.out.splitlines()
    assert lines[0].endswith(f": {INNER_CORP_ID}") and lines[1].endswith(": 1000001")


@check("selfbuilt", "batch")
def _(r: Ran) -> None:
    first_sync_then(r, "MyQywxCorp", "bulk_register")
    local = r.rows(
        "SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member WHERE a.source = 'local' ORDER BY 1"
    )
    assert local == [("admin001",), ("admin002",), ("admin003",)]
    assert r.member_status("MyQywxCorp", "user001", "user002") == {"user001": ("offline", "operator"),
                                                                   "user002": ("offline", "operator")}  # fmt: skip


@check("proxy", "basic")
def _(r: Ran) -> None:
    first_sync_then(r, "MyQywxProxyCorp", "manual", "manual")
    assert r.out.rstrip().endswith(": " + r.world.proxy.departments[1].name)


@check("proxy", "sync")
def _(r: Ran) -> None:
    first_sync_then(r, "MyQywxProxyCorp", "manual")
    assert local_members(r, "MyQywxProxyCorp") == active_upstream(r.world.proxy)
    assert len(r.out.splitlines()) == 1


@check("proxy", "root")
def _(r: Ran) -> None:
    lines = r.out.splitlines()
    assert lines[0].endswith(": " + r.world.proxy.departments[1].name) and lines[1].endswith(": 1")


@check("proxy", "role")
def _(r: Ran) -> None:
    assert [(m.memberId.value, m.roleId.value) for m in r.ns["role_members"]] == [("member123", "role1"),
                                                                                   ("member123", "role2")]  # fmt: skip
    assert len(r.out.splitlines()) == 2 and "member123" in r.out and "role2" in r.out
    assert r.local_roles("MyQywxProxyCorp", "member123") == ["role1", "role2"]


@check("proxy", "agent_id")
def _(r: Ran) -> None:
    assert r.ns["agent_id"] == MARKET_AGENT_ID
    assert r.out.rstrip().endswith(f": {MARKET_AGENT_ID}")


@check("proxy", "third")
def _(r: Ran) -> None:
    lines = r.out.splitlines()
    assert lines[0].endswith(f": {PROXY_CORP_NAME}") and lines[1].endswith(f": {len(r.world.proxy.departments)}")


@check("proxy", "offline")
@check("dingtalk", "offline")
def _(r: Ran) -> None:
    corp = r.ns.get("corp") or r.ns["nail_corp"]
    name = corp.fullName.removeprefix("corps.")
    ids = ("member1", "member2") if name == "MyQywxProxyCorp" else ("member123", "member456")
    assert r.member_status(name, *ids) == {i: ("offline", "operator") for i in ids}
    assert len(r.out.splitlines()) == 1


@check("proxy", "depts")
def _(r: Ran) -> None:
    assert all(isinstance(d, CorpDept) for d in r.ns["depts"])
    printed = {line.split(": ", 1)[1] for line in r.out.splitlines()}
    assert printed == {d.name for d in r.world.proxy.departments.values()}


@check("proxy", "members")
def _(r: Ran) -> None:
    assert all(isinstance(m, CorpMember) for m in r.ns["all_members"])
    assert {m.memberId.value for m in r.ns["all_members"]} == active_upstream(r.world.proxy)
    assert {m.status.value for m in r.ns["active_members"]} == {"active"}


@check("proxy", "member")
def _(r: Ran) -> None:
    assert r.out.rstrip().endswith(": " + r.world.proxy.members["member123"].name)


@check("proxy", "props")
def _(r: Ran) -> None:
    ends = [PROXY_CORP_ID, "auths.QywxProxyAuth", "我的企业微信代开发组织", "corps.MyQywxProxyCorp"]
    assert [line.split(": ", 1)[1] for line in r.out.splitlines()] == ends


@check("proxy", "multi")
def _(r: Ran) -> None:
    first_sync_then(r, "CorpA", "manual")
    first_sync_then(r, "CorpB", "manual")
    counts = [int(line.rsplit(": ", 1)[1]) for line in r.out.splitlines()]
    assert counts == [len(active_upstream(r.world.corp_a)), len(active_upstream(r.world.corp_b))]
    assert {r.ns["corp_a"].corpId, r.ns["corp_b"].corpId} == {CORP_A, CORP_B}


@check("proxy", "status")
def _(r: Ran) -> None:
    offline = {m.memberId.value for m in r.ns["offline_members"]}
    active = {m.memberId.value for m in r.ns["active_members"]}
    assert offline == {"member1", "member2"}
    assert active == active_upstream(r.world.proxy) - offline


@check("proxy", "roles")
def _(r: Ran) -> None:
    expected = {"manager001": ["admin", "dept_manager"], "employee001": ["employee", "project_member"],
                "user1": ["role1", "role2"], "user2": ["role2", "role3"]}  # fmt: skip
    assert {m: r.local_roles("MyQywxProxyCorp", m) for m in expected} == expected


@check("dingtalk", "basic")
def _(r: Ran) -> None:
    first_sync_then(r, "testNailDivision", "manual")
    assert r.out.rstrip().endswith(": " + r.world.dingtalk.departments[1].name)


@check("dingtalk", "client")
def _(r: Ran) -> None:
    client = r.ns["client"]
    assert isinstance(client, DDClient)
    assert {d["dept_id"] for d in client.department.list()} == set(r.world.dingtalk.departments) - {1}
    assert client.user.get("member123")["unionid"] == r.world.dingtalk.members["member123"].unionid


@check("dingtalk", "info")
def _(r: Ran) -> None:
    assert r.ns["corp_info"]["title"] == "测试钉钉组织"
    assert "'fullName': 'corps.testNailDivision'" in r.out and "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" not in r.out


@check("dingtalk", "local")
def _(r: Ran) -> None:
    data = r.ns["local_data"]
    assert {u["memberId"] for u in data["userList"]} == active_upstream(r.world.dingtalk)
    assert len(r.out.splitlines()) == 3 and "'memberId': 'member123'" in r.out
    assert data["roleList"] and "roleList" in data


@check("dingtalk", "root")
def _(r: Ran) -> None:
    values = [line.split(": ", 1)[1] for line in r.out.splitlines()]
    assert values == ["1", r.world.dingtalk.departments[1].name, "corps.testNailDivision"]


@check("dingtalk", "third")
def _(r: Ran) -> None:
    data = r.ns["corp_data"]
    assert data.corpId == DD_CORP_ID and r.out.splitlines()[0].endswith(f": {DD_CORP_ID}")
    assert set(data.userDict) == active_upstream(r.world.dingtalk)
    assert set(data.deptDict) == {str(d) for d in r.world.dingtalk.departments}


@check("dingtalk", "admin_set")
def _(r: Ran) -> None:
    assert r.ns["result"] == {}
    local = r.rows(
        "SELECT m.user_id FROM admins a JOIN members m ON m.id = a.member WHERE a.source = 'local' ORDER BY 1"
    )
    assert local == [("member123",), ("member456",)]


@check("dingtalk", "sync")
def _(r: Ran) -> None:
    first_sync_then(r, "testNailDivision", "manual")
    assert r.out.splitlines() == ["组织架构同步成功"]


@check("dingtalk", "autoinit")
def _(r: Ran) -> None:
    first_sync_then(r, "testNailDivision")  # getElement alone synced the corp it created
    assert local_members(r, "testNailDivision") == active_upstream(r.world.dingtalk)


@check("dingtalk", "identity")
def _(r: Ran) -> None:
    first_sync_then(r, "testNailDivision", "manual")
    unions = dict(r.rows("SELECT m.user_id, m.union_id FROM members m"))
    assert unions["member123"] == r.world.dingtalk.members["member123"].unionid


# -- the runs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedWorld]:
    with pytest.MonkeyPatch.context() as env:
        for key, value in ENV.items():
            env.setenv(key, value)
        with seed_world(tmp_path_factory.mktemp("seeds")) as built:
            yield built


def run_example(example: Example, world: SeedWorld, db_url: str, ns: dict[str, Any]) -> None:
    """Run the example in ``ns`` (its globals: App, app_dir, database_url), after the one added line."""
    ns.update(App=App, app_dir=world.app_dir, database_url=db_url)
    earlier = CONTINUES.get((example.seed, example.id))
    code = ([BY_KEY[(example.file, earlier)].code] if earlier else []) + [example.code]
    exec(compile(ADDED_LINE + "\n".join(code), f"{example.file}:{example.line}", "exec"), ns)  # noqa: S102 - the examples


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_seed_example_runs_as_written_and_does_what_it_says(
    example: Example, world: SeedWorld, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    authorize_tenants(db_url)
    ns: dict[str, Any] = {}
    try:
        if (example.seed, example.id) == ("proxy", "dept"):
            # WeCom department ids are numbers, so no org has a "dept123": the example's own id is refused in
            # one clear line, and the same code with a department the org has prints its name.
            with pytest.raises(UnknownRecord, match=r"^unknown department: dept123$"):
                run_example(example, world, db_url, ns)
            close(ns)
            ns = {}
            real = Example(**{**example.__dict__, "code": example.code.replace('"dept123"', '"2"')})
            run_example(real, world, db_url, ns)
            assert capsys.readouterr().out.rstrip().endswith(": " + world.proxy.departments[2].name)
            return
        run_example(example, world, db_url, ns)
        CHECKS[(example.seed, example.id)](Ran(world, ns, capsys.readouterr().out, db_url))
    finally:
        close(ns)


def close(ns: dict[str, Any]) -> None:
    app = ns.get("app")
    if isinstance(app, App):
        app.close()


def test_every_example_has_a_check_and_the_seeds_are_all_there() -> None:
    assert {(e.seed, e.id) for e in EXAMPLES} - {("proxy", "dept")} == set(CHECKS)
    assert {e.file for e in EXAMPLES} == {p.name.removesuffix(".examples") for p in EXAMPLES_DIR.glob("*.examples")}
    assert len(EXAMPLES) == 96
