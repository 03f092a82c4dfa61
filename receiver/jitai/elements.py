"""The JitAI corp elements, synchronous: ``QywxInnerCorp``, ``QywxProxyCorp`` and ``DDInnerCorp``, each with the
seeds' camelCase methods, parameter names and return shapes, over one ``handlers.api.Corp``.

Reads answer from the local copy; initCorp, syncCorp, getThirdCorpData and getClient reach the platform;
the writes (offlineMember, setUserRole, setAdmin, saveUserSignature) are local, as in the async API.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Protocol, TypeVar

from handlers.api import Corp
from handlers.api import CorpData as NativeCorpData
from handlers.clients import DingTalkClient, WecomClient
from handlers.config import WecomProxyCorp
from handlers.errors import InvalidInput
from handlers.store import credentials
from handlers.sync.fullsync import RunStatus, SyncResult
from receiver.jitai.client import DDClient, QywxClient
from receiver.jitai.errors import JitaiError, SyncNotDone
from receiver.jitai.records import CorpData, CorpDept, CorpMember, CorpRoleMember, RowData
from receiver.jitai.registry import app_for_suite
from receiver.runtime import Runtime

T = TypeVar("T")


class App(Protocol):
    """What an element needs of its App (receiver.jitai.app.App)."""

    runtime: Runtime

    def run(self, coro: Coroutine[Any, Any, T]) -> T: ...


Json = dict[str, Any]
RUN_POLL_SECONDS = 0.2  # how often a sync waits for another process's run of the same corp to end


def _id(name: str, value: object) -> str:
    """An id argument: a string (an integer is taken as its digits, as WeCom department ids are numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidInput(name, f"must be a string, got {type(value).__name__}")
    return str(value)


def _ids(name: str, values: object) -> list[str]:
    """A list argument of ids (``memberIdList``, ``roleIdList``); a lone string is a mistake, not a list."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInput(name, f"must be a list of ids, got {type(values).__name__}")
    return [_id(name, v) for v in values]


def _member_ids(values: object) -> list[str]:
    """bulkRegister's ``memberList``: member ids, CorpMember records, or userList entries of a CorpData."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInput("memberList", f"must be a list of members, got {type(values).__name__}")
    found = []
    for value in values:
        if isinstance(value, RowData | dict) and "memberId" in value:
            value = value["memberId"]
        found.append(_id("memberList", value))
    return found


class CorpElement:
    """What every corp element offers (JitAI ``corps.Meta``)."""

    def __init__(self, app: App, corp: Corp) -> None:
        self._app = app
        self._corp = corp

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        result: T = self._app.run(coro)
        return result

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.fullName}>"

    # -- properties -----------------------------------------------------------------------------------

    @property
    def title(self) -> str:
        return self._corp.title

    @property
    def fullName(self) -> str:  # noqa: N802 - the seeds' names, here and below
        return self._corp.full_name

    @property
    def corpFullName(self) -> str:  # noqa: N802
        return self._corp.corp_full_name

    @property
    def authConfig(self) -> dict[str, str | None]:  # noqa: N802
        """The credentials the corp uses, every secret shown as ``***``."""
        return dict(self._corp.auth_config)

    @property
    def corpData(self) -> Json:  # noqa: N802
        """The element's configuration: type, title, full name and authConfig (secrets masked)."""
        return {"fullName": self.fullName, "title": self.title, "type": self._corp.config.type.value,
                "corpId": self._corp.corp_id, "authConfig": self.authConfig}  # fmt: skip

    # -- the platform ---------------------------------------------------------------------------------

    def initCorp(self) -> None:  # noqa: N802
        """The corp's first full sync (later calls sync again)."""
        self._done(self._run(self._corp.init_corp()))

    def syncCorp(self, *, allowDeletes: bool = False) -> None:  # noqa: N802, N803
        """A full sync now. Raises SyncNotDone when it failed, or held removals (confirm: ``allowDeletes=True``)."""
        self._done(self._run(self._corp.sync_corp(allow_deletes=allowDeletes is True)))

    def getThirdCorpData(self) -> CorpData:  # noqa: N802
        """The platform's whole directory, read now; nothing is written (``bulkRegister`` writes it)."""
        native = self._run(self._corp.get_third_corp_data())
        return CorpData(native, self._run(self._corp_name()))

    async def _corp_name(self) -> str:
        """The corp's name: a tenant's as its authorization told it, else the element's title."""
        config = self._corp.config
        if isinstance(config, WecomProxyCorp):
            tenant = await credentials.load_tenant(self._app.runtime.pool, config.auth.name, config.corp_id)
            if tenant is not None and tenant.corp_name:
                return tenant.corp_name
        return self.title

    def bulkRegister(self, corpData: object, memberList: object = None) -> None:  # noqa: N802, N803
        """Write a directory getThirdCorpData read: all of it (a full sync from that data, deletion guard on), or
        only the members of ``memberList`` (ids or member records; created or updated, nobody removed)."""
        native = corpData.native if isinstance(corpData, CorpData) else corpData
        if not isinstance(native, NativeCorpData):
            raise InvalidInput(
                "corpData", f"must be the CorpData getThirdCorpData returned, got {type(corpData).__name__}"
            )
        members = None if memberList is None else _member_ids(memberList)
        self._done(self._run(self._corp.bulk_register(native, members)))

    def getClient(self) -> QywxClient | DDClient:  # noqa: N802
        native = self._corp.get_client()
        if isinstance(native, WecomClient):
            return QywxClient(native, self._app.run)
        if isinstance(native, DingTalkClient):
            return DDClient(native, self._app.run)
        raise JitaiError(f"{self.fullName}: no synchronous client for {type(native).__name__}")

    # -- the local copy -------------------------------------------------------------------------------

    def getCorpInfo(self) -> Json:  # noqa: N802
        info: Json = self._run(self._corp.get_corp_info()).to_json()
        return info

    def getLocalCorpData(self) -> Json:  # noqa: N802
        """The whole local directory: ``deptList``, ``userList``, ``roleList``, ``tagList``, ``adminList``."""
        data: Json = self._run(self._corp.get_local_corp_data()).to_json()
        return data

    def getRootDept(self) -> CorpDept:  # noqa: N802
        return CorpDept.of(self._run(self._corp.get_root_dept()))

    def getDepts(self) -> list[CorpDept]:  # noqa: N802
        return [CorpDept.of(d) for d in self._run(self._corp.get_depts())]

    def getDept(self, deptId: object) -> CorpDept:  # noqa: N802, N803
        return CorpDept.of(self._run(self._corp.get_dept(_id("deptId", deptId))))

    def getMembers(self, status: object = None) -> list[CorpMember]:  # noqa: N802
        if status is not None and not isinstance(status, str):
            raise InvalidInput("status", f"must be 'active', 'offline' or None, got {type(status).__name__}")
        return [CorpMember.of(m) for m in self._run(self._corp.get_members(status))]

    def getMember(self, memberId: object) -> CorpMember:  # noqa: N802, N803
        return CorpMember.of(self._run(self._corp.get_member(_id("memberId", memberId))))

    def getAdmin(self) -> list[str]:  # noqa: N802
        return list(self._run(self._corp.get_admin()))

    def getUserSignature(self, memberId: object) -> Json:  # noqa: N802, N803
        signature: Json = self._run(self._corp.get_user_signature(_id("memberId", memberId))).to_json()
        return signature

    # -- local writes ---------------------------------------------------------------------------------

    def offlineMember(self, memberIdList: object) -> None:  # noqa: N802, N803
        """Take members offline in corpsync only; the platform is not called."""
        self._run(self._corp.offline_member(_ids("memberIdList", memberIdList)))

    def setUserRole(self, memberId: object, roleIdList: object) -> list[CorpRoleMember]:  # noqa: N802, N803
        """Replace the member's local roles (a role id named for the first time is created)."""
        found = self._run(self._corp.set_user_role(_id("memberId", memberId), _ids("roleIdList", roleIdList)))
        return [CorpRoleMember.of(r) for r in found]

    def setAdmin(self, memberIdList: object) -> Json:  # noqa: N802, N803
        """Replace the local admins (the platform's stay); answers ``{}`` as JitAI does."""
        self._run(self._corp.set_admin(_ids("memberIdList", memberIdList)))
        return {}

    def saveUserSignature(self, memberId: object, signature: object) -> Json:  # noqa: N802, N803
        if not isinstance(signature, str):
            raise InvalidInput("signature", f"must be a string, got {type(signature).__name__}")
        saved: Json = self._run(self._corp.save_user_signature(_id("memberId", memberId), signature)).to_json()
        return saved

    # -- sync outcomes --------------------------------------------------------------------------------

    def _done(self, result: SyncResult) -> None:
        """None for a run that succeeded; SyncNotDone, with its one line, for any other outcome."""
        status, error, run_id = result.status, result.error, result.run_id
        if status is RunStatus.ALREADY_RUNNING and run_id is not None:
            status, error = self._run(self._wait_for(run_id))
        if status is RunStatus.SUCCEEDED:
            return
        name = self._corp.name
        if status is RunStatus.QUARANTINED:
            raise SyncNotDone(
                f"sync of {name} quarantined (run {run_id}): {error or 'removals held by the deletion guard'}; "
                f"confirm with syncCorp(allowDeletes=True) or `corpsync sync {name} --allow-deletes`",
                status.value,
                run_id,
            )
        raise SyncNotDone(f"sync of {name} failed (run {run_id}): {error or status.value}", status.value, run_id)

    async def _wait_for(self, run_id: int) -> tuple[RunStatus, str | None]:
        """Another process's run of this corp: its outcome once it ends."""
        while True:
            run = await self._corp.get_sync_run(run_id)
            if run.status != "running":
                return RunStatus(run.status), run.error
            await asyncio.sleep(RUN_POLL_SECONDS)


class QywxInnerCorp(CorpElement):
    """corps.QywxInnerType: a WeCom self-built app."""


class DDInnerCorp(CorpElement):
    """corps.DDInnerType: a DingTalk internal app."""


class QywxProxyCorp(CorpElement):
    """corps.QywxProxyType: a WeCom 代开发 / third-party suite tenant."""

    @property
    def corpId(self) -> str:  # noqa: N802
        return self._corp.corp_id

    @property
    def authFullName(self) -> str | None:  # noqa: N802
        return self._corp.auth_full_name

    @staticmethod
    def getAgentId(corpId: object, suiteId: object) -> str | None:  # noqa: N802, N803
        """The agent id the tenant ``corpId``'s authorization gave the suite ``suiteId`` (through the open App)."""
        corp_id, suite_id = _id("corpId", corpId), _id("suiteId", suiteId)
        return app_for_suite(suite_id).agent_id(corp_id, suite_id)


ELEMENTS: dict[str, Callable[[App, Corp], CorpElement]] = {
    "corps.QywxInnerType": QywxInnerCorp,
    "corps.QywxProxyType": QywxProxyCorp,
    "corps.DDInnerType": DDInnerCorp,
}
