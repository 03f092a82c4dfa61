"""The categories that attack the signature and the cipher: bad and missing signatures, broken base64, broken
padding and framing (validly signed, so that they reach the decryption)."""

from __future__ import annotations

import base64
import random
import struct
from collections.abc import Callable

from receiver.callbacks.crypto import CallbackCipher
from receiver.testing.hostile.payloads import (
    BROKEN_BASE64,
)
from receiver.testing.hostile.shapes import (
    APIS,
    CALLBACKS,
    Builder,
    HostileRequest,
    Target,
    api,
    corp_path,
    framed,
    probe,
    request,
    sealed,
    signed,
    signed_parts,
)


def _bad_signature(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "bad-signature"
    if route in CALLBACKS:
        ep = t.endpoint(route)
        method, query, body = signed_parts(ep, sealed(ep, t.message(route, rng)), verify=rng.random() < 0.2)
        real = str(dict(query)["msg_signature"])
        wrong: list[tuple[str, str | bytes]] = [
            ("one digit changed", real[:-1] + ("0" if real[-1] != "0" else "1")),
            ("upper case", real.upper()),
            ("truncated", real[:39]),
            ("too long", real + "0"),
            ("empty", ""),
            ("non-ASCII", "é" * 40),
            ("invalid UTF-8", b"\xff" * 40),
            ("4 KB", "a" * 4000),
            ("another token's", CallbackCipher("other", ep.aes_key).signature("1", "2", "3")),
        ]
        variant, bad = rng.choice(wrong)
        fixed = [(k, bad if k in ("msg_signature", "signature") else v) for k, v in query]
        return request(c, route, variant, method, ep.path, fixed, body)
    if route in APIS:
        variant, value = rng.choice(
            [
                ("wrong token", b"Bearer wrong-token"),
                ("basic scheme", b"Basic YWRtaW46YWRtaW4="),
                ("8 KB token", b"Bearer " + b"x" * 8000),
                ("invalid UTF-8 token", b"Bearer \xff\xfe"),
                ("token and junk", f"Bearer {t.admin_token or 'x'} junk".encode()),
            ]
        )
        return request(c, route, variant, "GET", corp_path(t, rng) + "/members", headers=[("Authorization", value)])
    return probe(c, route, "signature parameters", [("msg_signature", "0" * 40), ("signature", b"\xff")])


def _missing_signature(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "missing-signature"
    if route in CALLBACKS:
        ep = t.endpoint(route)
        method, query, body = signed_parts(ep, sealed(ep, t.message(route, rng)), verify=rng.random() < 0.3)
        drop = rng.choice(["msg_signature", "timestamp", "nonce", "echostr", "all", "empty values", "repeated"])
        if drop == "all":
            kept: list[tuple[str, str | bytes]] = list(ep.extra)
        elif drop == "empty values":
            kept = [(k, "" if k not in dict(ep.extra) else v) for k, v in query]
        elif drop == "repeated":
            kept = [("msg_signature", "0" * 40), *query, ("timestamp", "1")]
        else:
            kept = [(k, v) for k, v in query if k not in (drop, "signature" if drop == "msg_signature" else drop)]
        return request(c, route, f"without {drop}", method, ep.path, kept, body)
    if route in APIS:
        variant, headers = rng.choice(
            [("no header", []), ("empty bearer", [("Authorization", "Bearer ")]), ("empty", [("Authorization", "")])]
        )
        return request(c, route, variant, "GET", corp_path(t, rng), headers=headers)
    return probe(c, route, "bare", b"")


def _broken_base64(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "broken-base64"
    variant, text = rng.choice(BROKEN_BASE64)
    if route in CALLBACKS:
        ep = t.endpoint(route)
        good = sealed(ep, t.message(route, rng))
        encrypt = text(good)
        return signed(c, route, variant, ep, encrypt, rng)
    if route in APIS:
        cursor = text(base64.urlsafe_b64encode(b'{"l":"members","k":"x"}').decode())
        return api(t, c, route, variant, "GET", corp_path(t, rng) + "/members", [("cursor", cursor)])
    return probe(c, route, variant, [("cursor", text("eyJsIjoxfQ"))])


def _broken_padding(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "broken-padding"
    if route in CALLBACKS:
        ep = t.endpoint(route)
        message, rid = t.message(route, rng), ep.receive_id.encode()
        r16 = rng.randbytes(16)

        def frame(length: int, tail: bytes, pad: Callable[[int], bytes] | None = None) -> bytes:
            body = r16 + struct.pack(">I", length) + message + tail
            n = 32 - len(body) % 32
            return body + (pad(n) if pad else bytes([n]) * n)

        variant, raw = rng.choice(
            [
                ("pad byte 0", frame(len(message), rid, lambda n: bytes(n))),
                ("pad byte 33", frame(len(message), rid, lambda n: b"\x21" * n)),
                ("pad bytes differ", frame(len(message), rid, lambda n: bytes([n ^ 1]) + bytes([n]) * (n - 1))),
                ("length field 2^32-1", frame(0xFFFFFFFF, rid)),
                ("length field into the pad", frame(len(message) + len(rid) + 1, rid)),
                ("receive-id invalid UTF-8", frame(len(message), b"\xff\xfe\xfd")),
                ("receive-id of another corp", frame(len(message), b"wwsomeoneelse")),
                ("no header", bytes([32]) * 32),
                ("one AES block", b""),
                ("not whole blocks", b"x"),
            ]
        )
        if variant == "one AES block":
            encrypt = base64.b64encode(rng.randbytes(16)).decode()
        elif variant == "not whole blocks":
            encrypt = base64.b64encode(rng.randbytes(40)).decode()
        else:
            encrypt = framed(ep, raw)
        return signed(c, route, variant, ep, encrypt, rng)
    cursor = rng.choice(["eyJsIjoibWVtYmVycyIsImsiOiJ4In0=", "e===", "eyJ=sIjox", "====", "e"])
    if route in APIS:
        return api(t, c, route, f"cursor {cursor}", "GET", corp_path(t, rng) + "/depts", [("cursor", cursor)])
    return probe(c, route, f"cursor {cursor}", [("cursor", cursor)])


BUILDERS: dict[str, Builder] = {
    "bad-signature": _bad_signature,
    "missing-signature": _missing_signature,
    "broken-base64": _broken_base64,
    "broken-padding": _broken_padding,
}
