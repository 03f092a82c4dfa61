"""Normalized directory records: the same frozen values whether they come from an event or a full sync.

Ids are strings on every platform (WeCom department ids are ints, DingTalk's too, user ids are strings).
A field the platform withheld or did not send is ``None``; an empty string is never used for "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Platform(StrEnum):
    WECOM = "wecom"
    DINGTALK = "dingtalk"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Department:
    dept_id: str
    parent_id: str | None
    name: str | None = None
    name_en: str | None = None
    order: int | None = None
    leaders: tuple[str, ...] | None = None  # user ids of the department's leaders/managers


@dataclass(frozen=True, slots=True)
class Membership:
    dept_id: str
    is_leader: bool | None = None
    order: int | None = None


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    name: str | None = None
    departments: tuple[Membership, ...] | None = None  # None: unknown (thin event), () : in no department
    main_dept_id: str | None = None
    union_id: str | None = None
    open_user_id: str | None = None
    alias: str | None = None
    position: str | None = None
    mobile: str | None = None
    email: str | None = None
    biz_mail: str | None = None
    telephone: str | None = None
    gender: int | None = None  # WeCom: 1 male, 2 female; 0 ("undefined / not available") becomes None
    avatar: str | None = None
    job_number: str | None = None
    work_place: str | None = None
    hired_date: int | None = None  # DingTalk: ms since epoch
    direct_leaders: tuple[str, ...] | None = None
    platform_status: int | None = None  # WeCom: 1 active, 2 disabled, 4 not activated, 5 left
    extattr: dict[str, str] | None = field(default=None, hash=False, compare=True)

    @property
    def dept_ids(self) -> tuple[str, ...] | None:
        return None if self.departments is None else tuple(m.dept_id for m in self.departments)


@dataclass(frozen=True, slots=True)
class Tag:
    """A WeCom tag; DingTalk roles are ``Role``."""

    tag_id: str
    name: str | None
    user_ids: tuple[str, ...] | None = None
    dept_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Role:
    role_id: str
    name: str | None
    group_name: str | None = None


@dataclass(frozen=True, slots=True)
class Admin:
    user_id: str
    level: int | None = None  # DingTalk sys_level: 1 main admin, 2 sub-admin; WeCom auth_type


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a full sync read from the platform for one corp."""

    root_dept_id: str
    departments: tuple[Department, ...]
    members: tuple[Member, ...]
    tags: tuple[Tag, ...] | None = None
    roles: tuple[Role, ...] | None = None
    role_members: tuple[tuple[str, str], ...] | None = None  # (role_id, user_id)
    admins: tuple[Admin, ...] | None = None
    failed_departments: tuple[str, ...] = ()  # departments whose member fetch failed: removals are held
    skipped: tuple[str, ...] = ()  # parts that could not be fetched (e.g. "tags: errcode 60011"): left as they were
    api_calls: int = 0
