"""The operator's writes: offline members, local roles, local admins, signatures (change_log source 'api').

Each function runs in the transaction the caller opened; a write that changes nothing logs nothing.
Unknown member ids are refused before anything is written (``UnknownRecord`` naming all of them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import asyncpg
import orjson

import handlers.api.reads as reads
from handlers.errors import InvalidInput, UnknownRecord
from handlers.store import locks, operator
from handlers.store.directory import Directory, Source, link_values

MAX_ID_LENGTH = 255
MAX_IDS = 10_000  # ids in one write: bounds the work one request can ask of the loop and the database
MAX_SIGNATURE_LENGTH = 64 * 1024  # a link to an image, or a data: URL of a small one

API = Source("api")


def check_ids(field: str, ids: Iterable[str]) -> list[str]:
    """Ids as given, duplicates dropped; at most MAX_IDS, each a non-empty string of at most 255 characters
    without NUL."""
    if isinstance(ids, str):
        raise InvalidInput(field, "must be a list of ids, not one string")
    found: dict[str, None] = {}
    for count, value in enumerate(ids, start=1):
        if count > MAX_IDS:
            raise InvalidInput(field, f"at most {MAX_IDS} ids in one call")
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH or "\x00" in value:
            raise InvalidInput(
                field, f"every id must be a non-empty string of at most {MAX_ID_LENGTH} characters, without NUL"
            )
        found[value] = None
    return list(found)


async def lock_member(conn: asyncpg.Connection, corp: int, member_id: str) -> int:
    """The member's local id, its row locked until the transaction ends (concurrent writes queue up)."""
    local_id = await operator.lock_member(conn, corp, member_id)
    if local_id is None:
        raise UnknownRecord("member", member_id)
    return local_id


async def offline_members(conn: asyncpg.Connection, corp: int, member_ids: Sequence[str]) -> tuple[str, ...]:
    """Take members offline by the operator; returns the user ids that changed.

    An active member, or one offline for a platform reason, becomes ``offline_reason='operator'``:
    from then on neither an update event nor a full sync re-activates it; only a new join does.
    """
    await reads.local_ids(conn, corp, member_ids)
    rows = await operator.offline_members(conn, corp, list(member_ids))
    directory = Directory(conn, corp, API)
    for row in rows:
        await directory.log("member", row["user_id"], "offline", row["fields"], orjson.loads(row["changes"]))
    return tuple(r["user_id"] for r in rows)


async def set_member_roles(conn: asyncpg.Connection, corp: int, member_id: str, role_ids: Sequence[str]) -> int:
    """Make the member's local roles exactly ``role_ids`` (created as local roles when new); returns its local id.

    A platform role (DingTalk 角色) is refused: its members follow the platform, a full sync would undo it.
    """
    local_id = await lock_member(conn, corp, member_id)
    platform = await operator.platform_roles_among(conn, corp, list(role_ids))
    if platform:
        raise InvalidInput(
            "roleIds", f"platform roles follow the platform and cannot be set here: {', '.join(platform)}"
        )
    directory = Directory(conn, corp, API)
    for role_id in sorted(await operator.create_local_roles(conn, corp, list(role_ids))):
        await directory.log("role", role_id, "create")
    for role_id, joined in await operator.set_member_local_roles(conn, corp, local_id, list(role_ids)):
        values = link_values("members", () if joined else (member_id,), (member_id,) if joined else ())
        await directory.log("role", role_id, "update", ("members",), values)
    return local_id


async def set_local_admins(conn: asyncpg.Connection, corp: int, member_ids: Sequence[str]) -> None:
    """Make the local admins exactly ``member_ids``; platform admins stay as the platform has them."""
    await locks.lock_admins(conn, corp)
    local = await reads.local_ids(conn, corp, member_ids)
    directory = Directory(conn, corp, API)
    for user_id, op in await operator.set_local_admins(conn, corp, [local[m] for m in member_ids]):
        await directory.log("admin", user_id, op)


def check_signature(signature: object) -> str:
    if not isinstance(signature, str) or not signature.strip():
        raise InvalidInput("signature", "must be a non-empty string")
    if len(signature) > MAX_SIGNATURE_LENGTH:
        raise InvalidInput("signature", f"must be at most {MAX_SIGNATURE_LENGTH} characters")
    return signature


async def save_signature(conn: asyncpg.Connection, corp: int, member_id: str, signature: str) -> int:
    """Store the member's signature (an image link); returns its local id."""
    local_id = await lock_member(conn, corp, member_id)
    saved = await operator.save_signature(conn, corp, local_id, signature)
    if saved is not None:
        op, values = "create" if saved["created"] else "update", {"before": saved["before"], "after": signature}
        await Directory(conn, corp, API).log("signature", member_id, op, ("signature",), {"signature": values})
    return local_id
