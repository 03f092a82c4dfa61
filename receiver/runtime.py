"""The composition root: the database pool, the HTTP session to the platforms, the rate limiters, the platform
clients (reporting to the metrics), the inbox worker and the full-sync scheduler are built here and nowhere else.

``serve`` opens a ``Runtime`` in the app's cleanup contexts (receiver.app); the CLI's one-shot commands, ``demo``,
``receiver.api.get_corp`` and the tests take theirs from here too.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
import asyncpg

from handlers.api import Corp
from handlers.clients import LimiterRegistry, PlatformClient, SuiteClient, http_session, make_client
from handlers.clients.observe import ClientObserver
from handlers.config import AppConfig, CorpConfig, SuiteAuth, WecomProxyCorp
from handlers.events import CorpRef, Services
from handlers.events.suite import ADDS_TENANTS, REMOVES_TENANTS
from handlers.store import pool as db
from handlers.store.corps import ensure_corps, runtime_tenants
from handlers.sync.scheduler import SchedulerSettings, SyncScheduler
from handlers.worker.loop import EventObserver, Worker, WorkerSettings
from receiver.callbacks.tenants import ActiveTenants
from receiver.ops.metrics import ClientMetrics, EventMetrics, Metrics

POOL_SIZE = 20  # the least pool a process opens
INTAKE_CONNECTIONS = 2  # the intake's groups in flight (receiver.callbacks.intake.Intake max_in_flight)
OTHER_CONNECTIONS = 2  # the scheduler's look for due corps, the API and the probes
FEED_CONNECTIONS = 3  # the change feed's stream locks, its fan-out and its sends (handlers.feed; LISTEN has its own)


def pool_size(sync_parallel: int, worker: WorkerSettings | None = None) -> int:
    """A pool large enough for every user at once, so that full syncs never keep the intake or the worker waiting
    for a connection: each sync holds one for its run and may take another to renew a token, each stream the worker
    drains holds one."""
    drains = (worker or WorkerSettings()).concurrency
    return max(POOL_SIZE, INTAKE_CONNECTIONS + drains + 2 * sync_parallel + OTHER_CONNECTIONS + FEED_CONNECTIONS)


@contextlib.asynccontextmanager
async def database(
    url: str, *, min_size: int = 2, max_size: int = 20, migrate: bool = False
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on ``url`` (json/jsonb through orjson), its schema brought to head first when ``migrate``."""
    pool = await db.create_pool(url, min_size=min_size, max_size=max_size)
    try:
        if migrate:
            async with pool.acquire() as conn:
                await db.migrate(conn)
        yield pool
    finally:
        await pool.close()


class ConfigClients:
    """One platform client per corps row, built once: configured corps from the app dir, suite tenants
    registered at run time as a ``WecomProxyCorp`` of their auth. None for a corp the config cannot serve."""

    def __init__(self, config: AppConfig, make: Callable[[CorpConfig], PlatformClient]) -> None:
        self._config = config
        self._make = make
        self._clients: dict[str, PlatformClient | None] = {}

    async def client(self, corp: CorpRef) -> PlatformClient | None:
        if corp.name not in self._clients:
            config: CorpConfig | None = self._config.corps.get(corp.name)
            auth = self._config.auths.get(corp.auth_name or "")
            if config is None and auth is not None:
                config = WecomProxyCorp(name=corp.name, title=corp.name, corp_id=corp.corp_id, auth=auth)
            self._clients[corp.name] = None if config is None else self._make(config)
        return self._clients[corp.name]


def build_worker(
    pool: asyncpg.Pool,
    config: AppConfig,
    session: aiohttp.ClientSession,
    settings: WorkerSettings | None = None,
    *,
    limiters: LimiterRegistry | None = None,
    observer: ClientObserver | None = None,
    events: EventObserver | None = None,
    on_instruction: Callable[[str], None] | None = None,
) -> Worker:
    """An inbox worker with real platform clients sharing one limiter registry."""
    registry = limiters or LimiterRegistry()
    suites: dict[str, SuiteClient] = {}

    def make(corp: CorpConfig) -> PlatformClient:
        return make_client(corp, session, pool, observer=observer, limiters=registry)

    def suite_api(auth: SuiteAuth) -> SuiteClient:
        if auth.name not in suites:
            suites[auth.name] = SuiteClient(auth, session, pool, observer=observer, limiters=registry)
        return suites[auth.name]

    services = Services(clients=ConfigClients(config, make), config=config, suite_api=suite_api, pool=pool)
    return Worker(pool, services, settings, events=events, on_instruction=on_instruction)


class Runtime:
    """What one process shares: pool, HTTP session, rate limiters and metrics; and what is built from them.

    Every platform client made here paces itself with the same ``limiters`` and reports to ``metrics`` (when
    given), so the worker, the scheduler and the API's corps count and throttle one process's calls together.
    """

    def __init__(
        self,
        config: AppConfig,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        *,
        corp_rows: dict[str, int] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.session = session
        self.corp_rows = corp_rows if corp_rows is not None else {}  # configured corp name → corps row id
        self.metrics = metrics
        self.limiters = LimiterRegistry()
        self.tenants = ActiveTenants(pool, config.auths)  # the suite data URL's receive-ids
        self._observer = None if metrics is None else ClientMetrics(metrics)
        self._schedulers: list[SyncScheduler] = []

    def client(self, corp: CorpConfig) -> PlatformClient:
        """The platform client of a corp."""
        return make_client(corp, self.session, self.pool, observer=self._observer, limiters=self.limiters)

    def worker(self, settings: WorkerSettings | None = None) -> Worker:
        """The inbox worker (not started)."""
        events = None if self.metrics is None else EventMetrics(self.metrics)
        return build_worker(
            self.pool, self.config, self.session, settings, limiters=self.limiters, observer=self._observer,
            events=events, on_instruction=self._instruction_applied,
        )  # fmt: skip

    def _instruction_applied(self, event_type: str) -> None:
        """The worker applied a suite instruction: the tenants it added or took away are read again, and the
        scheduler looks for a tenant to sync at once."""
        if event_type in ADDS_TENANTS:
            self.tenants.changed(removed=False)
            for scheduler in self._schedulers:
                scheduler.wake()
        elif event_type in REMOVES_TENANTS:
            self.tenants.changed(removed=True)

    def scheduler(self, settings: SchedulerSettings | None = None) -> SyncScheduler:
        """The full-sync scheduler (its loop not started): the owner of every full sync this process runs."""
        pool, config = self.pool, self.config

        async def discover() -> dict[str, CorpConfig]:
            return dict(await runtime_tenants(pool, config))

        built = SyncScheduler(
            pool,
            config.corps,
            self.client,
            settings,
            discover=discover if config.auths else None,
        )
        self._schedulers.append(built)
        return built

    async def corp(self, name: str) -> Corp:
        """The corp named ``name``: configured (``corps/<name>``) or a suite tenant (``<auth>/<corpid>``).

        Raises ``UnknownCorp`` for any other name. Its platform calls go through this runtime's clients.
        """
        corp = self.config.corps.get(name)
        row_id = self.corp_rows.get(name) if corp is not None else None
        if corp is not None and row_id is not None:
            return Corp(self.pool, self.config, corp, row_id, session=self.session, clients=self.client)
        return await Corp.open(self.pool, self.config, name, session=self.session, clients=self.client)


@contextlib.asynccontextmanager
async def open_runtime(
    url: str,
    config: AppConfig,
    *,
    metrics: Metrics | None = None,
    min_size: int = 2,
    max_size: int = 20,
    register: bool = True,
) -> AsyncIterator[Runtime]:
    """A ``Runtime`` on a migrated database; with ``register``, every configured corp has its corps row.

    The session closes before the pool, on every way out.
    """
    async with database(url, min_size=min_size, max_size=max_size, migrate=True) as pool:
        corp_rows: dict[str, int] = {}
        if register:
            async with pool.acquire() as conn:
                corp_rows = await ensure_corps(conn, config)
        async with http_session() as session:
            runtime = Runtime(config, pool, session, corp_rows=corp_rows, metrics=metrics)
            try:
                yield runtime
            finally:
                await runtime.tenants.close()
