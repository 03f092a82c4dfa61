"""Reading the app dir: element directories, their JSON files, and ``Node``, the typed getters of one JSON object
that fill ``{{NAME}}`` placeholders from the environment given and name the file and key of every fault."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn
from urllib.parse import urlsplit

from handlers.config import Secret
from handlers.errors import ConfigError
from receiver.errors import IllegalAesKey

_NAME = re.compile(r"[A-Za-z0-9_-]+")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")


class _BadJsonError(Exception):
    """Raised from the JSON hooks: a duplicate key or a NaN/Infinity literal."""


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    names = {dict: "an object", list: "an array", str: "a string", float: "a number"}
    return names.get(type(value), "null")


def _printable(text: str) -> str:
    """Keys and names as they appear in a message: a control character must not break the one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _BadJsonError(f"duplicate key {_printable(key)!r}")
        seen[key] = value
    return seen


def _constant(name: str) -> NoReturn:
    raise _BadJsonError(f"{name} is not valid JSON")


class Node:
    """One JSON object of one file: typed getters that expand ``{{NAME}}`` and name file + key on failure."""

    def __init__(self, file: str, path: str, data: dict[str, Any], env: Mapping[str, str]) -> None:
        self.file = file
        self.path = path
        self.data = data
        self.env = env

    def where(self, key: str | None = None) -> str:
        return ".".join(part for part in (self.path, key) if part)

    def fail(self, key: str | None, message: str, error: type[ConfigError] = ConfigError) -> NoReturn:
        where = _printable(self.where(key))
        raise error(f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}")

    def check_keys(self, known: Iterable[str], *, strict: bool) -> None:
        """Reject unknown keys (strict) or only the near-misses of known ones (JitAI-shared objects)."""
        known = tuple(known)
        for key in sorted(self.data):
            if key in known:
                continue
            lowered = [k for k in known if k.lower() == key.lower()]
            close = lowered or difflib.get_close_matches(key, known, n=1, cutoff=0.85)
            if close:
                self.fail(key, f"unknown key; did you mean {close[0]}? (keys are case-sensitive)")
            if strict:
                self.fail(key, f"unknown key (expected one of: {', '.join(sorted(known))})")

    def _raw(self, key: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.data.get(key)
        if value is None:
            return None
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            self.fail(key, f"expected {expected}, got {_json_type(value)}")
        return value

    def missing(self, key: str, expected: str) -> NoReturn:
        if key not in self.data:
            self.fail(key, "missing required key")
        if self.data[key] is None:
            self.fail(key, f"expected {expected}, got null")
        self.fail(key, "must not be empty")

    def _expand(self, key: str, value: str) -> str:
        if "{{" not in value:
            return value.strip()
        if "{{" in _PLACEHOLDER.sub("", value):
            self.fail(key, "malformed placeholder; write {{NAME}} with letters, digits and _")

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.env:
                self.fail(key, f"environment variable {name} is not set")
            return self.env[name]

        return _PLACEHOLDER.sub(substitute, value).strip()

    def opt_text(self, key: str) -> str | None:
        """A string after placeholder expansion, stripped; absent, null or empty gives None."""
        raw = self._raw(key, (str,), "a string")
        return None if raw is None else (self._expand(key, raw) or None)

    def text(self, key: str) -> str:
        return self.opt_text(key) or self.missing(key, "a string")

    def opt_ident(self, key: str) -> str | None:
        """An id: a string or an integer in JSON, always a string here."""
        raw = self._raw(key, (str, int), "a string or an integer")
        if isinstance(raw, int):
            return str(raw)
        return None if raw is None else (self._expand(key, raw) or None)

    def ident(self, key: str) -> str:
        return self.opt_ident(key) or self.missing(key, "a string or an integer")

    def opt_secret(self, key: str) -> Secret | None:
        value = self.opt_text(key)
        return None if value is None else Secret(value)

    def secret(self, key: str) -> Secret:
        return Secret(self.text(key))

    def aes_key(self, key: str) -> Secret:
        value = self.text(key)
        if not _AES_KEY.fullmatch(value):
            detail = f"got {len(value)}" if len(value) != 43 else "got 43, some outside that set"
            self.fail(key, f"must be exactly 43 characters of A-Z, a-z, 0-9 ({detail})", IllegalAesKey)
        return Secret(value)

    def api_base(self, default: str, *, key: str = "apiBase") -> str:
        value = self.opt_text(key)
        if value is None:
            return default
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.fail(key, "must be an http:// or https:// URL")
        return value.rstrip("/")

    def opt_number(self, key: str, *, low: float, high: float = math.inf, open_low: bool = False) -> float | None:
        raw = self._raw(key, (int, float), "a number")
        if raw is None:
            return None
        if raw < low or raw > high or (open_low and raw == low):
            bound = f"greater than {low:g}" if open_low else f"at least {low:g}"
            self.fail(key, f"must be {bound}" + ("" if high == math.inf else f" and at most {high:g}"))
        return float(raw)

    def opt_int(self, key: str, *, low: int) -> int | None:
        raw = self._raw(key, (int,), "an integer")
        if raw is not None and raw < low:
            self.fail(key, f"must be at least {low}")
        return None if raw is None else int(raw)

    def opt_child(self, key: str, known: Iterable[str] | None = None, *, strict: bool = True) -> Node | None:
        raw = self._raw(key, (dict,), "an object")
        if raw is None:
            return None
        node = Node(self.file, self.where(key), raw, self.env)
        if known is not None:
            node.check_keys(known, strict=strict)
        return node

    def child(self, key: str, known: Iterable[str] | None = None, *, strict: bool = True) -> Node:
        return self.opt_child(key, known, strict=strict) or self.missing(key, "an object")


def read_json(root: Path, rel: str, env: Mapping[str, str]) -> Node:
    path = root / rel
    if not path.is_file():
        raise ConfigError(f"{rel}: file is missing")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{rel}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{rel}: cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_constant)
    except json.JSONDecodeError as exc:  # its .doc holds the whole file: never chain it
        raise ConfigError(f"{rel}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _BadJsonError as exc:
        raise ConfigError(f"{rel}: malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{rel}: expected a JSON object at the top level, got {_json_type(data)}")
    return Node(rel, "", data, env)


def element_names(root: Path, folder: str) -> list[str]:
    """Sorted element directories; files, dot-dirs and ``__pycache__``-style dirs are not elements."""
    base = root / folder
    if not base.exists():
        return []
    if not base.is_dir():
        raise ConfigError(f"{folder}: expected a directory")
    names = []
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if not entry.is_dir() or entry.name.startswith((".", "__")):
            continue
        if not _NAME.fullmatch(entry.name):
            raise ConfigError(
                f"{folder}/{_printable(entry.name)}: element name must use only letters, digits, _ and - "
                "(it is part of the callback URL)"
            )
        names.append(entry.name)
    return names


@dataclass(frozen=True, slots=True)
class Element:
    """What ``<folder>/<name>/e.json`` says: the element's type and title, and its business config file."""

    type: str
    title: str
    config_file: str  # relative to the app dir: <folder>/<name>/<name>.json, or e.json's frontBundleEntry


def _bundle_entry(e: Node, folder: str, name: str) -> str:
    """The business config file e.json's ``frontBundleEntry`` names (JitAI: ``./<name>.json``), inside the
    element's directory; without one, ``<name>.json``."""
    entry = e.opt_text("frontBundleEntry")
    if entry is None:
        return f"{folder}/{name}/{name}.json"
    path = PurePosixPath(entry.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or path.suffix != ".json" or not path.name.strip("."):
        e.fail("frontBundleEntry", "must name a .json file inside the element's directory, e.g. ./<name>.json")
    return f"{folder}/{name}/{path.as_posix()}"


def read_element(root: Path, folder: str, name: str, env: Mapping[str, str]) -> Element:
    """The element of ``<folder>/<name>/e.json``."""
    e = read_json(root, f"{folder}/{name}/e.json", env)
    element_type, title = e.text("type"), e.text("title")
    full_name = e.opt_text("fullName")
    if full_name is not None and full_name != f"{folder}.{name}":
        e.fail("fullName", f"must be {folder}.{name}, after its directory")
    return Element(element_type, title, _bundle_entry(e, folder, name))
