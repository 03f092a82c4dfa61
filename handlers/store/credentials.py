"""Platform credentials shared by every process: cached tokens, suite tickets, auth codes, suite tenants.

Keys in ``credentials``: ``wecom:token:<corpid>:<fp>``, ``wecom:suite_token:<suite_id>:<fp>``,
``wecom:corp_token:<suite_id>:<corpid>:<fp>``, ``dingtalk:token:<appkey>:<fp>``,
``wecom:suite_ticket:<suite_id>`` and ``wecom:auth_code:<suite_id>:<fp>``, where ``fp`` is
``sha256(secret)[:12]``: a rotated secret gets a fresh cache entry, and no secret is ever stored.
Nothing here logs a value.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.config import Secret
from handlers.store.queries import q

Db = Any  # an asyncpg Connection or Pool (both have execute/fetchrow/fetch); the caller owns the transaction

SUITE_TICKET_LIFETIME = timedelta(minutes=30)  # protocol/wecom.md §4.2: pushed every 10 min, valid 30 min
AUTH_CODE_LIFETIME = timedelta(minutes=10)  # create_auth / reset_permanent_code: valid 10 min, single use


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def wecom_token_key(corp_id: str, secret: str) -> str:
    return f"wecom:token:{corp_id}:{fingerprint(secret)}"


def suite_token_key(suite_id: str, suite_secret: str) -> str:
    return f"wecom:suite_token:{suite_id}:{fingerprint(suite_secret)}"


def corp_token_key(suite_id: str, corp_id: str, permanent_code: str) -> str:
    return f"wecom:corp_token:{suite_id}:{corp_id}:{fingerprint(permanent_code)}"


def dingtalk_token_key(app_key: str, app_secret: str) -> str:
    return f"dingtalk:token:{app_key}:{fingerprint(app_secret)}"


def suite_ticket_key(suite_id: str) -> str:
    return f"wecom:suite_ticket:{suite_id}"


def auth_code_prefix(suite_id: str) -> str:
    return f"wecom:auth_code:{suite_id}:"


@dataclass(frozen=True, slots=True)
class Credential:
    value: str
    expires_at: datetime | None
    updated_at: datetime

    def fresh(self, now: datetime, margin: timedelta = timedelta(0)) -> bool:
        return self.expires_at is None or now < self.expires_at - margin


async def load_credential(db: Db, key: str) -> Credential | None:
    row = await db.fetchrow(q("credential_get"), key)
    return None if row is None else Credential(row["value"], row["expires_at"], row["updated_at"])


async def store_credential(db: Db, key: str, value: str, expires_at: datetime | None) -> None:
    await db.execute(q("credential_put"), key, value, expires_at)


async def drop_credential(db: Db, key: str, *, only_if_value: str | None = None) -> None:
    """Delete a credential; with ``only_if_value``, only while it still holds that value."""
    if only_if_value is None:
        await db.execute(q("credential_delete"), key)
    else:
        await db.execute(q("credential_delete_if_value"), key, only_if_value)


# -- suite tickets (written by the suite instruction handler, read by the suite client) ----------


async def store_suite_ticket(db: Db, suite_id: str, ticket: str, pushed_at: datetime | int) -> bool:
    """Keep the ticket if it is the newest seen (by its push time); return whether it was stored.

    ``pushed_at`` is the event's ``TimeStamp`` (seconds) or a datetime. Pushes can arrive late and out
    of order; an older ticket never replaces a newer one.
    """
    at = pushed_at if isinstance(pushed_at, datetime) else datetime.fromtimestamp(pushed_at, UTC)
    stored = await db.fetchval(
        q("credential_put_if_newer"), suite_ticket_key(suite_id), ticket, at + SUITE_TICKET_LIFETIME
    )
    return stored is not None


async def load_suite_ticket(db: Db, suite_id: str) -> Credential | None:
    """The newest ticket stored for the suite (``expires_at`` = push time + 30 min), or None."""
    return await load_credential(db, suite_ticket_key(suite_id))


# -- auth codes waiting for their exchange (create_auth / reset_permanent_code carry no corpid) --


async def store_auth_code(db: Db, suite_id: str, auth_code: str, received_at: datetime | None = None) -> None:
    at = received_at or datetime.now(UTC)
    key = auth_code_prefix(suite_id) + fingerprint(auth_code)
    await db.execute(q("credential_put"), key, auth_code, at + AUTH_CODE_LIFETIME)


async def pending_auth_codes(db: Db, suite_id: str) -> list[str]:
    """Unexpired auth codes of the suite, oldest first."""
    rows = await db.fetch(q("credentials_with_prefix"), auth_code_prefix(suite_id))
    return [row["value"] for row in rows]


async def drop_auth_code(db: Db, suite_id: str, auth_code: str) -> None:
    await db.execute(q("credential_delete"), auth_code_prefix(suite_id) + fingerprint(auth_code))


# -- suite tenants -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tenant:
    """One corp that authorized a suite / 代开发 template."""

    auth_name: str
    corp_id: str
    permanent_code: Secret | None
    agent_id: str | None
    corp_name: str | None
    status: str


def _tenant(row: Mapping[str, Any]) -> Tenant:
    info = row["auth_info"] if isinstance(row["auth_info"], dict) else {}
    corp_info = info.get("auth_corp_info")
    name = corp_info.get("corp_name") if isinstance(corp_info, dict) else None
    code = row["permanent_code"]
    return Tenant(
        auth_name=row["auth_name"],
        corp_id=row["corp_id"],
        permanent_code=Secret(code) if code else None,
        agent_id=row["agent_id"],
        corp_name=name if isinstance(name, str) and name else None,
        status=row["status"],
    )


async def load_tenant(db: Db, auth_name: str, corp_id: str) -> Tenant | None:
    row = await db.fetchrow(q("tenant_get"), auth_name, corp_id)
    return None if row is None else _tenant(row)


async def store_tenant(
    db: Db,
    auth_name: str,
    corp_id: str,
    permanent_code: Secret,
    agent_id: str | None,
    auth_info: Mapping[str, Any],
) -> None:
    """Record a (re-)authorization: the permanent code and the auth info without any secret in it."""
    await db.execute(
        q("tenant_put_permanent_code"), auth_name, corp_id, permanent_code.reveal(), agent_id, dict(auth_info)
    )


async def store_auth_info(
    db: Db, auth_name: str, corp_id: str, auth_info: Mapping[str, Any], agent_id: str | None
) -> None:
    await db.execute(q("tenant_put_auth_info"), auth_name, corp_id, dict(auth_info), agent_id)


async def set_tenant_status(db: Db, auth_name: str, corp_id: str, status: str) -> None:
    """``cancelled`` after cancel_auth; ``active`` again after a new create_auth."""
    await db.execute(q("tenant_set_status"), auth_name, corp_id, status)


async def is_active_tenant(db: Db, auth_name: str, corp_id: str) -> bool:
    """Whether the corp has authorized the suite and not cancelled it."""
    return await db.fetchval(q("tenant_is_active"), auth_name, corp_id) is not None


async def active_tenant_ids(db: Db, auth_names: Sequence[str]) -> frozenset[tuple[str, str]]:
    """(auth name, corp id) of every tenant ``is_active_tenant`` says yes for."""
    rows = await db.fetch(q("tenants_active_of"), list(auth_names))
    return frozenset((row["auth_name"], row["corp_id"]) for row in rows)


async def active_tenants(db: Db, auth_name: str) -> list[tuple[str, str | None]]:
    """(corp_id, agent_id) of every active tenant with a permanent code."""
    rows = await db.fetch(q("tenants_active"), auth_name)
    return [(row["corp_id"], row["agent_id"]) for row in rows]


async def get_agent_id(db: Db, auth_name: str, corp_id: str) -> str | None:
    """The agent id the tenant's authorization gave the app (JitAI ``getAgentId``)."""
    tenant = await load_tenant(db, auth_name, corp_id)
    return None if tenant is None else tenant.agent_id


def utcnow() -> datetime:
    return datetime.now(UTC)
