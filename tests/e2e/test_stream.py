"""DingTalk Stream mode end to end: the simulator's gateway sends EVENT frames over a real WebSocket to the real
app, which stores each in the inbox before it ACKs, and the worker applies them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from receiver.testing import mutations
from receiver.stream.consumer import ROUTE
from tests.support.paths import PROTOCOL_EVENTS
from tests.support.streaming import stream_world

STREAM_SAMPLES = sorted((PROTOCOL_EVENTS / "dingtalk" / "stream").glob("*.json"))


@pytest.mark.parametrize("sample", STREAM_SAMPLES, ids=lambda p: p.stem)
async def test_every_published_stream_sample_arrives_over_the_socket_and_is_applied(
    sample: Path, tmp_path: Path, db_url: str, aiohttp_client: Callable[..., Any]
) -> None:
    event = orjson.loads(sample.read_bytes())
    async with stream_world(tmp_path, db_url, aiohttp_client, members=5) as world:
        event["eventCorpId"] = world.ding.corp_id  # the published samples' corp is masked
        sent = world.sim.stream.send_event(world.ding.app_key, event)
        await world.delivered([sent])
        await world.drained()
        rows = await world.pool.fetch("SELECT route, event_type, dedupe_key, status, query FROM inbox")
    assert [(r["route"], r["event_type"], r["status"]) for r in rows] == [(ROUTE, event["eventType"], "done")]
    assert rows[0]["dedupe_key"] == f"event:{event['eventId']}"
    assert rows[0]["query"] == {"messageId": sent}
