"""What a platform client offers (``PlatformClient``), whichever platform is behind it; handlers.clients builds one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from handlers.model import Admin, Department, Member, Snapshot, Tag

# A snapshot's progress as the client reports it: (stage, done, total).
Progress = Callable[[str, int, int], None]


class PlatformClient(Protocol):
    """What full sync and the event handlers need of a platform.

    ``member`` / ``department`` / ``tag`` answer None when the record no longer exists upstream (or is
    out of the app's scope); other failures raise ``UpstreamError`` with errcode and errmsg.
    """

    async def fetch_snapshot(self, progress: Progress | None = None) -> Snapshot: ...

    async def member(self, user_id: str) -> Member | None: ...

    async def department(self, dept_id: str) -> Department | None: ...

    async def tag(self, tag_id: str) -> Tag | None: ...

    async def admins(self) -> tuple[Admin, ...] | None: ...

    async def member_count(self) -> int | None: ...

    @property
    def api_calls(self) -> int: ...


@runtime_checkable
class RootLookup(Protocol):
    """Optional: a client that reads the root department a full sync would take, alone (getRootDept before the
    first sync)."""

    async def root_department(self) -> Department | None: ...
