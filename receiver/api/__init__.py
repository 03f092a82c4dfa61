"""The directory API over HTTP (``/api``), and ``get_corp(app, name)`` for code running in the app.

    guard        authorization (bearer token, or loopback only) and JSON errors: ``endpoint`` wraps each handler
    params       query and body parsing: 400 naming the field
    read_routes  corps, departments, members, roles, signatures, admins, local data
    write_routes offline a member, set roles, set admins, save a signature (local only)
    sync_routes  start a full sync (through the app's scheduler), read the runs
    openapi      the OpenAPI 3.1 document, served at /api/openapi.json
    corps        ``get_corp``

The paths of the handlers are in the app's one route table (``receiver.app.routes``).
"""

from receiver.api.corps import get_corp

__all__ = ["get_corp"]
