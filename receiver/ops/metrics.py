"""Prometheus metrics, one registry per app (so tests and several apps in one process never collide).

Counters and histograms move as things happen in this process: callbacks (``CallbackSeries``), inbox
commits (intake), applied and dead-lettered events (the worker, through ``EventMetrics``), platform calls and
token fetches (the clients, through ``ClientMetrics``). What every process on the database shares is read at
scrape time: the gauges of database state (backlog, oldest pending event, age of the last good sync, database
up) and the full sync runs (``corpsync_sync_runs_total``, ``corpsync_sync_duration_seconds``), counted from
``sync_runs`` whichever process ran them, so any process's scrape tells the whole story.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from itertools import accumulate

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from handlers.store.feed import SubscriberState
from receiver.ops.state import StreamState, SyncRunBucket, TableState

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LATENCY_LE = [*(repr(b) for b in _LATENCY_BUCKETS), "+Inf"]  # the le labels, as prometheus_client writes them
SYNC_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)  # full sync durations, seconds
_SYNC_LE = [*(repr(b) for b in SYNC_BUCKETS), "+Inf"]
_APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class CallbackSeries:
    """Answers of one callback route: a count per outcome, and a histogram of the time to answer.

    Plain counters that ``_CallbackCollector`` turns into ``corpsync_callbacks_total`` and
    ``corpsync_callback_answer_seconds`` at scrape time. prometheus_client's own Counter and Histogram take a
    lock per increment and find the bucket in a Python loop, a cost every callback would pay.
    Everything here runs on the event loop's thread.
    """

    __slots__ = ("buckets", "outcomes", "seconds")

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {}
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one: above every bound (+Inf only)
        self.seconds = 0.0

    def observe(self, outcome: str, seconds: float) -> None:
        outcomes = self.outcomes
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        self.buckets[bisect_left(_LATENCY_BUCKETS, seconds)] += 1  # bucket i: bounds[i-1] < seconds <= bounds[i]
        self.seconds += seconds


class _CallbackCollector(Collector):
    """Exposes every CallbackSeries of one Metrics as two Prometheus families."""

    def __init__(self, series: dict[tuple[str, str], CallbackSeries]) -> None:
        self._series = series

    def collect(self) -> Iterable[Metric]:
        answers = CounterMetricFamily(
            "corpsync_callbacks", "Callback requests answered", labels=["platform", "route", "outcome"]
        )
        latency = HistogramMetricFamily(
            "corpsync_callback_answer_seconds",
            "Time from request to answer on callback routes",
            labels=["platform", "route"],
        )
        for (platform, route), series in list(self._series.items()):
            for outcome, count in list(series.outcomes.items()):
                answers.add_metric([platform, route, outcome], count)
            cumulative = list(accumulate(series.buckets))
            if cumulative[-1]:
                latency.add_metric([platform, route], list(zip(_LATENCY_LE, cumulative, strict=True)), series.seconds)
        return [answers, latency]

    def describe(self) -> Iterable[Metric]:
        return []


class _SyncRunCollector(Collector):
    """The full sync runs of every corp, as the last scrape read them from the database (absent when it could not
    be read): ``corpsync_sync_runs_total`` by corp and status, ``corpsync_sync_duration_seconds`` by corp."""

    def __init__(self) -> None:
        self.buckets: tuple[SyncRunBucket, ...] = ()

    def collect(self) -> Iterable[Metric]:
        runs = CounterMetricFamily("corpsync_sync_runs", "Full sync runs finished", labels=["corp", "status"])
        duration = HistogramMetricFamily("corpsync_sync_duration_seconds", "Full sync wall time", labels=["corp"])
        totals: dict[tuple[str, str], int] = {}
        per_corp: dict[str, tuple[list[int], list[float]]] = {}
        for b in self.buckets:
            totals[(b.name, b.status)] = totals.get((b.name, b.status), 0) + b.runs
            counts, seconds = per_corp.setdefault(b.name, ([0] * (len(SYNC_BUCKETS) + 1), [0.0]))
            counts[min(b.bucket, len(SYNC_BUCKETS))] += b.runs
            seconds[0] += b.seconds
        for (corp, status), n in totals.items():
            runs.add_metric([corp, status], n)
        for corp, (counts, seconds) in per_corp.items():
            duration.add_metric([corp], list(zip(_SYNC_LE, accumulate(counts), strict=True)), seconds[0])
        return [runs, duration]

    def describe(self) -> Iterable[Metric]:
        return []


class Metrics:
    """Every metric corpsync exports. Platform clients report through ``ClientMetrics`` (an observer)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._callback_series: dict[tuple[str, str], CallbackSeries] = {}
        r.register(_CallbackCollector(self._callback_series))
        self.inbox_batch = Histogram(
            "corpsync_inbox_commit_batch_size",
            "Callbacks committed per inbox transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.database_up = Gauge(
            "corpsync_database_up", "The database answered the last scrape (1) or not (0)", registry=r
        )
        self.inbox_backlog = Gauge("corpsync_inbox_backlog", "Pending inbox events", ["corp"], registry=r)
        self.inbox_oldest_age = Gauge(
            "corpsync_inbox_oldest_pending_seconds", "Age of the oldest pending event (0: none)", ["corp"], registry=r
        )
        self.apply_latency = Histogram(
            "corpsync_apply_seconds",
            "Time from receipt to applied, per event",
            ["platform"],
            buckets=_APPLY_BUCKETS,
            registry=r,
        )
        self.events_applied = Counter(
            "corpsync_events_applied", "Inbox events applied", ["platform", "outcome"], registry=r
        )
        self.dead_letters = Counter("corpsync_dead_letters", "Events moved to dead letter", ["corp"], registry=r)
        self._sync_runs = _SyncRunCollector()
        r.register(self._sync_runs)
        self.good_sync_age = Gauge(
            "corpsync_last_good_sync_age_seconds",
            "Seconds since the newest succeeded or quarantined full sync finished (absent: never)",
            ["corp"],
            registry=r,
        )
        self.upstream_calls = Counter("corpsync_upstream_calls", "Platform API calls", ["api", "outcome"], registry=r)
        self.upstream_seconds = Histogram(
            "corpsync_upstream_call_seconds", "Platform API call time", ["api"], buckets=_LATENCY_BUCKETS, registry=r
        )
        self.upstream_retries = Counter(
            "corpsync_upstream_retries", "Platform API retries", ["api", "reason"], registry=r
        )
        self.token_refreshes = Counter(
            "corpsync_token_refreshes", "Access tokens fetched from the platform", ["kind"], registry=r
        )
        self.purged_rows = Counter(
            "corpsync_purged_rows",
            "Rows the retention purge of this process stripped (inbox_payloads) or deleted",
            ["kind"],
            registry=r,
        )
        self.table_bytes = Gauge(
            "corpsync_table_bytes", "On-disk size of a table, with its indexes and TOAST", ["table"], registry=r
        )
        self.oldest_row_age = Gauge(
            "corpsync_oldest_row_seconds",
            "Age of a table's oldest row (inbox_payload: the oldest inbox row still holding its payload; absent: none)",
            ["table"],
            registry=r,
        )
        # DingTalk Stream (receiver.stream): this process's connections
        self.stream_frames = Counter(
            "corpsync_stream_frames", "DingTalk Stream frames received, by kind", ["corp", "kind"], registry=r
        )
        self.stream_acks = Counter(
            "corpsync_stream_acks",
            "DingTalk Stream events answered: SUCCESS once stored (or never storable), LATER when not stored",
            ["corp", "status", "outcome"],
            registry=r,
        )
        self.stream_reconnects = Counter(
            "corpsync_stream_reconnects", "DingTalk Stream connections ended or failed to open", ["corp", "reason"],
            registry=r,
        )  # fmt: skip
        self.stream_disconnected_seconds = Counter(
            "corpsync_stream_disconnected_seconds",
            "Seconds this process's DingTalk Stream consumer spent without a connection (counted on reconnect)",
            ["corp"],
            registry=r,
        )
        self.stream_connected = Gauge(
            "corpsync_stream_connected", "This process holds a DingTalk Stream connection (1) or not (0)", ["corp"],
            registry=r,
        )  # fmt: skip
        self.feed_delivered = Counter(
            "corpsync_feed_delivered", "Change events a subscriber answered 2xx", ["subscriber"], registry=r
        )
        self.feed_failed = Counter(
            "corpsync_feed_failed", "Change event sends that failed", ["subscriber", "reason"], registry=r
        )
        self.feed_pending = Gauge(
            "corpsync_feed_lag_events",
            "Change events queued for a subscriber, not delivered",
            ["subscriber"],
            registry=r,
        )
        self.feed_lag = Gauge(
            "corpsync_feed_lag_seconds", "Age of a subscriber's oldest undelivered change (0: none)", ["subscriber"],
            registry=r,
        )  # fmt: skip
        self.feed_disabled = Gauge(
            "corpsync_feed_subscriber_disabled", "1 while a subscriber is disabled for failing", ["subscriber"],
            registry=r,
        )  # fmt: skip

    def callback_series(self, platform: str, route: str) -> CallbackSeries:
        """The answers of one callback route (made once per route, at start-up: the hot path only counts)."""
        key = (platform, route)
        series = self._callback_series.get(key)
        if series is None:
            series = self._callback_series[key] = CallbackSeries()
        return series

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def purged(self, kind: str, rows: int) -> None:
        """The retention purge stripped or deleted ``rows`` rows of ``kind`` (handlers.worker.purge.KINDS)."""
        self.purged_rows.labels(kind).inc(rows)

    def observe_tables(self, tables: Iterable[TableState]) -> None:
        """Set the table gauges from a scrape-time read (none: the database did not answer; the series go)."""
        self.table_bytes.clear()
        self.oldest_row_age.clear()
        for table in tables:
            if table.bytes is not None:
                self.table_bytes.labels(table.name).set(table.bytes)
            if table.oldest_age is not None:
                self.oldest_row_age.labels(table.name).set(max(table.oldest_age, 0.0))

    def observe_database(
        self, up: bool, streams: Iterable[StreamState], sync_runs: Iterable[SyncRunBucket] = ()
    ) -> None:
        """Set the database gauges and the sync-run series from a scrape-time read. A stream or corp not in
        ``streams`` / ``sync_runs`` loses its series (so a database that did not answer leaves them absent, not
        stale); an active corp with nothing pending is read as 0, a suite's instruction stream only while it has
        pending events."""
        self.database_up.set(1 if up else 0)
        self._sync_runs.buckets = tuple(sync_runs)
        for gauge in (self.inbox_backlog, self.inbox_oldest_age, self.good_sync_age):
            gauge.clear()
        for stream in streams:
            self.inbox_backlog.labels(stream.name).set(stream.pending)
            self.inbox_oldest_age.labels(stream.name).set(stream.oldest_pending_age or 0.0)
            if stream.good_sync_age is not None:
                self.good_sync_age.labels(stream.name).set(stream.good_sync_age)

    def observe_feed(self, states: Iterable[SubscriberState]) -> None:
        """Set the subscribers' gauges from a scrape-time read."""
        for gauge in (self.feed_pending, self.feed_lag, self.feed_disabled):
            gauge.clear()
        for state in states:
            self.feed_pending.labels(state.name).set(state.pending)
            self.feed_lag.labels(state.name).set(state.lag_seconds or 0.0)
            self.feed_disabled.labels(state.name).set(0 if state.disabled_at is None else 1)


class FeedMetrics:
    """The observer the webhook delivery calls (see handlers.feed.delivery.FeedObserver)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_delivered(self, subscriber: str, seconds: float) -> None:
        self._m.feed_delivered.labels(subscriber).inc()

    def on_failed(self, subscriber: str, reason: str) -> None:
        self._m.feed_failed.labels(subscriber, reason).inc()


class ClientMetrics:
    """The observer the platform clients call (see handlers.clients)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        self._m.upstream_calls.labels(api, outcome).inc()
        self._m.upstream_seconds.labels(api).observe(seconds)

    def on_retry(self, api: str, reason: str) -> None:
        self._m.upstream_retries.labels(api, reason).inc()

    def on_token_refresh(self, kind: str) -> None:
        self._m.token_refreshes.labels(kind).inc()


class EventMetrics:
    """The observer the inbox worker calls (see handlers.worker.loop.EventObserver)."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def on_applied(self, platform: str, outcome: str, seconds: float) -> None:
        self._m.events_applied.labels(platform, outcome).inc()
        self._m.apply_latency.labels(platform).observe(seconds)

    def on_dead(self, stream: str) -> None:
        self._m.dead_letters.labels(stream).inc()
