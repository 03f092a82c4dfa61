"""Per-message verify+decrypt cost of CallbackCipher against wechatpy's WeChatCrypto (python -m bench.crypto)."""

from __future__ import annotations

import timeit
from collections.abc import Callable

from wechatpy.enterprise.crypto import WeChatCrypto

from receiver.callbacks.crypto import CallbackCipher
from receiver.callbacks.wecom import parse_envelope

TOKEN = "QDG6eK"  # noqa: S105 - the published token of the WeCom doc example
KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
TIMESTAMP = "1409659813"
NONCE = "1372623149"
# A self-built update_user event as the contact-sync assistant sends it (about 600 bytes).
MESSAGE = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    "<FromUserName><![CDATA[sys]]></FromUserName><CreateTime>1403610513</CreateTime>"
    "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>"
    "<ChangeType>update_user</ChangeType><UserID><![CDATA[zhangsan]]></UserID>"
    "<NewUserID><![CDATA[zhangsan001]]></NewUserID><Name><![CDATA[张三]]></Name>"
    "<Department><![CDATA[1,2,3]]></Department><MainDepartment>1</MainDepartment>"
    "<IsLeaderInDept><![CDATA[1,0,0]]></IsLeaderInDept><Position><![CDATA[产品经理]]></Position>"
    "<Gender>1</Gender><Status>1</Status><Alias><![CDATA[zhangsan]]></Alias>"
    "<Telephone><![CDATA[020-123456]]></Telephone>"
    "</xml>"
).encode()


def _per_call_us(call: Callable[[], object], n: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``n`` calls, in microseconds per call."""
    return min(timeit.repeat(call, number=n, repeat=repeat)) / n * 1e6


def measure(n: int = 20000) -> dict[str, float]:
    """Time both libraries on the same signed message; ratios above 1 mean corpsync is faster."""
    ours = CallbackCipher(TOKEN, KEY)
    sealed = ours.seal(MESSAGE, CORP_ID, TIMESTAMP, NONCE, random16=b"0123456789abcdef")
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{sealed.encrypt}]]>"
        "</Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
    ).encode()
    theirs = WeChatCrypto(TOKEN, KEY, CORP_ID)
    allowed = frozenset({CORP_ID})
    args = (sealed.signature, TIMESTAMP, NONCE, sealed.encrypt)

    def ours_open() -> object:
        return ours.open(*args, allowed)

    def theirs_open() -> object:
        return theirs.check_signature(*args)

    def ours_body() -> object:
        return ours.open(sealed.signature, TIMESTAMP, NONCE, parse_envelope(body).encrypt, allowed)

    def theirs_body() -> object:
        return theirs.decrypt_message(body, sealed.signature, TIMESTAMP, NONCE)

    texts = {ours.open(*args, allowed).message.decode(), theirs.check_signature(*args)}
    if texts != {MESSAGE.decode()} or ours_body() != ours_open() or theirs_body() != theirs_open():
        raise AssertionError("the two libraries disagree on the benchmark message")
    results = {
        "message_bytes": float(len(MESSAGE)),
        "corpsync_open_us": _per_call_us(ours_open, n),
        "wechatpy_check_signature_us": _per_call_us(theirs_open, n),
        "corpsync_envelope_open_us": _per_call_us(ours_body, n),
        "wechatpy_decrypt_message_us": _per_call_us(theirs_body, n),
    }
    results["speedup"] = results["wechatpy_check_signature_us"] / results["corpsync_open_us"]
    results["envelope_speedup"] = results["wechatpy_decrypt_message_us"] / results["corpsync_envelope_open_us"]
    return results


if __name__ == "__main__":
    for name, value in measure().items():
        print(f"{name:32} {value:10.2f}")
