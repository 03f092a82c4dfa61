"""Changes to WeCom tags, admins and DingTalk roles, each returning the callbacks it causes."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from receiver.testing.events import Callbacks, WecomChange, XmlField, callbacks, join_ids, label_event, user_event
from receiver.testing.org import SimOrg, SimRole, SimRoleGroup, SimTag

# WeCom sends ``update_tag`` for tag membership and nothing for admins or new tags; DingTalk has no
# tags and sends ``org_admin_*`` (with ``label_user_change`` for the admin role) and ``label_*`` events.

# -- tags (WeCom) ------------------------------------------------------------------------


def create_tag(org: SimOrg, name: str, tagid: int | None = None) -> Callbacks:
    """WeCom sends no contact event for a new tag."""
    tagid = tagid if tagid is not None else max(org.tags, default=0) + 1
    if tagid in org.tags:
        raise ValueError(f"tag {tagid} exists")
    org.tags[tagid] = SimTag(tagid, name)
    return callbacks(org, subject=tagid)


def _tag_change(org: SimOrg, tagid: int, users: Sequence[str], parties: Sequence[int], *, add: bool) -> Callbacks:
    if tagid not in org.tags:
        raise ValueError(f"no tag {tagid}")
    tag = org.tags[tagid]
    users_done = [u for u in users if (u not in tag.users) == add]
    parties_done = [p for p in parties if (p not in tag.parties) == add]
    if add:
        tag.users.extend(users_done)
        tag.parties.extend(parties_done)
    else:
        tag.users[:] = [u for u in tag.users if u not in users_done]
        tag.parties[:] = [p for p in tag.parties if p not in parties_done]
    verb = "Add" if add else "Del"
    fields = [XmlField("TagId", tagid)]
    if users_done:
        fields.append(XmlField(f"{verb}UserItems", join_ids(users_done)))
    if parties_done:
        fields.append(XmlField(f"{verb}PartyItems", join_ids(parties_done)))
    wecom = [WecomChange("update_tag", tuple(fields))] if len(fields) > 1 else []
    return callbacks(org, wecom, [], tagid)


def tag_add(org: SimOrg, tagid: int, *, users: Sequence[str] = (), departments: Sequence[int] = ()) -> Callbacks:
    return _tag_change(org, tagid, users, departments, add=True)


def tag_remove(org: SimOrg, tagid: int, *, users: Sequence[str] = (), departments: Sequence[int] = ()) -> Callbacks:
    return _tag_change(org, tagid, users, departments, add=False)


# -- admins and DingTalk roles -----------------------------------------------------------------


def _admin_role(org: SimOrg, level: int) -> SimRole | None:
    name = "主管理员" if level == 1 else "子管理员"
    return next((r for r in org.roles.values() if r.name == name), None)


def add_admin(org: SimOrg, userid: str, level: int = 2) -> Callbacks:
    """DingTalk sends ``org_admin_add`` and, with it, ``label_user_change`` for the admin role."""
    org.member(userid)
    org.admins[userid] = level
    ding = [user_event(org, "org_admin_add", [userid])]
    role = _admin_role(org, level)
    if role is not None and userid not in role.members:
        role.members.append(userid)
        ding.append(label_event(org, "label_user_change", [role.id], userIdList=[userid], action="add"))
    return callbacks(org, [], ding, userid)


def remove_admin(org: SimOrg, userid: str) -> Callbacks:
    level = org.admins.pop(userid, None)
    if level is None:
        raise ValueError(f"{userid!r} is not an admin")
    ding = [user_event(org, "org_admin_remove", [userid])]
    role = _admin_role(org, level)
    if role is not None and userid in role.members:
        role.members.remove(userid)
        ding.append(label_event(org, "label_user_change", [role.id], userIdList=[userid], action="remove"))
    return callbacks(org, [], ding, userid)


def _new_role_id(org: SimOrg) -> int:
    return max([*org.roles, *org.role_groups], default=1_000_000) + 1


def add_role_group(org: SimOrg, name: str) -> Callbacks:
    group = SimRoleGroup(_new_role_id(org), name)
    org.role_groups[group.group_id] = group
    return callbacks(org, [], [label_event(org, "label_conf_add", [group.group_id], scope="1")], group.group_id)


def add_role(org: SimOrg, name: str, *, group_id: int) -> Callbacks:
    if group_id not in org.role_groups:
        raise ValueError(f"no role group {group_id}")
    role = SimRole(_new_role_id(org), name, group_id)
    org.roles[role.id] = role
    org.role_groups[group_id].roles.append(role.id)
    return callbacks(org, [], [label_event(org, "label_conf_add", [role.id], scope="1")], role.id)


def rename_role(org: SimOrg, role_id: int, name: str) -> Callbacks:
    role = org.role(role_id)
    pre = {"deleted": False, "hidden": False, "level": 1, "scope": 1, "name": role.name, "id": role_id,
           "parentId": role.group_id, "extraInfo": {}}  # fmt: skip
    role.name = name
    post = {"hidden": False, "name": name, "id": role_id, "extraInfo": {}}
    event = label_event(
        org,
        "label_conf_modify",
        [role_id],
        postLabelList=[orjson.dumps(post).decode()],
        preLabelList=[orjson.dumps(pre).decode()],
        scope="1",
    )
    return callbacks(org, [], [event], role_id)


def remove_role(org: SimOrg, role_id: int) -> Callbacks:
    role = org.roles.pop(role_id)
    org.role_groups[role.group_id].roles.remove(role_id)
    return callbacks(org, [], [label_event(org, "label_conf_del", [role_id], legacy_scope=True)], role_id)


def assign_role(org: SimOrg, role_id: int, userids: Sequence[str]) -> Callbacks:
    role = org.role(role_id)
    added = [u for u in userids if org.member(u) and u not in role.members]
    role.members.extend(added)
    event = label_event(org, "label_user_change", [role_id], userIdList=added, action="add")
    return callbacks(org, [], [event] if added else [], role_id)


def unassign_role(org: SimOrg, role_id: int, userids: Sequence[str]) -> Callbacks:
    role = org.role(role_id)
    removed = [u for u in userids if u in role.members]
    for u in removed:
        role.members.remove(u)
    event = label_event(org, "label_user_change", [role_id], userIdList=removed, action="remove")
    return callbacks(org, [], [event] if removed else [], role_id)
