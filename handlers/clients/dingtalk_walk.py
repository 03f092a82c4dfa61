"""The DingTalk snapshot walk: ``listsub`` breadth-first and ``v2/user/list`` pages, side by side.

Each API has its own pool of workers, so both stay at their own rate limit: a department's first
member page is queued as soon as ``listsub`` reveals it, and a department's next page goes ahead of
new first pages (big departments finish early, no long tail). Nothing is dropped silently: a failed
call marks its department in ``failed``; ``has_more`` without a cursor is a failure too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import handlers.clients.dingtalk_records as rec
from handlers.clients.base import Json, integer, items, mapping
from handlers.clients.protocol import Progress
from handlers.clients.snapshot import MemberBook, Ticker, is_fatal, run_all
from handlers.errors import UpstreamError
from handlers.model import Department

Post = Callable[[str, Json], Awaitable[Json]]
PAGE_SIZE = 100  # v2/user/list: the documented maximum of the sibling listsimple (dingtalk.md §5.2)


class DepartmentWalk:
    """Breadth-first ``listsub`` and paged ``user/list``, one worker pool per API, pipelined."""

    def __init__(self, post: Post, workers: int, progress: Progress | None) -> None:
        self._post = post
        self._workers = workers
        self.depts: dict[str, Department] = {}
        self.members = MemberBook()
        self.leaders: dict[str, list[str]] = {}
        self.failed: set[str] = set()
        self._dept_q: asyncio.Queue[str | None] = asyncio.Queue()
        self._page_q: asyncio.PriorityQueue[tuple[int, int, str, int]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._found = Ticker(progress, "departments")
        self._listed = Ticker(progress, "members")

    def _discovered(self, dept: Department) -> None:
        self.depts[dept.dept_id] = dept
        self._dept_q.put_nowait(dept.dept_id)
        self._page_q.put_nowait((1, next(self._seq), dept.dept_id, 0))
        self._found.grow(1)
        self._found.step()
        self._listed.grow(1)

    async def run(self, roots: list[Department]) -> None:
        workers = self._workers
        for root in roots:
            self._discovered(root)

        async def finish() -> None:
            await self._dept_q.join()
            await self._page_q.join()
            for _ in range(workers):
                self._dept_q.put_nowait(None)
                self._page_q.put_nowait((2, next(self._seq), "", -1))

        await run_all(finish(), *(self._subs() for _ in range(workers)), *(self._pages() for _ in range(workers)))

    async def _subs(self) -> None:
        while (dept_id := await self._dept_q.get()) is not None:
            try:
                result = await self._post("topapi/v2/department/listsub", {"dept_id": rec.id_param(dept_id)})
                for entry in items(result.get("result")):
                    child = rec.department(entry) if isinstance(entry, dict) else None
                    if child is not None and child.dept_id not in self.depts:
                        self._discovered(child)
            except UpstreamError as exc:
                if is_fatal(exc):
                    raise
                self.failed.add(dept_id)  # its sub-tree is unknown: removals below it are held
            finally:
                self._dept_q.task_done()

    async def _pages(self) -> None:
        while True:
            _, _, dept_id, cursor = await self._page_q.get()
            try:
                if cursor < 0:
                    return
                await self._page(dept_id, cursor)
            except UpstreamError as exc:
                if is_fatal(exc):
                    raise
                self.failed.add(dept_id)
                self._listed.step()
            finally:
                self._page_q.task_done()

    async def _page(self, dept_id: str, cursor: int) -> None:
        body = {"dept_id": rec.id_param(dept_id), "cursor": cursor, "size": PAGE_SIZE}
        result = mapping((await self._post("topapi/v2/user/list", body)).get("result"))
        leaders = self.leaders.setdefault(dept_id, [])
        for entry in items(result.get("list")):
            found = rec.member(entry) if isinstance(entry, dict) else None
            if found is None:
                continue
            membership = rec.page_membership(entry, dept_id)
            self.members.add(found, membership)
            if membership.is_leader:
                leaders.append(found.user_id)
        if result.get("has_more"):
            next_cursor = integer(result.get("next_cursor"))
            if next_cursor is None:
                raise UpstreamError("topapi/v2/user/list", None, "has_more without next_cursor")
            self._page_q.put_nowait((0, next(self._seq), dept_id, next_cursor))
        else:
            self._listed.step()

    def departments(self) -> tuple[Department, ...]:
        found = []
        for dept_id, dept in self.depts.items():
            if dept.leaders is None and dept_id not in self.failed and dept_id in self.leaders:
                dept = Department(
                    dept.dept_id, dept.parent_id, dept.name, dept.name_en, dept.order, tuple(self.leaders[dept_id])
                )
            found.append(dept)
        return tuple(found)
