"""The facade's own exceptions; the async API's (``handlers.errors``: UnknownCorp, UnknownRecord, InvalidInput,
UpstreamError, ...) pass through unchanged, each with its one-line message.

CorpsyncError
└── JitaiError        the App is closed, a call from a running event loop, an element name that is no corp
    └── SyncNotDone   syncCorp / initCorp / bulkRegister ended failed or quarantined (``status``, ``run_id``)
"""

from __future__ import annotations

from handlers.errors import CorpsyncError


class JitaiError(CorpsyncError):
    """A misuse of the facade, said in one line."""


class SyncNotDone(JitaiError):
    """A full sync that did not succeed: ``status`` is 'failed' or 'quarantined'; ``run_id`` its sync run."""

    def __init__(self, message: str, status: str, run_id: int | None) -> None:
        super().__init__(message)
        self.status = status
        self.run_id = run_id
