"""Prometheus metrics, one registry per app (so tests and several apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric corpsync exports. Platform clients report through ``ClientMetrics`` (an observer)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "corpsync_callbacks", "Callback requests answered", ["platform", "route", "outcome"], registry=r
        )
        self.callback_latency = Histogram(
            "corpsync_callback_answer_seconds",
            "Time from request to answer on callback routes",
            ["platform", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inbox_batch = Histogram(
            "corpsync_inbox_commit_batch_size",
            "Callbacks committed per inbox transaction",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.inbox_backlog = Gauge("corpsync_inbox_backlog", "Pending inbox events", ["corp"], registry=r)
        self.inbox_oldest_age = Gauge(
            "corpsync_inbox_oldest_pending_seconds", "Age of the oldest pending event", ["corp"], registry=r
        )
        self.apply_latency = Histogram(
            "corpsync_apply_seconds",
            "Time from receipt to applied, per event",
            ["platform"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.events_applied = Counter(
            "corpsync_events_applied", "Inbox events applied", ["platform", "outcome"], registry=r
        )
        self.dead_letters = Counter("corpsync_dead_letters", "Events moved to dead letter", ["corp"], registry=r)
        self.sync_runs = Counter("corpsync_sync_runs", "Full sync runs finished", ["corp", "status"], registry=r)
        self.sync_duration = Histogram(
            "corpsync_sync_duration_seconds",
            "Full sync wall time",
            ["corp"],
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
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

    def render(self) -> bytes:
        return generate_latest(self.registry)


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
