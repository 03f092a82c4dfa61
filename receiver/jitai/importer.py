"""Makes the corp type elements importable under their JitAI names, as inside a JitAI app:
``from corps.QywxProxyType import QywxProxyCorp`` (also ``corps.QywxInnerType``, ``corps.DDInnerType``).

The finder is the last on ``sys.meta_path``: a ``corps`` package of the user's own (or the app dir's ``corps/``
directory, a namespace package when the app dir is on ``sys.path``) is found first and keeps its modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
import types
from collections.abc import Sequence

_lock = threading.Lock()


class _TypeModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self) -> None:
        self.types: dict[str, type] = {}  # "corps.QywxProxyType" -> QywxProxyCorp

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "corps":
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        if fullname in self.types:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__name__ == "corps":
            module.__path__ = []
            return
        element = self.types[module.__name__]
        setattr(module, element.__name__, element)
        setattr(module, "__all__", [element.__name__])  # noqa: B010 - a module built at import time


_FINDER = _TypeModules()


def install_type_modules(elements: dict[str, type]) -> None:
    """Make each element class importable from its type's module (``corps.QywxProxyType``); the finder goes at
    the end of ``sys.meta_path`` (once)."""
    with _lock:
        _FINDER.types.update(elements)
        if _FINDER not in sys.meta_path:
            sys.meta_path.append(_FINDER)
