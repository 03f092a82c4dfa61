"""Credentials in PostgreSQL: the shared token cache, suite tickets, pending auth codes, suite tenants."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg

from handlers.clients.observe import NullObserver
from handlers.clients.tokens import Token, TokenSpec
from handlers.config import Secret
from handlers.store import credentials as cred


class CountingObserver(NullObserver):
    def __init__(self) -> None:
        self.refreshes: list[str] = []

    def on_token_refresh(self, kind: str) -> None:
        self.refreshes.append(kind)


def fetcher(lifetime: float = 7200.0) -> tuple[list[str], TokenSpec]:
    issued: list[str] = []

    async def fetch() -> tuple[str, float]:
        await asyncio.sleep(0.01)
        issued.append(f"tok-{len(issued) + 1}")
        return issued[-1], lifetime

    return issued, TokenSpec(cred.wecom_token_key("ww1", "s3cret"), "wecom_app", fetch)


def test_keys_fingerprint_the_secret_and_never_contain_it() -> None:
    key = cred.wecom_token_key("ww1", "s3cret")
    assert key.startswith("wecom:token:ww1:")
    assert "s3cret" not in key
    assert key != cred.wecom_token_key("ww1", "rotated")
    assert cred.dingtalk_token_key("dingapp", "x") != cred.wecom_token_key("dingapp", "x")


async def test_token_is_fetched_once_and_shared_by_two_instances(pool: asyncpg.Pool) -> None:
    issued, spec = fetcher()
    observer = CountingObserver()
    first, second = Token(spec, pool, observer), Token(spec, pool, observer)
    values = await asyncio.gather(first.get(), second.get(), first.get(), second.get())
    assert list(values) == ["tok-1"] * 4
    assert issued == ["tok-1"]
    assert observer.refreshes == ["wecom_app"]
    stored = await cred.load_credential(pool, spec.key)
    assert stored is not None
    assert stored.value == "tok-1"


async def test_token_is_renewed_early_before_expiry(pool: asyncpg.Pool) -> None:
    _issued, spec = fetcher()
    now = datetime.now(UTC)
    await cred.store_credential(pool, spec.key, "old", now + timedelta(minutes=5))
    await pool.execute("UPDATE credentials SET updated_at = $2 WHERE key = $1", spec.key, now - timedelta(hours=2))
    assert await Token(spec, pool, NullObserver()).get() == "tok-1"


async def test_refresh_renews_once_for_many_rejections_of_the_same_token(pool: asyncpg.Pool) -> None:
    issued, spec = fetcher()
    a, b = Token(spec, pool, NullObserver()), Token(spec, pool, NullObserver())
    assert await a.get() == "tok-1"
    assert await b.get() == "tok-1"
    renewed = await asyncio.gather(a.refresh("tok-1"), b.refresh("tok-1"), a.refresh("tok-1"))
    assert list(renewed) == ["tok-2"] * 3
    assert issued == ["tok-1", "tok-2"]


async def test_short_lived_tokens_are_renewed_within_their_lifetime(pool: asyncpg.Pool) -> None:
    _issued, spec = fetcher(lifetime=4.0)
    token = Token(spec, pool, NullObserver())
    assert await token.get() == "tok-1"
    assert await token.get() == "tok-1"
    await asyncio.sleep(3.1)  # past 3/4 of the lifetime
    assert await token.get() == "tok-2"


async def test_suite_ticket_keeps_the_newest_push(pool: asyncpg.Pool) -> None:
    assert await cred.load_suite_ticket(pool, "dk1") is None
    assert await cred.store_suite_ticket(pool, "dk1", "ticket-b", 1_700_000_600)
    assert not await cred.store_suite_ticket(pool, "dk1", "ticket-a", 1_700_000_000)  # late, older push
    stored = await cred.load_suite_ticket(pool, "dk1")
    assert stored is not None
    assert stored.value == "ticket-b"
    assert await cred.store_suite_ticket(pool, "dk1", "ticket-c", 1_700_001_200)
    stored = await cred.load_suite_ticket(pool, "dk1")
    assert stored is not None
    assert stored.value == "ticket-c"
    assert stored.expires_at == datetime.fromtimestamp(1_700_001_200, UTC) + timedelta(minutes=30)
    assert await cred.load_suite_ticket(pool, "other") is None


async def test_pending_auth_codes_expire_and_can_be_dropped(pool: asyncpg.Pool) -> None:
    await cred.store_auth_code(pool, "dk1", "code-old", datetime.now(UTC) - timedelta(minutes=11))
    await cred.store_auth_code(pool, "dk1", "code-new")
    await cred.store_auth_code(pool, "dk2", "code-other")
    assert await cred.pending_auth_codes(pool, "dk1") == ["code-new"]
    await cred.drop_auth_code(pool, "dk1", "code-new")
    assert await cred.pending_auth_codes(pool, "dk1") == []


async def test_tenant_round_trip_without_secrets_in_auth_info(pool: asyncpg.Pool) -> None:
    info = {"auth_corp_info": {"corpid": "wwT", "corp_name": "租户"}, "auth_info": {"agent": [{"agentid": 1000005}]}}
    await cred.store_tenant(pool, "Suite", "wwT", Secret("perm-1"), "1000005", info)
    tenant = await cred.load_tenant(pool, "Suite", "wwT")
    assert tenant is not None
    assert tenant.permanent_code == Secret("perm-1")
    assert "perm-1" not in repr(tenant)
    assert tenant.corp_name == "租户"
    assert await cred.get_agent_id(pool, "Suite", "wwT") == "1000005"
    assert await cred.active_tenants(pool, "Suite") == [("wwT", "1000005")]
    await cred.set_tenant_status(pool, "Suite", "wwT", "cancelled")
    assert await cred.active_tenants(pool, "Suite") == []
    await cred.store_tenant(pool, "Suite", "wwT", Secret("perm-2"), "1000006", info)  # re-authorized
    tenant = await cred.load_tenant(pool, "Suite", "wwT")
    assert tenant is not None
    assert tenant.status == "active"
    assert tenant.permanent_code == Secret("perm-2")
    await cred.store_auth_info(pool, "Suite", "wwT", {"auth_corp_info": {"corp_name": "新名"}}, None)
    tenant = await cred.load_tenant(pool, "Suite", "wwT")
    assert tenant is not None
    assert tenant.corp_name == "新名"
    assert tenant.agent_id == "1000006"
    assert await cred.get_agent_id(pool, "Suite", "missing") is None


async def test_a_rejected_token_is_dropped_only_if_nobody_replaced_it(pool: asyncpg.Pool) -> None:
    key = cred.wecom_token_key("ww1", "s")
    await cred.store_credential(pool, key, "fresh", None)
    await cred.drop_credential(pool, key, only_if_value="stale")
    assert await cred.load_credential(pool, key) is not None
    await cred.drop_credential(pool, key, only_if_value="fresh")
    assert await cred.load_credential(pool, key) is None
    await cred.store_credential(pool, key, "again", None)
    await cred.drop_credential(pool, key)
    assert await cred.load_credential(pool, key) is None
