"""The domain's exception tree. Nothing here knows HTTP: ``receiver.errors`` maps these to statuses.

CorpsyncError
├── ConfigError          bad app dir or settings; stops start-up (file + key in the message)
├── MalformedMessage     a message that cannot be read: broken XML / JSON, a missing field, text the inbox
│                        cannot hold; retrying cannot help
├── UnknownCorp          no corp (or suite auth) of that name
├── UnknownRecord        a member / department / sync run the corp lacks
│   └── NoRootDept       no department stored yet, and the platform could not give the root
├── InvalidInput         a bad argument of the directory API (names the field)
├── StoreUnavailable     the database cannot commit now; the caller may retry
├── ApplyError           an event that cannot be applied now (retried, then dead-lettered)
└── UpstreamError        a platform API answered an error or failed (errcode, errmsg)
    └── TokenExpired     40014 / 42001-style: refresh the token once and retry
"""

from __future__ import annotations


class CorpsyncError(Exception):
    """Base of every error corpsync raises on purpose."""


class ConfigError(CorpsyncError):
    """The app dir or a setting is wrong; the message names the file and the key."""


class MalformedMessage(CorpsyncError):
    """A message (a callback's plaintext, an envelope's XML) that cannot be read; the text says what is wrong."""


class UnknownCorp(CorpsyncError):
    """No corp, suite auth or suite tenant of that name."""


class UnknownRecord(CorpsyncError):
    """A directory record the corp does not have: ``kind`` ('member', 'department', ...) and the ids asked for."""

    def __init__(self, kind: str, *ids: str) -> None:
        super().__init__(f"unknown {kind}: {', '.join(ids)}")
        self.kind = kind
        self.ids = ids


class NoRootDept(UnknownRecord):
    """getRootDept of a corp with no department stored, whose platform could not give its root: says why."""

    def __init__(self, why: str) -> None:
        super().__init__("department", "root")
        self.args = (f"no root department: none is stored yet and the platform could not give it ({why})",)


class InvalidInput(CorpsyncError):
    """A directory API argument that cannot be used; ``field`` names it (camelCase, as in the HTTP API)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreUnavailable(CorpsyncError):
    """The database cannot commit now (down, restarting, out of connections)."""


class ApplyError(CorpsyncError):
    """An event that cannot be applied now (retried, then dead-lettered); the message is safe to record."""


class UpstreamError(CorpsyncError):
    """A platform API call failed. ``errcode`` is the platform's code, or None for transport errors."""

    def __init__(self, api: str, errcode: int | None, errmsg: str, *, http_status: int | None = None):
        super().__init__(f"{api}: errcode={errcode} errmsg={errmsg}")
        self.api = api
        self.errcode = errcode
        self.errmsg = errmsg
        self.http_status = http_status


class TokenExpired(UpstreamError):
    """The access token was rejected; the client refreshes once and retries."""
