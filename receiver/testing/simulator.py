"""The upstream simulator: one aiohttp app serving WeCom and DingTalk APIs for registered orgs; callback pushes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import orjson
from aiohttp import web

from handlers.errors import CorpsyncError
from receiver.callbacks.crypto import CallbackCipher
from receiver.testing.accounts import DingTalkApp, SuiteTenant, WecomCorp, WecomSuite, make_secret, suite_xml
from receiver.testing.callbacks import sign_dingtalk_callback, sign_wecom_callback
from receiver.testing.dingtalk_api import DingTalkApi
from receiver.testing.events import failed_entry
from receiver.testing.gate import ApiError, Fault, FaultKind, Faults, RateLimiter, RateLimits, TokenStore, api_key
from receiver.testing.org import SimOrg
from receiver.testing.stream import StreamGateway
from receiver.testing.upstream import Handler, Platform
from receiver.testing.wecom_api import WecomApi

WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_RATE_ERRORS = {"wecom": (45009, "api freq out of limit"), "dingtalk": (90018, "当前应用调用该接口的QPS超过限制")}


@dataclass(frozen=True, slots=True)
class PushResult:
    """What the receiver answered; ``delivered`` applies the platform's own success rule."""

    status: int  # 0 when the connection failed or timed out
    body: bytes
    delivered: bool


class Simulator:
    """Simulated WeCom and DingTalk servers (the ``Upstream`` their APIs see). Register orgs, then serve ``app``
    (see ``run_simulator``).

    URL layout (``apiBase`` of a corp config): ``{url}/wecom`` (then ``/cgi-bin/...``) and ``{url}/dingtalk``
    (then ``/gettoken``, ``/topapi/...``, ``/call_back/...``); the DingTalk Stream gateway at ``{url}/stream``
    (``streamBase``: ``sim.stream``, receiver.testing.stream). Every call is counted in ``calls`` under
    ``"wecom:<path after cgi-bin/>"`` or ``"dingtalk:<path>"``, before faults and limits are applied.

    ``rate_limits``: None or False for none, True for the documented defaults, or a ``RateLimits``.
    ``token_ttl``: access-token lifetime in seconds. ``latency``: seconds added to every API call.
    ``clock``: monotonic seconds for token expiry, rate windows and auth-code expiry.
    """

    def __init__(
        self,
        *,
        rate_limits: RateLimits | bool | None = None,
        token_ttl: float = 7200.0,
        latency: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        seed: int = 0,
    ) -> None:
        self.rate_limits = RateLimits() if rate_limits is True else (rate_limits or None)
        self.latency = latency
        self.clock = clock
        self.rng = random.Random(seed)
        self.tokens = TokenStore(clock, token_ttl)
        self.limiter = RateLimiter(clock)
        self.faults = Faults()
        self.hang_seconds = 30.0  # how long a "timeout" fault holds the request before a 504
        self.calls: Counter[str] = Counter()
        self.errors: Counter[tuple[str, int]] = Counter()  # (api, errcode) of every error answered
        self.wecom_corps: dict[str, WecomCorp] = {}
        self.suites: dict[str, WecomSuite] = {}
        self.tenants_by_corp: dict[str, list[SuiteTenant]] = {}
        self.dingtalk_apps: dict[str, DingTalkApp] = {}
        self.url = ""  # set by run_simulator
        self._app: web.Application | None = None
        self._request_ids = itertools.count(0x1000)
        self._closing = asyncio.Event()
        self.stream = StreamGateway(self)  # the DingTalk Stream gateway: connections/open and the WebSocket

    @property
    def wecom_api_base(self) -> str:
        return f"{self.url}/wecom"

    @property
    def dingtalk_api_base(self) -> str:
        return f"{self.url}/dingtalk"

    @property
    def stream_base(self) -> str:
        """A Stream-mode corp's ``streamBase`` (and the Python SDK's ``DINGTALK_OPENAPI_ENDPOINT``)."""
        return self.stream.base

    # -- registration --------------------------------------------------------------------------

    def add_wecom_corp(
        self,
        org: SimOrg,
        *,
        corp_id: str | None = None,
        secret: str | None = None,
        contact_secret: str | None = None,
        agent_id: int = 1000002,
        token: str | None = None,
        aes_key: str | None = None,
        contact_new_ip: bool = True,
        privacy: bool = True,
    ) -> WecomCorp:
        """A self-built app on ``org``; missing secrets are made up. The org's ``corp_id`` follows."""
        corp = WecomCorp(
            org=org,
            corp_id=corp_id or org.corp_id,
            secret=secret or make_secret(self.rng),
            contact_secret=contact_secret or make_secret(self.rng),
            agent_id=agent_id,
            token=token or make_secret(self.rng, 24),
            aes_key=aes_key or make_secret(self.rng),
            contact_new_ip=contact_new_ip,
            privacy=privacy,
        )
        org.corp_id = corp.corp_id
        self.wecom_corps[corp.corp_id] = corp
        return corp

    def add_wecom_suite(
        self,
        suite_id: str,
        *,
        suite_secret: str | None = None,
        token: str | None = None,
        aes_key: str | None = None,
        provider_corp_id: str | None = None,
    ) -> WecomSuite:
        """A suite (``ww…``) or 代开发 template (``dk…``); it starts with one issued suite_ticket."""
        suite = WecomSuite(
            suite_id=suite_id,
            suite_secret=suite_secret or make_secret(self.rng, 32),
            token=token or make_secret(self.rng, 24),
            aes_key=aes_key or make_secret(self.rng),
            provider_corp_id=provider_corp_id or f"ww{self.rng.getrandbits(64):016x}",
        )
        self.suites[suite_id] = suite
        self.issue_suite_ticket(suite_id)
        return suite

    def add_suite_tenant(
        self,
        suite_id: str,
        org: SimOrg,
        *,
        corp_id: str | None = None,
        permanent_code: str | None = None,
        agent_id: int = 1000003,
        privacy: bool = True,
    ) -> SuiteTenant:
        """A corp that installed the suite. Without ``permanent_code`` it waits for ``create_auth``."""
        suite = self.suites[suite_id]
        tenant = SuiteTenant(
            suite, org, corp_id or org.corp_id, agent_id, permanent_code, privacy, permanent_code is not None
        )
        org.corp_id = tenant.corp_id
        suite.tenants[tenant.corp_id] = tenant
        self.tenants_by_corp.setdefault(tenant.corp_id, []).append(tenant)
        return tenant

    def add_dingtalk_app(
        self,
        org: SimOrg,
        *,
        app_key: str | None = None,
        app_secret: str | None = None,
        corp_id: str | None = None,
        agent_id: int = 2000001,
        token: str | None = None,
        aes_key: str | None = None,
    ) -> DingTalkApp:
        """A DingTalk internal app on ``org``. Callbacks use ``app_key`` as owner key (dingtalk.md §1.4)."""
        app = DingTalkApp(
            org=org,
            app_key=app_key or f"ding{make_secret(self.rng, 16).lower()}",
            app_secret=app_secret or make_secret(self.rng, 64),
            corp_id=corp_id or f"ding{self.rng.getrandbits(128):032x}",
            agent_id=agent_id,
            token=token or make_secret(self.rng, 24),
            aes_key=aes_key or make_secret(self.rng),
        )
        org.corp_id = app.corp_id
        self.dingtalk_apps[app.app_key] = app
        return app

    # -- suite instruction events ----------------------------------------------------------------

    def _now(self) -> int:
        return int(time.time())

    def issue_suite_ticket(self, suite_id: str) -> bytes:
        """A new suite_ticket (the newest is the only one accepted); returns its callback plaintext."""
        suite = self.suites[suite_id]
        suite.tickets.append(make_secret(self.rng, 64))
        return suite_xml(suite_id, "suite_ticket", self._now(), SuiteTicket=suite.tickets[-1])

    def _auth_code(self, suite: WecomSuite, corp_id: str) -> str:
        code = make_secret(self.rng, 64)
        suite.auth_codes[code] = (corp_id, self.clock() + 600)  # single use, valid 10 minutes
        return code

    def create_auth(self, suite_id: str, corp_id: str, *, state: str = "") -> tuple[str, bytes]:
        """An install from the app market: (auth_code, create_auth plaintext)."""
        suite = self.suites[suite_id]
        code = self._auth_code(suite, corp_id)
        return code, suite_xml(suite_id, "create_auth", self._now(), AuthCode=code, State=state, ExtraInfo="")

    def reset_permanent_code(self, suite_id: str, corp_id: str) -> tuple[str, bytes]:
        """代开发 "重新获取secret": (auth_code, reset_permanent_code plaintext); the old code stays valid
        until the new auth code is exchanged."""
        suite = self.suites[suite_id]
        code = self._auth_code(suite, corp_id)
        return code, suite_xml(suite_id, "reset_permanent_code", self._now(), AuthCode=code)

    def change_auth(self, suite_id: str, corp_id: str) -> bytes:
        return suite_xml(suite_id, "change_auth", self._now(), AuthCorpId=corp_id)

    def cancel_auth(self, suite_id: str, corp_id: str) -> bytes:
        """The corp uninstalls: its permanent code stops working."""
        self.suites[suite_id].tenants[corp_id].authorized = False
        return suite_xml(suite_id, "cancel_auth", self._now(), AuthCorpId=corp_id)

    # -- behaviour switches ----------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every token issued so far now answers 42001 / 42009 (WeCom) or 40014 (DingTalk)."""
        self.tokens.expire_all()

    def fail(
        self,
        api: str,
        times: int = 1,
        kind: FaultKind = "errcode",
        errcode: int = -1,
        errmsg: str = "system busy",
        sub_code: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``api`` fail: ``"wecom:user/list"``, or ``"user/list"`` for both.
        ``sub_code``: DingTalk's ``sub_code`` / ``sub_msg`` pair, as its errcode 88 answers carry."""
        self.faults.add(Fault(api, times, kind, errcode, errmsg, sub_code))

    def fail_department(self, dept_id: int, *, org: SimOrg | None = None, errcode: int = -1) -> None:
        """Member listing of this department (of ``org``, or of every org) fails until ``clear_faults``."""
        self.faults.departments[(id(org) if org is not None else None, dept_id)] = errcode

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset_counters(self) -> None:
        self.calls.clear()
        self.errors.clear()

    # -- serving ---------------------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        if self._app is None:
            self._app = web.Application(client_max_size=4 * 1024 * 1024)
            self._app.add_routes(WecomApi(self).routes())
            self._app.add_routes(DingTalkApi(self).routes())
            self._app.add_routes(self.stream.routes())
        return self._app

    def endpoint(
        self, platform: Platform, api: str, handler: Handler
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap an API handler with counting, latency, injected faults and the error envelope."""
        key = f"{platform}:{api}"

        async def serve(request: web.Request) -> web.StreamResponse:
            self.calls[key] += 1
            if self.latency > 0:
                await asyncio.sleep(self.latency)
            fault = self.faults.take(key)
            try:
                if fault is not None and fault.kind == "http500":
                    return web.Response(status=500, text="simulated server error")
                if fault is not None and fault.kind == "timeout":
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), self.hang_seconds)
                    return web.Response(status=504, text="simulated timeout")
                if fault is not None:
                    raise ApiError(fault.errcode, fault.errmsg, fault.sub_code)
                doc = await handler(request)
            except ApiError as exc:
                self.errors[(key, exc.errcode)] += 1
                doc = {"errcode": exc.errcode, "errmsg": exc.errmsg}
                if platform == "dingtalk":
                    doc["request_id"] = self.request_id()
                    if exc.sub_code is not None:
                        doc["sub_code"], doc["sub_msg"] = exc.sub_code, exc.errmsg
            return web.Response(body=orjson.dumps(doc), content_type="application/json")

        return serve

    def check_rate(self, request: web.Request, owner: str) -> None:
        """Raise the platform's rate-limit error when ``owner`` called this API too often in the window."""
        key = api_key(request.path)
        if self.rate_limits is not None and not self.limiter.allow(key, owner, self.rate_limits):
            raise ApiError(*_RATE_ERRORS[key.split(":", 1)[0]])

    def request_id(self) -> str:
        return f"{next(self._request_ids):x}sim"

    def start(self) -> None:
        """Arm "timeout" faults for a new serving run (``run_simulator`` calls this)."""
        self._closing = asyncio.Event()

    def close(self) -> None:
        """Release requests held by "timeout" faults."""
        self._closing.set()

    # -- callbacks -------------------------------------------------------------------------------

    async def push(
        self,
        receiver_url: str,
        plaintext: bytes,
        *,
        platform: Platform,
        token: str,
        aes_key: str,
        receive_id: str,
        session: aiohttp.ClientSession,
        to_user_name: str | None = None,
        agent_id: str = "",
        record_failure: bool = True,
    ) -> PushResult:
        """Send one callback exactly as the platform does, once (no retries), and judge the answer.

        WeCom counts any 200 as delivered (a suite instruction URL must also answer ``success``);
        DingTalk needs a 200 whose JSON decrypts to ``success``. An undelivered DingTalk event goes
        to the app's failed list (as after the platform's retries) unless ``record_failure`` is off.
        """
        if platform == "wecom":
            query, body = sign_wecom_callback(
                plaintext, token=token, aes_key=aes_key, receive_id=receive_id, to_user_name=to_user_name,
                agent_id=agent_id,
            )  # fmt: skip
            headers, deadline = {"Content-Type": "text/xml"}, 5.0
        else:
            query, body = sign_dingtalk_callback(plaintext, token=token, aes_key=aes_key, receive_id=receive_id)
            headers, deadline = {"Content-Type": "application/json"}, 2.5
        try:
            async with session.post(
                receiver_url, params=query, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=deadline)
            ) as response:
                status, reply = response.status, await response.read()
        except (aiohttp.ClientError, TimeoutError):
            status, reply = 0, b""
        if platform == "wecom":
            delivered = status == 200 and (receive_id not in self.suites or reply.strip() == b"success")
        else:
            delivered = status == 200 and _dingtalk_reply_ok(reply, token, aes_key, receive_id)
            if not delivered and record_failure:
                app = self._dingtalk_app_for(receive_id)
                if app is not None:
                    self.drop(app.app_key, plaintext)
        return PushResult(status, reply, delivered)

    def drop(self, app_key: str, plaintext: bytes) -> None:
        """Lose a DingTalk callback: it lands in the app's failed list instead of being delivered."""
        app = self.dingtalk_apps[app_key]
        app.failed.append(failed_entry(plaintext, corp_id=app.corp_id, now_ms=app.org.now_ms()))

    def _dingtalk_app_for(self, receive_id: str) -> DingTalkApp | None:
        app = self.dingtalk_apps.get(receive_id)
        return app or next((a for a in self.dingtalk_apps.values() if a.corp_id == receive_id), None)


def _dingtalk_reply_ok(reply: bytes, token: str, aes_key: str, receive_id: str) -> bool:
    """DingTalk's check of the reply: signed JSON whose ``encrypt`` opens to ``success`` (dingtalk.md §1.7)."""
    try:
        doc = orjson.loads(reply)
        cipher = CallbackCipher(token, aes_key)
        opened = cipher.open(doc["msg_signature"], str(doc["timeStamp"]), doc["nonce"], doc["encrypt"], {receive_id})
    except (orjson.JSONDecodeError, KeyError, TypeError, CorpsyncError):
        return False
    return opened.message == b"success"
