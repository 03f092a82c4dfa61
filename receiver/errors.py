"""The edge's exceptions (callback rejections, with each platform's official code) and the one table that maps
every exception corpsync raises on purpose to an HTTP status.

    CorpsyncError (handlers.errors)
    ├── CallbackRejected             hostile or broken input on a callback route: never processed
    │   ├── SignatureError           -40001 / 900005
    │   │   └── StaleTimestampError  (only with CORPSYNC_CALLBACK_MAX_AGE)
    │   ├── ReceiveIdError           -40005 / 900010
    │   ├── Base64Error              -40010 / 900009
    │   ├── DecryptError             -40007 / 900008   (bad padding, truncated ciphertext)
    │   ├── BufferError_             -40008 / 900008   (length fields out of bounds)
    │   ├── EnvelopeError            -40002 / 900007   (malformed XML / JSON, missing fields)
    │   └── BodyTooLarge
    └── ConfigError (handlers.errors)
        └── IllegalAesKey            -40004 / 900004   keys are configuration

Verification errors carry the official code of each platform: ``wecom_code`` (WXBizMsgCrypt, -400xx)
and ``dingtalk_code`` (DingTalk-Callback-Crypto, 9000xx). ``http_status`` reads the status table.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from handlers.errors import (
    ConfigError,
    CorpsyncError,
    InvalidInput,
    MalformedMessage,
    NoRootDept,
    StoreUnavailable,
    UnknownCorp,
    UnknownRecord,
)
from handlers.store.pool import DB_UNAVAILABLE


class CallbackRejected(CorpsyncError):
    """A callback request that must be answered with a 4xx and never processed."""

    wecom_code = 0
    dingtalk_code = 0


class SignatureError(CallbackRejected):
    wecom_code = -40001
    dingtalk_code = 900005


class StaleTimestampError(SignatureError):
    """Outside the opt-in freshness window (CORPSYNC_CALLBACK_MAX_AGE)."""


class ReceiveIdError(CallbackRejected):
    wecom_code = -40005
    dingtalk_code = 900010


class Base64Error(CallbackRejected):
    wecom_code = -40010
    dingtalk_code = 900009


class DecryptError(CallbackRejected):
    wecom_code = -40007
    dingtalk_code = 900008


class BufferError_(CallbackRejected):  # noqa: N801 - BufferError is a builtin
    wecom_code = -40008
    dingtalk_code = 900008


class EnvelopeError(CallbackRejected):
    wecom_code = -40002
    dingtalk_code = 900007


class BodyTooLarge(CallbackRejected):
    pass


class IllegalAesKey(ConfigError):
    wecom_code = -40004
    dingtalk_code = 900004


def rejection(exc: MalformedMessage) -> EnvelopeError:
    """A message the domain could not read, as the callback rejection it is at the edge (-40002 / 900007)."""
    rejected = EnvelopeError(str(exc))
    rejected.__cause__ = exc
    return rejected


# Most specific first: the first entry the exception is an instance of gives its status.
HTTP_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (SignatureError, 401),
    (ReceiveIdError, 403),
    (BodyTooLarge, 413),
    (CallbackRejected, 400),
    (MalformedMessage, 400),
    (InvalidInput, 400),
    (UnknownCorp, 404),
    (UnknownRecord, 404),
    (asyncpg.DataError, 400),  # a value the database cannot hold or compare (input the edge let through)
    (StoreUnavailable, 503),
    *((kind, 503) for kind in DB_UNAVAILABLE),
)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status ``exc`` answers with, or None when it is not an error of the caller's or the store's."""
    for kind, status in HTTP_STATUS:
        if isinstance(exc, kind):
            return status
    return None


def error_json(exc: BaseException) -> tuple[int, dict[str, Any]] | None:
    """The status and JSON body the directory API answers ``exc`` with; None for an unexpected error (a bug)."""
    status = http_status(exc)
    if status is None:
        return None
    if isinstance(exc, InvalidInput):
        return status, {"error": exc.message, "field": exc.field}
    if isinstance(exc, NoRootDept):
        return status, {"error": str(exc), "ids": list(exc.ids)}
    if isinstance(exc, UnknownRecord):
        return status, {"error": f"unknown {exc.kind}", "ids": list(exc.ids)}
    if isinstance(exc, UnknownCorp):
        return status, {"error": "unknown corp"}
    if isinstance(exc, asyncpg.DataError):
        return status, {"error": "a value in the request cannot be used"}
    if status == 503:
        return status, {"error": "database unavailable, retry later"}
    return status, {"error": str(exc)}
