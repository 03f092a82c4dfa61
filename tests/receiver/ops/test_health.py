"""Readiness and metrics of the real app: a database that goes away and comes back, a stopped worker, per-corp
sync and inbox state, and every metric moving after real callbacks, applies and syncs against the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from handlers.config import AppConfig, CorpConfig
from handlers.sync.fullsync import RunStatus, SnapshotSource, SyncResult
from handlers.sync.reconcile import empty_counts
from handlers.sync.scheduler import SyncScheduler
from receiver.api import get_corp
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.keys import CORP_ROWS, METRICS, WORKER
from receiver.ops import health
from receiver.ops.metrics import Metrics
from receiver.settings import Settings
from receiver.testing import (
    SimOrg,
    Simulator,
    generate_org,
    mutations,
    push_event,
    run_simulator,
    write_suite,
    write_wecom_corp,
)

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]

SUITE_ID = "dk0000000000000001"


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called ``name`` in the app's registry, by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == name
    }


async def until(check: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def running(client: Client) -> bool:
    return bool(client.app[WORKER].running)


async def ready(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    return response.status, body


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq000000000001")
    write_suite(tmp_path, "Suite", suite_id=SUITE_ID)
    return tmp_path


Start = Callable[..., Awaitable[Client]]


@pytest.fixture
def start(db_url: str, aiohttp_client: MakeClient) -> Start:
    """``await start(app_dir, worker=False)``: the real app on the test's database (closed before it is dropped)."""

    async def started(app_dir: Path, *, worker: bool = False) -> Client:
        settings = Settings(app_dir=app_dir, run_worker=worker, run_scheduler=False)
        return await aiohttp_client(create_app(settings, load_app_dir(app_dir, {}), db_url))

    return started


@pytest.fixture
async def admin(pg_server_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_server_url)
    yield conn
    await conn.close()


# ---- readiness ------------------------------------------------------------------------------------


async def test_ready_with_database_at_head_and_no_worker_to_run(db_url: str, start: Start, app_dir: Path) -> None:
    status, body = await ready(await start(app_dir))
    assert status == 200
    assert body["status"] == "ready" and body["reasons"] == []
    assert body["schemaVersion"] == body["schemaHead"] and body["worker"] == "off"
    assert body["corps"] == {"HQ": {"lastSync": None, "inbox": {"pending": 0, "oldestPendingSeconds": None}}}
    assert body["streams"] == {}


async def test_not_ready_while_the_database_refuses_connections_and_ready_again_after(
    db_url: str, admin: asyncpg.Connection, start: Start, app_dir: Path
) -> None:
    client = await start(app_dir, worker=True)
    name = urlsplit(db_url).path.lstrip("/")
    await until(lambda: running(client))
    assert (await ready(client))[0] == 200
    await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        for _ in range(3):  # the pool's broken connections, then the refused reconnects
            status, body = await ready(client)
            assert status == 503
            assert body["reasons"] == ["database unreachable"] and body["status"] == "not ready"
            assert body["corps"] == {} and body["schemaVersion"] is None
        text = await (await client.get("/metrics")).text()
        assert "corpsync_database_up 0.0" in text and "corpsync_inbox_backlog{" not in text
        await asyncio.sleep(1.5)  # the worker's loop meets the broken pool too, and must live through it
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    status, body = await ready(client)
    assert status == 200 and body["reasons"] == [] and "HQ" in body["corps"] and body["worker"] == "running"
    assert "corpsync_database_up 1.0" in await (await client.get("/metrics")).text()


async def test_schema_missing_or_not_at_head_is_not_ready(db_url: str, start: Start, app_dir: Path) -> None:
    client = await start(app_dir)
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TEMP TABLE kept AS SELECT * FROM schema_migrations")
            await conn.execute("DELETE FROM schema_migrations")
        status, body = await ready(client)
        assert (status, body["reasons"], body["schemaVersion"]) == (503, ["schema missing"], None)
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (9999, 'from_the_future')")
        status, body = await ready(client)
        assert (status, body["reasons"], body["schemaVersion"]) == (503, ["schema not at head"], 9999)
        assert body["corps"] == {}
        await conn.execute("DELETE FROM schema_migrations; INSERT INTO schema_migrations SELECT * FROM kept")
    finally:
        await conn.close()
    assert (await ready(client))[0] == 200


async def test_a_stopped_worker_is_not_ready(db_url: str, start: Start, app_dir: Path) -> None:
    client = await start(app_dir, worker=True)
    await until(lambda: running(client))
    status, body = await ready(client)
    assert (status, body["worker"]) == (200, "running")
    loop = next(t for t in asyncio.all_tasks() if t.get_name() == "corpsync-worker")
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    status, body = await ready(client)
    assert (status, body["worker"], body["reasons"]) == (503, "stopped", ["worker stopped"])


async def test_a_stalled_worker_loop_is_not_ready(start: Start, app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "WORKER_STALL", 0.3)
    client = await start(app_dir, worker=True)
    worker = client.app[WORKER]
    worker.settings = replace(worker.settings, poll_interval=0.01)
    await until(lambda: running(client))
    release = asyncio.Event()
    pool: asyncpg.Pool = worker.pool

    class Stuck:  # the worker's pool, but one look at the inbox does not come back, as on a dead connection
        def __getattr__(self, name: str) -> Any:
            return getattr(pool, name)

        async def fetch(self, *args: Any) -> list[asyncpg.Record]:
            await release.wait()
            rows: list[asyncpg.Record] = await pool.fetch(*args)
            return rows

    monkeypatch.setattr(worker, "pool", Stuck())
    await asyncio.sleep(0.5)
    status, body = await ready(client)
    assert (status, body["worker"], body["reasons"]) == (503, "stalled", ["worker stalled"])
    monkeypatch.setattr(worker, "pool", pool)
    release.set()

    async def recovered() -> bool:
        return (await ready(client))[0] == 200

    await until(recovered)


async def test_a_database_too_slow_to_answer_is_not_ready(
    db_url: str, start: Start, app_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "TIMEOUT", 0.3)
    client = await start(app_dir)
    conn = await asyncpg.connect(db_url)
    try:
        async with conn.transaction():  # the per-corp read now waits for this lock, longer than a probe may
            await conn.execute("LOCK TABLE inbox_streams IN ACCESS EXCLUSIVE MODE")
            status, body = await ready(client)
            assert (status, body["reasons"], body["corps"]) == (503, ["database timeout"], {})
            assert body["schemaVersion"] == body["schemaHead"]
    finally:
        await conn.close()
    assert (await ready(client))[0] == 200


async def test_reports_each_corps_last_sync_and_pending_inbox_without_turning_unready(
    db_url: str, start: Start, app_dir: Path
) -> None:
    client = await start(app_dir)
    hq = client.app[CORP_ROWS]["HQ"]
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO sync_runs (corp, trigger, status, started_at, finished_at) VALUES "
            "($1, 'first', 'succeeded', now() - interval '2 hours', now() - interval '110 minutes'),"
            "($1, 'schedule', 'failed', now() - interval '10 minutes', now() - interval '9 minutes'),"
            "($1, 'drift', 'running', now() - interval '1 minute', NULL)",
            hq,
        )
        rows = [
            ("HQ", hq, "a", "pending", "15 minutes"),
            ("HQ", hq, "b", "pending", "1 minute"),
            ("HQ", hq, "c", "done", "1 hour"),
            ("HQ", hq, "d", "dead", "2 hours"),
            ("suite:Suite", None, "e", "pending", "30 seconds"),
        ]
        await conn.execute("INSERT INTO inbox_streams (stream) VALUES ('HQ'), ('suite:Suite')")  # as intake does
        for stream, corp, key, row_status, age in rows:
            await conn.execute(
                "INSERT INTO inbox (stream, platform, route, corp, dedupe_key, received_at, query, body, plaintext,"
                " status) VALUES ($1, 'wecom', 'wecom', $2, $3, now() - $5::text::interval, '{}', '', '', $4)",
                stream,
                corp,
                key,
                row_status,
                age,
            )
    finally:
        await conn.close()
    status, body = await ready(client)
    assert status == 200 and body["reasons"] == []
    corp = body["corps"]["HQ"]
    assert corp["lastSync"]["status"] == "failed"  # the newest finished run; the running one has no age yet
    assert 9 * 60 - 5 < corp["lastSync"]["ageSeconds"] < 9 * 60 + 60
    assert corp["inbox"]["pending"] == 2
    assert 15 * 60 - 5 < corp["inbox"]["oldestPendingSeconds"] < 15 * 60 + 60
    suite = body["streams"]["suite:Suite"]
    assert suite["pending"] == 1 and 25 < suite["oldestPendingSeconds"] < 90

    await client.get("/metrics")
    metrics = client.app[METRICS]
    assert samples(metrics, "corpsync_inbox_backlog") == {(("corp", "HQ"),): 2.0, (("corp", "suite:Suite"),): 1.0}
    oldest = samples(metrics, "corpsync_inbox_oldest_pending_seconds")
    assert 15 * 60 - 5 < oldest[(("corp", "HQ"),)] < 15 * 60 + 60
    good = samples(metrics, "corpsync_last_good_sync_age_seconds")[(("corp", "HQ"),)]
    assert 110 * 60 - 5 < good < 110 * 60 + 60  # the failed run does not count as good
    # Runs this process did not run (written by another one) are counted: read from the database, not the process.
    runs = samples(metrics, "corpsync_sync_runs_total")
    assert runs == {(("corp", "HQ"), ("status", "succeeded")): 1.0, (("corp", "HQ"), ("status", "failed")): 1.0}
    buckets = samples(metrics, "corpsync_sync_duration_seconds_bucket")
    assert buckets[(("corp", "HQ"), ("le", "30.0"))] == 0.0
    assert buckets[(("corp", "HQ"), ("le", "60.0"))] == 1.0  # the failed run: 60 s
    assert buckets[(("corp", "HQ"), ("le", "600.0"))] == 2.0  # the first run: 600 s (le: at most)
    assert samples(metrics, "corpsync_sync_duration_seconds_count") == {(("corp", "HQ"),): 2.0}
    assert samples(metrics, "corpsync_sync_duration_seconds_sum") == {(("corp", "HQ"),): pytest.approx(660.0)}


# ---- metrics against the simulator ----------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with run_simulator(Simulator(seed=5)) as running:
        yield running


@pytest.fixture
def org(sim: Simulator, tmp_path: Path) -> SimOrg:
    org = generate_org(5, members=12, departments=4, depth=2, tags=1)
    account = sim.add_wecom_corp(org, contact_new_ip=False, privacy=False)
    write_wecom_corp(
        tmp_path,
        "HQ",
        corp_id=account.corp_id,
        secret=account.secret,
        contact_secret=account.contact_secret,
        api_base=sim.wecom_api_base,
        token=account.token,
        aes_key=account.aes_key,
    )
    return org


async def test_a_sync_through_the_api_counts_the_run_its_duration_upstream_calls_and_tokens(
    sim: Simulator, org: SimOrg, start: Start, tmp_path: Path
) -> None:
    client = await start(tmp_path)
    metrics = client.app[METRICS]
    sim.fail("wecom:department/list")  # one "system busy": the client retries
    response = await client.post("/api/corps/HQ/sync", json={})
    assert response.status == 202, await response.text()

    async def finished() -> bool:
        await client.get("/metrics")  # the runs are read from the database at scrape time
        return bool(samples(metrics, "corpsync_sync_runs_total"))

    await until(finished, 30)
    assert samples(metrics, "corpsync_sync_runs_total") == {(("corp", "HQ"), ("status", "succeeded")): 1.0}
    assert samples(metrics, "corpsync_sync_duration_seconds_count") == {(("corp", "HQ"),): 1.0}
    calls = samples(metrics, "corpsync_upstream_calls_total")
    assert calls[(("api", "department/list"), ("outcome", "error"))] == 1.0
    assert calls[(("api", "department/list"), ("outcome", "ok"))] >= 1.0
    assert sum(calls.values()) == sum(sim.calls.values())  # every request the simulator saw, counted once
    assert sum(samples(metrics, "corpsync_upstream_call_seconds_count").values()) == sum(calls.values())
    retries = samples(metrics, "corpsync_upstream_retries_total")
    assert retries == {(("api", "department/list"), ("reason", "errcode:-1")): 1.0}
    refreshes = samples(metrics, "corpsync_token_refreshes_total")
    assert sum(refreshes.values()) == sim.calls["wecom:gettoken"] >= 1

    text = await (await client.get("/metrics")).text()
    assert 'corpsync_sync_runs_total{corp="HQ",status="succeeded"} 1.0' in text
    assert 'corpsync_last_good_sync_age_seconds{corp="HQ"}' in text
    status, body = await ready(client)
    assert status == 200 and body["corps"]["HQ"]["lastSync"]["status"] == "succeeded"


async def test_a_corp_from_get_corp_reaches_the_platform_through_the_apps_clients(
    sim: Simulator, org: SimOrg, start: Start, tmp_path: Path
) -> None:
    client = await start(tmp_path)
    metrics = client.app[METRICS]
    corp = await get_corp(client.app, "HQ")
    data = await corp.get_third_corp_data()  # a whole read of the platform's directory, outside any sync
    assert len(data.snapshot.members) == len(org.members)
    calls = samples(metrics, "corpsync_upstream_calls_total")
    assert calls and sum(calls.values()) == sum(sim.calls.values())  # every request the simulator saw, counted
    assert sum(samples(metrics, "corpsync_token_refreshes_total").values()) == sim.calls["wecom:gettoken"] >= 1


async def test_the_worker_reports_applied_events_with_their_latency(
    db_url: str, org: SimOrg, start: Start, tmp_path: Path
) -> None:
    client = await start(tmp_path, worker=True)
    metrics = client.app[METRICS]
    config: AppConfig = load_app_dir(tmp_path, {})
    change = mutations.add_member(org, "newcomer", name="New", departments=[org.visible_root])
    for plaintext in change.wecom:
        assert (await push_event(client, config, "HQ", plaintext)).status == 200

    async def applied() -> bool:
        return bool(samples(metrics, "corpsync_events_applied_total"))

    await until(applied)
    assert samples(metrics, "corpsync_events_applied_total") == {(("outcome", "done"), ("platform", "wecom")): 1.0}
    assert samples(metrics, "corpsync_apply_seconds_count") == {(("platform", "wecom"),): 1.0}
    waited = samples(metrics, "corpsync_apply_seconds_sum")[(("platform", "wecom"),)]
    assert 0 <= waited < 10
    callbacks = samples(metrics, "corpsync_callbacks_total")
    assert callbacks[(("outcome", "accepted"), ("platform", "wecom"), ("route", "wecom"))] == 1.0
    assert samples(metrics, "corpsync_inbox_commit_batch_size_count") == {(): 1.0}
    await client.get("/metrics")
    assert samples(metrics, "corpsync_inbox_backlog") == {(("corp", "HQ"),): 0.0}


async def test_a_dead_lettered_event_is_counted_for_its_corp(db_url: str, start: Start, app_dir: Path) -> None:
    client = await start(app_dir)
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO inbox (stream, platform, route, corp, dedupe_key, query, body, plaintext) "
            "VALUES ('HQ', 'wecom', 'wecom', $1, 'broken', '{}', '', 'not xml at all')",
            client.app[CORP_ROWS]["HQ"],
        )
        assert await client.app[WORKER].run_until_idle() == 1
        assert await conn.fetchval("SELECT status FROM inbox WHERE dedupe_key = 'broken'") == "dead"
    finally:
        await conn.close()
    metrics = client.app[METRICS]
    assert samples(metrics, "corpsync_dead_letters_total") == {(("corp", "HQ"),): 1.0}
    assert samples(metrics, "corpsync_events_applied_total") == {}


async def test_api_sync_tasks_report_each_finished_run_once() -> None:
    seen: list[SyncResult] = []

    class Stub(SyncScheduler):
        async def _sync(
            self, corp: CorpConfig, trigger: str, allow_deletes: bool, progress: Any, on_run: Any = None
        ) -> SyncResult:
            await asyncio.sleep(0.01)
            return SyncResult("T1", trigger, RunStatus.SUCCEEDED, 7, empty_counts(), seconds=0.01)

    class Named:
        name = "T1"

    tasks = Stub(cast(asyncpg.Pool, None), {}, lambda _: cast(SnapshotSource, None), on_finished=seen.append)
    first, fresh = tasks.start(cast(CorpConfig, Named()), "api")
    again, fresh_again = tasks.start(cast(CorpConfig, Named()), "api")
    assert (again, fresh, fresh_again) == (first, True, False)
    await first
    await asyncio.sleep(0)
    assert [r.run_id for r in seen] == [7]
