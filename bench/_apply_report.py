"""What bench/apply.py prints: answer→applied percentiles, the backlog, a timeline, CPU, the worker's transactions."""

from __future__ import annotations

import argparse
import io
import os
import pstats
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

P99_TARGET_MS = 250.0
BACKLOG_TARGET_S = 1.0
APPLIED = frozenset({"done", "ignored"})


@dataclass(frozen=True)
class InboxState:
    status: str
    attempts: int
    applied: float | None  # extract(epoch FROM applied_at): PostgreSQL's clock_timestamp() when it was marked


@dataclass(frozen=True)
class Outcome:
    """Everything one run measured."""

    synced: list[str]  # corpsync sync's summary per corp
    mix: dict[str, int]  # events per change kind
    events: int
    corp_of: list[int]  # per event (global order): its corp index
    inbox: dict[int, InboxState]  # per event: its inbox row, when it has one
    loaders: list[dict[str, Any]]  # bench/_load.py's results, with answer logs
    cpu_before: dict[str, float]
    cpu_after: dict[str, float]
    samples: list[tuple[float, float, float]]  # once a second: (time.time(), machine busy, ours) CPU seconds
    drained: bool
    calls: dict[str, int]  # upstream API calls during the run
    sync_requests: list[str]
    log_text: str
    profile: Path | None
    differences: Counter[str]  # local directory vs the upstream orgs after the run, per field
    overtaken: dict[str, tuple[int, float]]  # stream: (rows applied before an older row of theirs, worst lag s)
    statements: dict[str, list[float]]  # --timings: seconds of each statement the applying server awaited


def pct(values: Sequence[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))] if values else float("nan")


def spread(values: list[float]) -> str:
    """p50/p90/p99/max (and min) of seconds, in ms; ``values`` sorted."""
    marks = " ".join(f"p{int(q * 100)} {pct(values, q) * 1e3:.1f}" for q in (0.5, 0.9, 0.99))
    return f"{marks}  max {values[-1] * 1e3:.1f}  (min {values[0] * 1e3:.1f}) ms" if values else "no events"


def cpu_lines(before: dict[str, float], after: dict[str, float], loader_cpu: float, wall: float) -> list[str]:
    used = {k: after[k] - before.get(k, 0.0) for k in after}
    used["loaders"] = loader_cpu  # what the loaders measured over their own timed section
    groups = [g for g in ("server", "worker", "postgres", "loaders", "upstream") if g in used]
    ours = sum(used[g] for g in groups)
    others = used["machine_busy"] - ours
    share = ", ".join(f"{g} {used[g] / wall * 100:.0f}%" for g in groups)
    waits = ", ".join(f"{g} {used['wait_' + g] / wall * 100:.0f}%" for g in groups)
    return [
        f"cpu, timed section (% of one core): {share}; not ours (other work on the machine) {others / wall * 100:.0f}%;"
        f" machine busy {used['machine_busy'] / wall * 100:.0f}% of {used['machine_total'] / wall * 100:.0f}%",
        f"  runnable but waiting for a CPU (main threads; postgres = its backends + WAL writer): {waits}",
    ]


def timeline(
    answers: list[tuple[float, float | None]],
    timed: list[tuple[float, float]],
    samples: list[tuple[float, float, float]],
    width: float = 5.0,
) -> list[str]:
    """Per ``width`` seconds from the first timed answer: answers and applies per second, the backlog at the
    window's end, answer→applied of the timed events answered in it, and the machine's CPU (all, not ours).

    ``answers``: (answered at, applied at or None) of every 200; ``timed``: (answered at, latency), sorted."""
    if not timed:
        return []
    start = timed[0][0]
    end = max(max(a for a, _ in answers), max((p for _, p in answers if p is not None), default=0.0))
    lines = [
        f"timeline ({width:.0f} s windows from the first timed answer; CPU in % of one core):",
        "       t  answered/s  applied/s  backlog at end  answer→applied p50 / p99 ms  machine busy  not ours",
    ]
    k = 0
    while start + k * width <= end:
        lo, hi = start + k * width, start + (k + 1) * width
        answered = sum(1 for a, _ in answers if lo <= a < hi)
        applied = sum(1 for _, p in answers if p is not None and lo <= p < hi)
        backlog = sum(1 for a, p in answers if a < hi and (p is None or p >= hi))
        values = sorted(lat for a, lat in timed if lo <= a < hi)
        marks = f"{pct(values, 0.5) * 1e3:8.0f} / {pct(values, 0.99) * 1e3:6.0f}" if values else ""
        cpu = [(busy, ours) for t, busy, ours in samples if lo < t <= hi]
        usage = ""
        if cpu:
            busy = sum(b for b, _ in cpu) / len(cpu) * 100
            usage = f"{busy:11.0f}%  {sum(b - o for b, o in cpu) / len(cpu) * 100:7.0f}%"
        lines.append(f"  {k * width:5.0f}s  {answered / width:10.0f}  {applied / width:9.0f}  {backlog:14d}  "
                     f"{marks:>27}  {usage}")  # fmt: skip
        k += 1
    return lines


def batch_lines(log_text: str, wall: float) -> list[str]:
    """The worker's debug log: transactions of several events (events_applied) and single events."""
    together: list[tuple[int, float]] = []
    single: list[float] = []
    for line in log_text.splitlines():
        if not line.startswith("{"):
            continue
        event = orjson.loads(line)
        if event.get("action") == "events_applied":
            together.append((int(event["rows"]), float(event["ms"])))
        elif event.get("action") == "event_applied":
            single.append(float(event["ms"]))
    if not together and not single:
        return ["  worker log: no apply transactions logged"]
    rows = sorted(r for r, _ in together) or [0]
    ms = sorted(m for _, m in together) or [0.0]
    busy = (sum(ms) + sum(single)) / 1e3
    return [
        f"worker transactions (whole run: warm-up and drain included): {len(together)} of several events, events each"
        f" p50 {pct(rows, 0.5):.0f} / p99 {pct(rows, 0.99):.0f} / max {rows[-1]}, ms each p50 {pct(ms, 0.5):.1f} / "
        f"p99 {pct(ms, 0.99):.1f} / max {ms[-1]:.1f}, {sum(ms) / max(1, sum(rows)):.2f} ms per event; "
        f"{len(single)} single-event; applying {busy / wall * 100:.0f}% of the timed wall time"
    ]


def statement_lines(statements: dict[str, list[float]], events: int, top: int = 14) -> list[str]:
    """The statements the applying server awaited, most frequent first: count per answered event and the
    time from call to result (PostgreSQL's work, the trip, and waiting for the event loop to resume)."""
    lines = [
        "statements awaited by the server (whole run; call → result, in ms):",
        f"  {'statement':<32} {'count':>7} {'per event':>9} {'p50':>6} {'p99':>7} {'total s':>8}",
    ]
    ranked = sorted(statements.items(), key=lambda item: -len(item[1]))
    for name, times in ranked[:top]:
        ordered = sorted(times)
        lines.append(
            f"  {name[:32]:<32} {len(times):7d} {len(times) / max(events, 1):9.2f} {pct(ordered, 0.5) * 1e3:6.2f} "
            f"{pct(ordered, 0.99) * 1e3:7.2f} {sum(times):8.1f}"
        )
    total = sum(len(t) for t in statements.values())
    lines.append(f"  all {len(statements)} kinds: {total} statements, {total / max(events, 1):.2f} per event")
    return lines


def profile_lines(path: Path, timer: str, top: int = 30) -> list[str]:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return ["", f"server profile (cProfile, {timer} time, whole process lifetime):", out.getvalue()]


def order_line(overtaken: dict[str, tuple[int, float]]) -> str:
    if not overtaken:
        return "order: every stream applied in inbox order  OK"
    return "order: VIOLATED - " + ", ".join(
        f"{stream}: {n} events applied before an older event of their stream, which was applied up to "
        f"{worst * 1e3:.0f} ms later"
        for stream, (n, worst) in overtaken.items()
    )


def report(args: argparse.Namespace, o: Outcome) -> tuple[list[str], bool]:
    """The printed lines, and whether every answered event was applied (none lost, none dead)."""
    k_loaders = len(o.loaders)
    statuses: Counter[int] = Counter()
    answers: list[tuple[float, float | None]] = []  # every 200: (answered at, applied at)
    timed: list[tuple[float, float]] = []
    per_corp: dict[int, list[float]] = {}
    lost = 0
    for k, result in enumerate(o.loaders):
        for j, at, status in result["answer_log"]:
            statuses[status] += 1
            if status != 200:
                continue
            event = j * k_loaders + k  # loader k sent events k, k + K, ...
            row = o.inbox.get(event)
            applied = row.applied if row is not None and row.status in APPLIED else None
            answers.append((at, applied))
            if applied is None:
                lost += 1
            elif j >= result["timed_first"]:
                timed.append((at, applied - at))
                per_corp.setdefault(o.corp_of[event], []).append(applied - at)
    timed.sort()
    latencies = sorted(lat for _, lat in timed)
    inbox = Counter(row.status for row in o.inbox.values())
    retried = sum(1 for row in o.inbox.values() if row.attempts > 0)
    last_answer = max((a for a, _ in answers), default=0.0)
    backlog = max((p for _, p in answers if p is not None), default=0.0) - last_answer
    wall = max(res["wall_seconds"] for res in o.loaders)
    lost_conn = sum(res["lost"] for res in o.loaders)
    others = {s: n for s, n in statuses.items() if s != 200}
    p99 = pct(latencies, 0.99) * 1e3
    clock = Path("/sys/devices/system/clocksource/clocksource0/current_clocksource")
    source = clock.read_text().strip() if clock.exists() else "unknown"
    mix = ", ".join(f"{kind} {n / o.events * 100:.0f}%" for kind, n in o.mix.items())
    lines = [
        f"corpsync apply benchmark: {args.corps} corp(s) = {args.corps} ordered stream(s), {args.members} members / "
        f"{args.departments} departments each at sync time; {os.cpu_count()} cores; {k_loaders} load process(es), "
        f"{args.concurrency} connections"
        + ("   [server under cProfile: slower than normal]" if args.profile else "")
        + ("   [split: one serve process answers, another applies]" if args.split_worker else ""),
        *("  pre-populated by corpsync sync: " + "; ".join(x.strip() for x in s.splitlines()) for s in o.synced),
        f"  events: {o.events} pre-signed WeCom change_contact callbacks ({args.thin:.0%} in the thin form where "
        f"the platform has one): {mix}",
        f"load: offered {args.rate:.0f}/s for {args.seconds:.0f} s (+1 s warm-up), achieved "
        f"{sum(res['rate'] for res in o.loaders):.1f}/s; answered 200: {statuses.get(200, 0)} ({len(timed)} in the "
        f"timed section), other answers {others or 'none'}, connections lost {lost_conn}",
        f"  answer latency (due → 200, measured by the loader): p50 {max(r['p50_ms'] for r in o.loaders):.1f} ms, "
        f"p99 {max(r['p99_ms'] for r in o.loaders):.1f} ms",
        f"answer → applied, {len(latencies)} timed events: {spread(latencies)}",
    ]
    if args.corps > 1:
        lines.append("  p99 per corp (ms): " + ", ".join(
            f"corp{c + 1} {pct(sorted(v), 0.99) * 1e3:.0f}" for c, v in sorted(per_corp.items())))  # fmt: skip
    lines += [
        f"backlog: {'empty' if o.drained else 'NOT empty'} {max(backlog, 0.0) * 1e3:.0f} ms after the last answer"
        + (" (already empty when the last 200 arrived)" if backlog <= 0 else ""),
        f"inbox: {dict(inbox)}; dead {inbox.get('dead', 0)}, failed at least once {retried}, "
        f"pending {inbox.get('pending', 0)}; answered 200 but not applied: {lost}",
        order_line(o.overtaken),
        "end state: the local directory equals the upstream orgs (members: active, name, position, alias, "
        "telephone, departments; departments: name, parent)  OK"
        if not o.differences
        else f"end state: DIFFERS from the upstream orgs - {dict(o.differences)}",
        f"  full syncs requested by events: {o.sync_requests or 'none'}; upstream API calls during the run: "
        f"{o.calls or 'none'}",
        *cpu_lines(o.cpu_before, o.cpu_after, sum(res["cpu_seconds"] for res in o.loaders), wall),
        *timeline(answers, timed, o.samples),
    ]
    if args.timings:
        lines += batch_lines(o.log_text, wall)
        lines += statement_lines(o.statements, statuses.get(200, 0))
    lines += [
        f"clocks: answered = time.time() in the loader, applied = inbox.applied_at (clock_timestamp() in PostgreSQL,"
        f" taken just before the apply transaction commits); one host, one realtime clock (clocksource {source})",
        f"target p99 answer→applied < {P99_TARGET_MS:.0f} ms: {p99:.1f} ms  "
        + ("MET" if p99 < P99_TARGET_MS else "MISSED"),
        f"target backlog empty within {BACKLOG_TARGET_S:.0f} s of the load's end: {max(backlog, 0.0):.3f} s  "
        + ("MET" if o.drained and backlog < BACKLOG_TARGET_S else "MISSED"),
    ]
    ok = not lost and not others and not lost_conn and inbox.get("dead", 0) == 0 and o.drained
    answered = statuses.get(200, 0)
    lines.append(f"every answered event applied: {answered - lost}/{answered}  " + ("OK" if ok else "FAILED"))
    if o.profile is not None:
        lines += profile_lines(o.profile, args.profile)
    return lines, ok
