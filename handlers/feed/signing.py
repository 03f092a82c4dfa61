"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme"): pure, no clock, no I/O.

The signed content is ``"{webhook-id}.{webhook-timestamp}.{body}"``; the signature HMAC-SHA256 with the secret's
key (``whsec_`` + base64), sent as ``v1,<base64>`` in ``webhook-signature``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

PREFIX = "whsec_"
MIN_KEY_BYTES = 24  # the specification: between 24 and 64 bytes
MAX_KEY_BYTES = 64


def secret_key(secret: str) -> bytes:
    """The key of a ``whsec_<base64>`` secret; ValueError (without the secret) when it is not one."""
    if not secret.startswith(PREFIX):
        raise ValueError("must start with whsec_ (Standard Webhooks form)")
    try:
        key = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("whsec_ must be followed by base64") from None
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(f"the key must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes after base64 decoding")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value of one message."""
    signed = message_id.encode() + b"." + str(timestamp).encode() + b"." + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message, and its content type."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
        "Content-Type": "application/json",
    }
