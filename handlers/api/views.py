"""What the directory API answers: frozen views of stored rows, each with a camelCase ``to_json()``.

Ids are strings everywhere (``localId`` too); times are ISO-8601 with offset; unknown is ``null``.
``memberId`` is the platform's user id (WeCom userid, DingTalk userid), as in the JitAI documents;
``localId`` is corpsync's own id of the member, which survives a userid rename and a return (DingTalk: under a new
userid with the same unionid); ``localUserId`` is the member's person in the local user pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import orjson

from handlers.store.rows import from_columns

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Json = dict[str, Any]

# Model records (handlers.model) say user_id; the API says memberId, as JitAI does.
_RENAMED = {"userId": "memberId", "userIds": "memberIds"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def plain(value: object) -> object:
    """A value as JSON sees it: datetimes in ISO-8601, tuples as lists, dataclasses as camelCase objects."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, JsonView):
        return value.to_json()
    if is_dataclass(value) and not isinstance(value, type):
        return record_json(value)
    return value


def record_json(record: DataclassInstance) -> Json:
    """A frozen record (a view, or a ``handlers.model`` record) as a camelCase JSON object."""
    found = {}
    for f in fields(record):
        key = camel(f.name)
        found[_RENAMED.get(key, key)] = plain(getattr(record, f.name))
    return found


class JsonView:
    """Base of the views: ``to_json`` maps every dataclass field to its camelCase name."""

    __slots__ = ()

    def to_json(self) -> Json:
        return record_json(cast("DataclassInstance", self))


def _tuple(value: Iterable[object] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def _jsonb(value: Any) -> Any:
    """A jsonb column: decoded by the pool's codec (handlers.store.pool.create_pool), or still text without it."""
    return orjson.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class DeptView(JsonView):
    dept_id: str
    parent_id: str | None
    name: str | None
    name_en: str | None
    order: int | None
    leader_ids: tuple[str, ...] | None  # user ids of the department's leaders
    corp_full_name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any], corp_full_name: str) -> DeptView:
        return from_columns(cls, row, leader_ids=_tuple(row["leaders"]), corp_full_name=corp_full_name)


@dataclass(frozen=True, slots=True)
class MemberView(JsonView):
    member_id: str  # the platform user id
    local_id: str
    local_user_id: str | None  # the member's person in the local user pool; None until registered
    name: str | None
    status: str  # 'active' | 'offline'
    offline_reason: str | None  # 'platform' | 'operator' while offline
    offline_at: datetime | None
    dept_ids: tuple[str, ...]  # direct memberships
    main_dept_id: str | None
    leader_dept_ids: tuple[str, ...]  # the departments among dept_ids this member leads
    union_id: str | None
    open_user_id: str | None
    alias: str | None
    position: str | None
    mobile: str | None
    email: str | None
    biz_mail: str | None
    telephone: str | None
    gender: int | None
    avatar: str | None
    job_number: str | None
    work_place: str | None
    hired_date: int | None
    direct_leader_ids: tuple[str, ...] | None
    platform_status: int | None
    extattr: Mapping[str, Any] | None
    corp_full_name: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any], corp_full_name: str) -> MemberView:
        return from_columns(
            cls,
            row,
            member_id=row["user_id"],
            local_id=str(row["id"]),
            dept_ids=tuple(row["dept_ids"]),
            leader_dept_ids=tuple(row["leader_dept_ids"]),
            direct_leader_ids=_tuple(row["direct_leaders"]),
            extattr=_jsonb(row["extattr"]),
            corp_full_name=corp_full_name,
        )


@dataclass(frozen=True, slots=True)
class RoleMemberView(JsonView):
    """One role of one member (JitAI CorpRoleMember). ``source``: 'local' (setUserRole) or 'platform'."""

    member_id: str
    role_id: str
    role_name: str | None
    group_name: str | None
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class RoleView(JsonView):
    role_id: str
    name: str | None
    group_name: str | None
    source: str
    member_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TagView(JsonView):
    tag_id: str
    name: str | None
    member_ids: tuple[str, ...]
    dept_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdminView(JsonView):
    """An admin of the corp. ``source``: 'platform' (from the platform) or 'local' (setAdmin)."""

    member_id: str
    name: str | None
    status: str
    level: int | None
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LocalUserView(JsonView):
    """A person of the local user pool (JitAI 本地用户池). ``identity``: 'unionId:<unionid>' on DingTalk,
    'userId:<corpid>:<userid>' or 'openUserId:<corpid>:<open_userid>' on WeCom; ``member_ids`` the userids of the
    corp's members linked to the person."""

    local_user_id: str
    platform: str
    identity: str
    name: str | None  # of the newest member linked to the person
    member_ids: tuple[str, ...]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LocalUserView:
        return from_columns(cls, row, local_user_id=str(row["id"]), member_ids=tuple(row["member_ids"]))


@dataclass(frozen=True, slots=True)
class SignatureView(JsonView):
    member_id: str
    signature: str | None  # None: never saved
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class SyncRunView(JsonView):
    """A ``sync_runs`` row: ``counts`` per entity and change kind; ``held`` the removals the guard kept."""

    run_id: str
    trigger: str
    status: str  # 'running' | 'succeeded' | 'quarantined' | 'failed'
    started_at: datetime
    finished_at: datetime | None
    counts: Mapping[str, Any]
    api_calls: int
    error: str | None
    held: Mapping[str, Any] | None
    confirmed_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SyncRunView:
        return from_columns(cls, row, run_id=str(row["id"]), counts=_jsonb(row["counts"]), held=_jsonb(row["held"]))

    def to_json(self) -> Json:
        found = JsonView.to_json(self)
        if self.held is not None:  # held is stored with snake_case keys
            found["held"] = {camel(k): v for k, v in self.held.items()}
        return found


@dataclass(frozen=True, slots=True)
class CorpInfo(JsonView):
    """getCorpInfo: the corp's configuration (secrets masked) and the state of its local copy."""

    name: str
    title: str | None
    full_name: str
    corp_full_name: str
    type: str
    platform: str
    corp_id: str
    auth_full_name: str | None
    status: str  # 'active' | 'disabled' (a suite tenant that cancelled its authorization)
    root_dept_id: str | None  # as the last full sync set it
    auth_config: Mapping[str, str | None]
    department_count: int
    active_member_count: int
    offline_member_count: int
    last_good_sync_at: datetime | None

    def to_json(self) -> Json:
        found = JsonView.to_json(self)
        found["authConfig"] = dict(self.auth_config)
        return found
