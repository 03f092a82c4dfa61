"""The source's layering: handlers never imports receiver, and no module of either imports itself in a circle.

The import graph comes from the source text with ``ast``: every ``import`` and ``from`` statement, relative
ones, those under ``if TYPE_CHECKING:`` and those inside functions included, so it holds whatever a run
happens to import. ``from pkg import name`` imports ``pkg`` (its ``__init__`` runs and the name is looked up in
it) and, when ``pkg.name`` is a module, that module too: a package whose ``__init__`` imports a submodule that
imports names from the package is a cycle, even where Python's fallback to the submodule makes it load.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("handlers", "receiver")


@dataclass(frozen=True)
class Import:
    """``importer`` (a module) imports ``imported`` at ``line`` of ``path``."""

    importer: str
    imported: str
    path: Path
    line: int

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root).as_posix()}:{self.line}"


def modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package is its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(root: Path, packages: Iterable[str] = PACKAGES) -> list[Import]:
    """Every import statement of every module, as edges between dotted names (targets outside included)."""
    known = modules(root, packages)
    edges: list[Import] = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]  # the package it is in
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.extend(Import(name, alias.name, path, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _from_base(node, here)
                edges.append(Import(name, base, path, node.lineno))
                submodules = (f"{base}.{alias.name}" for alias in node.names)
                edges.extend(Import(name, module, path, node.lineno) for module in submodules if module in known)
    return edges


def _from_base(node: ast.ImportFrom, package: list[str]) -> str:
    """The module a ``from … import`` statement names: absolute, or relative to ``package``."""
    if not node.level:
        return node.module or ""
    parts = package[: len(package) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def upward_imports(edges: Iterable[Import], lower: str = "handlers", upper: str = "receiver") -> list[Import]:
    """The imports of a module of ``lower`` from ``upper``: the layers go upper → lower, never back."""
    return [edge for edge in edges if _within(edge.importer, lower) and _within(edge.imported, upper)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def graph(edges: Iterable[Import], known: Iterable[str]) -> dict[str, set[str]]:
    """Module → the modules of ``known`` it imports (itself left out: that is not a cycle)."""
    names = set(known)
    out: dict[str, set[str]] = {name: set() for name in names}
    for edge in edges:
        target = _nearest(edge.imported, names)
        if edge.importer in names and target is not None and target != edge.importer:
            out[edge.importer].add(target)
    return out


def _nearest(module: str, names: set[str]) -> str | None:
    """``module`` if known, else its closest known ancestor (a name imported from a package's namespace)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        if (candidate := ".".join(parts[:end])) in names:
            return candidate
    return None


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each group of modules that import one another in a circle (a strongly connected component of more than
    one module), its names sorted, the groups sorted by their first name. Tarjan's algorithm, iteratively."""
    graph_ = {node: sorted(targets) for node, targets in edges.items()}
    for imported in {name for names in edges.values() for name in names}:
        graph_.setdefault(imported, [])  # a module imported that imports nothing itself
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph_):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(graph_[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(graph_[target])))
            elif target in on_stack:
                low[node] = min(low[node], index[target])
    return sorted(groups)


def one_cycle(group: list[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest circle through the group's first module, staying inside the group: [a, b, …, a]."""
    members, start = set(group), group[0]
    paths: dict[str, list[str]] = {start: [start]}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in sorted(edges.get(node, ())):
                if target == start:
                    return [*paths[node], start]
                if target in members and target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"{group} is not a cycle")


def describe_cycle(group: list[str], edges: Iterable[Import], known: Iterable[str], root: Path) -> str:
    """The group, and one circle through it with the line of each import that closes a step."""
    edge_list = list(edges)
    circle = one_cycle(group, graph(edge_list, known))
    names = set(known)
    steps = []
    for importer, imported in itertools.pairwise(circle):
        line = next(
            e.where(root) for e in edge_list if e.importer == importer and _nearest(e.imported, names) == imported
        )
        steps.append(f"{importer} ({line})")
    return f"{{{', '.join(group)}}}: " + " → ".join([*steps, circle[-1]])


# -- the source ------------------------------------------------------------------------------------------


def test_handlers_never_imports_receiver() -> None:
    found = list(
        dict.fromkeys(f"{e.importer} imports {e.imported} at {e.where(ROOT)}" for e in upward_imports(imports(ROOT)))
    )
    assert found == [], "handlers/ must not import receiver/ (imports go receiver → handlers):\n" + "\n".join(found)


def test_no_import_cycles_in_receiver_or_handlers() -> None:
    edges, known = imports(ROOT), modules(ROOT)
    found = [describe_cycle(group, edges, known, ROOT) for group in cycles(graph(edges, known))]
    assert found == [], f"{len(found)} import cycle(s):\n" + "\n".join(found)


def connection_makers(root: Path, packages: Iterable[str] = PACKAGES, allowed: str = "handlers.store") -> list[str]:
    """Every call of ``asyncpg.connect`` / ``asyncpg.create_pool`` outside ``allowed``: connections are made by
    ``handlers.store.pool`` (one connection setup, connect errors as StoreUnavailable)."""
    found: list[str] = []
    for name, path in modules(root, packages).items():
        if _within(name, allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "asyncpg"
                and node.attr in ("connect", "create_pool")
            ):
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno} asyncpg.{node.attr}")
    return found


def test_only_the_store_opens_database_connections() -> None:
    found = connection_makers(ROOT)
    assert found == [], "use handlers.store.pool.connect / create_pool:\n" + "\n".join(found)


# -- the checks themselves, on small made-up sources -------------------------------------------------


def test_cycle_finder_names_every_cycle_of_a_small_graph() -> None:
    edges = {
        "a": {"b"},
        "b": {"c", "d"},
        "c": {"a"},  # a → b → c → a
        "d": {"e"},
        "e": {"d", "f"},  # d ⇄ e
        "f": set(),
        "g": {"a", "g"},  # into a cycle, and a self-import: neither is a cycle of its own
    }
    assert cycles(edges) == [["a", "b", "c"], ["d", "e"]]
    assert one_cycle(["a", "b", "c"], edges) == ["a", "b", "c", "a"]


def test_cycle_finder_passes_a_graph_without_cycles() -> None:
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set(), "d": {"a"}}) == []


def test_cycle_finder_finds_a_long_cycle_without_recursion() -> None:
    edges = {f"m{i:05}": {f"m{i + 1:05}"} for i in range(5000)}
    edges["m05000"] = {"m00000"}
    assert [len(group) for group in cycles(edges)] == [5001]


def _write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_checks_read_relative_type_checking_and_lazy_imports_and_name_module_and_line(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "handlers/__init__.py": "",
            "handlers/store/__init__.py": "from .queries import q\n",
            "handlers/store/queries.py": "from __future__ import annotations\n\nfrom . import pool\n",
            "handlers/store/pool.py": "from handlers.store import queries  # a module\nfrom ..model import Member\n",
            "handlers/model.py": (
                "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from receiver.keys import POOL\n"
            ),
            "handlers/api.py": "def corp():\n    import receiver.app\n",
            "handlers/names.py": "from handlers.model import Department  # a name: names → handlers.model\n",
            "receiver/__init__.py": "",
            "receiver/keys.py": "import json  # outside: not in the graph\n",
            "receiver/app.py": "from receiver import keys\nfrom .keys import *\n",
        },
    )
    edges, known = imports(tmp_path), modules(tmp_path)
    assert sorted(f"{e.importer} imports {e.imported} at {e.where(tmp_path)}" for e in upward_imports(edges)) == [
        "handlers.api imports receiver.app at handlers/api.py:2",
        "handlers.model imports receiver.keys at handlers/model.py:4",
    ]
    found = graph(edges, known)
    assert found["handlers.names"] == {"handlers.model"}
    assert found["handlers.store.pool"] == {"handlers.model", "handlers.store", "handlers.store.queries"}
    assert found["receiver.app"] == {"receiver", "receiver.keys"}  # `from .keys import *` is receiver.keys
    assert cycles(found) == [["handlers.store", "handlers.store.pool", "handlers.store.queries"]]
    assert [describe_cycle(group, edges, known, tmp_path) for group in cycles(found)] == [
        "{handlers.store, handlers.store.pool, handlers.store.queries}: handlers.store (handlers/store/__init__.py:1)"
        " → handlers.store.queries (handlers/store/queries.py:3) → handlers.store"
    ]
