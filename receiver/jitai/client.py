"""getClient(): the corp's platform API, synchronous and grouped as JitAI users reach for it
(``client.department.list()``, ``client.user.get(userid)``, ...), plus ``client.call(api, ...)`` for any other API.

Every call goes through the corp's ``handlers.clients`` client: the access token shared through the database,
the process's rate limits, retries and token refresh. Answers are the platform's JSON, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from handlers.clients import DingTalkClient, WecomClient
from handlers.errors import InvalidInput

Json = dict[str, Any]
Rows = list[Json]  # (the groups' methods named list shadow the builtin in their class bodies)
Runner = Callable[[Coroutine[Any, Any, Any]], Any]

USER_PAGES = 1000  # DingTalk user/list pages one call walks at most (100 members each)


def _text(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(name, f"must be a string, got {type(value).__name__}")
    return str(value)


class _Group:
    def __init__(self, client: _Client) -> None:
        self._client = client


class _Client:
    def __init__(self, run: Runner) -> None:
        self._run = run


class QywxClient(_Client):
    """A WeCom corp's server API (self-built app, or a 代开发 / suite tenant with its corp token)."""

    def __init__(self, native: WecomClient, run: Runner) -> None:
        super().__init__(run)
        self._native = native
        self.department = _WecomDepartments(self)
        self.user = _WecomUsers(self)
        self.tag = _WecomTags(self)

    def call(self, api: str, params: dict[str, str] | None = None, body: Json | None = None) -> Json:
        """``cgi-bin/<api>`` with the access token: GET with ``params``, or POST when a ``body`` is given."""
        method = "GET" if body is None else "POST"
        answer: Json = self._run(self._native.raw_call(_text("api", api), method=method, params=params, body=body))
        return answer


class _WecomDepartments(_Group):
    _client: QywxClient

    def list(self, id: str | int | None = None) -> Rows:
        """``department/list``: the department ``id`` and all below it (default: all the app sees)."""
        params = None if id is None else {"id": _text("id", id)}
        found: Rows = self._client.call("department/list", params).get("department", [])
        return found

    def simplelist(self, id: str | int | None = None) -> Rows:
        params = None if id is None else {"id": _text("id", id)}
        found: Rows = self._client.call("department/simplelist", params).get("department_id", [])
        return found

    def get(self, id: str | int) -> Json:
        found: Json = self._client.call("department/get", {"id": _text("id", id)}).get("department", {})
        return found


class _WecomUsers(_Group):
    _client: QywxClient

    def get(self, userid: str) -> Json:
        return _record(self._client.call("user/get", {"userid": _text("userid", userid)}))

    def list(self, department_id: str | int) -> Rows:
        """``user/list``: the members of one department, with details."""
        params = {"department_id": _text("department_id", department_id)}
        found: Rows = self._client.call("user/list", params).get("userlist", [])
        return found

    def simplelist(self, department_id: str | int) -> Rows:
        params = {"department_id": _text("department_id", department_id)}
        found: Rows = self._client.call("user/simplelist", params).get("userlist", [])
        return found


class _WecomTags(_Group):
    _client: QywxClient

    def list(self) -> Rows:
        found: Rows = self._client.call("tag/list").get("taglist", [])
        return found

    def get(self, tagid: str | int) -> Json:
        return _record(self._client.call("tag/get", {"tagid": _text("tagid", tagid)}))


class DDClient(_Client):
    """A DingTalk internal app's ``oapi`` API."""

    def __init__(self, native: DingTalkClient, run: Runner) -> None:
        super().__init__(run)
        self._native = native
        self.department = _DingTalkDepartments(self)
        self.user = _DingTalkUsers(self)
        self.role = _DingTalkRoles(self)

    def call(self, api: str, body: Json | None = None, params: dict[str, str] | None = None) -> Json:
        """``<api>`` with the access token: POST with ``body`` (DingTalk's topapi), or GET when only ``params``."""
        method = "GET" if body is None and params is not None else "POST"
        answer: Json = self._run(self._native.raw_call(_text("api", api), method=method, params=params, body=body))
        return answer

    def result(self, api: str, body: Json) -> Any:
        return self.call(api, body).get("result")


class _DingTalkDepartments(_Group):
    _client: DDClient

    def list(self, dept_id: str | int = 1) -> Rows:
        """``topapi/v2/department/listsub``: the sub-departments of ``dept_id`` (default the root, 1)."""
        found = self._client.result("topapi/v2/department/listsub", {"dept_id": int(_text("dept_id", dept_id))})
        return found if isinstance(found, list) else []

    def get(self, dept_id: str | int) -> Json:
        found = self._client.result("topapi/v2/department/get", {"dept_id": int(_text("dept_id", dept_id))})
        return found if isinstance(found, dict) else {}


class _DingTalkUsers(_Group):
    _client: DDClient

    def get(self, userid: str) -> Json:
        found = self._client.result("topapi/v2/user/get", {"userid": _text("userid", userid)})
        return found if isinstance(found, dict) else {}

    def list(self, dept_id: str | int) -> Rows:
        """``topapi/v2/user/list``: every member of one department, with details (all cursor pages)."""
        members: Rows = []
        cursor = 0
        for _ in range(USER_PAGES):
            body = {"dept_id": int(_text("dept_id", dept_id)), "cursor": cursor, "size": 100}
            page = self._client.result("topapi/v2/user/list", body)
            if not isinstance(page, dict):
                break
            members.extend(page.get("list") or [])
            if not page.get("has_more"):
                break
            cursor = int(page.get("next_cursor") or 0)
        return members


class _DingTalkRoles(_Group):
    _client: DDClient

    def list(self) -> Rows:
        """``topapi/role/list``: the role groups with their roles (DingTalk's tags)."""
        groups: Rows = []
        offset = 0
        for _ in range(USER_PAGES):
            page = self._client.result("topapi/role/list", {"offset": offset, "size": 200})
            if not isinstance(page, dict):
                break
            groups.extend(page.get("list") or [])
            if not page.get("hasMore"):
                break
            offset += 200
        return groups


def _record(doc: Json) -> Json:
    """A WeCom answer without its envelope (errcode, errmsg)."""
    return {k: v for k, v in doc.items() if k not in ("errcode", "errmsg")}
