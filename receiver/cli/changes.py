"""``corpsync changes``: the change feed's webhook subscribers — ``status``, ``enable NAME``, ``replay NAME``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from handlers.errors import ConfigError, InvalidInput, UnknownRecord
from handlers.feed import admin
from receiver.cli.common import database, load_config
from receiver.settings import Settings


def _time(flag: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{flag}: expected an ISO-8601 time such as 2026-11-21T08:00:00+08:00, got {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _after(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ConfigError(f"--after: expected a change id (the cursor of a change event), got {text!r}")
    return int(text)


def changes(args: argparse.Namespace, settings: Settings) -> int:
    from receiver import runtime

    config = load_config(settings)
    action: str = args.action
    after, since, until = _after(args.after), _time("--since", args.since), _time("--until", args.until)
    if action != "replay" and (after is not None or since is not None or until is not None or args.corp):
        raise ConfigError(f"changes {action}: --after, --since, --until and --corp belong to replay")

    async def run(url: str) -> list[str]:
        async with runtime.database(url, min_size=1, max_size=2, migrate=True) as pool:
            if action == "status":
                lines = []
                for state in await admin.states(pool, config.subscribers):
                    if state.removed_at is not None:
                        lines.append(
                            f"{state.name}: removed {state.removed_at:%Y-%m-%dT%H:%M:%SZ} (not in subscribers/)"
                        )
                        continue
                    condition = (
                        "disabled" if state.disabled_at is not None else "failing" if state.failing_since else "ok"
                    )
                    lag = "" if state.lag_seconds is None else f", oldest {state.lag_seconds:.0f} s"
                    lines.append(f"{state.name}: {condition}, {state.pending} pending{lag}")
                return lines or ["no subscribers in subscribers/"]
            target = admin.subscriber(config.subscribers, args.name or "")
            if action == "enable":
                await admin.enable(pool, target)
                return [f"{target.name}: enabled"]
            queued = await admin.replay(pool, target, after=after, since=since, until=until, corp=args.corp)
            return [f"{target.name}: {queued} changes queued again"]

    if action != "status" and not args.name:
        print(f"corpsync: changes {action} needs a subscriber name", file=sys.stderr)
        return 2
    try:
        with database(settings) as url:
            lines = asyncio.run(run(url))
    except UnknownRecord:
        known = ", ".join(sorted(config.subscribers)) or "none"
        print(f"corpsync: no subscriber named {args.name!r} (subscribers: {known})", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"corpsync: changes replay: {exc.message} (--after ID, --since TIME)", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0
