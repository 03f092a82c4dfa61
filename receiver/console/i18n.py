"""The console's two languages: Chinese and English. ``?lang=`` picks one (and a cookie keeps it), else the
browser's Accept-Language; English when neither says."""

from __future__ import annotations

from aiohttp import web

LANGS = ("zh", "en")
LANG_COOKIE = "corpsync_lang"

TEXT: dict[str, tuple[str, str]] = {  # key: (zh, en)
    "title": ("corpsync 控制台", "corpsync console"),
    "corps": ("企业", "Corps"),
    "dead_letters": ("死信", "Dead letters"),
    "callbacks": ("最近回调", "Recent callbacks"),
    "sign_in": ("登录", "Sign in"),
    "sign_out": ("退出", "Sign out"),
    "admin_token": ("管理令牌", "Admin token"),
    "sign_in_hint": (
        "输入 CORPSYNC_ADMIN_TOKEN 的值。",
        "Enter the value of CORPSYNC_ADMIN_TOKEN.",
    ),
    "wrong_token": ("令牌错误。", "Wrong token."),
    "too_many": ("错误次数过多，请一分钟后再试。", "Too many wrong tokens: try again in a minute."),
    "loopback_only": (
        "未设置 CORPSYNC_ADMIN_TOKEN：控制台只接受本机访问。",
        "No CORPSYNC_ADMIN_TOKEN is set: the console answers this machine only.",
    ),
    "name": ("名称", "Name"),
    "type": ("类型", "Type"),
    "status": ("状态", "Status"),
    "last_good_sync": ("上次成功同步", "Last good sync"),
    "age": ("距今", "Age"),
    "backlog": ("待处理", "Backlog"),
    "drift": ("漂移", "Drift"),
    "callback_state": ("回调", "Callbacks"),
    "awaiting": ("待确认", "Awaiting decision"),
    "never": ("从未", "never"),
    "none": ("无", "none"),
    "departments": ("部门", "Departments"),
    "members": ("成员", "Members"),
    "member": ("成员", "Member"),
    "search": ("搜索", "Search"),
    "search_hint": ("用户 ID、姓名或别名", "user id, name or alias"),
    "sync_runs": ("同步记录", "Sync runs"),
    "start_sync": ("立即全量同步", "Start a full sync"),
    "run": ("同步", "Run"),
    "trigger": ("触发", "Trigger"),
    "started": ("开始", "Started"),
    "finished": ("结束", "Finished"),
    "counts": ("变更数", "Changes"),
    "api_calls": ("接口调用", "API calls"),
    "error": ("错误", "Error"),
    "held": ("暂缓的移除", "Removals held"),
    "held_reason": ("原因", "Reason"),
    "confirm": ("确认移除", "Confirm"),
    "discard": ("放弃", "Discard"),
    "retry": ("重试", "Retry"),
    "confirmed": ("已确认", "confirmed"),
    "discarded": ("已放弃", "discarded"),
    "confirm_hint": (
        "确认将以关闭删除保护的方式重新全量同步，应用这些移除。",
        "Confirm runs a fresh full sync with the deletion guard off, which applies these removals.",
    ),
    "next_page": ("下一页", "Next page"),
    "first_page": ("第一页", "First page"),
    "history": ("变更历史", "Change history"),
    "at": ("时间", "At"),
    "op": ("操作", "Operation"),
    "fields": ("字段", "Fields"),
    "source": ("来源", "Source"),
    "stream": ("流", "Stream"),
    "event_type": ("事件类型", "Event type"),
    "received": ("接收时间", "Received"),
    "attempts": ("尝试次数", "Attempts"),
    "applied": ("应用时间", "Applied"),
    "route": ("路由", "Route"),
    "corp": ("企业", "Corp"),
    "position": ("职位", "Position"),
    "main_dept": ("主部门", "Main department"),
    "offline_reason": ("离线原因", "Offline reason"),
    "updated": ("更新时间", "Updated"),
    "user_id": ("用户 ID", "User id"),
    "empty": ("（无）", "(none)"),
    "total": ("共", "Total"),
    "msg_sync_started": ("已开始全量同步。", "Full sync started."),
    "msg_confirmed": ("已开始确认同步：移除将被应用。", "Confirming sync started: the removals will be applied."),
    "msg_discarded": ("已放弃该次同步暂缓的移除。", "The removals this run held were discarded."),
    "msg_already_running": (
        "该企业的全量同步正在进行中，结束后再试。",
        "A full sync of this corp is already running: try again when it has finished.",
    ),
    "msg_retried": ("已重新排队。", "Queued again."),
    "msg_dead_discarded": ("已放弃该死信。", "Dead letter discarded."),
    "msg_signed_out": ("已退出。", "Signed out."),
    "not_awaiting": ("该同步无待确认的移除。", "This run holds no removals awaiting a decision."),
    "not_dead": ("该事件已不是死信。", "That event is no longer a dead letter."),
    "forbidden": ("请求被拒绝", "Request refused"),
    "csrf_failed": (
        "表单已过期或来自其他站点，请刷新页面后重试。",
        "The form expired or came from another site: reload the page and try again.",
    ),
    "not_signed_in": ("请先登录。", "Sign in first."),
    "not_found": ("未找到", "Not found"),
    "bad_request": ("请求有误", "Bad request"),
    "unavailable": ("数据库暂不可用，请稍后重试。", "The database is unavailable: try again shortly."),
    "internal": ("内部错误（已记录）。", "Internal error (logged)."),
    "http": ("HTTP 回调", "HTTP callback"),
    "pull_only": ("仅拉取", "pull only"),
    "connected": ("已连接", "connected"),
    "disconnected": ("未连接", "disconnected"),
    "last_frame": ("最近消息", "last frame"),
    "stream_elsewhere": ("本进程未持有连接", "no connection in this process"),
    "requested": ("已请求全量同步", "full sync requested"),
    "active": ("正常", "active"),
    "offline": ("离线", "offline"),
    "disabled": ("已停用", "disabled"),
    "metadata_only": (
        "只显示元数据，从不显示回调内容。",
        "Metadata only: callback contents are never shown.",
    ),
    "language": ("English", "中文"),
}


def pick(request: web.Request) -> str:
    """The page's language: ``?lang=``, else the cookie, else Accept-Language (zh before en by weight)."""
    asked = request.query.get("lang")
    if asked in LANGS:
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    if kept in LANGS:
        return kept
    best, weight = "en", -1.0
    for item in request.headers.get("Accept-Language", "")[:512].split(","):
        tag, _, params = item.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        base = tag.strip().lower()[:2]
        if base in LANGS and q > weight:
            best, weight = base, q
    return best


def translator(lang: str) -> dict[str, str]:
    index = LANGS.index(lang)
    return {key: pair[index] for key, pair in TEXT.items()}
