"""Full sync runs: one per corp at a time across processes; fetch, reconcile, leave an honest sync_runs row.

``allow_deletes=True`` does not replay the removals an earlier run held (that list may be stale): it runs a
fresh sync with the deletion guard off, and marks the quarantined runs it supersedes as confirmed. Even then
a member or department in (or under) a department whose fetch failed is not removed: its absence proves
nothing, so it stays held and the run stays ``quarantined``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import asyncpg
import orjson

from handlers.clients.protocol import Progress
from handlers.config import CorpConfig
from handlers.model import Snapshot
from handlers.store import locks, sync_runs
from handlers.sync.reconcile import Counts, Held, Merged, apply_snapshot, changes_in, empty_counts

log = logging.getLogger("corpsync.fullsync")

# A conflict with a concurrent writer of the corp's rows: the apply transaction is run again, this many times at most.
CONFLICTS = (asyncpg.TransactionRollbackError, asyncpg.UniqueViolationError)
APPLY_ATTEMPTS = 5


class SnapshotSource(Protocol):
    """A platform client, as full sync sees it."""

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot: ...


# Told which run a call of run_full_sync is, as soon as that is known: (run id or None, already running).
RunKnown = Callable[[int | None, bool], None]


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    QUARANTINED = "quarantined"  # creates and updates applied, removals held (or a fetch failed)
    FAILED = "failed"  # nothing applied
    ALREADY_RUNNING = "already_running"  # coalesced: another run of the corp holds the lock (run_id = that run)


@dataclass(frozen=True, slots=True)
class SyncResult:
    corp: str
    trigger: str
    status: RunStatus
    run_id: int | None
    counts: Counts
    api_calls: int = 0
    error: str | None = None
    held: Held | None = None
    seconds: float = 0.0  # wall time of the run
    fetch_seconds: float = 0.0  # of which reading the platform

    @property
    def changes(self) -> int:
        return changes_in(self.counts)


async def run_full_sync(
    pool: asyncpg.Pool,
    corp_row: int,
    corp: CorpConfig,
    client: SnapshotSource,
    *,
    trigger: str,
    allow_deletes: bool = False,
    progress: Progress | None = None,
    on_run: RunKnown | None = None,
) -> SyncResult:
    """Run one full sync of a corp now, or return ``ALREADY_RUNNING`` when one is under way anywhere.

    ``on_run`` learns, as soon as it is known, which run this call is: ``(run id, False)`` once its record is
    written, or ``(the running run's id, True)`` when another holds the lock (None if that one has not written
    its record yet). The pool must come from ``handlers.store.pool.create_pool`` (jsonb codec). Upstream
    failures are recorded as a failed run and returned, never raised; a database failure while recording raises.
    """
    started = time.monotonic()
    async with pool.acquire() as conn:  # the corp's lock is held on this connection for the whole run
        if not await locks.try_lock_full_sync(conn, corp_row):
            running = await sync_runs.running_run(conn, corp_row)
            log.info("full sync coalesced", extra={"action": "full_sync_coalesced", "corp": corp.name})
            if on_run is not None:
                on_run(running, True)
            return SyncResult(corp.name, trigger, RunStatus.ALREADY_RUNNING, running, empty_counts())
        try:
            return await _locked(conn, corp_row, corp, client, trigger, allow_deletes, progress, started, on_run)
        finally:
            await locks.unlock_full_sync(conn, corp_row)


async def _locked(
    conn: asyncpg.Connection,
    corp_row: int,
    corp: CorpConfig,
    client: SnapshotSource,
    trigger: str,
    allow_deletes: bool,
    progress: Progress | None,
    started: float,
    on_run: RunKnown | None,
) -> SyncResult:
    await sync_runs.fail_interrupted_runs(conn, corp_row)
    run_id = await sync_runs.start_run(conn, corp_row, trigger)
    if on_run is not None:
        on_run(run_id, False)
    await sync_runs.clear_sync_request(conn, corp_row)  # requests from now on ask for another run
    log.info("full sync started", extra={"action": "full_sync_started", "corp": corp.name, "run_id": run_id})
    calls_before, fetch_started = _calls(client), time.monotonic()
    try:
        snapshot = await client.fetch_snapshot(progress)
        if not isinstance(snapshot, Snapshot):
            raise TypeError(f"the snapshot source gave a {type(snapshot).__name__}, not a Snapshot")
    except BaseException as exc:  # any upstream or client failure: record it, apply nothing
        calls = _calls(client) - calls_before
        result = SyncResult(corp.name, trigger, RunStatus.FAILED, run_id, empty_counts(), calls)
        if not isinstance(exc, Exception):  # cancelled (shutdown): record it, then let it through
            await _record_failure(conn, result, "cancelled", started)
            raise
        return await _record_failure(conn, result, f"fetch failed: {describe_error(exc)}", started)
    fetched = _since(fetch_started)
    result = SyncResult(corp.name, trigger, RunStatus.FAILED, run_id, empty_counts(), snapshot.api_calls)
    try:
        status, merged, error = await _apply_retrying(conn, corp_row, corp, run_id, snapshot, allow_deletes)
    except asyncio.CancelledError:
        await _record_failure(conn, result, "cancelled", started)
        raise
    except Exception as exc:  # a failed statement or bad data: the transaction rolled back, nothing applied
        return await _record_failure(conn, result, f"apply failed: {describe_error(exc)}", started)
    done = SyncResult(
        corp.name, trigger, status, run_id, merged.counts, snapshot.api_calls, error, merged.held, _since(started),
        fetched,
    )  # fmt: skip
    log.info(
        "full sync finished",
        extra={
            "action": "full_sync_finished",
            "corp": corp.name,
            "run_id": run_id,
            "status": status.value,
            "changes": done.changes,
            "api_calls": snapshot.api_calls,
            "seconds": round(done.seconds, 3),
            "fetch_seconds": round(fetched, 3),
        },
    )
    return done


async def _apply_retrying(
    conn: asyncpg.Connection, corp_row: int, corp: CorpConfig, run_id: int, snapshot: Snapshot, allow_deletes: bool
) -> tuple[RunStatus, Merged, str | None]:
    """``_apply``, run again from the start (it rolled back) after a conflict with a concurrent writer of the
    corp, such as the worker applying one of its events: a deadlock PostgreSQL broke by failing this transaction,
    or a member the worker created after this transaction's diff was read."""
    for attempt in range(1, APPLY_ATTEMPTS):
        try:
            return await _apply(conn, corp_row, corp, run_id, snapshot, allow_deletes)
        except CONFLICTS as exc:
            log.info(
                "full sync apply retried",
                extra={
                    "action": "full_sync_apply_retried",
                    "corp": corp.name,
                    "run_id": run_id,
                    "attempt": attempt,
                    "error": type(exc).__name__,
                },
            )
    return await _apply(conn, corp_row, corp, run_id, snapshot, allow_deletes)


async def _apply(
    conn: asyncpg.Connection, corp_row: int, corp: CorpConfig, run_id: int, snapshot: Snapshot, allow_deletes: bool
) -> tuple[RunStatus, Merged, str | None]:
    """Merge the snapshot and finish the run's record, in one transaction: (status, what was merged, error)."""
    async with conn.transaction():
        merged = await apply_snapshot(
            conn,
            corp_row,
            run_id,
            snapshot,
            threshold=corp.sync.delete_threshold,
            allow_deletes=allow_deletes,
        )
        # Never "succeeded" when something was held or could not be fetched.
        incomplete = bool(merged.held) or bool(snapshot.skipped)
        status = RunStatus.QUARANTINED if incomplete else RunStatus.SUCCEEDED
        reasons = [_held_reason(merged.held, corp.sync.delete_threshold)] if merged.held else []
        reasons += [f"not fetched, left as it was: {part}" for part in snapshot.skipped]
        error = "; ".join(reasons) or None
        held = orjson.dumps(merged.held.as_json()).decode() if merged.held else None
        counts = orjson.dumps(merged.counts).decode()
        await sync_runs.finish_run(conn, run_id, status.value, counts, snapshot.api_calls, error, held)
        if allow_deletes and status is RunStatus.SUCCEEDED:
            await sync_runs.confirm_quarantined(conn, corp_row, run_id)
    return status, merged, error


async def _record_failure(conn: asyncpg.Connection, result: SyncResult, error: str, started: float) -> SyncResult:
    counts = orjson.dumps(result.counts).decode()
    await sync_runs.finish_run(conn, result.run_id, "failed", counts, result.api_calls, error, None)
    log.warning(
        "full sync failed",
        extra={"action": "full_sync_failed", "corp": result.corp, "run_id": result.run_id, "error": error},
    )
    return SyncResult(
        result.corp, result.trigger, RunStatus.FAILED, result.run_id, result.counts, result.api_calls, error,
        None, _since(started),
    )  # fmt: skip


def _calls(client: SnapshotSource) -> int:
    """The client's running API call count, when it keeps one (the platform clients do)."""
    calls = getattr(client, "api_calls", 0)
    return calls if isinstance(calls, int) else 0


_SECRET_PARAM = re.compile(r"(access_token|corpsecret|appsecret|suite_secret|secret|permanent_code)=[^&\s'\"]+")


def describe_error(exc: BaseException) -> str:
    """The error for sync_runs.error and the log: type and message, secrets in URLs masked, bounded length."""
    text = _SECRET_PARAM.sub(r"\1=***", str(exc))[:500]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _held_reason(held: Held, threshold: float) -> str:
    if held.reason == "failed_departments":
        shown = ", ".join(held.failed_departments[:10])
        more = "…" if len(held.failed_departments) > 10 else ""
        why = f"{len(held.failed_departments)} department fetch(es) failed ({shown}{more})"
    else:
        why = f"more than {threshold:.0%} of active members would go offline"
    return f"removals held: {why}; {len(held.departments)} departments, {len(held.members)} members"


def _since(started: float) -> float:
    return time.monotonic() - started


def format_summary(result: SyncResult) -> str:
    """A few lines for a terminal: status, counts that are not zero, what was held and why."""
    head = f"{result.corp}: {result.status.value}"
    if result.status is RunStatus.ALREADY_RUNNING:
        return f"{head} (run {result.run_id}): another full sync of this corp is under way"
    calls = f"{result.api_calls} API calls"
    lines = [f"{head} in {result.seconds:.1f} s (run {result.run_id}, trigger {result.trigger}, {calls})"]
    for entity, group in result.counts.items():
        shown = [f"{key.replace('_', ' ')} {n}" for key, n in group.items() if n]
        if shown:
            lines.append(f"  {entity:<12} " + ", ".join(shown))
    if result.status is not RunStatus.FAILED and not result.changes:
        lines.append("  no changes")
    if result.error:
        lines.append(f"  {result.error}")
    if result.held and (result.held.members or result.held.departments):
        lines.append(f"  confirm the removals with: corpsync sync {result.corp} --allow-deletes")
    return "\n".join(lines)
