"""``corpsync demo``: the whole product in one command, against the upstream simulator, with no credentials.

It starts the embedded PostgreSQL, a simulated WeCom self-built org, a 代开发 tenant, a DingTalk org on HTTP push and
one on Stream mode, and the receiver wired to them; authorizes the tenant through real suite callbacks; runs the
first full syncs; then changes the simulated orgs and pushes each change's signed callback to the receiver (or, for
the Stream org, sends its EVENT frames over the receiver's own Stream connection), and finally checks that every
local directory equals its upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import aiohttp
from aiohttp import web

from handlers.clients import http_session
from handlers.config import Secret
from handlers.store.inbox import pending_count
from handlers.sync.fullsync import format_summary
from receiver.api import get_corp
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.cli.progress import ProgressBar
from receiver.embedded import start_embedded
from receiver.keys import POOL
from receiver.settings import Settings
from receiver.testing import Simulator, generate_org, mutations, run_simulator
from receiver.testing.accounts import DingTalkApp, SuiteTenant, WecomCorp, WecomSuite
from receiver.testing.events import Callbacks
from receiver.testing.harness import write_dingtalk_corp, write_proxy_corp, write_suite, write_wecom_corp
from receiver.testing.org import SimOrg

SUITE_ID = "dkdemo00000000000001"
CORPS = ("HQ", "T1", "Sales", "Field")  # Field: the DingTalk org on Stream mode
Say = Callable[[str], None]


@dataclass
class DemoOrgs:
    sim: Simulator
    wecom: WecomCorp
    suite: WecomSuite
    tenant: SuiteTenant
    dingtalk: DingTalkApp
    stream: DingTalkApp  # the DingTalk org whose events go over Stream mode (corps/Field)
    pushed: dict[str, int] = field(default_factory=dict)


def build_orgs(members: int) -> DemoOrgs:
    sim = Simulator(seed=7)
    depts = max(3, members // 10)
    wecom = sim.add_wecom_corp(generate_org(7, members, depts, 4))
    suite = sim.add_wecom_suite(SUITE_ID)
    tenant = sim.add_suite_tenant(SUITE_ID, generate_org(8, max(10, members // 2), max(3, depts // 2), 3))
    dingtalk = sim.add_dingtalk_app(generate_org(9, members, depts, 4))
    stream = sim.add_dingtalk_app(generate_org(10, members, depts, 4))
    return DemoOrgs(sim, wecom, suite, tenant, dingtalk, stream)


def write_app_dir(root: Path, orgs: DemoOrgs) -> None:
    w, s, d = orgs.wecom, orgs.suite, orgs.dingtalk
    base = orgs.sim.url
    write_wecom_corp(root, "HQ", corp_id=w.corp_id, secret=w.secret, contact_secret=w.contact_secret,
                     api_base=f"{base}/wecom", token=w.token, aes_key=w.aes_key)  # fmt: skip
    write_suite(root, "Suite", suite_id=s.suite_id, suite_secret=s.suite_secret, provider_corp_id=s.provider_corp_id,
                api_base=f"{base}/wecom", token=s.token, aes_key=s.aes_key)  # fmt: skip
    write_proxy_corp(root, "T1", corp_id=orgs.tenant.corp_id, auth="Suite")
    write_dingtalk_corp(root, "Sales", corp_id=d.corp_id, app_key=d.app_key, app_secret=d.app_secret,
                        api_base=f"{base}/dingtalk", token=d.token, aes_key=d.aes_key)  # fmt: skip
    f = orgs.stream
    write_dingtalk_corp(root, "Field", corp_id=f.corp_id, app_key=f.app_key, app_secret=f.app_secret,
                        api_base=f"{base}/dingtalk",
                        extra={"callback": {"mode": "stream"}, "streamBase": orgs.sim.stream_base})  # fmt: skip


class Pusher:
    """Sends a change's callbacks to the receiver the way each platform would."""

    def __init__(self, orgs: DemoOrgs, receiver: str, session: aiohttp.ClientSession) -> None:
        self.orgs, self.receiver, self.session = orgs, receiver, session

    async def push(self, corp: str, change: Callbacks, *, thin: bool = False) -> list[str]:
        """Each callback's answer: an HTTP status, or ``ACK`` for a Stream frame ACKed SUCCESS (``LOST`` if not)."""
        o = self.orgs
        if corp == "Field":
            gateway = o.sim.stream
            sent = gateway.publish(o.stream.app_key, change)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await gateway.wait_delivered(sent)
            o.pushed[corp] = o.pushed.get(corp, 0) + len(sent)
            return ["ACK" if gateway.deliveries[m].done else "LOST" for m in sent]
        if corp == "HQ":
            bodies = change.wecom_thin if thin and change.wecom_thin else change.wecom
            target, token, key, rid = "wecom/HQ", o.wecom.token, o.wecom.aes_key, o.wecom.corp_id
        elif corp == "T1":
            bodies = change.wecom
            target, token, key, rid = "wecom/T1", o.suite.token, o.suite.aes_key, o.tenant.corp_id
        else:
            bodies = change.dingtalk
            target, token, key, rid = "dingtalk/Sales", o.dingtalk.token, o.dingtalk.aes_key, o.dingtalk.app_key
        platform: Literal["wecom", "dingtalk"] = "dingtalk" if corp == "Sales" else "wecom"
        statuses: list[str] = []
        for body in bodies:
            result = await o.sim.push(f"{self.receiver}/callback/{target}", body, platform=platform, token=token,
                                      aes_key=key, receive_id=rid, session=self.session)  # fmt: skip
            statuses.append(str(result.status))
            o.pushed[corp] = o.pushed.get(corp, 0) + 1
        return statuses

    async def suite(self, plaintext: bytes) -> int:
        o = self.orgs
        result = await o.sim.push(f"{self.receiver}/callback/wecom-suite/Suite", plaintext, platform="wecom",
                                  token=o.suite.token, aes_key=o.suite.aes_key, receive_id=o.suite.suite_id,
                                  session=self.session)  # fmt: skip
        return result.status


def random_change(org: SimOrg, rng: random.Random) -> tuple[str, Callable[[], Callbacks]]:
    """One plausible org change (what HR does all day)."""
    depts = sorted(d for d in org.departments if org.in_scope(d))
    people = sorted(org.members)
    kind = rng.choice(["add_member", "add_member", "update_member", "move_member", "remove_member",
                       "add_department", "rename_department"])  # fmt: skip
    if kind == "add_member" or not people:
        return "add_member", lambda: mutations.add_member(org, departments=[rng.choice(depts)])
    if kind == "update_member":
        userid = rng.choice(people)
        return "update_member", lambda: mutations.update_member(org, userid, position=rng.choice(["经理", "工程师"]))
    if kind == "move_member":
        userid = rng.choice(people)
        return "move_member", lambda: mutations.move_member(org, userid, [rng.choice(depts)])
    if kind == "remove_member":
        return "remove_member", lambda: mutations.remove_member(org, rng.choice(people))
    if kind == "add_department":
        parent, label = rng.choice(depts), f"项目组{rng.randint(1, 999)}"
        return "add_department", lambda: mutations.add_department(org, parent_id=parent, name=label)
    dept = rng.choice(depts)
    return "rename_department", lambda: mutations.rename_department(org, dept, f"部门{rng.randint(1, 999)}")


async def wait_applied(app: web.Application, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pending = await pending_count(app[POOL])
        if pending == 0:
            return True
        await asyncio.sleep(0.1)
    return False


async def compare(app: web.Application, name: str) -> str:
    """Local active members vs the platform's visible members (fetched through the app's client)."""
    corp = await get_corp(app, name)
    local = {m.member_id for m in await corp.get_members("active")}
    depts = {d.dept_id for d in await corp.get_depts()}
    upstream = (await corp.get_third_corp_data()).snapshot
    remote = {m.user_id for m in upstream.members}
    remote_depts = {d.dept_id for d in upstream.departments}
    same = local == remote and depts == remote_depts
    verdict = "in sync" if same else f"DIFFERS (members +{len(local - remote)}/-{len(remote - local)})"
    counts = f"local {len(local)} members / {len(depts)} depts, upstream {len(remote)} / {len(remote_depts)}"
    return f"{name:6} {counts}: {verdict}"


async def run_demo(
    *,
    host: str,
    port: int,
    seconds: float | None,
    members: int,
    rate: float,
    say: Say,
    admin_token: Secret | None = None,
    database_url: str | None = None,
    app_dir: Path | None = None,
    base: Settings | None = None,
) -> int:
    """The demo; on ``database_url`` (else an embedded server under the app dir), writing the simulated corps into
    ``app_dir`` (kept afterwards; else a temporary directory, removed). ``base`` holds the other settings serve
    would take from the environment (retention, body limit, ...)."""
    state = app_dir or Path(tempfile.mkdtemp(prefix="corpsync-demo-"))
    embedded = None if database_url else await asyncio.to_thread(start_embedded, state)
    url = database_url or (embedded.url if embedded else "")
    try:
        orgs = build_orgs(members)
        async with run_simulator(orgs.sim) as sim:
            write_app_dir(state, orgs)
            config = load_app_dir(state, {})
            settings = replace(
                base or Settings(), app_dir=state, host=host, port=port, admin_token=admin_token, run_scheduler=False
            )
            app = create_app(settings, config, url)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            bound = port or _bound_port(site)
            receiver = f"http://{host}:{bound}"
            try:
                return await _story(app, orgs, receiver, seconds, rate, say, sim.url, admin_token is not None)
            finally:
                await runner.cleanup()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if app_dir is None:
            shutil.rmtree(state, ignore_errors=True)


def _bound_port(site: web.TCPSite) -> int:
    server = site._server  # aiohttp exposes no public accessor for the bound port
    sockets = getattr(server, "sockets", None) or []
    for sock in sockets:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            port: int = sock.getsockname()[1]
            return port
    raise RuntimeError("the demo receiver has no listening socket")


async def _story(app: web.Application, orgs: DemoOrgs, receiver: str, seconds: float | None,
                 rate: float, say: Say, sim_url: str, token: bool) -> int:  # fmt: skip
    say(f"upstream simulator  {sim_url}  (WeCom self-built, a 代开发 tenant, DingTalk by HTTP push and by Stream)")
    say(f"receiver            {receiver}")
    async with http_session() as session:
        pusher = Pusher(orgs, receiver, session)
        say("authorizing the 代开发 tenant: suite_ticket and create_auth callbacks → permanent code")
        await pusher.suite(orgs.sim.issue_suite_ticket(SUITE_ID))
        _, create_auth = orgs.sim.create_auth(SUITE_ID, orgs.tenant.corp_id)
        await pusher.suite(create_auth)
        await wait_applied(app)
        for name in CORPS:
            corp = await get_corp(app, name)
            bar = ProgressBar()
            result = await corp.sync_corp(progress=bar if bar.enabled else None)
            bar.close()
            say(format_summary(result))
        say("")
        auth = ' -H "Authorization: Bearer $CORPSYNC_ADMIN_TOKEN"' if token else ""
        say(f"explore:  curl{auth} {receiver}/api/corps   ·   {receiver}/readyz   ·   {receiver}/metrics")
        say("now changing the orgs upstream; each change's callback flows through the receiver, Field's over its")
        say("DingTalk Stream connection (→ ACK once stored), the others' by HTTP (→ status); Ctrl-C stops")
        rng = random.Random(11)  # noqa: S311 - a reproducible story, not a secret
        started = time.monotonic()
        org_of = {"HQ": orgs.wecom.org, "T1": orgs.tenant.org, "Sales": orgs.dingtalk.org, "Field": orgs.stream.org}
        with contextlib.suppress(asyncio.CancelledError):
            while seconds is None or time.monotonic() - started < seconds:
                name = rng.choice(CORPS)
                kind, make = random_change(org_of[name], rng)
                try:
                    change = make()
                except ValueError:
                    continue  # e.g. a department that may not be removed while it has members
                thin = name == "HQ" and rng.random() < 0.5
                statuses = await pusher.push(name, change, thin=thin)
                answered = " ".join(map(str, statuses)) if statuses else "no callback (the platform sends none)"
                say(f"{time.strftime('%H:%M:%S')}  {name:6} {kind:18} {change.subject!s:22} → {answered}")
                await asyncio.sleep(1 / rate)
        say("")
        applied = await wait_applied(app)
        say("all callbacks applied" if applied else "some callbacks are still pending")
        lines = [await compare(app, name) for name in CORPS]
        for line in lines:
            say(line)
    return 0 if applied and all(line.endswith("in sync") for line in lines) else 1


def _say(line: str) -> None:
    print(line, flush=True)


def main(settings: Settings, seconds: float | None, members: int, rate: float, *, app_dir: Path | None = None) -> int:
    """The demo on ``settings``' host, port, admin token and database, as serve takes them; with ``app_dir`` (given
    as a flag or CORPSYNC_APP_DIR) the simulated corps are written there and kept."""
    try:
        return asyncio.run(
            run_demo(
                host=settings.host,
                port=settings.port,
                seconds=seconds,
                members=members,
                rate=rate,
                say=_say,
                admin_token=settings.admin_token,
                database_url=settings.database_url,
                app_dir=app_dir,
                base=settings,
            )
        )
    except KeyboardInterrupt:
        _say("stopped")
        return 0
