"""Load the JitAI app dir (``corps/``, ``auths/``) into the typed configuration of ``handlers.config``.

Every fault stops start-up with one ``ConfigError`` line that names the file and the JSON key path and
never shows a value. ``{{NAME}}`` placeholders in string values are filled from the ``environ`` passed in
(the caller decides which environment; nothing here reads ``os.environ``).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from handlers.config import (
    DINGTALK_API_BASE,
    WECOM_API_BASE,
    AppConfig,
    CallbackKeys,
    CorpConfig,
    CorpType,
    DingTalkCorp,
    RateLimits,
    Secret,
    SuiteAuth,
    SyncSettings,
    WecomInnerCorp,
    WecomProxyCorp,
)
from handlers.errors import ConfigError
from receiver.errors import IllegalAesKey

SUITE_AUTH_TYPE = "auths.loginTypes.QywxProxyType"

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
_AUTH_REF = re.compile(r"auths\.([A-Za-z0-9_-]+)")

# Keys of the objects corpsync owns are checked strictly. The top-level files and authConfig are shared
# with JitAI, which may add keys of its own: there only near-misses of our keys are rejected.
_WECOM_INNER_KEYS = ("corpId", "agentId", "secret", "contactSecret", "callback", "apiBase", "rateLimits", "sync")
_DINGTALK_KEYS = ("authConfig", "callback", "apiBase", "rateLimits", "sync")
_DINGTALK_AUTH_KEYS = ("corpId", "agentId", "appKey", "appSecret")
_PROXY_KEYS = ("corpId", "authFullName", "rateLimits", "sync")
_SUITE_KEYS = ("suiteId", "suiteSecret", "token", "encodingAESKey", "providerCorpId", "apiBase", "rateLimits")
_RATE_KEYS = ("callsPerSecond", "burst", "concurrency", "perApi")
_SYNC_KEYS = ("rootDeptId", "deleteThreshold", "maxAgeSeconds", "scheduleSeconds")


class _BadJsonError(Exception):
    """Raised from the JSON hooks: a duplicate key or a NaN/Infinity literal."""


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    names = {dict: "an object", list: "an array", str: "a string", float: "a number"}
    return names.get(type(value), "null")


def _printable(text: str) -> str:
    """Keys and names as they appear in a message: a control character must not break the one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _BadJsonError(f"duplicate key {_printable(key)!r}")
        seen[key] = value
    return seen


def _constant(name: str) -> NoReturn:
    raise _BadJsonError(f"{name} is not valid JSON")


class _Node:
    """One JSON object of one file: typed getters that expand ``{{NAME}}`` and name file + key on failure."""

    def __init__(self, file: str, path: str, data: dict[str, Any], env: Mapping[str, str]) -> None:
        self.file = file
        self.path = path
        self.data = data
        self.env = env

    def where(self, key: str | None = None) -> str:
        return ".".join(part for part in (self.path, key) if part)

    def fail(self, key: str | None, message: str, error: type[ConfigError] = ConfigError) -> NoReturn:
        where = _printable(self.where(key))
        raise error(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")

    def check_keys(self, known: Iterable[str], *, strict: bool) -> None:
        """Reject unknown keys (strict) or only the near-misses of known ones (JitAI-shared objects)."""
        known = tuple(known)
        for key in sorted(self.data):
            if key in known:
                continue
            lowered = [k for k in known if k.lower() == key.lower()]
            close = lowered or difflib.get_close_matches(key, known, n=1, cutoff=0.85)
            if close:
                self.fail(key, f"unknown key; did you mean {close[0]}? (keys are case-sensitive)")
            if strict:
                self.fail(key, f"unknown key (expected one of: {', '.join(sorted(known))})")

    def _raw(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.fail(key, f"expected {expected}, got {_json_type(value)}")
        return value

    def missing(self, key: str, expected: str) -> NoReturn:
        if key not in self.data:
            self.fail(key, "missing required key")
        if self.data[key] is None:
            self.fail(key, f"expected {expected}, got null")
        self.fail(key, "must not be empty")

    def _expand(self, key: str, value: str) -> str:
        if "{{" not in value:
            return value.strip()
        if "{{" in _PLACEHOLDER.sub("", value):
            self.fail(key, "malformed placeholder; write {{NAME}} with letters, digits and _")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.fail(key, f"environment variable {name} is not set")
            return self.env[name]

        return _PLACEHOLDER.sub(substitute, value).strip()

    def opt_text(self, key: str) -> str | None:
        """A string after placeholder expansion, stripped; absent, null or empty gives None."""
        raw = self._raw(key, (str,), "a string")
        return None if raw is None else (self._expand(key, raw) or None)

    def text(self, key: str) -> str:
        return self.opt_text(key) or self.missing(key, "a string")

    def opt_ident(self, key: str) -> str | None:
        """An id: a string or an integer in JSON, always a string here."""
        raw = self._raw(key, (str, int), "a string or an integer")
        if isinstance(raw, int):
            return str(raw)
        return None if raw is None else (self._expand(key, raw) or None)

    def ident(self, key: str) -> str:
        return self.opt_ident(key) or self.missing(key, "a string or an integer")

    def opt_secret(self, key: str) -> Secret | None:
        value = self.opt_text(key)
        return None if value is None else Secret(value)

    def secret(self, key: str) -> Secret:
        return Secret(self.text(key))

    def aes_key(self, key: str) -> Secret:
        value = self.text(key)
        if not _AES_KEY.fullmatch(value):
            detail = f"got {len(value)}" if len(value) != 43 else "got 43, some outside that set"
            self.fail(key, f"must be exactly 43 characters of A-Z, a-z, 0-9 ({detail})", IllegalAesKey)
        return Secret(value)

    def api_base(self, default: str) -> str:
        value = self.opt_text("apiBase")
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.fail("apiBase", "must be an http:// or https:// URL")
        return value.rstrip("/")

    def opt_number(self, key: str, *, low: float, high: float = math.inf, open_low: bool = False) -> float | None:
        raw = self._raw(key, (int, float), "a number")
        if raw is None:
            return None
        if raw < low or raw > high or (open_low and raw == low):
            bound = f"greater than {low:g}" if open_low else f"at least {low:g}"
            self.fail(key, f"must be {bound}" + ("" if high == math.inf else f" and at most {high:g}"))
        return float(raw)

    def opt_int(self, key: str, *, low: int) -> int | None:
        raw = self._raw(key, (int,), "an integer")
        if raw is not None and raw < low:
            self.fail(key, f"must be at least {low}")
        return None if raw is None else int(raw)

    def opt_child(self, key: str, known: Iterable[str] | None = None, *, strict: bool = True) -> _Node | None:
        raw = self._raw(key, (dict,), "an object")
        if raw is None:
            return None
        node = _Node(self.file, self.where(key), raw, self.env)
        if known is not None:
            node.check_keys(known, strict=strict)
        return node

    def child(self, key: str, known: Iterable[str] | None = None, *, strict: bool = True) -> _Node:
        return self.opt_child(key, known, strict=strict) or self.missing(key, "an object")


def _read_json(root: Path, rel: str, env: Mapping[str, str]) -> _Node:
    path = root / rel
    if not path.is_file():
        raise ConfigError(f"{rel}: file is missing")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{rel}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{rel}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except json.JSONDecodeError as exc:  # its .doc holds the whole file: never chain it
        raise ConfigError(f"{rel}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _BadJsonError as exc:
        raise ConfigError(f"{rel}: malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{rel}: expected a JSON object at the top level, got {_json_type(data)}")
    return _Node(rel, "", data, env)


def _element_names(root: Path, folder: str) -> list[str]:
    """Sorted element directories; files, dot-dirs and ``__pycache__``-style dirs are not elements."""
    base = root / folder
    if not base.exists():
        return []
    if not base.is_dir():
        raise ConfigError(f"{folder}: expected a directory")
    names = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if not entry.is_dir() or entry.name.startswith((".", "__")):
            continue
        if not _NAME.fullmatch(entry.name):
            raise ConfigError(
                f"{folder}/{_printable(entry.name)}: element name must use only letters, digits, _ and - "
                "(it is part of the callback URL)"
            )
        names.append(entry.name)
    return names


def _read_element(root: Path, folder: str, name: str, env: Mapping[str, str]) -> tuple[str, str]:
    """``(type, title)`` from ``<folder>/<name>/e.json``."""
    e = _read_json(root, f"{folder}/{name}/e.json", env)
    element_type, title = e.text("type"), e.text("title")
    full_name = e.opt_text("fullName")
    if full_name is not None and full_name != f"{folder}.{name}":
        e.fail("fullName", f"must be {folder}.{name}, after its directory")
    return element_type, title


def _rate_limits(doc: _Node) -> RateLimits | None:
    node = doc.opt_child("rateLimits", _RATE_KEYS)
    if node is None:
        return None
    per_second = node.opt_number("callsPerSecond", low=0, open_low=True)
    if per_second is None:
        node.missing("callsPerSecond", "a number")
    burst = node.opt_int("burst", low=1)
    concurrency = node.opt_int("concurrency", low=1)
    per_api: dict[str, float] = {}
    apis = node.opt_child("perApi")
    if apis is not None:
        for api in sorted(apis.data):
            if not api.strip():
                apis.fail(api, "API path must not be empty")
            value = apis.opt_number(api, low=0, open_low=True)
            per_api[api] = value if value is not None else apis.missing(api, "a number")
    limits = RateLimits(
        calls_per_second=per_second,
        burst=burst if burst is not None else max(1, math.ceil(per_second)),
        per_api=per_api,
    )
    return limits if concurrency is None else replace(limits, concurrency=concurrency)


def _sync(doc: _Node) -> SyncSettings:
    node = doc.opt_child("sync", _SYNC_KEYS)
    default = SyncSettings()
    if node is None:
        return default
    threshold = node.opt_number("deleteThreshold", low=0, high=1)
    max_age = node.opt_int("maxAgeSeconds", low=0)
    # scheduleSeconds: absent keeps the default period, null turns the schedule off
    schedule = node.opt_int("scheduleSeconds", low=1) if "scheduleSeconds" in node.data else default.schedule_seconds
    return SyncSettings(
        root_dept_id=node.opt_ident("rootDeptId"),
        delete_threshold=default.delete_threshold if threshold is None else threshold,
        max_age_seconds=default.max_age_seconds if max_age is None else max_age,
        schedule_seconds=schedule,
    )


def _wecom_inner(name: str, title: str, doc: _Node) -> WecomInnerCorp:
    if "corpId" not in doc.data and "authConfig" in doc.data:
        doc.fail(
            "corpId", "missing required key (WeCom self-built corps keep corpId at the top level, not in authConfig)"
        )
    doc.check_keys(_WECOM_INNER_KEYS, strict=False)
    corp_id = doc.ident("corpId")
    agent_id = doc.ident("agentId")
    secret = doc.secret("secret")
    contact_secret = doc.opt_secret("contactSecret")
    callback = doc.child("callback", ("token", "encodingAESKey"))
    return WecomInnerCorp(
        name=name,
        title=title,
        corp_id=corp_id,
        agent_id=agent_id,
        secret=secret,
        contact_secret=contact_secret,
        callback=CallbackKeys(
            token=callback.secret("token"),
            aes_key=callback.aes_key("encodingAESKey"),
            receive_ids=frozenset({corp_id}),
        ),
        api_base=doc.api_base(WECOM_API_BASE),
        rate_limits=_rate_limits(doc),
        sync=_sync(doc),
    )


def _dingtalk(name: str, title: str, doc: _Node) -> DingTalkCorp:
    if "authConfig" not in doc.data and "corpId" in doc.data:
        doc.fail("authConfig", "missing required key (DingTalk corps keep corpId, agentId, appKey, appSecret in it)")
    doc.check_keys(_DINGTALK_KEYS, strict=False)
    auth = doc.child("authConfig", _DINGTALK_AUTH_KEYS, strict=False)
    corp_id = auth.ident("corpId")
    agent_id = auth.ident("agentId")
    app_key = auth.text("appKey")
    app_secret = auth.secret("appSecret")
    callback = doc.child("callback", ("token", "aesKey", "ownerKey"))
    token = callback.secret("token")
    aes_key = callback.aes_key("aesKey")
    owner_key = callback.opt_text("ownerKey") or app_key  # HTTP push set in the developer console: appKey
    return DingTalkCorp(
        name=name,
        title=title,
        corp_id=corp_id,
        agent_id=agent_id,
        app_key=app_key,
        app_secret=app_secret,
        callback=CallbackKeys(token=token, aes_key=aes_key, receive_ids=frozenset({owner_key, corp_id})),
        api_base=doc.api_base(DINGTALK_API_BASE),
        rate_limits=_rate_limits(doc),
        sync=_sync(doc),
    )


def _wecom_proxy(name: str, title: str, doc: _Node, app: AppConfig) -> WecomProxyCorp:
    doc.check_keys(_PROXY_KEYS, strict=False)
    corp_id = doc.ident("corpId")
    reference = doc.text("authFullName")
    match = _AUTH_REF.fullmatch(reference)
    if match is None:
        doc.fail("authFullName", "must be auths.<Name>, naming a directory under auths/")
    auth_name = match.group(1)
    auth = app.auths.get(auth_name)
    if auth is None:
        other = app.ignored_auths.get(auth_name)
        if other is not None:
            doc.fail("authFullName", f"auths/{auth_name} is of type {other}, not {SUITE_AUTH_TYPE}")
        doc.fail("authFullName", f"auths/{auth_name} does not exist")
    return WecomProxyCorp(
        name=name, title=title, corp_id=corp_id, auth=auth, sync=_sync(doc), rate_limits=_rate_limits(doc)
    )


def _suite_auth(name: str, title: str, doc: _Node) -> SuiteAuth:
    doc.check_keys(_SUITE_KEYS, strict=False)
    return SuiteAuth(
        name=name,
        title=title,
        suite_id=doc.ident("suiteId"),
        suite_secret=doc.secret("suiteSecret"),
        token=doc.secret("token"),
        aes_key=doc.aes_key("encodingAESKey"),
        provider_corp_id=doc.opt_ident("providerCorpId"),
        api_base=doc.api_base(WECOM_API_BASE),
        rate_limits=_rate_limits(doc),
    )


def _callback_identity(corp: CorpConfig) -> tuple[str, ...]:
    """What one console callback URL stands for; two corps with the same identity are ambiguous."""
    if isinstance(corp, WecomProxyCorp):
        return (corp.type, corp.auth.name, corp.corp_id)  # the suite data URL routes tenants by corpId
    if isinstance(corp, WecomInnerCorp):
        return (corp.type, corp.corp_id, corp.agent_id or "")  # one callback URL per app
    return (corp.type, corp.corp_id, corp.app_key)


_DUPLICATE_REASON = {
    CorpType.WECOM_INNER: "same corpId and agentId: one WeCom app calls back one URL",
    CorpType.WECOM_PROXY: "same corpId under the same auth: the suite routes its tenants by corpId",
    CorpType.DINGTALK_INNER: "same corpId and appKey: one DingTalk app calls back one URL",
}


def load_app_dir(root: str | Path, environ: Mapping[str, str]) -> AppConfig:
    """Read and check every element of the app dir (sorted by name); raise ConfigError on the first fault."""
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"{root}: app dir does not exist" if not base.exists() else f"{root}: not a directory")
    app = AppConfig(root=str(base.resolve()), corps={}, auths={})

    suites: dict[str, str] = {}
    for name in _element_names(base, "auths"):
        element_type, title = _read_element(base, "auths", name, environ)
        if element_type != SUITE_AUTH_TYPE:
            if not element_type.startswith("auths."):
                raise ConfigError(f"auths/{name}/e.json: type: unknown auth type {element_type!r}")
            app.ignored_auths[name] = element_type
            continue
        doc = _read_json(base, f"auths/{name}/{name}.json", environ)
        auth = _suite_auth(name, title, doc)
        if auth.suite_id in suites:
            doc.fail("suiteId", f"same suiteId as auths/{suites[auth.suite_id]}: a suite has one instruction URL")
        suites[auth.suite_id] = name
        app.auths[name] = auth

    identities: dict[tuple[str, ...], str] = {}
    for name in _element_names(base, "corps"):
        element_type, title = _read_element(base, "corps", name, environ)
        try:
            corp_type = CorpType(element_type)
        except ValueError:
            known = ", ".join(t.value for t in CorpType)
            raise ConfigError(
                f"corps/{name}/e.json: type: unknown corp type {element_type!r} (expected one of: {known})"
            ) from None
        doc = _read_json(base, f"corps/{name}/{name}.json", environ)
        corp: CorpConfig
        if corp_type is CorpType.WECOM_INNER:
            corp = _wecom_inner(name, title, doc)
        elif corp_type is CorpType.DINGTALK_INNER:
            corp = _dingtalk(name, title, doc)
        else:
            corp = _wecom_proxy(name, title, doc, app)
        identity = _callback_identity(corp)
        if identity in identities:
            key = "authConfig.corpId" if corp_type is CorpType.DINGTALK_INNER else "corpId"
            raise ConfigError(
                f"{doc.file}: {key}: duplicates corps/{identities[identity]} "
                f"({_DUPLICATE_REASON[corp_type]}, so callbacks would be ambiguous)"
            )
        identities[identity] = name
        app.corps[name] = corp
    return app


def _source(file: str, *keys: str) -> str:
    return f"{' / '.join(keys)} in {file} (after {{{{NAME}}}} expansion)"


def _describe_corp(corp: CorpConfig, base: str) -> list[str]:
    file = f"corps/{corp.name}/{corp.name}.json"
    head = f"corps/{corp.name}: {corp.title!r} {corp.type.value}"
    if isinstance(corp, WecomInnerCorp):
        where = "通讯录同步 → 接收事件服务器" if corp.contact_secret else "the app's 接收消息 → 设置API接收"
        return [
            f"{head} (WeCom self-built) corpId {corp.corp_id} agentId {corp.agent_id}",
            f"  URL ({where}): {base}/callback/wecom/{corp.name}",
            f"  Token / EncodingAESKey: {_source(file, 'callback.token', 'callback.encodingAESKey')}",
        ]
    if isinstance(corp, WecomProxyCorp):
        auth_file = f"auths/{corp.auth.name}/{corp.auth.name}.json"
        return [
            f"{head} (WeCom tenant of auths/{corp.auth.name}) corpId {corp.corp_id}",
            f"  URL (the 代开发 app's callback in this corp): {base}/callback/wecom/{corp.name}",
            f"  Token / EncodingAESKey: the auth's, {_source(auth_file, 'token', 'encodingAESKey')}",
        ]
    return [
        f"{head} (DingTalk internal app) corpId {corp.corp_id} appKey {corp.app_key}",
        f"  请求网址 (developer console → 事件订阅 → HTTP 推送): {base}/callback/dingtalk/{corp.name}",
        f"  签名 token / 加密 aes_key: {_source(file, 'callback.token', 'callback.aesKey')}",
    ]


def _describe_auth(auth: SuiteAuth, base: str) -> list[str]:
    file = f"auths/{auth.name}/{auth.name}.json"
    kind = "代开发 template" if auth.is_proxy_template else "third-party suite"
    url = f"{base}/callback/wecom-suite/{auth.name}"
    return [
        f"auths/{auth.name}: {auth.title!r} {SUITE_AUTH_TYPE} (WeCom {kind}) suiteId {auth.suite_id}",
        f"  指令回调URL (instruction URL): {url}",
        f"  数据回调URL (data URL): {url}/data",
        "    (WeCom also accepts ?corpid=$CORPID$ on the data URL and fills in the authorizing corp's id)",
        f"  Token / EncodingAESKey: {_source(file, 'token', 'encodingAESKey')}",
    ]


def describe(config: AppConfig, public_base_url: str) -> list[str]:
    """The lines ``corpsync check-config`` prints: each element, its callback URLs, where its keys live."""
    base = public_base_url.rstrip("/")
    corps, auths = len(config.corps), len(config.auths)
    lines = [f"app dir {config.root}: {corps} corp{'s' * (corps != 1)}, {auths} suite auth{'s' * (auths != 1)}"]
    if not config.corps:
        lines.append("  no corps under corps/: nothing will be synced")
    for corp in config.corps.values():
        lines.extend(_describe_corp(corp, base))
    for auth in config.auths.values():
        lines.extend(_describe_auth(auth, base))
    for name, element_type in config.ignored_auths.items():
        lines.append(f"auths/{name}: {element_type} is not a WeCom suite auth; corpsync ignores it")
    return lines
