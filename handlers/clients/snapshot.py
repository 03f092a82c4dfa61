"""Pieces every platform client uses: worker pools, the member book, the visible root, and what its errors mean."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from handlers.clients.protocol import Progress
from handlers.errors import TokenExpired, UpstreamError
from handlers.model import Department, Member, Membership

log = logging.getLogger("corpsync.clients")

T = TypeVar("T")

# Answers that will be the same for every department: stop the snapshot instead of failing each one.
# 40001 bad secret, 40013 bad corpid, 41001 no token, 48002 API not permitted, 48009 contact secret
# from a new IP, 60020 IP not trusted, 88 DingTalk auth error, 90001 server disabled, 43007 needs
# authorization, 40084/40085 suite permanent code / ticket invalid.
FATAL = frozenset({40001, 40013, 41001, 48002, 48009, 60020, 88, 90001, 43007, 40084, 40085})


def is_fatal(exc: UpstreamError) -> bool:
    return isinstance(exc, TokenExpired) or exc.errcode in FATAL


async def unless_gone(read: Awaitable[T], gone: frozenset[int]) -> T | None:
    """What ``read`` answers, or None when the platform answers one of the ``gone`` errcodes (not found, or
    out of the app's scope); any other error is raised."""
    try:
        return await read
    except UpstreamError as exc:
        if exc.errcode in gone:
            return None
        raise


async def run_all(*coros: Coroutine[Any, Any, Any]) -> None:
    """Run together; the first error cancels the rest and is raised as itself (not as a group)."""
    try:
        async with asyncio.TaskGroup() as group:
            for coro in coros:
                group.create_task(coro)
    except BaseExceptionGroup as group_error:
        raise _first_leaf(group_error) from None


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def for_each(values: Iterable[T], fn: Callable[[T], Awaitable[None]], workers: int) -> None:
    """``fn`` over ``values`` with ``workers`` in flight; the first error stops everything."""
    shared: Iterator[T] = iter(values)

    async def worker() -> None:
        for value in shared:  # one iterator shared by every worker: each value is taken once
            await fn(value)

    await run_all(*(worker() for _ in range(max(1, workers))))


class Ticker:
    """Calls ``progress(stage, done, total)``; totals may grow while the walk discovers more."""

    def __init__(self, progress: Progress | None, stage: str, total: int = 0) -> None:
        self._progress = progress
        self.stage = stage
        self.done = 0
        self.total = total

    def grow(self, n: int) -> None:
        self.total += n

    def step(self, n: int = 1) -> None:
        self.done += n
        if self._progress is not None:
            self._progress(self.stage, self.done, max(self.total, self.done))


class MemberBook:
    """Members as they stream in from department pages: each user once, with every membership."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}
        self._seen_in: dict[str, dict[str, Membership]] = {}

    def __len__(self) -> int:
        return len(self._members)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._members

    def add(self, member: Member, membership: Membership | None = None) -> None:
        """Keep the first record of a user; ``membership`` is what the page of one department said."""
        self._members.setdefault(member.user_id, member)
        if membership is not None:
            self._seen_in.setdefault(member.user_id, {})[membership.dept_id] = membership

    def build(self, scope: set[str], list_id: dict[str, list[str]] | None = None) -> tuple[Member, ...]:
        """The members, memberships limited to ``scope``; ``list_id`` (userid → depts) is authoritative."""
        result = []
        for user_id, member in self._members.items():
            known = {m.dept_id: m for m in member.departments or ()}
            for dept_id, seen in self._seen_in.get(user_id, {}).items():
                known[dept_id] = _merged(known.get(dept_id), seen)
            if list_id is not None and user_id in list_id:
                dept_ids = list_id[user_id]
            elif member.departments is not None:
                dept_ids = [m.dept_id for m in member.departments]
                dept_ids += [d for d in self._seen_in.get(user_id, {}) if d not in dept_ids]
            else:
                dept_ids = list(self._seen_in.get(user_id, {}))
            memberships = tuple(known.get(d, Membership(d)) for d in dict.fromkeys(dept_ids) if d in scope)
            if memberships != member.departments:
                member = _with_departments(member, memberships)
            result.append(member)
        return tuple(result)


def _merged(known: Membership | None, seen: Membership) -> Membership:
    """What a department's own page said wins; the user record fills what the page left out."""
    if known is None:
        return seen
    return Membership(
        seen.dept_id,
        is_leader=seen.is_leader if seen.is_leader is not None else known.is_leader,
        order=seen.order if seen.order is not None else known.order,
    )


def _with_departments(member: Member, memberships: tuple[Membership, ...]) -> Member:
    return replace(member, departments=memberships)


def visible_root(departments: Iterable[Department], configured: str | None) -> str | None:
    """The configured root, else the top of what is visible (a department whose parent is not visible).

    Several tops (an app that sees disjoint sub-trees) give the first by id; the caller logs it.
    """
    if configured is not None:
        return configured
    depts = list(departments)
    ids = {d.dept_id for d in depts}
    tops = sorted((d.dept_id for d in depts if d.parent_id is None or d.parent_id not in ids), key=_id_order)
    if len(tops) > 1:
        log.warning("several visible tops", extra={"action": "multiple_visible_roots", "tops": tops[:10]})
    return tops[0] if tops else None


def _id_order(dept_id: str) -> tuple[int, str]:
    return (int(dept_id), "") if dept_id.isdigit() else (1 << 62, dept_id)


def subtree(departments: Iterable[Department], root: str) -> list[Department]:
    """``root`` and everything below it, parents first."""
    children: dict[str | None, list[Department]] = {}
    by_id: dict[str, Department] = {}
    for dept in departments:
        by_id[dept.dept_id] = dept
        children.setdefault(dept.parent_id, []).append(dept)
    if root not in by_id:
        return []
    ordered, stack = [], [by_id[root]]
    while stack:
        dept = stack.pop()
        ordered.append(dept)
        stack.extend(reversed(children.get(dept.dept_id, [])))
    return ordered
