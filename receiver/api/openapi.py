"""The OpenAPI 3.1 description of ``/api``, served at ``/api/openapi.json`` (a test keeps it equal to the routes)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from receiver.api.guard import endpoint, reply

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NSTR: Schema = {"type": ["string", "null"]}
INT: Schema = {"type": "integer"}
NINT: Schema = {"type": ["integer", "null"]}
TIME: Schema = {"type": "string", "format": "date-time"}
NTIME: Schema = {"type": ["string", "null"], "format": "date-time"}
IDS: Schema = {"type": "array", "items": STR}
NIDS: Schema = {"type": ["array", "null"], "items": STR}
NOBJ: Schema = {"type": ["object", "null"]}
SOURCE: Schema = {"type": "string", "enum": ["platform", "local"]}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Schema], optional: tuple[str, ...] = ()) -> Schema:
    required = [k for k in props if k not in optional]
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def page(item: str) -> Schema:
    return obj({"items": {"type": "array", "items": ref(item)}, "total": INT, "nextCursor": NSTR})


SCHEMAS: dict[str, Schema] = {
    "Error": obj(
        {"error": STR, "field": STR, "ids": IDS, "corp": NSTR}, optional=("field", "ids", "corp")
    ),
    "CorpInfo": obj({
        "name": STR, "title": NSTR, "fullName": STR, "corpFullName": STR, "type": STR,
        "platform": {"type": "string", "enum": ["wecom", "dingtalk"]}, "corpId": STR, "authFullName": NSTR,
        "status": {"type": "string", "enum": ["active", "disabled"]}, "rootDeptId": NSTR,
        "authConfig": {"type": "object", "additionalProperties": NSTR, "description": "secrets shown as ***"},
        "departmentCount": INT, "activeMemberCount": INT, "offlineMemberCount": INT, "lastGoodSyncAt": NTIME,
    }),
    "Dept": obj({
        "deptId": STR, "parentId": NSTR, "name": NSTR, "nameEn": NSTR, "order": NINT, "leaderIds": NIDS,
        "corpFullName": STR, "createdAt": TIME, "updatedAt": TIME,
    }),
    "Member": obj({
        "memberId": {**STR, "description": "the platform user id"},
        "localId": {**STR, "description": "corpsync's id: survives a userid rename and a return"},
        "localUserId": {**NSTR, "description": "the member's person in the local user pool; null until registered"},
        "name": NSTR, "status": {"type": "string", "enum": ["active", "offline"]},
        "offlineReason": {"type": ["string", "null"], "enum": ["platform", "operator", None]},
        "offlineAt": NTIME, "deptIds": IDS, "mainDeptId": NSTR, "leaderDeptIds": IDS, "unionId": NSTR,
        "openUserId": NSTR, "alias": NSTR, "position": NSTR, "mobile": NSTR, "email": NSTR, "bizMail": NSTR,
        "telephone": NSTR, "gender": NINT, "avatar": NSTR, "jobNumber": NSTR, "workPlace": NSTR,
        "hiredDate": NINT, "directLeaderIds": NIDS, "platformStatus": NINT, "extattr": NOBJ,
        "corpFullName": STR, "createdAt": TIME, "updatedAt": TIME,
    }),
    "RoleMember": obj({
        "memberId": STR, "roleId": STR, "roleName": NSTR, "groupName": NSTR, "source": SOURCE, "createdAt": TIME,
    }),
    "Role": obj({"roleId": STR, "name": NSTR, "groupName": NSTR, "source": SOURCE, "memberIds": IDS}),
    "Tag": obj({"tagId": STR, "name": NSTR, "memberIds": IDS, "deptIds": IDS}),
    "Admin": obj({
        "memberId": STR, "name": NSTR, "status": STR, "level": NINT, "source": SOURCE, "createdAt": TIME,
    }),
    "Signature": obj({"memberId": STR, "signature": NSTR, "updatedAt": NTIME}),
    "SyncRun": obj({
        "runId": STR, "trigger": STR,
        "status": {"type": "string", "enum": ["running", "succeeded", "quarantined", "failed"]},
        "startedAt": TIME, "finishedAt": NTIME, "counts": {"type": "object"}, "apiCalls": INT, "error": NSTR,
        "held": NOBJ, "confirmedAt": NTIME,
    }),
    "SyncStarted": obj({
        "runId": {**NSTR, "description": "null when the run had no record yet after 10 s; see sync-runs"},
        "alreadyRunning": {"type": "boolean", "description": "a run was under way: this is that run"},
        "run": {"oneOf": [ref("SyncRun"), {"type": "null"}]},
    }),
    "LocalUser": obj({
        "localUserId": STR, "platform": {"type": "string", "enum": ["wecom", "dingtalk"]},
        "identity": {**STR, "description": "unionId:<unionid> | userId:<corpid>:<userid> | "
                                           "openUserId:<corpid>:<open_userid>"},
        "name": NSTR, "memberIds": IDS, "createdAt": TIME,
    }),
    "LocalCorpData": obj({
        "corpFullName": STR, "corpId": STR, "rootDeptId": NSTR,
        "deptList": {"type": "array", "items": ref("Dept")}, "userList": {"type": "array", "items": ref("Member")},
        "roleList": {"type": "array", "items": ref("Role")}, "tagList": {"type": "array", "items": ref("Tag")},
        "adminList": {"type": "array", "items": ref("Admin")},
        "localUserList": {"type": "array", "items": ref("LocalUser"), "description": "the local user pool"},
    }),
    "CorpPage": page("CorpInfo"),
    "DeptPage": page("Dept"),
    "MemberPage": page("Member"),
    "RoleMemberList": page("RoleMember"),
    "AdminPage": page("Admin"),
    "SyncRunPage": page("SyncRun"),
    "RolesBody": {"oneOf": [obj({"roleIds": IDS}), obj({"roleIdList": IDS})],
                  "description": "roleIds, or roleIdList as in the JitAI documents"},
    "MemberIdsBody": {"oneOf": [obj({"memberIds": IDS}), obj({"memberIdList": IDS})],
                   "description": "memberIds, or memberIdList as in the JitAI documents"},
    "MemberList": page("Member"),
    "BulkRegisterBody": obj(
        {"memberIds": IDS, "memberIdList": IDS, "allowDeletes": {"type": "boolean", "default": False}},
        optional=("memberIds", "memberIdList", "allowDeletes"),
    ),
    "BulkRegistered": obj({
        "runId": {**NSTR, "description": "the full sync run; null with a member list (no run is recorded)"},
        "status": {"type": "string", "enum": ["succeeded", "quarantined", "failed", "already_running"]},
        "counts": {"type": "object"}, "apiCalls": INT, "error": NSTR,
    }),
    "CorpData": {
        "type": "object", "description": "the platform's directory as one fetch read it (nothing stored)",
        "properties": {
            "corpFullName": STR, "corpId": STR, "rootDeptId": STR,
            "deptList": {"type": "array", "items": {"type": "object"}},
            "userList": {"type": "array", "items": {"type": "object"}},
            "tagList": {"type": ["array", "null"], "items": {"type": "object"}},
            "roleList": {"type": ["array", "null"], "items": {"type": "object"}},
            "roleMembers": {"type": ["array", "null"], "items": {"type": "object"}},
            "adminList": {"type": ["array", "null"], "items": {"type": "object"}},
            "failedDeptIds": IDS, "apiCalls": INT,
        },
        "required": ["corpFullName", "corpId", "rootDeptId", "deptList", "userList", "tagList", "roleList",
                     "roleMembers", "adminList", "failedDeptIds", "apiCalls"],
        "additionalProperties": False,
    },
    "AgentId": obj({"corpId": STR, "suiteId": STR, "agentId": {**NSTR, "description": "null: none given yet"}}),
    "SignatureBody": obj({"signature": {**STR, "minLength": 1, "maxLength": 65536}}),
    "SyncBody": obj({"allowDeletes": {"type": "boolean", "default": False}}, optional=("allowDeletes",)),
    "ChangeEvent": obj({
        "id": {**STR, "description": "the change id, a decimal string increasing in commit order"},
        "type": {**STR, "description": "member.created|updated|offlined|reactivated|moved, department.created|"
                                       "updated|moved|deleted, tag.*, admin.*, role.*"},
        "corp": STR, "objectId": STR,
        "changes": {"type": "object", "additionalProperties": obj({"before": {}, "after": {}}),
                    "description": "each changed field's values; personal fields only when asked for"},
        "source": {"type": "string", "enum": ["callback", "full_sync", "operator"]},
        "at": TIME, "inboxId": NSTR, "syncRunId": NSTR,
    }),
    "ChangePage": obj({"items": {"type": "array", "items": ref("ChangeEvent")},
                       "cursor": {**STR, "description": "the last id returned, or the one given"}}),
    "Subscriber": obj({
        "name": STR, "title": {**NSTR, "description": "null once removed from the app dir"},
        "url": {**NSTR, "description": "scheme and host only; null once removed"}, "events": NIDS,
        "corps": NIDS, "personalFields": IDS,
        "removed": {"type": "boolean", "description": "no longer in subscribers/: nothing is queued or sent to it"},
        "removedAt": NTIME, "disabled": {"type": "boolean"}, "disabledAt": NTIME,
        "disabledReason": NSTR, "failingSince": NTIME, "lastError": NSTR, "pending": INT,
        "lagSeconds": {"type": ["number", "null"]},
    }),
    "SubscriberPage": page("Subscriber"),
    "SubscriberEnabled": obj({"name": STR, "enabled": {"type": "boolean"}}),
    "ReplayBody": obj({"after": STR, "since": TIME, "until": TIME, "corp": STR},
                      optional=("after", "since", "until", "corp")),
    "ReplayQueued": obj({"subscriber": STR, "queued": INT}),
}  # fmt: skip


def _param(name: str, where: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": where, "required": where == "path", "schema": schema, "description": description}


PARAMETERS: dict[str, Schema] = {
    "corp": _param("corp", "path", STR, "corps/<name>, or a suite tenant <auth>/<corpid> written <auth>%2F<corpid>"),
    "deptId": _param("deptId", "path", STR, "the platform's department id"),
    "memberId": _param("memberId", "path", STR, "the platform's user id"),
    "runId": _param("runId", "path", STR, "a sync run id"),
    "limit": _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "page size"),
    "cursor": _param("cursor", "query", STR, "nextCursor of the previous page"),
    "status": _param("status", "query", {"type": "string", "enum": ["active", "offline"]}, "member status"),
    "deptIdFilter": _param("deptId", "query", STR, "members directly in this department"),
    "updatedSince": _param("updatedSince", "query", TIME, "members changed at or after this time (ISO-8601)"),
    "after": _param("after", "query", STR, "the cursor of the previous answer (a change id); default: the start"),
    "corpFilter": _param("corp", "query", STR, "only this corp's changes"),
    "types": _param("types", "query", STR, "event types or patterns, comma-separated (member.*,department.deleted)"),
    "wait": _param(
        "wait",
        "query",
        {"type": "number", "minimum": 0, "maximum": 30},
        "seconds to wait for a change when there is none yet (long poll)",
    ),
    "personalFields": _param("personalFields", "query", STR, "personal fields to show, comma-separated, or *"),
    "name": _param("name", "path", STR, "subscribers/<name> in the app dir"),
    "corpIdQuery": {**_param("corpId", "query", STR, "the tenant's corpid"), "required": True},
    "suiteIdQuery": {**_param("suiteId", "query", STR, "the suite or 代开发 template id"), "required": True},
}


def _response(description: str, schema: str | None = None) -> Schema:
    found: Schema = {"description": description}
    if schema is not None:
        found["content"] = {"application/json": {"schema": ref(schema)}}
    return found


RESPONSES: dict[str, Schema] = {
    "BadRequest": _response("bad input; field names it", "Error"),
    "Unauthorized": _response("missing or wrong bearer token", "Error"),
    "Forbidden": _response("no token configured and the caller is not on loopback", "Error"),
    "NotFound": _response("unknown corp, department, member or run", "Error"),
    "Unavailable": _response("the database is unavailable", "Error"),
}


def op(op_id: str, summary: str, schema: str, *, params: tuple[str, ...] = (), body: str | None = None,
       status: str = "200", optional_body: bool = False) -> Schema:  # fmt: skip
    found: Schema = {
        "operationId": op_id,
        "summary": summary,
        "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
        "responses": {
            status: _response("OK" if status == "200" else "Accepted", schema),
            **{code: {"$ref": f"#/components/responses/{name}"} for code, name in (
                ("400", "BadRequest"), ("401", "Unauthorized"), ("403", "Forbidden"), ("404", "NotFound"),
                ("503", "Unavailable"))},
        },
    }  # fmt: skip
    if body is not None:
        content = {"application/json": {"schema": ref(body)}}
        found["requestBody"] = {"required": not optional_body, "content": content}
    return found


C, M, PAGE = ("corp",), ("corp", "memberId"), ("limit", "cursor")
BASE = "/api/corps/{corp}"

PATHS: dict[str, Schema] = {
    "/api/openapi.json": {"get": op("getOpenApi", "This document", "Error")},
    "/api/corps": {"get": op("listCorps", "The corps served: configured and suite tenants", "CorpPage", params=PAGE)},
    "/api/agent-id": {"get": op("getAgentId", "The agent id a tenant's authorization gave the suite's app",
                                "AgentId", params=("corpIdQuery", "suiteIdQuery"))},
    BASE: {"get": op("getCorpInfo", "The corp's configuration (secrets masked) and local state", "CorpInfo", params=C)},
    BASE + "/root-dept": {"get": op("getRootDept", "The root department (never assumed to be 1)", "Dept", params=C)},
    BASE + "/depts": {"get": op("getDepts", "Departments in natural id order", "DeptPage", params=C + PAGE)},
    BASE + "/depts/{deptId}": {"get": op("getDept", "One department", "Dept", params=(*C, "deptId"))},
    BASE + "/members": {"get": op("getMembers", "Members by local id", "MemberPage",
                                  params=(*C, *PAGE, "status", "deptIdFilter", "updatedSince"))},
    BASE + "/members/{memberId}": {"get": op("getMember", "One member", "Member", params=M)},
    BASE + "/members/{memberId}/offline": {"post": op(
        "offlineMember", "Take the member offline in corpsync only (reason operator)", "Member", params=M)},
    BASE + "/offline": {"post": op(
        "offlineMembers", "Take members offline in corpsync only (reason operator)", "MemberList", params=C,
        body="MemberIdsBody")},
    BASE + "/members/{memberId}/roles": {
        "get": op("getUserRoles", "The member's roles", "RoleMemberList", params=M),
        "put": op("setUserRole", "Replace the member's local roles; answers the roles set", "RoleMemberList",
                  params=M, body="RolesBody"),
    },
    BASE + "/members/{memberId}/signature": {
        "get": op("getUserSignature", "The member's signature", "Signature", params=M),
        "put": op("saveUserSignature", "Save the member's signature", "Signature", params=M, body="SignatureBody"),
    },
    BASE + "/admins": {
        "get": op("getAdmin", "Admins (platform and local)", "AdminPage", params=C + PAGE),
        "put": op("setAdmin", "Replace the local admins; platform admins stay", "AdminPage", params=C,
                  body="MemberIdsBody"),
    },
    BASE + "/local-data": {"get": op("getLocalCorpData", "The whole local directory", "LocalCorpData", params=C)},
    BASE + "/third-data": {"get": op("getThirdCorpData", "The platform's directory, read now; nothing is stored",
                                     "CorpData", params=C)},
    BASE + "/init": {"post": op("initCorp", "Start the corp's first full sync (later: another one)", "SyncStarted",
                                params=C, status="202")},
    BASE + "/bulk-register": {"post": op(
        "bulkRegister", "Read the platform now and write it: all (a full sync) or the members listed",
        "BulkRegistered", params=C, body="BulkRegisterBody", optional_body=True)},
    BASE + "/sync": {"post": op("syncCorp", "Start a full sync (or join the one under way)", "SyncStarted",
                                params=C, body="SyncBody", status="202", optional_body=True)},
    BASE + "/sync-runs": {"get": op("getSyncRuns", "Full sync runs, newest first", "SyncRunPage", params=C + PAGE)},
    BASE + "/sync-runs/{runId}": {"get": op("getSyncRun", "One full sync run", "SyncRun", params=(*C, "runId"))},
    "/api/changes": {"get": op("getChanges", "Change events after a cursor, in commit order (long poll with wait)",
                               "ChangePage", params=("after", "corpFilter", "types", "limit", "wait",
                                                     "personalFields"))},
    "/api/subscribers": {"get": op("getSubscribers", "Webhook subscribers and their delivery state",
                                   "SubscriberPage")},
    "/api/subscribers/{name}/enable": {"post": op("enableSubscriber", "Enable a subscriber disabled for failing",
                                                  "SubscriberEnabled", params=("name",))},
    "/api/subscribers/{name}/replay": {"post": op("replaySubscriber", "Send a subscriber's changes again",
                                                  "ReplayQueued", params=("name",), body="ReplayBody",
                                                  status="202")},
}  # fmt: skip
TAGS: list[Schema] = [
    {"name": "corps", "description": "The corps served, their configuration and whole local directory"},
    {"name": "departments", "description": "The department tree"},
    {"name": "members", "description": "Members, their roles and signatures"},
    {"name": "admins", "description": "Corp admins"},
    {"name": "sync", "description": "Full syncs and their record"},
    {"name": "changes", "description": "The change feed: change events after a cursor (long poll)"},
    {"name": "subscribers", "description": "The change feed's webhook subscribers: state, enable, replay"},
    {"name": "meta", "description": "This document"},
]
_TAG_OF = {  # a corp's sub-resource (the segment after the corp) → the tag its operations are filed under
    "root-dept": "departments",
    "depts": "departments",
    "members": "members",
    "admins": "admins",
    "sync": "sync",
    "sync-runs": "sync",
}


def tag_of(path: str) -> str:
    """The tag of a path's operations: a corp's sub-resource by ``_TAG_OF`` (else ``corps``); any other path by its
    segment after /api (``/api/openapi.json``: meta). Every tag must be one of TAGS (a test holds to it)."""
    if path == "/api/openapi.json":
        return "meta"
    if path == "/api/agent-id":  # a suite tenant's agent id: about corps
        return "corps"
    if path.startswith(BASE + "/"):
        return _TAG_OF.get(path.removeprefix(BASE + "/").split("/")[0], "corps")
    return path.split("/")[2]


for _path, _operations in PATHS.items():
    for _operation in _operations.values():
        _operation["tags"] = [tag_of(_path)]

PATHS["/api/openapi.json"]["get"]["responses"]["200"] = {
    "description": "This OpenAPI document",
    "content": {"application/json": {"schema": {"type": "object"}}},
}

SPEC: Schema = {
    "openapi": "3.1.0",
    "info": {
        "title": "corpsync directory API",
        "version": "1",
        "description": (
            "The JitAI corp operations over corpsync's copy of a WeCom / DingTalk directory. JSON is camelCase; "
            "ids are strings; lists answer {items, total, nextCursor} and take limit (1-1000, default 100) and "
            "cursor. Every route needs Authorization: Bearer $CORPSYNC_ADMIN_TOKEN; with no token configured "
            "the API answers loopback callers only. Writes are local: they never call the platform."
        ),
    },
    "security": [{"bearer": []}],
    "tags": TAGS,
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "parameters": PARAMETERS,
        "responses": RESPONSES,
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
}


@endpoint
async def openapi(request: web.Request) -> web.Response:
    return reply(SPEC)
