"""The simulated organization: departments, members, tags, admins and roles, indexed for O(page) reads."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class SimDept:
    id: int
    name: str
    parentid: int  # 0 for the corp's root department
    order: int
    leaders: list[str] = field(default_factory=list)
    name_en: str = ""


@dataclass(slots=True)
class SimMember:
    """One person. ``departments``, ``orders`` and ``is_leader`` are parallel lists."""

    userid: str
    name: str
    departments: list[int]
    orders: list[int]
    is_leader: list[int]
    main_department: int
    position: str = ""
    mobile: str = ""
    email: str = ""
    gender: int = 0  # WeCom: 1 male, 2 female
    status: int = 1  # WeCom: 1 active, 2 disabled, 4 not activated
    alias: str = ""
    telephone: str = ""
    avatar: str = ""
    biz_mail: str = ""
    address: str = ""
    direct_leader: list[str] = field(default_factory=list)
    open_userid: str = ""
    unionid: str = ""  # DingTalk
    job_number: str = ""
    work_place: str = ""
    hired_date: int = 0  # DingTalk: ms since the epoch
    boss: bool = False
    extattr: list[tuple[str, str]] = field(default_factory=list)  # (name, text value)

    @property
    def active(self) -> bool:
        return self.status == 1


@dataclass(slots=True)
class SimTag:
    tagid: int
    tagname: str
    users: list[str] = field(default_factory=list)
    parties: list[int] = field(default_factory=list)


@dataclass(slots=True)
class SimRoleGroup:
    group_id: int
    name: str
    roles: list[int] = field(default_factory=list)


@dataclass(slots=True)
class SimRole:
    id: int
    name: str
    group_id: int
    members: list[str] = field(default_factory=list)


class SimOrg:
    """One corp's directory. Mutate it through ``receiver.testing.mutations`` so callbacks come out too.

    ``visible_root`` is the top of what an *app* sees (the WeCom contact secret always sees the whole
    corp). ``dept_members`` keeps each department's direct members in order, so a page costs O(page).
    """

    def __init__(self, *, corp_id: str, name: str = "模拟企业", seed: int = 0, root_id: int = 1) -> None:
        self.corp_id = corp_id
        self.name = name
        self.root_id = root_id
        self.visible_root = root_id
        self.departments: dict[int, SimDept] = {}
        self.children: dict[int, list[int]] = {}
        self.members: dict[str, SimMember] = {}
        self.dept_members: dict[int, list[str]] = {}
        self.tags: dict[int, SimTag] = {}
        self.admins: dict[str, int] = {}  # userid -> level (1 main admin, 2 sub-admin)
        self.role_groups: dict[int, SimRoleGroup] = {}
        self.roles: dict[int, SimRole] = {}
        self.rng = random.Random(seed ^ 0x5EED)  # ids and names made up by mutations
        self.clock: Callable[[], float] = time.time  # event times
        self._seq: list[str] | None = None
        self._scope: dict[int, bool] = {}

    # -- reads -----------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def member(self, userid: str) -> SimMember:
        """The member, or ValueError naming the missing userid."""
        try:
            return self.members[userid]
        except KeyError:
            raise ValueError(f"no member {userid!r}") from None

    def department(self, dept_id: int) -> SimDept:
        try:
            return self.departments[dept_id]
        except KeyError:
            raise ValueError(f"no department {dept_id}") from None

    def role(self, role_id: int) -> SimRole:
        try:
            return self.roles[role_id]
        except KeyError:
            raise ValueError(f"no role {role_id}") from None

    def member_seq(self) -> list[str]:
        """Every userid in a stable order (what ``user/list_id`` pages through); rebuilt after changes."""
        if self._seq is None:
            self._seq = list(self.members)
        return self._seq

    def in_scope(self, dept_id: int) -> bool:
        """True when the department exists and lies inside the app's visible sub-tree."""
        if dept_id not in self.departments:
            return False
        if self.visible_root == self.root_id:
            return True
        cached = self._scope.get(dept_id)
        if cached is not None:
            return cached
        node, seen = dept_id, 0
        while node and node != self.visible_root and seen <= len(self.departments):
            node, seen = self.departments[node].parentid, seen + 1
        self._scope[dept_id] = result = node == self.visible_root
        return result

    def member_in_scope(self, member: SimMember) -> bool:
        return any(self.in_scope(d) for d in member.departments)

    def subtree(self, dept_id: int) -> Iterator[SimDept]:
        """The department and all below it, parents before children."""
        stack = [dept_id]
        while stack:
            node = stack.pop()
            yield self.departments[node]
            stack.extend(reversed(self.children.get(node, ())))

    def depth_of(self, dept_id: int) -> int:
        depth, node = 1, self.departments[dept_id].parentid
        while node:
            depth, node = depth + 1, self.departments[node].parentid
        return depth

    def main_admin(self) -> str | None:
        return next((u for u, level in self.admins.items() if level == 1), None)

    def roles_of(self, userid: str) -> list[SimRole]:
        return [r for r in self.roles.values() if userid in r.members]

    # -- index maintenance (used by mutations) ---------------------------------------------------

    def changed(self) -> None:
        """Drop derived caches after a structural change."""
        self._seq = None
        self._scope.clear()

    def put_department(self, dept: SimDept) -> None:
        self.departments[dept.id] = dept
        self.children.setdefault(dept.id, [])
        self.dept_members.setdefault(dept.id, [])
        if dept.parentid:
            self.children.setdefault(dept.parentid, []).append(dept.id)
        self.changed()

    def drop_department(self, dept_id: int) -> None:
        dept = self.departments.pop(dept_id)
        if dept.parentid:
            self.children[dept.parentid].remove(dept_id)
        del self.children[dept_id]
        del self.dept_members[dept_id]
        for tag in self.tags.values():
            if dept_id in tag.parties:
                tag.parties.remove(dept_id)
        self.changed()

    def reparent(self, dept_id: int, parent_id: int) -> None:
        dept = self.departments[dept_id]
        self.children[dept.parentid].remove(dept_id)
        self.children[parent_id].append(dept_id)
        dept.parentid = parent_id
        self.changed()

    def member_by_unionid(self, unionid: str) -> SimMember | None:
        """The member with this unionid (DingTalk: one per person in an org), or None."""
        return next((m for m in self.members.values() if m.unionid == unionid), None)

    def put_member(self, member: SimMember) -> None:
        self.members[member.userid] = member
        for dept_id in member.departments:
            self.dept_members[dept_id].append(member.userid)
        self.changed()

    def unlink_member(self, member: SimMember) -> None:
        """Take the member out of every department list and leader list (not out of ``members``)."""
        for dept_id in member.departments:
            self.dept_members[dept_id].remove(member.userid)
            leaders = self.departments[dept_id].leaders
            if member.userid in leaders:
                leaders.remove(member.userid)

    def drop_member(self, userid: str) -> SimMember:
        member = self.members[userid]
        self.unlink_member(member)
        del self.members[userid]
        for tag in self.tags.values():
            if userid in tag.users:
                tag.users.remove(userid)
        for role in self.roles.values():
            if userid in role.members:
                role.members.remove(userid)
        self.admins.pop(userid, None)
        for other in self.members.values():
            if userid in other.direct_leader:
                other.direct_leader.remove(userid)
        self.changed()
        return member

    def rename_userid(self, old: str, new: str) -> None:
        """WeCom lets a userid change once; every index follows."""

        def swap(items: list[str]) -> None:
            for i, value in enumerate(items):
                if value == old:
                    items[i] = new

        member = self.members.pop(old)
        member.userid = new
        self.members[new] = member
        for dept_id in member.departments:
            swap(self.dept_members[dept_id])
            swap(self.departments[dept_id].leaders)
        for tag in self.tags.values():
            swap(tag.users)
        for role in self.roles.values():
            swap(role.members)
        if old in self.admins:
            self.admins[new] = self.admins.pop(old)
        for other in self.members.values():
            swap(other.direct_leader)
        self.changed()


# -- generation --------------------------------------------------------------------------------

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯晨欣怡梓涵子轩雨博"
_UNITS = ("研发", "市场", "销售", "财务", "人事", "运营", "产品", "设计", "测试", "客服", "法务", "采购")
_KINDS = ("部", "中心", "组", "处")
_TITLES = ("工程师", "产品经理", "设计师", "销售代表", "会计", "专员", "主管", "经理", "总监", "助理")
_CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安")
_ROLE_GROUPS = (("默认", ("主管理员", "子管理员", "负责人", "主管")), ("职务", ("总监", "经理", "专员", "财务")))


def generate_org(
    seed: int,
    members: int,
    departments: int,
    depth: int,
    multi_dept_ratio: float = 0.1,
    *,
    tags: int = 8,
    role_groups: int = 3,
    roles_per_group: int = 4,
    admins: int = 3,
    inactive_ratio: float = 0.03,
    corp_id: str | None = None,
    visible_root: int | None = None,
) -> SimOrg:
    """A deterministic org: same seed and sizes, same org. Root department is 1; ``depth`` counts it."""
    if departments < 1 or depth < 1 or members < 0 or (departments > 1 and depth < 2):
        raise ValueError("need departments >= 1, members >= 0 and depth >= 2 when there are sub-departments")
    rng = random.Random(seed)
    org = SimOrg(corp_id=corp_id or f"ww{rng.getrandbits(64):016x}", name=f"模拟企业{seed}", seed=seed)
    org.put_department(SimDept(1, org.name, 0, 100_000_000, name_en=f"Sim Corp {seed}"))
    levels = {1: 1}
    eligible = [1] if depth > 1 else []
    for dept_id in range(2, departments + 1):
        # the first ``depth - 1`` departments form a chain so the requested depth is really reached
        parent = dept_id - 1 if dept_id <= depth else eligible[rng.randrange(len(eligible))]
        name = f"{_UNITS[rng.randrange(len(_UNITS))]}{_KINDS[rng.randrange(len(_KINDS))]}{dept_id}"
        org.put_department(SimDept(dept_id, name, parent, 100_000_000 - dept_id, name_en=f"Dept {dept_id}"))
        levels[dept_id] = levels[parent] + 1
        if levels[dept_id] < depth:
            eligible.append(dept_id)

    domain = f"corp{seed}.example.com"
    hired_base = 1_262_304_000_000  # 2010-01-01
    rand = rng.random  # int(rand() * n) instead of randrange: much faster, and still seeded

    def pick(items: str | tuple[str, ...]) -> str:
        return items[int(rand() * len(items))]

    for i in range(members):
        userid = f"u{i:06d}"
        depts = [int(rand() * departments) + 1]
        if departments > 1 and rand() < multi_dept_ratio:
            for _ in range(1 + int(rand() * 2)):
                extra = int(rand() * departments) + 1
                if extra not in depts:
                    depts.append(extra)
        roll = rand()
        name = pick(_SURNAMES) + pick(_GIVEN) + (pick(_GIVEN) if roll < 0.5 else "")
        member = SimMember(
            userid=userid,
            name=name,
            departments=depts,
            orders=[i] * len(depts),
            is_leader=[0] * len(depts),
            main_department=depts[0],
            position=pick(_TITLES),
            mobile=f"13{int(rand() * 1e9):09d}",
            email=f"{userid}@{domain}",
            gender=1 + int(rand() * 2),
            status=4 if roll < inactive_ratio else (2 if roll > 0.995 else 1),
            alias=f"user{i}" if roll > 0.7 else "",
            avatar=f"https://sim.invalid/avatar/{userid}/0",
            biz_mail=f"{userid}@{domain}",
            open_userid=f"wo{rng.getrandbits(64):016x}",
            unionid=f"{rng.getrandbits(96):024x}iE",
            job_number=f"{i:06d}",
            work_place=pick(_CITIES),
            hired_date=hired_base + int(rand() * 4e11),
            extattr=[("爱好", "旅游")] if roll > 0.9 else [],
        )
        org.put_member(member)

    for dept_id, userids in org.dept_members.items():  # the first member of each department leads it
        if userids:
            leader = org.members[userids[0]]
            leader.is_leader[leader.departments.index(dept_id)] = 1
            org.departments[dept_id].leaders.append(leader.userid)
    for member in org.members.values():
        leaders = org.departments[member.main_department].leaders
        if leaders and leaders[0] != member.userid:
            member.direct_leader = [leaders[0]]

    userids = org.member_seq()
    for index, userid in enumerate(userids[: min(admins, len(userids))]):
        org.admins[userid] = 1 if index == 0 else 2
    if userids:
        org.members[userids[0]].boss = True
    for tagid in range(1, tags + 1):
        users = [userids[k] for k in rng.sample(range(len(userids)), min(len(userids), rng.randrange(50)))]
        parties = rng.sample(range(1, departments + 1), min(departments, rng.randrange(3)))
        org.tags[tagid] = SimTag(tagid, f"标签{tagid}", users, parties)
    _generate_roles(org, rng, role_groups, roles_per_group)
    if visible_root is not None:
        if visible_root not in org.departments:
            raise ValueError(f"visible_root {visible_root} is not a department")
        org.visible_root = visible_root
    return org


def _generate_roles(org: SimOrg, rng: random.Random, groups: int, per_group: int) -> None:
    """DingTalk role groups; the default group's admin roles hold the admins."""
    userids = org.member_seq()
    next_id = 1_000_000 + rng.randrange(1000) * 1000
    for g in range(groups):
        group_name, role_names = _ROLE_GROUPS[g] if g < len(_ROLE_GROUPS) else (f"角色组{g + 1}", ())
        group = SimRoleGroup(next_id, group_name)
        org.role_groups[group.group_id] = group
        next_id += 1
        for r in range(per_group):
            role = SimRole(next_id, role_names[r] if r < len(role_names) else f"角色{next_id}", group.group_id)
            next_id += 1
            group.roles.append(role.id)
            org.roles[role.id] = role
            if role.name == "主管理员":
                role.members = [u for u, level in org.admins.items() if level == 1]
            elif role.name == "子管理员":
                role.members = [u for u, level in org.admins.items() if level == 2]
            elif userids:
                role.members = [userids[k] for k in rng.sample(range(len(userids)), min(len(userids), 5))]
