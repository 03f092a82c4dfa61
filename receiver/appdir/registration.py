"""What ``corpsync check-config`` prints: for each element of the app dir, the callback URLs to register in the
platform's console, and where their keys are read from (never the keys)."""

from __future__ import annotations

from handlers.config import AppConfig, CorpConfig, DingTalkCorp, SuiteAuth, WecomInnerCorp, WecomProxyCorp
from receiver.appdir.auths import SUITE_AUTH_TYPE


def _source(file: str, *keys: str) -> str:
    return f"{' / '.join(keys)} in {file} (after {{{{NAME}}}} expansion)"


def _corp_lines(corp: CorpConfig, base: str) -> list[str]:
    file = f"corps/{corp.name}/{corp.name}.json"
    head = f"corps/{corp.name}: {corp.title!r} {corp.type.value}"
    stream = isinstance(corp, DingTalkCorp) and corp.stream
    if not isinstance(corp, WecomProxyCorp) and corp.callback is None and not stream:
        wecom = isinstance(corp, WecomInnerCorp)
        keys = '"callback": {"token", "encodingAESKey"}' if wecom else '"callback": {"token", "aesKey"}'
        url = f"{base}/callback/{'wecom' if wecom else 'dingtalk'}/{corp.name}"
        return [
            f"{head} ({'WeCom self-built' if wecom else 'DingTalk internal app'}) corpId {corp.corp_id}",
            f"  no callback URL ({file} has no callback block): changes arrive with full syncs only (start-up,",
            f"  schedule, on demand). Add {keys} to receive each change within seconds at {url}",
        ]
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
    if corp.stream:
        return [
            f"{head} (DingTalk internal app, Stream mode) corpId {corp.corp_id} appKey {corp.app_key}",
            "  no callback URL: serve opens an outbound connection (443 to api.dingtalk.com and"
            " wss-open-connection.dingtalk.com)",
            "  in the developer console: 事件订阅 → 推送方式 → Stream 模式推送, then subscribe the 通讯录 events",
            f"  gateway: {corp.stream_base}, with {_source(file, 'authConfig.appKey', 'authConfig.appSecret')}",
        ]
    return [
        f"{head} (DingTalk internal app) corpId {corp.corp_id} appKey {corp.app_key}",
        f"  请求网址 (developer console → 事件订阅 → HTTP 推送): {base}/callback/dingtalk/{corp.name}",
        f"  签名 token / 加密 aes_key: {_source(file, 'callback.token', 'callback.aesKey')}",
    ]


def _auth_lines(auth: SuiteAuth, base: str) -> list[str]:
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


def registration_lines(config: AppConfig, public_base_url: str) -> list[str]:
    """The lines ``corpsync check-config`` prints: each element, its callback URLs, where its keys live."""
    base = public_base_url.rstrip("/")
    corps, auths = len(config.corps), len(config.auths)
    lines = [f"app dir {config.root}: {corps} corp{'s' * (corps != 1)}, {auths} suite auth{'s' * (auths != 1)}"]
    if not config.corps:
        lines.append("  no corps under corps/: nothing will be synced")
    for corp in config.corps.values():
        lines.extend(_corp_lines(corp, base))
    for auth in config.auths.values():
        lines.extend(_auth_lines(auth, base))
    for name, element_type in config.ignored_auths.items():
        lines.append(f"auths/{name}: {element_type} is not a WeCom suite auth; corpsync ignores it")
    return lines
