"""The directory API's reads: corps, departments, members, admins, roles, tags, signatures and sync runs.

Pages are keyset pages: ``after`` (or ``before``) is the previous page's last key, None for the first page;
a ``limit`` of None reads everything. Reads need no transaction: ``db`` is a pool or a connection.
"""

from __future__ import annotations

from datetime import datetime

from handlers.store.pool import Db, Row
from handlers.store.queries import q

# -- corps -------------------------------------------------------------------------------------------


async def corp_row(db: Db, name: str) -> Row | None:
    row: Row | None = await db.fetchrow(q("api_corp_row"), name)
    return row


async def corps_page(db: Db, names: list[str], auths: list[str], after: str | None, limit: int | None) -> list[Row]:
    """The configured corps (``names``) and the tenants of the configured suite auths (``auths``), by name."""
    rows: list[Row] = await db.fetch(q("api_corps_page"), names, auths, after, limit)
    return rows


async def corps_count(db: Db, names: list[str], auths: list[str]) -> int:
    count: int = await db.fetchval(q("api_corps_count"), names, auths)
    return count


async def corp_stats(db: Db, corp: int) -> Row:
    """departments, active_members, offline_members, last_good_sync_at."""
    row: Row = await db.fetchrow(q("api_corp_stats"), corp)
    return row


# -- departments -------------------------------------------------------------------------------------


async def depts_page(db: Db, corp: int, after: str | None, limit: int | None) -> list[Row]:
    rows: list[Row] = await db.fetch(q("api_depts_page"), corp, after, limit)
    return rows


async def depts_count(db: Db, corp: int) -> int:
    count: int = await db.fetchval(q("api_depts_count"), corp)
    return count


async def dept(db: Db, corp: int, dept_id: str) -> Row | None:
    row: Row | None = await db.fetchrow(q("api_dept"), corp, dept_id)
    return row


async def root_dept(db: Db, corp: int) -> Row | None:
    """The configured root when it is stored, else the top of the stored tree with the largest subtree."""
    row: Row | None = await db.fetchrow(q("api_root_dept"), corp)
    return row


# -- members -----------------------------------------------------------------------------------------


async def members_page(
    db: Db,
    corp: int,
    status: str | None,
    dept_id: str | None,
    updated_since: datetime | None,
    after: int | None,
    limit: int | None,
) -> list[Row]:
    """Members by local id; each filter is skipped when None."""
    rows: list[Row] = await db.fetch(q("api_members_page"), corp, status, dept_id, updated_since, after, limit)
    return rows


async def members_count(
    db: Db, corp: int, status: str | None, dept_id: str | None, updated_since: datetime | None
) -> int:
    count: int = await db.fetchval(q("api_members_count"), corp, status, dept_id, updated_since)
    return count


async def members_by_user_ids(db: Db, corp: int, user_ids: list[str]) -> list[Row]:
    """The known members among ``user_ids``, by local id."""
    rows: list[Row] = await db.fetch(q("api_members_by_user_ids"), corp, user_ids)
    return rows


async def member_keys(db: Db, corp: int, user_ids: list[str]) -> dict[str, int]:
    """Local ids of the known members among ``user_ids``, by user id."""
    return {r["user_id"]: r["id"] for r in await db.fetch(q("api_member_keys"), corp, user_ids)}


async def member_roles(db: Db, corp: int, local_id: int) -> list[Row]:
    rows: list[Row] = await db.fetch(q("api_member_roles"), corp, local_id)
    return rows


async def signature(db: Db, corp: int, local_id: int) -> Row | None:
    """(signature, updated_at) of the member, None when none was saved."""
    row: Row | None = await db.fetchrow(q("api_signature"), corp, local_id)
    return row


# -- admins, roles, tags -----------------------------------------------------------------------------


async def admins_page(db: Db, corp: int, after: int | None, limit: int | None) -> list[Row]:
    """Admins by local member id (``member``)."""
    rows: list[Row] = await db.fetch(q("api_admins_page"), corp, after, limit)
    return rows


async def admins_count(db: Db, corp: int) -> int:
    count: int = await db.fetchval(q("api_admins_count"), corp)
    return count


async def roles(db: Db, corp: int) -> list[Row]:
    """Every role with its members' user ids (``member_ids``)."""
    rows: list[Row] = await db.fetch(q("api_roles_all"), corp)
    return rows


async def tags(db: Db, corp: int) -> list[Row]:
    """Every tag with its members' user ids (``member_ids``) and its departments (``dept_ids``)."""
    rows: list[Row] = await db.fetch(q("api_tags_all"), corp)
    return rows


# -- sync runs ---------------------------------------------------------------------------------------


async def sync_runs_page(db: Db, corp: int, before: int | None, limit: int | None) -> list[Row]:
    """Runs newest first; ``before`` is the previous page's last run id."""
    rows: list[Row] = await db.fetch(q("api_sync_runs_page"), corp, before, limit)
    return rows


async def sync_runs_count(db: Db, corp: int) -> int:
    count: int = await db.fetchval(q("api_sync_runs_count"), corp)
    return count


async def sync_run(db: Db, corp: int, run_id: int) -> Row | None:
    row: Row | None = await db.fetchrow(q("api_sync_run"), corp, run_id)
    return row


async def last_sync_run_id(db: Db, corp: int) -> int:
    """The newest run id of the corp (0 before the first run)."""
    run_id: int = await db.fetchval(q("api_last_sync_run_id"), corp)
    return run_id


async def running_sync_run(db: Db, corp: int, after: int) -> int | None:
    """The newest run still running with an id above ``after``."""
    run_id: int | None = await db.fetchval(q("api_running_sync_run"), corp, after)
    return run_id


async def has_good_sync(db: Db, corp: int) -> bool:
    """Whether a full sync of the corp ever succeeded (or was quarantined)."""
    found: bool = await db.fetchval(q("api_has_good_sync"), corp)
    return found
