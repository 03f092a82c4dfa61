"""Console test helpers: a dead letter and a quarantined run made in a running world, and form fields of a page."""

from __future__ import annotations

import re

from handlers.events.parse import dedupe_key
from handlers.store.inbox import InboxRecord, ensure_streams, inbox_values_of, insert_inbox_rows
from handlers.sync import drift
from handlers.sync.fullsync import RunStatus
from receiver.keys import CORP_ROWS, POOL
from receiver.testing import mutations
from tests.support.world import World

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


async def dead_letter(world: World) -> tuple[int, str]:
    """(inbox id, user id): a DingTalk user_add_org for a member who joined upstream, left dead-lettered as the
    worker leaves an event after its last failed attempt (in one transaction, so the worker never sees it pending)."""
    change = mutations.add_member(world.sales.org, name="死信测试员")
    plaintext = change.dingtalk[0]
    pool, corp = world.app[POOL], world.app[CORP_ROWS]["Sales"]
    async with pool.acquire() as conn, conn.transaction():
        await ensure_streams(conn, ["Sales"])
        key = dedupe_key("dingtalk", plaintext)
        record = InboxRecord(
            stream="Sales", platform="dingtalk", route="dingtalk", corp=corp, dedupe_key=key,
            event_type="user_add_org", query={}, body=b"{}", plaintext=plaintext,
        )  # fmt: skip
        rows = await insert_inbox_rows(conn, inbox_values_of([record]))
        inbox_id: int = rows[0]["id"]
        await conn.execute(
            "UPDATE inbox SET status = 'dead', attempts = 8, applied_at = now(),"
            " last_error = 'UpstreamError: system busy' WHERE id = $1",
            inbox_id,
        )
        await drift.request(conn, corp, "dead_letter", inbox_id=inbox_id)  # as the worker does on a dead letter
    return inbox_id, str(change.subject)


async def quarantined_run(world: World, share: float = 0.4) -> tuple[int, list[str]]:
    """(run id, user ids held): ``share`` of HQ's members leave upstream unannounced, then a full sync holds them."""
    org = world.hq.org
    leaving = sorted(m.userid for m in org.members.values() if org.member_in_scope(m))[: int(len(org.members) * share)]
    for userid in leaving:
        mutations.remove_member(org, userid)
    result = await world.scheduler.request("HQ", "manual")
    assert result.status is RunStatus.QUARANTINED, result
    assert result.run_id is not None
    return result.run_id, leaving


async def member_status(world: World, corp: str, user_id: str) -> str | None:
    status: str | None = await world.app[POOL].fetchval(
        "SELECT status FROM members WHERE corp = $1 AND user_id = $2", world.app[CORP_ROWS][corp], user_id
    )
    return status


async def statuses(world: World, corp: str, user_ids: list[str]) -> set[str | None]:
    """The set of local statuses of these members (None for one the corp does not have)."""
    return {await member_status(world, corp, u) for u in user_ids}
