"""Who the simulator knows: WeCom corps, suites and their tenants, DingTalk apps, with their credentials."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from receiver.testing.org import SimOrg

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def make_secret(rng: random.Random, length: int = 43) -> str:
    """Letters and digits; 43 of them make a valid EncodingAESKey."""
    return "".join(rng.choice(_ALNUM) for _ in range(length))


@dataclass(slots=True)
class WecomCorp:
    """A WeCom self-built app: its own secret, and optionally the 通讯录同步 (contact-sync) secret.

    ``contact_new_ip``: the contact secret is used from an IP it never used before 2022-08-15, so
    ``user/get``, ``user/list``, ``user/simplelist`` and ``department/list`` answer 48009 (wecom.md §3.4).
    ``privacy``: the app was created after 2022-06-20, so member APIs leave out mobile, email, avatar,
    gender, biz_mail, address and qr_code for the app secret.
    """

    org: SimOrg
    corp_id: str
    secret: str
    contact_secret: str | None
    agent_id: int
    token: str  # callback Token of the contact-sync callback
    aes_key: str  # its EncodingAESKey
    contact_new_ip: bool = True
    privacy: bool = True


@dataclass(slots=True)
class SuiteTenant:
    """One corp that installed a suite. ``permanent_code`` is None until an auth code is exchanged."""

    suite: WecomSuite
    org: SimOrg
    corp_id: str
    agent_id: int
    permanent_code: str | None
    privacy: bool = True
    authorized: bool = True

    @property
    def is_proxy(self) -> bool:
        return self.suite.is_proxy


@dataclass(slots=True)
class WecomSuite:
    """A third-party suite (``ww…``) or a 代开发 template (``dk…``), with the tickets it was pushed."""

    suite_id: str
    suite_secret: str
    token: str
    aes_key: str
    provider_corp_id: str
    tickets: list[str] = field(default_factory=list)
    tenants: dict[str, SuiteTenant] = field(default_factory=dict)
    auth_codes: dict[str, tuple[str, float]] = field(default_factory=dict)  # code -> (corp_id, expires)

    @property
    def is_proxy(self) -> bool:
        return self.suite_id.startswith("dk")

    @property
    def ticket(self) -> str | None:
        """The newest suite_ticket; only this one opens ``get_suite_token``."""
        return self.tickets[-1] if self.tickets else None


@dataclass(slots=True)
class DingTalkApp:
    """A DingTalk internal app; ``failed`` is its list of undelivered events (``failed_list`` items)."""

    org: SimOrg
    app_key: str
    app_secret: str
    corp_id: str
    agent_id: int
    token: str
    aes_key: str
    failed: list[dict[str, Any]] = field(default_factory=list)
    last_batch: int = 0  # how many items the previous failed-list call returned (deleted on the next)


# -- suite instruction callbacks (InfoType form, wecom.md §4.2) -------------------------------


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def suite_xml(suite_id: str, info_type: str, timestamp: int, **fields: str) -> bytes:
    """``<xml><SuiteId/><InfoType/><TimeStamp/>…</xml>`` in the order of the published samples."""
    parts = [f"<SuiteId>{_cdata(suite_id)}</SuiteId>"]
    if "AuthCode" in fields:
        parts.append(f"<AuthCode>{_cdata(fields.pop('AuthCode'))}</AuthCode>")
    parts.append(f"<InfoType>{_cdata(info_type)}</InfoType>")
    parts.append(f"<TimeStamp>{timestamp}</TimeStamp>")
    parts.extend(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items())
    return ("<xml>\n" + "\n".join(parts) + "\n</xml>").encode()
