"""Org mutations emit callback plaintexts shaped like the published samples in tests/data/protocol-events/."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import orjson
import pytest

from receiver.testing import SimOrg, generate_org
from receiver.testing import mutations as m
from tests.support.paths import PROTOCOL_EVENTS

EVENTS = PROTOCOL_EVENTS

SELFBUILT_HEAD = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "Event", "ChangeType"]
SUITE_HEAD = ["SuiteId", "AuthCorpId", "InfoType", "TimeStamp", "ChangeType"]


@pytest.fixture
def org() -> SimOrg:
    org = generate_org(9, 200, 20, 4)
    org.clock = lambda: 1_700_000_000.0
    return org


def _tags(xml: bytes) -> list[str]:
    return [child.tag for child in ET.fromstring(xml)]  # noqa: S314 - trusted test data


def _fields(xml: bytes) -> dict[str, str]:
    return {child.tag: (child.text or "").strip() for child in ET.fromstring(xml)}  # noqa: S314 - trusted test data


def _sample_tags(name: str) -> list[str]:
    return _tags((EVENTS / "wecom" / name).read_bytes())


def _sample_json(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads((EVENTS / "dingtalk" / name).read_bytes())
    return doc


def _assert_like(ours: bytes, sample: str, head: list[str], *, exact: bool = False) -> None:
    tags, expected = _tags(ours), _sample_tags(sample)
    assert tags[: len(head)] == head == expected[: len(head)]
    if exact:
        assert tags == expected
    else:
        assert set(tags) <= set(expected), set(tags) - set(expected)
        if head == SELFBUILT_HEAD:  # the suite sample orders Mobile/Position the other way round
            assert tags == [t for t in expected if t in tags]


def _assert_ding(ours: bytes, event_type: str) -> None:
    doc = orjson.loads(ours)
    sample = _sample_json(f"http_v2/{event_type}.json")
    assert doc.keys() == sample.keys()
    assert doc["EventType"] == event_type
    assert isinstance(doc["EventTime"], int)
    assert len(doc["eventId"]) == 32


def _assert_legacy(ours: bytes, event_type: str) -> None:
    doc = orjson.loads(ours)
    sample = _sample_json(f"{event_type}.json")
    assert doc.keys() == sample.keys()
    assert isinstance(doc["TimeStamp"], str)
    for key in ("UserId", "UserIdList"):
        if key in doc:
            assert all(isinstance(u, str) for u in doc[key])
    for key in ("DeptId", "LabelIdList"):
        if key in doc:
            assert all(isinstance(i, int) for i in doc[key])


def test_add_member_matches_create_user_samples(org: SimOrg) -> None:
    cb = m.add_member(org, "zhangsan", departments=[2, 3], is_leader=[1, 0], alias="zs")
    assert cb.subject == "zhangsan"
    _assert_like(cb.wecom[0], "selfbuilt.create_user.xml", SELFBUILT_HEAD)
    _assert_like(cb.wecom_thin[0], "selfbuilt.create_user.restricted_after_2022-08-15.xml", SELFBUILT_HEAD, exact=True)
    _assert_like(cb.wecom_suite("wwsuite")[0], "suite.change_contact.create_user.xml", SUITE_HEAD)
    fields = _fields(cb.wecom[0])
    assert fields["Department"] == "2,3"
    assert fields["IsLeaderInDept"] == "1,0"
    assert fields["ToUserName"] == org.corp_id
    assert fields["CreateTime"] == "1700000000"
    assert "OpenUserID" not in fields
    assert _fields(cb.wecom_suite("wwsuite")[0])["OpenUserID"].startswith("wo")
    _assert_ding(cb.dingtalk[0], "user_add_org")
    _assert_legacy(cb.dingtalk_legacy[0], "user_add_org")
    assert orjson.loads(cb.dingtalk[0])["userId"] == ["zhangsan"]


def test_update_member_sends_only_changed_fields_and_no_thin_event(org: SimOrg) -> None:
    cb = m.update_member(org, "u000005", name="新名字", position="总监", job_number="J1")
    assert _fields(cb.wecom[0]).keys() >= {"UserID", "Name", "Position"}
    assert "Mobile" not in _fields(cb.wecom[0])
    _assert_like(cb.wecom[0], "selfbuilt.update_user.xml", SELFBUILT_HEAD)
    assert cb.wecom_thin == []
    _assert_ding(cb.dingtalk[0], "user_modify_org")
    diff = orjson.loads(cb.dingtalk[0])["diffInfo"]
    assert diff["curr"] == {"name": "新名字", "title": "总监", "jobNumber": "J1"}
    assert diff["userid"] == "u000005"
    _assert_legacy(cb.dingtalk_legacy[0], "user_modify_org")


def test_unchanged_values_produce_no_event(org: SimOrg) -> None:
    member = org.members["u000005"]
    cb = m.update_member(org, "u000005", name=member.name)
    assert cb.wecom == []
    assert cb.dingtalk == []


def test_move_member_sends_department_in_both_forms(org: SimOrg) -> None:
    cb = m.move_member(org, "u000007", [4, 5], main_department=5)
    assert _tags(cb.wecom_thin[0])[len(SELFBUILT_HEAD) :] == ["UserID", "Department"]
    assert _fields(cb.wecom[0])["MainDepartment"] == "5"
    assert org.members["u000007"].departments == [4, 5]
    assert "u000007" in org.dept_members[4]


def test_rename_member_matches_the_restricted_sample(org: SimOrg) -> None:
    cb = m.rename_member(org, "u000008", "renamed")
    _assert_like(cb.wecom_thin[0], "selfbuilt.update_user.restricted_after_2022-08-15.xml", SELFBUILT_HEAD, exact=True)
    assert _fields(cb.wecom[0])["NewUserID"] == "renamed"
    assert cb.dingtalk == []
    assert "renamed" in org.members
    assert "u000008" not in org.members


def test_remove_member_matches_delete_user(org: SimOrg) -> None:
    cb = m.remove_member(org, "u000009")
    _assert_like(cb.wecom[0], "selfbuilt.delete_user.xml", SELFBUILT_HEAD, exact=True)
    _assert_ding(cb.dingtalk[0], "user_leave_org")
    _assert_legacy(cb.dingtalk_legacy[0], "user_leave_org")
    assert "u000009" not in org.members
    assert all("u000009" not in users for users in org.dept_members.values())


def test_activate_member(org: SimOrg) -> None:
    cb = m.activate_member(org, "u000010")
    _assert_ding(cb.dingtalk[0], "user_active_org")
    _assert_legacy(cb.dingtalk_legacy[0], "user_active_org")
    assert _fields(cb.wecom[0])["Status"] == "1"


def test_department_changes_match_party_samples(org: SimOrg) -> None:
    created = m.add_department(org, parent_id=1, name="新部门", order=3)
    dept_id = created.subject
    assert isinstance(dept_id, int)
    _assert_like(created.wecom[0], "selfbuilt.create_party.xml", SELFBUILT_HEAD, exact=True)
    _assert_like(created.wecom_suite("wws")[0], "suite.change_contact.create_party.xml", SUITE_HEAD, exact=True)
    assert _tags(created.wecom_thin[0])[len(SELFBUILT_HEAD) :] == ["Id", "ParentId"]
    _assert_ding(created.dingtalk[0], "org_dept_create")
    _assert_legacy(created.dingtalk_legacy[0], "org_dept_create")

    renamed = m.rename_department(org, dept_id, "改名")
    _assert_like(renamed.wecom[0], "selfbuilt.update_party.xml", SELFBUILT_HEAD, exact=True)
    assert renamed.wecom_thin == []
    _assert_ding(renamed.dingtalk[0], "org_dept_modify")

    moved = m.move_department(org, dept_id, 2)
    _assert_like(
        moved.wecom_thin[0], "selfbuilt.update_party.restricted_after_2022-08-15.xml", SELFBUILT_HEAD, exact=True
    )
    assert org.departments[dept_id].parentid == 2

    removed = m.remove_department(org, dept_id)
    _assert_like(removed.wecom[0], "selfbuilt.delete_party.xml", SELFBUILT_HEAD, exact=True)
    _assert_ding(removed.dingtalk[0], "org_dept_remove")
    _assert_legacy(removed.dingtalk_legacy[0], "org_dept_remove")
    assert dept_id not in org.departments


def test_refuses_to_remove_a_department_with_members(org: SimOrg) -> None:
    busy = next(d for d, users in org.dept_members.items() if users and not org.children[d])
    with pytest.raises(ValueError, match="not empty"):
        m.remove_department(org, busy)


def test_refuses_to_move_a_department_below_itself(org: SimOrg) -> None:
    child = org.children[2][0] if org.children[2] else m.add_department(org, parent_id=2).subject
    assert isinstance(child, int)
    with pytest.raises(ValueError, match="inside"):
        m.move_department(org, 2, child)


def test_tag_changes_match_update_tag(org: SimOrg) -> None:
    tagid = m.create_tag(org, "新标签").subject
    assert isinstance(tagid, int)
    added = m.tag_add(org, tagid, users=["u000001", "u000002"], departments=[2])
    _assert_like(added.wecom[0], "selfbuilt.update_tag.xml", SELFBUILT_HEAD)
    _assert_like(added.wecom_suite("wws")[0], "suite.change_contact.update_tag.xml", SUITE_HEAD)
    assert _fields(added.wecom[0])["AddUserItems"] == "u000001,u000002"
    assert added.wecom_thin == added.wecom
    removed = m.tag_remove(org, tagid, users=["u000002"])
    assert _fields(removed.wecom[0])["DelUserItems"] == "u000002"
    assert "DelPartyItems" not in _fields(removed.wecom[0])
    assert org.tags[tagid].users == ["u000001"]


def test_admin_changes_send_org_admin_and_label_user_change(org: SimOrg) -> None:
    added = m.add_admin(org, "u000020")
    assert added.wecom == []
    types = [orjson.loads(x)["EventType"] for x in added.dingtalk]
    assert types == ["org_admin_add", "label_user_change"]
    _assert_ding(added.dingtalk[0], "org_admin_add")
    _assert_legacy(added.dingtalk_legacy[0], "org_admin_add")
    _assert_ding(added.dingtalk[1], "label_user_change")
    _assert_legacy(added.dingtalk_legacy[1], "label_user_change")
    removed = m.remove_admin(org, "u000020")
    _assert_ding(removed.dingtalk[0], "org_admin_remove")
    assert orjson.loads(removed.dingtalk[1])["action"] == "remove"
    assert "u000020" not in org.admins


def test_role_changes_match_label_samples(org: SimOrg) -> None:
    group = next(iter(org.role_groups))
    added = m.add_role(org, "新角色", group_id=group)
    role_id = added.subject
    assert isinstance(role_id, int)
    _assert_ding(added.dingtalk[0], "label_conf_add")
    _assert_legacy(added.dingtalk_legacy[0], "label_conf_add")
    renamed = m.rename_role(org, role_id, "改名角色")
    _assert_ding(renamed.dingtalk[0], "label_conf_modify")
    _assert_legacy(renamed.dingtalk_legacy[0], "label_conf_modify")
    post = orjson.loads(orjson.loads(renamed.dingtalk[0])["postLabelList"][0])
    assert post["name"] == "改名角色"
    assert post["id"] == role_id
    assigned = m.assign_role(org, role_id, ["u000003"])
    assert orjson.loads(assigned.dingtalk[0])["userIdList"] == ["u000003"]
    removed = m.remove_role(org, role_id)
    _assert_ding(removed.dingtalk[0], "label_conf_del")
    _assert_legacy(removed.dingtalk_legacy[0], "label_conf_del")
    assert role_id not in org.roles


def test_cdata_survives_hostile_names(org: SimOrg) -> None:
    cb = m.add_member(org, "evil", name="a]]>b<c>&")
    assert _fields(cb.wecom[0])["Name"] == "a]]>b<c>&"


def test_unknown_ids_raise_value_error(org: SimOrg) -> None:
    with pytest.raises(ValueError, match="no member"):
        m.update_member(org, "nobody", name="x")
    with pytest.raises(ValueError, match="no department"):
        m.add_member(org, departments=[99999])
