"""The values the JitAI elements answer with: RowData records whose fields print as their value and offer
``.value`` (``root_dept.name.value``, ``print(root_dept.name)``), and ``CorpData``, a dict also read by attribute.

They are built from the async API's frozen views (``handlers.api.views``); nothing here reaches the database.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self

from handlers.api import CorpData as NativeCorpData
from handlers.api.views import JsonView, camel

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_RENAMED = {"userId": "memberId"}  # model records say user_id; the JitAI records say memberId


_KEYS: dict[type, tuple[tuple[str, str], ...]] = {}


def _keys(kind: type[JsonView]) -> tuple[tuple[str, str], ...]:
    """(attribute, JitAI key) of every field of a view class, worked out once per class."""
    found = _KEYS.get(kind)
    if found is None:
        record: type[DataclassInstance] = kind  # type: ignore[assignment]  # every view is a frozen dataclass
        found = tuple((f.name, _RENAMED.get(camel(f.name), camel(f.name))) for f in fields(record))
        _KEYS[kind] = found
    return found


class Field:
    """One field of a record, as JitAI's data types are: ``str()`` and ``format()`` give the value, ``.value``
    the value itself, and it compares equal to its value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def __repr__(self) -> str:
        return repr(self.value)

    def __eq__(self, other: object) -> bool:
        return bool(self.value == (other.value if isinstance(other, Field) else other))

    def __hash__(self) -> int:
        return hash(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    # a list or text field reads as the list or text it holds: ``for dept_id in member.deptIds``
    def __iter__(self) -> Iterator[Any]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, key: Any) -> Any:
        return self.value[key]

    def __contains__(self, item: object) -> bool:
        return item in self.value


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    return value


class RowData:
    """A record (JitAI RowData): each field an attribute holding a ``Field``; ``toDict()`` the plain values."""

    __slots__ = ("_values",)
    _values: dict[str, Any]
    kind = "RowData"

    def __init__(self, values: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_values", dict(values))

    @classmethod
    def of(cls, view: JsonView) -> Self:
        return cls({key: _plain(getattr(view, attr)) for attr, key in _keys(type(view))})

    def __getattr__(self, name: str) -> Field:
        values: dict[str, Any] = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"{self.kind} has no field {name!r} (fields: {', '.join(values)})")
        return Field(values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{self.kind} is read-only")

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowData) and other._values == self._values

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self._values.items())))

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._values))

    def toDict(self) -> dict[str, Any]:  # noqa: N802 - JitAI's name
        return dict(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self._values.items() if k in self.shown)
        return f"{self.kind}({shown})"

    shown: frozenset[str] = frozenset()


def _short(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else repr(value)


class CorpDept(RowData):
    __slots__ = ()
    kind = "CorpDept"
    shown = frozenset({"deptId", "name", "parentId"})


class CorpMember(RowData):
    __slots__ = ()
    kind = "CorpMember"
    shown = frozenset({"memberId", "name", "status"})  # no contact details in a repr that may be logged


class CorpRoleMember(RowData):
    __slots__ = ()
    kind = "CorpRoleMember"
    shown = frozenset({"memberId", "roleId", "roleName"})


class CorpData(dict[str, Any]):
    """getThirdCorpData's answer: the platform's directory as a dict with the JitAI keys (``corpId``,
    ``corpName``, ``deptList``, ``userList``, ``deptDict``, ``userDict``, ...), also read by attribute
    (``corp_data.userDict``). ``bulkRegister`` writes the directory as it was read."""

    __slots__ = ("native",)

    def __init__(self, native: NativeCorpData, corp_name: str | None) -> None:
        body = native.to_json()
        body["corpName"] = corp_name
        body["deptDict"] = {d["deptId"]: d for d in body["deptList"]}
        body["userDict"] = {u["memberId"]: u for u in body["userList"]}
        super().__init__(body)
        self.native = native

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"CorpData has no key {name!r} (keys: {', '.join(self)})") from None

    def __repr__(self) -> str:  # a whole directory of personal data is no repr
        return (
            f"CorpData(corpId={self['corpId']!r}, corpName={self['corpName']!r}, "
            f"deptList=<{len(self['deptList'])} departments>, userList=<{len(self['userList'])} members>)"
        )
