"""The directory API in Python: ``Corp`` (the JitAI corp operations) and the views it answers with."""

from handlers.api.corp import Corp
from handlers.api.data import CorpData, LocalCorpData
from handlers.api.listing import corp_page
from handlers.api.lookup import get_agent_id, resolve
from handlers.api.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from handlers.api.reads import MemberFilter
from handlers.api.views import (
    AdminView,
    CorpInfo,
    DeptView,
    MemberView,
    RoleMemberView,
    RoleView,
    SignatureView,
    SyncRunView,
    TagView,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AdminView",
    "Corp",
    "CorpData",
    "CorpInfo",
    "DeptView",
    "LocalCorpData",
    "MemberFilter",
    "MemberView",
    "Page",
    "RoleMemberView",
    "RoleView",
    "SignatureView",
    "SyncRunView",
    "TagView",
    "corp_page",
    "get_agent_id",
    "resolve",
]
