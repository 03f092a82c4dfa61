"""Run the simulator on a local port: ``run_simulator`` for tests, ``main`` for ``corpsync simulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from receiver.testing.gate import RateLimits
from receiver.testing.org import generate_org
from receiver.testing.simulator import Simulator

PROXY_TEMPLATE = "dksimulate0000000001"  # the 代开发 template ``corpsync simulate`` serves


@contextlib.asynccontextmanager
async def run_simulator(
    sim: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[Simulator]:
    """Serve ``sim`` (or a new ``Simulator(**options)``) on ``host``; port 0 picks a free one.

    ``sim.url`` is set while the block runs; corp configs take ``sim.wecom_api_base`` and
    ``sim.dingtalk_api_base`` as ``apiBase``.
    """
    sim = sim or Simulator(**options)
    sim.start()
    runner = web.AppRunner(sim.app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        sim.url = f"http://{host}:{bound[1]}"
        yield sim
    finally:
        sim.close()
        await sim.stream.close()
        await runner.cleanup()


def describe(sim: Simulator) -> dict[str, Any]:
    """Credentials and apiBase of every registered corp, shaped like the app-dir JSON files."""
    wecom = {
        corp.corp_id: {
            "corpId": corp.corp_id,
            "agentId": str(corp.agent_id),
            "secret": corp.secret,
            "contactSecret": corp.contact_secret,
            "callback": {"token": corp.token, "encodingAESKey": corp.aes_key},
            "apiBase": sim.wecom_api_base,
            "members": len(corp.org.members),
            "departments": len(corp.org.departments),
        }
        for corp in sim.wecom_corps.values()
    }
    dingtalk = {
        app.app_key: {
            "authConfig": {
                "corpId": app.corp_id,
                "agentId": str(app.agent_id),
                "appKey": app.app_key,
                "appSecret": app.app_secret,
            },
            "callback": {"token": app.token, "aesKey": app.aes_key},
            "apiBase": sim.dingtalk_api_base,
            "streamMode": {"callback": {"mode": "stream"}, "streamBase": sim.stream_base},  # instead of callback
            "members": len(app.org.members),
            "departments": len(app.org.departments),
        }
        for app in sim.dingtalk_apps.values()
    }
    suites = {
        suite.suite_id: {
            "suiteId": suite.suite_id,
            "suiteSecret": suite.suite_secret,
            "token": suite.token,
            "encodingAESKey": suite.aes_key,
            "providerCorpId": suite.provider_corp_id,
            "apiBase": sim.wecom_api_base,
            "tenants": {
                tenant.corp_id: {
                    "corpId": tenant.corp_id,
                    "agentId": str(tenant.agent_id),
                    "members": len(tenant.org.members),
                    "departments": len(tenant.org.departments),
                }
                for tenant in suite.tenants.values()
            },
        }
        for suite in sim.suites.values()
    }
    return {"url": sim.url, "wecom": wecom, "dingtalk": dingtalk, "suites": suites}


async def authorize_tenants(
    sim: Simulator, suite_id: str, url: str, session: aiohttp.ClientSession, *, every: float = 1.0
) -> list[str]:
    """Authorize the suite's tenants at a receiver's suite instruction URL (``…/callback/wecom-suite/<auth>``) as
    WeCom does: a suite_ticket, then each tenant's create_auth. Each is sent again every ``every`` seconds until
    it is delivered (the receiver may not be up yet); returns the corp ids authorized."""
    suite = sim.suites[suite_id]

    async def deliver(plaintext: bytes) -> None:
        while True:  # polling a server that may not listen yet: nothing to wait on but time
            pushed = await sim.push(url, plaintext, platform="wecom", token=suite.token, aes_key=suite.aes_key,
                                    receive_id=suite.suite_id, session=session)  # fmt: skip
            if pushed.delivered:
                return
            await asyncio.sleep(every)

    await deliver(sim.issue_suite_ticket(suite_id))
    done = []
    for corp_id in list(suite.tenants):
        await deliver(sim.create_auth(suite_id, corp_id)[1])
        done.append(corp_id)
    return done


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpsync simulate",
        description="Serve a simulated WeCom org, a WeCom 代开发 template with one tenant, and a DingTalk org.",
    )
    host = os.environ.get("CORPSYNC_HOST") or "127.0.0.1"
    parser.add_argument(
        "--host", default=host, metavar="HOST", help=f"listen address (env CORPSYNC_HOST, default {host})"
    )
    parser.add_argument(
        "--port", type=int, default=8090, metavar="PORT", help="listen port, 0 picks a free one (default 8090)"
    )
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="seed of the generated orgs (default 1)")
    parser.add_argument("--members", type=int, default=1000, metavar="N", help="members per org (default 1000)")
    parser.add_argument("--departments", type=int, default=50, metavar="N", help="departments per org (default 50)")
    parser.add_argument("--depth", type=int, default=5, metavar="N", help="depth of the department tree (default 5)")
    parser.add_argument("--rate-limits", action="store_true", help="enforce the documented rate limits")
    parser.add_argument(
        "--authorize",
        metavar="URL",
        help="push the 代开发 tenant's suite_ticket and create_auth to this suite instruction URL "
        "(…/callback/wecom-suite/<auth> of a receiver whose app dir holds the printed suite), until delivered",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(rate_limits=RateLimits() if args.rate_limits else None, seed=args.seed)
    depth = min(args.depth, args.departments) if args.departments > 1 else 1
    sim.add_wecom_corp(generate_org(args.seed, args.members, args.departments, depth))
    sim.add_dingtalk_app(generate_org(args.seed + 1, args.members, args.departments, depth))
    # A 代开发 template with one tenant that has installed it (half the size): authorized by --authorize, or by
    # pushing the template's suite_ticket and create_auth yourself.
    sim.add_wecom_suite(PROXY_TEMPLATE)
    tenant_depts = max(1, args.departments // 2)
    tenant_org = generate_org(args.seed + 2, max(1, args.members // 2), tenant_depts, min(depth, tenant_depts))
    sim.add_suite_tenant(PROXY_TEMPLATE, tenant_org)
    gc.freeze()  # the orgs live as long as the process: keep full collections from rescanning them
    async with run_simulator(sim, host=args.host, port=args.port), aiohttp.ClientSession() as session:
        print(orjson.dumps(describe(sim), option=orjson.OPT_INDENT_2).decode(), flush=True)
        if args.authorize:
            authorized = await authorize_tenants(sim, PROXY_TEMPLATE, args.authorize, session)
            print(
                f"authorized 代开发 tenant(s) {', '.join(authorized)} at {args.authorize}", file=sys.stderr, flush=True
            )
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``corpsync simulate``: print the credentials as JSON, then serve until interrupted."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0
