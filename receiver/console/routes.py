"""The console's part of the app's one route table (``receiver.app.routes``)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from receiver.console import actions, auth, pages

STATIC = Path(__file__).parent / "static"
CORP = "/console/corps/{corp}"


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/console", pages.overview),
        web.get("/console/login", auth.login_form),
        web.post("/console/login", auth.login),
        web.post("/console/logout", auth.logout),
        web.get(CORP + "/depts", pages.departments),
        web.get(CORP + "/members", pages.member_search),
        web.get(CORP + "/members/{memberId}", pages.member),
        web.get(CORP + "/runs", pages.sync_runs),
        web.get(CORP + "/runs/{runId}", pages.sync_run),
        web.post(CORP + "/sync", actions.start_sync),
        web.post(CORP + "/runs/{runId}/confirm", actions.confirm_run),
        web.post(CORP + "/runs/{runId}/discard", actions.discard_run),
        web.get("/console/dead", pages.dead_letters),
        web.post("/console/dead/{inboxId}/retry", actions.retry_dead),
        web.post("/console/dead/{inboxId}/discard", actions.discard_dead),
        web.get("/console/callbacks", pages.callbacks),
        web.static("/console/static", STATIC),
    ]
