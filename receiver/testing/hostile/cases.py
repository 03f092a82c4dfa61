"""Every (category, route) case of hostile traffic, and the endless generator that cycles through them."""

from __future__ import annotations

import random
from collections.abc import Iterator

from receiver.testing.hostile.crypto import BUILDERS as CRYPTO
from receiver.testing.hostile.messages import BUILDERS as MESSAGES
from receiver.testing.hostile.shapes import ROUTES, Builder, HostileRequest, Target, request, sealed, signed_parts
from receiver.testing.hostile.wire import BUILDERS as WIRE

CATEGORIES = (
    "bad-signature",
    "missing-signature",
    "broken-base64",
    "broken-padding",
    "huge-body",
    "slow-body",
    "deep-xml",
    "deep-json",
    "entities",
    "invalid-utf8",
    "nul",
    "huge-numbers",
    "missing-fields",
    "wrong-method",
    "unknown-corp",
)
CASES = tuple((category, route) for category in CATEGORIES for route in ROUTES)

BUILDERS: dict[str, Builder] = {**CRYPTO, **WIRE, **MESSAGES}  # each category's builder


def hostile_requests(target: Target, *, seed: int = 0) -> Iterator[HostileRequest]:
    """Endless hostile requests: each run of ``len(CASES)`` holds every (category, route) case once."""
    rng = random.Random(seed)
    while True:
        cases = list(CASES)
        rng.shuffle(cases)
        for category, route in cases:
            yield BUILDERS[category](target, route, rng)


def valid_callback(target: Target, route: str, rng: random.Random) -> HostileRequest:
    """A well-formed event, validly signed, for ``route`` (one of CALLBACKS): it must be answered 200."""
    ep = target.endpoint(route)
    method, query, body = signed_parts(ep, sealed(ep, target.message(route, rng)))
    return request("valid", route, "event", method, ep.path, query, body)
