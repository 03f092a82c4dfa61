"""Callback plaintexts as the platforms write them: WeCom XML (self-built, thin, suite) and DingTalk JSON."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from receiver.testing.org import SimOrg

# A field sent in every WeCom form; in the full (pre-2022-08-15) and suite forms; in the full
# self-built form only; or only to suites.
ALL, FULL, SELF, SUITE = "all", "full", "self", "suite"

# Samples disagree on CDATA for a few fields; follow each published form (wecom.md §3.3).
_BARE_IN_SELFBUILT = frozenset({"Mobile"})  # CDATA in the suite sample
_BARE_IN_SUITE = frozenset({"ParentId"})  # CDATA in the self-built sample


@dataclass(frozen=True, slots=True)
class XmlField:
    name: str
    value: str | int | list[tuple[str, str]]  # a list is ExtAttr: (name, text value) items
    forms: str = ALL


@dataclass(frozen=True, slots=True)
class WecomChange:
    """One ``change_contact`` event. ``thin`` is False when post-2022-08-15 setups get no event at all."""

    change_type: str
    fields: tuple[XmlField, ...]
    thin: bool = True


@dataclass(frozen=True, slots=True)
class DingEvent:
    """One DingTalk contact event with the ids it carries, in both field spellings."""

    event_type: str
    event_id: str
    biz_id: str
    payload: dict[str, Any]  # camelCase keys of the current HTTP push (userId, deptId, labelIdList, ...)
    legacy: dict[str, Any]  # PascalCase keys of the legacy callback (UserId, DeptId, LabelIdList, ...)
    time_stamp: bool = True  # the current shape carries ``timeStamp`` for this event type
    opt_staff_id: str | None = None


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _element(name: str, value: str | int | list[tuple[str, str]], *, suite: bool) -> str:
    if isinstance(value, list):
        items = "".join(
            f"<Item><Name>{_cdata(n)}</Name><Type>0</Type><Text><Value>{_cdata(v)}</Value></Text></Item>"
            for n, v in value
        )
        return f"<ExtAttr>{items}</ExtAttr>"
    if suite:
        bare = name in _BARE_IN_SUITE or (isinstance(value, int) and name not in _BARE_IN_SELFBUILT)
    else:
        bare = name in _BARE_IN_SELFBUILT or (isinstance(value, int) and name not in _BARE_IN_SUITE)
    text = str(value)
    return f"<{name}>{text if bare else _cdata(text)}</{name}>"


@dataclass(frozen=True, slots=True)
class Callbacks:
    """What the platforms would push for one change of the org, rendered on demand.

    ``wecom`` — self-built / 代开发 contact events (``MsgType=event``, ``Event=change_contact``), full;
    ``wecom_thin`` — the same for callback URLs configured after 2022-08-15 (IDs only, fewer events);
    ``wecom_suite(suite_id)`` — third-party suite instruction-URL form (``InfoType=change_contact``);
    ``dingtalk`` — current HTTP push JSON; ``dingtalk_legacy`` — the PascalCase legacy JSON;
    ``dingtalk_stream`` — the Stream events (envelope + ``data``), for ``receiver.testing.stream``.
    ``subject`` is the id the change created or touched (handy after ``add_member`` / ``add_department``).
    """

    corp_id: str
    created_ms: int
    wecom_changes: tuple[WecomChange, ...] = ()
    ding_events: tuple[DingEvent, ...] = ()
    subject: str | int | None = None

    @property
    def wecom(self) -> list[bytes]:
        return [self._selfbuilt(c, thin=False) for c in self.wecom_changes]

    @property
    def wecom_thin(self) -> list[bytes]:
        return [self._selfbuilt(c, thin=True) for c in self.wecom_changes if c.thin]

    def wecom_suite(self, suite_id: str, auth_corp_id: str | None = None) -> list[bytes]:
        corp = auth_corp_id or self.corp_id
        out = []
        for change in self.wecom_changes:
            head = (
                f"<SuiteId>{_cdata(suite_id)}</SuiteId>\n<AuthCorpId>{_cdata(corp)}</AuthCorpId>\n"
                f"<InfoType>{_cdata('change_contact')}</InfoType>\n<TimeStamp>{self.created_ms // 1000}"
                f"</TimeStamp>\n<ChangeType>{_cdata(change.change_type)}</ChangeType>\n"
            )
            body = "".join(_element(f.name, f.value, suite=True) + "\n" for f in change.fields if f.forms != SELF)
            out.append(f"<xml>\n{head}{body}</xml>".encode())
        return out

    @property
    def dingtalk(self) -> list[bytes]:
        return [orjson.dumps(self._ding_current(e)) for e in self.ding_events]

    @property
    def dingtalk_stream(self) -> list[dict[str, Any]]:
        """The Stream events, as the SDKs expose them (envelope + ``data`` object); ``receiver.testing.stream``
        sends each as a wire frame."""
        return [self._ding_stream(e) for e in self.ding_events]

    @property
    def dingtalk_legacy(self) -> list[bytes]:
        return [orjson.dumps(self._ding_legacy(e)) for e in self.ding_events]

    def _selfbuilt(self, change: WecomChange, *, thin: bool) -> bytes:
        head = (
            f"<ToUserName>{_cdata(self.corp_id)}</ToUserName>\n<FromUserName>{_cdata('sys')}</FromUserName>\n"
            f"<CreateTime>{self.created_ms // 1000}</CreateTime>\n<MsgType>{_cdata('event')}</MsgType>\n"
            f"<Event>{_cdata('change_contact')}</Event>\n<ChangeType>{change.change_type}</ChangeType>\n"
        )
        keep = (ALL,) if thin else (ALL, FULL, SELF)
        body = "".join(_element(f.name, f.value, suite=False) + "\n" for f in change.fields if f.forms in keep)
        return f"<xml>\n{head}{body}</xml>".encode()

    def _ding_current(self, event: DingEvent) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "EventType": event.event_type,
            "EventTime": self.created_ms,
            "CorpId": self.corp_id,
            "BizId": event.biz_id,
            "eventId": event.event_id,
        }
        if event.time_stamp:
            doc["timeStamp"] = str(self.created_ms)
        doc.update(event.payload)
        return doc

    def _ding_stream(self, event: DingEvent) -> dict[str, Any]:
        data: dict[str, Any] = {"timeStamp": str(self.created_ms)} if event.time_stamp else {}
        data.update(event.payload)
        return {
            "eventCorpId": self.corp_id,
            "eventType": event.event_type,
            "eventId": event.event_id,
            "eventBornTime": self.created_ms,
            "data": data,
        }

    def _ding_legacy(self, event: DingEvent) -> dict[str, Any]:
        doc: dict[str, Any] = {"CorpId": self.corp_id, "EventType": event.event_type}
        doc.update(event.legacy)
        if event.opt_staff_id is not None:
            doc["OptStaffId"] = event.opt_staff_id
        doc["TimeStamp"] = str(self.created_ms)
        return doc


def join_ids(ids: Sequence[str | int]) -> str:
    return ",".join(str(i) for i in ids)


# -- building events from an org -------------------------------------------------------------

_TIMESTAMPED = frozenset({"user_add_org", "user_modify_org", "user_leave_org", "org_admin_add", "org_admin_remove"})


def ding_event(org: SimOrg, event_type: str, current: dict[str, Any], legacy: dict[str, Any]) -> DingEvent:
    """One DingTalk event; the legacy shape names an operator (``OptStaffId``) for member changes."""
    operator = org.main_admin() if event_type in {"user_add_org", "user_modify_org", "user_leave_org"} else None
    return DingEvent(
        event_type=event_type,
        event_id=f"{org.rng.getrandbits(128):032x}",
        biz_id=str(org.rng.getrandbits(40)),
        payload=current,
        legacy=legacy,
        time_stamp=event_type in _TIMESTAMPED,
        opt_staff_id=operator,
    )


def user_event(org: SimOrg, event_type: str, userids: Sequence[str], **extra: Any) -> DingEvent:
    return ding_event(org, event_type, {**extra, "userId": list(userids)}, {"UserId": list(userids)})


def dept_event(org: SimOrg, event_type: str, dept_id: int) -> DingEvent:
    return ding_event(org, event_type, {"deptId": [dept_id]}, {"DeptId": [dept_id]})


def label_event(
    org: SimOrg, event_type: str, label_ids: list[int], *, legacy_scope: bool = False, **fields: Any
) -> DingEvent:
    """Role events: camelCase now, PascalCase before — except ``action`` and ``scope`` in both.

    ``legacy_scope``: only the legacy shape carries ``scope`` (as captured for ``label_conf_del``).
    """
    current = {**fields, "labelIdList": label_ids}
    legacy = {k[0].upper() + k[1:] if k.endswith("List") else k: v for k, v in current.items()}
    if legacy_scope:
        legacy["scope"] = "1"
    return ding_event(org, event_type, current, legacy)


def callbacks(
    org: SimOrg,
    wecom: Sequence[WecomChange] = (),
    ding: Sequence[DingEvent] = (),
    subject: str | int | None = None,
) -> Callbacks:
    """The result of one mutation, stamped with the org's clock."""
    return Callbacks(org.corp_id, org.now_ms(), tuple(wecom), tuple(ding), subject)


# -- DingTalk failed list ----------------------------------------------------------------------

_USER_EVENTS = frozenset(
    {"user_add_org", "user_modify_org", "user_leave_org", "user_active_org", "org_admin_add", "org_admin_remove"}
)
_DEPT_EVENTS = frozenset({"org_dept_create", "org_dept_modify", "org_dept_remove"})


def failed_entry(plaintext: bytes, *, corp_id: str, now_ms: int) -> dict[str, Any]:
    """The ``failed_list`` item DingTalk keeps for an undelivered event (dingtalk.md §4.1).

    Only the user-event shape is published (``{"user_add_org": {"userid": [...], "corpid": ...}}``);
    departments use ``deptid`` by analogy and role events nest under ``roleLabelChange``.
    """
    doc = orjson.loads(plaintext)
    lower = {k.lower(): v for k, v in doc.items()}
    tag = str(lower.get("eventtype", ""))
    corp = str(lower.get("corpid") or corp_id)
    when = int(lower.get("eventtime") or lower.get("timestamp") or now_ms)
    inner: dict[str, Any]
    if tag in _USER_EVENTS:
        inner = {"userid": list(lower.get("userid", [])), "corpid": corp}
    elif tag in _DEPT_EVENTS:
        inner = {"deptid": list(lower.get("deptid", [])), "corpid": corp}
    elif tag.startswith("label_"):
        inner = {k: v for k, v in doc.items() if k not in {"EventType", "EventTime", "CorpId", "BizId", "eventId"}}
        inner["corpid"] = corp
        return {"call_back_tag": tag, "event_time": when, "roleLabelChange": inner}
    else:
        inner = {"corpid": corp}
    return {"call_back_tag": tag, "event_time": when, tag: inner}
