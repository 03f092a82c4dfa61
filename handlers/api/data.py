"""Whole-directory values: the platform's (getThirdCorpData) and the local copy's (getLocalCorpData).

Their JSON uses the JitAI keys (``deptList``, ``userList``, ``roleList``) with camelCase records inside.
"""

from __future__ import annotations

from dataclasses import dataclass

from handlers.api.views import (
    AdminView,
    DeptView,
    Json,
    LocalUserView,
    MemberView,
    RoleView,
    TagView,
    plain,
    record_json,
)
from handlers.model import Member, Snapshot


def _member_json(member: Member) -> Json:
    found = record_json(member)
    found["deptIds"] = plain(member.dept_ids)
    return found


@dataclass(frozen=True, slots=True)
class CorpData:
    """The platform's directory as one fetch saw it; nothing of it is stored until ``bulk_register``."""

    corp_full_name: str
    corp_id: str
    snapshot: Snapshot

    def to_json(self) -> Json:
        s = self.snapshot
        return {
            "corpFullName": self.corp_full_name,
            "corpId": self.corp_id,
            "rootDeptId": s.root_dept_id,
            "deptList": [record_json(d) for d in s.departments],
            "userList": [_member_json(m) for m in s.members],
            "tagList": None if s.tags is None else [record_json(t) for t in s.tags],
            "roleList": None if s.roles is None else [record_json(r) for r in s.roles],
            "roleMembers": None
            if s.role_members is None
            else [{"roleId": r, "memberId": u} for r, u in s.role_members],
            "adminList": None if s.admins is None else [record_json(a) for a in s.admins],
            "failedDeptIds": list(s.failed_departments),
            "apiCalls": s.api_calls,
        }


@dataclass(frozen=True, slots=True)
class LocalCorpData:
    """Everything corpsync holds for one corp, with the local user pool (JitAI: 本地用户池) of its members."""

    corp_full_name: str
    corp_id: str
    root_dept_id: str | None  # the root getRootDept answers; None when no department is stored
    depts: tuple[DeptView, ...]
    members: tuple[MemberView, ...]
    roles: tuple[RoleView, ...]
    tags: tuple[TagView, ...]
    admins: tuple[AdminView, ...]
    users: tuple[LocalUserView, ...] = ()  # the local user pool: the people of the corp's registered members

    def to_json(self) -> Json:
        return {
            "corpFullName": self.corp_full_name,
            "corpId": self.corp_id,
            "rootDeptId": self.root_dept_id,
            "deptList": [d.to_json() for d in self.depts],
            "userList": [m.to_json() for m in self.members],
            "roleList": [r.to_json() for r in self.roles],
            "tagList": [t.to_json() for t in self.tags],
            "adminList": [a.to_json() for a in self.admins],
            "localUserList": [u.to_json() for u in self.users],
        }
