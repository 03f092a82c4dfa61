"""Hostile traffic for a running receiver: every kind of bad request of issue #15 against every route, and a
raw-socket sender that can say anything HTTP lets a client say.

``hostile_requests(target)`` is endless; each run of ``len(CASES)`` requests holds every (category, route)
case once, in an order shuffled by the seed. Many are *validly signed* around a malicious plaintext, as a
holder of a leaked key (or a platform with a bug) would send them: that is how input reaches the parsers
behind the signature check. ``send`` writes one request on its own connection (``Connection: close``), in
pieces when the request is slow, and reads the answer's status. ``valid_callback`` makes the well-formed,
validly signed event a receiver under attack must still answer 200.

    shapes    Target (the app dir's corps and keys), the routes, HostileRequest and the helpers that build one
    crypto    bad and missing signatures, broken base64, broken padding and framing
    messages  deep XML and JSON, entities, invalid UTF-8, NULs, huge numbers, missing fields
    wire      huge and slow bodies, wrong methods, unknown corps
    payloads  the malicious messages themselves;  cases: every (category, route);  send: the raw sender
"""

from receiver.testing.hostile.cases import CASES, CATEGORIES, hostile_requests, valid_callback
from receiver.testing.hostile.send import Answer, send
from receiver.testing.hostile.shapes import APIS, CALLBACKS, PROBES, ROUTES, HostileRequest, Target

__all__ = [
    "APIS",
    "CALLBACKS",
    "CASES",
    "CATEGORIES",
    "PROBES",
    "ROUTES",
    "Answer",
    "HostileRequest",
    "Target",
    "hostile_requests",
    "send",
    "valid_callback",
]
