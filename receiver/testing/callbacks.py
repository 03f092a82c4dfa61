"""Sign and encrypt a callback plaintext into the exact query string and body WeCom or DingTalk would send."""

from __future__ import annotations

import time

import orjson

from receiver.callbacks.crypto import CallbackCipher, new_nonce


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def sign_wecom_callback(
    plaintext: bytes,
    *,
    token: str,
    aes_key: str,
    receive_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
    to_user_name: str | None = None,
    agent_id: str = "",
) -> tuple[dict[str, str], bytes]:
    """A WeCom data push: ``POST url?msg_signature&timestamp&nonce`` with the XML envelope (wecom.md §1.4).

    ``timestamp`` is in seconds. ``to_user_name`` defaults to ``receive_id`` (the corpid, or the suite
    id for suite instruction URLs, where ``agent_id`` stays empty).
    """
    timestamp = timestamp or str(int(time.time()))
    sealed = CallbackCipher(token, aes_key).seal(plaintext, receive_id, timestamp, nonce or new_nonce())
    body = (
        f"<xml><ToUserName>{_cdata(to_user_name if to_user_name is not None else receive_id)}</ToUserName>"
        f"<Encrypt>{_cdata(sealed.encrypt)}</Encrypt><AgentID>{_cdata(agent_id)}</AgentID></xml>"
    )
    query = {"msg_signature": sealed.signature, "timestamp": sealed.timestamp, "nonce": sealed.nonce}
    return query, body.encode()


def sign_wecom_url_verification(
    echo: str,
    *,
    token: str,
    aes_key: str,
    receive_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The query of WeCom's ``GET url?msg_signature&timestamp&nonce&echostr``; the receiver must answer
    ``echo`` as the plain body."""
    timestamp = timestamp or str(int(time.time()))
    sealed = CallbackCipher(token, aes_key).seal(echo.encode(), receive_id, timestamp, nonce or new_nonce())
    return {
        "msg_signature": sealed.signature,
        "timestamp": sealed.timestamp,
        "nonce": sealed.nonce,
        "echostr": sealed.encrypt,
    }


def sign_dingtalk_callback(
    plaintext: bytes,
    *,
    token: str,
    aes_key: str,
    receive_id: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> tuple[dict[str, str], bytes]:
    """A DingTalk HTTP push: ``POST url?signature&msg_signature&timestamp&nonce`` with ``{"encrypt": ...}``.

    ``timestamp`` is in milliseconds; both signature parameters carry the same value (dingtalk.md §1.6).
    ``receive_id`` is the owner key: the appKey for console subscriptions, the corpId for old API ones.
    """
    timestamp = timestamp or str(int(time.time() * 1000))
    sealed = CallbackCipher(token, aes_key).seal(
        plaintext, receive_id, timestamp, nonce or new_nonce()[:8]
    )  # 8 like observed
    query = {
        "signature": sealed.signature,
        "msg_signature": sealed.signature,
        "timestamp": sealed.timestamp,
        "nonce": sealed.nonce,
    }
    return query, orjson.dumps({"encrypt": sealed.encrypt})


def dingtalk_check_url() -> bytes:
    """The plaintext DingTalk sends when a developer saves the HTTP push URL."""
    return b'{"EventType":"check_url"}'
