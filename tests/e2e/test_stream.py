"""DingTalk Stream mode end to end: the simulator's gateway sends EVENT frames over a real WebSocket to the real
app, which stores each in the inbox before it ACKs, and the worker applies them once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from handlers.sync.fullsync import RunStatus
from receiver.keys import CORP_ROWS, SCHEDULER
from receiver.stream.consumer import ROUTE
from receiver.testing import mutations
from tests.support.clock import FakeClock
from tests.support.eventkit import until
from tests.support.paths import PROTOCOL_EVENTS
from tests.support.streaming import CORP, FAST, StreamWorld, stream_world

STREAM_SAMPLES = sorted((PROTOCOL_EVENTS / "dingtalk").glob("stream*/*.json"))  # stream/ and stream_variants/
STREAM_SAMPLES = [p for p in STREAM_SAMPLES if p.parent.name != "stream_wire"]  # wire frames: test_frames


@pytest.mark.parametrize("sample", STREAM_SAMPLES, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_every_published_stream_sample_arrives_over_the_socket_and_is_applied(
    sample: Path, tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    event = orjson.loads(sample.read_bytes())  # noqa: ASYNC240 - a small file, read once
    async with stream_world(tmp_path, db_url, aiohttp_client, members=5) as world:
        event["eventCorpId"] = world.ding.corp_id  # the published samples' corp is masked
        sent = world.sim.stream.send_event(world.ding.app_key, event)
        await world.delivered([sent])
        await world.drained()
        rows = await world.pool.fetch("SELECT route, event_type, dedupe_key, status, query FROM inbox")
    assert [(r["route"], r["event_type"], r["status"]) for r in rows] == [(ROUTE, event["eventType"], "done")]
    assert rows[0]["dedupe_key"] == f"event:{event['eventId']}"
    assert rows[0]["query"] == {"messageId": sent}


def hires(world: StreamWorld, count: int) -> tuple[list[str], list[str]]:
    """``count`` new members upstream, each one's event published: (their userids, the messageIds)."""
    org, dept = world.ding.org, sorted(d for d in world.ding.org.departments if d != world.ding.org.root_id)[0]
    people, sent = [], []
    for _ in range(count):
        change = mutations.add_member(org, departments=[dept])
        people.append(str(change.subject))
        sent += world.sim.stream.publish(world.ding.app_key, change)
    return people, sent


async def created_once(world: StreamWorld, people: list[str]) -> dict[str, int]:
    """How many times the worker created each of ``people`` from an event (1 each: nothing applied twice)."""
    rows = await world.pool.fetch(
        "SELECT entity_id, count(*) AS n FROM change_log WHERE entity = 'member' AND op = 'create'"
        " AND source = 'event' AND entity_id = ANY($1::text[]) GROUP BY entity_id",
        people,
    )
    return {r["entity_id"]: r["n"] for r in rows}


async def test_a_socket_killed_mid_burst_loses_nothing_acked_and_applies_redeliveries_once(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        gateway, unstored = world.sim.stream, []

        async def stored_before_ack(message_id: str, status: str) -> None:
            event_id = gateway.deliveries[message_id].frame["headers"]["eventId"]
            row = await world.pool.fetchval("SELECT id FROM inbox WHERE dedupe_key = $1", f"event:{event_id}")
            if status == "SUCCESS" and row is None:
                unstored.append(message_id)

        gateway.on_ack = stored_before_ack
        people, sent = hires(world, 120)

        async def some_acked() -> bool:
            return len(gateway.acks) >= 20

        await until(some_acked, within=10)
        await gateway.drop(world.ding.app_key)  # mid-burst: frames on the wire and unACKed ones are redelivered
        await world.connected()
        await world.delivered(sent)
        await world.drained()
        assert unstored == []  # every SUCCESS came after its row was committed
        assert len(gateway.opens) >= 2 and max(d.attempts for d in gateway.deliveries.values()) >= 1
        inbox = await world.pool.fetch("SELECT dedupe_key, status FROM inbox WHERE route = $1", ROUTE)
        assert len(inbox) == len(sent) and {r["status"] for r in inbox} == {"done"}
        assert await created_once(world, people) == dict.fromkeys(people, 1)


async def test_redelivered_and_duplicate_frames_are_applied_once(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        people, sent = hires(world, 3)
        await world.delivered(sent)
        for message_id in sent:  # DingTalk may send an event again even after its ACK
            again = world.sim.stream.deliveries[message_id].frame
            event = {**{k: again["headers"][k] for k in ("eventType", "eventId")}, "data": orjson.loads(again["data"])}
            await world.delivered([world.sim.stream.send_event(world.ding.app_key, event)])
        await world.drained()
        assert await world.pool.fetchval("SELECT count(*) FROM inbox") == 3
        assert await created_once(world, people) == dict.fromkeys(people, 1)


async def test_a_frame_that_cannot_be_stored_is_answered_later_and_stored_when_redelivered(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        await world.pool.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$;"
            "CREATE TRIGGER refuse BEFORE INSERT ON inbox FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        people, sent = hires(world, 1)

        async def later() -> bool:
            return any(a.status == "LATER" for a in world.sim.stream.acks)

        await until(later, within=10)
        assert await world.pool.fetchval("SELECT count(*) FROM inbox") == 0
        await world.pool.execute("DROP TRIGGER refuse ON inbox")
        await world.delivered(sent)
        await world.drained()
        assert await created_once(world, people) == {people[0]: 1}
        metrics = (await (await world.clients[0].get("/metrics")).read()).decode()
        assert 'corpsync_stream_acks_total{corp="Field",outcome="unavailable",status="LATER"}' in metrics


async def test_a_disconnect_frame_leads_to_a_reconnect_within_two_seconds(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        gateway = world.sim.stream
        gateway.disconnect_grace = 10.0  # as upstream: the old socket stays open for 10 s
        before = len(gateway.opens)
        started = time.monotonic()
        await gateway.disconnect(world.ding.app_key)

        async def reopened() -> bool:
            return len(gateway.opens) > before

        await until(reopened, within=2.0)
        assert gateway.opens[-1][1] - started < 2.0
        people, sent = hires(world, 2)
        await world.delivered(sent)
        await world.drained()
        assert await created_once(world, people) == dict.fromkeys(people, 1)


async def test_missed_pongs_drop_the_connection_and_it_comes_back(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        gateway = world.sim.stream
        before = len(gateway.opens)
        gateway.mute_pongs = True

        async def reopened() -> bool:
            return len(gateway.opens) > before

        await until(reopened, within=3 * FAST.heartbeat)
        gateway.mute_pongs = False
        assert world.consumer().state.last_error == "missed_ping"
        opaque = await gateway.ping(world.ding.app_key)  # SYSTEM ping: echoed

        async def echoed() -> bool:
            return set(opaque) <= set(gateway.pongs)

        await until(echoed, within=2)


async def test_ten_blind_minutes_lead_to_a_full_sync_after_reconnect(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    clock = FakeClock(1_800_000_000.0)
    async with stream_world(tmp_path, db_url, aiohttp_client, clock=clock) as world:
        gateway, consumer = world.sim.stream, world.consumer()
        gateway.offline_window = 0.2  # what is published while nobody is connected is lost after this
        gateway.refuse_open = 503
        await gateway.drop(world.ding.app_key)

        async def down() -> bool:
            return consumer.state.connected_since is None

        await until(down, within=5)
        people, _ = hires(world, 1)  # lost: nobody connected
        await asyncio.sleep(0.3)
        clock.now += 600  # ten minutes without a connection, on the consumer's clock
        gateway.refuse_open = None
        await world.connected()

        async def gap_seen() -> bool:
            reason = await world.pool.fetchval(
                "SELECT sync_request_reason FROM corps WHERE id = $1", world.app[CORP_ROWS][CORP]
            )
            return bool(reason == "stream_gap")

        await until(gap_seen, within=2)
        assert CORP in await world.app[SCHEDULER].tick()
        result = await world.app[SCHEDULER].request(CORP)
        assert result.status is RunStatus.SUCCEEDED
        active = await world.pool.fetchval("SELECT status FROM members WHERE user_id = $1", people[0])
        assert active == "active"  # the event was lost; the full sync brought the member
        assert consumer.state.json(clock())["connected"] is True


async def test_a_short_blind_spell_is_no_gap(tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]) -> None:
    clock = FakeClock(1_800_000_000.0)
    async with stream_world(tmp_path, db_url, aiohttp_client, clock=clock) as world:
        before = len(world.sim.stream.opens)
        await world.sim.stream.drop(world.ding.app_key)
        clock.now += 60

        async def reopened() -> bool:
            return len(world.sim.stream.opens) > before

        await until(reopened, within=5)

        async def recorded() -> bool:  # the reconnect's gap check has run
            at = await world.pool.fetchval("SELECT extract(epoch FROM max(live_at))::float8 FROM stream_links")
            return bool(at is not None and at >= clock.now)

        await until(recorded, within=2)
        reason = await world.pool.fetchval(
            "SELECT sync_request_reason FROM corps WHERE id = $1", world.app[CORP_ROWS][CORP]
        )
        assert reason is None


async def test_two_serve_processes_share_the_events_without_applying_any_twice(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client, processes=2) as world:
        people, sent = hires(world, 80)
        await world.delivered(sent)
        await world.drained()
        links = {a.link for a in world.sim.stream.acks}
        assert len(links) == 2  # the gateway spread the events over both connections
        inbox = await world.pool.fetch("SELECT status FROM inbox WHERE route = $1", ROUTE)
        assert len(inbox) == len(sent) and {r["status"] for r in inbox} == {"done"}
        assert await created_once(world, people) == dict.fromkeys(people, 1)


async def test_readyz_and_metrics_show_the_connection(
    tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    async with stream_world(tmp_path, db_url, aiohttp_client) as world:
        _, sent = hires(world, 2)
        await world.delivered(sent)
        ready = await (await world.clients[0].get("/readyz")).json()
        field = ready["dingtalkStream"][CORP]
        assert field["connected"] is True and field["lastFrameSeconds"] is not None and field["lastError"] is None
        assert field["connectedSince"].endswith("+00:00") and field["lastFrameAt"] is not None
        metrics = (await (await world.clients[0].get("/metrics")).read()).decode()
        assert 'corpsync_stream_connected{corp="Field"} 1.0' in metrics
        assert 'corpsync_stream_frames_total{corp="Field",kind="event"} 2.0' in metrics
        assert 'corpsync_stream_acks_total{corp="Field",outcome="accepted",status="SUCCESS"} 2.0' in metrics
        await world.sim.stream.drop(world.ding.app_key)
        await world.connected()
        metrics = (await (await world.clients[0].get("/metrics")).read()).decode()
        assert 'corpsync_stream_reconnects_total{corp="Field",reason="closed"}' in metrics
        assert "corpsync_stream_disconnected_seconds_total" in metrics
