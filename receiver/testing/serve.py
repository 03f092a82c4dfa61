"""Run the simulator on a local port: ``run_simulator`` for tests, ``main`` for ``corpsync simulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from aiohttp import web

from receiver.testing.gate import RateLimits
from receiver.testing.org import generate_org
from receiver.testing.simulator import Simulator


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
    return {"url": sim.url, "wecom": wecom, "dingtalk": dingtalk}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corpsync simulate", description="Serve a simulated WeCom org and DingTalk org."
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
    return parser


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(rate_limits=RateLimits() if args.rate_limits else None, seed=args.seed)
    depth = min(args.depth, args.departments) if args.departments > 1 else 1
    sim.add_wecom_corp(generate_org(args.seed, args.members, args.departments, depth))
    sim.add_dingtalk_app(generate_org(args.seed + 1, args.members, args.departments, depth))
    gc.freeze()  # the orgs live as long as the process: keep full collections from rescanning them
    async with run_simulator(sim, host=args.host, port=args.port):
        print(orjson.dumps(describe(sim), option=orjson.OPT_INDENT_2).decode(), flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``corpsync simulate``: print the credentials as JSON, then serve until interrupted."""
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0
