"""Run the official DingTalk Stream SDK (``dingtalk-stream``) against a gateway, as a separate process.

Usage: ``python -m tests.support.sdk_stream_client CLIENT_ID CLIENT_SECRET``, with ``DINGTALK_OPENAPI_ENDPOINT`` set
to the gateway's base (the SDK reads it at import). Prints the eventId of every event it receives, one a line, and
ACKs each as the SDK does (code 200).
"""

from __future__ import annotations

import asyncio
import sys

import dingtalk_stream  # type: ignore[import-untyped]  # the SDK ships no type hints


class Printer(dingtalk_stream.EventHandler):  # type: ignore[misc]  # untyped base class
    async def process(self, event: dingtalk_stream.EventMessage) -> tuple[int, str]:
        print(event.headers.event_id, flush=True)
        return dingtalk_stream.AckMessage.STATUS_OK, "OK"


def main() -> None:
    client = dingtalk_stream.DingTalkStreamClient(dingtalk_stream.Credential(sys.argv[1], sys.argv[2]))
    client.register_all_event_handler(Printer())
    asyncio.run(client.start())


if __name__ == "__main__":
    main()
