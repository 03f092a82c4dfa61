"""The JitAI ``corps`` elements, synchronous: ``App(app_dir)`` and ``app.getElement("corps.<Name>")``.

    app        App: the app dir and database opened, a Runtime on a loop in a background thread
    elements   QywxInnerCorp, QywxProxyCorp, DDInnerCorp: the seeds' camelCase methods over handlers.api.Corp
    records    RowData (CorpDept, CorpMember, CorpRoleMember) with fields that print as their value; CorpData
    client     getClient(): the platform API grouped (department, user, tag / role) plus call()
    importer   ``from corps.QywxProxyType import QywxProxyCorp`` as in a JitAI app
    runner     the background event loop
    errors     JitaiError, SyncNotDone

The async ``handlers.api.Corp`` stays the native API underneath.
"""

from receiver.jitai.app import App
from receiver.jitai.client import DDClient, QywxClient
from receiver.jitai.elements import CorpElement, DDInnerCorp, QywxInnerCorp, QywxProxyCorp
from receiver.jitai.errors import JitaiError, SyncNotDone
from receiver.jitai.records import CorpData, CorpDept, CorpMember, CorpRoleMember, Field, RowData

__all__ = [
    "App",
    "CorpData",
    "CorpDept",
    "CorpElement",
    "CorpMember",
    "CorpRoleMember",
    "DDClient",
    "DDInnerCorp",
    "Field",
    "JitaiError",
    "QywxClient",
    "QywxInnerCorp",
    "QywxProxyCorp",
    "RowData",
    "SyncNotDone",
]
