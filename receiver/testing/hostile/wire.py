"""The categories that attack HTTP itself: huge and slow bodies, wrong methods, unknown corps."""

from __future__ import annotations

import random

from receiver.testing.hostile.shapes import (
    APIS,
    CALLBACKS,
    MAX_BODY,
    Builder,
    HostileRequest,
    Target,
    api,
    api_headers,
    corp_path,
    member_path,
    request,
    sealed,
    signed_parts,
)


def _huge_body(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "huge-body"
    variant = rng.choice(["over the limit", "huge Content-Length", "chunked over the limit", "huge chunk size"])
    method = "POST" if route in CALLBACKS else ("PUT" if route in APIS else "GET")
    path = t.endpoint(route).path if route in CALLBACKS else f"/{route}"
    if route in APIS:
        path = corp_path(t, rng) + "/admins"
    headers = api_headers(t, route)
    if variant == "over the limit":
        body = b'{"memberIds":["' + b"x" * MAX_BODY + b'"]}'
        return request(c, route, variant, method, path, body=body, headers=headers)
    if variant == "huge Content-Length":
        length = rng.choice([str(10**30), str(2**63), str(2**64 + 1), "9" * 200, "-1", "1e9"])
        return request(c, route, f"Content-Length {length[:12]}", method, path, body=b"{}", headers=headers,
                       length=length)  # fmt: skip
    chunked = [*headers, ("Transfer-Encoding", "chunked")]
    if variant == "chunked over the limit":
        chunk = b"x" * 65536
        body = (b"10000\r\n" + chunk + b"\r\n") * (MAX_BODY // len(chunk) + 2) + b"0\r\n\r\n"
        return request(c, route, variant, method, path, body=body, headers=chunked)
    size = rng.choice([b"FFFFFFFFFFFFFFFFFFFF", b"7FFFFFFFFFFFFFFF", b"100000000000000000000000"])
    return request(c, route, variant, method, path, body=size + b"\r\nxx\r\n0\r\n\r\n", headers=chunked)


def _slow_body(t: Target, route: str, rng: random.Random) -> HostileRequest:
    """A body that trickles in (it arrives in time), or one that stops halfway: the receiver must give up on it
    within CORPSYNC_CLIENT_TIMEOUT."""
    c = "slow-body"
    stall = rng.random() < 0.3
    variant = "stops halfway" if stall else "trickles in"
    if route in CALLBACKS:
        ep = t.endpoint(route)
        method, query, body = signed_parts(ep, sealed(ep, t.message(route, rng)))
        path = ep.path
    elif route in APIS:
        method, path, query, body = "PUT", member_path(t, rng) + "/signature", [], b'{"signature":"s"}'
    else:
        method, path, query, body = "GET", f"/{route}", [], b"x" * 64
    headers = api_headers(t, route) + ([("Content-Type", "application/json")] if route in APIS else [])
    length = str(len(body) * 2) if stall else None
    return request(c, route, variant, method, path, query, body, headers=headers, length=length,
                   pieces=4, pause=0.1, stall=stall)  # fmt: skip


_WRONG_METHODS = ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "HEAD", "FOO", "CONNECT", "PROPFIND")


def _wrong_method(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "wrong-method"
    method = rng.choice(_WRONG_METHODS + (("GET",) if route == "dingtalk" else ()))
    if route in CALLBACKS:
        ep = t.endpoint(route)
        _, query, body = signed_parts(ep, sealed(ep, t.message(route, rng)))
        return request(c, route, method, method, ep.path, query, body)
    if route in APIS:
        path = corp_path(t, rng) + rng.choice(["", "/members", "/sync", "/admins", "/sync-runs"])
        return api(t, c, route, method, rng.choice([method, "DELETE", "POST"]), path, body=b"{}")
    return request(c, route, method, method, f"/{route}", body=b"{}")


def _unknown_corp(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "unknown-corp"
    name = rng.choice(["Nobody", "x" * 4000, "%2F..%2F..", "%E4%B8%AD%E6%96%87", "%FF%FE", "HQ%00", ".", "%20"])
    if route in CALLBACKS:
        ep = t.endpoint(route)
        _, query, body = signed_parts(ep, sealed(ep, t.message(route, rng)))
        base = ep.path.rsplit("/data", 1)[0].rsplit("/", 1)[0]
        path = f"{base}/{name}" + ("/data" if route == "wecom-suite-data" else "")
        return request(c, route, name[:12], "POST", path, query, body)
    if route in APIS:
        tail = rng.choice(["", "/members", "/depts/1", "/sync-runs/1", "/local-data", "/sync"])
        method = "POST" if tail == "/sync" else "GET"
        return api(t, c, route, name[:12], method, f"/api/corps/{name}{tail}", body=b"{}" if method == "POST" else b"")
    return request(c, route, name[:12], "GET", f"/{route}/{name}")


BUILDERS: dict[str, Builder] = {
    "huge-body": _huge_body,
    "slow-body": _slow_body,
    "wrong-method": _wrong_method,
    "unknown-corp": _unknown_corp,
}
