"""The categories whose malice is a message: deep XML and JSON, entities, invalid UTF-8, NULs, huge numbers and
missing fields — validly signed on the callback routes, a body, path or query elsewhere."""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from urllib.parse import quote

import orjson

from receiver.testing.hostile.payloads import (
    deep_json,
    deep_xml,
    entity_documents,
    invalid_utf8,
    missing_fields,
    nul_messages,
    numbers,
)
from receiver.testing.hostile.shapes import (
    APIS,
    CALLBACKS,
    Builder,
    HostileRequest,
    Query,
    Target,
    api,
    corp_path,
    member_path,
    probe,
    request,
    sealed,
    signed,
    signed_parts,
)


def _deep(kind: str) -> Builder:
    def build(t: Target, route: str, rng: random.Random) -> HostileRequest:
        c = f"deep-{kind}"
        make = deep_xml if kind == "xml" else deep_json
        if route in CALLBACKS:
            ep = t.endpoint(route)
            if rng.random() < 0.5:  # the envelope itself, unsigned
                depth = rng.choice([1000, 100_000])
                return request(c, route, f"envelope, depth {depth}", "POST", ep.path, body=make(depth))
            depth = rng.choice([17, 1000, 20_000])
            return signed(c, route, f"message, depth {depth}", ep, sealed(ep, make(depth)), rng)
        depth = rng.choice([1000, 100_000])
        if route in APIS:
            path = rng.choice([corp_path(t, rng) + "/admins", member_path(t, rng) + "/roles"])
            return api(t, c, route, f"body, depth {depth}", "PUT", path, body=make(depth))
        return probe(c, route, f"body, depth {depth}", body=make(depth))

    return build


def _payload_category(category: str, payloads: Callable[[Target, str, random.Random], tuple[str, bytes]]) -> Builder:
    """A category whose malice is a message: signed on the callback routes; a body, a path and a query
    parameter elsewhere."""

    def build(t: Target, route: str, rng: random.Random) -> HostileRequest:
        variant, message = payloads(t, route, rng)
        if route in CALLBACKS:
            ep = t.endpoint(route)
            if rng.random() < 0.2:  # unsigned: the bytes as the body itself
                return request(category, route, variant + ", as the body", "POST", ep.path, body=message)
            return signed(category, route, variant, ep, sealed(ep, message), rng)
        piece = quote(message[:2000], safe="").encode()
        if route in APIS:
            where = rng.choice(["body", "path", "query"])
            if where == "body":
                text = message.decode("latin-1")
                form, path, body = rng.choice(
                    [
                        ("signature", "/signature", orjson.dumps({"signature": text})),
                        ("roleIds", "/roles", orjson.dumps({"roleIds": [text[:200]]})),
                        ("escaped signature", "/signature", _API_ESCAPES[category]),
                        ("body", "/signature", message),
                    ]
                )
                return api(t, category, route, f"{variant}, {form}", "PUT", member_path(t, rng) + path, body=body)
            if where == "path":
                return api(t, category, route, variant + ", path", "GET", corp_path(t, rng).encode()
                            + b"/members/" + piece)  # fmt: skip
            return api(t, category, route, variant + ", query", "GET", corp_path(t, rng) + "/members",
                        b"deptId=" + piece)  # fmt: skip
        return probe(category, route, variant, b"q=" + piece, message)

    return build


# JSON whose escapes decode to what the family is about
_API_ESCAPES = {
    "entities": b'{"signature":"<!DOCTYPE x [<!ENTITY a SYSTEM \\"file:///etc/passwd\\">]>&a;"}',
    "invalid-utf8": b'{"signature":"a\\ud800b"}',
    "nul": b'{"signature":"a\\u0000b"}',
    "missing-fields": b'{"signature":null}',
}


def _entities(t: Target, route: str, rng: random.Random) -> tuple[str, bytes]:
    return rng.choice(entity_documents(t.message(route, rng)))


def _invalid_utf8(t: Target, route: str, rng: random.Random) -> tuple[str, bytes]:
    return rng.choice(invalid_utf8(route == "dingtalk", t.message(route, rng)))


def _nul(t: Target, route: str, rng: random.Random) -> tuple[str, bytes]:
    return rng.choice(nul_messages(route == "dingtalk", t.message(route, rng)))


def _missing_fields(t: Target, route: str, rng: random.Random) -> tuple[str, bytes]:
    return rng.choice(missing_fields(route, t.wecom.corp_id, t.suite.suite_id))


def _huge_numbers(t: Target, route: str, rng: random.Random) -> HostileRequest:
    c = "huge-numbers"
    big = rng.choice(["9" * 5000, str(10**40), str(2**63), str(2**31), "-" + "9" * 30, "1e999", "0x7fffffff"])
    if route in CALLBACKS:
        ep = t.endpoint(route)
        where = rng.choice(["message", "message", "timestamp", "nonce", "AgentID"])
        if where == "message":
            variant, message = rng.choice(numbers(route, t.wecom.corp_id, t.suite.suite_id, big))
            return signed(c, route, variant, ep, sealed(ep, message), rng)
        if where == "AgentID" and not ep.dingtalk:
            method, query, _ = signed_parts(ep, encrypt := sealed(ep, t.message(route, rng)))
            body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID>{big[:4000]}</AgentID></xml>".encode()
            return request(c, route, "AgentID", method, ep.path, query, body)
        stamp = big[:4000] if where == "timestamp" else None
        nonce = big[:4000] if where == "nonce" else None
        return signed(c, route, where, ep, sealed(ep, t.message(route, rng)), rng, timestamp=stamp, nonce=nonce)
    if route in APIS:
        if rng.random() < 0.3:  # in a JSON body
            variant, method, target, json_body = rng.choice(
                [
                    ("roleIds", "PUT", member_path(t, rng) + "/roles", f'{{"roleIds":[{big}]}}'),
                    ("memberIds", "PUT", corp_path(t, rng) + "/admins", f'{{"memberIds":[{big},"{big}"]}}'),
                    ("allowDeletes", "POST", corp_path(t, rng) + "/sync", f'{{"allowDeletes":{big}}}'),
                    ("signature", "PUT", member_path(t, rng) + "/signature", f'{{"signature":{big}}}'),
                ]
            )
            return api(t, c, route, variant + " in the body", method, target, body=json_body.encode())
        path = corp_path(t, rng)
        in_query: list[tuple[str, str, Query]] = [
            ("limit", path + "/members", [("limit", big[:4000])]),
            ("deptId", path + "/depts/" + big[:4000], []),
            ("memberId", path + "/members/" + big[:4000], []),
            ("deptId filter", path + "/members", [("deptId", big[:4000])]),
            ("status filter", path + "/members", [("status", big[:4000])]),
            ("runId", path + "/sync-runs/" + big[:4000], []),
            ("updatedSince", path + "/members", [("updatedSince", f"+{big[:6]}-01-01T00:00:00Z")]),
            ("cursor of a huge key", path + "/members", [("cursor", _cursor("members", big))]),
            ("cursor of a huge dept key", path + "/depts", [("cursor", _cursor("depts", big))]),
        ]
        variant, target, params = rng.choice(in_query)
        return api(t, c, route, variant, "GET", target, params)
    return probe(c, route, "query", [("limit", big[:4000]), ("timeout", big[:100])])


def _cursor(kind: str, big: str) -> str:
    return base64.urlsafe_b64encode(f'{{"l":"{kind}","k":{big[:4000]}}}'.encode()).decode().rstrip("=")


BUILDERS: dict[str, Builder] = {
    "deep-xml": _deep("xml"),
    "deep-json": _deep("json"),
    "entities": _payload_category("entities", _entities),
    "invalid-utf8": _payload_category("invalid-utf8", _invalid_utf8),
    "nul": _payload_category("nul", _nul),
    "huge-numbers": _huge_numbers,
    "missing-fields": _payload_category("missing-fields", _missing_fields),
}
