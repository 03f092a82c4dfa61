"""The record shapes both platforms share: id lists, departments under each platform's keys, admins."""

from __future__ import annotations

from handlers.clients import dingtalk_records, wecom_records
from handlers.clients.base import text
from handlers.clients.records import admins, id_tuple
from handlers.model import Admin, Department


def test_id_list_drops_empty_and_unreadable_ids_and_is_none_when_not_sent() -> None:
    assert id_tuple([1, "2", "", None, True]) == ("1", "2")
    assert id_tuple([True, "a"], text) == ("True", "a")
    assert id_tuple(None) is None
    assert id_tuple("1,2") is None


def test_the_root_has_no_parent_on_either_platform() -> None:
    assert wecom_records.department({"id": 1, "parentid": 0, "name": "HQ", "name_en": "hq"}) == Department(
        "1", None, "HQ", "hq"
    )
    assert dingtalk_records.department({"dept_id": 1, "name": "HQ", "name_en": "hq"}) == Department("1", None, "HQ")


def test_department_leaders_come_from_each_platforms_key() -> None:
    wecom = wecom_records.department({"id": 2, "parentid": 1, "order": 5, "department_leader": ["u1", ""]})
    dingtalk = dingtalk_records.department({"dept_id": 2, "parent_id": 1, "dept_manager_userid_list": ["u1"]})
    assert wecom == Department("2", "1", order=5, leaders=("u1",))
    assert dingtalk == Department("2", "1", leaders=("u1",))
    assert wecom_records.department({"parentid": 1}) is None


def test_admins_without_a_user_id_are_left_out() -> None:
    entries = [{"userid": "u1", "level": 1}, {"level": 2}, "x", {"userid": "u2"}]
    assert admins(entries, "level") == (Admin("u1", 1), Admin("u2", None))
