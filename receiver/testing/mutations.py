"""Changes to a simulated org's members and departments, each returning the callbacks it causes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from receiver.testing.events import (
    FULL,
    SELF,
    SUITE,
    Callbacks,
    WecomChange,
    XmlField,
    callbacks,
    dept_event,
    join_ids,
    user_event,
)
from receiver.testing.labels import (
    add_admin,
    add_role,
    add_role_group,
    assign_role,
    create_tag,
    remove_admin,
    remove_role,
    rename_role,
    tag_add,
    tag_remove,
    unassign_role,
)
from receiver.testing.org import SimDept, SimMember, SimOrg

# Contact-sync setups configured after 2022-08-15 get no event for a department rename or a member's
# detail change (``Callbacks.wecom_thin`` is empty then); DingTalk userids never change, so a WeCom
# ``NewUserID`` rename has no DingTalk event. Tag, admin and role changes live in ``labels`` and are
# re-exported here.

__all__ = [
    "activate_member",
    "add_admin",
    "add_department",
    "add_member",
    "add_role",
    "add_role_group",
    "assign_role",
    "create_tag",
    "move_department",
    "move_member",
    "remove_admin",
    "remove_department",
    "remove_member",
    "remove_role",
    "rename_department",
    "rename_member",
    "rename_role",
    "tag_add",
    "tag_remove",
    "unassign_role",
    "update_member",
]

# member attribute -> (WeCom XML field, DingTalk diffInfo key); None where the platform lacks it
_DETAIL_FIELDS: dict[str, tuple[str | None, str | None]] = {
    "name": ("Name", "name"),
    "position": ("Position", "title"),
    "mobile": ("Mobile", "mobile"),
    "email": ("Email", "email"),
    "gender": ("Gender", None),
    "status": ("Status", None),
    "alias": ("Alias", None),
    "telephone": ("Telephone", "telephone"),
    "avatar": ("Avatar", None),
    "biz_mail": ("BizMail", None),
    "address": ("Address", None),
    "job_number": (None, "jobNumber"),
    "work_place": (None, "workPlace"),
}


def _member_fields(m: SimMember) -> list[XmlField]:
    """create_user, in the order of the published sample; empty values are left out."""
    fields = [
        XmlField("UserID", m.userid),
        XmlField("OpenUserID", m.open_userid, SUITE),
        XmlField("Name", m.name, FULL),
        XmlField("Department", join_ids(m.departments)),
        XmlField("MainDepartment", m.main_department, FULL),
        XmlField("IsLeaderInDept", join_ids(m.is_leader), FULL),
        XmlField("DirectLeader", join_ids(m.direct_leader), FULL),
        XmlField("Position", m.position, FULL),
        XmlField("Mobile", m.mobile, FULL),
        XmlField("Gender", m.gender, FULL),
        XmlField("Email", m.email, FULL),
        XmlField("BizMail", m.biz_mail, FULL),
        XmlField("Status", m.status, SELF),
        XmlField("Avatar", m.avatar, FULL),
        XmlField("Alias", m.alias, FULL),
        XmlField("Telephone", m.telephone, FULL),
        XmlField("Address", m.address, SELF),
        XmlField("ExtAttr", list(m.extattr), FULL),
    ]
    return [f for f in fields if f.value not in ("", [])]


# -- members -----------------------------------------------------------------------------------


def add_member(
    org: SimOrg,
    userid: str | None = None,
    *,
    name: str | None = None,
    departments: Sequence[int] | None = None,
    main_department: int | None = None,
    is_leader: Sequence[int] | None = None,
    position: str = "专员",
    mobile: str | None = None,
    email: str | None = None,
    gender: int = 1,
    alias: str = "",
    status: int = 1,
    unionid: str | None = None,
) -> Callbacks:
    """A new member; made-up values come from ``org.rng``. ``Callbacks.subject`` is the userid.

    ``unionid`` of someone who left: that person back under a new userid (DingTalk keeps the unionid of a person,
    unique in the org, and may give a returning employee a new userid)."""
    userid = userid or f"n{org.rng.getrandbits(40):010x}"
    if userid in org.members:
        raise ValueError(f"member {userid!r} exists")
    if unionid is not None and org.member_by_unionid(unionid) is not None:
        raise ValueError("a member with this unionid exists")
    depts = list(departments or [org.visible_root])
    for dept_id in depts:
        org.department(dept_id)
    leader_flags = list(is_leader or [0] * len(depts))
    member = SimMember(
        userid=userid,
        name=name or f"新成员{userid[-4:]}",
        departments=depts,
        orders=[0] * len(depts),
        is_leader=leader_flags,
        main_department=main_department or depts[0],
        position=position,
        mobile=mobile if mobile is not None else f"13{org.rng.randrange(10**9):09d}",
        email=email if email is not None else f"{userid}@example.com",
        gender=gender,
        status=status,
        alias=alias,
        open_userid=f"wo{org.rng.getrandbits(64):016x}",
        unionid=unionid or f"{org.rng.getrandbits(96):024x}iE",
        job_number=userid,
        hired_date=org.now_ms(),
    )
    org.put_member(member)
    for dept_id, flag in zip(depts, leader_flags, strict=True):
        if flag:
            org.departments[dept_id].leaders.append(userid)
    wecom = WecomChange("create_user", tuple(_member_fields(member)))
    return callbacks(org, [wecom], [user_event(org, "user_add_org", [userid])], userid)


def update_member(
    org: SimOrg,
    userid: str,
    *,
    name: str | None = None,
    position: str | None = None,
    mobile: str | None = None,
    email: str | None = None,
    gender: int | None = None,
    status: int | None = None,
    alias: str | None = None,
    telephone: str | None = None,
    avatar: str | None = None,
    biz_mail: str | None = None,
    address: str | None = None,
    job_number: str | None = None,
    work_place: str | None = None,
) -> Callbacks:
    """Change details (None keeps a field). WeCom sends only the changed fields; thin setups get nothing."""
    member = org.member(userid)
    asked = {
        "name": name, "position": position, "mobile": mobile, "email": email, "gender": gender,
        "status": status, "alias": alias, "telephone": telephone, "avatar": avatar, "biz_mail": biz_mail,
        "address": address, "job_number": job_number, "work_place": work_place,
    }  # fmt: skip
    wecom_fields: list[XmlField] = [XmlField("UserID", userid)]
    prev: dict[str, Any] = {}
    curr: dict[str, Any] = {}
    for attr, value in asked.items():
        if value is None or getattr(member, attr) == value:
            continue
        xml_name, diff_key = _DETAIL_FIELDS[attr]
        if xml_name:
            wecom_fields.append(XmlField(xml_name, value, FULL))
        if diff_key:
            prev[diff_key], curr[diff_key] = getattr(member, attr), value
        setattr(member, attr, value)
    wecom = [WecomChange("update_user", tuple(wecom_fields), thin=False)] if len(wecom_fields) > 1 else []
    ding = []
    if curr:
        diff = {"prev": prev, "curr": curr, "userid": userid}
        ding.append(user_event(org, "user_modify_org", [userid], diffInfo=diff))
    return callbacks(org, wecom, ding, userid)


def move_member(
    org: SimOrg,
    userid: str,
    departments: Sequence[int],
    *,
    main_department: int | None = None,
    is_leader: Sequence[int] | None = None,
) -> Callbacks:
    """Replace the member's departments (kept positions stay where they were in each list)."""
    member = org.member(userid)
    if not departments:
        raise ValueError("a member needs at least one department")
    for dept_id in departments:
        org.department(dept_id)
    old_main = member.main_department
    org.unlink_member(member)
    kept = dict(zip(member.departments, member.orders, strict=True))
    member.departments = list(departments)
    member.orders = [kept.get(d, 0) for d in departments]
    member.is_leader = list(is_leader or [0] * len(departments))
    member.main_department = main_department or (old_main if old_main in departments else departments[0])
    for dept_id, flag in zip(member.departments, member.is_leader, strict=True):
        org.dept_members[dept_id].append(userid)
        if flag:
            org.departments[dept_id].leaders.append(userid)
    org.changed()
    fields = [XmlField("UserID", userid), XmlField("Department", join_ids(member.departments))]
    if member.main_department != old_main:
        fields.append(XmlField("MainDepartment", member.main_department, FULL))
    fields.append(XmlField("IsLeaderInDept", join_ids(member.is_leader), FULL))
    wecom = WecomChange("update_user", tuple(fields))
    return callbacks(org, [wecom], [user_event(org, "user_modify_org", [userid])], userid)


def rename_member(org: SimOrg, userid: str, new_userid: str) -> Callbacks:
    """WeCom's one-time userid change (``NewUserID``). DingTalk userids never change: no DingTalk event."""
    member = org.member(userid)
    if new_userid in org.members:
        raise ValueError(f"member {new_userid!r} exists")
    org.rename_userid(userid, new_userid)
    fields = (
        XmlField("UserID", userid),
        XmlField("NewUserID", new_userid),
        XmlField("Department", join_ids(member.departments)),
    )
    return callbacks(org, [WecomChange("update_user", fields)], [], new_userid)


def activate_member(org: SimOrg, userid: str) -> Callbacks:
    """A not-yet-activated member joins (WeCom status 4 -> 1; DingTalk ``user_active_org``)."""
    member = org.member(userid)
    member.status = 1
    wecom = WecomChange("update_user", (XmlField("UserID", userid), XmlField("Status", 1, FULL)), thin=False)
    return callbacks(org, [wecom], [user_event(org, "user_active_org", [userid])], userid)


def remove_member(org: SimOrg, userid: str) -> Callbacks:
    member = org.drop_member(org.member(userid).userid)  # ValueError when unknown
    fields = (XmlField("UserID", userid), XmlField("OpenUserID", member.open_userid, SUITE))
    return callbacks(org, [WecomChange("delete_user", fields)], [user_event(org, "user_leave_org", [userid])], userid)


# -- departments -------------------------------------------------------------------------------


def add_department(
    org: SimOrg, *, parent_id: int, name: str | None = None, order: int | None = None, dept_id: int | None = None
) -> Callbacks:
    """A new department; ``Callbacks.subject`` is its id."""
    org.department(parent_id)
    dept_id = dept_id if dept_id is not None else max(org.departments) + 1
    if dept_id in org.departments:
        raise ValueError(f"department {dept_id} exists")
    dept = SimDept(dept_id, name or f"新部门{dept_id}", parent_id, order if order is not None else 0)
    org.put_department(dept)
    fields = (
        XmlField("Id", dept_id),
        XmlField("Name", dept.name, FULL),
        XmlField("ParentId", parent_id),
        XmlField("Order", dept.order, FULL),
    )
    return callbacks(org, [WecomChange("create_party", fields)], [dept_event(org, "org_dept_create", dept_id)], dept_id)


def rename_department(org: SimOrg, dept_id: int, name: str) -> Callbacks:
    dept = org.department(dept_id)
    dept.name = name
    fields = (XmlField("Id", dept_id), XmlField("Name", name), XmlField("ParentId", dept.parentid))
    wecom = WecomChange("update_party", fields, thin=False)
    return callbacks(org, [wecom], [dept_event(org, "org_dept_modify", dept_id)], dept_id)


def move_department(org: SimOrg, dept_id: int, parent_id: int) -> Callbacks:
    dept = org.department(dept_id)
    org.department(parent_id)
    if any(d.id == parent_id for d in org.subtree(dept_id)):
        raise ValueError(f"department {parent_id} is inside {dept_id}")
    org.reparent(dept_id, parent_id)
    fields = (XmlField("Id", dept_id), XmlField("Name", dept.name, FULL), XmlField("ParentId", parent_id))
    return callbacks(org, [WecomChange("update_party", fields)], [dept_event(org, "org_dept_modify", dept_id)], dept_id)


def remove_department(org: SimOrg, dept_id: int) -> Callbacks:
    """Both platforms refuse to delete a department that still has members or sub-departments."""
    org.department(dept_id)
    if dept_id == org.root_id or org.children[dept_id] or org.dept_members[dept_id]:
        raise ValueError(f"department {dept_id} is the root or not empty")
    org.drop_department(dept_id)
    wecom = WecomChange("delete_party", (XmlField("Id", dept_id),))
    return callbacks(org, [wecom], [dept_event(org, "org_dept_remove", dept_id)], dept_id)
