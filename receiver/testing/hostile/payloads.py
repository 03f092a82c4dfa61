"""The malicious messages of ``receiver.testing.hostile``: what a validly signed callback may carry inside.

Each family returns ``(variant, message)`` pairs built around a well-formed event of the route's kind, so
that a parser meets the malice where it reads real fields.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

Variants = list[tuple[str, bytes]]


# -- well-formed events --------------------------------------------------------------------------------


MEMBERS = tuple(f"hostile{i}" for i in range(8))
"""The members ``wecom_event`` creates and updates: requests to the API name them, so some find a member."""


def wecom_event(rng: random.Random, corp_id: str) -> bytes:
    """A WeCom ``change_contact`` event (full form), of a member (one of MEMBERS) or a department."""
    n = rng.randrange(10**9)
    if rng.random() < 0.6:
        kind = rng.choice(["create_user", "update_user"])
        fields = (
            f"<UserID><![CDATA[{MEMBERS[n % len(MEMBERS)]}]]></UserID><Name><![CDATA[用户{n}]]></Name>"
            f"<Department><![CDATA[1]]></Department><MainDepartment>1</MainDepartment>"
            f"<IsLeaderInDept><![CDATA[0]]></IsLeaderInDept><Gender>1</Gender><Status>1</Status>"
        )
    else:
        kind = rng.choice(["create_party", "update_party"])
        fields = f"<Id>{n % 100000 + 2}</Id><Name><![CDATA[部门{n}]]></Name><ParentId>1</ParentId><Order>{n}</Order>"
    return (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>"
        f"<CreateTime>{1_700_000_000 + n % 10**8}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[change_contact]]></Event><ChangeType>{kind}</ChangeType>{fields}</xml>"
    ).encode()


def suite_info(rng: random.Random, suite_id: str) -> bytes:
    """A suite instruction: a ``suite_ticket`` push."""
    n = rng.randrange(10**9)
    return (
        f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType>"
        f"<TimeStamp>{1_700_000_000 + n % 10**8}</TimeStamp><SuiteTicket><![CDATA[ticket{n}]]></SuiteTicket></xml>"
    ).encode()


def dingtalk_event(rng: random.Random, corp_id: str) -> bytes:
    """A DingTalk contact event (HTTP push, legacy shape): IDs only, as DingTalk sends them."""
    n = rng.randrange(10**9)
    event: dict[str, object] = rng.choice(
        [
            {"EventType": "user_modify_org", "UserId": [f"hostile{n}"]},
            {"EventType": "org_dept_modify", "DeptId": [n % 100000 + 2]},
        ]
    )
    return json.dumps({**event, "CorpId": corp_id, "TimeStamp": str(1_700_000_000_000 + n)}).encode()


# -- the families --------------------------------------------------------------------------------------


def deep_xml(depth: int) -> bytes:
    return b"<xml><Encrypt>" + b"<a>" * depth + b"</a>" * depth + b"</Encrypt></xml>"


def deep_json(depth: int) -> bytes:
    return b'{"EventType":"user_add_org","encrypt":' + b"[" * depth + b"]" * depth + b"}"


def _replace(good: str, at: int, char: str) -> str:
    return good[:at] + char + good[at + 1 :]


def _uncanonical(good: str) -> str:
    if good.endswith("=="):
        return good[:-3] + "B=="
    if good.endswith("="):
        return good[:-2] + "B="
    return good + "="


BROKEN_BASE64: list[tuple[str, Callable[[str], str]]] = [
    ("invalid character", lambda good: _replace(good, 10, "*")),
    ("padding dropped", lambda good: good.rstrip("=") if good.endswith("=") else good[:-1]),
    ("non-canonical last digit", _uncanonical),
    ("URL-safe alphabet", lambda good: _replace(good, 5, "-").replace("/", "_")),
    ("whitespace inside", lambda good: good[:20] + " \n" + good[20:]),
    ("padding inside", lambda good: good[:8] + "==" + good[8:]),
    ("extra padding", lambda good: good + "=="),
    ("non-ASCII", lambda good: _replace(good, 10, "é")),
    ("lone surrogate", lambda good: _replace(good, 10, "\ud800")),
    ("empty", lambda good: ""),
    ("one group", lambda good: "AAAA"),
    ("700 KB", lambda good: "A" * 700_000),
]


def _into(message: bytes, dingtalk: bool, xml_piece: bytes, json_piece: bytes) -> bytes:
    """``message`` with one more field: ``xml_piece`` before ``</xml>``, or ``json_piece`` ("key": value) first."""
    if dingtalk:
        return b"{" + json_piece + b"," + message[1:]
    return message.replace(b"</xml>", xml_piece + b"</xml>")


_LAUGHS = b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10))


def entity_documents(message: bytes) -> Variants:
    body = message if message.startswith(b"<") else b"<xml><x>" + message + b"</x></xml>"
    after = body.split(b">", 1)[1] if body.startswith(b"<xml>") else body
    return [
        (
            "billion laughs",
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol0 "lol">' + _LAUGHS + b"]><xml>&lol9;" + after,
        ),
        (
            "external entity",
            b'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><Name>&xxe;</Name>' + after,
        ),
        ("external DTD", b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd">' + body),
        ("parameter entity", b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>' + body),
        ("lower-case doctype", b"<!doctype xml [<!entity a 'b'>]>" + body),
        ("UTF-16 with a DTD", ("<!DOCTYPE xml [<!ENTITY a 'b'>]>" + body.decode("utf-8", "replace")).encode("utf-16")),
        ("undefined entity", body.replace(b"</xml>", b"<Alias>&undefined;</Alias></xml>")),
        ("NUL character reference", body.replace(b"</xml>", b"<Alias>&#0;</Alias></xml>")),
        ("surrogate character reference", body.replace(b"</xml>", b"<Alias>&#xD800;</Alias></xml>")),
        ("character reference past Unicode", body.replace(b"</xml>", b"<Alias>&#x110000;</Alias></xml>")),
        ("100,000 &amp;", body.replace(b"</xml>", b"<Alias>" + b"&amp;" * 100_000 + b"</Alias></xml>")),
        ("Latin-1 declaration", b'<?xml version="1.0" encoding="ISO-8859-1"?>' + body),
        ("doctype in a comment", body.replace(b"</xml>", b"<!-- <!DOCTYPE x> --></xml>")),
    ]


def invalid_utf8(dingtalk: bool, message: bytes) -> Variants:
    def field(raw: bytes) -> bytes:
        return _into(message, dingtalk, b"<Alias><![CDATA[" + raw + b"]]></Alias>", b'"Alias":"' + raw + b'"')

    variants = [
        ("byte FF", field(b"\xff")),
        ("overlong NUL", field(b"\xc0\x80")),
        ("encoded surrogate", field(b"\xed\xa0\x80")),
        ("truncated sequence", message + b"\xe4\xb8"),
        ("Latin-1 text", field("café".encode("latin-1"))),
        ("UTF-16 with a BOM", message.decode().encode("utf-16")),
    ]
    if dingtalk:
        variants += [
            ("escaped lone surrogate as the event type", message.replace(b"user_modify_org", b"\\ud800")),
            ("escaped lone surrogate as the event id", _into(message, True, b"", b'"eventId":"\\udfff"')),
            ("escaped lone surrogate as an id", _into(message, True, b"", b'"UserId":["\\ud800x"]')),
        ]
    return variants


def nul_messages(dingtalk: bool, message: bytes) -> Variants:
    variants = [
        ("NUL in a field", _into(message, dingtalk, b"<Alias><![CDATA[a\x00b]]></Alias>", b'"Alias":"a\x00b"')),
        ("NUL first", b"\x00" + message),
        ("NUL last", message + b"\x00"),
        ("only NULs", b"\x00" * 64),
    ]
    if dingtalk:
        variants += [
            ("escaped NUL as the event type", message.replace(b"user_modify_org", b"user_modify_org\\u0000")),
            ("escaped NUL as the event id", _into(message, True, b"", b'"eventId":"e\\u0000"')),
            ("escaped NUL as an id", _into(message, True, b"", b'"UserId":["u\\u0000"],"DeptId":["\\u0000"]')),
        ]
    return variants


def missing_fields(route: str, corp_id: str, suite_id: str) -> Variants:
    if route == "dingtalk":
        return [
            ("empty object", b"{}"),
            ("empty event type", b'{"EventType":""}'),
            ("event type not text", b'{"EventType":5}'),
            ("member event without ids", b'{"EventType":"user_add_org"}'),
            ("department event without ids", b'{"EventType":"org_dept_create","DeptId":[]}'),
            ("role event without ids", b'{"EventType":"label_user_change","action":"add"}'),
            ("null", b"null"),
            ("a list", b"[]"),
            ("a string", b'"user_add_org"'),
            ("nothing", b""),
            ("empty data", b'{"data":"{}"}'),
        ]
    head = f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName><MsgType>event</MsgType>"
    if route == "wecom-suite":
        head = f"<xml><SuiteId><![CDATA[{suite_id}]]></SuiteId><TimeStamp>1700000000</TimeStamp>"
        cases = [
            ("no InfoType", ""),
            ("ticket without SuiteTicket", "<InfoType>suite_ticket</InfoType>"),
            ("create_auth without AuthCode", "<InfoType>create_auth</InfoType>"),
            ("change_auth without AuthCorpId", "<InfoType>change_auth</InfoType>"),
            ("cancel_auth without AuthCorpId", "<InfoType>cancel_auth</InfoType>"),
            (
                "contact change without a corp",
                "<InfoType>change_contact</InfoType><ChangeType>create_user</ChangeType>",
            ),
            ("reset_permanent_code without AuthCode", "<InfoType>reset_permanent_code</InfoType>"),
        ]
    else:
        change = "<Event>change_contact</Event><ChangeType>{}</ChangeType>"
        cases = [
            ("no ChangeType", "<Event>change_contact</Event>"),
            ("create_user without UserID", change.format("create_user")),
            ("update_user without UserID", change.format("update_user") + "<Name>x</Name>"),
            ("delete_user without UserID", change.format("delete_user")),
            ("create_party without Id", change.format("create_party") + "<Name>x</Name>"),
            ("update_party without Id", change.format("update_party")),
            ("delete_party without Id", change.format("delete_party")),
            ("update_tag without TagId", change.format("update_tag")),
            ("empty UserID", change.format("update_user") + "<UserID></UserID>"),
            ("a text message", "<Content>hi</Content>"),
        ]
    return [(variant, (head + xml + "</xml>").encode()) for variant, xml in cases] + [
        ("empty element", b"<xml/>"),
        ("nothing", b""),
        ("not XML", b"hello"),
    ]


def numbers(route: str, corp_id: str, suite_id: str, big: str) -> Variants:
    """Events with ``big`` (digits, or something that looks like a number) in each numeric field."""
    if route == "dingtalk":
        fields = [
            ("TimeStamp", f'"TimeStamp":"{big}"'),
            ("TimeStamp as a JSON number", f'"TimeStamp":{big}'),
            ("eventTime", f'"eventTime":"{big}"'),
            ("DeptId", f'"DeptId":[{big}]'),
            ("DeptId as text", f'"DeptId":["{big}"]'),
            ("UserId as a number", f'"UserId":[{big}]'),
            ("label id", f'"LabelIdList":[{big}],"PostLabelList":[{{"id":{big},"parentid":{big}}}]'),
        ]
        event = '{{"EventType":"{}","CorpId":"{}",{}}}'
        kind = {"DeptId": "org_dept_create", "DeptId as text": "org_dept_modify", "label id": "label_conf_modify"}
        return [(name, event.format(kind.get(name, "user_add_org"), corp_id, piece).encode()) for name, piece in fields]
    if route == "wecom-suite":
        head = f"<xml><SuiteId>{suite_id}</SuiteId><InfoType>suite_ticket</InfoType><SuiteTicket>t</SuiteTicket>"
        return [
            ("TimeStamp", f"{head}<TimeStamp>{big}</TimeStamp></xml>".encode()),
            ("department Id", f"<xml><SuiteId>{suite_id}</SuiteId><InfoType>change_contact</InfoType><AuthCorpId>"
             f"{corp_id}</AuthCorpId><ChangeType>create_party</ChangeType><Id>{big}</Id><ParentId>{big}</ParentId>"
             f"<Order>{big}</Order><Name>x</Name></xml>".encode()),
        ]  # fmt: skip
    head = (
        f"<xml><ToUserName>{corp_id}</ToUserName><MsgType>event</MsgType><Event>change_contact</Event>"
        "<CreateTime>{t}</CreateTime><ChangeType>{kind}</ChangeType>"
    )
    user = "<UserID>hostile-n</UserID><Name>n</Name>"
    party = "<Id>{big}</Id><ParentId>{big}</ParentId><Order>{big}</Order><Name>x</Name>"
    depts = "<Department>{big},1</Department><MainDepartment>{big}</MainDepartment>"
    leader = "<Department>1</Department><IsLeaderInDept>{big}</IsLeaderInDept>"
    tag = "<TagId>{big}</TagId><AddUserItems>u</AddUserItems><AddPartyItems>{big}</AddPartyItems>"
    cases = [
        ("CreateTime", "create_user", "{big}", user),
        ("Gender", "create_user", "1", user + "<Gender>{big}</Gender>"),
        ("Status", "update_user", "1", user + "<Status>{big}</Status>"),
        ("Department", "create_user", "1", user + depts),
        ("IsLeaderInDept", "update_user", "1", user + leader),
        ("department Id", "create_party", "1", party),
        ("department Order", "update_party", "1", "<Id>2</Id><Order>{big}</Order>"),
        ("TagId", "update_tag", "1", tag),
    ]
    return [
        (name, (head.format(t=t.format(big=big), kind=kind) + rest.format(big=big) + "</xml>").encode())
        for name, kind, t, rest in cases
    ]
