"""The hook platform clients report to (the metrics module implements it); the default does nothing."""

from __future__ import annotations

from typing import Protocol


class ClientObserver(Protocol):
    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        """One HTTP request finished. ``outcome``: ok | error | http_error | timeout | network | bad_response."""

    def on_retry(self, api: str, reason: str) -> None:
        """A call will be repeated: ``reason`` is ``errcode:<n>``, ``http:<status>``, ``timeout``, ... or ``token``."""

    def on_token_refresh(self, kind: str) -> None:
        """A token was fetched from the platform: wecom_app | wecom_contact | wecom_suite | wecom_corp | dingtalk."""


class NullObserver:
    def on_call(self, api: str, outcome: str, seconds: float) -> None:
        pass

    def on_retry(self, api: str, reason: str) -> None:
        pass

    def on_token_refresh(self, kind: str) -> None:
        pass
