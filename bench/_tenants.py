"""The two children of bench/tenants.py: a 代开发 provider's upstream (one template, N tenants) and the platform's
callback sender.

    python bench/_tenants.py upstream --tenants N --min-members A --max-members B [--seed S]
    python bench/_tenants.py sender --port P --sim-url URL --rate R --timeout T [--thin F] [--connections C]

``upstream`` serves the simulator (its documented rate limits on) with one 代开发 template (``dk…``) and N
tenants that installed it but are not exchanged yet (no permanent code). It prints one JSON line (the template's
credentials, each tenant's size and the calls a first sync of it needs), then answers ``{"cmd": "stats"}`` on
stdin with the calls served: per API (``Simulator.calls``), per API and owner (tenant corpid, or ``suite``, counted
by a middleware in front of the simulator), and the errors answered. Two routes beside the simulated APIs feed
the sender: ``GET /bench/instructions`` (a fresh suite_ticket and every tenant's create_auth, with the keys to
sign them) and ``GET /bench/changes?n=K`` (K contact changes, each made to a random tenant's org as it is
asked for, so the APIs answer the org after the change; only tenants whose auth code was exchanged at least
``SETTLE_SECONDS`` ago change, as the platform sends no contact event to a corp before the install completed;
``null`` for a slot when no tenant is ready yet).

``sender`` is the platform: it signs as WeCom does and posts, on keep-alive connections to 127.0.0.1, the
suite_ticket, then every create_auth (closed loop, ``--connections``), and from the start an open loop of
``--rate`` contact changes a second to the 代开发 callback URL (``/callback/wecom-suite/Suite/data``, receive-id
the tenant's corpid); each change's latency runs from its due time (no coordinated omission). It prints
``ready``, starts at ``go`` on stdin and stops at ``stop`` (or after ``--timeout`` seconds), then prints one JSON
line: every answer's latency, wall-clock due time and status.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from bench._upstream import MIX, Changes
from receiver.cli.serve import new_event_loop
from receiver.testing import (
    RateLimits,
    SimOrg,
    Simulator,
    SuiteTenant,
    generate_org,
    run_simulator,
    sign_wecom_callback,
)

AUTH = "Suite"  # the auth's name in the app dir: auths/Suite
SETTLE_SECONDS = 2.0  # a tenant gets contact events only this long after its code was exchanged
SETTLE_EVENTS = 3  # a member or department a change created is changed again only after this many more events
MEMBERS_PER_DEPARTMENT = 10
TAGS = 8
SCHEDULER_ENV = "CORPSYNC_BENCH_SCHEDULER"  # read by the serve role only; no corpsync setting

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- upstream ----------------------------------------------------------------------------------------


def tenant_org(seed: int, k: int, members: int) -> SimOrg:
    departments = max(2, round(members / MEMBERS_PER_DEPARTMENT))
    return generate_org(seed * 1_000_003 + k, members, departments, min(4, departments), tags=TAGS)


def first_sync_calls(org: SimOrg) -> dict[str, int]:
    """The fewest calls a first sync of a 代开发 tenant needs (handlers.clients.wecom: no contact secret, so
    ``department/list`` once and ``user/list`` per visible department; tags and admins beside)."""
    return {
        "gettoken": 1,  # the corp token: corpsecret = permanent code (wecom.md §4.3)
        "department/list": 1,
        "user/list": sum(1 for _ in org.subtree(org.visible_root)),
        "tag/list": 1,
        "tag/get": len(org.tags),
        "agent/get_admin_list": 1,
    }


class Upstream:
    """The simulator with one template and its tenants, the per-owner counter and the sender's two routes."""

    def __init__(self, args: argparse.Namespace) -> None:
        rng = random.Random(args.seed)
        self.rng = rng
        self.sim = Simulator(rate_limits=RateLimits(), seed=args.seed)
        self.suite = self.sim.add_wecom_suite(f"dk{rng.getrandbits(64):016x}")
        self.tenants: list[SuiteTenant] = []
        for k in range(args.tenants):
            org = tenant_org(args.seed, k, rng.randint(args.min_members, args.max_members))
            self.tenants.append(self.sim.add_suite_tenant(self.suite.suite_id, org, agent_id=1000003))
        self.by_owner: Counter[tuple[str, str]] = Counter()
        self.exchanged: dict[str, float] = {}  # corpid -> monotonic time its code was first seen exchanged
        self.changes: dict[str, Changes] = {}
        self.events: Counter[str] = Counter()  # per tenant: events made, for the settle rule
        kinds, weights = zip(*MIX, strict=True)
        self.kinds, self.weights = list(kinds), list(weights)
        app = self.sim.app
        app.middlewares.append(self.owner_counter())
        app.router.add_get("/bench/instructions", self.instructions)
        app.router.add_get("/bench/changes", self.changes_route)

    def info(self) -> dict[str, Any]:
        s = self.suite
        return {
            "suite": {
                "suiteId": s.suite_id,
                "suiteSecret": s.suite_secret,
                "token": s.token,
                "encodingAESKey": s.aes_key,
                "providerCorpId": s.provider_corp_id,
                "apiBase": self.sim.wecom_api_base,
            },
            "tenants": [
                {
                    "corpId": t.corp_id,
                    "members": len(t.org.members),
                    "departments": len(t.org.departments),
                    "calls": first_sync_calls(t.org),
                }
                for t in self.tenants
            ],
            "limits": {"calls": self.sim.rate_limits.wecom_limit, "seconds": self.sim.rate_limits.wecom_window}
            if self.sim.rate_limits
            else None,
        }

    def owner_counter(self) -> Middleware:
        """A middleware counting each WeCom call under (owner, API): the tenant's corpid, or ``suite``."""
        by_owner, tokens = self.by_owner, self.sim.tokens

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if path.startswith("/wecom/cgi-bin/"):
                api = path.removeprefix("/wecom/cgi-bin/")
                owner = "?"
                if api == "gettoken":
                    owner = request.query.get("corpid", "?")
                elif api.startswith("service/"):
                    owner = "suite"
                elif token := request.query.get("access_token"):
                    grant, _ = tokens.lookup(token)
                    owner = getattr(grant.subject, "corp_id", "?") if grant is not None else "?"
                by_owner[(owner, api)] += 1
            return await handler(request)

        return count

    async def watch_exchanges(self) -> None:
        """Note when each tenant's auth code was exchanged (the simulator sets its permanent code then)."""
        waiting = list(self.tenants)
        while waiting:
            now = time.monotonic()
            for t in [t for t in waiting if t.permanent_code is not None]:
                self.exchanged[t.corp_id] = now
            waiting = [t for t in waiting if t.permanent_code is None]
            await asyncio.sleep(0.1)

    async def instructions(self, request: web.Request) -> web.Response:
        suite_id = self.suite.suite_id
        ticket = self.sim.issue_suite_ticket(suite_id)
        auths = [self.sim.create_auth(suite_id, t.corp_id)[1].decode() for t in self.tenants]
        keys = {"suiteId": suite_id, "token": self.suite.token, "encodingAESKey": self.suite.aes_key}
        return web.json_response({"keys": keys, "ticket": ticket.decode(), "createAuth": auths}, dumps=_dumps)

    def change(self, corp_id: str) -> str | None:
        """One contact change of a tenant's org, as its full (self-built form) callback plaintext."""
        tenant = self.sim.suites[self.suite.suite_id].tenants[corp_id]
        state = self.changes.get(corp_id)
        if state is None:
            state = self.changes[corp_id] = Changes(tenant.org, self.rng, SETTLE_EVENTS)
        i = self.events[corp_id]
        state.settled(i)
        for _ in range(20):
            try:
                made = state.make(self.rng.choices(self.kinds, self.weights)[0], i)
            except (ValueError, IndexError):  # e.g. a department cycle, or nothing left to pick
                continue
            if made.wecom:
                self.events[corp_id] = i + 1
                return made.wecom[0].decode()
        return None

    async def changes_route(self, request: web.Request) -> web.Response:
        n = int(request.query.get("n", "1"))
        now = time.monotonic()
        ready = [c for c, at in self.exchanged.items() if now - at >= SETTLE_SECONDS]
        out: list[list[str] | None] = []
        for _ in range(n):
            corp_id = self.rng.choice(ready) if ready else None
            plaintext = None if corp_id is None else self.change(corp_id)
            out.append(None if corp_id is None or plaintext is None else [corp_id, plaintext])
        return web.json_response(out, dumps=_dumps)

    def stats(self) -> dict[str, Any]:
        sim = self.sim
        errors = {f"{api} {code}": n for (api, code), n in sim.errors.items()}
        owners = [[owner, api, n] for (owner, api), n in self.by_owner.items()]
        return {"calls": dict(sim.calls), "errors": errors, "byOwner": owners, "events": sum(self.events.values())}


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


async def serve_upstream(args: argparse.Namespace) -> None:
    up = Upstream(args)
    async with run_simulator(up.sim):
        watcher = asyncio.create_task(up.watch_exchanges())
        print(orjson.dumps({"url": up.sim.url, **up.info()}).decode(), flush=True)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            if orjson.loads(line).get("cmd") == "stats":
                print(orjson.dumps(up.stats()).decode(), flush=True)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


# -- sender ------------------------------------------------------------------------------------------


class Sender:
    """Posts signed callbacks to the receiver and keeps every answer: (kind, due wall time, latency s, status)."""

    def __init__(self, args: argparse.Namespace, session: aiohttp.ClientSession, keys: dict[str, str]) -> None:
        self.args = args
        self.session = session
        self.keys = keys
        self.base = f"http://127.0.0.1:{args.port}/callback/wecom-suite/{AUTH}"
        self.answers: list[tuple[str, float, float, int]] = []
        self.skipped = 0  # change slots with no tenant ready yet
        self.starved = 0  # change slots due before the fetcher had one ready (the bench's own lag)
        self.in_flight: set[asyncio.Task[None]] = set()

    def sign(self, plaintext: str, receive_id: str) -> tuple[dict[str, str], bytes]:
        return sign_wecom_callback(
            plaintext.encode(), token=self.keys["token"], aes_key=self.keys["encodingAESKey"], receive_id=receive_id
        )

    async def post(self, kind: str, url: str, signed: tuple[dict[str, str], bytes], due: float, wall: float) -> None:
        query, body = signed
        status = 0
        try:
            async with self.session.post(url, params=query, data=body, headers={"Content-Type": "text/xml"}) as r:
                await r.read()
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.answers.append((kind, wall, time.perf_counter() - due, status))

    async def instructions(self, ticket: str, auths: list[str]) -> None:
        """The ticket first (a create_auth applied before it could not be exchanged), then every create_auth."""
        suite_id = self.keys["suiteId"]
        now = time.perf_counter()
        await self.post("suite_ticket", self.base, self.sign(ticket, suite_id), now, time.time())
        signed = [self.sign(text, suite_id) for text in auths]
        queue = iter(signed)

        async def lane() -> None:
            for one in queue:
                await self.post("create_auth", self.base, one, time.perf_counter(), time.time())

        await asyncio.gather(*(lane() for _ in range(self.args.connections)))

    async def changes(self, stop: asyncio.Event) -> None:
        """Open loop: change i is due at start + i/rate. A fetcher keeps a second of signed changes ready, so
        asking the simulator for them never delays a send (a slot found empty is counted as starved)."""
        rate = self.args.rate
        ready: deque[tuple[dict[str, str], bytes] | None] = deque()
        url = self.base + "/data"

        async def fetch() -> None:
            batch = max(1, round(rate / 4))
            while not stop.is_set():
                if len(ready) >= rate:
                    await asyncio.sleep(0.05)
                    continue
                async with self.session.get(f"{self.args.sim_url}/bench/changes", params={"n": str(batch)}) as r:
                    made = orjson.loads(await r.read())
                ready.extend(None if m is None else self.sign(m[1], m[0]) for m in made)

        fetcher = asyncio.create_task(fetch())
        start, wall_start = time.perf_counter() + 1.0, time.time() + 1.0
        i = 0
        try:
            while not stop.is_set():
                due = start + i / rate
                i += 1
                delay = due - time.perf_counter()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                if stop.is_set():
                    return
                if not ready:
                    self.starved += 1
                    continue
                one = ready.popleft()
                if one is None:
                    self.skipped += 1
                    continue
                task = asyncio.create_task(self.post("change", url, one, due, wall_start + (due - start)))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)
        finally:
            fetcher.cancel()
            await asyncio.gather(fetcher, return_exceptions=True)


async def send(args: argparse.Namespace) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.get(f"{args.sim_url}/bench/instructions") as r:
            given = orjson.loads(await r.read())
        sender = Sender(args, session, given["keys"])
        loop = asyncio.get_running_loop()
        print("ready", flush=True)
        if (await loop.run_in_executor(None, sys.stdin.readline)).strip() != "go":
            raise SystemExit("no go from the benchmark (it has gone away)")
        stop = asyncio.Event()

        async def wait_stop() -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.timeout)
            stop.set()

        stopper = asyncio.create_task(wait_stop())
        started = time.time()
        stream = asyncio.create_task(sender.changes(stop))
        await sender.instructions(given["ticket"], given["createAuth"])
        instructions_done = time.time()
        await stream
        await stopper
        if sender.in_flight:
            await asyncio.wait(sender.in_flight, timeout=35)
    return {
        "started": started,
        "instructionsDone": instructions_done,
        "answers": sender.answers,
        "skipped": sender.skipped,
        "starved": sender.starved,
    }


# -- serve (experiments) -----------------------------------------------------------------------------


def serve_patched(app_dir: str, port: int) -> int:
    """``corpsync serve`` through bench/_apply_probe.py's instruments, with the scheduler's settings replaced as
    the bench-only ``SCHEDULER_ENV`` asks (JSON of ``SchedulerSettings`` fields but ``max_parallel``, which is
    CORPSYNC_SYNC_PARALLEL): an experiment on the product's internals (``receiver.app.SchedulerSettings``), so it
    fails loudly when they have moved."""
    import functools
    import os

    import receiver.app as app
    from bench._apply_probe import serve_wrapped
    from handlers.sync.scheduler import SchedulerSettings

    if raw := os.environ.get(SCHEDULER_ENV):
        fields = orjson.loads(raw)
        SchedulerSettings(**fields)  # an unknown field fails here
        # the app builds its scheduler's settings from this name: the experiment's fields go in through it
        app.SchedulerSettings = functools.partial(SchedulerSettings, **fields)  # type: ignore[misc]
    return serve_wrapped(app_dir, port)


# -- entry -------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="role", required=True)
    up = sub.add_parser("upstream")
    up.add_argument("--tenants", type=int, required=True)
    up.add_argument("--min-members", type=int, required=True)
    up.add_argument("--max-members", type=int, required=True)
    up.add_argument("--seed", type=int, default=1)
    out = sub.add_parser("sender")
    out.add_argument("--port", type=int, required=True)
    out.add_argument("--sim-url", required=True)
    out.add_argument("--rate", type=float, required=True)
    out.add_argument("--timeout", type=float, required=True)
    out.add_argument("--connections", type=int, default=8)
    serve = sub.add_parser("serve")
    serve.add_argument("--app-dir", required=True)
    serve.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    if args.role == "serve":
        return serve_patched(args.app_dir, args.port)
    # The children take CPU from the machine the server runs on: uvloop, where installed, takes less.
    with asyncio.Runner(loop_factory=lambda: new_event_loop("auto")[0]) as runner:
        if args.role == "upstream":
            runner.run(serve_upstream(args))
        else:
            print(orjson.dumps(runner.run(send(args))).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
