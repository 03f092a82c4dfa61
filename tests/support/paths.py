"""Where the tests' data files live: all inside the repository, so a clone runs every test."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
CAPTURED = TESTS / "events"  # captured events, <platform>/<event>__<case>.(xml|json) with .expect.json sidecars
VENDOR = TESTS / "data"  # the platforms' published material, copied as published: data/SOURCES.md says from where
VECTORS = VENDOR / "vectors"  # callback-crypto vectors, one JSON list per platform
PROTOCOL_EVENTS = VENDOR / "protocol-events"  # decrypted callback plaintexts: wecom/*.xml, dingtalk/**/*.json
JITAI_APP = VENDOR / "jitai" / "app"  # the JitAI seeds' config files as written (+ the 代开发 auth they name)
