"""The simulated org generator: deterministic, sized as asked, indexed consistently."""

from __future__ import annotations

import time

import pytest

from receiver.testing import SimOrg, generate_org


def _fingerprint(org: SimOrg) -> tuple[object, ...]:
    depts = [(d.id, d.name, d.parentid, d.order, tuple(d.leaders)) for d in org.departments.values()]
    members = [(m.userid, m.name, tuple(m.departments), m.mobile, m.unionid) for m in org.members.values()]
    tags = [(t.tagid, tuple(t.users), tuple(t.parties)) for t in org.tags.values()]
    roles = [(r.id, r.name, tuple(r.members)) for r in org.roles.values()]
    return org.corp_id, depts, members, tags, roles, sorted(org.admins.items())


def test_same_seed_gives_the_same_org() -> None:
    assert _fingerprint(generate_org(5, 500, 40, 4)) == _fingerprint(generate_org(5, 500, 40, 4))


def test_another_seed_gives_another_org() -> None:
    assert _fingerprint(generate_org(5, 500, 40, 4)) != _fingerprint(generate_org(6, 500, 40, 4))


def test_sizes_depth_and_indexes_agree() -> None:
    org = generate_org(11, 2000, 120, 6, multi_dept_ratio=0.25)
    assert len(org.members) == 2000
    assert len(org.departments) == 120
    assert max(org.depth_of(d) for d in org.departments) == 6
    memberships = {(u, d) for u, m in org.members.items() for d in m.departments}
    indexed = {(u, d) for d, users in org.dept_members.items() for u in users}
    assert memberships == indexed
    assert all(len(set(users)) == len(users) for users in org.dept_members.values())
    multi = sum(1 for m in org.members.values() if len(m.departments) > 1)
    assert 0.15 < multi / 2000 < 0.35
    assert all(m.main_department in m.departments for m in org.members.values())
    for dept in org.departments.values():
        for leader in dept.leaders:
            member = org.members[leader]
            assert member.is_leader[member.departments.index(dept.id)] == 1
    assert sum(1 for level in org.admins.values() if level == 1) == 1


def test_every_department_reaches_the_root() -> None:
    org = generate_org(2, 10, 300, 5)
    assert {d.id for d in org.subtree(org.root_id)} == set(org.departments)


def test_visible_root_limits_the_scope_to_a_subtree() -> None:
    org = generate_org(3, 100, 60, 4)
    child = org.children[1][0]
    org.visible_root = child
    inside = {d.id for d in org.subtree(child)}
    assert {d for d in org.departments if org.in_scope(d)} == inside
    assert not org.in_scope(999_999)


def test_rejects_sizes_that_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="depth"):
        generate_org(1, 10, 5, 1)
    with pytest.raises(ValueError, match="visible_root"):
        generate_org(1, 10, 5, 3, visible_root=77)


def test_generates_100k_members_in_5k_departments() -> None:
    started = time.perf_counter()
    org = generate_org(42, 100_000, 5_000, 8)
    elapsed = time.perf_counter() - started
    print(f"generate_org(100k members, 5k departments): {elapsed:.2f}s")
    assert len(org.members) == 100_000
    assert len(org.departments) == 5_000
    assert sum(len(users) for users in org.dept_members.values()) >= 100_000
