"""WeCom suites and 代开发 templates (protocol/wecom.md §4.3): suite token, permanent codes, corp tokens.

suite_ticket (newest stored) → ``service/get_suite_token`` → ``service/get_permanent_code`` with an
auth code → ``suite_tenants`` row. A tenant's corp token: 代开发 (``dk…``) templates call ``gettoken``
with the permanent code as the secret; third-party suites call ``service/get_corp_token``. Codes and
tokens are never logged.
"""

from __future__ import annotations

import logging
from typing import Unpack

import aiohttp

from handlers.clients.base import RETRYABLE, Json, Transport, ident, items, mapping, text
from handlers.clients.tokens import Token
from handlers.clients.wecom import WecomClient, access_token, cgi_base, gettoken
from handlers.clients.wiring import ClientOptions, Wiring
from handlers.config import Secret, SuiteAuth, WecomProxyCorp
from handlers.errors import UnknownCorp, UpstreamError
from handlers.model import Platform
from handlers.store.credentials import (
    Db,
    Tenant,
    corp_token_key,
    drop_auth_code,
    load_suite_ticket,
    load_tenant,
    pending_auth_codes,
    store_auth_info,
    store_tenant,
    suite_token_key,
    wecom_token_key,
)

log = logging.getLogger("corpsync.clients")

_SECRET_FIELDS = ("permanent_code", "access_token", "expires_in")


class SuiteClient:
    """One suite / 代开发 template: its suite token and the tenants' credentials."""

    def __init__(
        self, auth: SuiteAuth, session: aiohttp.ClientSession, pool: Db, **options: Unpack[ClientOptions]
    ) -> None:
        self.auth = auth
        self._pool = pool
        self._wiring = Wiring.of(session, pool, **options)
        self.transport = self._transport(f"wecom-suite:{auth.suite_id}", auth.name)
        self.suite_token = self._wiring.token(
            suite_token_key(auth.suite_id, auth.suite_secret.reveal()), "wecom_suite", self._fetch_suite_token
        )

    def _transport(self, limiter_key: str, label: str) -> Transport:
        return self._wiring.transport(
            cgi_base(self.auth.api_base), limiter_key, Platform.WECOM, self.auth.rate_limits, label
        )

    async def _fetch_suite_token(self) -> tuple[str, float]:
        ticket = await load_suite_ticket(self._pool, self.auth.suite_id)
        if ticket is None:
            raise UpstreamError(
                "service/get_suite_token", None, "no suite_ticket stored yet: WeCom pushes one every 10 minutes"
            )
        body = {
            "suite_id": self.auth.suite_id,
            "suite_secret": self.auth.suite_secret.reveal(),
            "suite_ticket": ticket.value,
        }
        doc = await self.transport.call("service/get_suite_token", method="POST", body=body)
        return access_token(doc, "service/get_suite_token", "suite_access_token")

    async def _suite_call(self, api: str, body: Json, *, retry_transport: bool = True) -> Json:
        return await self.transport.call(
            api, method="POST", body=body, token=self.suite_token, auth_param="suite_access_token",
            retry_transport=retry_transport,
        )  # fmt: skip

    # -- authorization ---------------------------------------------------------------------------

    async def exchange_auth_code(self, auth_code: str) -> Tenant:
        """``service/get_permanent_code``: store the tenant's permanent code and auth info.

        An auth code is single use, so a request that may have reached WeCom is not repeated.
        """
        doc = await self._suite_call("service/get_permanent_code", {"auth_code": auth_code}, retry_transport=False)
        code = text(doc.get("permanent_code"))
        corp_id = text(mapping(doc.get("auth_corp_info")).get("corpid"))
        if code is None or corp_id is None:
            raise UpstreamError("service/get_permanent_code", None, "answer has no permanent_code or corpid")
        info = {k: v for k, v in doc.items() if k not in _SECRET_FIELDS and k not in ("errcode", "errmsg")}
        agent_id = _agent_id(info)
        await store_tenant(self._pool, self.auth.name, corp_id, Secret(code), agent_id, info)
        log.info(
            "suite tenant authorized",
            extra={
                "action": "suite_tenant_authorized",
                "auth": self.auth.name,
                "corp_id": corp_id,
                "agent_id": agent_id,
            },
        )
        return Tenant(self.auth.name, corp_id, Secret(code), agent_id, _corp_name(info), "active")

    async def exchange_pending_auth_codes(self) -> list[Tenant]:
        """Exchange every stored, unexpired auth code (see ``credentials.store_auth_code``).

        A code is dropped once WeCom answered about it; a refused request (rate limit, busy) keeps it
        for the next try within its 10 minutes.
        """
        done = []
        for code in await pending_auth_codes(self._pool, self.auth.suite_id):
            try:
                done.append(await self.exchange_auth_code(code))
            except UpstreamError as exc:
                if exc.errcode in RETRYABLE:
                    continue
                log.warning(
                    "auth code exchange failed",
                    extra={"action": "suite_auth_code_failed", "auth": self.auth.name, "errcode": exc.errcode},
                )
            await drop_auth_code(self._pool, self.auth.suite_id, code)
        return done

    async def tenant(self, corp_id: str) -> Tenant:
        found = await load_tenant(self._pool, self.auth.name, corp_id)
        if found is None or found.permanent_code is None:
            raise UnknownCorp(f"{self.auth.name}/{corp_id}: no permanent code stored (authorization not exchanged yet)")
        return found

    async def get_auth_info(self, corp_id: str) -> Tenant:
        """``service/get_auth_info`` (after change_auth): refresh the stored auth info and agent id."""
        tenant = await self.tenant(corp_id)
        assert tenant.permanent_code is not None  # checked by tenant()
        body = {"auth_corpid": corp_id, "permanent_code": tenant.permanent_code.reveal()}
        doc = await self._suite_call("service/get_auth_info", body)
        info = {k: v for k, v in doc.items() if k not in _SECRET_FIELDS and k not in ("errcode", "errmsg")}
        agent_id = _agent_id(info)
        await store_auth_info(self._pool, self.auth.name, corp_id, info, agent_id)
        return Tenant(
            self.auth.name, corp_id, tenant.permanent_code, agent_id or tenant.agent_id, _corp_name(info), tenant.status
        )

    async def get_agent_id(self, corp_id: str) -> str | None:
        """The app's agent id in the tenant, from the stored authorization (JitAI ``getAgentId``)."""
        found = await load_tenant(self._pool, self.auth.name, corp_id)
        return None if found is None else found.agent_id

    # -- tenant corp tokens ----------------------------------------------------------------------

    def corp_token(self, corp_id: str, permanent_code: Secret, transport: Transport) -> Token:
        code = permanent_code.reveal()
        if self.auth.is_proxy_template:
            return self._wiring.token(
                wecom_token_key(corp_id, code), "wecom_corp", gettoken(transport, corp_id, permanent_code)
            )

        async def fetch() -> tuple[str, float]:
            doc = await self._suite_call("service/get_corp_token", {"auth_corpid": corp_id, "permanent_code": code})
            return access_token(doc, "service/get_corp_token")

        return self._wiring.token(corp_token_key(self.auth.suite_id, corp_id, code), "wecom_corp", fetch)

    def tenant_client(self, corp: WecomProxyCorp) -> WecomClient:
        """The directory client of one tenant: same reads as a self-built app, with the corp token."""
        transport = self._transport(f"wecom:{corp.corp_id}", corp.name)
        token = TenantToken(self, corp.corp_id, transport)

        async def agent_id() -> str | None:
            return await self.get_agent_id(corp.corp_id)

        return WecomClient(transport, app_token=token, contact_token=None, agent_id=agent_id, sync=corp.sync)


class TenantToken:
    """A tenant's corp token, resolved from the stored permanent code on first use.

    A rejected token reloads the tenant first: ``reset_permanent_code`` may have replaced the code.
    """

    def __init__(self, suite: SuiteClient, corp_id: str, transport: Transport) -> None:
        self._suite = suite
        self._corp_id = corp_id
        self._transport = transport
        self._token: Token | None = None

    async def _load(self) -> Token:
        tenant = await self._suite.tenant(self._corp_id)
        assert tenant.permanent_code is not None  # checked by tenant()
        self._token = self._suite.corp_token(self._corp_id, tenant.permanent_code, self._transport)
        return self._token

    async def get(self) -> str:
        token = self._token or await self._load()
        return await token.get()

    async def refresh(self, stale: str) -> str:
        before = self._token.spec.key if self._token is not None else None
        token = await self._load()
        if token.spec.key != before:  # a new permanent code: its own cache entry
            return await token.get()
        return await token.refresh(stale)


def _agent_id(info: Json) -> str | None:
    for agent in items(mapping(info.get("auth_info")).get("agent")):
        found = ident(mapping(agent).get("agentid"))
        if found is not None:
            return found
    return None


def _corp_name(info: Json) -> str | None:
    return text(mapping(info.get("auth_corp_info")).get("corp_name"))
