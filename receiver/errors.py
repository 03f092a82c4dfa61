"""The one exception tree of corpsync, and the HTTP status each branch maps to.

    CorpsyncError
    ├── ConfigError                  bad app dir or settings; stops start-up (file + key in the message)
    ├── CallbackRejected (4xx)       hostile or broken input on a callback route
    │   ├── SignatureError           -40001 / 900005   401
    │   ├── ReceiveIdError           -40005 / 900010   403
    │   ├── Base64Error              -40010 / 900009   400
    │   ├── DecryptError             -40007 / 900008   400   (bad padding, truncated ciphertext)
    │   ├── BufferError_             -40008 / 900008   400   (length fields out of bounds)
    │   ├── EnvelopeError            -40002 / 900007   400   (malformed XML / JSON, missing fields)
    │   ├── StaleTimestampError      -40001 / 900005   401   (only with CORPSYNC_CALLBACK_MAX_AGE)
    │   └── BodyTooLarge                               413
    ├── IllegalAesKey                -40004 / 900004   a ConfigError too: keys are configuration
    ├── UnknownCorp                                    404
    ├── UnknownRecord                                  404   a member / department / sync run the corp lacks
    ├── InvalidInput                                   400   a bad argument of the directory API (names the field)
    ├── StoreUnavailable                               503   (the database cannot commit: platform retries)
    └── UpstreamError                errcode, errmsg   a platform API answered an error or failed
        └── TokenExpired             40014 / 42001 / 40001-style: refresh once and retry

Verification errors carry the official code of each platform: ``wecom_code`` (WXBizMsgCrypt, -400xx)
and ``dingtalk_code`` (DingTalk-Callback-Crypto, 9000xx).
"""

from __future__ import annotations


class CorpsyncError(Exception):
    """Base of every error corpsync raises on purpose."""


class ConfigError(CorpsyncError):
    """The app dir or a setting is wrong; the message names the file and the key."""


class CallbackRejected(CorpsyncError):
    """A callback request that must be answered with a 4xx and never processed."""

    status = 400
    wecom_code = 0
    dingtalk_code = 0


class SignatureError(CallbackRejected):
    status = 401
    wecom_code = -40001
    dingtalk_code = 900005


class StaleTimestampError(SignatureError):
    """Outside the opt-in freshness window (CORPSYNC_CALLBACK_MAX_AGE)."""


class ReceiveIdError(CallbackRejected):
    status = 403
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
    status = 413


class IllegalAesKey(ConfigError):
    wecom_code = -40004
    dingtalk_code = 900004


class UnknownCorp(CorpsyncError):
    status = 404


class UnknownRecord(CorpsyncError):
    """A directory record the corp does not have: ``kind`` ('member', 'department', ...) and the ids asked for."""

    status = 404

    def __init__(self, kind: str, *ids: str) -> None:
        super().__init__(f"unknown {kind}: {', '.join(ids)}")
        self.kind = kind
        self.ids = ids


class InvalidInput(CorpsyncError):
    """A directory API argument that cannot be used; ``field`` names it (camelCase, as in the HTTP API)."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StoreUnavailable(CorpsyncError):
    status = 503


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
