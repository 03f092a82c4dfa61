"""Bounded data in the running app: retention settings, the background purge beside the worker, and the table
sizes and oldest-row ages /metrics reports."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from handlers.errors import ConfigError
from handlers.worker.purge import Retention
from receiver.app import create_app
from receiver.appdir import load_app_dir
from receiver.settings import Settings, settings_from_env
from receiver.testing import write_wecom_corp

Client = TestClient[Any, Any]


def test_retention_periods_are_read_with_units_or_never() -> None:
    default = settings_from_env({}).retention
    assert (default.payloads, default.inbox) == (timedelta(days=7), timedelta(days=30))
    assert (default.change_log, default.sync_runs, default.interval) == (timedelta(days=365), timedelta(days=90), 60)
    read = settings_from_env(
        {
            "CORPSYNC_RETAIN_PAYLOADS": "90s",
            "CORPSYNC_RETAIN_INBOX": "15m",
            "CORPSYNC_RETAIN_CHANGE_LOG": "never",
            "CORPSYNC_RETAIN_SYNC_RUNS": "12h",
            "CORPSYNC_PURGE_INTERVAL": "5",
        }
    ).retention
    assert (read.payloads, read.inbox, read.change_log) == (timedelta(seconds=90), timedelta(minutes=15), None)
    assert (read.sync_runs, read.interval) == (timedelta(hours=12), 5.0)
    assert settings_from_env({"CORPSYNC_RETAIN_INBOX": "3600"}).retention.inbox == timedelta(hours=1)
    for bad in ("7 days", "0", "-1d", "1w", "forever"):
        with pytest.raises(ConfigError, match="CORPSYNC_RETAIN_PAYLOADS: expected a period"):
            settings_from_env({"CORPSYNC_RETAIN_PAYLOADS": bad})


async def _old_rows(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute(
            "INSERT INTO inbox (stream, platform, route, dedupe_key, query, body, plaintext, status, received_at)"
            " SELECT 'HQ', 'wecom', 'wecom', 'k' || n, '{}', 'raw', '<xml/>', 'done', now() - interval '2 hours'"
            " FROM generate_series(1, 50) n"
        )
    finally:
        await conn.close()


async def _scrape(client: Client) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(("corpsync_table_bytes", "corpsync_oldest_row_seconds", "corpsync_purged_rows_total"))
    }


async def test_serve_purges_in_the_background_and_metrics_show_sizes_ages_and_purged_rows(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path, db_url: str
) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq000000000001")
    await _old_rows(db_url)
    retention = Retention(payloads=timedelta(hours=1), inbox=None, interval=0.1, pause=0.0)
    settings = Settings(app_dir=tmp_path, run_scheduler=False, retention=retention)
    client = await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))
    for _ in range(100):
        scraped = await _scrape(client)
        if scraped.get('corpsync_purged_rows_total{kind="inbox_payloads"}') == 50:
            break
        await asyncio.sleep(0.1)
    assert scraped['corpsync_purged_rows_total{kind="inbox_payloads"}'] == 50
    # A scrape reads the tables before it renders the counters: the one that first shows 50 may have read them
    # while the last batch was committing. The next one reads them after.
    scraped = await _scrape(client)
    assert scraped['corpsync_table_bytes{table="inbox"}'] > 8192
    assert 7100 < scraped['corpsync_oldest_row_seconds{table="inbox"}'] < 7300
    assert 'corpsync_oldest_row_seconds{table="inbox_payload"}' not in scraped  # every payload is gone
    assert 'corpsync_oldest_row_seconds{table="change_log"}' not in scraped  # empty


async def test_no_background_purge_without_the_worker_or_with_interval_zero(
    aiohttp_client: Callable[..., Awaitable[Client]], tmp_path: Path, db_url: str
) -> None:
    write_wecom_corp(tmp_path, "HQ", corp_id="wwhq000000000001")
    await _old_rows(db_url)
    quick = Retention(payloads=timedelta(hours=1), interval=0.05)
    for settings in (
        Settings(app_dir=tmp_path, run_scheduler=False, run_worker=False, retention=quick),
        Settings(app_dir=tmp_path, run_scheduler=False, retention=Retention(payloads=timedelta(hours=1), interval=0)),
    ):
        client = await aiohttp_client(create_app(settings, load_app_dir(tmp_path, {}), db_url))
        await asyncio.sleep(0.5)
        scraped = await _scrape(client)
        assert 'corpsync_oldest_row_seconds{table="inbox_payload"}' in scraped
        await client.close()
