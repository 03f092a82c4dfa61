"""Named SQL blocks, loaded once from ``handlers/store/sql/*.sql``, and the numbered schema migrations.

A block starts with ``-- name: <name>`` and runs to the next one; the comment line right under it names its
parameters. Each concept keeps its own file (``inbox.sql``, ``directory.sql``, ``merge.sql``, ...); names are
unique across files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _sql_dir() -> Traversable:
    return resources.files("handlers.store").joinpath("sql")


def parse_blocks(text: str, origin: str) -> dict[str, str]:
    """Split one file into its named blocks."""
    found: dict[str, str] = {}
    parts = _NAME.split(text)
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"{origin}: query {name!r} is defined twice")
        found[name] = body.strip()
    return found


@cache
def queries() -> dict[str, str]:
    """Every named query of the package, by name."""
    found: dict[str, str] = {}
    for entry in sorted(_sql_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        for name, body in parse_blocks(entry.read_text("utf-8"), entry.name).items():
            if name in found:
                raise ValueError(f"{entry.name}: query {name!r} is already defined in another file")
            found[name] = body
    return found


def q(name: str) -> str:
    """One named query; a KeyError names the query."""
    return queries()[name]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """The numbered migrations in order; numbers are unique and start at 1. A gap is allowed: work done in parallel
    reserves its numbers ahead, and ``migrate`` applies whatever a database lacks, whatever order it lands in."""
    found: list[Migration] = []
    for entry in _sql_dir().joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    for before, migration in zip([Migration(0, "", ""), *found], found, strict=False):
        if migration.version == before.version or migration.version < 1:
            raise ValueError(f"migration numbers must be unique, from 1 up; found {migration.version:04d} again")
    return tuple(found)
