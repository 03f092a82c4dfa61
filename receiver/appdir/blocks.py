"""The optional blocks of an element's JSON: ``rateLimits`` (corps and suite auths) and ``sync`` (corps)."""

from __future__ import annotations

import math
from dataclasses import replace

from handlers.config import RateLimits, SyncSettings
from receiver.appdir.reading import Node

_RATE_KEYS = ("callsPerSecond", "burst", "concurrency", "perApi")
_SYNC_KEYS = ("rootDeptId", "deleteThreshold", "maxAgeSeconds", "scheduleSeconds")


def rate_limits(doc: Node) -> RateLimits | None:
    node = doc.opt_child("rateLimits", _RATE_KEYS)
    if node is None:
        return None
    per_second = node.opt_number("callsPerSecond", low=0, open_low=True)
    if per_second is None:
        node.missing("callsPerSecond", "a number")
    burst = node.opt_int("burst", low=1)
    concurrency = node.opt_int("concurrency", low=1)
    per_api: dict[str, float] = {}
    apis = node.opt_child("perApi")
    if apis is not None:
        for api in sorted(apis.data):
            if not api.strip():
                apis.fail(api, "API path must not be empty")
            value = apis.opt_number(api, low=0, open_low=True)
            per_api[api] = value if value is not None else apis.missing(api, "a number")
    limits = RateLimits(
        calls_per_second=per_second,
        burst=burst if burst is not None else max(1, math.ceil(per_second)),
        per_api=per_api,
    )
    return limits if concurrency is None else replace(limits, concurrency=concurrency)


def sync_settings(doc: Node) -> SyncSettings:
    node = doc.opt_child("sync", _SYNC_KEYS)
    default = SyncSettings()
    if node is None:
        return default
    threshold = node.opt_number("deleteThreshold", low=0, high=1)
    max_age = node.opt_int("maxAgeSeconds", low=0)
    # scheduleSeconds: absent keeps the default period, null turns the schedule off
    schedule = node.opt_int("scheduleSeconds", low=1) if "scheduleSeconds" in node.data else default.schedule_seconds
    return SyncSettings(
        root_dept_id=node.opt_ident("rootDeptId"),
        delete_threshold=default.delete_threshold if threshold is None else threshold,
        max_age_seconds=default.max_age_seconds if max_age is None else max_age,
        schedule_seconds=schedule,
    )
